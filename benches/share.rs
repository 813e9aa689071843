//! Sharing and watching benchmark: `cargo bench --bench share [-- WATCHED DATASET]`.
//!
//! Prints the rate of exporting a watchlist of WATCHED addresses (default 1,000,000: keyed
//! values, filter, file bytes), of matching DATASET addresses against it (default
//! 10,000,000, the address count of a 10 M-transaction world), and the watcher's
//! processing time of one 3,000-transaction block (2 inputs, 2 outputs each) against
//! 100,000 watched addresses and the watchlist.

mod common;

use std::time::Instant;

use chaintrace::share::{Key, Watchlist, item};
use chaintrace::watch::{Block, State, Tx, Watched, alert_for};

fn addr(i: u64) -> String {
    format!("bc1qbenchaddress{i:012}")
}

fn main() {
    let args = common::args();
    let watched: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dataset: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let key = Key::from_bytes([42; 32]);
    let items: Vec<String> = (0..watched).map(|i| item("bitcoin", &addr(i))).collect();
    let t = Instant::now();
    let w = Watchlist::build(&key, "partner-b", "2026-12-01", &items).unwrap();
    let bytes = w.to_bytes(&key);
    let export = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = Watchlist::from_bytes(&bytes, &key, std::path::Path::new("bench.ctw")).unwrap();
    let m = back.matcher();
    // Half the watched addresses are in the dataset, the rest of it is other addresses.
    let mut hits = 0u64;
    for i in 0..dataset {
        let a = if i % 20 == 0 && i / 20 < watched {
            addr(i / 20)
        } else {
            addr(watched + i)
        };
        if m.contains(&key, &item("bitcoin", &a)) {
            hits += 1;
        }
    }
    let matching = t.elapsed().as_secs_f64();
    println!("\n== share: {watched} watched addresses, {dataset} dataset addresses");
    println!(
        "export   {:>10.2} s  {:>12.0} addresses/s  {:>6.1} MiB file ({:.1} bits per address)",
        export,
        watched as f64 / export,
        bytes.len() as f64 / f64::from(1u32 << 20),
        bytes.len() as f64 * 8.0 / watched as f64
    );
    println!(
        "match    {:>10.2} s  {:>12.0} addresses/s  {hits} hits",
        matching,
        dataset as f64 / matching
    );
    // The watcher on one block.
    let mut wd = Watched::default();
    for i in 0..100_000 {
        wd.addresses.insert(addr(i * 7), "bench".into());
    }
    wd.lists.push(("bench.ctw".into(), key.clone(), back));
    let txs: Vec<Tx> = (0..3000u64)
        .map(|i| Tx {
            txid: format!("{i:064x}"),
            inputs: vec![(Some(addr(i * 3)), 10_000), (Some(addr(i * 3 + 1)), 20_000)],
            outputs: vec![
                (Some(addr(5_000_000 + i)), 25_000),
                (Some(addr(i * 11)), 4_000),
            ],
        })
        .collect();
    let block = Block {
        height: 1,
        hash: "00".repeat(32),
        parent: "11".repeat(32),
        time: 0,
        txs,
    };
    let state = State::default();
    let t = Instant::now();
    let mut alerts = 0;
    for tx in &block.txs {
        if alert_for("bitcoin", &wd, &state, &block, tx).0.is_some() {
            alerts += 1;
        }
    }
    let per_block = t.elapsed().as_secs_f64();
    println!(
        "watch    {:>10.3} s  per 3,000-transaction block against 100,000 watched addresses and the watchlist ({alerts} alerts)",
        per_block
    );
}
