//! [`broadcast`]: one message to many connections, encoded once.

use bytes::Bytes;

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
        let sharing = if message.is_data() {
            ws.sharing(message.payload().len())
        } else {
            None
        };
        let queued = match sharing {
            // An encoding of its own (a client's masks, a compressor that
            // keeps context, a control frame): the usual write.
            None => ws.write_message(message.clone()).error().is_none(),
            Some(key) => {
                let frames = match encoded.iter().find(|(k, _)| *k == key) {
                    Some((_, frames)) => frames.clone(),
                    None => {
                        let Some(frames) = ws.encode(message) else {
                            continue;
                        };
                        encoded.push((key, frames.clone()));
                        frames
                    }
                };
                ws.queue_encoded(frames).is_ok()
            }
        };
        if queued {
            sent += 1;
        }
    }
    sent
}
