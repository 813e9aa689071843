//! Killed runs, reruns and re-ingested ranges end with exactly the bytes of a clean run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::util::*;

fn blocks() -> std::path::PathBuf {
    bitcoin_data("regtest-world-a/blocks")
}

fn clean_reference() -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(&blocks(), d.path(), &["--part-blocks", "50"]));
    let t = tree(&d.path().join("regtest"));
    assert_eq!(
        t.len(),
        9 * 4 + 2,
        "9 parts x 4 tables + manifest + UTXO snapshot"
    );
    (d, t)
}

fn assert_same(data: &Path, reference: &BTreeMap<String, Vec<u8>>) {
    let got = tree(&data.join("regtest"));
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(reference));
    for (k, v) in reference {
        assert!(&got[k] == v, "{k} differs from the clean run");
    }
}

#[test]
fn crash_at_every_commit_step_then_resume_equals_clean_run() {
    let (_keep, reference) = clean_reference();
    let src = blocks();
    for point in ["after-stage", "after-commit", "after-manifest"] {
        for part in [1, 4] {
            let d = tempfile::tempdir().unwrap();
            let a = [
                "ingest",
                "bitcoin",
                "--quiet",
                "--blocks-dir",
                src.to_str().unwrap(),
                "--data",
                d.path().to_str().unwrap(),
                "--part-blocks",
                "50",
            ];
            let spec = format!("{point}:{part}");
            let o = run_env(&a, &[("CHAINTRACE_CRASH_AT", &spec)]);
            assert!(!o.status.success(), "{spec}: the crash hook did not fire");
            ok(&run(&a));
            assert_same(d.path(), &reference);
        }
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_equals_clean_run() {
    let (_keep, reference) = clean_reference();
    for delay_ms in [5u64, 20, 40, 70, 110] {
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(bin())
            .args([
                "ingest",
                "bitcoin",
                "--quiet",
                "--blocks-dir",
                blocks().to_str().unwrap(),
                "--data",
            ])
            .arg(d.path())
            .args(["--part-blocks", "50"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        ok(&ingest(&blocks(), d.path(), &["--part-blocks", "50"]));
        assert_same(d.path(), &reference);
    }
}

#[test]
fn rerun_keeps_everything_and_reingesting_a_range_replaces_it() {
    let (d, reference) = clean_reference();
    let o = ingest(&blocks(), d.path(), &["--part-blocks", "50", "--json"]);
    ok(&o);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (s["parts_written"].as_u64(), s["parts_kept"].as_u64()),
        (Some(0), Some(9))
    );
    assert_same(d.path(), &reference);

    // Re-ingest 120..=180: parts 100-149 and 150-199 are rewritten, nothing duplicated.
    let o = ingest(
        &blocks(),
        d.path(),
        &["--from", "120", "--to", "180", "--json"],
    );
    ok(&o);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["parts_written"], 2);
    assert_eq!(s["written"]["blocks"], 100);
    // Parts are whole: the rewrite starts at 100, not 120, and says so (it was silent).
    assert_eq!(s["rewritten_from"], 100);
    // ... and ends at 199, not 180, and says that too (it was silent).
    assert_eq!(s["rewritten_to"], 199);
    assert_same(d.path(), &reference);
    // In text, the same rewrite is said; and --from above the chain's tip rewrites
    // nothing, and says so (it wrote 0 blocks without a word).
    for (args, said) in [
        (
            &["--from", "120", "--to", "180"][..],
            "rewritten from height 100",
        ),
        (
            &["--from", "120", "--to", "180"][..],
            "rewritten up to height 199, the end of the part holding --to",
        ),
        (
            &["--from", "5000"][..],
            "--from 5000 is above the source's chain tip (height 400)",
        ),
    ] {
        let o = ingest(&blocks(), d.path(), args);
        ok(&o);
        assert!(stderr(&o).contains(said), "{args:?}: {}", stderr(&o));
        assert_same(d.path(), &reference);
    }

    // Leftovers of a killed run are removed: a temp file and an unlisted part.
    let stray_tmp = d
        .path()
        .join("regtest/outputs/.part-0000000400-0000000449.parquet.tmp");
    let stray_part = d
        .path()
        .join("regtest/inputs/part-0000000401-0000000449.parquet");
    std::fs::write(&stray_tmp, b"partial").unwrap();
    std::fs::write(&stray_part, b"partial").unwrap();
    ok(&ingest(&blocks(), d.path(), &[]));
    assert_same(d.path(), &reference);
}

#[test]
fn a_shorter_first_run_is_extended_to_the_clean_layout() {
    let (_keep, reference) = clean_reference();
    let d = tempfile::tempdir().unwrap();
    ok(&ingest(
        &blocks(),
        d.path(),
        &["--part-blocks", "50", "--to", "130"],
    ));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("regtest/_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["ranges"], serde_json::json!([[0, 130]]));
    // Another part size for this dataset is ignored, and said to be (it was silent).
    let o = ingest(&blocks(), d.path(), &["--part-blocks", "70", "--to", "130"]);
    ok(&o);
    assert!(
        stderr(&o).contains("parts of 50 blocks") && stderr(&o).contains("--part-blocks 70"),
        "{}",
        stderr(&o)
    );
    // The partial part 100-130 becomes 100-149 when the rest is ingested, and the UTXO
    // snapshot the first run left at height 99 spares replaying blocks 0..=99.
    let o = ingest(&blocks(), d.path(), &["--json"]);
    ok(&o);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (s["snapshot_height"].as_u64(), s["blocks_replayed"].as_u64()),
        (Some(99), Some(0))
    );
    assert_same(d.path(), &reference);
    // A damaged snapshot is ignored (the replay starts from genesis) and rewritten.
    let snap = d.path().join("regtest/_utxo-snapshot.bin");
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&snap, bytes).unwrap();
    let o = ingest(&blocks(), d.path(), &["--from", "400", "--json"]);
    ok(&o);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (s["snapshot_height"].as_u64(), s["blocks_replayed"].as_u64()),
        (None, Some(400))
    );
    assert_same(d.path(), &reference);
}

#[test]
fn a_damaged_dataset_is_refused_with_a_hint() {
    let (d, _) = clean_reference();
    let victim = d
        .path()
        .join("regtest/outputs/part-0000000100-0000000149.parquet");
    std::fs::write(&victim, b"x").unwrap();
    let o = ingest(&blocks(), d.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("part-0000000100-0000000149.parquet"),
        "{}",
        stderr(&o)
    );
}
