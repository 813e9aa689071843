//! The Parquet dataset on disk (DESIGN.md §3): schemas, atomic part files, the manifest.

pub mod manifest;
pub mod reader;
pub mod schema;
pub mod sink;

use std::path::PathBuf;

use thiserror::Error;

/// An error reading or writing the dataset.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet error in {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot build a record batch for {table}: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("{path} is not a chaintrace manifest: {source}; move it away to start a new dataset")]
    ManifestParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} has dataset format {found}, this chaintrace writes format {expected}; ingest into a new --data directory"
    )]
    ManifestFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{path} is listed in the manifest but missing or changed; the dataset was modified by hand. Remove the {dir} directory and ingest again"
    )]
    PartDamaged { path: PathBuf, dir: PathBuf },
}
