//! Reading back our own Parquet files: the part files of a table in block order, their
//! batches with only the columns asked for, and typed columns that name themselves in errors.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use arrow_array::cast::AsArray;
use arrow_array::types::{UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::StoreError;

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

/// The part files of `dir`, in part (block) order.
pub fn part_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}: ingest first", dir.display()))?
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
pub fn each_batch(
    dir: &Path,
    columns: &[&str],
    f: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    each_batch_of(&part_files(dir)?, columns, f)
}

/// Calls `f` on each batch of `files`, in order, with `columns` only (those present).
pub fn each_batch_of(
    files: &[PathBuf],
    columns: &[&str],
    mut f: impl FnMut(&RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for path in files {
        let ctx = || format!("reading {}", path.display());
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).with_context(ctx)?)
            .with_context(ctx)?;
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
            .with_context(ctx)?
        {
            f(&batch.with_context(ctx)?).with_context(ctx)?;
        }
    }
    Ok(())
}

/// Typed column access by name, with errors that name the column.
#[derive(Debug)]
pub struct Cols<'a>(pub &'a RecordBatch);

impl<'a> Cols<'a> {
    pub fn get(&self, n: &str) -> anyhow::Result<&'a dyn Array> {
        self.0
            .column_by_name(n)
            .map(|c| c.as_ref())
            .ok_or_else(|| anyhow!("column {n} is missing: re-ingest with this version"))
    }
    pub fn str(&self, n: &str) -> anyhow::Result<&'a arrow_array::StringArray> {
        self.get(n)?
            .as_string_opt::<i32>()
            .ok_or_else(|| anyhow!("column {n} is not text"))
    }
    pub fn u64(&self, n: &str) -> anyhow::Result<&'a arrow_array::UInt64Array> {
        self.get(n)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| anyhow!("column {n} is not UInt64"))
    }
    pub fn u32(&self, n: &str) -> anyhow::Result<&'a arrow_array::UInt32Array> {
        self.get(n)?
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| anyhow!("column {n} is not UInt32"))
    }
}
