//! Reach benchmark: `cargo bench --bench reach`.
//!
//! Serves the real electrs replies of `../shared/datasets/esplora` (world A) from the test
//! replay server (`tests/integration/scripts/esplora_replay.py`) and prints:
//! - `ingest bitcoin --esplora` of the 401 blocks at concurrency 1, 4 and 16: blocks/s,
//!   tx/s, requests; against `--rpc` of the same blocks from the recorded node replies;
//! - the on-demand 6-hop forward trace's fetch from the vendor's 227 addresses (stopping
//!   at the exchange): requests, cache hits and seconds, cold and with the cache warm.
//!
//! The replay server is a Python process on the same 2 cores: the figures measure
//! chaintrace's side plus that server, not a real network.

#[path = "../tests/integration/rpc_node.rs"]
mod rpc_node;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chaintrace::ingest::bitcoin::esplora::EsploraSource;
use chaintrace::ingest::bitcoin::neighbourhood::{FetchOptions, fetch};
use chaintrace::ingest::bitcoin::rpc::{RpcClient, RpcConfig};
use chaintrace::ingest::bitcoin::rpc_source::RpcSource;
use chaintrace::ingest::bitcoin::{RangeOptions, ingest_chain};

fn config(url: &str, auth: Option<&str>) -> RpcConfig {
    RpcConfig {
        url: url.to_string(),
        auth: auth.map(str::to_string),
        timeout: Duration::from_secs(30),
        attempts: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ca_cert: None,
        proxy: None,
        headers: Vec::new(),
    }
}

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets")
}

/// The replay server: its URL and the child to kill.
fn replay() -> (String, std::process::Child) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = std::env::temp_dir().join("chaintrace-reach-bench.log");
    let mut child = std::process::Command::new("python3")
        .arg(root.join("tests/integration/scripts/esplora_replay.py"))
        .arg(datasets().join("esplora/regtest-world-a.jsonl.zst"))
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
        &mut line,
    )
    .expect("the server prints its port");
    (format!("http://127.0.0.1:{}", line.trim()), child)
}

fn range(data: &Path) -> RangeOptions {
    RangeOptions::new(data)
}

fn main() {
    let (url, mut server) = replay();
    let pb = indicatif::ProgressBar::hidden();
    println!(
        "{:<8} {:>11} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "source", "concurrency", "blocks", "requests", "secs", "blocks/s", "tx/s"
    );
    for concurrency in [1usize, 4, 16] {
        let data = tempfile::tempdir().expect("a temp dir");
        let t = Instant::now();
        let source = EsploraSource::connect(
            RpcClient::new(config(&url, None)).expect("a valid URL"),
            concurrency,
            0.0,
        )
        .expect("the API answers");
        let opts = range(data.path());
        let best = source.best_chain(None, &opts, &pb).expect("hashes");
        let s = ingest_chain(&source, best, &opts, &pb).expect("the ingest runs");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{:<8} {:>11} {:>8} {:>8} {:>8.2} {:>10.0} {:>10.0}",
            "esplora",
            concurrency,
            s.written.blocks,
            source.traffic().0,
            secs,
            s.written.blocks as f64 / secs,
            s.written.txs as f64 / secs
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("datasets/regtest-world-a/blocks.jsonl"))
        .expect("the bundled chain");
    let node = rpc_node::Node::start(rpc_node::Chain::from_jsonl(&text));
    for concurrency in [1usize, 4, 16] {
        let data = tempfile::tempdir().expect("a temp dir");
        let t = Instant::now();
        let source = RpcSource::connect(
            RpcClient::new(config(&node.url, Some("tracer:tracerpass"))).expect("a valid URL"),
            concurrency,
        )
        .expect("the node answers");
        let best = source.best_chain(&pb).expect("hashes");
        let s = ingest_chain(&source, best, &range(data.path()), &pb).expect("the ingest runs");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{:<8} {:>11} {:>8} {:>8} {:>8.2} {:>10.0} {:>10.0}",
            "rpc",
            concurrency,
            s.written.blocks,
            node.state.lock().map(|s| s.requests).unwrap_or(0),
            secs,
            s.written.blocks as f64 / secs,
            s.written.txs as f64 / secs
        );
    }

    // The on-demand neighbourhood of a 6-hop forward trace from the vendor.
    let truth = datasets().join("bitcoin/regtest-world-a/ground_truth");
    let column = |file: &str, keep: &dyn Fn(&[&str]) -> bool| -> Vec<String> {
        std::fs::read_to_string(truth.join(file))
            .expect("the ground truth")
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| keep(f))
            .map(|f| f[0].to_string())
            .collect()
    };
    let seeds = column("flagged.csv", &|_| true);
    let stop: HashSet<String> = column("addresses.csv", &|f| f[1] == "exchange")
        .into_iter()
        .collect();
    let data = tempfile::tempdir().expect("a temp dir");
    println!();
    println!(
        "{:<28} {:>8} {:>10} {:>8} {:>8} {:>8}",
        "on-demand fetch (6 hops)", "txs", "requests", "cached", "MiB", "secs"
    );
    for run in ["cold", "warm cache"] {
        let opts = FetchOptions {
            data_dir: data.path().to_path_buf(),
            seeds: seeds.clone(),
            backward: false,
            max_hops: 6,
            min_value: 0,
            stop_addresses: stop.clone(),
            concurrency: 4,
            max_rps: 0.0,
        };
        let s = fetch(
            RpcClient::new(config(&url, None)).expect("a valid URL"),
            &opts,
            &pb,
        )
        .expect("the fetch runs");
        println!(
            "{:<28} {:>8} {:>10} {:>8} {:>8.1} {:>8.2}",
            run,
            s.transactions,
            s.requests,
            s.cache_hits,
            s.bytes as f64 / f64::from(1u32 << 20),
            s.elapsed_secs
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
