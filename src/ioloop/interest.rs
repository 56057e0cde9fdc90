//! What a handler asks for ([`Interest`]) and what it is told ([`Ready`]).

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

/// The readiness a handler asks to be told about.
///
/// `ERROR` and `HUP` cannot be asked for: they are always reported to a
/// handler whose interest is not empty. An empty interest parks the handler:
/// it stays in the table but the poller stops watching its fd, so it gets
/// nothing at all (not even errors) until its interest is set again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// Nothing: the handler is parked.
    pub const NONE: Interest = Interest(0);
    /// The fd has data to read (or a connection to accept, or EOF).
    pub const READ: Interest = Interest(1);
    /// The fd can take more data.
    pub const WRITE: Interest = Interest(2);
    /// Both directions.
    pub const BOTH: Interest = Interest(3);
    /// A modifier: report readiness once per change (edge-triggered)
    /// instead of on every turn while it lasts. Only for backends whose
    /// [`Capabilities::edge_triggered`](super::Capabilities) is true (epoll);
    /// the handler must then consume readiness until `EAGAIN`, or remember
    /// it (as `IOStream` does).
    pub const EDGE: Interest = Interest(4);

    /// Whether read readiness is requested.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
    /// Whether write readiness is requested.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
    /// Whether nothing is requested (the handler is parked); `EDGE` alone
    /// requests nothing.
    pub const fn is_empty(self) -> bool {
        self.0 & 3 == 0
    }
    /// Whether the `EDGE` modifier is set.
    pub const fn is_edge(self) -> bool {
        self.0 & 4 != 0
    }
    /// `self` without the bits of `other`.
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }
    /// The readiness bits a handler with this interest may be told about.
    pub(crate) const fn deliverable(self) -> Ready {
        if self.is_empty() {
            return Ready::EMPTY;
        }
        let closed = if self.is_readable() {
            Ready::READ_CLOSED.0
        } else {
            0
        };
        Ready((self.0 & 3) | Ready::ERROR.0 | Ready::HUP.0 | Ready::SENT.0 | closed)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE")?,
            (true, false) => f.write_str("READ")?,
            (false, true) => f.write_str("WRITE")?,
            (true, true) => f.write_str("READ | WRITE")?,
        }
        if self.is_edge() {
            f.write_str(" | EDGE")?;
        }
        Ok(())
    }
}

/// The readiness reported to a handler: a set of `READABLE`, `WRITABLE`,
/// `ERROR`, `HUP`, `READ_CLOSED` and `SENT`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready(u8);

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready(0);
    /// A read will not block.
    pub const READABLE: Ready = Ready(1);
    /// A write will not block.
    pub const WRITABLE: Ready = Ready(2);
    /// An error is pending on the fd (`EPOLLERR`, `POLLERR`, `POLLNVAL`).
    pub const ERROR: Ready = Ready(4);
    /// The peer hung up (`EPOLLHUP`, `POLLHUP`).
    pub const HUP: Ready = Ready(8);
    /// The peer shut down its sending side (`EPOLLRDHUP`): a read will
    /// return EOF once the data before it is consumed. Reported only to
    /// edge-triggered interest, where it is the one signal that a short
    /// read did not see everything (data and FIN arriving together make a
    /// single edge).
    pub const READ_CLOSED: Ready = Ready(16);
    /// A send the loop made on the handler's behalf is over (backends
    /// whose capabilities say `sends`, i.e. io_uring): all its bytes were
    /// taken, or it failed, which the stream layer learns from the loop.
    /// Reported whatever the interest was (unless parked).
    pub const SENT: Ready = Ready(32);

    /// Whether `READABLE` is set.
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READABLE.0 != 0
    }
    /// Whether `WRITABLE` is set.
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITABLE.0 != 0
    }
    /// Whether `ERROR` is set.
    pub const fn is_error(self) -> bool {
        self.0 & Self::ERROR.0 != 0
    }
    /// Whether `HUP` is set.
    pub const fn is_hup(self) -> bool {
        self.0 & Self::HUP.0 != 0
    }
    /// Whether `SENT` is set.
    pub const fn is_sent(self) -> bool {
        self.0 & Self::SENT.0 != 0
    }
    /// Whether `READ_CLOSED` is set.
    pub const fn is_read_closed(self) -> bool {
        self.0 & Self::READ_CLOSED.0 != 0
    }
    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl BitOrAssign for Ready {
    fn bitor_assign(&mut self, rhs: Ready) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Ready {
    type Output = Ready;
    fn bitand(self, rhs: Ready) -> Ready {
        Ready(self.0 & rhs.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::READABLE, "READABLE"),
            (Self::WRITABLE, "WRITABLE"),
            (Self::ERROR, "ERROR"),
            (Self::HUP, "HUP"),
            (Self::READ_CLOSED, "READ_CLOSED"),
            (Self::SENT, "SENT"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("EMPTY")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliverable_always_includes_error_and_hup_unless_parked() {
        assert_eq!(Interest::NONE.deliverable(), Ready::EMPTY);
        let r = Interest::READ.deliverable();
        assert!(r.is_readable() && r.is_error() && r.is_hup() && !r.is_writable());
    }

    #[test]
    fn debug_names_every_bit() {
        assert_eq!(
            format!("{:?}", Ready::READABLE | Ready::HUP),
            "READABLE | HUP"
        );
        assert_eq!(format!("{:?}", Interest::BOTH), "READ | WRITE");
    }
}
