//! Address clustering (DESIGN.md §4): union-find over address ids, with each heuristic a
//! separate, switchable unit ([`heuristics`]) that proposes merges per transaction, every
//! merge recorded so that it can be explained.
//!
//! Cluster ids are the smallest address id of the cluster. Address ids follow first
//! appearance on the chain, so ids depend only on the dataset and the heuristic set, not on
//! the order merges are applied (the property tests shuffle it).

pub mod calibration;
pub mod ethereum;
pub mod eval;
pub mod fingerprint;
pub mod heuristics;
pub mod merges;
pub mod union_find;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use serde::Serialize;

use self::heuristics::{Heuristic, TxView};
use self::union_find::UnionFind;
use crate::index::{Index, IndexError};
use crate::store::{StoreError, sink};
use crate::tables::Table;
use crate::types::{AddrIx, TxIx, ix, n32, n64};

/// One proposed merge: two addresses, the transaction and the heuristic behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Merge {
    pub a: u32,
    pub b: u32,
    pub tx: u32,
    pub heuristic: Heuristic,
    /// The rules behind it, as a bit set over [`Heuristic::ALL`]'s positions: the
    /// heuristic itself, or for the consensus the rules that agreed or voted.
    pub because: u16,
}

/// The rules that can be a merge's reason: every heuristic but the consensus, which is
/// last in [`Heuristic::ALL`] (a consensus merge records the rules that agreed or voted,
/// never itself).
const REASONS: usize = Heuristic::ALL.len() - 1;

// A merge is 16 bytes (a whole chain holds about 1.4 an address while clustering): the
// reasons' bit set fits 16 bits while there are at most 16 of them.
const _: () = assert!(
    REASONS <= 16
        && matches!(Heuristic::ALL[REASONS], Heuristic::ChangeVote)
        && std::mem::size_of::<Merge>() == 16
);

/// The bit set of `hs` over the positions of [`Heuristic::ALL`] but the consensus (never
/// a reason: it is left out).
pub fn because_bits(hs: &[Heuristic]) -> u16 {
    hs.iter()
        .filter_map(|h| Heuristic::ALL[..REASONS].iter().position(|x| x == h))
        .fold(0, |acc, i| acc | 1 << i)
}

/// The rules of a bit set made by [`because_bits`], '+'-joined.
pub fn because_names(bits: u16) -> String {
    Heuristic::ALL[..REASONS]
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & 1 << i != 0)
        .map(|(_, h)| h.name())
        .collect::<Vec<_>>()
        .join("+")
}

/// The collapse guard's default size ([`ClusterOptions::max_change_join`]): the largest
/// pairwise recall at pairwise precision ≥ 0.97 on every world measured (docs/CLUSTERING.md).
pub const DEFAULT_HOLD_SIZE: u64 = 20;

/// A merge held back by a [`ClusterOptions`], with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub merge: Merge,
    /// Why: `"size"` (joining two clusters both at or above the guard's size) or
    /// `"labels"` (joining parts labelled with different actors). Only change merges are
    /// held.
    pub reason: &'static str,
    /// The sizes (addresses) of the two parts when it was held.
    pub sizes: (u64, u64),
}

/// Options of clustering. Collapse prevention: merges that would join suspicious parts are
/// held back and listed ([`Clustering::held`]), not applied. BlockSci users report superclusters of 139–256 M
/// addresses once change heuristics are on; a wrong change merge between two large
/// clusters is what makes them.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions<'a> {
    /// Hold a change merge when both parts already hold at least this many addresses.
    /// Multi-input merges are never held for size.
    pub max_change_join: Option<u64>,
    /// Address id → actor: hold a change merge joining parts labelled with different
    /// actors (multi-input merges are applied and warned about, [`conflicts`]).
    pub labels: Option<&'a HashMap<u32, String>>,
    /// Every transaction's wallet fingerprint ([`fingerprint::read`]), for the
    /// fingerprint rule; without it that rule names nothing.
    pub fingerprints: Option<&'a [fingerprint::Fingerprint]>,
    /// Daily prices, for the round-in-fiat rule; without them that rule names nothing.
    pub prices: Option<&'a crate::report::fmt::Prices>,
}

/// The result of clustering.
#[derive(Debug)]
pub struct Clustering {
    pub heuristics: Vec<Heuristic>,
    /// Cluster id of every address id.
    pub cluster_of: Vec<u32>,
    /// Every merge applied or redundant (self-merges dropped), in transaction order; held
    /// merges are not here.
    pub merges: Vec<Merge>,
    /// Merges held back by the guard, in the order they were considered.
    pub held: Vec<Held>,
    /// Transactions recognised as CoinJoins, by pattern.
    pub coinjoins: BTreeMap<&'static str, u64>,
}

/// Clusters the addresses of `idx` with `heuristics`, no guard. `order` optionally
/// permutes the transactions (for property tests; the result must not depend on it).
pub fn cluster(idx: &Index, heuristics: &[Heuristic], order: Option<&[u32]>) -> Clustering {
    cluster_guarded(idx, heuristics, order, &ClusterOptions::default())
}

/// Proposes the merges of `rules` for every transaction of `order`; `context` (first-pass
/// cluster of every address, and sizes by cluster) feeds the cluster-aware rules.
fn propose(
    idx: &Index,
    rules: &[Heuristic],
    order: Option<&[u32]>,
    context: Option<(&[u32], &[u32])>,
    opts: &ClusterOptions,
    coinjoins: &mut BTreeMap<&'static str, u64>,
    emit: &mut impl FnMut(Merge) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let (fingerprints, prices) = (opts.fingerprints, opts.prices);
    let mut view = TxView::default();
    // Multi-input alone reads a transaction's view only to detect a CoinJoin, which needs
    // two inputs and three outputs ([`heuristics::coinjoin::detect`]): the others are
    // merged (or passed over, with one input) from the input addresses alone.
    let only_multi_input = rules.iter().all(|&h| h == Heuristic::MultiInput);
    let txs: Box<dyn Iterator<Item = u32>> = match order {
        Some(o) => Box::new(o.iter().copied()),
        None => Box::new(0..idx.txs()),
    };
    for t in txs {
        // Ctrl-C in `cluster bitcoin` ([`crate::ingest::stop_on_ctrl_c`]).
        if t % 4096 == 0 && crate::ingest::interrupted() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted",
            ));
        }
        if idx.is_coinbase(TxIx(t)) {
            continue;
        }
        if only_multi_input && idx.n_inputs(TxIx(t)) < 2 {
            continue;
        }
        if only_multi_input && idx.n_outputs(TxIx(t)) < 3 {
            if let Some(first) = idx.input_addresses(TxIx(t)).next() {
                multi_input(idx, t, first.0, emit)?;
            }
            continue;
        }
        view.load(idx, TxIx(t));
        if let Some(kind) = heuristics::coinjoin::detect(&view) {
            *coinjoins.entry(kind).or_default() += 1;
            continue;
        }
        let mut in_addrs = idx.input_addresses(TxIx(t)).map(|a| a.0);
        let Some(first) = in_addrs.next() else {
            continue;
        };
        if let Some(p) = prices {
            view.price = p
                .by_day
                .get(&i64::from(idx.tx_time(TxIx(t))).div_euclid(86_400))
                .copied();
        }
        if let Some(fp) = fingerprints {
            view.fingerprint = fp.get(ix(t)).copied();
            for o in &mut view.outputs {
                if let Some(s) = &mut o.spender {
                    s.fingerprint = fp.get(ix(s.tx)).copied();
                }
            }
        }
        if let Some((label, sizes)) = context {
            view.sender_cluster = Some(label[ix(first)]);
            for o in &mut view.outputs {
                o.cluster = o.address.map(|a| {
                    let c = label[a.ix()];
                    (c, u64::from(sizes[ix(c)]))
                });
            }
        }
        for &h in rules {
            if h == Heuristic::MultiInput {
                multi_input(idx, t, first, emit)?;
            } else if let Some((c, why)) = heuristics::change_output_why(&view, h)
                .and_then(|(i, why)| view.outputs[i].address.map(|a| (a.0, why)))
            {
                emit(Merge {
                    a: first,
                    b: c,
                    tx: t,
                    heuristic: h,
                    because: because_bits(&why),
                })?;
            }
        }
    }
    Ok(())
}

/// The multi-input merges of transaction `t`: its first input's address `first` with
/// every other input's address that differs.
fn multi_input(
    idx: &Index,
    t: u32,
    first: u32,
    emit: &mut impl FnMut(Merge) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for a in idx.input_addresses(TxIx(t)).skip(1) {
        if a.0 != first {
            emit(Merge {
                a: first,
                b: a.0,
                tx: t,
                heuristic: Heuristic::MultiInput,
                because: because_bits(&[Heuristic::MultiInput]),
            })?;
        }
    }
    Ok(())
}

/// [`cluster`] with collapse prevention. Rules that read clusters
/// ([`Heuristic::needs_clusters`]) run in a second pass over the clusters of the first
/// (multi-input and the other rules). Merges are then applied in a fixed order —
/// multi-input first, then change merges, each by transaction — so the partition and the
/// held merges do not depend on `order`. The merges are kept in memory
/// ([`cluster_streamed`] keeps them in scratch files).
pub fn cluster_guarded(
    idx: &Index,
    heuristics: &[Heuristic],
    order: Option<&[u32]>,
    opts: &ClusterOptions,
) -> Clustering {
    let s = cluster_core(idx, heuristics, order, opts, None)
        .expect("merges kept in memory cannot fail to be written");
    let merges = merges::merged(s.multi_input.iter(), s.change.iter()).collect();
    Clustering {
        heuristics: s.heuristics,
        cluster_of: s.cluster_of,
        merges,
        held: s.held,
        coinjoins: s.coinjoins,
    }
}

/// A clustering whose merges are in scratch files ([`cluster_streamed`]).
#[derive(Debug)]
pub struct Streamed {
    pub heuristics: Vec<Heuristic>,
    /// Cluster id of every address id.
    pub cluster_of: Vec<u32>,
    /// Merges held back by the guard, in the order they were considered.
    pub held: Vec<Held>,
    /// Transactions recognised as CoinJoins, by pattern.
    pub coinjoins: BTreeMap<&'static str, u64>,
    multi_input: merges::MergeList,
    change: merges::MergeList,
}

impl Streamed {
    /// Every merge applied or redundant, in transaction order (as [`Clustering::merges`]).
    pub fn merges(&self) -> impl Iterator<Item = Merge> + '_ {
        merges::merged(self.multi_input.iter(), self.change.iter())
    }

    /// How many [`Streamed::merges`] there are.
    pub fn merge_count(&self) -> usize {
        self.multi_input.len() + self.change.len()
    }

    /// The clustering with its merges left out (their scratch files removed).
    pub fn into_clustering(self) -> Clustering {
        Clustering {
            heuristics: self.heuristics,
            cluster_of: self.cluster_of,
            merges: Vec::new(),
            held: self.held,
            coinjoins: self.coinjoins,
        }
    }
}

/// [`cluster_guarded`] of every transaction in chain order, with the merges in scratch
/// files in `scratch` instead of memory: memory is the union-find (9 bytes an address),
/// and while the cluster-aware rules run, the first pass's labels and sizes (8 bytes an
/// address). The partition, the merges and the held merges are [`cluster_guarded`]'s.
///
/// # Errors
/// Writing the scratch files fails.
pub fn cluster_streamed(
    idx: &Index,
    heuristics: &[Heuristic],
    opts: &ClusterOptions,
    scratch: &Path,
) -> std::io::Result<Streamed> {
    cluster_core(idx, heuristics, None, opts, Some(scratch))
}

fn cluster_core(
    idx: &Index,
    heuristics: &[Heuristic],
    order: Option<&[u32]>,
    opts: &ClusterOptions,
    scratch: Option<&Path>,
) -> std::io::Result<Streamed> {
    let mut coinjoins: BTreeMap<&'static str, u64> = BTreeMap::new();
    let in_order = order.is_none_or(|o| o.windows(2).all(|w| w[0] < w[1]));
    let (second, first): (Vec<Heuristic>, Vec<Heuristic>) =
        heuristics.iter().partition(|h| h.needs_clusters());
    // The first pass: the set's own rules, and for the consensus its precise rules too,
    // whose merges only shape the clusters the second pass reads (one pass over the
    // transactions for both). Kept: the set's multi-input merges, and its change merges
    // (to apply after every multi-input one); the others only join the first pass's
    // clusters.
    let mut pass1 = first.clone();
    if second.contains(&Heuristic::ChangeVote) {
        pass1.extend(heuristics::change_vote::PRECISE);
        pass1.sort();
        pass1.dedup();
    }
    let mut multi_input = merges::MergeList::new(scratch, "multi_input")?;
    let mut change1 = merges::MergeList::new(scratch, "change_first")?;
    let mut uf1 = (!second.is_empty()).then(|| UnionFind::new(idx.addresses()));
    {
        let mut route = |m: &Merge| -> std::io::Result<()> {
            if let Some(uf) = &mut uf1 {
                uf.union(m.a, m.b);
            }
            match m.heuristic {
                h if !first.contains(&h) => Ok(()),
                Heuristic::MultiInput => multi_input.push(m),
                _ => change1.push(m),
            }
        };
        let mut buf = merges::TxBuffer::default();
        propose(idx, &pass1, order, None, opts, &mut coinjoins, &mut |m| {
            buf.add(m, &mut route)
        })?;
        buf.flush(&mut route)?;
    }
    let mut change2 = merges::MergeList::new(scratch, "change_second")?;
    if let Some(uf) = uf1 {
        let mut ignored = BTreeMap::new();
        // Each address's first-pass cluster (its smallest address id), and each cluster's
        // size at that id.
        let label = uf.into_labels();
        let mut sizes = vec![0u32; label.len()];
        for &c in &label {
            sizes[ix(c)] += 1;
        }
        // One round: iterating (votes over the clusters the votes made) was measured and
        // added nothing on world A or the presets.
        let mut route = |m: &Merge| change2.push(m);
        let mut buf = merges::TxBuffer::default();
        propose(
            idx,
            &second,
            order,
            Some((&label, &sizes)),
            opts,
            &mut ignored,
            &mut |m| buf.add(m, &mut route),
        )?;
        buf.flush(&mut route)?;
    }
    for l in [&mut multi_input, &mut change1, &mut change2] {
        if !in_order {
            l.sort();
        }
        l.seal()?;
    }
    // Sizes (4 more bytes per address) only when change merges may be held for them.
    let mut uf = if heuristics.iter().any(|h| h.is_change()) {
        UnionFind::with_sizes(idx.addresses())
    } else {
        UnionFind::new(idx.addresses())
    };
    let mut actors: HashMap<u32, std::collections::BTreeSet<&str>> = HashMap::new();
    if let Some(labels) = opts.labels {
        for (a, l) in labels {
            actors.entry(*a).or_default().insert(l.as_str());
        }
    }
    // Multi-input merges are all applied: a co-spend on chain is never held, and a
    // conflict there (labels wrong, or a CoinJoin not recognised) is applied and warned
    // about ([`conflicts`]).
    for m in multi_input.iter() {
        let (ra, rb) = (uf.find(m.a), uf.find(m.b));
        if ra != rb {
            uf.union(m.a, m.b);
            join_actors(&mut actors, ra, rb, uf.find(m.a));
        }
    }
    let mut held = Vec::new();
    let mut change = merges::MergeList::new(scratch, "change")?;
    for m in merges::merged(change1.iter(), change2.iter()) {
        let (ra, rb) = (uf.find(m.a), uf.find(m.b));
        if ra == rb {
            change.push(&m)?;
            continue;
        }
        let sizes = (u64::from(uf.size_of(ra)), u64::from(uf.size_of(rb)));
        let reason = match (actors.get(&ra), actors.get(&rb)) {
            (Some(la), Some(lb)) if la != lb => Some("labels"),
            _ if opts
                .max_change_join
                .is_some_and(|s| sizes.0 >= s && sizes.1 >= s) =>
            {
                Some("size")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            held.push(Held {
                merge: m,
                reason,
                sizes,
            });
            continue;
        }
        uf.union(m.a, m.b);
        join_actors(&mut actors, ra, rb, uf.find(m.a));
        change.push(&m)?;
    }
    drop((change1, change2));
    change.seal()?;
    Ok(Streamed {
        heuristics: heuristics.to_vec(),
        cluster_of: uf.into_labels(),
        held,
        coinjoins,
        multi_input,
        change,
    })
}

/// After roots `ra` and `rb` were joined under `r`: the actors of both are `r`'s.
fn join_actors(
    actors: &mut HashMap<u32, std::collections::BTreeSet<&str>>,
    ra: u32,
    rb: u32,
    r: u32,
) {
    if actors.is_empty() {
        return;
    }
    let mut joined = actors.remove(&ra).unwrap_or_default();
    joined.extend(actors.remove(&rb).unwrap_or_default());
    if !joined.is_empty() {
        actors.insert(r, joined);
    }
}

/// Per-cluster figures.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ClusterStats {
    pub cluster_id: u32,
    pub size: u64,
    pub total_received: u64,
    pub balance: u64,
    pub first_height: u32,
    pub last_height: u32,
}

/// Size, received value, unspent balance and first/last activity of every cluster, by
/// cluster id ascending. `cluster_of` labels each address with its cluster's smallest
/// address id ([`UnionFind::into_labels`]), so the clusters are the addresses labelled
/// with themselves.
///
/// # Memory
/// One [`ClusterStats`] (40 bytes) per cluster and 4 bytes per address (the slot of each
/// cluster in the result); the outputs are read from the memory-mapped index.
pub fn stats(idx: &Index, cluster_of: &[u32]) -> Vec<ClusterStats> {
    stats_of_range(idx, cluster_of, 0..n32(cluster_of.len()))
}

/// [`stats`] of the clusters whose id is in `ids` only, by id: an address's outputs are
/// read through the index's address → outputs rows, so a range costs a scan of
/// `cluster_of` and the outputs of its own addresses. Memory: 4 bytes per id of the range
/// and 40 bytes per cluster in it.
pub fn stats_of_range(
    idx: &Index,
    cluster_of: &[u32],
    ids: std::ops::Range<u32>,
) -> Vec<ClusterStats> {
    let lo = ids.start;
    let mut slot = vec![NONE32_SLOT; ix(ids.end - ids.start)];
    let mut out: Vec<ClusterStats> = Vec::new();
    for c in ids.clone() {
        if cluster_of[ix(c)] == c {
            slot[ix(c - lo)] = n32(out.len());
            out.push(ClusterStats {
                cluster_id: c,
                first_height: u32::MAX,
                ..Default::default()
            });
        }
    }
    for (a, &c) in cluster_of.iter().enumerate() {
        if !ids.contains(&c) {
            continue;
        }
        let s = &mut out[ix(slot[ix(c - lo)])];
        s.size += 1;
        for o in idx.outputs_paid(AddrIx(n32(a))) {
            let v = idx.value(o).to_sat();
            s.total_received += v;
            let h = idx.tx_height(idx.out_tx(o)).0;
            s.first_height = s.first_height.min(h);
            s.last_height = s.last_height.max(h);
            match idx.spender(o) {
                None => s.balance += v,
                Some(t) => s.last_height = s.last_height.max(idx.tx_height(t).0),
            }
        }
    }
    out
}

/// What [`write`] learnt of the clusters while writing their figures.
#[derive(Clone, Debug, Default)]
pub struct ClusterFigures {
    /// Number of clusters.
    pub clusters: u64,
    /// Addresses in the largest.
    pub largest: u64,
    /// [`collapse_warnings`] of every cluster.
    pub collapse: Vec<Warning>,
}

/// "No slot" in [`stats`]' address → cluster slot array.
const NONE32_SLOT: u32 = u32::MAX;

/// A warning about a suspicious cluster.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Warning {
    pub cluster_id: u32,
    pub kind: String,
    pub message: String,
}

/// What [`build`] made.
#[derive(Debug)]
pub struct Built {
    pub meta: ClusterMeta,
    /// Collapse and label-conflict warnings, also in `_meta.json`.
    pub warnings: Vec<Warning>,
    /// Where the clustering was written (`DATA/clusters/<network>/`).
    pub dir: PathBuf,
    /// Addresses in the largest cluster.
    pub largest: u64,
}

/// What [`build`] clusters with.
#[derive(Clone, Debug)]
pub struct BuildOptions<'a> {
    pub heuristics: &'a [Heuristic],
    /// Warn about clusters holding more than this share of all addresses, in (0, 1].
    pub max_share: f64,
    /// Address → actor: change merges joining different actors are held back.
    pub labels: Option<&'a HashMap<String, String>>,
    /// The collapse guard's size ([`ClusterOptions::max_change_join`]).
    pub hold_size: Option<u64>,
    /// Daily prices, for the round-in-fiat rule.
    pub prices: Option<&'a crate::report::fmt::Prices>,
}

impl<'a> BuildOptions<'a> {
    /// `heuristics` with the defaults of `cluster bitcoin`: warnings above 5 % of all
    /// addresses, the guard at [`DEFAULT_HOLD_SIZE`], no labels, no prices.
    pub fn new(heuristics: &'a [Heuristic]) -> BuildOptions<'a> {
        BuildOptions {
            heuristics,
            max_share: 0.05,
            labels: None,
            hold_size: Some(DEFAULT_HOLD_SIZE),
            prices: None,
        }
    }
}

/// The `cluster bitcoin` stage: clusters the dataset of `idx` with `o.heuristics`, warns of
/// clusters above `o.max_share` of all addresses, holds back merges joining different
/// actors of `o.labels` (address → actor) and change merges joining two parts of at least
/// `o.hold_size` addresses ([`ClusterOptions`]); `o.prices` feed the round-in-fiat rule;
/// writes it all to [`clusters_dir`]`(data, network)`.
///
/// # Errors
/// A network that is not one of [`crate::types::Network`]'s names, a `max_share` outside
/// (0, 1], or a clustering that cannot be written.
pub fn build(
    idx: &Index,
    data: &Path,
    network: &str,
    o: &BuildOptions,
) -> Result<Built, ClusterError> {
    let (heuristics, max_share, labels, hold_size, prices) =
        (o.heuristics, o.max_share, o.labels, o.hold_size, o.prices);
    if crate::types::Network::from_name(network).is_none() {
        return Err(ClusterError::Invalid(format!(
            "unknown network {network:?}: use bitcoin, testnet, testnet4, signet or regtest"
        )));
    }
    if !(max_share > 0.0 && max_share <= 1.0) {
        return Err(ClusterError::Invalid(format!(
            "max_share {max_share} is not in (0, 1]"
        )));
    }
    let by_id: Option<HashMap<u32, String>> = labels.map(|by_address| {
        let (addrs, actors): (Vec<&str>, Vec<&String>) =
            by_address.iter().map(|(a, l)| (a.as_str(), l)).unzip();
        idx.address_ids_of(&addrs)
            .into_iter()
            .zip(actors)
            .filter_map(|(id, l)| id.map(|id| (id.0, l.clone())))
            .collect()
    });
    // The wallet fingerprints, for the rules that read them.
    let fps = if heuristics
        .iter()
        .any(|h| matches!(h, Heuristic::ChangeFingerprint | Heuristic::ChangeVote))
    {
        Some(fingerprint::read(idx, &data.join(network))?)
    } else {
        None
    };
    let guard = ClusterOptions {
        max_change_join: hold_size,
        labels: by_id.as_ref(),
        fingerprints: fps.as_deref(),
        prices,
    };
    // The merges (16 bytes each, about 1.4 an address on mainnet) stay in scratch files
    // beside the output, read through twice: for the label conflicts, and into
    // merges.parquet.
    let dir = clusters_dir(data, network);
    let io = |source| StoreError::Io {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    // The caller holds the clustering's lock: scratch directories left here are a killed
    // run's. And the meta goes first: it is written last, so that a run killed while
    // writing leaves no clustering that loads half old, half new.
    for e in std::fs::read_dir(&dir).map_err(io)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(".scratch-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    match std::fs::remove_file(dir.join("_meta.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e).into()),
        _ => {}
    }
    let scratch = merges::ScratchDir::create(&dir).map_err(io)?;
    let s = cluster_streamed(idx, heuristics, &guard, scratch.path()).map_err(|source| {
        StoreError::Io {
            path: scratch.path().to_path_buf(),
            source,
        }
    })?;
    let conflicted = by_id
        .as_ref()
        .map(|by_id| conflicts_of(idx, s.merges(), &s.cluster_of, by_id))
        .unwrap_or_default();
    write_merges_of(idx, &s.heuristics, s.merges(), &dir)?;
    let n_merges = s.merge_count();
    let c = s.into_clustering();
    drop(scratch);
    let (mut meta, figures) = write(idx, &c, n_merges, max_share, conflicted, &dir)?;
    let warnings = meta.warnings.clone();
    if hold_size.is_some() || prices.is_some() {
        // Recorded in _meta.json too.
        meta.hold_size = hold_size;
        meta.prices = prices.map(|p| p.file.clone());
        let mut bytes = serde_json::to_vec_pretty(&meta).expect("meta serialises");
        bytes.push(b'\n');
        sink::write_atomic(&dir.join("_meta.json"), &bytes)?;
    }
    Ok(Built {
        meta,
        warnings,
        dir,
        largest: figures.largest,
    })
}

/// Clusters larger than `max_share` of all addresses: the usual sign that a heuristic
/// merged through a service or a CoinJoin that was not recognised ("collapse").
pub fn collapse_warnings(idx: &Index, stats: &[ClusterStats], max_share: f64) -> Vec<Warning> {
    let n = f64::from(idx.addresses().max(1));
    stats
        .iter()
        .filter(|s| s.size as f64 / n > max_share && s.size > 1)
        .map(|s| Warning {
            cluster_id: s.cluster_id,
            kind: "collapse".into(),
            message: format!(
                "cluster {} ({}) holds {} addresses, {:.1}% of all, above --max-share {:.1}%",
                s.cluster_id,
                idx.address(AddrIx(s.cluster_id)),
                s.size,
                100.0 * s.size as f64 / n,
                100.0 * max_share
            ),
        })
        .collect()
}

/// Clusters that join addresses labelled with different actors ("conflicts"): for each,
/// the first merge (in chain order) that joined two parts carrying different labels.
///
/// `labels` maps address ids to an actor. Merges are replayed in transaction order with a
/// union-find that carries each part's actors, so the culprit is well defined and does not
/// depend on the order clustering applied them.
pub fn conflicts(idx: &Index, c: &Clustering, labels: &HashMap<u32, String>) -> Vec<Warning> {
    conflicts_of(idx, c.merges.iter().copied(), &c.cluster_of, labels)
}

/// [`conflicts`] of `merges` (in transaction order) and the partition `cluster_of`.
pub fn conflicts_of(
    idx: &Index,
    merges: impl Iterator<Item = Merge>,
    cluster_of: &[u32],
    labels: &HashMap<u32, String>,
) -> Vec<Warning> {
    let mut uf = UnionFind::new(idx.addresses());
    let mut actors: HashMap<u32, std::collections::BTreeSet<&str>> = HashMap::new();
    for (a, l) in labels {
        actors.entry(*a).or_default().insert(l.as_str());
    }
    let mut out: BTreeMap<u32, Warning> = BTreeMap::new();
    for m in merges {
        let (ra, rb) = (uf.find(m.a), uf.find(m.b));
        if ra == rb {
            continue;
        }
        let la = actors.remove(&ra).unwrap_or_default();
        let lb = actors.remove(&rb).unwrap_or_default();
        let cluster_id = cluster_of[ix(m.a)];
        if !la.is_empty() && !lb.is_empty() && la != lb && !out.contains_key(&cluster_id) {
            out.insert(
                cluster_id,
                Warning {
                    cluster_id,
                    kind: "conflict".into(),
                    message: format!(
                        "cluster {cluster_id} joins addresses labelled {} with addresses labelled {}: first by {} in tx {} ({} + {})",
                        la.iter().copied().collect::<Vec<_>>().join("/"),
                        lb.iter().copied().collect::<Vec<_>>().join("/"),
                        m.heuristic.name(),
                        idx.txid(TxIx(m.tx)),
                        idx.address(AddrIx(m.a)),
                        idx.address(AddrIx(m.b))
                    ),
                },
            );
        }
        uf.union(m.a, m.b);
        let r = uf.find(m.a);
        let mut merged = la;
        merged.extend(lb);
        if !merged.is_empty() {
            actors.insert(r, merged);
        }
    }
    out.into_values().collect()
}

/// `clusters/<network>/_meta.json`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ClusterMeta {
    pub heuristics: Vec<String>,
    pub manifest_sha256: String,
    pub addresses: u64,
    pub clusters: u64,
    pub merges: u64,
    pub coinjoins: BTreeMap<String, u64>,
    pub max_share: f64,
    /// Collapse and conflict warnings.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// The collapse guard's size: change merges joining two parts both at least this
    /// large were held back (`None`: no size guard).
    #[serde(default)]
    pub hold_size: Option<u64>,
    /// Merges held back by the collapse guard, not applied.
    #[serde(default)]
    pub held: Vec<HeldMerge>,
    /// The daily price file the round-in-fiat rule read (`--prices`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<String>,
}

/// A merge held back, as `_meta.json` lists it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HeldMerge {
    pub address_a: String,
    pub address_b: String,
    pub txid: String,
    pub heuristic: String,
    /// `size` or `labels`.
    pub reason: String,
    /// The addresses of the two parts it would have joined.
    pub sizes: (u64, u64),
}

/// Rows per batch written: the strings of one batch at a time are in memory, not a
/// whole column's. 8 Ki rows of merges (two addresses, a txid, rule and set names) are
/// about 2.4 MB; 64 Ki rows were 19 MB, most of `cluster bitcoin`'s heap on a 50 k world
/// under `--memory 16M`. The rows are the same as with larger batches; a dictionary
/// column's page boundaries can shift (the files differ from those of 64 Ki-row batches
/// by a few bytes), and they never depend on the budget.
const WRITE_BATCH_ROWS: usize = 8 * 1024;

/// Writes one table of the registry ([`crate::tables`]) of `rows` rows, batch by batch:
/// `cols(range)` makes the columns of rows `range`.
fn write_table(
    path: &Path,
    schema: arrow_schema::SchemaRef,
    rows: usize,
    cols: impl Fn(std::ops::Range<usize>) -> Vec<ArrayRef>,
) -> Result<(), StoreError> {
    // Address and txid columns are (nearly) distinct per row: no dictionary.
    let plain = [
        "address",
        "address_a",
        "address_b",
        "txid",
        "representative",
    ];
    let mut w = sink::PartWriter::create_plain(path, schema.clone(), &plain)?;
    let mut start = 0;
    // An empty table still gets one (empty) batch, so its schema is written.
    while start < rows || start == 0 {
        let end = rows.min(start + WRITE_BATCH_ROWS);
        let batch = RecordBatch::try_new(schema.clone(), cols(start..end)).map_err(|source| {
            StoreError::Arrow {
                table: "clusters",
                source,
            }
        })?;
        w.write(&batch)?;
        if end == rows {
            break;
        }
        start = end;
    }
    sink::commit(std::slice::from_ref(&w.finish()?))
}

/// Writes `merges.parquet`: every merge of `c`, in transaction order, with the rule set
/// and each rule's measured precision.
///
/// # Errors
/// I/O or Parquet errors.
pub fn write_merges(idx: &Index, c: &Clustering, out_dir: &Path) -> Result<(), StoreError> {
    write_merges_of(idx, &c.heuristics, c.merges.iter().copied(), out_dir)
}

/// [`write_merges`] of `merges` (in transaction order) made by `heuristics`, written
/// [`WRITE_BATCH_ROWS`] at a time.
///
/// # Errors
/// I/O or Parquet errors.
pub fn write_merges_of(
    idx: &Index,
    heuristics: &[Heuristic],
    merges: impl Iterator<Item = Merge>,
    out_dir: &Path,
) -> Result<(), StoreError> {
    let set = set_name(heuristics);
    let schema = crate::tables::cluster_merges::Merges::schema();
    let mut w = sink::PartWriter::create_plain(
        &out_dir.join("merges.parquet"),
        schema.clone(),
        &["address_a", "address_b", "txid"],
    )?;
    let mut merges = merges.peekable();
    let mut chunk: Vec<Merge> = Vec::with_capacity(WRITE_BATCH_ROWS);
    let mut first = true;
    while first || merges.peek().is_some() {
        first = false;
        chunk.clear();
        chunk.extend(merges.by_ref().take(WRITE_BATCH_ROWS));
        let m = &chunk;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                m.iter().map(|m| idx.address(AddrIx(m.a))),
            )),
            Arc::new(StringArray::from_iter_values(
                m.iter().map(|m| idx.address(AddrIx(m.b))),
            )),
            Arc::new(StringArray::from_iter_values(
                m.iter().map(|m| idx.txid(TxIx(m.tx)).to_string()),
            )),
            Arc::new(StringArray::from_iter_values(
                m.iter().map(|m| m.heuristic.name()),
            )),
            Arc::new(StringArray::from_iter_values(
                m.iter().map(|_| set.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                m.iter().map(|m| because_names(m.because)),
            )),
            Arc::new(UInt32Array::from(
                m.iter()
                    .map(|m| merge_ppm(m.heuristic, m.because))
                    .collect::<Vec<_>>(),
            )),
        ];
        let batch =
            RecordBatch::try_new(schema.clone(), cols).map_err(|source| StoreError::Arrow {
                table: "merges",
                source,
            })?;
        w.write(&batch)?;
    }
    sink::commit(std::slice::from_ref(&w.finish()?))
}

/// Writes `address_cluster.parquet`, `clusters.parquet`, `cluster_of.bin` and `_meta.json`
/// into `out_dir` (`merges.parquet` is [`write_merges`]'s: `merges` is how many it holds,
/// so `c.merges` may already be freed). The per-cluster figures ([`stats_of_range`]) are
/// computed and written a range of cluster ids at a time, each range within a quarter of
/// the memory budget ([`crate::memory`]); the file is the same whatever the budget. The
/// meta's warnings are the collapse warnings (`max_share`) and then `more`.
///
/// # Errors
/// I/O or Parquet errors.
pub fn write(
    idx: &Index,
    c: &Clustering,
    merges: usize,
    max_share: f64,
    more: Vec<Warning>,
    out_dir: &Path,
) -> Result<(ClusterMeta, ClusterFigures), StoreError> {
    let n = ix(idx.addresses());
    // The address table on a second thread: the two halves take about as long.
    let (addresses, others) = std::thread::scope(|scope| {
        let addresses = scope.spawn(|| {
            write_table(
                &out_dir.join("address_cluster.parquet"),
                crate::tables::cluster_addresses::AddressCluster::schema(),
                n,
                |r| {
                    vec![
                        Arc::new(StringArray::from_iter_values(
                            r.clone().map(|a| idx.address(AddrIx(n32(a)))),
                        )),
                        Arc::new(UInt32Array::from(c.cluster_of[r].to_vec())),
                    ]
                },
            )
        });
        let others = write_clusters(idx, &c.cluster_of, max_share, out_dir);
        (
            addresses.join().expect("the address writer does not panic"),
            others,
        )
    });
    addresses?;
    let figures = others?;
    let mut warnings = figures.collapse.clone();
    warnings.extend(more);
    let mut bin = Vec::with_capacity(n * 4);
    for x in &c.cluster_of {
        bin.extend_from_slice(&x.to_le_bytes());
    }
    sink::write_atomic(&out_dir.join("cluster_of.bin"), &bin)?;
    let meta = ClusterMeta {
        heuristics: c.heuristics.iter().map(|h| h.name().to_string()).collect(),
        manifest_sha256: idx.meta.manifest_sha256.clone(),
        addresses: n64(n),
        clusters: figures.clusters,
        merges: n64(merges),
        coinjoins: c
            .coinjoins
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        max_share,
        warnings,
        hold_size: None,
        prices: None,
        held: c
            .held
            .iter()
            .map(|h| HeldMerge {
                address_a: idx.address(AddrIx(h.merge.a)).into(),
                address_b: idx.address(AddrIx(h.merge.b)).into(),
                txid: idx.txid(TxIx(h.merge.tx)).to_string(),
                heuristic: h.merge.heuristic.name().into(),
                reason: h.reason.into(),
                sizes: h.sizes,
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    bytes.push(b'\n');
    sink::write_atomic(&out_dir.join("_meta.json"), &bytes)?;
    Ok((meta, figures))
}

/// Writes `clusters.parquet` a range of cluster ids at a time (see [`write`]), in batches
/// of [`WRITE_BATCH_ROWS`] rows as [`write_table`] writes them.
fn write_clusters(
    idx: &Index,
    cluster_of: &[u32],
    max_share: f64,
    out_dir: &Path,
) -> Result<ClusterFigures, StoreError> {
    let schema = crate::tables::cluster_summaries::Clusters::schema();
    let path = out_dir.join("clusters.parquet");
    let mut w = sink::PartWriter::create_plain(&path, schema.clone(), &["representative"])?;
    let mut figures = ClusterFigures::default();
    let mut pending: Vec<ClusterStats> = Vec::new();
    let put = |w: &mut sink::PartWriter, s: &[ClusterStats]| -> Result<(), StoreError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(
                s.iter().map(|x| x.cluster_id),
            )),
            Arc::new(StringArray::from_iter_values(
                s.iter().map(|x| idx.address(AddrIx(x.cluster_id))),
            )),
            Arc::new(UInt64Array::from_iter_values(s.iter().map(|x| x.size))),
            Arc::new(Int64Array::from_iter_values(
                s.iter().map(|x| x.total_received as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                s.iter().map(|x| x.balance as i64),
            )),
            Arc::new(UInt32Array::from_iter_values(
                s.iter().map(|x| x.first_height),
            )),
            Arc::new(UInt32Array::from_iter_values(
                s.iter().map(|x| x.last_height),
            )),
        ];
        let batch =
            RecordBatch::try_new(schema.clone(), cols).map_err(|source| StoreError::Arrow {
                table: "clusters",
                source,
            })?;
        w.write(&batch)
    };
    // 4 bytes per id of a range and 40 per cluster in it: 44 per id at most.
    let span = u32::try_from(crate::memory::budget().bytes() / 4 / 44)
        .unwrap_or(u32::MAX)
        .max(1 << 16);
    let n = n32(cluster_of.len());
    let mut lo = 0u32;
    while lo < n {
        let hi = lo.saturating_add(span).min(n);
        let part = stats_of_range(idx, cluster_of, lo..hi);
        figures.clusters += n64(part.len());
        figures.largest = figures
            .largest
            .max(part.iter().map(|s| s.size).max().unwrap_or(0));
        figures
            .collapse
            .extend(collapse_warnings(idx, &part, max_share));
        // Whole batches straight from the range; only a batch's head (from the ranges
        // before) and its tail (for the next) are copied.
        let mut rest = &part[..];
        if !pending.is_empty() {
            let take = (WRITE_BATCH_ROWS - pending.len()).min(rest.len());
            pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if pending.len() == WRITE_BATCH_ROWS {
                put(&mut w, &pending)?;
                pending.clear();
            }
        }
        while rest.len() >= WRITE_BATCH_ROWS {
            put(&mut w, &rest[..WRITE_BATCH_ROWS])?;
            rest = &rest[WRITE_BATCH_ROWS..];
        }
        pending.extend_from_slice(rest);
        lo = hi;
    }
    // The last batch, and an empty one for an empty table (its schema is written).
    if !pending.is_empty() || figures.clusters == 0 {
        put(&mut w, &pending)?;
    }
    sink::commit(std::slice::from_ref(&w.finish()?))?;
    Ok(figures)
}

/// A heuristic set's name: its rules '+'-joined.
pub fn set_name(hs: &[Heuristic]) -> String {
    hs.iter().map(|h| h.name()).collect::<Vec<_>>().join("+")
}

/// Rule `h`'s measured merge precision ([`calibration::confidence`]) in parts per
/// million; `None` when it was never measured (never 0 for "unknown").
pub fn precision_ppm(h: Heuristic) -> Option<u32> {
    ppm_of(h.name())
}

fn ppm_of(key: &str) -> Option<u32> {
    // A share in [0, 1] times 10^6: exact enough, and an integer in the evidence.
    calibration::confidence(key).map(|p| n32((p * 1e6).round() as u64))
}

/// A consensus merge decided by precise rules that agreed: its rate's name in the
/// calibration (measured apart from the vote-decided ones, which are far less precise).
pub const VOTE_PRECISE: &str = "change-vote/precise";
/// A consensus merge decided by the votes of the forward-looking and cluster-aware rules.
pub const VOTE_VOTES: &str = "change-vote/votes";

/// The kind of a consensus merge, from its reasons' bit set ([`because_bits`]):
/// [`VOTE_PRECISE`] or [`VOTE_VOTES`]; `None` for any other heuristic's merge.
pub fn vote_kind(h: Heuristic, because: u16) -> Option<&'static str> {
    (h == Heuristic::ChangeVote).then(|| {
        if because & rates().precise != 0 {
            VOTE_PRECISE
        } else {
            VOTE_VOTES
        }
    })
}

/// [`vote_kind`] of a stored merge: its heuristic's name and its '+'-joined reasons.
pub fn vote_kind_named(heuristic: &str, because: &str) -> Option<&'static str> {
    vote_kind(
        Heuristic::from_name(heuristic)?,
        because_bits_named(because),
    )
}

/// A merge's measured precision in parts per million: its rule's
/// ([`precision_ppm`]), or for a consensus merge that of its kind ([`vote_kind`]: decided
/// by precise rules or by votes). `None` when never measured, and when a rule behind it
/// was never measured (the round-in-fiat rule: the calibration worlds have no prices), so
/// that no merge borrows a figure measured without its reasons.
pub fn merge_precision_ppm(heuristic: &str, because: &str) -> Option<u32> {
    let h = Heuristic::from_name(heuristic)?;
    merge_ppm(h, because_bits_named(because))
}

/// The calibration's figures as the merges need them, looked up once per process: every
/// merge written or shown asks, and a lookup scans the calibration table.
struct Rates {
    /// Each heuristic's precision, by position in [`Heuristic::ALL`].
    rule: [Option<u32>; Heuristic::ALL.len()],
    /// Reasons ([`because_bits`]) whose rule was never measured.
    unmeasured: u16,
    /// The consensus's precise rules, as reasons.
    precise: u16,
    /// [`VOTE_PRECISE`]'s and [`VOTE_VOTES`]'s precision.
    kinds: [Option<u32>; 2],
}

fn rates() -> &'static Rates {
    static RATES: std::sync::OnceLock<Rates> = std::sync::OnceLock::new();
    RATES.get_or_init(|| {
        let rule = Heuristic::ALL.map(precision_ppm);
        Rates {
            rule,
            unmeasured: (0..REASONS)
                .filter(|&i| rule[i].is_none())
                .fold(0, |acc, i| acc | 1 << i),
            precise: because_bits(&heuristics::change_vote::PRECISE),
            kinds: [ppm_of(VOTE_PRECISE), ppm_of(VOTE_VOTES)],
        }
    })
}

/// [`merge_precision_ppm`] of a merge in memory.
fn merge_ppm(h: Heuristic, because: u16) -> Option<u32> {
    let r = rates();
    if because & r.unmeasured != 0 {
        return None;
    }
    match vote_kind(h, because) {
        Some(VOTE_PRECISE) => r.kinds[0],
        Some(_) => r.kinds[1],
        None => r.rule[Heuristic::ALL.iter().position(|x| *x == h)?],
    }
}

/// The calibration row a merge's precision comes from: its kind for a consensus merge
/// (`change-vote/precise`, `change-vote/votes`), else its rule.
pub fn rate_name(heuristic: &str, because: &str) -> String {
    vote_kind_named(heuristic, because).map_or_else(|| heuristic.to_string(), str::to_string)
}

fn because_bits_named(because: &str) -> u16 {
    because_bits(
        &because
            .split('+')
            .filter_map(Heuristic::from_name)
            .collect::<Vec<_>>(),
    )
}

/// The clusters directory of a network.
pub fn clusters_dir(data_dir: &Path, network: &str) -> PathBuf {
    data_dir.join("clusters").join(network)
}

/// Errors of explain/show.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "address {0} does not appear in the dataset: check the network (--network) and that the blocks paying it are ingested"
    )]
    UnknownAddress(String),
    #[error(
        "no clustering for {dir} (or it was made from another dataset); run `chaintrace cluster bitcoin` first"
    )]
    NoClustering { dir: PathBuf },
    #[error(
        "{a} and {b} share a cluster but no recorded merge links them: the stored clustering is inconsistent; run `chaintrace cluster bitcoin` again"
    )]
    Inconsistent { a: String, b: String },
    #[error(
        "{a} and {b} are in different clusters ({ca} and {cb}): nothing links them under {heuristics}"
    )]
    NotLinked {
        a: String,
        b: String,
        ca: u32,
        cb: u32,
        heuristics: String,
    },
}

/// A stored clustering, loaded for explain/show.
#[derive(Debug)]
pub struct Stored {
    pub meta: ClusterMeta,
    pub cluster_of: Vec<u32>,
    /// (address id a, address id b, txid, heuristic, the rules behind it).
    pub merges: Vec<(u32, u32, String, String, String)>,
}

/// Loads the clustering in `dir`, checking it was made from the dataset of `idx`.
///
/// # Errors
/// Missing or stale clustering.
pub fn load(idx: &Index, dir: &Path) -> Result<Stored, ClusterError> {
    let no = || ClusterError::NoClustering {
        dir: dir.to_path_buf(),
    };
    let meta: ClusterMeta =
        serde_json::from_slice(&std::fs::read(dir.join("_meta.json")).map_err(|_| no())?)
            .map_err(|_| no())?;
    if meta.manifest_sha256 != idx.meta.manifest_sha256 {
        return Err(no());
    }
    let bin = std::fs::read(dir.join("cluster_of.bin")).map_err(|_| no())?;
    let cluster_of: Vec<u32> = bin
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if cluster_of.len() != ix(idx.addresses()) {
        return Err(no());
    }
    let mut merges = Vec::new();
    let path = dir.join("merges.parquet");
    let f = std::fs::File::open(&path).map_err(|source| StoreError::Io {
        path: path.clone(),
        source,
    })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.build())
        .map_err(|source| StoreError::Parquet {
            path: path.clone(),
            source,
        })?;
    use arrow_array::cast::AsArray;
    for batch in reader {
        let batch = batch.map_err(|source| StoreError::Arrow {
            table: "merges",
            source,
        })?;
        let col = |i: usize| batch.column(i).as_string::<i32>().clone();
        let (a, b, t, h) = (col(0), col(1), col(2), col(3));
        let because = batch
            .column_by_name("because")
            .map(|c| c.as_string::<i32>().clone());
        for i in 0..batch.num_rows() {
            let ia = idx
                .address_id(a.value(i))
                .ok_or_else(|| ClusterError::UnknownAddress(a.value(i).into()))?
                .0;
            let ib = idx
                .address_id(b.value(i))
                .ok_or_else(|| ClusterError::UnknownAddress(b.value(i).into()))?
                .0;
            merges.push((
                ia,
                ib,
                t.value(i).to_string(),
                h.value(i).to_string(),
                because
                    .as_ref()
                    .map_or_else(|| h.value(i).to_string(), |c| c.value(i).to_string()),
            ));
        }
    }
    Ok(Stored {
        meta,
        cluster_of,
        merges,
    })
}

/// One step of an explanation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub txid: String,
    pub heuristic: String,
    /// The rules behind it (for change-vote: the precise rules that agreed, or the votes).
    pub because: String,
    /// The measured merge precision ([`merge_precision_ppm`]), parts per million; `None`
    /// when never measured.
    pub precision_ppm: Option<u32>,
    /// The calibration row it comes from ([`rate_name`]): the rule, or for a consensus
    /// merge `change-vote/precise` or `change-vote/votes`.
    pub rate: String,
}

/// The shortest chain of merges linking `a` to `b` (breadth-first search over the
/// recorded merges of their cluster).
///
/// # Complexity
/// O(merges of the cluster) time and memory.
///
/// # Errors
/// Unknown addresses, or addresses in different clusters.
pub fn explain(idx: &Index, s: &Stored, a: &str, b: &str) -> Result<Vec<Step>, ClusterError> {
    let ia = idx
        .address_id(a)
        .ok_or_else(|| ClusterError::UnknownAddress(a.into()))?
        .0;
    let ib = idx
        .address_id(b)
        .ok_or_else(|| ClusterError::UnknownAddress(b.into()))?
        .0;
    let (ca, cb) = (s.cluster_of[ix(ia)], s.cluster_of[ix(ib)]);
    if ca != cb {
        return Err(ClusterError::NotLinked {
            a: a.into(),
            b: b.into(),
            ca,
            cb,
            heuristics: s.meta.heuristics.join(","),
        });
    }
    if ia == ib {
        return Ok(Vec::new());
    }
    // The cluster's merges as an undirected graph (an edge per address pair, weighted by
    // the first merge that joined them); the shortest chain of merges from a to b.
    let mut g: petgraph::graphmap::UnGraphMap<u32, usize> = petgraph::graphmap::UnGraphMap::new();
    for (i, m) in s.merges.iter().enumerate() {
        if s.cluster_of[ix(m.0)] == ca && !g.contains_edge(m.0, m.1) {
            g.add_edge(m.0, m.1, i);
        }
    }
    let Some((_, path)) = petgraph::algo::astar(&g, ia, |x| x == ib, |_| 1u32, |_| 0) else {
        return Err(ClusterError::Inconsistent {
            a: a.into(),
            b: b.into(),
        });
    };
    Ok(path
        .windows(2)
        .filter_map(|w| {
            let m = &s.merges[*g.edge_weight(w[0], w[1])?];
            Some(Step {
                from: idx.address(AddrIx(w[0])).into(),
                to: idx.address(AddrIx(w[1])).into(),
                txid: m.2.clone(),
                heuristic: m.3.clone(),
                because: m.4.clone(),
                precision_ppm: merge_precision_ppm(&m.3, &m.4),
                rate: rate_name(&m.3, &m.4),
            })
        })
        .collect())
}

/// A counterparty of a cluster.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Counterparty {
    pub cluster_id: u32,
    pub representative: String,
    pub sent_to_it: u64,
    pub received_from_it: u64,
}

/// What `cluster show` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    pub address: String,
    pub stats: ClusterStats,
    pub representative: String,
    pub sample_addresses: Vec<String>,
    pub top_counterparties: Vec<Counterparty>,
    pub warnings: Vec<Warning>,
    /// The cluster's merges by rule (recorded merges between two of its addresses).
    pub merges_by_rule: BTreeMap<String, u64>,
    /// Its least precise merge: the rule with the lowest measured precision among its
    /// merges (the first such merge in chain order). `None` for a single address.
    pub weakest_link: Option<Step>,
}

/// Describes the cluster of `address`.
///
/// # Errors
/// Unknown address.
pub fn show(idx: &Index, s: &Stored, address: &str, top: usize) -> Result<Shown, ClusterError> {
    let ia = idx
        .address_id(address)
        .ok_or_else(|| ClusterError::UnknownAddress(address.into()))?;
    let c = s.cluster_of[ia.ix()];
    let members: Vec<u32> = (0..idx.addresses())
        .filter(|&a| s.cluster_of[ix(a)] == c)
        .collect();
    // Counterparties: clusters that paid this one, and clusters this one paid.
    let mut cp: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    // A CoinJoin's outputs are its many participants' own: none of them is this cluster
    // paying (or being paid by) the others, so CoinJoins are left out.
    let mut view = TxView::default();
    let mut count = |t: TxIx| {
        view.load(idx, t);
        if heuristics::coinjoin::detect(&view).is_some() {
            return;
        }
        let ins: Vec<AddrIx> = idx.input_addresses(t).collect();
        let from_us = ins.iter().any(|&a| s.cluster_of[a.ix()] == c);
        let sender = ins.first().map(|&a| s.cluster_of[a.ix()]);
        for o in idx.outputs_of(t) {
            let Some(a) = idx.out_address(o) else {
                continue;
            };
            let oc = s.cluster_of[a.ix()];
            let v = idx.value(o).to_sat();
            if from_us && oc != c {
                cp.entry(oc).or_default().0 += v;
            } else if !from_us
                && oc == c
                && let Some(sc) = sender
            {
                cp.entry(sc).or_default().1 += v;
            }
        }
    };
    // Only the transactions paying the cluster or spending from it change the sums: read
    // from the members' outputs (the index's address → outputs rows), not the whole chain.
    let mut st = ClusterStats {
        cluster_id: c,
        size: members.len() as u64,
        first_height: u32::MAX,
        ..Default::default()
    };
    let mut txs: BTreeSet<u32> = BTreeSet::new();
    for &m in &members {
        for o in idx.outputs_paid(AddrIx(m)) {
            let v = idx.value(o).to_sat();
            st.total_received += v;
            let h = idx.tx_height(idx.out_tx(o)).0;
            st.first_height = st.first_height.min(h);
            st.last_height = st.last_height.max(h);
            txs.insert(idx.out_tx(o).0);
            match idx.spender(o) {
                None => st.balance += v,
                Some(t) => {
                    st.last_height = st.last_height.max(idx.tx_height(t).0);
                    txs.insert(t.0);
                }
            }
        }
    }
    for t in txs {
        count(TxIx(t));
    }
    let mut tops: Vec<Counterparty> = cp
        .into_iter()
        .map(|(k, (sent, recv))| Counterparty {
            cluster_id: k,
            representative: idx.address(AddrIx(k)).into(),
            sent_to_it: sent,
            received_from_it: recv,
        })
        .collect();
    tops.sort_by_key(|x| {
        (
            std::cmp::Reverse(x.sent_to_it + x.received_from_it),
            x.cluster_id,
        )
    });
    tops.truncate(top);
    let warnings = s
        .meta
        .warnings
        .iter()
        .filter(|w| w.cluster_id == c)
        .cloned()
        .collect();
    let mut merges_by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut weakest_link: Option<Step> = None;
    for m in s.merges.iter().filter(|m| s.cluster_of[ix(m.0)] == c) {
        *merges_by_rule.entry(m.3.clone()).or_default() += 1;
        // An unmeasured rule (None) is weaker than any measured one.
        let p = merge_precision_ppm(&m.3, &m.4);
        if weakest_link.as_ref().is_none_or(|w| p < w.precision_ppm) {
            weakest_link = Some(Step {
                from: idx.address(AddrIx(m.0)).into(),
                to: idx.address(AddrIx(m.1)).into(),
                txid: m.2.clone(),
                heuristic: m.3.clone(),
                because: m.4.clone(),
                precision_ppm: p,
                rate: rate_name(&m.3, &m.4),
            });
        }
    }
    Ok(Shown {
        address: address.into(),
        representative: idx.address(AddrIx(c)).into(),
        stats: st,
        sample_addresses: members
            .iter()
            .take(10)
            .map(|&a| idx.address(AddrIx(a)).to_string())
            .collect(),
        top_counterparties: tops,
        warnings,
        merges_by_rule,
        weakest_link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmeasured_rule_has_no_precision_not_zero() {
        assert_eq!(precision_ppm(Heuristic::MultiInput), Some(1_000_000));
        // The round-in-fiat rule fired on no calibration world (they have no prices).
        assert_eq!(precision_ppm(Heuristic::ChangeRoundFiat), None);
        let vote = precision_ppm(Heuristic::ChangeVote).unwrap();
        assert!((970_000..1_000_000).contains(&vote), "{vote}");
    }

    #[test]
    fn a_consensus_merge_records_the_precision_of_what_decided_it() {
        use heuristics::Heuristic::*;
        let precise = because_bits(&[ChangeSingleUse, ChangeDecimals]);
        let votes = because_bits(&[ChangeSpentAlone, ChangePeel, ChangeFirstSpent]);
        assert_eq!(vote_kind(ChangeVote, precise), Some(VOTE_PRECISE));
        assert_eq!(vote_kind(ChangeVote, votes), Some(VOTE_VOTES));
        assert_eq!(vote_kind(ChangeSpentAlone, votes), None);
        // The stored form, by names, says the same.
        let named = |b: u16| merge_precision_ppm("change-vote", &because_names(b));
        assert_eq!(
            vote_kind_named("change-vote", &because_names(precise)),
            Some(VOTE_PRECISE)
        );
        let (p, v) = (named(precise).unwrap(), named(votes).unwrap());
        assert!(v < p, "votes {v} vs precise {p}");
        assert_ne!(Some(v), precision_ppm(ChangeVote));
        // Any other rule's merge: its rule's precision.
        assert_eq!(
            merge_precision_ppm("change-peel", "change-peel"),
            precision_ppm(ChangePeel)
        );
        // A precise decision by a rule never measured borrows no figure, alone or with
        // a measured one.
        assert_eq!(precision_ppm(ChangeRoundFiat), None);
        for b in [
            because_bits(&[ChangeRoundFiat]),
            because_bits(&[ChangeRoundFiat, ChangeDecimals]),
        ] {
            assert_eq!(vote_kind(ChangeVote, b), Some(VOTE_PRECISE));
            assert_eq!(merge_ppm(ChangeVote, b), None);
            assert_eq!(merge_precision_ppm("change-vote", &because_names(b)), None);
        }
        assert_eq!(rate_name("change-vote", &because_names(votes)), VOTE_VOTES);
        assert_eq!(rate_name("change-peel", "change-peel"), "change-peel");
    }
}
