//! Balance reconciliation: the proof, an accountant's, that an Ethereum dataset holds every
//! movement of ETH. From the dataset alone, each account's balance change over the dataset's
//! blocks is recomputed, then compared with the node's `eth_getBalance` at both ends.
//!
//! What moves ETH, in the dataset's terms:
//! - a transaction's fee, paid by its sender whatever its status:
//!   `gas_used × effective_gas_price` (`gas_price` before EIP-1559); of it, the base fee
//!   (`gas_used × base_fee_per_gas`, EIP-1559) is burnt and the rest goes to the block's fee
//!   recipient;
//! - a successful transaction's value, from its sender to its recipient (or the contract it
//!   created);
//! - internal transfers that moved value (`status` 1; a call of type `call`, a creation, a
//!   SELFDESTRUCT); one whose value the node did not give (`complete` false) cannot be
//!   counted, and the accounts it touches are named;
//! - validator withdrawals (EIP-4895), credited to their address;
//! - pre-merge block and uncle rewards (`--traces parity`, or mainnet's fork schedule).
//!
//! Not modelled (the accounts they touch differ, and are reported as such): pre-merge
//! rewards of a chain other than mainnet ingested without parity traces, and genesis
//! allocations inside the dataset's first block. Blob fees (EIP-4844, `blob_gas_used ×
//! blob_gas_price`) are paid by the sender and burnt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::ingest::{EthIngestError, chain_dir};
use crate::ingest::bitcoin::rpc::RpcClient;
use crate::store::reader::{Cols, each_batch_of, part_files};

/// One account whose balance change the dataset does not explain.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Difference {
    pub account: String,
    /// Wei, as the dataset explains it and as the node's balances give it.
    pub computed_change: String,
    pub node_change: String,
    /// What may explain it, when something in the dataset points at it.
    pub why: Option<String>,
}

/// The outcome of [`reconcile`].
#[derive(Clone, Debug, Serialize)]
pub struct Reconciliation {
    /// The balances compared are those after `start_block` and after `end_block`.
    pub start_block: u64,
    pub end_block: u64,
    /// Accounts compared, and all the dataset touches (more with `--sample`).
    pub accounts: usize,
    pub accounts_touched: usize,
    pub matched: usize,
    pub differences: Vec<Difference>,
    /// Whether the dataset holds call traces (internal transfers); without them contracts'
    /// balances cannot be explained.
    pub has_traces: bool,
    /// Internal transfers of unknown value (`complete` false).
    pub incomplete_frames: usize,
    /// With `--sample`: the accounts checked (the first K in address order: addresses are
    /// hashes, so this is an unbiased, reproducible pick).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sampled: Vec<String>,
}

/// Why a transaction's fee is unknown, and what to do.
pub fn unknown_fee(what: &str) -> String {
    format!(
        "{what}: no effective_gas_price nor gas_price, so its fee is unknown (never taken as 0); ingest the block again from a node that gives receipts' effectiveGasPrice"
    )
}

/// A decimal text column's value as a signed 128-bit number.
fn num(s: Option<&str>, what: &dyn Fn() -> String) -> Result<i128, EthIngestError> {
    match s {
        None | Some("") => Ok(0),
        Some(t) => t
            .parse::<i128>()
            .map_err(|_| EthIngestError::Input(format!("{}: {t:?} is not an amount", what()))),
    }
}

/// Each account's balance change (wei) over the dataset's blocks `start_block+1 ..=
/// end_block`, from the dataset alone; and the accounts that incomplete frames touch.
///
/// # Errors
/// Unreadable parts, or amounts that are not decimal text (named by transaction).
#[allow(clippy::type_complexity)]
pub fn balance_changes(
    data: &Path,
    upto: Option<u64>,
) -> Result<(BTreeMap<String, i128>, u64, u64, BTreeSet<String>, bool), EthIngestError> {
    let upto = upto.unwrap_or(u64::MAX);
    let dir = chain_dir(data);
    let files = |t: &str| part_files(&dir.join(t)).unwrap_or_default();
    let text = |a: &arrow_array::StringArray, i: usize| {
        arrow_array::Array::is_valid(a, i).then(|| a.value(i).to_string())
    };
    // Blocks: the fee recipient and base fee of each.
    let mut blocks: BTreeMap<u64, (String, i128)> = BTreeMap::new();
    each_batch_of(
        &files("blocks"),
        &["number", "miner", "base_fee_per_gas"],
        |b| {
            let c = Cols(b);
            let (n, miner, base) = (
                c.u64("number")?,
                c.str("miner")?,
                c.str("base_fee_per_gas")?,
            );
            for i in 0..b.num_rows() {
                let what = || format!("block {}", n.value(i));
                let fee = num(text(base, i).as_deref(), &what)?;
                blocks.insert(n.value(i), (miner.value(i).to_ascii_lowercase(), fee));
            }
            Ok::<(), EthIngestError>(())
        },
    )?;
    let (Some(&first), Some(&last)) = (blocks.keys().next(), blocks.keys().last()) else {
        return Err(EthIngestError::Input(format!(
            "{} holds no Ethereum blocks (no Ethereum dataset in this --data): ingest one with chaintrace ingest ethereum --rpc URL --data {}",
            dir.display(),
            data.display()
        )));
    };
    if upto < first || (upto != u64::MAX && upto > last) {
        return Err(EthIngestError::Input(format!(
            "--block {upto} is outside the dataset's blocks {first} to {last}"
        )));
    }
    let last = last.min(upto);
    let mut change: BTreeMap<String, i128> = BTreeMap::new();
    let mut add = |a: &str, v: i128| *change.entry(a.to_ascii_lowercase()).or_insert(0) += v;
    each_batch_of(
        &files("transactions"),
        &[
            "block_number",
            "hash",
            "from",
            "to",
            "value",
            "status",
            "gas_used",
            "gas_price",
            "effective_gas_price",
            "contract_address",
            "blob_gas_used",
            "blob_gas_price",
        ],
        |b| {
            let c = Cols(b);
            let (n, hash, from, to, value) = (
                c.u64("block_number")?,
                c.str("hash")?,
                c.str("from")?,
                c.str("to")?,
                c.str("value")?,
            );
            let status = c.u32("status")?;
            let created = c.str("contract_address")?;
            let fees = c.tx_fees()?;
            for i in 0..b.num_rows() {
                if n.value(i) > upto {
                    continue;
                }
                let what = || format!("transaction {}", hash.value(i));
                // A missing price is an unknown fee, never 0.
                let Some(f) = fees.fee(i)? else {
                    return Err(EthIngestError::Input(unknown_fee(&what())));
                };
                let wide = |v: u128| {
                    i128::try_from(v)
                        .map_err(|_| EthIngestError::Input(format!("{}: fee beyond i128", what())))
                };
                let gas = i128::from(f.gas_used);
                let fee = gas * wide(f.per_gas)?;
                // The blob fee (EIP-4844) is burnt whole: the sender pays it, nobody gets it.
                add(from.value(i), -fee - wide(f.blob)?);
                let (miner, base) = blocks.get(&n.value(i)).cloned().unwrap_or_default();
                add(&miner, fee - gas * base);
                let ok = !arrow_array::Array::is_valid(status, i) || status.value(i) == 1;
                if ok {
                    let v = num(Some(value.value(i)), &what)?;
                    if let Some(recipient) = text(to, i).or_else(|| text(created, i)) {
                        add(from.value(i), -v);
                        add(&recipient, v);
                    }
                }
            }
            Ok::<(), EthIngestError>(())
        },
    )?;
    let traces = files("internal_transfers");
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    each_batch_of(
        &traces,
        &[
            "block_number",
            "tx_hash",
            "kind",
            "call_type",
            "from",
            "to",
            "value",
            "status",
            "complete",
        ],
        |b| {
            let c = Cols(b);
            let (hash, kind, ct, from, to, value, status) = (
                c.str("tx_hash")?,
                c.str("kind")?,
                c.str("call_type")?,
                c.str("from")?,
                c.str("to")?,
                c.str("value")?,
                c.u32("status")?,
            );
            let complete = b
                .column_by_name("complete")
                .and_then(|x| arrow_array::cast::AsArray::as_boolean_opt(x));
            let num_col = c.u64("block_number")?;
            for i in 0..b.num_rows() {
                if num_col.value(i) > upto {
                    continue;
                }
                let moves = super::decode::frame_moves_value(kind.value(i), text(ct, i).as_deref());
                if status.value(i) != 1 || !moves {
                    continue;
                }
                let (Some(f), t) = (text(from, i), text(to, i)) else {
                    continue;
                };
                if complete.is_some_and(|x| !x.value(i)) || !arrow_array::Array::is_valid(value, i)
                {
                    unknown.insert(f.to_ascii_lowercase());
                    unknown.extend(t.map(|t| t.to_ascii_lowercase()));
                    continue;
                }
                let what = || format!("internal transfer of {}", hash.value(i));
                let v = num(Some(value.value(i)), &what)?;
                if let Some(t) = t {
                    add(&f, -v);
                    add(&t, v);
                }
            }
            Ok::<(), EthIngestError>(())
        },
    )?;
    // Withdrawals and (with --traces parity) pre-merge block and uncle rewards: credits
    // with no transaction.
    for table in ["withdrawals", "rewards"] {
        each_batch_of(&files(table), &["block_number", "address", "amount"], |b| {
            let c = Cols(b);
            let (num_col, address, amount) =
                (c.u64("block_number")?, c.str("address")?, c.str("amount")?);
            for i in 0..b.num_rows() {
                if num_col.value(i) > upto {
                    continue;
                }
                let what = || format!("{table} row of {}", address.value(i));
                add(address.value(i), num(Some(amount.value(i)), &what)?);
            }
            Ok::<(), EthIngestError>(())
        })?;
    }
    change.remove("");
    // Whether call traces were ingested: the manifest says (`--traces none` writes empty
    // internal_transfers parts).
    let has_traces = crate::store::manifest::Manifest::load(&dir)
        .ok()
        .flatten()
        .and_then(|m| m.source.chain_selection)
        .map_or(!traces.is_empty(), |s| s != "traces none");
    Ok((change, first.saturating_sub(1), last, unknown, has_traces))
}

/// The dataset's hash of block `n`.
fn block_hash(data: &Path, n: u64) -> Result<String, EthIngestError> {
    let dir = chain_dir(data);
    let mut found = None;
    each_batch_of(
        &part_files(&dir.join("blocks")).unwrap_or_default(),
        &["number", "hash"],
        |b| {
            let c = Cols(b);
            let (num, hash) = (c.u64("number")?, c.str("hash")?);
            for i in 0..b.num_rows() {
                if num.value(i) == n {
                    found = Some(hash.value(i).to_string());
                }
            }
            Ok::<(), EthIngestError>(())
        },
    )?;
    found.ok_or_else(|| EthIngestError::Input(format!("the dataset has no block {n}")))
}

fn to_i128(v: u128) -> Result<i128, EthIngestError> {
    i128::try_from(v).map_err(|_| EthIngestError::Input(format!("a balance of {v} wei")))
}

/// The node's balances (`eth_getBalance`, wei) of `accounts` at each of `blocks`, after
/// checking that the node follows the dataset's chain in `data` (its block `end`, the
/// dataset's last, has the dataset's hash: a restarted dev node, another network or a
/// fork would not). One `Vec` per account, in `blocks` order; `pb` steps per account.
///
/// # Errors
/// Another chain; a node without the state of those blocks (an archive node is needed for
/// old ones); a reply that is not a quantity, named with the account.
pub fn node_balances(
    client: RpcClient,
    data: &Path,
    end: u64,
    accounts: &[String],
    blocks: &[u64],
    pb: &indicatif::ProgressBar,
) -> Result<Vec<Vec<u128>>, EthIngestError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| EthIngestError::Io {
            what: "cannot start the HTTP runtime",
            path: "tokio".into(),
            source,
        })?;
    let client = Arc::new(client);
    // Another chain id is said as such (before any block is compared).
    if let Ok(Some(m)) = crate::store::manifest::Manifest::load(&chain_dir(data)) {
        let id = rt.block_on(client.call("eth_chainId", json!([])))?;
        let id = id
            .as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
        let theirs = match id {
            Some(1) => "mainnet".to_string(),
            Some(n) => format!("chain-{n}"),
            None => "an unknown chain".to_string(),
        };
        if theirs != m.network {
            return Err(EthIngestError::Input(format!(
                "the dataset holds {} data, and the node serves {theirs}: use the node the dataset was ingested from",
                m.network
            )));
        }
    }
    let stored = block_hash(data, end)?;
    let theirs =
        rt.block_on(client.call("eth_getBlockByNumber", json!([format!("0x{end:x}"), false])))?;
    let theirs = theirs.get("hash").and_then(serde_json::Value::as_str);
    if theirs != Some(stored.as_str()) {
        let there = match theirs {
            Some(h) => format!("its block {end} is {h}"),
            None => format!("it has no block {end} (its chain is shorter)"),
        };
        return Err(EthIngestError::Input(format!(
            "the node does not follow the dataset's chain: {there}, and the dataset's block {end} is {stored}; use the node the dataset was ingested from"
        )));
    }
    let blocks = blocks.to_vec();
    let replies: Vec<Result<Vec<u128>, EthIngestError>> =
        rt.block_on(crate::ingest::bitcoin::rpc::in_order(accounts.to_vec(), 8, |a| {
            let (client, pb, blocks) = (client.clone(), pb.clone(), blocks.clone());
            async move {
                let mut out = Vec::with_capacity(blocks.len());
                for n in blocks {
                    let v = client
                        .call("eth_getBalance", json!([a, format!("0x{n:x}")]))
                        .await
                        .map_err(|e| EthIngestError::Context {
                            context: format!(
                                "the balance of {a} at block {n} (a node that keeps old state, an archive node, is needed for blocks far below its tip)"
                            ),
                            source: Box::new(e),
                        })?;
                    out.push(
                        v.as_str()
                            .and_then(|s| u128::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                            .ok_or_else(|| {
                                EthIngestError::Input(format!(
                                    "eth_getBalance of {a} returned {v}, not a quantity"
                                ))
                            })?,
                    );
                }
                pb.inc(1);
                Ok(out)
            }
        }));
    replies.into_iter().collect()
}

/// Compares [`balance_changes`] with the node's balances (`eth_getBalance` at the block
/// before the dataset's first and at its last), for every account the dataset touches, or
/// the first `sample` of them in address order.
///
/// # Errors
/// Dataset errors, or the node failing beyond the retry budget.
pub fn reconcile(
    client: RpcClient,
    data: &Path,
    sample: Option<usize>,
    upto: Option<u64>,
    pb: &indicatif::ProgressBar,
) -> Result<Reconciliation, EthIngestError> {
    let (change, start, end, unknown, has_traces) = balance_changes(data, upto)?;
    if sample == Some(0) {
        return Err(EthIngestError::Input(
            "--sample 0 checks nothing: give at least 1 (or leave it out to check every account)"
                .into(),
        ));
    }
    let touched = change.len();
    let accounts: Vec<(String, i128)> = change
        .into_iter()
        .take(sample.unwrap_or(usize::MAX))
        .collect();
    pb.set_length(crate::types::n64(accounts.len()));
    pb.set_message("eth_getBalance at both ends");
    let names: Vec<String> = accounts.iter().map(|(a, _)| a.clone()).collect();
    let balances = node_balances(client, data, end, &names, &[start, end], pb)?;
    let mut differences = Vec::new();
    for ((a, computed), b) in accounts.iter().zip(balances) {
        let (before, after) = (to_i128(b[0])?, to_i128(b[1])?);
        let node = after - before;
        if node != *computed {
            let why = if unknown.contains(a) {
                Some("an internal transfer of unknown value (an incomplete SELFDESTRUCT frame) touches it".into())
            } else if !has_traces {
                Some("the dataset has no call traces (ingested with --traces none): internal transfers are missing".into())
            } else {
                None
            };
            differences.push(Difference {
                account: a.clone(),
                computed_change: computed.to_string(),
                node_change: node.to_string(),
                why,
            });
        }
    }
    pb.finish_and_clear();
    Ok(Reconciliation {
        start_block: start,
        end_block: end,
        accounts: accounts.len(),
        accounts_touched: touched,
        matched: accounts.len() - differences.len(),
        differences,
        has_traces,
        incomplete_frames: unknown.len(),
        sampled: if accounts.len() < touched {
            accounts.iter().map(|(a, _)| a.clone()).collect()
        } else {
            Vec::new()
        },
    })
}
