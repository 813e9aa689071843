//! A real Ethereum node for tests and benchmarks: anvil (npm
//! `@foundry-rs/anvil-linux-amd64`), started on 127.0.0.1 on a free port and stopped when
//! dropped, spoken to over plain HTTP/1.1 JSON-RPC. Included by `tests/integration` and by
//! `benches/ethereum.rs` (`#[path]`), so both drive the node the same way.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The anvil binary: `CHAINTRACE_ANVIL`, `anvil` on PATH, or the npm install `.ci/run` makes.
pub fn anvil_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CHAINTRACE_ANVIL") {
        return p.into();
    }
    let npm = PathBuf::from(std::env::var("HOME").unwrap())
        .join(".cache/chaintrace-npm/node_modules/.bin/anvil");
    if npm.is_file() {
        return npm;
    }
    if Command::new("anvil")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "anvil".into();
    }
    panic!(
        "anvil is missing: npm install --prefix ~/.cache/chaintrace-npm @foundry-rs/anvil-linux-amd64 (what .ci/run does), or set CHAINTRACE_ANVIL"
    );
}

pub struct Anvil {
    child: Child,
    port: u16,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Anvil {
    pub fn start() -> Anvil {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(anvil_bin())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let ready = lines
            .by_ref()
            .take(200)
            .any(|l| l.is_ok_and(|l| l.contains("Listening on")));
        assert!(ready, "anvil did not start");
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Anvil { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One JSON-RPC call over a plain HTTP/1.1 socket.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let json_start = reply.find("\r\n\r\n").unwrap() + 4;
        let v: Value =
            serde_json::from_str(&reply[json_start..]).unwrap_or_else(|e| panic!("{e}: {reply}"));
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// The node's unlocked accounts.
    pub fn accounts(&self) -> Vec<String> {
        self.call("eth_accounts", json!([]))
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    pub fn send(&self, tx: Value) -> String {
        self.call("eth_sendTransaction", json!([tx]))
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The receipt, once the transaction is mined (anvil mines each at once, but its reply
    /// can come before the receipt is visible on a busy machine).
    pub fn receipt(&self, hash: &str) -> Value {
        for _ in 0..200 {
            let r = self.call("eth_getTransactionReceipt", json!([hash]));
            if !r.is_null() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{hash} was not mined within 10 s");
    }
}
