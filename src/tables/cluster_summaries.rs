//! `clusters/<network>/clusters.parquet`: one row per Bitcoin cluster.

use super::{Column, Kind::*, Table, TableDef, col};

/// The clusters table.
#[derive(Clone, Copy, Debug)]
pub struct Clusters;

const COLUMNS: &[Column] = &[
    col("cluster_id", U32, "the cluster's id"),
    col(
        "representative",
        Utf8,
        "the address whose id is the cluster id",
    ),
    col("size", U64, "addresses"),
    col("total_received", I64, "satoshi received by its addresses"),
    col("balance", I64, "satoshi unspent at the dataset's tip"),
    col(
        "first_height",
        U32,
        "first height an address of it received",
    ),
    col("last_height", U32, "last height an address of it received"),
];

impl Table for Clusters {
    const DEF: TableDef = TableDef {
        name: "clusters",
        place: "clusters/<network>/clusters.parquet",
        format: 1,
        doc: "One row per cluster (of the dataset's window only).",
        columns: COLUMNS,
    };
}
