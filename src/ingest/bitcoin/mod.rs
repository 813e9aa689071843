//! Bitcoin ingest: a Bitcoin Core blocks directory into the Parquet dataset.
//!
//! Stages: choose the best chain ([`chain`]), read raw blocks in chain order, decode them in
//! parallel ([`decode`], rayon), then resolve inputs against the UTXO set in chain order
//! ([`rows`], [`utxo`]) and write height-aligned parts ([`crate::store`]).

pub mod blkfile;
pub mod chain;
pub mod decode;
pub mod error;
pub mod esplora;
pub mod leveldb;
pub mod neighbourhood;
pub mod rows;
pub mod rpc;
pub mod rpc_source;
pub mod script;
pub mod utxo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;

use self::blkfile::BlocksDir;
use self::chain::{BestChain, ChainBlock};
use self::decode::{DecodedBlock, decode_block};
pub use self::error::IngestError;
use self::rows::{Counts, Rows};
use self::utxo::UtxoSet;
use crate::store::manifest::{Manifest, Part, PartFile, Reorg, Source};
use crate::store::{StoreError, reader, schema, sink};
use crate::types::{Network, ix, n32, n64};
use bitcoin::Txid;
use bitcoin::hashes::Hash;

/// How to find the best chain in a blocks directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChainSelection {
    /// The block index if `blocks/index` exists, header links otherwise.
    #[default]
    Auto,
    /// Bitcoin Core's LevelDB block index.
    Index,
    /// Scan every record and link headers by previous hash (most work wins).
    HeaderLinks,
}

/// Options of a blocks-directory ingest.
#[derive(Clone, Debug)]
pub struct BlocksDirOptions {
    pub blocks_dir: PathBuf,
    pub chain_selection: ChainSelection,
    /// Where to write and which heights.
    pub range: RangeOptions,
}

impl BlocksDirOptions {
    /// The whole chain of `blocks_dir` into `data_dir`, choosing the chain automatically.
    pub fn new(blocks_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> BlocksDirOptions {
        BlocksDirOptions {
            blocks_dir: blocks_dir.into(),
            chain_selection: ChainSelection::Auto,
            range: RangeOptions::new(data_dir),
        }
    }
}

/// Default blocks per part.
pub const DEFAULT_PART_BLOCKS: u32 = 1000;

/// What an ingest did.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub network: Network,
    pub dataset: PathBuf,
    pub chain_selection: String,
    pub chain_tip_height: u32,
    pub stale_blocks_skipped: usize,
    pub tip: Option<crate::store::manifest::Tip>,
    pub written: Counts,
    pub parts_written: usize,
    pub parts_kept: usize,
    pub parts_removed: usize,
    pub blocks_replayed: u64,
    /// Height of the UTXO snapshot the replay started from, if one was used.
    pub snapshot_height: Option<u32>,
    pub elapsed_secs: f64,
    /// The UTXO set at the run's end: its unspent outputs, its heap, and the bytes of its
    /// records in the scratch file once it passed half the memory budget (0: it stayed on
    /// the heap). `None` when the run kept no set: it wrote nothing, or its source gives
    /// every input's prevout.
    pub utxo_outputs: Option<u64>,
    pub utxo_heap_bytes: Option<u64>,
    pub utxo_spilled_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    /// The reorganisation this run rolled back (the dataset's blocks after `fork_height`
    /// were no longer on the source's best chain, and their parts were replaced), as the
    /// manifest's `reorgs` records it; `None` when there was none.
    pub reorg: Option<crate::store::manifest::Reorg>,
    /// With `from` inside a part: the height the rewritten parts start at, the start of
    /// the part holding `from` (parts are whole: `--from 1234` on parts of 1,000 blocks
    /// rewrites from 1000); `None` without `from`, when `from` starts a part, or when
    /// nothing it covers was written.
    pub rewritten_from: Option<u32>,
    /// With `from` and a `to` inside a part: the height the rewritten parts end at, the
    /// end of the part holding `to` (`--from 0 --to 1234` on parts of 1,000 blocks rewrites
    /// up to 1999); `None` otherwise.
    pub rewritten_to: Option<u32>,
    /// `from` when it is above the source's chain tip: no block of it exists yet, so
    /// nothing was re-ingested.
    pub from_beyond_tip: Option<u32>,
    /// An input problem found after the complete blocks before it were ingested.
    #[serde(serialize_with = "ser_err")]
    pub error: Option<IngestError>,
}

fn ser_err<S: serde::Serializer>(e: &Option<IngestError>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

impl serde::Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Counts", 4)?;
        st.serialize_field("blocks", &self.blocks)?;
        st.serialize_field("transactions", &self.txs)?;
        st.serialize_field("inputs", &self.inputs)?;
        st.serialize_field("outputs", &self.outputs)?;
        st.end()
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Test hook: abort the process at a named point of the `n`-th part commit, to prove that
/// a kill at that point loses nothing. `CHAINTRACE_CRASH_AT=after-stage:2` etc.
fn crash_point(point: &str, part_no: usize) {
    if let Ok(spec) = std::env::var("CHAINTRACE_CRASH_AT")
        && let Some((p, n)) = spec.split_once(':')
        && p == point
        && n.parse() == Ok(part_no)
    {
        std::process::abort();
    }
}

/// Chooses the best chain of an opened blocks directory.
///
/// # Errors
/// See [`chain::from_index`] and [`chain::from_scan`].
pub fn select_chain(
    dir: &BlocksDir,
    how: ChainSelection,
    pb: &ProgressBar,
) -> Result<(BestChain, &'static str), IngestError> {
    let index_dir = dir.dir.join("index");
    let use_index = match how {
        ChainSelection::Auto => chain::index_present(&index_dir),
        ChainSelection::Index => true,
        ChainSelection::HeaderLinks => false,
    };
    if use_index {
        pb.set_message("reading block index");
        Ok((chain::from_index(dir, &index_dir)?, "block-index"))
    } else {
        pb.set_length(n64(dir.files.len()));
        pb.set_message("scanning blk files for headers");
        let c = chain::from_scan(dir, |n| pb.set_position(n64(n)))?;
        Ok((c, "header-links"))
    }
}

/// Ingests a Bitcoin Core blocks directory into `data_dir/<network>/`.
///
/// Parts already in the dataset whose blocks are still on the best chain are kept; the
/// rest up to the tip (or `to`) is written. Every block from genesis is still read to
/// rebuild the UTXO set, because input resolution needs it.
///
/// # Errors
/// Fatal problems (unreadable directory, damaged dataset, unwritable output). Problems of
/// the input found after a complete prefix of the chain was ingested are returned in
/// [`Summary::error`] instead, with that prefix written.
pub fn ingest_blocks_dir(
    opts: &BlocksDirOptions,
    pb: &ProgressBar,
) -> Result<Summary, IngestError> {
    let dir = BlocksDir::open(&opts.blocks_dir)?;
    let (best, selection) = select_chain(&dir, opts.chain_selection, pb)?;
    let source = BlocksDirSource {
        dir,
        location: opts.blocks_dir.display().to_string(),
        selection,
    };
    ingest_chain(&source, best, &opts.range, pb)
}

/// Where to write and which heights (shared by every Bitcoin source).
#[derive(Clone, Debug)]
pub struct RangeOptions {
    pub data_dir: PathBuf,
    /// Re-ingest from this height (rounded down to its part's start), replacing what exists.
    pub from: Option<u32>,
    /// Stop at this height.
    pub to: Option<u32>,
    /// Blocks per part for a new dataset (an existing dataset keeps its own).
    pub part_blocks: u32,
    /// Replace a dataset of another chain (one that diverges from the source more than
    /// [`MAX_REORG_DEPTH`] blocks below its tip) instead of refusing.
    pub replace: bool,
    /// The memory budget (`--memory`; default [`crate::memory::budget`]). The UTXO set
    /// keeps its heap within half of it: past that, its records move to a scratch file in
    /// the dataset's directory ([`UtxoSet::spill_to`]).
    pub memory: crate::memory::Budget,
}

/// The deepest reorganisation an ingest rolls back by itself. A stored chain that leaves
/// the source's best chain deeper than this is another chain (another regtest or simulated
/// world, another node's fork), and the ingest refuses it without `replace`.
pub const MAX_REORG_DEPTH: u32 = 100;

impl RangeOptions {
    /// Every height up to the tip, into `data_dir`, with the default part size.
    pub fn new(data_dir: impl Into<PathBuf>) -> RangeOptions {
        RangeOptions {
            replace: false,
            data_dir: data_dir.into(),
            from: None,
            to: None,
            part_blocks: DEFAULT_PART_BLOCKS,
            memory: crate::memory::budget(),
        }
    }
}

/// The outputs of one earlier transaction that a block spends: `(txid, [(vout, coin)])`.
pub type Prevouts = (Txid, Vec<(u32, utxo::Coin)>);

/// A decoded block with, where the source gives them, the outputs its inputs spend.
#[derive(Debug)]
pub struct Fetched {
    pub block: DecodedBlock,
    /// `(txid, [(vout, coin)])` of every output spent by this block that it did not create
    /// itself; `None` if the source does not give prevouts (resolve against the UTXO set).
    pub prevouts: Option<Vec<Prevouts>>,
}

/// A source of best-chain blocks.
pub trait BlockSource: Sync {
    /// The network the blocks belong to.
    fn network(&self) -> Network;
    /// How the manifest records the source.
    fn manifest_source(&self) -> Source;
    /// Whether blocks come with their prevouts, so no UTXO set needs replaying from genesis.
    fn has_prevouts(&self) -> bool;
    /// Reads and decodes consecutive chain blocks. On a failure, returns the blocks before
    /// it and the error.
    fn fetch(&self, blocks: &[ChainBlock]) -> (Vec<Fetched>, Option<IngestError>);
}

/// Bitcoin Core's blocks directory as a [`BlockSource`].
#[derive(Debug)]
pub struct BlocksDirSource {
    pub dir: BlocksDir,
    pub location: String,
    pub selection: &'static str,
}

impl BlockSource for BlocksDirSource {
    fn network(&self) -> Network {
        self.dir.network
    }
    fn manifest_source(&self) -> Source {
        Source {
            kind: "blocks-dir".into(),
            location: self.location.clone(),
            chain_selection: Some(self.selection.into()),
        }
    }
    fn has_prevouts(&self) -> bool {
        false
    }
    fn fetch(&self, blocks: &[ChainBlock]) -> (Vec<Fetched>, Option<IngestError>) {
        let (decoded, err) = read_and_decode(&self.dir, blocks, self.dir.network);
        (
            decoded
                .into_iter()
                .map(|block| Fetched {
                    block,
                    prevouts: None,
                })
                .collect(),
            err,
        )
    }
}

/// Where an ingest's height window starts (`None`: the whole chain from genesis): with a
/// source that gives prevouts, `--from` on a new dataset, the lower of `--from` and a
/// stored window's start, or the stored window's start without `--from`. A dataset that
/// starts at genesis stays whole (`--from` then re-ingests from there).
pub fn plan_window(
    manifest: Option<&Manifest>,
    from: Option<u32>,
    has_prevouts: bool,
) -> Option<u32> {
    if !has_prevouts {
        return None;
    }
    // Bitcoin parts hold u32 heights (a larger one is a damaged manifest: saturated, it
    // matches no block and the part is rewritten).
    let stored = manifest.and_then(|m| m.parts.iter().map(|p| n32(p.from)).min());
    match (from, stored) {
        (Some(f), None) => Some(f),
        (Some(f), Some(s)) if s > 0 => Some(f.min(s)),
        (None, Some(s)) if s > 0 => Some(s),
        _ => None,
    }
    .filter(|&w| w > 0)
}

/// Ingests the chain `best` from `source` into the dataset (shared by every Bitcoin source).
///
/// # Errors
/// As [`ingest_blocks_dir`].
pub fn ingest_chain(
    source: &dyn BlockSource,
    best: BestChain,
    opts: &RangeOptions,
    pb: &ProgressBar,
) -> Result<Summary, IngestError> {
    let started = Instant::now();
    let network = source.network();
    let chain_dir = opts.data_dir.join(network.as_str());
    let chain: &[ChainBlock] = &best.blocks;
    let chain_tip = chain.last().expect("a chain holds at least genesis").height;
    let source_m = source.manifest_source();
    // How the chain was chosen: the blocks directory says; a node's chain is the node's.
    let selection = source_m.chain_selection.clone().unwrap_or_else(|| {
        if source_m.kind == "esplora" {
            "the API".into()
        } else {
            "node".into()
        }
    });
    if opts.replace && chain_dir.exists() {
        std::fs::remove_dir_all(&chain_dir).map_err(|source| StoreError::Io {
            path: chain_dir.clone(),
            source,
        })?;
    }
    let mut manifest = match Manifest::load(&chain_dir)? {
        Some(m) => {
            if m.neighbourhood.is_some() {
                return Err(IngestError::Neighbourhood { dir: chain_dir });
            }
            if m.chain != "bitcoin" || m.network != network.as_str() {
                return Err(IngestError::NetworkMismatch {
                    dir: chain_dir,
                    found: format!("{}/{}", m.chain, m.network),
                    expected: network,
                });
            }
            m
        }
        None => Manifest::new(
            "bitcoin",
            network.as_str(),
            source_m.clone(),
            opts.part_blocks.max(1),
        ),
    };
    let old_source = std::mem::replace(&mut manifest.source, source_m);
    if manifest.parts.is_empty() {
        manifest.part_blocks = opts.part_blocks.max(1);
    }
    let part_blocks = manifest.part_blocks;
    let old_tip = manifest.tip.clone();

    // Leftovers of a killed run go; what the manifest lists must be intact.
    for table in schema::BITCOIN_TABLES {
        sink::clean_dir(&chain_dir.join(table), &|name| manifest.lists(table, name))?;
    }
    sink::clean_dir(&chain_dir, &|_| true)?; // temporary manifest or snapshot files
    for p in &manifest.parts {
        for (table, f) in &p.files {
            let path = chain_dir.join(table).join(&f.file);
            let ok = std::fs::metadata(&path)
                .map(|m| m.len() == f.bytes)
                .unwrap_or(false);
            if !ok {
                return Err(StoreError::PartDamaged {
                    path,
                    dir: chain_dir.clone(),
                }
                .into());
            }
        }
    }

    let hash_at = |h: u64| chain.get(ix(h)).map(|b| b.hash.to_string());
    let on_chain = |p: &Part| {
        hash_at(p.from).as_ref() == Some(&p.first_hash)
            && hash_at(p.to).as_ref() == Some(&p.last_hash)
    };

    // The height-aligned grid of parts up to the tip.
    // A re-ingested range extends to the end of the existing parts it touches, so
    // replacing a range never loses the heights after it.
    let req_from = opts.from.unwrap_or(0);
    let req_to = opts.to.unwrap_or(chain_tip).min(chain_tip);
    let last = manifest
        .parts
        .iter()
        .filter(|p| on_chain(p) && p.from <= u64::from(req_to) && u64::from(req_from) <= p.to)
        .map(|p| n32(p.to))
        .fold(req_to, u32::max)
        .min(chain_tip);
    // A height window: with a source that gives prevouts (RPC `getblock 3`, Esplora),
    // `--from H` on a new dataset starts exactly there (its first part is the rest of the
    // part grid's cell: `[H, next boundary - 1]`); nothing below it is fetched, and later
    // runs extend it, downward with a lower `--from`. A blocks directory must replay from
    // genesis anyway and writes everything.
    let window = plan_window(Some(&manifest), opts.from, source.has_prevouts());
    let grid: Vec<(u32, u32)> = (0..=last / part_blocks)
        .map(|k| (k * part_blocks, ((k + 1) * part_blocks - 1).min(last)))
        .map(|(f, t)| (window.map_or(f, |w| f.max(w)), t))
        .filter(|&(f, t)| f <= t)
        .collect();
    // `--from` re-ingests (replaces) what it covers; `--to` alone only limits the range.
    // Below a stored window, a lower `--from` only adds the missing parts.
    let stored_window = plan_window(Some(&manifest), None, source.has_prevouts());
    let forced = |f: u32, t: u32| {
        opts.from.is_some()
            && t >= req_from
            && f <= req_to
            && !stored_window.is_some_and(|w| req_from < w && f >= w)
    };
    let to_write: Vec<(u32, u32)> = grid
        .iter()
        .copied()
        .filter(|&(f, t)| {
            forced(f, t)
                || !manifest
                    .parts
                    .iter()
                    .any(|p| p.from == u64::from(f) && p.to == u64::from(t) && on_chain(p))
        })
        .collect();
    let rewritten_from = to_write
        .iter()
        .filter(|&&(f, t)| forced(f, t))
        .map(|&(f, _)| f)
        .min()
        .filter(|&f| f < req_from);
    let rewritten_to = to_write
        .iter()
        .filter(|&&(f, t)| forced(f, t))
        .map(|&(_, t)| t)
        .max()
        .filter(|&t| opts.to.is_some() && t > req_to);
    let overlaps = |p: &Part| {
        to_write
            .iter()
            .any(|&(f, t)| p.from <= u64::from(t) && u64::from(f) <= p.to)
    };
    let (removed, kept): (Vec<Part>, Vec<Part>) = manifest
        .parts
        .drain(..)
        .partition(|p| !on_chain(p) || overlaps(p));
    manifest.parts = kept;
    let parts_kept = manifest.parts.len();
    // Parts whose blocks left the best chain: record the reorganisation they roll back.
    let mut reorged: Vec<&Part> = removed.iter().filter(|p| !on_chain(p)).collect();
    let mut reorg = None;
    reorged.sort_by_key(|p| p.from);
    if let (Some(first), Some(old_tip)) = (reorged.first(), old_tip) {
        let mut fork = first.from.checked_sub(1);
        for p in &reorged {
            let path = chain_dir.join("blocks").join(&p.files["blocks"].file);
            for (h, hash) in reader::block_hashes(&path)? {
                let h = u64::from(h);
                if hash_at(h).as_deref() == Some(hash.as_str()) {
                    fork = Some(fork.map_or(h, |f| f.max(h)));
                }
            }
        }
        let depth = old_tip.height.saturating_sub(fork.unwrap_or(0));
        // Deeper than a reorganisation, or sharing nothing but the genesis block.
        if depth > u64::from(MAX_REORG_DEPTH) || (fork.unwrap_or(0) == 0 && old_tip.height > 1) {
            return Err(IngestError::OtherChain {
                dir: chain_dir.clone(),
                fork_height: fork,
                old_tip_height: old_tip.height,
                old_tip_hash: old_tip.hash.clone(),
                recorded_source: format!("{} {}", old_source.kind, old_source.location),
            });
        }
        let r = Reorg {
            fork_height: fork.unwrap_or(0),
            old_tip,
            removed_parts: reorged
                .iter()
                .map(|p| sink::part_name(p.from, p.to))
                .collect(),
        };
        reorg = Some(r.clone());
        manifest.reorgs.push(r);
    }
    if !removed.is_empty() {
        manifest.save(&chain_dir)?;
        for p in &removed {
            for (table, f) in &p.files {
                let path = chain_dir.join(table).join(&f.file);
                std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
            }
        }
    }

    let mut summary = Summary {
        network,
        dataset: chain_dir.clone(),
        chain_selection: selection,
        chain_tip_height: chain_tip,
        stale_blocks_skipped: best.stale,
        tip: None,
        written: Counts::default(),
        parts_written: 0,
        parts_kept,
        parts_removed: removed.len(),
        blocks_replayed: 0,
        snapshot_height: None,
        elapsed_secs: 0.0,
        utxo_outputs: None,
        utxo_heap_bytes: None,
        utxo_spilled_bytes: None,
        peak_rss_bytes: None,
        reorg,
        rewritten_from,
        rewritten_to,
        from_beyond_tip: opts.from.filter(|&f| f > chain_tip),
        error: best.deferred,
    };

    if let Some(&(_, end)) = to_write.last() {
        // Without prevouts, every block from genesis is replayed through the UTXO set;
        // with them, only the blocks to write are fetched.
        // A UTXO snapshot left by an earlier run saves replaying from genesis.
        let first = to_write[0].0;
        let utxo_limit = opts.memory.bytes() / 2;
        let mut utxo = UtxoSet::new();
        utxo.spill_to(&chain_dir, utxo_limit);
        let mut replay_from = 0u32;
        if !source.has_prevouts()
            && let Some((set, h)) = load_snapshot(&chain_dir, chain, first, utxo_limit)
        {
            utxo = set;
            replay_from = h + 1;
            summary.snapshot_height = Some(h);
        }
        // The next run rewrites the partial part at the tip: snapshot the state before it.
        let (last_from, last_to) = *to_write.last().expect("checked non-empty");
        // Only a run that extends the dataset's end moves the snapshot (a re-ingested
        // range in the middle leaves it where it is).
        let dataset_end = manifest.parts.iter().map(|p| p.to).max();
        let snapshot_at = if dataset_end.is_some_and(|e| e > u64::from(last_to)) {
            None
        } else if last_to - last_from + 1 < part_blocks {
            last_from.checked_sub(1)
        } else {
            Some(last_to)
        };
        let todo: Vec<&[ChainBlock]> = if source.has_prevouts() {
            to_write
                .iter()
                .map(|&(f, t)| &chain[ix(f)..=ix(t)])
                .collect()
        } else {
            vec![&chain[ix(replay_from)..=ix(end)]]
        };
        pb.set_length(todo.iter().map(|c| n64(c.len())).sum());
        pb.set_position(0);
        pb.reset_eta();
        let mut rows = Rows::new(network);
        let mut next_part = 0usize;
        let mut tx_total = 0u64;
        let mut failure: Option<IngestError> = None;
        let mut open: Option<Vec<sink::BackgroundWriter>> = None;
        std::thread::scope(|s| -> Result<(), IngestError> {
            let (send, recv) = mpsc::sync_channel::<Result<Vec<Fetched>, IngestError>>(2);
            s.spawn(move || {
                for chunk in todo.iter().flat_map(|range| range.chunks(64)) {
                    let (decoded, failed) = source.fetch(chunk);
                    if send.send(Ok(decoded)).is_err() {
                        return;
                    }
                    if let Some(e) = failed {
                        let _ = send.send(Err(e));
                        return;
                    }
                }
            });
            for chunk in recv {
                let fetched = match chunk {
                    Ok(b) => b,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                for Fetched { block, prevouts } in &fetched {
                    if crate::ingest::interrupted() {
                        failure = Some(IngestError::Interrupted);
                        break;
                    }
                    let part = to_write.get(next_part).copied();
                    let writing = part.is_some_and(|(f, t)| block.height >= f && block.height <= t);
                    let c = match prevouts {
                        None => Rows::apply(block, &mut utxo, writing.then_some(&mut rows))?,
                        Some(prev) => {
                            // The block's own prevouts stand in for the UTXO set.
                            let mut local = UtxoSet::new();
                            for (txid, coins) in prev {
                                local
                                    .add_tx(txid, coins.iter().cloned())
                                    .map_err(|source| IngestError::UtxoSpill { source })?;
                            }
                            Rows::apply(block, &mut local, writing.then_some(&mut rows))?
                        }
                    };
                    tx_total += c.txs;
                    if !writing {
                        summary.blocks_replayed += 1;
                    }
                    if prevouts.is_none() && Some(block.height) == snapshot_at {
                        save_snapshot(&chain_dir, &utxo, block.height, &block.hash)?;
                    }
                    if let Some((f, t)) = part
                        && writing
                    {
                        let name = sink::part_name(u64::from(f), u64::from(t));
                        if open.is_none() {
                            open = Some(open_part_background(&chain_dir, &name)?);
                        }
                        let writers = open.as_mut().expect("opened above");
                        if rows.buffered_rows() >= FLUSH_ROWS || block.height == t {
                            for (w, batch) in writers.iter_mut().zip(rows.finish()?) {
                                w.write(batch)?;
                            }
                        }
                        if block.height == t {
                            next_part += 1;
                            summary.written += rows.take_counts();
                            let writers = open.take().expect("opened above");
                            commit_part(
                                &chain_dir,
                                &mut manifest,
                                writers,
                                chain,
                                f,
                                t,
                                next_part,
                            )?;
                            summary.parts_written += 1;
                        }
                    }
                    pb.inc(1);
                }
                if failure.is_some() {
                    break;
                }
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "{tx_total} tx ({:.0} tx/s), {} unspent",
                    tx_total as f64 / secs,
                    utxo.len()
                ));
            }
            Ok(())
        })?;
        for w in open.take().into_iter().flatten() {
            w.abandon();
        }
        if !source.has_prevouts() {
            summary.utxo_outputs = Some(utxo.len());
            summary.utxo_heap_bytes = Some(utxo.heap_bytes());
            summary.utxo_spilled_bytes = Some(utxo.spilled_bytes());
        }
        if let Some(e) = failure {
            // A corrupt block: what came before it is written; report the block.
            summary.error = Some(e);
        }
    }
    summary.tip = manifest.tip.clone();
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.peak_rss_bytes = peak_rss_bytes();
    pb.finish_and_clear();
    Ok(summary)
}

/// The manifest's entry for the four staged files of part `name` (blocks, transactions,
/// inputs, outputs, in [`schema::BITCOIN_TABLES`] order).
pub(super) fn part_files_entry(
    name: &str,
    staged: Vec<sink::Staged>,
) -> BTreeMap<String, PartFile> {
    schema::BITCOIN_TABLES
        .iter()
        .zip(staged)
        .map(|(t, s)| {
            (
                t.to_string(),
                PartFile {
                    file: name.to_string(),
                    rows: s.rows,
                    bytes: s.bytes,
                    sha256: s.sha256,
                },
            )
        })
        .collect()
}

/// The results before the first failure, and that failure: what a block source returns
/// (the blocks before a bad one are still written).
pub fn ok_prefix<T, E>(results: Vec<Result<T, E>>) -> (Vec<T>, Option<E>) {
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(v) => out.push(v),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Reads and decodes a chunk of the chain; on a bad block, returns the blocks before it
/// and the error.
fn read_and_decode(
    dir: &BlocksDir,
    chunk: &[ChainBlock],
    network: Network,
) -> (Vec<DecodedBlock>, Option<IngestError>) {
    let mut raws = Vec::with_capacity(chunk.len());
    let mut failed = None;
    for b in chunk {
        match dir.read_block(b.pos.expect("blocks-directory chains record positions")) {
            Ok(raw) => raws.push(raw),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let results: Vec<Result<DecodedBlock, IngestError>> = chunk[..raws.len()]
        .par_iter()
        .zip(raws.par_iter())
        .map(|(b, raw)| {
            decode_block(raw, b.height, Some(b.hash), network).map_err(|p| {
                IngestError::CorruptBlock {
                    hash: b.hash.to_string(),
                    height: b.height,
                    path: dir.display_path(b.pos.map_or(0, |p| p.file)),
                    offset: b.pos.map_or(0, |p| p.data_pos - 8),
                    what: p.to_string(),
                }
            })
        })
        .collect();
    match ok_prefix(results) {
        (decoded, None) => (decoded, failed),
        bad => bad,
    }
}

/// The UTXO snapshot beside the dataset (not part of it: a cache that saves replaying
/// the chain from genesis on the next run of a blocks-directory ingest).
const SNAPSHOT_FILE: &str = "_utxo-snapshot.bin";

/// Loads the snapshot if it is intact, on the current chain and below `first`.
/// The UTXO snapshot of `chain_dir`, if it is whole and on `chain` below `first`: read
/// through a memory map, into a set that spills past `limit` bytes of heap.
fn load_snapshot(
    chain_dir: &Path,
    chain: &[ChainBlock],
    first: u32,
    limit: u64,
) -> Option<(UtxoSet, u32)> {
    let file = std::fs::File::open(chain_dir.join(SNAPSHOT_FILE)).ok()?;
    // SAFETY: the snapshot is replaced by rename, never written in place, so the mapped
    // file does not change while it is read.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let (set, h, hash) = UtxoSet::from_snapshot_spilling(&bytes, Some((chain_dir, limit)))?;
    let on_chain = chain
        .get(ix(h))
        .is_some_and(|b| b.hash.to_byte_array() == hash);
    (on_chain && h < first).then_some((set, h))
}

fn save_snapshot(
    chain_dir: &Path,
    utxo: &UtxoSet,
    height: u32,
    hash: &bitcoin::BlockHash,
) -> Result<(), IngestError> {
    let hash = hash.to_byte_array();
    Ok(sink::write_atomic_with(
        &chain_dir.join(SNAPSHOT_FILE),
        |w| utxo.write_snapshot(w, height, &hash),
    )?)
}

/// Input + output rows buffered before they are written to the open part's files.
const FLUSH_ROWS: usize = 200_000;

/// [`open_part`]'s writers, each on a thread of its own ([`sink::BackgroundWriter`]): the
/// blocks' decoding, the UTXO set and the Arrow builders go on while the last batch is
/// encoded and compressed.
fn open_part_background(
    chain_dir: &Path,
    name: &str,
) -> Result<Vec<sink::BackgroundWriter>, IngestError> {
    Ok(open_part(chain_dir, name)?
        .into_iter()
        .map(sink::BackgroundWriter::spawn)
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn open_part(
    chain_dir: &Path,
    name: &str,
) -> Result<Vec<sink::PartWriter>, IngestError> {
    let schemas = [
        schema::blocks(),
        schema::transactions(),
        schema::inputs(),
        schema::outputs(),
    ];
    let mut writers = Vec::with_capacity(4);
    for (table, schema) in schema::BITCOIN_TABLES.iter().zip(schemas) {
        writers.push(sink::PartWriter::create(
            &chain_dir.join(table).join(name),
            schema,
        )?);
    }
    Ok(writers)
}

fn commit_part(
    chain_dir: &Path,
    manifest: &mut Manifest,
    writers: Vec<sink::BackgroundWriter>,
    chain: &[ChainBlock],
    from: u32,
    to: u32,
    part_no: usize,
) -> Result<(), IngestError> {
    let name = sink::part_name(u64::from(from), u64::from(to));
    let staged = writers
        .into_iter()
        .map(sink::BackgroundWriter::finish)
        .collect::<Result<Vec<_>, _>>()?;
    crash_point("after-stage", part_no);
    sink::commit(&staged)?;
    crash_point("after-commit", part_no);
    let files = part_files_entry(&name, staged);
    manifest.parts.push(Part {
        from: u64::from(from),
        to: u64::from(to),
        first_hash: chain[ix(from)].hash.to_string(),
        last_hash: chain[ix(to)].hash.to_string(),
        files,
    });
    manifest.save(chain_dir)?;
    crash_point("after-manifest", part_no);
    // Test hook: a real SIGINT to this process after the `n`-th commit.
    if std::env::var("CHAINTRACE_SIGINT_AFTER_PART").is_ok_and(|n| n.parse() == Ok(part_no)) {
        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGINT);
    }
    Ok(())
}
