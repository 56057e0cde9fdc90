//! Internals of the HTTP/1.1 layer for the fuzz targets (`fuzz/`) and the
//! micro-benchmarks (`benches/micro.rs`), which live outside the crate and
//! can only reach what is public.
//!
//! **Not API.** Hidden from the documentation, outside any compatibility
//! promise: anything here may change or go away in any release. Nothing
//! in the library uses this module (the architecture check ranks it above
//! every layer it re-exports).

pub use crate::http1::encode::{HeadFraming, Persist, encode_head, encode_response, has_body};
pub use crate::http1::framing::{BodyKind, body_kind, is_field_line, parse_chunk_size};
pub use crate::http1::parse::{RequestHead, Seen, parse_head};

/// A TLS server session (rustls, through Cyclone's driver) as a stream's
/// record layer, for the `tls_records` fuzz target. Its certificate is
/// made once per process.
pub fn tls_server_transport() -> Box<dyn crate::iostream::Transport> {
    static CONFIG: std::sync::OnceLock<crate::tls::TlsConfig> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let dev = crate::tls::SelfSigned::generate(&["localhost"]).expect("a certificate");
        crate::tls::TlsConfig::from_pem(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes())
            .expect("a configuration")
    });
    Box::new(crate::tls::session::Session::server(config.server.clone()).expect("a session"))
}

/// A real ClientHello (rustls' own client, for "localhost"), for the
/// `tls_records` fuzz target to start from: past it the server's
/// handshake states are reached, which random bytes almost never are.
pub fn tls_client_hello() -> Vec<u8> {
    static HELLO: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    HELLO
        .get_or_init(|| {
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
            let mut client =
                rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a client");
            let mut hello = Vec::new();
            client.write_tls(&mut hello).expect("a hello");
            hello
        })
        .clone()
}

/// The HTTP client's response decoder run over `data` twice: whole, and
/// handed over in pieces of `piece` bytes (1 to 64). Panics if the two
/// disagree (status, body, trailers, the end, or the error), if body
/// bytes come before a head, or if more body than the limit is accepted:
/// the decoder's answer must not depend on how the bytes arrived.
pub fn response_decoder_agrees_with_itself(data: &[u8], piece: usize, head_request: bool) {
    let whole = decode_response(data, data.len().max(1), head_request);
    let pieces = decode_response(data, piece.clamp(1, 64), head_request);
    assert_eq!(whole, pieces, "decoded whole and in pieces of {piece}");
}

/// What a decode gave: the status, body, trailers and whether it ended,
/// or the error's text.
type Decoded = Result<(Option<u16>, Vec<u8>, Vec<(String, Vec<u8>)>, bool), String>;

fn decode_response(data: &[u8], piece: usize, head_request: bool) -> Decoded {
    use crate::httpclient::decode::{Decoder, Event};
    /// Small limits, so that the fuzzer reaches them.
    const MAX_HEAD: usize = 2048;
    const MAX_BODY: usize = 4096;
    let mut d = Decoder::new(head_request, MAX_HEAD, MAX_BODY);
    let mut buf = bytes::BytesMut::new();
    let (mut status, mut body) = (None, Vec::new());
    let mut rest = data;
    loop {
        loop {
            if d.is_done() {
                let trailers = d
                    .trailers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect();
                return Ok((status, body, trailers, true));
            }
            match d.decode(&mut buf) {
                Ok(Some(Event::Head(h))) => status = Some(h.status.as_u16()),
                Ok(Some(Event::Data(b))) => {
                    assert!(status.is_some(), "body bytes before a head");
                    body.extend_from_slice(&b);
                    assert!(body.len() <= MAX_BODY, "more body than the limit");
                }
                Ok(Some(Event::Continue | Event::End)) => {}
                Ok(None) => break,
                Err(e) => return Err(format!("{e:?}")),
            }
        }
        if rest.is_empty() {
            return match d.at_eof() {
                Ok(()) => Ok((status, body, Vec::new(), true)),
                Err(e) => Err(e.to_string()),
            };
        }
        let n = piece.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

/// The request-head parser on `data`: a head it accepts must be one RFC
/// 9112's grammar allows ([`head_grammar_allows`], a plain reading of
/// §2-§5 written apart from the parser), so nothing the grammar refuses,
/// a smuggling vector first of all, ever reaches a handler. (The parser
/// may refuse more than the grammar does: limits, Host's own grammar.)
pub fn request_head_within_grammar(data: &[u8]) {
    if let Ok(head) = parse_head(bytes::Bytes::copy_from_slice(data), 100) {
        assert!(
            head_grammar_allows(data),
            "accepted outside the grammar: {:?}",
            String::from_utf8_lossy(data)
        );
        let _ = body_kind(&head.headers);
    }
}

/// RFC 9112's request head, read line by line: empty lines first are
/// allowed; `method SP target SP HTTP/1.d CRLF`; field lines `name ":"
/// OWS value OWS CRLF`; a final CRLF, nothing after it. Names and methods
/// are tokens, the target visible ASCII, values visible ASCII, obs-text,
/// SP and HTAB; every line end is CRLF.
pub fn head_grammar_allows(data: &[u8]) -> bool {
    let mut rest = data;
    while let Some(r) = rest.strip_prefix(b"\r\n") {
        rest = r;
    }
    let mut lines = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    if !rest.is_empty() || lines.is_empty() || lines.iter().any(|l| l.contains(&b'\n')) {
        return false;
    }
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let mut parts = lines[0].split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let version_ok =
        matches!(version, [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit());
    if method.is_empty() || !method.iter().all(tchar) || target.is_empty() || !version_ok {
        return false;
    }
    if !target.iter().all(|b| (0x21..0x7f).contains(b)) {
        return false;
    }
    lines[1..].iter().all(|line| {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        !name.is_empty()
            && name.iter().all(tchar)
            && value
                .iter()
                .all(|&b| b == b'\t' || b == b' ' || (0x21..0x7f).contains(&b) || b >= 0x80)
    })
}

/// A body sent in the pieces `data` describes (each piece's length from
/// one byte, then its bytes) with the HTTP layer's chunked framing
/// (`http1::encode::chunk_size_line`), then read back by the HTTP client's decoder in
/// pieces of `read` bytes: the body must come back whole and unchanged,
/// however it was cut.
pub fn chunked_round_trip(data: &[u8], read: usize) {
    use crate::http1::encode::{CHUNKED_END, chunk_size_line};
    let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut sent = Vec::new();
    let mut rest = data;
    while let Some((&n, r)) = rest.split_first() {
        let piece = &r[..usize::from(n).min(r.len())];
        rest = &r[piece.len()..];
        if piece.is_empty() {
            continue; // an empty chunk would be the last one
        }
        wire.extend_from_slice(&chunk_size_line(piece.len()));
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
        sent.extend_from_slice(piece);
    }
    wire.extend_from_slice(CHUNKED_END);
    let got = decode_response(&wire, read.max(1), false);
    assert_eq!(got, Ok((Some(200), sent, Vec::new(), true)));
}

/// The multipart parser on `data` as a body (no panic, whatever it is),
/// then on a body built from `data`'s bytes as files and fields with a
/// boundary they do not contain: what it parses must be what was built.
pub fn multipart_round_trip(data: &[u8]) {
    use crate::web::multipart::parse;
    let body = bytes::Bytes::copy_from_slice(data);
    let _ = parse(&body, "b");
    // Parts of up to 64 bytes each; even ones are files, odd ones fields
    // (fields hold text: their bytes are made ASCII).
    let parts: Vec<Vec<u8>> = data.chunks(64).map(<[u8]>::to_vec).collect();
    let mut boundary = String::from("cyclone");
    while parts.iter().any(|p| contains(p, boundary.as_bytes())) {
        boundary.push('x');
    }
    let mut built = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        built.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if i % 2 == 0 {
            built.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"f{i}\"; filename=\"p{i}.bin\"\r\n\r\n"
                )
                .as_bytes(),
            );
            built.extend_from_slice(p);
        } else {
            built.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"t{i}\"\r\n\r\n").as_bytes(),
            );
            built.extend(p.iter().map(|b| b'a' + b % 26));
        }
        built.extend_from_slice(b"\r\n");
    }
    built.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let (fields, files) =
        parse(&bytes::Bytes::from(built), &boundary).expect("a body built by the rules parses");
    assert_eq!(fields.len() + files.len(), parts.len());
    for (file, (i, p)) in files.iter().zip(parts.iter().enumerate().step_by(2)) {
        assert_eq!(
            (file.name.as_str(), &file.body[..]),
            (format!("f{i}").as_str(), &p[..])
        );
    }
    for ((name, value), (i, p)) in fields
        .iter()
        .zip(parts.iter().enumerate().skip(1).step_by(2))
    {
        let text: String = p.iter().map(|b| char::from(b'a' + b % 26)).collect();
        assert_eq!(
            (name.as_str(), value.as_str()),
            (format!("t{i}").as_str(), text.as_str())
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Cookies on `data`: the `Cookie` header split never panics and yields
/// only names without `;` or `=` and surrounding space; a value signed
/// with [`sign_value`](crate::web::cookies::sign_value) verifies to
/// itself, and not once any byte of it is changed.
pub fn cookies_hold(data: &[u8]) {
    use crate::web::cookies::{parse_cookie_header, sign_value, verify_value};
    let text = String::from_utf8_lossy(data);
    for (name, _) in parse_cookie_header(std::iter::once(&*text)) {
        assert!(
            !name.is_empty() && !name.contains(';') && !name.contains('='),
            "{name:?}"
        );
        assert_eq!(name.trim(), name);
    }
    let day = std::time::Duration::from_secs(86_400);
    let signed = sign_value(b"secret", "c", data);
    assert_eq!(
        verify_value(b"secret", "c", &signed, day).as_deref(),
        Some(data)
    );
    if let Some((&flip, _)) = data.split_first() {
        let mut tampered = signed.into_bytes();
        let at = usize::from(flip) % tampered.len();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        if let Ok(t) = String::from_utf8(tampered) {
            assert_eq!(verify_value(b"secret", "c", &t, day), None, "{t:?}");
        }
    }
}

/// Percent-encoding on `data`: decoding never panics, and any text
/// encoded as a path part decodes back to itself.
pub fn percent_round_trip(data: &[u8]) {
    use crate::web::url::{encode_path_part, percent_decode};
    let text = String::from_utf8_lossy(data);
    let _ = percent_decode(&text);
    assert_eq!(percent_decode(&encode_path_part(&text)), text);
}

/// The static-file resolver on `data` as a request path, under a root
/// made once per process (a file, a directory, and a symlink that leads
/// out of the root): whatever it resolves lies inside the root.
pub fn static_path_stays_inside(data: &[u8]) {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("cyclone-fuzz-root-{}", std::process::id()));
        std::fs::create_dir_all(root.join("dir")).expect("the fuzz root");
        std::fs::write(root.join("dir/file.txt"), b"x").expect("a file");
        let _ = std::os::unix::fs::symlink("/etc", root.join("out"));
        root.canonicalize().expect("the fuzz root")
    });
    let rel = String::from_utf8_lossy(data);
    if let Ok(path) =
        crate::web::static_files::resolve(root, &crate::web::url::percent_decode(&rel))
    {
        assert!(
            path.starts_with(root),
            "{rel:?} resolved to {}",
            path.display()
        );
    }
}

/// The chunk-size line parser on `data`: a size it accepts is the hex
/// number before any `;` (less the blanks allowed there), and every size
/// the encoder writes (`http1::encode::chunk_size_line`,
/// here for `data`'s first eight bytes as a number) parses back to itself.
pub fn chunk_size_agrees(data: &[u8]) {
    if let Ok(n) = parse_chunk_size(data) {
        let digits = data.split(|&b| b == b';').next().unwrap_or_default();
        let digits = std::str::from_utf8(digits).expect("accepted digits are ASCII");
        let digits = digits.trim_end_matches([' ', '\t']);
        assert_eq!(u64::from_str_radix(digits, 16).ok(), Some(n), "{data:?}");
    }
    let mut eight = [0u8; 8];
    let k = data.len().min(8);
    eight[..k].copy_from_slice(&data[..k]);
    let n = u64::from_le_bytes(eight) as usize;
    let line = crate::http1::encode::chunk_size_line(n);
    let line = line
        .strip_suffix(b"\r\n")
        .expect("a size line ends with CRLF");
    assert_eq!(parse_chunk_size(line).ok(), Some(n as u64));
}

/// The PROXY protocol parser on `data`: a header it takes is no longer
/// than `data` nor than the most it buffers, every shorter prefix of it
/// asks for more bytes (a header read as it arrives is read the same as
/// one read whole), and the same bytes alone parse to the same header.
pub fn proxy_header_consistent(data: &[u8]) {
    use crate::proxy_protocol::{V2_MAX, parse};
    let Ok(Some((header, used))) = parse(data) else {
        return;
    };
    assert!(used <= data.len() && used <= V2_MAX, "{data:?}");
    for cut in 0..used {
        assert_eq!(parse(&data[..cut]), Ok(None), "cut at {cut} of {data:?}");
    }
    assert_eq!(parse(&data[..used]), Ok(Some((header, used))));
}
