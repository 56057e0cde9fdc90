//! [`RemoteWebSocket`]: a `Send` handle that reaches a connection from
//! any thread through its loop's [`Remote`], so a frame is only ever
//! written by the loop's own thread. Writing a WebSocket from a thread in
//! Tornado corrupts frames (tornado#2871); here the `WebSocket` handle is
//! not `Send`, so the compiler refuses it, and this is the way across.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Weak;
use std::sync::atomic::{AtomicU64, Ordering};

use super::message::Message;
use super::socket::{Shared, WebSocket};
use crate::ioloop::{IOLoop, Remote};

/// Why a message from another thread did not reach the loop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the connection's loop has stopped")]
pub struct LoopGone;

/// A `Send + Sync` handle to a WebSocket connection, from
/// [`WebSocket::remote`]. Its methods post to the connection's loop and
/// return at once; a connection closed by the time the loop runs them
/// drops the message.
///
/// ```
/// use cyclone::websocket::RemoteWebSocket;
/// fn assert_send<T: Send + Sync>() {}
/// assert_send::<RemoteWebSocket>();
/// ```
#[derive(Clone, Debug)]
pub struct RemoteWebSocket {
    remote: Remote,
    id: u64,
}

/// Registry ids: unique in the process, never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The connections of this thread's loop that have a remote handle.
    /// Only those that asked are here, so an idle connection pays
    /// nothing; dead entries are swept when the map doubles.
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

#[derive(Default)]
struct Registry {
    live: HashMap<u64, Weak<Shared>>,
    /// The size after the last sweep.
    swept_at: usize,
}

impl WebSocket {
    /// A handle for other threads (`Send + Sync`, cheap to clone). Must be
    /// called on the connection's loop thread.
    pub fn remote(&self) -> RemoteWebSocket {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            if r.live.len() >= 2 * r.swept_at.max(16) {
                r.live.retain(|_, w| w.strong_count() > 0);
                r.swept_at = r.live.len();
            }
            r.live.insert(id, std::rc::Rc::downgrade(&self.shared));
        });
        RemoteWebSocket {
            remote: self.shared.stream.io_loop().remote(),
            id,
        }
    }
}

impl RemoteWebSocket {
    /// Sends `message` from any thread: encoded and queued on the loop's
    /// thread, in the order of the calls from this thread.
    pub fn write_message(&self, message: impl Into<Message>) -> Result<(), LoopGone> {
        let message = message.into();
        let id = self.id;
        self.remote
            .add_callback(move || {
                if let Some(ws) = lookup(id) {
                    // The sender is not waiting: a failure here is a closed
                    // connection, which its own reader reports.
                    drop(ws.write_message(message));
                }
            })
            .map_err(|_| LoopGone)
    }

    /// Starts the close handshake from any thread.
    pub fn close(&self, code: super::CloseCode, reason: &str) -> Result<(), LoopGone> {
        let id = self.id;
        let reason = reason.to_string();
        self.remote
            .add_callback(move || {
                if let Some(ws) = lookup(id) {
                    IOLoop::current().spawn(async move {
                        let _ = ws.close(code, &reason).await;
                    });
                }
            })
            .map_err(|_| LoopGone)
    }
}

fn lookup(id: u64) -> Option<WebSocket> {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let shared = r.live.get(&id)?.upgrade();
        if shared.is_none() {
            r.live.remove(&id);
        }
        shared.map(|shared| WebSocket { shared })
    })
}
