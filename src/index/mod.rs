//! The address index (DESIGN.md §4): dense ids for transactions, outputs, inputs and
//! addresses, and the spend graph as flat adjacency arrays, built once from the Parquet
//! dataset and memory-mapped on later loads; extended, not rebuilt, when blocks are
//! appended to the dataset ([`extend`]).
//!
//! On disk, `data/<network>/index/` holds one little-endian array per file (below) and
//! `meta.json` with [`INDEX_FORMAT`] and the sha256 of the dataset manifest it was built
//! from: a different manifest or format version makes [`Index::open_or_build`] rebuild it.
//!
//! | file | element | meaning |
//! |---|---|---|
//! | `tx_txid` | 32 bytes | txid (display order) of transaction id `t` |
//! | `tx_height` | u32 | block height |
//! | `tx_out_start`, `tx_in_start` | u64 × (txs + 1) | CSR offsets into outputs / inputs |
//! | `out_value` | u64 | satoshi |
//! | `out_addr` | u32 | address id, `u32::MAX` for none |
//! | `out_type` | u8 | script type code |
//! | `out_tx` | u32 | transaction of the output |
//! | `out_spent_by` | u64 | input that spends it, `u64::MAX` if unspent |
//! | `in_prev` | u64 | output an input spends, `u64::MAX` for coinbase, `2^63 + k` for the `k`-th input spending from before a height window |
//! | `in_tx` | u32 | transaction of the input |
//! | `addr_str_start` + `addr_str` | u64 × (addrs + 1), bytes | address strings |
//! | `addr_first_tx` | u32 | transaction where the address first receives |
//! | `addr_n_recv` | u32 | outputs it receives in the whole chain |
//! | `addr_sorted`, `txid_sorted` | u32 | ids sorted by string / txid, for lookups |
//! | `block_time` | u32 | header time (seconds) of each height |
//! | `before_txid`, `before_vout`, `before_value` | 32 bytes, u32, u64 | outpoint and satoshi of each output spent from before a height window |
//! | `before_addr_start` + `before_addr` | u64 × (before + 1), bytes | its address (empty for none) |
//!
//! Output, input and byte offsets are 64-bit (mainnet has more than 2^32 outputs);
//! transaction and address ids are 32-bit, checked at build time (mainnet has about 1.1 G
//! transactions and 1.5 G addresses, below the 4.29 G limit; a larger chain fails the
//! build with a message rather than wrapping).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, RecordBatch};
use memmap2::Mmap;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod extend;

pub use extend::Indexed;

use crate::ingest::bitcoin::script::ScriptType;
use crate::store::manifest::Manifest;
use crate::store::sink;
use crate::types::{AddrIx, Height, InIx, OutIx, TxIx, ix, n32, n64};
pub use bitcoin::Amount;

/// Version of the on-disk index. Bump on any change of the files above.
pub const INDEX_FORMAT: u32 = 4;

/// "None" in `u32` and `u64` columns.
pub const NONE32: u32 = u32::MAX;
pub const NONE64: u64 = u64::MAX;
/// `in_prev` of the `k`-th input that spends an output from before the dataset's height
/// window (the dataset starts above genesis) is `BEFORE_BASE + k`: the spent output is not
/// in the dataset, its outpoint, value and address are in the `before_*` files. Output ids
/// stay far below (2^63 outputs).
pub const BEFORE_BASE: u64 = 1 << 63;

/// An error building or loading the index.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("cannot read or write {path}: {source}; delete the index directory to rebuild it")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not readable Parquet: {source}; re-ingest the range it covers (--from)")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{dir} has no dataset (no _manifest.json); run `chaintrace ingest bitcoin` first")]
    NoDataset { dir: PathBuf },
    #[error("dataset {dir} is inconsistent: {what}; re-ingest it")]
    Inconsistent { dir: PathBuf, what: String },
    #[error(
        "the chain has more than 4,294,967,294 {what}: index format {INDEX_FORMAT} cannot hold it"
    )]
    TooMany { what: &'static str },
    /// Ctrl-C (or SIGTERM) stopped the build: the partial files were removed and the old
    /// index, if there was one, is as it was.
    #[error(
        "interrupted: the address index of {dir} was not built; the old index, if there was one, is as it was; run the command again to build it"
    )]
    Interrupted { dir: PathBuf },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// `meta.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexMeta {
    pub format_version: u32,
    pub manifest_sha256: String,
    pub network: String,
    pub txs: u64,
    pub outputs: u64,
    pub inputs: u64,
    pub addresses: u64,
    /// The dataset's first height: above 0 for a height window (`ingest --from H`),
    /// whose inputs may spend outputs from before it.
    #[serde(default)]
    pub first_height: u32,
    /// Inputs that spend outputs from before the window.
    #[serde(default)]
    pub before: u64,
    /// The dataset parts the index was built from: a dataset that only grew since
    /// (blocks appended) has its index extended rather than rebuilt. Absent in indexes
    /// written before extensions (they are rebuilt once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexed: Option<Indexed>,
    /// The sha256 (hex) of every index file as built: [`Index::damaged_files`] tells a
    /// damaged or altered index (which would answer wrongly without an error) from a sound
    /// one. Empty in indexes written before it was recorded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub files_sha256: std::collections::BTreeMap<String, String>,
}

/// A memory-mapped little-endian array.
#[derive(Debug)]
pub struct Col {
    map: Option<Mmap>,
    width: usize,
}

impl Col {
    fn open(path: &Path, width: usize) -> Result<Col, IndexError> {
        let f = File::open(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let len = f
            .metadata()
            .map_err(|source| IndexError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        // An empty file cannot be mapped.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the index files are written once (renamed into place) and never
            // modified while mapped; a rebuild writes a new directory.
            Some(unsafe { Mmap::map(&f) }.map_err(|source| IndexError::Io {
                path: path.to_path_buf(),
                source,
            })?)
        };
        Ok(Col { map, width })
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes().len() / self.width
    }

    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as u64 (for 1-, 4- and 8-byte columns).
    pub fn get(&self, i: usize) -> u64 {
        let b = &self.bytes()[i * self.width..(i + 1) * self.width];
        match self.width {
            1 => u64::from(b[0]),
            4 => u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))),
            8 => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            w => panic!("no integer column is {w} bytes wide"),
        }
    }

    /// Element `i` as raw bytes.
    pub fn raw(&self, i: usize) -> &[u8] {
        &self.bytes()[i * self.width..(i + 1) * self.width]
    }

    /// Every element's bytes.
    pub fn raw_all(&self) -> &[u8] {
        self.bytes()
    }
}

/// The folders of the indexes this process has loaded ([`Index::load`]), in load order.
static LOADED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn note_loaded(dir: &Path) {
    let mut l = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !l.iter().any(|d| d == dir) {
        l.push(dir.to_path_buf());
    }
}

/// The folders of the indexes this process has loaded, in load order: where to look when a
/// stage fails unexpectedly. A damaged file of the right size passes [`Index::load`]'s size
/// checks, and an id read from it can point past an array, which panics (see [`Index`]);
/// the command line then checks these folders with [`Index::damaged_files`] and names the
/// damaged file instead of reporting a bug.
#[must_use]
pub fn loaded_dirs() -> Vec<PathBuf> {
    LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// What an input spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prev {
    /// Nothing: the coinbase input.
    Coinbase,
    /// The `k`-th output spent from before the dataset's height window (not in the
    /// dataset; [`Index::before_outpoint`], [`Index::before_value`] and
    /// [`Index::before_address`] describe it).
    BeforeWindow(u64),
    /// This output of the dataset.
    Output(OutIx),
}

/// The loaded index: memory-mapped columns behind typed accessors (ids are dense: a
/// transaction `u32`, an output or input `u64`, an address `u32`, a height `u32`).
///
/// # Panics
/// The accessors take ids this index gave ([`TxIx`] from [`Index::tx_id`] or
/// [`Index::tx_ids`], [`OutIx`] from [`Index::outputs_of`], …), as a slice takes indices
/// below its length: an id beyond the index panics. Lookups from outside values
/// (`tx_id`, `address_id`, [`Index::output`]) return `None` instead.
#[derive(Debug)]
pub struct Index {
    pub dir: PathBuf,
    pub meta: IndexMeta,
    tx_txid: Col,
    tx_height: Col,
    tx_out_start: Col,
    tx_in_start: Col,
    out_value: Col,
    out_addr: Col,
    out_type: Col,
    out_tx: Col,
    out_spent_by: Col,
    in_prev: Col,
    in_tx: Col,
    addr_str_start: Col,
    addr_str: Col,
    addr_first_tx: Col,
    addr_n_recv: Col,
    addr_sorted: Col,
    txid_sorted: Col,
    block_time: Col,
    before_txid: Col,
    before_vout: Col,
    before_value: Col,
    before_addr_start: Col,
    before_addr: Col,
    addr_out_start: Col,
    addr_outs: Col,
}

const FILES: [(&str, usize); 25] = [
    ("tx_txid", 32),
    ("tx_height", 4),
    ("tx_out_start", 8),
    ("tx_in_start", 8),
    ("out_value", 8),
    ("out_addr", 4),
    ("out_type", 1),
    ("out_tx", 4),
    ("out_spent_by", 8),
    ("in_prev", 8),
    ("in_tx", 4),
    ("addr_str_start", 8),
    ("addr_str", 1),
    ("addr_first_tx", 4),
    ("addr_n_recv", 4),
    ("addr_sorted", 4),
    ("txid_sorted", 4),
    ("block_time", 4),
    ("before_txid", 32),
    ("before_vout", 4),
    ("before_value", 8),
    ("before_addr_start", 8),
    ("before_addr", 1),
    ("addr_out_start", 8),
    ("addr_outs", 8),
];

/// The first index file whose size does not fit `meta` (a truncated, foreign or
/// half-written file), said as "FILE holds N bytes, M expected"; `None` when every size
/// fits. Sizes only: the files are not read. `block_time` must hold at least one entry
/// per height up to the last transaction's, and `addr_str` exactly the bytes its offsets
/// end at.
fn wrong_size(dir: &Path, meta: &IndexMeta) -> Option<String> {
    let (txs, outputs, inputs, addresses) = (meta.txs, meta.outputs, meta.inputs, meta.addresses);
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    let read_u64_at = |name: &str, offset: u64, width: u64| -> Option<u64> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = File::open(dir.join(name)).ok()?;
        f.seek(SeekFrom::Start(offset)).ok()?;
        let mut b = [0u8; 8];
        f.read_exact(&mut b[..usize::try_from(width).ok()?]).ok()?;
        Some(u64::from_le_bytes(b))
    };
    for (name, width) in FILES {
        let width = n64(width);
        let want = match name {
            "tx_txid" | "tx_height" | "txid_sorted" => Some(txs),
            "tx_out_start" | "tx_in_start" => Some(txs + 1),
            "out_value" | "out_addr" | "out_type" | "out_tx" | "out_spent_by" => Some(outputs),
            "in_prev" | "in_tx" => Some(inputs),
            "addr_str_start" => Some(addresses + 1),
            "addr_first_tx" | "addr_n_recv" | "addr_sorted" => Some(addresses),
            "addr_str" => read_u64_at("addr_str_start", addresses * 8, 8),
            "before_txid" | "before_vout" | "before_value" => Some(meta.before),
            "before_addr_start" => Some(meta.before + 1),
            "before_addr" => read_u64_at("before_addr_start", meta.before * 8, 8),
            "addr_out_start" => Some(addresses + 1),
            "addr_outs" => read_u64_at("addr_out_start", addresses * 8, 8),
            _ => None,
        };
        let got = size(name);
        if let Some(n) = want
            && got != n * width
        {
            return Some(format!(
                "index file {name} holds {got} bytes, {} expected",
                n * width
            ));
        }
    }
    // Every transaction's height has its block time.
    let last_height = if txs == 0 {
        None
    } else {
        read_u64_at("tx_height", (txs - 1) * 4, 4)
    };
    let times = size("block_time") / 4;
    match last_height {
        Some(h) if times <= h => Some(format!(
            "index file block_time holds {times} heights, the last transaction is at height {h}"
        )),
        _ => None,
    }
}

/// Whether the index was loaded or (re)built, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Provenance {
    Loaded,
    /// Built now, for `reason`, in `passes` passes over the outputs; `extended_from`: the
    /// transactions of the old index it extended (appended blocks), `None` for a build
    /// from genesis.
    Built {
        reason: String,
        passes: usize,
        extended_from: Option<u64>,
        /// For a build from genesis, why the old index was not extended.
        not_extended: Option<String>,
    },
}

impl Index {
    /// Opens the index of `chain_dir`, building it first if it is missing, was built
    /// from another dataset (manifest hash) or has another format version.
    ///
    /// # Errors
    /// No dataset, unreadable Parquet, an inconsistent dataset, or I/O errors.
    ///
    /// Two processes never build one index at once: a builder holds the OS lock on
    /// `chain_dir/_index.lock`; another waits for it, and then loads what it built.
    pub fn open_or_build(chain_dir: &Path) -> Result<(Index, Provenance), IndexError> {
        let dir = chain_dir.join("index");
        if Index::needs_build(chain_dir)?.is_none() {
            return Ok((Index::load(&dir)?, Provenance::Loaded));
        }
        let _lock = build_lock(chain_dir)?;
        // Checked again: another process may have built it while this one waited.
        match Index::needs_build(chain_dir)? {
            None => Ok((Index::load(&dir)?, Provenance::Loaded)),
            Some(reason) => {
                let b = build_locked(chain_dir, crate::memory::budget(), true)?;
                Ok((
                    Index::load(&dir)?,
                    Provenance::Built {
                        reason,
                        passes: b.passes,
                        extended_from: b.extended_from,
                        not_extended: b.not_extended,
                    },
                ))
            }
        }
    }

    /// Builds the index of `chain_dir` into `chain_dir/index` (replacing it; via a
    /// temporary directory renamed into place, so a killed build leaves the old index or
    /// none). The address table is kept within half of `budget`, in as many passes over
    /// the outputs as that takes; the files are the same bytes whatever the budget. Waits
    /// while another process builds the same index (the lock of [`Index::open_or_build`]).
    ///
    /// # Errors
    /// No dataset, unreadable Parquet, an inconsistent dataset, or I/O errors.
    pub fn build(chain_dir: &Path, budget: crate::memory::Budget) -> Result<Built, IndexError> {
        let _lock = build_lock(chain_dir)?;
        build_locked(chain_dir, budget, false)
    }

    /// Why the index of `chain_dir` must be (re)built, or `None` if it is current.
    ///
    /// # Errors
    /// No dataset, or an unreadable manifest.
    pub fn needs_build(chain_dir: &Path) -> Result<Option<String>, IndexError> {
        let manifest_path = Manifest::path(chain_dir);
        if !manifest_path.is_file() {
            return Err(IndexError::NoDataset {
                dir: chain_dir.to_path_buf(),
            });
        }
        let manifest_sha = sink::sha256_file(&manifest_path)?;
        let bytes = std::fs::read(chain_dir.join("index").join("meta.json")).ok();
        let meta = bytes
            .as_deref()
            .and_then(|b| serde_json::from_slice::<IndexMeta>(b).ok());
        Ok(match meta {
            None if bytes.is_some() => Some("its meta.json is unreadable".to_string()),
            None => Some("no index yet".to_string()),
            Some(m) if m.format_version != INDEX_FORMAT => Some(format!(
                "index format {} is not this version's {INDEX_FORMAT}",
                m.format_version
            )),
            Some(m) if m.manifest_sha256 != manifest_sha => {
                Some("the dataset changed since the index was built".to_string())
            }
            Some(m) => wrong_size(&chain_dir.join("index"), &m),
        })
    }

    /// Loads an index directory by memory-mapping its files.
    ///
    /// # Errors
    /// Missing or unreadable files.
    pub fn load(dir: &Path) -> Result<Index, IndexError> {
        note_loaded(dir);
        let meta_path = dir.join("meta.json");
        let bytes = std::fs::read(&meta_path).map_err(|source| IndexError::Io {
            path: meta_path.clone(),
            source,
        })?;
        let meta: IndexMeta =
            serde_json::from_slice(&bytes).map_err(|e| IndexError::Inconsistent {
                dir: dir.to_path_buf(),
                what: format!("meta.json: {e}"),
            })?;
        if let Some(what) = wrong_size(dir, &meta) {
            return Err(IndexError::Inconsistent {
                dir: dir.to_path_buf(),
                what,
            });
        }
        let mut cols: Vec<Col> = Vec::with_capacity(FILES.len());
        for (name, width) in FILES {
            cols.push(Col::open(&dir.join(name), width)?);
        }
        let mut it = cols.into_iter();
        let mut next = || it.next().expect("one column per file");
        Ok(Index {
            dir: dir.to_path_buf(),
            meta,
            tx_txid: next(),
            tx_height: next(),
            tx_out_start: next(),
            tx_in_start: next(),
            out_value: next(),
            out_addr: next(),
            out_type: next(),
            out_tx: next(),
            out_spent_by: next(),
            in_prev: next(),
            in_tx: next(),
            addr_str_start: next(),
            addr_str: next(),
            addr_first_tx: next(),
            addr_n_recv: next(),
            addr_sorted: next(),
            txid_sorted: next(),
            block_time: next(),
            before_txid: next(),
            before_vout: next(),
            before_value: next(),
            before_addr_start: next(),
            before_addr: next(),
            addr_out_start: next(),
            addr_outs: next(),
        })
    }

    /// The outputs paying address `a`, in chain order (from the index's address → outputs
    /// rows: no scan).
    pub fn outputs_paid(&self, a: AddrIx) -> impl Iterator<Item = OutIx> + '_ {
        let (from, to) = (
            self.addr_out_start.get(a.ix()),
            self.addr_out_start.get(a.ix() + 1),
        );
        (ix(from)..ix(to)).map(move |k| OutIx(self.addr_outs.get(k)))
    }

    /// Number of transactions.
    pub fn txs(&self) -> u32 {
        n32(self.meta.txs)
    }

    /// Every transaction, in chain order.
    pub fn tx_ids(&self) -> impl Iterator<Item = TxIx> + use<> {
        (0..self.txs()).map(TxIx)
    }

    /// Number of addresses.
    pub fn addresses(&self) -> u32 {
        n32(self.meta.addresses)
    }

    /// Every address, by id.
    pub fn address_ids(&self) -> impl Iterator<Item = AddrIx> + use<> {
        (0..self.addresses()).map(AddrIx)
    }

    /// The address string of `a`.
    pub fn address(&self, a: AddrIx) -> &str {
        std::str::from_utf8(self.address_bytes(a)).expect("addresses are stored as UTF-8")
    }

    /// The address of `a` as stored (UTF-8 bytes), without checking them.
    fn address_bytes(&self, a: AddrIx) -> &[u8] {
        let s = ix(self.addr_str_start.get(a.ix()));
        let e = ix(self.addr_str_start.get(a.ix() + 1));
        &self.addr_str.bytes()[s..e]
    }

    /// The address of the `k`-th id in string order.
    fn sorted_address(&self, k: usize) -> (AddrIx, &[u8]) {
        let id = AddrIx(n32(self.addr_sorted.get(k)));
        (id, self.address_bytes(id))
    }

    /// The id of an address string, by binary search.
    pub fn address_id(&self, s: &str) -> Option<AddrIx> {
        self.address_id_of_bytes(s.as_bytes())
    }

    /// [`Index::address_id`] of an address's bytes.
    fn address_id_of_bytes(&self, s: &[u8]) -> Option<AddrIx> {
        let k = self.address_rank(s, 0);
        let (id, b) = (k < self.addr_sorted.len()).then(|| self.sorted_address(k))?;
        (b == s).then_some(id)
    }

    /// The first position at or after `from` in string order whose address is not below
    /// `s` (galloping from `from`, then binary search: cheap when `s` is close).
    fn address_rank(&self, s: &[u8], from: usize) -> usize {
        let n = self.addr_sorted.len();
        let below = |k: usize| self.sorted_address(k).1 < s;
        // Every position before `from` is below `s` (the caller's promise).
        let mut lo = from;
        if lo >= n || !below(lo) {
            return lo;
        }
        // below(lo); gallop until a position that is not below, or the end.
        let mut step = 1usize;
        let mut hi = loop {
            let probe = lo.saturating_add(step);
            if probe >= n {
                break n;
            }
            if !below(probe) {
                break probe;
            }
            lo = probe;
            step *= 2;
        };
        // below(lo), and the answer is in (lo, hi].
        lo += 1;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The ids of many address strings at once (`None` for those not in the index), in
    /// the order given: the queries are sorted and looked up in one sweep of the sorted
    /// addresses, each search starting where the previous one ended (a few cache lines
    /// each instead of a binary search over the whole index).
    pub fn address_ids_of(&self, addrs: &[&str]) -> Vec<Option<AddrIx>> {
        let mut order: Vec<u32> = (0..n32(addrs.len())).collect();
        order.sort_unstable_by(|&a, &b| addrs[ix(a)].cmp(addrs[ix(b)]));
        let mut out = vec![None; addrs.len()];
        let mut at = 0usize;
        for q in order {
            let s = addrs[ix(q)].as_bytes();
            at = self.address_rank(s, at);
            if at < self.addr_sorted.len() {
                let (id, b) = self.sorted_address(at);
                if b == s {
                    out[ix(q)] = Some(id);
                }
            }
        }
        out
    }

    /// The txid of transaction `t` (the file holds it in display order).
    pub fn txid(&self, t: TxIx) -> bitcoin::Txid {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.tx_txid.raw(t.ix()));
        b.reverse();
        bitcoin::hashes::Hash::from_byte_array(b)
    }

    /// The transaction of a txid, by binary search.
    pub fn tx_id(&self, txid: &bitcoin::Txid) -> Option<TxIx> {
        let mut want = bitcoin::hashes::Hash::to_byte_array(*txid);
        want.reverse();
        let (mut lo, mut hi) = (0usize, self.txid_sorted.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let t = ix(self.txid_sorted.get(mid));
            match self.tx_txid.raw(t).cmp(&want[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(TxIx(n32(t))),
            }
        }
        None
    }

    /// Block time (seconds since 1970) of transaction `t`.
    pub fn tx_time(&self, t: TxIx) -> u32 {
        self.block_time(self.tx_height(t))
    }

    /// The outputs of transaction `t`, in output order.
    pub fn outputs_of(&self, t: TxIx) -> impl DoubleEndedIterator<Item = OutIx> + Clone + use<> {
        (self.tx_out_start.get(t.ix())..self.tx_out_start.get(t.ix() + 1)).map(OutIx)
    }

    /// The inputs of transaction `t`, in input order.
    pub fn inputs_of(&self, t: TxIx) -> impl DoubleEndedIterator<Item = InIx> + Clone + use<> {
        (self.tx_in_start.get(t.ix())..self.tx_in_start.get(t.ix() + 1)).map(InIx)
    }

    /// How many outputs transaction `t` has.
    pub fn n_outputs(&self, t: TxIx) -> u64 {
        self.tx_out_start.get(t.ix() + 1) - self.tx_out_start.get(t.ix())
    }

    /// How many inputs transaction `t` has.
    pub fn n_inputs(&self, t: TxIx) -> u64 {
        self.tx_in_start.get(t.ix() + 1) - self.tx_in_start.get(t.ix())
    }

    /// The address of output `o`, if it has one.
    pub fn out_address(&self, o: OutIx) -> Option<AddrIx> {
        let a = n32(self.out_addr.get(o.ix()));
        (a != NONE32).then_some(AddrIx(a))
    }

    /// Script type of output `o`.
    pub fn out_script_type(&self, o: OutIx) -> ScriptType {
        ScriptType::from_code(u8::try_from(self.out_type.get(o.ix())).unwrap_or(u8::MAX))
            .expect("only valid codes are stored")
    }

    /// The output spent by input `i`, or `None` for a coinbase input (or one from before
    /// the window).
    pub fn prev_output(&self, i: InIx) -> Option<OutIx> {
        match self.prev(i) {
            Prev::Output(o) => Some(o),
            _ => None,
        }
    }

    /// What input `i` spends.
    pub fn prev(&self, i: InIx) -> Prev {
        match self.in_prev.get(i.ix()) {
            NONE64 => Prev::Coinbase,
            o if o >= BEFORE_BASE => Prev::BeforeWindow(o - BEFORE_BASE),
            o => Prev::Output(OutIx(o)),
        }
    }

    /// The outpoint `(txid, vout)` of the `k`-th output spent from before the window.
    pub fn before_outpoint(&self, k: u64) -> (String, u32) {
        let txid = self
            .before_txid
            .raw(ix(k))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (txid, n32(self.before_vout.get(ix(k))))
    }

    /// The value of the `k`-th output spent from before the window.
    pub fn before_value(&self, k: u64) -> Amount {
        Amount::from_sat(self.before_value.get(ix(k)))
    }

    /// The address of the `k`-th output spent from before the window ("" for none).
    pub fn before_address(&self, k: u64) -> &str {
        let s = ix(self.before_addr_start.get(ix(k)));
        let e = ix(self.before_addr_start.get(ix(k) + 1));
        std::str::from_utf8(&self.before_addr.bytes()[s..e]).expect("addresses are stored as UTF-8")
    }

    /// Whether transaction `t` spends an output from outside the dataset (its
    /// value and owner are not in the dataset).
    pub fn spends_before_window(&self, t: TxIx) -> bool {
        self.inputs_of(t)
            .any(|i| matches!(self.prev(i), Prev::BeforeWindow(_)))
    }

    /// The outputs spent by transaction `t` (none for a coinbase).
    pub fn spent_outputs(&self, t: TxIx) -> impl Iterator<Item = OutIx> + '_ {
        self.inputs_of(t).filter_map(|i| self.prev_output(i))
    }

    /// The addresses of the outputs transaction `t` spends, in input order (multi-input
    /// clustering's input set; outputs without an address are skipped).
    pub fn input_addresses(&self, t: TxIx) -> impl Iterator<Item = AddrIx> + '_ {
        self.spent_outputs(t).filter_map(|o| self.out_address(o))
    }

    /// Value of output `o`.
    pub fn value(&self, o: OutIx) -> Amount {
        Amount::from_sat(self.out_value.get(o.ix()))
    }

    /// The transaction that created output `o`.
    pub fn out_tx(&self, o: OutIx) -> TxIx {
        TxIx(n32(self.out_tx.get(o.ix())))
    }

    /// The output index of output `o` within its transaction.
    pub fn vout(&self, o: OutIx) -> u32 {
        n32(o.0 - self.tx_out_start.get(self.out_tx(o).ix()))
    }

    /// Output `vout` of transaction `t`, `None` beyond its outputs.
    pub fn output(&self, t: TxIx, vout: u32) -> Option<OutIx> {
        (u64::from(vout) < self.n_outputs(t))
            .then(|| OutIx(self.tx_out_start.get(t.ix()) + u64::from(vout)))
    }

    /// Block height of transaction `t`.
    pub fn tx_height(&self, t: TxIx) -> Height {
        Height(n32(self.tx_height.get(t.ix())))
    }

    /// The transaction that spends output `o`, if one in the dataset does.
    pub fn spender(&self, o: OutIx) -> Option<TxIx> {
        self.spending_input(o).map(|i| self.in_tx(i))
    }

    /// The input that spends output `o`, if one in the dataset does.
    pub fn spending_input(&self, o: OutIx) -> Option<InIx> {
        let i = self.out_spent_by.get(o.ix());
        (i != NONE64).then_some(InIx(i))
    }

    /// The transaction of input `i`.
    pub fn in_tx(&self, i: InIx) -> TxIx {
        TxIx(n32(self.in_tx.get(i.ix())))
    }

    /// The first transaction that paid address `a`.
    pub fn first_tx_of(&self, a: AddrIx) -> TxIx {
        TxIx(n32(self.addr_first_tx.get(a.ix())))
    }

    /// How many outputs ever pay address `a`.
    pub fn receives(&self, a: AddrIx) -> u64 {
        self.addr_n_recv.get(a.ix())
    }

    /// Blocks the index holds times for (heights `0..heights()`).
    pub fn heights(&self) -> u32 {
        n32(self.block_time.len())
    }

    /// Block time of height `h` (unix seconds), 0 beyond the last.
    pub fn block_time(&self, h: Height) -> u32 {
        if h.ix() < self.block_time.len() {
            n32(self.block_time.get(h.ix()))
        } else {
            0
        }
    }

    /// Whether transaction `t` is a coinbase (its only input spends nothing).
    pub fn is_coinbase(&self, t: TxIx) -> bool {
        let mut ins = self.inputs_of(t);
        match (ins.next(), ins.next()) {
            (Some(i), None) => self.prev(i) == Prev::Coinbase,
            _ => false,
        }
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Rows per batch read from Parquet: 64 Ki, or fewer under a small memory budget (a
/// 2048th of it in rows, at least 1 Ki: 8 Ki rows under 16 MiB).
fn batch_rows() -> usize {
    usize::try_from(crate::memory::budget().bytes() / 2048)
        .unwrap_or(usize::MAX)
        .clamp(1024, 65_536)
}

/// Calls `f` with every batch of `columns` of `table`, in part (height) order.
///
/// # Errors
/// Unreadable files.
pub fn scan_table(
    chain_dir: &Path,
    table: &str,
    columns: &[&str],
    f: impl FnMut(&RecordBatch) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    scan_table_from(chain_dir, table, columns, extend::Start::default(), f)
}

/// [`scan_table`] from the part `start.part` of the manifest on, passing over the first
/// `start.rows` rows of it (an extension reads only the rows the old index lacks).
fn scan_table_from(
    chain_dir: &Path,
    table: &str,
    columns: &[&str],
    start: extend::Start,
    mut f: impl FnMut(&RecordBatch) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    use crate::tables::Table;
    let dir = chain_dir.join(table);
    // The parts the manifest lists (one reader for every table), each checked against the
    // table registry first: the columns read below are then present with their types.
    let def = match table {
        "blocks" => crate::tables::btc_blocks::Blocks::DEF,
        "transactions" => crate::tables::btc_transactions::Transactions::DEF,
        "inputs" => crate::tables::btc_inputs::Inputs::DEF,
        _ => crate::tables::btc_outputs::Outputs::DEF,
    };
    let inconsistent = |what: String| IndexError::Inconsistent {
        dir: chain_dir.to_path_buf(),
        what,
    };
    let files = crate::store::reader::part_files(&dir).map_err(|e| inconsistent(e.to_string()))?;
    let mut pass_over = start.rows;
    for path in files.into_iter().skip(start.part) {
        def.check(&path, true)
            .map_err(|e| inconsistent(e.to_string()))?;
        let pq = |source| IndexError::Parquet {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows())
            .build()
            .map_err(pq)?;
        for batch in reader {
            let batch = batch.map_err(|e| IndexError::Parquet {
                path: path.clone(),
                source: e.into(),
            })?;
            let rows = n64(batch.num_rows());
            if pass_over >= rows {
                pass_over -= rows;
                continue;
            }
            // Ctrl-C stops the build between batches (the builder removes its files).
            if crate::ingest::interrupted() {
                return Err(IndexError::Interrupted {
                    dir: chain_dir.to_path_buf(),
                });
            }
            let from = ix(pass_over);
            pass_over = 0;
            f(&batch.slice(from, batch.num_rows() - from))?;
        }
    }
    Ok(())
}

fn hex_txid(s: &str, dir: &Path) -> Result<[u8; 32], IndexError> {
    hex32(s).ok_or_else(|| IndexError::Inconsistent {
        dir: dir.to_path_buf(),
        what: format!("{s:?} is not a txid"),
    })
}

struct Writer {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Writer {
    fn create(dir: &Path, name: &str) -> Result<Writer, IndexError> {
        let path = dir.join(name);
        let f = File::create(&path).map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Writer {
            path,
            w: BufWriter::with_capacity(1 << 20, f),
        })
    }
    /// Appends to the file `dir/name` (a column an extension copied from the old index).
    fn append(dir: &Path, name: &str) -> Result<Writer, IndexError> {
        let path = dir.join(name);
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| IndexError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Writer {
            path,
            w: BufWriter::with_capacity(1 << 20, f),
        })
    }

    fn put(&mut self, b: &[u8]) -> Result<(), IndexError> {
        self.w.write_all(b).map_err(|source| IndexError::Io {
            path: self.path.clone(),
            source,
        })
    }
    fn finish(self) -> Result<(), IndexError> {
        let path = self.path.clone();
        let f = self.w.into_inner().map_err(|e| IndexError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        f.sync_all()
            .map_err(|source| IndexError::Io { path, source })
    }
}

fn write_bytes(dir: &Path, name: &str, b: &[u8]) -> Result<(), IndexError> {
    let mut w = Writer::create(dir, name)?;
    w.put(b)?;
    w.finish()
}

fn write_u32s(dir: &Path, name: &str, v: &[u32]) -> Result<(), IndexError> {
    let mut w = Writer::create(dir, name)?;
    for x in v {
        w.put(&x.to_le_bytes())?;
    }
    w.finish()
}

fn write_u64s(dir: &Path, name: &str, v: &[u64]) -> Result<(), IndexError> {
    let mut w = Writer::create(dir, name)?;
    for x in v {
        w.put(&x.to_le_bytes())?;
    }
    w.finish()
}

fn checked_u32(n: usize, what: &'static str) -> Result<u32, IndexError> {
    u32::try_from(n)
        .ok()
        .filter(|&v| v != NONE32)
        .ok_or(IndexError::TooMany { what })
}

/// The first position of `sorted` (transaction ids in txid order; `txid_at` gives an id's
/// txid) whose txid is not below `txid`. Txids are uniformly distributed hashes, so an
/// interpolation search on their first 8 bytes finds it in a few probes (O(log log n);
/// Perl, Itai & Avni 1978) instead of a binary search's ~30 at mainnet's size, each probe a
/// cache miss; after 40 probes (keys that are not uniform) it finishes by binary search.
fn first_not_below<'a>(
    sorted: &[u32],
    txid_at: &impl Fn(u32) -> &'a [u8],
    txid: &[u8; 32],
) -> usize {
    let key = |b: &[u8]| u128::from(u64::from_be_bytes(b[..8].try_into().expect("8 bytes")));
    let want = key(txid);
    // Every position before `lo` is below `txid`, none from `hi` on; the keys in between
    // lie in [klo, khi].
    let (mut lo, mut hi) = (0usize, sorted.len());
    let (mut klo, mut khi) = (0u128, u128::from(u64::MAX));
    let mut probes = 0;
    while hi - lo > 8 && probes < 40 {
        probes += 1;
        let span = (khi - klo).max(1);
        let off = (want.saturating_sub(klo) * (hi - lo) as u128 / span) as usize;
        let pos = (lo + off).min(hi - 1);
        let at = txid_at(sorted[pos]);
        let k = key(at);
        // The first 8 bytes decide but for a shared prefix: no byte-wise compare then.
        if k < want || (k == want && at < &txid[..]) {
            lo = pos + 1;
            klo = k;
        } else {
            hi = pos;
            khi = k;
        }
    }
    lo + sorted[lo..hi].partition_point(|&t| txid_at(t) < &txid[..])
}

/// The longest address string the index takes: a bech32 string is at most 90 characters
/// (BIP 173), and base58 addresses are shorter.
const MAX_ADDRESS_LEN: usize = 90;

/// An array of little-endian integers (or bytes) in a file of the index being built, read
/// and written through a shared memory map: random writes cost no heap, and the kernel
/// writes the pages back and evicts them under memory pressure. Grown by
/// [`MapArray::reserve`] and cut to its final length by [`MapArray::finish`].
struct MapArray {
    path: PathBuf,
    file: File,
    map: Option<memmap2::MmapMut>,
    width: usize,
}

impl MapArray {
    /// `len` elements of `width` bytes (1, 4 or 8), every byte `fill`.
    fn create(
        dir: &Path,
        name: &str,
        len: usize,
        width: usize,
        fill: u8,
    ) -> Result<MapArray, IndexError> {
        MapArray::open(dir, name, true, 0, len, width, fill)
    }

    /// The existing file `dir/name` of `old_len` elements (a column an extension copied
    /// from the old index), grown to `len` elements whose new bytes are all `fill`.
    fn extend_from(
        dir: &Path,
        name: &str,
        old_len: usize,
        len: usize,
        width: usize,
        fill: u8,
    ) -> Result<MapArray, IndexError> {
        MapArray::open(dir, name, false, old_len, len, width, fill)
    }

    /// The file `dir/name` (emptied first when `truncate`) sized to `len` elements, its
    /// elements from `keep` on filled with `fill`, and mapped.
    fn open(
        dir: &Path,
        name: &str,
        truncate: bool,
        keep: usize,
        len: usize,
        width: usize,
        fill: u8,
    ) -> Result<MapArray, IndexError> {
        let path = dir.join(name);
        let io = |source| IndexError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(truncate)
            .truncate(truncate)
            .open(&path)
            .map_err(io)?;
        file.set_len(n64(len * width)).map_err(io)?;
        let map = if len * width == 0 {
            None
        } else {
            // SAFETY: the file is this build's own (new, or the copy an extension made), in
            // its temporary directory; nothing else maps or changes it while the build runs.
            let mut m = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(io)?;
            if fill != 0 {
                m[keep * width..].fill(fill);
            }
            Some(m)
        };
        Ok(MapArray {
            path,
            file,
            map,
            width,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }

    /// Element `i`.
    fn get(&self, i: usize) -> u64 {
        let b = &self.bytes()[i * self.width..(i + 1) * self.width];
        match self.width {
            1 => u64::from(b[0]),
            4 => u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))),
            _ => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    /// Sets element `i` (a value too wide for the element is a bug of the caller).
    fn set(&mut self, i: usize, v: u64) {
        let w = self.width;
        let b = &mut self.bytes_mut()[i * w..(i + 1) * w];
        match w {
            1 => b[0] = u8::try_from(v).expect("fits a byte"),
            4 => b.copy_from_slice(&u32::try_from(v).expect("fits 32 bits").to_le_bytes()),
            _ => b.copy_from_slice(&v.to_le_bytes()),
        }
    }

    /// Makes room for at least `len` elements: grows the file by half (or to `len`) and
    /// maps it again (new bytes are zero; only arrays filled with 0 grow).
    fn reserve(&mut self, len: usize) -> Result<(), IndexError> {
        let have = self.bytes().len() / self.width;
        if len <= have {
            return Ok(());
        }
        let io = |source| IndexError::Io {
            path: self.path.clone(),
            source,
        };
        let grown = len.max(have + have / 2);
        if let Some(m) = self.map.take() {
            m.flush().map_err(io)?;
        }
        self.file.set_len(n64(grown * self.width)).map_err(io)?;
        // SAFETY: as in `create`: the file is this build's own.
        self.map = Some(unsafe { memmap2::MmapMut::map_mut(&self.file) }.map_err(io)?);
        Ok(())
    }

    /// Writes the pages back, cuts the file to `len` elements and syncs it.
    fn finish(mut self, len: usize) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(m) = self.map.take() {
            m.flush().map_err(io)?;
        }
        self.file.set_len(n64(len * self.width)).map_err(io)?;
        self.file.sync_all().map_err(io)
    }

    /// Deletes a scratch array.
    fn remove(mut self) -> Result<(), IndexError> {
        drop(self.map.take());
        std::fs::remove_file(&self.path).map_err(|source| IndexError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Writes `tmp/name`: the ids `ids` as little-endian u32, sorted by `key(id)` and then by
/// id. When the keys of all ids (`per_id` bytes each, the id included) fit `chunk_bytes`,
/// one in-memory sort; otherwise an external merge sort: runs of ids whose keys fit,
/// each sorted and written to a scratch file, merged through a heap of one key per run:
/// the ids in memory are a run's, not all. The same file either way.
///
/// # Errors
/// I/O errors writing the runs or the file.
fn sort_ids<'a>(
    ids: std::ops::Range<u32>,
    key: &impl Fn(u32) -> &'a [u8],
    per_id: u64,
    chunk_bytes: u64,
    tmp: &Path,
    name: &str,
) -> Result<(), IndexError> {
    let chunk = u32::try_from(chunk_bytes / per_id.max(1))
        .unwrap_or(u32::MAX)
        .max(1024);
    // Sorted as (the key's first 8 bytes, id) pairs held in the run: the keys are read
    // (from the memory-mapped columns) only to break a tie of those bytes. Zero padding
    // keeps a shorter key first among equal prefixes: the tie-break decides it.
    let prefix = |id: u32| {
        let k = key(id);
        let mut b = [0u8; 8];
        let m = k.len().min(8);
        b[..m].copy_from_slice(&k[..m]);
        u64::from_be_bytes(b)
    };
    let by_key = |a: &(u64, u32), b: &(u64, u32)| {
        a.0.cmp(&b.0)
            .then_with(|| key(a.1).cmp(key(b.1)))
            .then(a.1.cmp(&b.1))
    };
    let sorted_run = |from: u32, to: u32| -> Vec<u32> {
        let mut pairs: Vec<(u64, u32)> = (from..to).map(|id| (prefix(id), id)).collect();
        pairs.sort_unstable_by(by_key);
        pairs.into_iter().map(|(_, id)| id).collect()
    };
    if chunk >= ids.end - ids.start {
        return write_u32s(tmp, name, &sorted_run(ids.start, ids.end));
    }
    let mut runs = Vec::new();
    let mut from = ids.start;
    while from < ids.end {
        let to = from.saturating_add(chunk).min(ids.end);
        let ids = sorted_run(from, to);
        let run = format!(".run_{name}_{}", runs.len());
        write_u32s(tmp, &run, &ids)?;
        runs.push(Col::open(&tmp.join(&run), 4)?);
        from = to;
    }
    // (key, id, run, position in the run) of each run's next id, least first.
    type Head = std::cmp::Reverse<(Vec<u8>, u32, usize, usize)>;
    let mut heads: std::collections::BinaryHeap<Head> = runs
        .iter()
        .enumerate()
        .map(|(r, c)| {
            let id = n32(c.get(0));
            std::cmp::Reverse((key(id).to_vec(), id, r, 0))
        })
        .collect();
    let mut w = Writer::create(tmp, name)?;
    while let Some(std::cmp::Reverse((_, id, r, at))) = heads.pop() {
        w.put(&id.to_le_bytes())?;
        if at + 1 < runs[r].len() {
            let next = n32(runs[r].get(at + 1));
            heads.push(std::cmp::Reverse((key(next).to_vec(), next, r, at + 1)));
        }
    }
    w.finish()?;
    for r in 0..runs.len() {
        let path = tmp.join(format!(".run_{name}_{r}"));
        std::fs::remove_file(&path).map_err(|source| IndexError::Io { path, source })?;
    }
    Ok(())
}

/// Writes `tmp/name`: the ids `0..n` sorted by `key` (then by id) as [`sort_ids`] does;
/// for an extension (`old`: the old index's first new id and its sorted ids), the old
/// sorted ids merged with the new ids sorted: the same bytes.
///
/// # Errors
/// I/O errors writing the runs or the file.
fn write_sorted<'a>(
    tmp: &Path,
    name: &str,
    old: Option<(u32, &Col)>,
    n: u32,
    key: &impl Fn(u32) -> &'a [u8],
    per_id: u64,
    chunk_bytes: u64,
) -> Result<(), IndexError> {
    let Some((first_new, old_sorted)) = old else {
        return sort_ids(0..n, key, per_id, chunk_bytes, tmp, name);
    };
    let scratch = format!(".new_{name}");
    sort_ids(first_new..n, key, per_id, chunk_bytes, tmp, &scratch)?;
    let new = Col::open(&tmp.join(&scratch), 4)?;
    extend::merge_sorted(tmp, name, old_sorted, &new, key)?;
    drop(new);
    let path = tmp.join(scratch);
    std::fs::remove_file(&path).map_err(|source| IndexError::Io { path, source })
}

/// Address string → id while the index is built: 256 open-addressing tables (linear
/// probing, each at most 3/4 full) chosen by 8 bits of the address's hash, 8 bytes a slot
/// (a 32-bit tag from the hash and the id): 11–21 bytes per address, and growing one
/// table at a time costs 1/256 of the whole, not a second copy of it. The strings
/// themselves are only in the file-backed `addr_str`, and a tag match is always checked
/// against the stored string, so two addresses are never merged by a hash collision.
struct AddrTable {
    shards: Vec<Shard>,
}

/// One of [`AddrTable`]'s tables.
struct Shard {
    slots: Vec<u64>,
    len: usize,
}

impl AddrTable {
    const EMPTY: u64 = u64::MAX;
    const SHARDS: usize = 256;

    /// A table for about `n` addresses (in all shards) before it first grows, holding only
    /// the addresses of the shards in `shards` (the others are empty and must not be
    /// asked).
    fn for_shards(shards: std::ops::Range<usize>, n: usize) -> AddrTable {
        let cap = (n.saturating_mul(4) / 3 / Self::SHARDS)
            .max(64)
            .next_power_of_two();
        AddrTable {
            shards: (0..Self::SHARDS)
                .map(|k| Shard {
                    slots: if shards.contains(&k) {
                        vec![Self::EMPTY; cap]
                    } else {
                        Vec::new()
                    },
                    len: 0,
                })
                .collect(),
        }
    }

    /// Bytes of slots held.
    fn heap_bytes(&self) -> u64 {
        self.shards.iter().map(|s| n64(s.slots.len()) * 8).sum()
    }

    /// The hash of an address: bits 0–23 place it in its table, bits 24–31 choose the
    /// table, bits 32–63 are its tag.
    fn hash(s: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x6368_6169_6e74_7261).hash_one(s)
    }

    fn shard(h: u64) -> usize {
        usize::from((h >> 24) as u8)
    }

    /// The id of `s`, whose [`AddrTable::hash`] is `h`; `stored(id)` is the string of an id.
    fn find<'a>(&self, h: u64, s: &[u8], stored: impl Fn(u32) -> &'a [u8]) -> Option<u32> {
        let slots = &self.shards[Self::shard(h)].slots;
        let (mask, tag) = (slots.len() - 1, h >> 32);
        let mut pos = usize::try_from(h).unwrap_or(usize::MAX) & mask;
        loop {
            let slot = slots[pos];
            if slot == Self::EMPTY {
                return None;
            }
            let id = n32(slot & 0xffff_ffff);
            if slot >> 32 == tag && stored(id) == s {
                return Some(id);
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Adds the address of hash `h` (not present) with `id`; growing a table re-reads its
    /// stored strings.
    fn insert<'a>(&mut self, h: u64, id: u32, stored: impl Fn(u32) -> &'a [u8]) {
        let shard = &mut self.shards[Self::shard(h)];
        if (shard.len + 1) * 4 > shard.slots.len() * 3 {
            let grown = vec![Self::EMPTY; 2 * shard.slots.len()];
            let old = std::mem::replace(&mut shard.slots, grown);
            for slot in old.into_iter().filter(|&x| x != Self::EMPTY) {
                let id = n32(slot & 0xffff_ffff);
                Self::place(&mut shard.slots, Self::hash(stored(id)), id);
            }
        }
        Self::place(&mut shard.slots, h, id);
        shard.len += 1;
    }

    fn place(slots: &mut [u64], h: u64, id: u32) {
        let mask = slots.len() - 1;
        let mut pos = usize::try_from(h).unwrap_or(usize::MAX) & mask;
        while slots[pos] != Self::EMPTY {
            pos = (pos + 1) & mask;
        }
        slots[pos] = (h >> 32) << 32 | u64::from(id);
    }
}

/// Builds the index of `chain_dir` into `index/` (via a temporary directory renamed into
/// place, so a killed build leaves the old index or none).
/// Builds the index of `chain_dir` from the dataset `manifest` (whose file has sha256
/// `manifest_sha`) within `budget` bytes; with a `base`, extends the old index by the rows
/// it lacks instead ([`extend`]), to the same bytes.
fn build(
    chain_dir: &Path,
    manifest_sha: &str,
    manifest: &Manifest,
    budget: u64,
    base: Option<extend::Base>,
) -> Result<Built, IndexError> {
    // Half the budget for the address table, an eighth for a sort's run of ids.
    let table_budget = budget / 2;
    let network = manifest.network.clone();
    let first_height = manifest.ranges.first().map_or(0, |r| r[0]);
    // A neighbourhood holds only some transactions: any input may spend from outside it.
    let sparse = manifest.neighbourhood.is_some();
    let incons = |what: String| IndexError::Inconsistent {
        dir: chain_dir.to_path_buf(),
        what,
    };

    // The files are written into a temporary directory renamed into place at the end.
    let final_dir = chain_dir.join("index");
    let tmp = chain_dir.join(".index.building");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|source| IndexError::Io {
            path: tmp.clone(),
            source,
        })?;
    }
    std::fs::create_dir_all(&tmp).map_err(|source| IndexError::Io {
        path: tmp.clone(),
        source,
    })?;
    // An extension appends to (and updates) copies of the old index's columns, and reads
    // only the rows after the ones it holds.
    if let Some(b) = &base {
        b.copy_into(&tmp)?;
    }
    let old = base.as_ref().map(|b| &b.old);
    let start = |table: &str| {
        base.as_ref()
            .map_or_else(Default::default, |b| b.start(table))
    };
    let (old_tx, old_out, old_in, old_addr) = old.map_or((0, 0, 0, 0), |o| {
        (
            n32(o.meta.txs),
            o.meta.outputs,
            o.meta.inputs,
            n32(o.meta.addresses),
        )
    });
    // The last height the old index holds: the new rows are all above it.
    let old_tip = old
        .filter(|o| o.meta.txs > 0)
        .map(|o| o.tx_height.get(ix(o.meta.txs) - 1));
    let open = |name: &str| {
        if base.is_some() {
            Writer::append(&tmp, name)
        } else {
            Writer::create(&tmp, name)
        }
    };

    // Transactions: txid, height and counts, in chain order, straight to their files.
    let (mut w_txid, mut w_height) = (open("tx_txid")?, open("tx_height")?);
    let (mut w_out_start, mut w_in_start) = (open("tx_out_start")?, open("tx_in_start")?);
    let (mut n_tx, mut n_out, mut n_in) = (ix(old_tx), old_out, old_in);
    if base.is_none() {
        w_out_start.put(&0u64.to_le_bytes())?;
        w_in_start.put(&0u64.to_le_bytes())?;
    }
    scan_table_from(
        chain_dir,
        "transactions",
        &["height", "txid", "n_inputs", "n_outputs"],
        start("transactions"),
        |b| {
            let h = b
                .column_by_name("height")
                .expect("checked against the table registry")
                .as_primitive::<UInt32Type>();
            let t = b
                .column_by_name("txid")
                .expect("checked against the table registry")
                .as_string::<i32>();
            let ni = b
                .column_by_name("n_inputs")
                .expect("checked against the table registry")
                .as_primitive::<UInt32Type>();
            let no = b
                .column_by_name("n_outputs")
                .expect("checked against the table registry")
                .as_primitive::<UInt32Type>();
            for i in 0..b.num_rows() {
                if old_tip.is_some_and(|tip| u64::from(h.value(i)) <= tip) {
                    return Err(incons(format!(
                        "transaction {} at height {} is below the indexed tip",
                        t.value(i),
                        h.value(i)
                    )));
                }
                w_txid.put(&hex_txid(t.value(i), chain_dir)?)?;
                w_height.put(&h.value(i).to_le_bytes())?;
                n_out += u64::from(no.value(i));
                n_in += u64::from(ni.value(i));
                w_out_start.put(&n_out.to_le_bytes())?;
                w_in_start.put(&n_in.to_le_bytes())?;
                n_tx += 1;
            }
            Ok(())
        },
    )?;
    let n_tx = checked_u32(n_tx, "transactions")?;
    for w in [w_txid, w_height, w_out_start, w_in_start] {
        w.finish()?;
    }
    let txids = Col::open(&tmp.join("tx_txid"), 32)?;
    let out_start = Col::open(&tmp.join("tx_out_start"), 8)?;
    let in_start = Col::open(&tmp.join("tx_in_start"), 8)?;
    let txid_at = |t: u32| -> &[u8] { txids.raw(ix(t)) };
    // Outputs: address interning in first-appearance order. The per-output columns go
    // straight to their files; the address columns are file-backed arrays grown as
    // addresses come (cut to size at the end); in memory there is only the compact address
    // table (8 bytes a slot, [`AddrTable`]).
    //
    // The table is kept within half the memory budget ([`crate::memory`]): each pass over
    // the outputs interns only the addresses of some of its 256 shards (by hash), as many
    // as fit, and gives them pass-order ids. With more than one pass, the passes' addresses
    // (each pass's in first-appearance order) are merged by their first output into the
    // same first-appearance ids a single pass gives, so the files are the same bytes
    // whatever the budget.
    let n_out_us = ix(n_out);
    // The outputs to intern (an extension's are the new ones; their old addresses keep
    // their ids, looked up in the old index).
    let new_outs = n_out_us - ix(old_out);
    // Before the first pass: at most one address per output, slots at most 8/3 per address.
    let mut shard_bytes = (n64(new_outs) * 8 * 8 / 3 / n64(AddrTable::SHARDS)).max(1);
    let shards_fitting = |per_shard: u64, left: usize| {
        usize::try_from(table_budget / per_shard.max(1))
            .unwrap_or(usize::MAX)
            .clamp(1, left)
    };
    // (An extension is only tried when its table fits one pass: [`extend::base_for`].)
    let first_pass_shards = if base.is_some() {
        AddrTable::SHARDS
    } else {
        shards_fitting(shard_bytes, AddrTable::SHARDS)
    };
    let one_pass = first_pass_shards == AddrTable::SHARDS;
    // In pass order (the final files when there is one pass).
    let name = |final_name: &'static str| {
        if one_pass {
            final_name.to_string()
        } else {
            format!(".pass_{final_name}")
        }
    };
    let (mut w_value, mut w_type, mut w_out_tx) =
        (open("out_value")?, open("out_type")?, open("out_tx")?);
    // The address arrays start for an address per 4 outputs and grow (by half) as needed.
    let guess = new_outs / 4 + 1;
    let (mut n_addr, mut str_len) = (old_addr, old.map_or(0, extend::str_len));
    let (mut addr_str, mut addr_start, mut addr_first_tx, mut addr_n_recv, mut out_pid);
    if base.is_some() {
        let a = ix(old_addr);
        addr_str = MapArray::extend_from(&tmp, "addr_str", str_len, str_len, 1, 0)?;
        addr_start = MapArray::extend_from(&tmp, "addr_str_start", a + 1, a + 1, 8, 0)?;
        addr_first_tx = MapArray::extend_from(&tmp, "addr_first_tx", a, a, 4, 0)?;
        addr_n_recv = MapArray::extend_from(&tmp, "addr_n_recv", a, a, 4, 0)?;
        out_pid = MapArray::extend_from(&tmp, "out_addr", ix(old_out), n_out_us, 4, 0xff)?;
    } else {
        addr_str = MapArray::create(&tmp, &name("addr_str"), guess * 40, 1, 0)?;
        addr_start = MapArray::create(&tmp, &name("addr_str_start"), guess + 1, 8, 0)?;
        addr_first_tx = MapArray::create(&tmp, &name("addr_first_tx"), guess, 4, 0)?;
        addr_n_recv = MapArray::create(&tmp, &name("addr_n_recv"), guess, 4, 0)?;
        // Each output's address id (pass order), NONE32 for none.
        out_pid = MapArray::create(&tmp, &name("out_addr"), n_out_us, 4, 0xff)?;
    }
    // Each address's first output, to merge the passes.
    let mut first_out = if one_pass {
        None
    } else {
        Some(MapArray::create(&tmp, ".pass_first_out", guess, 8, 0)?)
    };
    // The first pass id of each pass.
    let mut pass_base: Vec<u32> = Vec::new();
    let mut from_shard = 0;
    while from_shard < AddrTable::SHARDS {
        let shards = if pass_base.is_empty() {
            first_pass_shards
        } else {
            shards_fitting(shard_bytes, AddrTable::SHARDS - from_shard)
        };
        let in_pass = from_shard..from_shard + shards;
        let first = pass_base.is_empty();
        pass_base.push(n_addr);
        let mut table = AddrTable::for_shards(in_pass.clone(), new_outs / 4);
        let (mut outs_seen, mut cur_tx) = (old_out, old_tx);
        let columns: &[&str] = if first {
            &["txid", "vout", "value", "script_type", "address"]
        } else {
            &["address"]
        };
        scan_table_from(chain_dir, "outputs", columns, start("outputs"), |b| {
            let a = b
                .column_by_name("address")
                .expect("checked against the table registry")
                .as_string::<i32>();
            let checked = first.then(|| {
                let c = |n: &str| {
                    b.column_by_name(n)
                        .expect("checked against the table registry")
                };
                (
                    c("txid").as_string::<i32>(),
                    c("vout").as_primitive::<UInt32Type>(),
                    c("value").as_primitive::<arrow_array::types::Int64Type>(),
                    c("script_type").as_string::<i32>(),
                )
            });
            for i in 0..b.num_rows() {
                let o = outs_seen;
                outs_seen += 1;
                while cur_tx < n_tx && out_start.get(ix(cur_tx) + 1) <= o {
                    cur_tx += 1;
                }
                let tx = cur_tx;
                if let Some((t, vout, v, st)) = checked {
                    if tx >= n_tx || o - out_start.get(ix(tx)) != u64::from(vout.value(i)) {
                        return Err(incons(format!(
                            "output {} of {} is out of order",
                            vout.value(i),
                            t.value(i)
                        )));
                    }
                    w_value.put(
                        &u64::try_from(v.value(i))
                            .map_err(|_| incons("a negative output value".into()))?
                            .to_le_bytes(),
                    )?;
                    let code = ScriptType::from_name(st.value(i))
                        .ok_or_else(|| incons(format!("unknown script type {:?}", st.value(i))))?;
                    w_type.put(&[code as u8])?;
                    w_out_tx.put(&tx.to_le_bytes())?;
                    if a.is_valid(i) && a.value(i).len() > MAX_ADDRESS_LEN {
                        return Err(incons(format!(
                            "address {:?} is longer than {MAX_ADDRESS_LEN} bytes",
                            a.value(i)
                        )));
                    }
                }
                if a.is_null(i) {
                    continue;
                }
                let s = a.value(i).as_bytes();
                let h = AddrTable::hash(s);
                if !in_pass.contains(&AddrTable::shard(h)) {
                    continue;
                }
                let stored = |id: u32| {
                    let (from, to) = (addr_start.get(ix(id)), addr_start.get(ix(id) + 1));
                    &addr_str.bytes()[ix(from)..ix(to)]
                };
                let id = match table
                    .find(h, s, stored)
                    .or_else(|| old.and_then(|o| o.address_id_of_bytes(s)).map(|a| a.0))
                {
                    Some(id) => id,
                    None => {
                        let id = n_addr;
                        n_addr = checked_u32(ix(n_addr) + 1, "addresses")?;
                        addr_str.reserve(str_len + s.len())?;
                        addr_start.reserve(ix(n_addr) + 1)?;
                        addr_first_tx.reserve(ix(n_addr))?;
                        addr_n_recv.reserve(ix(n_addr))?;
                        addr_str.bytes_mut()[str_len..str_len + s.len()].copy_from_slice(s);
                        str_len += s.len();
                        addr_start.set(ix(id) + 1, n64(str_len));
                        addr_first_tx.set(ix(id), u64::from(tx));
                        if let Some(f) = &mut first_out {
                            f.reserve(ix(n_addr))?;
                            f.set(ix(id), o);
                        }
                        let stored = |id: u32| {
                            let (from, to) = (addr_start.get(ix(id)), addr_start.get(ix(id) + 1));
                            &addr_str.bytes()[ix(from)..ix(to)]
                        };
                        table.insert(h, id, stored);
                        id
                    }
                };
                addr_n_recv.set(ix(id), addr_n_recv.get(ix(id)) + 1);
                out_pid.set(ix(o), u64::from(id));
            }
            Ok(())
        })?;
        if outs_seen != n_out {
            return Err(incons(format!(
                "transactions count {n_out} outputs, the outputs table has {outs_seen}"
            )));
        }
        // The next passes take as many shards as the measured ones say fit.
        shard_bytes = (table.heap_bytes() / n64(shards)).max(1);
        from_shard = in_pass.end;
    }
    let passes = pass_base.len();
    for w in [w_value, w_type, w_out_tx] {
        w.finish()?;
    }
    if let Some(first_out) = first_out {
        // Merge the passes (each in first-appearance order) by first output; `perm` maps
        // pass ids to first-appearance ids.
        pass_base.push(n_addr);
        let n = ix(n_addr);
        let mut perm = MapArray::create(&tmp, ".pass_perm", n, 4, 0)?;
        let mut f_str = MapArray::create(&tmp, "addr_str", str_len, 1, 0)?;
        let mut f_start = MapArray::create(&tmp, "addr_str_start", n + 1, 8, 0)?;
        let mut f_first_tx = MapArray::create(&tmp, "addr_first_tx", n, 4, 0)?;
        let mut f_n_recv = MapArray::create(&tmp, "addr_n_recv", n, 4, 0)?;
        let mut heads: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u32, u32)>> = pass_base
            .windows(2)
            .filter(|w| w[0] < w[1])
            .map(|w| std::cmp::Reverse((first_out.get(ix(w[0])), w[0], w[1])))
            .collect();
        let (mut k, mut at) = (0usize, 0usize);
        while let Some(std::cmp::Reverse((_, pid, end))) = heads.pop() {
            let p = ix(pid);
            perm.set(p, n64(k));
            let (from, to) = (ix(addr_start.get(p)), ix(addr_start.get(p + 1)));
            f_str.bytes_mut()[at..at + to - from].copy_from_slice(&addr_str.bytes()[from..to]);
            at += to - from;
            f_start.set(k + 1, n64(at));
            f_first_tx.set(k, addr_first_tx.get(p));
            f_n_recv.set(k, addr_n_recv.get(p));
            k += 1;
            if pid + 1 < end {
                heads.push(std::cmp::Reverse((first_out.get(p + 1), pid + 1, end)));
            }
        }
        for scratch in [addr_str, addr_start, addr_first_tx, addr_n_recv, first_out] {
            scratch.remove()?;
        }
        (addr_str, addr_start, addr_first_tx, addr_n_recv) = (f_str, f_start, f_first_tx, f_n_recv);
        let mut w_out_addr = Writer::create(&tmp, "out_addr")?;
        for o in 0..n_out_us {
            let pid = out_pid.get(o);
            let id = if pid == u64::from(NONE32) {
                NONE32
            } else {
                n32(perm.get(ix(pid)))
            };
            w_out_addr.put(&id.to_le_bytes())?;
        }
        w_out_addr.finish()?;
        out_pid.remove()?;
        perm.remove()?;
    } else {
        out_pid.finish(n_out_us)?;
    }
    let out_addr = Col::open(&tmp.join("out_addr"), 4)?;

    // (After the outputs, so the address table and this are never in memory together.)
    // Transaction ids sorted by txid: the lookup structure (4 bytes per transaction, no
    // hash map) and a file of the index.
    write_sorted(
        &tmp,
        "txid_sorted",
        old.map(|o| (old_tx, &o.txid_sorted)),
        n_tx,
        &txid_at,
        32 + 4,
        budget / 8,
    )?;
    let txid_sorted: Vec<u32> = {
        let c = Col::open(&tmp.join("txid_sorted"), 4)?;
        (0..c.len()).map(|i| n32(c.get(i))).collect()
    };
    // The transaction a spend of `txid` by transaction `spender` refers to. With BIP 30
    // duplicates, the latest one before the spender (the earlier one's outputs were
    // overwritten, as in the UTXO set).
    let tx_of = |txid: &[u8; 32], spender: u32| -> Option<u32> {
        let lo = first_not_below(&txid_sorted, &txid_at, txid);
        txid_sorted[lo..]
            .iter()
            .copied()
            .take_while(|&t| txid_at(t) == &txid[..])
            .filter(|&t| t < spender)
            .max()
    };

    // Inputs: link each to the output it spends.
    let (mut w_in_prev, mut w_in_tx) = (open("in_prev")?, open("in_tx")?);
    let mut out_spent_by = if base.is_some() {
        MapArray::extend_from(&tmp, "out_spent_by", ix(old_out), n_out_us, 8, 0xff)?
    } else {
        MapArray::create(&tmp, "out_spent_by", n_out_us, 8, 0xff)?
    };
    let (mut ins_seen, mut cur_tx) = (old_in, old_tx);
    // Outputs spent from before a height window.
    let (
        mut before_txid,
        mut before_vout,
        mut before_value,
        mut before_addr_start,
        mut before_addr,
    ) = old.map_or_else(
        || (Vec::new(), Vec::new(), Vec::new(), vec![0u64], Vec::new()),
        extend::before_rows,
    );
    scan_table_from(
        chain_dir,
        "inputs",
        // Values and addresses of inputs are only needed for those spending from outside a
        // window or neighbourhood: a whole chain's index does not decode them.
        if first_height > 0 || sparse {
            &["txid", "prev_txid", "prev_vout", "value", "address"]
        } else {
            &["txid", "prev_txid", "prev_vout"]
        },
        start("inputs"),
        |b| {
            let pt = b
                .column_by_name("prev_txid")
                .expect("checked against the table registry")
                .as_string::<i32>();
            let pv = b
                .column_by_name("prev_vout")
                .expect("checked against the table registry")
                .as_primitive::<UInt32Type>();
            let value = b
                .column_by_name("value")
                .map(|c| c.as_primitive::<arrow_array::types::Int64Type>());
            let address = b.column_by_name("address").map(|c| c.as_string::<i32>());
            for i in 0..b.num_rows() {
                let idx = ins_seen;
                ins_seen += 1;
                while cur_tx < n_tx && in_start.get(ix(cur_tx) + 1) <= idx {
                    cur_tx += 1;
                }
                w_in_tx.put(&cur_tx.to_le_bytes())?;
                if pt.is_null(i) {
                    w_in_prev.put(&NONE64.to_le_bytes())?;
                    continue;
                }
                let prev = hex_txid(pt.value(i), chain_dir)?;
                let Some(pt_id) = tx_of(&prev, cur_tx) else {
                    // A window's inputs may spend outputs from before it.
                    if let (Some(value), Some(address)) = (value, address) {
                        let v = value.is_valid(i).then(|| value.value(i));
                        let Some(v) = v.and_then(|v| u64::try_from(v).ok()) else {
                            return Err(incons(format!(
                                "input spending {}:{} from before the window has no value",
                                pt.value(i),
                                pv.value(i)
                            )));
                        };
                        w_in_prev.put(&(BEFORE_BASE + n64(before_value.len())).to_le_bytes())?;
                        before_txid.push(prev);
                        before_vout.push(pv.value(i));
                        before_value.push(v);
                        if address.is_valid(i) {
                            before_addr.extend_from_slice(address.value(i).as_bytes());
                        }
                        before_addr_start.push(n64(before_addr.len()));
                        continue;
                    }
                    return Err(incons(format!(
                        "input spends {}, which is not in the dataset (it starts at genesis, so it should be): ingest the range again",
                        pt.value(i)
                    )));
                };
                let o = out_start.get(ix(pt_id)) + u64::from(pv.value(i));
                if o >= out_start.get(ix(pt_id) + 1) {
                    return Err(incons(format!(
                        "input spends {}:{} which does not exist",
                        pt.value(i),
                        pv.value(i)
                    )));
                }
                out_spent_by.set(ix(o), idx);
                w_in_prev.put(&o.to_le_bytes())?;
            }
            Ok(())
        },
    )?;
    if ins_seen != n_in {
        return Err(incons(format!(
            "transactions count {n_in} inputs, the inputs table has {ins_seen}"
        )));
    }
    drop(txid_sorted);
    for w in [w_in_prev, w_in_tx] {
        w.finish()?;
    }
    out_spent_by.finish(n_out_us)?;

    // Address ids sorted by their strings: the lookup structure of `address_id`.
    {
        let addr_of = |id: u32| {
            let (from, to) = (addr_start.get(ix(id)), addr_start.get(ix(id) + 1));
            &addr_str.bytes()[ix(from)..ix(to)]
        };
        // Per address: its string, its start offset (8) and its id (4).
        let per_id = n64(str_len) / u64::from(n_addr.max(1)) + 12;
        write_sorted(
            &tmp,
            "addr_sorted",
            old.map(|o| (old_addr, &o.addr_sorted)),
            n_addr,
            &addr_of,
            per_id,
            budget / 8,
        )?;
    }
    addr_str.finish(str_len)?;
    addr_start.finish(ix(n_addr) + 1)?;
    addr_first_tx.finish(ix(n_addr))?;
    write_bytes(&tmp, "before_txid", before_txid.as_flattened())?;
    write_u32s(&tmp, "before_vout", &before_vout)?;
    write_u64s(&tmp, "before_value", &before_value)?;
    write_u64s(&tmp, "before_addr_start", &before_addr_start)?;
    write_bytes(&tmp, "before_addr", &before_addr)?;
    // Address → the outputs paying it (compressed sparse rows, in chain order): an
    // address's outputs without a scan of every output.
    let mut w_addr_out_start = Writer::create(&tmp, "addr_out_start")?;
    let mut fill = MapArray::create(&tmp, ".addr_fill", ix(n_addr), 8, 0)?;
    let mut total = 0u64;
    w_addr_out_start.put(&0u64.to_le_bytes())?;
    for a in 0..ix(n_addr) {
        fill.set(a, total);
        total += addr_n_recv.get(a);
        w_addr_out_start.put(&total.to_le_bytes())?;
    }
    w_addr_out_start.finish()?;
    addr_n_recv.finish(ix(n_addr))?;
    let mut addr_outs = MapArray::create(&tmp, "addr_outs", ix(total), 8, 0)?;
    for o in 0..n_out_us {
        let a = out_addr.get(o);
        if a != u64::from(NONE32) {
            let at = fill.get(ix(a));
            addr_outs.set(ix(at), n64(o));
            fill.set(ix(a), at + 1);
        }
    }
    addr_outs.finish(ix(total))?;
    fill.remove()?;
    // Block times by height (0 for heights the dataset lacks).
    let mut block_time: Vec<u32> = Vec::new();
    scan_table(chain_dir, "blocks", &["height", "time"], |b| {
        let h = b
            .column_by_name("height")
            .expect("checked against the table registry")
            .as_primitive::<UInt32Type>();
        let t = b
            .column_by_name("time")
            .expect("checked against the table registry")
            .as_primitive::<arrow_array::types::TimestampMillisecondType>();
        for i in 0..b.num_rows() {
            let hi = ix(h.value(i));
            if block_time.len() <= hi {
                block_time.resize(hi + 1, 0);
            }
            block_time[hi] = u32::try_from(t.value(i) / 1000).unwrap_or(0);
        }
        Ok(())
    })?;
    write_u32s(&tmp, "block_time", &block_time)?;
    let meta = IndexMeta {
        format_version: INDEX_FORMAT,
        manifest_sha256: manifest_sha.to_string(),
        network,
        txs: u64::from(n_tx),
        outputs: n_out,
        inputs: n_in,
        addresses: u64::from(n_addr),
        // Bitcoin heights are u32 (a larger one is a damaged manifest).
        first_height: n32(first_height),
        before: n64(before_value.len()),
        indexed: Indexed::of(manifest),
        files_sha256: FILES
            .iter()
            .map(|(name, _)| Ok((name.to_string(), sink::sha256_file(&tmp.join(name))?)))
            .collect::<Result<_, IndexError>>()?,
    };
    let meta_bytes = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    std::fs::write(tmp.join("meta.json"), meta_bytes).map_err(|source| IndexError::Io {
        path: tmp.join("meta.json"),
        source,
    })?;
    let extended_from = old.map(|o| o.meta.txs);
    // The old index's maps go before its directory does.
    drop(base);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|source| IndexError::Io {
            path: final_dir.clone(),
            source,
        })?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|source| IndexError::Io {
        path: final_dir.clone(),
        source,
    })?;
    Ok(Built {
        passes,
        extended_from,
        not_extended: None,
    })
}

/// The OS lock on `chain_dir/_index.lock`, waited for: held while the index is built
/// (released when the file is closed, or when the process ends however it ends).
fn build_lock(chain_dir: &Path) -> Result<File, IndexError> {
    let path = chain_dir.join("_index.lock");
    let io = |source| IndexError::Io {
        path: path.clone(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    f.lock().map_err(io)?;
    Ok(f)
}

impl Index {
    /// The files of the index in `dir` whose sha256 differs from the one recorded when it
    /// was built (or that are missing), each said as "FILE (what)"; empty for a sound index
    /// or one built before the hashes were recorded. Reads every file (seconds for
    /// millions of transactions): for `cluster index --verify` and `case verify`, not for
    /// every load.
    ///
    /// # Errors
    /// An unreadable `meta.json`.
    pub fn damaged_files(dir: &Path) -> Result<Vec<String>, IndexError> {
        let meta_path = dir.join("meta.json");
        let meta: IndexMeta =
            serde_json::from_slice(&std::fs::read(&meta_path).map_err(|source| {
                IndexError::Io {
                    path: meta_path.clone(),
                    source,
                }
            })?)
            .map_err(|e| IndexError::Inconsistent {
                dir: dir.to_path_buf(),
                what: format!("meta.json: {e}"),
            })?;
        Ok(meta
            .files_sha256
            .iter()
            .filter_map(|(name, want)| match sink::sha256_file(&dir.join(name)) {
                Ok(got) if got == *want => None,
                Ok(_) => Some(format!(
                    "{name} (its sha256 is not the one recorded at build)"
                )),
                Err(e) => Some(format!("{name} ({e})")),
            })
            .collect())
    }

    /// Whether another process is building the index of `chain_dir` now (holds the lock
    /// [`Index::open_or_build`] waits for): a caller about to wait can say so.
    #[must_use]
    pub fn being_built(chain_dir: &Path) -> bool {
        let Ok(f) = File::open(chain_dir.join("_index.lock")) else {
            return false;
        };
        matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
}

/// [`build`] with the lock held; with `extend`, an extension of the old index when the
/// dataset only grew since it was built ([`extend::base_for`]).
fn build_locked(
    chain_dir: &Path,
    budget: crate::memory::Budget,
    extend: bool,
) -> Result<Built, IndexError> {
    let sha = sink::sha256_file(&Manifest::path(chain_dir))?;
    let manifest = Manifest::load(chain_dir)?.ok_or_else(|| IndexError::NoDataset {
        dir: chain_dir.to_path_buf(),
    })?;
    // Why an index that was there is not extended (none for a first build or --rebuild).
    let (base, not_extended) = if extend {
        match extend::base_for(chain_dir, &manifest, budget.bytes()) {
            Ok(b) => (Some(b), None),
            Err(why) => (None, why),
        }
    } else {
        (None, None)
    };
    let mut built = match build(chain_dir, &sha, &manifest, budget.bytes(), base) {
        Ok(b) => b,
        Err(e) => {
            // A failed or interrupted build leaves no half-written directory behind (the
            // old index, renamed into place only at the end, is untouched).
            let _ = std::fs::remove_dir_all(chain_dir.join(".index.building"));
            return Err(e);
        }
    };
    built.not_extended = not_extended;
    Ok(built)
}

/// What [`Index::build`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Passes over the outputs to intern their addresses (1 when the address table fits
    /// half the budget).
    pub passes: usize,
    /// For an extension (blocks appended to the dataset), the transactions the old index
    /// held: only the rows after them were read.
    pub extended_from: Option<u64>,
    /// For a build from genesis, why the old index was not extended ("no readable
    /// index", "blocks the index read were replaced (a reorg or a re-ingest)", …).
    pub not_extended: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_their_whole_key_in_memory_and_in_runs() {
        // Keys sharing their first 8 bytes, shorter keys, a duplicate: the order is the
        // keys' (then the ids'), whether sorted at once or in runs merged.
        let keys: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| {
                let mut k = b"bcrt1qab".to_vec();
                k.extend(format!("{}", (i * 7919) % 1013).bytes());
                if i % 5 == 0 {
                    k.truncate(8 + (i as usize % 3));
                }
                k
            })
            .collect();
        let mut want: Vec<u32> = (0..3000).collect();
        want.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]).then(a.cmp(b)));
        let key = |id: u32| keys[id as usize].as_slice();
        let read = |path: &Path| -> Vec<u32> {
            std::fs::read(path)
                .unwrap()
                .chunks(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        for chunk_bytes in [u64::MAX, 1024 * 20] {
            let d = tempfile::tempdir().unwrap();
            sort_ids(0..3000, &key, 20, chunk_bytes, d.path(), "sorted").unwrap();
            assert_eq!(read(&d.path().join("sorted")), want, "chunk {chunk_bytes}");
            // An extension's order: the first 1,700 ids sorted, merged with the rest
            // sorted (duplicate keys across the two: the old id first).
            sort_ids(0..1700, &key, 20, chunk_bytes, d.path(), "old").unwrap();
            let old = Col::open(&d.path().join("old"), 4).unwrap();
            write_sorted(
                d.path(),
                "merged",
                Some((1700, &old)),
                3000,
                &key,
                20,
                chunk_bytes,
            )
            .unwrap();
            assert_eq!(read(&d.path().join("merged")), want, "chunk {chunk_bytes}");
            assert!(!d.path().join(".new_merged").exists());
        }
    }

    /// Writes a two-transaction index by hand: tx 0 (height 0) is a coinbase paying 5000
    /// sat to `bcrt1a`; tx 1 (height 1) spends it and pays 3000 to `bcrt1b` and 1900 back
    /// to `bcrt1a`.
    fn tiny(dir: &Path) {
        let put = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let u64s = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let meta = IndexMeta {
            format_version: INDEX_FORMAT,
            manifest_sha256: "00".into(),
            network: "regtest".into(),
            txs: 2,
            outputs: 3,
            inputs: 2,
            addresses: 2,
            first_height: 0,
            before: 0,
            indexed: None,
            files_sha256: Default::default(),
        };
        put("meta.json", serde_json::to_vec(&meta).unwrap());
        put("tx_txid", [[0x11u8; 32], [0x22u8; 32]].concat());
        put("tx_height", u32s(&[0, 1]));
        put("tx_out_start", u64s(&[0, 1, 3]));
        put("tx_in_start", u64s(&[0, 1, 2]));
        put("out_value", u64s(&[5000, 3000, 1900]));
        put("out_addr", u32s(&[0, 1, 0]));
        put("out_type", vec![3, 3, 3]);
        put("out_tx", u32s(&[0, 1, 1]));
        put("out_spent_by", u64s(&[1, NONE64, NONE64]));
        put("in_prev", u64s(&[NONE64, 0]));
        for empty in ["before_txid", "before_vout", "before_value", "before_addr"] {
            put(empty, Vec::new());
        }
        put("before_addr_start", u64s(&[0]));
        put("in_tx", u32s(&[0, 1]));
        put("addr_str_start", u64s(&[0, 6, 12]));
        put("addr_str", b"bcrt1abcrt1b".to_vec());
        put("addr_first_tx", u32s(&[0, 1]));
        put("addr_n_recv", u32s(&[2, 1]));
        put("addr_sorted", u32s(&[0, 1]));
        put("txid_sorted", u32s(&[0, 1]));
        put("block_time", u32s(&[1000, 1600]));
        put("addr_out_start", u64s(&[0, 2, 3]));
        put("addr_outs", u64s(&[0, 2, 1]));
    }

    /// The interpolation search finds what a binary search finds: present txids, absent
    /// ones between them, duplicates, and keys that are not uniform at all.
    #[test]
    fn txid_search_agrees_with_binary_search() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for skewed in [false, true] {
            let mut txids: Vec<[u8; 32]> = (0..5000)
                .map(|i| {
                    let mut t = [0u8; 32];
                    let k = if skewed { (i % 7) as u64 } else { next() };
                    t[..8].copy_from_slice(&k.to_be_bytes());
                    t[8..16].copy_from_slice(&next().to_be_bytes());
                    t
                })
                .collect();
            txids.push(txids[10]);
            let at = |t: u32| -> &[u8] { &txids[ix(t)] };
            let mut sorted: Vec<u32> = (0..n32(txids.len())).collect();
            sorted.sort_unstable_by(|a, b| at(*a).cmp(at(*b)).then(a.cmp(b)));
            let mut queries: Vec<[u8; 32]> = txids.iter().take(300).copied().collect();
            for _ in 0..300 {
                let mut t = [0u8; 32];
                t[..8].copy_from_slice(&next().to_be_bytes());
                queries.push(t);
            }
            queries.push([0; 32]);
            queries.push([0xff; 32]);
            for q in &queries {
                let want = sorted.partition_point(|&t| at(t) < &q[..]);
                assert_eq!(first_not_below(&sorted, &at, q), want);
            }
        }
    }

    #[test]
    fn a_hand_written_index_answers_every_lookup() {
        let d = tempfile::tempdir().unwrap();
        tiny(d.path());
        let idx = Index::load(d.path()).unwrap();
        assert_eq!((idx.txs(), idx.addresses()), (2, 2));
        assert_eq!(idx.address(AddrIx(1)), "bcrt1b");
        assert_eq!(idx.address_id("bcrt1b"), Some(AddrIx(1)));
        assert_eq!(idx.address_id("bcrt1c"), None);
        assert_eq!(
            idx.address_ids_of(&["bcrt1b", "zz", "bcrt1a", "bcrt1b", "a", "bcrt1c"]),
            vec![
                Some(AddrIx(1)),
                None,
                Some(AddrIx(0)),
                Some(AddrIx(1)),
                None,
                None
            ]
        );
        let txid = |h: &str| h.repeat(32).parse::<bitcoin::Txid>().unwrap();
        assert_eq!(idx.tx_id(&txid("22")), Some(TxIx(1)));
        assert_eq!(idx.tx_id(&txid("33")), None);
        assert_eq!(idx.txid(TxIx(0)), txid("11"));
        assert_eq!(
            idx.outputs_of(TxIx(1)).collect::<Vec<_>>(),
            vec![OutIx(1), OutIx(2)]
        );
        assert_eq!(idx.n_outputs(TxIx(1)), 2);
        // An output number beyond the transaction's is none, not the next one's output.
        assert_eq!(idx.output(TxIx(1), 1), Some(OutIx(2)));
        assert_eq!(idx.output(TxIx(0), 1), None);
        assert!(idx.is_coinbase(TxIx(0)) && !idx.is_coinbase(TxIx(1)));
        assert_eq!(
            idx.spent_outputs(TxIx(1)).collect::<Vec<_>>(),
            vec![OutIx(0)]
        );
        assert_eq!(
            idx.input_addresses(TxIx(1)).collect::<Vec<_>>(),
            vec![AddrIx(0)]
        );
        assert_eq!(idx.out_address(OutIx(2)), Some(AddrIx(0)));
        assert_eq!(idx.value(OutIx(1)), Amount::from_sat(3000));
        assert_eq!(idx.tx_time(TxIx(1)), 1600);
        assert_eq!(idx.out_script_type(OutIx(0)), ScriptType::P2wpkh);
        assert_eq!(
            idx.outputs_paid(AddrIx(0)).collect::<Vec<_>>(),
            vec![OutIx(0), OutIx(2)]
        );
        assert_eq!(
            idx.outputs_paid(AddrIx(1)).collect::<Vec<_>>(),
            vec![OutIx(1)]
        );
    }

    #[test]
    fn a_cut_or_foreign_file_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        tiny(d.path());
        // addr_str one byte short of where its offsets end.
        std::fs::write(d.path().join("addr_str"), b"bcrt1abcrt1").unwrap();
        let e = Index::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("addr_str holds 11 bytes, 12 expected"), "{e}");
        // A block_time that ends before the last transaction's height.
        tiny(d.path());
        std::fs::write(d.path().join("block_time"), 1000u32.to_le_bytes()).unwrap();
        let e = Index::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("block_time holds 1 heights"), "{e}");
        // Another index's out_value (4 outputs).
        tiny(d.path());
        std::fs::write(d.path().join("out_value"), [0u8; 32]).unwrap();
        assert!(Index::load(d.path()).is_err());
    }
}
