//! XSRF protection in Tornado's manner: a random token in the `_xsrf`
//! cookie, echoed (masked or not) by every unsafe request in an `_xsrf`
//! form field or an `X-XSRFToken` header.

use http::StatusCode;
use subtle::ConstantTimeEq;

use super::error::HttpError;
use super::request::Request;

/// Random bytes in a fresh token: 128 bits, beyond guessing.
const TOKEN_BYTES: usize = 16;

/// The XSRF token for the `_xsrf` cookie: the request's cookie if it has
/// one, else a fresh random one. Set the cookie with the response that
/// carries the form (`Cookie::new("_xsrf", token)`), and put
/// [`mask_xsrf_token`]`(&token)` in the form's `_xsrf` field (or an
/// `X-XSRFToken` header). The raw token is accepted there too.
///
/// # Errors
/// A 500 if the operating system's random number generator fails: a
/// token is never made from a weaker source.
pub fn xsrf_token(req: &Request) -> Result<String, HttpError> {
    if let Some(t) = req.cookie("_xsrf").filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    let mut token = [0u8; TOKEN_BYTES];
    // The OS generator or nothing: no fallback to a weaker source.
    getrandom::fill(&mut token).map_err(|e| {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR).log(format!(
            "no XSRF token: the OS random number generator failed: {e}"
        ))
    })?;
    Ok(hex(&token))
}

/// `token` masked for a page: `2|<mask>|<mask XOR token>` in hex with a
/// fresh random mask each time (Tornado's xsrf v2), so the secret never
/// appears twice the same in compressed pages (the BREACH attack reads a
/// secret repeated in compressed responses).
///
/// ```
/// let a = cyclone::web::mask_xsrf_token("abc");
/// let b = cyclone::web::mask_xsrf_token("abc");
/// assert!(a.starts_with("2|") && a != b);
/// ```
///
/// # Panics
/// If the operating system's random number generator fails (a mask is
/// never made from a weaker source). In a handler the application
/// answers that panic with a 500.
pub fn mask_xsrf_token(token: &str) -> String {
    let raw = token.as_bytes();
    let mut mask = vec![0u8; raw.len()];
    // The OS generator or nothing: no fallback to a weaker source.
    if let Err(e) = getrandom::fill(&mut mask) {
        panic!("no XSRF mask: the OS random number generator failed: {e}");
    }
    let masked: Vec<u8> = raw.iter().zip(&mask).map(|(t, m)| t ^ m).collect();
    format!("2|{}|{}", hex(&mask), hex(&masked))
}

/// Whether an unsafe request carries an `_xsrf` token (masked or not)
/// equal to its `_xsrf` cookie.
pub(crate) fn xsrf_ok(req: &Request) -> bool {
    let Some(cookie) = req.cookie("_xsrf").filter(|c| !c.is_empty()) else {
        return false;
    };
    let sent = req.argument("_xsrf").map(str::to_string).or_else(|| {
        ["x-xsrftoken", "x-csrftoken"].iter().find_map(|h| {
            req.headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    });
    let Some(sent) = sent.as_deref().and_then(unmask_xsrf_token) else {
        return false;
    };
    // Constant time: the time taken says nothing of how much of the
    // token was right (a length mismatch may show, the length is no secret).
    sent.as_slice().ct_eq(cookie.as_bytes()).into()
}

/// The raw token inside a value from a form or header: masked (see
/// [`mask_xsrf_token`]) or sent as is.
fn unmask_xsrf_token(sent: &str) -> Option<Vec<u8>> {
    let Some(rest) = sent.strip_prefix("2|") else {
        return Some(sent.as_bytes().to_vec());
    };
    let (mask, masked) = rest.split_once('|')?;
    let (mask, masked) = (unhex(mask)?, unhex(masked)?);
    (mask.len() == masked.len()).then(|| mask.iter().zip(&masked).map(|(m, t)| m ^ t).collect())
}

// Hex by hand: a dozen lines, not worth a dependency.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_xsrf_token_unmasks_to_the_token() {
        let masked = mask_xsrf_token("tok123");
        assert_eq!(unmask_xsrf_token(&masked).as_deref(), Some(&b"tok123"[..]));
        assert_eq!(unmask_xsrf_token("tok123").as_deref(), Some(&b"tok123"[..]));
        assert_eq!(unmask_xsrf_token("2|zz|00"), None);
        assert_eq!(unmask_xsrf_token("2|00|0000"), None);
    }
}
