//! Canvas benchmark: `cargo bench --bench serve [-- DATA]`.
//!
//! Without arguments it simulates a world of `CHAINTRACE_BENCH_TXS` transactions (default
//! 1,000,000), ingests it, labels the exchanges from the ground truth and clusters it. Then
//! it starts `chaintrace serve` and prints: the time until the server answers; the latency
//! (p50 / p95 over 30 requests after a first, cold one) of an address page, a one-hop
//! expansion and a 5-hop FIFO trace from the vendor's busiest address, and of the same for
//! an exchange address with the most transactions; and the page's load time in headless
//! Chromium (Debian's, through playwright-core in ~/.cache/chaintrace-npm).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chaintrace"))
}

fn run(args: &[&str]) {
    let o = Command::new(bin())
        .args(args)
        .output()
        .expect("chaintrace runs");
    assert!(
        o.status.success(),
        "chaintrace {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Timing {
    cold: f64,
    p50: f64,
    p95: f64,
}

fn time_requests(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    token: &str,
    post: Option<&str>,
    url: &str,
) -> Timing {
    let once = || {
        let t = Instant::now();
        let status = rt.block_on(async {
            let r = match post {
                Some(b) => client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .body(b.to_string()),
                None => client.get(url),
            };
            let resp = r
                .bearer_auth(token)
                .send()
                .await
                .expect("the server answers");
            let s = resp.status().as_u16();
            resp.bytes().await.expect("a body");
            s
        });
        assert_eq!(status, 200, "{url}");
        t.elapsed().as_secs_f64() * 1e3
    };
    let cold = once();
    let mut warm: Vec<f64> = (0..30).map(|_| once()).collect();
    Timing {
        cold,
        p50: percentile(&mut warm, 0.5),
        p95: percentile(&mut warm, 0.95),
    }
}

fn bench(data: &Path, vendor: &str, exchange: &str) {
    let t0 = Instant::now();
    let mut child = Command::new(bin())
        .args(["serve", "--json", "--data", data.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let start = t0.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_str(&line).expect("serve's JSON line");
    let token = v["token"].as_str().unwrap().to_string();
    let api = v["api"].as_str().unwrap().to_string();
    let url = v["url"].as_str().unwrap().to_string();
    println!(
        "\n== chaintrace serve on {} ({} transactions, {} addresses): answering after {start:.2} s (index open, address adjacency built)",
        data.display(),
        v["dataset"]["transactions"],
        v["dataset"]["addresses"]
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "request", "cold ms", "p50 ms", "p95 ms"
    );
    for (name, who) in [("vendor", vendor), ("exchange", exchange)] {
        let trace = format!(r#"{{"seeds":["{who}"],"policy":["fifo"],"max_hops":5}}"#);
        let rows = [
            (
                format!("address page ({name}, 25 txs)"),
                None,
                format!("{api}address/{who}?limit=25"),
            ),
            (
                format!("expand forward ({name}, ≤100 txs)"),
                None,
                format!("{api}expand?address={who}&direction=forward&limit=100"),
            ),
            (
                format!("trace fifo 5 hops ({name})"),
                Some(trace.as_str()),
                format!("{api}trace"),
            ),
        ];
        for (label, post, u) in rows {
            let t = time_requests(&rt, &client, &token, post, &u);
            println!(
                "{label:<44} {:>10.1} {:>10.1} {:>10.1}",
                t.cold, t.p50, t.p95
            );
        }
    }
    page_load(&url);
    let _ = child.kill();
    let _ = child.wait();
}

/// The page's load time (navigation to the API's first answer drawn), 5 loads.
fn page_load(url: &str) {
    let npm = std::env::var("HOME").unwrap_or_default() + "/.cache/chaintrace-npm/node_modules";
    let script = r#"
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { chromium } = require(require.resolve("playwright-core", { paths: (process.env.NODE_PATH || "").split(":") }));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const times = [];
for (let i = 0; i < 5; i++) {
  const page = await browser.newPage();
  const t = Date.now();
  await page.goto(process.argv[2]);
  await page.waitForSelector("body[data-ready='1']");
  times.push(Date.now() - t);
  await page.close();
}
await browser.close();
console.log(JSON.stringify(times));
"#;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("load.mjs");
    std::fs::write(&f, script).unwrap();
    let o = Command::new("node")
        .arg(&f)
        .arg(url)
        .env("NODE_PATH", &npm)
        .output();
    match o {
        Ok(o) if o.status.success() => {
            let mut t: Vec<f64> = serde_json::from_slice(&o.stdout).unwrap();
            let first = t[0];
            println!(
                "page load in headless Chromium: first {first:.0} ms, median of 5 {:.0} ms",
                percentile(&mut t, 0.5)
            );
        }
        Ok(o) => println!(
            "page load: the browser script failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("page load: node did not run: {e}"),
    }
}

/// The vendor's and an exchange's address with the most outputs in `data`.
fn busiest(
    data: &Path,
    owner: &std::collections::HashMap<String, (String, String)>,
) -> (String, String) {
    let (idx, _) = chaintrace::index::Index::open_or_build(&data.join("regtest")).unwrap();
    let mut best: [(u64, String); 2] = [(0, String::new()), (0, String::new())];
    for a in idx.address_ids() {
        let s = idx.address(a);
        let slot = match owner.get(s) {
            Some((e, _)) if e == "vendor" => 0,
            Some((_, c)) if c == "exchange" => 1,
            _ => continue,
        };
        let n = idx.receives(a);
        if n > best[slot].0 {
            best[slot] = (n, s.to_string());
        }
    }
    let [(_, v), (_, x)] = best;
    (v, x)
}

fn main() {
    let args = common::args();
    if let Some(d) = args.first() {
        let d = Path::new(d);
        let (idx, _) = chaintrace::index::Index::open_or_build(&d.join("regtest")).unwrap();
        let first = idx.address(chaintrace::types::AddrIx(0)).to_string();
        bench(d, &first, &first);
        return;
    }
    let (world, data, truth) =
        common::ingested_world(common::world_size(), chaintrace::simulate::Preset::Default);
    let owner = common::truth_owners(&truth);
    let mut csv = String::from("address,label,category,actor\n");
    for (a, (e, c)) in &owner {
        if c == "exchange" {
            csv.push_str(&format!("{a},{e},exchange,{e}\n"));
        }
    }
    let labels = world.path().join("exchanges.csv");
    std::fs::write(&labels, csv).unwrap();
    let d = data.to_str().unwrap();
    run(&["labels", "import", labels.to_str().unwrap(), "--data", d]);
    run(&["cluster", "bitcoin", "--data", d]);
    let (vendor, exchange) = busiest(&data, &owner);
    bench(&data, &vendor, &exchange);
}
