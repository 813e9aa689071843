//! Bitcoin `blocks`: one row per block of the best chain.

use super::{Column, Kind::*, Table, TableDef, col};

/// The `blocks` table.
#[derive(Clone, Copy, Debug)]
pub struct Blocks;

const COLUMNS: &[Column] = &[
    col("height", U32, "height on the best chain"),
    col("hash", Utf8, "block hash (display order)"),
    col(
        "prev_hash",
        Utf8,
        "previous block hash (all zeros for genesis)",
    ),
    col("time", TimeMs, "header time"),
    col("version", I32, "header version"),
    col("merkle_root", Utf8, "header merkle root (display order)"),
    col("bits", U32, "compact target"),
    col("nonce", U32, "header nonce"),
    col("n_tx", U32, "transactions in the block"),
    col("size", U32, "serialized size with witnesses (bytes)"),
    col("stripped_size", U32, "size without witnesses (bytes)"),
    col("weight", U32, "BIP 141 weight"),
];

impl Table for Blocks {
    const DEF: TableDef = TableDef {
        name: "blocks",
        place: "<network>/blocks/part-<from>-<to>.parquet",
        format: super::DATASET_FORMAT,
        doc: "One row per block of the best chain.",
        columns: COLUMNS,
    };
}
