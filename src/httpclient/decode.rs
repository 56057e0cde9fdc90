//! Reading a response, without I/O: [`Decoder`] is handed the stream's
//! buffer (through `IOStream::read_with`) and takes from it the head,
//! then the body as its framing says (RFC 9112 §6.3): none (HEAD, 204,
//! 304), Content-Length, chunked (§7.1, extensions ignored, trailers
//! kept) or until the connection closes. Interim 1xx responses are
//! skipped (100 is reported, for `Expect: 100-continue`). Bytes of the
//! body are views of the buffer: nothing is copied.

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Version};

use super::error::FetchError;
use crate::http1::framing::{self, BodyKind};
use crate::iostream::StreamError;

/// The most header fields a response head may have: far beyond real
/// responses (a few dozen), and the slots live on the stack (32 bytes
/// each).
pub(crate) const MAX_HEADERS: usize = 128;

/// A response's status line and header fields.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// What the decoder found.
#[derive(Debug)]
pub(crate) enum Event {
    /// `100 Continue`: the server wants the request's body.
    Continue,
    /// The final response's head.
    Head(Head),
    /// A piece of the body (after transfer decoding).
    Data(Bytes),
    /// The body ended without a last piece (a chunked body's last chunk
    /// and trailers).
    End,
}

/// Why decoding stopped: the stream's error, or the response's.
#[derive(Debug)]
pub(crate) enum DecodeError {
    Stream(StreamError),
    Bad(FetchError),
}

impl From<StreamError> for DecodeError {
    fn from(e: StreamError) -> DecodeError {
        DecodeError::Stream(e)
    }
}

fn malformed(what: impl Into<String>) -> DecodeError {
    DecodeError::Bad(FetchError::Malformed(what.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
}

/// One response's decoder.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    /// The request was HEAD: no body, whatever the head says.
    head_request: bool,
    max_head: usize,
    max_body: usize,
    /// Where the search for the head's end resumes (a head that trickles
    /// in is scanned once, not once per byte).
    scanned: usize,
    /// Bytes of interim (1xx) heads so far: they count against
    /// `max_head` together, so an endless stream of them ends.
    interim: usize,
    /// Whether any byte of a response arrived (a connection that closes
    /// before one may be retried).
    pub(crate) received_any: bool,
    /// Body bytes so far (after transfer decoding).
    pub(crate) body_len: u64,
    content_length: Option<u64>,
    /// The connection may carry another request once this one is done.
    pub(crate) keep_alive: bool,
    /// Trailer fields after a chunked body.
    pub(crate) trailers: HeaderMap,
}

impl Decoder {
    /// A decoder for the answer to a request (`head_request`: HEAD), with
    /// the limits on the head's and the body's sizes.
    pub(crate) fn new(head_request: bool, max_head: usize, max_body: usize) -> Decoder {
        Decoder {
            state: State::Head,
            head_request,
            max_head,
            max_body,
            scanned: 0,
            interim: 0,
            received_any: false,
            body_len: 0,
            content_length: None,
            keep_alive: false,
            trailers: HeaderMap::new(),
        }
    }

    /// The whole response has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The final head has been read.
    pub(crate) fn has_head(&self) -> bool {
        self.state != State::Head
    }

    /// Takes what it can from `buf`: `Ok(None)` when it needs more bytes.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, DecodeError> {
        if !buf.is_empty() {
            self.received_any = true;
        }
        loop {
            match self.state {
                State::Head => match self.head(buf)? {
                    HeadStep::Event(event) => return Ok(Some(event)),
                    HeadStep::More => return Ok(None),
                    // An interim response: the next head may be here too.
                    HeadStep::Skipped => {}
                },
                State::Length(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = left.min(buf.len() as u64);
                    self.state = if n == left {
                        State::Done
                    } else {
                        State::Length(left - n)
                    };
                    return Ok(Some(Event::Data(self.take(buf, n as usize)?)));
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = buf.len();
                    return Ok(Some(Event::Data(self.take(buf, n)?)));
                }
                State::Chunked(chunk) => match self.chunked(chunk, buf)? {
                    Step::Event(e) => return Ok(Some(e)),
                    Step::More => return Ok(None),
                    Step::Next => {}
                },
                State::Done => return Ok(Some(Event::End)),
            }
        }
    }

    /// The body's next `n` bytes, within `max_body`.
    fn take(&mut self, buf: &mut BytesMut, n: usize) -> Result<Bytes, DecodeError> {
        self.body_len += n as u64;
        if self.body_len > self.max_body as u64 {
            return Err(DecodeError::Bad(FetchError::TooLarge {
                what: "body",
                limit: self.max_body,
            }));
        }
        Ok(buf.split_to(n).freeze())
    }

    /// What to tell the caller when the connection closed cleanly.
    pub(crate) fn at_eof(&mut self) -> Result<(), FetchError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                self.keep_alive = false;
                Ok(())
            }
            State::Head if !self.received_any => Err(FetchError::NoResponse),
            State::Head => Err(FetchError::Malformed(
                "the connection closed inside the response head".into(),
            )),
            State::Length(_) => Err(FetchError::ShortBody {
                expected: self.content_length,
                received: self.body_len,
            }),
            State::Chunked(_) => Err(FetchError::ShortBody {
                expected: None,
                received: self.body_len,
            }),
        }
    }

    fn head(&mut self, buf: &mut BytesMut) -> Result<HeadStep, DecodeError> {
        let Some(end) = find_head_end(buf, self.scanned) else {
            if buf.len() + self.interim > self.max_head {
                return Err(DecodeError::Bad(FetchError::TooLarge {
                    what: "head",
                    limit: self.max_head,
                }));
            }
            // The last three bytes may begin the blank line.
            self.scanned = buf.len().saturating_sub(3);
            return Ok(HeadStep::More);
        };
        if end + self.interim > self.max_head {
            return Err(DecodeError::Bad(FetchError::TooLarge {
                what: "head",
                limit: self.max_head,
            }));
        }
        self.scanned = 0;
        let bytes = buf.split_to(end).freeze();
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(malformed("incomplete response head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(malformed(format!("more than {MAX_HEADERS} header fields")));
            }
            Err(e) => return Err(malformed(format!("invalid response head: {e}"))),
        }
        let code = parsed.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| malformed(format!("invalid status code {code}")))?;
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        if code < 200 {
            self.interim += end;
        }
        match code {
            100 => return Ok(HeadStep::Event(Event::Continue)),
            101 => {
                return Err(malformed(
                    "101 Switching Protocols to a request without Upgrade",
                ));
            }
            // Other interim responses (102, 103) are skipped (RFC 9110 §15.2).
            102..=199 => return Ok(HeadStep::Skipped),
            _ => {}
        }
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        let (mut close, mut keep_alive) = (false, false);
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| malformed(format!("invalid header name {:?}", h.name)))?;
            let value = HeaderValue::from_maybe_shared(bytes.slice_ref(h.value))
                .map_err(|_| malformed(format!("invalid value for {name}")))?;
            if name == CONNECTION {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            headers.append(name, value);
        }
        self.keep_alive = !close && (version == Version::HTTP_11 || keep_alive);
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means
        // the connection closes after it (1.0 framing is not trusted).
        if version == Version::HTTP_10 && headers.contains_key(http::header::TRANSFER_ENCODING) {
            self.keep_alive = false;
        }
        let no_body = self.head_request || code == 204 || code == 304;
        self.state = if no_body {
            State::Done
        } else {
            match framing::body_kind(&headers) {
                Ok(BodyKind::Chunked) => State::Chunked(Chunk::Size),
                Ok(BodyKind::Length(n)) => {
                    if n > self.max_body as u64 {
                        return Err(DecodeError::Bad(FetchError::TooLarge {
                            what: "body",
                            limit: self.max_body,
                        }));
                    }
                    self.content_length = Some(n);
                    State::Length(n)
                }
                Ok(BodyKind::Empty) if headers.contains_key(CONTENT_LENGTH) => {
                    self.content_length = Some(0);
                    State::Done
                }
                // RFC 9112 §6.3 rule 8: no framing, so the body runs to
                // the connection's close.
                Ok(BodyKind::Empty) => {
                    self.keep_alive = false;
                    State::UntilClose
                }
                Err(crate::http1::RequestError::Framing(why)) => return Err(malformed(why)),
                Err(_) => return Err(malformed("a transfer coding other than chunked")),
            }
        };
        Ok(HeadStep::Event(Event::Head(Head {
            status,
            version,
            headers,
        })))
    }

    fn chunked(&mut self, chunk: Chunk, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        match chunk {
            Chunk::Size => {
                let Some(line) = take_line(buf, framing::MAX_CHUNK_LINE)? else {
                    return Ok(Step::More);
                };
                let size = framing::parse_chunk_size(&line)
                    .map_err(|_| malformed("invalid chunk size"))?;
                self.state = State::Chunked(if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                });
                Ok(Step::Next)
            }
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let n = left.min(buf.len() as u64);
                self.state = State::Chunked(if n == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - n)
                });
                Ok(Step::Event(Event::Data(self.take(buf, n as usize)?)))
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Step::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(malformed("chunk data not followed by CRLF"));
                }
                let _ = buf.split_to(2);
                self.state = State::Chunked(Chunk::Size);
                Ok(Step::Next)
            }
            Chunk::Trailers(seen) => {
                let Some(line) = take_line(buf, framing::MAX_TRAILERS)? else {
                    return Ok(Step::More);
                };
                if line.is_empty() {
                    self.state = State::Done;
                    return Ok(Step::Next);
                }
                let seen = seen + line.len() + 2;
                if seen > framing::MAX_TRAILERS || !framing::is_field_line(&line) {
                    return Err(malformed("invalid or oversized trailer section"));
                }
                self.state = State::Chunked(Chunk::Trailers(seen));
                self.trailer(&line)?;
                Ok(Step::Next)
            }
        }
    }

    fn trailer(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| malformed("invalid trailer name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| malformed("invalid trailer value"))?;
        self.trailers.append(name, value);
        Ok(())
    }
}

enum HeadStep {
    Event(Event),
    More,
    Skipped,
}

enum Step {
    Event(Event),
    More,
    Next,
}

/// A CRLF-ended line off the front of `buf`, without the CRLF; `None`
/// until it has arrived. Longer than `max`, or ended by a bare LF: an
/// error (a chunk line read two ways is how bodies are smuggled).
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, DecodeError> {
    match memchr::memchr(b'\n', buf) {
        Some(i) if i > max => Err(malformed("chunk or trailer line too long")),
        Some(i) => {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(malformed("chunk or trailer line not ended by CRLF"));
            }
            let mut line = buf.split_to(i + 1);
            line.truncate(i - 1);
            Ok(Some(line))
        }
        None if buf.len() > max => Err(malformed("chunk or trailer line too long")),
        None => Ok(None),
    }
}

/// Where the head ends (just past its blank line, CRLF or bare LF as
/// RFC 9112 §2.2 lets a recipient accept), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'\n', &buf[at..]) {
        let nl = at + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => at = nl + 1,
        }
    }
    None
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
