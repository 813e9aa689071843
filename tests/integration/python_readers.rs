//! The dataset opens in one line of polars and of DuckDB (Python packages installed by
//! `.ci/run` from `notebooks/requirements.txt`), and they see the same figures as we do.

use crate::util::*;

#[test]
fn polars_and_duckdb_read_the_dataset_with_the_same_figures() {
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        d.path(),
        &["--part-blocks", "100"],
    ));
    let chain = d.path().join("regtest");
    let txs = read_table(&chain, "transactions");
    let fees: i64 = txs.iter().filter_map(|r| r["fee"].opt_int()).sum();
    let max_time = txs.iter().map(|r| r["time"].int()).max().unwrap();
    let outputs = read_table(&chain, "outputs");
    let received: i64 = outputs
        .iter()
        .filter(|r| r["address"].opt_str() == Some("bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663"))
        .map(|r| r["value"].int())
        .sum();
    let script = format!(
        r#"
import polars as pl, duckdb
d = "{dir}"
t = pl.scan_parquet(f"{{d}}/transactions/*.parquet").select(pl.col("fee").sum(), pl.len(), pl.col("time").max().dt.epoch("s")).collect().row(0)
o = pl.scan_parquet(f"{{d}}/outputs/*.parquet").filter(pl.col("address") == "bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663").select(pl.col("value").sum()).collect().item()
q = duckdb.sql(f"select sum(fee), count(*), epoch(max(time))::bigint from '{{d}}/transactions/*.parquet'").fetchall()[0]
print(t[0], t[1], t[2], o, q[0], q[1], q[2])
"#,
        dir = chain.display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python polars/duckdb failed (run `pip install -r notebooks/requirements.txt`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            fees,
            txs.len() as i64,
            max_time,
            received,
            fees,
            txs.len() as i64,
            max_time
        ]
    );
}
