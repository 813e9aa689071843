//! Ethereum `withdrawals`: one row per validator withdrawal (EIP-4895, since Shanghai,
//! block 17,034,870 on mainnet): ETH credited by the consensus layer, with no transaction.

use super::{Column, Kind::*, Table, TableDef, col};

/// The `withdrawals` table.
#[derive(Clone, Copy, Debug)]
pub struct Withdrawals;

const COLUMNS: &[Column] = &[
    col("block_number", U64, "block number"),
    col(
        "index",
        U64,
        "the withdrawal's index (consensus-layer counter)",
    ),
    col("validator_index", U64, "the validator withdrawn from"),
    col("address", Utf8, "the account credited"),
    col(
        "amount",
        Utf8,
        "wei, exact decimal text (the block gives gwei: × 10^9)",
    ),
];

impl Table for Withdrawals {
    const DEF: TableDef = TableDef {
        name: "withdrawals",
        place: "ethereum/withdrawals/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per validator withdrawal (EIP-4895). A block before Shanghai has none and a null blocks.withdrawal_count; a block with an empty list has none and withdrawal_count 0.",
        columns: COLUMNS,
    };
}
