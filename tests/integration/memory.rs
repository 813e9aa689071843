//! The memory budget (`--memory`): the index is the same bytes whatever the budget, and
//! each long-running stage's peak (VmHWM of its process) stays under the budget plus a
//! fixed overhead.

use std::path::Path;

use chaintrace::index::Index;
use chaintrace::memory::Budget;

use crate::util::*;

/// `chaintrace ARGS` started, with stdout (`json`) or stderr (otherwise) piped and the
/// other stream dropped.
fn spawn(args: &[&str], json: bool) -> std::process::Child {
    let (piped, null) = (std::process::Stdio::piped, std::process::Stdio::null);
    std::process::Command::new(bin())
        .args(args)
        .stdout(if json { piped() } else { null() })
        .stderr(if json { null() } else { piped() })
        .spawn()
        .unwrap()
}

/// A simulated world of `txs` transactions ingested into `dir/data`: the chain directory.
fn world(dir: &Path, txs: &str) -> std::path::PathBuf {
    simulate(&dir.join("world"), "21", txs, "default");
    let data = dir.join("data");
    ok(&ingest(&dir.join("world/blocks"), &data, &[]));
    data.join("regtest")
}

fn index_files(chain: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(&chain.join("index"))
}

/// With a budget far too small for the address table, the build interns the addresses in
/// many passes over the outputs, and writes the same bytes as with the table in one pass.
#[test]
fn an_index_built_in_many_passes_is_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "3000");
    let one = Index::build(&chain, Budget::of_bytes(1 << 30)).unwrap();
    assert_eq!(one.passes, 1);
    let unbounded = index_files(&chain);
    assert!(unbounded.len() > 20, "{:?}", unbounded.keys());
    let many = Index::build(&chain, Budget::of_bytes(16 << 10)).unwrap();
    assert!(many.passes > 3, "{many:?}");
    let bounded = index_files(&chain);
    assert_eq!(
        bounded.keys().collect::<Vec<_>>(),
        unbounded.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &unbounded {
        assert!(bounded[name] == *bytes, "{name} differs after {many:?}");
    }
    // And the index answers: every address's outputs pay it.
    let ix = Index::load(&chain.join("index")).unwrap();
    assert!(ix.addresses() > 100);
    for a in ix.address_ids() {
        let s = ix.address(a).to_string();
        assert_eq!(ix.address_id(&s), Some(a));
        assert!(ix.outputs_paid(a).all(|o| ix.out_address(o) == Some(a)));
    }
}

/// `--memory` is read: a budget that is not a size, or under 16M, is refused by name; so
/// is one in CHAINTRACE_MEMORY (it was ignored for half the RAM).
#[test]
fn a_bad_memory_budget_is_refused() {
    for (given, says) in [
        ("lots", "not a size"),
        ("2M", "at least 16M"),
        ("-5G", "not a size"),
    ] {
        let o = run(&[
            "--memory",
            given,
            "--json",
            "stats",
            "flows",
            "--data",
            "/nonexistent",
        ]);
        assert!(!o.status.success());
        let out = stdout(&o);
        assert!(out.contains(given) && out.contains(says), "{out}");
        let o = run_env(
            &["--json", "cluster", "index", "--data", "/nonexistent"],
            &[("CHAINTRACE_MEMORY", given)],
        );
        assert_eq!(o.status.code(), Some(1));
        let out = stdout(&o);
        assert!(
            out.contains("CHAINTRACE_MEMORY") && out.contains(given) && out.contains(says),
            "{out}"
        );
    }
}

/// An empty CHAINTRACE_MEMORY is unset; a budget above the machine's RAM is warned about.
#[test]
fn an_empty_budget_is_unset_and_one_above_the_ram_is_warned_about() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "1000");
    let data = chain.parent().unwrap().to_str().unwrap().to_string();
    let o = run_env(
        &["--json", "cluster", "index", "--data", &data],
        &[("CHAINTRACE_MEMORY", " ")],
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let half = chaintrace::memory::Budget::half_of_ram().bytes();
    assert_eq!(v["memory_budget_bytes"].as_u64(), Some(half), "{v}");
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let o = run(&["--memory", "1024T", "cluster", "index", "--data", &data]);
    ok(&o);
    assert!(
        stderr(&o).contains("more than this machine's RAM"),
        "{}",
        stderr(&o)
    );
}

/// Three processes building one index at once (a trace and a cluster started together):
/// one builds, the others wait and load it. Before the lock they removed each other's
/// files (a bus error, a panic, a stray scratch file in the index).
#[test]
fn concurrent_index_builds_wait_for_each_other() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "20000");
    let data = chain.parent().unwrap().to_str().unwrap().to_string();
    ok(&run(&["cluster", "index", "--data", &data]));
    let alone = index_files(&chain);
    for round in 0..3 {
        let children: Vec<_> = (0..3)
            .map(|k| {
                let mut args = vec!["cluster", "index", "--data", &data, "--rebuild"];
                if k == 1 {
                    args.splice(0..0, ["--memory", "16M"]);
                }
                spawn(&args, false)
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {:?} {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(
            index_files(&chain) == alone,
            "round {round}: the index differs"
        );
        assert!(!chain.join(".index.building").exists());
    }
    // Without --rebuild, the one that waited loads what the other built.
    std::fs::remove_dir_all(chain.join("index")).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| spawn(&["--json", "cluster", "index", "--data", &data], true))
        .collect();
    let built: Vec<bool> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success());
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v["built"].as_bool().unwrap()
        })
        .collect();
    assert_eq!(built.iter().filter(|b| **b).count(), 1, "{built:?}");
    assert!(index_files(&chain) == alone);
}

/// The peak of anonymous memory (heap) of `chaintrace ARGS`, polled every 2 ms from
/// `/proc/PID/status` (`RssAnon`), in bytes; the command must succeed.
fn heap_peak(args: &[&str]) -> u64 {
    let (peak, out) = heap_peak_of(spawn(args, false));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    peak
}

/// The anonymous memory (`RssAnon`) of process `pid` now, in bytes; `None` once it is gone.
fn rss_anon(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
}

/// The heap peak of a started `child` (as [`heap_peak`] polls it), and its output.
fn heap_peak_of(mut child: std::process::Child) -> (u64, std::process::Output) {
    let mut peak = 0u64;
    loop {
        peak = peak.max(rss_anon(child.id()).unwrap_or(0));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    (peak, child.wait_with_output().unwrap())
}

/// The memory contract of the index build: under `--memory 16M` its heap stays under the
/// budget plus a fixed overhead (the binary's own allocations and the Parquet reader's
/// buffers, measured here as the peak of a world a fiftieth the size), while the default
/// budget lets it hold the address table whole; and both give the same files.
#[test]
fn the_index_build_keeps_its_heap_within_the_budget() {
    let d = tempfile::tempdir().unwrap();
    let small = world(&d.path().join("small"), "1000");
    let data = small.parent().unwrap().to_str().unwrap().to_string();
    let overhead = heap_peak(&["cluster", "index", "--data", &data, "--rebuild"]);
    let big = world(&d.path().join("big"), "50000");
    let data = big.parent().unwrap().to_str().unwrap().to_string();
    let unbounded = heap_peak(&["--memory", "8G", "cluster", "index", "--data", &data]);
    let files = index_files(&big);
    let budget = 16u64 << 20;
    let o = run(&[
        "--memory",
        "16M",
        "--json",
        "cluster",
        "index",
        "--data",
        &data,
        "--rebuild",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["passes"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        index_files(&big) == files,
        "the files differ under --memory 16M"
    );
    let bounded = heap_peak(&[
        "--memory",
        "16M",
        "cluster",
        "index",
        "--data",
        &data,
        "--rebuild",
    ]);
    eprintln!(
        "heap peaks: overhead {} KiB, unbounded {} KiB, under 16M {} KiB",
        overhead >> 10,
        unbounded >> 10,
        bounded >> 10
    );
    assert!(
        bounded <= budget + overhead,
        "heap peak {bounded} over the budget {budget} + overhead {overhead}"
    );
    // The clustering after it under the same budget: its per-cluster figures are
    // computed in two ranges of cluster ids here (95 k ids a range at 16 MiB), and the
    // files are the same as without the budget. (Its heap is not checked against the
    // budget at this size: the Parquet writers' row groups, up to 256 Ki rows, are most
    // of it below a few hundred thousand addresses.)
    ok(&run(&[
        "--memory", "8G", "cluster", "bitcoin", "--data", &data,
    ]));
    let clusters = d.path().join("big/data/clusters/regtest");
    let unbounded_files = tree(&clusters);
    assert!(Index::load(&big.join("index")).unwrap().addresses() > 96_000);
    ok(&run(&[
        "--memory", "16M", "cluster", "bitcoin", "--data", &data,
    ]));
    assert!(
        tree(&clusters) == unbounded_files,
        "clusters differ under --memory 16M"
    );
}

/// The per-cluster figures computed a range of cluster ids at a time (as `cluster bitcoin`
/// does within its budget) are the figures computed at once, whatever the cut points.
#[test]
fn cluster_figures_by_range_are_the_figures_at_once() {
    use chaintrace::cluster::heuristics::Heuristic;
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "3000");
    let (idx, _) = Index::open_or_build(&chain).unwrap();
    let c = chaintrace::cluster::cluster(&idx, &[Heuristic::MultiInput], None);
    let whole = chaintrace::cluster::stats(&idx, &c.cluster_of);
    assert!(whole.len() > 100 && whole.iter().any(|s| s.size > 1));
    let n = idx.addresses();
    for cuts in [
        vec![0, n],
        vec![0, 1, n / 3, n / 2 + 7, n],
        (0..=n).step_by(97).chain([n]).collect(),
    ] {
        let mut got = Vec::new();
        for w in cuts.windows(2) {
            got.extend(chaintrace::cluster::stats_of_range(
                &idx,
                &c.cluster_of,
                w[0]..w[1],
            ));
        }
        assert_eq!(got, whole, "cut at {cuts:?}");
    }
}

/// Clustering with its merges in scratch files (as `cluster bitcoin` does) gives the
/// clustering kept in memory: the same partition, merges in the same order, the same held
/// merges; and it leaves no scratch file behind.
#[test]
fn merges_in_scratch_files_are_the_merges_in_memory() {
    use chaintrace::cluster::heuristics::Heuristic;
    use chaintrace::cluster::merges::ScratchDir;
    use chaintrace::cluster::{ClusterOptions, cluster_guarded, cluster_streamed};
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "3000");
    let (idx, _) = Index::open_or_build(&chain).unwrap();
    let fps = chaintrace::cluster::fingerprint::read(&idx, &chain).unwrap();
    for (set, hold) in [
        (&Heuristic::DEFAULT[..], Some(2)),
        (
            &[
                Heuristic::MultiInput,
                Heuristic::ChangeSingleUse,
                Heuristic::ChangeVote,
            ][..],
            None,
        ),
        (&[Heuristic::MultiInput][..], None),
    ] {
        let opts = ClusterOptions {
            max_change_join: hold,
            fingerprints: Some(&fps),
            ..Default::default()
        };
        let mem = cluster_guarded(&idx, set, None, &opts);
        let scratch = ScratchDir::create(d.path()).unwrap();
        let s = cluster_streamed(&idx, set, &opts, scratch.path()).unwrap();
        assert!(std::fs::read_dir(scratch.path()).unwrap().count() > 0);
        assert_eq!(s.merges().collect::<Vec<_>>(), mem.merges, "{set:?}");
        assert_eq!(s.merge_count(), mem.merges.len());
        assert!(mem.merges.len() > 100, "{set:?}");
        let c = s.into_clustering();
        assert_eq!(c.cluster_of, mem.cluster_of);
        assert_eq!(c.held, mem.held);
        if hold.is_some() {
            assert!(
                !mem.held.is_empty(),
                "the guard held nothing: the test shows nothing"
            );
        }
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists());
    }
}

/// Two clusterings of one dataset at once: the second is refused, naming the first, and
/// the files on disk are one run's. A scratch folder a killed run left is removed by the
/// next run; a run that fails while writing leaves no clustering that loads (the meta,
/// written last, is gone), and the next run recovers.
#[test]
fn clusterings_do_not_mix_and_a_failed_one_does_not_load() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "20000");
    let data = chain.parent().unwrap().to_str().unwrap().to_string();
    ok(&run(&["cluster", "bitcoin", "--quiet", "--data", &data]));
    let clusters = chain.parent().unwrap().join("clusters/regtest");
    let alone = tree(&clusters);
    let mut refused = 0;
    for _ in 0..3 {
        let children: Vec<_> = [&["--heuristics", "multi-input"][..], &[][..]]
            .iter()
            .map(|extra| {
                let mut args = vec!["cluster", "bitcoin", "--quiet", "--data", &data];
                args.extend_from_slice(extra);
                spawn(&args, false)
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        assert!(outs.iter().any(|o| o.status.success()));
        for o in outs.iter().filter(|o| !o.status.success()) {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains("another chaintrace is clustering"), "{e}");
            refused += 1;
        }
        // Whichever ran last, its files are whole: the default set's again is the same.
        ok(&run(&["cluster", "bitcoin", "--quiet", "--data", &data]));
        assert!(tree(&clusters) == alone);
    }
    // The runs overlapped at least once (3 of 3 here): the lock was exercised.
    assert!(
        refused > 0,
        "no two clusterings overlapped: the test shows nothing"
    );
    // A killed run's scratch folder goes with the next run.
    let stale = clusters.join(".scratch-999999-0");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("multi_input"), vec![0u8; 4096]).unwrap();
    ok(&run(&["cluster", "bitcoin", "--quiet", "--data", &data]));
    assert!(!stale.exists());
    assert!(tree(&clusters) == alone);
    // A run that cannot write merges.parquet fails, and leaves no meta: nothing loads.
    std::fs::create_dir_all(clusters.join(".merges.parquet.tmp")).unwrap();
    let o = run(&["cluster", "bitcoin", "--quiet", "--data", &data]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!clusters.join("_meta.json").exists());
    let a = read_table(&chain, "outputs")[0]["address"]
        .str()
        .to_string();
    let o = run(&["cluster", "show", "--data", &data, &a]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("chaintrace cluster bitcoin"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(clusters.join(".merges.parquet.tmp")).unwrap();
    ok(&run(&["cluster", "bitcoin", "--quiet", "--data", &data]));
    assert!(tree(&clusters) == alone);
    assert!(!std::fs::read_dir(&clusters).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".scratch-")
    }));
}

/// `chaintrace ARGS` (with `--json`) sent SIGINT after longer and longer delays until one
/// reaches it while it works (exit 130): its one JSON document.
fn interrupted(args: &[&str]) -> serde_json::Value {
    for delay in [30u64, 60, 120, 240, 480, 960] {
        let child = spawn(args, true);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT);
        }
        let o = child.wait_with_output().unwrap();
        if o.status.code() == Some(130) {
            return serde_json::from_slice(&o.stdout).unwrap();
        }
    }
    panic!(
        "no Ctrl-C reached `chaintrace {}` while it ran",
        args.join(" ")
    );
}

/// Ctrl-C during `cluster bitcoin`: exit 130 with a JSON error of kind "interrupted", no
/// scratch folder and no clustering that loads left behind; the same command again
/// writes the same files.
#[test]
fn an_interrupted_clustering_exits_130_and_leaves_nothing_half_done() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "20000");
    let data = chain.parent().unwrap().to_str().unwrap().to_string();
    let o = run(&["cluster", "bitcoin", "--quiet", "--data", &data]);
    ok(&o);
    // The CoinJoins excluded are said in words, not as a debug-printed map.
    let said = stdout(&o);
    assert!(said.contains("CoinJoin(s) excluded ("), "{said}");
    assert!(!said.contains('{'), "{said}");
    let clusters = chain.parent().unwrap().join("clusters/regtest");
    let whole = tree(&clusters);
    let v = interrupted(&["--json", "cluster", "bitcoin", "--quiet", "--data", &data]);
    assert_eq!(v["error"]["kind"], "interrupted", "{v}");
    assert!(!clusters.join("_meta.json").exists());
    assert!(!std::fs::read_dir(&clusters).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".scratch-")
    }));
    let o = run(&["--json", "cluster", "bitcoin", "--quiet", "--data", &data]);
    ok(&o);
    assert!(tree(&clusters) == whole);
    // --json gives the largest cluster's size too (the text said it, the JSON did not).
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["largest"].as_u64().is_some_and(|n| n > 1), "{v}");
}

/// Ctrl-C during `cluster index --rebuild`: exit 130, its half-written `.index.building`
/// is removed (it was left for the next build to take over), and the old index is as it
/// was.
#[test]
fn an_interrupted_index_build_exits_130_and_keeps_the_old_index() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "20000");
    let data = chain.parent().unwrap().to_str().unwrap().to_string();
    ok(&run(&["cluster", "index", "--data", &data]));
    let whole = index_files(&chain);
    let v = interrupted(&["--json", "cluster", "index", "--rebuild", "--data", &data]);
    assert_eq!(v["error"]["kind"], "interrupted", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the old index, if there was one, is as it was"),
        "{v}"
    );
    assert!(!chain.join(".index.building").exists());
    assert!(index_files(&chain) == whole, "the old index changed");
    ok(&run(&["cluster", "index", "--verify", "--data", &data]));
}

/// `n` tags of distinct regtest addresses (P2WPKH of made-up key hashes), over 40
/// entities in four categories, as a CSV label list.
fn synthetic_tags(n: u32) -> String {
    use bitcoin::hashes::Hash;
    let mut csv = String::from("address,label,category,actor\n");
    for i in 0..n {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&i.to_be_bytes());
        h[19] = 0x5a;
        let script = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(h));
        let a = bitcoin::Address::from_script(&script, bitcoin::Network::Regtest).unwrap();
        let category = ["exchange", "illicit_vendor", "mixer", "ransomware"][(i % 4) as usize];
        let entity = format!("entity-{}", i % 40);
        csv.push_str(&format!("{a},{entity} deposit,{category},{entity}\n"));
    }
    csv
}

/// The labels a trace and `stats flows` load cost little heap a tag: each tag's texts
/// (chain, network, category, entity, source, file, ...) are held once and shared, and
/// the precedence groups tags without a map of vectors. Before, a tag took about 1.2 KB
/// in both (302 MiB of heap for 250 k tags on the 1 M world, 98 MiB after), which made
/// the labels, not the chain, the heap of a whole-chain trace.
#[test]
fn the_labels_cost_little_heap_a_tag_in_trace_and_stats() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "1000");
    let data = chain.parent().unwrap().to_path_buf();
    let data_s = data.to_str().unwrap().to_string();
    ok(&run(&["cluster", "index", "--data", &data_s]));
    let seed = {
        let ix = Index::load(&chain.join("index")).unwrap();
        ix.address(ix.address_ids().next().unwrap()).to_string()
    };
    let heaps = |tags: u32| {
        let _ = std::fs::remove_dir_all(data.join("labels"));
        import_labels(&data, &synthetic_tags(tags));
        let case = d.path().join(format!("case-{tags}"));
        let trace = heap_peak(&[
            "trace",
            "--data",
            &data_s,
            "--seed",
            &seed,
            "--out",
            case.to_str().unwrap(),
        ]);
        let stats = heap_peak(&[
            "stats",
            "flows",
            "--category",
            "illicit_vendor",
            "--data",
            &data_s,
            "--out",
            d.path().join(format!("stats-{tags}")).to_str().unwrap(),
        ]);
        (trace, stats)
    };
    let (few, many) = (heaps(4), heaps(60_000));
    for (stage, a, b) in [("trace", few.0, many.0), ("stats flows", few.1, many.1)] {
        let per_tag = b.saturating_sub(a) / 60_000;
        eprintln!(
            "{stage}: heap {} KiB with 4 tags, {} KiB with 60 k: {per_tag} B a tag",
            a >> 10,
            b >> 10
        );
        assert!(b > a, "{stage}: the tags were not loaded ({a} vs {b})");
        assert!(per_tag < 500, "{stage}: {per_tag} bytes of heap a tag");
    }
}

/// Ingest keeps the UTXO set within half its budget: past it, the set's records move to
/// a scratch file (unlinked at once, so nothing is left behind). The dataset and the UTXO
/// snapshot are the same bytes as with the set on the heap, also when a second run
/// extends the dataset from the snapshot into a set that spills as it loads.
#[test]
fn ingest_spills_the_utxo_set_past_its_budget_and_writes_the_same_bytes() {
    use chaintrace::ingest::bitcoin::{BlocksDirOptions, ingest_blocks_dir};
    let d = tempfile::tempdir().unwrap();
    simulate(&d.path().join("world"), "21", "3000", "default");
    let blocks = d.path().join("world/blocks");
    let pb = indicatif::ProgressBar::hidden();
    let ingest_with = |data: &Path, memory: Option<Budget>, to: Option<u32>| {
        let mut o = BlocksDirOptions::new(&blocks, data);
        if let Some(m) = memory {
            o.range.memory = m;
        }
        o.range.to = to;
        o.range.part_blocks = 20;
        ingest_blocks_dir(&o, &pb).unwrap()
    };
    let heap = ingest_with(
        &d.path().join("heap"),
        Some(Budget::of_bytes(1 << 30)),
        None,
    );
    assert_eq!(heap.utxo_spilled_bytes, Some(0));
    let tiny = Some(Budget::of_bytes(64 << 10));
    let spilled = ingest_with(&d.path().join("spilled"), tiny, None);
    assert!(spilled.utxo_spilled_bytes > Some(0), "{spilled:?}");
    assert!(spilled.utxo_heap_bytes < heap.utxo_heap_bytes);
    assert_eq!(spilled.utxo_outputs, heap.utxo_outputs);
    // A rerun with nothing to write keeps no set, and says so (it said 0 unspent outputs).
    let again = ingest_with(&d.path().join("heap"), None, None);
    assert_eq!(again.written.blocks, 0, "{again:?}");
    assert_eq!(again.utxo_outputs, None, "{again:?}");
    let tip = heap.tip.as_ref().unwrap().height;
    let first = ingest_with(
        &d.path().join("resumed"),
        tiny,
        Some(u32::try_from(tip - 4).unwrap()),
    );
    assert!(first.utxo_spilled_bytes > Some(0), "{first:?}");
    let resumed = ingest_with(&d.path().join("resumed"), tiny, None);
    assert!(resumed.snapshot_height.is_some(), "{resumed:?}");
    assert!(resumed.utxo_spilled_bytes > Some(0), "{resumed:?}");
    let files = |name: &str| tree(&d.path().join(name).join("regtest"));
    let want = files("heap");
    assert!(
        want.keys().any(|k| k.starts_with("outputs/")),
        "{:?}",
        want.keys()
    );
    for name in ["spilled", "resumed"] {
        let got = files(name);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (k, v) in &want {
            // The manifest records when it was written; everything else is the chain's.
            if k != "_manifest.json" {
                assert!(got[k] == *v, "{name}: {k} differs");
            }
        }
        assert!(
            !got.keys().any(|k| k.contains("utxo-spill")),
            "{name}: a scratch file was left"
        );
    }
}

/// A trace's heap grows by little an edge, and a rerun into the same case costs no more
/// than the first run: the edges share their texts, `trace.json` is written as it is
/// serialised and a rerun compares it by sha256 and reads only its old command. Before, a
/// rerun built the old case's JSON tree (4.7 GiB for a 1 M-edge trace, three times the
/// first run) and the first run held the whole `trace.json` as bytes.
#[test]
fn a_traces_heap_is_small_an_edge_and_a_rerun_costs_no_more() {
    let d = tempfile::tempdir().unwrap();
    let (data, seeds) = traced_world(d.path());
    let seed_arg = format!("@{}", seeds.display());
    let trace = |seed: &str, case: &Path| {
        heap_peak(&[
            "trace",
            "--data",
            &data,
            "--seed",
            seed,
            "--policy",
            "all",
            "--out",
            case.to_str().unwrap(),
        ])
    };
    let first_seed = std::fs::read_to_string(&seeds).unwrap();
    let small = trace(first_seed.lines().next().unwrap(), &d.path().join("one"));
    let case = d.path().join("case");
    let first = trace(&seed_arg, &case);
    let edges = {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let f = std::fs::File::open(case.join("edges.parquet")).unwrap();
        let r = SerializedFileReader::new(f).unwrap();
        u64::try_from(r.metadata().file_metadata().num_rows()).unwrap()
    };
    let json_bytes = std::fs::metadata(case.join("trace.json")).unwrap().len();
    let again = trace(&seed_arg, &case);
    let per_edge = first.saturating_sub(small) / edges.max(1);
    eprintln!(
        "trace: {edges} edges, trace.json {} KiB; heap {} KiB (one seed {} KiB, {per_edge} B an edge); rerun {} KiB",
        json_bytes >> 10,
        first >> 10,
        small >> 10,
        again >> 10
    );
    assert!(edges > 20_000, "too few edges to measure: {edges}");
    assert!(
        per_edge < 900,
        "{per_edge} B of heap an edge ({edges} edges, trace.json {json_bytes} B)"
    );
    assert!(
        again < first + first / 4,
        "a rerun took {again} B of heap, the first run {first} B"
    );
}

/// A trace reads `--memory`: its walks stop once the process's heap reaches three
/// quarters of the budget, with an error saying how far it got and how to narrow it (it
/// grew until the machine swapped or the kernel killed it, whatever the budget), and the
/// case folder is left as it was. A budget with room for the trace is not stopped early,
/// and gives the same case as no budget.
#[test]
fn a_trace_stops_at_its_memory_budget_and_not_before() {
    let d = tempfile::tempdir().unwrap();
    let (data, seeds) = traced_world(d.path());
    let seed_arg = format!("@{}", seeds.display());
    let args = |memory: &str, case: &Path| -> Vec<String> {
        [
            "--memory", memory, "trace", "--quiet", "--force", "--data", &data, "--seed",
            &seed_arg, "--policy", "all", "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([case.to_str().unwrap().to_string()])
        .collect()
    };
    // Its growth without a tight budget: the heap of the whole trace less that of a trace
    // of one seed.
    let one = heap_peak(&[
        "trace",
        "--quiet",
        "--data",
        &data,
        "--seed",
        std::fs::read_to_string(&seeds)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        "--out",
        d.path().join("one").to_str().unwrap(),
    ]);
    let free = d.path().join("free");
    let whole = heap_peak(&refs(&args("8G", &free)));
    let growth = whole.saturating_sub(one);
    eprintln!(
        "trace heap: one seed {} KiB, all {} KiB",
        one >> 10,
        whole >> 10
    );
    assert!(
        growth > 40 << 20,
        "the trace grows too little to test: {growth} B"
    );
    // Under 16M: stopped, the heap within the budget, the case it was to replace (the
    // one-seed trace's) as it was.
    let case = d.path().join("one");
    let old_case = std::fs::read(case.join("trace.json")).unwrap();
    let as_it_was = || {
        assert!(std::fs::read(case.join("trace.json")).unwrap() == old_case);
    };
    let tight = args("16M", &case);
    let o = run(&refs(&tight));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("outgrew the memory budget (16 MiB)")
            && err.contains("transfers")
            && err.contains("--max-hops")
            && err.contains("--memory"),
        "{err}"
    );
    as_it_was();
    let mut spawned = refs(&tight);
    spawned.insert(0, "--json");
    let (peak, out) = heap_peak_of(spawn(&spawned, true));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "input", "{v}");
    eprintln!("under 16M: heap peak {} KiB", peak >> 10);
    // What it held before its walks (the program, the seeds) counts: the whole heap stays
    // within the budget.
    assert!(
        peak <= 16 << 20,
        "heap peak {peak} over the budget 16 MiB (a one-seed trace's: {one})"
    );
    // Ctrl-C while it walks (its heap a few MiB above a one-seed trace's): it stops with
    // exit 130 and a word, and the case folder is as it was (before, the signal killed it).
    let child = spawn(&refs(&args("8G", &case)), false);
    while rss_anon(child.id()).is_some_and(|b| b < one + (8 << 20)) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // SAFETY: kill(2) on the child's pid.
    unsafe {
        libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    as_it_was();
    // With room (twice its growth): it runs to the end, and the case is the unbounded one's.
    let roomy = format!("{}M", ((growth * 2) >> 20).max(16));
    let o = run(&refs(&args(&roomy, &case)));
    ok(&o);
    for f in ["edges.parquet", "ends.parquet"] {
        assert!(
            std::fs::read(case.join(f)).unwrap() == std::fs::read(free.join(f)).unwrap(),
            "{f} differs under --memory {roomy}"
        );
    }
}

/// A 20,000-transaction world in `dir`, indexed, and a seed file of its first 3,000
/// addresses (a trace of them has tens of thousands of edges): the data folder and the
/// seed file.
fn traced_world(dir: &Path) -> (String, std::path::PathBuf) {
    let chain = world(dir, "20000");
    let data = chain.parent().unwrap().to_str().unwrap().to_string();
    ok(&run(&["cluster", "index", "--data", &data]));
    let seeds = dir.join("seeds.txt");
    let ix = Index::load(&chain.join("index")).unwrap();
    let list: Vec<String> = ix
        .address_ids()
        .take(3000)
        .map(|a| ix.address(a).to_string())
        .collect();
    std::fs::write(&seeds, list.join("\n")).unwrap();
    (data, seeds)
}

/// Borrowed arguments of owned ones.
fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
