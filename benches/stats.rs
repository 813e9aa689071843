//! `stats flows` benchmark: `cargo bench --bench stats [-- DATA TRUTH]`.
//!
//! Without arguments it simulates and ingests a world of `CHAINTRACE_BENCH_TXS` transactions
//! (default 1,000,000). It imports the truth's exchanges, mixer, vendor and ransomware crew as
//! labels (when DATA has none), then times `chaintrace stats flows --category
//! illicit_vendor,ransomware --by month` (the release binary, in a child process, so its
//! peak memory is its own) and the same query in DuckDB (`benches/stats_duckdb.py`, PyPI
//! `duckdb`) over the same files, and checks that both give the same totals.

mod common;

use std::path::Path;
use std::process::Command;

const CATS: &str = "illicit_vendor,ransomware";

fn import_labels(data: &Path, truth: &Path) {
    if chaintrace::labels::tags_path(data).is_file() {
        return;
    }
    let mut csv = String::from("address,label,category,actor\n");
    let mut owners: Vec<(String, (String, String))> =
        common::truth_owners(truth).into_iter().collect();
    owners.sort();
    for (a, (e, c)) in owners {
        if matches!(
            c.as_str(),
            "exchange" | "mixer" | "illicit_vendor" | "ransomware"
        ) {
            csv.push_str(&format!("{a},{e},{c},{e}\n"));
        }
    }
    let path = data.join("bench-labels.csv");
    std::fs::write(&path, csv).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_chaintrace"))
        .args([
            "labels",
            "import",
            path.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn main() {
    let args = common::args();
    let (_keep, data, truth) = match args.as_slice() {
        [d, t, ..] => (None, d.into(), t.into()),
        _ => {
            let n = common::world_size();
            eprintln!("simulating and ingesting a {n}-transaction world...");
            let (k, d, t) = common::ingested_world(n, chaintrace::simulate::Preset::Default);
            (Some(k), d, t)
        }
    };
    let data: std::path::PathBuf = data;
    let truth: std::path::PathBuf = truth;
    import_labels(&data, &truth);
    let out = tempfile::tempdir().unwrap();
    let (secs, mib, stdout) = common::timed(
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_chaintrace"))
            .args([
                "--json",
                "stats",
                "flows",
                "--data",
                data.to_str().unwrap(),
                "--category",
                CATS,
                "--by",
                "month",
                "--out",
            ])
            .arg(out.path()),
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stats prints JSON");
    let sum = |t: &str, c: &str| {
        v[t].as_array()
            .unwrap()
            .iter()
            .map(|r| r[c].as_i64().unwrap())
            .sum::<i64>()
    };
    let ours = (
        sum("inflows", "received"),
        sum("inflows", "payments"),
        sum("outflows", "sent"),
        sum("outflows", "transfers"),
    );
    println!("dataset: {}", data.display());
    println!(
        "{:<12} {:>9} {:>10}   totals (received, payments, sent, transfers)",
        "engine", "seconds", "peak MiB"
    );
    println!(
        "{:<12} {:>9.2} {:>10.1}   {ours:?} (includes writing CSV, Parquet and 3 charts)",
        "chaintrace", secs, mib
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/stats_duckdb.py");
    let (dsecs, _, dout) = common::timed(
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg("python3")
            .arg(&script)
            .arg(&data)
            .arg("regtest")
            .arg(CATS),
    );
    let d: serde_json::Value =
        serde_json::from_str(dout.trim()).expect("the DuckDB script prints JSON");
    let theirs = (
        d["received"].as_i64().unwrap(),
        d["payments"].as_i64().unwrap(),
        d["sent"].as_i64().unwrap(),
        d["transfers"].as_i64().unwrap(),
    );
    println!(
        "{:<12} {:>9.2} {:>10.1}   {theirs:?} (query {:.2} s inside Python)",
        "duckdb",
        dsecs,
        d["peak_mib"].as_f64().unwrap(),
        d["seconds"].as_f64().unwrap()
    );
    println!("same totals: {}", ours == theirs);
}
