//! Conditional responses and compression through real HTTP: automatic
//! ETags, If-None-Match and 304, gzip for clients that accept it.
//! Raw `TcpStream` clients over 127.0.0.1, on every poller backend; the
//! test applications are in `common/web.rs`.

mod common;

use std::io::Read;

use common::http::{Conn, get, send, with_server};
use common::web::*;
use cyclone::http1::Response;
use cyclone::web::{Application, Request};
use http::Method;
use http::header::HeaderValue;

per_backend! {
    fn get_200_gets_an_etag(lp) {
        let r = get(&lp, etag_app(), "/etag");
        assert_eq!(r.status, 200);
        let etag = r.header("etag").expect("an ETag");
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    }

    fn matching_if_none_match_is_304_with_empty_body(lp) {
        let r = with_server(&lp, etag_app(), |port| {
            let mut c = Conn::open(port);
            let first = c.get("/etag");
            let etag = first.header("etag").unwrap().to_string();
            let again = c.get_with("/etag", &[("If-None-Match", &etag)]);
            let weak = c.get_with("/etag", &[("If-None-Match", &format!("\"zzz\", W/{etag}"))]);
            // The connection is still in step after the 304s.
            let after = c.get("/etag");
            (etag, again, weak, after)
        });
        assert_eq!(r.1.status, 304);
        assert!(r.1.body.is_empty());
        assert_eq!(r.1.header("etag"), Some(r.0.as_str()));
        assert!(r.1.header("content-length").is_none(), "{:?}", r.1.headers);
        assert_eq!(r.2.status, 304, "weak comparison in a list");
        assert_eq!(r.3.status, 200);
        assert_eq!(r.3.text(), "tagged body");
    }

    fn non_matching_if_none_match_is_200(lp) {
        let r = send(&lp, etag_app(), "GET", "/etag", &[("If-None-Match", "\"not-it\"")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "tagged body");
    }

    fn post_responses_get_no_automatic_etag(lp) {
        let r = send(&lp, etag_app(), "POST", "/etag", &[], b"");
        assert_eq!(r.status, 200);
        assert!(r.header("etag").is_none());
    }

    fn a_head_answered_with_its_own_length_gets_no_empty_body_etag(lp) {
        let app = Application::new().route("/h", |req: Request| async move {
            if req.method == Method::HEAD {
                Response::text("").set_header(http::header::CONTENT_LENGTH, HeaderValue::from_static("5"))
            } else {
                Response::text("hello")
            }
        });
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            [c.send("HEAD", "/h", &[], b""), c.get("/h")]
        });
        assert_eq!(r[0].header("content-length"), Some("5"));
        assert_eq!(r[0].header("etag"), None, "no tag of the empty body");
        assert!(r[1].header("etag").is_some());
    }

    fn large_text_is_gzipped_for_clients_that_accept_it(lp) {
        let r = send(&lp, gzip_app(), "GET", "/big", &[("Accept-Encoding", "deflate, gzip")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.headers_all("vary").iter().any(|v| v.contains("Accept-Encoding")), "{:?}", r.headers);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut plain).unwrap();
        assert_eq!(plain, big_text());
        assert!(r.body.len() < plain.len());
    }

    fn without_accept_encoding_the_body_is_identity(lp) {
        let r = with_server(&lp, gzip_app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/big"), c.get_with("/big", &[("Accept-Encoding", "gzip;q=0, identity")])]
        });
        for r in &r {
            assert_eq!(r.status, 200);
            assert!(r.header("content-encoding").is_none());
            assert_eq!(r.text(), big_text());
        }
    }

    fn a_small_body_is_not_compressed(lp) {
        let r = send(&lp, gzip_app(), "GET", "/small", &[("Accept-Encoding", "gzip")], b"");
        assert!(r.header("content-encoding").is_none());
        assert_eq!(r.text(), "tiny body");
    }

    fn head_matches_get_under_compression(lp) {
        let r = with_server(&lp, gzip_app(), |port| {
            let mut c = Conn::open(port);
            let ae = [("Accept-Encoding", "gzip")];
            [c.send("HEAD", "/big", &ae, b""), c.send("GET", "/big", &ae, b"")]
        });
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].header("content-encoding"), Some("gzip"));
        for h in ["content-encoding", "content-length", "vary", "etag"] {
            assert_eq!(r[0].header(h), r[1].header(h), "{h}");
        }
    }

    fn a_binary_content_type_is_not_compressed(lp) {
        let r = send(&lp, gzip_app(), "GET", "/png", &[("Accept-Encoding", "gzip")], b"");
        assert!(r.header("content-encoding").is_none());
        assert_eq!(r.text(), big_text());
    }
}
