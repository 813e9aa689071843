//! Helpers shared by the benchmarks.

#![allow(dead_code)]

use std::path::PathBuf;

use chaintrace::ingest::bitcoin::{BlocksDirOptions, ingest_blocks_dir};
use chaintrace::simulate::{Preset, SimOptions, simulate};
use indicatif::ProgressBar;

/// The benchmark's arguments (cargo adds `--bench`).
pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}

/// `CHAINTRACE_BENCH_TXS`, or 1,000,000.
pub fn world_size() -> u64 {
    std::env::var("CHAINTRACE_BENCH_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A simulated world (seed 7), ingested: the temp dir holding it, the dataset directory
/// and the ground truth directory.
pub fn ingested_world(txs: u64, preset: Preset) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let world = tempfile::tempdir().expect("a temp dir");
    let opts = SimOptions {
        seed: 7,
        txs,
        preset,
        out: world.path().to_path_buf(),
        period: None,
        prices: None,
    };
    simulate(&opts, &ProgressBar::hidden()).expect("the world simulates");
    let data = world.path().join("data");
    ingest_blocks_dir(
        &BlocksDirOptions::new(world.path().join("blocks"), &data),
        &ProgressBar::hidden(),
    )
    .expect("the world ingests");
    let truth = world.path().join("truth");
    (world, data, truth)
}

/// `address -> (entity, category)` from the simulator's `truth/addresses.parquet`.
pub fn truth_owners(
    truth: &std::path::Path,
) -> std::collections::HashMap<String, (String, String)> {
    use arrow_array::cast::AsArray;
    let mut owner = std::collections::HashMap::new();
    let f = std::fs::File::open(truth.join("addresses.parquet")).expect("truth addresses");
    for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (a, e, c) = (col("address"), col("entity"), col("category"));
        for i in 0..b.num_rows() {
            owner.insert(
                a.value(i).to_string(),
                (e.value(i).to_string(), c.value(i).to_string()),
            );
        }
    }
    owner
}

/// Runs `cmd` (a `/usr/bin/time -v ...` command line), asserts success, and returns wall
/// seconds, peak resident memory in MiB (from `/usr/bin/time`) and stdout.
pub fn timed(cmd: &mut std::process::Command) -> (f64, f64, String) {
    let t = std::time::Instant::now();
    let out = cmd.output().expect("the child runs");
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let kb = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (
        secs,
        kb / 1024.0,
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}
