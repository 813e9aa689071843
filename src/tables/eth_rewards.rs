//! Ethereum `rewards`: block and uncle rewards before the merge (proof of work), from
//! `trace_block`'s reward traces (`ingest ethereum --traces parity`).

use super::{Column, Kind::*, Table, TableDef, col};

/// The `rewards` table.
#[derive(Clone, Copy, Debug)]
pub struct Rewards;

const COLUMNS: &[Column] = &[
    col("block_number", U64, "block number"),
    col(
        "address",
        Utf8,
        "the account credited (the block's or the uncle's author)",
    ),
    col("reward_type", Utf8, "block or uncle"),
    col("amount", Utf8, "wei, exact decimal text"),
];

impl Table for Rewards {
    const DEF: TableDef = TableDef {
        name: "rewards",
        place: "ethereum/rewards/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per block or uncle reward (ETH minted to a miner, with no transaction), from trace_block's reward traces: filled with --traces parity; empty with geth's callTracer, which does not give them.",
        columns: COLUMNS,
    };
}
