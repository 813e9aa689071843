//! `chaintrace serve`: the canvas's API over the regtest world A (its numbers against the
//! command line's, its neighbours against the ground truth, a saved trace against
//! `chaintrace trace`), its guards (token, Host, loopback only, limits, malformed
//! requests), and the page in a real browser (headless Chromium).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::util::*;

/// The hop-1 sender of the vendor's peel chain, and its truth row.
fn peel(hop: usize) -> Vec<String> {
    let text = std::fs::read_to_string(bitcoin_data("regtest-world-a/ground_truth/peel_chain.csv"))
        .unwrap();
    text.lines()
        .nth(hop + 1)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// World A ingested, clustered, with the exchange's addresses labelled.
fn world() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        d.path(),
        &[],
    ));
    let text = std::fs::read_to_string(bitcoin_data("regtest-world-a/ground_truth/addresses.csv"))
        .unwrap();
    let mut csv = String::from("address,label,category,actor,source\n");
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] == "exchange" {
            csv.push_str(&format!(
                "{},{},exchange,exchange,ground truth\n",
                f[0], f[2]
            ));
        }
    }
    import_labels(d.path(), &csv);
    ok(&run(&[
        "cluster",
        "bitcoin",
        "--data",
        d.path().to_str().unwrap(),
    ]));
    d
}

/// A running `chaintrace serve`, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    token: String,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data: &Path, case: Option<&Path>) -> Server {
        let mut cmd = Command::new(bin());
        cmd.args(["serve", "--json", "--data", data.to_str().unwrap()]);
        if let Some(c) = case {
            cmd.args(["--case", c.to_str().unwrap()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("serve printed {line:?}, not its JSON line: {e}"));
        let address = v["address"].as_str().unwrap().to_string();
        Server {
            child,
            port: address.rsplit(':').next().unwrap().parse().unwrap(),
            token: v["token"].as_str().unwrap().to_string(),
            address,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GET with the token: (status, JSON).
    fn get(&self, path: &str) -> (u16, Value) {
        http("GET", &self.url(path), Some(&self.token), None, None)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http(
            "POST",
            &self.url(path),
            Some(&self.token),
            Some(body.to_string()),
            None,
        )
    }
}

/// One HTTP request by reqwest on a current-thread runtime: (status, JSON body).
fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
    host: Option<&str>,
) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut r = c.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(h) = host {
            r = r.header("Host", h);
        }
        if let Some(b) = body {
            r = r.header("Content-Type", "application/json").body(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{method} {url}: {status} answered {text:?}, not JSON: {e}")
        });
        (status, v)
    })
}

fn cli_json(args: &[&str]) -> Value {
    let o = run(args);
    ok(&o);
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn the_api_answers_as_the_command_line_and_the_truth() {
    let d = world();
    let data = d.path().to_str().unwrap();
    let s = Server::start(d.path(), None);
    let hop1 = peel(1);
    let vendor = hop1[2].as_str();

    // The address page: its figures from the outputs table, its cluster as `cluster show`.
    let (st, page) = s.get(&format!("/api/address/{vendor}?limit=5"));
    assert_eq!(st, 200, "{page}");
    let outputs = read_table(&d.path().join("regtest"), "outputs");
    let paid: Vec<&Row> = outputs
        .iter()
        .filter(|r| r["address"].opt_str() == Some(vendor))
        .collect();
    let received: i64 = paid.iter().map(|r| r["value"].int()).sum();
    assert!(received > 0);
    assert_eq!(page["received"]["sat"].as_i64(), Some(received));
    assert_eq!(page["outputs"].as_u64(), Some(paid.len() as u64));
    let shown = cli_json(&["cluster", "show", "--data", data, "--json", vendor]);
    for k in [
        "stats",
        "representative",
        "merges_by_rule",
        "weakest_link",
        "labels",
    ] {
        assert_eq!(page["cluster"][k], shown[k], "cluster field {k}");
    }
    let (_, cl) = s.get(&format!("/api/cluster/{vendor}?top=10"));
    for k in [
        "stats",
        "top_counterparties",
        "sample_addresses",
        "held",
        "warnings",
    ] {
        assert_eq!(cl[k], shown[k], "cluster field {k}");
    }
    // Paging: pages of 1 cover the transactions once each, in order.
    let total = page["page"]["total"].as_u64().unwrap() as usize;
    let all: Vec<Value> = (0..total)
        .map(|i| {
            s.get(&format!("/api/address/{vendor}?limit=1&offset={i}"))
                .1["txs"][0]
                .clone()
        })
        .collect();
    let (_, whole) = s.get(&format!("/api/address/{vendor}?limit=200"));
    assert_eq!(whole["txs"].as_array().unwrap(), &all);

    // An exchange's labelled address: its tag with source and confidence.
    let exchange = hop1[3].as_str();
    let (_, ex) = s.get(&format!("/api/address/{exchange}"));
    assert_eq!(ex["tags"][0]["category"], "exchange");
    assert_eq!(ex["tags"][0]["source"], "ground truth");

    // Expand two hops forward: the neighbours the truth's peel chain records.
    let (_, e1) = s.get(&format!("/api/expand?address={vendor}&direction=forward"));
    let to: Vec<&str> = e1["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert!(
        to.contains(&hop1[3].as_str()) && to.contains(&hop1[6].as_str()),
        "{e1}"
    );
    let to_exchange = e1["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == hop1[3].as_str())
        .unwrap();
    assert_eq!(to_exchange["amount"].as_u64(), hop1[5].parse().ok());
    assert!(
        to_exchange["txids"]
            .as_array()
            .unwrap()
            .contains(&json!(hop1[1]))
    );
    let hop2 = peel(2);
    let (_, e2) = s.get(&format!(
        "/api/expand?address={}&direction=forward",
        hop1[6]
    ));
    let to2: Vec<&str> = e2["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert!(
        to2.contains(&hop2[3].as_str()) && to2.contains(&hop2[6].as_str()),
        "{e2}"
    );
    // Backward from hop 2's sender: the vendor funded it.
    let (_, b) = s.get(&format!(
        "/api/expand?address={}&direction=backward",
        hop1[6]
    ));
    assert!(
        b["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == vendor)
    );

    // A transaction: its inputs and outputs as the truth has them, the fee exact.
    let (_, tx) = s.get(&format!("/api/tx/{}", hop1[1]));
    assert_eq!(tx["inputs"][0]["address"], vendor);
    assert_eq!(tx["fee"].as_i64(), hop1[10].parse::<i64>().ok());
    // Search: an address, a txid and a label.
    assert_eq!(
        s.get(&format!("/api/search?q={vendor}")).1["kind"],
        "address"
    );
    assert_eq!(s.get(&format!("/api/search?q={}", hop1[1])).1["kind"], "tx");
    let (_, lab) = s.get("/api/search?q=exchange");
    assert_eq!(lab["kind"], "labels");
    assert!(lab["total"].as_u64().unwrap() > 0);

    // A trace through the API: the command line's answer.
    let (st, t) = s.post(
        "/api/trace",
        &json!({"seeds": [vendor], "policy": ["fifo"], "max_hops": 20}),
    );
    assert_eq!(st, 200, "{t}");
    let case = tempfile::tempdir().unwrap();
    let cli = cli_json(&[
        "trace",
        "--json",
        "--quiet",
        "--data",
        data,
        "--seed",
        vendor,
        "--policy",
        "fifo",
        "--out",
        case.path().to_str().unwrap(),
    ]);
    assert_eq!(t["models"][0]["totals"], cli[0]["totals"]);
    assert_eq!(t["models"][0]["exposure_entity"], cli[0]["exposure_entity"]);
    let exit = &t["models"][0]["exits"][0];
    assert_eq!(exit["entity"], "exchange");
    assert_eq!(
        exit["amount"].as_str().unwrap(),
        cli[0]["exposure_entity"]["exchange"].to_string()
    );
    // The chart: every box and edge laid out, edges with their transfers.
    let g = &t["models"][0]["graph"];
    assert!(g["nodes"].as_array().unwrap().len() >= 3);
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["transfers"].as_array().unwrap().is_empty())
    );
}

#[test]
fn a_trace_saved_through_the_api_is_the_command_lines_case_byte_for_byte() {
    let d = world();
    let case = tempfile::tempdir().unwrap();
    let c = case.path().join("case");
    let s = Server::start(d.path(), Some(&c));
    let vendor = peel(1)[2].clone();
    let notes = json!({"nodes": {vendor.clone(): "the vendor's first peel"}, "edges": {}});
    let (st, v) = s.post(
        "/api/save",
        &json!({"trace": {"seeds": [vendor], "policy": ["all"], "max_hops": 20}, "annotations": notes}),
    );
    assert_eq!(st, 200, "{v}");
    let files = ["trace.json", "edges.parquet", "ends.parquet", "SHA256SUMS"];
    let api: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(c.join(f)).unwrap())
        .collect();
    assert_eq!(
        serde_json::from_slice::<Value>(&std::fs::read(c.join("annotations.json")).unwrap())
            .unwrap(),
        notes
    );
    drop(s);
    // The same command line, typed: the same bytes.
    let argv: Vec<String> = serde_json::from_value(v["command"].clone()).unwrap();
    assert_eq!(argv[0], bin().to_str().unwrap());
    for f in files {
        std::fs::remove_file(c.join(f)).unwrap();
    }
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    ok(&run(&args));
    for (f, bytes) in files.iter().zip(&api) {
        assert!(&std::fs::read(c.join(f)).unwrap() == bytes, "{f} differs");
    }
    // A reloaded page gets the notes back; a different trace needs "replace", which keeps
    // the notes and logs both traces.
    let s = Server::start(d.path(), Some(&c));
    assert_eq!(s.get("/api/annotations").1["annotations"], notes);
    let other = json!({"trace": {"seeds": [vendor], "policy": ["fifo"], "max_hops": 3}, "annotations": notes});
    let (st, v) = s.post("/api/save", &other);
    assert_eq!(st, 409, "{v}");
    assert!(v["error"]["hint"].as_str().unwrap().contains("replace"));
    let mut again = other.clone();
    again["replace"] = json!(true);
    let (st, v) = s.post("/api/save", &again);
    assert_eq!(st, 200, "{v}");
    assert!(v["command"].as_array().unwrap().contains(&json!("--force")));
    drop(s);
    // The audit trail: the requests, the trace, the annotations, then the typed trace;
    // the chain verifies.
    let log = std::fs::read_to_string(c.join("audit.jsonl")).unwrap();
    let actions: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "trace").count(),
        3,
        "{actions:?}"
    );
    assert!(actions.contains(&"annotate".to_string()) && actions.contains(&"request".to_string()));
    ok(&run(&["case", "verify", c.to_str().unwrap()]));
    // The report carries the examiner's notes, and counts the canvas's requests.
    ok(&run(&[
        "report",
        c.to_str().unwrap(),
        "--format",
        "html,pdf",
    ]));
    let html = html_report(&c);
    assert!(
        html.contains("Examiner&#39;s notes") || html.contains("Examiner's notes"),
        "no notes section"
    );
    assert!(
        html.contains("the vendor&#39;s first peel") || html.contains("the vendor's first peel")
    );
    assert!(html.contains("request(s) on this case"));
}

#[test]
fn the_server_refuses_what_it_must_and_never_falls_over() {
    let d = world();
    let s = Server::start(d.path(), None);
    let info = s.url("/api/info");
    // No token, a wrong one, another Host: refused, each with a JSON error.
    let (st, v) = http("GET", &info, None, None, None);
    assert_eq!((st, v["error"]["kind"].as_str()), (401, Some("auth")));
    let (st, _) = http(
        "GET",
        &info,
        Some("0123456789abcdef0123456789abcdef"),
        None,
        None,
    );
    assert_eq!(st, 401);
    let (st, _) = http("GET", &info, Some(&s.token), None, Some("evil.example:80"));
    assert_eq!(st, 421);
    assert_eq!(s.get("/api/info").0, 200);
    // Loopback only: the socket the kernel lists for the port is bound to 127.0.0.1.
    assert!(s.address.starts_with("127.0.0.1:"), "{}", s.address);
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap()
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let port_hex = format!(":{:04X}", s.port);
    let listening: Vec<&str> = tcp
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&port_hex) && f[3] == "0A"
        })
        .collect();
    assert_eq!(listening.len(), 1, "{listening:?}");
    assert!(
        listening[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .starts_with("0100007F:")
    );
    // Bad input: each a 4xx JSON error with a message.
    let vendor = peel(1)[2].clone();
    let cases: Vec<(String, u16)> = vec![
        (
            "/api/address/bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq".into(),
            400,
        ),
        (
            "/api/address/0x52908400098527886E0F7030069857D2E4169EE7".into(),
            400,
        ),
        (format!("/api/address/{vendor}?limit=100000"), 422),
        (format!("/api/address/{vendor}?limit=abc"), 400),
        (format!("/api/address/{vendor}?colour=red"), 400),
        ("/api/tx/nothex".into(), 400),
        (format!("/api/tx/{}", "ab".repeat(32)), 404),
        ("/api/search?q=%20".into(), 400),
        ("/api/search".into(), 400),
        ("/api/search?q=no-such-thing-anywhere".into(), 404),
        ("/api/search?q=exchange&limit=5&offset=500".into(), 200),
        (
            format!("/api/expand?address={vendor}&direction=sideways"),
            400,
        ),
        (format!("/api/expand?address={vendor}&limit=9999"), 422),
        ("/api/nothing".into(), 404),
        ("/api/info?foo=1".into(), 400),
    ];
    for (path, want) in &cases {
        let (st, v) = s.get(path);
        assert_eq!(st, *want, "{path}: {v}");
        assert!(
            *want == 200 || !v["error"]["message"].as_str().unwrap().is_empty(),
            "{path}"
        );
    }
    // A word that matches nothing is not called a broken address; an address-like one is.
    let (_, v) = s.get("/api/search?q=binance");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no address, transaction or label"),
        "{v}"
    );
    let (_, v) = s.get("/api/search?q=bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is a mainnet address"),
        "{v}"
    );
    // Label search pages.
    let (_, p0) = s.get("/api/search?q=exchange&limit=10");
    let (_, p1) = s.get("/api/search?q=exchange&limit=10&offset=10");
    assert_eq!(p0["total"], p1["total"]);
    assert_ne!(p0["matches"][0], p1["matches"][0]);
    for (body, want) in [
        ("{not json".to_string(), 400),
        (json!({"seeds": []}).to_string(), 400),
        (json!({"seeds": [vendor], "max_hops": 500}).to_string(), 422),
        (
            json!({"seeds": [vendor], "policy": ["magic"]}).to_string(),
            400,
        ),
        (json!({"seeds": ["bcrt1qnotanaddress"]}).to_string(), 400),
        (json!({"seeds": [vendor], "colour": 1}).to_string(), 400),
        (json!({"seeds": [vendor, "-q"]}).to_string(), 400),
        (
            json!({"seeds": [vendor], "min_value": "--out=/tmp/x"}).to_string(),
            400,
        ),
    ] {
        let (st, v) = http(
            "POST",
            &s.url("/api/trace"),
            Some(&s.token),
            Some(body.clone()),
            None,
        );
        assert_eq!(st, want, "{body}: {v}");
        assert!(v["error"]["message"].is_string());
    }
    // Saving without a case: refused, saying how to open one.
    let (st, v) = s.post("/api/save", &json!({"trace": {"seeds": [vendor]}}));
    assert_eq!(st, 409);
    assert!(v["error"]["hint"].as_str().unwrap().contains("--case"));
}

/// Random queries and paths (proptest's generator): every answer is JSON, none a 5xx, and
/// the server answers a good request afterwards.
#[test]
fn random_queries_get_json_errors_not_crashes() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let d = world();
    let s = Server::start(d.path(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let endpoints = ["search", "address/x", "cluster/x", "tx/x", "expand", "info"];
    let piece = proptest::collection::vec(
        prop_oneof![
            Just("=".to_string()),
            Just("&".to_string()),
            Just("%".to_string()),
            Just("%ff".to_string()),
            Just("q".to_string()),
            Just("limit".to_string()),
            Just("offset".to_string()),
            Just("address".to_string()),
            Just("direction".to_string()),
            Just("-1".to_string()),
            Just("18446744073709551616".to_string()),
            Just("bcrt1q".to_string()),
            "[a-zA-Z0-9+/;:%=&-]{0,12}",
        ],
        0..12,
    );
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..endpoints.len(), piece), |(e, parts)| {
            let url = format!(
                "{}?{}",
                s.url(&format!("/api/{}", endpoints[e])),
                parts.concat()
            );
            let (st, text) = rt.block_on(async {
                let r = client.get(&url).bearer_auth(&s.token).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            });
            prop_assert!(st < 500, "{url}: {st} {text}");
            prop_assert!(
                serde_json::from_str::<Value>(&text).is_ok(),
                "{url}: {text}"
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(s.get("/api/info").0, 200);
}

/// The node script that drives the page in headless Chromium (playwright-core).
fn browser_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/integration/scripts/canvas.mjs")
}

#[test]
fn the_page_in_a_real_browser_finds_the_vendor_expands_and_traces_to_the_exchange() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "headless Chromium is needed (Debian package chromium; .ci/run installs it)"
    );
    let npm = std::env::var("HOME").unwrap() + "/.cache/chaintrace-npm/node_modules";
    assert!(
        Path::new(&npm).join("playwright-core").exists(),
        "playwright-core is needed in {npm} (.ci/run installs it)"
    );
    let d = world();
    let data = d.path().to_str().unwrap();
    let s = Server::start(d.path(), None);
    let hop1 = peel(1);
    let vendor = hop1[2].as_str();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("canvas");
    std::fs::create_dir_all(&shots).unwrap();
    let o = Command::new("node")
        .arg(browser_script())
        .arg(format!("http://127.0.0.1:{}/#token={}", s.port, s.token))
        .arg(vendor)
        .arg(&hop1[6])
        .arg(&shots)
        .env("NODE_PATH", &npm)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the browser script failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Two hops expanded: the vendor, both of its neighbours and hop 2's two receivers.
    let hop2 = peel(2);
    let boxes: Vec<&str> = v["explore_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for a in [vendor, &hop1[3], &hop1[6], &hop2[3], &hop2[6]] {
        assert!(boxes.contains(&a), "{a} not on the canvas: {boxes:?}");
    }
    // The FIFO trace: the exchange's exit with the amount the command line computes.
    let case = tempfile::tempdir().unwrap();
    let cli = cli_json(&[
        "trace",
        "--json",
        "--quiet",
        "--data",
        data,
        "--seed",
        vendor,
        "--policy",
        "fifo",
        "--out",
        case.path().to_str().unwrap(),
    ]);
    let sat = cli[0]["exposure_entity"]["exchange"].as_u64().unwrap();
    let btc = format!("{}.{:08} BTC", sat / 100_000_000, sat % 100_000_000);
    assert_eq!(v["exit"]["entity"], "exchange");
    assert_eq!(v["exit"]["amount"], btc);
    assert!(
        v["trace_boxes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("exchange")),
        "{v}"
    );
    let exported = std::fs::read_to_string(shots.join("export.svg")).unwrap();
    assert_eq!(v["export_name"], "chaintrace-canvas.svg");
    assert!(exported.starts_with("<svg") && exported.contains("chaintrace · bitcoin regtest"));
    assert!(exported.contains("exchange"), "the export holds the chart");
    let png = std::fs::read(shots.join("canvas.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    assert!(v["load_ms"].as_f64().unwrap() > 0.0);
}

/// An Ethereum dataset from a real node (anvil): the account page, one hop, a transaction
/// and a trace through the API, against the node's own figures and the command line.
#[test]
fn the_api_serves_an_ethereum_dataset() {
    use crate::ethereum_node::{Anvil, ingest_eth};
    let node = Anvil::start();
    let acc = node.accounts();
    let (seed, middle, exchange) = (&acc[1], &acc[2], &acc[3]);
    let eth = 10u128.pow(18);
    let t1 = node.send(json!({"from": seed, "to": middle, "value": format!("{:#x}", 3 * eth)}));
    let t2 = node.send(json!({"from": middle, "to": exchange, "value": format!("{:#x}", 2 * eth)}));
    let fee = |t: &str| {
        let r = node.receipt(t);
        let hex = |v: &Value| {
            u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        };
        hex(&r["gasUsed"]) * hex(&r["effectiveGasPrice"])
    };
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    ok(&ingest_eth(&node, &data, &[]));
    import_labels(
        &data,
        &format!("address,label,category,source\n{exchange},Exchange X,exchange,test\n"),
    );
    let s = Server::start(&data, None);
    let (_, info) = s.get("/api/info");
    assert_eq!(info["chain"], "ethereum");
    assert_eq!(info["unit"], "ETH");
    let (st, page) = s.get(&format!("/api/address/{middle}"));
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["received"]["wei"], (3 * eth).to_string());
    assert_eq!(page["sent"]["wei"], (2 * eth + fee(&t2)).to_string());
    assert_eq!(page["transactions"], 2);
    let (_, e) = s.get(&format!("/api/expand?address={seed}&direction=forward"));
    let edge = e["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["to"] == middle.as_str())
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(edge["amount"], (3 * eth).to_string());
    assert_eq!(edge["txids"][0], t1.as_str());
    let (_, tx) = s.get(&format!("/api/tx/{t2}"));
    assert_eq!(tx["fee"], fee(&t2).to_string());
    assert!(
        tx["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["to"] == exchange.as_str() && x["to_label"]["category"] == "exchange")
    );
    // Unknown and wrong-chain input.
    assert_eq!(
        s.get("/api/address/0x00000000000000000000000000000000000000aa")
            .0,
        404
    );
    assert_eq!(
        s.get("/api/address/bcrt1qx038lvguhmgn98kp92ck9cxrhfnatvqe28e2jw")
            .0,
        400
    );
    // A trace: the command line's answer.
    let (st, t) = s.post("/api/trace", &json!({"seeds": [seed], "policy": ["fifo"]}));
    assert_eq!(st, 200, "{t}");
    let case = tempfile::tempdir().unwrap();
    let cli = cli_json(&[
        "trace",
        "--json",
        "--quiet",
        "--chain",
        "ethereum",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        seed,
        "--policy",
        "fifo",
        "--out",
        case.path().to_str().unwrap(),
    ]);
    assert_eq!(t["models"][0]["totals"], cli[0]["totals"]);
    assert_eq!(t["models"][0]["exits"][0]["entity"], "Exchange X");
    assert_eq!(t["unit"], "ETH");
}
