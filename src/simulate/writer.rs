//! Output of the simulator: `blk*.dat` in Bitcoin Core's framing with `xor.dat`, and the
//! ground-truth Parquet tables, all written under temporary names and renamed at the end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::ingest::bitcoin::blkfile::xor;
use crate::store::StoreError;
use crate::store::sink::{self, PartWriter};
use crate::types::{Network, n32, n64};

/// Bitcoin Core's maximum blk file size.
pub const MAX_BLOCKFILE_SIZE: u64 = 128 * 1024 * 1024;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes blocks as `blk00000.dat`, `blk00001.dat`, … with XOR obfuscation.
#[derive(Debug)]
pub struct BlkWriter {
    dir: PathBuf,
    key: [u8; 8],
    max_file: u64,
    file_no: u32,
    offset: u64,
    out: Option<BufWriter<File>>,
    pub files: Vec<PathBuf>,
    buf: Vec<u8>,
}

impl BlkWriter {
    /// Starts writing into `dir` with obfuscation `key` (written to `xor.dat`).
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(dir: &Path, key: [u8; 8], max_file: u64) -> Result<BlkWriter, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let x = dir.join("xor.dat");
        std::fs::write(&x, key).map_err(io(&x))?;
        Ok(BlkWriter {
            dir: dir.to_path_buf(),
            key,
            max_file,
            file_no: 0,
            offset: 0,
            out: None,
            files: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Appends one serialized block record.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_block(&mut self, block: &[u8]) -> Result<(), StoreError> {
        let rec = 8 + n64(block.len());
        if self.out.is_some() && self.offset + rec > self.max_file {
            self.finish_file()?;
            self.file_no += 1;
        }
        if self.out.is_none() {
            let path = self.dir.join(format!("blk{:05}.dat", self.file_no));
            let f = File::create(&path).map_err(io(&path))?;
            self.out = Some(BufWriter::with_capacity(1 << 20, f));
            self.files.push(path);
            self.offset = 0;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&Network::Regtest.magic());
        self.buf
            .extend_from_slice(&(n32(block.len())).to_le_bytes());
        self.buf.extend_from_slice(block);
        xor(&mut self.buf, &self.key, self.offset);
        let path = self.files.last().expect("a file is open").clone();
        self.out
            .as_mut()
            .expect("a file is open")
            .write_all(&self.buf)
            .map_err(io(&path))?;
        self.offset += rec;
        Ok(())
    }

    fn finish_file(&mut self) -> Result<(), StoreError> {
        if let Some(mut w) = self.out.take() {
            let path = self.files.last().expect("a file is open").clone();
            w.flush().map_err(io(&path))?;
            w.get_ref().sync_all().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Flushes and closes the last file.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, StoreError> {
        self.finish_file()?;
        Ok(self.files)
    }
}

/// A column of a truth table being collected.
#[derive(Debug)]
pub enum Col {
    Str(Vec<Option<String>>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// A streaming Parquet table: rows are buffered and written in batches through the
/// dataset's [`PartWriter`] (temporary name, renamed when finished).
pub struct TableWriter {
    schema: SchemaRef,
    cols: Vec<Col>,
    writer: PartWriter,
    pub rows: u64,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("writer", &self.writer)
            .field("rows", &self.rows)
            .finish()
    }
}

const BATCH: usize = 65_536;

impl TableWriter {
    /// A new table at `path` with `fields`.
    ///
    /// # Errors
    /// I/O or Parquet errors.
    pub fn create(path: &Path, fields: Vec<Field>) -> Result<TableWriter, StoreError> {
        let cols = fields
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => Col::Str(Vec::new()),
                DataType::UInt32 => Col::U32(Vec::new()),
                DataType::UInt64 => Col::U64(Vec::new()),
                DataType::Boolean => Col::Bool(Vec::new()),
                t => unreachable!("truth tables use no {t} columns"),
            })
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let writer = PartWriter::create(path, schema.clone())?;
        Ok(TableWriter {
            schema,
            cols,
            writer,
            rows: 0,
        })
    }

    /// Mutable access to the columns, to push one row; call [`TableWriter::row_done`] after.
    pub fn cols(&mut self) -> &mut [Col] {
        &mut self.cols
    }

    /// Counts the row pushed and flushes a full batch.
    ///
    /// # Errors
    /// Parquet errors.
    pub fn row_done(&mut self) -> Result<(), StoreError> {
        self.rows += 1;
        if self.rows.is_multiple_of(n64(BATCH)) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::Str(v) => Arc::new(StringArray::from(std::mem::take(v))),
                    Col::U32(v) => Arc::new(UInt32Array::from(std::mem::take(v))),
                    Col::U64(v) => Arc::new(UInt64Array::from(std::mem::take(v))),
                    Col::Bool(v) => Arc::new(BooleanArray::from(std::mem::take(v))),
                }
            })
            .collect();
        if arrays.first().is_some_and(|a| a.is_empty()) {
            return Ok(());
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|source| {
            StoreError::Arrow {
                table: "ground truth",
                source,
            }
        })?;
        self.writer.write(&batch)
    }

    /// Writes the rest and renames the file into place.
    ///
    /// # Errors
    /// I/O or Parquet errors.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.flush()?;
        let staged = self.writer.finish()?;
        sink::commit(std::slice::from_ref(&staged))?;
        Ok(self.rows)
    }
}

/// Shorthands for pushing values.
pub fn s(c: &mut Col, v: impl Into<String>) {
    if let Col::Str(x) = c {
        x.push(Some(v.into()));
    } else {
        unreachable!("column type mismatch")
    }
}
pub fn s_opt(c: &mut Col, v: Option<String>) {
    if let Col::Str(x) = c {
        x.push(v);
    } else {
        unreachable!("column type mismatch")
    }
}
pub fn u32c(c: &mut Col, v: u32) {
    if let Col::U32(x) = c {
        x.push(v);
    } else {
        unreachable!("column type mismatch")
    }
}
pub fn u64c(c: &mut Col, v: u64) {
    if let Col::U64(x) = c {
        x.push(v);
    } else {
        unreachable!("column type mismatch")
    }
}
pub fn boolc(c: &mut Col, v: bool) {
    if let Col::Bool(x) = c {
        x.push(v);
    } else {
        unreachable!("column type mismatch")
    }
}
