//! Ethereum `blocks`: one row per block.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The Ethereum `blocks` table.
#[derive(Clone, Copy, Debug)]
pub struct EthBlocks;

const COLUMNS: &[Column] = &[
    col("number", U64, "block number"),
    col("hash", Utf8, "block hash (0x hex)"),
    col("parent_hash", Utf8, "parent block hash"),
    col("timestamp", U64, "unix seconds"),
    col("miner", Utf8, "fee recipient"),
    col("gas_limit", U64, "gas limit"),
    col("gas_used", U64, "gas used"),
    opt(
        "base_fee_per_gas",
        Utf8,
        "wei, decimal text; null before London (EIP-1559)",
    ),
    opt("size", U64, "bytes"),
    col("difficulty", Utf8, "decimal text"),
    col("tx_count", U32, "transactions"),
    opt(
        "withdrawal_count",
        U32,
        "EIP-4895 withdrawals; null before Shanghai",
    ),
    opt(
        "unparsed_transfer_logs",
        Utf8,
        "log indexes (comma-separated) of Transfer logs of no known shape, kept undecoded; null when none",
    ),
];

impl Table for EthBlocks {
    const DEF: TableDef = TableDef {
        name: "ethereum blocks",
        place: "ethereum/blocks/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per block.",
        columns: COLUMNS,
    };
}
