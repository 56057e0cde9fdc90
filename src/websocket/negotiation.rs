//! permessage-deflate's negotiation (RFC 7692 §5, §7.1): what a client
//! offers, what a server accepts, and what the client accepts back.
//!
//! Parameters are named from the side that compresses: `server_*` limit
//! the server's compressor, `client_*` the client's. [`DeflateConfig`] is
//! written from this endpoint's point of view instead (`own_*` for our
//! compressor, `peer_*` for theirs), so one config serves either role, and
//! so does the outcome, a [`DeflateAgreement`].
//!
//! Off by default on the server, as in Tornado (`compression_options()`
//! returns `None`): nothing here runs unless the application hands a
//! config to the handshake, which then calls [`negotiate_deflate`] with the
//! client's offers. A client offers only when asked ([`offer_deflate`]) and checks
//! the answer with [`accept_deflate_response`].

use super::extension::{Extension, parse_extensions};

/// The extension's registered name (RFC 7692 §7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest LZ77 window a peer may ask for: 2^8 bytes (RFC 7692
/// §7.1.2.1).
pub const MIN_WINDOW_BITS: u8 = 8;
/// The largest, and the default when nothing is negotiated: 2^15 = 32 KiB,
/// DEFLATE's own maximum (RFC 1951; RFC 7692 §7.1.2.1).
pub const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window we compress with. zlib (and zlib-rs, our flate2
/// backend) silently turns a raw deflate window of 8 bits into 9, so a
/// promise to compress within 2^8 bytes could not be kept: offers that
/// require it are declined (RFC 7692 §7.1.2.1 lets a server decline) and a
/// response imposing it is refused.
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// How this endpoint wants permessage-deflate, as a server or a client.
///
/// The defaults: level 1 (zlib-ng's quick strategy; on a 1 KiB text echo
/// over 100 connections with context takeover, level 6 made a message
/// cost 27 times the server CPU of an uncompressed one, level 1 six
/// times), full
/// 32 KiB windows, context kept across messages (as Tornado), every
/// message compressed. [`DeflateConfig::stateless`] keeps no state per
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib compression level, 0 (store) to 9 (smallest); larger values
    /// are treated as 9.
    pub compression_level: u32,
    /// zlib memory level, 1 to 9 (values outside are clamped), 8 by
    /// default as in zlib: how many symbols a block gathers before it is
    /// written (2^(level + 6)), which is also the compressor's buffer
    /// memory, 7 × 2^(level + 6) bytes: 0.9 KiB at 1, 112 KiB at 8.
    /// zlib-rs keeps the rest fixed: its 64 Ki-entry hash table and
    /// windows, 256 KiB at 15 window bits. Lower levels save memory on
    /// connections with context takeover and cost ratio on large
    /// messages (smaller blocks, more block headers). Level 1 without
    /// context takeover uses Cyclone's own encoder, which ignores it.
    pub memory_level: u8,
    /// Reset our compressor after every message (our side's
    /// `*_no_context_takeover`). Costs ratio, saves nothing on the wire
    /// but lets the compressor's window be dropped between messages.
    pub own_no_context_takeover: bool,
    /// The window our compressor uses, at most: 9 to 15 (smaller values
    /// are treated as 9, larger as 15). A peer may ask for less.
    pub own_max_window_bits: u8,
    /// Ask the peer to reset its compressor after every message, which
    /// lets our decompressor reset too.
    pub peer_no_context_takeover: bool,
    /// Ask the peer to compress within 2^bits bytes (8 to 15), which
    /// bounds what our decompressor must remember. Only a request: a
    /// client that does not support the parameter is still accepted and
    /// decompressed with a full window.
    pub peer_max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed (RSV1
    /// clear, which RFC 7692 §6 allows per message): for a few bytes,
    /// DEFLATE's block overhead and the CPU cost outweigh any saving.
    pub min_compress_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            compression_level: 1,
            memory_level: 8,
            own_no_context_takeover: false,
            own_max_window_bits: MAX_WINDOW_BITS,
            peer_no_context_takeover: false,
            peer_max_window_bits: MAX_WINDOW_BITS,
            min_compress_size: 0,
        }
    }
}

impl DeflateConfig {
    /// permessage-deflate without context takeover in either direction:
    /// each message is compressed on its own, so a connection keeps no
    /// compression state between messages and the loop's thread shares one
    /// compressor and one decompressor among all such connections. Costs
    /// ratio on small repetitive messages; saves about 300 KiB of memory
    /// per connection (a zlib stream's hash table and windows) and the
    /// cache misses of touching it.
    ///
    /// ```
    /// use cyclone::websocket::DeflateConfig;
    /// let c = DeflateConfig::stateless();
    /// assert!(c.own_no_context_takeover && c.peer_no_context_takeover);
    /// ```
    pub fn stateless() -> DeflateConfig {
        DeflateConfig {
            own_no_context_takeover: true,
            peer_no_context_takeover: true,
            ..DeflateConfig::default()
        }
    }

    fn own_bits(&self) -> u8 {
        self.own_max_window_bits
            .clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS)
    }

    fn peer_bits(&self) -> u8 {
        self.peer_max_window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
    }
}

/// One direction of a negotiated permessage-deflate: how the compressor
/// of that direction behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectionParams {
    /// The compressor's LZ77 window is at most 2^`window_bits` bytes.
    pub window_bits: u8,
    /// The compressor resets after every message, so the decompressor may
    /// too.
    pub no_context_takeover: bool,
}

/// What both ends agreed: our compressor's parameters and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateAgreement {
    /// Our compressor (what our encoder must respect).
    pub own: DirectionParams,
    /// The peer's compressor (what our decoder must be ready for).
    pub peer: DirectionParams,
}

/// Why a client refuses a server's permessage-deflate response; the client
/// must then fail the connection (RFC 7692 §5.1, §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The header value does not follow RFC 6455 §9.1's grammar.
    #[error("malformed Sec-WebSocket-Extensions response")]
    Syntax,
    /// An extension we did not offer, or permessage-deflate twice.
    #[error("response names extension {0:?}, which was not offered")]
    UnofferedExtension(String),
    /// A parameter we did not offer, an unknown one, one given twice, or
    /// one whose value breaks RFC 7692 §7.1's grammar (e.g. 16).
    #[error("response has unexpected or repeated parameter {0:?}")]
    UnexpectedParameter(String),
    /// `client_max_window_bits` without a value, or a window limit larger
    /// than the one offered.
    #[error("response has an invalid value for {0:?}")]
    InvalidValue(String),
    /// The server requires our compressor to use 2^8-byte windows, which
    /// zlib cannot ([`MIN_COMPRESS_WINDOW_BITS`]).
    #[error("cannot compress with a window of 2^8 bytes")]
    UnsupportedWindowBits,
}

/// The four parameters of RFC 7692 §7.1, as one offer or response set them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value, which only an offer may do
    /// (§7.1.2.2).
    client_max_window_bits: Option<Option<u8>>,
}

/// A permessage-deflate element's parameters, or `Err(name)` for the first
/// parameter that is unknown, repeated, or badly valued (§7.1: any of these
/// makes the element unacceptable).
fn parse_params(extension: &Extension) -> Result<Params, String> {
    let mut params = Params::default();
    for (name, value) in &extension.params {
        let bad = || name.clone();
        let bits = || -> Result<u8, String> {
            let value = value.as_deref().ok_or_else(bad)?;
            // §7.1.2.1: 1*DIGIT in 8..15, no leading zeros ("08" is
            // refused, as the RFC's ABNF is %x38-39 / "1" %x30-35).
            let ok = matches!(value.len(), 1 | 2) && !value.starts_with('0');
            let n: u8 = value.parse().ok().filter(|_| ok).ok_or_else(bad)?;
            (MIN_WINDOW_BITS..=MAX_WINDOW_BITS)
                .contains(&n)
                .then_some(n)
                .ok_or_else(bad)
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if !params.server_no_context_takeover => {
                value.is_none().then_some(()).ok_or_else(bad)?;
                params.server_no_context_takeover = true;
            }
            "client_no_context_takeover" if !params.client_no_context_takeover => {
                value.is_none().then_some(()).ok_or_else(bad)?;
                params.client_no_context_takeover = true;
            }
            "server_max_window_bits" if params.server_max_window_bits.is_none() => {
                params.server_max_window_bits = Some(bits()?);
            }
            "client_max_window_bits" if params.client_max_window_bits.is_none() => {
                let n = if value.is_some() { Some(bits()?) } else { None };
                params.client_max_window_bits = Some(n);
            }
            _ => return Err(bad()),
        }
    }
    Ok(params)
}

/// The server's side: picks the first acceptable permessage-deflate offer
/// among the client's `Sec-WebSocket-Extensions` header values (all of
/// them, in order; RFC 7692 §5.1: the client lists offers by preference)
/// and returns the agreement and the response header value, or `None` to
/// go on without compression.
///
/// An offer is declined if it is malformed, has an unknown, repeated or
/// out-of-range parameter (§7.1), or requires our compressor to use 2^8
/// bytes ([`MIN_COMPRESS_WINDOW_BITS`]).
pub fn negotiate_deflate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<(DeflateAgreement, String)> {
    offers
        .into_iter()
        .flat_map(parse_extensions)
        .filter_map(Result::ok)
        .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .find_map(|e| accept_offer(&parse_params(&e).ok()?, config))
}

/// One offer, accepted or declined (`None`).
fn accept_offer(offer: &Params, config: &DeflateConfig) -> Option<(DeflateAgreement, String)> {
    let mut response = String::from(PERMESSAGE_DEFLATE);
    // §7.1.1.1: a server may reset its context even if not asked, and
    // says so.
    let own_reset = offer.server_no_context_takeover || config.own_no_context_takeover;
    if own_reset {
        response.push_str("; server_no_context_takeover");
    }
    // §7.1.2.1: answer a limit with the same or a smaller value; without
    // one in the offer the response must not name it, and a smaller
    // window is used silently (any decompressor handles it).
    let own_bits = match offer.server_max_window_bits {
        Some(asked) if asked < MIN_COMPRESS_WINDOW_BITS => return None,
        Some(asked) => {
            let bits = asked.min(config.own_bits());
            response.push_str(&format!("; server_max_window_bits={bits}"));
            bits
        }
        None => config.own_bits(),
    };
    // §7.1.1.2: a server may ask the client to reset, offered or not.
    let peer_reset = offer.client_no_context_takeover || config.peer_no_context_takeover;
    if peer_reset {
        response.push_str("; client_no_context_takeover");
    }
    // §7.1.2.2: the client's limit only if it said it supports one.
    let peer_bits = match offer.client_max_window_bits {
        None => MAX_WINDOW_BITS,
        Some(hint) => {
            let bits = hint.unwrap_or(MAX_WINDOW_BITS).min(config.peer_bits());
            if hint.is_some() || bits < MAX_WINDOW_BITS {
                response.push_str(&format!("; client_max_window_bits={bits}"));
            }
            bits
        }
    };
    let agreement = DeflateAgreement {
        own: DirectionParams {
            window_bits: own_bits,
            no_context_takeover: own_reset,
        },
        peer: DirectionParams {
            window_bits: peer_bits,
            no_context_takeover: peer_reset,
        },
    };
    Some((agreement, response))
}

/// The client's side: the `Sec-WebSocket-Extensions` value offering
/// permessage-deflate as `config` asks. It always says
/// `client_max_window_bits` (we can honour any limit from 9 bits up, §7.1.2.2).
pub fn offer_deflate(config: &DeflateConfig) -> String {
    let mut value = String::from(PERMESSAGE_DEFLATE);
    if config.own_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    match config.own_bits() {
        MAX_WINDOW_BITS => value.push_str("; client_max_window_bits"),
        bits => value.push_str(&format!("; client_max_window_bits={bits}")),
    }
    if config.peer_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if config.peer_bits() < MAX_WINDOW_BITS {
        value.push_str(&format!("; server_max_window_bits={}", config.peer_bits()));
    }
    value
}

/// The client's side: checks the server's `Sec-WebSocket-Extensions`
/// response to [`offer_deflate`]`(config)` and returns what was agreed.
///
/// Refused (the client must then fail the connection): another extension
/// or a second permessage-deflate, an unknown or repeated parameter,
/// `server_max_window_bits` above what we offered (unasked it is
/// accepted: §7.1.2.1 lets a server name its smaller window),
/// `client_max_window_bits` without a value or above what we offered, or
/// a limit of 8 bits on our compressor.
pub fn accept_deflate_response(
    value: &str,
    config: &DeflateConfig,
) -> Result<DeflateAgreement, NegotiationError> {
    let mut found = None;
    for element in parse_extensions(value) {
        let extension = element.map_err(|_| NegotiationError::Syntax)?;
        if !extension.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) || found.is_some() {
            return Err(NegotiationError::UnofferedExtension(extension.name));
        }
        found = Some(extension);
    }
    let extension = found.ok_or(NegotiationError::Syntax)?;
    let params = parse_params(&extension).map_err(NegotiationError::UnexpectedParameter)?;
    let invalid = |name: &str| Err(NegotiationError::InvalidValue(name.into()));
    // §7.1.2.2: the server may limit our window, never above what we
    // offered; a response must carry a value.
    let own_bits = match params.client_max_window_bits {
        None => config.own_bits(),
        Some(None) => return invalid("client_max_window_bits"),
        Some(Some(bits)) if bits > config.own_bits() => return invalid("client_max_window_bits"),
        Some(Some(bits)) if bits < MIN_COMPRESS_WINDOW_BITS => {
            return Err(NegotiationError::UnsupportedWindowBits);
        }
        Some(Some(bits)) => bits,
    };
    // §7.1.2.1: never above our own limit; unasked, the server may still
    // name a smaller window than the default.
    let offered_peer_bits = (config.peer_bits() < MAX_WINDOW_BITS).then_some(config.peer_bits());
    let peer_bits = match (params.server_max_window_bits, offered_peer_bits) {
        (None, _) => MAX_WINDOW_BITS,
        (Some(bits), None) => bits,
        (Some(bits), Some(offered)) if bits > offered => return invalid("server_max_window_bits"),
        (Some(bits), Some(_)) => bits,
    };
    Ok(DeflateAgreement {
        own: DirectionParams {
            window_bits: own_bits,
            // We reset if we offered to, whether or not the server echoed it.
            no_context_takeover: params.client_no_context_takeover
                || config.own_no_context_takeover,
        },
        peer: DirectionParams {
            window_bits: peer_bits,
            no_context_takeover: params.server_no_context_takeover,
        },
    })
}
