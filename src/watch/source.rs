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
    /// An Esplora REST API (`/blocks/tip/height`, `/block-height/H`, `/block/HASH`,
    /// `/block/HASH/txs/START`).
    Esplora(RpcClient),
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

#[derive(Deserialize)]
struct EsploraTx {
    txid: String,
    vin: Vec<EsploraVin>,
    vout: Vec<EsploraOut>,
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
            Source::Esplora(c) => ("esplora", c),
            Source::Ethereum(c) => ("ethereum-rpc", c),
        };
        format!("{kind} {}", crate::ingest::bitcoin::rpc::redact(c.url()))
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
            Source::Esplora(c) => String::from_utf8_lossy(&c.get("/blocks/tip/height").await?)
                .trim()
                .parse()
                .map_err(|_| bad("/blocks/tip/height"))?,
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
            Source::Esplora(c) => {
                String::from_utf8_lossy(&c.get(&format!("/block-height/{height}")).await?)
                    .trim()
                    .to_string()
            }
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
                    for i in &t.vin {
                        match &i.prevout {
                            Some(p) => inputs.push((p.script.address.clone(), sat(p.value)?)),
                            None => inputs.push((None, 0)),
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
            Source::Esplora(c) => {
                let hash = self.hash_at(height).await?;
                let head: Value = serde_json::from_slice(&c.get(&format!("/block/{hash}")).await?)
                    .map_err(|e| bad(format!("/block/{hash}: {e}")))?;
                let n = head["tx_count"].as_u64().ok_or_else(|| bad("tx_count"))?;
                let mut txs = Vec::new();
                let mut start = 0;
                while start < n {
                    let page: Vec<EsploraTx> = serde_json::from_slice(
                        &c.get(&format!("/block/{hash}/txs/{start}")).await?,
                    )
                    .map_err(|e| bad(format!("/block/{hash}/txs/{start}: {e}")))?;
                    if page.is_empty() {
                        break;
                    }
                    start += page.len() as u64;
                    for t in page {
                        txs.push(Tx {
                            txid: t.txid,
                            inputs: t
                                .vin
                                .into_iter()
                                .map(|i| {
                                    i.prevout.map_or((None, 0), |p| {
                                        (p.scriptpubkey_address, Amount::from(p.value))
                                    })
                                })
                                .collect(),
                            outputs: t
                                .vout
                                .into_iter()
                                .map(|o| (o.scriptpubkey_address, Amount::from(o.value)))
                                .collect(),
                        });
                    }
                }
                Ok(Block {
                    height,
                    hash,
                    parent: head["previousblockhash"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    time: head["timestamp"].as_u64().unwrap_or(0),
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
