//! WebSocket flow: keepalive pings and their timeout, a slow reader cut
//! off at the write buffer limit, the close timeout, backpressure from a
//! slow handler, sends from other threads, broadcast. On every backend.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::http::with_server;
use common::stream::bounded;
use common::ws::{RawClient, serve, url};
use cyclone::web::{Application, Request, WebSocketHandler};
use cyclone::websocket::{
    self, CloseCode, CloseInfo, ConnectOptions, DeflateConfig, Message, SendError, WebSocket,
    WebSocketOptions, websocket_connect,
};

/// Pings every 30 ms (a test's worth of patience, not a real interval).
const PING: Duration = Duration::from_millis(30);

struct Pinging {
    closes: Rc<RefCell<Vec<CloseInfo>>>,
    pongs: Rc<Cell<usize>>,
}

impl WebSocketHandler for Pinging {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default().ping_interval(PING)
    }

    async fn on_message(&mut self, _ws: &WebSocket, _m: Message) {}

    fn on_pong(&mut self, _ws: &WebSocket, _payload: &[u8]) {
        self.pongs.set(self.pongs.get() + 1);
    }

    fn on_close(&mut self, info: &CloseInfo) {
        self.closes.borrow_mut().push(info.clone());
    }
}

/// The close reports a handler heard.
type Closes = Rc<RefCell<Vec<CloseInfo>>>;

fn pinging() -> (Application, Closes, Rc<Cell<usize>>) {
    let closes = Rc::new(RefCell::new(Vec::new()));
    let pongs = Rc::new(Cell::new(0));
    let (c, p) = (closes.clone(), pongs.clone());
    let app = Application::new().websocket("/ws", move || Pinging {
        closes: c.clone(),
        pongs: p.clone(),
    });
    (app, closes, pongs)
}

/// Writes 64 KiB messages without awaiting them until a write fails, to
/// a peer that never reads; keeps what the failure was.
struct Flooder {
    failure: Rc<RefCell<Option<SendError>>>,
}

impl WebSocketHandler for Flooder {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default().max_write_buffer_size(256 << 10)
    }

    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        let chunk = bytes::Bytes::from(vec![7u8; 64 << 10]);
        // Bounded: 1 GiB of attempts would mean the limit never bit.
        for _ in 0..(1 << 14) {
            let write = ws.write_message(chunk.clone());
            if let Some(e) = write.error() {
                *self.failure.borrow_mut() = Some(e.clone());
                return;
            }
        }
    }

    async fn on_message(&mut self, _ws: &WebSocket, _m: Message) {}
}

/// Awaits each 64 KiB write to a peer that never reads, with a short
/// write timeout; notes how its writes and the connection end.
struct Stuck {
    failure: Rc<RefCell<Option<SendError>>>,
    closes: Closes,
}

impl WebSocketHandler for Stuck {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default().write_timeout(Duration::from_millis(100))
    }

    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        let chunk = bytes::Bytes::from(vec![7u8; 64 << 10]);
        // Bounded: the kernel's buffers fill long before 1 GiB.
        for _ in 0..(1 << 14) {
            if let Err(e) = ws.write_message(chunk.clone()).await {
                *self.failure.borrow_mut() = Some(e);
                return;
            }
        }
    }

    async fn on_message(&mut self, _ws: &WebSocket, _m: Message) {}

    fn on_close(&mut self, info: &CloseInfo) {
        self.closes.borrow_mut().push(info.clone());
    }
}

/// Closes at once with a short close timeout.
struct QuickCloser;

impl WebSocketHandler for QuickCloser {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default().close_timeout(Duration::from_millis(100))
    }

    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        let _ = ws.close(CloseCode::NORMAL, "").await;
    }

    async fn on_message(&mut self, _ws: &WebSocket, _m: Message) {}
}

/// Echoes after a pause, counting how many messages it holds at once.
struct Slow {
    busy: Rc<Cell<usize>>,
    most: Rc<Cell<usize>>,
}

impl WebSocketHandler for Slow {
    async fn on_message(&mut self, ws: &WebSocket, m: Message) {
        self.busy.set(self.busy.get() + 1);
        self.most.set(self.most.get().max(self.busy.get()));
        // The handler's own slow work (a database, say).
        cyclone::sleep(Duration::from_millis(5)).await;
        self.busy.set(self.busy.get() - 1);
        let _ = ws.write_message(m).await;
    }
}

/// Sends 100 numbered messages from another thread.
struct FromThread;

impl WebSocketHandler for FromThread {
    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        let remote = ws.remote();
        std::thread::spawn(move || {
            for i in 0..100 {
                remote.write_message(i.to_string()).unwrap();
            }
        });
    }

    async fn on_message(&mut self, _ws: &WebSocket, _m: Message) {}
}

thread_local! {
    static ROOM: RefCell<Vec<WebSocket>> = const { RefCell::new(Vec::new()) };
}

/// Joins the room; a message "go" is broadcast to everyone in it.
struct Member {
    deflate: bool,
}

impl WebSocketHandler for Member {
    fn compression_options(&self) -> Option<DeflateConfig> {
        self.deflate.then(|| DeflateConfig {
            own_no_context_takeover: true,
            ..DeflateConfig::default()
        })
    }

    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        ROOM.with(|r| r.borrow_mut().push(ws.clone()));
        let _ = ws.write_message("joined").await;
    }

    async fn on_message(&mut self, _ws: &WebSocket, _m: Message) {
        let news = Message::Text("news ".repeat(100));
        ROOM.with(|r| websocket::broadcast(r.borrow().iter(), &news));
    }
}

per_backend! {
    fn pings_are_sent_at_the_ping_interval(lp) {
        let (app, _, _) = pinging();
        let opcode = with_server(&lp, app, |port| {
            let mut c = RawClient::open(port, "/ws", "");
            c.read_frame().1
        });
        assert_eq!(opcode, 0x9);
    }

    fn a_peer_that_does_not_answer_pings_is_closed_with_1011(lp) {
        let (app, closes, _) = pinging();
        let (code, ended) = with_server(&lp, app, |port| {
            let mut c = RawClient::open(port, "/ws", "");
            // Reads (and ignores) the pings, answers nothing.
            let code = c.read_close_code();
            (code, c.sees_end())
        });
        assert_eq!((code, ended), (Some(1011), true));
        bounded(&lp, async move {
            common::until("on_close", || !closes.borrow().is_empty()).await;
            assert_eq!(closes.borrow()[0].code, CloseCode::ABNORMAL);
        });
    }

    fn the_client_answers_pings_and_the_connection_stays_open(lp) {
        let pongs = bounded(&lp, async {
            let (app, closes, pongs) = pinging();
            let (_server, port) = serve(app);
            let mut c = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            // Reading is what answers pings; several intervals pass.
            let reading = cyclone::spawn(async move { c.read_message().await });
            let p = pongs.clone();
            common::until("three pongs", move || p.get() >= 3).await;
            assert!(closes.borrow().is_empty());
            reading.abort();
            pongs.get()
        });
        assert!(pongs >= 3);
    }

    fn a_peer_that_stops_reading_is_cut_off_at_the_write_buffer_limit(lp) {
        let failure = Rc::new(RefCell::new(None));
        let f = failure.clone();
        let app = Application::new().websocket("/ws", move || Flooder { failure: f.clone() });
        with_server(&lp, app, |port| {
            let c = RawClient::open(port, "/ws", "");
            // Never reads; the server gives up on its own.
            // Reading would drain what the server queued; the socket's
            // state says whether the server reset the connection.
            common::wait_until("the server to cut the connection", || server_closed(&c.tcp));
        });
        assert_eq!(*failure.borrow(), Some(SendError::SlowReader));
    }

    fn a_peer_that_takes_nothing_for_the_write_timeout_is_cut_off(lp) {
        let failure = Rc::new(RefCell::new(None));
        let closes: Closes = Rc::new(RefCell::new(Vec::new()));
        let (f, c) = (failure.clone(), closes.clone());
        let app = Application::new()
            .websocket("/ws", move || Stuck { failure: f.clone(), closes: c.clone() });
        with_server(&lp, app, |port| {
            let c = RawClient::open(port, "/ws", "");
            // Never reads: the awaited write must end by the timeout.
            common::wait_until("the server to cut the connection", || server_closed(&c.tcp));
        });
        assert!(matches!(*failure.borrow(), Some(SendError::Closed)), "{:?}", failure.borrow());
        bounded(&lp, async move {
            common::until("on_close", || !closes.borrow().is_empty()).await;
            assert_eq!(closes.borrow()[0].code, CloseCode::ABNORMAL);
        });
    }

    fn a_peer_that_never_answers_the_close_is_dropped_after_the_close_timeout(lp) {
        let app = Application::new().websocket("/ws", || QuickCloser);
        let (code, ended) = with_server(&lp, app, |port| {
            let mut c = RawClient::open(port, "/ws", "");
            let code = c.read_close_code();
            // No answer: the server must drop us by itself.
            (code, c.sees_end())
        });
        assert_eq!((code, ended), (Some(1000), true));
    }

    fn the_next_message_is_not_read_until_on_message_returns(lp) {
        let most = bounded(&lp, async {
            let (busy, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
            let m = most.clone();
            let app = Application::new().websocket("/ws", move || Slow { busy: busy.clone(), most: m.clone() });
            let (_server, port) = serve(app);
            let mut c = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            for i in 0..5 {
                drop(c.write_message(i.to_string()));
            }
            for i in 0..5 {
                assert_eq!(c.read_message().await, Some(Message::Text(i.to_string())));
            }
            most.get()
        });
        assert_eq!(most, 1);
    }

    fn messages_sent_from_another_thread_arrive_whole_and_in_order(lp) {
        let got = bounded(&lp, async {
            let (_server, port) = serve(Application::new().websocket("/ws", || FromThread));
            let mut c = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..100 {
                match c.read_message().await {
                    Some(Message::Text(t)) => got.push(t.parse::<u32>().unwrap()),
                    other => panic!("unexpected {other:?}"),
                }
            }
            got
        });
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    fn a_broadcast_reaches_every_connection_compressed_or_not(lp) {
        let received = bounded(&lp, async {
            ROOM.with(|r| r.borrow_mut().clear());
            let app = Application::new()
                .websocket("/plain", || Member { deflate: false })
                .websocket("/deflate", || Member { deflate: true });
            let (_server, port) = serve(app);
            let mut clients = Vec::new();
            for i in 0..12 {
                let (path, opts) = match i % 3 {
                    0 => ("/plain", ConnectOptions::default()),
                    1 => ("/deflate", ConnectOptions::default().compression(DeflateConfig::default())),
                    _ => ("/deflate", ConnectOptions::default()),
                };
                let mut c = websocket_connect(&url(port, path), opts).await.unwrap();
                assert_eq!(c.read_message().await, Some(Message::Text("joined".into())));
                clients.push(c);
            }
            clients[0].write_message("go").await.unwrap();
            let mut received = Vec::new();
            for c in &mut clients {
                received.push(c.read_message().await);
            }
            ROOM.with(|r| r.borrow_mut().clear());
            received
        });
        let news = Some(Message::Text("news ".repeat(100)));
        assert!(received.iter().all(|m| *m == news), "{received:?}");
        assert_eq!(received.len(), 12);
    }
}

/// Whether the server has ended `tcp`: TCP_INFO's state is CLOSE_WAIT
/// (its FIN arrived) or CLOSE (it reset the connection).
fn server_closed(tcp: &std::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain integers, for which all zeros is valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a valid tcp_info of `len` bytes for the kernel to fill.
    let rc = unsafe {
        libc::getsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // 8: TCP_CLOSE_WAIT, 7: TCP_CLOSE (reset).
    rc == 0 && (info.tcpi_state == 8 || info.tcpi_state == 7)
}
