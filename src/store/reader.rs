//! Reading back the few things the ingest needs from its own Parquet files.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
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
