//! Reading back our own Parquet files: the part files of a table in block order, their
//! batches with only the columns asked for, and typed columns that name themselves in errors.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::StoreError;

/// Why a table of ours could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}; ingest first")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not readable Parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: a batch is not readable: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error(
        "{path} is listed in {manifest} but missing: the dataset was changed by hand; ingest its range again"
    )]
    Listed { path: PathBuf, manifest: PathBuf },
    #[error("column {name} is missing: re-ingest with this version")]
    Missing { name: String },
    #[error("column {name} is not {want}")]
    Type { name: String, want: &'static str },
    /// An error of the caller's, in the file it was reading.
    #[error("reading {path}")]
    In {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `(height, hash)` of every row of a `blocks` part.
///
/// # Errors
/// The file is unreadable or not a blocks part.
pub fn block_hashes(path: &Path) -> Result<Vec<(u32, String)>, StoreError> {
    let pq = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(pq)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["height", "hash"]);
    let reader = builder.with_projection(mask).build().map_err(pq)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| StoreError::Arrow {
            table: "blocks",
            source,
        })?;
        let heights = batch
            .column_by_name("height")
            .map(|c| c.as_primitive::<UInt32Type>().clone());
        let hashes = batch
            .column_by_name("hash")
            .map(|c| c.as_string::<i32>().clone());
        let (Some(heights), Some(hashes)) = (heights, hashes) else {
            return Err(StoreError::PartDamaged {
                path: path.to_path_buf(),
                dir: path.to_path_buf(),
            });
        };
        for i in 0..batch.num_rows() {
            out.push((heights.value(i), hashes.value(i).to_string()));
        }
    }
    Ok(out)
}

/// The part files of table directory `dir`, in part (block) order: those its dataset's
/// `_manifest.json` lists (a file there that the manifest does not list is a leftover of a
/// killed run and is not read), or, without a manifest, the `part-*.parquet` files present.
///
/// # Errors
/// An unreadable directory or manifest, or a listed part that is missing.
pub fn part_files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let table = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(chain_dir) = dir.parent()
        && let Ok(Some(m)) = super::manifest::Manifest::load(chain_dir)
    {
        let mut files = Vec::new();
        for p in &m.parts {
            if let Some(f) = p.files.get(table) {
                let path = dir.join(&f.file);
                if !path.is_file() {
                    return Err(ReadError::Listed {
                        path,
                        manifest: super::manifest::Manifest::path(chain_dir),
                    });
                }
                files.push(path);
            }
        }
        return Ok(files);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ReadError::Dir {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part-") && n.ends_with(".parquet"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Calls `f` on each batch of every part of `dir`, in part order, with `columns` only.
///
/// # Errors
/// A file that cannot be read, or `f`'s error (named by the file it was reading).
pub fn each_batch<E>(
    dir: &Path,
    columns: &[&str],
    f: impl FnMut(&RecordBatch) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<ReadError> + Into<Box<dyn std::error::Error + Send + Sync>>,
{
    each_batch_of(&part_files(dir)?, columns, f)
}

/// Calls `f` on each batch of `files`, in order, with `columns` only (those present).
///
/// # Errors
/// As [`each_batch`].
pub fn each_batch_of<E>(
    files: &[PathBuf],
    columns: &[&str],
    mut f: impl FnMut(&RecordBatch) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<ReadError> + Into<Box<dyn std::error::Error + Send + Sync>>,
{
    for path in files {
        let pq = |source| ReadError::Parquet {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(|source| ReadError::File {
            path: path.clone(),
            source,
        })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
        let present: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| builder.schema().column_with_name(c).is_some())
            .collect();
        let mask = ProjectionMask::columns(builder.parquet_schema(), present);
        for batch in builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()
            .map_err(pq)?
        {
            let batch = batch.map_err(|source| ReadError::Arrow {
                path: path.clone(),
                source,
            })?;
            f(&batch).map_err(|e| {
                E::from(ReadError::In {
                    path: path.clone(),
                    source: e.into(),
                })
            })?;
        }
    }
    Ok(())
}

/// Typed column access by name, with errors that name the column.
#[derive(Debug)]
pub struct Cols<'a>(pub &'a RecordBatch);

impl<'a> Cols<'a> {
    /// Column `n`.
    ///
    /// # Errors
    /// No such column.
    pub fn get(&self, n: &str) -> Result<&'a dyn Array, ReadError> {
        self.0
            .column_by_name(n)
            .map(|c| c.as_ref())
            .ok_or_else(|| ReadError::Missing {
                name: n.to_string(),
            })
    }
    /// Text column `n`.
    ///
    /// # Errors
    /// No such column, or not text.
    pub fn str(&self, n: &str) -> Result<&'a arrow_array::StringArray, ReadError> {
        self.get(n)?
            .as_string_opt::<i32>()
            .ok_or_else(|| ReadError::Type {
                name: n.to_string(),
                want: "text",
            })
    }
    /// UInt64 column `n`.
    ///
    /// # Errors
    /// No such column, or another type.
    pub fn u64(&self, n: &str) -> Result<&'a arrow_array::UInt64Array, ReadError> {
        self.get(n)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| ReadError::Type {
                name: n.to_string(),
                want: "UInt64",
            })
    }
    /// Ethereum transactions: the fee columns, looked up once per batch; see
    /// [`TxFees::fee`].
    ///
    /// # Errors
    /// No `gas_used`, `gas_price` or `effective_gas_price` column.
    pub fn tx_fees(&self) -> Result<TxFees<'a>, ReadError> {
        Ok(TxFees {
            gas_used: self.u64("gas_used")?,
            effective: self.str("effective_gas_price")?,
            price: self.str("gas_price")?,
            blob: self
                .u64("blob_gas_used")
                .ok()
                .zip(self.str("blob_gas_price").ok()),
        })
    }
    /// UInt32 column `n`.
    ///
    /// # Errors
    /// No such column, or another type.
    pub fn u32(&self, n: &str) -> Result<&'a arrow_array::UInt32Array, ReadError> {
        self.get(n)?
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| ReadError::Type {
                name: n.to_string(),
                want: "UInt32",
            })
    }
}

/// The fee columns of an Ethereum transactions batch: gas used, the receipt's effective
/// gas price (the transaction's gas price before EIP-1559) and the blob gas (EIP-4844;
/// absent in datasets written before those columns). One rule for the trace and the
/// reconciliation.
#[derive(Clone, Copy, Debug)]
pub struct TxFees<'a> {
    gas_used: &'a arrow_array::UInt64Array,
    effective: &'a arrow_array::StringArray,
    price: &'a arrow_array::StringArray,
    blob: Option<(&'a arrow_array::UInt64Array, &'a arrow_array::StringArray)>,
}

/// What row `i` of a transactions batch paid (see [`TxFees::fee`]), wei.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fee {
    pub gas_used: u64,
    /// Wei per gas paid.
    pub per_gas: u128,
    /// `gas_used × blob_gas_price` of a blob transaction, else 0; burnt whole.
    pub blob: u128,
}

impl Fee {
    /// The whole fee the sender paid: gas and blob gas.
    pub fn total(&self) -> Option<u128> {
        self.per_gas
            .checked_mul(u128::from(self.gas_used))?
            .checked_add(self.blob)
    }
}

impl TxFees<'_> {
    /// Row `i`'s fee; `None` when the row gives no gas price at all (its fee is unknown:
    /// never taken as 0).
    ///
    /// # Errors
    /// A price that is not a decimal number, or a blob fee beyond u128.
    pub fn fee(&self, i: usize) -> Result<Option<Fee>, ReadError> {
        fn text(a: &arrow_array::StringArray, i: usize) -> Option<&str> {
            (!a.is_null(i)).then(|| a.value(i))
        }
        let Some(p) = text(self.effective, i).or_else(|| text(self.price, i)) else {
            return Ok(None);
        };
        let bad = |name: &str| ReadError::Type {
            name: name.into(),
            want: "wei as decimal text within u128",
        };
        let per_gas: u128 = p.parse().map_err(|_| bad("effective_gas_price"))?;
        let blob = match self.blob {
            Some((used, price)) if !used.is_null(i) && !price.is_null(i) => {
                let p: u128 = price.value(i).parse().map_err(|_| bad("blob_gas_price"))?;
                p.checked_mul(u128::from(used.value(i)))
                    .ok_or_else(|| bad("blob_gas_price"))?
            }
            _ => 0,
        };
        Ok(Some(Fee {
            gas_used: self.gas_used.value(i),
            per_gas,
            blob,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};

    use super::*;

    #[test]
    fn a_fee_is_gas_times_price_plus_blob_and_unknown_without_a_price() {
        let col = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
        let b = RecordBatch::try_from_iter([
            (
                "gas_used",
                Arc::new(UInt64Array::from(vec![21_000, 21_000, 50_000])) as ArrayRef,
            ),
            ("effective_gas_price", col(vec![Some("7"), None, None])),
            ("gas_price", col(vec![Some("9"), Some("5"), None])),
            (
                "blob_gas_used",
                Arc::new(UInt64Array::from(vec![Some(131_072), None, None])) as ArrayRef,
            ),
            ("blob_gas_price", col(vec![Some("3"), None, None])),
        ])
        .unwrap();
        let fees = Cols(&b).tx_fees().unwrap();
        // The receipt's effective price wins over the transaction's; blob gas is added.
        let f = fees.fee(0).unwrap().unwrap();
        assert_eq!(
            (f.per_gas, f.blob, f.total()),
            (7, 393_216, Some(147_000 + 393_216))
        );
        // Before EIP-1559: the gas price.
        assert_eq!(fees.fee(1).unwrap().unwrap().total(), Some(105_000));
        // No price at all: unknown, not 0.
        assert_eq!(fees.fee(2).unwrap(), None);
    }
}
