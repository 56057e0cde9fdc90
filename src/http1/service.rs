//! What answers requests ([`App`]: a handler or a delegate factory) and
//! what a server shares with its connections ([`Shared`]). Below both the
//! server and the connection, so neither has to name the other's file.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::config::HttpConfig;
use super::delegate::HttpDelegate;
use super::message::{Request, Response};
use crate::iostream::StreamCloser;

/// A whole-request handler, its future boxed (one allocation per request,
/// built in place by [`HttpServer::with_config`](super::HttpServer::with_config)).
pub(crate) type Handler = dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response>>>;

/// Makes the [`HttpDelegate`] of each streamed request.
pub(crate) type DelegateFactory = dyn Fn() -> Box<dyn HttpDelegate>;

/// What answers requests: a whole-request handler or streaming delegates.
#[derive(Clone)]
pub(crate) enum App {
    Simple(Rc<Handler>),
    Delegate(Rc<DelegateFactory>),
}

/// Where a server is in its life, as its connections see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connections persist as their clients ask.
    Serving,
    /// Shutting down: the request in flight is finished (its response says
    /// `Connection: close`), then the connection closes.
    Draining,
}

/// What the server and its connections share: one pointer per
/// connection, not one per field (an idle connection's every byte counts).
pub(crate) struct Shared {
    pub(crate) config: HttpConfig,
    /// `config.server_name`, shared with each streamed response's writer
    /// (made once, not copied per response).
    pub(crate) server_name: Rc<str>,
    pub(crate) app: App,
    /// Where the handler was registered (the server's constructor was
    /// called), for the blocking warning.
    pub(crate) site: &'static std::panic::Location<'static>,
    pub(crate) phase: Cell<Phase>,
    /// Connections waiting for their next request, closable at once.
    pub(crate) idle: RefCell<slab::Slab<StreamCloser>>,
    /// Upgraded connections' drain callbacks ([`Response::on_drain`]).
    pub(crate) upgraded: RefCell<slab::Slab<Rc<dyn Fn()>>>,
}

impl Shared {
    pub(crate) fn new(
        config: HttpConfig,
        app: App,
        site: &'static std::panic::Location<'static>,
    ) -> Shared {
        Shared {
            server_name: Rc::from(config.server_name.as_str()),
            config,
            app,
            site,
            phase: Cell::new(Phase::Serving),
            idle: RefCell::default(),
            upgraded: RefCell::default(),
        }
    }

    /// Whether the server is shutting down (checked once per request).
    #[inline]
    pub(crate) fn draining(&self) -> bool {
        self.phase.get() == Phase::Draining
    }
}
