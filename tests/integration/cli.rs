//! The command line as a whole: where the dataset is, versions.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::*;

/// Runs chaintrace in `cwd` with `env` (and without an inherited CHAINTRACE_DATA).
fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.current_dir(cwd).args(args).env_remove("CHAINTRACE_DATA");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the chaintrace binary runs")
}

#[test]
fn the_version_names_the_commit() {
    let o = run(&["--version"]);
    ok(&o);
    let v = stdout(&o);
    assert!(
        v.starts_with(&format!("chaintrace {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let inside = v.split_once('(').unwrap().1;
    let commit: String = inside.chars().take_while(char::is_ascii_hexdigit).collect();
    assert!(
        commit.len() == 12 || inside.starts_with("no git commit"),
        "{v}"
    );
}

#[test]
fn the_dataset_is_found_from_env_config_or_inside_paths_and_typos_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("cases-2026").join("data");
    ok(&ingest(&bitcoin_data("regtest-world-a/blocks"), &data, &[]));
    let seed = "bcrt1qpy3r9jczme2ffcny6x65gctadyt97eram3pm6x";

    // A chaintrace.toml two folders up names the dataset relative to itself.
    std::fs::write(
        root.path().join("cases-2026").join("chaintrace.toml"),
        "data = \"data\"\n",
    )
    .unwrap();
    let deep = root.path().join("cases-2026").join("case-17").join("notes");
    std::fs::create_dir_all(&deep).unwrap();
    ok(&run_in(&deep, &["cluster", "bitcoin", "--quiet"], &[]));
    assert!(data.join("clusters/regtest/_meta.json").is_file());

    // CHAINTRACE_DATA, from a folder without ./data or a config.
    let elsewhere = tempfile::tempdir().unwrap();
    let o = run_in(
        elsewhere.path(),
        &["trace", "--quiet", "--seed", seed, "--out", "case"],
        &[("CHAINTRACE_DATA", data.to_str().unwrap())],
    );
    ok(&o);
    assert!(elsewhere.path().join("case/trace.json").is_file());

    // --data inside the dataset means the dataset and its network.
    let inside = data.join("regtest");
    let o = run(&[
        "trace",
        "--quiet",
        "--seed",
        seed,
        "--data",
        inside.to_str().unwrap(),
        "--out",
        root.path().join("case2").to_str().unwrap(),
    ]);
    ok(&o);

    // A mistyped --data is an error and creates nothing, for readers and for labels.
    let typo = root.path().join("cases-2026").join("dta");
    let o = run(&["cluster", "bitcoin", "--data", typo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // An existing folder without a dataset says so.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["cluster", "bitcoin", "--data", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("holds no dataset"), "{}", stderr(&o));
    let csv = root.path().join("l.csv");
    std::fs::write(
        &csv,
        format!("address,label,category\n{seed},v,illicit_vendor\n"),
    )
    .unwrap();
    let o = run(&[
        "labels",
        "import",
        csv.to_str().unwrap(),
        "--data",
        typo.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!typo.exists(), "a typo created a folder");
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // `chaintrace --json --version | head`: the reader is gone before the line is written;
    // before, println! panicked on the broken pipe (exit code 101).
    let mut child = Command::new(bin())
        .args(["--json", "--version"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_ne!(
        o.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    let o = run(&["--json", "--version"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["version"]
            .as_str()
            .unwrap()
            .starts_with(env!("CARGO_PKG_VERSION"))
    );
}
