//! Real mainnet data: a Bitcoin Core data directory, a bare blk file, single blocks.

use std::str::FromStr;

use bitcoin::consensus::deserialize;
use bitcoin::{Address, Block, Transaction};
use chaintrace::ingest::bitcoin::decode::decode_block;
use chaintrace::ingest::bitcoin::rows::Rows;
use chaintrace::ingest::bitcoin::script::{ScriptType, classify};
use chaintrace::ingest::bitcoin::utxo::{Coin, UtxoSet};
use chaintrace::types::Network;
use serde_json::Value;

use crate::util::*;

fn core_datadir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let tar = bitcoin_data("core-datadir-mainnet-0-438/mainnet-h0-438-core-datadir.tar.zst");
    let o = std::process::Command::new("tar")
        .args([
            "--zstd",
            "-xf",
            tar.to_str().unwrap(),
            "-C",
            tmp.path().to_str().unwrap(),
        ])
        .output()
        .expect("tar runs");
    assert!(
        o.status.success(),
        "tar --zstd failed (is zstd installed?): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    tmp
}

#[test]
fn core_datadir_and_bare_blk_file_give_identical_datasets() {
    let core = core_datadir();
    let blocks = core.path().join("kerneldir/blocks");
    assert!(blocks.join("index/CURRENT").is_file() && blocks.join("xor.dat").is_file());
    let key = std::fs::read(blocks.join("xor.dat")).unwrap();
    assert_ne!(key, vec![0u8; 8], "the fixture is obfuscated");
    let a = tempfile::tempdir().unwrap();
    let o = ingest(&blocks, a.path(), &["--json"]);
    ok(&o);
    let s: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["chain_selection"], "block-index");
    assert_eq!(s["network"], "bitcoin");

    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(
        bitcoin_data("blk-files/mainnet-blocks-0-438.dat"),
        bare.path().join("blk00000.dat"),
    )
    .unwrap();
    let b = tempfile::tempdir().unwrap();
    let o = ingest(bare.path(), b.path(), &["--json"]);
    ok(&o);
    let s: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["chain_selection"], "header-links");

    let strip = |d: &std::path::Path| part_files(&d.join("bitcoin"));
    let (ta, tb) = (strip(a.path()), strip(b.path()));
    assert_eq!(ta.len(), 4);
    assert!(
        ta == tb,
        "the Core datadir and the bare blk file give different datasets"
    );

    let chain = a.path().join("bitcoin");
    let blocks = read_table(&chain, "blocks");
    assert_eq!(blocks.len(), 439);
    assert_eq!(
        blocks[0]["hash"].str(),
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    );
    // Block 170: the first person-to-person payment spends block 9's coinbase.
    let inputs = read_table(&chain, "inputs");
    let spend = inputs
        .iter()
        .find(|r| {
            r["txid"].str() == "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        })
        .expect("the block 170 transaction is ingested");
    assert_eq!(spend["height"].int(), 170);
    assert_eq!(
        spend["prev_txid"].str(),
        "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
    );
    assert_eq!(spend["value"].int(), 50 * 100_000_000);
    assert_eq!(spend["address"].str(), "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S");
    assert_eq!(spend["script_type"].str(), "p2pk");
    let outputs = read_table(&chain, "outputs");
    let paid: Vec<(i64, &str)> = outputs
        .iter()
        .filter(|r| {
            r["txid"].str() == "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        })
        .map(|r| (r["value"].int(), r["address"].str()))
        .collect();
    assert_eq!(
        paid,
        vec![
            (10 * 100_000_000, "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"),
            (40 * 100_000_000, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S")
        ]
    );
    let txs = read_table(&chain, "transactions");
    let t = txs
        .iter()
        .find(|r| {
            r["txid"].str() == "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        })
        .unwrap();
    assert_eq!(t["fee"].int(), 0);
}

/// Checks every output of `block`: each address re-encodes to exactly the output script
/// (P2PK: the P2PKH script of its key), and scripts without an address have none.
fn check_outputs(block: &Block, network: Network) -> std::collections::BTreeMap<ScriptType, usize> {
    let d = decode_block(
        &bitcoin::consensus::serialize(block),
        0,
        Some(block.block_hash()),
        network,
    )
    .unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for (tx, dtx) in block.txdata.iter().zip(&d.txs) {
        assert_eq!(tx.compute_txid(), dtx.txid);
        for (o, dout) in tx.output.iter().zip(&dtx.outputs) {
            *counts.entry(dout.class.script_type).or_insert(0) += 1;
            let ctx = format!(
                "{} output script {}",
                tx.compute_txid(),
                o.script_pubkey.to_hex_string()
            );
            match (&dout.address, dout.class.script_type) {
                (Some(a), ScriptType::P2pk) => {
                    let key = o
                        .script_pubkey
                        .p2pk_public_key()
                        .expect("a valid key in these blocks");
                    let want = Address::p2pkh(key.pubkey_hash(), network.to_bitcoin());
                    assert_eq!(a, &want.to_string(), "{ctx}");
                }
                (Some(a), _) => {
                    let parsed = Address::from_str(a)
                        .unwrap()
                        .require_network(network.to_bitcoin())
                        .unwrap();
                    assert_eq!(parsed.script_pubkey(), o.script_pubkey, "{ctx}");
                }
                (None, t) => assert!(
                    matches!(
                        t,
                        ScriptType::Multisig | ScriptType::OpReturn | ScriptType::Nonstandard
                    ),
                    "{ctx}: {t:?} without an address"
                ),
            }
        }
    }
    counts
}

fn block_file(name: &str) -> Block {
    deserialize(&std::fs::read(bitcoin_data(&format!("mainnet-blocks/{name}"))).unwrap()).unwrap()
}

#[test]
fn single_mainnet_blocks_classify_every_output() {
    use ScriptType::*;
    // Block 702,861 (2021): segwit-heavy.
    let b = block_file(
        "mainnet_block_000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae.raw",
    );
    let c = check_outputs(&b, Network::Bitcoin);
    assert!(
        c[&P2wpkh] > 1000 && c[&P2sh] > 100 && c[&P2pkh] > 100 && c[&P2wsh] > 0 && c[&OpReturn] > 0,
        "{c:?}"
    );
    // Bare multisig era.
    for name in ["block363703.dat", "block370661.dat"] {
        let c = check_outputs(&block_file(name), Network::Bitcoin);
        assert!(
            c.get(&Multisig).copied().unwrap_or(0) > 0,
            "{name}: no bare multisig found: {c:?}"
        );
    }
    // Segwit activation blocks and others decode cleanly.
    for name in [
        "block169482.dat",
        "block227836.dat",
        "block383616.dat",
        "block481815.dat",
        "block481829.dat",
    ] {
        check_outputs(&block_file(name), Network::Bitcoin);
    }
    // Bitcoin Core's benchmark copy of block 413,567 does not match its own merkle root
    // (the crate's independent check agrees): the decoder must refuse it, not ingest it.
    let raw = std::fs::read(bitcoin_data("mainnet-blocks/block413567.raw")).unwrap();
    let b: Block = deserialize(&raw).unwrap();
    assert!(!b.check_merkle_root());
    assert!(matches!(
        decode_block(&raw, 413_567, None, Network::Bitcoin),
        Err(chaintrace::ingest::bitcoin::decode::DecodeProblem::BadMerkleRoot)
    ));
    // Block 574,200 pays the OFAC-listed address.
    let b =
        block_file("block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk");
    check_outputs(&b, Network::Bitcoin);
    let d = decode_block(
        &bitcoin::consensus::serialize(&b),
        574_200,
        None,
        Network::Bitcoin,
    )
    .unwrap();
    assert!(
        d.txs
            .iter()
            .flat_map(|t| &t.outputs)
            .any(|o| o.address.as_deref() == Some("1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d")),
        "block 574,200 must pay 1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"
    );
    let b =
        block_file("block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk");
    check_outputs(&b, Network::Bitcoin);
}

#[test]
fn megatx_has_5569_inputs() {
    let raw = decompress("bzip2", &bitcoin_data("mainnet-blocks/megatx.bin.bz2"));
    let tx: Transaction = deserialize(&raw).unwrap();
    assert_eq!(tx.input.len(), 5569);
    for o in &tx.output {
        let c = classify(&o.script_pubkey);
        assert_ne!(c.script_type, ScriptType::Nonstandard);
    }
}

#[test]
fn block_367891_fees_are_exact_from_its_spent_outputs() {
    let raw = decompress("zstd", &bitcoin_data("mainnet-blocks/block_367891_raw.zst"));
    let spent: Vec<Value> = serde_json::from_slice(&decompress(
        "zstd",
        &bitcoin_data("mainnet-blocks/block_367891_spent_utxos.zst"),
    ))
    .unwrap();
    let block: Block = deserialize(&raw).unwrap();
    let d = decode_block(&raw, 367_891, Some(block.block_hash()), Network::Bitcoin).unwrap();
    let in_block: std::collections::HashSet<_> =
        block.txdata.iter().map(|t| t.compute_txid()).collect();
    // Seed the UTXO set with the prevouts from outside the block, in input order.
    let mut prevouts: std::collections::BTreeMap<bitcoin::Txid, Vec<(u32, Coin)>> =
        Default::default();
    let mut k = 0;
    let mut expected_addr = Vec::new();
    for tx in block.txdata.iter().skip(1) {
        for input in &tx.input {
            let e = &spent[k];
            k += 1;
            if in_block.contains(&input.previous_output.txid) {
                continue; // created in this block: resolved from the block itself
            }
            let spk = bitcoin::ScriptBuf::from_hex(e["txout"]["script_pubkey"].as_str().unwrap())
                .unwrap();
            let class = classify(&spk);
            expected_addr.push(
                Address::from_script(&spk, bitcoin::Network::Bitcoin)
                    .ok()
                    .map(|a| a.to_string()),
            );
            let coin = Coin {
                value: e["txout"]["value"].as_u64().unwrap(),
                script_type: class.script_type,
                payload: class.payload,
            };
            prevouts
                .entry(input.previous_output.txid)
                .or_default()
                .push((input.previous_output.vout, coin));
        }
    }
    let mut utxo = UtxoSet::new();
    for (txid, outs) in prevouts {
        utxo.add_tx(&txid, outs.into_iter()).unwrap();
    }
    assert_eq!(
        k,
        spent.len(),
        "one spent-output entry per non-coinbase input"
    );
    let mut rows = Rows::new(Network::Bitcoin);
    Rows::apply(&d, &mut utxo, Some(&mut rows)).unwrap();
    let [_, txs, inputs, _] = rows.finish().unwrap();
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let fees = txs
        .column_by_name("fee")
        .unwrap()
        .as_primitive::<Int64Type>();
    let total_fees: i64 = fees.iter().flatten().sum();
    assert!(fees.iter().skip(1).all(|f| f.is_some_and(|f| f >= 0)));
    // The coinbase claims the 25 BTC subsidy plus exactly the fees.
    let coinbase_out: u64 = block.txdata[0]
        .output
        .iter()
        .map(|o| o.value.to_sat())
        .sum();
    assert_eq!(
        coinbase_out as i64,
        25 * 100_000_000 + total_fees,
        "subsidy + fees = coinbase"
    );
    assert_eq!(inputs.num_rows(), 20_818);
    // Resolved input addresses equal those of the recorded prevout scripts.
    let addr = inputs.column_by_name("address").unwrap().as_string::<i32>();
    let prev = inputs
        .column_by_name("prev_txid")
        .unwrap()
        .as_string::<i32>();
    let got: Vec<Option<String>> = (0..inputs.num_rows())
        .filter(|&i| {
            !prev.is_null(i) && !in_block.contains(&bitcoin::Txid::from_str(prev.value(i)).unwrap())
        })
        .map(|i| (!addr.is_null(i)).then(|| addr.value(i).to_string()))
        .collect();
    assert_eq!(got.len(), expected_addr.len());
    for (g, e) in got.iter().zip(&expected_addr) {
        if e.is_some() {
            assert_eq!(g, e);
        }
    }
}
