//! Finding the end of a request head that arrives in pieces, without
//! waiting on bytes that can never make one.
//!
//! The usual head is all buffered at once and found with one `\r\n\r\n`
//! search. A head still arriving goes through [`HeadScan`], run on the
//! stream's buffer as each piece lands ([`IOStream::read_with`]): it
//! scans every byte once however the head trickles in (a slowloris costs
//! its bytes, not their square), ends the head at a blank line whether
//! its line ends are CRLF or a bare LF (the bare LF is then refused with
//! a 400 by the parser, at once rather than after the header timeout),
//! and refuses at their first bytes what cannot begin a request (a TLS
//! ClientHello on the plain port, binary noise), instead of holding the
//! connection until the header timeout.
//!
//! [`IOStream::read_with`]: crate::IOStream::read_with

use bytes::{Bytes, BytesMut};

use super::error::RequestError;
use super::framing::is_tchar;

/// The incremental search for a head's end; see the module docs.
#[derive(Debug)]
pub(crate) struct HeadScan {
    /// Bytes already searched for a blank line.
    scanned: usize,
    /// Bytes already checked as the start of a request line.
    checked: usize,
    /// Whether a method character has been seen (empty lines are over).
    in_method: bool,
    /// Whether the method has been seen whole (and was a token).
    method_seen: bool,
    /// `max_header_size`.
    max: usize,
}

impl HeadScan {
    pub(crate) fn new(max: usize) -> HeadScan {
        HeadScan {
            scanned: 0,
            checked: 0,
            in_method: false,
            method_seen: false,
            max,
        }
    }

    /// Takes the head off the front of `buf` once its blank line is
    /// there: `Ok(None)` until then.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RequestError> {
        if !self.method_seen {
            self.check_method(buf)?;
        }
        // A blank line may straddle the previous piece: look back two
        // bytes (the longest blank line, "\n\r\n", is three).
        let from = self.scanned.saturating_sub(2);
        if let Some(end) = blank_line_end(&buf[from..]) {
            let end = from + end;
            if end > self.max {
                return Err(RequestError::HeadTooLarge);
            }
            // Ready for the next head, should the caller scan one.
            *self = HeadScan::new(self.max);
            return Ok(Some(buf.split_to(end).freeze()));
        }
        if buf.len() >= self.max {
            return Err(RequestError::HeadTooLarge);
        }
        self.scanned = buf.len();
        Ok(None)
    }

    /// Checks that `buf` can begin a request line: after any empty lines
    /// (RFC 9112 §2.2 lets a client send some first), a method token and
    /// a space. Resumes where it stopped, so each byte is checked once.
    fn check_method(&mut self, buf: &[u8]) -> Result<(), RequestError> {
        while let Some(&b) = buf.get(self.checked) {
            match b {
                b'\r' | b'\n' if !self.in_method => {}
                b' ' if self.in_method => {
                    self.method_seen = true;
                    return Ok(());
                }
                b if is_tchar(b) => self.in_method = true,
                _ => return Err(RequestError::Malformed("not an HTTP request")),
            }
            self.checked += 1;
        }
        Ok(())
    }
}

/// The offset just past the first blank line ("\n\n" or "\n\r\n", the
/// first `\n` ending the line before it) in `buf`.
fn blank_line_end(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf).find_map(|i| match buf.get(i + 1..) {
        Some([b'\n', ..]) => Some(i + 2),
        Some([b'\r', b'\n', ..]) => Some(i + 3),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(
        scan: &mut HeadScan,
        buf: &mut BytesMut,
        piece: &[u8],
    ) -> Result<Option<Bytes>, RequestError> {
        buf.extend_from_slice(piece);
        scan.decode(buf)
    }

    #[test]
    fn a_head_arriving_byte_by_byte_ends_at_its_blank_line_and_leaves_the_rest() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        let (mut scan, mut buf) = (HeadScan::new(1024), BytesMut::new());
        let mut head = None;
        for b in raw.iter() {
            if let Some(h) = feed(&mut scan, &mut buf, std::slice::from_ref(b)).unwrap() {
                head = Some(h);
            }
        }
        assert_eq!(&head.unwrap()[..], &raw[..raw.len() - 4]);
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn a_bare_lf_blank_line_ends_the_head_so_the_parser_can_refuse_it() {
        let (mut scan, mut buf) = (HeadScan::new(1024), BytesMut::new());
        assert_eq!(
            feed(&mut scan, &mut buf, b"GET / HTTP/1.1\nHost: x\n").unwrap(),
            None
        );
        let head = feed(&mut scan, &mut buf, b"\n").unwrap().unwrap();
        assert_eq!(&head[..], b"GET / HTTP/1.1\nHost: x\n\n");
    }

    #[test]
    fn bytes_that_cannot_begin_a_request_are_refused_on_arrival() {
        // A TLS ClientHello's first bytes.
        let (mut scan, mut buf) = (HeadScan::new(1024), BytesMut::new());
        let got = feed(&mut scan, &mut buf, &[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert_eq!(got, Err(RequestError::Malformed("not an HTTP request")));
        // A method cut short by a control byte.
        let (mut scan, mut buf) = (HeadScan::new(1024), BytesMut::new());
        assert_eq!(feed(&mut scan, &mut buf, b"GE").unwrap(), None);
        assert!(feed(&mut scan, &mut buf, b"T\0").is_err());
    }

    #[test]
    fn empty_lines_before_the_request_line_are_not_noise() {
        let (mut scan, mut buf) = (HeadScan::new(1024), BytesMut::new());
        assert_eq!(feed(&mut scan, &mut buf, b"\r\nGET /a").unwrap(), None);
    }

    #[test]
    fn a_head_without_end_past_the_limit_is_too_large() {
        let (mut scan, mut buf) = (HeadScan::new(16), BytesMut::new());
        assert_eq!(feed(&mut scan, &mut buf, b"GET /aaaaaaaa").unwrap(), None);
        let got = feed(&mut scan, &mut buf, b"aaaaaaaaaaaa");
        assert_eq!(got, Err(RequestError::HeadTooLarge));
    }
}
