//! `chaintrace ingest ethereum`: any Ethereum JSON-RPC node → `data/ethereum/` Parquet
//! (blocks, transactions with their receipt fields, token_transfers, internal_transfers), on
//! the same height-aligned part grid, atomic part files and manifest as the Bitcoin ingest.
//!
//! The node is read with chaintrace's own JSON-RPC client (the one the Bitcoin RPC ingest
//! uses: pooled keep-alive connections, timeouts, retries with capped backoff) rather than
//! alloy: the ingest needs only five methods, reads every quantity digit-exact from the JSON
//! text, and keeps the build lean (see the closing note of issue #8).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::tables::eth_blocks::EthBlocks;
use crate::tables::eth_internal_transfers::InternalTransfers;
use crate::tables::eth_token_transfers::TokenTransfers;
use crate::tables::eth_transactions::EthTransactions;
use crate::tables::{Table, TableDef};
use arrow_array::builder::{StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use serde_json::{Value, json};

use super::decode::{self, Frame, Receipt, TokenTransfer, Transaction};
use crate::ingest::bitcoin::rpc::{Pacer, RpcClient, RpcError, in_order};
use crate::store::manifest::{Manifest, Part, PartFile, Reorg, Source, Tip};
use crate::store::{reader, sink};
use crate::types::{ix, n32, n64};

/// Why an Ethereum ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum EthIngestError {
    /// A wrong request or a node that does not answer as expected (exit 1).
    #[error("{0}")]
    Input(String),
    /// Where an error arose (a block, a receipt), and the error.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Read(#[from] crate::store::reader::ReadError),
    #[error("cannot build a table: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(transparent)]
    Decode(#[from] super::decode::DecodeError),
}

/// Results of this module.
pub type Result<T, E = EthIngestError> = std::result::Result<T, E>;

/// Adds where an error arose.
trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> Context<T>
    for std::result::Result<T, E>
{
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| EthIngestError::Context {
            context: context(),
            source: e.into(),
        })
    }
}

/// How internal transfers are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traces {
    /// `debug_traceBlockByNumber` with geth's `callTracer`.
    Geth,
    /// `trace_block` (Parity/OpenEthereum, Erigon, Nethermind, anvil).
    Parity,
    /// No internal transfers.
    None,
}

/// What to ingest.
#[derive(Clone, Debug)]
pub struct EthOptions {
    pub data: PathBuf,
    pub from: u64,
    pub to: Option<u64>,
    pub concurrency: usize,
    pub traces: Traces,
    pub part_blocks: u32,
    /// At most this many requests per second (0: no limit).
    pub max_rps: f64,
    /// Replace a dataset of another chain (one the node's chain leaves more than
    /// [`crate::ingest::bitcoin::MAX_REORG_DEPTH`] blocks below its tip) instead of refusing.
    pub replace: bool,
}

/// What an ingest did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EthSummary {
    pub chain_dir: PathBuf,
    pub chain_id: u64,
    pub from: u64,
    pub to: u64,
    pub blocks: u64,
    pub transactions: u64,
    pub token_transfers: u64,
    pub internal_transfers: u64,
    pub parts_written: usize,
    pub parts_kept: usize,
    pub seconds: f64,
    pub receipts_per_tx_fallback: bool,
}

/// The rows of a part.
#[derive(Default)]
struct Rows {
    blocks: Vec<decode::Block>,
    txs: Vec<(Transaction, Receipt)>,
    tokens: Vec<(u64, u32, TokenTransfer)>,
    internal: Vec<(u64, String, Frame)>,
    rewards: Vec<(u64, decode::Reward)>,
}

struct Node {
    client: Arc<RpcClient>,
    pacer: Arc<Pacer>,
    concurrency: usize,
    /// Ethereum mainnet (chain id 1 and mainnet's genesis): without `trace_block`'s reward
    /// traces, proof-of-work rewards are computed from its fork schedule.
    mainnet: bool,
}

impl Node {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.pacer.wait().await;
        self.client.call(method, params).await
    }

    /// Calls `method` once per params, `concurrency` at a time, results in order.
    async fn many(&self, method: &str, params: Vec<Value>) -> Vec<Result<Value, RpcError>> {
        in_order(params, self.concurrency, |p| {
            let (client, pacer, method) =
                (self.client.clone(), self.pacer.clone(), method.to_string());
            async move {
                pacer.wait().await;
                client.call(&method, p).await
            }
        })
        .await
    }
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

fn is_missing_method(e: &RpcError) -> bool {
    matches!(e, RpcError::Node { code, .. } if *code == -32601 || *code == -32600)
        || matches!(e, RpcError::Node { message, .. } if message.to_ascii_lowercase().contains("not supported") || message.to_ascii_lowercase().contains("does not exist"))
}

/// Fetches and decodes blocks `from..=to`.
async fn fetch(node: &Node, from: u64, to: u64, traces: Traces, per_tx: &mut bool) -> Result<Rows> {
    let nums: Vec<u64> = (from..=to).collect();
    let replies = node
        .many(
            "eth_getBlockByNumber",
            nums.iter().map(|&n| json!([hex(n), true])).collect(),
        )
        .await;
    let mut rows = Rows::default();
    let mut txs_of: Vec<Vec<Transaction>> = Vec::new();
    for (n, r) in nums.iter().zip(replies) {
        let v = r.ctx(|| format!("block {n}"))?;
        if v.is_null() {
            return Err(EthIngestError::Input(format!(
                "block {n}: the node does not have it (is --to beyond its tip?)"
            )));
        }
        let (b, t) = decode::decode_block(&v)?;
        if b.number != *n {
            return Err(EthIngestError::Input(format!(
                "block {n}: the node answered with block {}",
                b.number
            )));
        }
        rows.blocks.push(b);
        txs_of.push(t);
    }
    // Receipts: one call per block, or per transaction on nodes without eth_getBlockReceipts.
    let mut receipts: Vec<Vec<Receipt>> = Vec::new();
    if !*per_tx {
        let replies = node
            .many(
                "eth_getBlockReceipts",
                nums.iter().map(|&n| json!([hex(n)])).collect(),
            )
            .await;
        let mut ok = Vec::new();
        for (n, r) in nums.iter().zip(replies) {
            match r {
                Ok(v) => {
                    let a = v.as_array().ok_or_else(|| {
                        EthIngestError::Input(format!(
                            "block {n}: eth_getBlockReceipts returned {v}, not a list"
                        ))
                    })?;
                    ok.push(
                        a.iter()
                            .map(decode::decode_receipt)
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                Err(e) if is_missing_method(&e) => {
                    *per_tx = true;
                    eprintln!(
                        "chaintrace: the node has no eth_getBlockReceipts ({e}); reading receipts one transaction at a time"
                    );
                    break;
                }
                Err(e) => {
                    return Err(EthIngestError::Context {
                        context: format!("receipts of block {n}"),
                        source: Box::new(e),
                    });
                }
            }
        }
        if !*per_tx {
            receipts = ok;
        }
    }
    if *per_tx {
        receipts.clear();
        for t in &txs_of {
            let replies = node
                .many(
                    "eth_getTransactionReceipt",
                    t.iter().map(|x| json!([x.hash])).collect(),
                )
                .await;
            let mut rs = Vec::new();
            for (x, r) in t.iter().zip(replies) {
                let v = r.ctx(|| format!("receipt of {}", x.hash))?;
                rs.push(decode::decode_receipt(&v)?);
            }
            receipts.push(rs);
        }
    }
    let first_block = rows.blocks.len() - nums.len();
    for (k, ((n, t), rs)) in nums.iter().zip(&txs_of).zip(&receipts).enumerate() {
        if t.len() != rs.len() {
            return Err(EthIngestError::Input(format!(
                "block {n}: {} transactions but {} receipts",
                t.len(),
                rs.len()
            )));
        }
        for (tx, rc) in t.iter().zip(rs) {
            if tx.hash != rc.tx_hash {
                return Err(EthIngestError::Input(format!(
                    "block {n}: receipt of {} where {} was expected",
                    rc.tx_hash, tx.hash
                )));
            }
            let mut tokens = decode::token_transfers(&tx.hash, &rc.logs);
            tokens.extend(decode::erc1155_transfers(&tx.hash, &rc.logs));
            tokens.sort_by_key(|t| t.log_index);
            for tt in tokens {
                rows.tokens.push((*n, tx.tx_index, tt));
            }
            let unparsed = decode::unparsed_transfers(&rc.logs);
            if !unparsed.is_empty() {
                eprintln!(
                    "chaintrace: warning: block {n} tx {}: Transfer log(s) {unparsed:?} have a shape no token standard gives; kept in blocks.unparsed_transfer_logs, not decoded",
                    tx.hash
                );
            }
            rows.blocks[first_block + k]
                .unparsed_transfer_logs
                .extend(unparsed);
            rows.txs.push((tx.clone(), rc.clone()));
        }
    }
    if traces != Traces::None {
        let (method, params): (&str, Vec<Value>) = if traces == Traces::Geth {
            (
                "debug_traceBlockByNumber",
                nums.iter()
                    .map(|&n| json!([hex(n), {"tracer": "callTracer"}]))
                    .collect(),
            )
        } else {
            (
                "trace_block",
                nums.iter().map(|&n| json!([hex(n)])).collect(),
            )
        };
        let replies = node.many(method, params).await;
        for ((n, t), r) in nums.iter().zip(&txs_of).zip(replies) {
            let v = r.map_err(|e| {
                EthIngestError::Context {
                    context: format!("call traces of block {n} ({method}; use --traces geth, parity or none to match what the node offers)"),
                    source: Box::new(e),
                }
            })?;
            let frames = if traces == Traces::Geth {
                decode::flatten_call_traces(*n, &v)?
            } else {
                for r in decode::parity_rewards(*n, &v)? {
                    rows.rewards.push((*n, r));
                }
                decode::flatten_parity_traces(*n, &v)?
            };
            for f in frames {
                // Internal transfers: value moved by a sub-call or creation, or a self-destruct.
                if f.trace_address.is_empty() || (f.complete && f.value == "0") {
                    continue;
                }
                if !f.complete {
                    eprintln!(
                        "chaintrace: warning: block {n} transaction {} frame [{}]: the node's trace gives no {} for this SELFDESTRUCT; kept with an unknown value (internal_transfers.complete = false), not as 0",
                        f.tx_index,
                        f.trace_address
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        if f.to.is_none() {
                            "beneficiary or value"
                        } else {
                            "value"
                        }
                    );
                }
                let hash = t
                    .get(ix(f.tx_index))
                    .map(|x| x.hash.clone())
                    .ok_or_else(|| {
                        EthIngestError::Input(format!(
                            "block {n}: a trace for transaction {} of {}",
                            f.tx_index,
                            t.len()
                        ))
                    })?;
                rows.internal.push((*n, hash, f));
            }
        }
    }
    if traces != Traces::Parity && node.mainnet {
        schedule_rewards(node, &mut rows).await?;
    }
    Ok(rows)
}

/// Mainnet's proof-of-work rewards of `rows`' blocks from the fork schedule (see
/// [`decode::schedule_rewards`]), fetching the uncle headers the blocks include.
async fn schedule_rewards(node: &Node, rows: &mut Rows) -> Result<()> {
    let pow = |b: &&decode::Block| b.number > 0 && b.number < decode::PARIS;
    let asks: Vec<(u64, Value)> = rows
        .blocks
        .iter()
        .filter(pow)
        .flat_map(|b| (0..b.uncles.len()).map(|i| (b.number, json!([b.hash, hex(n64(i))]))))
        .collect();
    let replies = node
        .many(
            "eth_getUncleByBlockHashAndIndex",
            asks.iter().map(|a| a.1.clone()).collect(),
        )
        .await;
    let mut uncles: HashMap<u64, Vec<(u64, String)>> = HashMap::new();
    for ((n, _), r) in asks.iter().zip(replies) {
        let v = r.ctx(|| format!("an uncle header of block {n}"))?;
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        let (Some(num), Some(miner)) = (
            field("number").and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()),
            field("miner"),
        ) else {
            return Err(EthIngestError::Input(format!(
                "block {n}: eth_getUncleByBlockHashAndIndex returned {v}, not a header with a number and a miner"
            )));
        };
        uncles.entry(*n).or_default().push((num, miner.to_string()));
    }
    for b in rows.blocks.iter().filter(pow) {
        let u = uncles.remove(&b.number).unwrap_or_default();
        for r in decode::schedule_rewards(b.number, &b.miner, &u) {
            rows.rewards.push((b.number, r));
        }
    }
    Ok(())
}

/// A batch of table `t` (its schema from the table registry).
fn batch(t: &TableDef, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(t.schema(true), cols)?)
}

fn strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}
fn u64s(it: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    let mut b = UInt64Builder::new();
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}
fn bools(it: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    let mut b = arrow_array::builder::BooleanBuilder::new();
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}
fn u32s(it: impl Iterator<Item = Option<u32>>) -> ArrayRef {
    let mut b = UInt32Builder::new();
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// The four tables of a part as record batches.
fn batches(r: &Rows) -> Result<Vec<(&'static str, RecordBatch)>> {
    let b = &r.blocks;
    let blocks = batch(
        &EthBlocks::DEF,
        vec![
            u64s(b.iter().map(|x| Some(x.number))),
            strings(b.iter().map(|x| Some(x.hash.as_str()))),
            strings(b.iter().map(|x| Some(x.parent_hash.as_str()))),
            u64s(b.iter().map(|x| Some(x.timestamp))),
            strings(b.iter().map(|x| Some(x.miner.as_str()))),
            u64s(b.iter().map(|x| Some(x.gas_limit))),
            u64s(b.iter().map(|x| Some(x.gas_used))),
            strings(b.iter().map(|x| x.base_fee_per_gas.as_deref())),
            u64s(b.iter().map(|x| x.size)),
            strings(b.iter().map(|x| Some(x.difficulty.as_str()))),
            u32s(b.iter().map(|x| Some(x.tx_count))),
            u32s(b.iter().map(|x| x.withdrawal_count)),
            strings(
                b.iter()
                    .map(|x| {
                        (!x.unparsed_transfer_logs.is_empty()).then(|| {
                            x.unparsed_transfer_logs
                                .iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                    })
                    .collect::<Vec<_>>()
                    .iter()
                    .map(Option::as_deref),
            ),
        ],
    )?;
    let t = &r.txs;
    // UInt32 rather than UInt8: every reader (polars without its u8 dtype, DuckDB, Spark)
    // takes it.
    let mut ty = UInt32Builder::new();
    let mut status = UInt32Builder::new();
    for (x, rc) in t {
        ty.append_value(u32::from(x.tx_type));
        status.append_option(rc.status.map(u32::from));
    }
    let txs = batch(
        &EthTransactions::DEF,
        vec![
            u64s(t.iter().map(|x| Some(x.0.block_number))),
            u32s(t.iter().map(|x| Some(x.0.tx_index))),
            strings(t.iter().map(|x| Some(x.0.hash.as_str()))),
            u64s(t.iter().map(|x| Some(x.0.timestamp))),
            strings(t.iter().map(|x| Some(x.0.from.as_str()))),
            strings(t.iter().map(|x| x.0.to.as_deref())),
            strings(t.iter().map(|x| Some(x.0.value.as_str()))),
            u64s(t.iter().map(|x| Some(x.0.nonce))),
            Arc::new(ty.finish()),
            Arc::new(status.finish()),
            u64s(t.iter().map(|x| Some(x.0.gas))),
            u64s(t.iter().map(|x| Some(x.1.gas_used))),
            strings(t.iter().map(|x| x.0.gas_price.as_deref())),
            strings(t.iter().map(|x| x.1.effective_gas_price.as_deref())),
            strings(t.iter().map(|x| x.0.max_fee_per_gas.as_deref())),
            strings(t.iter().map(|x| x.0.max_priority_fee_per_gas.as_deref())),
            strings(t.iter().map(|x| x.1.contract_address.as_deref())),
            strings(t.iter().map(|x| x.0.input_selector.as_deref())),
            u32s(t.iter().map(|x| Some(x.0.input_bytes))),
            u32s(t.iter().map(|x| Some(n32(x.1.logs.len())))),
            u64s(t.iter().map(|x| x.1.blob_gas_used)),
            strings(t.iter().map(|x| x.1.blob_gas_price.as_deref())),
        ],
    )?;
    let k = &r.tokens;
    let tokens = batch(
        &TokenTransfers::DEF,
        vec![
            u64s(k.iter().map(|x| Some(x.0))),
            u32s(k.iter().map(|x| Some(x.1))),
            strings(k.iter().map(|x| Some(x.2.tx_hash.as_str()))),
            u64s(k.iter().map(|x| Some(x.2.log_index))),
            strings(k.iter().map(|x| Some(x.2.token.as_str()))),
            strings(k.iter().map(|x| Some(x.2.from.as_str()))),
            strings(k.iter().map(|x| Some(x.2.to.as_str()))),
            strings(k.iter().map(|x| Some(x.2.value.as_str()))),
            strings(k.iter().map(|x| Some(x.2.standard))),
            strings(k.iter().map(|x| x.2.token_id.as_deref())),
            strings(k.iter().map(|x| x.2.operator.as_deref())),
        ],
    )?;
    let i = &r.internal;
    let ta: Vec<String> = i
        .iter()
        .map(|x| {
            x.2.trace_address
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let internal = batch(
        &InternalTransfers::DEF,
        vec![
            u64s(i.iter().map(|x| Some(x.0))),
            u32s(i.iter().map(|x| Some(x.2.tx_index))),
            strings(i.iter().map(|x| Some(x.1.as_str()))),
            strings(ta.iter().map(|x| Some(x.as_str()))),
            strings(i.iter().map(|x| Some(x.2.kind))),
            strings(i.iter().map(|x| x.2.call_type.as_deref())),
            strings(i.iter().map(|x| x.2.from.as_deref())),
            strings(i.iter().map(|x| x.2.to.as_deref())),
            strings(i.iter().map(|x| x.2.complete.then_some(x.2.value.as_str()))),
            strings(i.iter().map(|x| x.2.error.as_deref())),
            u32s(i.iter().map(|x| Some(x.2.status))),
            bools(i.iter().map(|x| Some(x.2.complete))),
        ],
    )?;
    let w: Vec<(u64, &decode::Withdrawal)> = b
        .iter()
        .flat_map(|x| x.withdrawals.iter().map(move |w| (x.number, w)))
        .collect();
    let withdrawals = batch(
        &crate::tables::eth_withdrawals::Withdrawals::DEF,
        vec![
            u64s(w.iter().map(|x| Some(x.0))),
            u64s(w.iter().map(|x| Some(x.1.index))),
            u64s(w.iter().map(|x| Some(x.1.validator_index))),
            strings(w.iter().map(|x| Some(x.1.address.as_str()))),
            strings(w.iter().map(|x| Some(x.1.amount_wei.as_str()))),
        ],
    )?;
    let rw = &r.rewards;
    let rewards = batch(
        &crate::tables::eth_rewards::Rewards::DEF,
        vec![
            u64s(rw.iter().map(|x| Some(x.0))),
            strings(rw.iter().map(|x| Some(x.1.author.as_str()))),
            strings(rw.iter().map(|x| Some(x.1.reward_type.as_str()))),
            strings(rw.iter().map(|x| Some(x.1.value.as_str()))),
        ],
    )?;
    Ok(vec![
        ("blocks", blocks),
        ("transactions", txs),
        ("token_transfers", tokens),
        ("internal_transfers", internal),
        ("withdrawals", withdrawals),
        ("rewards", rewards),
    ])
}

/// The tables of an Ethereum dataset.
pub const TABLES: [&str; 6] = [
    "blocks",
    "transactions",
    "token_transfers",
    "internal_transfers",
    "withdrawals",
    "rewards",
];

/// Ingests blocks from `client` into `opts.data/ethereum`.
///
/// # Errors
/// The node fails beyond the retry budget, a reply does not decode (named by block), another
/// chain's dataset is already there, or a write fails. Parts already committed stay.
pub fn ingest(
    client: RpcClient,
    opts: &EthOptions,
    pb: &indicatif::ProgressBar,
) -> Result<EthSummary> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .ctx(|| "cannot start the HTTP runtime".to_string())?;
    let mut node = Node {
        client: Arc::new(client),
        pacer: Arc::new(Pacer::new(opts.max_rps)),
        concurrency: opts.concurrency,
        mainnet: false,
    };
    let q = |v: &Value, what: &str| -> Result<u64> {
        v.as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| EthIngestError::Input(format!("{what} returned {v}, not a quantity")))
    };
    let chain_id = q(
        &rt.block_on(node.call("eth_chainId", json!([])))?,
        "eth_chainId",
    )?;
    if chain_id == 1 {
        let genesis = rt.block_on(node.call("eth_getBlockByNumber", json!(["0x0", false])))?;
        node.mainnet = genesis.get("hash").and_then(Value::as_str) == Some(decode::MAINNET_GENESIS);
    }
    let tip = q(
        &rt.block_on(node.call("eth_blockNumber", json!([])))?,
        "eth_blockNumber",
    )?;
    let to = opts.to.unwrap_or(tip);
    if to > tip {
        return Err(EthIngestError::Input(format!(
            "--to {to} is beyond the node's tip {tip}"
        )));
    }
    if opts.from > to {
        return Err(EthIngestError::Input(match opts.to {
            Some(_) => format!("--from {} is after --to {to}", opts.from),
            None => format!(
                "--from {} is beyond the node's tip {tip}: nothing to ingest yet",
                opts.from
            ),
        }));
    }
    let network = if chain_id == 1 {
        "mainnet".to_string()
    } else {
        format!("chain-{chain_id}")
    };
    let chain_dir = opts.data.join("ethereum");
    if opts.replace && chain_dir.exists() {
        std::fs::remove_dir_all(&chain_dir)
            .ctx(|| format!("cannot remove {}", chain_dir.display()))?;
    }
    let mut manifest = match Manifest::load(&chain_dir)? {
        Some(m) if m.network != network => {
            return Err(EthIngestError::Input(format!(
                "{} holds {} data, and the node serves {network}; use another --data",
                chain_dir.display(),
                m.network
            )));
        }
        Some(m) => m,
        None => Manifest::new(
            "ethereum",
            &network,
            Source {
                kind: "rpc".into(),
                location: node.client.url().to_string(),
                chain_selection: None,
            },
            opts.part_blocks,
        ),
    };
    // Whether call traces were ingested (`chaintrace check ethereum` needs to know): once a
    // run went without them, some parts lack them.
    let mode = match opts.traces {
        Traces::None => "none",
        Traces::Geth => "geth",
        Traces::Parity => "parity",
    };
    // One dataset, one kind of call traces: parts with and without internal transfers (or
    // with rewards from parity's traces and without them) would not add up.
    let before = manifest.source.chain_selection.take();
    let now = format!("traces {mode}");
    if let Some(b) = before
        .as_deref()
        .filter(|b| *b != now && !manifest.parts.is_empty())
    {
        return Err(EthIngestError::Input(format!(
            "{} was ingested with --{b}, and this run asks for --traces {mode}: its parts would {} the internal transfers (and rewards) the earlier ones {}. Rerun with --{b}, or ingest into another --data, or add --replace to start this dataset over with --traces {mode}",
            chain_dir.display(),
            if mode == "none" { "lack" } else { "hold" },
            if mode == "none" { "hold" } else { "lack" },
        )));
    }
    manifest.source.chain_selection = Some(now);
    for t in TABLES {
        std::fs::create_dir_all(chain_dir.join(t))
            .ctx(|| format!("cannot create {}", chain_dir.join(t).display()))?;
        // Leftovers of a killed run: files the manifest does not list.
        let listed = |f: &str| manifest.lists(t, f);
        sink::clean_dir(&chain_dir.join(t), &listed)?;
    }
    // Parts whose blocks left the node's chain (a reorganisation at the tip): checked from
    // the top down until one still matches, removed, recorded, and fetched again.
    let hash_of = |h: u64| -> Result<Option<String>> {
        let b = rt.block_on(node.call("eth_getBlockByNumber", json!([hex(h), false])))?;
        Ok(b.get("hash")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase))
    };
    let mut stale: Vec<Part> = Vec::new();
    let mut tops: Vec<Part> = manifest.parts.clone();
    tops.sort_by_key(|p| std::cmp::Reverse(p.from));
    for p in tops {
        let ok = hash_of(p.to)?.as_deref() == Some(p.last_hash.as_str())
            && hash_of(p.from)?.as_deref() == Some(p.first_hash.as_str());
        if ok {
            break;
        }
        stale.push(p);
    }
    let mut refetch_from: Option<u64> = None;
    if let Some(lowest) = stale.last() {
        // The fork: the highest stored block still on the chain (hashes match below it).
        let stored = block_hashes(&chain_dir.join("blocks").join(&lowest.files["blocks"].file))?;
        let (mut lo, mut hi) = (0usize, stored.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if hash_of(stored[mid].0)?.as_deref() == Some(stored[mid].1.as_str()) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let fork = if lo == 0 {
            lowest.from.saturating_sub(1)
        } else {
            stored[lo - 1].0
        };
        let old_tip = manifest.tip.clone().unwrap_or(Tip {
            height: stale[0].to,
            hash: stale[0].last_hash.clone(),
        });
        let depth = old_tip.height.saturating_sub(fork);
        if depth > u64::from(crate::ingest::bitcoin::MAX_REORG_DEPTH)
            || (fork == 0 && old_tip.height > 1)
        {
            let how = if fork == 0 {
                "shares no block but the genesis with the node's chain (another chain, or a dev node restarted since)".to_string()
            } else {
                format!(
                    "leaves the node's chain {depth} blocks deep, deeper than a reorganisation (at most {} blocks)",
                    crate::ingest::bitcoin::MAX_REORG_DEPTH
                )
            };
            return Err(EthIngestError::Input(format!(
                "{} holds another chain: its tip {} at block {} (ingested from {} {}) {how}. Ingest into another --data, or add --replace to delete this dataset and ingest the node's chain",
                chain_dir.display(),
                old_tip.hash,
                old_tip.height,
                manifest.source.kind,
                manifest.source.location,
            )));
        }
        let mut names: Vec<String> = stale
            .iter()
            .map(|p| sink::part_name(p.from, p.to))
            .collect();
        names.sort();
        manifest.reorgs.push(Reorg {
            fork_height: fork,
            old_tip,
            removed_parts: names,
        });
        manifest
            .parts
            .retain(|p| !stale.iter().any(|x| x.from == p.from));
        manifest.tip = None;
        manifest.save(&chain_dir)?;
        for p in &stale {
            for (t, f) in &p.files {
                let _ = std::fs::remove_file(chain_dir.join(t).join(&f.file));
            }
        }
        refetch_from = Some(lowest.from);
        eprintln!(
            "the chain reorganised above block {fork}: {} stored part(s) removed and fetched again",
            stale.len()
        );
    }
    let n = u64::from(manifest.part_blocks);
    let first = (opts.from / n * n).min(refetch_from.unwrap_or(u64::MAX));
    if !opts.from.is_multiple_of(n) {
        eprintln!(
            "chaintrace: note: parts are aligned to {n} blocks: ingesting from block {} (the start of the part that holds --from {}); a smaller --part-blocks on a new dataset starts closer",
            opts.from / n * n,
            opts.from
        );
    }
    pb.set_length(to + 1 - first);
    let mut per_tx = false;
    let mut summary = EthSummary {
        chain_dir: chain_dir.clone(),
        chain_id,
        from: first,
        to,
        blocks: 0,
        transactions: 0,
        token_transfers: 0,
        internal_transfers: 0,
        parts_written: 0,
        parts_kept: 0,
        seconds: 0.0,
        receipts_per_tx_fallback: false,
    };
    let mut start = first;
    while start <= to {
        if crate::ingest::interrupted() {
            return Err(EthIngestError::Input(format!(
                "interrupted: {} part(s) written by this run; the dataset {} now ends at block {}; run the same command again to resume from there",
                summary.parts_written,
                chain_dir.display(),
                manifest
                    .tip
                    .as_ref()
                    .map_or_else(|| "(none)".to_string(), |t| t.height.to_string())
            )));
        }
        let end = (start + n - 1).min(to);
        let (pf, pt) = (start, end);
        if manifest.parts.iter().any(|p| p.from == pf && p.to >= pt) {
            summary.parts_kept += 1;
            pb.inc(end - start + 1);
            start += n;
            continue;
        }
        let mut rows = Rows::default();
        // Fetch in chunks so that a big part does not hold every reply at once.
        let mut at = start;
        while at <= end {
            let e = (at + 99).min(end);
            let r = rt.block_on(fetch(&node, at, e, opts.traces, &mut per_tx))?;
            rows.blocks.extend(r.blocks);
            rows.txs.extend(r.txs);
            rows.tokens.extend(r.tokens);
            rows.internal.extend(r.internal);
            rows.rewards.extend(r.rewards);
            pb.inc(e - at + 1);
            at = e + 1;
        }
        // Every block must link to the one before it (a reorganisation during the fetch
        // breaks the chain), the first to the part below when that is stored.
        let below = manifest
            .parts
            .iter()
            .find(|p| p.to.checked_add(1) == Some(pf))
            .map(|p| p.last_hash.clone());
        let mut prev = below;
        for b in &rows.blocks {
            if let Some(h) = &prev
                && &b.parent_hash != h
            {
                return Err(EthIngestError::Input(format!(
                    "block {}: its parent is {}, not the stored block {h} below it: the chain reorganised during this ingest; run it again (nothing of this part was written)",
                    b.number, b.parent_hash
                )));
            }
            prev = Some(b.hash.clone());
        }
        let name = sink::part_name(pf, pt);
        let mut staged = Vec::new();
        let mut files = BTreeMap::new();
        for (table, b) in batches(&rows)? {
            let st = sink::stage(&chain_dir.join(table).join(&name), &b)?;
            files.insert(
                table.to_string(),
                PartFile {
                    file: name.clone(),
                    rows: st.rows,
                    bytes: st.bytes,
                    sha256: st.sha256.clone(),
                },
            );
            staged.push(st);
        }
        sink::commit(&staged)?;
        // A part replacing a shorter one at the same start (the tip part grew).
        let replaced: Vec<Part> = manifest
            .parts
            .iter()
            .filter(|p| p.from == pf)
            .cloned()
            .collect();
        manifest.parts.retain(|p| p.from != pf);
        manifest.parts.push(Part {
            from: pf,
            to: pt,
            first_hash: rows
                .blocks
                .first()
                .map(|b| b.hash.clone())
                .unwrap_or_default(),
            last_hash: rows
                .blocks
                .last()
                .map(|b| b.hash.clone())
                .unwrap_or_default(),
            files,
        });
        let top = manifest.parts.iter().map(|p| p.to).max();
        if top == Some(pt)
            && let Some(b) = rows.blocks.last()
        {
            manifest.tip = Some(Tip {
                height: pt,
                hash: b.hash.clone(),
            });
        }
        manifest.save(&chain_dir)?;
        for old in replaced {
            for (t, f) in &old.files {
                if f.file != name {
                    let _ = std::fs::remove_file(chain_dir.join(t).join(&f.file));
                }
            }
        }
        summary.parts_written += 1;
        summary.blocks += n64(rows.blocks.len());
        summary.transactions += n64(rows.txs.len());
        summary.token_transfers += n64(rows.tokens.len());
        summary.internal_transfers += n64(rows.internal.len());
        start += n;
    }
    pb.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.receipts_per_tx_fallback = per_tx;
    Ok(summary)
}

/// `(number, hash)` of every row of an Ethereum `blocks` part, in number order.
fn block_hashes(path: &Path) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    reader::each_batch_of(&[path.to_path_buf()], &["number", "hash"], |b| {
        let c = reader::Cols(b);
        let (n, h) = (c.u64("number")?, c.str("hash")?);
        for i in 0..b.num_rows() {
            out.push((n.value(i), h.value(i).to_string()));
        }
        Ok::<(), EthIngestError>(())
    })?;
    out.sort();
    Ok(out)
}

/// The chain directory of an Ethereum dataset.
pub fn chain_dir(data: &Path) -> PathBuf {
    data.join("ethereum")
}
