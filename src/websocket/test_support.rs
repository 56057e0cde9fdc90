//! What the codec's tests share: a client's masked frame built by hand,
//! and decoding bytes fed at once or one at a time. The decoding helpers
//! take the decode step as a closure, so that this file depends on no
//! decoder and the decoder's own tests can use it.

use bytes::{BufMut, BytesMut};

use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode, encode_header};
use super::mask::apply_mask;
use super::message::Message;

/// The masking key of RFC 6455 §5.7's masked examples.
pub(super) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Everything a run of decoding produced, an error last if any.
pub(super) type Results = Vec<Result<Message, ProtocolError>>;

/// A masked frame, as a client sends it, with the given RSV1.
pub(super) fn client_frame(fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv1,
        mask: Some(KEY),
        ..FrameHeader::new(opcode, payload.len() as u64)
    };
    let mut dst = BytesMut::new();
    encode_header(&header, &mut dst);
    let start = dst.len();
    dst.extend_from_slice(payload);
    apply_mask(&mut dst[start..], KEY, 0);
    dst.to_vec()
}

/// Every result of decoding `bytes` fed at once, up to the first error.
pub(super) fn decode_all(
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<Message>, ProtocolError>,
    bytes: &[u8],
) -> Results {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match decode(&mut buf) {
            Ok(Some(m)) => out.push(Ok(m)),
            Ok(None) => return out,
            Err(e) => {
                out.push(Err(e));
                return out;
            }
        }
    }
}

/// The same, one byte per read, calling `decode` after every byte even
/// once it has failed (it must then return nothing).
pub(super) fn decode_bytewise(
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<Message>, ProtocolError>,
    bytes: &[u8],
) -> Results {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for &b in bytes {
        buf.put_u8(b);
        loop {
            match decode(&mut buf) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
    }
    out
}
