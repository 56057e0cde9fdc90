//! `cyclone fetch` end to end: the binary against scripted servers
//! (`common::scripted`), checking what it prints, what it sends, and its
//! exit status for each kind of failure (curl's codes).

mod common;

use std::io::{BufReader, Write};
use std::process::{Command, Output};

use common::scripted::{answering, header, read_request, scripted, silent};

fn fetch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .arg("fetch")
        .args(args)
        .output()
        .expect("cyclone runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A server answering each request with its request line, the headers
/// named in `x-show`, and its body.
fn echo() -> common::scripted::Scripted {
    scripted(|conn, _| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        while let Some((head, body)) = read_request(&mut reader) {
            let mut out = head[0].clone();
            for name in header(&head, "x-show")
                .unwrap_or("")
                .split(',')
                .filter(|n| !n.is_empty())
            {
                out.push_str(&format!("|{name}={}", header(&head, name).unwrap_or("-")));
            }
            out.push('|');
            out.push_str(&String::from_utf8_lossy(&body));
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{out}",
                out.len()
            );
        }
    })
}

#[test]
fn the_body_is_printed_and_the_exit_status_is_zero() {
    let (s, _) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    let o = fetch(&[&s.url("/")]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("hello", Some(0)));
}

#[test]
fn include_prints_the_status_line_and_headers_first() {
    let (s, _) = answering(b"HTTP/1.1 201 Created\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok");
    let o = fetch(&["-i", &s.url("/")]);
    assert_eq!(
        stdout(&o),
        "HTTP/1.1 201 Created\r\nx-a: 1\r\ncontent-length: 2\r\n\r\nok"
    );
}

#[test]
fn several_urls_are_printed_in_order_over_one_connection() {
    let s = echo();
    let o = fetch(&[&s.url("/a"), &s.url("/b"), &s.url("/c")]);
    assert_eq!(
        stdout(&o),
        "GET /a HTTP/1.1|GET /b HTTP/1.1|GET /c HTTP/1.1|"
    );
    assert_eq!(s.accepted(), 1);
}

#[test]
fn method_data_and_headers_are_sent_as_given() {
    let s = echo();
    let o = fetch(&[
        "-X",
        "PUT",
        "-d",
        "a=1",
        "-H",
        "X-Show: x-token,content-type",
        "-H",
        "X-Token: t",
        &s.url("/p"),
    ]);
    assert_eq!(
        stdout(&o),
        "PUT /p HTTP/1.1|x-token=t|content-type=application/x-www-form-urlencoded|a=1"
    );
}

#[test]
fn data_without_a_method_is_a_post() {
    let s = echo();
    let o = fetch(&["-d", "x", &s.url("/")]);
    assert_eq!(stdout(&o), "POST / HTTP/1.1|x");
}

#[test]
fn an_error_status_is_still_a_completed_response() {
    let (s, _) = answering(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone");
    let o = fetch(&[&s.url("/")]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("gone", Some(0)));
}

#[test]
fn max_redirects_zero_prints_the_redirect_without_following() {
    let (s, seen) =
        answering(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 5\r\n\r\nmoved");
    let o = fetch(&["--max-redirects", "0", &s.url("/")]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("moved", Some(0)));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn endless_redirects_exit_47_saying_so() {
    let (s, _) = answering(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n");
    let o = fetch(&["--max-redirects", "3", &s.url("/")]);
    assert_eq!(o.status.code(), Some(47));
    assert!(String::from_utf8_lossy(&o.stderr).contains("too many redirects"));
}

#[test]
fn a_refused_connection_exits_7_with_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = fetch(&[&format!("http://127.0.0.1:{port}/")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

#[test]
fn a_timeout_exits_28() {
    let (s, hold) = silent();
    let o = fetch(&["--timeout", "0.3", &s.url("/")]);
    assert_eq!(o.status.code(), Some(28));
    drop(hold);
}

#[test]
fn a_malformed_response_exits_8() {
    let (s, _) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
    let o = fetch(&[&s.url("/")]);
    assert_eq!(o.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&o.stderr).contains("differing Content-Length"));
}

#[test]
fn a_short_body_exits_18() {
    let s = scripted(|conn, _| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        if read_request(&mut reader).is_some() {
            let mut conn = conn;
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc");
        }
    });
    let o = fetch(&[&s.url("/")]);
    assert_eq!(o.status.code(), Some(18));
}

#[test]
fn gzip_is_decoded_unless_no_decompress() {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"unzipped text").unwrap();
    let gz = e.finish().unwrap();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    response.extend_from_slice(&gz);
    let (s, _) = answering(Box::leak(response.into_boxed_slice()));
    assert_eq!(stdout(&fetch(&[&s.url("/")])), "unzipped text");
    assert_eq!(fetch(&["--no-decompress", &s.url("/")]).stdout, gz);
}
