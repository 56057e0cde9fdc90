//! [`StaticFileHandler`] through real HTTP over 127.0.0.1, serving a
//! directory tree each test builds under the system temp directory, on
//! every poller backend.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cyclone::IOLoop;
use cyclone::web::{Application, StaticFileHandler};

const LIMIT: Duration = Duration::from_secs(10);

/// The size of the large file: several 64 KiB pieces and a partial one.
const BIG: usize = 300 * 1024;

const HELLO: &[u8] = b"Hello, static!\n";
const SECRET: &[u8] = b"TOP SECRET outside the root";

// ---------------------------------------------------------------------
// A small HTTP/1.1 client.
// ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads one response; `head` says the request was HEAD (no body).
fn read_response(r: &mut impl BufRead, head: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1."), "not a status line: {line:?}");
    let status: u16 = line[9..12].parse().expect("status code");
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("header line");
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header colon");
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status < 200 || status == 204 || status == 304 {
        return resp;
    }
    if let Some(n) = resp.header("content-length") {
        let n: usize = n.parse().expect("content-length");
        let mut body = vec![0; n];
        r.read_exact(&mut body).expect("body");
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let size = size.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16).expect("chunk size hex");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("chunk");
            if n == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut resp.body).expect("body to close");
    }
    resp
}

/// A keep-alive client connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(LIMIT)).unwrap();
        Conn {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.writer
            .write_all(&request(method, target, headers, b""))
            .expect("write request");
        read_response(&mut self.reader, method == "HEAD")
    }

    fn get(&mut self, target: &str) -> Resp {
        self.send("GET", target, &[])
    }

    fn get_with(&mut self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", target, headers)
    }
}

/// Serves `app` on `lp` while `client` runs on a helper thread with the
/// port; returns what `client` returns.
fn with_server<T, F>(lp: &IOLoop, app: Application, client: F) -> T
where
    F: FnOnce(u16) -> T + Send + 'static,
    T: Send + 'static,
{
    let joined = lp
        .run_sync_timeout(
            async move {
                let server = app.into_server();
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let client = std::thread::spawn(move || client(port));
                common::thread_finished(&client).await;
                server.tcp().stop();
                client.join()
            },
            LIMIT,
        )
        .expect("the exchange did not finish in time");
    joined.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

// ---------------------------------------------------------------------
// The served tree.
// ---------------------------------------------------------------------

/// The large file's bytes: no period that lines up with 64 KiB pieces.
fn big_bytes() -> Vec<u8> {
    (0..BIG).map(|i| ((i * 7 + i / 997) % 256) as u8).collect()
}

/// A text file over 1 KiB (worth gzipping), under 64 KiB (read whole).
fn text_body() -> String {
    (0..300).map(|i| format!("static line {i}\n")).collect()
}

/// A temporary tree, removed when dropped (also when a test fails):
///
/// ```text
/// <base>/secret.txt            outside the served root
/// <base>/public/               the root
///     hello.txt style.css big.bin lines.txt
///     sub/index.html
///     list/a.txt list/<b>&.txt list/inner/
///     empty/
///     alias.txt -> hello.txt   (inside: allowed)
///     link.txt -> ../secret.txt, outdir -> ..   (outside: refused)
/// ```
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "cyclone-static-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        let public = base.join("public");
        for d in ["sub", "list/inner", "empty"] {
            std::fs::create_dir_all(public.join(d)).unwrap();
        }
        let (lines, big) = (text_body(), big_bytes());
        let files: [(&str, &[u8]); 7] = [
            ("hello.txt", HELLO),
            ("style.css", b"body { color: red }\n"),
            ("sub/index.html", b"<h1>sub index</h1>"),
            ("list/a.txt", b"a"),
            ("list/<b>&.txt", b"b"),
            ("lines.txt", lines.as_bytes()),
            ("big.bin", &big),
        ];
        for (name, data) in files {
            std::fs::write(public.join(name), data).unwrap();
        }
        std::fs::write(base.join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink("hello.txt", public.join("alias.txt")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", public.join("link.txt")).unwrap();
        std::os::unix::fs::symlink("..", public.join("outdir")).unwrap();
        Tree { base }
    }

    fn public(&self) -> PathBuf {
        self.base.join("public")
    }

    /// An application serving the tree's root at `/static/`.
    fn app(&self) -> Application {
        self.app_with(|h| h)
    }

    fn app_with(&self, f: impl FnOnce(StaticFileHandler) -> StaticFileHandler) -> Application {
        let handler = f(StaticFileHandler::new(self.public()).expect("handler"));
        Application::new().static_files("/static/", handler)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Asserts `r` refused access without leaking the secret file.
fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {r:?}");
    assert!(
        !r.body.windows(SECRET.len()).any(|w| w == SECRET),
        "{what} leaked the file"
    );
}

fn hello_size() -> String {
    HELLO.len().to_string()
}

per_backend! {
    fn a_file_is_served_with_content_type_etag_and_last_modified(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/hello.txt"), c.get("/static/style.css"), c.get("/static/sub/index.html")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].body, HELLO);
        assert_eq!(r[0].header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r[0].header("content-length"), Some(hello_size().as_str()));
        assert_eq!(r[0].header("accept-ranges"), Some("bytes"));
        let etag = r[0].header("etag").expect("ETag");
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let lm = r[0].header("last-modified").expect("Last-Modified");
        let mtime = std::fs::metadata(tree.public().join("hello.txt")).unwrap().modified().unwrap();
        let lm = httpdate::parse_http_date(lm).expect("an HTTP date");
        let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(lm), secs(mtime));
        assert!(r[0].header("cache-control").is_none(), "no version, no long caching");
        assert_eq!(r[1].header("content-type"), Some("text/css; charset=utf-8"));
        assert_eq!(r[2].header("content-type"), Some("text/html; charset=utf-8"));
        assert_ne!(r[1].header("etag"), r[0].header("etag"));
    }

    fn a_symlink_inside_the_root_to_a_file_inside_is_served(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| Conn::open(port).get("/static/alias.txt"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, HELLO);
    }

    fn if_none_match_with_the_etag_is_304(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            let first = c.get("/static/hello.txt");
            let etag = first.header("etag").unwrap().to_string();
            let again = c.get_with("/static/hello.txt", &[("If-None-Match", &etag)]);
            let other = c.get_with("/static/hello.txt", &[("If-None-Match", "\"other\"")]);
            (etag, again, other)
        });
        assert_eq!(r.1.status, 304);
        assert!(r.1.body.is_empty());
        assert_eq!(r.1.header("etag"), Some(r.0.as_str()));
        assert_eq!(r.2.status, 200, "a different tag");
        assert_eq!(r.2.body, HELLO);
    }

    fn if_modified_since_equal_to_last_modified_is_304(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            let first = c.get("/static/hello.txt");
            let lm = first.header("last-modified").unwrap().to_string();
            let same = c.get_with("/static/hello.txt", &[("If-Modified-Since", &lm)]);
            let old = c.get_with("/static/hello.txt", &[("If-Modified-Since", "Thu, 01 Jan 1998 00:00:00 GMT")]);
            [same, old]
        });
        assert_eq!(r[0].status, 304);
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].status, 200, "modified since 1998");
        assert_eq!(r[1].body, HELLO);
    }

    fn range_0_3_is_206_with_content_range(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            Conn::open(port).get_with("/static/hello.txt", &[("Range", "bytes=0-3")])
        });
        assert_eq!(r.status, 206);
        assert_eq!(r.body, b"Hell");
        assert_eq!(r.header("content-range"), Some(format!("bytes 0-3/{}", HELLO.len()).as_str()));
        assert_eq!(r.header("content-length"), Some("4"));
    }

    fn suffix_range_gives_the_last_bytes(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            Conn::open(port).get_with("/static/hello.txt", &[("Range", "bytes=-3")])
        });
        let n = HELLO.len();
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &HELLO[n - 3..]);
        assert_eq!(r.header("content-range"), Some(format!("bytes {}-{}/{n}", n - 3, n - 1).as_str()));
    }

    fn a_range_starting_past_the_end_is_416(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            let past = c.get_with("/static/hello.txt", &[("Range", "bytes=100-")]);
            // The connection is still usable afterwards.
            let after = c.get("/static/hello.txt");
            [past, after]
        });
        assert_eq!(r[0].status, 416);
        assert_eq!(r[0].header("content-range"), Some(format!("bytes */{}", HELLO.len()).as_str()));
        assert_eq!(r[1].status, 200);
    }

    fn raw_dotdot_traversal_is_403(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/../secret.txt"), c.get("/static/sub/../../secret.txt")]
        });
        assert_refused(&r[0], "/static/../secret.txt");
        assert_refused(&r[1], "/static/sub/../../secret.txt");
    }

    fn percent_encoded_dotdot_traversal_is_403(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            ["/static/%2e%2e/secret.txt", "/static/%2E%2E%2Fsecret.txt", "/static/..%2fsecret.txt", "/static/sub%2f..%2f..%2fsecret.txt"]
                .map(|p| (p, c.get(p)))
        });
        for (p, r) in &r {
            assert_refused(r, p);
        }
    }

    fn an_absolute_path_after_the_prefix_stays_inside_the_root(lp) {
        let tree = Tree::new();
        let secret = tree.base.join("secret.txt");
        let target = format!("/static/{}", secret.display());
        let r = with_server(&lp, tree.app(), move |port| Conn::open(port).get(&target));
        assert_eq!(r.status, 404, "{r:?}");
        assert!(!r.body.windows(SECRET.len()).any(|w| w == SECRET));
    }

    fn a_nul_byte_in_the_path_is_400(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| Conn::open(port).get("/static/hello.txt%00.png"));
        assert_eq!(r.status, 400);
    }

    fn a_symlink_out_of_the_root_is_403(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/link.txt"), c.get("/static/outdir/secret.txt")]
        });
        assert_refused(&r[0], "file symlink");
        assert_refused(&r[1], "directory symlink");
    }

    fn a_missing_file_is_404(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/nope.txt"), c.get("/static/nope/deeper.txt"), c.get("/static/hello.txt/x")]
        });
        for r in &r {
            assert_eq!(r.status, 404, "{r:?}");
        }
    }

    fn a_directory_without_slash_redirects_to_the_slash(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/sub"), c.get("/static/sub?x=1")]
        });
        assert_eq!(r[0].status, 301);
        assert_eq!(r[0].header("location"), Some("/static/sub/"));
        assert_eq!(r[1].status, 301);
        assert_eq!(r[1].header("location"), Some("/static/sub/?x=1"), "the query is kept");
    }

    fn a_directory_with_index_html_serves_it(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| Conn::open(port).get("/static/sub/"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "<h1>sub index</h1>");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }

    fn a_directory_without_index_or_listing_is_403(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| Conn::open(port).get("/static/list/"));
        assert_eq!(r.status, 403);
        assert!(!r.text().contains("a.txt"));
    }

    fn listing_lists_entries_with_names_escaped(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app_with(|h| h.listing(true)), |port| {
            Conn::open(port).get("/static/list/")
        });
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let body = r.text();
        assert!(body.contains("Index of /static/list/"), "{body}");
        let inner = body.find(">inner/</a>").expect("the subdirectory, with a slash");
        let b = body.find(">&lt;b&gt;&amp;.txt</a>").expect("the escaped name");
        let a = body.find(">a.txt</a>").expect("a.txt");
        assert!(inner < b && b < a, "directories first, then files by name: {body}");
        assert!(!body.contains("<b>"), "a raw name in the page: {body}");
        assert!(body.contains("href=\"%3Cb%3E%26.txt\""), "{body}");
        assert!(body.contains("href=\"../\""), "{body}");
    }

    fn the_bare_prefix_redirects_to_the_prefix_with_slash(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| Conn::open(port).get("/static"));
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/static/"));
    }

    fn post_is_405_with_allow(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            Conn::open(port).send("POST", "/static/hello.txt", &[])
        });
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }

    fn head_of_a_small_file_has_its_length_and_no_body(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.send("HEAD", "/static/hello.txt", &[]), c.get("/static/hello.txt")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].header("content-length"), Some(hello_size().as_str()));
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].body, HELLO, "nothing was left on the connection");
    }

    fn a_large_file_arrives_byte_exact(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/big.bin"), c.get("/static/hello.txt")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].header("content-type"), Some("application/octet-stream"));
        assert_eq!(r[0].header("content-length"), Some(BIG.to_string().as_str()));
        assert!(r[0].header("etag").is_some());
        assert!(r[0].body == big_bytes(), "the body differs ({} bytes)", r[0].body.len());
        assert_eq!(r[1].body, HELLO, "the connection goes on after a streamed body");
    }

    fn a_large_file_304s_on_its_etag(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            let etag = c.send("HEAD", "/static/big.bin", &[]).header("etag").unwrap().to_string();
            let again = c.get_with("/static/big.bin", &[("If-None-Match", &etag)]);
            let after = c.get("/static/hello.txt");
            [again, after]
        });
        assert_eq!(r[0].status, 304);
        assert_eq!(r[1].body, HELLO);
    }

    fn ranges_across_a_64k_boundary_are_byte_exact(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [
                c.get_with("/static/big.bin", &[("Range", "bytes=65000-70000")]),
                c.get_with("/static/big.bin", &[("Range", "bytes=60000-200000")]),
                c.get_with("/static/big.bin", &[("Range", "bytes=131000-")]),
            ]
        });
        let big = big_bytes();
        for (r, (start, end)) in r.iter().zip([(65000, 70000), (60000, 200000), (131000, BIG - 1)]) {
            assert_eq!(r.status, 206);
            assert_eq!(r.header("content-range"), Some(format!("bytes {start}-{end}/{BIG}").as_str()));
            assert_eq!(r.body.len(), end - start + 1);
            assert!(r.body == big[start..=end], "bytes {start}-{end} differ");
        }
    }

    fn head_of_a_large_file_has_its_length_and_no_body(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.send("HEAD", "/static/big.bin", &[]), c.get("/static/hello.txt")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].header("content-length"), Some(BIG.to_string().as_str()));
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].body, HELLO, "no body was sent after the HEAD answer");
    }

    fn a_versioned_url_gets_a_long_cache_control(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/static/style.css?v=1"), c.get("/static/style.css")]
        });
        assert_eq!(r[0].status, 200);
        let cc = r[0].header("cache-control").expect("Cache-Control");
        let max_age: u64 = cc
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .expect("max-age")
            .parse()
            .unwrap();
        assert!(max_age >= 365 * 86_400, "{cc}");
        assert!(r[1].header("cache-control").is_none());
    }

    fn a_range_of_a_text_file_is_not_gzipped(lp) {
        // Content-Range counts bytes of the representation sent: a gzip
        // of the slice labelled as identity bytes 0-2047 is corrupt for
        // a client that resumes or stitches ranges.
        let tree = Tree::new();
        let app = tree.app().compress_response(true);
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            [
                c.get_with("/static/lines.txt", &[("Accept-Encoding", "gzip")]),
                c.get_with("/static/lines.txt", &[("Accept-Encoding", "gzip"), ("Range", "bytes=0-2047")]),
            ]
        });
        let whole = text_body();
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].header("content-encoding"), Some("gzip"), "the whole file is gzipped");
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&r[0].body[..]).read_to_string(&mut plain).unwrap();
        assert_eq!(plain, whole);
        assert_eq!(r[1].status, 206);
        assert_eq!(r[1].header("content-range"), Some(format!("bytes 0-2047/{}", whole.len()).as_str()));
        assert!(r[1].header("content-encoding").is_none(), "a 206 was gzipped: {:?}", r[1].headers);
        assert!(r[1].body == whole.as_bytes()[..2048]);
    }

    fn head_of_a_text_file_matches_get_under_compression(lp) {
        // HEAD must describe what GET would send (RFC 9110 §9.3.2).
        let tree = Tree::new();
        let app = tree.app().compress_response(true);
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let ae = [("Accept-Encoding", "gzip")];
            [c.send("HEAD", "/static/lines.txt", &ae), c.send("GET", "/static/lines.txt", &ae)]
        });
        assert_eq!(r[1].header("content-encoding"), Some("gzip"));
        assert!(r[0].body.is_empty());
        assert_eq!(r[0].header("content-encoding"), r[1].header("content-encoding"), "HEAD {:?}", r[0].headers);
        assert_eq!(r[0].header("content-length"), r[1].header("content-length"), "HEAD {:?}", r[0].headers);
    }
}
