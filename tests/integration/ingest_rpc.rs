//! JSON-RPC ingest against a local node that replays the real node's replies: the same
//! rows as the blocks directory, faults survived, reorganisations rolled back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bitcoin::consensus::{deserialize, serialize};
use serde_json::Value;

use crate::rpc_node::{Chain, Fault, Node};
use crate::util::*;

fn world_chain() -> Chain {
    Chain::from_jsonl(
        &std::fs::read_to_string(bitcoin_data("regtest-world-a/blocks.jsonl")).unwrap(),
    )
}

fn rpc_ingest(node: &Node, data: &Path, extra: &[&str]) -> std::process::Output {
    rpc_ingest_url(&node.url, data, extra, &[])
}

/// `ingest bitcoin --rpc URL` with the replay node's credentials, extra flags and
/// environment.
fn rpc_ingest_url(
    url: &str,
    data: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "ingest",
        "bitcoin",
        "--quiet",
        "--rpc",
        url,
        "--rpc-user",
        "tracer",
        "--rpc-password",
        "tracerpass",
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

fn parts(data: &Path) -> BTreeMap<String, Vec<u8>> {
    part_files(&data.join("regtest"))
}

fn blocks_dir_reference() -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        d.path(),
        &["--part-blocks", "100"],
    ));
    let t = parts(d.path());
    (d, t)
}

#[test]
fn rpc_rows_equal_blocks_dir_rows_byte_for_byte() {
    let (_keep, reference) = blocks_dir_reference();
    let node = Node::start(world_chain());
    let d = tempfile::tempdir().unwrap();
    let o = rpc_ingest(&node, d.path(), &["--json", "--concurrency", "3"]);
    ok(&o);
    assert!(
        parts(d.path()) == reference,
        "RPC and blocks-dir datasets differ"
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("regtest/_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["source"]["kind"], "rpc");
    assert_eq!(
        m["tip"]["hash"],
        "27debfc5a6a9e838246865de6130be65797c0717b803386156ca88baf9a3317e"
    );
    // getblockhash went in batches: far fewer requests than heights.
    let requests = node.state.lock().unwrap().requests;
    assert!(requests < 401 + 20, "{requests} requests for 401 blocks");
    // A --to below the dataset's tip writes nothing and keeps everything (it is the same
    // chain, not "another chain").
    let o = rpc_ingest(&node, d.path(), &["--to", "10"]);
    ok(&o);
    assert!(parts(d.path()) == reference);
}

#[test]
fn transient_faults_are_retried_and_the_result_is_exact() {
    let (_keep, reference) = blocks_dir_reference();
    let node = Node::start(world_chain());
    node.state.lock().unwrap().faults.extend([
        Fault::Warmup,
        Fault::Status(503),
        Fault::Status(429),
        Fault::Close,
        Fault::Malformed,
        Fault::Delay(Duration::from_millis(1500)),
        Fault::Status(500),
    ]);
    let d = tempfile::tempdir().unwrap();
    let o = rpc_ingest(
        &node,
        d.path(),
        &["--rpc-timeout-secs", "0.5", "--concurrency", "1"],
    );
    ok(&o);
    let err = stderr(&o);
    for what in [
        "warming up",
        "HTTP 503",
        "HTTP 429",
        "malformed JSON",
        "no reply within",
        "retry",
    ] {
        assert!(err.contains(what), "no retry message for {what}:\n{err}");
    }
    assert!(parts(d.path()) == reference);
}

#[test]
fn an_outage_exits_1_naming_the_block_and_a_rerun_completes() {
    let (_keep, reference) = blocks_dir_reference();
    let node = Node::start(world_chain());
    node.state.lock().unwrap().fail_getblock_from = Some((250, Fault::Status(503)));
    let d = tempfile::tempdir().unwrap();
    let o = rpc_ingest(&node, d.path(), &["--rpc-attempts", "3"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("chaintrace: error:"))
        .expect("an error line");
    assert!(
        line.contains("height 2") && line.contains("HTTP 503") && line.contains("3 attempt"),
        "{line}"
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("regtest/_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["ranges"],
        serde_json::json!([[0, 199]]),
        "complete parts before the outage stay"
    );
    node.state.lock().unwrap().fail_getblock_from = None;
    ok(&rpc_ingest(&node, d.path(), &[]));
    assert!(parts(d.path()) == reference);
}

#[test]
fn wrong_credentials_fail_at_once_with_a_hint() {
    let node = Node::start(world_chain());
    let d = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let o = run(&[
        "ingest",
        "bitcoin",
        "--rpc",
        &node.url,
        "--rpc-user",
        "tracer",
        "--rpc-password",
        "wrong",
        "--data",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "credentials errors must not be retried"
    );
    let err = stderr(&o);
    assert!(
        err.contains("rejected the credentials") && err.contains("--rpc-cookie"),
        "{err}"
    );
    // A cookie file works.
    let cookie = d.path().join(".cookie");
    std::fs::write(&cookie, "tracer:tracerpass").unwrap();
    ok(&run(&[
        "ingest",
        "bitcoin",
        "--quiet",
        "--rpc",
        &node.url,
        "--rpc-cookie",
        cookie.to_str().unwrap(),
        "--data",
        d.path().to_str().unwrap(),
        "--to",
        "20",
    ]));
}

#[test]
fn connection_refused_is_retried_then_reported() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let d = tempfile::tempdir().unwrap();
    let o = run(&[
        "ingest",
        "bitcoin",
        "--rpc",
        &url,
        "--data",
        d.path().to_str().unwrap(),
        "--rpc-attempts",
        "3",
        "--rpc-backoff-max-ms",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot connect") && err.contains("3 attempt"),
        "{err}"
    );

    // The node comes up while the client retries: the ingest succeeds.
    let listener_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{listener_port}");
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        Node::serve(
            std::net::TcpListener::bind(("127.0.0.1", listener_port)).unwrap(),
            world_chain(),
        )
    });
    let o = run(&[
        "ingest",
        "bitcoin",
        "--quiet",
        "--rpc",
        &url,
        "--rpc-user",
        "tracer",
        "--rpc-password",
        "tracerpass",
        "--data",
        d.path().to_str().unwrap(),
        "--to",
        "10",
        "--rpc-attempts",
        "20",
        "--rpc-backoff-max-ms",
        "100",
    ]);
    let _node = starter.join().unwrap();
    ok(&o);
}

/// Fork the chain at 398: blocks 399' and 400' carry the same transactions with other
/// headers, 401' only a coinbase. Returns the fork as node JSON and as raw blocks.
fn fork_chain() -> (Chain, Vec<bitcoin::Block>) {
    let text = std::fs::read_to_string(bitcoin_data("regtest-world-a/blocks.jsonl")).unwrap();
    let mut json: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let block_of = |v: &Value| -> bitcoin::Block {
        let txdata: Vec<bitcoin::Transaction> = v["tx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| deserialize(&hex(t["hex"].as_str().unwrap())).unwrap())
            .collect();
        let header = bitcoin::block::Header {
            version: bitcoin::block::Version::from_consensus(v["version"].as_i64().unwrap() as i32),
            prev_blockhash: v["previousblockhash"].as_str().unwrap().parse().unwrap(),
            merkle_root: v["merkleroot"].as_str().unwrap().parse().unwrap(),
            time: v["time"].as_u64().unwrap() as u32,
            bits: bitcoin::CompactTarget::from_consensus(
                u32::from_str_radix(v["bits"].as_str().unwrap(), 16).unwrap(),
            ),
            nonce: v["nonce"].as_u64().unwrap() as u32,
        };
        bitcoin::Block { header, txdata }
    };
    let mine = |b: &mut bitcoin::Block| {
        b.header.nonce = 0;
        while b.header.validate_pow(b.header.target()).is_err() {
            b.header.nonce += 1;
        }
    };
    let mut blocks: Vec<bitcoin::Block> = json.iter().skip(1).map(&block_of).collect();
    blocks.insert(
        0,
        bitcoin::constants::genesis_block(bitcoin::Network::Regtest),
    );
    let mut prev = blocks[398].block_hash();
    for h in [399usize, 400] {
        let b = &mut blocks[h];
        b.header.prev_blockhash = prev;
        b.header.time += 7;
        mine(b);
        prev = b.block_hash();
        let v = &mut json[h];
        v["hash"] = Value::from(prev.to_string());
        v["previousblockhash"] = Value::from(b.header.prev_blockhash.to_string());
        v["time"] = Value::from(b.header.time);
        v["nonce"] = Value::from(b.header.nonce);
    }
    // 401': a coinbase-only block (no witness commitment needed without witness txs).
    let mut cb = blocks[400].txdata[0].clone();
    cb.input[0].script_sig = bitcoin::script::Builder::new()
        .push_int(401)
        .push_slice(b"fork")
        .into_script();
    cb.input[0].witness = bitcoin::Witness::new();
    cb.output.retain(|o| !o.script_pubkey.is_op_return());
    cb.output[0].value = bitcoin::Amount::from_sat(1_250_000_000);
    let mut b401 = bitcoin::Block {
        header: blocks[400].header,
        txdata: vec![cb.clone()],
    };
    b401.header.prev_blockhash = prev;
    b401.header.time += 600;
    b401.header.merkle_root = b401.compute_merkle_root().unwrap();
    mine(&mut b401);
    let cb_hex: String = serialize(&cb).iter().map(|b| format!("{b:02x}")).collect();
    json.push(serde_json::json!({
        "hash": b401.block_hash().to_string(), "height": 401, "version": b401.header.version.to_consensus(),
        "merkleroot": b401.header.merkle_root.to_string(), "time": b401.header.time,
        "bits": format!("{:08x}", b401.header.bits.to_consensus()), "nonce": b401.header.nonce,
        "previousblockhash": prev.to_string(),
        "tx": [{"txid": cb.compute_txid().to_string(), "hex": cb_hex, "vin": [{"coinbase": "00"}], "vout": []}]
    }));
    blocks.push(b401);
    let lines: Vec<String> = json.iter().map(|v| v.to_string()).collect();
    (Chain::from_jsonl(&lines.join("\n")), blocks)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn follow_rolls_back_a_reorganisation() {
    let (fork, fork_blocks) = fork_chain();
    // Reference: the fork chain ingested from a blk file (header linking).
    let blk = tempfile::tempdir().unwrap();
    let mut f = Vec::new();
    for b in &fork_blocks {
        let raw = serialize(b);
        f.extend_from_slice(&[0xfa, 0xbf, 0xb5, 0xda]);
        f.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        f.extend_from_slice(&raw);
    }
    std::fs::write(blk.path().join("blk00000.dat"), f).unwrap();
    let r = tempfile::tempdir().unwrap();
    ok(&ingest(blk.path(), r.path(), &["--part-blocks", "100"]));
    let reference = parts(r.path());

    let node = Node::start(world_chain());
    // getblockchaininfo: 1 on connect, 2 for the first poll, 3 for the second.
    node.state.lock().unwrap().switch_at_info = Some((3, fork.clone()));
    let d = tempfile::tempdir().unwrap();
    let o = rpc_ingest(
        &node,
        d.path(),
        &["--follow", "--poll-secs", "0.2", "--polls", "2"],
    );
    ok(&o);
    assert!(
        parts(d.path()) == reference,
        "after the reorg the dataset is not the new chain"
    );
    let chain = d.path().join("regtest");
    let hashes: Vec<String> = read_table(&chain, "blocks")
        .iter()
        .map(|b| b["hash"].str().to_string())
        .collect();
    let old = world_chain().hashes;
    assert!(
        !hashes.contains(&old[399]) && !hashes.contains(&old[400]),
        "a rolled-back block remains"
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(chain.join("_manifest.json")).unwrap()).unwrap();
    let reorgs = m["reorgs"].as_array().unwrap();
    assert_eq!(reorgs.len(), 1);
    assert_eq!(reorgs[0]["fork_height"], 398);
    assert_eq!(reorgs[0]["old_tip"]["hash"], old[400].as_str());
    assert_eq!(m["tip"]["height"], 401);
    // Said, not only recorded: a replaced dataset is never silent.
    assert!(
        stderr(&o).contains("a reorganisation of 2 block(s)")
            && stderr(&o).contains("after height 398"),
        "{}",
        stderr(&o)
    );
}

/// A TLS front (Python's `ssl`) with [`test_certificates`], forwarding to `node`: (its
/// port, the CA's certificate, the child, the request log).
fn https_front(
    node: &Node,
    dir: &Path,
) -> (
    u16,
    std::path::PathBuf,
    std::process::Child,
    std::path::PathBuf,
) {
    let (ca, cert, key) = test_certificates(dir);
    let log = dir.join("requests.log");
    let (port, child) = start_script(
        "https_forward.py",
        &[
            cert.as_os_str(),
            key.as_os_str(),
            std::ffi::OsStr::new(&node.url),
            log.as_os_str(),
        ],
    );
    (port, ca, child, log)
}

#[test]
fn https_with_a_custom_ca_works_without_it_fails_and_secrets_stay_secret() {
    let (_keep, reference) = blocks_dir_reference();
    let node = Node::start(world_chain());
    let tls = tempfile::tempdir().unwrap();
    let (port, cert, mut child, log) = https_front(&node, tls.path());
    let key = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let header_key = "hdr-secret-4242-abcdef";
    let url = format!("https://127.0.0.1:{port}/v3/{key}");
    // Without the CA: a clear TLS error at once, exit 1, no secret in it.
    let d = tempfile::tempdir().unwrap();
    let o = rpc_ingest_url(&url, d.path(), &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("TLS") && e.contains("--ca-cert"), "{e}");
    assert!(!e.contains(key), "{e}");
    // With it, over TLS, with an API key in a header and one in the path.
    let header = format!("X-Api-Key: {header_key}");
    let o = rpc_ingest_url(
        &url,
        d.path(),
        &["--ca-cert", cert.to_str().unwrap()],
        &[("CHAINTRACE_RPC_HEADERS", &header)],
    );
    let _ = child.kill();
    let _ = child.wait();
    ok(&o);
    assert!(
        parts(d.path()) == reference,
        "HTTPS and blocks-dir datasets differ"
    );
    // The header reached the server ...
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains(header_key), "the API key header was not sent");
    // ... and no secret reached a file or a message.
    let mut everything = String::from_utf8_lossy(&o.stdout).to_string();
    everything.push_str(&String::from_utf8_lossy(&o.stderr));
    for (name, bytes) in tree(d.path()) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(key) && !text.contains(header_key),
            "{name} holds a secret"
        );
        everything.push_str(&text);
    }
    for secret in [key, header_key, "tracerpass"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let m: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("regtest/_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["source"]["location"],
        format!("https://127.0.0.1:{port}/v3/***")
    );
}

#[test]
fn a_socks5h_proxy_carries_the_ingest() {
    let (_keep, reference) = blocks_dir_reference();
    let node = Node::start(world_chain());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("connects.log");
    let (port, mut child) = start_script("socks5.py", &[log.as_os_str()]);
    let proxy = format!("socks5h://127.0.0.1:{port}");
    // The node by name: with socks5h the proxy resolves it, not chaintrace.
    let url = node.url.replace("127.0.0.1", "localhost");
    let d = tempfile::tempdir().unwrap();
    let o = rpc_ingest_url(&url, d.path(), &["--proxy", &proxy], &[]);
    // A proxy that is not there: refused connections are retried, then reported.
    let o2 = rpc_ingest_url(
        &url,
        &dir.path().join("d2"),
        &["--proxy", "socks5h://127.0.0.1:9", "--rpc-attempts", "2"],
        &[],
    );
    let _ = child.kill();
    let _ = child.wait();
    ok(&o);
    assert!(
        parts(d.path()) == reference,
        "proxied and blocks-dir datasets differ"
    );
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(
        seen.starts_with("localhost:"),
        "the proxy resolved the name: {seen}"
    );
    assert_eq!(o2.status.code(), Some(1));
    assert!(stderr(&o2).contains("attempt"), "{}", stderr(&o2));
}

#[test]
fn a_height_window_over_rpc_equals_those_heights_of_a_full_ingest() {
    let (keep, reference) = blocks_dir_reference();
    let node = Node::start(world_chain());
    let d = tempfile::tempdir().unwrap();
    // An empty dataset, from height 200: getblock 3 carries the prevouts, so nothing before
    // the window is read.
    ok(&rpc_ingest(&node, d.path(), &["--from", "200"]));
    let window = parts(d.path());
    let m: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("regtest/_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["ranges"], serde_json::json!([[200, 400]]), "{m}");
    assert!(!window.is_empty());
    for (name, bytes) in &window {
        if name.ends_with(".parquet") {
            assert_eq!(
                reference.get(name),
                Some(bytes),
                "{name} differs from the full ingest"
            );
        }
    }
    assert!(!window.keys().any(|n| n.contains("part-0000000000-")));
    // The window is indexed, clustered and traced forward from a transaction in it, and
    // the case says it is a window.
    let data = d.path().to_str().unwrap();
    ok(&run(&[
        "cluster",
        "bitcoin",
        "--data",
        data,
        "--heuristics",
        "multi-input,change-fresh",
    ]));
    let txs = read_table(&d.path().join("regtest"), "transactions");
    let seed_tx = txs
        .iter()
        .find(|r| r["height"].int() >= 250 && matches!(r["is_coinbase"], Cell::Bool(false)))
        .map(|r| match &r["txid"] {
            Cell::Str(s) => s.clone(),
            c => panic!("{c:?}"),
        })
        .unwrap();
    let case = d.path().join("case");
    ok(&run(&[
        "trace",
        "--quiet",
        "--data",
        data,
        "--seed",
        &seed_tx,
        "--policy",
        "all",
        "--out",
        case.to_str().unwrap(),
    ]));
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    assert_eq!(t["parameters"]["dataset_first_height"], 200);
    ok(&run(&[
        "report",
        case.to_str().unwrap(),
        "--format",
        "html",
    ]));
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(html.contains("height window starting at block 200"));
    // Backward: what came from before the window ends there, naming the outpoint, and
    // equals what a backward trace on the full dataset limited to heights >= 200 ends as
    // "outside the window", model by model, end by end.
    let deep = txs
        .iter()
        .filter(|r| r["height"].int() >= 380 && matches!(r["is_coinbase"], Cell::Bool(false)))
        .map(|r| match &r["txid"] {
            Cell::Str(s) => s.clone(),
            c => panic!("{c:?}"),
        })
        .next()
        .unwrap();
    let back = |data: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "trace",
            "--quiet",
            "--data",
            data.to_str().unwrap(),
            "--seed",
            &deep,
            "--direction",
            "backward",
            "--policy",
            "all",
            "--max-hops",
            "100",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&run(&args));
        let t: Value =
            serde_json::from_slice(&std::fs::read(out.join("trace.json")).unwrap()).unwrap();
        let mut ends: Vec<(String, String, String, i64, i64)> =
            read_parquet_file(&out.join("ends.parquet"))
                .iter()
                .map(|r| {
                    let s = |k: &str| match &r[k] {
                        Cell::Str(s) => s.clone(),
                        c => panic!("{k}: {c:?}"),
                    };
                    let kind = s("kind").replace("outside_window", "before_window");
                    (
                        s("policy"),
                        kind,
                        s("txid"),
                        r["vout"].int(),
                        r["amount"].int(),
                    )
                })
                .collect();
        ends.sort();
        (t["results"].clone(), ends)
    };
    let (win, win_ends) = back(d.path(), &d.path().join("back"), &[]);
    let (full, full_ends) = back(
        keep.path(),
        &keep.path().join("back"),
        &["--from-height", "200"],
    );
    assert!(
        win_ends.iter().any(|e| e.1 == "before_window"),
        "{win_ends:?}"
    );
    assert_eq!(win_ends, full_ends);
    for (w, f) in win.as_array().unwrap().iter().zip(full.as_array().unwrap()) {
        let (wt, ft) = (&w["totals"], &f["totals"]);
        assert!(wt["before_window"].as_u64().unwrap() > 0, "{wt}");
        assert_eq!(wt["before_window"], ft["outside_window"], "{}", w["policy"]);
        for k in ["seeded", "exits", "fees", "holdings", "mined", "hop_limit"] {
            assert_eq!(wt[k], ft[k], "{} {k}", w["policy"]);
        }
    }
    // The analysis files go before comparing the dataset's parts.
    for f in ["case", "clusters", "regtest/index", "back"] {
        let _ = std::fs::remove_dir_all(d.path().join(f));
    }
    // Later runs extend it downward.
    ok(&rpc_ingest(&node, d.path(), &["--from", "0"]));
    assert!(
        parts(d.path()) == reference,
        "the extended window equals the full ingest"
    );
}

#[test]
fn failures_say_each_cause_once_hide_every_secret_and_leave_no_stray_folder() {
    let key = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("new-data");
    let url = format!("https://u:SECRETPW@127.0.0.1:1/v3/{key}?apikey=SECRETQ");
    for json in [false, true] {
        let mut args = vec![
            "ingest",
            "bitcoin",
            "--rpc",
            &url,
            "--rpc-attempts",
            "2",
            "--rpc-backoff-max-ms",
            "10",
            "--data",
            data.to_str().unwrap(),
        ];
        if json {
            args.insert(0, "--json");
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        for secret in ["SECRETPW", key, "SECRETQ"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        if json {
            let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert!(v["error"]["message"].as_str().unwrap().contains("***"));
        }
    }
    assert!(!data.exists(), "a failed first ingest leaves no folder");
    // A cause is said once.
    let o = run(&[
        "ingest",
        "bitcoin",
        "--blocks-dir",
        d.path().join("nowhere").to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(!data.exists());
}
