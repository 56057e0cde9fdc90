//! `RequestHandler` through real HTTP: verbs, 405 with Allow, HEAD,
//! `prepare` and `on_finish`, and panics in a handler or its body.
//! Raw `TcpStream` clients over 127.0.0.1, on every poller backend; the
//! test applications are in `common/web.rs`.

mod common;

use std::io::Read;

use common::http::{Conn, get, send, with_server};
use common::web::*;
use cyclone::http1::Response;
use cyclone::web::{Application, HttpError, Request};
use http::StatusCode;

per_backend! {
    fn handler_implemented_verbs_answer(lp) {
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/widget/7"), c.send("POST", "/widget/8", &[], b"")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "widget 7");
        assert_eq!(r[1].status, 201);
        assert_eq!(r[1].text(), "created 8");
    }

    fn handler_verb_not_in_methods_is_405_with_allow(lp) {
        let r = send(&lp, handler_app(), "PUT", "/widget/7", &[], b"x");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, POST, HEAD"));
    }

    fn handler_verb_listed_but_not_implemented_is_405_with_allow(lp) {
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.send("DELETE", "/ro", &[], b""), c.send("PATCH", "/ro", &[], b"")]
        });
        for r in &r {
            assert_eq!(r.status, 405);
            assert_eq!(r.header("allow"), Some("GET, DELETE, HEAD"));
        }
    }

    fn handler_head_gives_get_headers_without_body(lp) {
        // HEAD then GET on one connection: a body after the HEAD answer
        // would be read as the GET's status line.
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.send("HEAD", "/widget/12345", &[], b""), c.get("/widget/12345")]
        });
        assert_eq!(r[0].status, 200);
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].text(), "widget 12345");
        assert_eq!(r[0].header("content-length"), Some("12"));
        assert_eq!(r[0].header("content-type"), r[1].header("content-type"));
        assert_eq!(r[0].header("etag"), r[1].header("etag"));
    }

    fn handler_prepare_error_answers_instead_of_the_verb(lp) {
        VERB_CALLS.with(|c| *c.borrow_mut() = 0);
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.get_with("/widget/1", &[("X-Deny", "1")]), c.send("POST", "/widget/1", &[("X-Deny", "1")], b"")]
        });
        for r in &r {
            assert_eq!(r.status, 403);
            assert!(r.text().contains("403: Denied by prepare"), "{}", r.text());
        }
        assert_eq!(VERB_CALLS.with(|c| *c.borrow()), 0, "no verb method ran");
    }

    fn handler_on_finish_sees_the_status(lp) {
        FINISHED.with(|f| f.borrow_mut().clear());
        with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            c.get("/widget/1");
            c.get("/widget/missing");
            c.send("POST", "/widget/2", &[], b"");
            c.get_with("/widget/3", &[("X-Deny", "1")]);
        });
        assert_eq!(FINISHED.with(|f| f.borrow().clone()), [200, 404, 201, 403]);
    }

    fn handler_on_finish_runs_for_a_405_too(lp) {
        // "Runs after the answer is made, with its status": a verb the
        // handler does not list is answered (405) like any other error.
        FINISHED.with(|f| f.borrow_mut().clear());
        let r = send(&lp, handler_app(), "PUT", "/widget/1", &[], b"");
        assert_eq!(r.status, 405);
        assert_eq!(FINISHED.with(|f| f.borrow().clone()), [405]);
    }

    fn handler_on_finish_runs_after_a_panic_with_500(lp) {
        FINISHED.with(|f| f.borrow_mut().clear());
        let r = get(&lp, handler_app(), "/widget/boom");
        assert_eq!(r.status, 500);
        assert_eq!(FINISHED.with(|f| f.borrow().clone()), [500]);
    }

    fn a_panic_in_a_streamed_body_closes_that_connection_only(lp) {
        let app = Application::new()
            .route("/stream", |_r: Request| async {
                let mut n = 0;
                let pieces = std::iter::from_fn(move || {
                    n += 1;
                    match n {
                        1 => Some(Ok(bytes::Bytes::from_static(b"hello"))),
                        _ => panic!("piece boom"),
                    }
                });
                Response::new(StatusCode::OK).stream(cyclone::http1::BodyStream::new(Some(10), pieces))
            })
            .route("/ok", |_r: Request| async { "still here" });
        let mut got = None;
        let logs = common::capture_logs(|| {
            got = Some(with_server(&lp, app, |port| {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(common::HANG)).unwrap();
                std::io::Write::write_all(&mut c, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut raw = Vec::new();
                let _ = c.read_to_end(&mut raw); // ends: the server closed it
                (raw, Conn::open(port).get("/ok"))
            }));
        });
        let (raw, after) = got.unwrap();
        // Ended as a failed body, not as a crashed connection task.
        assert!(logs.contains("response body failed") && logs.contains("piece boom"), "{logs}");
        assert!(!logs.contains("uncaught panic"), "{logs}");
        let raw = String::from_utf8_lossy(&raw).to_string();
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
        assert!(raw.contains("Content-Length: 10\r\n") && raw.ends_with("\r\n\r\nhello"), "{raw}");
        assert_eq!(after.text(), "still here");
    }

    fn a_panic_in_into_response_is_a_500_page(lp) {
        struct Bad;
        impl cyclone::web::IntoResponse for Bad {
            fn into_response(self) -> Result<Response, HttpError> {
                panic!("into_response boom")
            }
        }
        let app = Application::new()
            .debug(true)
            .route("/", |_r: Request| async { Bad });
        let r = get(&lp, app, "/");
        assert_eq!(r.status, 500);
        assert!(r.text().contains("into_response boom"), "the web layer's page: {}", r.text());
    }

    fn a_panicking_handler_is_a_500_and_the_server_goes_on(lp) {
        let r = with_server(&lp, panic_app(), |port| {
            let mut c = Conn::open(port);
            let boom = c.get("/boom");
            let same = c.get("/ok");
            let fresh = Conn::open(port).get("/ok");
            [boom, same, fresh]
        });
        assert_eq!(r[0].status, 500);
        assert!(r[0].text().contains("500: Internal Server Error"), "{}", r[0].text());
        assert_eq!(r[1].status, 200, "same keep-alive connection");
        assert_eq!(r[1].text(), "still here");
        assert_eq!(r[2].status, 200, "new connection");
        assert_eq!(r[2].text(), "still here");
    }

    fn the_panic_message_is_shown_only_in_debug_mode(lp) {
        let quiet = get(&lp, panic_app(), "/boom");
        assert_eq!(quiet.status, 500);
        assert!(!quiet.text().contains("kaboom"), "{}", quiet.text());
        let debug = get(&lp, panic_app().debug(true), "/boom");
        assert_eq!(debug.status, 500);
        assert!(debug.text().contains("kaboom-7731 &lt;marker&gt;"), "{}", debug.text());
    }

    fn debug_mode_shows_the_panic_backtrace(lp) {
        let debug = get(&lp, panic_app().debug(true), "/boom");
        assert_eq!(debug.status, 500);
        // Every panic's stack passes through the standard library's
        // panicking machinery; a message alone would not name it.
        assert!(debug.text().contains("panicking"), "{}", debug.text());
    }
}
