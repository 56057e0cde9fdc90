//! [`broadcast`]: one message to many connections, encoded once.

use bytes::{Bytes, BytesMut};

use super::encoder::Sharing;
use super::message::Message;
use super::socket::WebSocket;

/// Sends `message` to every connection in `sockets` and returns to how
/// many it was queued (closed and closing connections are skipped, and a
/// connection whose peer has stopped reading is cut off at its write
/// buffer limit, as for any write).
///
/// A server's frames are not masked, so connections that encode alike
/// share one encoding: without compression every connection gets the
/// same bytes (one `Bytes`, reference-counted, no copy per connection);
/// with permessage-deflate and no context takeover, connections with the
/// same level and window share one compressed frame. A connection that
/// compresses with context takeover, or a client, encodes its own.
///
/// Nothing is awaited: a broadcast to ten thousand connections costs ten
/// thousand queued writes, not ten thousand round trips.
pub fn broadcast<'a>(sockets: impl IntoIterator<Item = &'a WebSocket>, message: &Message) -> usize {
    // Few distinct encodings exist in practice (one, or a couple of
    // deflate settings): a short list beats a map.
    let mut encoded: Vec<(Sharing, Bytes)> = Vec::new();
    let mut sent = 0;
    for ws in sockets {
        if ws.is_closing() || ws.is_closed() {
            continue;
        }
        let len = message.payload().len();
        let frames = match ws.sharing(len) {
            Some(key) => match encoded.iter().find(|(k, _)| *k == key) {
                Some((_, frames)) => frames.clone(),
                None => {
                    let mut dst = BytesMut::with_capacity(len + 14);
                    if !ws.encode_into(&mut dst, message) {
                        continue;
                    }
                    let frames = dst.freeze();
                    encoded.push((key, frames.clone()));
                    frames
                }
            },
            None => {
                let mut dst = BytesMut::with_capacity(len + 14);
                if !ws.encode_into(&mut dst, message) {
                    continue;
                }
                dst.freeze()
            }
        };
        if ws.queue_encoded(frames).is_ok() {
            sent += 1;
        }
    }
    sent
}
