//! Which part of a file a request asks for: `Range` (RFC 9110 §14.1.2)
//! with its `If-Range` guard (§13.1.5).

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{IF_RANGE, RANGE};

/// The part of a file to send.
pub(crate) enum Range {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

// By hand: one range of RFC 9110's grammar is forty lines, and the
// crates for it parse multi-range sets this handler answers whole anyway.
/// The one range asked for in `Range: bytes=...`, honoured only if an
/// `If-Range` validator still matches the file's `etag` or `modified`
/// time (a client resuming a download of a file that changed gets all of
/// it; a date never matches a file without a modification time).
pub(crate) fn requested_range(
    headers: &HeaderMap,
    size: u64,
    etag: &str,
    modified: Option<SystemTime>,
) -> Range {
    if let Some(v) = headers.get(IF_RANGE).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let current = if v.starts_with('"') || v.starts_with("W/") {
            // Strong comparison: a weak tag never matches.
            v == etag
        } else {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            modified.is_some_and(|m| httpdate::parse_http_date(v).is_ok_and(|d| secs(d) == secs(m)))
        };
        if !current {
            return Range::Whole;
        }
    }
    let Some(spec) = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole; // several ranges: the whole file is allowed
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(b) {
            Some(0) => Range::Unsatisfiable,
            Some(n) if size > 0 => Range::Part(size.saturating_sub(n), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        // bytes=A-: from A to the end.
        (false, true) => match num(a) {
            Some(s) if s < size => Range::Part(s, size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e && s < size => Range::Part(s, e.min(size - 1)),
            (Some(s), Some(e)) if s <= e => Range::Unsatisfiable,
            _ => Range::Whole, // invalid: ignored
        },
        (true, true) => Range::Whole,
    }
}
