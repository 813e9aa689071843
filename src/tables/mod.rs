//! The table registry: every table chaintrace writes — the Bitcoin and Ethereum datasets,
//! the labels, the clusters and a case's edges and ends — defined once, in a file of its
//! own: where it lives, its format version, its columns (name, type, nullability, meaning)
//! and from them its Arrow schema. Writers take their schema from here; the reader checks a
//! file against it (naming the file and what to do); `docs/SCHEMA.md` is tested against it
//! (`CHAINTRACE_WRITE_SCHEMA=1 cargo test --lib tables` rewrites its tables).

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub mod btc_blocks;
pub mod btc_inputs;
pub mod btc_outputs;
pub mod btc_transactions;
pub mod case_edges;
pub mod case_ends;
pub mod cluster_addresses;
pub mod cluster_merges;
pub mod cluster_summaries;
pub mod eth_blocks;
pub mod eth_internal_transfers;
pub mod eth_rewards;
pub mod eth_token_transfers;
pub mod eth_transactions;
pub mod eth_withdrawals;
pub mod label_tags;

/// Version of the dataset layout and the Bitcoin and Ethereum tables' schemas (stored in
/// every manifest; a dataset of another version is refused rather than mixed).
pub const DATASET_FORMAT: u32 = 1;

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    U32,
    U64,
    I32,
    I64,
    Utf8,
    Bool,
    /// `Timestamp(ms, UTC)`.
    TimeMs,
    /// An exact amount in base units: `Int64` satoshi on Bitcoin, `Decimal128(38, 0)` (wei,
    /// token base units) on Ethereum.
    Amount,
    /// A block height: `UInt32` on Bitcoin, `UInt64` (block number) on Ethereum.
    Height,
}

impl Kind {
    /// The Arrow type (`Amount` on the chain given).
    pub fn arrow(self, bitcoin: bool) -> DataType {
        match self {
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::I32 => DataType::Int32,
            Kind::I64 => DataType::Int64,
            Kind::Utf8 => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
            Kind::TimeMs => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Kind::Amount if bitcoin => DataType::Int64,
            Kind::Amount => DataType::Decimal128(38, 0),
            Kind::Height if bitcoin => DataType::UInt32,
            Kind::Height => DataType::UInt64,
        }
    }

    /// How the schema document names it.
    pub fn doc_name(self) -> &'static str {
        match self {
            Kind::U32 => "UInt32",
            Kind::U64 => "UInt64",
            Kind::I32 => "Int32",
            Kind::I64 => "Int64",
            Kind::Utf8 => "Utf8",
            Kind::Bool => "Boolean",
            Kind::TimeMs => "Timestamp(ms, UTC)",
            Kind::Amount => "Int64 sat (Bitcoin) / Decimal128(38, 0) (Ethereum)",
            Kind::Height => "UInt32 (Bitcoin) / UInt64 (Ethereum)",
        }
    }
}

/// A column of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// What it holds, in the document's words.
    pub doc: &'static str,
}

/// A non-null column.
pub const fn col(name: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column {
        name,
        kind,
        nullable: false,
        doc,
    }
}

/// A nullable column.
pub const fn opt(name: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column {
        name,
        kind,
        nullable: true,
        doc,
    }
}

/// A table: where it lives, its version, what a row is and its columns in file order.
#[derive(Clone, Copy, Debug)]
pub struct TableDef {
    /// The table's name (its directory for the dataset tables).
    pub name: &'static str,
    /// Where its files are, relative to the dataset or case folder.
    pub place: &'static str,
    /// Format version of this table's layout.
    pub format: u32,
    /// One line: what a row is.
    pub doc: &'static str,
    pub columns: &'static [Column],
}

/// A table chaintrace writes.
pub trait Table {
    const DEF: TableDef;

    /// The Arrow schema (Bitcoin amounts for `Kind::Amount`).
    fn schema() -> SchemaRef {
        Self::DEF.schema(true)
    }
}

impl TableDef {
    /// The Arrow schema, amounts as on Bitcoin (`bitcoin`) or Ethereum.
    pub fn schema(&self, bitcoin: bool) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.arrow(bitcoin), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The column names, in file order.
    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }

    /// Checks that the Parquet file at `path` has this table's columns with their types
    /// (extra columns are allowed: a newer writer may add some).
    ///
    /// # Errors
    /// An unreadable file, or a missing or mistyped column, naming the file and what to do.
    pub fn check(&self, path: &Path, bitcoin: bool) -> Result<(), TableError> {
        let f = std::fs::File::open(path).map_err(|source| TableError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).map_err(
            |source| TableError::Parquet {
                path: path.to_path_buf(),
                source,
            },
        )?;
        let schema = b.schema();
        for c in self.columns {
            match schema.field_with_name(c.name) {
                Err(_) => {
                    return Err(TableError::Column {
                        path: path.to_path_buf(),
                        table: self.name,
                        column: c.name,
                        found: "no such column".into(),
                        want: c.kind.arrow(bitcoin).to_string(),
                    });
                }
                Ok(f) if *f.data_type() != c.kind.arrow(bitcoin) => {
                    return Err(TableError::Column {
                        path: path.to_path_buf(),
                        table: self.name,
                        column: c.name,
                        found: f.data_type().to_string(),
                        want: c.kind.arrow(bitcoin).to_string(),
                    });
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// The table's section of `docs/SCHEMA.md`.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### {} (`{}`, format {})\n\n{}\n\n| column | type | meaning |\n|---|---|---|\n",
            self.name, self.place, self.format, self.doc
        );
        for c in self.columns {
            s.push_str(&format!(
                "| {} | {}{} | {} |\n",
                c.name,
                c.kind.doc_name(),
                if c.nullable { ", null" } else { "" },
                c.doc
            ));
        }
        s
    }
}

/// A file that is not the table it should be.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not readable Parquet: {source}; remove it and write it again")]
    Parquet {
        path: std::path::PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(
        "{path}: column {column} of table {table} is {found}, not {want}: the file was written by another version; write it again with this one"
    )]
    Column {
        path: std::path::PathBuf,
        table: &'static str,
        column: &'static str,
        found: String,
        want: String,
    },
}

/// Every table, in the order `docs/SCHEMA.md` lists them.
pub const ALL: [TableDef; 16] = [
    btc_blocks::Blocks::DEF,
    btc_transactions::Transactions::DEF,
    btc_inputs::Inputs::DEF,
    btc_outputs::Outputs::DEF,
    eth_blocks::EthBlocks::DEF,
    eth_transactions::EthTransactions::DEF,
    eth_token_transfers::TokenTransfers::DEF,
    eth_internal_transfers::InternalTransfers::DEF,
    eth_withdrawals::Withdrawals::DEF,
    eth_rewards::Rewards::DEF,
    label_tags::Tags::DEF,
    cluster_addresses::AddressCluster::DEF,
    cluster_summaries::Clusters::DEF,
    cluster_merges::Merges::DEF,
    case_edges::Edges::DEF,
    case_ends::Ends::DEF,
];

/// Every table's section, as `docs/SCHEMA.md` holds them.
pub fn markdown() -> String {
    ALL.iter()
        .map(TableDef::markdown)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- tables: generated from src/tables (CHAINTRACE_WRITE_SCHEMA=1 cargo test --lib tables) -->\n";
    const END: &str = "<!-- end of generated tables -->\n";

    /// `docs/SCHEMA.md` states every table as the registry defines it.
    #[test]
    fn the_schema_document_is_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/SCHEMA.md");
        let doc = std::fs::read_to_string(path).expect("docs/SCHEMA.md");
        let generated = format!("{BEGIN}\n{}\n{END}", markdown());
        let (Some(a), Some(b)) = (doc.find(BEGIN), doc.find(END)) else {
            panic!("docs/SCHEMA.md lacks the generated-tables markers");
        };
        let current = &doc[a..b + END.len()];
        if std::env::var_os("CHAINTRACE_WRITE_SCHEMA").is_some() {
            let new = format!("{}{generated}{}", &doc[..a], &doc[b + END.len()..]);
            std::fs::write(path, new).expect("docs/SCHEMA.md is writable");
            return;
        }
        assert_eq!(
            current, generated,
            "docs/SCHEMA.md differs from src/tables: run CHAINTRACE_WRITE_SCHEMA=1 cargo test --lib tables"
        );
    }

    #[test]
    fn the_document_states_the_other_formats_as_the_code_has_them() {
        let doc = include_str!("../../docs/SCHEMA.md");
        assert!(doc.contains(&format!(
            "(the address index, format {})",
            crate::index::INDEX_FORMAT
        )));
        assert_eq!(
            label_tags::Tags::DEF.format.to_string(),
            crate::labels::TAGS_FORMAT
        );
        assert_eq!(DATASET_FORMAT, crate::store::schema::FORMAT_VERSION);
    }

    #[test]
    fn a_file_of_another_layout_is_named_with_what_to_do() {
        use crate::tables::cluster_merges::Merges;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("merges.parquet");
        // txid written as a number: not the registry's Utf8.
        let schema = Arc::new(Schema::new(vec![
            Field::new("address_a", DataType::Utf8, false),
            Field::new("address_b", DataType::Utf8, false),
            Field::new("txid", DataType::UInt32, false),
            Field::new("heuristic", DataType::Utf8, false),
            Field::new("rule_set", DataType::Utf8, false),
            Field::new("because", DataType::Utf8, false),
            Field::new("precision_ppm", DataType::UInt32, true),
        ]));
        let s = |v: &str| -> arrow_array::ArrayRef {
            Arc::new(arrow_array::StringArray::from(vec![v]))
        };
        let batch = arrow_array::RecordBatch::try_new(
            schema,
            vec![
                s("a"),
                s("b"),
                Arc::new(arrow_array::UInt32Array::from(vec![7])),
                s("multi-input"),
                s("multi-input"),
                s("multi-input"),
                Arc::new(arrow_array::UInt32Array::from(vec![1_000_000])),
            ],
        )
        .unwrap();
        let staged = crate::store::sink::stage(&path, &batch).unwrap();
        crate::store::sink::commit(std::slice::from_ref(&staged)).unwrap();
        let e = Merges::DEF.check(&path, true).unwrap_err().to_string();
        assert!(
            e.contains("merges.parquet")
                && e.contains("column txid")
                && e.contains("write it again"),
            "{e}"
        );
        // The registry's own schema passes.
        let ok = d.path().join("ok.parquet");
        let batch = arrow_array::RecordBatch::try_new(
            Merges::schema(),
            vec![
                s("a"),
                s("b"),
                s("00"),
                s("multi-input"),
                s("multi-input"),
                s("multi-input"),
                Arc::new(arrow_array::UInt32Array::from(vec![1_000_000])),
            ],
        )
        .unwrap();
        let staged = crate::store::sink::stage(&ok, &batch).unwrap();
        crate::store::sink::commit(std::slice::from_ref(&staged)).unwrap();
        Merges::DEF.check(&ok, true).unwrap();
    }

    #[test]
    fn names_are_unique_within_a_table_and_schemas_build() {
        for t in ALL {
            let mut names = t.names();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "{}", t.name);
            assert_eq!(t.schema(true).fields().len(), n);
            assert_eq!(t.schema(false).fields().len(), n);
        }
    }
}
