//! `chaintrace report` and `chaintrace demo` on the regtest world: charts that parse and
//! decode, an evidence report that holds every transfer and loads nothing from outside,
//! exports with the trace's counts, exact fiat values, byte-identical reruns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

fn gt(name: &str) -> PathBuf {
    bitcoin_data(&format!("regtest-world-a/ground_truth/{name}"))
}

/// The regtest dataset with the exchange labelled, and the vendor's forward trace under all
/// five models in `case/`.
fn traced_case() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest(&bitcoin_data("regtest-world-a/blocks"), &data, &[]));
    let text = std::fs::read_to_string(gt("addresses.csv")).unwrap();
    let mut csv = String::from("address,label,category,actor\n");
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] == "exchange" {
            csv.push_str(&format!("{},exchange,exchange,exchange\n", f[0]));
        }
    }
    import_labels(&data, &csv);
    let seeds = format!("@{}", gt("flagged.csv").display());
    ok(&run(&[
        "trace",
        "--quiet",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        &seeds,
        "--policy",
        "all",
        "--stop-at",
        "exchange",
        "--max-hops",
        "20",
        // Through the vendor's CoinJoin too: its dust spreads the trace over many
        // transactions, which is what these chart and table tests need.
        "--through-coinjoins",
        "--out",
        d.path().join("case").to_str().unwrap(),
    ]));
    d
}

fn report(case: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "report",
        case.to_str().unwrap(),
        "--timestamp",
        "2026-11-29T12:00:00Z",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Width and height attributes of an SVG's root.
fn svg_size(doc: &roxmltree::Document) -> (u32, u32) {
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let n = |a: &str| root.attribute(a).unwrap().parse::<u32>().unwrap();
    (n("width"), n("height"))
}

#[test]
fn charts_parse_decode_and_show_every_node() {
    let d = traced_case();
    let case = d.path().join("case");
    ok(&report(&case, &[]));
    let out = case.join("report");
    let rep = json(&out.join("report.json"));
    let chart_nodes = rep["chart"]["nodes"].as_array().unwrap();
    assert!(chart_nodes.len() > 20, "{}", chart_nodes.len());
    // The summary: one box per receiving entity, edges keyed E1... to the exits table.
    let summary = std::fs::read_to_string(out.join("summary.svg")).unwrap();
    assert!(summary.contains("tag: exchange (exchange)") && summary.contains("E1"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<td>E1</td>"));
    for name in ["flow", "sankey", "timeline"] {
        let text = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name}.svg: {e}"));
        let texts: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .map(|n| n.text().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let (w, h) = svg_size(&doc);
        // The PNG is the same picture at the same size, and not blank.
        let dec = png::Decoder::new(std::fs::File::open(out.join(format!("{name}.png"))).unwrap());
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (w, h), "{name}.png");
        let dark = buf.chunks(3).filter(|p| p.iter().all(|&c| c < 100)).count();
        assert!(
            dark > 1000,
            "{name}.png has almost nothing drawn ({dark} dark pixels)"
        );
        if name == "flow" {
            assert_eq!(
                (w as i64, h as i64),
                (
                    rep["chart"]["width"].as_i64().unwrap(),
                    rep["chart"]["height"].as_i64().unwrap()
                )
            );
            for n in chart_nodes {
                let title = n["title"].as_str().unwrap();
                assert!(
                    texts.contains(title),
                    "flow.svg lacks the node label {title}"
                );
            }
            assert!(texts.contains("exchange"));
            assert!(texts.contains(rep["dataset_manifest_sha256"].as_str().unwrap()));
            assert!(texts.contains("2026-11-29T12:00:00Z"));
        }
        if name == "sankey" {
            assert!(
                texts.contains("back into seeds") && texts.contains("exchange"),
                "{texts}"
            );
        }
    }
}

#[test]
fn the_html_report_holds_every_transfer_and_nothing_external() {
    let d = traced_case();
    let case = d.path().join("case");
    let o = report(&case, &[]);
    ok(&o);
    let trace = json(&case.join("trace.json"));
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    let txids: BTreeSet<&str> = trace["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["edges"].as_array().unwrap())
        .map(|e| e["txid"].as_str().unwrap())
        .collect();
    assert!(txids.len() > 50, "{}", txids.len());
    for t in &txids {
        assert!(html.contains(t), "the report lacks transaction {t}");
    }
    assert!(html.contains(trace["dataset_manifest_sha256"].as_str().unwrap()));
    // Every produced file's hash is in the report, and SHA256SUMS covers the report too.
    let sums = std::fs::read_to_string(case.join("report/SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let (hash, file) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(case.join("report").join(file)).unwrap();
        use std::io::Write;
        let mut p = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.take().unwrap().write_all(&bytes).unwrap();
        let got = String::from_utf8(p.wait_with_output().unwrap().stdout).unwrap();
        assert!(got.starts_with(hash), "{file}: {got} != {hash}");
        // The report names the hash of every file it wrote and of trace.json (not of
        // itself, nor of the case's Parquet, which trace.json's hash pins).
        if file == "../trace.json" || (file != "report.html" && !file.starts_with("../")) {
            assert!(html.contains(hash), "the report lacks the hash of {file}");
        }
    }
    // The report's 14 files and the case's trace.json, edges.parquet and ends.parquet.
    assert_eq!(sums.lines().count(), 17);
    // Self-contained: no script, stylesheet, image or frame from anywhere.
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
    ] {
        assert!(!lower.contains(bad), "the report contains {bad}");
    }
    for (i, _) in lower.match_indices("http") {
        let before = &lower[i.saturating_sub(7)..i];
        assert!(
            before.ends_with("xmlns=\""),
            "a URL outside an XML namespace at {i}: {}",
            &lower[i..i + 40]
        );
    }
    // Methodology and question.
    for p in [
        "poison",
        "haircut",
        "fifo",
        "lifo",
        "tiho",
        "Möser",
        "Anderson",
        "No address clustering",
    ] {
        assert!(html.contains(p), "the report lacks {p}");
    }
}

#[test]
fn exports_match_the_trace() {
    let d = traced_case();
    let case = d.path().join("case");
    ok(&report(
        &case,
        &["--policy", "fifo", "--format", "graphml,dot,csv,json"],
    ));
    let out = case.join("report");
    assert!(!out.join("flow.svg").exists() && !out.join("report.html").exists());
    let trace = json(&case.join("trace.json"));
    let fifo = trace["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "fifo")
        .unwrap();
    let edges = fifo["edges"].as_array().unwrap();
    let mut nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|e| [e["from"].as_str().unwrap(), e["to"].as_str().unwrap()])
        .collect();
    nodes.extend(
        trace["seed_nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap()),
    );
    let text = std::fs::read_to_string(out.join("graph.graphml")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let count = |tag: &str| {
        doc.descendants()
            .filter(|n| n.tag_name().name() == tag)
            .count()
    };
    assert_eq!(count("node"), nodes.len());
    assert_eq!(count("edge"), edges.len());
    // Edge amounts in the GraphML add up to the trace's.
    let total: u64 = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "data" && n.attribute("key") == Some("amount"))
        .map(|n| n.text().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        total,
        edges
            .iter()
            .map(|e| e["amount"].as_u64().unwrap())
            .sum::<u64>()
    );
    let dot = std::fs::read_to_string(out.join("graph.dot")).unwrap();
    assert!(dot.starts_with("digraph"));
    assert_eq!(dot.matches(" -> ").count(), edges.len());
    // edges.csv: every transfer of every model, exact.
    let csv = std::fs::read_to_string(out.join("edges.csv")).unwrap();
    let all: usize = trace["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["edges"].as_array().unwrap().len())
        .sum();
    assert_eq!(csv.lines().count(), all + 1);
    let rep = json(&out.join("report.json"));
    assert_eq!(rep["chart_policy"], "fifo");
    assert_eq!(rep["edges"].as_array().unwrap().len(), edges.len());
}

#[test]
fn reruns_are_byte_identical_and_fiat_is_exact() {
    let d = traced_case();
    let case = d.path().join("case");
    // A price file covering the regtest days: 60,000.123456 per BTC on every day.
    let prices = d.path().join("prices.csv");
    let mut p = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    for day in 20..=30 {
        p.push_str(&format!(
            "2026-11-{day},1,1,1,60000.123456,60000.123456,1\n"
        ));
    }
    std::fs::write(&prices, p).unwrap();
    let args = [
        "--prices",
        prices.to_str().unwrap(),
        "--fiat",
        "usd",
        "--collapse-peel-chains",
    ];
    ok(&report(&case, &args));
    let first = tree(&case.join("report"));
    ok(&report(&case, &args));
    assert_eq!(
        first,
        tree(&case.join("report")),
        "a rerun changed the report"
    );
    // Without a pinned time only the files that print the generation time may differ.
    ok(&run(&[
        "report",
        case.to_str().unwrap(),
        "--prices",
        prices.to_str().unwrap(),
        "--fiat",
        "usd",
        "--collapse-peel-chains",
    ]));
    let now = tree(&case.join("report"));
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        let stamped = [".svg", ".png", ".html", ".json", "SHA256SUMS"]
            .iter()
            .any(|x| name.ends_with(x));
        assert!(
            stamped || &now[name] == bytes,
            "{name} changed without the timestamp changing"
        );
        if name.ends_with(".html") {
            let a = String::from_utf8_lossy(bytes).replace("2026-11-29T12:00:00Z", "");
            assert_ne!(
                a,
                String::from_utf8_lossy(bytes),
                "the pinned time is printed"
            );
        }
    }
    let csv = std::fs::read_to_string(case.join("report/edges.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"value_usd"));
    let ai = header.iter().position(|h| *h == "amount_units").unwrap();
    let mut checked = 0;
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let sat: u128 = f[ai].parse().unwrap();
        // sat / 1e8 BTC * 60,000.123456 USD, in cents (1e8 sat * 1e6 micro-USD / 1e2),
        // half up: integer arithmetic only.
        let cents = (sat * 60_000_123_456 + 500_000_000_000) / 1_000_000_000_000;
        let want = format!("{}.{:02}", cents / 100, cents % 100);
        assert_eq!(f.last().unwrap(), &want, "{l}");
        checked += 1;
    }
    assert!(checked > 100);
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(html.contains("USD") && html.contains("peel chain"));
    let rep = json(&case.join("report/report.json"));
    assert!(
        rep["chart"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["category"] == "peel chain")
    );
}

#[test]
fn bad_report_arguments_say_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&["report", d.path().join("nowhere").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("chaintrace trace --out"),
        "{}",
        stderr(&o)
    );
    let c = traced_case();
    let case = c.path().join("case");
    let o = report(&case, &["--format", "docx"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown format \"docx\""),
        "{}",
        stderr(&o)
    );
    let o = report(&case, &["--policy", "lifo2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no lifo2 result"), "{}", stderr(&o));
    let bad = c.path().join("bad.csv");
    std::fs::write(&bad, "Date,Close\n2026-11-25,abc\n").unwrap();
    let o = report(&case, &["--prices", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bad.csv:2: bad price"),
        "{}",
        stderr(&o)
    );
    std::fs::write(case.join("trace.json"), "{\"tool\": 1}").unwrap();
    let o = report(&case, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("run the trace again"), "{}", stderr(&o));
}

#[test]
fn the_demo_runs_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo-out");
    let o = run(&[
        "demo",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--regtest",
        bundled_regtest().to_str().unwrap(),
        "--txs",
        "4000",
        "--timestamp",
        "2026-11-29T12:00:00Z",
        "--json",
    ]);
    ok(&o);
    // --json: stdout is the demo's one JSON document; the steps' lines went to stderr.
    let v: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    for world in ["simulated", "regtest"] {
        assert!(
            v[world]["headline"].as_str().unwrap().contains("exchange"),
            "{v}"
        );
    }
    let text = stderr(&o);
    assert!(
        text.contains("reached") && text.contains("exchange"),
        "{text}"
    );
    for world in ["simulated", "regtest"] {
        let rep = out.join(world).join("case/report");
        for f in [
            "report.html",
            "flow.svg",
            "flow.png",
            "sankey.png",
            "timeline.png",
            "graph.graphml",
            "SHA256SUMS",
        ] {
            assert!(rep.join(f).is_file(), "{world}: no {f}");
        }
        let r = json(&rep.join("report.json"));
        // The vendor's funds reach at least one exchange under haircut.
        let exch = r["exposure_category"]["haircut"]["exchange"]
            .as_u64()
            .unwrap_or(0);
        assert!(exch > 0, "{world}: nothing reached an exchange");
        assert_eq!(
            v[world]["headline"], r["headline"],
            "{world}: the headline printed is the report's"
        );
        let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
        // The trace's error was measured against the world's truth and is in the report.
        assert!(html.contains("Measured error of this trace"), "{world}");
        // Clustering was used (cluster level) and its accuracy was measured by the demo.
        assert!(
            html.contains("Measured accuracy") && html.contains("multi-input"),
            "{world}"
        );
    }
    // The simulated world spans 2025: its trace is scored month by month too, the months
    // adding up to the whole for each model.
    let ev = json(&out.join("simulated/case/eval_trace.json"));
    let rows = ev["by_month"].as_array().expect("by_month");
    for m in ev["models"].as_array().unwrap() {
        let p = m["policy"].as_str().unwrap();
        let of: Vec<&Value> = rows.iter().filter(|r| r["policy"] == p).collect();
        assert!(of.len() >= 3, "{p}: {} months", of.len());
        let sum = |k: &str| of.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("traced"), m["traced"].as_u64().unwrap(), "{p}");
        assert_eq!(sum("truth"), m["truth"].as_u64().unwrap(), "{p}");
    }
    assert!(ev["by_month_note"].is_null(), "{}", ev["by_month_note"]);
    // The regtest world's truth (peel_chain.csv) has no heights: said, not an empty list.
    let ev = json(&out.join("regtest/case/eval_trace.json"));
    assert!(
        ev["by_month_note"]
            .as_str()
            .unwrap()
            .contains("no block heights"),
        "{}",
        ev["by_month_note"]
    );
    // The regtest trace is the real chain's: its seeds are the ground truth's flagged addresses.
    let trace = json(&out.join("regtest/case/trace.json"));
    assert!(trace["parameters"]["seed_outputs"].as_u64().unwrap() > 0);
}

#[test]
fn fiat_without_a_price_says_so_and_test_networks_are_illustrative() {
    let d = traced_case();
    let case = d.path().join("case");
    let prices = d.path().join("prices.csv");
    std::fs::write(
        &prices,
        "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-01,1,1,1,7200.17,7200.17,1\n",
    )
    .unwrap();
    let o = report(
        &case,
        &["--prices", prices.to_str().unwrap(), "--fiat", "usd"],
    );
    ok(&o);
    let e = stderr(&o);
    assert!(e.contains("has no price for") && e.contains("not 0"), "{e}");
    assert!(e.contains("illustrative") && e.contains("regtest"), "{e}");
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(html.contains("no price"));
    assert!(
        !html.contains("0.00 USD"),
        "a day without a price is not worth 0.00"
    );
    assert!(html.contains("illustrative"));
}

#[test]
fn attributions_name_their_tag_and_the_report_lists_its_limitations() {
    let d = traced_case();
    let case = d.path().join("case");
    let t = json(&case.join("trace.json"));
    // The method is kept with the case as the trace used it, and the report shows it.
    let haircut = t["methodology"]["haircut"].as_str().unwrap().to_string();
    assert!(haircut.len() > 40);
    let atts = t["attributions"].as_object().unwrap();
    assert!(!atts.is_empty());
    let (addr, a) = atts.iter().next().unwrap();
    assert_eq!(a["category"], "exchange");
    assert!(a["tag"].as_str().unwrap().contains(".csv:"), "{a}");
    ok(&report(&case, &[]));
    let html = std::fs::read_to_string(case.join("report/report.html")).unwrap();
    assert!(html.contains("Limitations") && html.contains("inferences"));
    assert!(html.contains(addr.as_str()) && html.contains("tag: exchange ("));
    let escaped = chaintrace::report::export::xml(&haircut);
    assert!(
        html.contains(&escaped),
        "the stored definition is in the report"
    );
}

#[test]
fn the_pdf_exhibit_opens_and_holds_every_exit() {
    let d = traced_case();
    let case = d.path().join("case");
    ok(&run(&[
        "case",
        "init",
        case.to_str().unwrap(),
        "--number",
        "2026-117",
    ]));
    ok(&report(&case, &["--format", "pdf,csv"]));
    let pdf = case.join("report/report.pdf");
    let info = std::process::Command::new("pdfinfo")
        .arg(&pdf)
        .output()
        .expect("pdfinfo (poppler-utils) is installed: .ci/run installs it");
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    assert!(info.contains("A4") || info.contains("595 x 842"), "{info}");
    let text = std::process::Command::new("pdftotext")
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext is installed");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let trace = json(&case.join("trace.json"));
    let haircut = trace["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "haircut")
        .unwrap();
    let exits: Vec<&Value> = haircut["ends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "exit")
        .collect();
    assert!(!exits.is_empty());
    for e in exits {
        let txid = e["txid"].as_str().unwrap();
        assert!(text.contains(txid), "the PDF lacks exit {txid}");
    }
    let pages: usize = info
        .lines()
        .find(|l| l.starts_with("Pages:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(text.contains(&format!("page {pages} of {pages}")));
    assert!(text.contains("case 2026-117") && text.contains("TEST DATA"));
    assert!(text.contains("Limitations"));
    // Test data on every page, not only the first; the provenance and the trail in the PDF.
    assert_eq!(
        text.matches("TEST DATA (regtest) |").count(),
        pages,
        "{text}"
    );
    assert!(text.contains("Provenance") && text.contains("Notes and audit trail"));
    assert!(text.contains("labels/tags.parquet"));
}

#[test]
fn a_case_from_before_entered_seeds_is_not_read_as_zero() {
    let d = traced_case();
    let case = d.path().join("case");
    // Remove the field as an older chaintrace wrote trace.json.
    let path = case.join("trace.json");
    let mut t = json(&path);
    for r in t["results"].as_array_mut().unwrap() {
        r["totals"].as_object_mut().unwrap().remove("entered_seeds");
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
    // As such a case was written: with no SHA256SUMS or audit trail to check it by.
    for f in ["SHA256SUMS", "audit.jsonl", "audit.head"] {
        std::fs::remove_file(case.join(f)).unwrap();
    }
    ok(&report(&case, &["--format", "json"]));
    let rep = json(&case.join("report/report.json"));
    let headline = rep["headline"].as_str().unwrap();
    assert!(!headline.contains("of 0.00000000 BTC"), "{headline}");
}

#[test]
fn a_detail_chart_follows_one_exit_path_and_the_pdf_draws_the_summary() {
    let d = traced_case();
    let case = d.path().join("case");
    let trace = json(&case.join("trace.json"));
    let haircut = trace["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "haircut")
        .unwrap();
    let exits: Vec<&Value> = haircut["ends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "exit")
        .collect();
    // The exit with the longest path (E-numbers are 1-based, in the exits table's order).
    let (i, longest) = exits
        .iter()
        .enumerate()
        .max_by_key(|(_, e)| e["path"].as_array().unwrap().len())
        .unwrap();
    let path: Vec<&str> = longest["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(path.len() >= 2, "the case has a multi-hop exit");
    let n = i + 1;
    let arg = format!("E{n}");
    ok(&report(&case, &["--format", "svg,pdf", "--path", &arg]));
    let svg = std::fs::read_to_string(case.join(format!("report/path-E{n}.svg"))).unwrap();
    roxmltree::Document::parse(&svg).unwrap();
    for t in &path {
        assert!(svg.contains(t), "the path chart lacks {t}");
    }
    assert!(svg.contains(&format!("E{n}: tag: exchange")));
    let text = std::process::Command::new("pdftotext")
        .args([case.join("report/report.pdf").to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext is installed");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains(&format!("Path of exit E{n}, from a seed")));
    let page = &text[text.find(&format!("Path of exit E{n}")).unwrap()..];
    for t in &path {
        assert!(page.contains(t), "the PDF's path page lacks {t}");
    }
    // The summary chart is drawn in the PDF, one box per receiving entity.
    assert!(text.contains("Summary: where the seeds' value went"));
    assert!(text.contains("tag: exchange (exchange)"));
    // The full chart has its column headers.
    let flow = std::fs::read_to_string(case.join("report/flow.svg")).unwrap();
    assert!(flow.contains("\nseeds\n") && flow.contains("\nhop 1\n"));
    // An exit that does not exist, and text that names none, are refused.
    let o = report(&case, &["--path", "E9999"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("E9999") && e.contains(&format!("{} exit(s)", exits.len())),
        "{e}"
    );
    let o = report(&case, &["--path", "first"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("\"first\""), "{}", stderr(&o));
}

#[test]
fn a_changed_case_is_not_reported_and_old_report_files_do_not_linger() {
    let d = traced_case();
    let case = d.path().join("case");
    ok(&report(&case, &["--format", "svg,html,pdf"]));
    assert!(case.join("report/report.pdf").is_file());
    // A partial re-render removes what the earlier one wrote and this one does not.
    let o = report(&case, &["--format", "svg"]);
    ok(&o);
    assert!(!case.join("report/report.pdf").exists() && !case.join("report/report.html").exists());
    assert!(stdout(&o).contains("report.pdf"), "{}", stdout(&o));
    // One byte of the evidence changed after the trace: no report of it.
    let edges = case.join("edges.parquet");
    let mut b = std::fs::read(&edges).unwrap();
    let i = b.len() / 2;
    b[i] ^= 1;
    std::fs::write(&edges, b).unwrap();
    let o = report(&case, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("edges.parquet") && e.contains("case verify"),
        "{e}"
    );
    // Without the audit trail, SHA256SUMS still catches it.
    let trail = std::fs::read(case.join("audit.jsonl")).unwrap();
    std::fs::remove_file(case.join("audit.jsonl")).unwrap();
    let o = report(&case, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SHA256SUMS"), "{}", stderr(&o));
    std::fs::write(case.join("audit.jsonl"), trail).unwrap();
    // Changed, and its SHA256SUMS line changed to match: the audit trail still knows.
    use bitcoin::hashes::Hash;
    let h = bitcoin::hashes::sha256::Hash::hash(&std::fs::read(&edges).unwrap()).to_string();
    let sums = std::fs::read_to_string(case.join("SHA256SUMS")).unwrap();
    let fixed: String = sums
        .lines()
        .map(|l| {
            if l.ends_with("  edges.parquet") {
                format!("{h}  edges.parquet\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(case.join("SHA256SUMS"), fixed).unwrap();
    let o = report(&case, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("audit trail"), "{}", stderr(&o));
}

#[test]
fn the_transfer_table_is_per_output_and_poison_stands_apart() {
    let d = traced_case();
    let case = d.path().join("case");
    let out = d.path().join("html-only");
    // Only the HTML, its table cut: the edges.csv it points to is written all the same.
    ok(&report(
        &case,
        &[
            "--format",
            "html",
            "--max-table-rows",
            "5",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert!(out.join("edges.csv").is_file());
    let csv = std::fs::read_to_string(out.join("edges.csv")).unwrap();
    assert!(
        csv.starts_with("policy,txid,vout,height,time,from,from_address,to,to_address,"),
        "{csv}"
    );
    // SHA256SUMS checks from the report's own folder.
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{sums}{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<th>output (txid:vout)</th>") && html.contains("<th>touched by poison</th>")
    );
    assert!(
        !html.contains("poison: whole outputs touched"),
        "poison is not a column of exposure"
    );
    assert!(html.contains("Poison per entity: outputs touched"));
    let trace = json(&case.join("trace.json"));
    let e = &trace["results"][0]["edges"][0];
    assert!(html.contains(&format!("{}:{}", e["txid"].as_str().unwrap(), e["vout"])));
}

#[test]
fn a_case_of_a_newer_format_is_refused_with_a_message() {
    let d = traced_case();
    let case = d.path().join("case");
    let path = case.join("trace.json");
    let mut t = json(&path);
    assert_eq!(t["format_version"], 1);
    t["format_version"] = 99.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
    std::fs::remove_file(case.join("SHA256SUMS")).unwrap();
    let o = report(&case, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("case format 99"), "{}", stderr(&o));
}

#[test]
fn chart_amounts_carry_every_satoshi_digit() {
    let d = traced_case();
    let case = d.path().join("case");
    ok(&report(&case, &["--format", "svg"]));
    for chart in ["sankey.svg", "flow.svg"] {
        let svg = std::fs::read_to_string(case.join("report").join(chart)).unwrap();
        // Every "N.D BTC" on the chart has 8 decimals (0.10000000, not 0.1).
        let mut found = 0;
        for (i, _) in svg.match_indices(" BTC") {
            let head = &svg[..i];
            let num = head
                .rsplit(|c: char| !(c.is_ascii_digit() || c == '.'))
                .next()
                .unwrap_or("");
            if let Some((_, frac)) = num.split_once('.') {
                assert_eq!(frac.len(), 8, "{chart}: {num} BTC");
                found += 1;
            }
        }
        assert!(found > 0, "{chart} shows amounts");
    }
}
