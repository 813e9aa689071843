//! Where the watcher reads blocks: Bitcoin Core's JSON-RPC, an Esplora REST API, or an
//! Ethereum node's JSON-RPC, all through the one HTTP stack of [`RpcClient`] (TLS,
//! proxies, retries, secrets redacted).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{Block, Tx};
use crate::ingest::bitcoin::rpc::RpcClient;
use crate::trace::Amount;

/// A block source.
#[derive(Debug)]
pub enum Source {
    /// Bitcoin Core (`getblockcount`, `getblockhash`, `getblock HASH 3`).
    BitcoinRpc(RpcClient),
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

#[derive(Deserialize)]
struct CoreBlock<'a> {
    hash: String,
    height: u64,
    time: u64,
    previousblockhash: Option<String>,
    #[serde(borrow)]
    tx: Vec<CoreTx<'a>>,
}

#[derive(Deserialize)]
struct CoreTx<'a> {
    txid: String,
    #[serde(borrow)]
    vin: Vec<CoreVin<'a>>,
    #[serde(borrow)]
    vout: Vec<CoreOut<'a>>,
}

#[derive(Deserialize)]
struct CoreVin<'a> {
    coinbase: Option<String>,
    #[serde(borrow)]
    prevout: Option<CoreOut<'a>>,
}

#[derive(Deserialize)]
struct CoreOut<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "scriptPubKey")]
    script: CoreScript,
}

#[derive(Deserialize)]
struct CoreScript {
    address: Option<String>,
}

/// An Esplora API with the block hashes it has listed and its network (from its genesis).
#[derive(Debug)]
pub struct Esplora {
    pub client: RpcClient,
    hashes: std::sync::Mutex<std::collections::BTreeMap<u64, String>>,
    network: std::sync::OnceLock<crate::types::Network>,
}

impl Esplora {
    /// A source over `client`.
    pub fn new(client: RpcClient) -> Esplora {
        Esplora {
            client,
            hashes: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            network: std::sync::OnceLock::new(),
        }
    }

    async fn network(&self) -> anyhow::Result<crate::types::Network> {
        if let Some(n) = self.network.get() {
            return Ok(*n);
        }
        let g = String::from_utf8_lossy(&self.client.get("/block-height/0").await?)
            .trim()
            .to_string();
        let n = crate::types::Network::ALL
            .into_iter()
            .find(|n| n.genesis_hash().to_string() == g)
            .ok_or_else(|| {
                bad(format!(
                    "/block-height/0 is {g:?}, the genesis of no Bitcoin network"
                ))
            })?;
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

#[derive(Deserialize)]
struct EsploraTx {
    txid: String,
    vin: Vec<EsploraVin>,
}

#[derive(Deserialize)]
struct EsploraVin {
    prevout: Option<EsploraOut>,
}

#[derive(Deserialize)]
struct EsploraOut {
    value: u64,
    scriptpubkey_address: Option<String>,
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
            Source::BitcoinRpc(c) => ("bitcoin-rpc", c),
            Source::Esplora(e) => ("esplora", &e.client),
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
            Source::BitcoinRpc(c) => {
                let v = c.call("getblockchaininfo", json!([])).await?;
                let chain = v["chain"].as_str().unwrap_or_default();
                crate::types::Network::from_name(chain)
                    .map(Some)
                    .ok_or_else(|| bad(format!("getblockchaininfo names the chain {chain:?}")))
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
            Source::BitcoinRpc(c) => c
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
            Source::BitcoinRpc(c) => c
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

    /// The block at `height` with its transactions' addresses and values.
    ///
    /// # Errors
    /// The node fails or answers nonsense.
    pub async fn block(&self, height: u64) -> anyhow::Result<Block> {
        match self {
            Source::BitcoinRpc(c) => {
                let hash = self.hash_at(height).await?;
                let raw = c.call_raw("getblock", json!([hash, 3])).await?;
                let b: CoreBlock<'_> =
                    serde_json::from_str(&raw).map_err(|e| bad(format!("getblock {hash}: {e}")))?;
                let sat = |v: &RawValue| -> anyhow::Result<Amount> {
                    crate::ingest::bitcoin::rpc_source::parse_btc(v.get())
                        .map(Amount::from)
                        .map_err(bad)
                };
                let mut txs = Vec::with_capacity(b.tx.len());
                for t in &b.tx {
                    let mut inputs = Vec::new();
                    for (n, i) in t.vin.iter().enumerate() {
                        match (&i.prevout, &i.coinbase) {
                            (Some(p), _) => inputs.push((p.script.address.clone(), sat(p.value)?)),
                            (None, Some(_)) => inputs.push((None, 0)),
                            // A spend of unknown value is never counted as 0.
                            (None, None) => {
                                return Err(bad(format!(
                                    "block {height} ({hash}), tx {} input {n}: no prevout; the node must answer getblock with verbosity 3 (Bitcoin Core >= 23)",
                                    t.txid
                                )));
                            }
                        }
                    }
                    let mut outputs = Vec::new();
                    for o in &t.vout {
                        outputs.push((o.script.address.clone(), sat(o.value)?));
                    }
                    txs.push(Tx {
                        txid: t.txid.clone(),
                        inputs,
                        outputs,
                    });
                }
                Ok(Block {
                    height: b.height,
                    hash: b.hash,
                    parent: b.previousblockhash.unwrap_or_default(),
                    time: b.time,
                    txs,
                })
            }
            Source::Esplora(e) => {
                let hash = e.hash_at(height).await?;
                let network = e.network().await?;
                let raw = e.client.get(&format!("/block/{hash}/raw")).await?;
                let expected: bitcoin::BlockHash = hash
                    .parse()
                    .map_err(|_| bad(format!("block hash {hash:?}")))?;
                let h32 = u32::try_from(height).map_err(|_| bad("height"))?;
                let block = crate::ingest::bitcoin::decode::decode_block(
                    &raw,
                    h32,
                    Some(expected),
                    network,
                )
                .map_err(|p| bad(format!("/block/{hash}/raw: {p}")))?;
                // Addresses and values of the outputs this block spends: its own from its
                // outputs, earlier ones from the transaction pages' prevouts.
                let mut own: std::collections::HashMap<(String, u32), (Option<String>, Amount)> =
                    std::collections::HashMap::new();
                for t in &block.txs {
                    for (n, o) in t.outputs.iter().enumerate() {
                        own.insert(
                            (t.txid.to_string(), u32::try_from(n).unwrap_or(u32::MAX)),
                            (o.address.clone(), Amount::from(o.value)),
                        );
                    }
                }
                let needs_pages = block
                    .txs
                    .iter()
                    .filter(|t| !t.is_coinbase)
                    .flat_map(|t| &t.inputs)
                    .any(|i| !own.contains_key(&(i.prev_txid.to_string(), i.prev_vout)));
                let mut prevouts: Vec<Vec<(Option<String>, Amount)>> = Vec::new();
                let mut start = 0usize;
                while needs_pages && start < block.txs.len() {
                    let path = format!("/block/{hash}/txs/{start}");
                    let page: Vec<EsploraTx> = serde_json::from_slice(&e.client.get(&path).await?)
                        .map_err(|err| bad(format!("{path}: {err}")))?;
                    if page.is_empty() {
                        return Err(bad(format!("{path}: an empty page")));
                    }
                    for (k, t) in page.iter().enumerate() {
                        if block.txs.get(start + k).map(|b| b.txid.to_string())
                            != Some(t.txid.clone())
                        {
                            return Err(bad(format!(
                                "{path}: transaction {} is {}, not the block's",
                                start + k,
                                t.txid
                            )));
                        }
                    }
                    start += page.len();
                    for t in page {
                        prevouts.push(
                            t.vin
                                .into_iter()
                                .map(|i| {
                                    i.prevout.map_or((None, 0), |p| {
                                        (p.scriptpubkey_address, Amount::from(p.value))
                                    })
                                })
                                .collect(),
                        );
                    }
                }
                let mut txs = Vec::with_capacity(block.txs.len());
                for (k, t) in block.txs.iter().enumerate() {
                    let inputs = if t.is_coinbase {
                        vec![(None, 0)]
                    } else {
                        let mut v = Vec::with_capacity(t.inputs.len());
                        for (n, i) in t.inputs.iter().enumerate() {
                            let found = own
                                .get(&(i.prev_txid.to_string(), i.prev_vout))
                                .cloned()
                                .or_else(|| prevouts.get(k).and_then(|p| p.get(n)).cloned());
                            // A spend of unknown value is never counted as 0.
                            let Some(found) = found else {
                                return Err(bad(format!(
                                    "block {height} ({hash}), tx {} input {n}: the API gave no prevout for {}:{}",
                                    t.txid, i.prev_txid, i.prev_vout
                                )));
                            };
                            v.push(found);
                        }
                        v
                    };
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
                    height,
                    hash,
                    parent: block.prev_hash.to_string(),
                    time: u64::from(block.time),
                    txs,
                })
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
