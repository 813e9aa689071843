//! `chaintrace stats` on a small simulated world: the aggregates equal the ground truth
//! computed here independently from the dataset and the simulator's truth tables; bad
//! arguments give clear errors; the notebooks run headless against the same world.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::util::*;

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn chain(&self) -> PathBuf {
        self.data().join("regtest")
    }
    fn truth(&self, t: &str) -> Vec<Row> {
        read_parquet_file(
            &self
                .dir
                .path()
                .join("world/truth")
                .join(format!("{t}.parquet")),
        )
    }
    /// The truth's addresses of `category`.
    fn addresses_of(&self, category: &str) -> BTreeSet<String> {
        self.truth("addresses")
            .into_iter()
            .filter(|r| r["category"].str() == category)
            .map(|r| r["address"].str().to_string())
            .collect()
    }
    fn stats(&self, args: &[&str]) -> std::process::Output {
        let mut v = vec!["--json", "stats"];
        v.extend_from_slice(&args[..1]);
        let (data, out) = (self.data(), self.dir.path().join("stats"));
        v.extend_from_slice(&[
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        v.extend_from_slice(&args[1..]);
        run(&v)
    }
}

/// A 20,000-transaction world (seed 11), ingested, with the truth's addresses imported as
/// labels: `category_of` maps a truth category to the label's (None: not imported).
fn world_labelled(category_of: impl Fn(&str) -> Option<&'static str>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let w = World { dir };
    let out = w.dir.path().join("world");
    ok(&run(&[
        "simulate",
        "--quiet",
        "--seed",
        "11",
        "--txs",
        "20000",
        "--out",
        out.to_str().unwrap(),
    ]));
    ok(&ingest(&out.join("blocks"), &w.data(), &[]));
    let mut csv = String::from("address,label,category,actor\n");
    for r in w.truth("addresses") {
        if let Some(cat) = category_of(r["category"].str()) {
            csv.push_str(&format!(
                "{},{},{cat},{}\n",
                r["address"].str(),
                r["entity"].str(),
                r["entity"].str()
            ));
        }
    }
    import_labels(&w.data(), &csv);
    w
}

/// The world with the truth's exchanges, mixer, vendor and ransomware crew as labels.
fn world() -> World {
    world_labelled(|c| match c {
        "exchange" => Some("exchange"),
        "mixer" => Some("mixer"),
        "illicit_vendor" => Some("illicit_vendor"),
        "ransomware" => Some("ransomware"),
        _ => None,
    })
}

/// The world with its vendor labelled child_sexual_abuse (need-to-know) beside exchanges.
fn world_with_need_to_know() -> World {
    world_labelled(|c| match c {
        "exchange" => Some("exchange"),
        "illicit_vendor" => Some("child_sexual_abuse"),
        _ => None,
    })
}

#[test]
fn need_to_know_categories_are_masked_unless_named_and_then_aggregated() {
    let w = world_with_need_to_know();
    let vendors: BTreeSet<String> = w
        .truth("addresses")
        .into_iter()
        .filter(|r| r["category"].str() == "illicit_vendor")
        .map(|r| r["entity"].str().to_string())
        .collect();
    // Not named: the exchanges' counterparties of that category read need_to_know.
    let v = json(&w.stats(&["flows", "--category", "exchange"]));
    let text = v.to_string();
    assert!(
        !text.contains("child_sexual_abuse"),
        "the category leaks: {text:.300}"
    );
    let dir = w.dir.path().join("stats/flows");
    for f in ["inflows.csv", "outflows.csv", "top_counterparties.csv"] {
        let t = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!t.contains("child_sexual_abuse"), "{f}");
        for e in &vendors {
            assert!(!t.contains(&format!(",{e},")), "{f} names {e}");
        }
    }
    assert!(
        text.contains("need_to_know"),
        "the vendor's payments to exchanges are counted, masked"
    );
    // Named: aggregates only, no cell under the minimum, no entity name, a warning.
    let o = w.stats(&["flows", "--category", "child_sexual_abuse"]);
    let v = json(&o);
    assert!(stderr(&o).contains("need-to-know"), "{}", stderr(&o));
    let rows = v["inflows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r["entity"], "child_sexual_abuse", "{r}");
        assert!(r["payments"].as_u64().unwrap() >= 10, "{r}");
    }
    let t = std::fs::read_to_string(dir.join("top_counterparties.csv")).unwrap();
    assert_eq!(t.lines().count(), 1, "only the header: {t}");
}

fn json(o: &std::process::Output) -> Value {
    ok(o);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn month(secs: i64) -> String {
    chaintrace::report::fmt::month(secs)
}

#[test]
fn vendor_revenue_per_month_equals_the_truth() {
    let w = world();
    // Truth: outputs of the customers' purchase transactions paid to the vendor's addresses.
    let purchases: HashSet<String> = w
        .truth("transactions")
        .into_iter()
        .filter(|r| r["kind"].str() == "purchase")
        .map(|r| r["txid"].str().to_string())
        .collect();
    let vendor = w.addresses_of("illicit_vendor");
    let time: BTreeMap<i64, i64> = read_table(&w.chain(), "blocks")
        .iter()
        .map(|r| (r["height"].int(), r["time"].int()))
        .collect();
    let mut truth: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for o in read_table(&w.chain(), "outputs") {
        if purchases.contains(o["txid"].str())
            && o["address"].opt_str().is_some_and(|a| vendor.contains(a))
        {
            let e = truth.entry(month(time[&o["height"].int()])).or_default();
            e.0 += o["value"].int();
            e.1 += 1;
        }
    }
    assert!(truth.values().map(|v| v.1).sum::<i64>() > 100, "{truth:?}");
    let v = json(&w.stats(&["flows", "--category", "illicit_vendor", "--by", "month"]));
    let mut got: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    // Customer payments come from unlabelled payers; the vendor's withdrawals from the
    // exchanges it deposited at come from exchange addresses and are kept apart.
    let from: BTreeSet<&str> = v["inflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["from_category"].as_str().unwrap())
        .collect();
    assert!(from.contains("unlabelled"), "{from:?}");
    for r in v["inflows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["from_category"] == "unlabelled")
    {
        assert_eq!(r["category"], "illicit_vendor");
        let e = got
            .entry(r["period"].as_str().unwrap().to_string())
            .or_default();
        e.0 += r["received"].as_i64().unwrap();
        e.1 += r["payments"].as_i64().unwrap();
        assert!(r["payers"].as_i64().unwrap() <= r["payments"].as_i64().unwrap());
    }
    assert_eq!(got, truth, "revenue and payments per month");
    // The files: CSV with exact integers, Parquet polars can read, charts.
    let dir = w.dir.path().join("stats/flows");
    for f in [
        "inflows.csv",
        "inflows.parquet",
        "outflows.csv",
        "outflows.parquet",
        "monthly_flows.svg",
        "monthly_flows.png",
        "payment_sizes.png",
        "top_counterparties.png",
    ] {
        assert!(dir.join(f).is_file(), "no {f}");
    }
    let csv = std::fs::read_to_string(dir.join("inflows.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "period",
            "entity",
            "category",
            "from_category",
            "received",
            "payments",
            "payers"
        ]
    );
    let (mut customers, mut all) = (0i64, 0i64);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let v: i64 = f[4].parse().unwrap();
        all += v;
        if f[3] == "unlabelled" {
            customers += v;
        }
    }
    assert_eq!(customers, truth.values().map(|v| v.0).sum::<i64>());
    // The entity view of the vendor agrees with all its receipts.
    let e = json(&w.stats(&["entity", "vendor"]));
    assert_eq!(e["summary"]["received_from_others"].as_i64().unwrap(), all);
    assert_eq!(
        e["summary"]["addresses"].as_u64().unwrap() as usize,
        vendor.len()
    );
}

#[test]
fn direct_exposure_of_exchanges_and_mixer_equals_the_true_flows() {
    let w = world();
    let flows = w.truth("flows");
    let truth = |cat: &str, paths: &[&str]| -> BTreeMap<String, i64> {
        let mut m = BTreeMap::new();
        for f in flows
            .iter()
            .filter(|f| f["to_category"].str() == cat && paths.contains(&f["path"].str()))
        {
            *m.entry(f["to_entity"].str().to_string()).or_default() += f["amount"].int();
        }
        m
    };
    let got = |v: &Value| -> BTreeMap<String, i64> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["illicit"].as_i64().unwrap() > 0)
            .map(|r| {
                (
                    r["entity"].as_str().unwrap().to_string(),
                    r["illicit"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    // The vendor pays exchanges straight from its peel chains; the ransomware crew cashes out
    // there from the addresses the mixer paid it back to.
    let v = json(&w.stats(&["exposure", "--category", "exchange"]));
    let want = truth("exchange", &["peel_chain", "peel_chain_end", "via_mixer"]);
    assert!(!want.is_empty());
    assert_eq!(got(&v), want);
    for r in v["rows"].as_array().unwrap() {
        let (i, f) = (
            r["illicit"].as_i64().unwrap(),
            r["inflow"].as_i64().unwrap(),
        );
        assert!(i <= f);
        assert_eq!(
            r["share_ppm"].as_i64().unwrap(),
            if f > 0 { i * 1_000_000 / f } else { 0 }
        );
    }
    // The ransomware crew pays the mixer.
    let v = json(&w.stats(&["exposure", "--category", "mixer", "--illicit", "ransomware"]));
    assert_eq!(got(&v), truth("mixer", &["to_mixer"]));
}

/// The flows chart is named after its buckets (a weekly chart was monthly_flows), and
/// exposure, which has no time buckets, refuses --by instead of ignoring it.
#[test]
fn the_flows_chart_is_named_by_its_period_and_exposure_takes_no_period() {
    let w = world();
    let v = json(&w.stats(&["flows", "--category", "illicit_vendor", "--by", "week"]));
    let files = v["files"].to_string();
    assert!(files.contains("weekly_flows.svg"), "{files}");
    assert!(!files.contains("monthly_flows"), "{files}");
    let dir = w.dir.path().join("stats/flows");
    assert!(dir.join("weekly_flows.png").is_file());
    let o = w.stats(&["exposure", "--by", "week"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(error_of(&o).contains("--by"), "{}", error_of(&o));
}

#[test]
fn bad_stats_arguments_say_what_to_do() {
    let w = world();
    let o = w.stats(&["flows", "--category", "darknet_market"]);
    assert_eq!(o.status.code(), Some(1));
    let e = error_of(&o);
    assert!(
        e.contains("no label has the category \"darknet_market\"") && e.contains("illicit_vendor"),
        "{e}"
    );
    let o = w.stats(&["exposure", "--illicit", "darknet_market,scam"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        error_of(&o).contains("no label has any of the illicit categories"),
        "{}",
        error_of(&o)
    );
    let o = w.stats(&["entity", "nobody-at-all"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        error_of(&o).contains("neither a labelled entity nor an address"),
        "{}",
        error_of(&o)
    );
    // A network the data directory has no dataset of: said so, with the one it has.
    let o = w.stats(&["flows", "--category", "exchange", "--network", "bitcoin"]);
    assert_eq!(o.status.code(), Some(1));
    let e = error_of(&o);
    assert!(
        e.contains("holds no bitcoin dataset") && e.contains("--network regtest"),
        "{e}"
    );
    let o = w.stats(&["flows", "--category", "exchange", "--via-clusters"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        error_of(&o).contains("chaintrace cluster bitcoin"),
        "{}",
        error_of(&o)
    );
    // A category only tags that lost a conflict carry: explained, with what to do, not
    // reported absent (a trial found "no label has the category"; trace said it right).
    let exchange: Vec<String> = w.addresses_of("exchange").into_iter().take(5).collect();
    let file = w.dir.path().join("gambling.csv");
    let mut csv = String::from("address,label,category\n");
    for a in &exchange {
        csv.push_str(&format!("{a},casino,gambling\n"));
    }
    std::fs::write(&file, csv).unwrap();
    ok(&run(&[
        "labels",
        "import",
        file.to_str().unwrap(),
        "--data",
        w.data().to_str().unwrap(),
    ]));
    let o = w.stats(&["flows", "--category", "gambling"]);
    assert_eq!(o.status.code(), Some(1));
    let e = error_of(&o);
    assert!(
        e.contains("only tags that lost a conflict carry it, at 5 address(es)")
            && e.contains("--prefer"),
        "{e}"
    );
    ok(&w.stats(&[
        "flows",
        "--category",
        "gambling",
        "--prefer",
        "gambling.csv",
    ]));
    // An empty dataset.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("regtest/outputs")).unwrap();
    std::fs::write(empty.path().join("regtest/_manifest.json"), "{}").unwrap();
    let o = run(&[
        "stats",
        "flows",
        "--data",
        empty.path().to_str().unwrap(),
        "--category",
        "exchange",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).is_empty());
}

#[test]
fn notebooks_run_headless_on_a_small_world() {
    let w = world();
    let seeds = w.addresses_of("illicit_vendor");
    let seed_file = w.dir.path().join("seeds.csv");
    std::fs::write(&seed_file, seeds.into_iter().collect::<Vec<_>>().join("\n")).unwrap();
    let case = w.dir.path().join("case");
    ok(&run(&[
        "trace",
        "--quiet",
        "--data",
        w.data().to_str().unwrap(),
        "--seed",
        &format!("@{}", seed_file.display()),
        "--policy",
        "haircut,fifo",
        "--stop-at",
        "exchange",
        "--max-hops",
        "6",
        "--out",
        case.to_str().unwrap(),
    ]));
    let truth = w.dir.path().join("world/truth");
    let data = w.data();
    let env = [
        ("CHAINTRACE_DATA", data.as_path()),
        ("CHAINTRACE_TRUTH", truth.as_path()),
        ("CHAINTRACE_CASE", case.as_path()),
    ];
    execute_notebook("market_study.ipynb", &env);
    execute_notebook("dataset_tour.ipynb", &env);
}

/// A receipt whose payer is unknown (input 0 without an address: a coinbase) has no payer:
/// `payers` counts addresses, and an unknown one is not one more payer. Found by the Spark
/// port (polars' `n_unique` counts a null as a value).
#[test]
fn coinbase_receipts_have_no_payer() {
    let w = world_labelled(|c| (c == "exchange").then_some("exchange"));
    let chain = w.chain();
    let coinbase: HashSet<String> = read_table(&chain, "inputs")
        .iter()
        .filter(|r| r["prev_txid"].opt_str().is_none())
        .map(|r| r["txid"].str().to_string())
        .collect();
    // Addresses paid by coinbases only.
    let (mut by_coinbase, mut by_others) = (BTreeSet::new(), BTreeSet::new());
    for o in read_table(&chain, "outputs") {
        if let Some(a) = o["address"].opt_str() {
            if coinbase.contains(o["txid"].str()) {
                by_coinbase.insert(a.to_string());
            } else {
                by_others.insert(a.to_string());
            }
        }
    }
    let miners: Vec<&String> = by_coinbase.difference(&by_others).collect();
    assert!(!miners.is_empty(), "no address is paid by coinbases only");
    let mut csv = String::from("address,label,category,actor\n");
    for a in &miners {
        csv.push_str(&format!("{a},pool,mining_pool,pool\n"));
    }
    import_labels(&w.data(), &csv);
    let v = json(&w.stats(&["flows", "--category", "mining_pool", "--by", "month"]));
    let rows = v["inflows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{v}");
    for r in rows {
        assert!(r["payments"].as_i64().unwrap() > 0, "{r}");
        assert_eq!(r["payers"], 0, "a coinbase has no payer: {r}");
    }
}

/// An entity tagged with two of the requested categories (some addresses one, some the
/// other) is counted once per sending, not once per category: the outflows add up to what
/// its transactions paid to others.
#[test]
fn an_entity_with_two_categories_is_not_counted_twice() {
    let w = world_labelled(|c| (c == "exchange").then_some("exchange"));
    let vendor = w.addresses_of("illicit_vendor");
    assert!(vendor.len() > 10, "{}", vendor.len());
    let mut csv = String::from("address,label,category,actor\n");
    for (i, a) in vendor.iter().enumerate() {
        let cat = if i % 2 == 0 {
            "illicit_vendor"
        } else {
            "ransomware"
        };
        csv.push_str(&format!("{a},vendor,{cat},vendor\n"));
    }
    import_labels(&w.data(), &csv);
    // The truth: outputs, to addresses not the vendor's, of transactions all of whose
    // inputs are the vendor's.
    let chain = w.chain();
    let mut inputs: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in read_table(&chain, "inputs") {
        let e = inputs.entry(r["txid"].str().to_string()).or_default();
        e.0 += 1;
        if r["address"].opt_str().is_some_and(|a| vendor.contains(a)) {
            e.1 += 1;
        }
    }
    let sent: i64 = read_table(&chain, "outputs")
        .iter()
        .filter(|o| {
            inputs
                .get(o["txid"].str())
                .is_some_and(|&(n, k)| n == k && k > 0)
                && !o["address"].opt_str().is_some_and(|a| vendor.contains(a))
        })
        .map(|o| o["value"].int())
        .sum();
    assert!(sent > 0);
    let v = json(&w.stats(&[
        "flows",
        "--category",
        "illicit_vendor,ransomware",
        "--by",
        "month",
    ]));
    let got: i64 = v["outflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sent"].as_i64().unwrap())
        .sum();
    assert_eq!(got, sent);
}
