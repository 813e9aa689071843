//! Ingest benchmark: `cargo bench --bench ingest` prints, per chain, transactions/s,
//! inputs resolved/s, peak memory and UTXO bytes per unspent output, for the bundled
//! regtest chain, mainnet 0..438 and a simulated world of `CHAINTRACE_BENCH_TXS`
//! transactions (default 1,000,000; 0 skips it).
//!
//! Each chain runs in a child process so that its peak memory (VmHWM) is its own.
//! Extra chains: `cargo bench --bench ingest -- /path/to/blocks ...`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chaintrace::ingest::bitcoin::{BlocksDirOptions, ingest_blocks_dir};

fn child(blocks: &Path) {
    let data = tempfile::tempdir().expect("a temp dir");
    let opts = BlocksDirOptions::new(blocks, data.path());
    let t = Instant::now();
    let s = ingest_blocks_dir(&opts, &indicatif::ProgressBar::hidden())
        .expect("the benchmark chain ingests");
    let secs = t.elapsed().as_secs_f64();
    let w = &s.written;
    println!(
        "{:<44} {:>9} {:>10} {:>10} {:>8.2} {:>10.0} {:>10.0} {:>9.1} {:>10.1}",
        blocks
            .display()
            .to_string()
            .chars()
            .rev()
            .take(44)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>(),
        w.blocks,
        w.txs,
        w.inputs,
        secs,
        w.txs as f64 / secs,
        w.inputs as f64 / secs,
        s.peak_rss_bytes.unwrap_or(0) as f64 / (1 << 20) as f64,
        s.utxo_heap_bytes.unwrap_or(0) as f64 / s.utxo_outputs.unwrap_or(0).max(1) as f64,
    );
}

fn main() {
    let args = common::args();
    if args.first().map(String::as_str) == Some("--child") {
        child(Path::new(&args[1]));
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bare = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(
        root.join("../shared/datasets/bitcoin/blk-files/mainnet-blocks-0-438.dat"),
        bare.path().join("blk00000.dat"),
    )
    .expect("../shared/datasets holds the mainnet blk file");
    let mut chains: Vec<PathBuf> = vec![
        root.join("datasets/regtest-world-a/blocks"),
        bare.path().to_path_buf(),
    ];
    let txs = common::world_size();
    let world = tempfile::tempdir().expect("a temp dir");
    if txs > 0 {
        eprintln!("simulating a {txs}-transaction world (seed 7, default preset)...");
        let opts = chaintrace::simulate::SimOptions {
            seed: 7,
            txs,
            preset: chaintrace::simulate::Preset::Default,
            out: world.path().to_path_buf(),
            period: None,
            prices: None,
        };
        chaintrace::simulate::simulate(&opts, &indicatif::ProgressBar::hidden())
            .expect("the world simulates");
        chains.push(world.path().join("blocks"));
    }
    chains.extend(args.iter().map(PathBuf::from));
    println!(
        "{:<44} {:>9} {:>10} {:>10} {:>8} {:>10} {:>10} {:>9} {:>10}",
        "chain", "blocks", "txs", "inputs", "secs", "tx/s", "inputs/s", "peak MiB", "B/utxo"
    );
    let me = std::env::current_exe().expect("the bench knows its path");
    for c in chains {
        let st = Command::new(&me)
            .arg("--child")
            .arg(&c)
            .status()
            .expect("the child runs");
        assert!(st.success(), "benchmark of {} failed", c.display());
    }
}
