//! The `Sec-WebSocket-Extensions` header's syntax (RFC 6455 §9.1), for
//! any extension: a comma-separated list of extensions, each a token with
//! `;`-separated parameters, a parameter's value a token or a quoted
//! string that unquotes to a token.
//!
//! ```text
//! extension-list = 1#extension
//! extension      = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! A malformed element spoils only itself: the parser skips to the next
//! comma outside quotes and goes on, so one bad offer cannot hide the good
//! ones after it, and no input can make it panic. What the parameters mean
//! is the business of each extension (permessage-deflate's is in
//! [`negotiation`](super::negotiation)).

use crate::http1::framing::is_tchar;

/// One element of an extension list: a name and its parameters, in the
/// order they were written (duplicates kept, for the extension to judge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// `(name, value)` pairs; a quoted value is unquoted.
    pub params: Vec<(String, Option<String>)>,
}

/// An element of an extension list that does not follow the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions element")]
pub struct ExtensionSyntaxError;

/// Parses one `Sec-WebSocket-Extensions` header value. Each list element
/// gives one result; empty elements (`a, , b`) are skipped, as the `#`
/// list rule of RFC 9110 §5.6.1 allows.
pub fn parse_extensions(value: &str) -> Vec<Result<Extension, ExtensionSyntaxError>> {
    let mut parser = Parser {
        bytes: value.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        parser.skip_ws();
        if parser.at_end() {
            return out;
        }
        if parser.eat(b',') {
            continue;
        }
        match parser.extension() {
            Ok(extension) => out.push(Ok(extension)),
            Err(e) => {
                out.push(Err(e));
                parser.skip_element();
            }
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Optional whitespace (spaces and tabs) around the separators.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// One extension, ending before a `,` or at the end of the value.
    fn extension(&mut self) -> Result<Extension, ExtensionSyntaxError> {
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_ws();
            if self.at_end() || self.peek() == Some(b',') {
                return Ok(Extension { name, params });
            }
            if !self.eat(b';') {
                return Err(ExtensionSyntaxError);
            }
            self.skip_ws();
            let param = self.token()?;
            self.skip_ws();
            let value = if self.eat(b'=') {
                self.skip_ws();
                Some(self.value()?)
            } else {
                None
            };
            params.push((param, value));
        }
    }

    fn token(&mut self) -> Result<String, ExtensionSyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(ExtensionSyntaxError);
        }
        // Token characters are ASCII, so this slice is valid UTF-8.
        Ok(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }

    /// A token, or a quoted string whose unescaped content is a token
    /// (§9.1: "the value after quoted-string unescaping MUST conform to
    /// the 'token' ABNF").
    fn value(&mut self) -> Result<String, ExtensionSyntaxError> {
        if !self.eat(b'"') {
            return self.token();
        }
        let mut unquoted = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ExtensionSyntaxError),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(escaped) = self.peek() else {
                        return Err(ExtensionSyntaxError);
                    };
                    unquoted.push(escaped);
                    self.pos += 1;
                }
                Some(b) => {
                    unquoted.push(b);
                    self.pos += 1;
                }
            }
        }
        if unquoted.is_empty() || !unquoted.iter().copied().all(is_tchar) {
            return Err(ExtensionSyntaxError);
        }
        Ok(String::from_utf8_lossy(&unquoted).into_owned())
    }

    /// After an error: on to the next `,` that is not inside quotes.
    fn skip_element(&mut self) {
        let mut quoted = false;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' if quoted => self.pos += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => return,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Result<Extension, ExtensionSyntaxError> {
        Ok(Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        })
    }

    #[test]
    fn a_list_of_extensions_with_parameters_and_whitespace() {
        let got = parse_extensions(
            "permessage-deflate ; client_max_window_bits,  foo;a=1; b = \"x-y\" ,, bar",
        );
        assert_eq!(
            got,
            vec![
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext("foo", &[("a", Some("1")), ("b", Some("x-y"))]),
                ext("bar", &[]),
            ]
        );
    }

    #[test]
    fn a_quoted_value_is_unescaped_and_must_be_a_token() {
        assert_eq!(
            parse_extensions(r#"e; p="1\0""#),
            vec![ext("e", &[("p", Some("10"))])]
        );
        for bad in [
            r#"e; p="a b""#,
            r#"e; p="""#,
            r#"e; p="unterminated"#,
            "e; p=\"x\\",
        ] {
            assert_eq!(
                parse_extensions(bad),
                vec![Err(ExtensionSyntaxError)],
                "{bad}"
            );
        }
    }

    #[test]
    fn a_malformed_element_spoils_only_itself() {
        let got = parse_extensions(r#"bad;;x, also bad; p="a,b" junk, good; p=1, ; =, x y"#);
        assert_eq!(
            got,
            vec![
                Err(ExtensionSyntaxError),
                Err(ExtensionSyntaxError),
                ext("good", &[("p", Some("1"))]),
                Err(ExtensionSyntaxError),
                Err(ExtensionSyntaxError),
            ]
        );
    }

    #[test]
    fn empty_and_odd_input_never_panics() {
        assert_eq!(parse_extensions(""), vec![]);
        assert_eq!(parse_extensions(" , ,"), vec![]);
        for s in ["=", ";", "\"", "\\", "a=", "a;b=", "a;b=\"\\", "é", "a;é=1"] {
            let got = parse_extensions(s);
            assert!(got.iter().all(Result::is_err), "{s}: {got:?}");
        }
    }
}
