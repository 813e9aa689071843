//! Writing Parquet part files atomically.
//!
//! A part is written to a hidden temporary name in the same directory (`.part-….tmp`, which
//! `*.parquet` globs and Spark ignore), synced, and only renamed to its final name by
//! [`commit`] once every table of the part is complete. The manifest is updated after the
//! renames, so a part file not listed in the manifest is a leftover of a killed run and is
//! deleted by [`clean_dir`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use bitcoin::hashes::{Hash, HashEngine, sha256};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::StoreError;
use crate::types::n64;

/// A written, not yet committed, part file.
#[derive(Debug)]
pub struct Staged {
    pub tmp: PathBuf,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// The file name of the part covering heights (block numbers) `from..=to`: ten digits
/// each, zero-padded, so names sort in height order up to 9,999,999,999 (Bitcoin heights
/// are u32; Ethereum block numbers u64: a larger number gets more digits).
pub fn part_name(from: u64, to: u64) -> String {
    format!("part-{from:010}-{to:010}.parquet")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `batch` to a temporary file beside `path` and returns it staged.
///
/// # Errors
/// I/O or Parquet encoding errors, naming the file.
pub fn stage(path: &Path, batch: &RecordBatch) -> Result<Staged, StoreError> {
    let mut w = PartWriter::create(path, batch.schema())?;
    w.write(batch)?;
    w.finish()
}

/// Rows per Parquet row group: bounds the writer's memory for big parts.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Hashes and counts bytes on their way to the file.
struct HashingWriter {
    inner: BufWriter<File>,
    engine: sha256::HashEngine,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.engine.input(&buf[..n]);
        self.bytes += n64(n);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A Parquet file written batch by batch under a temporary name, staged by
/// [`PartWriter::finish`].
pub struct PartWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<HashingWriter>,
    rows: u64,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl PartWriter {
    /// Starts writing the file that will be `path`, with `schema`.
    ///
    /// # Errors
    /// I/O or Parquet errors, naming the file.
    pub fn create(path: &Path, schema: arrow_schema::SchemaRef) -> Result<PartWriter, StoreError> {
        PartWriter::create_plain(path, schema, &[])
    }

    /// [`PartWriter::create`], with the columns named in `plain` written without a
    /// dictionary: for columns whose values are (nearly) all distinct (an address per row,
    /// a txid per row), where a dictionary only costs a hash of every value and then falls
    /// back to plain encoding anyway.
    ///
    /// # Errors
    /// I/O or Parquet errors, naming the file.
    pub fn create_plain(
        path: &Path,
        schema: arrow_schema::SchemaRef,
        plain: &[&str],
    ) -> Result<PartWriter, StoreError> {
        let dir = path.parent().expect("part paths have a directory");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let name = path
            .file_name()
            .expect("part paths have a name")
            .to_string_lossy();
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("chaintrace {}", env!("CARGO_PKG_VERSION")));
        for c in plain {
            props = props.set_column_dictionary_enabled((*c).into(), false);
        }
        let props = props.build();
        let f = File::create(&tmp).map_err(io(&tmp))?;
        let out = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, f),
            engine: sha256::Hash::engine(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(out, schema, Some(props)).map_err(|source| {
            StoreError::Parquet {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(PartWriter {
            path: path.to_path_buf(),
            tmp,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch.
    ///
    /// # Errors
    /// Parquet errors, naming the file.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        self.rows += n64(batch.num_rows());
        self.writer
            .write(batch)
            .map_err(|source| StoreError::Parquet {
                path: self.path.clone(),
                source,
            })
    }

    /// Gives the part up: its temporary file is removed (a failed ingest leaves only
    /// committed parts behind).
    pub fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = std::fs::remove_file(tmp);
    }

    /// Writes the footer, syncs the temporary file and returns it staged; on an error the
    /// temporary file is removed.
    ///
    /// # Errors
    /// I/O or Parquet errors, naming the file.
    pub fn finish(self) -> Result<Staged, StoreError> {
        let tmp = self.tmp.clone();
        let staged = self.finish_inner();
        if staged.is_err() {
            // A part that failed leaves nothing behind.
            let _ = std::fs::remove_file(tmp);
        }
        staged
    }

    fn finish_inner(self) -> Result<Staged, StoreError> {
        let out = self
            .writer
            .into_inner()
            .map_err(|source| StoreError::Parquet {
                path: self.path.clone(),
                source,
            })?;
        let HashingWriter {
            inner,
            engine,
            bytes,
        } = out;
        let f = inner.into_inner().map_err(|e| StoreError::Io {
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io(&self.tmp))?;
        Ok(Staged {
            tmp: self.tmp,
            path: self.path,
            rows: self.rows,
            bytes,
            sha256: sha256::Hash::from_engine(engine).to_string(),
        })
    }
}

/// A [`PartWriter`] on a thread of its own: Parquet's encoding and compression of one
/// batch run while the caller builds the next (ingest decodes blocks on one core and
/// writes on the other). At most one batch waits in the channel, so the memory held is
/// the one being written plus one. The file written is the same bytes as the
/// [`PartWriter`]'s.
#[derive(Debug)]
pub struct BackgroundWriter {
    path: PathBuf,
    send: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    /// The thread; `None` once joined (after it failed).
    done: Option<std::thread::JoinHandle<Result<PartWriter, StoreError>>>,
}

impl BackgroundWriter {
    /// Moves `writer` to a new thread that writes the batches given to
    /// [`BackgroundWriter::write`] in order.
    ///
    /// # Errors
    /// The thread cannot be started (the error names the file).
    pub fn spawn(writer: PartWriter) -> Result<BackgroundWriter, StoreError> {
        let path = writer.path.clone();
        let (send, recv) = std::sync::mpsc::sync_channel::<RecordBatch>(1);
        let done = std::thread::Builder::new()
            .name("parquet-writer".into())
            .spawn(move || {
                let mut w = writer;
                for batch in recv {
                    if let Err(e) = w.write(&batch) {
                        w.abandon();
                        return Err(e);
                    }
                }
                Ok(w)
            })
            .map_err(io(&path))?;
        Ok(BackgroundWriter {
            path,
            send: Some(send),
            done: Some(done),
        })
    }

    /// Hands `batch` to the writer's thread (waiting while it still writes the one before
    /// the last).
    ///
    /// # Errors
    /// The writer failed on an earlier batch: its error (I/O or Parquet, naming the file).
    pub fn write(&mut self, batch: RecordBatch) -> Result<(), StoreError> {
        if let Some(Ok(())) = self.send.as_ref().map(|s| s.send(batch)) {
            return Ok(());
        }
        // The thread hung up: it failed (and abandoned the part), and says why when joined.
        self.send = None;
        match self.join() {
            Some(Err(e)) => Err(e),
            _ => Err(self.stopped()),
        }
    }

    /// The error of a writer whose failure was already given.
    fn stopped(&self) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("its Parquet writer stopped after an error"),
        }
    }

    /// Joins the thread (once), passing a panic on.
    fn join(&mut self) -> Option<Result<PartWriter, StoreError>> {
        let done = self.done.take()?;
        Some(done.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    }

    /// Waits for every batch to be written, then [`PartWriter::finish`].
    ///
    /// # Errors
    /// I/O or Parquet errors, naming the file.
    pub fn finish(mut self) -> Result<Staged, StoreError> {
        drop(self.send.take());
        match self.join() {
            Some(w) => w?.finish(),
            None => Err(self.stopped()),
        }
    }

    /// Gives the part up: waits for the thread, then [`PartWriter::abandon`]. Dropping
    /// the writer does the same, so an early return never leaves a thread writing.
    pub fn abandon(self) {
        drop(self);
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        drop(self.send.take());
        if let Some(Ok(w)) = self.done.take().and_then(|d| d.join().ok()) {
            w.abandon();
        }
    }
}

/// Renames staged files to their final names and syncs their directories.
///
/// # Errors
/// I/O errors, naming the file.
pub fn commit(staged: &[Staged]) -> Result<(), StoreError> {
    for s in staged {
        std::fs::rename(&s.tmp, &s.path).map_err(io(&s.path))?;
    }
    for s in staged {
        let dir = dir_of(&s.path);
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// The directory of `path`: `.` for a bare file name (`out.ctw` lives in the working
/// directory).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename).
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes the file that will be `path` under a temporary name (`.NAME.tmp` beside it,
/// synced), with its sha256 and size, for [`commit`] to rename into place: several files
/// written, then committed together.
///
/// # Errors
/// I/O errors, naming the file.
pub fn stage_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<Staged, StoreError> {
    let dir = dir_of(path);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .expect("paths have a name")
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let f = File::create(&tmp).map_err(io(&tmp))?;
    let mut w = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, f),
        engine: sha256::HashEngine::default(),
        bytes: 0,
    };
    write(&mut w).map_err(io(&tmp))?;
    let HashingWriter {
        inner,
        engine,
        bytes,
    } = w;
    let f = inner
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    Ok(Staged {
        tmp,
        path: path.to_path_buf(),
        rows: 0,
        bytes,
        sha256: sha256::Hash::from_engine(engine).to_string(),
    })
}

/// [`write_atomic`], the bytes written by `write` (buffered) instead of held in memory.
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    commit(&[stage_with(path, write)?])
}

/// Removes temporary files and part files that `keep` does not list from `dir`.
///
/// # Errors
/// I/O errors, naming the file.
pub fn clean_dir(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Result<usize, StoreError> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stray_tmp = name.starts_with('.') && name.ends_with(".tmp");
        let stray_part = name.starts_with("part-") && name.ends_with(".parquet") && !keep(&name);
        if stray_tmp || stray_part {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The sha256 of a file, hex, read in pieces (a file of any size costs a buffer).
///
/// # Errors
/// I/O errors, naming the file.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    File::open(path).and_then(sha256_of).map_err(io(path))
}

/// The sha256 (hex) of everything `r` reads, read in pieces.
///
/// # Errors
/// The reader's.
pub fn sha256_of(mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut w = Sha256Writer::default();
    std::io::copy(&mut r, &mut w)?;
    Ok(w.hex())
}

/// A sink that hashes what is written to it (sha256): the digest of a document
/// serialised into it, without holding the document.
#[derive(Default)]
pub struct Sha256Writer(sha256::HashEngine);

impl std::fmt::Debug for Sha256Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256Writer")
    }
}

impl Sha256Writer {
    /// The sha256 of everything written, hex.
    #[must_use]
    pub fn hex(self) -> String {
        sha256::Hash::from_engine(self.0).to_string()
    }
}

impl Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.input(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, StringArray, UInt32Array};
    use std::sync::Arc;

    fn batch(from: u32, n: u32) -> RecordBatch {
        let ids: ArrayRef = Arc::new(UInt32Array::from_iter_values(from..from + n));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (from..from + n).map(|i| format!("row {i}")),
        ));
        RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap()
    }

    #[test]
    fn a_background_writer_writes_the_same_bytes_and_names_its_file_on_error() {
        let d = tempfile::tempdir().unwrap();
        let batches: Vec<RecordBatch> = (0..5).map(|k| batch(k * 1000, 1000)).collect();
        let schema = batches[0].schema();
        let mut w = PartWriter::create(&d.path().join("a.parquet"), schema.clone()).unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        let a = w.finish().unwrap();
        let mut w = BackgroundWriter::spawn(
            PartWriter::create(&d.path().join("b.parquet"), schema.clone()).unwrap(),
        )
        .unwrap();
        for b in &batches {
            w.write(b.clone()).unwrap();
        }
        let b = w.finish().unwrap();
        assert_eq!((a.sha256, a.rows, a.bytes), (b.sha256, b.rows, b.bytes));
        assert_eq!(b.rows, 5000);

        // A batch of another schema fails in the thread: a later write or the finish
        // gives that error, naming the file, and the temporary file is removed.
        let path = d.path().join("c.parquet");
        let mut w = BackgroundWriter::spawn(PartWriter::create(&path, schema).unwrap()).unwrap();
        let other: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..10));
        w.write(RecordBatch::try_from_iter([("x", other)]).unwrap())
            .unwrap();
        let mut failed = None;
        for k in 0..3 {
            if let Err(e) = w.write(batch(k, 10)) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert!(e.to_string().contains("c.parquet"), "{e}");
        // Dropped without finish (an early return): the thread is joined, the part given
        // up, and its temporary file removed.
        let path = d.path().join("e.parquet");
        let mut w =
            BackgroundWriter::spawn(PartWriter::create(&path, batch(0, 1).schema()).unwrap())
                .unwrap();
        w.write(batch(0, 100)).unwrap();
        drop(w);
        assert!(!d.path().join(".e.parquet.tmp").exists());
        assert!(!path.exists());
        assert!(!d.path().join(".c.parquet.tmp").exists(), "{e}");
    }
}
