//! The router: an ordered list of routes (the first match wins), each a
//! path pattern, optionally for some hosts only, and `reverse_url` from
//! a named route back to a URL.
//!
//! It is generic over what a route leads to, so that it knows nothing
//! of how the application runs a handler.

use regex::Regex;

use super::url::{encode_path_part, percent_decode};
use crate::http1;

/// Name-value pairs (named captures).
pub(crate) type Fields = Vec<(String, String)>;

enum Pattern {
    /// No regex syntax: compared as a string (no regex run per request).
    Literal(String),
    Regex(Regex),
}

struct Route<E> {
    /// Only for requests to a matching host (see [`Router::add_for_host`]).
    host: Option<Regex>,
    pattern: Pattern,
    source: String,
    name: Option<String>,
    endpoint: E,
}

/// Routes to endpoints of type `E`.
pub(crate) struct Router<E> {
    routes: Vec<Route<E>>,
    /// Some route is for particular hosts: only then is the `Host`
    /// header looked at.
    by_host: bool,
}

impl<E> Router<E> {
    pub(crate) fn new() -> Router<E> {
        Router {
            routes: Vec::new(),
            by_host: false,
        }
    }

    /// Adds a route, last in order.
    ///
    /// # Panics
    /// If `pattern` is not a valid regular expression (a programming
    /// error, found at start-up).
    pub(crate) fn add(&mut self, name: Option<&str>, pattern: &str, endpoint: E) {
        let is_literal = !pattern.contains(|c: char| r"\.+*?()|[]{}^$".contains(c));
        let compiled = if is_literal {
            Pattern::Literal(pattern.to_string())
        } else {
            match Regex::new(&format!("^(?:{pattern})$")) {
                Ok(re) => Pattern::Regex(re),
                Err(e) => panic!("route pattern {pattern:?} is not a valid regex: {e}"),
            }
        };
        self.routes.push(Route {
            host: None,
            pattern: compiled,
            source: pattern.to_string(),
            name: name.map(str::to_string),
            endpoint,
        });
    }

    /// Adds `routes`' routes, in their order, for requests whose host
    /// (without its port) matches the regex `host_pattern`.
    ///
    /// # Panics
    /// If `host_pattern` is not a valid regular expression.
    pub(crate) fn add_for_host(&mut self, host_pattern: &str, routes: Router<E>) {
        let re = match Regex::new(&format!("^(?i:{host_pattern})$")) {
            Ok(re) => re,
            Err(e) => panic!("host pattern {host_pattern:?} is not a valid regex: {e}"),
        };
        for mut r in routes.routes {
            r.host = Some(re.clone());
            self.routes.push(r);
        }
        self.by_host = self.routes.iter().any(|r| r.host.is_some());
    }

    /// The URL of named route `name` with its groups filled with `args`
    /// (see `Application::reverse_url`).
    pub(crate) fn reverse_url(&self, name: &str, args: &[&str]) -> Option<String> {
        let route = self
            .routes
            .iter()
            .find(|r| r.name.as_deref() == Some(name))?;
        reverse(&route.source, args)
    }

    /// The endpoint for `req` and its path's captures (percent-decoded):
    /// unnamed ones in order, then named ones.
    pub(crate) fn find(&self, req: &http1::Request) -> Option<(&E, Vec<String>, Fields)> {
        let host = if self.by_host {
            request_host(req)
        } else {
            None
        };
        let path = req.uri.path();
        for r in &self.routes {
            if let Some(h) = &r.host
                && !host.is_some_and(|host| h.is_match(host))
            {
                continue;
            }
            match &r.pattern {
                Pattern::Literal(p) if p == path => {
                    return Some((&r.endpoint, Vec::new(), Vec::new()));
                }
                Pattern::Literal(_) => {}
                Pattern::Regex(re) => {
                    let Some(caps) = re.captures(path) else {
                        continue;
                    };
                    let mut args = Vec::new();
                    let mut kwargs = Vec::new();
                    for (i, name) in re.capture_names().enumerate().skip(1) {
                        let v = percent_decode(caps.get(i).map_or("", |m| m.as_str()));
                        match name {
                            Some(n) => kwargs.push((n.to_string(), v)),
                            None => args.push(v),
                        }
                    }
                    return Some((&r.endpoint, args, kwargs));
                }
            }
        }
        None
    }
}

/// The host a request names, without the port.
fn request_host(req: &http1::Request) -> Option<&str> {
    let h = req.host()?;
    // "[::1]:80" -> "[::1]"; "example.com:80" -> "example.com".
    Some(match h.rfind(':') {
        Some(i) if !h[i..].contains(']') => &h[..i],
        _ => h,
    })
}

/// Whether the group after `(` is a named capture, `(?P<name>` or
/// `(?<name>`.
fn is_named_group(after_paren: &std::str::Chars<'_>) -> bool {
    let rest = after_paren.as_str();
    rest.starts_with("?P<")
        || (rest.starts_with("?<") && !rest.starts_with("?<=") && !rest.starts_with("?<!"))
}

/// Fills the groups of `pattern` with `args` (see `reverse_url`).
fn reverse(pattern: &str, args: &[&str]) -> Option<String> {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    let p = p.strip_suffix('$').unwrap_or(p);
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            // An escaped punctuation mark stands for itself; `\d`, `\w`...
            // are classes, not reversible.
            '\\' => match chars.next()? {
                c if c.is_ascii_alphanumeric() => return None,
                c => out.push(c),
            },
            // A non-capturing or named group's options: "(?:", "(?i)".
            '(' if chars.clone().next() == Some('?') && !is_named_group(&chars) => return None,
            '(' => {
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                }
                if depth != 0 {
                    return None;
                }
                let arg = args.next()?;
                out.push_str(&encode_path_part(arg));
            }
            c if r".+*?|[]{}^$".contains(c) => return None,
            c => out.push(c),
        }
    }
    args.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_fills_groups_in_order() {
        assert_eq!(
            reverse(r"/user/(\d+)/post/(?P<p>\w+)", &["7", "a b"]).as_deref(),
            Some("/user/7/post/a%20b")
        );
        assert_eq!(reverse(r"/a\.b/(\d+)$", &["1"]).as_deref(), Some("/a.b/1"));
    }

    #[test]
    fn reverse_refuses_a_wrong_count_or_syntax_outside_groups() {
        assert_eq!(reverse(r"/user/(\d+)", &[]), None);
        assert_eq!(reverse(r"/user/(\d+)", &["1", "2"]), None);
        assert_eq!(reverse(r"/files/.*", &[]), None);
        assert_eq!(reverse(r"/item\d", &[]), None);
        assert_eq!(reverse(r"/(?:a|b)/(\d+)", &["1"]), None);
    }
}
