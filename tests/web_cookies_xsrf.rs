//! Cookies and XSRF through real HTTP: parsing, Set-Cookie attributes,
//! encoded and signed cookies, and the XSRF check on unsafe methods.
//! Raw `TcpStream` clients over 127.0.0.1, on every poller backend; the
//! test applications are in `common/web.rs`.

mod common;

use common::http::{Conn, get, get_each, send, with_server};
use common::web::*;
use cyclone::http1::Response;
use cyclone::web::{Application, Cookie, Request};

per_backend! {
    fn request_cookies_are_parsed(lp) {
        let r = send(&lp, cookies_app(), "GET", "/echo", &[("Cookie", "a=1; b=\"two\""), ("Cookie", "c=x%20y")], b"");
        assert_eq!(r.text(), "a=1,b=two,c=x%20y|two|x y");
    }

    fn set_cookie_emits_set_cookie_with_attributes(lp) {
        let r = get(&lp, cookies_app(), "/set");
        assert_eq!(
            r.headers_all("set-cookie"),
            [
                "session=abc; Path=/; Domain=example.com; Max-Age=60; Secure; HttpOnly; SameSite=Lax",
                "theme=dark",
            ]
        );
    }

    fn clear_cookie_sets_max_age_zero(lp) {
        let r = get(&lp, cookies_app(), "/clear");
        let sc = r.headers_all("set-cookie");
        assert_eq!(sc.len(), 1);
        assert!(sc[0].starts_with("session=;"), "{}", sc[0]);
        assert!(sc[0].contains("; Path=/"), "{}", sc[0]);
        assert!(sc[0].contains("; Max-Age=0"), "{}", sc[0]);
        assert!(sc[0].contains("; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{}", sc[0]);
    }

    fn encoded_cookie_round_trips_through_the_client(lp) {
        let r = with_server(&lp, cookies_app(), |port| {
            let mut c = Conn::open(port);
            let set = c.get("/encoded/set");
            let pair = cookie_pair(set.header("set-cookie").unwrap());
            (pair.clone(), c.get_with("/encoded/get", &[("Cookie", &pair)]))
        });
        assert_eq!(r.1.text(), "hello world; 100%", "sent back {:?}", r.0);
    }

    fn signed_cookie_round_trips(lp) {
        let app = cookies_app().cookie_secret("s3cret key");
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let set = c.get("/signed/set");
            let sc = set.header("set-cookie").unwrap().to_string();
            let back = c.get_with("/signed/get", &[("Cookie", &cookie_pair(&sc))]);
            (set.status, sc, back)
        });
        assert_eq!(r.0, 200);
        assert!(r.1.starts_with("user=") && r.1.ends_with("; Path=/"), "{}", r.1);
        assert!(!r.1.contains("alice"), "the value is encoded: {}", r.1);
        assert_eq!(r.2.text(), "alice");
    }

    fn tampered_signed_cookie_is_refused(lp) {
        let app = cookies_app().cookie_secret("s3cret key");
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let set = c.get("/signed/set");
            let pair = cookie_pair(set.header("set-cookie").unwrap());
            // user=<base64 value>|<time>|<sig>: swap the value for "admin"
            // (base64 "YWRtaW4"), keep the signature.
            let (_, signed) = pair.split_once('=').unwrap();
            let (_, rest) = signed.split_once('|').unwrap();
            let forged = format!("user=YWRtaW4|{rest}");
            // And a valid signature presented under another name.
            let renamed = format!("other={signed}; user=");
            [
                c.get_with("/signed/get", &[("Cookie", &forged)]),
                c.get_with("/signed/get", &[("Cookie", &renamed)]),
                c.get_with("/signed/get", &[("Cookie", "user=alice")]),
                c.get_with("/signed/get", &[("Cookie", &pair)]),
            ]
        });
        assert_eq!(r[0].text(), "none", "forged value");
        assert_eq!(r[1].text(), "none", "empty value");
        assert_eq!(r[2].text(), "none", "unsigned value");
        assert_eq!(r[3].text(), "alice", "the genuine cookie still works");
    }

    fn signed_cookie_without_cookie_secret_is_none(lp) {
        let value = cyclone::web::cookies::sign_value(b"some key", "user", b"alice");
        let cookie = format!("user={value}");
        let r = send(&lp, cookies_app(), "GET", "/signed/get", &[("Cookie", &cookie)], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "none");
    }

    fn signed_cookie_from_another_secret_is_none(lp) {
        let value = cyclone::web::cookies::sign_value(b"some key", "user", b"alice");
        let cookie = format!("user={value}");
        let app = cookies_app().cookie_secret("another key");
        let r = send(&lp, app, "GET", "/signed/get", &[("Cookie", &cookie)], b"");
        assert_eq!(r.text(), "none");
    }

    fn sign_cookie_without_cookie_secret_is_500(lp) {
        let r = get(&lp, cookies_app(), "/signed/set");
        assert_eq!(r.status, 500);
        assert!(r.headers_all("set-cookie").is_empty());
    }

    fn a_cookie_value_that_would_inject_attributes_is_refused_with_500(lp) {
        let app = Application::new().route("/", |req: Request| async move {
            let lang = req.argument("lang").unwrap_or("en").to_string();
            Response::text("ok").set_cookie(Cookie::new("lang", lang))
        });
        let r = get_each(&lp, app, ["/?lang=en", "/?lang=en%3B%20Domain%3Devil.example"]);
        assert_eq!(r[0].header("set-cookie"), Some("lang=en"));
        assert_eq!(r[1].status, 500);
        assert_eq!(r[1].header("set-cookie"), None);
    }

    fn xsrf_post_without_token_is_403(lp) {
        let r = with_server(&lp, xsrf_app(), |port| {
            let mut c = Conn::open(port);
            [
                c.send("POST", "/form", &[], b""),
                c.send("POST", "/form", &[("Cookie", "_xsrf=tok123")], b""),
                c.send("DELETE", "/form", &[("Cookie", "_xsrf=tok123")], b""),
            ]
        });
        for r in &r {
            assert_eq!(r.status, 403);
        }
    }

    fn xsrf_post_with_form_field_matching_cookie_is_200(lp) {
        let r = send(
            &lp,
            xsrf_app(),
            "POST",
            "/form",
            &[("Cookie", "_xsrf=tok123"), ("Content-Type", "application/x-www-form-urlencoded")],
            b"x=1&_xsrf=tok123",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "POST ok");
    }

    fn a_masked_xsrf_token_in_the_form_is_accepted_and_a_forged_one_refused(lp) {
        let good = cyclone::web::mask_xsrf_token("tok123");
        let bad = cyclone::web::mask_xsrf_token("tok124");
        let r = with_server(&lp, xsrf_app(), move |port| {
            let mut c = Conn::open(port);
            [good, bad].map(|token| {
                let body = format!("_xsrf={}", token.replace('|', "%7C"));
                c.send(
                    "POST",
                    "/form",
                    &[("Cookie", "_xsrf=tok123"), ("Content-Type", "application/x-www-form-urlencoded")],
                    body.as_bytes(),
                )
            })
        });
        assert_eq!(r[0].status, 200, "{}", r[0].text());
        assert_eq!(r[1].status, 403);
    }

    fn xsrf_header_token_is_accepted(lp) {
        let r = send(&lp, xsrf_app(), "PUT", "/form", &[("Cookie", "_xsrf=tok123"), ("X-XSRFToken", "tok123")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "PUT ok");
    }

    fn xsrf_mismatched_token_is_403(lp) {
        let r = with_server(&lp, xsrf_app(), |port| {
            let mut c = Conn::open(port);
            [
                c.send("POST", "/form", &[("Cookie", "_xsrf=tok123"), ("X-XSRFToken", "tok124")], b""),
                c.send("POST", "/form", &[("Cookie", "_xsrf=tok123"), ("X-XSRFToken", "tok12")], b""),
                c.send(
                    "POST",
                    "/form",
                    &[("Cookie", "_xsrf=tok123"), ("Content-Type", "application/x-www-form-urlencoded")],
                    b"_xsrf=nope",
                ),
            ]
        });
        for r in &r {
            assert_eq!(r.status, 403);
        }
    }

    fn xsrf_get_is_never_checked(lp) {
        let r = with_server(&lp, xsrf_app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/form"), c.send("HEAD", "/form", &[], b""), c.get("/token")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "GET ok");
        assert_eq!(r[1].status, 200);
        let token = r[2].text();
        assert_eq!(token.len(), 32, "{token}");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    }

    fn xsrf_token_reuses_the_cookie(lp) {
        let r = send(&lp, xsrf_app(), "GET", "/token", &[("Cookie", "_xsrf=abcdef")], b"");
        assert_eq!(r.text(), "abcdef");
    }
}
