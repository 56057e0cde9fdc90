//! Where a static file handler's files come from: a directory on disk,
//! or files compiled into the binary. The handler asks the same three
//! questions of both (what is at this path, the index of a directory, a
//! directory's entries) and reads what it found through [`Content`], so
//! validators, ranges and listings are written once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::StatusCode;

use super::mime::content_type;
use crate::http1::BodyStream;
use crate::web::conditional::body_hash;
use crate::web::error::HttpError;

/// Files up to this size are read whole; larger ones are sent in pieces
/// of this size, one in memory at a time.
pub(crate) const PIECE: usize = 64 * 1024;

/// The files a handler serves.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A directory, canonical (symlinks resolved once): nothing outside
    /// it is served.
    Disk(PathBuf),
    /// Files compiled into the binary, by their `/`-separated path under
    /// the root. Directories are implied by the paths.
    Embedded(BTreeMap<String, EmbeddedFile>),
}

/// One file compiled into the binary.
#[derive(Clone)]
pub(crate) struct EmbeddedFile {
    bytes: &'static [u8],
    /// Its content's hash: the same bytes keep the same tag across builds.
    etag: String,
}

impl std::fmt::Debug for EmbeddedFile {
    // Its size, not its bytes: a handler's Debug must stay readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFile")
            .field("len", &self.bytes.len())
            .field("etag", &self.etag)
            .finish()
    }
}

/// What a path names.
pub(crate) enum Found {
    File(Opened),
    Dir(Dir),
}

/// A directory of a [`Source`].
pub(crate) enum Dir {
    Disk(PathBuf),
    /// Its path under the root, `""` for the root itself.
    Embedded(String),
}

/// A file ready to be answered with.
pub(crate) struct Opened {
    pub(crate) size: u64,
    /// `None` for embedded files: the binary's build time is not known
    /// to the library, so they have no `Last-Modified` and their ETag is
    /// the only validator.
    pub(crate) modified: Option<std::time::SystemTime>,
    /// The strong entity tag, quoted.
    pub(crate) etag: String,
    pub(crate) content_type: &'static str,
    pub(crate) content: Content,
}

/// A file's bytes, not yet read.
pub(crate) enum Content {
    Disk(File, PathBuf),
    Embedded(&'static [u8]),
}

impl Source {
    /// Files compiled into the binary (see `StaticFileHandler::embedded`).
    ///
    /// # Panics
    /// On a path that names no file under the root (empty, or with `..`).
    pub(crate) fn embedded(files: &'static [(&'static str, &'static [u8])]) -> Source {
        let mut map = BTreeMap::new();
        for &(name, bytes) in files {
            let key = match segments(name) {
                Ok(s) if !s.is_empty() => s.join("/"),
                _ => panic!("embedded file {name:?} is not a path under the root"),
            };
            let etag = format!("\"{:016x}\"", body_hash(bytes));
            map.insert(key, EmbeddedFile { bytes, etag });
        }
        Source::Embedded(map)
    }

    /// What `rel` (a path under the root, already percent-decoded) names.
    /// `..` is a 403 and a NUL a 400, whichever the source; on disk, so is
    /// a symlink that leads out of the root.
    pub(crate) fn find(&self, rel: &str) -> Result<Found, HttpError> {
        match self {
            Source::Disk(root) => {
                let path = resolve(root, rel)?;
                if path.is_dir() {
                    return Ok(Found::Dir(Dir::Disk(path)));
                }
                open(&path).map(Found::File)
            }
            Source::Embedded(files) => {
                let key = segments(rel)?.join("/");
                if let Some(file) = files.get(&key) {
                    return Ok(Found::File(opened(&key, file)));
                }
                if key.is_empty() || has_entries(files, &key) {
                    return Ok(Found::Dir(Dir::Embedded(key)));
                }
                Err(HttpError::new(StatusCode::NOT_FOUND))
            }
        }
    }

    /// The file `name` in `dir`, if it is one (and, on disk, inside the
    /// root: the index may be a symlink too). An error only if it exists
    /// but cannot be opened.
    pub(crate) fn index(&self, dir: &Dir, name: &str) -> Result<Option<Opened>, HttpError> {
        match (self, dir) {
            (Source::Disk(root), Dir::Disk(path)) => match inside(root, &path.join(name)) {
                Ok(file) if file.is_file() => open(&file).map(Some),
                _ => Ok(None),
            },
            (Source::Embedded(files), Dir::Embedded(path)) => {
                let key = join(path, name);
                Ok(files.get(&key).map(|file| opened(&key, file)))
            }
            _ => Ok(None),
        }
    }

    /// `dir`'s entries as (is a directory, name), in no particular order.
    pub(crate) fn list(&self, dir: &Dir) -> Result<Vec<(bool, String)>, HttpError> {
        match (self, dir) {
            (Source::Disk(_), Dir::Disk(path)) => {
                let read = std::fs::read_dir(path)
                    .map_err(|e| HttpError::new(StatusCode::FORBIDDEN).log(e.to_string()))?;
                Ok(read
                    .filter_map(Result::ok)
                    .map(|e| {
                        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                        (is_dir, e.file_name().to_string_lossy().into_owned())
                    })
                    .collect())
            }
            (Source::Embedded(files), Dir::Embedded(path)) => {
                let prefix = join(path, "");
                let mut entries: Vec<(bool, String)> = files
                    .range(prefix.clone()..)
                    .map_while(|(k, _)| k.strip_prefix(&prefix))
                    .map(|rest| match rest.split_once('/') {
                        Some((sub, _)) => (true, sub.to_string()),
                        None => (false, rest.to_string()),
                    })
                    .collect();
                // A subdirectory appears once per file under it.
                entries.dedup();
                Ok(entries)
            }
            _ => Ok(Vec::new()),
        }
    }
}

impl Content {
    /// Bytes `start..start + len`, whole.
    pub(crate) fn read(self, start: u64, len: u64) -> Result<Bytes, HttpError> {
        match self {
            Content::Disk(mut file, path) => {
                file.seek(SeekFrom::Start(start))
                    .map_err(|e| failed(&path, e))?;
                let mut body = vec![0; len as usize];
                file.read_exact(&mut body).map_err(|e| failed(&path, e))?;
                Ok(Bytes::from(body))
            }
            Content::Embedded(bytes) => Ok(Bytes::from_static(slice(bytes, start, len))),
        }
    }

    /// Bytes `start..start + len` as a stream of [`PIECE`]-sized pieces,
    /// one in memory at a time (on disk: read as they are sent).
    pub(crate) fn stream(self, start: u64, len: u64) -> Result<BodyStream, HttpError> {
        match self {
            Content::Disk(mut file, path) => {
                file.seek(SeekFrom::Start(start))
                    .map_err(|e| failed(&path, e))?;
                Ok(BodyStream::new(Some(len), pieces(file, len)))
            }
            Content::Embedded(bytes) => {
                let pieces = slice(bytes, start, len)
                    .chunks(PIECE)
                    .map(|c| Ok(Bytes::from_static(c)));
                Ok(BodyStream::new(Some(len), pieces))
            }
        }
    }
}

/// The normal segments of `rel`: `.` and leading slashes dropped, `..`
/// (already percent-decoded by the router) refused.
/// What `rel` (already percent-decoded) names under the disk root
/// `root`, symlinks followed: a path inside the root, or the error to
/// answer (`..` 403, NUL 400, missing 404, a symlink out of the root 403).
pub(crate) fn resolve(root: &Path, rel: &str) -> Result<PathBuf, HttpError> {
    let mut path = root.to_path_buf();
    path.extend(segments(rel)?);
    inside(root, &path)
}

fn segments(rel: &str) -> Result<Vec<&str>, HttpError> {
    if rel.contains('\0') {
        return Err(HttpError::new(StatusCode::BAD_REQUEST));
    }
    let mut out = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            // From a `&str`, so valid UTF-8.
            Component::Normal(seg) => out.extend(seg.to_str()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(HttpError::new(StatusCode::FORBIDDEN));
            }
        }
    }
    Ok(out)
}

/// `dir/name` for embedded paths (`name` alone at the root).
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether some embedded file lies under directory `dir`.
fn has_entries(files: &BTreeMap<String, EmbeddedFile>, dir: &str) -> bool {
    let prefix = join(dir, "");
    files
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

fn opened(key: &str, file: &EmbeddedFile) -> Opened {
    Opened {
        size: file.bytes.len() as u64,
        modified: None,
        etag: file.etag.clone(),
        content_type: content_type(Path::new(key)),
        content: Content::Embedded(file.bytes),
    }
}

/// `bytes[start..start + len]`, clamped to what there is.
fn slice(bytes: &'static [u8], start: u64, len: u64) -> &'static [u8] {
    let start = (start as usize).min(bytes.len());
    let end = start.saturating_add(len as usize).min(bytes.len());
    &bytes[start..end]
}

/// `path` with every symlink resolved, if that lies inside `root`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, HttpError> {
    let real = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            HttpError::new(StatusCode::NOT_FOUND)
        }
        _ => HttpError::new(StatusCode::FORBIDDEN),
    })?;
    // A symlink inside the root may point anywhere.
    if !real.starts_with(root) {
        return Err(HttpError::new(StatusCode::FORBIDDEN).log("symlink out of the root"));
    }
    Ok(real)
}

/// The regular file at `path`, opened, with its validators.
fn open(path: &Path) -> Result<Opened, HttpError> {
    // Non-blocking: opening a FIFO without a writer must not stall the
    // loop (regular files ignore the flag).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| failed(path, e))?;
    let meta = file.metadata().map_err(|e| failed(path, e))?;
    if !meta.is_file() {
        // FIFOs, sockets, devices: not files to serve.
        return Err(HttpError::new(StatusCode::NOT_FOUND));
    }
    let size = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let since_epoch = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(Opened {
        size,
        modified: Some(mtime),
        etag: format!(
            "\"{:x}-{:x}{:08x}\"",
            size,
            since_epoch.as_secs(),
            since_epoch.subsec_nanos()
        ),
        content_type: content_type(path),
        content: Content::Disk(file, path.to_path_buf()),
    })
}

/// An I/O error on `path` as the status it deserves, logged with the path.
fn failed(path: &Path, e: io::Error) -> HttpError {
    let status = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    HttpError::new(status).log(format!("{}: {e}", path.display()))
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
