//! Request arguments through real HTTP: query and form arguments,
//! required ones, multipart fields and files, JSON bodies.
//! Raw `TcpStream` clients over 127.0.0.1, on every poller backend; the
//! test applications are in `common/web.rs`.

mod common;

use common::http::{Conn, get_each, with_server};
use common::web::*;

per_backend! {
    fn arguments_come_from_query_then_form_body_and_the_last_wins(lp) {
        let r = post(&lp, args_app(), "/args?a=1&a=2", "application/x-www-form-urlencoded", b"a=3&b=x+y%21");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "1,2,3|3|x y!");
    }

    fn a_body_that_is_not_a_form_gives_no_arguments(lp) {
        let r = post(&lp, args_app(), "/args?a=1", "text/plain", b"a=3&b=4");
        assert_eq!(r.text(), "1|1|-");
    }

    fn required_argument_missing_is_400(lp) {
        let r = get_each(&lp, args_app(), ["/need", "/need?name=ann"]);
        assert_eq!(r[0].status, 400);
        assert!(r[0].text().contains("Missing argument name"), "{}", r[0].text());
        assert_eq!(r[1].status, 200);
        assert_eq!(r[1].text(), "hi ann");
    }

    fn multipart_fields_and_files_are_parsed(lp) {
        let mut body = Vec::new();
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello there\r\n");
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n");
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"b.bin\"\r\n\r\n\x00\x01\xff--\r\n");
        body.extend_from_slice(b"--XyZ--\r\n");
        let r = post(&lp, args_app(), "/upload?q=search", "multipart/form-data; boundary=XyZ", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "title": "Hello there",
                "q": "search",
                "files": [
                    {"name": "upload", "filename": "notes.txt", "content_type": "text/plain",
                     "bytes": b"line1\r\nline2".to_vec()},
                    {"name": "blob", "filename": "b.bin", "content_type": "application/octet-stream",
                     "bytes": [0, 1, 255, b'-', b'-']},
                ],
            })
        );
    }

    fn malformed_multipart_gives_no_arguments_and_body_arguments_400(lp) {
        let ct = [("Content-Type", "multipart/form-data; boundary=XyZ")];
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1".to_vec();
        let r = with_server(&lp, args_app(), move |port| {
            let mut c = Conn::open(port);
            [c.send("POST", "/lenient?q=7", &ct, &body), c.send("POST", "/strict", &ct, &body)]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "0|7|400", "query arguments survive a bad body");
        assert_eq!(r[1].status, 400);
        assert!(r[1].text().contains("malformed multipart body"), "{}", r[1].text());
    }

    fn json_body_is_parsed(lp) {
        let r = post(&lp, args_app(), "/json", "application/json", br#"{"name":"widget","qty":3}"#);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "widget x3");
    }

    fn invalid_json_body_is_400(lp) {
        let r = with_server(&lp, args_app(), |port| {
            let mut c = Conn::open(port);
            [
                c.send("POST", "/json", &[], br#"{"name":"widget""#),
                c.send("POST", "/json", &[], br#"{"name":"widget","qty":"three"}"#),
            ]
        });
        for r in &r {
            assert_eq!(r.status, 400);
            assert!(r.text().contains("Invalid JSON body"), "{}", r.text());
        }
    }
}
