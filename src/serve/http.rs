//! The canvas's HTTP server (axum): the page's static files, embedded in the binary, and
//! the JSON API of [`super::Api`] under `/api/`.
//!
//! Safety rules: the socket is bound to 127.0.0.1 only; every `/api/` request must carry
//! the run's token as `Authorization: Bearer TOKEN` (compared in constant time), else 401;
//! a request whose `Host` is not `127.0.0.1:PORT` or `localhost:PORT` is refused (421: a
//! web page elsewhere cannot reach the API by DNS rebinding); no CORS header is ever sent,
//! so another origin's page cannot read an answer. The static page holds no data: it reads
//! the token from its URL's fragment (`#token=`), which the browser never sends.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::{Api, ApiError, TraceQuery};

/// The page, its script and its style sheet, embedded at build time.
const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

/// What every handler shares: the API, the token and the address the server answers as.
#[derive(Debug)]
pub struct Shared {
    pub api: Api,
    pub token: String,
    pub port: u16,
}

type St = State<Arc<Shared>>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(self.body())).into_response()
    }
}

/// 32 hexadecimal digits from the operating system's random source.
///
/// # Errors
/// The source is not available.
pub fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal strings, compared in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The checks every request passes: the Host header, then (for `/api/`) the token; and
/// the request logged in the open case's audit trail.
async fn guard(State(s): St, req: Request, next: Next) -> Response {
    let host_ok = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| {
            h == format!("127.0.0.1:{}", s.port) || h == format!("localhost:{}", s.port)
        });
    if !host_ok {
        return ApiError {
            status: 421,
            kind: "auth",
            message: "this server answers only as 127.0.0.1 or localhost".into(),
            hint: "open the URL `chaintrace serve` printed".into(),
        }
        .into_response();
    }
    let path = req.uri().path().to_string();
    if path.starts_with("/api/") {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), s.token.as_bytes()) {
            return ApiError {
                status: 401,
                kind: "auth",
                message: "missing or wrong token".into(),
                hint: "open the URL `chaintrace serve` printed (it carries the token after #token=), or send Authorization: Bearer TOKEN".into(),
            }
            .into_response();
        }
        let method = req.method().to_string();
        let logged = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let s2 = s.clone();
        let log = tokio::task::spawn_blocking(move || s2.api.log_request(&method, &logged)).await;
        match log {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.into_response(),
            Err(e) => return ApiError::internal(e.to_string()).into_response(),
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    resp
}

/// Runs `f` on the blocking pool (the API reads files and computes) and answers its JSON.
async fn blocking(
    s: Arc<Shared>,
    f: impl FnOnce(&Api) -> Result<Value, ApiError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(&s.api)).await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("the request failed: {e}")).into_response(),
    }
}

fn bad_query(e: &QueryRejection) -> Response {
    ApiError::input(
        format!("malformed query: {}", e.body_text()),
        "see docs/API.md for the parameters",
    )
    .into_response()
}

fn bad_json(e: &JsonRejection) -> Response {
    ApiError::input(
        format!("malformed JSON body: {}", e.body_text()),
        "see docs/API.md for the fields",
    )
    .into_response()
}

/// Paging parameters (`offset`, `limit`, `top`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    25
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    #[serde(default = "default_top")]
    top: usize,
}

fn default_top() -> usize {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    q: String,
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expand {
    address: String,
    #[serde(default)]
    direction: String,
    #[serde(default = "default_expand")]
    limit: usize,
}

fn default_expand() -> usize {
    100
}

/// `POST /api/save`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Save {
    trace: TraceQuery,
    #[serde(default)]
    annotations: Value,
    /// Replace a different trace in the case (`chaintrace trace --force`).
    #[serde(default)]
    replace: bool,
}

/// No query parameter (any is refused, as the documented ones are checked elsewhere).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

async fn info(State(s): St, q: Result<Query<NoParams>, QueryRejection>) -> Response {
    match q {
        Ok(_) => blocking(s, |api| Ok(api.info())).await,
        Err(e) => bad_query(&e),
    }
}

async fn search(State(s): St, q: Result<Query<Search>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => blocking(s, move |api| api.search(&q.q, q.offset, q.limit)).await,
        Err(e) => bad_query(&e),
    }
}

async fn address(
    State(s): St,
    Path(a): Path<String>,
    q: Result<Query<Page>, QueryRejection>,
) -> Response {
    match q {
        Ok(Query(p)) => blocking(s, move |api| api.address(&a, p.offset, p.limit)).await,
        Err(e) => bad_query(&e),
    }
}

async fn cluster(
    State(s): St,
    Path(a): Path<String>,
    q: Result<Query<Top>, QueryRejection>,
) -> Response {
    match q {
        Ok(Query(t)) => blocking(s, move |api| api.cluster(&a, t.top)).await,
        Err(e) => bad_query(&e),
    }
}

async fn tx(
    State(s): St,
    Path(t): Path<String>,
    q: Result<Query<NoParams>, QueryRejection>,
) -> Response {
    match q {
        Ok(_) => blocking(s, move |api| api.tx(&t)).await,
        Err(e) => bad_query(&e),
    }
}

async fn expand(State(s): St, q: Result<Query<Expand>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => blocking(s, move |api| api.expand(&q.address, &q.direction, q.limit)).await,
        Err(e) => bad_query(&e),
    }
}

async fn trace(State(s): St, b: Result<axum::Json<TraceQuery>, JsonRejection>) -> Response {
    match b {
        Ok(axum::Json(q)) => blocking(s, move |api| api.trace(&q)).await,
        Err(e) => bad_json(&e),
    }
}

async fn save(State(s): St, b: Result<axum::Json<Save>, JsonRejection>) -> Response {
    match b {
        Ok(axum::Json(q)) => {
            blocking(s, move |api| api.save(&q.trace, &q.annotations, q.replace)).await
        }
        Err(e) => bad_json(&e),
    }
}

async fn annotations(State(s): St, q: Result<Query<NoParams>, QueryRejection>) -> Response {
    match q {
        Ok(_) => blocking(s, Api::annotations).await,
        Err(e) => bad_query(&e),
    }
}

async fn api_not_found() -> Response {
    ApiError::not_found(
        "no such API endpoint",
        "see docs/API.md: /api/info, search, address, cluster, tx, expand, trace, save",
    )
    .into_response()
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// The router of the page and the API (state: the API, token and port).
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/info", get(info))
        .route("/search", get(search))
        .route("/address/{address}", get(address))
        .route("/cluster/{address}", get(cluster))
        .route("/tx/{txid}", get(tx))
        .route("/expand", get(expand))
        .route("/trace", post(trace))
        .route("/save", post(save))
        .route("/annotations", get(annotations))
        .fallback(api_not_found);
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .nest("/api", api)
        .fallback(|| async {
            (StatusCode::NOT_FOUND, HeaderMap::new(), "not found").into_response()
        })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// Binds 127.0.0.1:`port` (0: any free port) and returns the listener with its address.
///
/// # Errors
/// The port is taken or binding is not allowed.
pub async fn bind(port: u16) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

/// Serves `shared` on `listener` until Ctrl-C (SIGINT) or SIGTERM.
///
/// # Errors
/// The server fails.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be watched");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(stop)
        .await
}
