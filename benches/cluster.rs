//! Clustering benchmark: `cargo bench --bench cluster [-- DATA_DIR TRUTH_DIR]`.
//!
//! Without arguments it simulates a world of `CHAINTRACE_BENCH_TXS` transactions (default
//! 1,000,000) for each of the `default` and `adversarial` presets and ingests it. It then
//! prints, per world: index build rate and peak memory, clustering rate (inputs/s), the
//! same multi-input sets clustered by `graphsense-clustering` (PyPI, a Rust union-find;
//! skipped with a notice if `python3 -c 'import gs_clustering'` fails) with a check that
//! both give the same partition, the default set's time and peak memory (two passes and the
//! collapse guard), and per heuristic set against the truth: pairwise precision/recall,
//! false merges per 1,000, each rule's merge precision, and the oracle of perfect change
//! detection. The real Bitcoin Core world A (`../shared/datasets`) is measured first.
//! `CHAINTRACE_BENCH_SETS=default` scores multi-input and the default set only, and
//! `CHAINTRACE_BENCH_PRESETS=default` skips the adversarial world (for 10 M transactions).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{ListBuilder, UInt32Builder};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use chaintrace::cluster::heuristics::{Heuristic, detect_coinjoin};
use chaintrace::cluster::{self, eval};
use chaintrace::index::Index;

fn rss() -> f64 {
    chaintrace::ingest::bitcoin::peak_rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64
}

/// Child: build the index and cluster, printing figures.
fn child(data: &Path, truth: &Path, label: &str) {
    let chain = data.join("regtest");
    let _ = std::fs::remove_dir_all(chain.join("index"));
    let t = Instant::now();
    let (idx, _) = Index::open_or_build(&chain).expect("the index builds");
    let build = t.elapsed().as_secs_f64();
    let mem_index = rss();
    let t = Instant::now();
    let c = cluster::cluster(&idx, &[Heuristic::MultiInput], None);
    let secs = t.elapsed().as_secs_f64();
    let clusters = {
        let mut v = c.cluster_of.clone();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    println!(
        "\n== {label}: {} txs, {} inputs, {} addresses",
        idx.meta.txs, idx.meta.inputs, idx.meta.addresses
    );
    println!(
        "index build   {:>8.2} s  {:>10.0} tx/s  {:>10.0} inputs/s  peak {:>7.1} MiB",
        build,
        idx.meta.txs as f64 / build,
        idx.meta.inputs as f64 / build,
        mem_index
    );
    println!(
        "chaintrace    {:>8.2} s  {:>10.0} inputs/s (multi-input, CoinJoin detection)  {} clusters  peak {:>7.1} MiB",
        secs,
        idx.meta.inputs as f64 / secs,
        clusters,
        rss()
    );

    // The same multi-input sets for graphsense-clustering (address ids + 1: it reserves 0).
    let dir = tempfile::tempdir().expect("a temp dir");
    let sets_path = dir.path().join("sets.parquet");
    let mut b = ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::UInt32,
        false,
    )));
    for t in idx.tx_ids() {
        if idx.is_coinbase(t) || detect_coinjoin(&idx, t).is_some() {
            continue;
        }
        let ins: Vec<u32> = idx.input_addresses(t).map(|a| a.0).collect();
        if ins.len() < 2 {
            continue;
        }
        for a in ins {
            b.values().append_value(a + 1);
        }
        b.append(true);
    }
    let list = b.finish();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "inputs",
        list.data_type().clone(),
        false,
    )]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(list)]).expect("one list column");
    let staged = chaintrace::store::sink::stage(&sets_path, &batch).expect("the sets write");
    chaintrace::store::sink::commit(std::slice::from_ref(&staged)).expect("the sets commit");
    // Our fingerprint in graphsense's form: non-singleton rows, ids + 1, ascending.
    let mut size = std::collections::HashMap::new();
    for &x in &c.cluster_of {
        *size.entry(x).or_insert(0u32) += 1;
    }
    let (mut ids, mut cls) = (Vec::new(), Vec::new());
    for (a, &x) in c.cluster_of.iter().enumerate() {
        if size[&x] > 1 {
            ids.extend_from_slice(&(a as u32 + 1).to_le_bytes());
            cls.extend_from_slice(&(x + 1).to_le_bytes());
        }
    }
    ids.extend_from_slice(&cls);
    use bitcoin::hashes::{Hash, sha256};
    let ours = sha256::Hash::hash(&ids).to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/graphsense_compare.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&sets_path)
        .arg((idx.addresses() + 1).to_string())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let f: Vec<&str> = text.split_whitespace().collect();
            let secs: f64 = f[0].parse().unwrap_or(f64::NAN);
            println!(
                "graphsense    {:>8.2} s  {:>10.0} inputs/s (the same sets, union-find only)  peak {:>7.1} MiB (python process)  partition {}",
                secs,
                idx.meta.inputs as f64 / secs,
                f[3].parse::<f64>().unwrap_or(0.0) / (1 << 20) as f64,
                if f[2] == ours { "identical" } else { "DIFFERS" }
            );
        }
        _ => println!(
            "graphsense    skipped: `pip install graphsense-clustering pyarrow` to compare"
        ),
    }

    // The default set: two passes (multi-input and the consensus's precise rules, then
    // the votes over the first pass's clusters) and the collapse guard.
    let t = Instant::now();
    let fps = cluster::fingerprint::read(&idx, &chain).expect("the fingerprints read");
    let guard = cluster::ClusterOptions {
        max_change_join: Some(cluster::DEFAULT_HOLD_SIZE),
        labels: None,
        fingerprints: Some(&fps),
        prices: None,
    };
    let d = cluster::cluster_guarded(&idx, &Heuristic::DEFAULT, None, &guard);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "default set   {:>8.2} s  {:>10.0} tx/s ({}: two passes, {} merges, {} held)  peak {:>7.1} MiB",
        secs,
        idx.meta.txs as f64 / secs,
        cluster::set_name(&Heuristic::DEFAULT),
        d.merges.len(),
        d.held.len(),
        rss()
    );
    drop(d);

    let truth_map = eval::read_truth(truth).expect("the truth reads");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>12} {:>12} {:>11} {:>15}",
        "heuristics",
        "precision",
        "recall",
        "F1",
        "homogeneity",
        "completeness",
        "false/1000",
        "rule precision"
    );
    // CHAINTRACE_BENCH_SETS=default scores multi-input and the default set only (the
    // 10 M-transaction run: every rule's row would take most of an hour there).
    let mut sets = vec![vec![Heuristic::MultiInput]];
    if std::env::var("CHAINTRACE_BENCH_SETS").as_deref() == Ok("default") {
        sets.push(Heuristic::DEFAULT.to_vec());
    } else {
        for h in Heuristic::ALL.iter().filter(|h| h.is_change()) {
            sets.push(vec![Heuristic::MultiInput, *h]);
        }
    }
    let oracle = eval::read_change_flags(truth)
        .expect("the truth reads")
        .map(|flags| eval::oracle(&idx, &truth_map, &flags));
    let no_dir = dir.path().join("no-clusters-dir");
    let rows = eval::evaluate_sets(&idx, &truth_map, None, &sets, oracle, &guard, &no_dir)
        .expect("the sets score")
        .expect("the truth covers the dataset");
    for s in rows {
        let rule = s.heuristics.rsplit('+').next().unwrap_or("").to_string();
        println!(
            "{:<44} {:>9.4} {:>9.4} {:>9.4} {:>12.4} {:>12.4} {:>11} {:>15}",
            s.heuristics,
            s.precision,
            s.recall,
            s.f1,
            s.homogeneity,
            s.completeness,
            s.false_merges_per_1000
                .map_or_else(|| "-".to_string(), |f| format!("{f:.2}")),
            s.by_rule.get(&rule).map_or(String::new(), |r| format!(
                "{:.4} of {}",
                r.precision, r.merges
            ))
        );
    }
}

fn main() {
    let args = common::args();
    if args.first().map(String::as_str) == Some("--child") {
        child(Path::new(&args[1]), Path::new(&args[2]), &args[3]);
        return;
    }
    let me = std::env::current_exe().expect("the bench knows its path");
    let run = |data: &Path, truth: &Path, label: &str| {
        let st = Command::new(&me)
            .arg("--child")
            .arg(data)
            .arg(truth)
            .arg(label)
            .status()
            .expect("the child runs");
        assert!(st.success(), "the benchmark of {label} failed");
    };
    if args.len() >= 2 {
        run(Path::new(&args[0]), Path::new(&args[1]), &args[0]);
        return;
    }
    // The real Bitcoin Core world A (regtest), when ../shared/datasets is there.
    let world_a =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/bitcoin/regtest-world-a");
    if world_a.is_dir() {
        let d = tempfile::tempdir().expect("a temp dir");
        let data = d.path().join("data");
        chaintrace::ingest::bitcoin::ingest_blocks_dir(
            &chaintrace::ingest::bitcoin::BlocksDirOptions::new(world_a.join("blocks"), &data),
            &indicatif::ProgressBar::hidden(),
        )
        .expect("world A ingests");
        run(
            &data,
            &world_a.join("ground_truth/addresses.csv"),
            "regtest world A (real Bitcoin Core wallets)",
        );
    } else {
        println!(
            "regtest world A skipped: {} is not there",
            world_a.display()
        );
    }
    let txs = common::world_size();
    // CHAINTRACE_BENCH_PRESETS=default runs the default preset only.
    let only_default = std::env::var("CHAINTRACE_BENCH_PRESETS").as_deref() == Ok("default");
    for preset in [
        chaintrace::simulate::Preset::Default,
        chaintrace::simulate::Preset::Adversarial,
    ]
    .into_iter()
    .filter(|p| !only_default || *p == chaintrace::simulate::Preset::Default)
    {
        let (_world, data, truth) = common::ingested_world(txs, preset);
        run(&data, &truth, &format!("{txs} tx, {preset:?} preset"));
    }
}
