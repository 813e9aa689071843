//! A read-only reader for the LevelDB files Bitcoin Core keeps its block index in.
//!
//! Bitcoin Core's `blocks/index` is a LevelDB database. Opening it with a LevelDB library
//! needs write access (a `LOCK` file, log recovery), which a copied or read-only data
//! directory does not give, and a running node holds the lock. So this module reads the
//! files directly, following the documented formats of LevelDB's `doc/log_format.md` and
//! `doc/table_format.md`:
//!
//! - `*.log`: write-ahead log in 32 KiB blocks of checksummed records that reassemble into
//!   write batches (`sequence u64, count u32, {tag, key, value}*`);
//! - `*.ldb` / `*.sst`: sorted tables with a 48-byte footer, an index block and data blocks
//!   of prefix-compressed entries, optionally Snappy-compressed.
//!
//! Every file in the directory is read and, for each key, the entry with the highest
//! sequence number wins (a deletion removes the key). This ignores the MANIFEST's list of
//! live files; obsolete files that LevelDB has not yet deleted only hold older sequence
//! numbers, so they lose, and Bitcoin Core never deletes block index entries.
//!
//! # Errors
//! A checksum mismatch, a bad footer or a malformed block is reported with the file and
//! offset. A torn record at the very end of a log (a crash mid-write) ends that log, as
//! LevelDB's own recovery does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::types::{ix, n64};
use thiserror::Error;

/// An error reading a LevelDB directory.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LevelDbError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} at offset {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path} holds no LevelDB table or log files")]
    Empty { path: PathBuf },
}

const LOG_BLOCK: usize = 32 * 1024;
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;

/// Reads every live key/value pair of the LevelDB database in `dir`.
pub fn read_all(dir: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, LevelDbError> {
    let io = |source| LevelDbError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("log" | "ldb" | "sst")
            )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LevelDbError::Empty {
            path: dir.to_path_buf(),
        });
    }
    // key -> (sequence, value or deletion)
    let mut latest: BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> = BTreeMap::new();
    let mut put = |key: Vec<u8>, seq: u64, value: Option<Vec<u8>>| match latest.get(&key) {
        Some((s, _)) if *s >= seq => {}
        _ => {
            latest.insert(key, (seq, value));
        }
    };
    for path in &files {
        let bytes = std::fs::read(path).map_err(|source| LevelDbError::Io {
            path: path.clone(),
            source,
        })?;
        if path.extension().and_then(|e| e.to_str()) == Some("log") {
            read_log(path, &bytes, &mut put)?;
        } else {
            read_table(path, &bytes, &mut put)?;
        }
    }
    Ok(latest
        .into_iter()
        .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
        .collect())
}

fn corrupt(path: &Path, offset: usize, what: impl Into<String>) -> LevelDbError {
    LevelDbError::Corrupt {
        path: path.to_path_buf(),
        offset: n64(offset),
        what: what.into(),
    }
}

fn read_log(
    path: &Path,
    bytes: &[u8],
    put: &mut impl FnMut(Vec<u8>, u64, Option<Vec<u8>>),
) -> Result<(), LevelDbError> {
    let mut pos = 0usize;
    let mut record: Vec<u8> = Vec::new();
    let mut in_fragment = false;
    while pos < bytes.len() {
        let left_in_block = LOG_BLOCK - pos % LOG_BLOCK;
        if left_in_block < 7 {
            pos += left_in_block;
            continue;
        }
        if pos + 7 > bytes.len() {
            break; // torn header at the tail
        }
        let crc = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let len = usize::from(u16::from_le_bytes([bytes[pos + 4], bytes[pos + 5]]));
        let kind = bytes[pos + 6];
        if kind == 0 && len == 0 {
            // Zero padding (preallocated space): skip the rest of the block.
            pos += left_in_block;
            continue;
        }
        if pos + 7 + len > bytes.len() {
            break; // torn record at the tail
        }
        let data = &bytes[pos + 7..pos + 7 + len];
        if unmask(crc) != crc32c(&[&[kind], data]) {
            return Err(corrupt(path, pos, "log record checksum mismatch"));
        }
        match kind {
            1 => {
                read_batch(path, pos, data, put)?;
                in_fragment = false;
            }
            2 => {
                record.clear();
                record.extend_from_slice(data);
                in_fragment = true;
            }
            3 | 4 if in_fragment => {
                record.extend_from_slice(data);
                if kind == 4 {
                    read_batch(path, pos, &record, put)?;
                    in_fragment = false;
                }
            }
            _ => {
                return Err(corrupt(
                    path,
                    pos,
                    format!("unexpected log record type {kind}"),
                ));
            }
        }
        pos += 7 + len;
    }
    Ok(())
}

fn read_batch(
    path: &Path,
    at: usize,
    b: &[u8],
    put: &mut impl FnMut(Vec<u8>, u64, Option<Vec<u8>>),
) -> Result<(), LevelDbError> {
    if b.len() < 12 {
        return Err(corrupt(path, at, "write batch shorter than its header"));
    }
    let seq = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    let mut r = Cursor { b, pos: 12 };
    for i in 0..u64::from(count) {
        let bad = || corrupt(path, at, "malformed write batch");
        let tag = r.byte().ok_or_else(bad)?;
        let key = r.slice().ok_or_else(bad)?.to_vec();
        match tag {
            1 => {
                let value = r.slice().ok_or_else(bad)?.to_vec();
                put(key, seq + i, Some(value));
            }
            0 => put(key, seq + i, None),
            _ => return Err(bad()),
        }
    }
    Ok(())
}

fn read_table(
    path: &Path,
    bytes: &[u8],
    put: &mut impl FnMut(Vec<u8>, u64, Option<Vec<u8>>),
) -> Result<(), LevelDbError> {
    if bytes.len() < 48 {
        return Err(corrupt(path, 0, "table shorter than its footer"));
    }
    let footer = &bytes[bytes.len() - 48..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().expect("8 bytes"));
    if magic != TABLE_MAGIC {
        return Err(corrupt(path, bytes.len() - 8, "bad table magic"));
    }
    let mut f = Cursor { b: footer, pos: 0 };
    let bad_footer = || corrupt(path, bytes.len() - 48, "bad table footer");
    let _meta = (
        f.varint().ok_or_else(bad_footer)?,
        f.varint().ok_or_else(bad_footer)?,
    );
    let index = (
        f.varint().ok_or_else(bad_footer)?,
        f.varint().ok_or_else(bad_footer)?,
    );
    let index_block = read_block(path, bytes, index)?;
    let mut handles = Vec::new();
    for_each_entry(path, index.0, &index_block, |_, v| {
        let mut c = Cursor { b: v, pos: 0 };
        let h = (c.varint(), c.varint());
        handles.push(h);
    })?;
    for h in handles {
        let (Some(off), Some(size)) = h else {
            return Err(corrupt(path, index.0 as usize, "bad block handle in index"));
        };
        let block = read_block(path, bytes, (off, size))?;
        let mut result = Ok(());
        for_each_entry(path, off, &block, |k, v| {
            if k.len() < 8 {
                result = Err(corrupt(path, ix(off), "internal key shorter than 8 bytes"));
                return;
            }
            let (user, trailer) = k.split_at(k.len() - 8);
            let tag = u64::from_le_bytes(trailer.try_into().expect("8 bytes"));
            let (seq, kind) = (tag >> 8, tag & 0xff);
            put(user.to_vec(), seq, (kind == 1).then(|| v.to_vec()));
        })?;
        result?;
    }
    Ok(())
}

fn read_block(path: &Path, bytes: &[u8], (off, size): (u64, u64)) -> Result<Vec<u8>, LevelDbError> {
    let start = usize::try_from(off).map_err(|_| corrupt(path, 0, "block offset overflows"))?;
    let len = usize::try_from(size).map_err(|_| corrupt(path, start, "block size overflows"))?;
    let end = start.checked_add(len).filter(|e| e + 5 <= bytes.len());
    let Some(end) = end else {
        return Err(corrupt(
            path,
            start,
            "block extends past the end of the table",
        ));
    };
    let contents = &bytes[start..end];
    let kind = bytes[end];
    let crc = u32::from_le_bytes(bytes[end + 1..end + 5].try_into().expect("4 bytes"));
    if unmask(crc) != crc32c(&[contents, &[kind]]) {
        return Err(corrupt(path, start, "table block checksum mismatch"));
    }
    match kind {
        0 => Ok(contents.to_vec()),
        1 => snap::raw::Decoder::new()
            .decompress_vec(contents)
            .map_err(|e| {
                corrupt(
                    path,
                    start,
                    format!("snappy block does not decompress: {e}"),
                )
            }),
        k => Err(corrupt(
            path,
            start,
            format!("unknown block compression {k}"),
        )),
    }
}

fn for_each_entry(
    path: &Path,
    at: u64,
    block: &[u8],
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<(), LevelDbError> {
    let bad = || corrupt(path, ix(at), "malformed table block");
    if block.len() < 4 {
        return Err(bad());
    }
    let n_restarts =
        u32::from_le_bytes(block[block.len() - 4..].try_into().expect("4 bytes")) as usize;
    let data_end = block
        .len()
        .checked_sub(4 + 4 * n_restarts)
        .ok_or_else(bad)?;
    let mut c = Cursor {
        b: &block[..data_end],
        pos: 0,
    };
    let mut key: Vec<u8> = Vec::new();
    while c.pos < data_end {
        let shared = c.varint().ok_or_else(bad)? as usize;
        let non_shared = c.varint().ok_or_else(bad)? as usize;
        let value_len = c.varint().ok_or_else(bad)? as usize;
        if shared > key.len() {
            return Err(bad());
        }
        key.truncate(shared);
        key.extend_from_slice(c.take(non_shared).ok_or_else(bad)?);
        let value = c.take(value_len).ok_or_else(bad)?;
        f(&key, value);
    }
    Ok(())
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn slice(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }
}

fn unmask(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

/// CRC-32C (Castagnoli), as LevelDB checksums its records.
fn crc32c(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for p in parts {
        for &b in *p {
            crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_vector() {
        // RFC 3720 test vector: 32 bytes of zeros.
        assert_eq!(crc32c(&[&[0u8; 32]]), 0x8a91_36aa);
        assert_eq!(crc32c(&[b"123456789"]), 0xe306_9283);
    }

    #[test]
    fn mask_round_trip() {
        let crc = 0x1234_5678u32;
        let masked = crc.rotate_right(15).wrapping_add(0xa282_ead8);
        assert_eq!(unmask(masked), crc);
    }
}
