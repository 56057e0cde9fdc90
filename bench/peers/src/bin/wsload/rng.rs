//! A small PRNG (xorshift64*) for mask keys, handshake keys and message
//! text: unpredictable enough for a benchmark, and nothing to install.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// Seeded from the clock and the process id, different on each run.
    pub fn from_clock(salt: u64) -> Self {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Rng::new(t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn key(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }
}

/// Words for message text: something like a chat or JSON payload, so
/// permessage-deflate has realistic work (neither random bytes, which do
/// not compress, nor one repeated string, which compresses to nothing).
const WORDS: [&str; 48] = [
    "the", "user", "message", "id", "status", "ok", "true", "false", "null", "value", "time", "server", "client",
    "room", "chat", "hello", "world", "price", "order", "name", "type", "event", "update", "delete", "create",
    "list", "items", "count", "total", "error", "code", "text", "{\"a\":", "\"b\":[", "],", "}", "latency",
    "stream", "socket", "frame", "data", "queue", "ready", "open", "close", "ping", "pong", "payload",
];

/// Exactly `len` bytes of ASCII text: words and numbers drawn from `rng`.
pub fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 24);
    while out.len() < len {
        let r = rng.next();
        if r.is_multiple_of(5) {
            out.extend_from_slice((r >> 8 & 0xFFFFF).to_string().as_bytes());
        } else {
            out.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes());
        }
        out.push(b' ');
    }
    out.truncate(len);
    out
}
