//! The fd another thread writes to wake the loop out of its poll: an
//! eventfd on Linux (one fd, an 8-byte counter), a pipe elsewhere.

#[cfg(target_os = "linux")]
mod eventfd;
#[cfg(target_os = "linux")]
pub(crate) use eventfd::WakerFd;

#[cfg(not(target_os = "linux"))]
mod pipe;
#[cfg(not(target_os = "linux"))]
pub(crate) use pipe::WakerFd;
