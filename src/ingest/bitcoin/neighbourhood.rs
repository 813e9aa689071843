//! An on-demand neighbourhood: only the transactions a trace needs, fetched hop by hop
//! from an Esplora API (`/address/:a/txs/chain`, `/tx/:txid`, `/tx/:txid/raw`,
//! `/tx/:txid/outspends`, `/block/:hash`, `/block/:hash/txids`), written as an ordinary
//! (sparse) dataset with its manifest, so that the ordinary index, trace and report run
//! on it.
//!
//! What is fetched is a superset of what any taint model reaches: forward, every output of
//! every transaction reached (the poison model's reach) is followed to its spender, except
//! outputs at a stop-category address (an exit) and outputs below `min_value` (below the
//! minimum in every model); backward, every input to the transaction that created it. One
//! level beyond `max_hops` is fetched, so that the trace tells taint beyond the hop limit
//! from taint held. Each transaction is decoded from its raw bytes by the same code as a
//! block's (rows byte for byte those of a full ingest, apart from the block's other
//! transactions); input values and scripts come from the `vin[].prevout` objects.
//!
//! Replies are cached on disk by URL path (`DATA/.fetch-cache/`), so a rerun or a wider
//! trace asks only for what is missing; address histories, tips and outspends with
//! unspent outputs are asked again (they change).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bitcoin::hashes::{Hash, sha256};
use bitcoin::{BlockHash, Txid};
use serde::Deserialize;

use super::decode::{DecodedBlock, decode_tx};
use super::error::IngestError;
use super::rows::{Counts, Rows};
use super::rpc::{Pacer, RpcClient, RpcError};
use super::rpc_source::{PrevoutsOf, hex_decode};
use super::utxo::UtxoSet;
use crate::store::manifest::{Manifest, Neighbourhood, Part, Source};
use crate::store::{StoreError, schema, sink};
use crate::types::{Network, n64};

/// What to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The dataset directory; the neighbourhood goes to `data_dir/<network>/`.
    pub data_dir: PathBuf,
    /// Addresses, txids and `TXID:VOUT` outpoints.
    pub seeds: Vec<String>,
    pub backward: bool,
    /// Transactions followed from the seeds, as the trace's `--max-hops`.
    pub max_hops: u32,
    /// Outputs below this many satoshi are not followed.
    pub min_value: u64,
    /// Addresses where the walk stops (their labels' category is a stop category).
    pub stop_addresses: HashSet<String>,
    /// Requests in flight.
    pub concurrency: usize,
    /// Requests per second at most (0: unpaced).
    pub max_rps: f64,
}

/// What a fetch did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FetchSummary {
    pub network: Network,
    pub chain_dir: PathBuf,
    pub transactions: u64,
    pub blocks: u64,
    /// Requests sent to the API, replies taken from the cache, bytes received.
    pub requests: u64,
    pub cache_hits: u64,
    pub bytes: u64,
    pub elapsed_secs: f64,
    pub tip_height: u32,
    pub tip_hash: String,
    /// Followed outputs spent only by unconfirmed (mempool) transactions: the trace sees
    /// them as held.
    pub unconfirmed_spends: u64,
    /// The neighbourhood fetched again was the same: the dataset was kept as it was.
    pub unchanged: bool,
    /// The neighbourhood of an earlier, different fetch that this one replaced (its cases
    /// no longer verify against this dataset).
    pub replaced: Option<Neighbourhood>,
}

#[derive(Deserialize)]
struct ETx {
    txid: String,
    vin: Vec<EVin>,
    status: EStatus,
}

#[derive(Deserialize)]
struct EVin {
    txid: String,
    vout: u32,
    is_coinbase: bool,
    prevout: Option<EPrevout>,
}

#[derive(Deserialize)]
struct EPrevout {
    scriptpubkey: String,
    scriptpubkey_address: Option<String>,
    value: u64,
}

#[derive(Deserialize)]
struct EStatus {
    confirmed: bool,
    block_height: Option<u32>,
    block_hash: Option<String>,
}

#[derive(Deserialize)]
struct EOutspend {
    spent: bool,
    txid: Option<String>,
    status: Option<EStatus>,
}

#[derive(Deserialize)]
struct EBlock {
    id: String,
    height: u32,
    version: i32,
    timestamp: u32,
    tx_count: u32,
    size: u32,
    weight: u32,
    merkle_root: String,
    previousblockhash: Option<String>,
    nonce: u32,
    bits: u32,
}

/// One fetched transaction.
struct Got {
    json: ETx,
    tx: bitcoin::Transaction,
    block: BlockHash,
}

/// How a reply may be reused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cache {
    /// Never changes (a confirmed transaction, a block, a spent output's spender).
    Stable,
    /// Holds while the API's tip is the same (an address's history, outspends).
    AtTip,
    /// Always asked (the tip).
    No,
}

/// The API client with its cache and counters.
struct Api {
    /// Shows the requests sent so far (its prefix).
    pb: indicatif::ProgressBar,
    /// The tip's hash once known: the key of [`Cache::AtTip`] replies.
    tip: std::sync::OnceLock<String>,
    /// Replies of the last batch, cached only once the caller has read them without
    /// error (at the next batch, or [`Api::commit`]): a malformed reply is never kept.
    pending: std::sync::Mutex<Vec<(PathBuf, Vec<u8>)>>,
    client: Arc<RpcClient>,
    pacer: Arc<Pacer>,
    rt: tokio::runtime::Runtime,
    cache: PathBuf,
    concurrency: usize,
    requests: Arc<AtomicU64>,
    hits: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

use super::esplora::malformed as bad_reply;

impl Api {
    fn shown(&self, path: &str) -> String {
        format!("{}{path}", self.client.url().trim_end_matches('/'))
    }

    /// The cache file of `path`'s reply (keyed by the API, the path and, for
    /// [`Cache::AtTip`], the tip); `None` for [`Cache::No`].
    fn cache_file(&self, path: &str, how: Cache) -> Option<PathBuf> {
        let key = match how {
            Cache::Stable => format!("{}{path}", self.client.url()),
            Cache::AtTip => format!("{}{path}@{}", self.client.url(), self.tip.get()?),
            Cache::No => return None,
        };
        Some(
            self.cache
                .join(sha256::Hash::hash(key.as_bytes()).to_string()),
        )
    }

    /// GETs each path (`(path, how it may be cached)`), `concurrency` at a time, from the
    /// cache where it holds the reply; replies in order.
    fn many(&self, paths: &[(String, Cache)]) -> Result<Vec<Vec<u8>>, IngestError> {
        if crate::ingest::interrupted() {
            return Err(IngestError::Interrupted);
        }
        self.commit();
        let mut out: Vec<Option<Vec<u8>>> = vec![None; paths.len()];
        let mut todo = Vec::new();
        for (i, (p, how)) in paths.iter().enumerate() {
            // A tip-bound reply may also have been kept for good (all outputs spent).
            let cached = [Cache::Stable, *how]
                .into_iter()
                .filter(|c| *how != Cache::No && (*c == *how || *how == Cache::AtTip))
                .find_map(|c| std::fs::read(self.cache_file(p, c)?).ok());
            match cached {
                Some(b) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    out[i] = Some(b);
                }
                None => todo.push(i),
            }
        }
        let got: Vec<Result<Vec<u8>, RpcError>> =
            self.rt
                .block_on(super::rpc::in_order(todo.clone(), self.concurrency, |i| {
                    let (client, pacer) = (self.client.clone(), self.pacer.clone());
                    let (requests, bytes) = (self.requests.clone(), self.bytes.clone());
                    let (path, pb) = (paths[i].0.clone(), self.pb.clone());
                    async move {
                        let r =
                            super::esplora::get(&client, &pacer, &requests, &bytes, &path).await;
                        pb.set_prefix(format!("{} requests;", requests.load(Ordering::Relaxed)));
                        r
                    }
                }));
        for (&i, r) in todo.iter().zip(got) {
            let body = r?;
            if let Some(f) = self.cache_file(&paths[i].0, paths[i].1) {
                self.pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((f, body.clone()));
            }
            out[i] = Some(body);
        }
        Ok(out
            .into_iter()
            .map(|b| b.expect("every path answered"))
            .collect())
    }

    /// Caches the replies of the last batch (read without error since).
    fn commit(&self) {
        let done = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (f, body) in done {
            // The cache only saves requests: failing to write it loses nothing.
            let _ = sink::write_atomic(&f, &body);
        }
    }

    fn one(&self, path: &str, how: Cache) -> Result<Vec<u8>, IngestError> {
        Ok(self
            .many(&[(path.to_string(), how)])?
            .pop()
            .expect("one reply"))
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
        what: &str,
    ) -> Result<T, IngestError> {
        serde_json::from_slice(body)
            .map_err(|e| bad_reply(self.shown(path), format!("not {what}: {e}")))
    }

    /// The confirmed transactions `txids` (their JSON and raw bytes, checked against each
    /// other); unconfirmed ones are left out (they are not on the chain).
    fn txs(&self, txids: &[Txid]) -> Result<Vec<Got>, IngestError> {
        let paths: Vec<(String, Cache)> = txids
            .iter()
            .flat_map(|t| {
                [
                    (format!("/tx/{t}"), Cache::Stable),
                    (format!("/tx/{t}/raw"), Cache::Stable),
                ]
            })
            .collect();
        let bodies = self.many(&paths)?;
        let mut out = Vec::new();
        for (k, t) in txids.iter().enumerate() {
            let (jp, rp) = (&paths[2 * k].0, &paths[2 * k + 1].0);
            let json: ETx = self.json(jp, &bodies[2 * k], "a transaction")?;
            let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&bodies[2 * k + 1])
                .map_err(|e| bad_reply(self.shown(rp), format!("not a transaction: {e}")))?;
            if tx.compute_txid() != *t || json.txid != t.to_string() {
                return Err(bad_reply(
                    self.shown(rp),
                    format!("the reply is transaction {}, not {t}", tx.compute_txid()),
                ));
            }
            if json.vin.len() != tx.input.len() {
                return Err(bad_reply(
                    self.shown(jp),
                    "its inputs differ from the raw transaction's",
                ));
            }
            let outpoints_agree = json.vin.iter().zip(&tx.input).all(|(v, i)| {
                v.is_coinbase
                    || (v.txid == i.previous_output.txid.to_string()
                        && v.vout == i.previous_output.vout)
            });
            if !outpoints_agree {
                return Err(bad_reply(
                    self.shown(jp),
                    "its inputs' outpoints differ from the raw transaction's",
                ));
            }
            let (Some(_), Some(block)) =
                (json.status.block_height, json.status.block_hash.as_deref())
            else {
                continue;
            };
            if !json.status.confirmed {
                continue;
            }
            let block = block
                .parse()
                .map_err(|_| bad_reply(self.shown(jp), "status.block_hash is not a hash"))?;
            out.push(Got { json, tx, block });
        }
        Ok(out)
    }

    /// Every confirmed txid in an address's history, walking `/txs/chain` pages (real
    /// servers return a page's transactions in no fixed order and pages may overlap:
    /// deduplicated here).
    fn address_txids(&self, address: &str) -> Result<Vec<Txid>, IngestError> {
        #[derive(Deserialize)]
        struct Item {
            txid: String,
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut path = format!("/address/{address}/txs/chain");
        loop {
            let body = self.one(&path, Cache::AtTip)?;
            let page: Vec<Item> = self.json(&path, &body, "a list of transactions")?;
            let Some(last) = page.last().map(|i| i.txid.clone()) else {
                break;
            };
            let (before, full) = (seen.len(), page.len() >= CHAIN_PAGE);
            seen.extend(page.into_iter().map(|i| i.txid));
            // A short page is the last one.
            if seen.len() == before || !full {
                break;
            }
            path = format!("/address/{address}/txs/chain/{last}");
        }
        seen.iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| bad_reply(self.shown(&path), format!("{t:?} is not a txid")))
            })
            .collect()
    }
}

/// Transactions per `/address/:a/txs/chain` page (Esplora and electrs).
const CHAIN_PAGE: usize = 25;

/// A seed as the fetch reads it.
enum Seed {
    Address(String),
    Tx(Txid),
    Outpoint(Txid, u32),
}

fn parse_seed(s: &str) -> Result<Seed, IngestError> {
    let bad = |why: &str| IngestError::Input(format!("seed {s:?}: {why}"));
    if s.starts_with("cluster:") {
        return Err(bad(
            "a cluster: seed needs a whole dataset (its cluster is built from every transaction); with --source give addresses, txids, TXID:VOUT or @FILE",
        ));
    }
    if let Some((t, v)) = s.split_once(':') {
        let txid = t.parse().map_err(|_| bad("not TXID:VOUT"))?;
        let vout = v.parse().map_err(|_| bad("not TXID:VOUT"))?;
        return Ok(Seed::Outpoint(txid, vout));
    }
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Seed::Tx(s.parse().map_err(|_| bad("not a txid"))?));
    }
    Ok(Seed::Address(s.to_string()))
}

/// Fetches the neighbourhood of `opts.seeds` from the Esplora API behind `client` and
/// writes it as the dataset `opts.data_dir/<network>/` (replacing a neighbourhood there).
///
/// # Errors
/// The API fails or answers malformed (named by URL), a seed is not an address, txid or
/// outpoint, the directory holds a whole-block dataset (refused: use another `--data`), or
/// writing fails.
pub fn fetch(
    client: RpcClient,
    opts: &FetchOptions,
    pb: &indicatif::ProgressBar,
) -> Result<FetchSummary, IngestError> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| IngestError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    let api = Api {
        pb: pb.clone(),
        tip: std::sync::OnceLock::new(),
        pending: std::sync::Mutex::default(),
        client: Arc::new(client),
        pacer: Arc::new(Pacer::new(opts.max_rps)),
        rt,
        cache: opts.data_dir.join(".fetch-cache"),
        concurrency: opts.concurrency.max(1),
        requests: Arc::default(),
        hits: Arc::default(),
        bytes: Arc::default(),
    };
    let text = |path: &str, how: Cache| -> Result<String, IngestError> {
        let b = api.one(path, how)?;
        String::from_utf8(b)
            .map(|s| s.trim().to_string())
            .map_err(|_| bad_reply(api.shown(path), "the reply is not text"))
    };
    let genesis = text("/block-height/0", Cache::Stable).map_err(super::esplora::first_request)?;
    let network = super::esplora::network_of_genesis(api.shown("/block-height/0"), &genesis)?;
    let chain_dir = opts.data_dir.join(network.as_str());
    if let Some(m) = Manifest::load(&chain_dir)?
        && m.neighbourhood.is_none()
    {
        return Err(IngestError::Input(format!(
            "{} holds a dataset of whole blocks; fetch a neighbourhood into another --data (or trace that dataset without --source)",
            chain_dir.display()
        )));
    }
    let tip_height: u32 = text("/blocks/tip/height", Cache::No)?
        .parse()
        .map_err(|_| bad_reply(api.shown("/blocks/tip/height"), "not a height"))?;
    let tip_hash = text("/blocks/tip/hash", Cache::No)?;
    let _ = api.tip.set(tip_hash.clone());

    // Level 0: the seeds' transactions and the seed outputs. Addresses are checked here,
    // before any of them reaches the API.
    pb.set_message("fetching the seeds' transactions");
    let mut seeds: Vec<Seed> = opts
        .seeds
        .iter()
        .map(|s| parse_seed(s))
        .collect::<Result<_, _>>()?;
    for (s, given) in seeds.iter_mut().zip(&opts.seeds) {
        if let Seed::Address(a) = s {
            let parsed: bitcoin::Address<bitcoin::address::NetworkUnchecked> =
                a.parse().map_err(|e| {
                    let lower = a.to_ascii_lowercase();
                    IngestError::Input(
                        if ["bc1", "tb1", "bcrt1"].iter().any(|p| lower.starts_with(p)) {
                            format!(
                                "seed {given:?} is a bech32 address whose checksum fails: a mistyped character? copy the address again"
                            )
                        } else {
                            format!(
                                "seed {given:?} is not a Bitcoin address, txid or TXID:VOUT ({e})"
                            )
                        },
                    )
                })?;
            let of = Network::ALL
                .into_iter()
                .find(|n| parsed.is_valid_for_network(n.to_bitcoin()));
            let checked = parsed.require_network(network.to_bitcoin()).map_err(|_| {
                IngestError::Input(format!(
                    "seed {given:?} is {} address; the API follows {network}",
                    of.map_or("another network's".to_string(), |n| format!("a {n}"))
                ))
            })?;
            *a = checked.to_string();
        }
    }
    let mut level: BTreeSet<Txid> = BTreeSet::new();
    for s in &seeds {
        match s {
            Seed::Address(a) => level.extend(api.address_txids(a)?),
            Seed::Tx(t) | Seed::Outpoint(t, _) => {
                level.insert(*t);
            }
        }
    }
    let mut got: HashMap<Txid, Got> = HashMap::new();
    for g in api.txs(&level.iter().copied().collect::<Vec<_>>())? {
        got.insert(g.tx.compute_txid(), g);
    }
    let seed_addresses: HashSet<&str> = seeds
        .iter()
        .filter_map(|s| match s {
            Seed::Address(a) => Some(a.as_str()),
            _ => None,
        })
        .collect();
    // The outputs (forward) or transactions (backward) to follow from.
    let mut frontier: Vec<(Txid, u32)> = Vec::new();
    for s in &seeds {
        match s {
            Seed::Outpoint(t, v) => {
                let n = got.get(t).map_or(0, |g| g.tx.output.len());
                if *v as usize >= n && got.contains_key(t) {
                    return Err(IngestError::Input(format!(
                        "seed {t}:{v}: the transaction has {n} output(s), numbered from 0"
                    )));
                }
                frontier.push((*t, *v));
            }
            Seed::Tx(t) => {
                if let Some(g) = got.get(t) {
                    frontier.extend((0..g.tx.output.len()).map(|v| (*t, v as u32)));
                }
            }
            Seed::Address(_) => {}
        }
    }
    for t in &level {
        if let Some(g) = got.get(t) {
            for (v, o) in g.tx.output.iter().enumerate() {
                let a = super::script::classify(&o.script_pubkey).address(network);
                if a.is_some_and(|a| seed_addresses.contains(a.as_str())) {
                    frontier.push((*t, v as u32));
                }
            }
        }
    }
    let follows = |g: &Got, v: usize| -> bool {
        let o = &g.tx.output[v];
        let addr = super::script::classify(&o.script_pubkey).address(network);
        o.value.to_sat() >= opts.min_value
            && !addr.is_some_and(|a| opts.stop_addresses.contains(&a))
    };
    // Forward: the seed transactions are not processed by the trace; their spenders are
    // hop 1. Backward: the seed transactions are hop 1.
    let levels = if opts.backward {
        opts.max_hops
    } else {
        opts.max_hops + 1
    };
    pb.set_length(u64::from(levels));
    // Backward, the seed transactions are the first hop: expanded from the start.
    let mut expanded: HashSet<Txid> = if opts.backward {
        frontier.iter().map(|(t, _)| *t).collect()
    } else {
        HashSet::new()
    };
    let mut unconfirmed = 0u64;
    for depth in 0..levels {
        if crate::ingest::interrupted() {
            return Err(IngestError::Interrupted);
        }
        pb.set_message(format!(
            "hop {}: {} transactions so far",
            depth + 1,
            got.len()
        ));
        let next: BTreeSet<Txid> = if opts.backward {
            // Backward: the transactions that created the inputs of this level.
            let this: BTreeSet<Txid> = frontier.iter().map(|(t, _)| *t).collect();
            let mut next = BTreeSet::new();
            for t in &this {
                let Some(g) = got.get(t) else { continue };
                for vin in &g.json.vin {
                    if vin.is_coinbase {
                        continue;
                    }
                    let Some(p) = &vin.prevout else { continue };
                    let stop = p
                        .scriptpubkey_address
                        .as_ref()
                        .is_some_and(|a| opts.stop_addresses.contains(a));
                    if p.value < opts.min_value || stop {
                        continue;
                    }
                    let prev: Txid = vin.txid.parse().map_err(|_| {
                        bad_reply(
                            api.shown(&format!("/tx/{t}")),
                            "an input's txid is not a txid",
                        )
                    })?;
                    if !expanded.contains(&prev) {
                        next.insert(prev);
                    }
                }
            }
            next
        } else {
            // Forward: the spenders of the followed outputs.
            let by_tx: BTreeMap<Txid, Vec<u32>> =
                frontier.iter().fold(BTreeMap::new(), |mut m, (t, v)| {
                    m.entry(*t).or_insert_with(Vec::new).push(*v);
                    m
                });
            let txids: Vec<Txid> = by_tx.keys().copied().collect();
            let paths: Vec<(String, Cache)> = txids
                .iter()
                .map(|t| (format!("/tx/{t}/outspends"), Cache::AtTip))
                .collect();
            let bodies = api.many(&paths)?;
            let mut next = BTreeSet::new();
            for ((t, (path, _)), body) in txids.iter().zip(&paths).zip(&bodies) {
                let spends: Vec<EOutspend> = api.json(path, body, "a list of outspends")?;
                // Fully spent outspends never change: keep them for a rerun.
                if spends.iter().all(|s| s.spent)
                    && let Some(f) = api.cache_file(path, Cache::Stable)
                {
                    let _ = sink::write_atomic(&f, body);
                }
                for &v in &by_tx[t] {
                    let Some(s) = spends.get(v as usize) else {
                        return Err(bad_reply(
                            api.shown(path),
                            format!("no entry for output {v}"),
                        ));
                    };
                    let confirmed = s.status.as_ref().is_some_and(|st| st.confirmed);
                    // Spent in the mempool: not on the chain yet, so the trace holds it
                    // there; said, not silent.
                    if s.spent && !confirmed {
                        unconfirmed += 1;
                    }
                    if let (true, true, Some(spender)) = (s.spent, confirmed, &s.txid) {
                        let spender: Txid = spender
                            .parse()
                            .map_err(|_| bad_reply(api.shown(path), "a spender is not a txid"))?;
                        if !expanded.contains(&spender) {
                            next.insert(spender);
                        }
                    }
                }
            }
            next
        };
        let missing: Vec<Txid> = next
            .iter()
            .filter(|t| !got.contains_key(*t))
            .copied()
            .collect();
        for g in api.txs(&missing)? {
            got.insert(g.tx.compute_txid(), g);
        }
        // Every transaction reached is expanded once, at the first (lowest) hop it is
        // reached: a seed transaction that spends another seed's output too.
        frontier.clear();
        for t in next {
            let Some(g) = got.get(&t) else { continue }; // unconfirmed
            expanded.insert(t);
            if opts.backward {
                frontier.push((t, 0));
            } else {
                frontier.extend(
                    (0..g.tx.output.len())
                        .filter(|&v| follows(g, v))
                        .map(|v| (t, v as u32)),
                );
            }
        }
        pb.inc(1);
        if frontier.is_empty() {
            break;
        }
    }

    // Blocks: header fields and each transaction's position.
    pb.set_message(format!("fetching the blocks of {} transactions", got.len()));
    let hashes: BTreeSet<BlockHash> = got.values().map(|g| g.block).collect();
    let paths: Vec<(String, Cache)> = hashes
        .iter()
        .flat_map(|h| {
            [
                (format!("/block/{h}"), Cache::Stable),
                (format!("/block/{h}/txids"), Cache::Stable),
            ]
        })
        .collect();
    let bodies = api.many(&paths)?;
    let mut blocks: Vec<(EBlock, HashMap<Txid, u32>)> = Vec::new();
    for (k, h) in hashes.iter().enumerate() {
        let b: EBlock = api.json(&paths[2 * k].0, &bodies[2 * k], "a block")?;
        let ids: Vec<String> = api.json(&paths[2 * k + 1].0, &bodies[2 * k + 1], "txids")?;
        if b.id != h.to_string() || n64(ids.len()) != u64::from(b.tx_count) {
            return Err(bad_reply(
                api.shown(&paths[2 * k].0),
                "not the block asked for",
            ));
        }
        let pos = ids
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((t.parse().ok()?, i as u32)))
            .collect();
        blocks.push((b, pos));
    }
    blocks.sort_by_key(|(b, _)| b.height);
    let by_block: HashMap<BlockHash, Vec<Txid>> =
        got.iter().fold(HashMap::new(), |mut m, (t, g)| {
            m.entry(g.block).or_default().push(*t);
            m
        });

    // Rows, in chain order.
    let mut rows = Rows::new(network);
    let mut counts = Counts::default();
    for (b, pos) in &blocks {
        let hash: BlockHash = b.id.parse().expect("checked against the asked hash");
        let mut txids = by_block[&hash].clone();
        let mut at = Vec::with_capacity(txids.len());
        for t in &txids {
            at.push(*pos.get(t).ok_or_else(|| {
                bad_reply(
                    api.shown(&format!("/block/{hash}/txids")),
                    format!("transaction {t} is not in its block's list"),
                )
            })?);
        }
        let mut order: Vec<usize> = (0..txids.len()).collect();
        order.sort_by_key(|&i| at[i]);
        txids = order.iter().map(|&i| txids[i]).collect();
        let at: Vec<u32> = order.iter().map(|&i| at[i]).collect();
        let block = DecodedBlock {
            height: b.height,
            hash,
            prev_hash: match &b.previousblockhash {
                Some(p) => p
                    .parse()
                    .map_err(|_| bad_reply(api.shown(&format!("/block/{hash}")), "bad parent"))?,
                None => BlockHash::all_zeros(),
            },
            time: b.timestamp,
            version: b.version,
            merkle_root: b.merkle_root.clone(),
            bits: b.bits,
            nonce: b.nonce,
            size: b.size,
            stripped_size: b.weight.checked_sub(b.size).map(|x| x / 3).ok_or_else(|| {
                bad_reply(
                    api.shown(&format!("/block/{hash}")),
                    "its weight is below its size",
                )
            })?,
            weight: b.weight,
            txs: txids
                .iter()
                .map(|t| decode_tx(&got[t].tx, *t, network))
                .collect(),
            subset: Some((b.tx_count, at)),
        };
        // Each input's prevout from the API stands in for the UTXO set.
        let mut prev = PrevoutsOf::new(&block);
        for t in &txids {
            let g = &got[t];
            for (vin, input) in g.json.vin.iter().zip(&g.tx.input) {
                if vin.is_coinbase {
                    continue;
                }
                let p = vin.prevout.as_ref().ok_or_else(|| {
                    bad_reply(api.shown(&format!("/tx/{t}")), "an input has no prevout")
                })?;
                let script = hex_decode(&p.scriptpubkey).ok_or_else(|| {
                    bad_reply(
                        api.shown(&format!("/tx/{t}")),
                        "a prevout script is not hex",
                    )
                })?;
                prev.add(
                    input.previous_output.txid,
                    input.previous_output.vout,
                    p.value,
                    script,
                );
            }
        }
        let mut utxo = UtxoSet::new();
        for (txid, coins) in prev.finish() {
            utxo.add_tx(&txid, coins.into_iter())
                .map_err(|source| IngestError::UtxoSpill { source })?;
        }
        counts += Rows::apply(&block, &mut utxo, Some(&mut rows))?;
    }
    let (Some((first, _)), Some((last, _))) = (blocks.first(), blocks.last()) else {
        return Err(IngestError::Input(
            "the seeds have no confirmed transaction: nothing to trace".into(),
        ));
    };
    api.commit();
    let previous = Manifest::load(&chain_dir)?.and_then(|m| m.neighbourhood);
    let changed = write(
        &chain_dir,
        network,
        &api,
        (first.height, first.id.clone()),
        (last.height, last.id.clone()),
        &mut rows,
        Neighbourhood {
            api: api.client.url().to_string(),
            fetched_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            tip_height,
            tip_hash: tip_hash.clone(),
            direction: if opts.backward { "backward" } else { "forward" }.into(),
            seeds: opts.seeds.clone(),
            max_hops: opts.max_hops,
            min_value: opts.min_value,
            stop_addresses: opts.stop_addresses.len(),
            transactions: counts.txs,
            blocks: counts.blocks,
        },
    )?;
    pb.finish_and_clear();
    Ok(FetchSummary {
        network,
        chain_dir,
        transactions: counts.txs,
        blocks: counts.blocks,
        requests: api.requests.load(Ordering::Relaxed),
        cache_hits: api.hits.load(Ordering::Relaxed),
        bytes: api.bytes.load(Ordering::Relaxed),
        elapsed_secs: started.elapsed().as_secs_f64(),
        tip_height,
        tip_hash,
        unchanged: !changed,
        unconfirmed_spends: unconfirmed,
        replaced: previous.filter(|_| changed),
    })
}

/// Writes the rows as one part and the manifest, replacing an earlier neighbourhood;
/// returns whether anything changed (a neighbourhood fetched again the same is kept).
#[allow(clippy::too_many_arguments)]
fn write(
    chain_dir: &Path,
    network: Network,
    api: &Api,
    first: (u32, String),
    last: (u32, String),
    rows: &mut Rows,
    about: Neighbourhood,
) -> Result<bool, IngestError> {
    let old = Manifest::load(chain_dir)?;
    let name = sink::part_name(u64::from(first.0), u64::from(last.0));
    let mut writers = super::open_part(chain_dir, &name)?;
    for (w, batch) in writers.iter_mut().zip(rows.finish()?.iter()) {
        w.write(batch)?;
    }
    let staged = writers
        .into_iter()
        .map(sink::PartWriter::finish)
        .collect::<Result<Vec<_>, _>>()?;
    // The same neighbourhood fetched again (same request, same rows): the dataset stays
    // as it was, its manifest (and so every case that read it) unchanged.
    if let Some(old) = &old
        && let Some(n) = &old.neighbourhood
        && (
            &n.api,
            &n.direction,
            &n.seeds,
            n.max_hops,
            n.min_value,
            n.stop_addresses,
        ) == (
            &about.api,
            &about.direction,
            &about.seeds,
            about.max_hops,
            about.min_value,
            about.stop_addresses,
        )
        && let [p] = &old.parts[..]
        && schema::BITCOIN_TABLES.iter().zip(&staged).all(|(t, s)| {
            p.files
                .get(*t)
                .is_some_and(|f| f.file == name && f.sha256 == s.sha256)
        })
    {
        for s in staged {
            let _ = std::fs::remove_file(&s.tmp);
        }
        return Ok(false);
    }
    sink::commit(&staged)?;
    let files = super::part_files_entry(&name, staged);
    let mut m = Manifest::new(
        "bitcoin",
        network.as_str(),
        Source {
            kind: "esplora-neighbourhood".into(),
            location: api.client.url().to_string(),
            chain_selection: None,
        },
        // One part holds the neighbourhood, whatever its heights.
        (last.0 - first.0).saturating_add(1),
    );
    m.parts.push(Part {
        from: u64::from(first.0),
        to: u64::from(last.0),
        first_hash: first.1,
        last_hash: last.1,
        files,
    });
    m.neighbourhood = Some(about);
    m.save(chain_dir)?;
    // The files of an earlier neighbourhood with another name go.
    if let Some(old) = old {
        for p in old.parts {
            for (table, f) in p.files {
                if f.file != name {
                    let path = chain_dir.join(&table).join(&f.file);
                    std::fs::remove_file(&path)
                        .or_else(|e| {
                            if e.kind() == std::io::ErrorKind::NotFound {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })
                        .map_err(|source| StoreError::Io { path, source })?;
                }
            }
        }
    }
    Ok(true)
}
