//! The regtest world: every block, transaction, input and output equals what the node
//! itself reported (`getblock <hash> 3` in `blocks.jsonl`).

use bitcoin::hashes::Hash;
use serde_json::Value;

use crate::util::*;

/// Bitcoin Core's `scriptPubKey.type` names mapped to the dataset's.
fn core_type(t: &str) -> &'static str {
    match t {
        "pubkey" => "p2pk",
        "pubkeyhash" => "p2pkh",
        "scripthash" => "p2sh",
        "witness_v0_keyhash" => "p2wpkh",
        "witness_v0_scripthash" => "p2wsh",
        "witness_v1_taproot" => "p2tr",
        "multisig" => "multisig",
        "nulldata" => "op_return",
        "nonstandard" => "nonstandard",
        "witness_unknown" | "anchor" => "witness_unknown",
        other => panic!("unknown Core script type {other}"),
    }
}

/// The address the dataset must show for a Core scriptPubKey: Core's own, or for P2PK the
/// P2PKH address of the key (computed here independently of chaintrace's code path).
fn expected_address(spk: &Value) -> Option<String> {
    if spk["type"] == "pubkey" {
        let hex = spk["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let key = bitcoin::PublicKey::from_slice(&bytes[1..bytes.len() - 1]).unwrap();
        return Some(
            bitcoin::Address::p2pkh(key.pubkey_hash(), bitcoin::NetworkKind::Test).to_string(),
        );
    }
    spk["address"].as_str().map(str::to_string)
}

fn check_against_node(chain_dir: &std::path::Path) {
    let jsonl = std::fs::read_to_string(bitcoin_data("regtest-world-a/blocks.jsonl")).unwrap();
    let node: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let blocks = read_table(chain_dir, "blocks");
    let txs = read_table(chain_dir, "transactions");
    let inputs = read_table(chain_dir, "inputs");
    let outputs = read_table(chain_dir, "outputs");
    let n_tx: usize = node.iter().map(|b| b["tx"].as_array().unwrap().len()).sum();
    let n_in: usize = node
        .iter()
        .flat_map(|b| b["tx"].as_array().unwrap())
        .map(|t| t["vin"].as_array().unwrap().len())
        .sum();
    let n_out: usize = node
        .iter()
        .flat_map(|b| b["tx"].as_array().unwrap())
        .map(|t| t["vout"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        (blocks.len(), txs.len(), inputs.len(), outputs.len()),
        (node.len(), n_tx, n_in, n_out)
    );
    assert_eq!(
        (node.len(), n_tx, n_in, n_out),
        (401, 2894, 4208, 6045),
        "README counts of the world"
    );

    let (mut ti, mut ii, mut oi) = (0, 0, 0);
    for (h, b) in node.iter().enumerate() {
        let row = &blocks[h];
        let ctx = format!("block {h}");
        assert_eq!(row["height"].int(), h as i64, "{ctx}");
        assert_eq!(row["hash"].str(), b["hash"].as_str().unwrap(), "{ctx}");
        let prev = b["previousblockhash"]
            .as_str()
            .unwrap_or("0000000000000000000000000000000000000000000000000000000000000000");
        assert_eq!(row["prev_hash"].str(), prev, "{ctx}");
        assert_eq!(row["time"].int(), b["time"].as_i64().unwrap(), "{ctx}");
        assert_eq!(
            row["version"].int(),
            b["version"].as_i64().unwrap(),
            "{ctx}"
        );
        assert_eq!(
            row["merkle_root"].str(),
            b["merkleroot"].as_str().unwrap(),
            "{ctx}"
        );
        assert_eq!(
            format!("{:08x}", row["bits"].int()),
            b["bits"].as_str().unwrap(),
            "{ctx}"
        );
        assert_eq!(row["nonce"].int(), b["nonce"].as_i64().unwrap(), "{ctx}");
        assert_eq!(row["n_tx"].int(), b["nTx"].as_i64().unwrap(), "{ctx}");
        assert_eq!(row["size"].int(), b["size"].as_i64().unwrap(), "{ctx}");
        assert_eq!(
            row["stripped_size"].int(),
            b["strippedsize"].as_i64().unwrap(),
            "{ctx}"
        );
        assert_eq!(row["weight"].int(), b["weight"].as_i64().unwrap(), "{ctx}");
        for (i, t) in b["tx"].as_array().unwrap().iter().enumerate() {
            let row = &txs[ti];
            ti += 1;
            let txid = t["txid"].as_str().unwrap();
            let ctx = format!("block {h} tx {txid}");
            assert_eq!(row["height"].int(), h as i64, "{ctx}");
            assert_eq!(row["tx_index"].int(), i as i64, "{ctx}");
            assert_eq!(row["txid"].str(), txid, "{ctx}");
            assert_eq!(row["time"].int(), b["time"].as_i64().unwrap(), "{ctx}");
            assert_eq!(
                row["version"].int(),
                t["version"].as_i64().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                row["locktime"].int(),
                t["locktime"].as_i64().unwrap(),
                "{ctx}"
            );
            assert_eq!(row["size"].int(), t["size"].as_i64().unwrap(), "{ctx}");
            assert_eq!(row["vsize"].int(), t["vsize"].as_i64().unwrap(), "{ctx}");
            assert_eq!(row["weight"].int(), t["weight"].as_i64().unwrap(), "{ctx}");
            let vin = t["vin"].as_array().unwrap();
            let vout = t["vout"].as_array().unwrap();
            assert_eq!(row["n_inputs"].int(), vin.len() as i64, "{ctx}");
            assert_eq!(row["n_outputs"].int(), vout.len() as i64, "{ctx}");
            let coinbase = vin[0].get("coinbase").is_some();
            assert_eq!(row["is_coinbase"], Cell::Bool(coinbase), "{ctx}");
            let out_sum: i64 = vout.iter().map(|o| btc_to_sat(&o["value"])).sum();
            assert_eq!(row["output_value"].int(), out_sum, "{ctx}");
            if coinbase {
                assert_eq!(
                    (&row["fee"], &row["input_value"]),
                    (&Cell::Null, &Cell::Null),
                    "{ctx}"
                );
            } else {
                let in_sum: i64 = vin.iter().map(|i| btc_to_sat(&i["prevout"]["value"])).sum();
                assert_eq!(row["input_value"].int(), in_sum, "{ctx}");
                assert_eq!(row["fee"].int(), btc_to_sat(&t["fee"]), "{ctx}: fee");
            }
            for (n, input) in vin.iter().enumerate() {
                let row = &inputs[ii];
                ii += 1;
                let ctx = format!("{ctx} vin {n}");
                assert_eq!(
                    (row["txid"].str(), row["vin"].int()),
                    (txid, n as i64),
                    "{ctx}"
                );
                assert_eq!(row["height"].int(), h as i64, "{ctx}");
                assert_eq!(
                    row["sequence"].int(),
                    input["sequence"].as_i64().unwrap(),
                    "{ctx}"
                );
                if coinbase {
                    assert_eq!(row["prev_txid"], Cell::Null, "{ctx}");
                    assert_eq!(row["value"], Cell::Null, "{ctx}");
                    continue;
                }
                let prev = &input["prevout"];
                assert_eq!(
                    row["prev_txid"].str(),
                    input["txid"].as_str().unwrap(),
                    "{ctx}"
                );
                assert_eq!(
                    row["prev_vout"].int(),
                    input["vout"].as_i64().unwrap(),
                    "{ctx}"
                );
                assert_eq!(row["value"].int(), btc_to_sat(&prev["value"]), "{ctx}");
                assert_eq!(
                    row["script_type"].str(),
                    core_type(prev["scriptPubKey"]["type"].as_str().unwrap()),
                    "{ctx}"
                );
                assert_eq!(
                    row["address"].opt_str().map(str::to_string),
                    expected_address(&prev["scriptPubKey"]),
                    "{ctx}"
                );
            }
            for o in vout {
                let row = &outputs[oi];
                oi += 1;
                let n = o["n"].as_i64().unwrap();
                let ctx = format!("{ctx} vout {n}");
                assert_eq!(
                    (row["txid"].str(), row["vout"].int(), row["height"].int()),
                    (txid, n, h as i64),
                    "{ctx}"
                );
                assert_eq!(row["value"].int(), btc_to_sat(&o["value"]), "{ctx}");
                assert_eq!(
                    row["script_type"].str(),
                    core_type(o["scriptPubKey"]["type"].as_str().unwrap()),
                    "{ctx}"
                );
                assert_eq!(
                    row["address"].opt_str().map(str::to_string),
                    expected_address(&o["scriptPubKey"]),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn regtest_blocks_dir_equals_node_reports_row_by_row() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        tmp.path(),
        &["--part-blocks", "100"],
    );
    ok(&o);
    let chain_dir = tmp.path().join("regtest");
    check_against_node(&chain_dir);
    let m: Value =
        serde_json::from_slice(&std::fs::read(chain_dir.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(m["tip"]["height"], 400);
    assert_eq!(
        m["tip"]["hash"],
        "27debfc5a6a9e838246865de6130be65797c0717b803386156ca88baf9a3317e"
    );
    assert_eq!(m["ranges"], serde_json::json!([[0, 400]]));
    assert_eq!(m["source"]["chain_selection"], "block-index");
    // Every listed file exists with the recorded sha256.
    for p in m["parts"].as_array().unwrap() {
        for (table, f) in p["files"].as_object().unwrap() {
            let bytes =
                std::fs::read(chain_dir.join(table).join(f["file"].as_str().unwrap())).unwrap();
            let sha = bitcoin::hashes::sha256::Hash::hash(&bytes).to_string();
            assert_eq!(sha, f["sha256"].as_str().unwrap());
        }
    }
}

#[test]
fn multifile_and_header_linking_give_the_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks"),
        a.path(),
        &["--part-blocks", "150"],
    ));
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks_multifile"),
        b.path(),
        &["--part-blocks", "150"],
    ));
    ok(&ingest(
        &bitcoin_data("regtest-world-a/blocks_multifile"),
        c.path(),
        &["--part-blocks", "150", "--no-index"],
    ));
    let parts = |d: &std::path::Path| part_files(&d.join("regtest"));
    let (ta, tb, tc) = (parts(a.path()), parts(b.path()), parts(c.path()));
    assert_eq!(ta.len(), 12, "3 parts x 4 tables");
    assert!(
        ta == tb,
        "multi-file directory differs from the single-file one"
    );
    assert!(ta == tc, "header linking differs from the block index");
}

/// Blocks stored out of height order, and stale blocks of a losing fork, in a directory
/// without an index: the best chain alone is ingested, identical to the node's.
#[test]
fn shuffled_blocks_and_stale_fork_without_index() {
    use bitcoin::consensus::{deserialize, serialize};
    use bitcoin::{Block, CompactTarget};

    let mut raw: Vec<Vec<u8>> = vec![Vec::new(); 401];
    // Read the 401 real blocks from the bundled blocks dir by deobfuscating blk00000.dat.
    let blk = std::fs::read(bitcoin_data("regtest-world-a/blocks/blk00000.dat")).unwrap();
    let key = std::fs::read(bitcoin_data("regtest-world-a/blocks/xor.dat")).unwrap();
    let mut pos = 0usize;
    for r in raw.iter_mut() {
        let hdr: Vec<u8> = (0..8).map(|i| blk[pos + i] ^ key[(pos + i) % 8]).collect();
        let size = u32::from_le_bytes(hdr[4..8].try_into().unwrap()) as usize;
        *r = (0..size)
            .map(|i| blk[pos + 8 + i] ^ key[(pos + 8 + i) % 8])
            .collect();
        pos += 8 + size;
    }
    // A stale fork: a block at height 399 on top of 398, mined here (regtest proof of work).
    let parent: Block = deserialize(&raw[398]).unwrap();
    let mut stale: Block = deserialize(&raw[399]).unwrap();
    stale.header.prev_blockhash = parent.block_hash();
    stale.header.time += 1;
    assert_eq!(stale.header.bits, CompactTarget::from_consensus(0x207fffff));
    while stale.header.validate_pow(stale.header.target()).is_err() {
        stale.header.nonce += 1;
    }
    assert_ne!(
        stale.block_hash(),
        deserialize::<Block>(&raw[399]).unwrap().block_hash()
    );
    let mut order: Vec<Vec<u8>> = raw.clone();
    order.push(serialize(&stale));
    // Deterministic shuffle: reverse halves and interleave.
    order.reverse();
    order.rotate_left(137);
    let dir = tempfile::tempdir().unwrap();
    let blocks_dir = dir.path().join("blocks");
    std::fs::create_dir_all(&blocks_dir).unwrap();
    // No xor.dat: an unobfuscated directory. Two files.
    let (one, two) = order.split_at(200);
    for (n, set) in [one, two].into_iter().enumerate() {
        let mut f = Vec::new();
        for b in set {
            f.extend_from_slice(&[0xfa, 0xbf, 0xb5, 0xda]);
            f.extend_from_slice(&(b.len() as u32).to_le_bytes());
            f.extend_from_slice(b);
        }
        f.extend_from_slice(&[0u8; 4096]); // preallocated tail
        std::fs::write(blocks_dir.join(format!("blk{n:05}.dat")), f).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let o = ingest(
        &blocks_dir,
        data.path(),
        &["--part-blocks", "100", "--json"],
    );
    ok(&o);
    let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(summary["stale_blocks_skipped"], 1);
    assert_eq!(summary["chain_selection"], "header-links");
    check_against_node(&data.path().join("regtest"));
    let hashes: Vec<String> = read_table(&data.path().join("regtest"), "blocks")
        .iter()
        .map(|r| r["hash"].str().to_string())
        .collect();
    assert!(
        !hashes.contains(&stale.block_hash().to_string()),
        "the stale block was ingested"
    );
}
