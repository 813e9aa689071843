//! `labels/tags.parquet`: one row per imported tag (`chaintrace labels import`).

use super::{Column, Kind::*, Table, TableDef, col, opt};

/// The tags table.
#[derive(Clone, Copy, Debug)]
pub struct Tags;

const COLUMNS: &[Column] = &[
    col("address", Utf8, "normalised address"),
    col("chain", Utf8, "bitcoin or ethereum"),
    col(
        "network",
        Utf8,
        "bitcoin, testnet, regtest …; mainnet on Ethereum",
    ),
    col("label", Utf8, "the tag's label"),
    col("entity", Utf8, "the TagPack actor, else the label"),
    col("category", Utf8, "lower case"),
    col(
        "confidence",
        Utf8,
        "a GraphSense confidence id; unknown for CSV rows without one",
    ),
    col(
        "is_public",
        Bool,
        "public tag (non-public ones are used only with --include-private)",
    ),
    col("source", Utf8, "the tag's source"),
    col("file", Utf8, "canonical path of the imported file"),
    col("line", U32, "the tag's line in that file"),
    col(
        "imported_at",
        TimeMs,
        "import time (labels import --imported-at pins it)",
    ),
    opt("lastmod", Utf8, "YYYY-MM-DD of the tag, or null"),
    col("file_sha256", Utf8, "hex sha256 of the imported file"),
];

impl Table for Tags {
    const DEF: TableDef = TableDef {
        name: "tags",
        place: "labels/tags.parquet",
        format: 2,
        doc: "One row per tag; the format is also in the Parquet key-value metadata `chaintrace.tags.format` (files without it are version 1, still read).",
        columns: COLUMNS,
    };
}
