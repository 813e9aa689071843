//! An Esplora REST API (Blockstream's esplora, mempool.space's electrs) as a
//! [`BlockSource`]: the best chain from `/blocks/tip/height` and `/blocks/:start_height`
//! (ten block ids per request), each block's bytes from `/block/:hash/raw`, and the
//! outputs its inputs spend from the `vin[].prevout` objects of `/block/:hash/txs/:start`
//! (25 transactions a page). So, like `getblock 3` over RPC, any height window can be
//! fetched without replaying the chain from genesis.
//!
//! The raw block is decoded by the same code as the blocks directory's (which checks its
//! hash and merkle root), so the same block gives the same rows byte for byte from every
//! source. API reference: <https://github.com/Blockstream/esplora/blob/master/API.md>.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bitcoin::BlockHash;
use bitcoin::hashes::Hash;
use serde::Deserialize;

use super::chain::{BestChain, ChainBlock};
use super::decode::decode_block;
use super::error::IngestError;
use super::rpc::{Pacer, RpcClient, RpcError};
use super::rpc_source::{PrevoutsOf, hex_decode};
use super::{BlockSource, Fetched, RangeOptions};
use crate::store::manifest::{Manifest, Source};
use crate::types::{Network, n32, n64};

/// An Esplora API as a block source.
#[derive(Debug)]
pub struct EsploraSource {
    client: Arc<RpcClient>,
    pacer: Arc<Pacer>,
    rt: tokio::runtime::Runtime,
    network: Network,
    concurrency: usize,
    /// Requests sent and reply bytes received so far (for the summary).
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

/// One entry of `/blocks/:start_height`.
#[derive(Deserialize)]
struct BlockSummary {
    id: String,
    height: u32,
}

/// One transaction of `/block/:hash/txs/:start`, as far as the ingest reads it.
#[derive(Deserialize)]
struct EsploraTx {
    txid: String,
    vin: Vec<EsploraVin>,
}

#[derive(Deserialize)]
struct EsploraVin {
    txid: String,
    vout: u32,
    is_coinbase: bool,
    prevout: Option<EsploraPrevout>,
}

#[derive(Deserialize)]
struct EsploraPrevout {
    scriptpubkey: String,
    /// Satoshi, an integer in the JSON.
    value: u64,
}

/// The network whose genesis block hash is `genesis` (the API's `/block-height/0`, asked at
/// `url`).
///
/// # Errors
/// A genesis block of no known network (a custom signet).
pub(crate) fn network_of_genesis(url: String, genesis: &str) -> Result<Network, IngestError> {
    Network::ALL
        .into_iter()
        .find(|n| n.genesis_hash().to_string() == genesis)
        .ok_or_else(|| {
            malformed(
                url,
                format!(
                    "block 0 is {genesis:?}, the genesis block of no network chaintrace knows (bitcoin, testnet, testnet4, signet, regtest)"
                ),
            )
        })
}

/// A reply that is not what the API documents.
pub(super) fn malformed(url: String, what: impl std::fmt::Display) -> IngestError {
    IngestError::RpcCall(RpcError::NotApi {
        url,
        what: what.to_string(),
    })
}

impl EsploraSource {
    /// Connects to the API at `client`'s base URL (e.g. `https://blockstream.info/api`) and
    /// tells its network by the hash of block 0.
    ///
    /// # Errors
    /// The API cannot be reached within the retry budget, answers with something else, or
    /// follows a chain whose genesis block chaintrace does not know (a custom signet).
    pub fn connect(
        client: RpcClient,
        concurrency: usize,
        max_rps: f64,
    ) -> Result<EsploraSource, IngestError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| IngestError::Io {
                path: "tokio runtime".into(),
                source,
            })?;
        let mut s = EsploraSource {
            client: Arc::new(client),
            pacer: Arc::new(Pacer::new(max_rps)),
            rt,
            network: Network::Bitcoin,
            concurrency: concurrency.max(1),
            requests: Arc::default(),
            bytes: Arc::default(),
        };
        let genesis = s.text("/block-height/0").map_err(first_request)?;
        s.network = network_of_genesis(s.shown("/block-height/0"), &genesis)?;
        Ok(s)
    }

    /// `path` under the API's base URL, with its secrets hidden.
    fn shown(&self, path: &str) -> String {
        format!("{}{path}", self.client.url().trim_end_matches('/'))
    }

    /// Requests sent and reply bytes received so far.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    fn text(&self, path: &str) -> Result<String, IngestError> {
        let body = self.rt.block_on(get(
            &self.client,
            &self.pacer,
            &self.requests,
            &self.bytes,
            path,
        ))?;
        String::from_utf8(body)
            .map(|s| s.trim().to_string())
            .map_err(|_| malformed(self.shown(path), "the reply is not text"))
    }

    /// The API's best chain: its tip height (or `to`), and the hashes of the heights this
    /// ingest needs ([`heights_needed`]); the other heights hold an all-zero placeholder
    /// that the ingest never reads.
    ///
    /// # Errors
    /// Request failures, or a reply that is not a list of blocks of those heights.
    pub fn best_chain(
        &self,
        manifest: Option<&Manifest>,
        opts: &RangeOptions,
        pb: &indicatif::ProgressBar,
    ) -> Result<BestChain, IngestError> {
        let path = "/blocks/tip/height";
        let tip: u32 = self
            .text(path)?
            .parse()
            .map_err(|_| malformed(self.shown(path), "the tip height is not a number"))?;
        // The chain runs to the API's tip even with `--to` (stored parts above it must be
        // recognised as on the chain); only the heights to write stop at `--to`.
        let mut want = heights_needed(manifest, opts, tip);
        pb.set_message("fetching block hashes");
        pb.set_length(n64(want.len()));
        let mut hashes: BTreeMap<u32, BlockHash> = BTreeMap::new();
        // `/blocks/:h` lists h, h-1, …, h-9: walk down from the highest height still wanted.
        while let Some(&top) = want.last() {
            let path = format!("/blocks/{top}");
            let body = self.rt.block_on(get(
                &self.client,
                &self.pacer,
                &self.requests,
                &self.bytes,
                &path,
            ))?;
            let list: Vec<BlockSummary> = serde_json::from_slice(&body)
                .map_err(|e| malformed(self.shown(&path), format!("not a list of blocks: {e}")))?;
            if list.first().is_none_or(|b| b.height != top) {
                return Err(malformed(
                    self.shown(&path),
                    format!("the list does not start at height {top}"),
                ));
            }
            for b in list {
                let hash: BlockHash = b.id.parse().map_err(|_| {
                    malformed(self.shown(&path), format!("{:?} is not a block hash", b.id))
                })?;
                hashes.insert(b.height, hash);
            }
            let before = want.len();
            want.retain(|h| !hashes.contains_key(h));
            pb.inc(n64(before - want.len()));
        }
        let blocks = (0..=tip)
            .map(|height| ChainBlock {
                height,
                hash: hashes
                    .get(&height)
                    .copied()
                    .unwrap_or_else(BlockHash::all_zeros),
                pos: None,
            })
            .collect();
        Ok(BestChain {
            blocks,
            stale: 0,
            deferred: None,
        })
    }

    /// Fetches one block (`/block/HASH/raw`) and decodes it with the blocks-directory
    /// path's decoder (hash and merkle root checked), then the prevouts of its inputs that
    /// spend earlier blocks from `/block/HASH/txs/START` pages: each page must list the
    /// block's transactions in order with the block's outpoints, and each prevout's script
    /// is read from `scriptpubkey` (its address is derived here, never taken from the
    /// server). `traffic` counts requests and reply bytes.
    ///
    /// # Errors
    /// The request fails, or the reply is not that block or its pages
    /// ([`IngestError::Rpc`] naming the height, hash and URL).
    pub(crate) async fn block(
        client: Arc<RpcClient>,
        pacer: Arc<Pacer>,
        traffic: (Arc<AtomicU64>, Arc<AtomicU64>),
        b: ChainBlock,
        network: Network,
    ) -> Result<Fetched, IngestError> {
        let (height, hash) = (b.height, b.hash);
        if hash == BlockHash::all_zeros() {
            return Err(IngestError::RpcReply {
                height,
                hash: String::new(),
                what: "internal: the hash of this height was not fetched".into(),
            });
        }
        let shown = |p: &str| format!("{}{p}", client.url().trim_end_matches('/'));
        let fail = |source: RpcError| IngestError::Rpc {
            height,
            hash: hash.to_string(),
            source,
        };
        let raw_path = format!("/block/{hash}/raw");
        let raw = get(&client, &pacer, &traffic.0, &traffic.1, &raw_path)
            .await
            .map_err(fail)?;
        let block = decode_block(&raw, height, Some(hash), network).map_err(|p| {
            fail(RpcError::NotApi {
                url: shown(&raw_path),
                what: format!("not block {hash} of height {height}: {p}"),
            })
        })?;
        // Pages of transactions, only if an input spends an output of an earlier block.
        let mut prev = PrevoutsOf::new(&block);
        let needs_pages = block
            .txs
            .iter()
            .filter(|t| !t.is_coinbase)
            .flat_map(|t| &t.inputs)
            .any(|i| !prev.is_own(&i.prev_txid));
        let mut start = 0usize;
        while needs_pages && start < block.txs.len() {
            let path = format!("/block/{hash}/txs/{start}");
            let body = get(&client, &pacer, &traffic.0, &traffic.1, &path)
                .await
                .map_err(fail)?;
            let bad = |what: String| {
                fail(RpcError::NotApi {
                    url: shown(&path),
                    what,
                })
            };
            let page: Vec<EsploraTx> = serde_json::from_slice(&body)
                .map_err(|e| bad(format!("not a list of transactions: {e}")))?;
            if page.is_empty() {
                return Err(bad(format!(
                    "an empty page, but the block has {} transactions",
                    block.txs.len()
                )));
            }
            for (k, t) in page.iter().enumerate() {
                let Some(dtx) = block.txs.get(start + k) else {
                    return Err(bad(format!(
                        "more transactions than the block's {}",
                        block.txs.len()
                    )));
                };
                if t.txid != dtx.txid.to_string() || t.vin.len() != dtx.inputs.len() {
                    return Err(bad(format!(
                        "transaction {} of the page is {}, the block has {} there",
                        start + k,
                        t.txid,
                        dtx.txid
                    )));
                }
                for (n, (vin, input)) in t.vin.iter().zip(&dtx.inputs).enumerate() {
                    if vin.is_coinbase || prev.is_own(&input.prev_txid) {
                        continue;
                    }
                    let at = || format!("tx {} input {n}", dtx.txid);
                    if vin.txid != input.prev_txid.to_string() || vin.vout != input.prev_vout {
                        return Err(bad(format!(
                            "{}: the outpoint differs from the block's",
                            at()
                        )));
                    }
                    let Some(p) = &vin.prevout else {
                        return Err(bad(format!("{}: no prevout", at())));
                    };
                    let script = hex_decode(&p.scriptpubkey)
                        .ok_or_else(|| bad(format!("{}: the prevout script is not hex", at())))?;
                    prev.add(input.prev_txid, vin.vout, p.value, script);
                }
            }
            start += page.len();
        }
        Ok(Fetched {
            block,
            prevouts: Some(prev.finish()),
        })
    }
}

/// The first request's failure, with a hint when the server is there but the path is not
/// an Esplora API's.
pub(super) fn first_request(e: IngestError) -> IngestError {
    match e {
        IngestError::RpcCall(RpcError::Http {
            url,
            status,
            excerpt,
        }) if status == 404 || status == 400 => IngestError::RpcCall(RpcError::NotApi {
            url,
            what: format!(
                "HTTP {status}: {excerpt:?}; the server is there but this is not an Esplora API's path: give the API's base URL (e.g. https://blockstream.info/api, https://mempool.space/api)"
            ),
        }),
        e => e,
    }
}

/// One paced GET, counted (requests sent, reply bytes).
pub(super) async fn get(
    client: &RpcClient,
    pacer: &Pacer,
    requests: &AtomicU64,
    bytes: &AtomicU64,
    path: &str,
) -> Result<Vec<u8>, RpcError> {
    pacer.wait().await;
    requests.fetch_add(1, Ordering::Relaxed);
    let body = client.get(path).await?;
    bytes.fetch_add(n64(body.len()), Ordering::Relaxed);
    Ok(body)
}

/// The heights whose hashes an ingest of `opts` into a dataset with `manifest` needs from
/// a source that lists hashes one request per few heights: every height it may write, and
/// the first and last height of every stored part (to check they are still on the best
/// chain). Heights inside full stored parts that the ingest keeps are left out.
///
/// Ascending; none above `tip`.
pub fn heights_needed(manifest: Option<&Manifest>, opts: &RangeOptions, tip: u32) -> Vec<u32> {
    let parts = manifest.map_or(&[][..], |m| &m.parts[..]);
    let part_blocks = match manifest {
        Some(m) if !parts.is_empty() => m.part_blocks.max(1),
        _ => opts.part_blocks.max(1),
    };
    let to = opts.to.unwrap_or(tip).min(tip);
    let mut out: BTreeSet<u32> = parts
        .iter()
        .flat_map(|p| [n32(p.from), n32(p.to)])
        .filter(|&h| h <= tip)
        .collect();
    let window = super::plan_window(manifest, opts.from, true);
    match opts.from {
        // `--from` rewrites every part from its part's start (or the window's) to the end
        // of the parts it touches.
        Some(f) => {
            let end = parts.iter().map(|p| n32(p.to)).fold(to, u32::max).min(tip);
            let start = window.map_or(f / part_blocks * part_blocks, |w| {
                (f / part_blocks * part_blocks).max(w)
            });
            out.extend(start..=end);
        }
        None => {
            // A stored part that ends on the grid is complete: only its ends are checked.
            let kept = |h: u32| {
                parts.iter().any(|p| {
                    (p.to + 1) % u64::from(part_blocks) == 0
                        && p.from < u64::from(h)
                        && u64::from(h) < p.to
                })
            };
            out.extend((window.unwrap_or(0)..=to).filter(|&h| !kept(h)));
        }
    }
    out.into_iter().collect()
}

impl BlockSource for EsploraSource {
    fn network(&self) -> Network {
        self.network
    }

    fn manifest_source(&self) -> Source {
        Source {
            kind: "esplora".into(),
            location: self.client.url().to_string(),
            chain_selection: None,
        }
    }

    fn has_prevouts(&self) -> bool {
        true
    }

    fn fetch(&self, blocks: &[ChainBlock]) -> (Vec<Fetched>, Option<IngestError>) {
        let network = self.network;
        let traffic = (self.requests.clone(), self.bytes.clone());
        let results = self.rt.block_on(super::rpc::in_order(
            blocks.to_vec(),
            self.concurrency,
            |b| {
                let (client, pacer, traffic) =
                    (self.client.clone(), self.pacer.clone(), traffic.clone());
                EsploraSource::block(client, pacer, traffic, b, network)
            },
        ));
        super::ok_prefix(results)
    }
}
