//! A case's `edges.parquet`: one row per transfer of traced value, per model.

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The edges table of a case.
#[derive(Clone, Copy, Debug)]
pub struct Edges;

const COLUMNS: &[Column] = &[
    col("policy", Utf8, "the taint model"),
    col("txid", Utf8, "the transaction (Ethereum: its hash)"),
    col(
        "height",
        Height,
        "its block height (Ethereum: block number)",
    ),
    col("time", U32, "block time, unix seconds"),
    col(
        "from",
        Utf8,
        "sending node: an address, or a cluster with --level cluster",
    ),
    col(
        "to",
        Utf8,
        "receiving node: an address, or a cluster with --level cluster",
    ),
    col(
        "amount",
        Amount,
        "traced value the model assigns to the transfer",
    ),
    col("hop", U32, "transactions from a seed"),
    col("vout", U32, "the output of txid paid (0 on Ethereum)"),
    col(
        "from_address",
        Utf8,
        "an input address of the sender (always an address)",
    ),
    col("to_address", Utf8, "the address paid (always an address)"),
    opt(
        "output_value",
        Amount,
        "the whole value of that output or transfer",
    ),
];

impl Table for Edges {
    const DEF: TableDef = TableDef {
        name: "edges",
        place: "CASE/edges.parquet",
        format: crate::trace::case::CASE_FORMAT,
        doc: "One row per transfer of traced value, per model.",
        columns: COLUMNS,
    };
}
