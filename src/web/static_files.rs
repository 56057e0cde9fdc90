//! [`StaticFileHandler`]: files from a directory, with validators,
//! ranges, and no way out of the directory.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE, VARY,
};
use http::{HeaderValue, Method, StatusCode};

use super::conditional::{Compression, accepts_gzip, etag_matches};
use super::error::HttpError;
use super::handler::method_not_allowed;
use super::request::Request;
use super::response::html_escape;
use super::url::encode_path_part;
use crate::http1::{BodyStream, Response};

/// Files up to this size are read whole; larger ones are sent in pieces
/// of this size, one in memory at a time.
const PIECE: usize = 64 * 1024;

/// `Cache-Control` for a URL that carries a version (`?v=...`): the
/// content at that URL never changes, so a year (RFC 9111 caches may
/// keep it that long).
const VERSIONED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Serves the files of one directory, like Tornado's handler of the same
/// name and nginx's `root`:
///
/// - `index.html` (configurable) for a directory, which is first
///   redirected to its `/`-ended URL; optionally a listing instead;
/// - `Content-Type` from the extension;
/// - `ETag` (size and modification time) and `Last-Modified`, with
///   `If-None-Match` / `If-Modified-Since` answered by `304`;
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
    root: PathBuf,
    index: Option<String>,
    listing: bool,
}

impl StaticFileHandler {
    /// Serves `root` (which must exist; it is resolved once, symlinks
    /// included, and nothing outside it is served).
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFileHandler> {
        let root = root.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFileHandler {
            root,
            index: Some("index.html".to_string()),
            listing: false,
        })
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

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Answers `req`, whose first capture is the path under the root.
    pub fn serve(&self, req: &Request) -> Result<Response, HttpError> {
        if req.method != Method::GET && req.method != Method::HEAD {
            return Err(method_not_allowed(&[Method::GET]));
        }
        let rel = req.path_arg(0).unwrap_or("");
        let path = self.resolve(rel)?;
        if path.is_dir() {
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
            if let Some(index) = &self.index {
                // Checked like any path: the index may be a symlink too.
                if let Ok(file) = self.inside(&path.join(index))
                    && file.is_file()
                {
                    return self.file(req, &file);
                }
            }
            if self.listing {
                return listing(req.uri.path(), &path);
            }
            return Err(HttpError::new(StatusCode::FORBIDDEN));
        }
        self.file(req, &path)
    }

    /// The file for `rel`, checked to lie inside the root.
    fn resolve(&self, rel: &str) -> Result<PathBuf, HttpError> {
        if rel.contains('\0') {
            return Err(HttpError::new(StatusCode::BAD_REQUEST));
        }
        let mut path = self.root.clone();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(seg) => path.push(seg),
                Component::CurDir | Component::RootDir => {}
                // `..` (already percent-decoded by the router) or a prefix.
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(HttpError::new(StatusCode::FORBIDDEN));
                }
            }
        }
        self.inside(&path)
    }

    /// `path` with every symlink resolved, if that lies inside the root.
    fn inside(&self, path: &Path) -> Result<PathBuf, HttpError> {
        let real = path.canonicalize().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                HttpError::new(StatusCode::NOT_FOUND)
            }
            _ => HttpError::new(StatusCode::FORBIDDEN),
        })?;
        // A symlink inside the root may point anywhere.
        if !real.starts_with(&self.root) {
            return Err(HttpError::new(StatusCode::FORBIDDEN).log("symlink out of the root"));
        }
        Ok(real)
    }

    fn file(&self, req: &Request, path: &Path) -> Result<Response, HttpError> {
        let failed = |e: io::Error| {
            let status = match e.kind() {
                io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
                io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            HttpError::new(status).log(format!("{}: {e}", path.display()))
        };
        // Non-blocking: opening a FIFO without a writer must not stall the
        // loop (regular files ignore the flag).
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(failed)?;
        let meta = file.metadata().map_err(failed)?;
        if !meta.is_file() {
            // FIFOs, sockets, devices: not files to serve.
            return Err(HttpError::new(StatusCode::NOT_FOUND));
        }
        let size = meta.len();
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let since_epoch = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
        let etag = format!(
            "\"{:x}-{:x}{:08x}\"",
            size,
            since_epoch.as_secs(),
            since_epoch.subsec_nanos()
        );
        let mut resp = Response::new(StatusCode::OK);
        let h = &mut resp.headers;
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(mtime)) {
            h.insert(LAST_MODIFIED, v);
        }
        if req.argument("v").is_some() {
            h.insert(
                CACHE_CONTROL,
                HeaderValue::from_static(VERSIONED_CACHE_CONTROL),
            );
        }
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if not_modified(req, &etag, mtime) {
            resp.status = StatusCode::NOT_MODIFIED;
            // Under compression the 200 this revalidates said `Vary` and,
            // if it was gzipped, carried the weakened tag: so does this. A
            // file over one piece is streamed, never compressed.
            let ct = HeaderValue::from_static(content_type(path));
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
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
        let (start, len) = match requested_range(req, size, &etag, mtime) {
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
        file.seek(SeekFrom::Start(start)).map_err(failed)?;
        if len <= PIECE as u64 {
            let mut body = vec![0; len as usize];
            file.read_exact(&mut body).map_err(failed)?;
            resp.body = Bytes::from(body);
            return Ok(resp);
        }
        Ok(resp.stream(BodyStream::new(Some(len), pieces(file, len))))
    }
}

/// `file`'s next `len` bytes in [`PIECE`]-sized pieces.
fn pieces(mut file: File, mut len: u64) -> impl Iterator<Item = io::Result<Bytes>> {
    std::iter::from_fn(move || {
        if len == 0 {
            return None;
        }
        let n = len.min(PIECE as u64) as usize;
        let mut buf = vec![0; n];
        Some(file.read_exact(&mut buf).map(|()| {
            len -= n as u64;
            Bytes::from(buf)
        }))
    })
}

/// Whether the client's copy is current: `If-None-Match` decides when
/// present (RFC 9110 §13.2.2), else `If-Modified-Since`.
fn not_modified(req: &Request, etag: &str, mtime: SystemTime) -> bool {
    if let Some(inm) = req.headers.get(IF_NONE_MATCH) {
        return HeaderValue::from_str(etag).is_ok_and(|e| etag_matches(inm, &e));
    }
    let Some(since) = req
        .headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    // HTTP dates have whole seconds.
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs(mtime) <= secs(since)
}

enum Range {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// The one range asked for in `Range: bytes=...` (RFC 9110 §14.1.2),
/// honoured only if an `If-Range` validator still matches (§13.1.5: a
/// client resuming a download of a file that changed gets all of it).
fn requested_range(req: &Request, size: u64, etag: &str, mtime: SystemTime) -> Range {
    if let Some(v) = req.headers.get(IF_RANGE).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let current = if v.starts_with('"') || v.starts_with("W/") {
            // Strong comparison: a weak tag never matches.
            v == etag
        } else {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            httpdate::parse_http_date(v).is_ok_and(|d| secs(d) == secs(mtime))
        };
        if !current {
            return Range::Whole;
        }
    }
    let Some(spec) = req
        .headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole; // several ranges: the whole file is allowed
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(b) {
            Some(0) => Range::Unsatisfiable,
            Some(n) if size > 0 => Range::Part(size.saturating_sub(n), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        // bytes=A-: from A to the end.
        (false, true) => match num(a) {
            Some(s) if s < size => Range::Part(s, size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e && s < size => Range::Part(s, e.min(size - 1)),
            (Some(s), Some(e)) if s <= e => Range::Unsatisfiable,
            _ => Range::Whole, // invalid: ignored
        },
        (true, true) => Range::Whole,
    }
}

/// The media type for `path`'s extension (text with `charset=utf-8`).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt" | "md" | "rs" | "toml") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("pdf") => "application/pdf",
        Some("wasm") => "application/wasm",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("tar") => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// An HTML list of `dir`'s entries (directories first, then files, each
/// sorted by name).
fn listing(url_path: &str, dir: &Path) -> Result<Response, HttpError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| HttpError::new(StatusCode::FORBIDDEN).log(e.to_string()))?;
    let mut entries: Vec<(bool, String)> = read
        .filter_map(Result::ok)
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (is_dir, e.file_name().to_string_lossy().into_owned())
        })
        .collect();
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
    Ok(Response::html(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(Path::new("a/b.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x.png")), "image/png");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
