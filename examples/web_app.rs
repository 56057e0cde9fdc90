//! A small web application: routes with captures, a Tornado-style
//! handler, JSON, signed cookies and static files.
//!
//! `cargo run --example web_app`, then:
//!   curl http://127.0.0.1:8890/
//!   curl http://127.0.0.1:8890/user/7
//!   curl -d '{"name": "ada"}' http://127.0.0.1:8890/api/greet
//!   curl -c jar -b jar 'http://127.0.0.1:8890/login?name=ada'; curl -b jar http://127.0.0.1:8890/me

use cyclone::http1::Response;
use cyclone::web::{Application, Cookie, HttpError, Request, RequestHandler, StaticFileHandler};
use http::{Method, StatusCode};

/// The Tornado form: one instance per request, a method per verb.
struct User;

impl RequestHandler for User {
    const METHODS: &'static [Method] = &[Method::GET, Method::DELETE];

    async fn get(&mut self, req: Request) -> Result<Response, HttpError> {
        let id: u32 = req
            .path_arg(0)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND))?;
        Ok(Response::json(
            &serde_json::json!({ "id": id, "name": format!("user{id}") }),
        ))
    }

    async fn delete(&mut self, _req: Request) -> Result<Response, HttpError> {
        Err(HttpError::new(StatusCode::FORBIDDEN).reason("users are forever"))
    }
}

#[derive(serde::Deserialize)]
struct Greet {
    name: String,
}

async fn greet(req: Request) -> Result<Response, HttpError> {
    let g: Greet = req.json()?; // a body that is not JSON: 400
    Ok(Response::json(
        &serde_json::json!({ "greeting": format!("hello, {}", g.name) }),
    ))
}

async fn login(req: Request) -> Result<Response, HttpError> {
    let name = req.required_argument("name")?; // missing: 400
    let cookie = req.sign_cookie(Cookie::new("user", name).path("/").http_only())?;
    Ok(Response::redirect("/me").set_cookie(cookie))
}

async fn me(req: Request) -> Response {
    match req.signed_cookie("user") {
        Some(name) => Response::text(format!("you are {name}\n")),
        None => Response::text("not logged in\n").status(StatusCode::UNAUTHORIZED),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init(); // the access log, one line per request
    let lp = cyclone::IOLoop::new()?;
    let app = Application::new()
        .cookie_secret("change me: a long random secret")
        .route("/", |_req: Request| async {
            Response::html("<h1>web_app</h1>")
        })
        .handler(r"/user/(\d+)", || User)
        .route("/api/greet", greet)
        .route("/login", login)
        .route("/me", me)
        .static_files(
            "/static/",
            StaticFileHandler::new(concat!(env!("CARGO_MANIFEST_DIR"), "/public"))?,
        );
    let server = app.into_server();
    server.listen(8890, Some("127.0.0.1"))?;
    println!("web_app on http://127.0.0.1:8890/");
    lp.start()?;
    Ok(())
}
