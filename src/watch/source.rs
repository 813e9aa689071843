//! Where the watcher reads blocks: Bitcoin Core's JSON-RPC, an Esplora REST API, or an
//! Ethereum node's JSON-RPC, all through the one HTTP stack of [`RpcClient`] (TLS,
//! proxies, retries, secrets redacted).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bitcoin::Txid;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Block, Tx};
use crate::ingest::bitcoin::Fetched;
use crate::ingest::bitcoin::chain::ChainBlock;
use crate::ingest::bitcoin::decode::DecodedOutput;
use crate::ingest::bitcoin::esplora::EsploraSource;
use crate::ingest::bitcoin::rpc::{Pacer, RpcClient};
use crate::ingest::bitcoin::script::address_of;
use crate::ingest::bitcoin::utxo::Coin;
use crate::trace::Amount;
use crate::types::Network;

/// A block source.
#[derive(Debug)]
pub enum Source {
    /// Bitcoin Core (`getblockcount`, `getblockhash`, `getblock HASH 3`), and its network
    /// once asked (`getblockchaininfo`, once per watch, not once per block).
    BitcoinRpc(RpcClient, std::sync::OnceLock<Network>),
    /// An Esplora REST API (`/blocks/tip/height`, `/blocks/H` — ten hashes at a time,
    /// remembered —, `/block/HASH/raw`, and `/block/HASH/txs/START` only when a block
    /// spends outputs of earlier blocks: their prevouts).
    Esplora(Esplora),
    /// An Ethereum node (`eth_blockNumber`, `eth_getBlockByNumber N true`): top-level ETH
    /// transfers.
    Ethereum(RpcClient),
}

fn bad(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("the node's reply is not what was expected: {what}")
}

fn hex_u64(v: &Value, what: &str) -> anyhow::Result<u64> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{what} is not a hex string")))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| bad(format!("{what} {s:?}")))
}

fn hex_u128(v: &Value, what: &str) -> anyhow::Result<u128> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{what} is not a hex string")))?;
    let h = s.trim_start_matches("0x");
    if h.is_empty() {
        return Ok(0);
    }
    u128::from_str_radix(h, 16).map_err(|_| bad(format!("{what} {s:?}")))
}

/// An Esplora API with the block hashes it has listed and its network (from its genesis).
#[derive(Debug)]
pub struct Esplora {
    pub client: Arc<RpcClient>,
    hashes: std::sync::Mutex<std::collections::BTreeMap<u64, String>>,
    network: std::sync::OnceLock<crate::types::Network>,
    /// Unpaced; requests and reply bytes counted (the ingest's page fetcher wants them).
    pacer: Arc<Pacer>,
    traffic: (Arc<AtomicU64>, Arc<AtomicU64>),
}

impl Esplora {
    /// A source over `client`.
    pub fn new(client: RpcClient) -> Esplora {
        Esplora {
            client: Arc::new(client),
            hashes: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            network: std::sync::OnceLock::new(),
            pacer: Arc::new(Pacer::new(0.0)),
            traffic: Default::default(),
        }
    }

    async fn network(&self) -> anyhow::Result<crate::types::Network> {
        if let Some(n) = self.network.get() {
            return Ok(*n);
        }
        let g = String::from_utf8_lossy(&self.client.get("/block-height/0").await?)
            .trim()
            .to_string();
        let url = format!("{}/block-height/0", self.client.url().trim_end_matches('/'));
        let n = crate::ingest::bitcoin::esplora::network_of_genesis(
            crate::ingest::bitcoin::rpc::redact(&url),
            &g,
        )?;
        Ok(*self.network.get_or_init(|| n))
    }

    async fn hash_at(&self, height: u64) -> anyhow::Result<String> {
        if let Some(h) = self
            .hashes
            .lock()
            .ok()
            .and_then(|m| m.get(&height).cloned())
        {
            return Ok(h);
        }
        #[derive(Deserialize)]
        struct Summary {
            id: String,
            height: u64,
        }
        let path = format!("/blocks/{height}");
        let list: Vec<Summary> = serde_json::from_slice(&self.client.get(&path).await?)
            .map_err(|e| bad(format!("{path}: {e}")))?;
        let found = list
            .iter()
            .find(|b| b.height == height)
            .map(|b| b.id.clone());
        if let Ok(mut m) = self.hashes.lock() {
            for b in list {
                m.insert(b.height, b.id);
            }
            while m.len() > 64 {
                m.pop_first();
            }
        }
        found.ok_or_else(|| bad(format!("{path} does not list height {height}")))
    }

    /// Forgets the hashes listed (after a new tip they may have changed).
    pub fn forget(&self) {
        if let Ok(mut m) = self.hashes.lock() {
            m.clear();
        }
    }
}

/// A fetched Bitcoin block as the watcher reads it: per transaction, the (address, sat) of
/// each input (a coinbase's one input is `(None, 0)`) and of each output, addresses as the
/// ingest writes them ([`address_of`]).
///
/// # Errors
/// An input whose prevout the source did not give (a spend of unknown value is never
/// counted as 0).
fn watched_block(f: Fetched, network: Network) -> anyhow::Result<Block> {
    let block = f.block;
    let prevouts: HashMap<Txid, Vec<(u32, Coin)>> =
        f.prevouts.unwrap_or_default().into_iter().collect();
    let own: HashMap<Txid, &[DecodedOutput]> =
        block.txs.iter().map(|t| (t.txid, &t.outputs[..])).collect();
    let mut txs = Vec::with_capacity(block.txs.len());
    for t in &block.txs {
        let mut inputs = Vec::with_capacity(t.inputs.len());
        if t.is_coinbase {
            inputs.push((None, 0));
        }
        for (n, i) in t.inputs.iter().enumerate().filter(|_| !t.is_coinbase) {
            let from_own = own
                .get(&i.prev_txid)
                .and_then(|outs| outs.get(usize::try_from(i.prev_vout).ok()?))
                .map(|o| (o.address.clone(), Amount::from(o.value)));
            let from_prevouts = || {
                prevouts.get(&i.prev_txid).and_then(|v| {
                    v.iter()
                        .find(|(vout, _)| *vout == i.prev_vout)
                        .map(|(_, c)| {
                            (
                                address_of(c.script_type, &c.payload, network),
                                Amount::from(c.value),
                            )
                        })
                })
            };
            let Some(found) = from_own.or_else(from_prevouts) else {
                return Err(bad(format!(
                    "block {} ({}), tx {} input {n}: no prevout for {}:{}",
                    block.height, block.hash, t.txid, i.prev_txid, i.prev_vout
                )));
            };
            inputs.push(found);
        }
        txs.push(Tx {
            txid: t.txid.to_string(),
            inputs,
            outputs: t
                .outputs
                .iter()
                .map(|o| (o.address.clone(), Amount::from(o.value)))
                .collect(),
        });
    }
    Ok(Block {
        height: u64::from(block.height),
        hash: block.hash.to_string(),
        parent: block.prev_hash.to_string(),
        time: u64::from(block.time),
        txs,
    })
}

impl Source {
    /// `bitcoin` or `ethereum`.
    pub fn chain(&self) -> &'static str {
        match self {
            Source::Ethereum(_) => "ethereum",
            _ => "bitcoin",
        }
    }

    /// The URL, secrets hidden.
    pub fn shown(&self) -> String {
        let (kind, c) = match self {
            Source::BitcoinRpc(c, _) => ("bitcoin-rpc", c),
            Source::Esplora(e) => ("esplora", &*e.client),
            Source::Ethereum(c) => ("ethereum-rpc", c),
        };
        format!("{kind} {}", crate::ingest::bitcoin::rpc::redact(c.url()))
    }

    /// The Bitcoin network the source follows (`None` for Ethereum).
    ///
    /// # Errors
    /// The node fails or names no known network.
    pub async fn bitcoin_network(&self) -> anyhow::Result<Option<crate::types::Network>> {
        match self {
            Source::BitcoinRpc(c, known) => {
                if let Some(n) = known.get() {
                    return Ok(Some(*n));
                }
                let v = c.call("getblockchaininfo", json!([])).await?;
                let chain = v["chain"].as_str().unwrap_or_default();
                let n = crate::types::Network::from_name(chain)
                    .ok_or_else(|| bad(format!("getblockchaininfo names the chain {chain:?}")))?;
                Ok(Some(*known.get_or_init(|| n)))
            }
            Source::Esplora(e) => Ok(Some(e.network().await?)),
            Source::Ethereum(_) => Ok(None),
        }
    }

    /// The tip's height.
    ///
    /// # Errors
    /// The node fails or answers nonsense.
    pub async fn tip(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Source::BitcoinRpc(c, _) => c
                .call("getblockcount", json!([]))
                .await?
                .as_u64()
                .ok_or_else(|| bad("getblockcount"))?,
            Source::Esplora(e) => {
                // A new poll: the hashes listed before may be stale. The tip's list gives
                // the hashes of the last ten blocks at once.
                e.forget();
                let tip = String::from_utf8_lossy(&e.client.get("/blocks/tip/height").await?)
                    .trim()
                    .parse()
                    .map_err(|_| bad("/blocks/tip/height"))?;
                e.hash_at(tip).await?;
                tip
            }
            Source::Ethereum(c) => hex_u64(
                &c.call("eth_blockNumber", json!([])).await?,
                "eth_blockNumber",
            )?,
        })
    }

    /// The hash of the block at `height` on the node's chain.
    ///
    /// # Errors
    /// The node fails or has no such block.
    pub async fn hash_at(&self, height: u64) -> anyhow::Result<String> {
        Ok(match self {
            Source::BitcoinRpc(c, _) => c
                .call("getblockhash", json!([height]))
                .await?
                .as_str()
                .ok_or_else(|| bad("getblockhash"))?
                .to_string(),
            Source::Esplora(e) => e.hash_at(height).await?,
            Source::Ethereum(c) => {
                let b = c
                    .call(
                        "eth_getBlockByNumber",
                        json!([format!("{height:#x}"), false]),
                    )
                    .await?;
                b["hash"]
                    .as_str()
                    .ok_or_else(|| bad(format!("no block {height}")))?
                    .to_string()
            }
        })
    }

    /// The Bitcoin block at `height`: its hash on the node's chain.
    async fn chain_block(&self, height: u64) -> anyhow::Result<ChainBlock> {
        let hash = self.hash_at(height).await?;
        Ok(ChainBlock {
            height: u32::try_from(height).map_err(|_| bad(format!("height {height}")))?,
            hash: hash
                .parse()
                .map_err(|_| bad(format!("block hash {hash:?} at height {height}")))?,
            pos: None,
        })
    }

    /// The block at `height` with its transactions' addresses and values.
    ///
    /// A Bitcoin block is decoded by the ingest's own code (hash and merkle root checked)
    /// and every address is derived from its script, so that the watcher sees what the
    /// dataset shows, whatever the server claims.
    ///
    /// # Errors
    /// The node fails or answers nonsense.
    pub async fn block(&self, height: u64) -> anyhow::Result<Block> {
        match self {
            Source::BitcoinRpc(c, _) => {
                let at = self.chain_block(height).await?;
                let network = self
                    .bitcoin_network()
                    .await?
                    .ok_or_else(|| bad("network"))?;
                let raw = c
                    .call_raw("getblock", json!([at.hash.to_string(), 3]))
                    .await?;
                let fetched = crate::ingest::bitcoin::rpc_source::parse_block(&raw, &at, network)?;
                watched_block(fetched, network)
            }
            Source::Esplora(e) => {
                let at = self.chain_block(height).await?;
                let network = e.network().await?;
                let fetched = EsploraSource::block(
                    e.client.clone(),
                    e.pacer.clone(),
                    e.traffic.clone(),
                    at,
                    network,
                )
                .await?;
                watched_block(fetched, network)
            }
            Source::Ethereum(c) => {
                let b = c
                    .call(
                        "eth_getBlockByNumber",
                        json!([format!("{height:#x}"), true]),
                    )
                    .await?;
                let hash = b["hash"]
                    .as_str()
                    .ok_or_else(|| bad(format!("no block {height}")))?;
                let mut txs = Vec::new();
                for t in b["transactions"]
                    .as_array()
                    .ok_or_else(|| bad("transactions"))?
                {
                    let value = hex_u128(&t["value"], "value")?;
                    let from = t["from"].as_str().map(str::to_ascii_lowercase);
                    let to = t["to"].as_str().map(str::to_ascii_lowercase);
                    txs.push(Tx {
                        txid: t["hash"].as_str().ok_or_else(|| bad("hash"))?.to_string(),
                        inputs: vec![(from, value)],
                        outputs: vec![(to, value)],
                    });
                }
                Ok(Block {
                    height: hex_u64(&b["number"], "number")?,
                    hash: hash.to_string(),
                    parent: b["parentHash"].as_str().unwrap_or_default().to_string(),
                    time: hex_u64(&b["timestamp"], "timestamp")?,
                    txs,
                })
            }
        }
    }
}
