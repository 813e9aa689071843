//! JSON-RPC ingest benchmark: `cargo bench --bench rpc` serves the real node's recorded
//! replies of `regtest-world-a` from a local replay server (the one the tests use) and
//! prints blocks/s and tx/s of `ingest bitcoin --rpc` at several concurrencies.

#[path = "../tests/integration/rpc_node.rs"]
mod rpc_node;

use std::time::Instant;

use chaintrace::ingest::bitcoin::rpc::{RpcClient, RpcConfig};
use chaintrace::ingest::bitcoin::rpc_source::RpcSource;
use chaintrace::ingest::bitcoin::{RangeOptions, ingest_chain};

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("datasets/regtest-world-a/blocks.jsonl"))
        .expect("the bundled chain");
    let node = rpc_node::Node::start(rpc_node::Chain::from_jsonl(&text));
    println!(
        "{:>11} {:>6} {:>8} {:>9} {:>10} {:>10}",
        "concurrency", "runs", "blocks", "secs", "blocks/s", "tx/s"
    );
    for concurrency in [1usize, 4, 8] {
        let runs = 5;
        let (mut blocks, mut txs, mut secs) = (0u64, 0u64, 0f64);
        for _ in 0..runs {
            let data = tempfile::tempdir().expect("a temp dir");
            let cfg = RpcConfig {
                url: node.url.clone(),
                auth: Some("tracer:tracerpass".into()),
                timeout: std::time::Duration::from_secs(30),
                attempts: 3,
                backoff_base: std::time::Duration::from_millis(50),
                backoff_max: std::time::Duration::from_millis(500),
                ca_cert: None,
                proxy: None,
                headers: Vec::new(),
            };
            let t = Instant::now();
            let source = RpcSource::connect(RpcClient::new(cfg).expect("a valid URL"), concurrency)
                .expect("the node answers");
            let pb = indicatif::ProgressBar::hidden();
            let best = source.best_chain(&pb).expect("hashes");
            let opts = RangeOptions {
                data_dir: data.path().to_path_buf(),
                from: None,
                to: None,
                part_blocks: 1000,
                replace: false,
                memory: chaintrace::memory::budget(),
            };
            let s = ingest_chain(&source, best, &opts, &pb).expect("the ingest runs");
            secs += t.elapsed().as_secs_f64();
            blocks += s.written.blocks;
            txs += s.written.txs;
        }
        println!(
            "{:>11} {:>6} {:>8} {:>9.2} {:>10.0} {:>10.0}",
            concurrency,
            runs,
            blocks,
            secs,
            blocks as f64 / secs,
            txs as f64 / secs
        );
    }
}
