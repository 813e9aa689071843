//! A case's `ends.parquet`: where each model's traced value ended.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The ends table of a case.
#[derive(Clone, Copy, Debug)]
pub struct Ends;

const COLUMNS: &[Column] = &[
    col("policy", Utf8, "the taint model"),
    col(
        "kind",
        Utf8,
        "exit, holding, mined, coinjoin, outside_window, before_window (backward on a height window: the outpoint from before it) or unresolved (Ethereum: taint that reached a SELFDESTRUCT frame whose value the node did not give, at the contract it emptied)",
    ),
    col(
        "txid",
        Utf8,
        "the transaction that paid it (Ethereum: that brought the taint)",
    ),
    col("vout", U32, "the output (0 on Ethereum)"),
    col(
        "address",
        Utf8,
        "the address paid (also with --level cluster)",
    ),
    col("amount", Amount, "the traced value ending there"),
    col("hop", U32, "transactions on the end's path from a seed"),
    opt("entity", Utf8, "the label's entity, for an exit"),
    opt("category", Utf8, "the label's category, for an exit"),
    opt(
        "cluster",
        Utf8,
        "the address's cluster, with --level cluster",
    ),
    opt("output_value", Amount, "the whole value of that output"),
];

impl Table for Ends {
    const DEF: TableDef = TableDef {
        name: "ends",
        place: "CASE/ends.parquet",
        format: crate::trace::case::CASE_FORMAT,
        doc: "One row per end of traced value, per model.",
        columns: COLUMNS,
    };
}
