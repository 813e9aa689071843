//! A small JSON-RPC client for Bitcoin Core over HTTP/1.1 on tokio.
//!
//! Hand-written on `tokio::net::TcpStream` rather than a full HTTP stack: a node's RPC
//! server speaks plain HTTP/1.1 on loopback, and this keeps the build small. Connections are
//! kept alive and pooled; each request has a timeout; transient failures (timeouts,
//! refused/reset connections, HTTP 5xx and 429, malformed JSON, the node still warming up,
//! RPC error -28) are retried with capped exponential backoff. Wrong credentials fail at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::types::n64;
use serde_json::Value;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
    #[error("{url} is not an http:// URL of the form http://host:port[/path]")]
    BadUrl { url: String },
}

/// What went wrong with one attempt.
#[derive(Debug)]
enum Attempt {
    /// Worth retrying.
    Transient(String),
    /// Not worth retrying.
    Fatal(RpcError),
}

/// The client.
#[derive(Debug)]
pub struct RpcClient {
    cfg: RpcConfig,
    host_port: String,
    path: String,
    auth_header: Option<String>,
    idle: Mutex<Vec<TcpStream>>,
    next_id: AtomicU64,
    /// Called with a one-line message before each retry.
    warn: fn(&str),
    /// The `jsonrpc` member of requests.
    version: &'static str,
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn default_warn(msg: &str) {
    eprintln!("chaintrace: warning: {msg}");
}

impl RpcClient {
    /// A client for `cfg`.
    ///
    /// # Errors
    /// The URL is not `http://host:port[/path]`.
    pub fn new(cfg: RpcConfig) -> Result<RpcClient, RpcError> {
        let rest = cfg
            .url
            .strip_prefix("http://")
            .ok_or_else(|| RpcError::BadUrl {
                url: cfg.url.clone(),
            })?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), "/".to_string()),
        };
        if host_port.is_empty() || !host_port.contains(':') {
            return Err(RpcError::BadUrl {
                url: cfg.url.clone(),
            });
        }
        let auth_header = cfg
            .auth
            .as_ref()
            .map(|a| format!("Basic {}", base64(a.as_bytes())));
        Ok(RpcClient {
            cfg,
            host_port,
            path,
            auth_header,
            idle: Mutex::new(Vec::new()),
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

    /// The URL, for messages and the manifest.
    pub fn url(&self) -> &str {
        &self.cfg.url
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
            let (status, bytes) = self.exchange_bytes(&body).await?;
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

    /// One HTTP exchange: returns the status and body, after the checks every call needs.
    async fn exchange_bytes(&self, body: &[u8]) -> Result<(u16, Vec<u8>), Attempt> {
        let fut = async {
            let pooled = self
                .idle
                .lock()
                .expect("the pool lock is never poisoned")
                .pop();
            let stream = match pooled {
                Some(s) => s,
                None => TcpStream::connect(&self.host_port).await.map_err(|e| {
                    Attempt::Transient(format!("cannot connect to {}: {e}", self.cfg.url))
                })?,
            };
            let _ = stream.set_nodelay(true);
            self.http(stream, body).await
        };
        let (status, reply, keep) = match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Attempt::Transient(format!(
                    "no reply within {} s",
                    self.cfg.timeout.as_secs_f64()
                )));
            }
        };
        if let Some(s) = keep {
            self.idle
                .lock()
                .expect("the pool lock is never poisoned")
                .push(s);
        }
        if status == 401 || status == 403 {
            return Err(Attempt::Fatal(RpcError::Unauthorized {
                url: self.cfg.url.clone(),
                status,
            }));
        }
        if status == 429 {
            return Err(Attempt::Transient("HTTP 429 too many requests".into()));
        }
        Ok((status, reply))
    }

    /// One HTTP exchange: returns the parsed JSON body.
    async fn exchange(&self, body: &[u8]) -> Result<Value, Attempt> {
        let (status, reply) = self.exchange_bytes(body).await?;
        let parsed: Result<Value, _> = serde_json::from_slice(&reply);
        match (status, parsed) {
            // Bitcoin Core answers RPC errors of JSON-RPC 1.0 requests with HTTP 500/404
            // and a JSON body: the body decides.
            (_, Ok(v)) if v.is_array() || v.get("result").is_some() || v.get("error").is_some() => {
                Ok(v)
            }
            (s, _) if s >= 500 => Err(Attempt::Transient(format!("HTTP {s}"))),
            (s, Err(e)) => Err(Attempt::Transient(format!(
                "malformed JSON reply (HTTP {s}): {e}"
            ))),
            (s, Ok(_)) => Err(Attempt::Transient(format!(
                "HTTP {s} with a reply that is not JSON-RPC"
            ))),
        }
    }

    async fn http(
        &self,
        mut stream: TcpStream,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>, Option<TcpStream>), Attempt> {
        let t = |e: std::io::Error| {
            Attempt::Transient(format!("connection to {} failed: {e}", self.cfg.url))
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
            self.path,
            self.host_port,
            body.len()
        );
        if let Some(a) = &self.auth_header {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let mut msg = head.into_bytes();
        msg.extend_from_slice(body);
        stream.write_all(&msg).await.map_err(t)?;
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        if r.read_line(&mut line).await.map_err(t)? == 0 {
            return Err(Attempt::Transient(format!(
                "{} closed the connection",
                self.cfg.url
            )));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Attempt::Transient(format!("malformed HTTP status line {:?}", line.trim_end()))
            })?;
        let mut len: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            if r.read_line(&mut line).await.map_err(t)? == 0 {
                return Err(Attempt::Transient(
                    "connection closed inside the HTTP headers".into(),
                ));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => len = v.parse().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line).await.map_err(t)?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| Attempt::Transient("malformed chunk size".into()))?;
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk).await.map_err(t)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = len {
            body.resize(n, 0);
            r.read_exact(&mut body).await.map_err(t)?;
        } else {
            r.read_to_end(&mut body).await.map_err(t)?;
            close = true;
        }
        let keep = (!close).then(|| r.into_inner());
        Ok((status, body, keep))
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
    fn urls_are_checked() {
        let cfg = |url: &str| RpcConfig {
            url: url.into(),
            auth: None,
            timeout: Duration::from_secs(1),
            attempts: 1,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
        };
        assert!(RpcClient::new(cfg("http://127.0.0.1:8332")).is_ok());
        assert!(RpcClient::new(cfg("https://127.0.0.1:8332")).is_err());
        assert!(RpcClient::new(cfg("http://localhost")).is_err());
        let c = RpcClient::new(cfg("http://127.0.0.1:8332/wallet/x")).unwrap();
        assert_eq!(
            (c.host_port.as_str(), c.path.as_str()),
            ("127.0.0.1:8332", "/wallet/x")
        );
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
