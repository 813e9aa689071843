//! Simulator benchmark: `cargo bench --bench simulate [-- N...]` prints transactions
//! generated per second and peak memory for worlds of N transactions (default 1,000,000;
//! `-- 1000000 10000000` for both sizes of the issue). Each size runs in a child process
//! so that its peak memory (VmHWM) is its own.

mod common;

use std::process::Command;

use chaintrace::simulate::{Preset, SimOptions, simulate};

fn child(txs: u64) {
    let out = tempfile::tempdir().expect("a temp dir");
    let opts = SimOptions {
        seed: 7,
        txs,
        preset: Preset::Default,
        out: out.path().to_path_buf(),
        period: None,
        prices: None,
    };
    let s = simulate(&opts, &indicatif::ProgressBar::hidden()).expect("the world simulates");
    let bytes: u64 = walk(out.path());
    println!(
        "{:>12} {:>8} {:>10.1} {:>10.0} {:>10.1} {:>12} {:>10.2}",
        txs,
        s.generated.blocks,
        s.elapsed_secs,
        s.tx_per_sec,
        s.peak_rss_bytes.unwrap_or(0) as f64 / (1 << 20) as f64,
        s.max_live_coins,
        bytes as f64 / 1e9
    );
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args = common::args();
    if args.first().map(String::as_str) == Some("--child") {
        child(args[1].parse().expect("a transaction count"));
        return;
    }
    let sizes: Vec<u64> = if args.is_empty() {
        vec![1_000_000]
    } else {
        args.iter()
            .map(|a| a.parse().expect("sizes are integers"))
            .collect()
    };
    println!(
        "{:>12} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "txs", "blocks", "secs", "tx/s", "peak MiB", "live coins", "GB out"
    );
    let me = std::env::current_exe().expect("the bench knows its path");
    for n in sizes {
        let st = Command::new(&me)
            .arg("--child")
            .arg(n.to_string())
            .status()
            .expect("the child runs");
        assert!(st.success(), "simulating {n} transactions failed");
    }
}
