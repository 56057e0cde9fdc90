//! Where a URL points ([`Target`]) and how a `Location` is resolved
//! against the URL it came from (RFC 3986 §5.2).

use std::borrow::Cow;

use http::Uri;

/// The parts of an `http://` or `https://` URL the client connects and
/// writes by, borrowed from the URL where they can be (a request costs
/// no copy of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// `https://`: TLS first.
    pub(crate) secure: bool,
    /// The host to connect to, without an IPv6 literal's brackets, in
    /// lower case.
    pub(crate) host: Cow<'a, str>,
    pub(crate) port: u16,
    /// The `Host` header's value: the authority without user information,
    /// and without the port when it is the scheme's default (RFC 9110
    /// §7.2: as the URL says it).
    pub(crate) authority: Cow<'a, str>,
    /// The origin-form request target (`/path?query`, `/` when empty).
    pub(crate) path_and_query: Cow<'a, str>,
}

/// The schemes a client speaks, plain (port 80) and secure (443), and
/// what to say of any other.
pub(crate) struct Schemes {
    plain: &'static str,
    secure: &'static str,
    other: &'static str,
}

/// `http://` and `https://`.
pub(crate) const HTTP: Schemes = Schemes {
    plain: "http",
    secure: "https",
    other: "the scheme must be http:// or https://",
};

/// `ws://` and `wss://` (RFC 6455 §3).
pub(crate) const WEBSOCKET: Schemes = Schemes {
    plain: "ws",
    secure: "wss",
    other: "the scheme must be ws:// or wss://",
};

impl<'a> Target<'a> {
    /// Parses an absolute `http(s)://` URL; the fragment is dropped (it is
    /// never sent, RFC 9110 §7.1).
    pub(crate) fn parse(uri: &'a Uri) -> Result<Target<'a>, &'static str> {
        Target::parse_for(uri, &HTTP)
    }

    /// Parses an absolute URL with one of `schemes`.
    pub(crate) fn parse_for(uri: &'a Uri, schemes: &Schemes) -> Result<Target<'a>, &'static str> {
        let (secure, default_port) = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case(schemes.plain) => (false, 80),
            Some(s) if s.eq_ignore_ascii_case(schemes.secure) => (true, 443),
            Some(_) => return Err(schemes.other),
            None => return Err("not an absolute URL"),
        };
        let authority = uri.authority().ok_or("no host")?;
        if authority.as_str().contains('@') {
            return Err("user information in the URL is not supported");
        }
        let host = authority.host();
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if bare.is_empty() {
            return Err("no host");
        }
        let port = authority.port_u16().unwrap_or(default_port);
        let authority = if port == default_port {
            Cow::Borrowed(host)
        } else if authority.port().is_some() {
            Cow::Borrowed(authority.as_str())
        } else {
            Cow::Owned(format!("{host}:{port}"))
        };
        let host = if bare.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(bare.to_ascii_lowercase())
        } else {
            Cow::Borrowed(bare)
        };
        Ok(Target {
            secure,
            host,
            port,
            authority,
            path_and_query: match uri.path_and_query().map(|p| p.as_str()) {
                None | Some("") => Cow::Borrowed("/"),
                Some(p) if p.starts_with('?') => Cow::Owned(format!("/{p}")),
                Some(p) => Cow::Borrowed(p),
            },
        })
    }

    /// Whether `other` is the same origin (scheme, host and port, RFC 6454).
    pub(crate) fn same_origin(&self, other: &Target<'_>) -> bool {
        self.secure == other.secure && self.host == other.host && self.port == other.port
    }
}

/// Resolves `reference` (a `Location` value) against `base`, RFC 3986
/// §5.2.2 with the strict parser; the result's fragment is dropped.
pub(crate) fn resolve(base: &Uri, reference: &str) -> Result<Uri, &'static str> {
    let r = Parts::split(reference);
    let base = base.to_string();
    let b = Parts::split(&base);
    let (scheme, authority, path, query);
    if let Some(s) = r.scheme {
        scheme = s.to_string();
        authority = r.authority.map(str::to_string);
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = b.scheme.ok_or("the base URL has no scheme")?.to_string();
        if let Some(a) = r.authority {
            authority = Some(a.to_string());
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            authority = b.authority.map(str::to_string);
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else {
                    remove_dot_segments(&merge(&b, r.path))
                };
                query = r.query;
            }
        }
    }
    let mut out = format!("{scheme}:");
    if let Some(a) = &authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out.parse().map_err(|_| "the Location is not a valid URL")
}

/// A URI reference split by RFC 3986 Appendix B's regular expression.
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn split(s: &'a str) -> Parts<'a> {
        let s = s.split('#').next().unwrap_or("");
        let (scheme, rest) = match s.find([':', '/', '?']) {
            Some(i)
                if s.as_bytes()[i] == b':'
                    && i > 0
                    && s.as_bytes()[0].is_ascii_alphabetic()
                    && s[..i]
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)) =>
            {
                (Some(&s[..i]), &s[i + 1..])
            }
            _ => (None, s),
        };
        let (authority, rest) = match rest.strip_prefix("//") {
            Some(r) => {
                let end = r.find(['/', '?']).unwrap_or(r.len());
                (Some(&r[..end]), &r[end..])
            }
            None => (None, rest),
        };
        let (path, query) = match rest.find('?') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        Parts {
            scheme,
            authority,
            path,
            query,
        }
    }
}

/// RFC 3986 §5.2.3.
fn merge(base: &Parts<'_>, path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{path}");
    }
    match base.path.rfind('/') {
        Some(i) => format!("{}{path}", &base.path[..=i]),
        None => path.to_string(),
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut out = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            match out.rfind('/') {
                Some(i) => out.truncate(i),
                None => out.clear(),
            }
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            out.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target<'static> {
        let uri: &'static Uri = Box::leak(Box::new(url.parse().unwrap()));
        Target::parse(uri).unwrap()
    }

    #[test]
    fn a_url_gives_host_port_and_origin_form_target() {
        let t = target("http://Example.com:8080/a/b?c=d#frag");
        assert_eq!((&*t.host, t.port, t.secure), ("example.com", 8080, false));
        assert_eq!(t.authority, "Example.com:8080");
        assert_eq!(t.path_and_query, "/a/b?c=d");
    }

    #[test]
    fn default_ports_are_left_out_of_the_host_header() {
        assert_eq!(target("https://h/").authority, "h");
        assert_eq!(target("https://h:443/").authority, "h");
        assert_eq!(target("https://h:443/").port, 443);
        assert_eq!(target("http://h:80").authority, "h");
        assert_eq!(target("http://h").path_and_query, "/");
        assert_eq!(target("http://h?q=1").path_and_query, "/?q=1");
    }

    #[test]
    fn an_ipv6_literal_is_connected_to_without_brackets() {
        let t = target("http://[::1]:9000/x");
        assert_eq!((&*t.host, &*t.authority), ("::1", "[::1]:9000"));
    }

    #[test]
    fn other_schemes_and_user_information_are_refused() {
        for bad in ["ftp://h/", "/relative", "http://user:pw@h/"] {
            let uri: Uri = bad.parse().unwrap();
            assert!(Target::parse(&uri).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let a = target("http://h/");
        assert!(a.same_origin(&target("http://H:80/other")));
        assert!(!a.same_origin(&target("https://h/")));
        assert!(!a.same_origin(&target("http://h:81/")));
        assert!(!a.same_origin(&target("http://g/")));
    }

    /// RFC 3986 §5.4's examples, normal and abnormal.
    #[test]
    fn references_resolve_as_rfc_3986_section_5_4_says() {
        let base: Uri = "http://a/b/c/d;p?q".parse().unwrap();
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("http://other:81/x", "http://other:81/x"),
        ];
        for (reference, want) in cases {
            let got = resolve(&base, reference).unwrap();
            // `Uri` prints an empty path as "/", as it will be requested.
            assert_eq!(got.to_string(), want, "{reference:?}");
        }
    }
}
