//! Streaming both ways: HttpDelegate receives bodies in pieces,
//! ResponseWriter sends responses in pieces. Raw sockets, every backend.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cyclone::IOLoop;
use cyclone::http1::{
    HeadersAction, HttpConfig, HttpDelegate, HttpServer, Request, Response, ResponseWriter,
};
use http::{HeaderMap, StatusCode};

const LIMIT: Duration = Duration::from_secs(10);

/// What the delegates saw, shared with the test.
#[derive(Default, Debug)]
struct Log {
    pieces: Vec<usize>,
    body: Vec<u8>,
    closed_early: bool,
}

/// How a test delegate answers.
#[derive(Clone, Copy)]
enum Answer {
    /// Echo the body with a Content-Length.
    EchoSized,
    /// "hello " then "world", length unknown.
    Streamed,
    /// Never writes a head.
    Nothing,
    /// Announces 3 bytes and tries to write 5.
    TooLong,
    /// Refuses at headers_received with a 401.
    Refuse,
}

struct Recorder {
    log: Rc<RefCell<Log>>,
    answer: Answer,
    wrote_too_long: Rc<RefCell<Option<bool>>>,
}

impl HttpDelegate for Recorder {
    fn headers_received(&mut self, _req: &Request) -> HeadersAction {
        match self.answer {
            Answer::Refuse => {
                HeadersAction::Respond(Response::text("no").status(StatusCode::UNAUTHORIZED))
            }
            _ => HeadersAction::Continue,
        }
    }

    fn data_received(&mut self, chunk: Bytes) {
        let mut log = self.log.borrow_mut();
        log.pieces.push(chunk.len());
        log.body.extend_from_slice(&chunk);
    }

    fn finish(&mut self, mut w: ResponseWriter) -> Pin<Box<dyn Future<Output = ()>>> {
        let body = Bytes::from(self.log.borrow().body.clone());
        let answer = self.answer;
        let too_long = self.wrote_too_long.clone();
        Box::pin(async move {
            match answer {
                Answer::EchoSized => {
                    w.write_head(StatusCode::OK, &HeaderMap::new(), Some(body.len() as u64))
                        .unwrap();
                    w.write(body).await.unwrap();
                    w.finish().await.unwrap();
                }
                Answer::Streamed => {
                    w.write_head(StatusCode::OK, &HeaderMap::new(), None)
                        .unwrap();
                    w.write(&b"hello "[..]).await.unwrap();
                    cyclone::sleep(Duration::from_millis(2)).await;
                    w.write(&b"world"[..]).await.unwrap();
                    w.finish().await.unwrap();
                }
                Answer::Nothing | Answer::Refuse => {}
                Answer::TooLong => {
                    w.write_head(StatusCode::OK, &HeaderMap::new(), Some(3))
                        .unwrap();
                    *too_long.borrow_mut() = Some(w.write(&b"12345"[..]).await.is_err());
                }
            }
        })
    }

    fn on_connection_close(&mut self) {
        self.log.borrow_mut().closed_early = true;
    }
}

struct Run {
    got: Vec<u8>,
    log: Log,
    too_long: Option<bool>,
}

/// Serves with Recorder delegates; the client sends `raw` (then
/// half-closes unless `abort`, which drops the connection mid-request).
fn run(lp: &IOLoop, answer: Answer, raw: Vec<u8>, abort: bool) -> Run {
    let log: Rc<RefCell<Log>> = Rc::default();
    let too_long: Rc<RefCell<Option<bool>>> = Rc::default();
    let (l, t) = (log.clone(), too_long.clone());
    let got = lp
        .run_sync_timeout(
            async move {
                let config = HttpConfig {
                    max_body_size: 4 << 20,
                    ..HttpConfig::default()
                };
                let server = HttpServer::with_delegate(config, move || Recorder {
                    log: l.clone(),
                    answer,
                    wrote_too_long: t.clone(),
                });
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let client = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(LIMIT)).unwrap();
                    c.write_all(&raw).unwrap();
                    if abort {
                        // Leave once the server has read what was sent.
                        common::wait_until("the server to read the request", || {
                            common::unread_by_server(port) == 0
                        });
                        return Vec::new();
                    }
                    let _ = c.shutdown(Shutdown::Write);
                    let mut got = Vec::new();
                    let _ = c.read_to_end(&mut got);
                    got
                });
                common::thread_finished(&client).await;
                common::until("the server to notice the client left", || {
                    server.tcp().connection_count() == 0
                })
                .await;
                server.tcp().stop();
                client.join().unwrap()
            },
            LIMIT,
        )
        .unwrap();
    let log = std::mem::take(&mut *log.borrow_mut());
    let too_long = *too_long.borrow();
    Run { got, log, too_long }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn split_head(got: &[u8]) -> (String, Vec<u8>) {
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    (
        String::from_utf8_lossy(&got[..end]).to_string(),
        got[end + 4..].to_vec(),
    )
}

/// Decodes a chunked body (test helper; the server's decoder is separate).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..nl]).unwrap(), 16).unwrap();
        data = &data[nl + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

per_backend! {
    fn a_large_body_reaches_the_delegate_in_bounded_pieces(lp) {
        let body = pattern(1 << 20);
        let mut raw = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
        raw.extend_from_slice(&body);
        let r = run(&lp, Answer::EchoSized, raw, false);
        assert_eq!(r.log.body, body);
        assert!(r.log.pieces.len() > 1);
        assert!(r.log.pieces.iter().all(|&p| p <= 64 * 1024), "{:?}", r.log.pieces);
        let (head, echoed) = split_head(&r.got);
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        assert_eq!(echoed, body);
    }

    fn a_chunked_body_reaches_the_delegate_in_bounded_pieces(lp) {
        let big = pattern(100_000);
        let mut raw = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n".to_vec();
        raw.extend_from_slice(format!("{:x}\r\n", big.len()).as_bytes());
        raw.extend_from_slice(&big);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        let r = run(&lp, Answer::EchoSized, raw, false);
        let mut want = b"abc".to_vec();
        want.extend_from_slice(&big);
        assert_eq!(r.log.body, want);
        assert!(r.log.pieces.iter().all(|&p| p <= 64 * 1024), "{:?}", r.log.pieces);
    }

    fn a_response_of_unknown_length_is_chunked_on_http11(lp) {
        let r = run(&lp, Answer::Streamed, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), false);
        let (head, body) = split_head(&r.got);
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        assert!(!head.contains("Content-Length"), "{head}");
        assert_eq!(dechunk(&body), b"hello world");
    }

    fn a_response_of_unknown_length_ends_by_closing_on_http10(lp) {
        let r = run(&lp, Answer::Streamed, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n".to_vec(), false);
        let (head, body) = split_head(&r.got);
        assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
        assert!(head.contains("Connection: close") && !head.contains("chunked"), "{head}");
        assert_eq!(body, b"hello world", "one response, then the close ends it");
    }

    fn a_sized_streamed_response_keeps_the_connection_alive(lp) {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nyou".to_vec();
        let r = run(&lp, Answer::EchoSized, raw, false);
        let text = String::from_utf8_lossy(&r.got);
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    }

    fn the_delegate_hears_when_the_client_leaves_mid_body(lp) {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly ten..".to_vec();
        let r = run(&lp, Answer::EchoSized, raw, true);
        assert!(r.log.closed_early);
    }

    fn a_delegate_that_never_answers_gets_a_500_sent_for_it(lp) {
        let r = run(&lp, Answer::Nothing, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false);
        assert!(String::from_utf8_lossy(&r.got).starts_with("HTTP/1.1 500 "));
    }

    fn writing_past_the_announced_length_is_refused(lp) {
        let r = run(&lp, Answer::TooLong, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false);
        assert_eq!(r.too_long, Some(true));
    }

    fn a_delegate_refusing_at_the_head_answers_without_100_continue(lp) {
        let raw = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n".to_vec();
        let r = run(&lp, Answer::Refuse, raw, false);
        let text = String::from_utf8_lossy(&r.got);
        assert!(text.starts_with("HTTP/1.1 401 "), "{text}");
        assert!(!text.contains("100 Continue"), "{text}");
        assert!(text.contains("Connection: close"), "{text}");
        assert!(r.log.pieces.is_empty(), "the body was never read");
    }

    fn the_delegate_hears_of_a_body_cut_short_by_bad_framing(lp) {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n".to_vec();
        let r = run(&lp, Answer::EchoSized, raw, false);
        assert!(r.log.closed_early, "on_connection_close after a 400 mid-body");
        assert!(String::from_utf8_lossy(&r.got).starts_with("HTTP/1.1 400 "));
    }
}
