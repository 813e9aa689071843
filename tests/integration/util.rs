//! Test harness: paths to the shared datasets, running the binary, reading Parquet back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Int32Type, Int64Type, TimestampMillisecondType, UInt8Type, UInt32Type,
    UInt64Type,
};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// `../shared/datasets`, which the tests read real data from. Fails loudly if absent:
/// a test that cannot find its input must not pass.
pub fn datasets() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    assert!(
        p.is_dir(),
        "{} is missing: the tests need the shared real datasets",
        p.display()
    );
    p
}

pub fn bitcoin_data(rel: &str) -> PathBuf {
    datasets().join("bitcoin").join(rel)
}

/// The regtest chain bundled in the repository (a copy of the shared one).
pub fn bundled_regtest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/regtest-world-a")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chaintrace"))
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the chaintrace binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts success, printing stderr otherwise.
/// The message of a `--json` command's error document (stdout).
pub fn error_of(o: &Output) -> String {
    let v: serde_json::Value = serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", stdout(o)));
    v["error"]["message"].as_str().unwrap().to_string()
}

pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "chaintrace failed ({:?}):\n{}\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Ingests `blocks_dir` into `data` with extra args.
pub fn ingest(blocks_dir: &Path, data: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "ingest",
        "bitcoin",
        "--quiet",
        "--blocks-dir",
        blocks_dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// A cell of a table read back from Parquet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    Null,
    Int(i64),
    Str(String),
    Bool(bool),
}

impl Cell {
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(i) => *i,
            c => panic!("not an integer: {c:?}"),
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Cell::Str(s) => s,
            c => panic!("not a string: {c:?}"),
        }
    }
    pub fn opt_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            Cell::Null => None,
            c => panic!("not a string: {c:?}"),
        }
    }
    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Null => None,
            c => panic!("not an integer: {c:?}"),
        }
    }
}

pub type Row = BTreeMap<String, Cell>;

/// Reads every part of `table` under `chain_dir`, in file-name (height) order.
pub fn read_table(chain_dir: &Path, table: &str) -> Vec<Row> {
    let dir = chain_dir.join(table);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            for i in 0..batch.num_rows() {
                let mut row = Row::new();
                for (c, field) in schema.fields().iter().enumerate() {
                    let col = batch.column(c);
                    let cell = if col.is_null(i) {
                        Cell::Null
                    } else {
                        match field.data_type() {
                            DataType::UInt32 => {
                                Cell::Int(i64::from(col.as_primitive::<UInt32Type>().value(i)))
                            }
                            DataType::UInt8 => {
                                Cell::Int(i64::from(col.as_primitive::<UInt8Type>().value(i)))
                            }
                            DataType::UInt64 => Cell::Int(
                                i64::try_from(col.as_primitive::<UInt64Type>().value(i)).unwrap(),
                            ),
                            DataType::Int32 => {
                                Cell::Int(i64::from(col.as_primitive::<Int32Type>().value(i)))
                            }
                            DataType::Int64 => Cell::Int(col.as_primitive::<Int64Type>().value(i)),
                            // Exact integers beyond i64 (wei): their decimal text.
                            DataType::Decimal128(_, 0) => {
                                Cell::Str(col.as_primitive::<Decimal128Type>().value(i).to_string())
                            }
                            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                                // Block times are whole seconds: read them back as seconds.
                                let ms = col.as_primitive::<TimestampMillisecondType>().value(i);
                                assert_eq!(ms % 1000, 0, "a block time with sub-second part");
                                Cell::Int(ms / 1000)
                            }
                            DataType::Utf8 => {
                                Cell::Str(col.as_string::<i32>().value(i).to_string())
                            }
                            DataType::Boolean => Cell::Bool(col.as_boolean().value(i)),
                            t => panic!("unexpected column type {t}"),
                        }
                    };
                    row.insert(field.name().clone(), cell);
                }
                rows.push(row);
            }
        }
    }
    rows
}

/// Reads one Parquet file (not a partitioned table).
pub fn read_parquet_file(path: &Path) -> Vec<Row> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("t")).unwrap();
    std::fs::copy(path, tmp.path().join("t").join("x.parquet")).unwrap();
    read_table(tmp.path(), "t")
}

/// Every file under `dir`, relative path -> bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The part files of a chain directory (no manifest, no UTXO snapshot), path -> bytes.
pub fn part_files(chain_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut t = tree(chain_dir);
    t.retain(|k, _| !k.starts_with('_'));
    t
}

/// BTC amount as Bitcoin Core prints it (8 decimals) to satoshi. Amounts up to 21e6 BTC
/// are within f64's exact range after scaling, so rounding recovers the exact integer.
pub fn btc_to_sat(v: &serde_json::Value) -> i64 {
    (v.as_f64().expect("amount is a number") * 1e8).round() as i64
}

/// Copies a directory tree (files only, following the layout), making files writable.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
            let mut perm = std::fs::metadata(&dest).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dest, perm).unwrap();
        }
    }
}

/// Decompresses with an external tool (`zstd`, `bzip2`), installed by `.ci/run`.
pub fn decompress(tool: &str, path: &Path) -> Vec<u8> {
    let o = Command::new(tool)
        .args(["-dc", path.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "`{tool}` is needed to read {} ({e}); .ci/run installs it",
                path.display()
            )
        });
    assert!(o.status.success(), "{tool} -dc {} failed", path.display());
    o.stdout
}

/// Runs a notebook headless with nbconvert; fails (never skips) when jupyter is missing.
pub fn execute_notebook(name: &str, env: &[(&str, &Path)]) {
    let nb = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("notebooks")
        .join(name);
    let out = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new("jupyter");
    c.args([
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=600",
        "--output-dir",
    ])
    .arg(out.path())
    .arg(&nb);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap_or_else(|e| {
        panic!("cannot run jupyter ({e}): pip install -r notebooks/requirements.txt")
    });
    assert!(
        o.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let executed = std::fs::read_to_string(out.path().join(name)).unwrap();
    assert!(
        !executed.contains("\"output_type\": \"error\""),
        "{name} has an error cell"
    );
}

/// `chaintrace labels import` of `csv` (a CSV label list: address,label,category,source)
/// into `data`.
pub fn import_labels(data: &Path, csv: &str) {
    let file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(file.path(), csv).unwrap();
    ok(&run(&[
        "labels",
        "import",
        file.path().to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]));
}

/// `chaintrace report CASE --format html` and the report's text.
pub fn html_report(case: &Path) -> String {
    ok(&run(&[
        "report",
        case.to_str().unwrap(),
        "--format",
        "html",
    ]));
    std::fs::read_to_string(case.join("report/report.html")).unwrap()
}

/// `chaintrace simulate` of a world of `txs` transactions with `preset` into `out`.
pub fn simulate(out: &Path, seed: &str, txs: &str, preset: &str) {
    ok(&run(&[
        "simulate",
        "--quiet",
        "--seed",
        seed,
        "--txs",
        txs,
        "--preset",
        preset,
        "--out",
        out.to_str().unwrap(),
    ]));
}

/// Starts `python3 tests/integration/scripts/SCRIPT ARGS…`, a test server that prints its
/// port first: (the port, the child).
pub fn start_script(script: &str, args: &[&std::ffi::OsStr]) -> (u16, std::process::Child) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/scripts")
        .join(script);
    let mut child = std::process::Command::new("python3")
        .arg(path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (line.trim().parse().unwrap(), child)
}

/// A test certificate authority and a server certificate for 127.0.0.1 it signed
/// (openssl), written into `dir`: (the CA's certificate, the server's certificate, its key).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr, ext) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("leaf.csr"),
        dir.join("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: Vec<&std::ffi::OsStr>| {
        let o = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    openssl(vec![
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-days"),
        os("2"),
        os("-subj"),
        os("/CN=chaintrace test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]);
    openssl(vec![
        os("req"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-subj"),
        os("/CN=127.0.0.1"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]);
    openssl(vec![
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("2"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ]);
    (ca, cert, key)
}

/// Asserts that the index of `chain_dir` (extended) holds the same files, byte for byte, as
/// a build from genesis of the same dataset (which replaces it).
pub fn assert_index_is_a_rebuilds(chain_dir: &Path) {
    let extended = tree(&chain_dir.join("index"));
    chaintrace::index::Index::build(chain_dir, chaintrace::memory::Budget::of_bytes(1 << 30))
        .unwrap();
    let rebuilt = tree(&chain_dir.join("index"));
    assert_eq!(
        extended.keys().collect::<Vec<_>>(),
        rebuilt.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &rebuilt {
        assert!(extended[name] == *bytes, "{name} differs from a rebuild's");
    }
}
