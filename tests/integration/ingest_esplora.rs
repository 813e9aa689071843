//! Esplora ingest against a replay of real electrs replies (`../shared/datasets/esplora`):
//! the same rows as the blocks directory (and so as RPC, which `ingest_rpc` checks against
//! the blocks directory), height windows, faults, TLS and secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// The replay server (`scripts/esplora_replay.py`) over the recording of world A.
struct Replay {
    url: String,
    log: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Replay {
    /// Starts it with extra arguments (`--fault`, `--prefix`, `--tls`).
    fn start(extra: &[&str]) -> Replay {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.log");
        std::fs::write(&log, "").unwrap();
        let recording = datasets().join("esplora/regtest-world-a.jsonl.zst");
        let mut args = vec![recording.as_os_str(), log.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let (port, child) = start_script("esplora_replay.py", &args);
        let tls = extra.contains(&"--tls");
        Replay {
            url: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
            log,
            child,
            _dir: dir,
        }
    }

    /// Request targets so far, in order.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn clear(&self) {
        std::fs::write(&self.log, "").unwrap();
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn esplora_ingest(url: &str, data: &Path, extra: &[&str]) -> std::process::Output {
    esplora_ingest_env(url, data, extra, &[])
}

fn esplora_ingest_env(
    url: &str,
    data: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "ingest",
        "bitcoin",
        "--quiet",
        "--esplora",
        url,
        "--data",
        data.to_str().unwrap(),
        "--part-blocks",
        "100",
        "--rpc-backoff-max-ms",
        "50",
    ];
    args.extend_from_slice(extra);
    run_env(&args, env)
}

fn reference() -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        d.path(),
        &["--part-blocks", "100"],
    ));
    let t = part_files(&d.path().join("regtest"));
    (d, t)
}

/// The hash of world A's block at `height`, from the node's own `getblock` lines.
fn block_hash(height: usize) -> String {
    let jsonl = std::fs::read_to_string(bitcoin_data("regtest-world-a/blocks.jsonl")).unwrap();
    let v: Value = serde_json::from_str(jsonl.lines().nth(height).unwrap()).unwrap();
    v["hash"].as_str().unwrap().to_string()
}

fn manifest(data: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(data.join("regtest/_manifest.json")).unwrap()).unwrap()
}

#[test]
fn esplora_rows_equal_blocks_dir_rows_byte_for_byte() {
    let (_keep, reference) = reference();
    let server = Replay::start(&[]);
    let d = tempfile::tempdir().unwrap();
    ok(&esplora_ingest(
        &server.url,
        d.path(),
        &["--concurrency", "4"],
    ));
    let got = part_files(&d.path().join("regtest"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &reference {
        assert!(
            &got[name] == bytes,
            "{name} differs from the blocks-dir part"
        );
    }
    let m = manifest(d.path());
    assert_eq!(m["source"]["kind"], "esplora");
    assert_eq!(m["tip"]["height"], 400);
    assert_eq!(
        m["tip"]["hash"],
        "27debfc5a6a9e838246865de6130be65797c0717b803386156ca88baf9a3317e"
    );
    // One raw block per height, a page of transactions only where an input spends an
    // earlier block's output, and hashes ten heights a request.
    let reqs = server.requests();
    let raw = reqs.iter().filter(|r| r.ends_with("/raw")).count();
    let lists = reqs.iter().filter(|r| r.starts_with("/blocks/")).count();
    assert_eq!(raw, 401);
    assert!(lists <= 42, "{lists} hash lists for 401 heights");
}

/// A height window grown upward has its index extended (the outputs spent from before the
/// window included) to the bytes of a rebuild.
#[test]
fn a_windows_index_is_extended_when_blocks_are_appended() {
    use chaintrace::index::{Index, Provenance};
    let server = Replay::start(&[]);
    let d = tempfile::tempdir().unwrap();
    let chain = d.path().join("regtest");
    ok(&esplora_ingest(
        &server.url,
        d.path(),
        &["--from", "250", "--to", "320"],
    ));
    let (before, _) = Index::open_or_build(&chain).unwrap();
    let (kept, spent_before) = (before.meta.txs, before.meta.before);
    assert!(spent_before > 0, "the window spends outputs from before it");
    drop(before);
    ok(&esplora_ingest(&server.url, d.path(), &[]));
    let (after, p) = Index::open_or_build(&chain).unwrap();
    assert!(
        matches!(p, Provenance::Built { extended_from: Some(k), .. } if k == kept),
        "{p:?}"
    );
    assert!(after.meta.before > spent_before, "{:?}", after.meta);
    drop(after);
    assert_index_is_a_rebuilds(&chain);
}

#[test]
fn an_esplora_window_equals_those_heights_of_a_full_ingest_and_grows_both_ways() {
    let (_keep, reference) = reference();
    let server = Replay::start(&[]);
    let d = tempfile::tempdir().unwrap();
    ok(&esplora_ingest(&server.url, d.path(), &["--from", "200"]));
    let window = part_files(&d.path().join("regtest"));
    let names: Vec<&String> = window.keys().collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("part-0000000000-") && !n.contains("part-0000000100-"))
    );
    assert_eq!(window.len(), 4 * 3, "{names:?}");
    for (name, bytes) in &window {
        assert!(
            &reference[name] == bytes,
            "{name} differs from the full ingest"
        );
    }
    // Nothing below the window was fetched.
    let below: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.ends_with("/raw"))
        .collect();
    assert_eq!(below.len(), 201, "raw blocks fetched for heights 200..=400");
    assert!(!below.contains(&format!("/block/{}/raw", block_hash(199))));
    // A rerun without --from keeps the window: a few requests, no block.
    server.clear();
    ok(&esplora_ingest(&server.url, d.path(), &[]));
    let again = server.requests();
    assert!(again.len() <= 8, "{again:?}");
    assert!(again.iter().all(|r| !r.ends_with("/raw")), "{again:?}");
    assert_eq!(part_files(&d.path().join("regtest")), window);
    // A lower --from extends it down to genesis: the full dataset.
    ok(&esplora_ingest(&server.url, d.path(), &["--from", "0"]));
    assert!(part_files(&d.path().join("regtest")) == reference);
    // A window off the part grid starts exactly at --from: nothing below it is fetched.
    let off = tempfile::tempdir().unwrap();
    server.clear();
    ok(&esplora_ingest(&server.url, off.path(), &["--from", "250"]));
    let raw = server
        .requests()
        .iter()
        .filter(|r| r.ends_with("/raw"))
        .count();
    assert_eq!(raw, 151, "raw blocks for heights 250..=400");
    let heights: Vec<i64> = read_table(&off.path().join("regtest"), "blocks")
        .iter()
        .map(|r| r["height"].int())
        .collect();
    assert_eq!(heights, (250..=400).collect::<Vec<i64>>());
    assert_eq!(
        manifest(off.path())["ranges"],
        serde_json::json!([[250, 400]])
    );
    server.clear();
    ok(&esplora_ingest(&server.url, off.path(), &[]));
    assert!(
        server.requests().len() <= 8 && server.requests().iter().all(|r| !r.ends_with("/raw")),
        "{:?}",
        server.requests()
    );
    // A --to below its tip is the same chain, not "another chain": nothing changes.
    ok(&esplora_ingest(&server.url, d.path(), &["--to", "10"]));
    assert!(part_files(&d.path().join("regtest")) == reference);
}

#[test]
fn esplora_faults_are_retried_or_named_and_a_rerun_resumes() {
    let (_keep, reference) = reference();
    let bad = block_hash(250);
    // Transient: two 500s, a 429 with Retry-After; then a wrong block for height 250.
    let server = Replay::start(&[
        "--fault",
        "/raw=500*2",
        "--fault",
        "/txs/0=429",
        "--fault",
        &format!("/block/{bad}/raw=swap"),
    ]);
    let d = tempfile::tempdir().unwrap();
    let o = esplora_ingest(&server.url, d.path(), &["--concurrency", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("height 250") && e.contains(&bad) && e.contains("/raw"),
        "{e}"
    );
    assert!(e.contains("retry"), "retries are announced: {e}");
    // What came before it is written and intact.
    let before = part_files(&d.path().join("regtest"));
    assert!(
        before
            .keys()
            .any(|n| n.contains("part-0000000100-0000000199"))
    );
    for (name, bytes) in &before {
        assert!(reference.get(name) == Some(bytes), "{name}");
    }
    // The rerun (the fault is spent) completes to the exact dataset.
    ok(&esplora_ingest(&server.url, d.path(), &[]));
    assert!(part_files(&d.path().join("regtest")) == reference);
    drop(server);

    // An HTML page instead of the API, a malformed page of transactions, a redirect, an
    // error status: each exits 1 naming the URL and what was expected.
    let page = format!("/block/{}/txs/0", block_hash(231));
    for (fault, expect) in [
        ("/block-height/0=html", "HTML page"),
        (&*format!("{page}=truncate"), "not a list of transactions"),
        ("/blocks/tip/height=redirect", "redirects"),
        (&*format!("{page}=garbage"), "not a list of transactions"),
    ] {
        let server = Replay::start(&["--fault", &format!("{fault}*0")]);
        let d = tempfile::tempdir().unwrap();
        let o = esplora_ingest(&server.url, d.path(), &["--rpc-attempts", "2"]);
        assert_eq!(o.status.code(), Some(1), "{fault}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(expect) && e.contains("127.0.0.1"),
            "{fault}: {e}"
        );
    }
    // Not an Esplora API at all (an unknown route): the status and the body's start.
    let server = Replay::start(&["--prefix", "/api"]);
    let d = tempfile::tempdir().unwrap();
    let o = esplora_ingest(&server.url, d.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("HTTP 404") && e.contains("endpoint does not exist"),
        "{e}"
    );
}

#[test]
fn esplora_over_tls_with_keys_in_the_path_and_a_header_keeps_them_secret() {
    let (_keep, reference) = reference();
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(tls.path());
    let path_key = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let header_key = "hdr-secret-esplora-7777";
    let server = Replay::start(&[
        "--prefix",
        &format!("/v1/{path_key}"),
        "--tls",
        &format!("{},{}", cert.display(), key.display()),
    ]);
    let url = format!("{}/v1/{path_key}", server.url);
    let header = format!("x-api-key: {header_key}");
    let env = [("CHAINTRACE_RPC_HEADERS", header.as_str())];
    // Without the CA: a TLS error at once.
    let d = tempfile::tempdir().unwrap();
    let o = esplora_ingest_env(&url, d.path(), &[], &env);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("TLS") && e.contains("--ca-cert"), "{e}");
    let mut seen = e;
    // With it: the same rows.
    let o = esplora_ingest_env(
        &url,
        d.path(),
        &["--ca-cert", ca.to_str().unwrap(), "--json", "--to", "250"],
        &env,
    );
    ok(&o);
    seen += &stderr(&o);
    seen += &stdout(&o);
    let got = part_files(&d.path().join("regtest"));
    for (name, bytes) in &got {
        if !name.contains("part-0000000200-") {
            assert!(&reference[name] == bytes, "{name}");
        }
    }
    let m = manifest(d.path());
    assert!(m["source"]["location"].as_str().unwrap().contains("***"));
    // An on-demand trace through the same URL: the case, its audit trail and report too.
    let near = tempfile::tempdir().unwrap();
    let case = near.path().join("case");
    let o = run_env(
        &[
            "trace",
            "--data",
            near.path().to_str().unwrap(),
            "--source",
            &format!("esplora:{url}"),
            "--ca-cert",
            ca.to_str().unwrap(),
            "--seed",
            "bcrt1qpy3r9jczme2ffcny6x65gctadyt97eram3pm6x",
            "--max-hops",
            "2",
            "--out",
            case.to_str().unwrap(),
        ],
        &env,
    );
    ok(&o);
    seen += &stderr(&o);
    seen += &stdout(&o);
    ok(&run(&[
        "report",
        case.to_str().unwrap(),
        "--format",
        "html,pdf",
    ]));
    let v = run(&["case", "verify", case.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    seen += &stdout(&v);
    // The PDF's text, as a reader extracts it (its streams may be compressed).
    let pdf = std::process::Command::new("pdftotext")
        .arg(case.join("report/report.pdf"))
        .arg("-")
        .output()
        .expect("pdftotext is installed (.ci/run installs it)");
    seen += &String::from_utf8_lossy(&pdf.stdout);
    for (name, bytes) in tree(near.path()) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(path_key) && !text.contains(header_key),
            "{name} holds a key"
        );
    }
    for (name, bytes) in tree(d.path()) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(path_key) && !text.contains(header_key),
            "{name} holds a key"
        );
    }
    assert!(
        !seen.contains(path_key) && !seen.contains(header_key),
        "{seen}"
    );
}

/// `labels.csv` text labelling world A's exchange addresses (from the ground truth).
fn exchange_labels() -> String {
    let text = std::fs::read_to_string(bitcoin_data("regtest-world-a/ground_truth/addresses.csv"))
        .unwrap();
    let mut csv = String::from("address,label,category,actor\n");
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] == "exchange" {
            csv.push_str(&format!("{},{},exchange,exchange\n", f[0], f[2]));
        }
    }
    csv
}

fn import(data: &Path, csv: &str) {
    std::fs::create_dir_all(data).unwrap();
    let f = data.join("labels.csv");
    std::fs::write(&f, csv).unwrap();
    ok(&run(&[
        "labels",
        "import",
        f.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]));
}

/// An end as `(policy, kind, txid, vout, amount, entity)`.
type EndRow = (String, String, String, i64, i64, String);

/// Each model's totals and its ends, sorted.
fn case_result(case: &Path) -> (Vec<Value>, Vec<EndRow>) {
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    let totals = t["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["policy"], r["totals"]]))
        .collect();
    let mut ends: Vec<_> = read_parquet_file(&case.join("ends.parquet"))
        .iter()
        .map(|r| {
            let s = |k: &str| match &r[k] {
                Cell::Str(s) => s.clone(),
                Cell::Null => String::new(),
                c => panic!("{k}: {c:?}"),
            };
            (
                s("policy"),
                s("kind"),
                s("txid"),
                r["vout"].int(),
                r["amount"].int(),
                s("entity"),
            )
        })
        .collect();
    ends.sort();
    (totals, ends)
}

#[test]
fn an_on_demand_trace_equals_the_same_trace_on_the_full_dataset() {
    let labels = exchange_labels();
    let full = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        full.path(),
        &[],
    ));
    import(full.path(), &labels);
    let near = tempfile::tempdir().unwrap();
    import(near.path(), &labels);
    let server = Replay::start(&[]);
    let source = format!("esplora:{}", server.url);
    let flagged = format!(
        "@{}",
        bitcoin_data("regtest-world-a/ground_truth/flagged.csv").display()
    );
    let trace = |data: &Path, out: &Path, seed: &str, extra: &[&str]| {
        let mut args = vec![
            "trace",
            "--quiet",
            "--force",
            "--data",
            data.to_str().unwrap(),
            "--seed",
            seed,
            "--policy",
            "all",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&run(&args));
        case_result(out)
    };
    // Forward from the vendor's 227 addresses, 6 hops, stopping at the exchange.
    let hops = ["--max-hops", "6"];
    let want = trace(full.path(), &full.path().join("case"), &flagged, &hops);
    let near_case = near.path().join("case");
    let got = trace(
        near.path(),
        &near_case,
        &flagged,
        &[&hops[..], &["--source", &source]].concat(),
    );
    assert!(
        want.1.iter().any(|e| e.1 == "exit" && e.5 == "exchange"),
        "the vendor's money reaches the exchange: {:?}",
        want.1
    );
    assert_eq!(got.0, want.0, "each model's totals");
    assert_eq!(got.1, want.1, "each model's ends");
    let cold = server.requests().len();
    // The dataset says what it is; so do the case and the report.
    let m = manifest(near.path());
    assert_eq!(m["source"]["kind"], "esplora-neighbourhood");
    assert_eq!(m["neighbourhood"]["max_hops"], 6);
    ok(&run(&[
        "report",
        near_case.to_str().unwrap(),
        "--format",
        "html",
    ]));
    let html = std::fs::read_to_string(near_case.join("report/report.html")).unwrap();
    assert!(
        html.contains("neighbourhood fetched from the third-party Esplora API"),
        "the report states the source"
    );
    // A rerun at the same tip asks only for the tip: the rest comes from the cache
    // (address histories and outspends are kept per tip, transactions and blocks for good).
    server.clear();
    let again = trace(
        near.path(),
        &near_case,
        &flagged,
        &[&hops[..], &["--source", &source]].concat(),
    );
    assert_eq!(again, got);
    let warm = server.requests().len();
    assert!(
        warm <= 2 && cold > 500,
        "{warm} requests with the cache warm, {cold} cold: {:?}",
        server.requests()
    );
    assert!(server.requests().iter().all(|r| !r.ends_with("/raw")));
    // The same neighbourhood fetched again leaves the dataset as it was: the case verifies
    // (its rerun traces the stored neighbourhood, without asking the API).
    server.clear();
    let v = run(&["case", "verify", near_case.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // A whole-block ingest into the neighbourhood's --data is refused, nothing changed.
    let before = part_files(&near.path().join("regtest"));
    let o = esplora_ingest(&server.url, near.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("neighbourhood"), "{}", stderr(&o));
    assert_eq!(part_files(&near.path().join("regtest")), before);
    // A seed that is no address is refused before anything reaches the API.
    server.clear();
    let o = run(&[
        "trace",
        "--data",
        near.path().to_str().unwrap(),
        "--source",
        &source,
        "--seed",
        "hello",
        "--out",
        near.path().join("bad").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("\"hello\" is not a Bitcoin address"),
        "{}",
        stderr(&o)
    );
    assert!(
        server.requests().iter().all(|r| !r.contains("hello")),
        "{:?}",
        server.requests()
    );

    // Backward from the peel chain's last transaction, 20 hops: it reaches outputs at the
    // exchange's addresses from outside the neighbourhood, which must be exits as on the
    // full chain.
    let peel = std::fs::read_to_string(bitcoin_data("regtest-world-a/ground_truth/peel_chain.csv"))
        .unwrap();
    let last = peel
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    let back = ["--direction", "backward", "--max-hops", "20"];
    let want = trace(full.path(), &full.path().join("back"), &last, &back);
    let near2 = tempfile::tempdir().unwrap();
    import(near2.path(), &labels);
    let got = trace(
        near2.path(),
        &near2.path().join("back"),
        &last,
        &[&back[..], &["--source", &source]].concat(),
    );
    assert!(
        want.1.iter().any(|e| e.1 == "exit" && e.5 == "exchange"),
        "backward reaches the exchange"
    );
    assert_eq!(got.0, want.0, "each model's totals, backward");
    assert_eq!(got.1, want.1, "each model's ends, backward");
}

#[test]
fn a_bad_reply_is_never_cached_and_a_rerun_recovers() {
    let near = tempfile::tempdir().unwrap();
    // Every raw transaction's first reply is cut in half.
    let server = Replay::start(&["--fault", "/raw=truncate*1"]);
    let trace = |out: &str| {
        run(&[
            "trace",
            "--quiet",
            "--force",
            "--data",
            near.path().to_str().unwrap(),
            "--source",
            &format!("esplora:{}", server.url),
            "--seed",
            "bcrt1qpy3r9jczme2ffcny6x65gctadyt97eram3pm6x",
            "--max-hops",
            "3",
            "--out",
            near.path().join(out).to_str().unwrap(),
        ])
    };
    let o = trace("case");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/raw"), "{}", stderr(&o));
    // The fault is spent: the rerun asks again for what was bad, and completes.
    let o = trace("case");
    ok(&o);
    // The case's bundle carries the neighbourhood (it cannot be fetched again the same).
    let zip = near.path().join("case.zip");
    ok(&run(&[
        "case",
        "export",
        near.path().join("case").to_str().unwrap(),
        "--data",
        near.path().to_str().unwrap(),
        "--bundle",
        zip.to_str().unwrap(),
    ]));
    let names = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            zip.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout);
    assert!(names.contains("data/regtest/transactions/part-"), "{names}");
    // A --data that does not exist is refused before anything is fetched.
    server.clear();
    let o = run(&[
        "trace",
        "--data",
        near.path().join("typo").to_str().unwrap(),
        "--source",
        &format!("esplora:{}", server.url),
        "--seed",
        "bcrt1qpy3r9jczme2ffcny6x65gctadyt97eram3pm6x",
        "--out",
        near.path().join("c2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!near.path().join("typo").exists());
    assert!(server.requests().is_empty());
}
