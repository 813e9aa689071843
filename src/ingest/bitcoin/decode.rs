//! Decoding a raw block into what the row writer needs. Pure and parallel: no UTXO access.

use bitcoin::consensus::deserialize;
use bitcoin::{Block, BlockHash, Txid};

use super::script::{Classified, classify};
use crate::types::{Network, ix};

/// A decoded output.
#[derive(Debug)]
pub struct DecodedOutput {
    pub value: u64,
    pub class: Classified,
    pub address: Option<String>,
}

/// A decoded input: the outpoint it spends and its sequence.
#[derive(Debug)]
pub struct DecodedInput {
    pub prev_txid: Txid,
    pub prev_vout: u32,
    pub sequence: u32,
}

/// A decoded transaction.
#[derive(Debug)]
pub struct DecodedTx {
    pub txid: Txid,
    pub version: i32,
    pub locktime: u32,
    pub size: u32,
    pub vsize: u32,
    pub weight: u32,
    pub is_coinbase: bool,
    pub inputs: Vec<DecodedInput>,
    pub outputs: Vec<DecodedOutput>,
}

/// A decoded block with its position in the chain.
#[derive(Debug)]
pub struct DecodedBlock {
    pub height: u32,
    pub hash: BlockHash,
    pub prev_hash: BlockHash,
    pub time: u32,
    pub version: i32,
    pub merkle_root: String,
    pub bits: u32,
    pub nonce: u32,
    pub size: u32,
    pub stripped_size: u32,
    pub weight: u32,
    pub txs: Vec<DecodedTx>,
    /// The block's transaction count and each of `txs`' position in it, when `txs` holds
    /// only some of the block's transactions (a fetched neighbourhood); `None` when it
    /// holds them all, in order.
    pub subset: Option<(u32, Vec<u32>)>,
}

/// Why a block's bytes are not the block the chain expects.
#[derive(Debug)]
pub enum DecodeProblem {
    /// The bytes do not deserialise as a block.
    Malformed(String),
    /// The header hashes to something other than the expected hash.
    WrongHash(BlockHash),
    /// The transactions do not hash to the header's merkle root.
    BadMerkleRoot,
}

impl std::fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeProblem::Malformed(e) => write!(f, "does not decode: {e}"),
            DecodeProblem::WrongHash(h) => write!(f, "bytes hash to {h}, not the indexed block"),
            DecodeProblem::BadMerkleRoot => {
                f.write_str("transactions do not match the merkle root")
            }
        }
    }
}

fn u32_of(n: usize) -> u32 {
    // Blocks are at most 4 MB of weight: sizes and counts always fit.
    u32::try_from(n).expect("block sizes fit in u32")
}

/// Decodes `raw`, the block expected at `height` with hash `expected`.
///
/// # Errors
/// The bytes are not a block, not the expected block, or fail the merkle root check.
pub fn decode_block(
    raw: &[u8],
    height: u32,
    expected: Option<BlockHash>,
    network: Network,
) -> Result<DecodedBlock, DecodeProblem> {
    let block: Block = deserialize(raw).map_err(|e| DecodeProblem::Malformed(e.to_string()))?;
    let hash = block.block_hash();
    if let Some(exp) = expected
        && exp != hash
    {
        return Err(DecodeProblem::WrongHash(hash));
    }
    let txids: Vec<Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
    let root = bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| t.to_raw_hash()));
    if root.map(bitcoin::TxMerkleNode::from_raw_hash) != Some(block.header.merkle_root) {
        return Err(DecodeProblem::BadMerkleRoot);
    }
    let stripped_size = u32_of(
        80 + bitcoin::VarInt::from(block.txdata.len()).size()
            + block.txdata.iter().map(|t| t.base_size()).sum::<usize>(),
    );
    let txs = block
        .txdata
        .iter()
        .zip(txids)
        .map(|(tx, txid)| decode_tx(tx, txid, network))
        .collect();
    Ok(DecodedBlock {
        height,
        hash,
        prev_hash: block.header.prev_blockhash,
        time: block.header.time,
        version: block.header.version.to_consensus(),
        merkle_root: block.header.merkle_root.to_string(),
        bits: block.header.bits.to_consensus(),
        nonce: block.header.nonce,
        size: u32_of(raw.len()),
        stripped_size,
        weight: u32_of(ix(block.weight().to_wu())),
        txs,
        subset: None,
    })
}

/// Decodes one transaction whose id is `txid`.
pub fn decode_tx(tx: &bitcoin::Transaction, txid: Txid, network: Network) -> DecodedTx {
    DecodedTx {
        txid,
        version: tx.version.0,
        locktime: tx.lock_time.to_consensus_u32(),
        size: u32_of(tx.total_size()),
        vsize: u32_of(tx.vsize()),
        weight: u32_of(ix(tx.weight().to_wu())),
        is_coinbase: tx.is_coinbase(),
        inputs: tx
            .input
            .iter()
            .map(|i| DecodedInput {
                prev_txid: i.previous_output.txid,
                prev_vout: i.previous_output.vout,
                sequence: i.sequence.0,
            })
            .collect(),
        outputs: tx
            .output
            .iter()
            .map(|o| {
                let class = classify(&o.script_pubkey);
                let address = class.address(network);
                DecodedOutput {
                    value: o.value.to_sat(),
                    class,
                    address,
                }
            })
            .collect(),
    }
}
