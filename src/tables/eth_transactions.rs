//! Ethereum `transactions`: one row per transaction, with its receipt's status and gas.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The Ethereum `transactions` table.
#[derive(Clone, Copy, Debug)]
pub struct EthTransactions;

const COLUMNS: &[Column] = &[
    col("block_number", U64, "block number"),
    col("tx_index", U32, "position in the block"),
    col("hash", Utf8, "transaction hash"),
    col("timestamp", U64, "block time, unix seconds"),
    col("from", Utf8, "sender"),
    opt("to", Utf8, "recipient; null for a contract creation"),
    col("value", Utf8, "wei, exact decimal text"),
    col("nonce", U64, "sender nonce"),
    col("type", U32, "EIP-2718 type (0–4)"),
    opt("status", U32, "1 success, 0 failure; null before Byzantium"),
    col("gas", U64, "gas limit"),
    col("gas_used", U64, "gas used (receipt)"),
    opt("gas_price", Utf8, "wei, decimal text"),
    opt(
        "effective_gas_price",
        Utf8,
        "wei per gas paid (receipt), decimal text",
    ),
    opt("max_fee_per_gas", Utf8, "EIP-1559, decimal text"),
    opt("max_priority_fee_per_gas", Utf8, "EIP-1559, decimal text"),
    opt("contract_address", Utf8, "the contract a creation made"),
    opt(
        "input_selector",
        Utf8,
        "0x + the first 4 bytes of the input",
    ),
    col("input_bytes", U32, "input length (bytes)"),
    col("logs", U32, "log entries (receipt)"),
    opt(
        "blob_gas_used",
        U64,
        "EIP-4844 blob gas used (receipt); null for a transaction without blobs",
    ),
    opt(
        "blob_gas_price",
        Utf8,
        "EIP-4844 wei per blob gas (receipt), decimal text: the blob fee blob_gas_used × blob_gas_price is burnt",
    ),
];

impl Table for EthTransactions {
    const DEF: TableDef = TableDef {
        name: "ethereum transactions",
        place: "ethereum/transactions/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per transaction.",
        columns: COLUMNS,
    };
}
