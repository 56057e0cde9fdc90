//! Heap allocations per request on the hello-world path, counted by a
//! global allocator, so the steady-state figure cannot creep up unnoticed.
//!
//! Only allocations made on the server's thread count (the client thread
//! allocates freely); the window opens after a warm-up, so one-time costs
//! (the connection, first buffers) stay out of the figure.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cyclone::http1::{HttpServer, Request, Response};
use cyclone::web::{Application, Request as WebRequest, WebSocketHandler};
use cyclone::websocket::{Message, WebSocket};

struct Counting;

static SERVER_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread that runs the server.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Heap bytes the server's thread holds (allocated minus freed there).
static SERVER_LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            SERVER_LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn counted() -> bool {
    // try_with: the thread-local may be gone while a thread exits.
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

/// An allocation (or a reallocation's growth) of `bytes` on this thread.
fn count(bytes: i64) {
    if counted() {
        SERVER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        SERVER_LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// One measurement at a time: the counters are shared by all threads
/// that count, and the test harness runs tests in parallel.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The budgets for one hello-world request, reallocations included (the
/// issue asked for at most 4). The HTTP server makes one allocation per
/// request (the handler's boxed future: request and response header maps
/// are recycled, reads land in a shared arena) and one per wake-up (the
/// boxed state of serving what arrived, so that an idle connection holds
/// a small future): 2 for a keep-alive request, 1 + 1/16 pipelined 16
/// deep. The tenth on top covers what is amortised over many requests (a
/// fresh 32 KiB read arena every ~800 requests). A new allocation per
/// request anywhere on the path fails these.
const KEEP_ALIVE_PER_REQUEST: f64 = 2.1;
const PIPELINED_PER_REQUEST: f64 = 1.2;

/// Requests before the window opens, and inside it: enough that the
/// window's edges (a response still being finished when the count is read)
/// are lost in the division.
const WARM_UP: usize = 200;
const MEASURED: usize = 2_000;

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8888\r\n\r\n";

async fn hello(_req: Request) -> Response {
    Response::text("Hello, World!")
}

/// The HTTP server alone, answering every request with hello.
fn http_server() -> HttpServer {
    HttpServer::new(hello)
}

/// The web layer: the route `cyclone serve` answers `/hello` with, plus
/// a route before it, an ETag and the access log's checks.
fn web_app() -> HttpServer {
    Application::new()
        .route("/", |_req: WebRequest| async { Response::html("home") })
        .route("/hello", |_req: WebRequest| async {
            Response::text("Hello, World!")
        })
        .into_server()
}

/// The web layer's budget: the HTTP server's two, the ETag value (the
/// handler's boxed future also holds the routing's end), plus the same
/// tenth for what is amortised.
const WEB_PER_REQUEST: f64 = 3.1;

/// Sends `batches` writes of `depth` pipelined requests, reading all their
/// responses before the next write.
fn client(c: &mut TcpStream, batches: usize, depth: usize) {
    let batch: Vec<u8> = REQUEST.repeat(depth);
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..batches {
        c.write_all(&batch).unwrap();
        let mut seen = 0;
        while seen < depth {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection");
            seen += buf[..n]
                .windows(13)
                .filter(|w| w == b"Hello, World!")
                .count();
        }
    }
}

thread_local! {
    /// The server being measured, for [`turn_check`] on the loop thread.
    static SERVER: std::cell::RefCell<Option<HttpServer>> = const { std::cell::RefCell::new(None) };
}

/// How many connections [`settle`] waits for the server to hold.
static EXPECTED: AtomicUsize = AtomicUsize::new(0);
/// The server's heap at the last [`turn_check`].
static LAST_LIVE: AtomicI64 = AtomicI64::new(0);
/// Whether the last [`turn_check`] found the server settled.
static SETTLED: AtomicBool = AtomicBool::new(false);
/// How many [`turn_check`]s have run.
static TURNS: AtomicU64 = AtomicU64::new(0);

/// Runs on the loop, queued from the client thread: the server is settled
/// when it holds [`EXPECTED`] connections and a whole loop turn (since the
/// last check) changed nothing on its heap. A plain `fn`, so that queueing
/// it allocates nothing on either side.
fn turn_check() {
    let connections = SERVER.with(|s| s.borrow().as_ref().map(|s| s.tcp().connection_count()));
    let live = SERVER_LIVE_BYTES.load(Ordering::SeqCst);
    let quiet = LAST_LIVE.swap(live, Ordering::SeqCst) == live;
    let settled = quiet && connections == Some(EXPECTED.load(Ordering::SeqCst));
    SETTLED.store(settled, Ordering::SeqCst);
    TURNS.fetch_add(1, Ordering::SeqCst);
}

/// Waits (from the client thread) until the server holds `connections`
/// connections and has nothing left to do for them: its heap did not move
/// across a loop turn.
fn settle(remote: &cyclone::Remote, connections: usize) {
    EXPECTED.store(connections, Ordering::SeqCst);
    common::wait_until(
        &format!("the server to settle with {connections} connections"),
        || {
            let turns = TURNS.load(Ordering::SeqCst);
            remote.add_callback(turn_check).expect("the loop runs");
            common::wait_until("a loop turn", || TURNS.load(Ordering::SeqCst) > turns);
            SETTLED.load(Ordering::SeqCst)
        },
    );
}

/// Runs `make_server()` on `lp`, counting the server thread's heap use,
/// while `measure` runs on a client thread with the port and returns the
/// figure. The client keeps what it returns in `.1` (open connections)
/// until the figure is read.
fn measured<K: Send + 'static>(
    lp: &cyclone::IOLoop,
    make_server: fn() -> HttpServer,
    measure: impl FnOnce(u16, cyclone::Remote) -> (f64, K) + Send + 'static,
) -> f64 {
    let remote = lp.remote();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    COUNTED.with(|c| c.set(true));
    let figure = lp
        .run_sync_timeout(
            async move {
                let server = make_server();
                SERVER.with(|s| *s.borrow_mut() = Some(server.clone()));
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                // Channels, not `thread_finished`: its polling timer would
                // allocate on the server's thread inside the window.
                let (tx, rx) = futures::channel::oneshot::channel();
                let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
                let client = std::thread::spawn(move || {
                    let (figure, kept) = measure(port, remote);
                    let _ = tx.send(figure);
                    let _ = done_rx.recv();
                    drop(kept);
                });
                let figure = rx.await.expect("the client thread reports");
                let _ = done_tx.send(());
                server.tcp().stop();
                client.join().unwrap();
                SERVER.with(|s| s.borrow_mut().take());
                figure
            },
            Duration::from_secs(20),
        )
        .expect("the client finished");
    COUNTED.with(|c| c.set(false));
    figure
}

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(common::HANG)).unwrap();
    c
}

/// Server allocations per request while a client sends requests `depth` at
/// a time over one keep-alive connection.
fn allocations_per_request(
    lp: &cyclone::IOLoop,
    depth: usize,
    make_server: fn() -> HttpServer,
) -> f64 {
    measured(lp, make_server, move |port, _| {
        let mut c = connect(port);
        client(&mut c, WARM_UP / depth, depth);
        let before = SERVER_ALLOCS.load(Ordering::Relaxed);
        client(&mut c, MEASURED / depth, depth);
        let after = SERVER_ALLOCS.load(Ordering::Relaxed);
        let per_request = (after - before) as f64 / (MEASURED / depth * depth) as f64;
        (per_request, c)
    })
}

/// `count` keep-alive connections that have each had one answer.
fn answered(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut c = connect(port);
            client(&mut c, 1, 1);
            c
        })
        .collect()
}

/// Heap bytes the server holds per idle connection: `n` connections made
/// by `open` (keep-alive ones that had an answer, upgraded WebSockets)
/// that stay open.
fn idle_bytes_per_connection(
    lp: &cyclone::IOLoop,
    n: usize,
    make_server: fn() -> HttpServer,
    open: fn(u16, usize) -> Vec<TcpStream>,
) -> f64 {
    measured(lp, make_server, move |port, remote| {
        // Warm-up: the loop's tables and pools reach their size.
        drop(open(port, 64));
        settle(&remote, 0);
        let before = SERVER_LIVE_BYTES.load(Ordering::Relaxed);
        let conns = open(port, n);
        // The last answer is read once written; wait for the server to
        // settle into waiting on every connection.
        settle(&remote, n);
        let after = SERVER_LIVE_BYTES.load(Ordering::Relaxed);
        ((after - before) as f64 / n as f64, conns)
    })
}

/// The heap an idle keep-alive connection may hold: today's figure (about
/// 990-1080 bytes in this debug build, by backend and by how the loop's
/// tables have grown from run to run: the connection's future, its
/// stream, the task, its timer and its share of the loop's tables; the
/// open-connection count for the metrics and the first-request flag a
/// drain needs added a word to the future) with a little room, so that
/// it cannot creep up unnoticed. Counted without the allocator's own
/// overhead; issue 6's 1 KiB of RSS is measured by `bench/idle_rss.sh`.
const IDLE_CONNECTION_BYTES: f64 = 1100.0;

/// Heap bytes the server holds per connection whose head arrived in two
/// pieces and is not complete yet.
fn split_head_bytes_per_connection(
    lp: &cyclone::IOLoop,
    n: usize,
    make_server: fn() -> HttpServer,
) -> f64 {
    measured(lp, make_server, move |port, remote| {
        drop(answered(port, 16));
        settle(&remote, 0);
        let before = SERVER_LIVE_BYTES.load(Ordering::Relaxed);
        let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(port)).collect();
        for c in &mut conns {
            c.write_all(b"GET /hello HTTP/1.1\r\n").unwrap();
        }
        // Each piece is read by the server before the next is sent.
        let server_read_it = || common::unread_by_server(port) == 0;
        common::wait_until("the server to read the heads' first pieces", server_read_it);
        settle(&remote, n);
        for c in &mut conns {
            c.write_all(b"Host: x\r\n").unwrap();
        }
        common::wait_until(
            "the server to read the heads' second pieces",
            server_read_it,
        );
        settle(&remote, n);
        let after = SERVER_LIVE_BYTES.load(Ordering::Relaxed);
        ((after - before) as f64 / n as f64, conns)
    })
}

/// A connection waiting for the rest of its head: the idle connection's
/// memory, the boxed state of serving it, the boxed wait for the rest and
/// a buffer the size of what arrived (2.2-2.3 KB in all in this debug
/// build). A head arriving in pieces must not
/// cost a whole read arena per connection.
const SPLIT_HEAD_BYTES: f64 = 4096.0;

/// The demo's WebSocket echo, as `cyclone serve`'s `/ws/echo` without
/// compression.
struct WsEcho;

impl WebSocketHandler for WsEcho {
    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message).await;
    }
}

fn ws_app() -> HttpServer {
    Application::new().websocket("/ws", || WsEcho).into_server()
}

const WS_HANDSHAKE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// `count` WebSocket connections, upgraded and left idle.
fn upgraded(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut c = connect(port);
            c.write_all(WS_HANDSHAKE).unwrap();
            let head = common::ws::read_head(&mut c);
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            c
        })
        .collect()
}

/// Server allocations per echoed 20-byte binary message, one in flight.
fn allocations_per_ws_message(lp: &cyclone::IOLoop) -> f64 {
    measured(lp, ws_app, move |port, _| {
        let mut c = upgraded(port, 1).remove(0);
        let frame = common::ws::frame(true, 0, 0x2, &[7u8; 20], true);
        let mut echo = [0u8; 22];
        let mut exchange = |c: &mut TcpStream, n: usize| {
            for _ in 0..n {
                c.write_all(&frame).unwrap();
                c.read_exact(&mut echo).unwrap();
            }
        };
        exchange(&mut c, WARM_UP);
        let before = SERVER_ALLOCS.load(Ordering::Relaxed);
        exchange(&mut c, MEASURED);
        let after = SERVER_ALLOCS.load(Ordering::Relaxed);
        ((after - before) as f64 / MEASURED as f64, c)
    })
}

/// The heap an idle WebSocket connection may hold: today's figure in
/// this debug build (1,750-1,860 bytes by backend: the idle HTTP
/// connection's, plus the session's future, the reader and the send
/// half, and about 150 bytes for the server's drain to reach it: the
/// socket's slot, its 1001 callback, the registration and the boxed
/// upgraded-protocol future; the README's WebSocket section gives the
/// release build's RSS) with a little room.
const IDLE_WEBSOCKET_BYTES: f64 = 1900.0;

/// Allocations per echoed message: the echo's frame (header and payload
/// in one buffer, sized exactly so that freezing it allocates nothing);
/// the message itself is a view of the read arena, and the tenth covers
/// the arena's own renewal.
const WS_PER_MESSAGE: f64 = 1.1;

per_backend! {
    fn a_head_arriving_in_pieces_holds_a_buffer_its_size(lp) {
        let n = split_head_bytes_per_connection(&lp, 200, web_app);
        println!("heap bytes per connection with half a head: {n:.0}");
        assert!(n <= SPLIT_HEAD_BYTES, "{n:.0} bytes per connection (budget {SPLIT_HEAD_BYTES})");
    }

    fn an_idle_keep_alive_connection_holds_little_memory(lp) {
        let n = idle_bytes_per_connection(&lp, 300, web_app, answered);
        println!("heap bytes per idle connection: {n:.0}");
        assert!(n <= IDLE_CONNECTION_BYTES, "{n:.0} bytes per idle connection (budget {IDLE_CONNECTION_BYTES})");
    }

    fn a_keep_alive_hello_world_request_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_request(&lp, 1, http_server);
        println!("allocations per keep-alive request: {n:.2}");
        assert!(n <= KEEP_ALIVE_PER_REQUEST, "{n:.2} allocations per request (budget {KEEP_ALIVE_PER_REQUEST})");
    }

    fn a_pipelined_hello_world_request_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_request(&lp, 16, http_server);
        println!("allocations per pipelined request: {n:.2}");
        assert!(n <= PIPELINED_PER_REQUEST, "{n:.2} allocations per request (budget {PIPELINED_PER_REQUEST})");
    }

    fn a_web_application_hello_request_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_request(&lp, 1, web_app);
        println!("allocations per web keep-alive request: {n:.2}");
        assert!(n <= WEB_PER_REQUEST, "{n:.2} allocations per request (budget {WEB_PER_REQUEST})");
    }

    fn an_idle_websocket_connection_holds_little_memory(lp) {
        let n = idle_bytes_per_connection(&lp, 300, ws_app, upgraded);
        println!("heap bytes per idle websocket connection: {n:.0}");
        assert!(n <= IDLE_WEBSOCKET_BYTES, "{n:.0} bytes per idle websocket connection (budget {IDLE_WEBSOCKET_BYTES})");
    }

    fn an_echoed_websocket_message_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_ws_message(&lp);
        println!("allocations per echoed websocket message: {n:.2}");
        assert!(n <= WS_PER_MESSAGE, "{n:.2} allocations per message (budget {WS_PER_MESSAGE})");
    }
}
