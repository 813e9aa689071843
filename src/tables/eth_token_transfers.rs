//! Ethereum `token_transfers`: one row per ERC-20/ERC-721 `Transfer` event (EIP-20, EIP-721).

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The `token_transfers` table.
#[derive(Clone, Copy, Debug)]
pub struct TokenTransfers;

const COLUMNS: &[Column] = &[
    col("block_number", U64, "block number"),
    col("tx_index", U32, "transaction position in the block"),
    col("tx_hash", Utf8, "transaction hash"),
    col("log_index", U64, "log position in the block"),
    col("token", Utf8, "the token contract"),
    col("from", Utf8, "sender (0x0…0 for a mint)"),
    col("to", Utf8, "recipient"),
    col(
        "value",
        Utf8,
        "ERC-20 amount or ERC-721 token id, exact decimal text",
    ),
    col(
        "standard",
        Utf8,
        "erc20 (3 topics), erc721 (4 topics, or 1 topic with from/to/id in the data: pre-standard NFTs) or erc1155 (TransferSingle/TransferBatch: one row per id)",
    ),
    opt(
        "token_id",
        Utf8,
        "ERC-1155: the token id (value is its amount); null otherwise",
    ),
    opt(
        "operator",
        Utf8,
        "ERC-1155: the operator who made the transfer; null otherwise",
    ),
];

impl Table for TokenTransfers {
    const DEF: TableDef = TableDef {
        name: "token_transfers",
        place: "ethereum/token_transfers/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per Transfer event.",
        columns: COLUMNS,
    };
}
