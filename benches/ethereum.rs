//! Ethereum ingest benchmark: `cargo bench --bench ethereum` (needs anvil, see README, and
//! `pip install cryo==0.3.2` for the side-by-side run).
//!
//! Starts anvil, fills it with `CHAINTRACE_BENCH_ETH_TXS` ETH transfers (default 3,000, 50 per
//! block) and a tenth as many calls of a contract that emits ERC-1155 `TransferSingle`
//! events, then times, on the same node and block range, `chaintrace ingest ethereum`
//! (release binary, child process: blocks, transactions with receipts, token transfers;
//! with and without call traces; rows/s per table from the manifest) and cryo (`blocks`,
//! `transactions`, `logs`), and the balance reconciliation (`check ethereum`) in
//! accounts/s. anvil is a post-merge dev chain: it makes no withdrawals and no block
//! rewards, so those tables' rows/s cannot be measured here (their decoding is tested on
//! recorded mainnet blocks).

#[path = "../tests/support/anvil.rs"]
mod anvil;
mod common;

use std::process::Command;
use std::time::Instant;

use serde_json::json;

use anvil::Anvil;

fn main() {
    let n: u64 = std::env::var("CHAINTRACE_BENCH_ETH_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let node = Anvil::start();
    let acc = node.accounts();
    node.call("evm_setAutomine", json!([false]));
    let t = Instant::now();
    for i in 0..n {
        let (from, to) = (&acc[(i % 10) as usize], &acc[((i * 7 + 3) % 10) as usize]);
        node.call(
            "eth_sendTransaction",
            json!([{"from": from, "to": to, "value": format!("{:#x}", 1_000_000 + i)}]),
        );
        if (i + 1) % 50 == 0 {
            node.call("evm_mine", json!([]));
        }
    }
    node.call("evm_mine", json!([]));
    // ERC-1155: a contract whose every call emits TransferSingle(operator = caller, from =
    // 0, to = caller, id 1, value 5).
    node.call("evm_setAutomine", json!([true]));
    let topic = "c3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62";
    let runtime = format!("600160005260056020523360003 37f{topic}60406000a400").replace(' ', "");
    let init = format!("0x60{:02x}80600b6000396000f3{runtime}", runtime.len() / 2);
    let h = node.send(json!({"from": acc[0], "data": init}));
    let erc1155 = node.receipt(&h)["contractAddress"]
        .as_str()
        .expect("deployed")
        .to_string();
    node.call("evm_setAutomine", json!([false]));
    for i in 0..n / 10 {
        node.call(
            "eth_sendTransaction",
            json!([{"from": acc[(i % 10) as usize], "to": erc1155, "gas": "0x20000"}]),
        );
        if (i + 1) % 50 == 0 {
            node.call("evm_mine", json!([]));
        }
    }
    node.call("evm_mine", json!([]));
    let tip = u64::from_str_radix(
        node.call("eth_blockNumber", json!([]))
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    eprintln!(
        "{n} transactions in {tip} blocks made in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let url = node.url();
    println!(
        "{:<34} {:>8} {:>10} {:>10} {:>9}",
        "tool", "seconds", "blocks/s", "tx/s", "peak MiB"
    );
    let row = |name: &str, (s, m, _): (f64, f64, String)| {
        println!(
            "{name:<34} {s:>8.2} {:>10.0} {:>10.0} {m:>9.1}",
            (tip + 1) as f64 / s,
            n as f64 / s
        );
    };
    let mut kept = Vec::new();
    for traces in ["none", "geth", "parity"] {
        let d = tempfile::tempdir().unwrap();
        let r = common::timed(
            Command::new("/usr/bin/time")
                .arg("-v")
                .arg(env!("CARGO_BIN_EXE_chaintrace"))
                .args([
                    "--quiet",
                    "ingest",
                    "ethereum",
                    "--rpc",
                    &url,
                    "--concurrency",
                    "8",
                    "--traces",
                    traces,
                    "--data",
                ])
                .arg(d.path()),
        );
        let secs = r.0;
        row(&format!("chaintrace (--traces {traces})"), r);
        // Rows per table, from the manifest the ingest wrote.
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.path().join("ethereum/_manifest.json")).expect("manifest"),
        )
        .expect("manifest is JSON");
        let mut rows: std::collections::BTreeMap<String, u64> = Default::default();
        for p in m["parts"].as_array().into_iter().flatten() {
            for (table, f) in p["files"].as_object().into_iter().flatten() {
                *rows.entry(table.clone()).or_default() += f["rows"].as_u64().unwrap_or(0);
            }
        }
        let per: Vec<String> = rows
            .iter()
            .map(|(t, r)| format!("{t} {r} ({:.0}/s)", *r as f64 / secs))
            .collect();
        println!("  rows: {}", per.join(", "));
        kept.push(d);
    }
    // The account-model trace over what was ingested (ETH, with internal transfers): the
    // busiest sender as the seed, four models.
    let d = &kept[1];
    let case = d.path().join("case");
    let r = common::timed(
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_chaintrace"))
            .args(["--quiet", "trace", "--chain", "ethereum", "--seed", &acc[0]])
            .args(["--policy", "poison,haircut,fifo,lifo", "--data"])
            .arg(d.path())
            .arg("--out")
            .arg(&case),
    );
    row("chaintrace trace (4 models, ETH)", r);
    // The balance reconciliation against the node (every account touched, both ends).
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_chaintrace"))
        .args(["--json", "check", "ethereum", "--rpc", &url, "--data"])
        .arg(kept[1].path())
        .output()
        .expect("check runs");
    let secs = t.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let accounts = v["accounts"].as_u64().unwrap_or(0);
    eprintln!(
        "check ethereum: {accounts} accounts ({} match) in {secs:.2} s: {:.0} accounts/s",
        v["matched"],
        accounts as f64 / secs
    );
    let d = tempfile::tempdir().unwrap();
    let script = format!(
        "import cryo; cryo.freeze(['blocks', 'transactions', 'logs'], rpc='{url}', blocks=['0:{}'], output_dir='{}', max_concurrent_requests=8, no_verbose=True)",
        tip + 1,
        d.path().display()
    );
    let r = common::timed(Command::new("/usr/bin/time").args(["-v", "python3", "-c", &script]));
    row("cryo 0.3.2 (blocks, txs, logs)", r);
}
