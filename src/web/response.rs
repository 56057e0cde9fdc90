//! Response helpers for web handlers: HTML, JSON, redirects, header
//! editing, cookies; [`IntoResponse`] for what handlers may return.

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, SET_COOKIE};

use super::cookies::Cookie;
use super::error::HttpError;
use crate::http1::Response;

impl Response {
    /// `200 OK` with a `text/html; charset=utf-8` body.
    pub fn html(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK)
            .set_header(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )
            .body(body)
    }

    /// `200 OK` with an `application/octet-stream` body.
    pub fn bytes(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK)
            .set_header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )
            .body(body)
    }

    /// `200 OK` with `value` as JSON (`application/json`). A value serde
    /// cannot write as JSON (a map with non-string keys) is a 500.
    ///
    /// ```
    /// let r = cyclone::http1::Response::json(&serde_json::json!({"ok": true}));
    /// assert_eq!(&r.body[..], br#"{"ok":true}"#);
    /// ```
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(StatusCode::OK)
                .set_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body),
            Err(e) => error_page(
                &HttpError::new(StatusCode::INTERNAL_SERVER_ERROR).log(e.to_string()),
                None,
            ),
        }
    }

    /// `302 Found` to `url`.
    pub fn redirect(url: &str) -> Response {
        Response::redirect_with(StatusCode::FOUND, url)
    }

    /// A redirect to `url` with `status`: 301, 302, 303, 307 or 308.
    ///
    /// # Panics
    /// On any other status (a programming error; the server answers 500).
    pub fn redirect_with(status: StatusCode, url: &str) -> Response {
        assert!(
            matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308),
            "{status} is not a redirect status"
        );
        let mut r = Response::new(status);
        match HeaderValue::from_str(url) {
            Ok(v) => {
                r.headers.insert(LOCATION, v);
                r
            }
            Err(_) => error_page(
                &HttpError::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .log(format!("redirect to an invalid URL {url:?}")),
                None,
            ),
        }
    }

    /// Sets header `name`, replacing any values it had.
    pub fn set_header(mut self, name: HeaderName, value: HeaderValue) -> Response {
        self.headers.insert(name, value);
        self
    }

    /// Removes header `name`.
    pub fn clear_header(mut self, name: HeaderName) -> Response {
        self.headers.remove(name);
        self
    }

    /// Adds a `Set-Cookie` for `cookie`.
    ///
    /// A cookie that cannot be sent as is ([`Cookie::invalid`]: say, a
    /// value with `;` that would add attributes) turns the response into
    /// a 500 and is logged, as Tornado's `ValueError` does: silently
    /// sending it would let its text choose the cookie's attributes.
    pub fn set_cookie(mut self, cookie: Cookie) -> Response {
        let refused = |why: &str| {
            error_page(
                &HttpError::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .log(format!("{why}: {:?}", cookie.name())),
                None,
            )
        };
        if let Some(why) = cookie.invalid() {
            tracing::error!("{why}: {:?}", cookie.name());
            return refused(why);
        }
        match HeaderValue::from_str(&cookie.to_header()) {
            Ok(v) => {
                self.headers.append(SET_COOKIE, v);
                self
            }
            Err(_) => refused("cookie has characters a header cannot carry"),
        }
    }

    /// Tells the client to delete cookie `name` (set at `path`).
    pub fn clear_cookie(self, name: &str, path: &str) -> Response {
        self.set_cookie(
            Cookie::new(name, "")
                .path(path)
                .max_age(0)
                .expires(std::time::UNIX_EPOCH),
        )
    }
}

/// An error page for `e`: `<status> <phrase>` as HTML, with `trace`
/// (debug mode) below it.
pub(crate) fn error_page(e: &HttpError, trace: Option<&str>) -> Response {
    let code = e.status.as_u16();
    let phrase = html_escape(e.phrase());
    let mut body = format!(
        "<!DOCTYPE html>\n<html><head><title>{code}: {phrase}</title></head>\
         <body><h1>{code}: {phrase}</h1>"
    );
    if let Some(t) = trace {
        body.push_str("<pre>");
        body.push_str(&html_escape(t));
        body.push_str("</pre>");
    }
    body.push_str("</body></html>\n");
    let mut r = Response::html(body).status(e.status);
    for (k, v) in &e.headers {
        r.headers.append(k.clone(), v.clone());
    }
    r
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a web handler may return.
pub trait IntoResponse {
    /// The response (an error becomes its error page).
    fn into_response(self) -> Result<Response, HttpError>;
}

impl IntoResponse for Response {
    fn into_response(self) -> Result<Response, HttpError> {
        Ok(self)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Result<Response, HttpError> {
        Err(self)
    }
}

impl<E: Into<HttpError>> IntoResponse for Result<Response, E> {
    fn into_response(self) -> Result<Response, HttpError> {
        self.map_err(Into::into)
    }
}

impl<E: Into<HttpError>> IntoResponse for Result<String, E> {
    fn into_response(self) -> Result<Response, HttpError> {
        self.map(Response::text).map_err(Into::into)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Result<Response, HttpError> {
        Ok(Response::text(self))
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Result<Response, HttpError> {
        Ok(Response::text(self))
    }
}
