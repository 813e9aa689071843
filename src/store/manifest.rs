//! `_manifest.json`: what a chain's dataset holds and how it was made.
//!
//! The manifest is the dataset's source of truth: a part file it does not list is a
//! leftover of a killed run. It holds no timestamps, so an interrupted-and-resumed ingest
//! and a clean one end with the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::FORMAT_VERSION;
use super::{StoreError, sink};

/// One table's file of a part.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartFile {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A height range written as one file per table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    pub from: u64,
    pub to: u64,
    /// Hash of the block at `from`, and at `to`: a part whose hashes are no longer on the
    /// best chain is replaced.
    pub first_hash: String,
    pub last_hash: String,
    /// Table name -> file.
    pub files: BTreeMap<String, PartFile>,
}

/// The chain tip of the dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub hash: String,
}

/// Where the data came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    /// `blocks-dir`, `rpc` or `esplora`.
    pub kind: String,
    /// Directory or URL as given.
    pub location: String,
    /// How the best chain was chosen (`block-index` or `header-links`), where it applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_selection: Option<String>,
}

/// A reorganisation the ingest rolled back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reorg {
    pub fork_height: u64,
    pub old_tip: Tip,
    pub removed_parts: Vec<String>,
}

/// The manifest of `data/<network>/`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format_version: u32,
    pub chain: String,
    pub network: String,
    pub tool: String,
    pub source: Source,
    /// Blocks per part: parts cover `[k*part_blocks, (k+1)*part_blocks - 1]`, so part
    /// boundaries never depend on where an ingest started or stopped.
    pub part_blocks: u32,
    pub tip: Option<Tip>,
    /// Merged height ranges present, ascending.
    pub ranges: Vec<[u64; 2]>,
    pub parts: Vec<Part>,
    #[serde(default)]
    pub reorgs: Vec<Reorg>,
    /// Set when the dataset is not a run of whole blocks but a neighbourhood fetched from a
    /// third-party API for a trace: only the transactions it needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood: Option<Neighbourhood>,
}

/// How a neighbourhood dataset was fetched (`trace --source esplora:URL`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Neighbourhood {
    /// The API's base URL, secrets redacted.
    pub api: String,
    /// When it was fetched (UTC, RFC 3339).
    pub fetched_at: String,
    /// The API's tip then.
    pub tip_height: u32,
    pub tip_hash: String,
    /// `forward` or `backward`.
    pub direction: String,
    pub seeds: Vec<String>,
    /// Transactions followed from the seeds (one more level is fetched, so that the trace
    /// can tell taint beyond the limit from taint held).
    pub max_hops: u32,
    /// Outputs below this (sat) were not followed.
    pub min_value: u64,
    /// Addresses where the walk stopped (labelled with a stop category).
    pub stop_addresses: usize,
    pub transactions: u64,
    pub blocks: u64,
}

impl Manifest {
    /// A new, empty manifest.
    pub fn new(chain: &str, network: &str, source: Source, part_blocks: u32) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            chain: chain.into(),
            network: network.into(),
            tool: format!("chaintrace {}", env!("CARGO_PKG_VERSION")),
            source,
            part_blocks,
            tip: None,
            ranges: Vec::new(),
            parts: Vec::new(),
            reorgs: Vec::new(),
            neighbourhood: None,
        }
    }

    /// The manifest path of a chain directory.
    pub fn path(chain_dir: &Path) -> PathBuf {
        chain_dir.join("_manifest.json")
    }

    /// Loads the manifest of `chain_dir`, or `None` if there is none.
    ///
    /// # Errors
    /// The file is unreadable, not a manifest, or of another format version.
    pub fn load(chain_dir: &Path) -> Result<Option<Manifest>, StoreError> {
        let path = Self::path(chain_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::ManifestParse {
                path: path.clone(),
                source,
            })?;
        if m.format_version != FORMAT_VERSION {
            return Err(StoreError::ManifestFormat {
                path,
                found: m.format_version,
                expected: FORMAT_VERSION,
            });
        }
        Ok(Some(m))
    }

    /// Recomputes `ranges` and `tip` from `parts` and writes the manifest atomically.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&mut self, chain_dir: &Path) -> Result<(), StoreError> {
        self.parts.sort_by_key(|p| p.from);
        self.ranges.clear();
        for p in &self.parts {
            match self.ranges.last_mut() {
                Some(r) if r[1] + 1 == p.from => r[1] = p.to,
                _ => self.ranges.push([p.from, p.to]),
            }
        }
        self.tip = self.parts.last().map(|p| Tip {
            height: p.to,
            hash: p.last_hash.clone(),
        });
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifests always serialise");
        bytes.push(b'\n');
        sink::write_atomic(&Self::path(chain_dir), &bytes)
    }

    /// Whether `file` (a part file name) is listed for `table`.
    pub fn lists(&self, table: &str, file: &str) -> bool {
        self.parts
            .iter()
            .any(|p| p.files.get(table).is_some_and(|f| f.file == file))
    }
}
