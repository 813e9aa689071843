//! The canvas's answers on a Bitcoin dataset: the memory-mapped address index, an
//! address → outputs adjacency built at start, the clusters and the labels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use super::{ApiError, MAX_EXPAND, MAX_PAGE, amount_json, page_bounds};
use crate::cluster;
use crate::index::Index;
use crate::labels::Tag;
use crate::types::{AddrIx, TxIx};

/// A Bitcoin dataset, opened for the canvas.
#[derive(Debug)]
pub struct Btc {
    network: String,
    idx: Index,
    clusters: Option<cluster::Stored>,
    tags: super::TagIndex,
    /// The address id of each tag's address (`None`: not in the dataset), computed once.
    tag_ids: Vec<Option<AddrIx>>,
}

impl Btc {
    /// Opens the dataset's index of `chain_dir` (building it if missing), its clusters
    /// (when `chaintrace cluster bitcoin` has run) and its labels.
    ///
    /// # Errors
    /// An index that cannot be built, unreadable clusters or labels.
    pub fn open(data: &Path, chain_dir: &Path, network: &str) -> anyhow::Result<Btc> {
        let (idx, _) = Index::open_or_build(chain_dir)?;
        let cdir = cluster::clusters_dir(data, network);
        let clusters = if cdir.join("address_cluster.parquet").exists() {
            Some(cluster::load(&idx, &cdir)?)
        } else {
            None
        };
        let tags: Vec<Tag> = crate::labels::read_tags(&crate::labels::tags_path(data))?
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| &*t.chain == "bitcoin" && crate::labels::on_network(t, network))
            .collect();
        let tag_ids = tags.iter().map(|t| idx.address_id(&t.address)).collect();
        Ok(Btc {
            network: network.to_string(),
            idx,
            clusters,
            tags: super::TagIndex::new(tags),
            tag_ids,
        })
    }

    /// The dataset part of `GET /api/info`.
    pub fn info(&self) -> Value {
        let m = &self.idx.meta;
        json!({
            "chain": "bitcoin",
            "network": self.network,
            "heights": self.idx.heights(),
            "transactions": m.txs,
            "outputs": m.outputs,
            "addresses": m.addresses,
            "clustered": self.clusters.as_ref().map(|s| s.meta.heuristics.join(",")),
            "tags": self.tags.tags.len(),
            "categories": self.tags.tags.iter().map(|t| &*t.category).collect::<BTreeSet<_>>(),
            "unit": "BTC",
            "decimals": 8,
        })
    }

    /// The address id of `text`, or the error `chaintrace cluster show` gives for it.
    fn address_id(&self, text: &str) -> Result<AddrIx, ApiError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ApiError::input("no address given", "give an address"));
        }
        crate::trace::seeds::check_address(&self.idx, t, &self.network, "address").map_err(|e| {
            let msg = e.to_string();
            if self.idx.address_id(t).is_none() && msg.contains("not in the dataset")
                || msg.contains("never")
            {
                ApiError::not_found(msg, "check the address, or ingest the blocks that pay it")
            } else {
                ApiError::input(msg, "give an address of this dataset's network")
            }
        })
    }

    fn tx_of(&self, text: &str) -> Result<TxIx, ApiError> {
        let t = text.trim();
        let txid: bitcoin::Txid = t.parse().map_err(|_| {
            ApiError::input(
                format!("{t:?} is not a txid (64 hexadecimal digits)"),
                "give a transaction id",
            )
        })?;
        self.idx.tx_id(&txid).ok_or_else(|| {
            ApiError::not_found(
                format!(
                    "transaction {txid} is not in the dataset ({} blocks)",
                    self.idx.heights()
                ),
                "check the txid, or ingest the block that holds it",
            )
        })
    }

    /// The tags of `address` (every source, each with its confidence and file).
    fn tags_of(&self, address: &str) -> Vec<&Tag> {
        self.tags.of(address).collect()
    }

    /// The label shown for `address`: its first public tag (entity, category).
    fn label_of(&self, address: &str) -> Value {
        self.tags.label_json(address)
    }

    fn cluster_of(&self, a: AddrIx) -> Option<u32> {
        self.clusters.as_ref().map(|s| s.cluster_of[a.ix()])
    }

    /// The transactions touching `a`: those paying it and those spending its outputs, in
    /// chain order, each with what `a` received and sent in it (sat).
    fn activity(&self, a: AddrIx) -> Vec<(TxIx, u64, u64)> {
        let mut by_tx: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for o in self.idx.outputs_paid(a) {
            let v = self.idx.value(o).to_sat();
            by_tx.entry(self.idx.out_tx(o).0).or_default().0 += v;
            if let Some(t) = self.idx.spender(o) {
                by_tx.entry(t.0).or_default().1 += v;
            }
        }
        by_tx
            .into_iter()
            .map(|(t, (r, s))| (TxIx(t), r, s))
            .collect()
    }

    /// `GET /api/address/ADDRESS?offset=&limit=`: an address page: received, sent,
    /// balance, output and transaction counts, first and last seen (height and time), its
    /// tags, its cluster (when clustered: id, size, representative and why its addresses
    /// were merged, as `chaintrace cluster show`), and one page of its transactions.
    ///
    /// # Errors
    /// Not an address of the dataset (404 when well-formed but unseen), a page over
    /// [`MAX_PAGE`].
    pub fn address(&self, text: &str, offset: usize, limit: usize) -> Result<Value, ApiError> {
        let (offset, limit) = page_bounds(offset, limit)?;
        let a = self.address_id(text)?;
        let address = self.idx.address(a).to_string();
        let (mut received, mut sent, mut outputs, mut unspent) = (0u64, 0u64, 0u64, 0u64);
        for o in self.idx.outputs_paid(a) {
            let v = self.idx.value(o).to_sat();
            received += v;
            outputs += 1;
            match self.idx.spender(o) {
                Some(_) => sent += v,
                None => unspent += 1,
            }
        }
        let acts = self.activity(a);
        let seen = |t: TxIx| {
            let h = self.idx.tx_height(t).0;
            json!({"height": h, "time": self.idx.tx_time(t)})
        };
        let txs: Vec<Value> = acts
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&(t, r, s)| {
                json!({
                    "txid": self.idx.txid(t).to_string(),
                    "height": self.idx.tx_height(t).0,
                    "time": self.idx.tx_time(t),
                    "received": r,
                    "sent": s,
                })
            })
            .collect();
        let tags: Vec<Value> = self
            .tags_of(&address)
            .into_iter()
            .map(super::tag_json)
            .collect();
        let cluster = match &self.clusters {
            Some(s) => self.cluster_json(s, &address, 5)?,
            None => Value::Null,
        };
        Ok(json!({
            "address": address,
            "received": amount_json(received),
            "sent": amount_json(sent),
            "balance": amount_json(received - sent),
            "outputs": outputs,
            "unspent_outputs": unspent,
            "transactions": acts.len(),
            "first_seen": acts.first().map(|x| seen(x.0)),
            "last_seen": acts.last().map(|x| seen(x.0)),
            "tags": tags,
            "cluster": cluster,
            "page": {"offset": offset, "limit": limit, "total": acts.len()},
            "txs": txs,
        }))
    }

    /// `chaintrace cluster show --json`'s document for `address` (with `top`
    /// counterparties), its labels and held merges included.
    fn cluster_json(
        &self,
        s: &cluster::Stored,
        address: &str,
        top: usize,
    ) -> Result<Value, ApiError> {
        let shown = cluster::show(&self.idx, s, address, top)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let id = shown.stats.cluster_id;
        let in_cluster = |x: &str| {
            self.idx
                .address_id(x)
                .is_some_and(|a| s.cluster_of[a.ix()] == id)
        };
        let labels: Vec<Value> = self
            .tags
            .tags
            .iter()
            .zip(&self.tag_ids)
            .filter(|(_, a)| a.is_some_and(|a| s.cluster_of[a.ix()] == id))
            .map(|(t, _)| {
                json!({"address": t.address, "label": t.label, "entity": t.entity,
                    "category": t.category, "is_public": t.is_public, "source": t.source})
            })
            .collect();
        let held: Vec<&cluster::HeldMerge> = s
            .meta
            .held
            .iter()
            .filter(|h| in_cluster(&h.address_a) || in_cluster(&h.address_b))
            .collect();
        let mut v = serde_json::to_value(&shown).map_err(|e| ApiError::internal(e.to_string()))?;
        v["labels"] = Value::Array(labels);
        v["held"] = serde_json::to_value(&held).map_err(|e| ApiError::internal(e.to_string()))?;
        v["heuristics"] = json!(s.meta.heuristics);
        Ok(v)
    }

    /// `GET /api/cluster/ADDRESS?top=N`: the cluster of `ADDRESS`, the same document as
    /// `chaintrace cluster show --json --top N`.
    ///
    /// # Errors
    /// Not an address of the dataset; the dataset was never clustered (404).
    pub fn cluster(&self, text: &str, top: usize) -> Result<Value, ApiError> {
        let a = self.address_id(text)?;
        let Some(s) = &self.clusters else {
            return Err(ApiError::not_found(
                "the dataset is not clustered",
                "run `chaintrace cluster bitcoin`, then restart `chaintrace serve`",
            ));
        };
        if top > MAX_PAGE {
            return Err(ApiError::limit(
                format!("top {top}: at most {MAX_PAGE}"),
                "ask for fewer counterparties",
            ));
        }
        let address = self.idx.address(a).to_string();
        self.cluster_json(s, &address, top)
    }

    /// `GET /api/tx/TXID`: a transaction: height, time, its inputs (the address and value
    /// each spends, or `coinbase`) and outputs (address, value, the txid spending it), the
    /// fee, and the label of every address it touches.
    ///
    /// # Errors
    /// Not a txid (400), not in the dataset (404).
    pub fn tx(&self, text: &str) -> Result<Value, ApiError> {
        let t = self.tx_of(text)?;
        let idx = &self.idx;
        let mut in_sum = 0u64;
        let mut inputs = Vec::new();
        for i in idx.inputs_of(t) {
            let v = match idx.prev(i) {
                crate::index::Prev::Output(o) => {
                    let val = idx.value(o).to_sat();
                    in_sum += val;
                    let addr = idx.out_address(o).map(|a| idx.address(a).to_string());
                    json!({"txid": idx.txid(idx.out_tx(o)).to_string(), "vout": idx.vout(o),
                        "address": addr, "value": val,
                        "label": addr.as_deref().map_or(Value::Null, |a| self.label_of(a))})
                }
                crate::index::Prev::BeforeWindow(k) => {
                    let (txid, vout) = idx.before_outpoint(k);
                    let val = idx.before_value(k).to_sat();
                    in_sum += val;
                    let addr = idx.before_address(k).to_string();
                    json!({"txid": txid, "vout": vout, "address": addr, "value": val,
                        "label": self.label_of(&addr)})
                }
                _ => json!({"coinbase": true}),
            };
            inputs.push(v);
        }
        let mut out_sum = 0u64;
        let outputs: Vec<Value> = idx
            .outputs_of(t)
            .map(|o| {
                let val = idx.value(o).to_sat();
                out_sum += val;
                let addr = idx.out_address(o).map(|a| idx.address(a).to_string());
                json!({"vout": idx.vout(o), "address": addr, "value": val,
                    "script_type": format!("{:?}", idx.out_script_type(o)).to_lowercase(),
                    "spent_by": idx.spender(o).map(|s| idx.txid(s).to_string()),
                    "label": addr.as_deref().map_or(Value::Null, |a| self.label_of(a))})
            })
            .collect();
        let coinbase = idx.is_coinbase(t);
        Ok(json!({
            "txid": idx.txid(t).to_string(),
            "height": idx.tx_height(t).0,
            "time": idx.tx_time(t),
            "coinbase": coinbase,
            "inputs": inputs,
            "outputs": outputs,
            "fee": if coinbase { Value::Null } else { json!(in_sum.saturating_sub(out_sum)) },
        }))
    }

    /// `GET /api/search?q=TEXT`: what `TEXT` is: an address of the dataset, a txid, or
    /// labels whose address, label, entity, category or source contains it (at most
    /// `limit` of them, each with its address).
    ///
    /// # Errors
    /// An empty query (400).
    pub fn search(&self, q: &str, offset: usize, limit: usize) -> Result<Value, ApiError> {
        let (offset, limit) = page_bounds(offset, limit)?;
        let q = q.trim();
        if q.is_empty() {
            return Err(ApiError::input(
                "an empty search",
                "type an address, a txid or a label",
            ));
        }
        if let Some(a) = self.idx.address_id(q) {
            return Ok(json!({"kind": "address", "address": self.idx.address(a), "matches": []}));
        }
        if let Ok(txid) = q.parse::<bitcoin::Txid>()
            && self.idx.tx_id(&txid).is_some()
        {
            return Ok(json!({"kind": "tx", "txid": txid.to_string(), "matches": []}));
        }
        if let Some(v) = super::search_labels(&self.tags.tags, q, offset, limit, |a| {
            self.idx.address_id(a).is_some()
        }) {
            return Ok(v);
        }
        // Say what the text is, as the command line would, when it looks like an address.
        let why = match self.address_id(q) {
            Err(e) if e.kind == "input" && super::looks_like_address(q) => e.message,
            _ => format!("no address, transaction or label of the dataset matches {q:?}"),
        };
        Err(ApiError::not_found(
            why,
            "search an address, a txid, or a word of a label (entity, category, source)",
        ))
    }

    /// A node of an expansion: an address with its label and cluster.
    fn node_json(&self, a: AddrIx) -> Value {
        let address = self.idx.address(a);
        json!({"address": address, "label": self.label_of(address), "cluster": self.cluster_of(a)})
    }

    /// `GET /api/expand?address=A&direction=forward|backward&limit=N`: one hop around an
    /// address. Forward: the transactions spending its outputs and the addresses they pay
    /// (each edge: the outputs' value to that address); backward: the transactions paying
    /// it and the addresses funding them (each edge: the value paid to `A`). Edges are
    /// summed per pair of addresses, with their txids; `shared` marks transactions funded
    /// by other addresses too (an edge's amount is then not all `A`'s: run a trace for the
    /// exact share). At most `limit` transactions (≤ [`MAX_EXPAND`]), earliest first;
    /// `truncated` says when there were more.
    ///
    /// # Errors
    /// Not an address of the dataset, a bad direction, a limit over [`MAX_EXPAND`].
    pub fn expand(&self, text: &str, direction: &str, limit: usize) -> Result<Value, ApiError> {
        if limit == 0 || limit > MAX_EXPAND {
            return Err(ApiError::limit(
                format!("limit {limit}: an expansion reads 1 to {MAX_EXPAND} transactions"),
                "expand with a smaller limit, or run a trace",
            ));
        }
        let forward = super::parse_direction(direction)?;
        let a = self.address_id(text)?;
        let idx = &self.idx;
        // The transactions to read: spending A's outputs (forward) or paying A (backward).
        let mut txs: BTreeSet<u32> = BTreeSet::new();
        for o in self.idx.outputs_paid(a) {
            if forward {
                if let Some(t) = idx.spender(o) {
                    txs.insert(t.0);
                }
            } else {
                txs.insert(idx.out_tx(o).0);
            }
        }
        let total = txs.len();
        // (from, to) → (sat, txids, shared)
        let mut edges: BTreeMap<(u32, u32), (u64, Vec<String>, bool)> = BTreeMap::new();
        let mut unknown = 0u64;
        for &t in txs.iter().take(limit) {
            let t = TxIx(t);
            let funders: BTreeSet<u32> = idx.input_addresses(t).map(|x| x.0).collect();
            let shared = funders.iter().any(|&f| f != a.0);
            let txid = idx.txid(t).to_string();
            if forward {
                for o in idx.outputs_of(t) {
                    match idx.out_address(o) {
                        Some(to) if to != a => {
                            let e = edges.entry((a.0, to.0)).or_default();
                            e.0 += idx.value(o).to_sat();
                            if e.1.last() != Some(&txid) {
                                e.1.push(txid.clone());
                            }
                            e.2 |= shared;
                        }
                        Some(_) => {}
                        None => unknown += idx.value(o).to_sat(),
                    }
                }
            } else {
                let paid: u64 = idx
                    .outputs_of(t)
                    .filter(|&o| idx.out_address(o) == Some(a))
                    .map(|o| idx.value(o).to_sat())
                    .sum();
                for &f in funders.iter().filter(|&&f| f != a.0) {
                    let e = edges.entry((f, a.0)).or_default();
                    e.0 += paid;
                    e.1.push(txid.clone());
                    e.2 |= funders.len() > 1;
                }
            }
        }
        let mut nodes: BTreeSet<u32> = BTreeSet::new();
        let edges: Vec<Value> = edges
            .into_iter()
            .map(|((f, t), (sat, txids, shared))| {
                nodes.insert(f);
                nodes.insert(t);
                json!({"from": idx.address(AddrIx(f)), "to": idx.address(AddrIx(t)),
                    "amount": sat, "txids": txids, "shared": shared})
            })
            .collect();
        nodes.insert(a.0);
        Ok(json!({
            "address": idx.address(a),
            "direction": if forward { "forward" } else { "backward" },
            "transactions": total,
            "read": total.min(limit),
            "truncated": total > limit,
            "nodes": nodes.into_iter().map(|n| self.node_json(AddrIx(n))).collect::<Vec<_>>(),
            "edges": edges,
            "to_unknown_scripts": unknown,
        }))
    }
}
