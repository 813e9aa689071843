//! Ethereum `rewards`: block and uncle rewards before the merge (proof of work), from
//! `trace_block`'s reward traces (`ingest ethereum --traces parity`), or on mainnet without
//! them computed from the fork schedule (see `decode::schedule_rewards`).

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
        doc: "One row per block or uncle reward (ETH minted to a miner, with no transaction), from trace_block's reward traces with --traces parity; otherwise, on Ethereum mainnet, computed from the fork schedule (block reward 5 ETH before Byzantium, 3 before Constantinople, 2 until the merge, plus 1/32 of it per uncle; an uncle's miner gets (uncle + 8 - block) x reward / 8; the uncle headers come from eth_getUncleByBlockHashAndIndex). Empty after the merge and on other chains without parity traces.",
        columns: COLUMNS,
    };
}
