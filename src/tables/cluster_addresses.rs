//! `clusters/<network>/address_cluster.parquet`: every address's cluster.

use super::{Column, Kind::*, Table, TableDef, col};

/// The address → cluster table.
#[derive(Clone, Copy, Debug)]
pub struct AddressCluster;

const COLUMNS: &[Column] = &[
    col("address", Utf8, "address"),
    col(
        "cluster_id",
        U32,
        "the cluster: its smallest address id (Bitcoin) or first address's index (Ethereum)",
    ),
];

impl Table for AddressCluster {
    const DEF: TableDef = TableDef {
        name: "address_cluster",
        place: "clusters/<network>/address_cluster.parquet",
        format: 1,
        doc: "One row per address id, in id order.",
        columns: COLUMNS,
    };
}
