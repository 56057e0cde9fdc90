//! [`StaticFileHandler`]: files from a directory or compiled into the
//! binary, with validators, ranges, and no way out of the root.

mod mime;
mod range;
mod source;

pub(crate) use source::resolve;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use range::{Range, requested_range};
use source::{Found, Opened, PIECE, Source};

use super::conditional::{Compression, accepts_gzip, etag_matches};
use super::error::HttpError;
use super::handler::method_not_allowed;
use super::request::Request;
use super::response::html_escape;
use super::url::encode_path_part;
use crate::http1::Response;

/// `Cache-Control` for a URL that carries a version (`?v=...`): the
/// content at that URL never changes, so a year (RFC 9111 caches may
/// keep it that long).
const VERSIONED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Serves the files of one directory, like Tornado's handler of the same
/// name and nginx's `root`, or files compiled into the binary
/// ([`embedded`](Self::embedded)), the same way:
///
/// - `index.html` (configurable) for a directory, which is first
///   redirected to its `/`-ended URL; optionally a listing instead;
/// - `Content-Type` from the extension;
/// - `ETag` and (from disk) `Last-Modified`, with `If-None-Match` /
///   `If-Modified-Since` answered by `304`;
/// - a single `Range` answered by `206` (`416` when it starts past the
///   end; several ranges get the whole file, as RFC 9110 allows);
/// - `Cache-Control` of a year when the URL carries `?v=`;
/// - `..`, encoded or not, is `403`; a symlink leading out of the root
///   is `403`; a missing file is `404`;
/// - files over 64 KiB are streamed in 64 KiB pieces.
///
/// ```no_run
/// use cyclone::web::{Application, StaticFileHandler};
/// let app = Application::new()
///     .static_files("/static/", StaticFileHandler::new("public").unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct StaticFileHandler {
    source: Source,
    index: Option<String>,
    listing: bool,
}

impl StaticFileHandler {
    /// Serves `root` (which must exist; it is resolved once, symlinks
    /// included, and nothing outside it is served).
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<StaticFileHandler> {
        let root = root.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFileHandler::with_source(Source::Disk(root)))
    }

    /// Serves files compiled into the binary: each is its path under the
    /// root (`"index.html"`, `"css/site.css"`; `/`-separated) and its
    /// bytes, typically from `include_bytes!`. So a binary installed
    /// anywhere serves them without the files beside it.
    ///
    /// They are answered as [`new`](Self::new) answers files on disk, with
    /// one difference: there is no modification time, so no
    /// `Last-Modified` (and `If-Modified-Since` never gives a 304); the
    /// `ETag` is a hash of the content, stable across builds of the same
    /// bytes. Directories are those the paths imply (`css/` above).
    ///
    /// ```
    /// use cyclone::web::{Application, StaticFileHandler};
    ///
    /// static PUBLIC: &[(&str, &[u8])] = &[
    ///     ("index.html", b"<h1>Hello</h1>"),
    ///     ("robots.txt", b"User-agent: *\n"),
    ///     // In a real binary: ("style.css", include_bytes!("../public/style.css")),
    /// ];
    /// let app = Application::new()
    ///     .static_files("/static/", StaticFileHandler::embedded(PUBLIC));
    /// ```
    ///
    /// # Panics
    /// If a path names no file under the root (empty, or with `..`): a
    /// programming error, found at start-up.
    pub fn embedded(files: &'static [(&'static str, &'static [u8])]) -> StaticFileHandler {
        StaticFileHandler::with_source(Source::embedded(files))
    }

    fn with_source(source: Source) -> StaticFileHandler {
        StaticFileHandler {
            source,
            index: Some("index.html".to_string()),
            listing: false,
        }
    }

    /// The file served for a directory (`None`: none).
    pub fn index(mut self, name: Option<&str>) -> StaticFileHandler {
        self.index = name.map(str::to_string);
        self
    }

    /// List a directory's entries when it has no index file.
    pub fn listing(mut self, on: bool) -> StaticFileHandler {
        self.listing = on;
        self
    }

    /// The directory served; `None` for [`embedded`](Self::embedded)
    /// files.
    pub fn root(&self) -> Option<&Path> {
        match &self.source {
            Source::Disk(root) => Some(root),
            Source::Embedded(_) => None,
        }
    }

    /// Answers `req`, whose first capture is the path under the root.
    pub fn serve(&self, req: &Request) -> Result<Response, HttpError> {
        if req.method != Method::GET && req.method != Method::HEAD {
            return Err(method_not_allowed(&[Method::GET]));
        }
        let rel = req.path_arg(0).unwrap_or("");
        let dir = match self.source.find(rel)? {
            Found::File(file) => return file_response(req, file),
            Found::Dir(dir) => dir,
        };
        if !req.uri.path().ends_with('/') {
            // Leading slashes (and backslashes) collapsed: "//host"
            // must not become a redirect to another site (Tornado's
            // CVE-2023-28370).
            let path = req.uri.path().trim_start_matches(['/', '\\']);
            let mut to = format!("/{path}/");
            if let Some(q) = req.uri.query() {
                to.push('?');
                to.push_str(q);
            }
            return Ok(Response::redirect_with(StatusCode::MOVED_PERMANENTLY, &to));
        }
        if let Some(index) = &self.index
            && let Some(file) = self.source.index(&dir, index)?
        {
            return file_response(req, file);
        }
        if self.listing {
            return Ok(listing(req.uri.path(), self.source.list(&dir)?));
        }
        Err(HttpError::new(StatusCode::FORBIDDEN))
    }
}

/// The answer with `file` (whole, a range of it, or a 304).
fn file_response(req: &Request, file: Opened) -> Result<Response, HttpError> {
    let Opened {
        size,
        modified,
        etag,
        content_type,
        content,
    } = file;
    let mut resp = Response::new(StatusCode::OK);
    let h = &mut resp.headers;
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    if let Some(mtime) = modified
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(mtime))
    {
        h.insert(LAST_MODIFIED, v);
    }
    if req.argument("v").is_some() {
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static(VERSIONED_CACHE_CONTROL),
        );
    }
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if not_modified(&req.headers, &etag, modified) {
        resp.status = StatusCode::NOT_MODIFIED;
        // Under compression the 200 this revalidates said `Vary` and,
        // if it was gzipped, carried the weakened tag: so does this. A
        // file over one piece is streamed, never compressed.
        let ct = HeaderValue::from_static(content_type);
        let compression = Compression::of(
            req.settings(),
            accepts_gzip(req),
            || Some(&ct),
            (size <= PIECE as u64).then_some(size),
        );
        if compression.varies {
            resp.headers
                .append(VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if compression.gzipped
            && let Ok(weak) = HeaderValue::from_str(&format!("W/{etag}"))
        {
            resp.headers.insert(ETAG, weak);
        }
        return Ok(resp);
    }
    resp.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let (start, len) = match requested_range(&req.headers, size, &etag, modified) {
        Range::Whole => (0, size),
        Range::Part(start, end) => {
            resp.status = StatusCode::PARTIAL_CONTENT;
            let v = format!("bytes {start}-{end}/{size}");
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers.insert(CONTENT_RANGE, v);
            }
            (start, end - start + 1)
        }
        Range::Unsatisfiable => {
            let v = format!("bytes */{size}");
            let mut e = HttpError::new(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = HeaderValue::from_str(&v) {
                e = e.header(CONTENT_RANGE, v);
            }
            return Err(e);
        }
    };
    if req.method == Method::HEAD && len > PIECE as u64 {
        // The length GET would send; the server sends no body. (A
        // smaller file is read as for GET, so that HEAD gets what GET
        // gets after compression too; the server drops the body.)
        resp.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        return Ok(resp);
    }
    if len <= PIECE as u64 {
        resp.body = content.read(start, len)?;
        return Ok(resp);
    }
    Ok(resp.stream(content.stream(start, len)?))
}

/// Whether the client's copy is current: `If-None-Match` decides when
/// present (RFC 9110 §13.2.2), else `If-Modified-Since` (never for a file
/// without a modification time).
fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(inm) = headers.get(IF_NONE_MATCH) {
        return HeaderValue::from_str(etag).is_ok_and(|e| etag_matches(inm, &e));
    }
    let (Some(mtime), Some(since)) = (
        modified,
        headers
            .get(IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()),
    ) else {
        return false;
    };
    // HTTP dates have whole seconds.
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs(mtime) <= secs(since)
}

/// An HTML list of a directory's `entries` (is a directory, name):
/// directories first, then files, each sorted by name.
fn listing(url_path: &str, mut entries: Vec<(bool, String)>) -> Response {
    entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let title = html_escape(url_path);
    let mut body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\
         <body><h1>Index of {title}</h1><ul>"
    );
    if url_path != "/" {
        body.push_str("<li><a href=\"../\">../</a></li>");
    }
    for (is_dir, name) in entries {
        let slash = if is_dir { "/" } else { "" };
        let href = encode_path_part(&name);
        body.push_str(&format!(
            "<li><a href=\"{href}{slash}\">{}{slash}</a></li>",
            html_escape(&name)
        ));
    }
    body.push_str("</ul></body></html>\n");
    Response::html(body)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;

    use bytes::Bytes;

    use super::*;
    use crate::ioloop::IOLoop;
    use crate::iostream::IOStream;
    use crate::netutil::PeerAddr;
    use crate::web::settings::Settings;

    /// Over one piece, so it is streamed.
    static BIG: [u8; 3 * PIECE / 2] = [7; 3 * PIECE / 2];

    static FILES: &[(&str, &[u8])] = &[
        ("index.html", b"<h1>home</h1>"),
        ("/css/site.css", b"body { color: red }\n"),
        ("robots.txt", b"User-agent: *\n"),
        ("big.bin", &BIG),
    ];

    /// What the application would do with `method target` routed by
    /// `static_files("/static/", handler)`, with `headers`.
    fn serve(
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        serve_with(&StaticFileHandler::embedded(FILES), method, target, headers)
    }

    fn serve_with(
        handler: &StaticFileHandler,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let lp = IOLoop::new().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let stream = IOStream::new_on(a, &lp).unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let uri: http::Uri = target.parse().unwrap();
        let rel = uri
            .path()
            .strip_prefix("/static/")
            .unwrap_or("")
            .to_string();
        let http = crate::http1::Request {
            method,
            uri,
            version: http::Version::HTTP_11,
            headers: map.into(),
            body: Bytes::new(),
            remote_addr: PeerAddr::Unix(None),
            remote_ip: None,
            protocol: "http",
            connection: stream.watcher(),
        };
        let req = Request::new(http, vec![rel], Vec::new(), Rc::new(Settings::default()));
        handler.serve(&req)
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn an_embedded_file_is_served_with_its_content_type_and_etag() {
        let r = serve(Method::GET, "/static/css/site.css", &[]).unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], b"body { color: red }\n");
        assert_eq!(header(&r, "content-type"), Some("text/css; charset=utf-8"));
        let etag = header(&r, "etag").unwrap();
        assert!(
            etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        assert_eq!(header(&r, "accept-ranges"), Some("bytes"));
        // No modification time is known: no Last-Modified, consistently.
        assert_eq!(header(&r, "last-modified"), None);
        // The tag is the content's: the same for another handler instance.
        let again = serve(Method::GET, "/static/css/site.css", &[]).unwrap();
        assert_eq!(header(&again, "etag"), Some(etag));
        assert_ne!(
            header(
                &serve(Method::GET, "/static/robots.txt", &[]).unwrap(),
                "etag"
            ),
            Some(etag)
        );
    }

    #[test]
    fn an_embedded_file_is_304_on_its_etag_and_never_on_a_date_alone() {
        let first = serve(Method::GET, "/static/robots.txt", &[]).unwrap();
        let etag = header(&first, "etag").unwrap().to_string();
        let r = serve(
            Method::GET,
            "/static/robots.txt",
            &[("If-None-Match", &etag)],
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        assert!(r.body.is_empty());
        assert_eq!(header(&r, "content-type"), None);
        let far_future = "Fri, 01 Jan 2100 00:00:00 GMT";
        let r = serve(
            Method::GET,
            "/static/robots.txt",
            &[("If-Modified-Since", far_future)],
        );
        assert_eq!(r.unwrap().status, StatusCode::OK);
    }

    #[test]
    fn a_range_of_an_embedded_file_is_206_and_past_the_end_416() {
        let r = serve(Method::GET, "/static/robots.txt", &[("Range", "bytes=0-3")]).unwrap();
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&r.body[..], b"User");
        assert_eq!(header(&r, "content-range"), Some("bytes 0-3/14"));
        let r = serve(Method::GET, "/static/robots.txt", &[("Range", "bytes=-2")]).unwrap();
        assert_eq!(&r.body[..], b"*\n");
        let e = serve(Method::GET, "/static/robots.txt", &[("Range", "bytes=99-")]).unwrap_err();
        assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE);
        // An If-Range date never matches a file without a modification time.
        let stale = [
            ("Range", "bytes=0-3"),
            ("If-Range", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ];
        let r = serve(Method::GET, "/static/robots.txt", &stale).unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.len(), 14);
    }

    #[test]
    fn a_missing_embedded_file_is_404_and_dotdot_403() {
        let e = serve(Method::GET, "/static/nope.txt", &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = serve(Method::GET, "/static/css/nope.css", &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = serve(Method::GET, "/static/css/../robots.txt", &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = serve(Method::POST, "/static/robots.txt", &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn embedded_directories_redirect_serve_their_index_or_a_listing() {
        let r = serve(Method::GET, "/static/", &[]).unwrap();
        assert_eq!(&r.body[..], b"<h1>home</h1>");
        assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        let r = serve(Method::GET, "/static/css?x=1", &[]).unwrap();
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(header(&r, "location"), Some("/static/css/?x=1"));
        let e = serve(Method::GET, "/static/css/", &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let listed = StaticFileHandler::embedded(FILES).index(None).listing(true);
        let r = serve_with(&listed, Method::GET, "/static/", &[]).unwrap();
        let page = String::from_utf8_lossy(&r.body).into_owned();
        let hrefs: Vec<&str> = page
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        // Directories first, then files, as from disk.
        assert_eq!(
            hrefs,
            ["../", "css/", "big.bin", "index.html", "robots.txt"],
            "{page}"
        );
    }

    #[test]
    fn a_large_embedded_file_is_streamed_and_its_head_has_the_length() {
        let r = serve(Method::GET, "/static/big.bin", &[]).unwrap();
        let stream = r.stream.as_ref().expect("streamed");
        assert_eq!(stream.content_length(), Some(BIG.len() as u64));
        let r = serve(Method::HEAD, "/static/big.bin", &[]).unwrap();
        assert_eq!(header(&r, "content-length"), Some(&*BIG.len().to_string()));
        assert!(r.body.is_empty() && r.stream.is_none());
        let r = serve(
            Method::GET,
            "/static/big.bin?v=3",
            &[("Range", "bytes=65530-65545")],
        );
        let r = r.unwrap();
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&r.body[..], &[7; 16]);
        assert_eq!(header(&r, "cache-control"), Some(VERSIONED_CACHE_CONTROL));
    }

    #[test]
    #[should_panic(expected = "not a path under the root")]
    fn an_embedded_path_with_dotdot_is_refused_at_start_up() {
        static BAD: &[(&str, &[u8])] = &[("../secret", b"")];
        let _ = StaticFileHandler::embedded(BAD);
    }
}
