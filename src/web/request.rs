//! [`Request`]: the HTTP request plus what a web handler asks of it —
//! path captures, arguments, uploads, cookies, JSON.

use std::cell::OnceCell;
use std::rc::Rc;

use http::header::{CONTENT_TYPE, COOKIE};

use super::cookies::{self, Cookie};
use super::error::HttpError;
use super::multipart::{self, UploadedFile};
use super::settings::Settings;
use super::url::percent_decode;
use crate::http1;

/// A request as a web handler sees it. It dereferences to the
/// [`http1::Request`] (method, uri, headers, body, remote address).
///
/// Arguments follow Tornado: the query string's and, for
/// `application/x-www-form-urlencoded` and `multipart/form-data` bodies,
/// the body's; [`argument`](Self::argument) is the last value given.
pub struct Request {
    http: http1::Request,
    path_args: Vec<String>,
    path_kwargs: Vec<(String, String)>,
    settings: Rc<Settings>,
    /// Parsed on first use, in one allocation: a request nobody asks
    /// about stays small (it is moved into the handler's future).
    parsed: OnceCell<Box<Parsed>>,
}

#[derive(Default)]
struct Parsed {
    query: OnceCell<Vec<(String, String)>>,
    form: OnceCell<Result<Form, HttpError>>,
    cookies: OnceCell<Vec<(String, String)>>,
}

#[derive(Default)]
struct Form {
    fields: Vec<(String, String)>,
    files: Vec<UploadedFile>,
}

impl std::ops::Deref for Request {
    type Target = http1::Request;
    fn deref(&self) -> &http1::Request {
        &self.http
    }
}

impl std::ops::DerefMut for Request {
    fn deref_mut(&mut self) -> &mut http1::Request {
        &mut self.http
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.http.method)
            .field("uri", &self.http.uri)
            .field("path_args", &self.path_args)
            .field("path_kwargs", &self.path_kwargs)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub(crate) fn new(
        http: http1::Request,
        path_args: Vec<String>,
        path_kwargs: Vec<(String, String)>,
        settings: Rc<Settings>,
    ) -> Request {
        Request {
            http,
            path_args,
            path_kwargs,
            settings,
            parsed: OnceCell::new(),
        }
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(Box::default)
    }

    /// The HTTP request underneath.
    pub fn into_inner(self) -> http1::Request {
        self.http
    }

    /// The route's unnamed captures, percent-decoded, in order
    /// (`/user/(\d+)` on `/user/7` gives `["7"]`).
    pub fn path_args(&self) -> &[String] {
        &self.path_args
    }

    /// Capture `i` (see [`path_args`](Self::path_args)).
    pub fn path_arg(&self, i: usize) -> Option<&str> {
        self.path_args.get(i).map(String::as_str)
    }

    /// A named capture (`(?P<id>\d+)`), percent-decoded.
    pub fn path_kwarg(&self, name: &str) -> Option<&str> {
        self.path_kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn query_args(&self) -> &[(String, String)] {
        self.parsed().query.get_or_init(|| {
            self.http
                .uri
                .query()
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn form(&self) -> Result<&Form, HttpError> {
        self.parsed()
            .form
            .get_or_init(|| {
                let ct = self
                    .http
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let kind = ct.split(';').next().unwrap_or("").trim();
                if kind.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                    let fields = form_urlencoded::parse(&self.http.body)
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    Ok(Form {
                        fields,
                        files: Vec::new(),
                    })
                } else if let Some(b) = multipart::boundary(ct) {
                    let (fields, files) = multipart::parse(&self.http.body, &b)?;
                    Ok(Form { fields, files })
                } else {
                    Ok(Form::default())
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The body's form fields, or the error a malformed multipart body
    /// gives (a 400).
    pub fn body_arguments(&self) -> Result<Vec<(&str, &str)>, HttpError> {
        Ok(self
            .form()?
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect())
    }

    /// Every value of argument `name`: the query's, then the body's.
    /// A malformed form body counts as no arguments (see
    /// [`body_arguments`](Self::body_arguments) for its error).
    pub fn arguments(&self, name: &str) -> Vec<&str> {
        self.all_arguments()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The last value of argument `name`, if any.
    pub fn argument(&self, name: &str) -> Option<&str> {
        self.all_arguments()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query's arguments, then the form body's, in order.
    fn all_arguments(&self) -> impl DoubleEndedIterator<Item = &(String, String)> {
        let body = self.form().map(|f| f.fields.as_slice()).unwrap_or(&[]);
        self.query_args().iter().chain(body)
    }

    /// The last value of argument `name`, or a 400 naming it.
    pub fn required_argument(&self, name: &str) -> Result<&str, HttpError> {
        self.argument(name).ok_or_else(|| {
            HttpError::new(http::StatusCode::BAD_REQUEST).reason(format!("Missing argument {name}"))
        })
    }

    /// The files uploaded under form field `name` (multipart bodies).
    pub fn files(&self, name: &str) -> Vec<&UploadedFile> {
        self.form()
            .map(|f| f.files.iter().filter(|u| u.name == name).collect())
            .unwrap_or_default()
    }

    /// The body parsed as JSON; a body that is not is a 400.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.http.body).map_err(|e| {
            HttpError::new(http::StatusCode::BAD_REQUEST)
                .reason("Invalid JSON body")
                .log(e.to_string())
        })
    }

    /// Every cookie the client sent, in order.
    pub fn cookies(&self) -> &[(String, String)] {
        self.parsed().cookies.get_or_init(|| {
            cookies::parse_cookie_header(
                self.http
                    .headers
                    .get_all(COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            )
        })
    }

    /// Cookie `name`'s value, percent-decoded (see
    /// [`Cookie::encoded`](super::Cookie::encoded)).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.raw_cookie(name).map(percent_decode)
    }

    fn raw_cookie(&self, name: &str) -> Option<&str> {
        self.cookies()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Cookie `name`'s value if it carries a valid signature (set with
    /// [`Response::set_signed_cookie`](crate::http1::Response)) made with
    /// the application's `cookie_secret` less than
    /// `signed_cookie_max_age` ago; a tampered, foreign or expired cookie
    /// gives `None`. Without a `cookie_secret`, always `None`.
    pub fn signed_cookie(&self, name: &str) -> Option<String> {
        let secret = self.settings.cookie_secret.as_deref()?;
        let raw = self.raw_cookie(name)?;
        let value = cookies::verify_value(secret, name, raw, self.settings.signed_cookie_max_age)?;
        String::from_utf8(value).ok()
    }

    /// `cookie` with its value signed with the application's
    /// `cookie_secret`, to send with
    /// [`Response::set_cookie`](crate::http1::Response::set_cookie) and
    /// read back with [`signed_cookie`](Self::signed_cookie). Without a
    /// `cookie_secret` this is a 500 (a configuration error).
    ///
    /// ```
    /// # fn f(req: &cyclone::web::Request) -> Result<(), cyclone::web::HttpError> {
    /// use cyclone::web::Cookie;
    /// let c = req.sign_cookie(Cookie::new("user", "alice").http_only())?;
    /// let resp = cyclone::http1::Response::text("hi").set_cookie(c);
    /// # Ok(()) }
    /// ```
    pub fn sign_cookie(&self, cookie: Cookie) -> Result<Cookie, HttpError> {
        let secret = self.settings.cookie_secret.as_deref().ok_or_else(|| {
            HttpError::new(http::StatusCode::INTERNAL_SERVER_ERROR)
                .log("signed cookies need Application::cookie_secret")
        })?;
        let signed = cookies::sign_value(secret, cookie.name(), cookie.value().as_bytes());
        Ok(cookie.with_value(signed))
    }

    /// The application's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}
