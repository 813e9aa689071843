//! Ethereum account clustering by **deposit-address reuse** (Victor, "Address clustering
//! heuristics for Ethereum", Financial Cryptography 2020, §4.1): an exchange gives each
//! customer a deposit address that forwards ("sweeps") what it receives to the exchange's
//! hot wallet. So
//! - a *deposit address* is an account whose successful value transfers all go to one
//!   address, its *hot wallet*, which receives such sweeps from at least `min_deposits`
//!   deposit addresses, and at least one of whose sweeps forwards what arrived since the
//!   previous one, less at most `max_amount_diff` (the paper's a_max = 0.01 ETH: the gas),
//!   within `max_delay_blocks` of the last deposit (t_max = 3200 blocks);
//! - the accounts that sent to the same deposit address are one entity (the customer), and
//!   the deposit addresses of one hot wallet belong with it (the exchange).
//!
//! Computed with polars over `data/ethereum/transactions` (ETH value transfers, status 1)
//! and `token_transfers` (ERC-20, the paper's token variant): a sweep forwards the asset it
//! received, matched per asset; a token sweep forwards exactly what arrived (its gas is paid
//! in ETH).
//! Every merge is kept with its reason (`merges.parquet`). The paper matches a sweep with one
//! deposit; matching it with everything received since the previous sweep also catches
//! exchanges that sweep several deposits at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use polars::prelude::*;

use super::union_find::UnionFind;
use crate::store::sink;
use crate::types::n32;

/// The heuristic's name, as `_meta.json` and reports give it.
pub const NAME: &str = "deposit-address-reuse";

/// What the heuristic does and where it comes from (for reports).
pub const DESCRIPTION: &str = "An exchange deposit address forwards all it receives to one hot wallet that gathers such sweeps from at least min-deposits addresses, a sweep forwarding what arrived since the previous one less at most 0.01 ETH (the gas) within 3200 blocks (both settable; ERC-20 deposits too, per token, swept exactly); the accounts that paid into one deposit address are one entity (the customer), and the deposit addresses join their hot wallet (the exchange). Source: Victor 2020, \"Address clustering heuristics for Ethereum\", Financial Cryptography, section 4.1 and Algorithm 1.";

/// One merge and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Merge {
    pub a: String,
    pub b: String,
    /// `same-deposit-address` (two senders) or `sweeps-to-hot-wallet` (deposit, hot wallet).
    pub reason: &'static str,
    pub deposit: String,
    pub hot_wallet: String,
}

/// The heuristic's parameters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Bounds {
    /// Deposit addresses a hot wallet needs to count as one.
    pub min_deposits: u32,
    /// A sweep must leave within this many blocks of the last deposit it forwards (Victor's
    /// t_max, 3200).
    pub max_delay_blocks: u64,
    /// A sweep may forward this much less than the deposits since the last sweep (the gas
    /// the deposit address pays; Victor's a_max, 0.01 ETH), in wei.
    pub max_amount_diff: u128,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            min_deposits: 2,
            max_delay_blocks: 3200,
            max_amount_diff: 10u128.pow(16),
        }
    }
}

/// The result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EthClusters {
    /// (address, cluster id), addresses in name order; the id is the index of the cluster's
    /// first address in that order.
    pub assignments: Vec<(String, u32)>,
    pub merges: Vec<Merge>,
    pub deposits: usize,
    pub hot_wallets: usize,
    pub clusters: usize,
}

/// Why Ethereum accounts could not be clustered.
#[derive(Debug, thiserror::Error)]
pub enum EthClusterError {
    /// A dataset without what clustering needs (exit 1).
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Polars(#[from] PolarsError),
    #[error("cannot build a table: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Results of this module.
pub type Result<T, E = EthClusterError> = std::result::Result<T, E>;

fn pe(e: PolarsError) -> EthClusterError {
    EthClusterError::Polars(e)
}

fn column(df: &DataFrame, n: &str) -> Result<Vec<String>> {
    Ok(df
        .column(n)
        .map_err(pe)?
        .str()
        .map_err(pe)?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// Runs the heuristic over `chain_dir` (`data/ethereum`).
///
/// # Errors
/// No transactions ingested, or a polars error.
pub fn cluster(chain_dir: &Path, b: &Bounds) -> Result<EthClusters> {
    let dir = chain_dir.join("transactions");
    if !std::fs::read_dir(&dir).is_ok_and(|mut r| {
        r.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet")))
    }) {
        return Err(EthClusterError::Input(format!(
            "{} has no transactions: ingest first (chaintrace ingest ethereum --rpc URL --data ...)",
            dir.display()
        )));
    }
    let scan = |table: &str| {
        LazyFrame::scan_parquet(
            PlRefPath::new(
                chain_dir
                    .join(table)
                    .join("*.parquet")
                    .display()
                    .to_string(),
            ),
            ScanArgsParquet::default(),
        )
        .map_err(pe)
    };
    let columns = |asset: Expr| {
        [
            col("block_number"),
            col("tx_index"),
            col("from"),
            col("to"),
            col("value"),
            asset.alias("asset"),
        ]
    };
    // ETH value transfers of successful transactions, and ERC-20 transfers (mints and burns
    // left out: they are no payment between accounts), each with its asset.
    let eth = scan("transactions")?
        .filter(
            col("status")
                .eq(lit(1u8))
                .and(col("to").is_not_null())
                .and(col("value").neq(lit("0"))),
        )
        .select(columns(lit("eth")));
    let has_tokens = std::fs::read_dir(chain_dir.join("token_transfers")).is_ok_and(|mut r| {
        r.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet")))
    });
    let tx_all = if has_tokens {
        let zero = lit("0x0000000000000000000000000000000000000000");
        let tokens = scan("token_transfers")?
            .filter(
                col("standard")
                    .eq(lit("erc20"))
                    .and(col("value").neq(lit("0")))
                    .and(col("from").neq(zero.clone()))
                    .and(col("to").neq(zero)),
            )
            .select(columns(col("token")));
        concat([eth, tokens], UnionArgs::default()).map_err(pe)?
    } else {
        eth
    };
    let tx = tx_all.clone().select([col("from"), col("to")]);
    // Accounts whose value transfers all go to one address.
    let single = tx
        .clone()
        .group_by([col("from")])
        .agg([
            col("to").n_unique().alias("n_to"),
            col("to").first().alias("hot"),
        ])
        .filter(col("n_to").eq(lit(1u32)).and(col("from").neq(col("hot"))))
        .select([col("from").alias("deposit"), col("hot")]);
    // ... that received from someone else, and whose destination gathers enough of them.
    let funded = tx
        .clone()
        .select([col("to").alias("deposit")])
        .unique(None, UniqueKeepStrategy::Any);
    let candidates = single
        .inner_join(funded, col("deposit"), col("deposit"))
        .sort(["deposit"], SortMultipleOptions::default())
        .collect()
        .map_err(pe)?;
    let (cand, cand_hot) = (column(&candidates, "deposit")?, column(&candidates, "hot")?);
    // The value transfers into and out of the candidates, in chain order.
    let names = Series::new("c".into(), cand.clone());
    let events = tx_all
        .filter(
            col("to")
                .is_in(lit(names.clone()).implode(false), false)
                .or(col("from").is_in(lit(names).implode(false), false)),
        )
        .sort(["block_number", "tx_index"], SortMultipleOptions::default())
        .collect()
        .map_err(pe)?;
    let (ev_from, ev_to, ev_value, ev_asset) = (
        column(&events, "from")?,
        column(&events, "to")?,
        column(&events, "value")?,
        column(&events, "asset")?,
    );
    let ev_block: Vec<u64> = events
        .column("block_number")
        .map_err(pe)?
        .u64()
        .map_err(pe)?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    // Victor's bounds: a sweep forwards what arrived since the last one, less at most
    // `max_amount_diff` (the gas it pays), within `max_delay_blocks` of the last deposit.
    let hot_of: BTreeMap<&str, &str> = cand
        .iter()
        .map(String::as_str)
        .zip(cand_hot.iter().map(String::as_str))
        .collect();
    // Per (deposit address, asset): received since the last sweep, and the last block.
    let mut pending: BTreeMap<(&str, &str), (u128, u64)> = BTreeMap::new();
    let mut matched: std::collections::BTreeSet<&str> = Default::default();
    for i in 0..ev_from.len() {
        let v: u128 = ev_value[i].parse().unwrap_or(u128::MAX);
        if let Some(&hot) = hot_of.get(ev_from[i].as_str())
            && ev_to[i] == hot
        {
            let d = ev_from[i].as_str();
            let (got, last) = pending.remove(&(d, ev_asset[i].as_str())).unwrap_or((0, 0));
            let in_time = ev_block[i].saturating_sub(last) <= b.max_delay_blocks;
            // A token sweep moves what arrived exactly (the gas is paid in ETH).
            let slack = if ev_asset[i] == "eth" {
                b.max_amount_diff
            } else {
                0
            };
            if got > 0 && v <= got && got - v <= slack && in_time {
                matched.insert(d);
            }
        }
        if hot_of.contains_key(ev_to[i].as_str()) {
            let e = pending
                .entry((ev_to[i].as_str(), ev_asset[i].as_str()))
                .or_insert((0, 0));
            e.0 = e.0.saturating_add(v);
            e.1 = ev_block[i];
        }
    }
    let mut per_hot: BTreeMap<&str, u32> = BTreeMap::new();
    for d in &matched {
        *per_hot.entry(hot_of[d]).or_insert(0) += 1;
    }
    let (dep, hot): (Vec<String>, Vec<String>) = cand
        .iter()
        .zip(&cand_hot)
        .filter(|(d, h)| matched.contains(d.as_str()) && per_hot[h.as_str()] >= b.min_deposits)
        .map(|(d, h)| (d.clone(), h.clone()))
        .unzip();
    // The senders to each deposit address (not its own hot wallet), by deposit then sender.
    let is_dep: BTreeMap<&str, &str> = dep
        .iter()
        .map(String::as_str)
        .zip(hot.iter().map(String::as_str))
        .collect();
    let mut sent: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for (f, t) in ev_from.iter().zip(&ev_to) {
        if let Some(&h) = is_dep.get(t.as_str())
            && f != h
        {
            sent.insert((t.as_str(), f.as_str()));
        }
    }
    let sd: Vec<String> = sent.iter().map(|x| x.0.to_string()).collect();
    let sf: Vec<String> = sent.iter().map(|x| x.1.to_string()).collect();
    let sh: Vec<String> = sent.iter().map(|x| is_dep[x.0].to_string()).collect();
    let mut names: Vec<String> = dep.iter().chain(&hot).chain(&sf).cloned().collect();
    names.sort();
    names.dedup();
    let id: BTreeMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), n32(i)))
        .collect();
    let mut uf = UnionFind::new(n32(names.len()));
    let mut merges = Vec::new();
    for (d, h) in dep.iter().zip(&hot) {
        if uf.union(id[d.as_str()], id[h.as_str()]) {
            merges.push(Merge {
                a: d.clone(),
                b: h.clone(),
                reason: "sweeps-to-hot-wallet",
                deposit: d.clone(),
                hot_wallet: h.clone(),
            });
        }
    }
    // Senders of one deposit address: each joined to the first.
    let mut first_of: BTreeMap<&str, &str> = BTreeMap::new();
    for ((f, d), h) in sf.iter().zip(&sd).zip(&sh) {
        match first_of.get(d.as_str()) {
            None => {
                first_of.insert(d, f);
            }
            Some(&first) => {
                if uf.union(id[first], id[f.as_str()]) {
                    merges.push(Merge {
                        a: first.to_string(),
                        b: f.clone(),
                        reason: "same-deposit-address",
                        deposit: d.clone(),
                        hot_wallet: h.clone(),
                    });
                }
            }
        }
    }
    let labels = uf.into_labels();
    let assignments: Vec<(String, u32)> =
        names.iter().cloned().zip(labels.iter().copied()).collect();
    let clusters = {
        let mut l = labels.clone();
        l.sort_unstable();
        l.dedup();
        l.len()
    };
    let mut hubs: Vec<&String> = hot.iter().collect();
    hubs.sort();
    hubs.dedup();
    Ok(EthClusters {
        assignments,
        merges,
        deposits: dep.len(),
        hot_wallets: hubs.len(),
        clusters,
    })
}

/// Writes `address_cluster.parquet`, `merges.parquet` and `_meta.json` into `out`.
///
/// # Errors
/// A write failure.
pub fn write(c: &EthClusters, bounds: &Bounds, out: &Path) -> Result<Vec<PathBuf>> {
    let stage = |name: &str, fields: Vec<Field>, cols: Vec<ArrayRef>| -> Result<PathBuf> {
        let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
        let path = out.join(name);
        let st = sink::stage(&path, &b)?;
        sink::commit(std::slice::from_ref(&st))?;
        Ok(path)
    };
    std::fs::create_dir_all(out).map_err(|source| EthClusterError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let a = stage(
        "address_cluster.parquet",
        vec![
            s("address"),
            Field::new("cluster_id", DataType::UInt32, false),
        ],
        vec![
            Arc::new(StringArray::from(
                c.assignments
                    .iter()
                    .map(|x| x.0.as_str())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(UInt32Array::from(
                c.assignments.iter().map(|x| x.1).collect::<Vec<_>>(),
            )),
        ],
    )?;
    let m = &c.merges;
    let col = |f: fn(&Merge) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(m.iter().map(f).collect::<Vec<_>>()))
    };
    let b = stage(
        "merges.parquet",
        vec![s("a"), s("b"), s("reason"), s("deposit"), s("hot_wallet")],
        vec![
            col(|x| &x.a),
            col(|x| &x.b),
            col(|x| x.reason),
            col(|x| &x.deposit),
            col(|x| &x.hot_wallet),
        ],
    )?;
    let meta = serde_json::json!({
        "heuristics": [NAME],
        "source": "Victor, Address clustering heuristics for Ethereum, FC 2020",
        "min_deposits": bounds.min_deposits,
        "max_delay_blocks": bounds.max_delay_blocks,
        "max_amount_diff_wei": bounds.max_amount_diff.to_string(),
        "addresses": c.assignments.len(),
        "clusters": c.clusters,
        "deposits": c.deposits,
        "hot_wallets": c.hot_wallets,
        "merges": c.merges.len(),
    });
    let mut bytes = serde_json::to_vec_pretty(&meta).expect("cluster metadata serialises");
    bytes.push(b'\n');
    let p = out.join("_meta.json");
    sink::write_atomic(&p, &bytes)?;
    Ok(vec![a, b, p])
}
