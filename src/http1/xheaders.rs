//! Trusting a reverse proxy: the client's address and scheme from
//! X-Real-Ip, X-Forwarded-For and X-Forwarded-Proto / X-Scheme (Tornado's
//! `xheaders`).

use std::net::IpAddr;

use http::HeaderMap;

/// The client IP and scheme for a request that came through `peer`.
///
/// X-Forwarded-For is read from the right, skipping the addresses of
/// `trusted` proxies: the first untrusted one is the client (entries a
/// client wrote itself sit further left and are ignored). X-Real-Ip, when
/// present, wins. Invalid values are ignored. Computed afresh for every
/// request, so nothing leaks from one request to the next on a keep-alive
/// connection.
pub(crate) fn apply(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &[IpAddr],
    own_scheme: &'static str,
) -> (Option<IpAddr>, &'static str) {
    let mut ip = peer;
    // A proxy may add its own header line instead of appending to the
    // client's: all lines form one list, in order.
    let xff = joined(headers, "x-forwarded-for");
    if let Some(xff) = xff.as_deref() {
        let mut candidate = None;
        for part in xff.rsplit(',').map(str::trim) {
            candidate = part.parse::<IpAddr>().ok();
            match candidate {
                Some(c) if trusted.contains(&c) => continue,
                _ => break,
            }
        }
        if candidate.is_some() {
            ip = candidate;
        }
    }
    if let Some(real) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        ip = Some(real);
    }
    let proto_list = joined(headers, "x-scheme").or_else(|| joined(headers, "x-forwarded-proto"));
    let proto = proto_list
        .as_deref()
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim);
    // As Tornado: a proxy's "http" or "https" wins; anything else (or
    // nothing) leaves the connection's own scheme.
    let scheme = match proto {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => own_scheme,
    };
    (ip, scheme)
}

/// Every line of header `name`, joined with commas (`None` if absent).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_skips_trusted_proxies_from_the_right() {
        let trusted = [ip("10.0.0.1")];
        let hdr = h(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.1")]);
        assert_eq!(
            apply(&hdr, Some(ip("10.0.0.1")), &trusted, "http").0,
            Some(ip("1.2.3.4"))
        );
    }

    #[test]
    fn a_proxy_line_after_the_clients_own_line_is_the_one_trusted() {
        let trusted = [ip("10.0.0.1")];
        let hdr = h(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        assert_eq!(
            apply(&hdr, Some(ip("10.0.0.1")), &trusted, "http").0,
            Some(ip("1.2.3.4"))
        );
    }

    #[test]
    fn real_ip_wins_and_garbage_is_ignored() {
        assert_eq!(
            apply(&h(&[("x-real-ip", "4.3.2.1")]), None, &[], "http").0,
            Some(ip("4.3.2.1"))
        );
        let peer = Some(ip("127.0.0.1"));
        assert_eq!(
            apply(&h(&[("x-real-ip", "not-an-ip")]), peer, &[], "http").0,
            peer
        );
    }

    #[test]
    fn scheme_comes_from_the_last_forwarded_proto_value() {
        assert_eq!(
            apply(
                &h(&[("x-forwarded-proto", "http, https")]),
                None,
                &[],
                "http"
            )
            .1,
            "https"
        );
        assert_eq!(
            apply(&h(&[("x-forwarded-proto", "gopher")]), None, &[], "http").1,
            "http"
        );
        assert_eq!(apply(&h(&[]), None, &[], "http").1, "http");
        // Over TLS, no header (or a strange one) keeps "https".
        assert_eq!(apply(&h(&[]), None, &[], "https").1, "https");
        assert_eq!(
            apply(&h(&[("x-forwarded-proto", "gopher")]), None, &[], "https").1,
            "https"
        );
    }
}
