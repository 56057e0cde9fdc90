//! What a handler returns, through real HTTP: content types, text from
//! `&str`/`String`, redirects, headers set and cleared, `HttpError` pages.
//! Raw `TcpStream` clients over 127.0.0.1, on every poller backend; the
//! test applications are in `common/web.rs`.

mod common;

use common::http::{get, get_each};
use common::web::*;

per_backend! {
    fn html_json_and_bytes_responses_have_their_content_types(lp) {
        let r = get_each(&lp, responses_app(), ["/html", "/json", "/bytes"]);
        assert_eq!(r[0].header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r[0].text(), "<p>hi</p>");
        assert_eq!(r[1].header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r[1].body).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "n": [1, 2]}));
        assert_eq!(r[2].header("content-type"), Some("application/octet-stream"));
        assert_eq!(r[2].body, [0, 1, 2, 255]);
    }

    fn returning_str_or_string_is_a_text_response(lp) {
        let r = get_each(&lp, responses_app(), ["/str", "/string"]);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r[0].text(), "static str");
        assert_eq!(r[1].header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r[1].text(), "owned 42");
    }

    fn redirect_is_a_302_with_location(lp) {
        let r = get(&lp, responses_app(), "/go");
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("/target?x=1"));
        assert_eq!(r.header("content-length"), Some("0"));
    }

    fn redirect_with_sends_each_redirect_status(lp) {
        let r = get_each(&lp, responses_app(), [301, 303, 307, 308].map(|s| format!("/go/{s}")));
        for (r, want) in r.iter().zip([301, 303, 307, 308]) {
            assert_eq!(r.status, want);
            assert_eq!(r.header("location"), Some("/there"));
        }
    }

    fn redirect_with_a_non_redirect_status_is_a_500(lp) {
        let r = get(&lp, responses_app(), "/go/200");
        assert_eq!(r.status, 500);
        assert!(r.header("location").is_none());
    }

    fn set_header_replaces_header_adds_clear_header_removes(lp) {
        let r = get(&lp, responses_app(), "/headers");
        assert_eq!(r.headers_all("x-multi"), ["1", "2"]);
        assert_eq!(r.headers_all("x-once"), ["new"]);
        assert!(r.header("x-gone").is_none());
        assert_eq!(r.headers_all("content-type"), ["text/x-custom"]);
    }

    fn http_error_becomes_an_error_page_with_its_status(lp) {
        let r = get_each(&lp, responses_app(), ["/conflict", "/gone"]);
        assert_eq!(r[0].status, 409);
        assert_eq!(r[0].header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r[0].text().contains("<h1>409: Conflict</h1>"), "{}", r[0].text());
        assert_eq!(r[1].status, 410, "Err(StatusCode) is an HttpError");
        assert!(r[1].text().contains("410: Gone"));
    }

    fn http_error_reason_is_shown_escaped_and_log_message_is_not_sent(lp) {
        let r = get(&lp, responses_app(), "/reason");
        assert_eq!(r.status, 409);
        let body = r.text();
        assert!(body.contains("<h1>409: Widget &lt;locked&gt;</h1>"), "{body}");
        assert!(!body.contains("internal-detail-42"), "{body}");
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"w\""));
    }
}
