//! Ethereum `internal_transfers`: one row per call frame that moves value (call traces).

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The `internal_transfers` table.
#[derive(Clone, Copy, Debug)]
pub struct InternalTransfers;

const COLUMNS: &[Column] = &[
    col("block_number", U64, "block number"),
    col("tx_index", U32, "transaction position in the block"),
    col("tx_hash", Utf8, "transaction hash"),
    col(
        "trace_address",
        Utf8,
        "the frame's path: `0,1` = second call of the first sub-call",
    ),
    col("kind", Utf8, "call, create or suicide"),
    opt(
        "call_type",
        Utf8,
        "call, delegatecall, staticcall, callcode",
    ),
    opt("from", Utf8, "sender"),
    opt("to", Utf8, "recipient"),
    opt(
        "value",
        Utf8,
        "wei, exact decimal text, never 0; null when the node's trace did not give it (complete = false)",
    ),
    opt("error", Utf8, "the frame's own error"),
    col(
        "status",
        U32,
        "1, or 0 when the frame or one enclosing it failed (its value did not move; ethereum-etl's rule)",
    ),
    col(
        "complete",
        Bool,
        "false when the node's trace left out what the frame moved (a SELFDESTRUCT without beneficiary or value: old geth, one reth release); value is then null, never 0",
    ),
];

impl Table for InternalTransfers {
    const DEF: TableDef = TableDef {
        name: "internal_transfers",
        place: "ethereum/internal_transfers/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per value-moving call frame.",
        columns: COLUMNS,
    };
}
