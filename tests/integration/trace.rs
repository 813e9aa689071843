//! Tracing on the regtest world: the vendor's peel chain reaches the exchange with the
//! ground truth's amounts under every model; traces balance and are reproducible.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

fn gt(name: &str) -> PathBuf {
    bitcoin_data(&format!("regtest-world-a/ground_truth/{name}"))
}

/// `@flagged.csv`: the vendor's 227 addresses as seeds.
fn flagged() -> String {
    format!("@{}", gt("flagged.csv").display())
}

/// The rows of `peel_chain.csv` (hop, txid, in_address, payout_address, payout_entity,
/// payout_sats, onward_address, onward_entity, onward_vout, onward_sats, fee_sats).
fn peel_rows() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(gt("peel_chain.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// The regtest dataset, with `labels` (CSV text) imported if given.
fn world_with_labels(labels: Option<String>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        d.path(),
        &[],
    ));
    if let Some(csv) = labels {
        let f = d.path().join("labels.csv");
        std::fs::write(&f, csv).unwrap();
        ok(&run(&[
            "labels",
            "import",
            f.to_str().unwrap(),
            "--data",
            d.path().to_str().unwrap(),
        ]));
    }
    d
}

/// The regtest dataset with the exchange's addresses labelled (from the ground truth).
fn labelled_world() -> tempfile::TempDir {
    let text = std::fs::read_to_string(gt("addresses.csv")).unwrap();
    let mut csv = String::from("address,label,category,actor\n");
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] == "exchange" {
            csv.push_str(&format!("{},{},exchange,exchange\n", f[0], f[2]));
        }
    }
    world_with_labels(Some(csv))
}

/// Runs `chaintrace trace` from `seed` into `out` and returns the process output.
fn run_trace(d: &Path, seed: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    // --force: these tests trace into one folder again with other options.
    let mut args = vec![
        "trace",
        "--quiet",
        "--force",
        "--data",
        d.to_str().unwrap(),
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Runs a trace that must succeed and returns its `trace.json`.
fn trace(d: &Path, seed: &str, out: &Path, extra: &[&str]) -> Value {
    ok(&run_trace(d, seed, out, extra));
    serde_json::from_slice(&std::fs::read(out.join("trace.json")).unwrap()).unwrap()
}

/// Where the traced satoshi ended, summed (equal to `seeded` for conserving models).
fn ends_total(tot: &Value) -> i64 {
    [
        "exits",
        "fees",
        "holdings",
        "below_min",
        "hop_limit",
        "mined",
        "returned_to_seeds",
        "coinjoins",
        "outside_window",
    ]
    .iter()
    .map(|k| tot[k].as_i64().unwrap())
    .sum()
}

fn assert_conserves(r: &Value) {
    let tot = &r["totals"];
    if r["policy"] == "poison" {
        assert!(
            ends_total(tot) >= tot["seeded"].as_i64().unwrap(),
            "poison never undercounts"
        );
    } else {
        assert_eq!(
            ends_total(tot),
            tot["seeded"].as_i64().unwrap(),
            "{} does not conserve",
            r["policy"]
        );
    }
}

#[test]
fn a_need_to_know_category_stays_hidden_in_the_case_unless_the_trace_names_it() {
    // The exchange's addresses labelled as a need-to-know category.
    let text = std::fs::read_to_string(gt("addresses.csv")).unwrap();
    let mut csv = String::from("address,label,category,actor\n");
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] == "exchange" {
            csv.push_str(&format!(
                "{},Hidden Service,child_sexual_abuse,Hidden Service\n",
                f[0]
            ));
        }
    }
    let d = world_with_labels(Some(csv));
    let case = tempfile::tempdir().unwrap();
    let vendor = &peel_rows()[1][2];
    ok(&run_trace(
        d.path(),
        vendor,
        case.path(),
        &["--policy", "fifo"],
    ));
    let t = std::fs::read_to_string(case.path().join("trace.json")).unwrap();
    assert!(!t.contains("child_sexual_abuse") && !t.contains("Hidden Service"));
    assert!(
        t.contains("need_to_know"),
        "the value reaching them is still counted"
    );
    let html = html_report(case.path());
    assert!(!html.contains("child_sexual_abuse") && !html.contains("Hidden Service"));
    // Named: shown.
    ok(&run_trace(
        d.path(),
        vendor,
        case.path(),
        &["--policy", "fifo", "--stop-at", "child_sexual_abuse"],
    ));
    let t = std::fs::read_to_string(case.path().join("trace.json")).unwrap();
    assert!(t.contains("child_sexual_abuse") && t.contains("Hidden Service"));
}

#[test]
fn the_peel_chain_reaches_the_exchange_with_the_true_amounts_under_every_model() {
    let d = labelled_world();
    let case = tempfile::tempdir().unwrap();
    let t = trace(
        d.path(),
        &flagged(),
        case.path(),
        &["--policy", "all", "--stop-at", "exchange"],
    );
    // (txid, address, sats) the vendor's peel chain paid to the exchange, per the truth.
    let mut expected: Vec<(String, String, i64)> = Vec::new();
    for f in peel_rows() {
        if f[4] == "exchange" {
            expected.push((f[1].clone(), f[3].clone(), f[5].parse().unwrap()));
        }
        if f[7] == "exchange" {
            expected.push((f[1].clone(), f[6].clone(), f[9].parse().unwrap()));
        }
    }
    assert!(
        expected.len() >= 5,
        "the truth records payouts to the exchange"
    );
    let results = t["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for r in results {
        let policy = r["policy"].as_str().unwrap();
        let exits: Vec<(&str, &str, i64)> = r["ends"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "exit")
            .map(|e| {
                (
                    e["txid"].as_str().unwrap(),
                    e["address"].as_str().unwrap(),
                    e["amount"].as_i64().unwrap(),
                )
            })
            .collect();
        for (txid, addr, sats) in &expected {
            assert!(
                exits
                    .iter()
                    .any(|(t, a, s)| t == txid && a == addr && s == sats),
                "{policy}: no exit of {sats} sat to {addr} in {txid}"
            );
        }
        assert_conserves(r);
        assert!(r["exposure_category"]["exchange"].as_i64().unwrap() > 0);
        // Every exit has a path back to a seed.
        assert!(
            r["ends"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "exit")
                .all(|e| !e["path"].as_array().unwrap().is_empty())
        );
    }
    assert_eq!(t["dataset_manifest_sha256"].as_str().unwrap().len(), 64);
    let nodes = t["nodes"][0]["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["received"].as_i64().unwrap() > 0));
    // Parquet of the same rows.
    let edges = read_parquet_file(&case.path().join("edges.parquet"));
    let json_edges: usize = results
        .iter()
        .map(|r| r["edges"].as_array().unwrap().len())
        .sum();
    assert_eq!(edges.len(), json_edges);
}

#[test]
fn the_path_from_the_consolidated_coin_runs_through_every_peel_hop() {
    let d = labelled_world();
    let rows = peel_rows();
    // Seed: the consolidated UTXO the chain starts from (hop 0's onward output).
    let seed = format!("{}:{}", rows[0][1], rows[0][8]);
    let case = tempfile::tempdir().unwrap();
    let t = trace(
        d.path(),
        &seed,
        case.path(),
        &["--policy", "fifo", "--stop-at", "exchange"],
    );
    let last = rows.last().unwrap();
    let end = t["results"][0]["ends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["txid"] == last[1].as_str() && e["address"] == last[6].as_str())
        .expect("the last hop's output is an exit");
    assert_eq!(
        end["amount"].as_i64().unwrap(),
        last[9].parse::<i64>().unwrap()
    );
    let path: Vec<&str> = end["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    let hops: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(path, hops, "the path is hops 1..8 in order");
}

#[test]
fn traces_are_reproducible_and_backward_traces_balance() {
    let d = labelled_world();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    trace(
        d.path(),
        &flagged(),
        a.path(),
        &[
            "--policy",
            "fifo,haircut",
            "--stop-at",
            "exchange",
            "--max-hops",
            "5",
        ],
    );
    trace(
        d.path(),
        &flagged(),
        b.path(),
        &[
            "--policy",
            "haircut,fifo",
            "--stop-at",
            "exchange",
            "--max-hops",
            "5",
        ],
    );
    // The same trace gives the same bytes; trace.json also records the command line, which
    // differs here (another --out, the models in another order).
    let (mut ta, mut tb) = (tree(a.path()), tree(b.path()));
    // SHA256SUMS covers trace.json, so it differs with it; the audit logs record when and
    // how each ran.
    assert!(ta.remove("SHA256SUMS").is_some() && tb.remove("SHA256SUMS").is_some());
    for f in ["audit.jsonl", "audit.head"] {
        assert!(ta.remove(f).is_some() && tb.remove(f).is_some());
    }
    let mut ja: Value = serde_json::from_slice(&ta.remove("trace.json").unwrap()).unwrap();
    let mut jb: Value = serde_json::from_slice(&tb.remove("trace.json").unwrap()).unwrap();
    assert_ne!(ja["command"], jb["command"]);
    ja["command"] = Value::Null;
    jb["command"] = Value::Null;
    assert!(ja == jb, "the same trace gave a different trace.json");
    assert!(ta == tb, "the same trace gave different Parquet bytes");

    // Backward from the exchange deposit the peel chain ended in: where did it come from?
    let rows = peel_rows();
    let last = rows.last().unwrap();
    let c = tempfile::tempdir().unwrap();
    let t = trace(
        d.path(),
        &format!("{}:{}", last[1], last[8]),
        c.path(),
        &["--direction", "backward", "--policy", "all"],
    );
    for r in t["results"].as_array().unwrap() {
        assert_conserves(r);
        if r["policy"] == "poison" {
            continue;
        }
        // The 8 hops of the peel chain and the consolidation are all on the way back.
        let txids: std::collections::HashSet<&str> = r["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["txid"].as_str().unwrap())
            .collect();
        for row in &rows {
            assert!(
                txids.contains(row[1].as_str()),
                "{}: {} not on the way back",
                r["policy"],
                row[1]
            );
        }
    }

    // Cluster level: nodes are clusters; transfers inside a cluster disappear.
    ok(&run(&[
        "cluster",
        "bitcoin",
        "--quiet",
        "--data",
        d.path().to_str().unwrap(),
    ]));
    let e = tempfile::tempdir().unwrap();
    let t = trace(
        d.path(),
        &flagged(),
        e.path(),
        &["--level", "cluster", "--policy", "fifo"],
    );
    let edges = t["results"][0]["edges"].as_array().unwrap();
    assert!(!edges.is_empty() && edges.iter().all(|e| e["from"] != e["to"]));
    // Seeding by cluster works too.
    let flagged_text = std::fs::read_to_string(gt("flagged.csv")).unwrap();
    let one = flagged_text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    trace(d.path(), &format!("cluster:{one}"), e.path(), &[]);

    // Time windows: before the world's activity nothing is followed (all is held); a window
    // before the first block is an error; a window of two days follows part of the way.
    let window = |from: &str, to: &str| {
        run_trace(
            d.path(),
            &flagged(),
            e.path(),
            &[
                "--json",
                "--policy",
                "haircut",
                "--from-time",
                from,
                "--to-time",
                to,
            ],
        )
    };
    // A window before the vendor's activity: its outputs were created after it, so they are
    // no seeds of this window (they would be "held" in a window that ended before them).
    let o = window("2000-01-01", "2026-11-24");
    assert_eq!(o.status.code(), Some(1));
    let e = error_of(&o);
    assert!(e.contains("was created inside the window"), "{e}");
    let o = window("1999-01-01", "2000-01-01");
    assert_eq!(o.status.code(), Some(1));
    // --json: the error is the JSON document on stdout.
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before the first block")
    );
    let o = window("2026-11-25", "2026-11-27");
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // Spent after the window is not "held": its own end.
    let held = v[0]["totals"]["outside_window"].as_i64().unwrap();
    assert!(held > 0 && held < v[0]["totals"]["seeded"].as_i64().unwrap());

    // Bad seeds are named.
    let o = run_trace(d.path(), "bcrt1qnothere", c.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bcrt1qnothere"));
}

#[test]
fn private_tags_count_only_with_include_private() {
    let rows = peel_rows();
    let last = rows.last().unwrap();
    let d = world_with_labels(None);
    // A private TagPack labels the chain's last exchange deposit address.
    let pack = d.path().join("private.yaml");
    std::fs::write(
        &pack,
        format!(
            "title: case notes\ncreator: analyst\nlabel: informant exchange\ncategory: exchange\ncurrency: BTC\nis_public: false\nsource: case file\ntags:\n- address: {}\n",
            last[6]
        ),
    )
    .unwrap();
    ok(&run(&[
        "labels",
        "import",
        pack.to_str().unwrap(),
        "--data",
        d.path().to_str().unwrap(),
    ]));
    let seed = format!("{}:{}", rows[0][1], rows[0][8]);
    let case = tempfile::tempdir().unwrap();
    let exits = |extra: &[&str]| -> i64 {
        let mut args = vec!["--json", "--stop-at", "exchange"];
        args.extend_from_slice(extra);
        let o = run_trace(d.path(), &seed, case.path(), &args);
        ok(&o);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_conserves(&v[0]);
        v[0]["totals"]["exits"].as_i64().unwrap()
    };
    // Without --include-private no usable label is an exchange: stopping there is refused.
    let o = run_trace(d.path(), &seed, case.path(), &["--stop-at", "exchange"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a private tag was used without --include-private"
    );
    assert!(
        stderr(&o).contains("1 non-public tag(s) left out; add --include-private"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        exits(&["--include-private"]),
        last[9].parse::<i64>().unwrap()
    );
}

/// The exchange's addresses as a CSV label list, tagged `category` for `entity`.
fn exchange_tags(entity: &str, category: &str, extra_header: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(gt("addresses.csv")).unwrap();
    let mut csv = format!("address,label,category,actor{extra_header}\n");
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] == "exchange" {
            csv.push_str(&format!("{},{entity},{category},{entity}{extra}\n", f[0]));
        }
    }
    csv
}

fn import_files(d: &Path, files: &[&Path]) {
    let mut args = vec!["labels", "import", "--data", d.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ok(&run(&args));
}

fn haircut_exchange_exposure(t: &Value) -> i64 {
    t["results"][0]["exposure_category"]["exchange"]
        .as_i64()
        .unwrap_or(0)
}

#[test]
fn conflicting_tags_give_the_same_answer_whatever_the_file_names() {
    // Two lists tag the exchange's addresses differently, with equal (unknown) confidence.
    // Before: the first file in name order won, so renaming aa_ to zz_ changed the answer.
    let d = world_with_labels(None);
    let lists = tempfile::tempdir().unwrap();
    let exchange = exchange_tags("ExampleExchange", "exchange", "", "");
    let shop = exchange_tags("Some Shop", "merchant", "", "");
    let (aa, zz) = (
        lists.path().join("aa_list.csv"),
        lists.path().join("zz_list.csv"),
    );
    let args = ["--policy", "haircut", "--stop-at", "exchange"];
    let mut answers = Vec::new();
    for (first, second) in [(&exchange, &shop), (&shop, &exchange)] {
        std::fs::write(&aa, first).unwrap();
        std::fs::write(&zz, second).unwrap();
        import_files(d.path(), &[&aa, &zz]);
        let case = tempfile::tempdir().unwrap();
        let t = trace(d.path(), &flagged(), case.path(), &args);
        answers.push(haircut_exchange_exposure(&t));
        let conflicts = t["label_conflicts"].as_array().unwrap();
        assert!(
            !conflicts.is_empty(),
            "the trace names its conflicting tags"
        );
        assert_eq!(conflicts[0]["decided_by"], "tie");
        assert_eq!(conflicts[0]["chosen"]["category"], "exchange");
        for f in ["aa_list.csv", "zz_list.csv"] {
            ok(&run(&[
                "labels",
                "remove",
                f,
                "--data",
                d.path().to_str().unwrap(),
            ]));
        }
    }
    assert!(answers[0] > 0, "the exchange is reached");
    assert_eq!(answers[0], answers[1], "file names decided the answer");

    // --prefer overrides; higher confidence wins without it; private tags are counted.
    std::fs::write(&aa, &exchange).unwrap();
    std::fs::write(
        &zz,
        exchange_tags("Some Shop", "merchant", ",confidence", ",authority_data"),
    )
    .unwrap();
    let private = lists.path().join("informant.csv");
    std::fs::write(
        &private,
        exchange_tags("Informant", "user", ",is_public", ",false"),
    )
    .unwrap();
    import_files(d.path(), &[&aa, &zz, &private]);
    // authority_data outranks unknown: no tag in use is an exchange any more, so stopping
    // at exchanges is refused, naming what is there.
    let case = tempfile::tempdir().unwrap();
    let o = run_trace(d.path(), &flagged(), case.path(), &args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("only tags that lost a conflict carry it, at 185 address(es)")
            && stderr(&o).contains("--prefer"),
        "{}",
        stderr(&o)
    );
    let both = ["--policy", "haircut", "--stop-at", "merchant"];
    let o = run_trace(d.path(), &flagged(), case.path(), &both);
    ok(&o);
    assert!(
        stdout(&o).contains("non-public tag(s) left out; add --include-private"),
        "{}",
        stdout(&o)
    );
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("trace.json")).unwrap()).unwrap();
    assert_eq!(
        haircut_exchange_exposure(&t),
        0,
        "authority_data outranks unknown"
    );
    assert_eq!(
        t["results"][0]["exposure_category"]["merchant"].as_i64(),
        Some(answers[0])
    );
    assert_eq!(t["label_conflicts"][0]["decided_by"], "confidence");
    assert!(t["parameters"]["labels_private_ignored"].as_u64().unwrap() > 0);
    // `--json` carries the same notes as the text answer (it left them out).
    let mut json_args = both.to_vec();
    json_args.push("--json");
    let o = run_trace(d.path(), &flagged(), case.path(), &json_args);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let conflicts = t["label_conflicts"].as_array().unwrap().len();
    assert!(conflicts > 0);
    assert_eq!(
        v[0]["label_conflicts"].as_u64(),
        Some(conflicts as u64),
        "{v}"
    );
    assert_eq!(
        v[0]["private_tags_left_out"], t["parameters"]["labels_private_ignored"],
        "{v}"
    );
    // A --prefer naming nothing imported is an error, not silently ignored.
    let o = run_trace(
        d.path(),
        &flagged(),
        case.path(),
        &["--prefer", "no_such_list.csv"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is no source or label file"),
        "{}",
        stderr(&o)
    );
    let mut preferred: Vec<&str> = args.to_vec();
    preferred.extend(["--prefer", "aa_list.csv"]);
    let case = tempfile::tempdir().unwrap();
    let t = trace(d.path(), &flagged(), case.path(), &preferred);
    assert_eq!(haircut_exchange_exposure(&t), answers[0]);
    assert_eq!(t["label_conflicts"][0]["decided_by"], "prefer");
    // The report shows the conflicts and the rule.
    let html = html_report(case.path());
    assert!(html.contains("carry disagreeing tags") && html.contains("--prefer"));

    // `labels conflicts` lists the same decisions.
    let o = run(&[
        "labels",
        "conflicts",
        "--data",
        d.path().to_str().unwrap(),
        "--chain",
        "bitcoin",
        "--json",
    ]);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["count"].as_u64().unwrap(), 185);
    assert_eq!(v["conflicts"][0]["chosen"]["confidence"], "authority_data");
}

#[test]
fn seeds_and_options_are_checked_with_their_own_messages() {
    let d = labelled_world();
    let case = tempfile::tempdir().unwrap();
    let fails = |seed: &str, extra: &[&str], want: &str| {
        let o = run_trace(d.path(), seed, case.path(), extra);
        assert_eq!(o.status.code(), Some(1), "{seed}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{seed}: {}", stderr(&o));
    };
    let vendor = std::fs::read_to_string(gt("flagged.csv")).unwrap();
    let vendor = vendor
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .find(|a| a.starts_with("bcrt1q"))
        .unwrap();
    fails(
        "0x8589427373d6d84e98730d7795d8f6f8731fda16",
        &[],
        "add --chain ethereum",
    );
    // One character changed: the bech32 checksum fails.
    let mut typo = vendor.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'q' { b'p' } else { b'q' };
    fails(&String::from_utf8(typo).unwrap(), &[], "checksum");
    fails(
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        &[],
        "is a mainnet address, and this dataset is regtest",
    );
    fails(
        &vendor,
        &["--stop-at", "exchnage"],
        "the categories present are: exchange",
    );
    fails(
        &vendor,
        &["--min-value", "0.5eth"],
        "the unit does not fit a Bitcoin trace",
    );
    fails(
        &vendor,
        &["--min-value", "0.000000001btc"],
        "has 9 decimals",
    );
    fails(&vendor, &["--from-time", "2026-02-31"], "is not a time");
    // A seed file with only a header: said as such (it was "the seeds select no output").
    let empties = tempfile::tempdir().unwrap();
    let only_header = empties.path().join("header-only.csv");
    std::fs::write(&only_header, "address\n\n").unwrap();
    fails(&format!("@{}", only_header.display()), &[], "names no seed");

    // Upper-case bech32, a BOM in the seed file, and unit amounts are understood.
    // The default stop category is said in the answer.
    let o = run_trace(d.path(), &vendor, case.path(), &[]);
    ok(&o);
    assert!(
        stdout(&o).contains("stopping at exchange labels (the default"),
        "{}",
        stdout(&o)
    );
    let upper = trace(
        d.path(),
        &vendor.to_uppercase(),
        case.path(),
        &["--min-value", "0.00001btc"],
    );
    assert_eq!(upper["parameters"]["min_value"], 1000);
    let lists = tempfile::tempdir().unwrap();
    let file = lists.path().join("seeds.csv");
    // As a spreadsheet saves it: BOM, semicolons, a header, CRLF.
    std::fs::write(
        &file,
        format!("\u{feff}address;entity\r\n{vendor};vendor\r\n"),
    )
    .unwrap();
    let from_file = trace(
        d.path(),
        &format!("@{}", file.display()),
        case.path(),
        &["--min-value", "1000sat"],
    );
    assert_eq!(
        from_file["results"][0]["totals"],
        upper["results"][0]["totals"]
    );

    // A bad seed in a file is named by file and line.
    let bad = lists.path().join("bad-seeds.csv");
    std::fs::write(&bad, format!("address\n{vendor}\n0xabc\n")).unwrap();
    fails(&format!("@{}", bad.display()), &[], "bad-seeds.csv:3");

    // The same trace written another way reproduces its case; the old report goes.
    let again = tempfile::tempdir().unwrap();
    let first = [
        "trace",
        "--data",
        d.path().to_str().unwrap(),
        "--seed",
        &vendor,
        "--policy",
        "fifo",
        "--out",
        again.path().to_str().unwrap(),
    ];
    ok(&run(&first));
    ok(&run(&[
        "report",
        again.path().to_str().unwrap(),
        "--format",
        "json",
    ]));
    let dotted = format!("{}/.", d.path().display());
    let o = run(&[
        "trace",
        "-q",
        "--policy",
        "fifo",
        "--seed",
        &vendor,
        "--out",
        again.path().to_str().unwrap(),
        "--data",
        &dotted,
    ]);
    ok(&o);
    assert!(
        stderr(&o).contains("described the earlier run"),
        "{}",
        stderr(&o)
    );
    assert!(!again.path().join("report").exists());

    // --json: one JSON document on stdout, errors and usage errors included.
    let o = run_trace(d.path(), "0xabc", case.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["error"]["kind"], "input");
    assert!(v["error"]["message"].as_str().unwrap().contains("Ethereum"));
    let o = run(&["trace", "--json", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["error"]["kind"], "usage");
    let o = run(&["--json", "trace", "--seed", &vendor]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("--out"),
        "the missing argument is named: {v}"
    );
}

#[test]
fn value_moved_between_seed_addresses_is_not_seeded_twice() {
    // The vendor's income: outputs paid to its addresses by transactions none of whose
    // inputs is the vendor's. Its peel chain and consolidation move that value again from
    // vendor address to vendor address; before, each move was counted as seeded once more.
    let d = world_with_labels(None);
    let vendor: std::collections::HashSet<String> = std::fs::read_to_string(gt("flagged.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let chain = d.path().join("regtest");
    let inputs = read_table(&chain, "inputs");
    let spends_vendor: std::collections::HashSet<&str> = inputs
        .iter()
        .filter(|r| r["address"].opt_str().is_some_and(|a| vendor.contains(a)))
        .map(|r| r["txid"].str())
        .collect();
    // Transactions that spend the vendor's coins together with others' (its CoinJoin): what
    // they pay the vendor came partly from outside, as much as the model says.
    let spends_others: std::collections::HashSet<&str> = inputs
        .iter()
        .filter(|r| !r["address"].opt_str().is_some_and(|a| vendor.contains(a)))
        .map(|r| r["txid"].str())
        .collect();
    let (mut income, mut mixed, mut all) = (0i64, 0i64, 0i64);
    for o in read_table(&chain, "outputs") {
        if o["address"].opt_str().is_some_and(|a| vendor.contains(a)) {
            all += o["value"].int();
            let txid = o["txid"].str();
            if !spends_vendor.contains(txid) {
                income += o["value"].int();
            } else if spends_others.contains(txid) {
                mixed += o["value"].int();
            }
        }
    }
    assert!(all > income + mixed && income > 0, "{all} {income} {mixed}");
    let case = tempfile::tempdir().unwrap();
    let t = trace(d.path(), &flagged(), case.path(), &["--policy", "all"]);
    let mut entered_per_model = Vec::new();
    for r in t["results"].as_array().unwrap() {
        let tot = &r["totals"];
        assert_eq!(tot["seeded"].as_i64().unwrap(), all);
        let entered = tot["entered_seeds"].as_i64().unwrap();
        assert!(
            (income..=income + mixed).contains(&entered),
            "{}: value entering the seeds counts once: {entered} not in {income}..={}",
            r["policy"],
            income + mixed
        );
        entered_per_model.push(entered);
        assert_conserves(r);
    }
    // The same answer under every model, and with no hop followed at all.
    assert!(
        entered_per_model.windows(2).all(|w| w[0] == w[1]),
        "{entered_per_model:?}"
    );
    let t = trace(d.path(), &flagged(), case.path(), &["--max-hops", "0"]);
    assert_eq!(
        t["results"][0]["totals"]["entered_seeds"].as_i64(),
        Some(entered_per_model[0])
    );
}

/// (txid, address, sat) of every payout of the vendor's peel chain to the exchange.
fn exchange_payouts() -> Vec<(String, String, i64)> {
    let mut expected = Vec::new();
    for f in peel_rows() {
        if f[4] == "exchange" {
            expected.push((f[1].clone(), f[3].clone(), f[5].parse().unwrap()));
        }
        if f[7] == "exchange" {
            expected.push((f[1].clone(), f[6].clone(), f[9].parse().unwrap()));
        }
    }
    expected
}

#[test]
fn cluster_level_exits_name_the_address_paid_and_small_deposits_still_exit() {
    let d = labelled_world();
    ok(&run(&[
        "cluster",
        "bitcoin",
        "--quiet",
        "--data",
        d.path().to_str().unwrap(),
    ]));
    let expected = exchange_payouts();
    let smallest = expected.iter().map(|e| e.2).min().unwrap();
    let case = tempfile::tempdir().unwrap();
    // A minimum above the smallest deposit: stop categories are decided first, so that
    // deposit is still an exit, not "below minimum".
    let min = (smallest + 1).to_string();
    let t = trace(
        d.path(),
        &flagged(),
        case.path(),
        &[
            "--level",
            "cluster",
            "--policy",
            "lifo",
            "--min-value",
            &min,
        ],
    );
    let exits: Vec<&Value> = t["results"][0]["ends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "exit")
        .collect();
    for (txid, addr, sats) in &expected {
        let e = exits
            .iter()
            .find(|e| e["txid"] == txid.as_str() && e["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("no exit to {addr} in {txid}: {exits:?}"));
        assert_eq!(
            e["amount"].as_i64(),
            Some(*sats),
            "LIFO pays the truth exactly"
        );
        assert!(e["cluster"].is_string(), "the cluster is its own column");
    }
    let distinct: std::collections::HashSet<&str> = exits
        .iter()
        .map(|e| e["address"].as_str().unwrap())
        .collect();
    assert!(distinct.len() > 1, "every exit named one representative");
    // The Parquet and the report carry the same addresses.
    let ends = read_parquet_file(&case.path().join("ends.parquet"));
    assert!(
        ends.iter()
            .any(|r| r["address"].str() == expected[0].1.as_str())
    );
    let edges = read_parquet_file(&case.path().join("edges.parquet"));
    assert!(
        edges
            .iter()
            .any(|r| r["to_address"].str() == expected[0].1.as_str())
    );
    let html = html_report(case.path());
    assert!(html.contains("Deposit addresses to request records for"));
    for (_, addr, _) in &expected {
        assert!(html.contains(addr.as_str()), "{addr} not in the report");
    }
}

#[test]
fn taint_stops_where_it_enters_a_coinjoin_unless_asked_to_follow() {
    let d = labelled_world();
    let txs = std::fs::read_to_string(gt("txs.csv")).unwrap();
    let coinjoin = txs
        .lines()
        .find(|l| l.split(',').nth(1) == Some("coinjoin"))
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let case = tempfile::tempdir().unwrap();
    let t = trace(
        d.path(),
        &flagged(),
        case.path(),
        &["--policy", "haircut,fifo"],
    );
    for r in t["results"].as_array().unwrap() {
        let joins: Vec<&Value> = r["ends"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "coinjoin")
            .collect();
        assert!(
            !joins.is_empty(),
            "{}: the vendor's CoinJoin is an end",
            r["policy"]
        );
        assert!(
            joins
                .iter()
                .all(|e| e["coinjoin"].as_str().unwrap().starts_with(&coinjoin))
        );
        let amount: i64 = joins.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
        assert_eq!(r["totals"]["coinjoins"].as_i64(), Some(amount));
        assert!(
            r["edges"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["txid"] != coinjoin.as_str()),
            "nothing is followed through the CoinJoin"
        );
        assert_conserves(r);
    }
    let t = trace(
        d.path(),
        &flagged(),
        case.path(),
        &["--policy", "haircut", "--through-coinjoins"],
    );
    let r = &t["results"][0];
    assert_eq!(r["totals"]["coinjoins"], 0);
    assert!(
        r["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["txid"] == coinjoin.as_str()),
        "--through-coinjoins follows it"
    );
}

#[test]
fn thin_exits_are_shown_as_shares_of_their_deposits_and_poison_as_outputs_touched() {
    let d = labelled_world();
    let case = tempfile::tempdir().unwrap();
    // Through the CoinJoin, haircut spreads the vendor's coins thinly over many deposits.
    let args = [
        "--policy",
        "haircut,poison",
        "--through-coinjoins",
        "--min-share",
        "50",
    ];
    let o = run_trace(d.path(), &flagged(), case.path(), &args);
    ok(&o);
    let text = stdout(&o);
    assert!(text.contains("carry under 1 % of their deposit"), "{text}");
    assert!(text.contains("below --min-share 50 % not listed"), "{text}");
    assert!(text.contains("outputs touched:"), "{text}");
    let t: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("trace.json")).unwrap()).unwrap();
    for r in t["results"].as_array().unwrap() {
        for e in r["ends"].as_array().unwrap() {
            let whole = e["output_value"].as_i64().unwrap();
            assert!(e["amount"].as_i64().unwrap() <= whole || r["policy"] == "poison");
            // The hop shown counts the transactions of the path shown.
            assert_eq!(
                e["hop"].as_u64().unwrap() as usize,
                e["path"].as_array().unwrap().len()
            );
        }
    }
    let html = html_report(case.path());
    assert!(html.contains(" deposit (") && html.contains(" %)"));
}

#[test]
fn a_case_keeps_an_audit_trail_that_verify_replays() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case-2026-117");
    let c = case.to_str().unwrap();
    ok(&run(&[
        "case",
        "init",
        c,
        "--number",
        "2026-117",
        "--examiner",
        "A. Analyst",
        "--question",
        "Where did the vendor's income go?",
    ]));
    // A case folder holding only case.toml is traced into.
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "lifo"],
    ));
    ok(&run(&[
        "case",
        "note",
        c,
        "exit addresses sent to the exchange's compliance desk",
    ]));
    let html = html_report(&case);
    for want in [
        "2026-117",
        "A. Analyst",
        "compliance desk",
        "Audit trail",
        "Test data",
    ] {
        assert!(html.contains(want), "the report lacks {want:?}");
    }
    let o = run(&["--json", "case", "log", c]);
    let log: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["init", "trace", "note", "report"]);
    let trace_entry = &log[1];
    assert!(trace_entry["command"][1] == "trace" || trace_entry["command"][2] == "trace");
    assert!(trace_entry["inputs"]["labels/tags.parquet"].is_string());
    assert!(trace_entry["outputs"]["edges.parquet"].is_string());

    // verify: hashes, chain and a re-run all agree.
    let o = run(&["case", "verify", c]);
    ok(&o);
    assert!(stdout(&o).contains("verified"), "{}", stdout(&o));
    // A re-trace that fails (a mistyped seed, even with --force) leaves the case as it was.
    let o = run_trace(d.path(), "bcrt1qnotanaddress", &case, &[]);
    assert_eq!(o.status.code(), Some(1));
    ok(&run(&["case", "verify", c, "--no-rerun"]));
    // Cutting the log short, or editing case.toml, is found.
    let log_path = case.join("audit.jsonl");
    let full = std::fs::read_to_string(&log_path).unwrap();
    let cut: String = full.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log_path, &cut).unwrap();
    let o = run(&["case", "verify", c, "--no-rerun"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("removed from its end"),
        "{}",
        stdout(&o)
    );
    std::fs::write(&log_path, &full).unwrap();
    let meta = case.join("case.toml");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("A. Analyst", "B. Other")).unwrap();
    let o = run(&["case", "verify", c, "--no-rerun"]);
    assert!(stdout(&o).contains("case.toml changed"), "{}", stdout(&o));
    std::fs::write(&meta, text).unwrap();
    // One changed byte in edges.parquet is found.
    let edges = case.join("edges.parquet");
    let mut b = std::fs::read(&edges).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&edges, &b).unwrap();
    let o = run(&["--json", "case", "verify", c]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    let problems = v["problems"].to_string();
    assert!(problems.contains("edges.parquet changed"), "{problems}");
    assert!(
        problems.contains("edges.parquet: the trace run again gives other bytes"),
        "{problems}"
    );
    // An edited log line breaks the chain.
    let log_path = case.join("audit.jsonl");
    let text = std::fs::read_to_string(&log_path).unwrap();
    std::fs::write(
        &log_path,
        text.replace("compliance desk", "compliance team"),
    )
    .unwrap();
    let o = run(&["case", "verify", c, "--no-rerun"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("BROKEN"), "{}", stdout(&o));
}

#[test]
fn the_trace_error_is_measured_against_the_truth_and_shown_in_the_report() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "all"],
    ));
    let o = run(&[
        "--json",
        "eval",
        "trace",
        case.to_str().unwrap(),
        "--truth",
        bitcoin_data("regtest-world-a/ground_truth")
            .to_str()
            .unwrap(),
    ]);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let truth: i64 = exchange_payouts().iter().map(|e| e.2).sum();
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 5);
    for m in models {
        assert_eq!(m["truth"].as_i64(), Some(truth));
        assert_eq!(
            m["flows_true"].as_u64(),
            Some(exchange_payouts().len() as u64)
        );
    }
    // LIFO and TIHO follow the vendor's peel chain exactly (the truth of this world): every
    // payout found with its exact amount. (The vendor's other payment to the exchange, from
    // its CoinJoin output, is not in the peel chain: it is the one exit matching no flow.)
    for exact in ["lifo", "tiho"] {
        let m = models.iter().find(|m| m["policy"] == exact).unwrap();
        assert_eq!(m["flows_exact"], m["flows_true"], "{m}");
        assert!(m["signed_error_ppm"].as_i64().unwrap() >= 0);
    }
    assert!(case.join("eval_trace.json").is_file());
    // At other hop limits (the vendor's seeds include every peel hop's address, so one hop
    // already reaches each payout).
    let o = run(&[
        "--json",
        "eval",
        "trace",
        case.to_str().unwrap(),
        "--truth",
        bitcoin_data("regtest-world-a/ground_truth")
            .to_str()
            .unwrap(),
        "--hops",
        "1,20",
    ]);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let sweep = v["by_hops"].as_array().unwrap();
    assert_eq!(sweep.len(), 2);
    let lifo_at = |i: usize| -> Value {
        sweep[i]["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["policy"] == "lifo")
            .unwrap()
            .clone()
    };
    assert_eq!(
        (sweep[0]["hops"].as_u64(), sweep[1]["hops"].as_u64()),
        (Some(1), Some(20))
    );
    assert_eq!(sweep[0]["models"].as_array().unwrap().len(), 5);
    assert_eq!(lifo_at(0)["flows_exact"], lifo_at(0)["flows_true"]);
    assert_eq!(lifo_at(1)["flows_exact"], lifo_at(1)["flows_true"]);
    let html = html_report(&case);
    assert!(html.contains("Measured error of this trace") && html.contains("peel_chain.csv"));
}

#[test]
fn a_case_bundle_replays_elsewhere() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "fifo"],
    ));
    let bundle = dir.path().join("bundle.zip");
    ok(&run(&[
        "case",
        "export",
        case.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
        "--with-data",
    ]));
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    for want in [
        "case/trace.json",
        "case/audit.jsonl",
        "data/regtest/_manifest.json",
        "data/labels/tags.parquet",
        "README.txt",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("data/regtest/outputs/")));
    // Unpacked elsewhere, the case verifies against the bundled dataset.
    let away = tempfile::tempdir().unwrap();
    zip.extract(away.path()).unwrap();
    let o = run(&[
        "case",
        "verify",
        away.path().join("case").to_str().unwrap(),
        "--data",
        away.path().join("data").to_str().unwrap(),
    ]);
    ok(&o);
    assert!(
        stdout(&o).contains("the trace reproduces"),
        "{}",
        stdout(&o)
    );
    // The bundle's own copy of the seed file is what is checked and replayed.
    let seeds = away.path().join("inputs/seeds/flagged.csv");
    let text = std::fs::read_to_string(&seeds).unwrap();
    let fewer: String = text.lines().take(20).map(|l| format!("{l}\n")).collect();
    std::fs::write(&seeds, fewer).unwrap();
    let o = run(&[
        "case",
        "verify",
        away.path().join("case").to_str().unwrap(),
        "--data",
        away.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("input seeds") && stdout(&o).contains("changed"),
        "{}",
        stdout(&o)
    );
}

/// Runs chaintrace in `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn a_bundle_unzipped_and_verified_in_its_own_folder_replays_a_cluster_case() {
    let d = labelled_world();
    ok(&run(&[
        "cluster",
        "bitcoin",
        "--data",
        d.path().to_str().unwrap(),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "fifo", "--level", "cluster"],
    ));
    // Something of the analyst's own in the case folder stays theirs.
    std::fs::write(case.join("my-notes.txt"), "call the exchange on Monday").unwrap();
    let export = |name: &str, with_data: bool| {
        let bundle = dir.path().join(name);
        let mut args = vec![
            "case",
            "export",
            case.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
        ];
        if with_data {
            args.push("--with-data");
        }
        let o = run(&args);
        ok(&o);
        assert!(stdout(&o).contains("my-notes.txt"), "{}", stdout(&o));
        bundle
    };
    let full = export("full.zip", true);
    let thin = export("thin.zip", false);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&full).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    assert!(
        names
            .iter()
            .any(|n| n == "data/clusters/regtest/merges.parquet"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("my-notes")));
    // The exports are in the case's trail.
    let trail = std::fs::read_to_string(case.join("audit.jsonl")).unwrap();
    assert_eq!(trail.matches("\"action\":\"export\"").count(), 2);
    // Unzipped, and verified from inside with relative paths, as the README says.
    let away = tempfile::tempdir().unwrap();
    zip.extract(away.path()).unwrap();
    let o = run_in(away.path(), &["case", "verify", "case", "--data", "data"]);
    assert!(
        o.status.success() && stdout(&o).contains("the trace reproduces"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // Without --data, the bundle's own data/ (not the investigator's original, which still
    // exists here), and it says so.
    let o = run_in(away.path(), &["case", "verify", "case"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("the bundle's"), "{}", stderr(&o));
    // Without the Parquet parts, it says what is missing and what to do.
    let bare = tempfile::tempdir().unwrap();
    zip::ZipArchive::new(std::fs::File::open(&thin).unwrap())
        .unwrap()
        .extract(bare.path())
        .unwrap();
    let o = run_in(bare.path(), &["case", "verify", "case", "--data", "data"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("Parquet files its regtest/_manifest.json lists")
            && stdout(&o).contains("--with-data"),
        "{}",
        stdout(&o)
    );
    // The zip itself is not a case folder: unzip first.
    let o = run(&["case", "verify", full.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unzip"), "{}", stderr(&o));
}

#[test]
fn case_metadata_is_amended_only_on_purpose_and_a_rerun_keeps_the_report() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    let c = case.to_str().unwrap();
    ok(&run(&[
        "case",
        "init",
        c,
        "--number",
        "2026-117",
        "--examiner",
        "A",
    ]));
    let o = run(&["case", "init", c, "--number", "9999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("2026-117") && stderr(&o).contains("--amend"),
        "{}",
        stderr(&o)
    );
    let toml = std::fs::read_to_string(case.join("case.toml")).unwrap();
    assert!(toml.contains("2026-117") && !toml.contains("9999"));
    ok(&run(&["case", "init", c, "--number", "9999", "--amend"]));
    let trail = std::fs::read_to_string(case.join("audit.jsonl")).unwrap();
    assert!(trail.contains("amended number"), "{trail}");
    // The same trace again: the case is the same to the byte, and its report stays.
    let args = ["--policy", "fifo"];
    ok(&run_trace(d.path(), &flagged(), &case, &args));
    ok(&run(&["report", c, "--format", "json"]));
    ok(&run_trace(d.path(), &flagged(), &case, &args));
    assert!(case.join("report/report.json").is_file());
    // Another trace: the report described the old one and goes.
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "lifo"],
    ));
    assert!(!case.join("report").exists());
}

#[test]
fn a_truth_of_another_world_or_flagged_entity_is_refused() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "fifo"],
    ));
    let truth = bitcoin_data("regtest-world-a/ground_truth");
    ok(&run(&[
        "eval",
        "trace",
        case.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]));
    let before = std::fs::read(case.join("eval_trace.json")).unwrap();
    // A peel chain has one flagged entity.
    let o = run(&[
        "eval",
        "trace",
        case.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--flagged",
        "ransomware",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ransomware"), "{}", stderr(&o));
    // Another world's truth: none of its transactions is in this case.
    let sim = tempfile::tempdir().unwrap();
    simulate(sim.path(), "3", "2000", "default");
    let o = run(&[
        "eval",
        "trace",
        case.to_str().unwrap(),
        "--truth",
        sim.path().join("truth").to_str().unwrap(),
        "--flagged",
        "vendor",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("another dataset"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(case.join("eval_trace.json")).unwrap(),
        before,
        "the measurement stays"
    );
}

#[test]
fn a_truncated_index_file_is_rebuilt_not_read() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let before = trace(
        d.path(),
        &flagged(),
        &dir.path().join("a"),
        &["--policy", "fifo"],
    );
    // Cut short as a full disk or a killed build leaves them (this panicked before).
    for f in ["addr_str", "block_time", "in_prev"] {
        let p = d.path().join("regtest/index").join(f);
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..100]).unwrap();
    }
    let after = trace(
        d.path(),
        &flagged(),
        &dir.path().join("b"),
        &["--policy", "fifo"],
    );
    assert_eq!(before["results"], after["results"]);
}

#[test]
fn a_rerun_with_output_flags_or_an_extra_file_keeps_the_case_and_its_report() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    let c = case.to_str().unwrap();
    ok(&run(&["case", "init", c, "--number", "1"]));
    let o = run(&["report", c]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no trace yet"), "{}", stderr(&o));
    let base = [
        "trace",
        "--data",
        d.path().to_str().unwrap(),
        "--seed",
        &flagged(),
        "--out",
        c,
    ];
    let base: Vec<&str> = base.to_vec();
    ok(&run(&base));
    let before = std::fs::read(case.join("trace.json")).unwrap();
    ok(&run(&["report", c, "--format", "json"]));
    std::fs::write(case.join("my-notes.txt"), "mine").unwrap();
    let mut quiet = base.clone();
    quiet.insert(1, "--quiet");
    ok(&run(&quiet));
    assert_eq!(std::fs::read(case.join("trace.json")).unwrap(), before);
    assert!(case.join("report/report.json").is_file() && case.join("my-notes.txt").is_file());
    // The trail logs what was typed.
    let trail = std::fs::read_to_string(case.join("audit.jsonl")).unwrap();
    assert!(trail.lines().last().unwrap().contains("--quiet"));
    // A seed file named by another path is the same question: not refused as "a case of
    // another trace" (it was, without --force).
    let seeds = dir.path().join("seeds.csv");
    std::fs::copy(flagged().trim_start_matches('@'), &seeds).unwrap();
    let by_file_in = |cwd: &std::path::Path, seed: &str| {
        std::process::Command::new(bin())
            .current_dir(cwd)
            .args(["trace", "--quiet", "--data"])
            .arg(d.path())
            .args(["--seed", seed, "--out", c])
            .output()
            .unwrap()
    };
    ok(&run(&[
        "trace",
        "--quiet",
        "--force",
        "--data",
        d.path().to_str().unwrap(),
        "--seed",
        &format!("@{}", seeds.display()),
        "--out",
        c,
    ]));
    let by_file = |seed: &str| by_file_in(dir.path(), seed);
    ok(&by_file("@seeds.csv"));
    ok(&by_file("@./seeds.csv"));
    // From another working directory, whose relative paths the case's recorded command
    // cannot be resolved against: the same parameters, seed file and dataset content.
    let sub = dir.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    ok(&by_file_in(&sub, "@../seeds.csv"));
    ok(&by_file("@seeds.csv"));
    let other = by_file("bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663");
    assert_eq!(
        other.status.code(),
        Some(1),
        "another seed is another question"
    );
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("another trace"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn verify_checks_every_rendering_and_measurement_and_export_refuses_a_changed_case() {
    let d = labelled_world();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    let c = case.to_str().unwrap();
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "fifo"],
    ));
    let truth = bitcoin_data("regtest-world-a/ground_truth");
    ok(&run(&[
        "eval",
        "trace",
        c,
        "--truth",
        truth.to_str().unwrap(),
    ]));
    ok(&run(&["report", c, "--format", "json"]));
    let other = dir.path().join("report2");
    ok(&run(&[
        "report",
        c,
        "--format",
        "json",
        "--out",
        other.to_str().unwrap(),
    ]));
    let verify = || run(&["case", "verify", c, "--no-rerun"]);
    ok(&verify());
    // A forged measurement fails verify.
    let eval = case.join("eval_trace.json");
    let text = std::fs::read_to_string(&eval).unwrap();
    std::fs::write(
        &eval,
        text.replacen("\"signed_error_ppm\"", "\"signed_error_ppm\" ", 1),
    )
    .unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("eval_trace.json changed"),
        "{}",
        stdout(&o)
    );
    std::fs::write(&eval, text).unwrap();
    // An edited file of the first report fails too, though a second report came after.
    let first = case.join("report/report.json");
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replacen('{', "{ ", 1)).unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("report/report.json changed"),
        "{}",
        stdout(&o)
    );
    // Export refuses to bundle it.
    let o = run(&[
        "case",
        "export",
        c,
        "--bundle",
        dir.path().join("b.zip").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("report/report.json changed"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&first, text).unwrap();
    // A wrong --path writes nothing.
    let nowhere = dir.path().join("x2");
    let o = run(&[
        "report",
        c,
        "--path",
        "E999",
        "--out",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!nowhere.exists());
    // Another trace into the case: the old measurement goes with the old report.
    ok(&run_trace(
        d.path(),
        &flagged(),
        &case,
        &["--policy", "lifo"],
    ));
    assert!(!eval.exists());
}

#[test]
fn a_moved_working_folder_verifies_with_its_seed_file_beside_the_case() {
    let d = labelled_world();
    let work = tempfile::tempdir().unwrap();
    let seeds = work.path().join("vendor.csv");
    std::fs::copy(gt("flagged.csv"), &seeds).unwrap();
    let data = work.path().join("data");
    copy_dir(d.path(), &data);
    let case = work.path().join("case");
    ok(&run(&[
        "trace",
        "--quiet",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        &format!("@{}", seeds.display()),
        "--policy",
        "fifo",
        "--out",
        case.to_str().unwrap(),
    ]));
    let moved = tempfile::tempdir().unwrap();
    for f in ["vendor.csv", "data", "case"] {
        std::fs::rename(work.path().join(f), moved.path().join(f)).unwrap();
    }
    let o = run(&[
        "case",
        "verify",
        moved.path().join("case").to_str().unwrap(),
        "--data",
        moved.path().join("data").to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && stdout(&o).contains("the trace reproduces"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn a_part_of_another_layout_is_refused_by_name_not_a_panic() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let d = world_with_labels(None);
    let dir = d.path().join("regtest/outputs");
    let part = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    // The same rows with `value` written as text, as another tool might.
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&part).unwrap())
        .unwrap()
        .with_batch_size(1 << 24)
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1);
    let b = batches[0].clone();
    let schema = b.schema();
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "value" {
                arrow_schema::Field::new("value", arrow_schema::DataType::Utf8, false)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| {
            if f.name() == "value" {
                let v = c
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap();
                Arc::new(StringArray::from(
                    v.iter()
                        .map(|x| x.map(|x| x.to_string()))
                        .collect::<Vec<_>>(),
                )) as ArrayRef
            } else {
                c.clone()
            }
        })
        .collect();
    let changed = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap();
    let staged = chaintrace::store::sink::stage(&part, &changed).unwrap();
    chaintrace::store::sink::commit(std::slice::from_ref(&staged)).unwrap();
    let out = d.path().join("case");
    let o = run_trace(d.path(), &flagged(), &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("column value") && e.contains("part-"), "{e}");
}

/// A re-trace that fails while it writes its files (here: one of them cannot be created)
/// leaves the old case whole, report included; the old code removed the case's files and
/// report first, and then refused the folder as "not a case folder". A folder left with
/// only the audit trail, a report and temporary files is still a case (`--force` replaces
/// it).
#[test]
fn a_retrace_failing_while_it_writes_leaves_the_old_case_whole() {
    let d = world_with_labels(None);
    let case = d.path().join("case");
    trace(d.path(), &flagged(), &case, &[]);
    // The case as `serve` and `stats` take it (--case) or as CASE.
    ok(&run(&["report", "--case", case.to_str().unwrap()]));
    ok(&run(&["report", case.to_str().unwrap()]));
    let before = tree(&case);
    assert!(
        before.keys().any(|k| k.starts_with("report/")),
        "{:?}",
        before.keys()
    );
    // A directory where the new ends.parquet is staged: that file cannot be created.
    std::fs::create_dir_all(case.join(".ends.parquet.tmp/x")).unwrap();
    let o = run_trace(d.path(), &flagged(), &case, &["--policy", "fifo"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(".ends.parquet.tmp"), "{}", stderr(&o));
    std::fs::remove_dir_all(case.join(".ends.parquet.tmp")).unwrap();
    let after = tree(&case);
    for (name, bytes) in &before {
        if name.starts_with("audit") {
            continue;
        }
        assert!(after.get(name) == Some(bytes), "{name} changed or is gone");
    }
    // The same trace again, without --force: it is recognised as this case (the report
    // stays).
    let same_trace = || {
        run(&[
            "trace",
            "--quiet",
            "--data",
            d.path().to_str().unwrap(),
            "--seed",
            &flagged(),
            "--out",
            case.to_str().unwrap(),
        ])
    };
    ok(&same_trace());
    assert!(case.join("report").is_dir());
    // A folder the old code left: the audit trail, the report and temporary files.
    for f in ["trace.json", "edges.parquet", "ends.parquet", "SHA256SUMS"] {
        std::fs::remove_file(case.join(f)).unwrap();
    }
    std::fs::write(case.join(".trace.json.tmp"), b"{").unwrap();
    let o = same_trace();
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    ok(&run_trace(d.path(), &flagged(), &case, &[]));
    assert!(case.join("trace.json").is_file());
}
