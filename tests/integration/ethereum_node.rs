//! `chaintrace ingest ethereum` against a real node: anvil (npm
//! `@foundry-rs/anvil-linux-amd64`), started here on 127.0.0.1 and stopped after, with
//! transactions this test creates — ETH transfers, contract creations, a contract that
//! forwards ETH internally, a failed transaction — then every ingested row is compared with
//! what the node reports.

use std::path::PathBuf;

use serde_json::{Value, json};

pub use crate::anvil::Anvil;
use crate::util::*;

/// Runs `chaintrace trace --quiet --chain ethereum --data DATA ARGS... --out OUT`.
fn trace_eth(data: &str, out: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["trace", "--quiet", "--chain", "ethereum", "--data", data];
    all.extend_from_slice(args);
    all.extend(["--out", out]);
    run(&all)
}

/// Runs `chaintrace ingest ethereum` from `node` into `data` with `extra` options.
pub fn ingest_eth(node: &Anvil, data: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let url = node.url();
    let mut args = vec![
        "ingest",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

pub fn dec(v: &Value) -> String {
    let h = v.as_str().unwrap().trim_start_matches("0x");
    u128::from_str_radix(if h.is_empty() { "0" } else { h }, 16)
        .unwrap()
        .to_string()
}

pub const A: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
pub const B: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
pub const C: &str = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

/// Init code returning `runtime`.
pub fn deployable(runtime: &str) -> String {
    let n = runtime.len() / 2;
    assert!(n < 256);
    format!("0x60{n:02x}80600b6000396000f3{runtime}")
}

#[test]
fn ingested_rows_equal_what_the_node_reports() {
    let node = Anvil::start();
    // 1. A plain transfer.
    let t1 = node.send(json!({"from": A, "to": B, "value": "0xde0b6b3a7640000"}));
    // 2. A contract that forwards what it receives to C (CALL with CALLVALUE, then STOP).
    let forwarder = format!("600060006000600034 73{} 5af15000", &C[2..]).replace(' ', "");
    let t2 = node.send(json!({"from": A, "data": deployable(&forwarder)}));
    let fwd = node.receipt(&t2)["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    // 3. Through it, 0.5 ETH: an internal transfer forwarder -> C.
    let t3 =
        node.send(json!({"from": B, "to": fwd, "value": "0x6f05b59d3b20000", "gas": "0x30000"}));
    // 4. A contract that always reverts, and a call to it that fails on chain.
    let t4 = node.send(json!({"from": A, "data": deployable("60006000fd")}));
    let rev = node.receipt(&t4)["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let t5 = node.send(json!({"from": C, "to": rev, "value": "0x1", "gas": "0x20000"}));
    assert_eq!(node.receipt(&t5)["status"], "0x0");
    for t in [&t1, &t3] {
        node.receipt(t);
    }
    let tip = u64::from_str_radix(
        node.call("eth_blockNumber", json!([]))
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(tip >= 5);

    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let o = ingest_eth(&node, &data, &["--part-blocks", "2", "--concurrency", "3"]);
    ok(&o);
    let chain = data.join("ethereum");
    let blocks = read_table(&chain, "blocks");
    assert_eq!(blocks.len() as u64, tip + 1);
    let txs = read_table(&chain, "transactions");
    let mut seen = 0;
    for b in &blocks {
        let n = b["number"].int() as u64;
        let v = node.call("eth_getBlockByNumber", json!([format!("{n:#x}"), true]));
        assert_eq!(b["hash"].str(), v["hash"].as_str().unwrap());
        assert_eq!(b["parent_hash"].str(), v["parentHash"].as_str().unwrap());
        assert_eq!(b["timestamp"].int().to_string(), dec(&v["timestamp"]));
        assert_eq!(b["gas_used"].int().to_string(), dec(&v["gasUsed"]));
        assert_eq!(
            b["base_fee_per_gas"].opt_str().map(str::to_string),
            v.get("baseFeePerGas").map(dec)
        );
        for t in v["transactions"].as_array().unwrap() {
            let row = txs
                .iter()
                .find(|r| r["hash"].str() == t["hash"].as_str().unwrap())
                .expect("every transaction is ingested");
            let rc = node.receipt(t["hash"].as_str().unwrap());
            assert_eq!(row["block_number"].int() as u64, n);
            assert_eq!(row["from"].str(), t["from"].as_str().unwrap());
            assert_eq!(row["to"].opt_str(), t["to"].as_str());
            assert_eq!(row["value"].str(), dec(&t["value"]));
            assert_eq!(row["nonce"].int().to_string(), dec(&t["nonce"]));
            assert_eq!(row["type"].int().to_string(), dec(&t["type"]));
            assert_eq!(row["status"].int().to_string(), dec(&rc["status"]));
            assert_eq!(row["gas_used"].int().to_string(), dec(&rc["gasUsed"]));
            assert_eq!(
                row["effective_gas_price"].opt_str().map(str::to_string),
                Some(dec(&rc["effectiveGasPrice"]))
            );
            assert_eq!(
                row["contract_address"].opt_str(),
                rc["contractAddress"].as_str()
            );
            seen += 1;
        }
    }
    assert_eq!(seen, txs.len());
    assert_eq!(seen, 5);
    let by_hash = |h: &str| txs.iter().find(|r| r["hash"].str() == h).unwrap().clone();
    assert_eq!(by_hash(&t1)["value"].str(), "1000000000000000000");
    assert!(
        by_hash(&t2)["to"].opt_str().is_none(),
        "a contract creation has no to"
    );
    assert_eq!(by_hash(&t5)["status"].int(), 0);
    // The forwarder's internal transfer, exactly; the failed call moved nothing internally.
    let internal = read_table(&chain, "internal_transfers");
    assert_eq!(internal.len(), 1, "{internal:?}");
    let i = &internal[0];
    assert_eq!(
        (i["tx_hash"].str(), i["from"].opt_str(), i["to"].opt_str()),
        (t3.as_str(), Some(fwd.as_str()), Some(C))
    );
    assert_eq!(i["value"].str(), "500000000000000000");
    assert_eq!(
        (
            i["trace_address"].str(),
            i["kind"].str(),
            i["call_type"].opt_str()
        ),
        ("0", "call", Some("call"))
    );
    // Rerunning keeps every complete part and changes no byte.
    let before = tree(&chain);
    let o = ingest_eth(&node, &data, &["--part-blocks", "2", "--json"]);
    ok(&o);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(s["parts_kept"].as_u64().unwrap() >= tip / 2, "{s}");
    assert_eq!(before, tree(&chain));
}

#[test]
fn a_node_that_is_not_there_or_wrong_gives_clear_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = tempfile::tempdir().unwrap();
    let o = run(&[
        "ingest",
        "ethereum",
        "--rpc",
        &format!("http://127.0.0.1:{port}"),
        "--data",
        d.path().to_str().unwrap(),
        "--rpc-attempts",
        "2",
        "--rpc-timeout-secs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("eth_chainId"), "{}", stderr(&o));
    let node = Anvil::start();
    let o = run(&[
        "ingest",
        "ethereum",
        "--rpc",
        &node.url(),
        "--data",
        d.path().to_str().unwrap(),
        "--to",
        "99",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("beyond the node's tip"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn senders_to_one_deposit_address_cluster_together() {
    let node = Anvil::start();
    let acc = node.accounts();
    let (u1, u2, u3, d1, d2, hot, noise) = (
        &acc[1], &acc[2], &acc[3], &acc[4], &acc[5], &acc[6], &acc[7],
    );
    let pay =
        |from: &str, to: &str, wei: &str| node.send(json!({"from": from, "to": to, "value": wei}));
    // Two customers pay into deposit address d1, a third into d2; both sweep to the hot wallet.
    pay(u1, d1, "0x1000000");
    pay(u2, d1, "0x2000000");
    pay(u3, d2, "0x3000000");
    // Two empty blocks before the sweeps: each sweep leaves at least two blocks after its
    // deposit even when a loaded node mines some of these transactions together.
    node.call("evm_mine", json!([]));
    node.call("evm_mine", json!([]));
    pay(d1, hot, "0x2ffffff");
    pay(d2, hot, "0x2ffffff");
    // An account paying two different addresses is no deposit address.
    pay(noise, &acc[8], "0x10");
    pay(noise, &acc[9], "0x10");
    // Nor one that keeps most of what it got: 1 ETH in, 16 wei on to the hot wallet (more
    // than Victor's 0.01 ETH of gas short).
    pay(u3, A, "0xde0b6b3a7640000");
    let last = pay(A, hot, "0x10");
    node.receipt(&last);
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &[]));
    let v = cluster_eth(&data, &[]);
    assert_eq!(
        (v["deposits"].as_u64(), v["hot_wallets"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    // The bounds decide: without the amount bound A is a deposit address too; with a
    // one-block delay bound no sweep qualifies (each left two blocks after its deposit).
    let deposits = |extra: &[&str]| cluster_eth(&data, extra)["deposits"].as_u64();
    assert_eq!(
        deposits(&["--max-amount-diff", "10000000000000000000"]),
        Some(3)
    );
    assert_eq!(deposits(&["--max-delay-blocks", "1"]), Some(0));
    ok(&run(&[
        "cluster",
        "ethereum",
        "--data",
        data.to_str().unwrap(),
    ]));
    let rows = read_parquet_file(&data.join("clusters/ethereum/address_cluster.parquet"));
    let of = |a: &str| cluster_of(&rows, a);
    assert!(
        of(u1).is_some() && of(u1) == of(u2),
        "the customers of one deposit address are one entity"
    );
    assert_ne!(of(u1), of(u3));
    assert!(
        of(d1) == of(d2) && of(d1) == of(hot),
        "deposit addresses join their hot wallet"
    );
    assert_ne!(of(u1), of(d1));
    assert_eq!(of(noise), None);
    // Every merge says why.
    let merges = read_parquet_file(&data.join("clusters/ethereum/merges.parquet"));
    assert!(
        merges
            .iter()
            .any(|m| m["reason"].str() == "same-deposit-address" && m["deposit"].str() == d1)
    );
    assert_eq!(merges.len(), 3);
    // A trace from the customer's cluster, drawn at cluster level: both customers are seeds,
    // nodes are named by their cluster's first address, and the sweeps inside the exchange's
    // cluster are not transfers.
    let case = d.path().join("case");
    let o = run(&[
        "trace",
        "--chain",
        "ethereum",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        &format!("cluster:{u2}"),
        "--level",
        "cluster",
        "--policy",
        "fifo",
        "--out",
        case.to_str().unwrap(),
    ]);
    ok(&o);
    let doc: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    assert_eq!(doc["parameters"]["seed_accounts"], 2);
    let name = |a: &str| {
        let c = of(a).unwrap();
        rows.iter()
            .filter(|r| r["cluster_id"].int() == c)
            .map(|r| r["address"].str().to_string())
            .min()
            .unwrap()
    };
    assert_eq!(doc["seed_nodes"], json!([name(u1)]));
    let edges: Vec<(String, String)> = doc["results"][0]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(edges, vec![(name(u1), name(hot)); 2], "{edges:?}");
    assert_eq!(
        doc["clustering"]["heuristics"],
        json!(["deposit-address-reuse"])
    );
}

/// `chaintrace --json cluster ethereum --data DATA EXTRA...`, its summary.
fn cluster_eth(data: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "cluster",
        "ethereum",
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    ok(&o);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The cluster id of `a` in `address_cluster.parquet` rows.
fn cluster_of(rows: &[Row], a: &str) -> Option<i64> {
    rows.iter()
        .find(|r| r["address"].str() == a)
        .map(|r| r["cluster_id"].int())
}

/// `transfer(address,uint256)` call data.
pub fn erc20_transfer(to: &str, amount: u128) -> String {
    format!("0xa9059cbb{:0>64}{amount:064x}", &to[2..])
}

#[test]
fn erc20_transfers_equal_the_nodes_logs() {
    let node = Anvil::start();
    // The token is compiled from tests/contracts/Token.sol by solc-js (tests/contracts/build.js).
    let bin = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/Token.bin"),
    )
    .unwrap();
    let supply: u128 = 10u128.pow(30); // beyond 64 bits: amounts must stay exact
    let deploy = node.send(json!({"from": A, "data": format!("0x{}{supply:064x}", bin.trim())}));
    let token = node.receipt(&deploy)["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let t1 = node.send(json!({"from": A, "to": token, "data": erc20_transfer(B, 250_000_000)}));
    let t2 = node.send(json!({"from": B, "to": token, "data": erc20_transfer(C, 100)}));
    // More than the balance: the call reverts and emits nothing.
    let t3 = node
        .send(json!({"from": C, "to": token, "data": erc20_transfer(A, 10_000), "gas": "0x20000"}));
    for t in [&t1, &t2] {
        assert_eq!(node.receipt(t)["status"], "0x1");
    }
    assert_eq!(node.receipt(&t3)["status"], "0x0");
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &[]));
    let rows = read_table(&data.join("ethereum"), "token_transfers");
    let logs = node.call(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest", "address": token}]),
    );
    let logs = logs.as_array().unwrap();
    assert_eq!(rows.len(), logs.len());
    assert_eq!(rows.len(), 3, "mint + two transfers");
    for (r, l) in rows.iter().zip(logs) {
        let topics = l["topics"].as_array().unwrap();
        assert_eq!(r["tx_hash"].str(), l["transactionHash"].as_str().unwrap());
        assert_eq!(r["log_index"].int().to_string(), dec(&l["logIndex"]));
        assert_eq!(r["token"].str(), token);
        assert_eq!(
            r["from"].str(),
            format!("0x{}", &topics[1].as_str().unwrap()[26..])
        );
        assert_eq!(
            r["to"].str(),
            format!("0x{}", &topics[2].as_str().unwrap()[26..])
        );
        assert_eq!(r["value"].str(), dec(&l["data"]));
        assert_eq!(r["standard"].str(), "erc20");
    }
    assert_eq!(rows[0]["value"].str(), "1000000000000000000000000000000");
    assert_eq!(
        rows[0]["from"].str(),
        "0x0000000000000000000000000000000000000000"
    );
    assert_eq!(
        (rows[1]["to"].str(), rows[1]["value"].str()),
        (B, "250000000")
    );
    assert_eq!(
        (
            rows[2]["from"].str(),
            rows[2]["to"].str(),
            rows[2]["value"].str()
        ),
        (B, C, "100")
    );
    // The token's transactions: created, two calls and the failed one.
    let txs = read_table(&data.join("ethereum"), "transactions");
    let failed = txs.iter().find(|r| r["hash"].str() == t3).unwrap();
    assert_eq!((failed["status"].int(), failed["logs"].int()), (0, 0));
    assert_eq!(
        txs.iter().find(|r| r["hash"].str() == t1).unwrap()["input_selector"].str(),
        "0xa9059cbb"
    );
}

#[test]
fn a_reorganised_tip_is_removed_recorded_and_fetched_again() {
    let node = Anvil::start();
    let pay = |wei: u64| node.send(json!({"from": A, "to": B, "value": format!("{wei:#x}")}));
    let t1 = pay(1);
    node.receipt(&t1);
    let snap = node.call("evm_snapshot", json!([]));
    let (t2, t3) = (pay(2), pay(3));
    node.receipt(&t3);
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &["--part-blocks", "2"]));
    let chain = data.join("ethereum");
    let old_tip = read_table(&chain, "blocks").last().unwrap()["hash"]
        .str()
        .to_string();
    // Blocks 2 and 3 are replaced by a longer branch: 2, 3 and 4 with other transactions.
    assert_eq!(node.call("evm_revert", json!([snap])), json!(true));
    let new: Vec<String> = (10..13).map(pay).collect();
    node.receipt(new.last().unwrap());
    let o = ingest_eth(&node, &data, &["--part-blocks", "2"]);
    ok(&o);
    assert!(
        stderr(&o).contains("reorganised above block 1"),
        "{}",
        stderr(&o)
    );
    let blocks = read_table(&chain, "blocks");
    assert_eq!(
        blocks.iter().map(|b| b["number"].int()).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    for b in &blocks {
        let n = b["number"].int();
        let on_node = node.call("eth_getBlockByNumber", json!([format!("{n:#x}"), false]));
        assert_eq!(
            b["hash"].str(),
            on_node["hash"].as_str().unwrap(),
            "block {n}"
        );
    }
    let txs: Vec<String> = read_table(&chain, "transactions")
        .iter()
        .map(|t| t["hash"].str().to_string())
        .collect();
    let mut want = vec![t1];
    want.extend(new);
    assert_eq!(
        txs, want,
        "no row of the abandoned branch remains ({t2}, {t3})"
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(chain.join("_manifest.json")).unwrap()).unwrap();
    let r = &m["reorgs"][0];
    assert_eq!(r["fork_height"], 1);
    assert_eq!(r["old_tip"]["height"], 3);
    assert_eq!(r["old_tip"]["hash"], old_tip.as_str());
    assert_eq!(
        r["removed_parts"],
        json!(["part-0000000002-0000000003.parquet"])
    );
    assert_eq!(m["tip"]["height"], 4);
}

#[test]
fn token_deposit_addresses_cluster_their_customers() {
    let node = Anvil::start();
    let acc = node.accounts();
    let bin = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/Token.bin"),
    )
    .unwrap();
    let deploy =
        node.send(json!({"from": A, "data": format!("0x{}{:064x}", bin.trim(), 10u128.pow(24))}));
    let token = node.receipt(&deploy)["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let pay = |from: &str, to: &str, amount: u128| {
        node.send(json!({"from": from, "to": token, "data": erc20_transfer(to, amount)}))
    };
    let (u1, u2, u3, d1, d2, hot, other) = (
        &acc[1], &acc[2], &acc[3], &acc[4], &acc[5], &acc[6], &acc[7],
    );
    // Customers hold more than they deposit (so they are no deposit addresses themselves).
    for u in [u1, u2, u3] {
        pay(A, u, 1_000_000);
    }
    pay(A, other, 50);
    pay(u1, d1, 100);
    pay(u2, d1, 200);
    pay(u3, d2, 300);
    // The deposit addresses sweep exactly what arrived; `other` forwards less than it got.
    pay(d1, hot, 300);
    pay(d2, hot, 300);
    let last = pay(other, hot, 49);
    assert_eq!(node.receipt(&last)["status"], "0x1");
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &["--traces", "none"]));
    let v = cluster_eth(&data, &[]);
    assert_eq!(
        (v["deposits"].as_u64(), v["hot_wallets"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    let rows = read_parquet_file(&data.join("clusters/ethereum/address_cluster.parquet"));
    let of = |a: &str| cluster_of(&rows, a);
    assert!(
        of(u1).is_some() && of(u1) == of(u2),
        "one deposit address, one customer"
    );
    assert_ne!(of(u1), of(u3));
    assert!(of(d1) == of(d2) && of(d1) == of(hot));
    assert_eq!(of(other), None);
}

#[test]
fn another_ethereum_chain_is_refused_unless_replace() {
    // Two anvil chains of the same chain id: the second is another chain, not a reorg.
    let a = Anvil::start();
    a.call("anvil_mine", serde_json::json!(["0x96"])); // 150 blocks
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&a, &data, &["--traces", "none"]));
    drop(a);
    let b = Anvil::start();
    b.call(
        "evm_setNextBlockTimestamp",
        serde_json::json!([4_000_000_000u64]),
    );
    b.call("anvil_mine", serde_json::json!(["0x96"]));
    let chain = data.join("ethereum");
    let before = tree(&chain);
    let o = ingest_eth(&b, &data, &["--traces", "none"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds another chain") && stderr(&o).contains("--replace"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("shares no block but the genesis"),
        "{}",
        stderr(&o)
    );
    assert!(tree(&chain) == before, "a refused ingest changes nothing");
    ok(&ingest_eth(&b, &data, &["--traces", "none", "--replace"]));
    // Another kind of call traces on the same dataset (parts with and without internal
    // transfers would not add up): refused, naming both; nothing changes.
    b.call("anvil_mine", serde_json::json!(["0x2"]));
    let before = tree(&chain);
    let o = ingest_eth(&b, &data, &["--traces", "parity"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("was ingested with --traces none")
            && stderr(&o).contains("asks for --traces parity"),
        "{}",
        stderr(&o)
    );
    assert!(tree(&chain) == before, "a refused ingest changes nothing");
    // A trace that forgets --chain on this Ethereum-only dataset is told to add it.
    let o = run(&[
        "trace",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        A,
        "--out",
        d.path().join("case").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds an Ethereum dataset") && stderr(&o).contains("--chain ethereum"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ethereum_ingest_over_https_with_a_custom_ca_equals_plain_http_and_keeps_the_key_secret() {
    let node = Anvil::start();
    let t = node.send(json!({"from": A, "to": B, "value": "0xde0b6b3a7640000"}));
    node.receipt(&t);
    let plain = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, plain.path(), &[]));
    // A TLS front with a test CA's certificate, as a provider's endpoint, with a key in
    // the path.
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(dir.path());
    let log = dir.path().join("requests.log");
    let upstream = node.url();
    let (port, mut child) = start_script(
        "https_forward.py",
        &[
            cert.as_os_str(),
            key.as_os_str(),
            std::ffi::OsStr::new(&upstream),
            log.as_os_str(),
        ],
    );
    let secret = "0123456789abcdef0123456789abcdef";
    let url = format!("https://127.0.0.1:{port}/v3/{secret}");
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_str().unwrap();
    let o = run(&[
        "ingest",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        data,
        "--rpc-attempts",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("TLS") && e.contains("--ca-cert") && !e.contains(secret),
        "{e}"
    );
    let o = run(&[
        "ingest",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        data,
        "--ca-cert",
        ca.to_str().unwrap(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    ok(&o);
    assert!(!stderr(&o).contains(secret) && !stdout(&o).contains(secret));
    assert_eq!(
        part_files(&d.path().join("ethereum")),
        part_files(&plain.path().join("ethereum")),
        "the same rows over TLS"
    );
    for (name, bytes) in tree(d.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{name} holds the key"
        );
    }
}

#[test]
fn every_balance_reconciles_with_the_node_through_fees_calls_reverts_and_selfdestruct() {
    let node = Anvil::start();
    let addr = |h: &str| {
        node.receipt(h)["contractAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // A plain EIP-1559 transfer, and a legacy (type 0) one with a gas price.
    node.send(json!({"from": A, "to": B, "value": "0xde0b6b3a7640000"}));
    node.send(json!({"from": B, "to": C, "value": "0x1000", "gasPrice": "0x77359400"}));
    // A contract forwarding what it receives to C (an internal transfer).
    let fwd = addr(&node.send(json!({"from": A, "data": deployable(
        &format!("600060006000600034 73{} 5af15000", &C[2..]).replace(' ', "")
    )})));
    node.send(json!({"from": B, "to": fwd, "value": "0x6f05b59d3b20000", "gas": "0x30000"}));
    // A contract that always reverts: a failed transaction still pays its gas.
    let rev = addr(&node.send(json!({"from": A, "data": deployable("60006000fd")})));
    let failed = node.send(json!({"from": C, "to": rev, "value": "0x1", "gas": "0x20000"}));
    assert_eq!(node.receipt(&failed)["status"], "0x0");
    // A contract that passes its value to the reverter and ignores the failure: the inner
    // call is reverted, the value stays with the caller contract.
    let keep = addr(&node.send(json!({"from": A, "data": deployable(
        &format!("600060006000600034 73{} 5af15000", &rev[2..]).replace(' ', "")
    )})));
    node.send(json!({"from": B, "to": keep, "value": "0x2386f26fc10000", "gas": "0x40000"}));
    // A contract that self-destructs to C when called: its balance moves by SELFDESTRUCT.
    let sd = addr(&node.send(json!({"from": A, "data": deployable(&format!("73{}ff", &C[2..]))})));
    let last =
        node.send(json!({"from": A, "to": sd, "value": "0x16345785d8a0000", "gas": "0x30000"}));
    node.receipt(&last);

    let d = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, d.path(), &[]));
    let url = node.url();
    let check = |data: &std::path::Path| {
        run(&[
            "--json",
            "check",
            "ethereum",
            "--rpc",
            &url,
            "--data",
            data.to_str().unwrap(),
        ])
    };
    let o = check(d.path());
    ok(&o);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["differences"], json!([]), "{r} {}", stderr(&o));
    // Every sender, recipient, contract and the fee recipient.
    assert!(r["accounts"].as_u64().unwrap() >= 8, "{r}");
    assert_eq!(r["matched"], r["accounts"]);
    // A sample says it is one; a sample of nothing is refused.
    let o = run(&[
        "check",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        d.path().to_str().unwrap(),
        "--sample",
        "2",
    ]);
    ok(&o);
    assert!(
        stdout(&o).contains("2 account(s) (a sample of the"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "check",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        d.path().to_str().unwrap(),
        "--sample",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    // Up to an earlier block (--block): the dataset's blocks up to it against the node's
    // balances there; every account matches too. A block outside the dataset is refused.
    let mid = u64::from_str_radix(
        node.receipt(&failed)["blockNumber"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let o = run(&[
        "--json",
        "check",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        d.path().to_str().unwrap(),
        "--block",
        &mid.to_string(),
    ]);
    ok(&o);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["end_block"].as_u64(), &r["differences"]),
        (Some(mid), &json!([])),
        "{r}"
    );
    let o = run(&[
        "check",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        d.path().to_str().unwrap(),
        "--block",
        "999999",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("outside the dataset's blocks"),
        "{}",
        stderr(&o)
    );
    // Another chain on the node (a restarted dev node): refused, not "N differ".
    let other = Anvil::start();
    for _ in 0..12 {
        other.call("evm_mine", json!([]));
    }
    let o = run(&[
        "check",
        "ethereum",
        "--rpc",
        &other.url(),
        "--data",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not follow the dataset's chain"),
        "{}",
        stderr(&o)
    );
    // A trace through the SELFDESTRUCT, checked by hand: the 0.1 ETH the last transaction
    // paid into the contract went on to C when it self-destructed, under every model.
    let case = d.path().join("case");
    ok(&trace_eth(
        d.path().to_str().unwrap(),
        case.to_str().unwrap(),
        &["--seed", &last, "--policy", "all", "--stop-at", "none"],
    ));
    let ends = read_parquet_file(&case.join("ends.parquet"));
    let mut models = Vec::new();
    for e in &ends {
        assert_eq!(e["address"].str(), C, "{e:?}");
        assert_eq!(e["kind"].str(), "holding", "{e:?}");
        let amount: u128 = e["amount"].str().parse().unwrap();
        // Poison taints C's whole balance (its upper bound); the others move the 0.1 ETH.
        match e["policy"].str() {
            "poison" => assert!(amount >= 100_000_000_000_000_000, "{e:?}"),
            _ => assert_eq!(amount, 100_000_000_000_000_000, "{e:?}"),
        }
        models.push(e["policy"].str().to_string());
    }
    models.sort();
    assert_eq!(models, ["fifo", "haircut", "lifo", "poison"], "{ends:?}");
    // The same frame as old geth gives it (no beneficiary, no value): the 0.1 ETH is in the
    // contract when the frame empties it, so under every conserving model it ends there as
    // "unresolved", named in the totals, the ends and the report; never a 0-wei transfer.
    let hidden = strip_selfdestruct_values(&d.path().join("ethereum"));
    assert_eq!(hidden, 1);
    let case = d.path().join("case-unresolved");
    ok(&trace_eth(
        d.path().to_str().unwrap(),
        case.to_str().unwrap(),
        &[
            "--seed",
            &last,
            "--policy",
            "haircut,fifo,lifo",
            "--stop-at",
            "none",
        ],
    ));
    let ends = read_parquet_file(&case.join("ends.parquet"));
    assert_eq!(ends.len(), 3, "{ends:?}");
    for e in &ends {
        assert_eq!(e["kind"].str(), "unresolved", "{e:?}");
        assert_eq!(e["address"].str(), sd, "{e:?}");
        assert_eq!(e["amount"].str(), "100000000000000000", "{e:?}");
    }
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    for r in t["results"].as_array().unwrap() {
        assert_eq!(
            r["totals"]["unresolved"].to_string(),
            "100000000000000000",
            "{r}"
        );
        assert_eq!(r["totals"]["holdings"], 0, "{r}");
    }
    ok(&run(&["report", case.to_str().unwrap()]));
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(
        html.contains("through an unresolved transfer") && html.contains(&sd),
        "the report names the unresolved frame"
    );
    // Without call traces the contracts' and C's balances are not explained: said, exit 1.
    let bare = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, bare.path(), &["--traces", "none"]));
    let o = check(bare.path());
    assert_eq!(o.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        r["differences"].as_array().is_some_and(|d| !d.is_empty()),
        "{r}"
    );
    assert_eq!(r["has_traces"], false, "{r}");
    let o = run(&[
        "check",
        "ethereum",
        "--rpc",
        &url,
        "--data",
        bare.path().to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(
        text.contains(&C.to_string()) && text.contains("no call traces"),
        "{text}"
    );
    // A trace on it says so, and so does its report (its answers lack internal moves).
    let case = bare.path().join("case");
    let o = trace_eth(
        bare.path().to_str().unwrap(),
        case.to_str().unwrap(),
        &["--seed", &last, "--stop-at", "none"],
    );
    ok(&o);
    assert!(stderr(&o).contains("without call traces"), "{}", stderr(&o));
    ok(&run(&["report", case.to_str().unwrap()]));
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(html.contains("ingested without call traces"));
}

#[test]
fn the_documented_duckdb_query_runs_on_an_ethereum_dataset() {
    let node = Anvil::start();
    let t = node.send(json!({"from": A, "to": B, "value": "0xde0b6b3a7640000"}));
    node.send(json!({"from": A, "to": B, "value": "0x1"}));
    node.receipt(&t);
    let d = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, d.path(), &[]));
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/SCHEMA.md"),
    )
    .unwrap();
    let sql = doc
        .split("<!-- duckdb-example -->\n```sql\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("docs/SCHEMA.md holds the DuckDB example")
        .replace("'data/", &format!("'{}/", d.path().display()));
    let script = format!(
        "import duckdb\nfor r in duckdb.sql('''{sql}''').fetchall():\n    print(r[0], r[1], r[2])\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == format!("{A} {B} 1000000000000000001")),
        "{text}"
    );
}

/// Rewrites the dataset's internal transfers as a node that leaves the value and the
/// beneficiary out of SELFDESTRUCT frames (old geth, one reth release) would give them:
/// `to` and `value` null, `complete` false. Returns how many frames it changed.
fn strip_selfdestruct_values(chain_dir: &std::path::Path) -> usize {
    use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut changed = 0;
    for e in std::fs::read_dir(chain_dir.join("internal_transfers")).unwrap() {
        let path = e.unwrap().path();
        let file = std::fs::File::open(&path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let schema = batches[0].schema();
        let mut out = Vec::new();
        for b in &batches {
            let col = |n: &str| b.column(schema.index_of(n).unwrap()).clone();
            let kind = col("kind");
            let kind = kind.as_any().downcast_ref::<StringArray>().unwrap();
            let sd: Vec<bool> = (0..b.num_rows())
                .map(|i| kind.value(i) == "suicide")
                .collect();
            changed += sd.iter().filter(|x| **x).count();
            let null_if_sd = |n: &str| -> ArrayRef {
                let c = col(n);
                let c = c.as_any().downcast_ref::<StringArray>().unwrap();
                std::sync::Arc::new(
                    (0..c.len())
                        .map(|i| (!sd[i] && c.is_valid(i)).then(|| c.value(i)))
                        .collect::<StringArray>(),
                )
            };
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .map(|f| match f.name().as_str() {
                    "to" | "value" => null_if_sd(f.name()),
                    "complete" => {
                        std::sync::Arc::new(sd.iter().map(|x| Some(!x)).collect::<BooleanArray>())
                            as ArrayRef
                    }
                    n => col(n),
                })
                .collect();
            out.push(RecordBatch::try_new(schema.clone(), columns).unwrap());
        }
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
        for b in &out {
            w.write(b).unwrap();
        }
        w.close().unwrap();
    }
    changed
}

#[test]
fn traces_through_a_withdrawal_credit_count_it_as_clean_issued_eth() {
    // B receives 1 ETH from A (the seed transaction); in the same block the consensus layer
    // credits B a 1 ETH validator withdrawal (anvil makes none: the row is written into
    // the dataset as a post-Shanghai block body would give it); later B pays C 0.5 ETH.
    let node = Anvil::start();
    let seed = node.send(json!({"from": A, "to": B, "value": "0xde0b6b3a7640000"}));
    let block = node.receipt(&seed)["blockNumber"]
        .as_str()
        .unwrap()
        .to_string();
    let pay = node.send(json!({"from": B, "to": C, "value": "0x6f05b59d3b20000"}));
    let r = node.receipt(&pay);
    let fee = u128::from_str_radix(r["gasUsed"].as_str().unwrap().trim_start_matches("0x"), 16)
        .unwrap()
        * u128::from_str_radix(
            r["effectiveGasPrice"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, d.path(), &[]));
    let block = u64::from_str_radix(block.trim_start_matches("0x"), 16).unwrap();
    add_withdrawal(
        &d.path().join("ethereum"),
        block,
        B,
        1_000_000_000_000_000_000,
    );
    let trace = |name: &str, seed: &str, direction: &str| {
        let case = d.path().join(name);
        ok(&trace_eth(
            d.path().to_str().unwrap(),
            case.to_str().unwrap(),
            &[
                "--seed",
                seed,
                "--direction",
                direction,
                "--policy",
                "haircut,fifo,lifo",
                "--stop-at",
                "none",
            ],
        ));
        let mut by: std::collections::BTreeMap<(String, String, String), u128> = Default::default();
        for e in read_parquet_file(&case.join("ends.parquet")) {
            *by.entry((
                e["policy"].str().to_string(),
                e["kind"].str().to_string(),
                e["address"].str().to_string(),
            ))
            .or_default() += e["amount"].str().parse::<u128>().unwrap();
        }
        by
    };
    let k = |p: &str, kind: &str, a: &str| (p.to_string(), kind.to_string(), a.to_string());
    let eth = 1_000_000_000_000_000_000u128;
    // Forward from the seed transaction's 1 ETH. B holds 2 ETH, half of it tainted:
    // - haircut: the fee carries half of it (rounded half up), the 0.5 ETH half of 0.5 ETH
    //   (the tainted share stays one half exactly), B keeps the rest;
    // - FIFO: the seed's ETH arrived first, so the fee and the 0.5 ETH are all tainted;
    // - LIFO: the withdrawal arrived last, so the fee and the 0.5 ETH are all clean.
    let f = trace("fwd", &seed, "forward");
    let fee_half = fee.div_ceil(2);
    assert_eq!(f[&k("haircut", "holding", C)], eth / 4, "{f:?}");
    assert_eq!(
        f[&k("haircut", "holding", B)],
        eth - fee_half - eth / 4,
        "{f:?}"
    );
    assert_eq!(f[&k("fifo", "holding", C)], eth / 2, "{f:?}");
    assert_eq!(f[&k("fifo", "holding", B)], eth / 2 - fee, "{f:?}");
    assert_eq!(f[&k("lifo", "holding", B)], eth, "{f:?}");
    assert!(!f.contains_key(&k("lifo", "holding", C)), "{f:?}");
    // Backward from C (its 0.5 ETH): FIFO finds the seed's ETH, from A; LIFO finds the
    // withdrawal, issued by the protocol ("mined"), not an account's balance.
    let b = trace("back", C, "backward");
    assert_eq!(b[&k("fifo", "holding", A)], eth / 2, "{b:?}");
    assert_eq!(
        b[&k("lifo", "mined", "(validator withdrawals)")],
        eth / 2,
        "{b:?}"
    );
    // Without an exit, the report's one sentence says who holds it (forward) and where it
    // came from (backward), in account words.
    let headline = |name: &str| -> String {
        let o = run(&["--json", "report", d.path().join(name).to_str().unwrap()]);
        ok(&o);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["headline"].as_str().unwrap().to_string()
    };
    let h = headline("fwd");
    assert!(
        h.contains("still held in accounts") && h.contains("Largest holdings:") && h.contains(B),
        "{h}"
    );
    let h = headline("back");
    assert!(
        h.contains("Largest sources:") && !h.contains("unspent"),
        "{h}"
    );
    // Haircut shares the 0.5 ETH among B's receipts newest first, each by its part of the
    // balance right after it arrived: the withdrawal was 1 of the 2 ETH B then held (half
    // of 0.5 ETH); A's 1 ETH was all B held when it arrived (the other half).
    assert_eq!(b[&k("haircut", "holding", A)], eth / 4, "{b:?}");
    assert_eq!(
        b[&k("haircut", "mined", "(validator withdrawals)")],
        eth / 4,
        "{b:?}"
    );
}

/// Adds one validator withdrawal of `wei` to `address` at `block` to the dataset's
/// `withdrawals` table (the part that holds `block`).
fn add_withdrawal(chain_dir: &std::path::Path, block: u64, address: &str, wei: u128) {
    use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
    use chaintrace::tables::Table;
    use parquet::arrow::ArrowWriter;
    let parts: Vec<PathBuf> = std::fs::read_dir(chain_dir.join("transactions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(parts.len(), 1, "one part: {parts:?}");
    let name = parts[0].file_name().unwrap();
    let schema = chaintrace::tables::eth_withdrawals::Withdrawals::schema();
    let columns: Vec<ArrayRef> = vec![
        std::sync::Arc::new(UInt64Array::from(vec![block])),
        std::sync::Arc::new(UInt64Array::from(vec![7u64])),
        std::sync::Arc::new(UInt64Array::from(vec![424_242u64])),
        std::sync::Arc::new(StringArray::from(vec![address])),
        std::sync::Arc::new(StringArray::from(vec![wei.to_string()])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    std::fs::create_dir_all(chain_dir.join("withdrawals")).unwrap();
    let path = chain_dir.join("withdrawals").join(name);
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// keccak256 of `data`.
fn keccak(data: &[u8]) -> [u8; 32] {
    use tiny_keccak::{Hasher, Keccak};
    let mut k = Keccak::v256();
    k.update(data);
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    out
}

/// An EIP-7702 authorization (chain id, delegate address, nonce) signed with the 32-byte
/// hex key `key`, as eth_sendTransaction's `authorizationList` takes it: the signature is
/// over keccak256(0x05 || rlp([chain_id, address, nonce])).
fn authorization(chain_id: u64, address: &str, nonce: u64, key: &str) -> Value {
    // RLP of a small unsigned integer and of 20 bytes (enough for these values).
    let uint = |v: u64| -> Vec<u8> {
        let b: Vec<u8> = v
            .to_be_bytes()
            .into_iter()
            .skip_while(|x| *x == 0)
            .collect();
        match b.as_slice() {
            [] => vec![0x80],
            [x] if *x < 0x80 => b.clone(),
            _ => [vec![0x80 + u8::try_from(b.len()).unwrap()], b.clone()].concat(),
        }
    };
    let addr: Vec<u8> = (0..20)
        .map(|i| u8::from_str_radix(&address[2 + 2 * i..4 + 2 * i], 16).unwrap())
        .collect();
    let payload = [uint(chain_id), [vec![0x94], addr].concat(), uint(nonce)].concat();
    assert!(payload.len() < 56);
    let msg = [
        vec![0x05, 0xc0 + u8::try_from(payload.len()).unwrap()],
        payload,
    ]
    .concat();
    let secp = secp256k1::Secp256k1::new();
    let sk = secp256k1::SecretKey::from_slice(
        &(0..32)
            .map(|i| u8::from_str_radix(&key[2 + 2 * i..4 + 2 * i], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let sig = secp.sign_ecdsa_recoverable(&secp256k1::Message::from_digest(keccak(&msg)), &sk);
    let (id, rs) = sig.serialize_compact();
    let hex = |b: &[u8]| {
        format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )
    };
    json!({
        "chainId": format!("{chain_id:#x}"),
        "address": address,
        "nonce": format!("{nonce:#x}"),
        "yParity": format!("{:#x}", id.to_i32()),
        "r": hex(&rs[..32]),
        "s": hex(&rs[32..]),
    })
}

#[test]
fn a_type_4_delegation_moves_value_and_every_balance_still_reconciles() {
    // EIP-7702: account #5 (anvil's well-known dev key) delegates its code to a forwarder
    // contract; A then pays #5 1 ETH in a type-4 transaction carrying that authorization,
    // and #5, now running the forwarder's code, passes the ETH on to C by an internal call.
    const KEY5: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
    const ACC5: &str = "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc";
    let node = Anvil::start();
    let t = node.send(json!({"from": A, "data": deployable(
        &format!("600060006000600034 73{} 5af15000", &C[2..]).replace(' ', "")
    )}));
    let fwd = node.receipt(&t)["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = authorization(31337, &fwd, 0, KEY5);
    let tx = node.send(json!({
        "from": A, "to": ACC5, "value": "0xde0b6b3a7640000", "gas": "0x30000",
        "authorizationList": [auth],
    }));
    assert_eq!(node.receipt(&tx)["status"], "0x1");
    assert_eq!(node.receipt(&tx)["type"], "0x4", "a type-4 transaction");
    let d = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, d.path(), &[]));
    let txs = read_table(&d.path().join("ethereum"), "transactions");
    assert!(
        txs.iter()
            .any(|r| r["hash"].str() == tx && r["type"].int() == 4)
    );
    let internal = read_table(&d.path().join("ethereum"), "internal_transfers");
    assert!(
        internal.iter().any(|r| r["tx_hash"].str() == tx
            && r["from"].str() == ACC5
            && r["to"].str() == C
            && r["value"].str() == "1000000000000000000"),
        "{internal:?}"
    );
    let o = run(&[
        "--json",
        "check",
        "ethereum",
        "--rpc",
        &node.url(),
        "--data",
        d.path().to_str().unwrap(),
    ]);
    ok(&o);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["differences"], json!([]), "{r}");
    assert_eq!(r["matched"], r["accounts"], "{r}");
}

#[test]
fn a_backward_trace_through_a_selfdestruct_finds_who_funded_the_contract() {
    // B pays 0.3 ETH into a contract that self-destructs to D in the same transaction; D
    // then pays E 0.3 ETH (and its fee f). Backward from E, the 0.3 ETH goes back D <-
    // contract (the SELFDESTRUCT) <- B, except what each model takes from D's own opening
    // balance (f, the least that explains D's sends): FIFO none (D's fee came first from
    // it), LIFO f (the fee took the newest wei, the 0.3 ETH), haircut the share of f in
    // the 0.3 ETH + f D held.
    let node = Anvil::start();
    let acc = node.accounts();
    let (d_acc, e_acc) = (&acc[6], &acc[7]);
    let sd = node.receipt(
        &node.send(json!({"from": A, "data": deployable(&format!("73{}ff", &d_acc[2..]))})),
    )["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let fund =
        node.send(json!({"from": B, "to": sd, "value": "0x429d069189e0000", "gas": "0x30000"}));
    let pay = node.send(json!({"from": d_acc, "to": e_acc, "value": "0x429d069189e0000"}));
    node.receipt(&pay);
    let d = tempfile::tempdir().unwrap();
    ok(&ingest_eth(&node, d.path(), &[]));
    let case = d.path().join("case");
    ok(&trace_eth(
        d.path().to_str().unwrap(),
        case.to_str().unwrap(),
        &[
            "--seed",
            e_acc,
            "--direction",
            "backward",
            "--policy",
            "haircut,fifo,lifo",
            "--stop-at",
            "none",
        ],
    ));
    let want = 300_000_000_000_000_000u128;
    let r = node.receipt(&pay);
    let q = |k: &str| {
        u128::from_str_radix(r[k].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    let f = q("gasUsed") * q("effectiveGasPrice");
    let half_up = |n: u128, d: u128| n / d + u128::from(n % d >= d - n % d);
    let from_b = |p: &str| match p {
        "fifo" => want,
        "lifo" => want - f,
        _ => half_up(want * want, want + f),
    };
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    for r in t["results"].as_array().unwrap() {
        let p = r["policy"].as_str().unwrap();
        let ends = r["ends"].as_array().unwrap();
        let e = ends
            .iter()
            .find(|e| e["address"] == B)
            .expect("an end at B");
        assert_eq!(e["amount"].to_string(), from_b(p).to_string(), "{p}");
        let at_d: u128 = ends
            .iter()
            .filter(|e| e["address"] == d_acc.as_str())
            .map(|e| e["amount"].as_u64().map(u128::from).unwrap())
            .sum();
        assert_eq!(at_d, want - from_b(p), "{p}: {ends:?}");
        // Its path, from the end back to the seed: B's payment into the contract (the
        // SELFDESTRUCT moved it on in the same transaction), then D's payment to E.
        let path: Vec<&str> = e["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(path.first(), Some(&fund.as_str()), "{p}: {path:?}");
        assert_eq!(path.last(), Some(&pay.as_str()), "{p}: {path:?}");
    }
    let edges = read_parquet_file(&case.join("edges.parquet"));
    assert!(
        edges
            .iter()
            .any(|x| x["from"].str() == sd && x["to"].str() == d_acc.as_str()),
        "the SELFDESTRUCT's transfer is on the way back: {edges:?}"
    );
}
