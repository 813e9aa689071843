//! The JSON-RPC client for every node and provider (Bitcoin Core, Ethereum), on one
//! well-kept HTTP stack (reqwest: HTTP/1.1 and 2, `https://` with rustls, a custom CA,
//! HTTP and SOCKS5 proxies, extra headers for API keys). Connections are pooled; each
//! request has a timeout and a bounded reply size; transient failures (timeouts,
//! refused/reset connections, HTTP 5xx and 429 — honouring `Retry-After` —, malformed JSON,
//! the node still warming up, RPC error -28) are retried with capped exponential backoff,
//! each retry announced. Wrong credentials and untrusted certificates fail at once.
//! Secrets (passwords, API keys in a header or a URL path) never reach a message: URLs
//! are shown through [`redact`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::types::n64;
use serde_json::Value;
use thiserror::Error;

/// The largest reply read (bytes): a hostile or broken server cannot exhaust memory.
pub const MAX_REPLY: usize = 1 << 30;

/// Where and how to reach the node.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// `http://host:port[/path]`.
    pub url: String,
    /// `user:password` (from `--rpc-user/--rpc-password` or the cookie file).
    pub auth: Option<String>,
    pub timeout: Duration,
    /// Attempts per call, the first included.
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A PEM file of CA certificates to trust besides the system's (`--ca-cert`).
    pub ca_cert: Option<std::path::PathBuf>,
    /// A proxy for every request (`--proxy`: `http://`, `socks5://`, `socks5h://`);
    /// without it the `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` environment applies.
    pub proxy: Option<String>,
    /// Extra headers (`Name: value`), e.g. an API key; their values are secret.
    pub headers: Vec<(String, String)>,
}

/// An RPC failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RpcError {
    #[error(
        "{url} rejected the credentials (HTTP {status}); check --rpc-cookie (the node's .cookie file) or --rpc-user/--rpc-password"
    )]
    Unauthorized { url: String, status: u16 },
    #[error("{method} failed after {attempts} attempt(s): {last}")]
    Exhausted {
        method: String,
        attempts: u32,
        last: String,
    },
    #[error("{method}: node returned error {code}: {message}")]
    Node {
        method: String,
        code: i64,
        message: String,
    },
    #[error("{url} is not an http:// or https:// URL (http[s]://host[:port][/path])")]
    BadUrl { url: String },
    #[error(
        "{url}: the TLS connection failed ({why}); if the server uses your own certificate authority, give --ca-cert FILE (PEM), or set SSL_CERT_FILE"
    )]
    Tls { url: String, why: String },
    #[error("the HTTP client cannot be set up: {0}")]
    Setup(String),
    /// A REST source (Esplora) answered a GET with an error status.
    #[error("{url}: HTTP {status}: {excerpt:?}")]
    Http {
        url: String,
        status: u16,
        /// The start of the reply body (at most 200 characters, secrets redacted).
        excerpt: String,
    },
    /// A REST source answered with something that is not its API's reply.
    #[error("{url}: {what}")]
    NotApi { url: String, what: String },
    #[error(
        "{url}: the server does not answer in TLS ({why}); if it is a plain-HTTP endpoint, give its URL with http://"
    )]
    NotTls { url: String, why: String },
}

/// Awaits `work(item)` for every item, at most `limit` at a time (each on the runtime), and
/// returns the outputs in the items' order: the one concurrency pattern of every network
/// source (blocks over RPC and Esplora, Ethereum calls, neighbourhood fetches, balances).
///
/// # Panics
/// Only if a task panicked (none does: their errors are values).
pub async fn in_order<I, T, F, Fut>(items: Vec<I>, limit: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let n = items.len();
    let mut set = tokio::task::JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        // Futures are lazy: nothing runs before the permit is held.
        let (fut, sem) = (work(item), sem.clone());
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, v) = r.expect("network tasks do not panic");
        out[i] = Some(v);
    }
    out.into_iter()
        .map(|v| v.expect("every task reports"))
        .collect()
}

/// A request pacer for `--max-rps`: callers await [`Pacer::wait`] before each request,
/// so that requests start at most `max_rps` per second (0: unpaced).
#[derive(Debug)]
pub struct Pacer {
    every: Duration,
    next: tokio::sync::Mutex<std::time::Instant>,
}

impl Pacer {
    /// A pacer for `max_rps` requests per second; 0 or less does not pace.
    pub fn new(max_rps: f64) -> Pacer {
        Pacer {
            every: if max_rps > 0.0 && max_rps.is_finite() {
                Duration::from_secs_f64(1.0 / max_rps)
            } else {
                Duration::ZERO
            },
            next: tokio::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// Waits for the next request's turn.
    pub async fn wait(&self) {
        if self.every.is_zero() {
            return;
        }
        let mut next = self.next.lock().await;
        let now = std::time::Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = (*next).max(now) + self.every;
    }
}

/// The start of a reply body for a message: at most 200 characters, control characters
/// dropped, secrets redacted.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let short: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(200)
        .collect();
    redact_text(short.trim())
}

/// Secrets the clients of this process were given (API keys in URL paths, header values,
/// passwords): [`redact_text`] hides them wherever they appear.
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Registers `secret` (an API key, a password) so that [`redact_text`] hides it in every
/// message. [`RpcClient::new`] registers those of its configuration.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.len() < 4 {
        return;
    }
    let mut s = SECRETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !s.iter().any(|x| x == secret) {
        s.push(secret.to_string());
        // Longest first, so that a secret containing another is hidden whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// `text` with every URL's credentials and query hidden and every registered secret
/// ([`register_secret`]) replaced by `***` (an HTTP library's error text repeats the URL it
/// failed on, in its own spelling). Path segments that are not registered secrets stay
/// readable (block hashes, txids and addresses of an API path).
pub fn redact_text(text: &str) -> String {
    hide_registered(redact_urls(text, redact_structure))
}

/// `text` (a command-line argument such as `esplora:https://host/v3/KEY`) with every URL in
/// it passed through [`redact`] (credentials, query and key-like path segments hidden) and
/// every registered secret replaced: for what is written into files.
pub fn redact_in(text: &str) -> String {
    hide_registered(redact_urls(text, redact))
}

fn hide_registered(mut out: String) -> String {
    for secret in SECRETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// `text` with every URL in it passed through `how`. A URL ends at white space, a quote
/// or a bracket; trailing punctuation (`:;,.`) is not part of it.
fn redact_urls(text: &str, how: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = ["http://", "https://", "socks5://", "socks5h://"]
            .iter()
            .filter_map(|p| rest.find(p))
            .min();
        let Some(i) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | '(' | '"' | '\'' | ',' | '<' | '>')
            })
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches([':', ';', ',', '.']);
        out.push_str(&how(url));
        rest = &tail[url.len()..];
    }
}

/// `url` with its secrets hidden: the user and password, the query, and path segments
/// that look like API keys (16 or more letters and digits, as Infura, Alchemy and similar
/// providers put in the path) become `***`.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        // Not a URL (no scheme, a typo): shown as given, but without what may be a
        // password (before an `@`) or a key-like path segment.
        let rest = url.rsplit_once('@').map_or(url, |(_, r)| r);
        return rest
            .split('/')
            .map(|seg| if keyish(seg) { "***" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
    };
    strip_credentials(&mut u);
    let segs: Vec<String> = u
        .path_segments()
        .map(|s| {
            s.map(|seg| {
                if keyish(seg) {
                    "***".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect()
        })
        .unwrap_or_default();
    if !segs.is_empty() {
        u.set_path(&segs.join("/"));
    }
    u.to_string().trim_end_matches('/').to_string()
}

/// Whether a URL path segment looks like an API key: 12 or more letters, digits, `-` or
/// `_`, with a digit or both upper- and lower-case letters among them (`SuperSecretToken`,
/// `tok_live_Zk81Q`, a hex or base62 key), unlike a path word (`api`, `mainnet-beta`).
fn keyish(seg: &str) -> bool {
    seg.len() >= 12
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && (seg.chars().any(|c| c.is_ascii_digit())
            || (seg.chars().any(|c| c.is_ascii_uppercase())
                && seg.chars().any(|c| c.is_ascii_lowercase())))
}

fn strip_credentials(u: &mut reqwest::Url) {
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("***");
        let _ = u.set_password(None);
    }
    if u.query().is_some() {
        u.set_query(Some("***"));
    }
}

/// `url` without its user, password and query (its path kept); text that does not parse
/// as a URL is kept (registered secrets are still hidden by the caller).
fn redact_structure(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    strip_credentials(&mut u);
    u.to_string().trim_end_matches('/').to_string()
}

/// What went wrong with one attempt.
#[derive(Debug)]
enum Attempt {
    /// Worth retrying.
    Transient(String),
    /// Worth retrying after the server's `Retry-After`.
    After(String, Duration),
    /// Not worth retrying.
    Fatal(RpcError),
}

/// The client.
#[derive(Debug)]
pub struct RpcClient {
    cfg: RpcConfig,
    http: reqwest::Client,
    /// The URL with its secrets hidden, for messages and the manifest.
    shown: String,
    next_id: AtomicU64,
    /// Called with a one-line message before each retry.
    warn: fn(&str),
    /// The `jsonrpc` member of requests.
    version: &'static str,
}

/// RFC 4648 base64 of `input` (HTTP Basic credentials).
fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[crate::types::ix(n >> (18 - 6 * i) & 63)]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn default_warn(msg: &str) {
    eprintln!("chaintrace: warning: {}", redact_text(msg));
}

impl RpcClient {
    /// A client for `cfg`.
    ///
    /// # Errors
    /// The URL is not `http://host:port[/path]`.
    pub fn new(cfg: RpcConfig) -> Result<RpcClient, RpcError> {
        let bad = || RpcError::BadUrl {
            url: redact(&cfg.url),
        };
        let url = reqwest::Url::parse(&cfg.url).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad());
        }
        // Whatever of the configuration is secret is hidden in every later message.
        for seg in url.path_segments().into_iter().flatten() {
            if keyish(seg) {
                register_secret(seg);
            }
        }
        for (_, v) in url.query_pairs() {
            register_secret(&v);
        }
        if let Some(p) = url.password() {
            register_secret(p);
        }
        if let Some((_, p)) = cfg.auth.as_deref().and_then(|a| a.split_once(':')) {
            register_secret(p);
        }
        for (_, v) in &cfg.headers {
            register_secret(v);
        }
        if let Some(p) = cfg
            .proxy
            .as_deref()
            .and_then(|p| reqwest::Url::parse(p).ok())
            && let Some(pw) = p.password()
        {
            register_secret(pw);
        }
        let setup = |e: &dyn std::fmt::Display| RpcError::Setup(e.to_string());
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        if let Some(a) = &cfg.auth {
            let mut v =
                reqwest::header::HeaderValue::try_from(format!("Basic {}", base64(a.as_bytes())))
                    .map_err(|_| {
                    RpcError::Setup("the RPC credentials hold a character a header cannot".into())
                })?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        for (k, v) in &cfg.headers {
            let name = reqwest::header::HeaderName::try_from(k.as_str())
                .map_err(|_| RpcError::Setup(format!("{k:?} is not an HTTP header name")))?;
            let mut value = reqwest::header::HeaderValue::try_from(v.as_str()).map_err(|_| {
                RpcError::Setup(format!("the value of header {k} is not valid in HTTP"))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut b = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        if let Some(path) = &cfg.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                RpcError::Setup(format!("cannot read --ca-cert {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RpcError::Setup(format!(
                    "--ca-cert {} holds no PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(RpcError::Setup(format!(
                    "--ca-cert {} holds no PEM certificate",
                    path.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(p) = &cfg.proxy {
            let proxy = reqwest::Proxy::all(p)
                .map_err(|e| RpcError::Setup(format!("--proxy {}: {e}", redact(p))))?;
            b = b.proxy(proxy);
        }
        let http = b.build().map_err(|e| setup(&e))?;
        Ok(RpcClient {
            shown: redact(&cfg.url),
            cfg,
            http,
            next_id: AtomicU64::new(1),
            warn: default_warn,
            version: "1.0",
        })
    }

    /// Speaks JSON-RPC 2.0 (Ethereum nodes require it; Bitcoin Core takes 1.0).
    pub fn jsonrpc2(mut self) -> RpcClient {
        self.version = "2.0";
        self
    }

    /// Replaces the retry-warning printer (the CLI routes it around the progress bar).
    pub fn set_warn(&mut self, warn: fn(&str)) {
        self.warn = warn;
    }

    /// The URL with its secrets hidden ([`redact`]), for messages and the manifest.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// A JSON-RPC request body for one call, and its description for messages.
    fn request(&self, method: &str, params: &Value) -> (Vec<u8>, String) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({"jsonrpc": self.version, "id": id, "method": method, "params": params});
        (
            serde_json::to_vec(&body).expect("requests serialise"),
            describe(method, params),
        )
    }

    /// Calls `method` with `params`, retrying transient failures.
    ///
    /// # Errors
    /// Credentials rejected, a node error other than warming up, or the retry budget spent.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (body, what) = self.request(method, &params);
        self.retrying(&what, || async {
            let reply = self.exchange(&body).await?;
            take_result(method, reply)
        })
        .await
    }

    /// Calls `method` and returns the `result` as raw JSON text, so that numbers (amounts)
    /// can be read exactly, digit by digit.
    ///
    /// # Errors
    /// As [`RpcClient::call`].
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<String, RpcError> {
        let (body, what) = self.request(method, &params);
        self.retrying(&what, || async {
            let (status, bytes) = self.exchange_post(&body).await?;
            #[derive(serde::Deserialize)]
            struct Reply<'a> {
                #[serde(borrow)]
                result: Option<&'a serde_json::value::RawValue>,
                error: Option<Value>,
            }
            match serde_json::from_slice::<Reply<'_>>(&bytes) {
                Ok(Reply { error: Some(e), .. }) if !e.is_null() => {
                    take_result(method, serde_json::json!({"error": e})).map(|_| String::new())
                }
                Ok(Reply {
                    result: Some(r), ..
                }) => Ok(r.get().to_string()),
                Ok(_) => Err(Attempt::Transient(
                    "reply has neither result nor error".into(),
                )),
                Err(e) if status >= 500 || status == 429 => {
                    Err(Attempt::Transient(format!("HTTP {status}: {e}")))
                }
                Err(e) => Err(Attempt::Transient(format!(
                    "malformed JSON reply (HTTP {status}): {e}"
                ))),
            }
        })
        .await
    }

    /// Calls `method` once per parameter list in one JSON-RPC batch; results in order.
    ///
    /// # Errors
    /// As [`RpcClient::call`]; any element's error fails the batch.
    pub async fn batch(&self, method: &str, params: &[Value]) -> Result<Vec<Value>, RpcError> {
        let first = self.next_id.fetch_add(n64(params.len()), Ordering::Relaxed);
        let reqs: Vec<Value> = params
            .iter()
            .enumerate()
            .map(|(i, p)| serde_json::json!({"jsonrpc": "1.0", "id": first + n64(i), "method": method, "params": p}))
            .collect();
        let body = serde_json::to_vec(&reqs).expect("requests serialise");
        let what = format!(
            "{method} batch of {} starting {}",
            params.len(),
            params.first().map(|p| p.to_string()).unwrap_or_default()
        );
        self.retrying(&what, || async {
            let reply = self.exchange(&body).await?;
            let Value::Array(items) = reply else {
                return Err(Attempt::Transient(
                    "a batch request got a non-array reply".into(),
                ));
            };
            if items.len() != params.len() {
                return Err(Attempt::Transient(format!(
                    "batch of {} got {} replies",
                    params.len(),
                    items.len()
                )));
            }
            let mut by_id: Vec<(u64, Value)> = Vec::with_capacity(items.len());
            for item in items {
                let id = item
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| Attempt::Transient("batch reply without id".into()))?;
                by_id.push((id, take_result(method, item)?));
            }
            by_id.sort_by_key(|(id, _)| *id);
            if by_id
                .iter()
                .enumerate()
                .any(|(i, (id, _))| *id != first + n64(i))
            {
                return Err(Attempt::Transient(
                    "batch replies do not match the request ids".into(),
                ));
            }
            Ok(by_id.into_iter().map(|(_, v)| v).collect())
        })
        .await
    }

    async fn retrying<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T, RpcError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let mut delay = self.cfg.backoff_base;
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::After(why, wait)) if attempt < self.cfg.attempts => {
                    (self.warn)(&format!(
                        "{what}: {why}; retry {attempt}/{} in {} ms (the server's Retry-After)",
                        self.cfg.attempts - 1,
                        wait.as_millis()
                    ));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Attempt::After(why, _)) => {
                    return Err(RpcError::Exhausted {
                        method: what.to_string(),
                        attempts: attempt,
                        last: why,
                    });
                }
                Err(Attempt::Transient(why)) => {
                    if attempt >= self.cfg.attempts {
                        return Err(RpcError::Exhausted {
                            method: what.to_string(),
                            attempts: attempt,
                            last: why,
                        });
                    }
                    (self.warn)(&format!(
                        "{what}: {why}; retry {attempt}/{} in {} ms",
                        self.cfg.attempts - 1,
                        delay.as_millis()
                    ));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.cfg.backoff_max);
                    attempt += 1;
                }
            }
        }
    }

    /// GETs `path` (appended to the base URL, e.g. `/block-height/5` of an Esplora API) and
    /// returns the body of its `200` reply, retrying transient failures (timeouts, resets,
    /// 5xx, 429).
    ///
    /// # Errors
    /// [`RpcError::Http`] for another status (with the body's start), [`RpcError::NotApi`]
    /// for an HTML page, [`RpcError::Exhausted`] when the retry budget is spent; the URL is
    /// always redacted.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, RpcError> {
        let url = format!("{}{path}", self.cfg.url.trim_end_matches('/'));
        let shown = format!("{}{path}", self.shown.trim_end_matches('/'));
        self.retrying(&format!("GET {shown}"), || async {
            let (status, html, body) = self
                .exchange_bytes(self.http.get(url.as_str()).header(
                    reqwest::header::ACCEPT,
                    "application/json, text/plain, application/octet-stream",
                ))
                .await?;
            match status {
                200 if html => Err(Attempt::Fatal(RpcError::NotApi {
                    url: shown.clone(),
                    what: format!(
                        "the server sent an HTML page ({:?}), not an API reply (a proxy's, a captive portal's or an error page?); if every request gets one, check that the URL is the API's base (e.g. https://blockstream.info/api)",
                        excerpt(&body)
                    ),
                })),
                200 => Ok(body),
                s if s >= 500 => Err(Attempt::Transient(format!(
                    "HTTP {s}: {:?}",
                    excerpt(&body)
                ))),
                s => Err(Attempt::Fatal(RpcError::Http {
                    url: shown.clone(),
                    status: s,
                    excerpt: excerpt(&body),
                })),
            }
        })
        .await
    }

    /// A JSON-RPC POST of `body`: the status and reply.
    async fn exchange_post(&self, body: &[u8]) -> Result<(u16, Vec<u8>), Attempt> {
        let (status, _, reply) = self
            .exchange_bytes(self.http.post(self.cfg.url.as_str()).body(body.to_vec()))
            .await?;
        Ok((status, reply))
    }

    /// One HTTP exchange: the status, whether the reply is an HTML page, and the body,
    /// after the checks every request needs.
    async fn exchange_bytes(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, bool, Vec<u8>), Attempt> {
        let sent = req.send().await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.classify(&e)),
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Attempt::Fatal(RpcError::Unauthorized {
                url: self.shown.clone(),
                status,
            }));
        }
        if (300..400).contains(&status) {
            return Err(Attempt::Fatal(RpcError::Setup(format!(
                "{} redirects (HTTP {status}) to {}: give the final URL",
                self.shown,
                resp.headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| "?".to_string(), redact)
            ))));
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(300)));
        if status == 429 || (status == 503 && retry_after.is_some()) {
            let why = format!("HTTP {status} (too many requests)");
            return Err(match retry_after {
                Some(w) => Attempt::After(why, w),
                None => Attempt::Transient(why),
            });
        }
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/html"));
        let mut reply = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if reply.len() + c.len() > MAX_REPLY {
                        return Err(Attempt::Fatal(RpcError::Setup(format!(
                            "{} sent a reply over {} MiB",
                            self.shown,
                            MAX_REPLY >> 20
                        ))));
                    }
                    reply.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => return Err(self.classify(&e)),
            }
        }
        Ok((status, html, reply))
    }

    /// A failed request: an untrusted or broken TLS connection is fatal (retrying cannot
    /// help); timeouts, refused and reset connections are transient.
    fn classify(&self, e: &reqwest::Error) -> Attempt {
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(x) = src {
            chain.push_str(&x.to_string());
            chain.push_str("; ");
            src = x.source();
        }
        // reqwest's own text names the URL (in its own spelling): no secret may reach the
        // message.
        let chain = redact_text(&chain);
        let lower = chain.to_ascii_lowercase();
        if lower.contains("dns error") || lower.contains("failed to lookup address") {
            return Attempt::Fatal(RpcError::NotApi {
                url: self.shown.clone(),
                what: format!(
                    "the host name does not resolve ({}); check the URL",
                    chain.trim_end_matches("; ")
                ),
            });
        }
        if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
            return Attempt::Fatal(RpcError::NotTls {
                url: self.shown.clone(),
                why: chain.trim_end_matches("; ").to_string(),
            });
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return Attempt::Fatal(RpcError::Tls {
                url: self.shown.clone(),
                why: chain.trim_end_matches("; ").to_string(),
            });
        }
        if e.is_timeout() {
            return Attempt::Transient(format!(
                "no reply within {} s",
                self.cfg.timeout.as_secs_f64()
            ));
        }
        if e.is_connect() {
            return Attempt::Transient(format!(
                "cannot connect to {} (is the server running, and are the host and port right?): {}",
                self.shown,
                chain.trim_end_matches("; ")
            ));
        }
        let plain = if self.shown.starts_with("https://") && lower.contains("reset") {
            " (if the server speaks plain HTTP, give its URL with http://)"
        } else {
            ""
        };
        Attempt::Transient(format!(
            "connection to {} failed{plain}: {}",
            self.shown,
            chain.trim_end_matches("; ")
        ))
    }

    /// One HTTP exchange: returns the parsed JSON body.
    async fn exchange(&self, body: &[u8]) -> Result<Value, Attempt> {
        let (status, reply) = self.exchange_post(body).await?;
        let parsed: Result<Value, _> = serde_json::from_slice(&reply);
        match (status, parsed) {
            // Bitcoin Core answers RPC errors of JSON-RPC 1.0 requests with HTTP 500/404
            // and a JSON body: the body decides.
            (_, Ok(v)) if v.is_array() || v.get("result").is_some() || v.get("error").is_some() => {
                Ok(v)
            }
            (s, _) if s >= 500 => Err(Attempt::Transient(format!("HTTP {s}"))),
            // A client error without a JSON-RPC body (a wrong path: 404, 405): retrying
            // cannot help.
            (s, _) if (400..500).contains(&s) && s != 429 => Err(Attempt::Fatal(RpcError::Http {
                url: self.shown.clone(),
                status: s,
                excerpt: format!(
                    "{} (no JSON-RPC reply: is the URL's path the node's JSON-RPC endpoint?)",
                    excerpt(&reply)
                ),
            })),
            (s, Err(e)) => Err(Attempt::Transient(format!(
                "malformed JSON reply (HTTP {s}): {e}"
            ))),
            (s, Ok(_)) => Err(Attempt::Transient(format!(
                "HTTP {s} with a reply that is not JSON-RPC"
            ))),
        }
    }
}

fn describe(method: &str, params: &Value) -> String {
    match params.as_array().and_then(|a| a.first()) {
        Some(p) => format!(
            "{method} {}",
            p.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| p.to_string())
        ),
        None => method.to_string(),
    }
}

/// The `result` of a JSON-RPC reply, or the classified error.
fn take_result(method: &str, mut reply: Value) -> Result<Value, Attempt> {
    match reply.get("error") {
        Some(Value::Null) | None => {}
        Some(e) => {
            let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            // -28: RPC_IN_WARMUP ("Loading block index…", "Verifying blocks…").
            if code == -28 {
                return Err(Attempt::Transient(format!(
                    "node is warming up ({message})"
                )));
            }
            return Err(Attempt::Fatal(RpcError::Node {
                method: method.to_string(),
                code,
                message,
            }));
        }
    }
    match reply.get_mut("result") {
        Some(v) => Ok(v.take()),
        None => Err(Attempt::Transient(
            "reply has neither result nor error".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"tracer:tracerpass"), "dHJhY2VyOnRyYWNlcnBhc3M=");
    }

    #[test]
    fn urls_are_checked_and_secrets_redacted() {
        let cfg = |url: &str| RpcConfig {
            url: url.into(),
            auth: None,
            timeout: Duration::from_secs(1),
            attempts: 1,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
            ca_cert: None,
            proxy: None,
            headers: Vec::new(),
        };
        assert!(RpcClient::new(cfg("http://127.0.0.1:8332")).is_ok());
        assert!(RpcClient::new(cfg("https://eth.example/v2/abc")).is_ok());
        assert!(RpcClient::new(cfg("ftp://127.0.0.1:8332")).is_err());
        assert!(RpcClient::new(cfg("127.0.0.1:8332")).is_err());
        let key = "f3a9c1e07b2d4c5e8a6b0d1f2e3c4b5a";
        let c = RpcClient::new(cfg(&format!(
            "https://user:hunter2@eth.example/v3/{key}?apikey=zz"
        )))
        .unwrap();
        let shown = c.url();
        assert!(
            !shown.contains(key) && !shown.contains("hunter2") && !shown.contains("zz"),
            "{shown}"
        );
        assert!(
            shown.starts_with("https://") && shown.contains("eth.example/v3/***"),
            "{shown}"
        );
        let text = format!(
            "error sending request for url (https://user:hunter2@eth.example/v3/{key}?apikey=zz): connect"
        );
        let r = redact_text(&text);
        assert!(
            !r.contains(key) && !r.contains("hunter2") && !r.contains("zz"),
            "{r}"
        );
        assert!(r.ends_with("/v3/***?***): connect"), "{r}");
        // A short, word-like path stays readable.
        assert_eq!(
            redact("http://127.0.0.1:8332/wallet/main"),
            "http://127.0.0.1:8332/wallet/main"
        );
        assert_eq!(
            redact("https://mempool.space/api/mainnet-beta"),
            "https://mempool.space/api/mainnet-beta"
        );
        // Keys that are not random-looking hex are keys too.
        for key in ["SuperSecretToken", "MyAgencyKey2026", "tok_live_Zk81Q"] {
            let r = redact(&format!("https://eth.example/api/{key}"));
            assert_eq!(r, "https://eth.example/api/***", "{key}");
        }
    }

    #[test]
    fn warmup_is_transient_other_errors_fatal() {
        let warm = serde_json::json!({"result": null, "error": {"code": -28, "message": "Loading block index…"}, "id": 1});
        assert!(matches!(
            take_result("getblock", warm),
            Err(Attempt::Transient(_))
        ));
        let bad = serde_json::json!({"result": null, "error": {"code": -8, "message": "Block height out of range"}, "id": 1});
        assert!(matches!(
            take_result("getblockhash", bad),
            Err(Attempt::Fatal(RpcError::Node { code: -8, .. }))
        ));
        let ok = serde_json::json!({"result": 5, "error": null, "id": 1});
        assert_eq!(take_result("getblockcount", ok).unwrap(), 5);
    }
}
