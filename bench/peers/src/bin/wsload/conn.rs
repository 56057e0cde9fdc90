//! One client WebSocket connection, non-blocking: reads into its buffer
//! (one per wake-up, as a rule), whole messages out of it, masked frames written.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

use crate::deflate::Deflate;
use crate::frame::{self, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG};
use crate::handshake::Opened;
use crate::rng::Rng;

/// The smallest read buffer: a 20-byte echo or a 100-byte broadcast needs
/// far less, and 4 KiB per connection is small beside the server's.
const MIN_BUFFER: usize = 4096;
/// No load sends more than 16 KiB: a larger frame is a server's bug, not
/// a reason to allocate without bound.
const MAX_FRAME: usize = 16 << 20;

pub struct WsConn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    /// Unparsed bytes are inbuf[start..end].
    start: usize,
    end: usize,
    /// A fragmented or compressed message being put together.
    partial: Option<Partial>,
    /// Its whole payload, once complete.
    assembled: Vec<u8>,
    /// permessage-deflate's scratch: a message compressed for sending, or
    /// one received and inflated.
    packed: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    deflate: Option<Deflate>,
    rng: Rng,
}

struct Partial {
    opcode: u8,
    compressed: bool,
}

/// A whole message: its opcode and payload (borrowed from the connection
/// until the next read).
pub struct Message<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
}

impl WsConn {
    /// Takes an opened connection, made non-blocking, with a read buffer
    /// sized for messages of `expect` bytes.
    pub fn new(opened: Opened, expect: usize, seed: u64) -> io::Result<Self> {
        opened.stream.set_nonblocking(true)?;
        let mut inbuf = vec![0; (expect + 14).max(MIN_BUFFER)];
        let end = opened.leftover.len();
        if end > inbuf.len() {
            inbuf.resize(end, 0);
        }
        inbuf[..end].copy_from_slice(&opened.leftover);
        Ok(WsConn {
            stream: opened.stream,
            inbuf,
            start: 0,
            end,
            partial: None,
            assembled: Vec::new(),
            packed: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            deflate: opened.deflate.map(Deflate::new),
            rng: Rng::from_clock(seed),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    pub fn compressing(&self) -> bool {
        self.deflate.is_some()
    }

    /// Reads what the socket holds: one read, unless it filled the
    /// buffer. A short read means the socket was drained, and with
    /// edge-triggered epoll any later bytes wake us again, so no read is
    /// spent on EAGAIN per message. `Ok(false)` if nothing was there.
    pub fn fill(&mut self) -> Result<bool, String> {
        let mut got = false;
        loop {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.end == self.inbuf.len() {
                // Full: move the unparsed bytes down, and grow if they fill it.
                self.inbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if self.end == self.inbuf.len() {
                    self.inbuf.resize(self.inbuf.len() * 2, 0);
                }
            }
            let room = self.inbuf.len() - self.end;
            match self.stream.read(&mut self.inbuf[self.end..]) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => {
                    self.end += n;
                    got = true;
                    if n < room {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// The next whole message in the buffer, if one is there. Pings are
    /// answered (queued; see `flush`), pongs skipped, a close is an error.
    pub fn next_message(&mut self) -> Result<Option<Message<'_>>, String> {
        loop {
            let Some(head) = frame::parse_head(&self.inbuf[self.start..self.end])? else { return Ok(None) };
            if head.payload_len > MAX_FRAME {
                return Err(format!("a {} byte frame", head.payload_len));
            }
            let frame_len = head.head_len + head.payload_len;
            if self.end - self.start < frame_len {
                // Make room for the rest of a large frame.
                if self.start + frame_len > self.inbuf.len() {
                    self.inbuf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                    if frame_len > self.inbuf.len() {
                        self.inbuf.resize(frame_len, 0);
                    }
                }
                return Ok(None);
            }
            let p = self.start + head.head_len..self.start + frame_len;
            self.start += frame_len;
            match head.opcode {
                OP_PING => {
                    let payload = self.inbuf[p].to_vec();
                    self.queue(OP_PONG, false, &payload);
                    continue;
                }
                OP_PONG => continue,
                OP_CLOSE => return Err("the server sent a close frame".into()),
                _ => {}
            }
            let first = head.opcode != OP_CONTINUATION;
            if first == self.partial.is_some() {
                return Err("the server broke a message's fragment sequence".into());
            }
            if first && head.fin && !head.rsv1 {
                // The common case: one uncompressed frame, read in place.
                return Ok(Some(Message { opcode: head.opcode, payload: &self.inbuf[p] }));
            }
            if first {
                if head.rsv1 && self.deflate.is_none() {
                    return Err("RSV1 set without permessage-deflate".into());
                }
                self.partial = Some(Partial { opcode: head.opcode, compressed: head.rsv1 });
                self.assembled.clear();
            }
            self.assembled.extend_from_slice(&self.inbuf[p]);
            if !head.fin {
                continue;
            }
            let Partial { opcode, compressed } = self.partial.take().unwrap();
            if !compressed {
                return Ok(Some(Message { opcode, payload: &self.assembled }));
            }
            let hint = self.assembled.len() * 4;
            self.deflate.as_mut().unwrap().decompress(&self.assembled, &mut self.packed, hint)?;
            return Ok(Some(Message { opcode, payload: &self.packed }));
        }
    }

    /// Sends one message (compressed when permessage-deflate was agreed),
    /// masked with a fresh key. `Ok(true)` when all of it was written;
    /// otherwise the rest waits for `flush` on writability.
    /// Whether messages go compressed each on its own (see
    /// `Deflate::reset_each`): then one compressed form serves every send.
    pub fn stateless(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| d.reset_each())
    }

    /// Sends a payload compressed beforehand (RSV1 set), for a
    /// [`stateless`](Self::stateless) connection.
    pub fn send_compressed(&mut self, opcode: u8, packed: &[u8]) -> Result<bool, String> {
        self.queue(opcode, true, packed);
        self.flush()
    }

    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<bool, String> {
        match self.deflate.as_mut() {
            Some(d) => {
                d.compress(payload, &mut self.packed)?;
                let packed = std::mem::take(&mut self.packed);
                self.queue(opcode, true, &packed);
                self.packed = packed;
            }
            None => self.queue(opcode, false, payload),
        }
        self.flush()
    }

    fn queue(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        let key = self.rng.key();
        frame::encode(&mut self.out, opcode, rsv1, payload, key);
    }

    /// Writes what is queued. `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> Result<bool, String> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(true)
    }
}
