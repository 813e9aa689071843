//! Bitcoin Core's `blk*.dat` files: record framing and `xor.dat` obfuscation.
//!
//! Each file is a sequence of records `magic (4) | size (u32 LE) | block (size bytes)`.
//! Since v28 Bitcoin Core XORs every byte of `blk`/`rev` files with an 8-byte key from
//! `blocks/xor.dat` (byte `i` of a file with `key[i % 8]`); a missing or all-zero key means
//! no obfuscation. Files are preallocated: past the last record they hold zero bytes that
//! were never XORed, so a scan stops at the first record header that is all zero on disk.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::IngestError;
use crate::types::{Network, ix, n64};

/// Where one block's bytes are: file number and offset of the block data (after the
/// 8-byte record header), as Bitcoin Core's block index records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockPos {
    pub file: u32,
    pub data_pos: u64,
}

/// One record found by scanning a file.
#[derive(Clone, Debug)]
pub struct Record {
    pub pos: BlockPos,
    pub size: u32,
    pub header: [u8; 80],
}

/// The result of scanning one file: complete records and, if the file ends inside a
/// record or holds garbage, the error that stopped the scan.
#[derive(Debug)]
pub struct Scan {
    pub records: Vec<Record>,
    pub stopped_by: Option<IngestError>,
}

/// An opened blocks directory.
#[derive(Debug)]
pub struct BlocksDir {
    pub dir: PathBuf,
    pub key: [u8; 8],
    pub network: Network,
    /// `(file number, path)` in file-number order.
    pub files: Vec<(u32, PathBuf)>,
}

impl BlocksDir {
    /// Opens `dir`: reads `xor.dat`, lists `blk*.dat` and detects the network from the
    /// first record's magic.
    ///
    /// # Errors
    /// The directory is unreadable, holds no `blk*.dat`, or its first record's magic is not
    /// one of a known network (wrong directory, or a wrong/missing `xor.dat`).
    pub fn open(dir: &Path) -> Result<BlocksDir, IngestError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IngestError::Io { path, source }
        };
        let key = match std::fs::read(dir.join("xor.dat")) {
            Ok(k) if k.len() == 8 => k.try_into().expect("length checked"),
            Ok(k) => {
                return Err(IngestError::BadXorKey {
                    path: dir.join("xor.dat"),
                    len: k.len(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => [0u8; 8],
            Err(e) => return Err(io(&dir.join("xor.dat"))(e)),
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(num) = name
                .strip_prefix("blk")
                .and_then(|n| n.strip_suffix(".dat"))
                .and_then(|n| n.parse::<u32>().ok())
            {
                files.push((num, entry.path()));
            }
        }
        files.sort();
        let Some((_, first)) = files.first() else {
            return Err(IngestError::NoBlkFiles {
                dir: dir.to_path_buf(),
                hint: super::error::no_blk_hint(dir),
            });
        };
        let mut head = [0u8; 4];
        File::open(first)
            .and_then(|f| f.read_exact_at(&mut head, 0))
            .map_err(io(first))?;
        xor(&mut head, &key, 0);
        let network = Network::from_magic(head).ok_or_else(|| IngestError::UnknownMagic {
            path: first.clone(),
            offset: 0,
            found: head,
        })?;
        Ok(BlocksDir {
            dir: dir.to_path_buf(),
            key,
            network,
            files,
        })
    }

    fn path_of(&self, file: u32) -> Result<&Path, IngestError> {
        self.files
            .iter()
            .find(|(n, _)| *n == file)
            .map(|(_, p)| p.as_path())
            .ok_or_else(|| IngestError::MissingBlkFile {
                dir: self.dir.clone(),
                file,
            })
    }

    /// Path of a file, for messages.
    pub fn display_path(&self, file: u32) -> PathBuf {
        self.path_of(file)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| self.dir.join(format!("blk{file:05}.dat")))
    }

    /// Reads the block whose data starts at `pos`, checking the record header before it.
    ///
    /// # Errors
    /// The file is missing or shorter than the record, or the record's magic is wrong.
    pub fn read_block(&self, pos: BlockPos) -> Result<Vec<u8>, IngestError> {
        let path = self.path_of(pos.file)?;
        let f = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file_len = f
            .metadata()
            .map_err(|source| IngestError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let header_at = pos
            .data_pos
            .checked_sub(8)
            .ok_or_else(|| IngestError::Corrupt {
                path: path.to_path_buf(),
                offset: pos.data_pos,
                what: "block position is inside the file header".into(),
            })?;
        let mut hdr = [0u8; 8];
        read_exact_at(&f, path, &mut hdr, header_at, file_len)?;
        xor(&mut hdr, &self.key, header_at);
        let magic: [u8; 4] = hdr[..4].try_into().expect("4 bytes");
        if magic != self.network.magic() {
            return Err(IngestError::WrongMagic {
                path: path.to_path_buf(),
                offset: header_at,
                found: magic,
                expected: self.network,
            });
        }
        let size = u32::from_le_bytes(hdr[4..].try_into().expect("4 bytes"));
        let mut buf = vec![0u8; ix(size)];
        read_exact_at(&f, path, &mut buf, pos.data_pos, file_len)?;
        xor(&mut buf, &self.key, pos.data_pos);
        Ok(buf)
    }

    /// Scans file `file` for records, returning their positions and headers.
    ///
    /// # Errors
    /// Only I/O errors opening the file; framing problems end the scan and are returned in
    /// [`Scan::stopped_by`], with the complete records before them.
    pub fn scan(&self, file: u32) -> Result<Scan, IngestError> {
        let path = self.path_of(file)?;
        let mut bytes = std::fs::read(path).map_err(|source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let len = bytes.len();
        let mut records = Vec::new();
        let mut pos = 0usize;
        let stopped_by = loop {
            if pos >= len {
                break None;
            }
            if pos + 8 > len {
                if bytes[pos..].iter().all(|&b| b == 0) {
                    break None;
                }
                break Some(IngestError::Truncated {
                    path: path.to_path_buf(),
                    offset: n64(pos),
                    what: format!("record header needs 8 bytes, file has {} left", len - pos),
                });
            }
            if bytes[pos..pos + 8].iter().all(|&b| b == 0) {
                break None; // preallocated, never-written space
            }
            xor(&mut bytes[pos..pos + 8], &self.key, n64(pos));
            let magic: [u8; 4] = bytes[pos..pos + 4].try_into().expect("4 bytes");
            if magic != self.network.magic() {
                break Some(match Network::from_magic(magic) {
                    Some(_) => IngestError::WrongMagic {
                        path: path.to_path_buf(),
                        offset: n64(pos),
                        found: magic,
                        expected: self.network,
                    },
                    None => IngestError::Corrupt {
                        path: path.to_path_buf(),
                        offset: n64(pos),
                        what: format!(
                            "expected network magic {}, found {}",
                            hex4(self.network.magic()),
                            hex4(magic)
                        ),
                    },
                });
            }
            let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
            let data = pos + 8;
            if (ix(size)) < 80 {
                break Some(IngestError::Corrupt {
                    path: path.to_path_buf(),
                    offset: n64(pos),
                    what: format!("record size {size} is smaller than a block header"),
                });
            }
            if data + ix(size) > len {
                break Some(IngestError::Truncated {
                    path: path.to_path_buf(),
                    offset: n64(pos),
                    what: format!("block record of {size} bytes, file has {} left", len - data),
                });
            }
            let mut header = [0u8; 80];
            header.copy_from_slice(&bytes[data..data + 80]);
            xor(&mut header, &self.key, n64(data));
            records.push(Record {
                pos: BlockPos {
                    file,
                    data_pos: n64(data),
                },
                size,
                header,
            });
            pos = data + ix(size);
        };
        Ok(Scan {
            records,
            stopped_by,
        })
    }
}

fn read_exact_at(
    f: &File,
    path: &Path,
    buf: &mut [u8],
    at: u64,
    file_len: u64,
) -> Result<(), IngestError> {
    if at + n64(buf.len()) > file_len {
        return Err(IngestError::Truncated {
            path: path.to_path_buf(),
            offset: at,
            what: format!(
                "needs {} bytes, file has {}",
                buf.len(),
                file_len.saturating_sub(at)
            ),
        });
    }
    f.read_exact_at(buf, at).map_err(|source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// XORs `buf`, which starts at `offset` in its file, with the obfuscation key.
pub fn xor(buf: &mut [u8], key: &[u8; 8], offset: u64) {
    if key == &[0u8; 8] {
        return;
    }
    let start = (offset % 8) as usize;
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(start + i) % 8];
    }
}

/// Four magic bytes as hex, for messages.
pub fn hex4(m: [u8; 4]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_keyed_by_file_offset() {
        let key = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut a = [0u8; 4];
        xor(&mut a, &key, 6);
        assert_eq!(a, [7, 8, 1, 2]);
        xor(&mut a, &key, 6);
        assert_eq!(a, [0, 0, 0, 0]);
    }
}
