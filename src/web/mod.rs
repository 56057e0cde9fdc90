//! The web layer, in the manner of `tornado.web`: an [`Application`]
//! routes each request to a handler — an async function of [`Request`],
//! or a [`RequestHandler`] — and turns what it returns (a
//! [`Response`](crate::http1::Response) or an [`HttpError`]) into the
//! answer, adding ETags and `304`s, optional gzip, XSRF checks and an
//! access log line. [`StaticFileHandler`] serves a directory, or files
//! compiled into the binary.
//!
//! Route patterns are regular expressions over the whole path, as in
//! Tornado: `r"/user/(\d+)"` passes `"7"` for `/user/7`
//! ([`Request::path_arg`]); `(?P<name>...)` groups are named
//! ([`Request::path_kwarg`]). A pattern without regex syntax is compared
//! as a plain string.

mod application;
mod conditional;
pub mod cookies;
mod error;
mod handler;
pub mod metrics;
pub(crate) mod multipart;
mod request;
mod response;
mod router;
mod settings;
pub(crate) mod static_files;
pub(crate) mod url;
mod websocket;
mod xsrf;

pub use application::Application;
pub use cookies::{Cookie, SameSite};
pub use error::HttpError;
pub use handler::RequestHandler;
pub use multipart::UploadedFile;
pub use request::Request;
pub use response::{IntoResponse, html_escape};
pub use settings::Settings;
pub use static_files::StaticFileHandler;
pub use websocket::WebSocketHandler;
pub use xsrf::{mask_xsrf_token, xsrf_token};
