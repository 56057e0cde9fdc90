//! [`StaticFileHandler`] through real HTTP over 127.0.0.1, serving a
//! directory tree each test builds under the system temp directory, on
//! every poller backend.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::http::{Conn, Resp, get, get_each, send, with_server};
use cyclone::IOLoop;
use cyclone::web::{Application, StaticFileHandler};

/// The size of the large file: several 64 KiB pieces and a partial one.
const BIG: usize = 300 * 1024;

const HELLO: &[u8] = b"Hello, static!\n";
const SECRET: &[u8] = b"TOP SECRET outside the root";

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

/// GETs hello.txt from a fresh tree for its `validator` field, then, on
/// the same connection, GETs it with `condition` set to that value and
/// to `other`: returns the validator and those two answers.
fn conditional_gets(
    lp: &IOLoop,
    validator: &'static str,
    condition: &'static str,
    other: &'static str,
) -> (String, [Resp; 2]) {
    let tree = Tree::new();
    with_server(lp, tree.app(), move |port| {
        let mut c = Conn::open(port);
        let first = c.get("/static/hello.txt");
        let value = first.header(validator).unwrap().to_string();
        let same = c.get_with("/static/hello.txt", &[(condition, &value)]);
        let differing = c.get_with("/static/hello.txt", &[(condition, other)]);
        (value, [same, differing])
    })
}

/// GETs each of `targets` from a fresh tree, on one connection, and
/// asserts every answer refused access (each named by its target).
fn assert_each_refused<const N: usize>(lp: &IOLoop, targets: [&str; N]) {
    let tree = Tree::new();
    let r = get_each(lp, tree.app(), targets);
    for (target, r) in targets.iter().zip(&r) {
        assert_refused(r, target);
    }
}

fn hello_size() -> String {
    HELLO.len().to_string()
}

/// HEAD `target`, then GET hello.txt on the same connection: the HEAD
/// answer is a 200 with Content-Length `len` and no body, and no body
/// bytes were left on the connection to spoil the GET (`after`, the
/// message if they were).
fn assert_head_has_length_and_no_body(lp: &IOLoop, target: &'static str, len: usize, after: &str) {
    let tree = Tree::new();
    let r = with_server(lp, tree.app(), move |port| {
        let mut c = Conn::open(port);
        [c.send("HEAD", target, &[], b""), c.get("/static/hello.txt")]
    });
    assert_eq!(r[0].status, 200);
    assert_eq!(
        r[0].header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(r[0].body.is_empty());
    assert_eq!(r[1].body, HELLO, "{after}");
}

per_backend! {
    fn a_file_is_served_with_content_type_etag_and_last_modified(lp) {
        let tree = Tree::new();
        let r = get_each(&lp, tree.app(), ["/static/hello.txt", "/static/style.css", "/static/sub/index.html"]);
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
        let r = get(&lp, tree.app(), "/static/alias.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, HELLO);
    }

    fn if_none_match_with_the_etag_is_304(lp) {
        let (etag, [again, other]) = conditional_gets(&lp, "etag", "If-None-Match", "\"other\"");
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(other.status, 200, "a different tag");
        assert_eq!(other.body, HELLO);
    }

    fn if_modified_since_equal_to_last_modified_is_304(lp) {
        let (_, [same, old]) = conditional_gets(&lp, "last-modified", "If-Modified-Since", "Thu, 01 Jan 1998 00:00:00 GMT");
        assert_eq!(same.status, 304);
        assert!(same.body.is_empty());
        assert_eq!(old.status, 200, "modified since 1998");
        assert_eq!(old.body, HELLO);
    }

    fn range_0_3_is_206_with_content_range(lp) {
        let tree = Tree::new();
        let r = send(&lp, tree.app(), "GET", "/static/hello.txt", &[("Range", "bytes=0-3")], b"");
        assert_eq!(r.status, 206);
        assert_eq!(r.body, b"Hell");
        assert_eq!(r.header("content-range"), Some(format!("bytes 0-3/{}", HELLO.len()).as_str()));
        assert_eq!(r.header("content-length"), Some("4"));
    }

    fn suffix_range_gives_the_last_bytes(lp) {
        let tree = Tree::new();
        let r = send(&lp, tree.app(), "GET", "/static/hello.txt", &[("Range", "bytes=-3")], b"");
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
        assert_each_refused(&lp, ["/static/../secret.txt", "/static/sub/../../secret.txt"]);
    }

    fn percent_encoded_dotdot_traversal_is_403(lp) {
        assert_each_refused(&lp, ["/static/%2e%2e/secret.txt", "/static/%2E%2E%2Fsecret.txt", "/static/..%2fsecret.txt", "/static/sub%2f..%2f..%2fsecret.txt"]);
    }

    fn an_absolute_path_after_the_prefix_stays_inside_the_root(lp) {
        let tree = Tree::new();
        let secret = tree.base.join("secret.txt");
        let target = format!("/static/{}", secret.display());
        let r = get(&lp, tree.app(), &target);
        assert_eq!(r.status, 404, "{r:?}");
        assert!(!r.body.windows(SECRET.len()).any(|w| w == SECRET));
    }

    fn a_nul_byte_in_the_path_is_400(lp) {
        let tree = Tree::new();
        let r = get(&lp, tree.app(), "/static/hello.txt%00.png");
        assert_eq!(r.status, 400);
    }

    fn a_symlink_out_of_the_root_is_403(lp) {
        assert_each_refused(&lp, ["/static/link.txt", "/static/outdir/secret.txt"]);
    }

    fn a_missing_file_is_404(lp) {
        let tree = Tree::new();
        let r = get_each(&lp, tree.app(), ["/static/nope.txt", "/static/nope/deeper.txt", "/static/hello.txt/x"]);
        for r in &r {
            assert_eq!(r.status, 404, "{r:?}");
        }
    }

    fn a_directory_without_slash_redirects_to_the_slash(lp) {
        let tree = Tree::new();
        let r = get_each(&lp, tree.app(), ["/static/sub", "/static/sub?x=1"]);
        assert_eq!(r[0].status, 301);
        assert_eq!(r[0].header("location"), Some("/static/sub/"));
        assert_eq!(r[1].status, 301);
        assert_eq!(r[1].header("location"), Some("/static/sub/?x=1"), "the query is kept");
    }

    fn an_index_html_symlinked_out_of_the_root_is_not_served(lp) {
        let tree = Tree::new();
        std::fs::create_dir_all(tree.public().join("trap")).unwrap();
        std::os::unix::fs::symlink("../../secret.txt", tree.public().join("trap/index.html")).unwrap();
        let r = get(&lp, tree.app(), "/static/trap/");
        assert_ne!(r.status, 200);
        assert!(!r.text().contains("TOP SECRET"), "{}", r.text());
    }

    fn a_directory_redirect_never_points_to_another_host(lp) {
        let tree = Tree::new();
        let app = Application::new().static_files("/", StaticFileHandler::new(tree.public()).unwrap());
        let r = get(&lp, app, "//sub");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/sub/"));
    }

    fn a_fifo_is_404_and_does_not_stall_the_loop(lp) {
        let tree = Tree::new();
        let fifo = tree.public().join("pipe");
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        let r = get_each(&lp, tree.app(), ["/static/pipe", "/static/hello.txt"]);
        assert_eq!(r[0].status, 404);
        assert_eq!(r[1].body, HELLO, "the loop still serves");
    }

    fn a_range_with_a_stale_if_range_gets_the_whole_file(lp) {
        let tree = Tree::new();
        let r = send(&lp, tree.app(), "GET", "/static/hello.txt", &[("Range", "bytes=0-3"), ("If-Range", "\"old\"")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, HELLO);
    }

    fn a_range_with_the_current_if_range_is_honoured(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            let first = c.get("/static/hello.txt");
            let etag = first.header("etag").unwrap().to_string();
            c.get_with("/static/hello.txt", &[("Range", "bytes=0-3"), ("If-Range", &etag)])
        });
        assert_eq!(r.status, 206);
        assert_eq!(r.body, b"Hell");
    }

    fn a_head_answered_304_carries_no_content_length(lp) {
        let tree = Tree::new();
        let r = with_server(&lp, tree.app(), |port| {
            let mut c = Conn::open(port);
            let etag = c.get("/static/hello.txt").header("etag").unwrap().to_string();
            c.send("HEAD", "/static/hello.txt", &[("If-None-Match", &etag)], b"")
        });
        assert_eq!(r.status, 304);
        assert_eq!(r.header("content-length"), None);
    }

    fn a_304_under_compression_varies_and_carries_the_weak_tag(lp) {
        let tree = Tree::new();
        let app = tree.app().compress_response(true);
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let gz = [("Accept-Encoding", "gzip")];
            let first = c.get_with("/static/lines.txt", &gz);
            let etag = first.header("etag").unwrap().to_string();
            let again = c.get_with("/static/lines.txt", &[gz[0], ("If-None-Match", &etag)]);
            [first, again]
        });
        assert_eq!(r[0].header("content-encoding"), Some("gzip"));
        assert!(r[0].header("etag").unwrap().starts_with("W/"));
        assert_eq!(r[1].status, 304);
        assert_eq!(r[1].header("vary"), Some("Accept-Encoding"));
        assert_eq!(r[1].header("etag"), r[0].header("etag"));
    }

    fn a_large_file_304_under_compression_keeps_the_200s_strong_tag_and_no_vary(lp) {
        // Over one piece, a file is streamed and never gzipped: its 200 has
        // a strong tag and no Vary, and the 304 revalidating it must say
        // the same (a weakened tag would defeat If-Range for resumes).
        let tree = Tree::new();
        let text: String = (0..6000).map(|i| format!("big text line {i}\n")).collect();
        assert!(text.len() > 64 * 1024);
        std::fs::write(tree.base.join("public/big.txt"), &text).unwrap();
        let app = tree.app().compress_response(true);
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let gz = [("Accept-Encoding", "gzip")];
            let first = c.get_with("/static/big.txt", &gz);
            let etag = first.header("etag").unwrap().to_string();
            let again = c.get_with("/static/big.txt", &[gz[0], ("If-None-Match", &etag)]);
            [first, again]
        });
        assert_eq!(r[0].header("content-encoding"), None);
        assert!(!r[0].header("etag").unwrap().starts_with("W/"));
        assert_eq!(r[0].header("vary"), None);
        assert_eq!(r[1].status, 304);
        assert_eq!(r[1].header("etag"), r[0].header("etag"));
        assert_eq!(r[1].header("vary"), None);
    }

    fn a_directory_with_index_html_serves_it(lp) {
        let tree = Tree::new();
        let r = get(&lp, tree.app(), "/static/sub/");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "<h1>sub index</h1>");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }

    fn a_directory_without_index_or_listing_is_403(lp) {
        let tree = Tree::new();
        let r = get(&lp, tree.app(), "/static/list/");
        assert_eq!(r.status, 403);
        assert!(!r.text().contains("a.txt"));
    }

    fn listing_lists_entries_with_names_escaped(lp) {
        let tree = Tree::new();
        let r = get(&lp, tree.app_with(|h| h.listing(true)), "/static/list/");
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
        let r = get(&lp, tree.app(), "/static");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/static/"));
    }

    fn post_is_405_with_allow(lp) {
        let tree = Tree::new();
        let r = send(&lp, tree.app(), "POST", "/static/hello.txt", &[], b"");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }

    fn head_of_a_small_file_has_its_length_and_no_body(lp) {
        assert_head_has_length_and_no_body(&lp, "/static/hello.txt", HELLO.len(), "nothing was left on the connection");
    }

    fn a_large_file_arrives_byte_exact(lp) {
        let tree = Tree::new();
        let r = get_each(&lp, tree.app(), ["/static/big.bin", "/static/hello.txt"]);
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
            let etag = c.send("HEAD", "/static/big.bin", &[], b"").header("etag").unwrap().to_string();
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
        assert_head_has_length_and_no_body(&lp, "/static/big.bin", BIG, "no body was sent after the HEAD answer");
    }

    fn a_versioned_url_gets_a_long_cache_control(lp) {
        let tree = Tree::new();
        let r = get_each(&lp, tree.app(), ["/static/style.css?v=1", "/static/style.css"]);
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
            [c.send("HEAD", "/static/lines.txt", &ae, b""), c.send("GET", "/static/lines.txt", &ae, b"")]
        });
        assert_eq!(r[1].header("content-encoding"), Some("gzip"));
        assert!(r[0].body.is_empty());
        assert_eq!(r[0].header("content-encoding"), r[1].header("content-encoding"), "HEAD {:?}", r[0].headers);
        assert_eq!(r[0].header("content-length"), r[1].header("content-length"), "HEAD {:?}", r[0].headers);
    }
}
