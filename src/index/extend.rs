//! Extending the index of a dataset that grew by appended blocks, instead of rebuilding it
//! from genesis (DESIGN.md §4).
//!
//! The ids are dense and in chain order (addresses in order of first appearance), so the
//! blocks above the indexed tip only add ids after the old ones: the new transactions,
//! outputs and inputs are appended to copies of the old columns, old outputs they spend
//! get their spender, old addresses they pay get their counts, and the two sorted lookups
//! are the old ones merged with the new ids sorted. The files are the same bytes as a
//! rebuild's (tested), at the cost of reading only the new rows.
//!
//! An extension is only tried when the dataset provably holds the same blocks the index
//! was built from, with more after them ([`base_for`]): the index records the parts it
//! read ([`Indexed`]); every part but its last must be unchanged in the manifest (same
//! heights, hashes, files and row counts), and its last part must be unchanged or have
//! grown with the same block at its old end. Anything else (a reorg, a re-ingested range,
//! a gap, a height window moved) rebuilds.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::{Col, INDEX_FORMAT, Index, IndexError, Writer, wrong_size};
use crate::store::manifest::{Manifest, Part};
use crate::types::{ix, n32};

/// The dataset parts an index was built from (`meta.json`'s `indexed`): enough to tell
/// a dataset that only grew from one that changed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Indexed {
    /// How many parts precede the last one.
    pub parts_before: usize,
    /// sha256 (hex) of those parts' manifest entries as JSON: heights, block hashes, and
    /// each table file's name, rows, bytes and sha256.
    pub parts_before_sha256: String,
    /// The last part, whole.
    pub last_part: Part,
}

impl Indexed {
    /// What `m`'s parts are, `None` for a dataset without parts.
    pub(super) fn of(m: &Manifest) -> Option<Indexed> {
        let (last, before) = m.parts.split_last()?;
        Some(Indexed {
            parts_before: before.len(),
            parts_before_sha256: parts_sha256(before),
            last_part: last.clone(),
        })
    }
}

fn parts_sha256(parts: &[Part]) -> String {
    use bitcoin::hashes::{Hash, sha256};
    let json = serde_json::to_vec(parts).expect("parts serialise");
    sha256::Hash::hash(&json).to_string()
}

/// Rows of the first part read that the old index already holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Skip {
    pub transactions: u64,
    pub outputs: u64,
    pub inputs: u64,
}

/// What an extension starts from: the old index (memory-mapped from `chain_dir/index`),
/// the first part of the manifest with rows it lacks, and how many of that part's rows
/// it has.
pub(super) struct Base {
    pub old: Index,
    pub start_part: usize,
    pub skip: Skip,
}

/// Where scans of an extension start: the part, and the rows of it to pass over.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Start {
    pub part: usize,
    pub rows: u64,
}

impl Base {
    /// Where the scan of `table` starts.
    pub(super) fn start(&self, table: &str) -> Start {
        let rows = match table {
            "transactions" => self.skip.transactions,
            "outputs" => self.skip.outputs,
            "inputs" => self.skip.inputs,
            _ => 0,
        };
        Start {
            part: self.start_part,
            rows,
        }
    }

    /// The old index's files the extension appends to or updates: copied into `tmp`
    /// (the others are written anew).
    pub(super) const COPIED: [&'static str; 15] = [
        "tx_txid",
        "tx_height",
        "tx_out_start",
        "tx_in_start",
        "out_value",
        "out_addr",
        "out_type",
        "out_tx",
        "out_spent_by",
        "in_prev",
        "in_tx",
        "addr_str_start",
        "addr_str",
        "addr_first_tx",
        "addr_n_recv",
    ];

    /// Copies [`Base::COPIED`] from the old index into `tmp`.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub(super) fn copy_into(&self, tmp: &Path) -> Result<(), IndexError> {
        for name in Self::COPIED {
            let (from, to) = (self.old.dir.join(name), tmp.join(name));
            std::fs::copy(&from, &to).map_err(|source| IndexError::Io { path: to, source })?;
        }
        Ok(())
    }
}

/// The base of an extension of `chain_dir`'s index to the dataset `m`, or why the index
/// must be rebuilt instead (`None`: there is no index to extend): another format, an index
/// from before extensions were recorded, a neighbourhood or a dataset with a gap, a part
/// without all four tables, a changed part (a reorg, a re-ingest), or more new outputs
/// than half of `budget` holds in one pass.
pub(super) fn base_for(
    chain_dir: &Path,
    m: &Manifest,
    budget: u64,
) -> Result<Base, Option<String>> {
    if !chain_dir.join("index").join("meta.json").is_file() {
        return Err(None);
    }
    base_or_why(chain_dir, m, budget).map_err(Some)
}

/// [`base_for`] of an index that is there.
fn base_or_why(chain_dir: &Path, m: &Manifest, budget: u64) -> Result<Base, String> {
    let old = Index::load(&chain_dir.join("index"))
        .map_err(|e| format!("the index is unreadable ({e})"))?;
    let meta = &old.meta;
    if meta.format_version != INDEX_FORMAT || wrong_size(&old.dir, meta).is_some() {
        return Err("the index is of another format or damaged".into());
    }
    let indexed = meta
        .indexed
        .as_ref()
        .ok_or("the index does not record the parts it read (an older chaintrace built it)")?;
    // One run of whole blocks from the same first height.
    if m.neighbourhood.is_some()
        || m.ranges.len() != 1
        || m.ranges[0][0] != u64::from(meta.first_height)
    {
        return Err(
            "the dataset is not one run of blocks from the index's first height".to_string(),
        );
    }
    // The scans pass over whole parts by their place in the manifest: every part must hold
    // every table for those places to be the same in each table.
    if m.parts.iter().any(|p| {
        ["blocks", "transactions", "outputs", "inputs"]
            .iter()
            .any(|t| !p.files.contains_key(*t))
    }) {
        return Err("a part of the dataset lacks one of its tables".into());
    }
    let k = indexed.parts_before;
    if m.parts.len() <= k || parts_sha256(&m.parts[..k]) != indexed.parts_before_sha256 {
        return Err("blocks the index read were replaced (a reorg or a re-ingest)".into());
    }
    let (last, now) = (&indexed.last_part, &m.parts[k]);
    let (start_part, skip) = if now == last {
        (k + 1, Skip::default())
    } else if now.from == last.from
        && now.to > last.to
        && block_hash_at(chain_dir, now, last.to).as_deref() == Some(last.last_hash.as_str())
    {
        let rows = |t: &str| last.files.get(t).map_or(0, |f| f.rows);
        (
            k,
            Skip {
                transactions: rows("transactions"),
                outputs: rows("outputs"),
                inputs: rows("inputs"),
            },
        )
    } else {
        return Err("blocks the index read were replaced (a reorg or a re-ingest)".into());
    };
    // The rows before the start are exactly the old index's.
    let rows_to_start = |t: &str, skip: u64| -> u64 {
        m.parts[..start_part.min(k)]
            .iter()
            .map(|p| p.files.get(t).map_or(0, |f| f.rows))
            .sum::<u64>()
            + if start_part > k {
                last.files.get(t).map_or(0, |f| f.rows)
            } else {
                skip
            }
    };
    if rows_to_start("transactions", skip.transactions) != meta.txs
        || rows_to_start("outputs", skip.outputs) != meta.outputs
        || rows_to_start("inputs", skip.inputs) != meta.inputs
    {
        return Err("the dataset's rows before the new blocks are not the index's".into());
    }
    // The new rows' address table (8/3 slots of 8 bytes an output at most) must fit half
    // the budget in one pass, as a rebuild's first pass would.
    let new_outputs = m.parts[start_part..]
        .iter()
        .map(|p| p.files.get("outputs").map_or(0, |f| f.rows))
        .sum::<u64>()
        .saturating_sub(skip.outputs);
    if new_outputs * 8 * 8 / 3 > budget / 2 {
        return Err(format!(
            "the {new_outputs} new outputs' address table does not fit half the memory budget in one pass"
        ));
    }
    Ok(Base {
        old,
        start_part,
        skip,
    })
}

/// The hash of the block at `height` in `part`'s blocks file, `None` when it is not
/// there or cannot be read.
fn block_hash_at(chain_dir: &Path, part: &Part, height: u64) -> Option<String> {
    let file = part.files.get("blocks")?;
    let f = std::fs::File::open(chain_dir.join("blocks").join(&file.file)).ok()?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
    let mask = ProjectionMask::columns(b.parquet_schema(), ["height", "hash"]);
    for batch in b.with_projection(mask).build().ok()? {
        let batch = batch.ok()?;
        let h = batch.column_by_name("height")?.as_primitive::<UInt32Type>();
        let hash = batch.column_by_name("hash")?.as_string::<i32>();
        if let Some(i) = (0..batch.num_rows()).find(|&i| u64::from(h.value(i)) == height) {
            return Some(hash.value(i).to_string());
        }
    }
    None
}

/// Writes `tmp/name`: the old index's sorted ids `old` (all below the new ones) and the
/// new ids `new` (sorted) merged by `key`, an old id first on equal keys: the order
/// [`super::sort_ids`] gives all of them (by key, then by id).
///
/// # Errors
/// I/O errors writing the file.
pub(super) fn merge_sorted<'a>(
    tmp: &Path,
    name: &str,
    old: &Col,
    new: &Col,
    key: &impl Fn(u32) -> &'a [u8],
) -> Result<(), IndexError> {
    let mut w = Writer::create(tmp, name)?;
    let (mut i, mut j) = (0usize, 0usize);
    while i < old.len() || j < new.len() {
        let take_old =
            j == new.len() || (i < old.len() && key(n32(old.get(i))) <= key(n32(new.get(j))));
        let id = if take_old {
            i += 1;
            n32(old.get(i - 1))
        } else {
            j += 1;
            n32(new.get(j - 1))
        };
        w.put(&id.to_le_bytes())?;
    }
    w.finish()
}

/// The old index's outputs spent from before its height window (`before_*` files), as
/// the build holds them: outpoint txids, vouts, values, address offsets and bytes.
pub(super) type BeforeRows = (Vec<[u8; 32]>, Vec<u32>, Vec<u64>, Vec<u64>, Vec<u8>);

/// [`BeforeRows`] of `old`.
pub(super) fn before_rows(old: &Index) -> BeforeRows {
    let k = ix(old.meta.before);
    let txids = (0..k)
        .map(|i| old.before_txid.raw(i).try_into().expect("32 bytes"))
        .collect();
    let vouts = (0..k).map(|i| n32(old.before_vout.get(i))).collect();
    let values = (0..k).map(|i| old.before_value.get(i)).collect();
    let starts = (0..=k).map(|i| old.before_addr_start.get(i)).collect();
    let bytes = old.before_addr.raw_all().to_vec();
    (txids, vouts, values, starts, bytes)
}

/// Bytes of the old index's address strings (the end offset of its last address).
pub(super) fn str_len(old: &Index) -> usize {
    ix(old.addr_str_start.get(ix(old.meta.addresses)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_digest_changes_with_any_field() {
        let p = |to: u64, hash: &str| Part {
            from: 0,
            to,
            first_hash: "00".into(),
            last_hash: hash.into(),
            files: Default::default(),
        };
        let a = parts_sha256(&[p(9, "aa")]);
        assert_eq!(a, parts_sha256(&[p(9, "aa")]));
        assert_ne!(a, parts_sha256(&[p(9, "ab")]));
        assert_ne!(a, parts_sha256(&[p(8, "aa")]));
        assert_ne!(a, parts_sha256(&[]));
    }
}
