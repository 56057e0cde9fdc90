//! # Cyclone
//!
//! A Tornado-style asynchronous networking stack: one event loop per thread
//! ([`IOLoop`]) with pollers chosen at run time (epoll, io_uring, poll, select),
//! callbacks, timeouts and futures on the same loop.
//!
//! ```
//! use std::time::Duration;
//! use cyclone::IOLoop;
//!
//! let lp = IOLoop::new().unwrap();
//! let value = lp.run_sync(async {
//!     cyclone::sleep(Duration::from_millis(1)).await;
//!     "done"
//! });
//! assert_eq!(value, "done");
//! ```
#![warn(missing_docs)]

#[doc(hidden)]
pub mod fuzzing;
pub mod handover;
pub mod http1;
pub mod httpclient;
pub mod ioloop;
pub mod iostream;
pub mod netutil;
pub mod process;
pub mod proxy_protocol;
pub mod socket_activation;
pub mod stats;
pub(crate) mod sys;
pub mod tcpclient;
pub mod tcpserver;
pub mod testing;
pub mod tls;
pub mod web;
pub mod websocket;
pub mod workers;

pub use ioloop::{
    Async, Backend, Builder, Error, IOLoop, Interest, JoinError, JoinHandle, LoopStats,
    PeriodicCallback, Ready, Remote, Sleep, Timeout, TimeoutHandle, run_sync, sleep, sleep_until,
    spawn, timeout,
};
pub use iostream::{IOStream, StreamError};
pub use netutil::PeerAddr;
pub use tcpclient::TcpClient;
pub use tcpserver::TcpServer;
