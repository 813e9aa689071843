//! A local JSON-RPC server that answers like Bitcoin Core from the real node's recorded
//! replies (`regtest-world-a/blocks.jsonl`), and can inject faults and reorganisations.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// A fault to inject into one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Reply with this HTTP status and a non-JSON body.
    Status(u16),
    /// Close the connection without replying.
    Close,
    /// Sleep this long before replying (longer than the client's timeout).
    Delay(Duration),
    /// Reply 200 with truncated JSON.
    Malformed,
    /// Reply with RPC error -28 (node warming up).
    Warmup,
}

/// The chain the node serves: raw `getblock <hash> 3` JSON per height.
#[derive(Clone, Debug)]
pub struct Chain {
    pub blocks: Vec<String>,
    pub hashes: Vec<String>,
}

impl Chain {
    pub fn from_jsonl(text: &str) -> Chain {
        let blocks: Vec<String> = text.lines().map(str::to_string).collect();
        let hashes = blocks
            .iter()
            .map(|b| {
                serde_json::from_str::<Value>(b).unwrap()["hash"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        Chain { blocks, hashes }
    }
}

pub struct State {
    pub chain: Chain,
    /// Consumed one per request, in order.
    pub faults: VecDeque<Fault>,
    /// Faults for every `getblock` at or above this height (a persistent outage).
    pub fail_getblock_from: Option<(u32, Fault)>,
    /// Switch to this chain when `getblockchaininfo` has been asked this many times.
    pub switch_at_info: Option<(u64, Chain)>,
    pub info_calls: u64,
    pub requests: u64,
    pub auth: String,
}

pub struct Node {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

impl Node {
    /// Starts serving `chain` on 127.0.0.1 (random port) with user `tracer:tracerpass`.
    pub fn start(chain: Chain) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::serve(listener, chain)
    }

    pub fn serve(listener: TcpListener, chain: Chain) -> Node {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            chain,
            faults: VecDeque::new(),
            fail_getblock_from: None,
            switch_at_info: None,
            info_calls: 0,
            requests: 0,
            auth: format!("Basic {}", b64("tracer:tracerpass")),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || handle(conn, st));
            }
        });
        Node { url, state, stop }
    }
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn respond(w: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Error",
    };
    // One write: several small writes would meet Nagle's algorithm and delayed ACKs.
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    w.write_all(msg.as_bytes())?;
    w.flush()
}

fn handle(conn: TcpStream, st: Arc<Mutex<State>>) {
    let _ = conn.set_nodelay(true);
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "authorization" => auth = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (fault, reply) = {
            let mut s = st.lock().unwrap();
            s.requests += 1;
            if auth != s.auth {
                drop(s);
                let _ = respond(&mut w, 401, "");
                continue;
            }
            let mut fault = s.faults.pop_front();
            if fault.is_none()
                && let Some((from, f)) = s.fail_getblock_from.clone()
                && req["method"] == "getblock"
            {
                let h = s
                    .chain
                    .hashes
                    .iter()
                    .position(|x| Some(x.as_str()) == req["params"][0].as_str());
                if h.is_some_and(|h| h as u32 >= from) {
                    fault = Some(f);
                }
            }
            let reply = match &req {
                Value::Array(items) => {
                    let parts: Vec<String> = items.iter().map(|i| answer(&mut s, i)).collect();
                    format!("[{}]", parts.join(","))
                }
                single => answer(&mut s, single),
            };
            (fault, reply)
        };
        let ok = match fault {
            None => respond(&mut w, 200, &reply),
            Some(Fault::Status(code)) => respond(&mut w, code, "<html>unavailable</html>"),
            Some(Fault::Close) => return,
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                respond(&mut w, 200, &reply)
            }
            Some(Fault::Malformed) => respond(&mut w, 200, &reply[..reply.len() / 2]),
            Some(Fault::Warmup) => respond(
                &mut w,
                500,
                r#"{"result":null,"error":{"code":-28,"message":"Loading block index…"},"id":1}"#,
            ),
        };
        if ok.is_err() {
            return;
        }
    }
}

/// One JSON-RPC reply as text (the block JSON is inserted verbatim, as the node sends it).
fn answer(s: &mut State, req: &Value) -> String {
    let id = req["id"].clone();
    let err = |code: i64, msg: &str| {
        json!({"result": null, "error": {"code": code, "message": msg}, "id": id}).to_string()
    };
    match req["method"].as_str().unwrap_or("") {
        "getblockchaininfo" => {
            s.info_calls += 1;
            if let Some((at, _)) = &s.switch_at_info
                && *at == s.info_calls
            {
                let (_, c) = s.switch_at_info.take().unwrap();
                s.chain = c;
            }
            let tip = s.chain.blocks.len() - 1;
            json!({"result": {"chain": "regtest", "blocks": tip, "headers": tip, "bestblockhash": s.chain.hashes[tip]}, "error": null, "id": id}).to_string()
        }
        "getblockhash" => match req["params"][0]
            .as_u64()
            .and_then(|h| s.chain.hashes.get(h as usize))
        {
            Some(h) => json!({"result": h, "error": null, "id": id}).to_string(),
            None => err(-8, "Block height out of range"),
        },
        "getblock" => {
            let hash = req["params"][0].as_str().unwrap_or("");
            let by_hash: HashMap<&str, usize> = s
                .chain
                .hashes
                .iter()
                .enumerate()
                .map(|(i, h)| (h.as_str(), i))
                .collect();
            match by_hash.get(hash) {
                Some(&i) if req["params"][1] == 3 => {
                    format!(
                        r#"{{"result":{},"error":null,"id":{}}}"#,
                        s.chain.blocks[i], id
                    )
                }
                Some(_) => err(-8, "this test node only answers verbosity 3"),
                None => err(-5, "Block not found"),
            }
        }
        _ => err(-32601, "Method not found"),
    }
}
