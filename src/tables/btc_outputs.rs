//! Bitcoin `outputs`: one row per output.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The `outputs` table.
#[derive(Clone, Copy, Debug)]
pub struct Outputs;

const COLUMNS: &[Column] = &[
    col("height", U32, "block height"),
    col("txid", Utf8, "transaction"),
    col("vout", U32, "output index"),
    col("value", I64, "satoshi"),
    col("script_type", Utf8, "Bitcoin Core's Solver class (below)"),
    opt(
        "address",
        Utf8,
        "address string for the network; null where the script has none",
    ),
];

impl Table for Outputs {
    const DEF: TableDef = TableDef {
        name: "outputs",
        place: "<network>/outputs/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per output.",
        columns: COLUMNS,
    };
}
