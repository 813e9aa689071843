//! Bad input: each gives exit code 1 and one line naming the file/offset/height, and
//! what was complete before it stays written and listed.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn manifest(chain_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(chain_dir.join("_manifest.json")).unwrap()).unwrap()
}

fn error_line(o: &std::process::Output) -> String {
    let e = stderr(o);
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("chaintrace: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line expected:\n{e}");
    lines[0].to_string()
}

#[test]
fn truncated_testnet_file_ingests_the_complete_blocks_and_names_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        bitcoin_data("blk-files/testnet3-blocks-0-400.dat"),
        dir.path().join("blk00000.dat"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(dir.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains("blk00000.dat") && line.contains("offset") && line.contains("truncated"),
        "{line}"
    );
    let chain = data.path().join("testnet");
    let m = manifest(&chain);
    assert_eq!(m["network"], "testnet");
    assert_eq!(
        m["tip"]["height"], 400,
        "every complete block before the cut is ingested"
    );
    let txs = read_table(&chain, "transactions");
    // Upstream (blocks_iterator) counts 450,000 sat of fees in blocks 385..=394.
    let fees: i64 = txs
        .iter()
        .filter(|r| (385..=394).contains(&r["height"].int()))
        .filter_map(|r| r["fee"].opt_int())
        .sum();
    assert_eq!(fees, 450_000);
    // And every coinbase claims exactly the 50 BTC subsidy plus its block's fees.
    for h in 0..=400 {
        let in_block: Vec<_> = txs.iter().filter(|r| r["height"].int() == h).collect();
        let fees: i64 = in_block.iter().filter_map(|r| r["fee"].opt_int()).sum();
        let coinbase = in_block
            .iter()
            .find(|r| r["is_coinbase"] == Cell::Bool(true))
            .unwrap();
        assert_eq!(
            coinbase["output_value"].int(),
            5_000_000_000 + fees,
            "height {h}"
        );
    }
    // Rerunning keeps the dataset and reports the same cut.
    let before = tree(&chain);
    let o = ingest(dir.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(tree(&chain) == before);
}

fn regtest_blk() -> (Vec<u8>, Vec<u8>) {
    let blk = std::fs::read(bitcoin_data("regtest-world-a/blocks/blk00000.dat")).unwrap();
    let key = std::fs::read(bitcoin_data("regtest-world-a/blocks/xor.dat")).unwrap();
    (blk, key)
}

/// Offsets of the 401 records of the regtest blk file (record header positions).
fn record_offsets(blk: &[u8], key: &[u8]) -> Vec<usize> {
    let mut pos = 0;
    let mut out = Vec::new();
    while out.len() < 401 {
        let size: Vec<u8> = (4..8).map(|i| blk[pos + i] ^ key[(pos + i) % 8]).collect();
        out.push(pos);
        pos += 8 + u32::from_le_bytes(size.try_into().unwrap()) as usize;
    }
    out
}

/// The 861,569 bytes of records of the regtest blk file, without the XOR obfuscation.
fn deobfuscated(blk: &[u8], key: &[u8]) -> Vec<u8> {
    blk[..861_569]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 8])
        .collect()
}

#[test]
fn corrupt_block_is_named_by_height_and_earlier_parts_stay() {
    let work = tempfile::tempdir().unwrap();
    let blocks = work.path().join("blocks");
    copy_dir(&bitcoin_data("regtest-world-a/blocks"), &blocks);
    let (mut blk, key) = regtest_blk();
    let offs = record_offsets(&blk, &key);
    // Flip a byte in the middle of block 250's transactions.
    let at = offs[250] + 8 + 200;
    blk[at] ^= 0xff;
    std::fs::write(blocks.join("blk00000.dat"), &blk).unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(&blocks, data.path(), &["--part-blocks", "100"]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains("height 250") && line.contains("blk00000.dat"),
        "{line}"
    );
    let m = manifest(&data.path().join("regtest"));
    assert_eq!(m["ranges"], serde_json::json!([[0, 199]]));
    let blocks_rows = read_table(&data.path().join("regtest"), "blocks");
    assert_eq!(blocks_rows.len(), 200);
}

#[test]
fn wrong_magic_in_a_second_file_is_named() {
    let work = tempfile::tempdir().unwrap();
    let (blk, key) = regtest_blk();
    let offs = record_offsets(&blk, &key);
    // Unobfuscate the regtest blocks into file 0, and a mainnet-magic record into file 1.
    let plain = deobfuscated(&blk, &key);
    let cut = offs[300];
    std::fs::write(work.path().join("blk00000.dat"), &plain[..cut]).unwrap();
    let mut second = plain[cut..offs[301]].to_vec();
    second[..4].copy_from_slice(&[0xf9, 0xbe, 0xb4, 0xd9]);
    std::fs::write(work.path().join("blk00001.dat"), &second).unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(work.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains("blk00001.dat") && line.contains("offset 0") && line.contains("f9beb4d9"),
        "{line}"
    );
    assert_eq!(manifest(&data.path().join("regtest"))["tip"]["height"], 299);
}

#[test]
fn garbage_directory_and_bad_xor_key() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("blk00000.dat"),
        b"this is not a block file at all",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(work.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains("blk00000.dat") && line.contains("no known network"),
        "{line}"
    );

    std::fs::write(work.path().join("xor.dat"), [1, 2, 3]).unwrap();
    let o = ingest(work.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(error_line(&o).contains("xor.dat"));

    let empty = tempfile::tempdir().unwrap();
    let o = ingest(empty.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(error_line(&o).contains("no blk*.dat"));
    // The folder above the blocks (a world's, a node's data directory): the error names
    // the blocks folder inside it.
    let world = bundled_regtest();
    let o = ingest(&world, data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains(&format!("--blocks-dir {}", world.join("blocks").display())),
        "{line}"
    );
}

#[test]
fn unreadable_index_says_to_use_no_index_which_works() {
    let work = tempfile::tempdir().unwrap();
    let blocks = work.path().join("blocks");
    copy_dir(&bitcoin_data("regtest-world-a/blocks"), &blocks);
    let ldb = blocks.join("index/000005.ldb");
    let mut bytes = std::fs::read(&ldb).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x55;
    std::fs::write(&ldb, &bytes).unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(&blocks, data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains("000005.ldb") && line.contains("--no-index"),
        "{line}"
    );
    assert!(!data.path().join("regtest/_manifest.json").exists());
    ok(&ingest(&blocks, data.path(), &["--no-index"]));
    assert_eq!(manifest(&data.path().join("regtest"))["tip"]["height"], 400);
}

#[test]
fn block_with_missing_parent_is_named_after_ingesting_the_chain_before_it() {
    let work = tempfile::tempdir().unwrap();
    let (blk, key) = regtest_blk();
    let offs = record_offsets(&blk, &key);
    let plain = deobfuscated(&blk, &key);
    let size_of = |h: usize| {
        8 + u32::from_le_bytes(plain[offs[h] + 4..offs[h] + 8].try_into().unwrap()) as usize
    };
    assert_eq!(
        offs[400] + size_of(400),
        861_569,
        "the README's data length"
    );
    // Drop block 120's record: 121..400 lose their link to genesis.
    let mut out = plain[..offs[120]].to_vec();
    out.extend_from_slice(&plain[offs[121]..offs[400] + size_of(400)]);
    std::fs::write(work.path().join("blk00000.dat"), &out).unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = ingest(work.path(), data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = error_line(&o);
    assert!(
        line.contains("parent")
            && line.contains("not in the blocks directory")
            && line.contains("height 119"),
        "{line}"
    );
    assert_eq!(manifest(&data.path().join("regtest"))["tip"]["height"], 119);
}

#[test]
fn an_unreachable_esplora_and_unknown_seeds_exit_1_naming_them() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&[
        "ingest",
        "bitcoin",
        "--esplora",
        "http://127.0.0.1:9/api",
        "--rpc-attempts",
        "1",
        "--data",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = error_line(&o);
    assert!(
        e.contains("http://127.0.0.1:9/api/block-height/0") && e.contains("cannot connect"),
        "{e}"
    );
    // A seed that is no Ethereum account, hash or cluster is refused by name.
    let d = tempfile::tempdir().unwrap();
    let o = run(&[
        "trace",
        "--chain",
        "ethereum",
        "--seed",
        "0x00",
        "--out",
        "case",
        "--data",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        error_line(&o).contains("no Ethereum dataset"),
        "{}",
        error_line(&o)
    );
    let help = stdout(&run(&["--help"]));
    for cmd in [
        "ingest", "labels", "cluster", "trace", "report", "stats", "simulate", "demo",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}");
    }
}

/// A simulated world (regtest framing) of `txs` transactions in `out`; its blocks dir.
fn simulated(out: &Path, seed: &str, txs: &str) -> std::path::PathBuf {
    simulate(out, seed, txs, "small");
    out.join("blocks")
}

#[test]
fn another_chain_is_refused_unless_replace_and_a_second_ingest_waits_its_turn() {
    let w = tempfile::tempdir().unwrap();
    let sim = simulated(w.path(), "7", "3000");
    let data = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        data.path(),
        &[],
    ));
    let chain = data.path().join("regtest");
    let before = tree(&chain);
    // Another regtest world into the same dataset: refused, nothing changed.
    let o = ingest(&sim, data.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = error_line(&o);
    assert!(
        line.contains("holds another chain")
            && line.contains("--replace")
            && line.contains("regtest-world-a"),
        "{line}"
    );
    assert!(tree(&chain) == before, "a refused ingest changes nothing");
    ok(&ingest(&sim, data.path(), &["--replace"]));
    let m = manifest(&chain);
    assert!(
        m["source"]["location"]
            .as_str()
            .unwrap()
            .contains(w.path().file_name().unwrap().to_str().unwrap())
    );

    // One writer per dataset: while another process holds the lock, an ingest exits 1
    // naming it.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(data.path().join(".chaintrace.lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(
        data.path().join(".chaintrace.lock"),
        "pid 4242: chaintrace ingest bitcoin",
    )
    .unwrap();
    let o = ingest(&sim, data.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(error_line(&o).contains("pid 4242"), "{}", stderr(&o));
    drop(lock);
    ok(&ingest(&sim, data.path(), &[]));
}

#[test]
fn ctrl_c_keeps_the_committed_parts_says_how_to_resume_and_exits_130() {
    let data = tempfile::tempdir().unwrap();
    let blocks = bitcoin_data("regtest-world-a/blocks");
    let args = [
        "ingest",
        "bitcoin",
        "--quiet",
        "--blocks-dir",
        blocks.to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
        "--part-blocks",
        "50",
    ];
    // A real SIGINT, raised by the process itself after its 3rd part commit.
    let o = run_env(&args, &[("CHAINTRACE_SIGINT_AFTER_PART", "3")]);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("interrupted")
            && e.contains("height 149")
            && e.contains("run the same command again"),
        "{e}"
    );
    assert_eq!(manifest(&data.path().join("regtest"))["tip"]["height"], 149);
    // Resuming ends with the bytes of a clean run.
    ok(&run(&args));
    let clean = tempfile::tempdir().unwrap();
    ok(&ingest(&blocks, clean.path(), &["--part-blocks", "50"]));
    assert_eq!(
        part_files(&data.path().join("regtest")),
        part_files(&clean.path().join("regtest"))
    );
}
