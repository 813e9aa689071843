//! Bitcoin `transactions`: one row per transaction, in block order.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The `transactions` table.
#[derive(Clone, Copy, Debug)]
pub struct Transactions;

const COLUMNS: &[Column] = &[
    col("height", U32, "block height"),
    col("tx_index", U32, "position in the block (0 = coinbase)"),
    col("txid", Utf8, "transaction id (display order)"),
    col("time", TimeMs, "block time"),
    col("version", I32, "transaction version"),
    col("locktime", U32, "nLockTime"),
    col(
        "size",
        U32,
        "serialized size (bytes), as Bitcoin Core reports it",
    ),
    col("vsize", U32, "virtual size (vbytes)"),
    col("weight", U32, "BIP 141 weight"),
    col("n_inputs", U32, "inputs"),
    col("n_outputs", U32, "outputs"),
    col("is_coinbase", Bool, "the block's coinbase"),
    opt(
        "input_value",
        I64,
        "sum of the spent outputs' values (sat); null for a coinbase",
    ),
    col("output_value", I64, "sum of the output values (sat)"),
    opt(
        "fee",
        I64,
        "input_value − output_value (sat); null for a coinbase",
    ),
];

impl Table for Transactions {
    const DEF: TableDef = TableDef {
        name: "transactions",
        place: "<network>/transactions/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per transaction, in block order.",
        columns: COLUMNS,
    };
}
