//! Percent-encoding for the web layer: decoding route captures and
//! cookie values, encoding a path segment for `reverse_url`, listings and
//! [`Cookie::encoded`](super::Cookie::encoded).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What stays as is in a path segment: the bytes `form_urlencoded`
/// leaves alone (ASCII alphanumerics and `*-._`), so that every URL this
/// layer made before keeps its exact spelling.
const PATH_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// `%XX` decoding, lenient: a `%` not followed by two hex digits stays as
/// it is (one bad escape does not leave the rest encoded), and `+` stays
/// a `+` (only form bodies and query strings, parsed by `form_urlencoded`,
/// read it as a space). Invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `part` percent-encoded for a URL path (space as `%20`, not `+`: the
/// router decodes `%XX` only, as Tornado's `url_escape(plus=False)`).
pub(crate) fn encode_path_part(part: &str) -> String {
    utf8_percent_encode(part, PATH_PART).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_lenient_and_leaves_plus_alone() {
        assert_eq!(percent_decode("a%20b+c"), "a b+c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        // A sign is not a hex digit.
        assert_eq!(percent_decode("%+f"), "%+f");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn a_path_part_is_encoded_as_form_urlencoded_with_spaces_as_20() {
        // The spelling before this crate was used: byte_serialize with
        // every `+` (a space) as `%20`.
        let old = |s: &str| {
            form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        let every_byte: String = (1u8..128).map(char::from).collect();
        for s in [every_byte.as_str(), "a b+c/d?é", "<b>&.txt", ""] {
            assert_eq!(encode_path_part(s), old(s), "{s:?}");
        }
        assert_eq!(encode_path_part("a b"), "a%20b");
    }
}
