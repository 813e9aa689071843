//! Scale benchmark: `cargo bench --bench scale -- N [N2 ...]`.
//!
//! For each size N (transactions; default 1,000,000) it simulates a world (default preset,
//! seed 7), then runs every stage as a user would, each in a child process of the release
//! binary, and prints per stage: wall time, peak resident memory (`VmHWM`), peak anonymous
//! memory (heap: `RssAnon` polled every 10 ms; file-backed pages of the memory-mapped index
//! are the kernel's page cache, evictable, and are in `VmHWM` but not here), the disk it
//! wrote, and bytes per transaction, output and address.
//!
//! Stages: `simulate`, `ingest bitcoin --blocks-dir`, the index build
//! (`Index::open_or_build`, this benchmark re-run as a child), `cluster bitcoin` (default
//! set; before any labels, so its memory is the chain's), `labels import` (the truth's
//! exchanges, mixer, vendors and ransomware crews), `trace` (FIFO, 20 hops, from 50 of the
//! vendors' addresses) and `stats flows --by month`.
//!
//! With two sizes or more it fits `heap = fixed + per-item × items` per stage through the
//! two largest and projects it to the whole Bitcoin chain (1.2 G transactions, 3.4 G
//! outputs, 1.5 G addresses, 180 M unspent outputs at the tip); ingest's projection is the
//! UTXO set's own measured bytes per unspent output times 180 M plus the rest of its heap.
//! Each line names the item it scales with and the assumption behind it
//! (docs/PERFORMANCE.md).
//!
//! The stages read the memory budget from `CHAINTRACE_MEMORY` (as the children inherit it):
//! `CHAINTRACE_MEMORY=16M` measures the budgeted paths (a 1 M-transaction world's 2.5 M
//! addresses under 16 MiB are a stricter budget per address than the whole chain's 1.5 G
//! under 16 GiB).
//!
//! `CHAINTRACE_SCALE_DIR=DIR` keeps the worlds in DIR (default: a temporary directory,
//! removed at the end); the disk holds about 1.2 KB per transaction for every stage's
//! output together.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One stage's figures.
#[derive(Clone, Debug, Default)]
struct Stage {
    name: &'static str,
    secs: f64,
    hwm_mib: f64,
    anon_mib: f64,
    disk_bytes: u64,
}

/// A world's counts.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    txs: u64,
    outputs: u64,
    inputs: u64,
    addresses: u64,
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd`, polling its memory; panics with its stderr if it fails.
fn measure(name: &'static str, cmd: &mut Command) -> Stage {
    measure_to(name, cmd, None)
}

/// [`measure`], with the standard output going to the file `out` when given.
fn measure_to(name: &'static str, cmd: &mut Command, out: Option<&Path>) -> Stage {
    let t = Instant::now();
    let stdout = match out {
        Some(p) => Stdio::from(std::fs::File::create(p).expect("the stdout file")),
        None => Stdio::null(),
    };
    let mut child = cmd
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let pid = child.id();
    let (mut hwm, mut anon) = (0u64, 0u64);
    let status = loop {
        if let Some(st) = child.try_wait().expect("the child can be waited for") {
            break st;
        }
        hwm = hwm.max(status_kb(pid, "VmHWM:").unwrap_or(0));
        anon = anon.max(status_kb(pid, "RssAnon:").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    };
    let secs = t.elapsed().as_secs_f64();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "{name} failed: {err}");
    Stage {
        name,
        secs,
        hwm_mib: hwm as f64 / 1024.0,
        anon_mib: anon as f64 / 1024.0,
        disk_bytes: 0,
    }
}

fn du(path: &Path) -> u64 {
    if path.is_file() {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chaintrace"));
    c.arg("-q");
    c
}

/// The labels of the truth's exchanges, mixer, vendors and ransomware crews, as a CSV, and
/// the vendors' addresses.
fn truth_labels(truth: &Path, out: &Path) -> Vec<String> {
    let mut owners: Vec<(String, (String, String))> =
        common::truth_owners(truth).into_iter().collect();
    owners.sort();
    let mut csv = String::from("address,label,category,actor\n");
    let mut vendor = Vec::new();
    for (a, (e, c)) in owners {
        if matches!(
            c.as_str(),
            "exchange" | "mixer" | "illicit_vendor" | "ransomware"
        ) {
            csv.push_str(&format!("{a},{e},{c},{e}\n"));
        }
        if c == "illicit_vendor" && vendor.len() < 50 {
            vendor.push(a);
        }
    }
    std::fs::write(out, csv).expect("the labels CSV is written");
    vendor
}

/// Runs every stage on a world of `txs` transactions under `root`.
fn run(root: &Path, txs: u64) -> (Counts, Vec<Stage>, (u64, u64)) {
    let w = root.join(format!("world-{txs}"));
    let _ = std::fs::remove_dir_all(&w);
    std::fs::create_dir_all(&w).expect("the world's directory");
    let data = w.join("data");
    let mut stages = Vec::new();

    let mut s = measure(
        "simulate",
        bin()
            .args([
                "simulate",
                "--txs",
                &txs.to_string(),
                "--seed",
                "7",
                "--out",
            ])
            .arg(&w),
    );
    s.disk_bytes = du(&w.join("blocks"));
    stages.push(s);

    let ingest_json = w.join("ingest.json");
    let mut s = measure_to(
        "ingest",
        bin()
            .args(["--json", "ingest", "bitcoin", "--blocks-dir"])
            .arg(w.join("blocks"))
            .arg("--data")
            .arg(&data),
        Some(&ingest_json),
    );
    s.disk_bytes = du(&data.join("regtest"));
    stages.push(s);
    let ingest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ingest_json).expect("ingest's JSON"))
            .expect("ingest prints JSON");
    let utxo = (
        ingest["utxo_heap_bytes"].as_u64().unwrap_or(0),
        ingest["utxo_outputs"].as_u64().unwrap_or(0),
    );

    // Clustering before the labels: its memory is then the chain's, not the labels'
    // (labels are measured on their own below, and every stage that reads them pays it).
    let chain = data.join("regtest");
    let mut s = measure(
        "index build",
        Command::new(std::env::current_exe().expect("this benchmark's path"))
            .arg("--child-index")
            .arg(&chain),
    );
    s.disk_bytes = du(&chain.join("index"));
    stages.push(s);

    let mut s = measure(
        "cluster (default set)",
        bin().args(["cluster", "bitcoin", "--data"]).arg(&data),
    );
    s.disk_bytes = du(&data.join("clusters"));
    stages.push(s);

    let csv = w.join("labels.csv");
    let seeds = truth_labels(&w.join("truth"), &csv);
    let mut s = measure(
        "labels import",
        bin()
            .args(["labels", "import"])
            .arg(&csv)
            .arg("--data")
            .arg(&data),
    );
    s.disk_bytes = du(&data.join("labels"));
    stages.push(s);

    let case = w.join("case");
    let mut trace = bin();
    // The trace stops at three quarters of its budget, the labels it loads included
    // (about 0.3 KB a tag: 250 k tags on the 1 M world): under CHAINTRACE_MEMORY=16M it
    // would refuse, so it is measured with a budget of its own.
    trace.args(["--memory", "8G"]);
    trace.args(["trace", "--policy", "fifo", "--max-hops", "20", "--data"]);
    trace.arg(&data).arg("--out").arg(&case);
    for a in &seeds {
        trace.args(["--seed", a]);
    }
    let mut s = measure("trace (FIFO, 20 hops)", &mut trace);
    s.disk_bytes = du(&case);
    stages.push(s);

    let out = w.join("stats");
    let mut s = measure(
        "stats flows",
        bin()
            .args([
                "stats",
                "flows",
                "--category",
                "illicit_vendor,ransomware",
                "--by",
                "month",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(&out),
    );
    s.disk_bytes = du(&out);
    stages.push(s);

    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(chain.join("index/meta.json")).expect("the index's meta.json"),
    )
    .expect("meta.json is JSON");
    let n = |k: &str| meta[k].as_u64().unwrap_or(0);
    let counts = Counts {
        txs: n("txs"),
        outputs: n("outputs"),
        inputs: n("inputs"),
        addresses: n("addresses"),
    };
    (counts, stages, utxo)
}

fn print(counts: Counts, stages: &[Stage]) {
    println!(
        "\n== {} transactions, {} outputs, {} inputs, {} addresses",
        counts.txs, counts.outputs, counts.inputs, counts.addresses
    );
    println!(
        "{:<24} {:>9} {:>11} {:>11} {:>11} {:>9} {:>9} {:>9}",
        "stage", "wall s", "VmHWM MiB", "heap MiB", "disk MiB", "B/tx", "B/out", "B/addr"
    );
    for s in stages {
        let per = |k: u64| s.disk_bytes as f64 / k.max(1) as f64;
        println!(
            "{:<24} {:>9.2} {:>11.1} {:>11.1} {:>11.1} {:>9.1} {:>9.1} {:>9.1}",
            s.name,
            s.secs,
            s.hwm_mib,
            s.anon_mib,
            s.disk_bytes as f64 / (1 << 20) as f64,
            per(counts.txs),
            per(counts.outputs),
            per(counts.addresses),
        );
    }
}

/// Whole-chain sizes the projection uses.
const BTC: Counts = Counts {
    txs: 1_200_000_000,
    outputs: 3_400_000_000,
    inputs: 3_300_000_000,
    addresses: 1_500_000_000,
};

/// The item a stage's memory grows with, and why.
fn driver(stage: &str) -> (&'static str, &'static str) {
    match stage {
        "simulate" => (
            "txs",
            "the simulator is ours, not a user's stage: its figures are for the record",
        ),
        "ingest" => (
            "unspent",
            "the UTXO set: its measured bytes per unspent output × 180 M, plus the rest of the heap",
        ),
        "labels import" | "trace (FIFO, 20 hops)" | "stats flows" => (
            "fixed",
            "grows with the labels loaded (about 1.5 KB a tag; this world's tags grow with it) and the rows found; the chain is memory-mapped",
        ),
        "index build" => (
            "addresses",
            "the address map (11-21 B an address; within half of --memory, in passes), then the sorted txids (4 B a tx); the arrays are file-backed",
        ),
        _ => (
            "addresses",
            "union-find (9 B), the first pass's labels and sizes (8 B); merges in scratch files; per-cluster figures by ranges within a quarter of --memory",
        ),
    }
}

/// Projection of each stage's heap from the two largest worlds.
fn project(runs: &[(Counts, Vec<Stage>, (u64, u64))]) {
    let [.., (c1, s1, _), (c2, s2, u2)] = runs else {
        return;
    };
    println!(
        "\n== projection to the whole Bitcoin chain (1.2 G tx, 3.4 G outputs, 1.5 G addresses, 180 M unspent)"
    );
    println!(
        "   heap = fixed + per-item × items, through the two largest worlds; disk per transaction × 1.2 G"
    );
    println!(
        "{:<24} {:>10} {:>14} {:>12} {:>12}  assumption",
        "stage", "item", "heap B/item", "heap GiB", "disk GiB"
    );
    for (a, b) in s1.iter().zip(s2) {
        let (item, why) = driver(a.name);
        let (x1, x2, whole) = match item {
            "addresses" => (c1.addresses, c2.addresses, BTC.addresses),
            "outputs" => (c1.outputs, c2.outputs, BTC.outputs),
            "txs" => (c1.txs, c2.txs, BTC.txs),
            _ => (0, 0, 0),
        };
        let mib = 1024.0 * 1024.0;
        let (slope, heap) = if item == "unspent" {
            // The UTXO set's own measured bytes per unspent output, times mainnet's; the
            // rest of ingest's heap (part writers, block buffers) does not grow with it.
            let per = u2.0 as f64 / u2.1.max(1) as f64;
            let rest = b.anon_mib * mib - u2.0 as f64;
            (per, (rest + per * 180e6) / (mib * 1024.0))
        } else if x2 > x1 {
            let slope = (b.anon_mib - a.anon_mib) * mib / (x2 - x1) as f64;
            let fixed = b.anon_mib * mib - slope * x2 as f64;
            (slope, (fixed + slope * whole as f64) / (mib * 1024.0))
        } else {
            (0.0, b.anon_mib / 1024.0)
        };
        let disk = b.disk_bytes as f64 / c2.txs.max(1) as f64 * BTC.txs as f64 / (1024.0 * mib);
        println!(
            "{:<24} {:>10} {:>14.1} {:>12.1} {:>12.0}  {}",
            a.name, item, slope, heap, disk, why
        );
    }
}

/// Child mode: build the index of a chain directory, nothing else.
fn child_index(chain: &Path) {
    let _ = std::fs::remove_dir_all(chain.join("index"));
    chaintrace::index::Index::open_or_build(chain).expect("the index builds");
}

fn main() {
    let args = common::args();
    if let [flag, chain] = args.as_slice()
        && flag == "--child-index"
    {
        child_index(Path::new(chain));
        return;
    }
    let mut sizes: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes.push(1_000_000);
    }
    sizes.sort_unstable();
    let tmp;
    let root: PathBuf = match std::env::var_os("CHAINTRACE_SCALE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("a temp dir");
            tmp.path().to_path_buf()
        }
    };
    let mut runs = Vec::new();
    for &n in &sizes {
        let (counts, stages, utxo) = run(&root, n);
        print(counts, &stages);
        println!(
            "UTXO set at the tip: {} unspent outputs, {:.1} bytes each",
            utxo.1,
            utxo.0 as f64 / utxo.1.max(1) as f64
        );
        runs.push((counts, stages, utxo));
        if std::env::var_os("CHAINTRACE_SCALE_DIR").is_none() {
            let _ = std::fs::remove_dir_all(root.join(format!("world-{n}")));
        }
    }
    project(&runs);
}
