//! Routing through real HTTP: literal and regex routes, captures and their
//! decoding, the default 404, host routes, `reverse_url`, and the access
//! line each request gets.
//! Raw `TcpStream` clients over 127.0.0.1 (Cyclone's own client through
//! `cyclone::testing` where the bytes sent do not matter), on every
//! poller backend; the test applications are in `common/web.rs`.

mod common;

use common::http::{get, get_each};
use common::web::*;
use cyclone::IOLoop;
use cyclone::http1::Response;
use cyclone::httpclient::Request as Fetch;
use cyclone::testing::TestServer;
use cyclone::web::{Application, HttpError, Request};
use http::StatusCode;

#[test]
fn reverse_url_fills_a_named_routes_groups() {
    let app = Application::new()
        .named_route("user", r"/user/(\d+)", |_req: Request| async { "u" })
        .named_route("post", r"/post/(?P<y>\d+)/(\w+)", |_req: Request| async {
            "p"
        })
        .named_route("any", r"/files/.*", |_req: Request| async { "f" });
    assert_eq!(app.reverse_url("user", &["7"]).as_deref(), Some("/user/7"));
    assert_eq!(
        app.reverse_url("post", &["2024", "intro"]).as_deref(),
        Some("/post/2024/intro")
    );
    assert_eq!(app.reverse_url("user", &[]), None, "too few arguments");
    assert_eq!(
        app.reverse_url("user", &["1", "2"]),
        None,
        "too many arguments"
    );
    assert_eq!(app.reverse_url("nope", &["1"]), None, "unknown name");
    assert_eq!(
        app.reverse_url("any", &[]),
        None,
        "regex syntax outside groups"
    );
}

#[test]
fn reverse_url_escapes_a_slash_in_an_argument() {
    let app = Application::new().named_route("f", r"/f/(.+)", |_req: Request| async { "f" });
    let url = app.reverse_url("f", &["a/b"]).unwrap();
    assert!(url.starts_with("/f/a") && !url[3..].contains('/'), "{url}");
}

/// The access lines (target `cyclone::access`) written while `app`
/// answers GETs of `targets` over one connection.
fn access_lines<const N: usize>(
    lp: &IOLoop,
    app: Application,
    targets: [&'static str; N],
) -> Vec<String> {
    let logs = common::capture_logs(|| {
        get_each(lp, app, targets);
    });
    logs.lines()
        .filter(|l| l.contains("cyclone::access"))
        .map(str::to_string)
        .collect()
}

/// "<status> GET <target> (127.0.0.1) <d.dd>ms" at the end of `line`.
fn is_access_line(line: &str, level: &str, status: u16, target: &str) -> bool {
    let prefix = format!("{status} GET {target} (127.0.0.1) ");
    let Some(rest) = line.split_once(&prefix).map(|(_, r)| r) else {
        return false;
    };
    let ms = rest.trim_end().trim_end_matches("ms");
    line.contains(level)
        && ms.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.len() == 2
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

per_backend! {
    fn every_request_gets_an_access_line_with_status_target_peer_and_time(lp) {
        let lines = access_lines(&lp, routing_app(), ["/hello?x=1"]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(is_access_line(&lines[0], "INFO", 200, "/hello?x=1"), "{lines:?}");
    }

    fn the_access_line_level_follows_the_status_class(lp) {
        let app = routing_app().route("/boom", |_req: Request| async {
            HttpError::new(StatusCode::SERVICE_UNAVAILABLE)
        });
        let lines = access_lines(&lp, app, ["/hello", "/missing", "/boom"]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(is_access_line(&lines[0], "INFO", 200, "/hello"), "{lines:?}");
        assert!(is_access_line(&lines[1], "WARN", 404, "/missing"), "{lines:?}");
        assert!(is_access_line(&lines[2], "ERROR", 503, "/boom"), "{lines:?}");
    }

    fn literal_route_matches_the_whole_path_only(lp) {
        let r = get_each(&lp, routing_app(), ["/hello", "/hello?x=1", "/hello/", "/hellox", "/x/hello"]);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "hello");
        assert_eq!(r[1].text(), "hello", "the query is not part of the path");
        assert_eq!(r[2].status, 404);
        assert_eq!(r[3].status, 404);
        assert_eq!(r[4].status, 404);
    }

    fn regex_route_passes_positional_captures(lp) {
        let r = get_each(&lp, routing_app(), ["/user/42", "/user/abc", "/user/42/extra", "/x/user/42"]);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "user 42");
        assert_eq!(r[1].status, 404, "\\d+ does not match letters");
        assert_eq!(r[2].status, 404, "patterns are anchored at the end");
        assert_eq!(r[3].status, 404, "patterns are anchored at the start");
    }

    fn regex_route_passes_named_captures(lp) {
        let r = get(&lp, routing_app(), "/post/2024/hello-world");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "2024|hello-world|0", "named groups are not positional");
    }

    fn captures_are_percent_decoded(lp) {
        let r = get(&lp, routing_app(), "/file/a%20b%2Fc%C3%A9");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "a b/c\u{e9}");
    }

    fn a_capture_with_one_bad_escape_still_decodes_the_good_ones(lp) {
        let app = Application::new().route(r"/x/(.*)", |req: Request| async move {
            req.path_arg(0).unwrap_or("").to_string()
        });
        let r = get(&lp, app, "/x/a%20b%zz");
        assert_eq!(r.text(), "a b%zz");
    }

    fn a_capture_with_a_signed_escape_is_not_decoded(lp) {
        let app = Application::new().route(r"/x/(.*)", |req: Request| async move {
            req.path_arg(0).unwrap_or("").to_string()
        });
        // "%+f" is not an escape: the capture stays as sent.
        let r = get(&lp, app, "/x/a%+fb");
        assert_eq!(r.text(), "a%+fb");
    }

    fn the_first_matching_route_wins(lp) {
        let r = get(&lp, routing_app(), "/first/special");
        assert_eq!(r.text(), "first");
    }

    fn an_unrouted_path_gets_the_default_404_page(lp) {
        let r = get(&lp, routing_app(), "/nowhere");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("<h1>404: Not Found</h1>"), "{}", r.text());
    }

    fn a_custom_default_handler_answers_unrouted_paths(lp) {
        let app = routing_app().default_handler(|req: Request| async move {
            Response::text(format!("no route for {}", req.path())).status(StatusCode::NOT_FOUND)
        });
        let r = get_each(&lp, app, ["/nowhere", "/hello"]);
        assert_eq!(r[0].status, 404);
        assert_eq!(r[0].text(), "no route for /nowhere");
        assert_eq!(r[1].text(), "hello", "routed paths are unaffected");
    }

    fn reverse_url_round_trips_through_the_router(lp) {
        let app = Application::new().named_route("tag", r"/tag/([^/]+)", |req: Request| async move {
            req.path_arg(0).unwrap().to_string()
        });
        let arg = "a b+c/d";
        let url = app.reverse_url("tag", &[arg]).unwrap();
        let r = get(&lp, app, &url);
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.text(), arg, "reverse_url gave {url:?}");
    }

    fn routes_for_a_host_answer_only_requests_to_that_host(lp) {
        let app = Application::new()
            .host(
                r"api\.example\.com",
                Application::new().route("/", |_r: Request| async { "api" }),
            )
            .route("/", |_r: Request| async { "www" });
        let s = TestServer::on(&lp, app);
        let got = ["api.example.com:8080", "API.Example.com", "www.example.com", "[::1]:80"]
            .map(|host| s.fetch_request(Fetch::get("/").header("host", host)).unwrap().body);
        assert_eq!(got, ["api", "api", "www", "www"]);
    }
}
