//! Sends made for the loop ([`Sender`]): one send in flight per fd,
//! submitted with the next wait; a partial send queued again for its rest;
//! a failure kept for `take_send_error`.

use std::io;
use std::os::fd::RawFd;

use bytes::Bytes;

use super::{NO_OP, Queued, Reg, Uring};
use crate::ioloop::interest::Ready;
use crate::ioloop::poller::{Events, Sender};

/// The most one send asks for: the entry's length field is 32 bits, and
/// the kernel takes at most about 2 GiB per call anyway.
pub(super) const MAX_SEND: usize = 1 << 30;

/// `IORING_RECVSEND_POLL_FIRST`: wait for writability before trying the
/// send. Set after a send found the socket full, so that a full socket is
/// not tried twice.
pub(super) const RECVSEND_POLL_FIRST: u16 = 1;

/// The most bytes a joined send is copied up to: past it, a write waits
/// its turn in the stream's queue (uncopied) like any other.
const JOIN_LIMIT: usize = 64 * 1024;

/// A send request; its bytes stay here until its last completion.
pub(super) struct SendOp {
    pub(super) fd: RawFd,
    pub(super) generation: u32,
    pub(super) data: Bytes,
    pub(super) sent: usize,
    pub(super) poll_first: bool,
    pub(super) queued: bool,
}

impl Uring {
    /// A send's completion: its rest queued again if the socket took part
    /// of it (or was full), else the op freed and, if its registration is
    /// still the one that sent, `SENT` reported (and a failure kept).
    pub(super) fn send_done(&mut self, key: usize, res: i32, events: &mut Events) {
        let Some(op) = self.sends.get_mut(key) else {
            return;
        };
        let retry = match res {
            // The socket was full (a non-blocking socket's send is not
            // parked by the kernel): try again once it is writable.
            r if r == -libc::EAGAIN || r == 0 => {
                op.poll_first = true;
                true
            }
            r if r == -libc::EINTR => true,
            r if r > 0 => {
                op.sent += r as usize;
                op.poll_first = false;
                op.sent < op.data.len()
            }
            _ => false,
        };
        let (fd, generation) = (op.fd, op.generation);
        let current = self
            .current(fd, generation)
            .is_some_and(|r| r.send() == Some(key));
        if retry && current {
            self.sends[key].queued = true;
            self.queued.push(Queued::Send(key));
            return;
        }
        self.sends.remove(key); // the bytes are freed here, and only here
        if !current {
            return;
        }
        let Some(reg) = self.current(fd, generation) else {
            return;
        };
        reg.send = NO_OP;
        let token = reg.token;
        if res < 0 {
            self.send_errors.push((fd, -res));
        }
        events.push(token, Ready::SENT);
    }

    /// Appends `data` to `fd`'s send, if it is not submitted yet.
    fn join_send(&mut self, fd: RawFd, data: Bytes) -> Result<(), Bytes> {
        // A send not submitted yet takes more bytes (a copy, and rare: two
        // writes to one socket in one turn, the first not awaited), so that
        // a turn's writes go out together as plain sends would have.
        let Some(key) = self.reg_mut(fd).and_then(|r| r.send()) else {
            return Err(data);
        };
        match self.sends.get_mut(key) {
            Some(op) if op.queued && op.sent == 0 && op.data.len() + data.len() <= JOIN_LIMIT => {
                let mut joined = bytes::BytesMut::with_capacity(op.data.len() + data.len());
                joined.extend_from_slice(&op.data);
                joined.extend_from_slice(&data);
                op.data = joined.freeze();
                Ok(())
            }
            _ => Err(data),
        }
    }

    pub(super) fn has_queued_send(&self, reg: &Reg) -> bool {
        reg.send()
            .and_then(|k| self.sends.get(k))
            .is_some_and(|op| op.queued)
    }
}

impl Sender for Uring {
    fn send(&mut self, fd: RawFd, data: Bytes, join: bool) -> Result<(), Bytes> {
        if join {
            return self.join_send(fd, data);
        }
        let Some(reg) = self.reg_mut(fd) else {
            return Err(data);
        };
        if reg.send != NO_OP {
            return Err(data);
        }
        let generation = reg.generation;
        let key = self.sends.insert(SendOp {
            fd,
            generation,
            data,
            sent: 0,
            poll_first: false,
            queued: true,
        });
        self.queued.push(Queued::Send(key));
        if let Some(reg) = self.reg_mut(fd) {
            reg.send = key as u32;
        }
        Ok(())
    }

    fn take_send_error(&mut self, fd: RawFd) -> Option<io::Error> {
        let i = self.send_errors.iter().position(|&(f, _)| f == fd)?;
        let (_, errno) = self.send_errors.swap_remove(i);
        Some(io::Error::from_raw_os_error(errno))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_queued()
    }
}
