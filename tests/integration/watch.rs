//! `chaintrace watch` against real nodes: anvil (Ethereum) here, Bitcoin Core regtest when
//! its binaries are built (contrib/bitcoind/build.sh, run by .ci/run): a payment from a
//! watched address mined after the watch began gives exactly one alert (and one call of
//! the alert command), a restart repeats nothing, and a reorganisation that removes the
//! block retracts the alert.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::ethereum_node::Anvil;
use crate::util::*;

/// An alert command that appends its arguments to `calls.txt` beside it.
fn alert_script(dir: &Path) -> PathBuf {
    let p = dir.join("notify.sh");
    std::fs::write(
        &p,
        "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls.txt\"\n",
    )
    .unwrap();
    let mut perm = std::fs::metadata(&p).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&p, perm).unwrap();
    p
}

/// Files in the alerts folder whose names end with `suffix` (alerts: `.json` minus
/// digests, retractions and the state).
fn alert_files(dir: &Path) -> Vec<Value> {
    let mut v: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".json")
                && !n.starts_with("digest-")
                && n != "state.json"
                && !n.ends_with("-retracted.json")
        })
        .map(|n| {
            (
                n.clone(),
                serde_json::from_slice(&std::fs::read(dir.join(&n)).unwrap()).unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|x| x.1).collect()
}

fn retractions(dir: &Path) -> Vec<Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("-retracted.json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect()
}

fn poll(args: &[&str]) -> Value {
    let mut all = vec!["watch", "--once", "--json"];
    all.extend_from_slice(args);
    let o = run(&all);
    ok(&o);
    serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap()
}

#[test]
fn an_ethereum_payment_alerts_once_and_a_reorganisation_retracts_it() {
    let node = Anvil::start();
    let acc = node.accounts();
    let (watched, exchange) = (&acc[1], &acc[3]);
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    import_labels(
        &data,
        &format!("address,label,category,actor\n{exchange},Exchange X,exchange,Exchange X\n"),
    );
    let alerts = d.path().join("alerts");
    let script = alert_script(d.path());
    let url = node.url();
    let args = [
        "--rpc-eth",
        url.as_str(),
        "--watch",
        watched.as_str(),
        "--data",
        data.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--alert-cmd",
        script.to_str().unwrap(),
    ];
    // The first poll starts at the tip: nothing before it alerts.
    node.send(json!({"from": watched, "to": exchange, "value": "0x1"}));
    let p = poll(&args);
    assert_eq!(p["alerts"].as_array().unwrap().len(), 0);
    let snapshot = node.call("evm_snapshot", json!([]));
    // A payment from the watched account to the exchange.
    let tx = node
        .send(json!({"from": watched, "to": exchange, "value": format!("{:#x}", 10u128.pow(18))}));
    node.receipt(&tx);
    let p = poll(&args);
    assert_eq!(p["alerts"].as_array().unwrap().len(), 1, "{p}");
    let a = alert_files(&alerts);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["txid"], tx.as_str());
    assert_eq!(a[0]["kinds"], json!(["exchange", "spend"]));
    assert_eq!(a[0]["moved_from_watched"], 10u128.pow(18).to_string());
    assert_eq!(a[0]["confirmations"], 1);
    assert_eq!(a[0]["unit"], "wei");
    assert!(a[0]["tool"].as_str().unwrap().starts_with("chaintrace "));
    let calls = std::fs::read_to_string(d.path().join("calls.txt")).unwrap();
    assert_eq!(calls.lines().count(), 1, "one call per poll with news");
    assert!(calls.contains("digest-"));
    // A restart repeats nothing.
    let p = poll(&args);
    assert_eq!(p["alerts"].as_array().unwrap().len(), 0);
    assert_eq!(alert_files(&alerts).len(), 1);
    // A reorganisation removes the block: the alert is retracted.
    node.call("evm_revert", json!([snapshot]));
    node.call("evm_mine", json!([]));
    node.call("evm_mine", json!([]));
    let p = poll(&args);
    assert_eq!(p["retracted"].as_array().unwrap().len(), 1, "{p}");
    let r = retractions(&alerts);
    assert_eq!(r[0]["retracts"], a[0]["id"]);
    let state: Value =
        serde_json::from_slice(&std::fs::read(alerts.join("state.json")).unwrap()).unwrap();
    assert!(state["alerts"][a[0]["id"].as_str().unwrap()]["retracted"].is_string());
    assert_eq!(
        std::fs::read_to_string(d.path().join("calls.txt"))
            .unwrap()
            .lines()
            .count(),
        2
    );

    // A failing alert command: --once fails and the digest stays pending; the next run
    // with a working command delivers it.
    let failing = d.path().join("fail.sh");
    std::fs::write(&failing, "#!/bin/sh\nexit 3\n").unwrap();
    let mut perm = std::fs::metadata(&failing).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&failing, perm).unwrap();
    let fargs: Vec<&str> = args
        .iter()
        .map(|a| {
            if *a == script.to_str().unwrap() {
                failing.to_str().unwrap()
            } else {
                a
            }
        })
        .collect();
    let tx2 = node.send(json!({"from": watched, "to": exchange, "value": "0x2"}));
    node.receipt(&tx2);
    let o = run(&[&["watch", "--once"], &fargs[..]].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("pending"), "{}", stderr(&o));
    poll(&args);
    let calls = std::fs::read_to_string(d.path().join("calls.txt")).unwrap();
    assert_eq!(
        calls.lines().count(),
        3,
        "the pending digest delivered: {calls}"
    );
    // A command that cannot run, and an address that is not one, are refused at start.
    let al = alerts.to_str().unwrap();
    let o = run(&[
        "watch",
        "--once",
        "--rpc-eth",
        &url,
        "--watch",
        watched,
        "--alerts",
        al,
        "--alert-cmd",
        "./no-such-script.sh",
    ]);
    assert!(stderr(&o).contains("not an executable"), "{}", stderr(&o));
    let o = run(&[
        "watch",
        "--once",
        "--rpc-eth",
        &url,
        "--watch",
        "0x1234",
        "--alerts",
        al,
    ]);
    assert!(
        stderr(&o).contains("is not an Ethereum address"),
        "{}",
        stderr(&o)
    );
    // Ctrl-C on a continuous watch: exit 130, saying where it stopped.
    let child = std::process::Command::new(bin())
        .args([
            "watch",
            "--poll",
            "1",
            "--rpc-eth",
            &url,
            "--watch",
            watched,
            "--alerts",
            al,
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("state is saved"));

    // A node on another chain (a state none of whose blocks it has): refused, and a
    // continuous watch leaves the state as it was instead of taking the new chain over.
    let foreign = d.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    let state = json!({"version": 1, "source": "x", "chain": "ethereum",
        "blocks": [[1, format!("0x{}", "ab".repeat(32))]], "alerts": {}, "linked": {}});
    std::fs::write(foreign.join("state.json"), state.to_string()).unwrap();
    let fa = foreign.to_str().unwrap();
    let o = run(&[
        "watch",
        "--once",
        "--rpc-eth",
        &url,
        "--watch",
        watched,
        "--alerts",
        fa,
    ]);
    assert!(
        stderr(&o).contains("shares none of the last"),
        "{}",
        stderr(&o)
    );
    let child = std::process::Command::new(bin())
        .args([
            "watch",
            "--poll",
            "0.5",
            "--rpc-eth",
            &url,
            "--watch",
            watched,
            "--alerts",
            fa,
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    // SAFETY: signalling a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    child.wait_with_output().unwrap();
    let after: Value =
        serde_json::from_slice(&std::fs::read(foreign.join("state.json")).unwrap()).unwrap();
    assert_eq!(after["blocks"], state["blocks"], "the state was taken over");
}

/// Bitcoin Core's binaries, built by contrib/bitcoind/build.sh.
fn bitcoind_dir() -> PathBuf {
    std::env::var_os("CHAINTRACE_BITCOIND_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/chaintrace-bitcoind")
        })
        .join("bin")
}

/// A bitcoind -regtest on a free port in its own data directory, stopped when dropped.
struct Bitcoind {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bitcoind {
    fn start() -> Bitcoind {
        let bin = bitcoind_dir().join("bitcoind");
        assert!(
            bin.exists(),
            "{} is missing: run contrib/bitcoind/build.sh (.ci/run does)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p2p = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .arg("-regtest")
            .arg(format!("-datadir={}", dir.path().display()))
            .arg(format!("-rpcport={port}"))
            .arg(format!("-port={p2p}"))
            .args([
                "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1",
                "-listen=0",
                "-server=1",
                "-txindex=0",
                "-fallbackfee=0.0001",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let b = Bitcoind { child, dir, port };
        for _ in 0..300 {
            if b.cli_opt(&["getblockcount"]).is_some() {
                return b;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("bitcoind did not answer within 30 s");
    }

    fn cookie(&self) -> PathBuf {
        self.dir.path().join("regtest/.cookie")
    }

    fn cli_opt(&self, args: &[&str]) -> Option<String> {
        let o = Command::new(bitcoind_dir().join("bitcoin-cli"))
            .arg("-regtest")
            .arg(format!("-datadir={}", self.dir.path().display()))
            .arg(format!("-rpcport={}", self.port))
            .args(args)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    fn cli(&self, args: &[&str]) -> String {
        self.cli_opt(args)
            .unwrap_or_else(|| panic!("bitcoin-cli {args:?} failed"))
    }
}

#[test]
fn a_bitcoin_core_payment_alerts_once_and_a_reorganisation_retracts_it() {
    let node = Bitcoind::start();
    // A key of our own: mine to it, then spend with signrawtransactionwithkey (no wallet).
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let sk = bitcoin::secp256k1::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let pk = bitcoin::CompressedPublicKey(sk.public_key(&secp));
    let watched = bitcoin::Address::p2wpkh(&pk, bitcoin::Network::Regtest).to_string();
    let wif = bitcoin::PrivateKey::new(sk, bitcoin::Network::Regtest).to_wif();
    let dest = "bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663";
    node.cli(&["generatetoaddress", "101", &watched]);
    let d = tempfile::tempdir().unwrap();
    let alerts = d.path().join("alerts");
    let script = alert_script(d.path());
    let url = format!("http://127.0.0.1:{}", node.port);
    let cookie = node.cookie();
    let args = [
        "--rpc",
        url.as_str(),
        "--rpc-cookie",
        cookie.to_str().unwrap(),
        "--watch",
        watched.as_str(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--alert-cmd",
        script.to_str().unwrap(),
    ];
    assert_eq!(poll(&args)["alerts"].as_array().unwrap().len(), 0);
    // A mainnet address on this regtest node would never match: refused.
    let o = run(&[
        "watch",
        "--once",
        "--rpc",
        &url,
        "--rpc-cookie",
        cookie.to_str().unwrap(),
        "--watch",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("is not an address of regtest"),
        "{}",
        stderr(&o)
    );
    // Spend the first coinbase (50 BTC) to dest: 49.999 BTC, the rest the fee.
    let h1 = node.cli(&["getblockhash", "1"]);
    let block: Value = serde_json::from_str(&node.cli(&["getblock", &h1, "2"])).unwrap();
    let cb = block["tx"][0]["txid"].as_str().unwrap().to_string();
    let raw = node.cli(&[
        "createrawtransaction",
        &json!([{"txid": cb, "vout": 0}]).to_string(),
        &json!({dest: 49.999}).to_string(),
    ]);
    let signed: Value = serde_json::from_str(&node.cli(&[
        "signrawtransactionwithkey",
        &raw,
        &json!([wif]).to_string(),
        &json!([{"txid": cb, "vout": 0, "scriptPubKey": block["tx"][0]["vout"][0]["scriptPubKey"]["hex"], "amount": 50}]).to_string(),
    ]))
    .unwrap();
    assert_eq!(signed["complete"], true, "{signed}");
    let txid = node.cli(&["sendrawtransaction", signed["hex"].as_str().unwrap()]);
    let mined: Value = serde_json::from_str(&node.cli(&["generatetoaddress", "1", dest])).unwrap();
    let p = poll(&args);
    assert_eq!(p["alerts"].as_array().unwrap().len(), 1, "{p}");
    let a = alert_files(&alerts);
    assert_eq!(a[0]["txid"], txid.as_str());
    assert_eq!(a[0]["kinds"], json!(["spend"]));
    assert_eq!(a[0]["moved_from_watched"], "5000000000");
    assert_eq!(a[0]["block_hash"], mined[0]);
    // A restart repeats nothing.
    assert_eq!(poll(&args)["alerts"].as_array().unwrap().len(), 0);
    // The block is invalidated and a longer chain without the payment mined: retracted.
    node.cli(&["invalidateblock", mined[0].as_str().unwrap()]);
    // Mined to another address: the same block again would be the invalid one.
    let other_sk = bitcoin::secp256k1::SecretKey::from_slice(&[8u8; 32]).unwrap();
    let other = bitcoin::Address::p2wpkh(
        &bitcoin::CompressedPublicKey(other_sk.public_key(&secp)),
        bitcoin::Network::Regtest,
    )
    .to_string();
    node.cli(&["generatetoaddress", "2", &other]);
    let p = poll(&args);
    assert_eq!(p["retracted"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(retractions(&alerts)[0]["retracts"], a[0]["id"]);
    // (The payment went back to the mempool and may be mined again: a new alert then.)
    let calls = std::fs::read_to_string(d.path().join("calls.txt")).unwrap();
    assert_eq!(calls.lines().count(), 2);
}

/// The watcher over an Esplora API (a replay of real electrs replies for world A): from a
/// state ten blocks below the tip, every transaction of those blocks paying or spending a
/// watched address alerts, as the dataset ingested from the node's own blocks says.
#[test]
fn an_esplora_watch_alerts_on_exactly_the_transactions_the_dataset_shows() {
    esplora_watch_matches_the_dataset(&[]);
}

/// A server that lies about whom a script pays (every `scriptpubkey_address` of its
/// transaction pages names another address) changes nothing: the watcher reads the
/// addresses from the scripts, as the ingest does, so the spends from the watched address
/// still alert.
#[test]
fn an_esplora_server_lying_about_addresses_does_not_change_the_alerts() {
    esplora_watch_matches_the_dataset(&["--fault", "/txs/=lie*0"]);
}

fn esplora_watch_matches_the_dataset(faults: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest(&bitcoin_data("regtest-world-a/blocks"), &data, &[]));
    let chain = data.join("regtest");
    let blocks = read_table(&chain, "blocks");
    let tip = blocks.iter().map(|b| b["height"].int()).max().unwrap();
    let hash_at = |h: i64| {
        blocks.iter().find(|b| b["height"].int() == h).unwrap()["hash"]
            .str()
            .to_string()
    };
    // The address paid most often in the last ten blocks.
    let outputs = read_table(&chain, "outputs");
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for o in outputs.iter().filter(|o| o["height"].int() > tip - 10) {
        if let Some(a) = o["address"].opt_str() {
            *counts.entry(a.to_string()).or_default() += 1;
        }
    }
    let watched = counts.iter().max_by_key(|x| x.1).unwrap().0.clone();
    let inputs = read_table(&chain, "inputs");
    let mut want: std::collections::BTreeSet<String> = outputs
        .iter()
        .filter(|o| o["height"].int() > tip - 10 && o["address"].opt_str() == Some(&watched))
        .map(|o| o["txid"].str().to_string())
        .collect();
    want.extend(
        inputs
            .iter()
            .filter(|i| i["height"].int() > tip - 10 && i["address"].opt_str() == Some(&watched))
            .map(|i| i["txid"].str().to_string()),
    );
    assert!(!want.is_empty());
    // The replay server of the recorded Esplora replies.
    let rd = tempfile::tempdir().unwrap();
    let log = rd.path().join("requests.log");
    std::fs::write(&log, "").unwrap();
    let recording = datasets().join("esplora/regtest-world-a.jsonl.zst");
    let mut args = vec![recording.as_os_str(), log.as_os_str()];
    args.extend(faults.iter().map(std::ffi::OsStr::new));
    let (port, mut child) = start_script("esplora_replay.py", &args);
    let alerts = d.path().join("alerts");
    std::fs::create_dir_all(&alerts).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let state = json!({"version": 1, "source": format!("esplora {url}"), "chain": "bitcoin",
        "blocks": [[tip - 10, hash_at(tip - 10)]], "alerts": {}, "linked": {}});
    std::fs::write(alerts.join("state.json"), state.to_string()).unwrap();
    let p = poll(&[
        "--esplora",
        &url,
        "--watch",
        &watched,
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(p["blocks"], 10, "{p}");
    let got: std::collections::BTreeSet<String> = alert_files(&alerts)
        .iter()
        .map(|a| a["txid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    // The spends from the watched address are among them (what a lying server would hide).
    assert!(
        inputs
            .iter()
            .any(|i| i["height"].int() > tip - 10 && i["address"].opt_str() == Some(&watched)),
        "no spend from {watched} in the last ten blocks: the test shows nothing"
    );
}

/// The ingest's UTXO set holds what Bitcoin Core's does (`gettxoutsetinfo` `txouts`) on a
/// node's own blocks directory: the genesis block's coinbase is not in it (Core never adds
/// it: it cannot be spent), nor are OP_RETURN outputs. (The set counted the genesis output.)
#[test]
fn the_ingest_utxo_set_counts_what_bitcoin_core_counts() {
    let mut node = Bitcoind::start();
    node.cli(&[
        "generatetoaddress",
        "110",
        "bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663",
    ]);
    let info: Value = serde_json::from_str(&node.cli(&["gettxoutsetinfo"])).unwrap();
    let txouts = info["txouts"].as_u64().unwrap();
    assert!(txouts >= 110, "{info}");
    node.cli(&["stop"]);
    node.child.wait().unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(
        &node.dir.path().join("regtest/blocks"),
        data.path(),
        &["--json"],
    );
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["utxo_outputs"].as_u64(), Some(txouts), "{v}");
}
