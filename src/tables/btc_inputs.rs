//! Bitcoin `inputs`: one row per input, the spent output's value, address and script type
//! resolved; a coinbase input has a row with those columns null.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The `inputs` table.
#[derive(Clone, Copy, Debug)]
pub struct Inputs;

const COLUMNS: &[Column] = &[
    col("height", U32, "height of the spending block"),
    col("txid", Utf8, "spending transaction"),
    col("vin", U32, "input index"),
    opt(
        "prev_txid",
        Utf8,
        "transaction of the spent output; null for a coinbase",
    ),
    opt(
        "prev_vout",
        U32,
        "index of the spent output; null for a coinbase",
    ),
    opt(
        "value",
        I64,
        "value of the spent output (sat); null for a coinbase",
    ),
    opt(
        "address",
        Utf8,
        "address of the spent output (see outputs.address)",
    ),
    opt(
        "script_type",
        Utf8,
        "script type of the spent output; null for a coinbase",
    ),
    col("sequence", U32, "nSequence"),
];

impl Table for Inputs {
    const DEF: TableDef = TableDef {
        name: "inputs",
        place: "<network>/inputs/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per input (the coinbase input too, as the node reports it).",
        columns: COLUMNS,
    };
}
