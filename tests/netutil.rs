//! Listening sockets and the accept handler.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use common::{run_for, start_bounded};
use cyclone::netutil::{
    self, ACCEPTS_PER_WAKEUP, DEFAULT_BACKLOG, PeerAddr, add_accept_handler, bind_sockets,
};

#[test]
fn bind_sockets_on_localhost_with_port_0_shares_one_port() {
    let socks = bind_sockets(0, Some("localhost"), DEFAULT_BACKLOG, false).unwrap();
    let ports: Vec<u16> = socks
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    assert!(!ports.is_empty());
    assert!(ports.iter().all(|p| *p == ports[0] && *p != 0), "{ports:?}");
}

#[test]
fn bind_sockets_binds_ipv4_and_ipv6_on_every_interface() {
    let socks = bind_sockets(0, None, DEFAULT_BACKLOG, false).unwrap();
    let addrs: Vec<_> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
    assert!(addrs.iter().any(|a| a.is_ipv4()), "{addrs:?}");
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        assert!(addrs.iter().any(|a| a.is_ipv6()), "{addrs:?}");
    }
}

#[test]
fn bound_sockets_are_nonblocking_and_close_on_exec() {
    use std::os::fd::AsRawFd;
    let socks = bind_sockets(0, Some("127.0.0.1"), DEFAULT_BACKLOG, false).unwrap();
    let fd = socks[0].as_raw_fd();
    // SAFETY: fcntl queries on a live fd.
    let (fl, fdfl) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    };
    assert_ne!(fl & libc::O_NONBLOCK, 0);
    assert_ne!(fdfl & libc::FD_CLOEXEC, 0);
}

#[test]
fn reuse_port_lets_two_sockets_bind_one_port() {
    let a = bind_sockets(0, Some("127.0.0.1"), DEFAULT_BACKLOG, true).unwrap();
    let port = a[0].local_addr().unwrap().port();
    let b = bind_sockets(port, Some("127.0.0.1"), DEFAULT_BACKLOG, true).unwrap();
    assert_eq!(b[0].local_addr().unwrap().port(), port);
    assert!(bind_sockets(port, Some("127.0.0.1"), DEFAULT_BACKLOG, false).is_err());
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("cyclone-test-{}-{name}", std::process::id()))
}

#[test]
fn bind_unix_socket_replaces_a_stale_socket_file() {
    let path = temp_path("stale.sock");
    let first = netutil::bind_unix_socket(&path, 0o600, 16).unwrap();
    drop(first); // leaves the file behind, like a crashed server
    assert!(path.exists());
    let second = netutil::bind_unix_socket(&path, 0o600, 16).unwrap();
    std::os::unix::net::UnixStream::connect(&path).unwrap();
    drop(second);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bind_unix_socket_refuses_to_remove_a_regular_file() {
    let path = temp_path("regular.txt");
    std::fs::write(&path, b"precious").unwrap();
    let err = netutil::bind_unix_socket(&path, 0o600, 16).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bind_unix_socket_sets_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_path("mode.sock");
    let _l = netutil::bind_unix_socket(&path, 0o640, 16).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bind_unix_socket_supports_the_abstract_namespace() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("cyclone-test-{}", std::process::id());
    let _l = netutil::bind_unix_socket(format!("\0{name}"), 0o600, 16).unwrap();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
}

per_backend! {
    fn accept_handler_gets_each_connection_with_its_peer_address(lp) {
        let socks = bind_sockets(0, Some("127.0.0.1"), DEFAULT_BACKLOG, false).unwrap();
        let addr = socks[0].local_addr().unwrap();
        let peers = Rc::new(RefCell::new(Vec::new()));
        let (p, l) = (peers.clone(), lp.clone());
        let listener = socks.into_iter().next().unwrap();
        let _h = add_accept_handler(&lp, listener, move |fd: OwnedFd, peer| {
            p.borrow_mut().push((peer, fd));
            if p.borrow().len() == 3 {
                l.stop();
            }
        })
        .unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        start_bounded(&lp);
        let peers = peers.borrow();
        for (c, (peer, _)) in clients.iter().zip(peers.iter()) {
            assert!(matches!(peer, PeerAddr::Inet(a) if a.ip().is_loopback()));
            let _ = c;
        }
        let mut locals: Vec<_> = clients.iter().map(|c| PeerAddr::Inet(c.local_addr().unwrap())).collect();
        let mut got: Vec<_> = peers.iter().map(|(p, _)| p.clone()).collect();
        locals.sort_by_key(|p| p.to_string());
        got.sort_by_key(|p| p.to_string());
        assert_eq!(locals, got);
    }

    fn accepts_per_wakeup_are_bounded(lp) {
        let socks = bind_sockets(0, Some("127.0.0.1"), DEFAULT_BACKLOG, false).unwrap();
        let addr = socks[0].local_addr().unwrap();
        let n = ACCEPTS_PER_WAKEUP + 20;
        let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Every handshake is done before the loop looks.
        common::wait_until("every connection in the accept queue", || {
            common::waiting_to_be_accepted(addr.port()) == n
        });
        let turns = Rc::new(RefCell::new(Vec::new()));
        let (t, l) = (turns.clone(), lp.clone());
        let held = Rc::new(RefCell::new(Vec::new()));
        let h2 = held.clone();
        let _h = add_accept_handler(&lp, socks.into_iter().next().unwrap(), move |fd, _| {
            t.borrow_mut().push(l.stats().turns);
            h2.borrow_mut().push(fd);
        })
        .unwrap();
        run_for(&lp, Duration::from_millis(50));
        let turns = turns.borrow();
        assert_eq!(turns.len(), n);
        let first_turn = turns.iter().filter(|&&x| x == turns[0]).count();
        assert_eq!(first_turn, ACCEPTS_PER_WAKEUP, "one wake-up accepts at most the bound");
        drop(clients);
    }

    fn removed_accept_handler_never_accepts_again(lp) {
        let socks = bind_sockets(0, Some("127.0.0.1"), DEFAULT_BACKLOG, false).unwrap();
        let addr = socks[0].local_addr().unwrap();
        let _c1 = TcpStream::connect(addr).unwrap();
        let _c2 = TcpStream::connect(addr).unwrap();
        common::wait_until("both connections in the accept queue", || {
            common::waiting_to_be_accepted(addr.port()) == 2
        });
        let count = Rc::new(Cell::new(0));
        let slot: Rc<RefCell<Option<netutil::AcceptHandle>>> = Rc::default();
        let (c, s) = (count.clone(), slot.clone());
        // Tornado #2069: removing the handler from inside the callback, with
        // more connections queued, must not accept (or touch the fd) again.
        let h = add_accept_handler(&lp, socks.into_iter().next().unwrap(), move |_, _| {
            c.set(c.get() + 1);
            if let Some(h) = s.borrow().as_ref() {
                h.remove();
            }
        })
        .unwrap();
        *slot.borrow_mut() = Some(h.clone());
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(count.get(), 1);
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
        slot.borrow_mut().take();
    }

    fn paused_accept_handler_leaves_connections_in_the_backlog(lp) {
        let socks = bind_sockets(0, Some("127.0.0.1"), DEFAULT_BACKLOG, false).unwrap();
        let addr = socks[0].local_addr().unwrap();
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let h = add_accept_handler(&lp, socks.into_iter().next().unwrap(), move |_, _| c.set(c.get() + 1)).unwrap();
        h.pause();
        let mut client = TcpStream::connect(addr).unwrap();
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(count.get(), 0);
        h.resume();
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(count.get(), 1);
        // The connection was accepted (then dropped): the client sees EOF.
        let mut buf = [0u8; 1];
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(client.read(&mut buf).unwrap_or(0), 0);
        let _ = client.write(b"x");
    }
}

/// Regression tests for the accept handler: each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
        // Dropping the last AcceptHandle closed the listener but left it in the
        // handler table: the fd number could not be registered again, and
        // poll/select reported the closed fd on every turn (a spin).
        fn dropping_the_accept_handle_removes_its_handler(lp) {
            let before = lp.stats().handlers;
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let h = cyclone::netutil::add_accept_handler(&lp, l, |_, _| {}).unwrap();
            assert_eq!(lp.stats().handlers, before + 1);
            drop(h);
            assert_eq!(lp.stats().handlers, before);
        }
    }
}
