//! WebSocket through real sockets: Cyclone's client against Cyclone's
//! server, and a raw client for handshake details. On every backend.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::stream::bounded;
use common::ws::{RawClient, serve, url};
use cyclone::web::{Application, Request, WebSocketHandler};
use cyclone::websocket::{
    CloseCode, CloseInfo, ConnectOptions, DeflateConfig, Message, WebSocket, websocket_connect,
};

/// Echoes every message; compression accepted when `deflate`.
struct Echo {
    deflate: bool,
    closes: Rc<RefCell<Vec<CloseInfo>>>,
}

impl WebSocketHandler for Echo {
    fn compression_options(&self) -> Option<DeflateConfig> {
        self.deflate.then(DeflateConfig::default)
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message).await;
    }

    fn on_close(&mut self, info: &CloseInfo) {
        self.closes.borrow_mut().push(info.clone());
    }
}

fn echo_app(deflate: bool) -> (Application, Rc<RefCell<Vec<CloseInfo>>>) {
    let closes = Rc::new(RefCell::new(Vec::new()));
    let c = closes.clone();
    let app = Application::new().websocket("/ws", move || Echo {
        deflate,
        closes: c.clone(),
    });
    (app, closes)
}

/// Sends `message` to an echo server and returns the echo.
fn echo_once(lp: &cyclone::IOLoop, message: Message, compress: bool) -> Message {
    bounded(lp, async move {
        let (app, _) = echo_app(compress);
        let (_server, port) = serve(app);
        let mut opts = ConnectOptions::default();
        if compress {
            opts = opts.compression(DeflateConfig::default());
        }
        let mut c = websocket_connect(&url(port, "/ws"), opts).await.unwrap();
        c.write_message(message).await.unwrap();
        c.read_message().await.expect("an echo")
    })
}

/// Serves `app` and runs `client` on a thread with the port.
fn raw<T: Send + 'static>(
    lp: &cyclone::IOLoop,
    app: Application,
    client: impl FnOnce(u16) -> T + Send + 'static,
) -> T {
    common::http::with_server(lp, app, client)
}

struct Greeter;

impl WebSocketHandler for Greeter {
    async fn open(&mut self, ws: &WebSocket, req: &Request) {
        let _ = ws
            .write_message(format!("hello {}", req.path_arg(0).unwrap_or("?")))
            .await;
    }

    async fn on_message(&mut self, _ws: &WebSocket, _message: Message) {}
}

struct Picky;

impl WebSocketHandler for Picky {
    fn select_subprotocol(&self, offered: &[String]) -> Option<String> {
        offered.iter().find(|p| p.as_str() == "v2").cloned()
    }

    async fn on_message(&mut self, _ws: &WebSocket, _message: Message) {}
}

struct Liar;

impl WebSocketHandler for Liar {
    fn select_subprotocol(&self, _offered: &[String]) -> Option<String> {
        Some("never-offered".into())
    }

    async fn on_message(&mut self, _ws: &WebSocket, _message: Message) {}
}

struct Closer;

impl WebSocketHandler for Closer {
    async fn on_message(&mut self, ws: &WebSocket, _message: Message) {
        let _ = ws.close(CloseCode::POLICY, "bye").await;
    }
}

/// Closes from inside `on_message`, with a close timeout far past the
/// test's own limit: only a close that does not wait for it finishes.
struct PatientCloser {
    closed: Rc<RefCell<Vec<CloseInfo>>>,
}

impl WebSocketHandler for PatientCloser {
    fn options(&self) -> cyclone::websocket::WebSocketOptions {
        cyclone::websocket::WebSocketOptions::default()
            .close_timeout(std::time::Duration::from_secs(3600))
    }

    async fn on_message(&mut self, ws: &WebSocket, _message: Message) {
        let _ = ws.close(CloseCode::NORMAL, "done").await;
    }

    fn on_close(&mut self, info: &CloseInfo) {
        self.closed.borrow_mut().push(info.clone());
    }
}

struct Panicker;

impl WebSocketHandler for Panicker {
    async fn on_message(&mut self, _ws: &WebSocket, message: Message) {
        if message == Message::Text("boom".into()) {
            panic!("handler bug");
        }
    }
}

per_backend! {
    fn a_text_message_is_echoed_as_text(lp) {
        let m = Message::Text("héllo".into());
        assert_eq!(echo_once(&lp, m.clone(), false), m);
    }

    fn a_binary_message_is_echoed_as_binary(lp) {
        let m = Message::Binary(vec![0u8, 1, 2, 255].into());
        assert_eq!(echo_once(&lp, m.clone(), false), m);
    }

    fn a_one_mebibyte_message_is_echoed_whole(lp) {
        let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let m = Message::Binary(data.into());
        assert_eq!(echo_once(&lp, m.clone(), false), m);
    }

    fn an_empty_message_is_echoed(lp) {
        let m = Message::Text(String::new());
        assert_eq!(echo_once(&lp, m.clone(), false), m);
    }

    fn a_compressed_exchange_echoes_text_unchanged(lp) {
        let m = Message::Text("compress me ".repeat(1000));
        assert_eq!(echo_once(&lp, m.clone(), true), m);
    }

    fn the_server_accepts_permessage_deflate_when_its_handler_asks_for_it(lp) {
        let (app, _) = echo_app(true);
        let head = raw(&lp, app, |port| {
            RawClient::open(port, "/ws", "Sec-WebSocket-Extensions: permessage-deflate\r\n").head
        });
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.to_ascii_lowercase().contains("sec-websocket-extensions: permessage-deflate"), "{head}");
    }

    fn the_server_declines_permessage_deflate_by_default(lp) {
        let (app, _) = echo_app(false);
        let head = raw(&lp, app, |port| {
            RawClient::open(port, "/ws", "Sec-WebSocket-Extensions: permessage-deflate\r\n").head
        });
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "{head}");
    }

    fn open_runs_before_the_first_message_with_the_requests_path_arguments(lp) {
        let first = bounded(&lp, async {
            let (_server, port) = serve(Application::new().websocket(r"/greet/(\w+)", || Greeter));
            let mut c = websocket_connect(&url(port, "/greet/ada"), ConnectOptions::default())
                .await
                .unwrap();
            c.read_message().await
        });
        assert_eq!(first, Some(Message::Text("hello ada".into())));
    }

    fn the_handlers_subprotocol_choice_is_sent_and_seen_by_the_client(lp) {
        let chosen = bounded(&lp, async {
            let (_server, port) = serve(Application::new().websocket("/ws", || Picky));
            let opts = ConnectOptions::default().protocols(["v1", "v2"]);
            let c = websocket_connect(&url(port, "/ws"), opts).await.unwrap();
            c.protocol()
        });
        assert_eq!(chosen.as_deref(), Some("v2"));
    }

    fn a_subprotocol_the_client_did_not_offer_is_never_sent(lp) {
        let app = Application::new().websocket("/ws", || Liar);
        let head = raw(&lp, app, |port| {
            RawClient::open(port, "/ws", "Sec-WebSocket-Protocol: chat\r\n").head
        });
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"), "{head}");
    }

    fn the_clients_close_code_and_reason_reach_on_close(lp) {
        let (info, closes) = bounded(&lp, async {
            let (app, closes) = echo_app(false);
            let (_server, port) = serve(app);
            let mut c = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            let info = c.close(CloseCode::GOING_AWAY, "leaving").await.unwrap();
            common::until("on_close", || !closes.borrow().is_empty()).await;
            let closes = closes.borrow().clone();
            (info, closes)
        });
        // The server echoes the code (RFC 6455 §5.5.1).
        assert_eq!(info.code, CloseCode::GOING_AWAY);
        assert_eq!(closes[0].code, CloseCode::GOING_AWAY);
        assert_eq!(closes[0].reason, "leaving");
    }

    fn a_close_from_the_server_ends_the_clients_reads_with_its_code(lp) {
        let (read, info) = bounded(&lp, async {
            let (_server, port) = serve(Application::new().websocket("/ws", || Closer));
            let mut c = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            c.write_message("close please").await.unwrap();
            let read = c.read_message().await;
            (read, c.close_info().cloned())
        });
        assert_eq!(read, None);
        let info = info.expect("close info");
        assert_eq!((info.code, info.reason.as_str()), (CloseCode::POLICY, "bye"));
    }

    fn a_graceful_shutdown_closes_open_websockets_with_going_away(lp) {
        let (read, info, waited) = bounded(&lp, async {
            let (app, _) = echo_app(false);
            let (server, port) = serve(app);
            let mut c = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            c.write_message("open?").await.unwrap();
            assert!(c.read_message().await.is_some(), "the session runs");
            let t0 = std::time::Instant::now();
            let grace = std::time::Duration::from_secs(5);
            // The client reads on: the server's Close comes at once, not
            // at the end of the grace, and the client answers it.
            let (_, read) = futures::future::join(server.shutdown(grace), c.read_message()).await;
            (read, c.close_info().cloned(), t0.elapsed())
        });
        assert_eq!(read, None);
        let info = info.expect("a close from the server");
        assert_eq!(info.code, CloseCode::GOING_AWAY);
        assert!(waited < std::time::Duration::from_secs(5), "waited {waited:?}");
    }

    fn closing_inside_on_message_completes_without_waiting_for_the_close_timeout(lp) {
        let closed = bounded(&lp, async {
            let closed = Rc::new(RefCell::new(Vec::new()));
            let c = closed.clone();
            let app = Application::new().websocket("/ws", move || PatientCloser { closed: c.clone() });
            let (_server, port) = serve(app);
            let mut conn = websocket_connect(&url(port, "/ws"), ConnectOptions::default())
                .await
                .unwrap();
            conn.write_message("bye").await.unwrap();
            assert_eq!(conn.read_message().await, None);
            // The server's session ends once the client answered: its
            // reader runs again as soon as on_message returns.
            let seen = closed.clone();
            common::until("on_close", move || !seen.borrow().is_empty()).await;
            closed.borrow().clone()
        });
        assert_eq!(closed[0].code, CloseCode::NORMAL);
    }

    fn a_ping_is_answered_with_a_pong_carrying_its_payload(lp) {
        let (app, _) = echo_app(false);
        let (opcode, payload) = raw(&lp, app, |port| {
            let mut c = RawClient::open(port, "/ws", "");
            c.send(true, 0x9, b"are you there", true);
            let (_, opcode, payload) = c.read_frame();
            (opcode, payload)
        });
        assert_eq!(opcode, 0xA);
        assert_eq!(payload, b"are you there");
    }

    fn a_cross_origin_handshake_is_refused_with_403(lp) {
        let (app, _) = echo_app(false);
        let head = raw(&lp, app, |port| {
            RawClient::open(port, "/ws", "Origin: http://evil.example\r\n").head
        });
        assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    }

    fn a_same_origin_handshake_is_accepted(lp) {
        let (app, _) = echo_app(false);
        let head = raw(&lp, app, |port| {
            RawClient::open(port, "/ws", "Origin: http://127.0.0.1\r\n").head
        });
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    }

    fn a_wrong_version_gets_426_naming_version_13(lp) {
        let (app, _) = echo_app(false);
        let head = raw(&lp, app, |port| {
            let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            std::io::Write::write_all(&mut tcp, common::ws::handshake_request("/ws", "")
                .replace("Version: 13", "Version: 8").as_bytes()).unwrap();
            common::ws::read_head(&mut tcp)
        });
        assert!(head.starts_with("HTTP/1.1 426"), "{head}");
        assert!(head.to_ascii_lowercase().contains("sec-websocket-version: 13"), "{head}");
    }

    fn a_handshake_without_a_key_gets_400(lp) {
        let (app, _) = echo_app(false);
        let head = raw(&lp, app, |port| {
            let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let req = common::ws::handshake_request("/ws", "")
                .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
            std::io::Write::write_all(&mut tcp, req.as_bytes()).unwrap();
            common::ws::read_head(&mut tcp)
        });
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    }

    fn a_panicking_handler_closes_with_1011_and_the_server_goes_on(lp) {
        let app = Application::new().websocket("/ws", || Panicker);
        let (code, next) = raw(&lp, app, |port| {
            let mut c = RawClient::open(port, "/ws", "");
            c.send_text("boom");
            let code = c.read_close_code();
            let next = RawClient::open(port, "/ws", "").head;
            (code, next)
        });
        assert_eq!(code, Some(1011));
        assert!(next.starts_with("HTTP/1.1 101"), "{next}");
    }
}
