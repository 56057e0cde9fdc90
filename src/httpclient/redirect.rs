//! Following a redirect (RFC 9110 §15.4): where to, with which method
//! and body, and which credentials stay behind when it leaves the origin.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};

use super::error::FetchError;
use super::url::{self, Target};

/// Whether `status` is a redirect the client follows.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The next request of a redirect chain.
pub(crate) struct Hop {
    pub(crate) uri: Uri,
    pub(crate) method: Method,
    /// The body goes again (307, 308, or a method that keeps it).
    pub(crate) keeps_body: bool,
}

/// Where a redirect leads. 303 turns anything but HEAD into GET; 301 and
/// 302 turn POST into GET (as browsers do, RFC 9110 §15.4.2-3 allows it);
/// otherwise the method and body stay.
pub(crate) fn next(
    status: StatusCode,
    method: &Method,
    base: &Uri,
    location: &HeaderValue,
) -> Result<Hop, FetchError> {
    let location = location
        .to_str()
        .map_err(|_| FetchError::Malformed("a Location that is not ASCII".into()))?;
    let uri = url::resolve(base, location.trim())
        .map_err(|why| FetchError::Malformed(format!("Location {location:?}: {why}")))?;
    let to_get = drops_body(status, method);
    Ok(Hop {
        uri,
        method: if to_get { Method::GET } else { method.clone() },
        keeps_body: !to_get,
    })
}

/// Whether a redirect with `status` turns `method` into a GET without
/// body: 303 anything but HEAD, 301 and 302 a POST.
pub(crate) fn drops_body(status: StatusCode, method: &Method) -> bool {
    match status.as_u16() {
        303 => *method != Method::HEAD,
        301 | 302 => *method == Method::POST,
        _ => false,
    }
}

/// Drops what must not follow the request: the body's description when
/// the body is dropped, and credentials when the next hop is another
/// origin (scheme, host or port).
pub(crate) fn strip(headers: &mut HeaderMap, keeps_body: bool, from: &Target<'_>, to: &Target<'_>) {
    if !keeps_body {
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::CONTENT_LANGUAGE,
            header::CONTENT_LOCATION,
            header::EXPECT,
        ] {
            headers.remove(name);
        }
    }
    if !from.same_origin(to) {
        // A Host given for the first origin names no other.
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
            header::HOST,
        ] {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(code: u16, method: Method) -> Hop {
        let base: Uri = "http://a/x/y".parse().unwrap();
        next(
            StatusCode::from_u16(code).unwrap(),
            &method,
            &base,
            &HeaderValue::from_static("../z?q"),
        )
        .unwrap()
    }

    #[test]
    fn a_post_redirected_by_301_302_or_303_becomes_a_get_without_body() {
        for code in [301, 302, 303] {
            let h = hop(code, Method::POST);
            assert_eq!((h.method, h.keeps_body), (Method::GET, false), "{code}");
        }
    }

    #[test]
    fn a_307_or_308_keeps_method_and_body() {
        for code in [307, 308] {
            let h = hop(code, Method::POST);
            assert_eq!((h.method, h.keeps_body), (Method::POST, true), "{code}");
        }
        let put = hop(302, Method::PUT);
        assert_eq!((put.method, put.keeps_body), (Method::PUT, true));
        assert_eq!(hop(303, Method::HEAD).method, Method::HEAD);
    }

    #[test]
    fn a_relative_location_resolves_against_the_request_url() {
        assert_eq!(hop(302, Method::GET).uri.to_string(), "http://a/z?q");
    }

    #[test]
    fn credentials_stay_behind_when_the_origin_changes() {
        let t = |u: &str| {
            let uri: &'static Uri = Box::leak(Box::new(u.parse().unwrap()));
            Target::parse(uri).unwrap()
        };
        let fresh = || {
            let mut h = HeaderMap::new();
            for name in ["authorization", "cookie", "proxy-authorization", "x-other"] {
                h.insert(name, HeaderValue::from_static("v"));
            }
            h
        };
        let mut same = fresh();
        strip(&mut same, true, &t("http://a/"), &t("http://a:80/b"));
        assert_eq!(same.len(), 4);
        for other in ["https://a/", "http://a:81/", "http://b/"] {
            let mut h = fresh();
            strip(&mut h, true, &t("http://a/"), &t(other));
            assert_eq!(
                h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
                ["x-other"],
                "{other}"
            );
        }
    }
}
