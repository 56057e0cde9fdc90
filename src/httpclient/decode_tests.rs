use super::*;

const MAX: usize = 1 << 20;

/// Feeds `input` in pieces of `step` bytes; returns the head, the body
/// and the decoder, or the first error.
fn run(input: &[u8], step: usize, head_request: bool) -> Result<(Head, Vec<u8>, Decoder), String> {
    let mut d = Decoder::new(head_request, 64 << 10, MAX);
    let mut buf = BytesMut::new();
    let (mut head, mut body) = (None, Vec::new());
    let mut rest = input;
    loop {
        loop {
            match d.decode(&mut buf).map_err(|e| format!("{e:?}"))? {
                Some(Event::Head(h)) => head = Some(h),
                Some(Event::Data(b)) => body.extend_from_slice(&b),
                Some(Event::Continue) | Some(Event::End) => {}
                None => break,
            }
            if d.is_done() {
                return Ok((head.unwrap(), body, d));
            }
        }
        if rest.is_empty() {
            d.at_eof().map_err(|e| e.to_string())?;
            return Ok((head.ok_or("no head")?, body, d));
        }
        let n = step.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

/// Status, body and keep-alive, or the error.
type Outcome = Result<(StatusCode, Vec<u8>, bool), String>;

fn each_step(input: &[u8]) -> Vec<Outcome> {
    [1, 2, 7, input.len()]
        .iter()
        .map(|&s| run(input, s, false).map(|(h, b, d)| (h.status, b, d.keep_alive)))
        .collect()
}

#[test]
fn a_content_length_body_is_read_whole_however_it_arrives() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    for got in each_step(input) {
        assert_eq!(got, Ok((StatusCode::OK, b"hello".to_vec(), true)));
    }
}

#[test]
fn a_chunked_body_with_extensions_and_trailers_is_decoded() {
    let input =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 6\r\n\r\n";
    for step in [1, 3, input.len()] {
        let (_, body, d) = run(input, step, false).unwrap();
        assert_eq!(body, b"hello!");
        assert_eq!(d.trailers["x-sum"], "6");
        assert!(d.keep_alive);
    }
}

#[test]
fn a_body_without_framing_runs_to_the_close_and_ends_keep_alive() {
    let input = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
    for got in each_step(input) {
        assert_eq!(got, Ok((StatusCode::OK, b"until the end".to_vec(), false)));
    }
}

#[test]
fn head_204_and_304_have_no_body_whatever_the_head_says() {
    let (_, body, d) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 100, true).unwrap();
    assert!(body.is_empty() && d.is_done());
    for code in [204, 304] {
        let input = format!("HTTP/1.1 {code} X\r\nContent-Length: 10\r\n\r\n");
        let (h, body, d) = run(input.as_bytes(), 100, false).unwrap();
        assert_eq!(
            (h.status.as_u16(), body.len(), d.is_done()),
            (code, 0, true)
        );
    }
}

#[test]
fn interim_responses_are_skipped_and_100_is_reported() {
    let input = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (h, body, _) = run(input, 4, false).unwrap();
    assert_eq!((h.status, body), (StatusCode::OK, b"ok".to_vec()));
    let mut d = Decoder::new(false, 1024, MAX);
    let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
    assert!(matches!(d.decode(&mut buf), Ok(Some(Event::Continue))));
    assert!(!d.has_head());
}

#[test]
fn http_1_0_keeps_alive_only_when_it_says_so() {
    let close = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
    assert!(!run(close, 100, false).unwrap().2.keep_alive);
    let kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx";
    assert!(run(kept, 100, false).unwrap().2.keep_alive);
    let closed = b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\nx";
    assert!(!run(closed, 100, false).unwrap().2.keep_alive);
}

#[test]
fn a_head_ended_by_bare_line_feeds_is_accepted() {
    let input = b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok";
    assert_eq!(
        each_step(input)[0],
        Ok((StatusCode::OK, b"ok".to_vec(), true))
    );
}

#[test]
fn malformed_heads_and_framings_are_refused_with_the_reason() {
    let cases: &[(&[u8], &str)] = &[
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "invalid response head"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "invalid response head"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "differing Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "Transfer-Encoding with Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "transfer coding other than chunked",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            "not followed by CRLF",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n",
            "not ended by CRLF",
        ),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
    ];
    for (input, why) in cases {
        let err = run(input, 100, false).map(|_| ()).unwrap_err();
        assert!(
            err.contains(why),
            "{:?}: {err}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_head_past_the_limit_is_refused_before_it_ends() {
    let mut d = Decoder::new(false, 1024, MAX);
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX: "[..]);
    buf.extend_from_slice(&[b'a'; 2000]);
    let err = d.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Bad(FetchError::TooLarge {
            what: "head",
            limit: 1024
        })
    ));
}

#[test]
fn a_content_length_over_the_body_limit_is_refused_before_the_body() {
    let mut d = Decoder::new(false, 1024, 100);
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n"[..]);
    let err = d.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Bad(FetchError::TooLarge {
            what: "body",
            limit: 100
        })
    ));
}

#[test]
fn a_chunked_body_past_the_limit_is_refused_as_it_grows() {
    let mut d = Decoder::new(false, 1024, 4);
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n";
    let mut buf = BytesMut::from(&input[..]);
    let mut result = Ok(None);
    for _ in 0..4 {
        result = d.decode(&mut buf);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(
        result,
        Err(DecodeError::Bad(FetchError::TooLarge { what: "body", .. }))
    ));
}

#[test]
fn a_close_before_the_end_says_how_much_arrived() {
    let short = run(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        100,
        false,
    );
    assert_eq!(
        short.map(|_| ()).unwrap_err(),
        "the body ended after 3 bytes of the 10 its Content-Length says"
    );
    let chunk = run(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        100,
        false,
    );
    assert!(
        chunk
            .map(|_| ())
            .unwrap_err()
            .contains("after 2 bytes inside a chunk")
    );
    let mut d = Decoder::new(false, 1024, MAX);
    assert!(matches!(d.at_eof(), Err(FetchError::NoResponse)));
    let mut d = Decoder::new(false, 1024, MAX);
    let _ = d.decode(&mut BytesMut::from(&b"HTTP/1.1 2"[..]));
    assert!(matches!(d.at_eof(), Err(FetchError::Malformed(_))));
}

#[test]
fn the_body_arrives_as_views_of_the_buffer() {
    let mut d = Decoder::new(false, 1024, MAX);
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"[..]);
    let start = buf.as_ptr() as usize;
    assert!(matches!(d.decode(&mut buf), Ok(Some(Event::Head(_)))));
    let Ok(Some(Event::Data(body))) = d.decode(&mut buf) else {
        panic!()
    };
    assert_eq!(body.as_ptr() as usize, start + 38);
    assert!(d.is_done());
}

#[test]
fn interim_responses_count_against_the_head_limit_together() {
    let mut d = Decoder::new(false, 1024, MAX);
    let mut buf = BytesMut::new();
    for _ in 0..100 {
        buf.extend_from_slice(b"HTTP/1.1 102 Processing\r\n\r\n");
    }
    let err = d.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Bad(FetchError::TooLarge { what: "head", .. })
    ));
}

#[test]
fn transfer_encoding_in_http_1_0_closes_the_connection_after() {
    let input = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
    let (_, body, d) = run(input, 100, false).unwrap();
    assert_eq!((body.as_slice(), d.keep_alive), (&b"x"[..], false));
}
