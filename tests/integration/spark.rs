//! The Spark path (`contrib/spark/`) on a small world equals chaintrace: the same
//! multi-input partition with the same representatives, the same CoinJoins found, and the same
//! `stats flows` monthly sums. PySpark runs in local mode (`pip install -r
//! contrib/spark/requirements.txt`, `.ci/run` does it; it needs Java 8, 11 or 17).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

const INSTALL: &str = "run `python3 -m pip install -r contrib/spark/requirements.txt` (PySpark 3.5; it needs Java 8, 11 or 17 on PATH or in JAVA_HOME)";

/// Fails, loudly, when PySpark or Java is missing: a skipped comparison must not pass.
fn require_pyspark_and_java() {
    let py = Command::new("python3")
        .args(["-c", "import pyspark; print(pyspark.__version__)"])
        .output()
        .expect("python3 runs");
    assert!(
        py.status.success(),
        "PySpark is not installed: {INSTALL}\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let java = std::env::var_os("JAVA_HOME")
        .map(|h| Path::new(&h).join("bin/java"))
        .unwrap_or_else(|| "java".into());
    let ok = Command::new(&java)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "no Java ({}) for Spark: {INSTALL}", java.display());
}

/// A 4,000-transaction adversarial world (many CoinJoins of all three patterns) spread over
/// four months, ingested, with labels: the truth's exchanges, vendor and ransomware crew,
/// its mixer as a need-to-know category, and rival tags for some vendor addresses that win
/// by confidence (public and private) or by date.
fn world(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("world");
    ok(&run(&[
        "simulate",
        "--quiet",
        "--seed",
        "5",
        "--txs",
        "4000",
        "--preset",
        "adversarial",
        "--start",
        "2025-01-01",
        "--end",
        "2025-04-30",
        "--out",
        out.to_str().unwrap(),
    ]));
    let data = dir.join("data");
    ok(&ingest(&out.join("blocks"), &data, &[]));
    let truth = read_parquet_file(&out.join("truth/addresses.parquet"));
    let mut base = String::from("address,label,category,actor\n");
    let mut rival = String::from("address,label,category,actor,confidence,lastmod,is_public\n");
    let mut vendor = 0;
    for r in &truth {
        let (a, e) = (r["address"].str(), r["entity"].str());
        let cat = match r["category"].str() {
            "mixer" => "child_sexual_abuse",
            c @ ("exchange" | "illicit_vendor" | "ransomware") => c,
            _ => continue,
        };
        base.push_str(&format!("{a},{e},{cat},{e}\n"));
        if cat == "illicit_vendor" {
            vendor += 1;
            match vendor % 7 {
                0 => rival.push_str(&format!("{a},rivalex,exchange,rivalex,web_crawl,,true\n")),
                1 => rival.push_str(&format!(
                    "{a},hidden,ransomware,hiddencrew,override,,false\n"
                )),
                2 => rival.push_str(&format!(
                    "{a},datedex,exchange,datedex,unknown,2024-02-0{},true\n",
                    1 + vendor % 5
                )),
                _ => {}
            }
        }
    }
    for (name, csv) in [("base.csv", base), ("rival.csv", rival)] {
        let f = dir.join(name);
        std::fs::write(&f, csv).unwrap();
        ok(&run(&[
            "labels",
            "import",
            "--quiet",
            f.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]));
    }
    data
}

/// The partition as a set of address sets (cluster ids aside).
fn partition(cluster_of: &BTreeMap<String, String>) -> BTreeSet<BTreeSet<String>> {
    let mut by: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (a, c) in cluster_of {
        by.entry(c).or_default().insert(a.clone());
    }
    by.into_values().collect()
}

fn json(o: &std::process::Output) -> Value {
    ok(o);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn spark_clusters_and_flows_equal_chaintrace() {
    require_pyspark_and_java();
    let d = tempfile::tempdir().unwrap();
    let data = world(d.path());
    let d_s = data.to_str().unwrap();

    // chaintrace: multi-input clustering, and monthly flows of the vendor and the crew
    // (private tags in use; the mixer's payments to them masked as need-to-know).
    let c = json(&run(&[
        "--json",
        "cluster",
        "bitcoin",
        "--quiet",
        "--data",
        d_s,
        "--heuristics",
        "multi-input",
    ]));
    let stats_out = d.path().join("stats");
    let flows = json(&run(&[
        "--json",
        "stats",
        "flows",
        "--quiet",
        "--data",
        d_s,
        "--out",
        stats_out.to_str().unwrap(),
        "--by",
        "month",
        "--include-private",
        "--category",
        "illicit_vendor,ransomware",
    ]));

    // Spark, local mode, one session for both jobs.
    let spark_out = d.path().join("spark");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/spark/chaintrace_spark.py");
    let o = Command::new("python3")
        .arg(&script)
        // Small data: two shuffle partitions, no adaptive re-planning, and the JVM's quick
        // compiler only (C1): about half the wall time of Spark's defaults here.
        .args(["--master", "local[2]", "--partitions", "2"])
        .args(["--conf", "spark.sql.adaptive.enabled=false"])
        .args([
            "--conf",
            "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1",
        ])
        .arg("--data")
        .arg(data.join("regtest"))
        .arg("--cluster")
        .arg(spark_out.join("address_cluster"))
        .arg("--flows")
        .arg(spark_out.join("flows"))
        .args([
            "--by",
            "month",
            "--include-private",
            "--category",
            "illicit_vendor,ransomware",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "the Spark job failed ({INSTALL} if PySpark is missing):\n{}",
        stderr(&o)
    );
    let s: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));

    // The same partition, and the same representative for every address: chaintrace's,
    // the address whose id (its row in address_cluster.parquet) is the cluster id.
    let rows = read_parquet_file(&data.join("clusters/regtest/address_cluster.parquet"));
    let ours: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            let id = usize::try_from(r["cluster_id"].int()).unwrap();
            let rep = rows[id]["address"].str().to_string();
            (r["address"].str().to_string(), rep)
        })
        .collect();
    let spark_rows = read_table(&spark_out, "address_cluster");
    let theirs: BTreeMap<String, String> = spark_rows
        .iter()
        .map(|r| {
            let rep = r["representative"].str().to_string();
            (r["address"].str().to_string(), rep)
        })
        .collect();
    assert_eq!(
        spark_rows.len(),
        theirs.len(),
        "an address twice in Spark's output"
    );
    assert_eq!(
        partition(&theirs),
        partition(&ours),
        "the partitions differ"
    );
    assert_eq!(theirs, ours, "the representatives differ");
    let multi = partition(&ours).iter().filter(|p| p.len() > 1).count();
    assert!(
        multi > 100,
        "only {multi} clusters of two or more addresses"
    );
    // The same CoinJoins found, of every pattern.
    let meta = &c["meta"];
    assert_eq!(s["cluster"]["coinjoins"], meta["coinjoins"]);
    assert_eq!(s["cluster"]["clusters"], meta["clusters"]);
    for kind in ["whirlpool", "joinmarket", "equal-output"] {
        assert!(
            meta["coinjoins"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} CoinJoin in the world: {}",
            meta["coinjoins"]
        );
    }

    // The same monthly flows, row for row (the same order too).
    for table in ["inflows", "outflows"] {
        let (a, b) = (&flows[table], &s["flows"][table]);
        assert_eq!(a, b, "{table} differ");
        let rows = a.as_array().unwrap();
        let months: BTreeSet<&str> = rows.iter().map(|r| r["period"].as_str().unwrap()).collect();
        assert!(months.len() >= 3, "{table}: months {months:?}");
    }
    let text = flows.to_string();
    assert!(text.contains("need_to_know"), "no masked counterparty");
    assert!(
        !text.contains("child_sexual_abuse"),
        "a need-to-know category leaks"
    );
    assert!(
        text.contains("hiddencrew"),
        "the private tags are not in use"
    );
}
