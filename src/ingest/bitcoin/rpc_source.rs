//! Bitcoin Core's JSON-RPC as a [`BlockSource`]: `getblockchaininfo`, `getblockhash`
//! (batched) and `getblock <hash> 3`, whose inputs carry their prevouts, so no UTXO set is
//! needed and any height range can be fetched directly.
//!
//! Each block is rebuilt from the node's header fields and raw transactions and decoded by
//! the same code as the blocks-directory path (which checks the hash and merkle root), so
//! both paths give the same rows byte for byte.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Transaction, Txid};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::chain::{BestChain, ChainBlock};
use super::decode::decode_block;
use super::error::IngestError;
use super::rpc::{RpcClient, RpcError};
use super::script::classify;
use super::utxo::Coin;
use super::{BlockSource, Fetched};
use crate::store::manifest::Source;
use crate::types::{Network, ix, n32, n64};

/// The node as a block source.
#[derive(Debug)]
pub struct RpcSource {
    client: Arc<RpcClient>,
    rt: tokio::runtime::Runtime,
    network: Network,
    concurrency: usize,
    /// Hashes of the best chain from the last call of [`RpcSource::best_chain`]: a
    /// following ingest re-reads only the top of the chain.
    cache: std::sync::Mutex<Vec<BlockHash>>,
}

/// How deep below the cached tip a following ingest re-checks hashes for a reorg; a
/// deeper reorganisation is noticed there and the whole list is fetched again.
const RECHECK_DEPTH: u32 = 144;

#[derive(Deserialize)]
struct RpcBlock<'a> {
    hash: String,
    height: u32,
    version: i32,
    merkleroot: String,
    time: u32,
    bits: String,
    nonce: u32,
    previousblockhash: Option<String>,
    #[serde(borrow)]
    tx: Vec<RpcTx<'a>>,
}

#[derive(Deserialize)]
struct RpcTx<'a> {
    hex: String,
    #[serde(borrow)]
    vin: Vec<RpcVin<'a>>,
}

#[derive(Deserialize)]
struct RpcVin<'a> {
    txid: Option<String>,
    vout: Option<u32>,
    #[serde(borrow)]
    prevout: Option<RpcPrevout<'a>>,
}

#[derive(Deserialize)]
struct RpcPrevout<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "scriptPubKey")]
    script_pub_key: RpcScript,
}

#[derive(Deserialize)]
struct RpcScript {
    hex: String,
}

/// Parses a BTC amount as Bitcoin Core prints it (`12.34500000`) into satoshi, exactly.
///
/// # Errors
/// Anything but a non-negative decimal with at most 8 fractional digits.
pub fn parse_btc(text: &str) -> Result<u64, crate::types::InvalidValue> {
    let bad = || {
        crate::types::InvalidValue(format!(
            "amount {text:?} is not a BTC amount with at most 8 decimals"
        ))
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 8
    {
        return Err(bad());
    }
    let whole: u64 = int.parse().map_err(|_| bad())?;
    let mut f = frac.to_string();
    while f.len() < 8 {
        f.push('0');
    }
    let sats: u64 = f.parse().map_err(|_| bad())?;
    whole
        .checked_mul(100_000_000)
        .and_then(|w| w.checked_add(sats))
        .ok_or_else(bad)
}

fn malformed(height: u32, hash: &BlockHash, what: impl std::fmt::Display) -> IngestError {
    IngestError::RpcReply {
        height,
        hash: hash.to_string(),
        what: what.to_string(),
    }
}

/// Turns a `getblock <hash> 3` reply into a decoded block with its prevouts.
///
/// # Errors
/// The reply is malformed, or is not the block of that height and hash.
pub fn parse_block(
    raw: &str,
    expected: &ChainBlock,
    network: Network,
) -> Result<Fetched, IngestError> {
    let (h, hash) = (expected.height, &expected.hash);
    let b: RpcBlock<'_> = serde_json::from_str(raw)
        .map_err(|e| malformed(h, hash, format!("malformed getblock reply: {e}")))?;
    if b.height != h || b.hash != hash.to_string() {
        return Err(malformed(
            h,
            hash,
            format!("the node returned block {} at height {}", b.hash, b.height),
        ));
    }
    let parse_hash = |s: &str| {
        s.parse::<BlockHash>()
            .map_err(|e| malformed(h, hash, format!("bad hash {s:?}: {e}")))
    };
    let header = bitcoin::block::Header {
        version: bitcoin::block::Version::from_consensus(b.version),
        prev_blockhash: match &b.previousblockhash {
            Some(p) => parse_hash(p)?,
            None => BlockHash::all_zeros(),
        },
        merkle_root: b
            .merkleroot
            .parse()
            .map_err(|e| malformed(h, hash, format!("bad merkle root: {e}")))?,
        time: b.time,
        bits: bitcoin::CompactTarget::from_consensus(
            u32::from_str_radix(&b.bits, 16)
                .map_err(|e| malformed(h, hash, format!("bad bits {:?}: {e}", b.bits)))?,
        ),
        nonce: b.nonce,
    };
    let mut txdata = Vec::with_capacity(b.tx.len());
    for (i, t) in b.tx.iter().enumerate() {
        let bytes = hex_decode(&t.hex)
            .ok_or_else(|| malformed(h, hash, format!("tx {i}: hex is not hex")))?;
        let tx: Transaction = deserialize(&bytes)
            .map_err(|e| malformed(h, hash, format!("tx {i} does not decode: {e}")))?;
        txdata.push(tx);
    }
    let raw_block = serialize(&bitcoin::Block { header, txdata });
    let block =
        decode_block(&raw_block, h, Some(*hash), network).map_err(|p| malformed(h, hash, p))?;
    // Prevouts of outputs created before this block, grouped by transaction.
    let mut prev = PrevoutsOf::new(&block);
    for (t, dtx) in b.tx.iter().zip(&block.txs) {
        if dtx.is_coinbase {
            continue;
        }
        for (n, vin) in t.vin.iter().enumerate() {
            let ctx = |w: &str| malformed(h, hash, format!("tx {} input {n}: {w}", dtx.txid));
            let (Some(txid), Some(vout), Some(p)) = (&vin.txid, vin.vout, &vin.prevout) else {
                return Err(ctx(
                    "no prevout; the node must answer getblock with verbosity 3 (Bitcoin Core >= 23)",
                ));
            };
            let txid: Txid = txid.parse().map_err(|_| ctx("bad txid"))?;
            let value = parse_btc(p.value.get()).map_err(|e| ctx(&e.to_string()))?;
            let script = hex_decode(&p.script_pub_key.hex)
                .ok_or_else(|| ctx("prevout script is not hex"))?;
            prev.add(txid, vout, value, script);
        }
    }
    let prevouts = Some(prev.finish());
    Ok(Fetched { block, prevouts })
}

/// The prevouts of one block's inputs, grouped by the transaction that created them; the
/// outputs the block itself creates are left out (the row writer resolves those).
pub(super) struct PrevoutsOf {
    own: HashSet<Txid>,
    map: BTreeMap<Txid, Vec<(u32, Coin)>>,
}

impl PrevoutsOf {
    pub(super) fn new(block: &super::decode::DecodedBlock) -> PrevoutsOf {
        PrevoutsOf {
            own: block.txs.iter().map(|t| t.txid).collect(),
            map: BTreeMap::new(),
        }
    }

    /// Whether `txid` is one of the block's own transactions.
    pub(super) fn is_own(&self, txid: &Txid) -> bool {
        self.own.contains(txid)
    }

    /// Records output `vout` of `txid`: `value` sat locked by the script `script_pubkey`.
    pub(super) fn add(&mut self, txid: Txid, vout: u32, value: u64, script_pubkey: Vec<u8>) {
        if self.own.contains(&txid) {
            return;
        }
        let c = classify(&bitcoin::ScriptBuf::from_bytes(script_pubkey));
        self.map.entry(txid).or_default().push((
            vout,
            Coin {
                value,
                script_type: c.script_type,
                payload: c.payload,
            },
        ));
    }

    pub(super) fn finish(self) -> Vec<super::Prevouts> {
        self.map.into_iter().collect()
    }
}

/// Lower- or upper-case hex to bytes; `None` if it is not hex.
pub(super) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    use bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(s).ok()
}

impl RpcSource {
    /// Connects: asks the node which chain it follows.
    ///
    /// # Errors
    /// The node cannot be reached within the retry budget, refuses the credentials, or
    /// follows a chain chaintrace does not know.
    pub fn connect(client: RpcClient, concurrency: usize) -> Result<RpcSource, IngestError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| IngestError::Io {
                path: "tokio runtime".into(),
                source,
            })?;
        let client = Arc::new(client);
        let info = rt.block_on(client.call("getblockchaininfo", json!([])))?;
        let chain = info.get("chain").and_then(|c| c.as_str()).unwrap_or("");
        let network = match chain {
            "main" => Network::Bitcoin,
            "test" => Network::Testnet,
            "testnet4" => Network::Testnet4,
            "signet" => Network::Signet,
            "regtest" => Network::Regtest,
            other => {
                return Err(IngestError::RpcReply {
                    height: 0,
                    hash: String::new(),
                    what: format!(
                        "getblockchaininfo reports chain {other:?}, which chaintrace does not know"
                    ),
                });
            }
        };
        Ok(RpcSource {
            client,
            rt,
            network,
            concurrency: concurrency.max(1),
            cache: Default::default(),
        })
    }

    /// The node's best chain: the hash of every height up to its tip, fetched in JSON-RPC
    /// batches. (Up to the tip even with `--to`: stored parts above it must be recognised
    /// as on the chain, not taken for another chain.)
    ///
    /// # Errors
    /// RPC failures.
    pub fn best_chain(&self, pb: &indicatif::ProgressBar) -> Result<BestChain, IngestError> {
        let info = self
            .rt
            .block_on(self.client.call("getblockchaininfo", json!([])))?;
        let tip =
            info.get("blocks")
                .and_then(|b| b.as_u64())
                .ok_or_else(|| IngestError::RpcReply {
                    height: 0,
                    hash: String::new(),
                    what: "getblockchaininfo has no `blocks`".into(),
                })?;
        let tip = u32::try_from(tip).map_err(|_| IngestError::RpcReply {
            height: 0,
            hash: String::new(),
            what: format!("getblockchaininfo reports {tip} blocks, beyond 32-bit heights"),
        })?;
        pb.set_message("fetching block hashes");
        pb.set_length(u64::from(tip) + 1);
        let cached =
            std::mem::take(&mut *self.cache.lock().expect("the cache lock is never poisoned"));
        let start = (n32(cached.len())).saturating_sub(RECHECK_DEPTH).min(tip);
        let mut hashes = if start > 0 {
            let top = self.rt.block_on(self.hashes(start, tip, pb))?;
            if cached.get(ix(start)) == top.first() {
                let mut h = cached;
                h.truncate(ix(start));
                h.extend(top);
                h
            } else {
                self.rt.block_on(self.hashes(0, tip, pb))?
            }
        } else {
            self.rt.block_on(self.hashes(0, tip, pb))?
        };
        hashes.truncate(ix(tip) + 1);
        self.cache
            .lock()
            .expect("the cache lock is never poisoned")
            .clone_from(&hashes);
        let blocks = hashes
            .into_iter()
            .enumerate()
            .map(|(h, hash)| ChainBlock {
                height: n32(h),
                hash,
                pos: None,
            })
            .collect();
        Ok(BestChain {
            blocks,
            stale: 0,
            deferred: None,
        })
    }

    async fn hashes(
        &self,
        from: u32,
        to: u32,
        pb: &indicatif::ProgressBar,
    ) -> Result<Vec<BlockHash>, IngestError> {
        const BATCH: u32 = 1000;
        let sem = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut set = tokio::task::JoinSet::new();
        let mut start = from;
        while start <= to {
            let end = (start + BATCH - 1).min(to);
            let client = self.client.clone();
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            set.spawn(async move {
                let params: Vec<serde_json::Value> = (start..=end).map(|h| json!([h])).collect();
                let r = client.batch("getblockhash", &params).await;
                drop(permit);
                (start, r)
            });
            start = end + 1;
        }
        let mut parts: BTreeMap<u32, Vec<serde_json::Value>> = BTreeMap::new();
        while let Some(r) = set.join_next().await {
            let (start, r) = r.expect("hash tasks do not panic");
            let values = r?;
            pb.inc(n64(values.len()));
            parts.insert(start, values);
        }
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        for (start, values) in parts {
            for (i, v) in values.into_iter().enumerate() {
                let h = start + n32(i);
                let s = v.as_str().ok_or_else(|| IngestError::RpcReply {
                    height: h,
                    hash: String::new(),
                    what: format!("getblockhash returned {v}"),
                })?;
                out.push(s.parse().map_err(|e| IngestError::RpcReply {
                    height: h,
                    hash: String::new(),
                    what: format!("getblockhash returned {s:?}: {e}"),
                })?);
            }
        }
        Ok(out)
    }
}

impl BlockSource for RpcSource {
    fn network(&self) -> Network {
        self.network
    }

    fn manifest_source(&self) -> Source {
        Source {
            kind: "rpc".into(),
            location: self.client.url().to_string(),
            chain_selection: None,
        }
    }

    fn has_prevouts(&self) -> bool {
        true
    }

    fn fetch(&self, blocks: &[ChainBlock]) -> (Vec<Fetched>, Option<IngestError>) {
        let network = self.network;
        let replies: Vec<Result<String, RpcError>> = self.rt.block_on(super::rpc::in_order(
            blocks.to_vec(),
            self.concurrency,
            |b| {
                let client = self.client.clone();
                async move {
                    client
                        .call_raw("getblock", json!([b.hash.to_string(), 3]))
                        .await
                }
            },
        ));
        // Decode in parallel; keep the prefix before the first failure.
        use rayon::prelude::*;
        let decoded: Vec<Result<Fetched, IngestError>> = blocks
            .par_iter()
            .zip(replies.into_par_iter())
            .map(|(b, r)| match r {
                Ok(raw) => parse_block(&raw, b, network),
                Err(e) => Err(IngestError::Rpc {
                    height: b.height,
                    hash: b.hash.to_string(),
                    source: e,
                }),
            })
            .collect();
        super::ok_prefix(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_amounts_parse_exactly() {
        assert_eq!(parse_btc("50.00000000"), Ok(5_000_000_000));
        assert_eq!(parse_btc("0.00361190"), Ok(361_190));
        assert_eq!(parse_btc("0.0036119"), Ok(361_190));
        assert_eq!(parse_btc("20999999.97690000"), Ok(2_099_999_997_690_000));
        assert_eq!(parse_btc("0"), Ok(0));
        assert!(parse_btc("1e-05").is_err());
        assert!(parse_btc("-1.0").is_err());
        assert!(parse_btc("0.000000001").is_err());
    }
}
