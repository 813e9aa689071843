//! `clusters/<network>/merges.parquet`: every merge a heuristic proposed.

use super::{Column, Kind::*, Table, TableDef, col, opt};

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
        "the rule: multi-input or one of the change rules (`chaintrace cluster bitcoin --help`)",
    ),
    col(
        "rule_set",
        Utf8,
        "the heuristic set of the clustering, '+'-joined (e.g. multi-input+change-vote)",
    ),
    col(
        "because",
        Utf8,
        "the rules behind it, '+'-joined: the heuristic itself, or for change-vote the precise rules that agreed or the rules that voted for this output",
    ),
    opt(
        "precision_ppm",
        U32,
        "the rule's measured merge precision in parts per million: the lowest share of its merges joining one entity over the calibration worlds (docs/CLUSTERING.md); for change-vote, that of its kind of decision (change-vote/precise when precise rules agreed, change-vote/votes when votes decided); null when a rule behind it was never measured",
    ),
];

impl Table for Merges {
    const DEF: TableDef = TableDef {
        name: "merges",
        place: "clusters/<network>/merges.parquet",
        format: 3,
        doc: "One row per proposed merge, in transaction order.",
        columns: COLUMNS,
    };
}
