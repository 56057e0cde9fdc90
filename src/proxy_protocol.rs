//! HAProxy's PROXY protocol, versions 1 and 2: the header a load balancer
//! sends before a connection's first byte to say whom it is relaying, so
//! that the server sees the real client address instead of the balancer's.
//!
//! A listener opts in ([`TcpServer::set_proxy_protocol`]); one that does
//! not never looks for a header, so a client cannot forge its address
//! there. One that does refuses (closes) a connection whose first bytes
//! are not a valid header: a header that is optional would let a client
//! that reaches the listener directly name any address it likes.
//!
//! The parser is strict, after the specification
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>):
//! version 1's single spaces, addresses of the family named and ports
//! without leading zeros; version 2's signature, version and command, and
//! an address block as long as its family needs. `UNKNOWN` (v1), `LOCAL`
//! and the unspecified or Unix families (v2) keep the connection's own
//! addresses: they are the balancer's health checks, or relays this
//! server cannot use as IP addresses. Version 2's TLVs are skipped.
//!
//! [`TcpServer::set_proxy_protocol`]: crate::TcpServer::set_proxy_protocol

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What a PROXY header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A relayed TCP connection: the client's address and the one it
    /// connected to.
    Relayed {
        /// The client.
        source: SocketAddr,
        /// The address the client connected to (the balancer's).
        destination: SocketAddr,
    },
    /// No client to name (a health check, or a family other than TCP
    /// over IP): the connection's own addresses stand.
    Local,
}

/// Why the first bytes are not a PROXY header this server takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// They are not a PROXY header at all.
    NotProxy,
    /// A PROXY header, broken: what is wrong with it.
    Malformed(&'static str),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("no PROXY protocol header"),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY protocol header: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Version 2's signature, chosen by the specification to be something no
/// other protocol begins with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2's fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// The longest version 1 line, CRLF included (the specification's 107:
/// "PROXY TCP6" with two full IPv6 addresses and two 5-digit ports).
const V1_MAX: usize = 107;
/// The most a version 2 header may take here: its address block (216
/// bytes for Unix paths) plus room for TLVs (a balancer's TLS details and
/// unique id). Longer is refused rather than buffered.
pub const V2_MAX: usize = 2048;

/// Parses a PROXY header from the front of `buf`: `Ok(None)` while more
/// bytes are needed (never more than [`V2_MAX`]), else the header and how
/// many bytes it took.
///
/// ```
/// use cyclone::proxy_protocol::{parse, ProxyHeader};
///
/// let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET / HTTP/1.1\r\n";
/// let (header, used) = parse(line).unwrap().unwrap();
/// assert_eq!(used, 45);
/// match header {
///     ProxyHeader::Relayed { source, .. } => assert_eq!(source.to_string(), "192.0.2.7:51234"),
///     ProxyHeader::Local => unreachable!(),
/// }
/// ```
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Whether `buf` begins like `sig` (as far as either goes).
    let prefix = |sig: &[u8]| sig.starts_with(&buf[..buf.len().min(sig.len())]);
    if prefix(V2_SIGNATURE) {
        return if buf.len() < V2_FIXED {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    if prefix(b"PROXY ") {
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(end) = buf.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError::Malformed(
                "a version 1 line longer than 107 bytes",
            ))
        } else {
            Ok(None)
        };
    };
    let line = match buf[..end].strip_suffix(b"\r") {
        Some(l) => l,
        None => return Err(ProxyError::Malformed("a version 1 line not ended by CRLF")),
    };
    let line =
        std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("non-ASCII in version 1"))?;
    let mut fields = line.split(' ');
    fields.next(); // "PROXY", checked by the caller
    let header = match fields.next() {
        // The rest of the line is the balancer's business.
        Some("UNKNOWN") => ProxyHeader::Local,
        Some(family @ ("TCP4" | "TCP6")) => {
            let v6 = family == "TCP6";
            let mut next = || {
                fields
                    .next()
                    .ok_or(ProxyError::Malformed("a missing field"))
            };
            let (src, dst) = (ip_v1(next()?, v6)?, ip_v1(next()?, v6)?);
            let (sport, dport) = (port_v1(next()?)?, port_v1(next()?)?);
            if fields.next().is_some() {
                return Err(ProxyError::Malformed("fields after the destination port"));
            }
            ProxyHeader::Relayed {
                source: SocketAddr::new(src, sport),
                destination: SocketAddr::new(dst, dport),
            }
        }
        _ => {
            return Err(ProxyError::Malformed(
                "a version 1 family other than TCP4, TCP6, UNKNOWN",
            ));
        }
    };
    Ok(Some((header, end + 1)))
}

/// An address of the family named, in its usual text form.
fn ip_v1(text: &str, v6: bool) -> Result<IpAddr, ProxyError> {
    let ip = if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    ip.map_err(|_| ProxyError::Malformed("an address not of the family named"))
}

/// A port: 0 to 65535 in decimal, no sign, no leading zero.
fn port_v1(text: &str) -> Result<u16, ProxyError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(ProxyError::Malformed(
            "a port that is not a plain decimal number",
        ));
    }
    text.parse()
        .map_err(|_| ProxyError::Malformed("a port above 65535"))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let (ver_cmd, family) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed(
            "a version 2 signature with another version",
        ));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => {
            return Err(ProxyError::Malformed(
                "a version 2 command other than LOCAL or PROXY",
            ));
        }
    };
    if V2_FIXED + len > V2_MAX {
        return Err(ProxyError::Malformed(
            "a version 2 header longer than this server takes",
        ));
    }
    if buf.len() < V2_FIXED + len {
        return Ok(None);
    }
    let block = &buf[V2_FIXED..V2_FIXED + len];
    // The address block each family needs (the specification's sizes).
    let need = match family {
        0x00 => 0,   // UNSPEC
        0x11 => 12,  // TCP over IPv4
        0x21 => 36,  // TCP over IPv6
        0x31 => 216, // Unix stream
        _ => {
            return Err(ProxyError::Malformed(
                "a version 2 family other than TCP or Unix stream",
            ));
        }
    };
    if block.len() < need {
        return Err(ProxyError::Malformed(
            "a version 2 address block shorter than its family",
        ));
    }
    let used = V2_FIXED + len;
    // LOCAL: the balancer speaking for itself; whatever block follows is
    // to be ignored. UNSPEC and Unix: no IP address to give.
    if local || !matches!(family, 0x11 | 0x21) {
        return Ok(Some((ProxyHeader::Local, used)));
    }
    let (source, destination) = if family == 0x11 {
        v2_addresses::<4>(block)
    } else {
        v2_addresses::<16>(block)
    };
    Ok(Some((
        ProxyHeader::Relayed {
            source,
            destination,
        },
        used,
    )))
}

/// A TCP address block of `N`-byte addresses: source and destination
/// address, then source and destination port (the block is long enough:
/// its family was checked).
fn v2_addresses<const N: usize>(block: &[u8]) -> (SocketAddr, SocketAddr)
where
    IpAddr: From<[u8; N]>,
{
    let ip = |at: usize| {
        let mut octets = [0u8; N];
        octets.copy_from_slice(&block[at..at + N]);
        IpAddr::from(octets)
    };
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    (
        SocketAddr::new(ip(0), port(2 * N)),
        SocketAddr::new(ip(N), port(2 * N + 2)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relayed(src: &str, dst: &str) -> ProxyHeader {
        ProxyHeader::Relayed {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
        }
    }

    fn v2(cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x20 | cmd, family]);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    #[test]
    fn a_v1_tcp4_line_names_the_client_and_leaves_what_follows() {
        let got = parse(b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET").unwrap();
        assert_eq!(
            got,
            Some((relayed("192.0.2.7:51234", "198.51.100.1:443"), 45))
        );
    }

    #[test]
    fn a_v1_tcp6_line_names_the_client() {
        let got = parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n").unwrap();
        assert_eq!(
            got,
            Some((relayed("[2001:db8::7]:65535", "[2001:db8::1]:0"), 44))
        );
    }

    #[test]
    fn v1_unknown_keeps_the_connections_own_addresses() {
        let got = parse(b"PROXY UNKNOWN whatever follows\r\n").unwrap();
        assert_eq!(got, Some((ProxyHeader::Local, 32)));
    }

    #[test]
    fn a_v1_line_still_arriving_needs_more_bytes() {
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b"PRO").unwrap(), None);
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 198.51").unwrap(), None);
    }

    #[test]
    fn broken_v1_lines_are_refused_with_why() {
        for line in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\n"[..], // bare LF
            b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",        // family mismatch
            b"PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",         // two spaces
            b"PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",         // leading zero
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",      // port range
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",        // extra field
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",          // family
            b"PROXY TCP4 192.0.2.7\r\n",                           // truncated
        ] {
            assert!(
                matches!(parse(line), Err(ProxyError::Malformed(_))),
                "{line:?}"
            );
        }
        let endless = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100]].concat();
        assert!(matches!(parse(&endless), Err(ProxyError::Malformed(_))));
    }

    #[test]
    fn bytes_that_are_no_proxy_header_are_told_apart() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\x16\x03\x01"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\r\n\r\nX"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn a_v2_tcp4_header_names_the_client_and_skips_its_tlvs() {
        let mut block = vec![192, 0, 2, 7, 198, 51, 100, 1, 0xc8, 0x22, 0x01, 0xbb];
        block.extend_from_slice(&[0x04, 0x00, 0x02, b'i', b'd']); // a NOOP TLV
        let mut h = v2(1, 0x11, &block);
        let len = h.len();
        h.extend_from_slice(b"GET");
        let got = parse(&h).unwrap();
        assert_eq!(
            got,
            Some((relayed("192.0.2.7:51234", "198.51.100.1:443"), len))
        );
    }

    #[test]
    fn a_v2_tcp6_header_names_the_client() {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut block = src.octets().to_vec();
        block.extend_from_slice(&dst.octets());
        block.extend_from_slice(&[0x00, 0x50, 0x01, 0xbb]);
        let got = parse(&v2(1, 0x21, &block)).unwrap();
        assert_eq!(
            got,
            Some((relayed("[2001:db8::7]:80", "[2001:db8::1]:443"), 52))
        );
    }

    #[test]
    fn v2_local_and_unspec_keep_the_connections_own_addresses() {
        let tcp4 = [192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2];
        assert_eq!(
            parse(&v2(0, 0x11, &tcp4)).unwrap(),
            Some((ProxyHeader::Local, 28))
        );
        assert_eq!(
            parse(&v2(1, 0x00, &[])).unwrap(),
            Some((ProxyHeader::Local, 16))
        );
    }

    #[test]
    fn a_v2_header_still_arriving_needs_more_bytes() {
        let h = v2(1, 0x11, &[192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2]);
        for cut in 1..h.len() {
            assert_eq!(parse(&h[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn broken_v2_headers_are_refused_with_why() {
        let tcp4 = [192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2];
        let mut wrong_version = v2(1, 0x11, &tcp4);
        wrong_version[12] = 0x11;
        let mut wrong_command = v2(1, 0x11, &tcp4);
        wrong_command[12] = 0x22;
        for h in [
            wrong_version,
            wrong_command,
            v2(1, 0x12, &tcp4),      // UDP
            v2(1, 0x11, &tcp4[..8]), // block too short for its family
        ] {
            assert!(matches!(parse(&h), Err(ProxyError::Malformed(_))), "{h:?}");
        }
        let mut huge = v2(1, 0x11, &tcp4);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(parse(&huge), Err(ProxyError::Malformed(_))));
    }
}
