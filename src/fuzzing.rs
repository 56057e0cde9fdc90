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
