//! The canvas's answers on an Ethereum dataset: every ETH transfer of the dataset (value
//! transfers, internal transfers and fees, as the account-model trace reads them) held as
//! one [`Ledger`], an account → transfers adjacency, the clusters of `cluster ethereum`
//! and the labels. Amounts are wei, as decimal strings (they exceed 2^53).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::{Value, json};

use super::{ApiError, MAX_EXPAND, MAX_PAGE, page_bounds, parse_direction};
use crate::trace::Amount;
use crate::trace::account::{FEE, Ledger, UNKNOWN};
use crate::trace::ethereum::{self as eth, Asset};
use crate::types::ix;

/// An Ethereum dataset, opened for the canvas.
#[derive(Debug)]
pub struct Eth {
    ledger: Ledger,
    ids: HashMap<String, u32>,
    /// The transfers touching each account (indices into `ledger.transfers`), in order.
    by_account: Vec<Vec<u32>>,
    /// The transfers of each transaction (indices), by transaction index.
    by_tx: Vec<Vec<u32>>,
    tx_ids: HashMap<String, u32>,
    clusters: HashMap<String, u32>,
    tags: super::TagIndex,
}

/// `{"wei": "…", "eth": "…", "text": "… ETH"}`.
fn wei_json(w: Amount) -> Value {
    let eth = crate::report::graph::trim(w, 18);
    json!({"wei": w.to_string(), "eth": eth, "text": format!("{eth} ETH")})
}

impl Eth {
    /// Reads every ETH transfer of the dataset in `chain_dir`, its clusters (when `chaintrace
    /// cluster ethereum` has run) and its labels.
    ///
    /// # Errors
    /// Unreadable tables, a dataset without ETH transfers, unreadable labels.
    pub fn open(data: &Path, chain_dir: &Path) -> anyhow::Result<Eth> {
        let ledger = eth::ledger(chain_dir, &Asset::Eth, u64::MAX)?;
        let ids: HashMap<String, u32> = ledger
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), crate::types::n32(i)))
            .collect();
        let mut by_account = vec![Vec::new(); ledger.accounts.len()];
        let mut by_tx = vec![Vec::new(); ledger.txids.len()];
        for (i, t) in ledger.transfers.iter().enumerate() {
            let i = crate::types::n32(i);
            by_account[ix(t.from)].push(i);
            if t.to != t.from && t.to != FEE && t.to != UNKNOWN {
                by_account[ix(t.to)].push(i);
            }
            by_tx[ix(t.tx)].push(i);
        }
        let tx_ids = ledger
            .txids
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_ascii_lowercase(), crate::types::n32(i)))
            .collect();
        let cdir = crate::cluster::clusters_dir(data, "ethereum");
        let clusters = if cdir.join("address_cluster.parquet").exists() {
            eth::address_clusters(&cdir)?.into_iter().collect()
        } else {
            HashMap::new()
        };
        let tags = crate::labels::read_tags(&crate::labels::tags_path(data))?
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| &*t.chain == "ethereum")
            .collect();
        Ok(Eth {
            ledger,
            ids,
            by_account,
            by_tx,
            tx_ids,
            clusters,
            tags: super::TagIndex::new(tags),
        })
    }

    /// The dataset part of `GET /api/info`.
    pub fn info(&self) -> Value {
        json!({
            "chain": "ethereum",
            "network": "mainnet",
            "heights": self.ledger.transfers.last().map(|t| t.block),
            "transactions": self.ledger.txids.len(),
            "transfers": self.ledger.transfers.len(),
            "addresses": self.ledger.accounts.len(),
            "clustered": (!self.clusters.is_empty()).then_some("deposit-reuse"),
            "tags": self.tags.tags.len(),
            "categories": self.tags.tags.iter().map(|t| &*t.category).collect::<BTreeSet<_>>(),
            "unit": "ETH",
            "decimals": 18,
        })
    }

    fn account(&self, text: &str) -> Result<u32, ApiError> {
        let t = text.trim().to_ascii_lowercase();
        if !eth::is_address(&t) {
            return Err(ApiError::input(
                format!(
                    "{:?} is not an Ethereum address (0x and 40 hexadecimal digits)",
                    text.trim()
                ),
                "this dataset is Ethereum: give an 0x account",
            ));
        }
        self.ids.get(&t).copied().ok_or_else(|| {
            ApiError::not_found(
                format!("account {t} moves no ETH in the dataset"),
                "check the address, or ingest the blocks where it is active",
            )
        })
    }

    fn name(&self, a: u32) -> &str {
        match a {
            FEE => "fee",
            UNKNOWN => "unknown",
            a => &self.ledger.accounts[ix(a)],
        }
    }

    fn label_of(&self, address: &str) -> Value {
        self.tags.label_json(address)
    }

    /// `GET /api/address/0x…`: an account page: wei received and sent (fees included in
    /// sent), the net change over the dataset's blocks (not a balance: the dataset may
    /// start after the account's first block), transfers and transactions, first and last
    /// seen, tags, cluster, and one page of its transactions.
    ///
    /// # Errors
    /// Not an 0x address (400), an account without ETH transfers (404), a page over
    /// [`MAX_PAGE`].
    pub fn address(&self, text: &str, offset: usize, limit: usize) -> Result<Value, ApiError> {
        let (offset, limit) = page_bounds(offset, limit)?;
        let a = self.account(text)?;
        let (mut received, mut sent) = (0 as Amount, 0 as Amount);
        let mut by_tx: BTreeMap<u32, (Amount, Amount, u64, u32)> = BTreeMap::new();
        for &i in &self.by_account[ix(a)] {
            let t = &self.ledger.transfers[ix(i)];
            let e = by_tx.entry(t.tx).or_insert((0, 0, t.block, t.time));
            if t.to == a && t.from != a {
                received += t.value;
                e.0 += t.value;
            }
            if t.from == a && t.to != a {
                sent += t.value;
                e.1 += t.value;
            }
        }
        let mut order: Vec<(u32, (Amount, Amount, u64, u32))> = by_tx.into_iter().collect();
        order.sort_by_key(|(tx, v)| (v.2, *tx));
        let seen = |x: &(u32, (Amount, Amount, u64, u32))| json!({"height": x.1.2, "time": x.1.3});
        let address = self.name(a).to_string();
        let tags: Vec<Value> = self.tags.of(&address).map(super::tag_json).collect();
        let txs: Vec<Value> = order
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(tx, (r, s, b, time))| {
                json!({"txid": self.ledger.txids[ix(*tx)], "height": b, "time": time,
                    "received": r.to_string(), "sent": s.to_string()})
            })
            .collect();
        let cluster = match self.clusters.get(&address) {
            Some(_) => self.cluster(&address, 5)?,
            None => Value::Null,
        };
        let net = if received >= sent {
            wei_json(received - sent)
        } else {
            let mut v = wei_json(sent - received);
            v["negative"] = json!(true);
            v["text"] = json!(format!("-{}", v["text"].as_str().unwrap_or("")));
            v
        };
        Ok(json!({
            "address": address,
            "received": wei_json(received),
            "sent": wei_json(sent),
            "balance": net,
            "balance_is": "the net change over the dataset's blocks (received minus sent and fees): the account's balance when the dataset starts at its first block",
            "outputs": self.by_account[ix(a)].len(),
            "unspent_outputs": Value::Null,
            "transactions": order.len(),
            "first_seen": order.first().map(seen),
            "last_seen": order.last().map(seen),
            "tags": tags,
            "cluster": cluster,
            "page": {"offset": offset, "limit": limit, "total": order.len()},
            "txs": txs,
        }))
    }

    /// `GET /api/cluster/0x…`: the account's cluster from `cluster ethereum` (deposit-address
    /// reuse): its id, size, up to `top` members and their labels.
    ///
    /// # Errors
    /// Not an address; the dataset was never clustered or the account is in no cluster
    /// (404).
    pub fn cluster(&self, text: &str, top: usize) -> Result<Value, ApiError> {
        let t = text.trim().to_ascii_lowercase();
        if !eth::is_address(&t) {
            return Err(ApiError::input(
                format!("{:?} is not an Ethereum address", text.trim()),
                "give an 0x account",
            ));
        }
        if top > MAX_PAGE {
            return Err(ApiError::limit(
                format!("top {top}: at most {MAX_PAGE}"),
                "ask for fewer members",
            ));
        }
        let Some(&id) = self.clusters.get(&t) else {
            return Err(ApiError::not_found(
                if self.clusters.is_empty() {
                    "the dataset is not clustered".to_string()
                } else {
                    format!("{t} is in no cluster")
                },
                "run `chaintrace cluster ethereum`, then restart `chaintrace serve`",
            ));
        };
        let mut members: Vec<&str> = self
            .clusters
            .iter()
            .filter(|(_, c)| **c == id)
            .map(|(a, _)| a.as_str())
            .collect();
        members.sort_unstable();
        let labels: Vec<Value> = self
            .tags
            .tags
            .iter()
            .filter(|x| self.clusters.get(&x.address) == Some(&id))
            .map(|x| {
                json!({"address": x.address, "label": x.label, "entity": x.entity,
                    "category": x.category, "is_public": x.is_public, "source": x.source})
            })
            .collect();
        Ok(json!({
            "address": t,
            "stats": {"cluster_id": id, "size": members.len()},
            "representative": members[0],
            "sample_addresses": members.iter().take(top).collect::<Vec<_>>(),
            "merges_by_rule": {"deposit-reuse": members.len() - 1},
            "weakest_link": Value::Null,
            "labels": labels,
            "heuristics": ["deposit-reuse"],
        }))
    }

    /// `GET /api/tx/0x…`: the ETH moved by a transaction: each transfer (from, to, wei; the
    /// fee as a transfer to `fee`) with its labels.
    ///
    /// # Errors
    /// Not a transaction hash (400), no ETH moved by it in the dataset (404).
    pub fn tx(&self, text: &str) -> Result<Value, ApiError> {
        let t = text.trim().to_ascii_lowercase();
        if !(t.len() == 66 && t.starts_with("0x") && t[2..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ApiError::input(
                format!(
                    "{:?} is not a transaction hash (0x and 64 hexadecimal digits)",
                    text.trim()
                ),
                "give a transaction hash",
            ));
        }
        let Some(&tx) = self.tx_ids.get(&t) else {
            return Err(ApiError::not_found(
                format!("transaction {t} moves no ETH in the dataset"),
                "check the hash, or ingest its block",
            ));
        };
        let list = &self.by_tx[ix(tx)];
        let first = &self.ledger.transfers[ix(list[0])];
        let transfers: Vec<Value> = list
            .iter()
            .map(|&i| {
                let x = &self.ledger.transfers[ix(i)];
                let (f, to) = (self.name(x.from), self.name(x.to));
                json!({"from": f, "to": to, "value": x.value.to_string(),
                    "unresolved": x.unresolved,
                    "from_label": self.label_of(f), "to_label": self.label_of(to)})
            })
            .collect();
        let fee: Amount = list
            .iter()
            .map(|&i| &self.ledger.transfers[ix(i)])
            .filter(|x| x.to == FEE)
            .map(|x| x.value)
            .sum();
        Ok(json!({
            "txid": self.ledger.txids[ix(tx)],
            "height": first.block,
            "time": first.time,
            "coinbase": false,
            "transfers": transfers,
            "fee": fee.to_string(),
        }))
    }

    /// `GET /api/search?q=…`: an account, a transaction hash, or labels containing the text.
    ///
    /// # Errors
    /// An empty query (400), nothing found (404).
    pub fn search(&self, q: &str, offset: usize, limit: usize) -> Result<Value, ApiError> {
        let (offset, limit) = page_bounds(offset, limit)?;
        let q = q.trim();
        if q.is_empty() {
            return Err(ApiError::input(
                "an empty search",
                "type an address, a transaction hash or a label",
            ));
        }
        let lower = q.to_ascii_lowercase();
        if self.ids.contains_key(&lower) {
            return Ok(json!({"kind": "address", "address": lower, "matches": []}));
        }
        if self.tx_ids.contains_key(&lower) {
            return Ok(json!({"kind": "tx", "txid": lower, "matches": []}));
        }
        if let Some(v) = super::search_labels(&self.tags.tags, q, offset, limit, |a| {
            self.ids.contains_key(a)
        }) {
            return Ok(v);
        }
        Err(ApiError::not_found(
            format!("no account, transaction or label of the dataset matches {q:?}"),
            "search an 0x account, a transaction hash, or a word of a label",
        ))
    }

    /// `GET /api/expand?address=0x…`: one hop: forward, the accounts it sent ETH to;
    /// backward, those that sent it ETH; each edge the wei summed per pair with the
    /// transaction hashes. Fees are left out. At most `limit` transactions (≤
    /// [`MAX_EXPAND`]), earliest first.
    ///
    /// # Errors
    /// Not an account of the dataset, a bad direction, a limit over [`MAX_EXPAND`].
    pub fn expand(&self, text: &str, direction: &str, limit: usize) -> Result<Value, ApiError> {
        if limit == 0 || limit > MAX_EXPAND {
            return Err(ApiError::limit(
                format!("limit {limit}: an expansion reads 1 to {MAX_EXPAND} transactions"),
                "expand with a smaller limit, or run a trace",
            ));
        }
        let forward = parse_direction(direction)?;
        let a = self.account(text)?;
        let mut txs: BTreeSet<u32> = BTreeSet::new();
        let mut edges: BTreeMap<(u32, u32), (Amount, Vec<String>)> = BTreeMap::new();
        let mut total = BTreeSet::new();
        for &i in &self.by_account[ix(a)] {
            let t = &self.ledger.transfers[ix(i)];
            let mine = if forward { t.from == a } else { t.to == a };
            if !mine || t.to == FEE || t.to == UNKNOWN || t.from == t.to {
                continue;
            }
            total.insert(t.tx);
            if txs.len() >= limit && !txs.contains(&t.tx) {
                continue;
            }
            txs.insert(t.tx);
            let e = edges.entry((t.from, t.to)).or_default();
            e.0 += t.value;
            let h = &self.ledger.txids[ix(t.tx)];
            if e.1.last() != Some(h) {
                e.1.push(h.clone());
            }
        }
        let mut nodes: BTreeSet<u32> = BTreeSet::from([a]);
        let edges: Vec<Value> = edges
            .into_iter()
            .map(|((f, t), (v, hashes))| {
                nodes.insert(f);
                nodes.insert(t);
                json!({"from": self.name(f), "to": self.name(t), "amount": v.to_string(),
                    "txids": hashes, "shared": false})
            })
            .collect();
        Ok(json!({
            "address": self.name(a),
            "direction": if forward { "forward" } else { "backward" },
            "transactions": total.len(),
            "read": txs.len(),
            "truncated": total.len() > txs.len(),
            "nodes": nodes.iter().map(|&n| {
                let name = self.name(n);
                json!({"address": name, "label": self.label_of(name), "cluster": self.clusters.get(name)})
            }).collect::<Vec<_>>(),
            "edges": edges,
        }))
    }
}
