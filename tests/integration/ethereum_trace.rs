//! `chaintrace trace --chain ethereum` on chains built here on anvil: an ERC-20 token traced
//! under haircut, FIFO and LIFO (amounts computed by hand), and ETH through an internal
//! transfer, a failed transaction and a reverted sub-call; then `chaintrace report` on the
//! result.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::ethereum_node::{A, Anvil, deployable, erc20_transfer, ingest_eth};
use crate::util::*;

fn label_exchange(data: &Path, address: &str) {
    import_labels(
        data,
        &format!("address,label,category,source\n{address},Exchange X,exchange,test\n"),
    );
}

/// The haircut edges of a case: (from, to, amount, hop).
fn haircut_edges(case: &Path) -> Vec<(String, String, String, i64)> {
    read_parquet_file(&case.join("edges.parquet"))
        .iter()
        .filter(|e| e["policy"].str() == "haircut")
        .map(|e| {
            (
                e["from"].str().to_string(),
                e["to"].str().to_string(),
                e["amount"].str().to_string(),
                e["hop"].int(),
            )
        })
        .collect()
}

/// `trace --chain ethereum --data DATA --out OUT --stop-at exchange ARGS...`.
fn trace_cmd<'a>(data: &'a Path, out: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "trace",
        "--chain",
        "ethereum",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--stop-at",
        "exchange",
    ];
    all.extend_from_slice(args);
    all
}

/// `trace_cmd` with `--json`: the summary per policy.
fn trace(data: &Path, out: &Path, args: &[&str]) -> Vec<Summary> {
    let mut all = vec!["--json"];
    all.extend(trace_cmd(data, out, args));
    let o = run(&all);
    ok(&o);
    // Typed, so that amounts beyond u64 stay exact (a serde_json Value would round them).
    serde_json::from_slice::<Vec<Summary>>(&o.stdout).unwrap()
}

/// One policy of `trace --json`.
#[derive(Debug, serde::Deserialize)]
struct Summary {
    policy: String,
    totals: chaintrace::trace::Totals,
    exposure_entity: std::collections::BTreeMap<String, u128>,
}

fn totals(v: &Summary) -> [u128; 5] {
    let t = &v.totals;
    [t.seeded, t.exits, t.fees, t.holdings, t.returned_to_seeds]
}

#[test]
fn token_trace_haircut_fifo_lifo_match_hand_computation_and_report() {
    let node = Anvil::start();
    let acc = node.accounts();
    let (seed, hub, exchange, other, funder) = (&acc[1], &acc[2], &acc[3], &acc[4], &acc[5]);
    let bin = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/Token.bin"),
    )
    .unwrap();
    let supply: u128 = 10u128.pow(30);
    let deploy = node.send(json!({"from": A, "data": format!("0x{}{supply:064x}", bin.trim())}));
    let token = node.receipt(&deploy)["contractAddress"]
        .as_str()
        .unwrap()
        .to_string();
    // The token has 6 decimals; the unit is 10^12 tokens so that every figure passes u64
    // (as wei amounts do past 18.4 ETH) and must stay exact through JSON, Parquet and HTML.
    let u = 10u128.pow(18);
    let pay = |from: &str, to: &str, amount: u128| {
        node.send(json!({"from": from, "to": token, "data": erc20_transfer(to, amount)}))
    };
    // The funder's clean 600 reach the hub before the seed's 300; the hub then pays 450 to
    // the exchange and 450 to another account.
    pay(A, funder, 1000 * u);
    pay(A, seed, 400 * u);
    pay(funder, hub, 600 * u);
    pay(seed, hub, 300 * u);
    let to_exchange = pay(hub, exchange, 450 * u);
    let last = pay(hub, other, 450 * u);
    assert_eq!(node.receipt(&last)["status"], "0x1");
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &["--traces", "none"]));
    label_exchange(&data, exchange);
    let case = d.path().join("case");
    let args = [
        "--seed",
        seed,
        "--token",
        &token,
        "--token-decimals",
        "6",
        "--token-symbol",
        "TUSD",
        "--policy",
        "haircut,fifo,lifo",
    ];
    let r = trace(&data, &case, &args);
    let by: std::collections::BTreeMap<&str, [u128; 5]> =
        r.iter().map(|x| (x.policy.as_str(), totals(x))).collect();
    // Seeded: the 400 the seed received. It keeps 100.
    // Haircut: the hub holds 900, 300 tainted; 450 out carry 450·300/900 = 150 each.
    assert_eq!(by["haircut"], [400 * u, 150 * u, 0, 250 * u, 0]);
    // FIFO: the funder's 600 are older: the exchange gets 450 clean; other gets 150 clean
    // then the 300 tainted.
    assert_eq!(by["fifo"], [400 * u, 0, 0, 400 * u, 0]);
    // LIFO: the seed's 300 are newest: all go to the exchange.
    assert_eq!(by["lifo"], [400 * u, 300 * u, 0, 100 * u, 0]);
    let haircut = r.iter().find(|x| x.policy == "haircut").unwrap();
    assert_eq!(haircut.exposure_entity["Exchange X"], 150 * u);
    // The edges, exact, in Decimal128 base units.
    let e = |a: &str, b: &str, v: &str, h| (a.to_string(), b.to_string(), v.to_string(), h);
    assert_eq!(
        haircut_edges(&case),
        vec![
            e(seed, hub, &(300 * u).to_string(), 1),
            e(hub, exchange, &(150 * u).to_string(), 2),
            e(hub, other, &(150 * u).to_string(), 2),
        ]
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    assert_eq!(doc["chain"], "ethereum");
    assert_eq!(doc["asset"]["contract"], token.as_str());
    assert_eq!(doc["asset"]["decimals"], 6);
    assert_eq!(doc["node_labels"][exchange]["category"], "exchange");
    // The exit's path: seed -> hub, hub -> exchange.
    let exit = doc["results"][0]["ends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "exit")
        .unwrap()
        .clone();
    assert_eq!(exit["path"].as_array().unwrap().len(), 2);
    // The report reads it unchanged, in the token's unit with its decimals.
    let o = run(&["report", case.to_str().unwrap(), "--timestamp", "0"]);
    ok(&o);
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(
        html.contains(&format!("{}.000000 TUSD", 150 * u / 1_000_000)),
        "the haircut exit, exactly"
    );
    assert!(html.contains(&format!("TUSD ({token}; 6 decimals)")));
    // Account-model words, not UTXO ones.
    assert!(html.contains("held (still in an account)") && html.contains("the sending account"));
    assert!(!html.contains("output (txid:vout)") && !html.contains("held (unspent)"));
    let csv = std::fs::read_to_string(case.join("report/edges.csv")).unwrap();
    assert!(
        csv.contains(&format!("{}.000000", 300 * u / 1_000_000)),
        "{csv}"
    );
    // polars and DuckDB read the Decimal128 amounts exactly (600·10^18 passes i64).
    let script = format!(
        r#"
import polars as pl, duckdb
e = "{}"
p = pl.read_parquet(e).filter(pl.col("policy") == "haircut").select(pl.col("amount").sum()).item()
d = duckdb.sql(f"select sum(amount) from '{{e}}' where policy = 'haircut'").fetchall()[0][0]
print(p, d)
"#,
        case.join("edges.parquet").display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = (600 * u).to_string();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec![want.as_str(), want.as_str()]
    );
    // Same inputs, same bytes.
    let again = d.path().join("again");
    trace(&data, &again, &args);
    let strip = |p: &Path| {
        let mut v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["command"] = Value::Null;
        v
    };
    assert_eq!(
        strip(&case.join("trace.json")),
        strip(&again.join("trace.json"))
    );
    assert_eq!(
        std::fs::read(case.join("edges.parquet")).unwrap(),
        std::fs::read(again.join("edges.parquet")).unwrap()
    );
    // A trace that must fail with exit 1.
    let refused = |seed: &str, extra: &[&str]| {
        let mut args = trace_cmd(&data, &case, &["--seed", seed, "--token", &token]);
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        o
    };
    // Traces read the dataset one part at a time: two-block parts give the same case, forward
    // and backward, byte for byte (trace.json but for its command line and data path).
    let small = d.path().join("small");
    ok(&ingest_eth(
        &node,
        &small,
        &["--traces", "none", "--part-blocks", "2"],
    ));
    label_exchange(&small, exchange);
    for dir in ["forward", "backward"] {
        let (one, many) = (
            d.path().join(format!("one-{dir}")),
            d.path().join(format!("many-{dir}")),
        );
        let mut w = args.to_vec();
        w.extend(["--direction", dir]);
        trace(&data, &one, &w);
        trace(&small, &many, &w);
        for f in ["edges.parquet", "ends.parquet"] {
            assert_eq!(
                std::fs::read(one.join(f)).unwrap(),
                std::fs::read(many.join(f)).unwrap(),
                "{dir} {f}"
            );
        }
        let results = |p: &Path| {
            let v: Value =
                serde_json::from_slice(&std::fs::read(p.join("trace.json")).unwrap()).unwrap();
            (v["results"].to_string(), v["nodes"].to_string())
        };
        assert_eq!(results(&one), results(&many), "{dir}");
    }
    // A window that ends before the hub pays other: the rest stays at the hub.
    let block = node.receipt(&to_exchange)["blockNumber"]
        .as_str()
        .map(|h| u64::from_str_radix(&h[2..], 16).unwrap())
        .unwrap()
        .to_string();
    let early = d.path().join("early");
    let mut w = args.to_vec();
    w.extend(["--policy", "haircut", "--to-height", &block]);
    let r = trace(&data, &early, &w);
    assert_eq!(totals(&r[0]), [400 * u, 150 * u, 0, 250 * u, 0]);
    // Read as the report reads it: typed, exact.
    let doc = chaintrace::report::case::Case::load(&early).unwrap();
    let held: Vec<(&str, u128)> = doc.results[0]
        .ends
        .iter()
        .filter(|e| e.kind == "holding")
        .map(|e| (e.address.as_str(), e.amount))
        .collect();
    assert_eq!(
        held,
        vec![(seed.as_str(), 100 * u), (hub.as_str(), 150 * u)]
    );
    // TIHO does not apply to accounts: said so, exit 1.
    let o = refused(seed, &["--policy", "tiho"]);
    assert!(
        stderr(&o).contains("tiho (taint in, highest out)"),
        "{}",
        stderr(&o)
    );
    // Backward from other: where its 450 came from. FIFO: the funder's last 150 and the
    // seed's 300 (the exact inverse of the forward replay); haircut: the hub held 900 when
    // the seed's 300 arrived, 450 bound for other, so 150 from the seed and 300 from the
    // funder. Both were funded by the deployer, whose tokens were minted: all 450 "mined".
    let back = d.path().join("back");
    let r = trace(
        &data,
        &back,
        &[
            "--seed",
            other,
            "--token",
            &token,
            "--direction",
            "backward",
            "--policy",
            "haircut,fifo",
        ],
    );
    for x in &r {
        assert_eq!(
            (x.totals.seeded, x.totals.mined),
            (450 * u, 450 * u),
            "{x:?}"
        );
    }
    let hc = haircut_edges(&back);
    assert!(
        hc.contains(&e(seed, hub, &(150 * u).to_string(), 2)),
        "{hc:?}"
    );
    assert!(
        hc.contains(&e(funder, hub, &(300 * u).to_string(), 2)),
        "{hc:?}"
    );
    assert!(
        hc.contains(&e(hub, other, &(450 * u).to_string(), 1)),
        "{hc:?}"
    );
    ok(&run(&[
        "report",
        back.to_str().unwrap(),
        "--timestamp",
        "0",
    ]));
    let html = std::fs::read_to_string(back.join("report/report.html")).unwrap();
    assert!(html.contains("backward"), "the report states the direction");
    // The Sankey counts the minted 450 once, as mined (the token has no decimals given:
    // raw units, every digit), and nothing as held.
    let sankey = std::fs::read_to_string(back.join("report/sankey.svg")).unwrap();
    assert!(sankey.contains(&format!("mined · {}", 450 * u)), "{sankey}");
    assert!(!sankey.contains("before the window"), "{sankey}");
    // An account that never held the token is named.
    let o = refused(&acc[9], &[]);
    assert!(stderr(&o).contains(&acc[9]), "{}", stderr(&o));
}

/// CALL(gas, target, callvalue, 0, 0, 0, 0); POP; then `tail`.
fn call_with_value(target: &str, tail: &str) -> String {
    format!("600060006000600034 73{} 5af150{tail}", &target[2..]).replace(' ', "")
}

fn fee(node: &Anvil, tx: &str) -> u128 {
    let r = node.receipt(tx);
    let h = |v: &Value| u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16);
    h(&r["gasUsed"]).unwrap() * h(&r["effectiveGasPrice"]).unwrap()
}

#[test]
fn eth_trace_follows_internal_transfers_and_skips_failed_and_reverted_value() {
    let node = Anvil::start();
    let acc = node.accounts();
    let (seed, exchange, other) = (&acc[1], &acc[3], &acc[4]);
    let created = |code: String| {
        let t = node.send(json!({"from": A, "data": deployable(&code)}));
        node.receipt(&t)["contractAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // fwd passes what it gets to the exchange; p calls fwd with the value, then reverts;
    // q calls p and carries on (so q's transaction succeeds, p's sub-calls are undone);
    // r always reverts.
    let fwd = created(call_with_value(exchange, "00"));
    let p = created(call_with_value(&fwd, "60006000fd"));
    let q = created(call_with_value(&p, "00"));
    let rev = created("60006000fd".into());
    let eth = 10u128.pow(18);
    let send = |to: &str, wei: u128, gas: Option<&str>| {
        let mut tx = json!({"from": seed, "to": to, "value": format!("{wei:#x}")});
        if let Some(g) = gas {
            tx["gas"] = json!(g);
        }
        node.send(tx)
    };
    let t1 = send(&fwd, eth, None);
    let t2 = send(&rev, 5 * eth, Some("0x20000"));
    let t3 = send(&q, eth / 4, Some("0x100000"));
    let t4 = send(other, 2 * eth, None);
    // To itself: moves nothing (its fee is paid).
    let t5 = send(seed, eth / 2, None);
    assert_eq!(node.receipt(&t2)["status"], "0x0");
    assert_eq!(node.receipt(&t3)["status"], "0x1");
    let fees: u128 = [&t1, &t2, &t3, &t4, &t5]
        .iter()
        .map(|t| fee(&node, t))
        .sum();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &["--traces", "geth"]));
    // The reverted sub-calls were ingested with status 0 (p's own frame has the error, the
    // frames inside it succeeded themselves but were undone with it).
    let internal = read_table(&data.join("ethereum"), "internal_transfers");
    let of_t3: Vec<(&str, i64, Option<&str>)> = internal
        .iter()
        .filter(|x| x["tx_hash"].str() == t3)
        .map(|x| (x["to"].str(), x["status"].int(), x["error"].opt_str()))
        .collect();
    assert_eq!(of_t3.len(), 3, "{of_t3:?}");
    assert_eq!((of_t3[0].0, of_t3[0].1), (p.as_str(), 0));
    assert!(of_t3[0].2.is_some());
    assert_eq!(of_t3[1], (fwd.as_str(), 0, None));
    assert_eq!(of_t3[2], (exchange.as_str(), 0, None));
    // trace_block (parity) gives the same internal transfers as geth's callTracer.
    let parity = d.path().join("parity");
    ok(&ingest_eth(&node, &parity, &["--traces", "parity"]));
    let key = |rows: &[Row]| -> Vec<Vec<Cell>> {
        rows.iter()
            .map(|x| {
                [
                    "tx_hash",
                    "trace_address",
                    "kind",
                    "call_type",
                    "from",
                    "to",
                    "value",
                    "status",
                ]
                .iter()
                .map(|k| x[*k].clone())
                .collect()
            })
            .collect()
    };
    assert_eq!(
        key(&read_table(&parity.join("ethereum"), "internal_transfers")),
        key(&internal)
    );
    label_exchange(&data, exchange);
    let case = d.path().join("case");
    let r = trace(&data, &case, &["--seed", seed, "--policy", "haircut,fifo"]);
    for x in &r {
        // The seed needed at least what it sent and paid: that is what is seeded. One ETH
        // reached the exchange through fwd's internal transfer; the failed 5 ETH and q's
        // reverted sub-calls moved nothing; q keeps its 0.25 ETH, other its 2.
        assert_eq!(
            totals(x)[..4],
            [eth + eth / 4 + 2 * eth + fees, eth, fees, eth / 4 + 2 * eth],
            "{x:?}"
        );
    }
    let hops = haircut_edges(&case);
    let one = eth.to_string();
    assert!(hops.contains(&(seed.clone(), fwd.clone(), one.clone(), 1)));
    assert!(hops.contains(&(fwd.clone(), exchange.clone(), one, 2)));
    assert!(!hops.iter().any(|h| h.1 == p || h.1 == rev), "{hops:?}");
    assert!(
        !hops.iter().any(|h| h.0 == h.1),
        "no transfer to oneself: {hops:?}"
    );
    // A seed transaction taints only what it moved: t4's 2 ETH, held by other.
    let case2 = d.path().join("case2");
    let r = trace(&data, &case2, &["--seed", &t4, "--policy", "all"]);
    // "all" on accounts: the four models that apply, each holding exactly t4's 2 ETH.
    assert_eq!(
        r.iter().map(|x| x.policy.as_str()).collect::<Vec<_>>(),
        ["poison", "haircut", "fifo", "lifo"]
    );
    for x in &r {
        assert_eq!(totals(x), [2 * eth, 0, 0, 2 * eth, 0], "{x:?}");
    }
    ok(&run(&[
        "report",
        case.to_str().unwrap(),
        "--timestamp",
        "0",
        "--path",
        "E1",
    ]));
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(
        html.contains("1.000000000000000000 ETH"),
        "exact wei in ETH"
    );
    // The exit's path: t1 moved 1 ETH seed -> fwd, then (an internal call of the same
    // transaction) 1 ETH fwd -> exchange. Its last step is the transfer to the exchange
    // alone, not both transfers of t1 summed and named by the first recipient.
    let last_step = format!("1.000000000000000000 ETH to {exchange}");
    assert!(
        html.contains(&last_step),
        "path names the exit's own transfer"
    );
    assert!(
        !html.contains("2.000000000000000000 ETH to"),
        "no summed transfers"
    );
    assert!(html.contains("transfer 2:"), "account steps are transfers");
    // The case names the dataset's manifest where it is (DATA/ethereum/), so a defence
    // expert's `case verify` finds it and replays the trace to the same bytes.
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.join("trace.json")).unwrap()).unwrap();
    assert!(
        t["inputs"].get("ethereum/_manifest.json").is_some(),
        "{}",
        t["inputs"]
    );
    let v = run(&[
        "case",
        "verify",
        case.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    // Poison counts transfers, not "outputs" of which every transfer is number 0.
    let o = run(&trace_cmd(
        &data,
        &d.path().join("case3"),
        &["--seed", seed, "--policy", "poison"],
    ));
    ok(&o);
    let p = stdout(&o);
    let edges = read_parquet_file(&d.path().join("case3/edges.parquet"));
    assert!(
        p.contains(&format!("transfers touched: {} worth", edges.len())),
        "{p} {edges:?}"
    );
    // The Ethereum notebook runs on this dataset and case (its last cell checks that the
    // Parquet holdings equal trace.json's, exactly).
    execute_notebook(
        "ethereum_tour.ipynb",
        &[
            ("CHAINTRACE_DATA", data.as_path()),
            ("CHAINTRACE_CASE", case.as_path()),
        ],
    );
}

/// `tainted × v ÷ held`, rounded half up: the haircut share, computed here by hand.
fn share(tainted: u128, v: u128, held: u128) -> u128 {
    let (q, r) = (tainted * v / held, tainted * v % held);
    q + u128::from(r >= held - r)
}

#[test]
fn opening_balances_from_the_node_dilute_haircut_as_the_real_balance_does() {
    // The hub is a dev account with 10,000 ETH from genesis (block 0, no transfer the
    // dataset shows). It receives the seed transaction's 1 ETH, then pays 2 ETH on.
    let node = Anvil::start();
    let acc = node.accounts();
    let (payer, hub, to) = (&acc[1], &acc[2], &acc[4]);
    let eth = 10u128.pow(18);
    let seed = node.send(json!({"from": payer, "to": hub, "value": format!("{eth:#x}")}));
    let out = node.send(json!({"from": hub, "to": to, "value": format!("{:#x}", 2 * eth)}));
    let f = fee(&node, &out);
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &[]));
    label_exchange(&data, to);
    let haircut_to = |case: &Path| -> u128 {
        read_parquet_file(&case.join("ends.parquet"))
            .iter()
            .filter(|e| e["policy"].str() == "haircut" && e["address"].str() == to.as_str())
            .map(|e| e["amount"].str().parse::<u128>().unwrap())
            .sum()
    };
    // Without the node: the hub's opening balance is the least that explains what it sent
    // (2 ETH + fee - 1 ETH), so it held 2 ETH + fee, half tainted, when it paid.
    let least = d.path().join("least");
    trace(&data, &least, &["--seed", &seed, "--policy", "haircut"]);
    let (held, t) = (2 * eth + f, eth);
    let t_after_fee = t - share(t, f, held);
    assert_eq!(haircut_to(&least), share(t_after_fee, 2 * eth, held - f));
    // With the node's balances (at block 0: the genesis allocation), the hub held
    // 10,001 ETH: the 2 ETH carry 2/10,001 of the taint.
    let real = d.path().join("real");
    let url = node.url();
    trace(
        &data,
        &real,
        &[
            "--seed",
            &seed,
            "--policy",
            "haircut",
            "--opening-balances",
            &url,
        ],
    );
    let held = 10_001 * eth;
    let t_after_fee = t - share(t, f, held);
    let want = share(t_after_fee, 2 * eth, held - f);
    assert_eq!(haircut_to(&real), want);
    assert!(want < eth / 1000, "diluted: {want}");
    // The case says where the opening balances came from.
    let doc: Value =
        serde_json::from_slice(&std::fs::read(real.join("trace.json")).unwrap()).unwrap();
    let ob = &doc["parameters"]["opening_balances"];
    assert_eq!(ob["source"], "eth_getBalance", "{ob}");
    assert_eq!(ob["at_block"], 0, "{ob}");
    assert_eq!(
        ob["accounts_sending_more_than_the_node_says_they_held"], 0,
        "{ob}"
    );
    // The one-sentence answer names the one exchange reached, and the seed as what it is.
    let o = run(&["--json", "report", real.to_str().unwrap()]);
    ok(&o);
    let h: Value = serde_json::from_slice(&o.stdout).unwrap();
    let h = h["headline"].as_str().unwrap();
    assert!(h.contains("reached 1 exchange (Exchange X)"), "{h}");
    assert!(h.contains("1 seed transaction"), "{h}");
    let html = std::fs::read_to_string(real.join("report/report.html")).unwrap();
    assert!(html.contains("the node's own balance at the block before the dataset's first"));
    assert!(!html.contains("the least that explains what the account sent"));
    // A transaction seed is said as one, and no Bitcoin words describe it (a third trial).
    assert!(h.contains("that 1 seed transaction moved"), "{h}");
    assert!(html.contains("Accounts holding the seeded value"));
    for bitcoin_word in [
        "seed output",
        "outputs touched",
        "enters a detected CoinJoin",
    ] {
        assert!(!html.contains(bitcoin_word), "{bitcoin_word}");
    }
    // The node's answers are kept in the dataset and listed among the case's inputs, so a
    // defence expert replays the case offline (`case verify` uses them, not the node).
    let kept: Value = serde_json::from_slice(
        &std::fs::read(data.join("ethereum/opening_balances.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        kept["balances"][hub.as_str()],
        (10_000 * eth).to_string(),
        "{kept}"
    );
    assert!(
        doc["inputs"]
            .get("ethereum/opening_balances.json")
            .is_some()
    );
    drop(node);
    let v = run(&[
        "case",
        "verify",
        real.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).contains("reproduces"), "{}", stdout(&v));
    // A node on another chain: refused.
    let other = Anvil::start();
    other.call("anvil_mine", json!(["0x5"]));
    let o = run(&trace_cmd(
        &data,
        &d.path().join("x"),
        &["--seed", &seed, "--opening-balances", &other.url()],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not follow the dataset's chain"),
        "{}",
        stderr(&o)
    );
}
