//! Errors of the Bitcoin ingest. Every message names the file, offset or height, and
//! most end with what to do.

use std::path::PathBuf;

use thiserror::Error;

use super::leveldb::LevelDbError;
use crate::store::StoreError;
use crate::types::Network;

/// An error ingesting Bitcoin data.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The UTXO set, past its share of `--memory`, could not use its scratch file (the
    /// source's message names the file or folder).
    #[error("{source}; free disk space in the dataset's folder or give a larger --memory")]
    UtxoSpill {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir} holds no blk*.dat files; pass Bitcoin Core's blocks directory ({hint})")]
    NoBlkFiles {
        dir: PathBuf,
        /// Where they are, when in a folder below ([`no_blk_hint`]), else the usual place.
        hint: String,
    },
    #[error(
        "{dir}/blk{file:05}.dat is missing but the block index points into it; copy the whole blocks directory"
    )]
    MissingBlkFile { dir: PathBuf, file: u32 },
    #[error(
        "{path} is {len} bytes, an obfuscation key must be 8; restore xor.dat from the node's blocks directory"
    )]
    BadXorKey { path: PathBuf, len: usize },
    #[error(
        "{path} offset {offset}: magic {} is no known network; is this a blocks directory, and is its xor.dat the one the node wrote?",
        super::blkfile::hex4(*found)
    )]
    UnknownMagic {
        path: PathBuf,
        offset: u64,
        found: [u8; 4],
    },
    #[error(
        "{path} offset {offset}: network magic {} differs from the directory's network {expected}; blocks of two networks are mixed",
        super::blkfile::hex4(*found)
    )]
    WrongMagic {
        path: PathBuf,
        offset: u64,
        found: [u8; 4],
        expected: Network,
    },
    #[error(
        "{path} offset {offset}: truncated: {what}; the blocks before it are complete (copy the file again if the node was still writing)"
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path} offset {offset}: corrupt: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error(
        "block {hash} at height {height} ({path} offset {offset}) is corrupt: {what}; re-copy the blocks directory"
    )]
    CorruptBlock {
        hash: String,
        height: u32,
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("block index unreadable: {0}; rerun with --no-index to link block headers instead")]
    Index(#[from] LevelDbError),
    #[error("block index entry {key}: {what}; rerun with --no-index to link block headers instead")]
    IndexEntry { key: String, what: String },
    #[error(
        "block {hash} ({path} offset {offset}) has parent {parent}, which is not in the blocks directory; the dataset stops at height {reached}. Copy the missing blk files, or use the node's block index"
    )]
    MissingParent {
        hash: String,
        parent: String,
        path: PathBuf,
        offset: u64,
        reached: i64,
    },
    #[error(
        "no block of the best chain has its data on disk at height {height} ({hash}); is this a pruned node? chaintrace needs every block from genesis"
    )]
    MissingData { height: u32, hash: String },
    #[error(
        "{dir}: no {network} genesis block found; the directory holds no chain that starts at genesis"
    )]
    NoGenesis { dir: PathBuf, network: Network },
    #[error(
        "block {height} tx {txid} input {vin} spends {prev_txid}:{prev_vout}, which is not an unspent output of the chain so far; the blocks directory is inconsistent"
    )]
    UnknownPrevout {
        height: u32,
        txid: String,
        vin: u32,
        prev_txid: String,
        prev_vout: u32,
    },
    #[error(
        "dataset {dir} holds network {found}, the source is {expected}; use another --data directory"
    )]
    NetworkMismatch {
        dir: PathBuf,
        found: String,
        expected: Network,
    },
    #[error(
        "dataset {dir} holds another chain: its tip {old_tip_hash} at height {old_tip_height} (ingested from {recorded_source}) is not on the source's best chain, which leaves it {} — deeper than a reorganisation ({max} blocks), or sharing only the genesis block. Ingest into another --data, or add --replace to delete this dataset and ingest the source",
        fork_height.map_or("at genesis".to_string(), |f| format!("after height {f}")),
        max = super::MAX_REORG_DEPTH
    )]
    OtherChain {
        dir: PathBuf,
        fork_height: Option<u64>,
        old_tip_height: u64,
        old_tip_hash: String,
        recorded_source: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    RpcCall(#[from] super::rpc::RpcError),
    #[error(
        "block {hash} at height {height}: {source}; everything before it is written, rerun to resume"
    )]
    Rpc {
        height: u32,
        hash: String,
        #[source]
        source: super::rpc::RpcError,
    },
    #[error("node reply for block {hash} at height {height} is malformed: {what}")]
    RpcReply {
        height: u32,
        hash: String,
        what: String,
    },
    #[error("interrupted")]
    Interrupted,
    /// A request that cannot be carried out as given (a seed, a folder), said whole.
    #[error("{0}")]
    Input(String),
    #[error(
        "{dir} holds a neighbourhood fetched for a trace (trace --source), not whole blocks; ingest into another --data"
    )]
    Neighbourhood { dir: PathBuf },
}

/// Where the blk files may be: a `blocks` folder inside the one given (a node's data
/// directory, or a simulated world's folder), else the usual place.
pub(super) fn no_blk_hint(dir: &std::path::Path) -> String {
    for sub in [
        "blocks",
        "regtest/blocks",
        "testnet3/blocks",
        "signet/blocks",
    ] {
        let d = dir.join(sub);
        if d.join("blk00000.dat").is_file() {
            return format!("it is {}: --blocks-dir {}", d.display(), d.display());
        }
    }
    "e.g. ~/.bitcoin/blocks".to_string()
}
