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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cyclone::http1::{HttpServer, Request, Response};
use cyclone::web::{Application, Request as WebRequest};

struct Counting;

static SERVER_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread that runs the server.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    // try_with: the thread-local may be gone while a thread exits.
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        SERVER_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The budget for one hello-world request, reallocations included. The
/// issue asked for at most 4; the path makes exactly one (the handler's
/// boxed future: request and response header maps are recycled, reads
/// land in a shared arena), and the tenth on top covers what is amortised
/// over many requests (a fresh 32 KiB read arena every ~800 requests).
/// A new allocation per request anywhere on the path fails this.
const PER_REQUEST: f64 = 1.1;

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

/// The web layer's budget: the handler's one boxed future (holding the
/// routing's end as well), the ETag value, plus the same tenth for what
/// is amortised.
const WEB_PER_REQUEST: f64 = 2.1;

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

/// Server allocations per request while a client sends requests `depth` at
/// a time over one keep-alive connection.
fn allocations_per_request(
    lp: &cyclone::IOLoop,
    depth: usize,
    make_server: fn() -> HttpServer,
) -> f64 {
    // One measurement at a time: the counter is shared by all threads
    // that count, and the test harness runs tests in parallel.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    COUNTED.with(|c| c.set(true));
    let per_request = lp
        .run_sync_timeout(
            async move {
                let server = make_server();
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                // A channel, not `thread_finished`: its polling timer would
                // allocate on the server's thread inside the window.
                let (tx, rx) = futures::channel::oneshot::channel();
                let client = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(common::HANG)).unwrap();
                    client(&mut c, WARM_UP / depth, depth);
                    let before = SERVER_ALLOCS.load(Ordering::Relaxed);
                    client(&mut c, MEASURED / depth, depth);
                    let after = SERVER_ALLOCS.load(Ordering::Relaxed);
                    let _ = tx.send((after - before) as f64 / (MEASURED / depth * depth) as f64);
                });
                let per_request = rx.await.expect("the client thread reports");
                server.tcp().stop();
                client.join().unwrap();
                per_request
            },
            Duration::from_secs(20),
        )
        .expect("the client finished");
    COUNTED.with(|c| c.set(false));
    per_request
}

per_backend! {
    fn a_keep_alive_hello_world_request_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_request(&lp, 1, http_server);
        println!("allocations per keep-alive request: {n:.2}");
        assert!(n <= PER_REQUEST, "{n:.2} allocations per request (budget {PER_REQUEST})");
    }

    fn a_pipelined_hello_world_request_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_request(&lp, 16, http_server);
        println!("allocations per pipelined request: {n:.2}");
        assert!(n <= PER_REQUEST, "{n:.2} allocations per request (budget {PER_REQUEST})");
    }

    fn a_web_application_hello_request_stays_within_the_allocation_budget(lp) {
        let n = allocations_per_request(&lp, 1, web_app);
        println!("allocations per web keep-alive request: {n:.2}");
        assert!(n <= WEB_PER_REQUEST, "{n:.2} allocations per request (budget {WEB_PER_REQUEST})");
    }
}
