//! [`RequestHandler`]: Tornado's class-based handler, one instance per
//! request, with a method per HTTP verb and `prepare`/`on_finish` hooks.

use http::{HeaderValue, Method, StatusCode};

use super::{HttpError, Request};
use crate::http1::Response;

/// A handler in Tornado's style: a fresh instance per request (from the
/// factory given to [`Application::handler`](super::Application::handler)),
/// [`prepare`](Self::prepare) first, then the method for the request's
/// verb, then [`on_finish`](Self::on_finish).
///
/// [`METHODS`](Self::METHODS) lists the verbs it implements: any other
/// gets `405 Method Not Allowed` with an `Allow` header listing them
/// (HEAD is allowed wherever GET is, and answered by `get` without the
/// body unless `head` is overridden).
///
/// ```
/// use cyclone::http1::Response;
/// use cyclone::web::{Application, HttpError, Request, RequestHandler};
/// use http::Method;
///
/// #[derive(Default)]
/// struct User;
///
/// impl RequestHandler for User {
///     const METHODS: &'static [Method] = &[Method::GET];
///     async fn get(&mut self, req: Request) -> Result<Response, HttpError> {
///         Ok(Response::text(format!("user {}", req.path_arg(0).unwrap_or("?"))))
///     }
/// }
///
/// let app = Application::new().handler(r"/user/(\d+)", User::default);
/// ```
#[allow(async_fn_in_trait)] // handlers run on one loop: no Send bound wanted
pub trait RequestHandler: 'static {
    /// The verbs implemented.
    const METHODS: &'static [Method];

    /// Runs before the verb's method; an error answers the request
    /// instead (authentication, loading shared state).
    async fn prepare(&mut self, _req: &mut Request) -> Result<(), HttpError> {
        Ok(())
    }

    /// GET.
    async fn get(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(method_not_allowed(Self::METHODS))
    }

    /// HEAD: `get`'s answer; the server sends its head only.
    async fn head(&mut self, req: Request) -> Result<Response, HttpError> {
        self.get(req).await
    }

    /// POST.
    async fn post(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(method_not_allowed(Self::METHODS))
    }

    /// PUT.
    async fn put(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(method_not_allowed(Self::METHODS))
    }

    /// DELETE.
    async fn delete(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(method_not_allowed(Self::METHODS))
    }

    /// PATCH.
    async fn patch(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(method_not_allowed(Self::METHODS))
    }

    /// OPTIONS.
    async fn options(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(method_not_allowed(Self::METHODS))
    }

    /// Runs after the answer is made, with its status (cleanup, metrics);
    /// after a panic in `prepare` or the verb too, with 500. (Not when the
    /// request is abandoned: at the server's shutdown deadline unfinished
    /// handlers are dropped.)
    fn on_finish(&mut self, _status: StatusCode) {}
}

/// The verbs `methods` allows, HEAD included wherever GET is.
pub(crate) fn allows(methods: &[Method], m: &Method) -> bool {
    methods.contains(m) || (*m == Method::HEAD && methods.contains(&Method::GET))
}

/// The `Allow` value for `methods`.
pub(crate) fn allow_header(methods: &[Method]) -> HeaderValue {
    let mut list: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
        list.push("HEAD");
    }
    HeaderValue::from_str(&list.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A 405 listing `methods` in `Allow`.
pub(crate) fn method_not_allowed(methods: &[Method]) -> HttpError {
    HttpError::new(StatusCode::METHOD_NOT_ALLOWED)
        .header(http::header::ALLOW, allow_header(methods))
}

/// Runs one request through a fresh handler.
pub(crate) async fn run<H: RequestHandler>(
    mut handler: H,
    mut req: Request,
) -> Result<Response, HttpError> {
    let method = req.method.clone();
    if !allows(H::METHODS, &method) {
        handler.on_finish(StatusCode::METHOD_NOT_ALLOWED);
        return Err(method_not_allowed(H::METHODS));
    }
    let h = &mut handler;
    let answered = crate::ioloop::CatchUnwind::new(async move {
        match h.prepare(&mut req).await {
            Err(e) => Err(e),
            Ok(()) => match method {
                Method::GET => h.get(req).await,
                Method::HEAD => h.head(req).await,
                Method::POST => h.post(req).await,
                Method::PUT => h.put(req).await,
                Method::DELETE => h.delete(req).await,
                Method::PATCH => h.patch(req).await,
                Method::OPTIONS => h.options(req).await,
                _ => Err(method_not_allowed(H::METHODS)),
            },
        }
    })
    .await;
    let result = match answered {
        Ok(r) => r,
        Err(panic) => {
            // on_finish hears of it too; the panic then goes on to the
            // web layer, which answers 500 and logs it.
            handler.on_finish(StatusCode::INTERNAL_SERVER_ERROR);
            std::panic::resume_unwind(panic)
        }
    };
    let status = match &result {
        Ok(r) => r.status,
        Err(e) => e.status,
    };
    handler.on_finish(status);
    result
}
