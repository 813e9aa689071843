//! `clusters/<network>/merges.parquet`: every merge a heuristic proposed.

use super::{Column, Kind::*, Table, TableDef, col};

/// The merges table.
#[derive(Clone, Copy, Debug)]
pub struct Merges;

const COLUMNS: &[Column] = &[
    col("address_a", Utf8, "one address"),
    col("address_b", Utf8, "the address joined to it"),
    col("txid", Utf8, "the transaction that proposed it"),
    col(
        "heuristic",
        Utf8,
        "multi-input, change-one-time, change-type, change-optimal, change-round or change-fresh",
    ),
];

impl Table for Merges {
    const DEF: TableDef = TableDef {
        name: "merges",
        place: "clusters/<network>/merges.parquet",
        format: 1,
        doc: "One row per proposed merge, in transaction order.",
        columns: COLUMNS,
    };
}
