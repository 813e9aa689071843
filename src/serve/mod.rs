//! `chaintrace serve`: the investigation canvas's API over a Bitcoin dataset, as plain
//! functions returning JSON values ([`Api`]), and the HTTP server that exposes them on
//! 127.0.0.1 only, behind a per-run token ([`http`]).
//!
//! Every answer is computed by the library the command line uses: an address's cluster is
//! [`crate::cluster::show`]'s (the numbers `chaintrace cluster show --json` prints), a trace
//! is run from the same command line `chaintrace trace` parses, and a saved trace writes the
//! case folder that command writes, byte for byte. Amounts are integer satoshi (JSON
//! numbers), with the BTC text beside them for display only.

pub mod http;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cluster;
use crate::index::Index;
use crate::labels::Tag;
use crate::types::{AddrIx, OutIx, TxIx, ix};

/// The canvas's notes in a case folder (written by `POST /api/save`; kept by traces).
pub const ANNOTATIONS_FILE: &str = "annotations.json";
/// Most rows one page of a list returns (an exchange address has hundreds of thousands of
/// transactions: the client pages through them).
pub const MAX_PAGE: usize = 200;
/// Most transactions `expand` reads around one address.
pub const MAX_EXPAND: usize = 500;
/// Most hops a trace through the API may follow.
pub const MAX_HOPS: u32 = 50;
/// Most seeds a trace through the API may start from.
pub const MAX_SEEDS: usize = 1000;

/// An API error: the HTTP status, and the JSON body `{"error": {"kind", "message",
/// "hint"}}` the command line prints with `--json` (kind: `input`, `not_found`, `limit`,
/// `auth`, `internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub hint: String,
}

impl ApiError {
    /// A 400: the request is malformed or names something of the wrong kind.
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "input",
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A 404: a well-formed address, txid or label the dataset does not hold.
    pub fn not_found(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            kind: "not_found",
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A 422: a request beyond the server's limits (pages, hops, seeds).
    pub fn limit(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status: 422,
            kind: "limit",
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A 500: chaintrace failed (a file it cannot read, a bug).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            kind: "internal",
            message: message.into(),
            hint: "see the server's terminal; this may be a bug in chaintrace".into(),
        }
    }
    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"kind": self.kind, "message": self.message, "hint": self.hint}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

/// The outputs paid to each address, as a compressed sparse row: the outputs of address
/// `a` are `outs[start[a]..start[a + 1]]`, in chain order. Built once in one pass over the
/// outputs (8 bytes per output and per address), so that an address page reads only its
/// own outputs.
#[derive(Debug)]
pub struct AddressOutputs {
    start: Vec<u64>,
    outs: Vec<u64>,
}

impl AddressOutputs {
    /// Builds the adjacency of every address of `idx`.
    pub fn build(idx: &Index) -> AddressOutputs {
        let n = ix(idx.addresses());
        let mut start = vec![0u64; n + 1];
        for o in (0..idx.meta.outputs).map(OutIx) {
            if let Some(a) = idx.out_address(o) {
                start[a.ix() + 1] += 1;
            }
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill: Vec<u64> = start[..n].to_vec();
        let mut outs = vec![0u64; ix(start[n])];
        for o in (0..idx.meta.outputs).map(OutIx) {
            if let Some(a) = idx.out_address(o) {
                outs[ix(fill[a.ix()])] = o.0;
                fill[a.ix()] += 1;
            }
        }
        AddressOutputs { start, outs }
    }

    /// The outputs paid to `a`, in chain order.
    pub fn of(&self, a: AddrIx) -> impl Iterator<Item = OutIx> + '_ {
        self.outs[ix(self.start[a.ix()])..ix(self.start[a.ix() + 1])]
            .iter()
            .map(|&o| OutIx(o))
    }
}

/// A trace asked of the API: the fields of `chaintrace trace`'s flags (JSON body of
/// `POST /api/trace` and `POST /api/save`).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// `--seed` (each an address, txid, TXID:VOUT or cluster:ADDRESS).
    pub seeds: Vec<String>,
    /// `--policy`: poison, haircut, fifo, lifo, tiho or all (default haircut).
    #[serde(default)]
    pub policy: Vec<String>,
    /// `--max-hops` (default 20, at most [`MAX_HOPS`]).
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// `--min-value` (e.g. `0.001btc`, `10000sat`).
    #[serde(default)]
    pub min_value: Option<String>,
    /// `--stop-at` categories (or `none`).
    #[serde(default)]
    pub stop_at: Vec<String>,
    /// `--direction` forward or backward.
    #[serde(default)]
    pub direction: Option<String>,
    /// `--level` address or cluster.
    #[serde(default)]
    pub level: Option<String>,
}

/// The canvas's API over one Bitcoin dataset (see the module's documentation).
#[derive(Debug)]
pub struct Api {
    /// `--data` as given (recorded in a saved case's command line).
    pub data: PathBuf,
    /// The network of the dataset (`bitcoin`, `regtest`, ...).
    pub network: String,
    /// `--case` as given: where `save` writes; `None` when none was opened.
    pub case: Option<PathBuf>,
    /// The program's path, the first word of a recorded command line.
    pub program: String,
    idx: Index,
    by_address: AddressOutputs,
    clusters: Option<cluster::Stored>,
    tags: Vec<Tag>,
    scratch: PathBuf,
    traces: AtomicU64,
    one_trace: Mutex<()>,
}

fn amount_json(sat: u64) -> Value {
    json!({"sat": sat, "btc": crate::report::fmt::amount(u128::from(sat), 8)})
}

fn page_bounds(offset: usize, limit: usize) -> Result<(usize, usize), ApiError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::limit(
            format!("limit {limit}: a page holds 1 to {MAX_PAGE} rows"),
            "page through with offset",
        ));
    }
    Ok((offset, limit))
}

impl Api {
    /// Opens the dataset's index (building it if missing), its clusters (when
    /// `chaintrace cluster bitcoin` has run) and its labels; `scratch` is a private folder
    /// for traces that are not saved.
    ///
    /// # Errors
    /// No Bitcoin dataset in `data`, an index that cannot be built, unreadable clusters or
    /// labels.
    pub fn open(
        data: &Path,
        network: Option<&str>,
        case: Option<&Path>,
        scratch: &Path,
    ) -> anyhow::Result<Api> {
        let (chain_dir, network) = crate::trace::request::chain_dir(data, network)?;
        let (idx, _) = Index::open_or_build(&chain_dir)?;
        let by_address = AddressOutputs::build(&idx);
        let cdir = cluster::clusters_dir(data, &network);
        let clusters = if cdir.join("address_cluster.parquet").exists() {
            Some(cluster::load(&idx, &cdir)?)
        } else {
            None
        };
        let tags = crate::labels::read_tags(&crate::labels::tags_path(data))?
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| t.chain == "bitcoin" && crate::labels::on_network(t, &network))
            .collect();
        std::fs::create_dir_all(scratch)?;
        Ok(Api {
            data: data.to_path_buf(),
            network,
            case: case.map(Path::to_path_buf),
            program: std::env::args()
                .next()
                .unwrap_or_else(|| "chaintrace".into()),
            idx,
            by_address,
            clusters,
            tags,
            scratch: scratch.to_path_buf(),
            traces: AtomicU64::new(0),
            one_trace: Mutex::new(()),
        })
    }

    /// `GET /api/info`: the dataset (chain, network, heights, counts), whether it is
    /// clustered and labelled, the open case, the limits, and the palette of the report's
    /// charts (category → `#rrggbb`).
    pub fn info(&self) -> Value {
        let m = &self.idx.meta;
        let mut cats: BTreeSet<&str> = self.tags.iter().map(|t| t.category.as_str()).collect();
        cats.extend(["seed", "unlabelled", "peel chain", "other"]);
        let palette: BTreeMap<&str, String> = cats.into_iter().map(|c| (c, colour(c))).collect();
        json!({
            "tool": format!("chaintrace {}", crate::VERSION),
            "chain": "bitcoin",
            "network": self.network,
            "data": self.data.display().to_string(),
            "heights": self.idx.heights(),
            "transactions": m.txs,
            "outputs": m.outputs,
            "addresses": m.addresses,
            "clustered": self.clusters.as_ref().map(|s| s.meta.heuristics.join(",")),
            "tags": self.tags.len(),
            "case": self.case.as_ref().map(|c| c.display().to_string()),
            "limits": {"page": MAX_PAGE, "expand": MAX_EXPAND, "max_hops": MAX_HOPS, "seeds": MAX_SEEDS},
            "palette": palette,
            "policies": ["poison", "haircut", "fifo", "lifo", "tiho"],
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
        self.tags.iter().filter(|t| t.address == address).collect()
    }

    /// The label shown for `address`: its first public tag (entity, category).
    fn label_of(&self, address: &str) -> Value {
        self.tags.iter().find(|t| t.address == address).map_or(
            Value::Null,
            |t| json!({"entity": t.entity, "category": t.category, "source": t.source}),
        )
    }

    fn cluster_of(&self, a: AddrIx) -> Option<u32> {
        self.clusters.as_ref().map(|s| s.cluster_of[a.ix()])
    }

    /// The transactions touching `a`: those paying it and those spending its outputs, in
    /// chain order, each with what `a` received and sent in it (sat).
    fn activity(&self, a: AddrIx) -> Vec<(TxIx, u64, u64)> {
        let mut by_tx: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for o in self.by_address.of(a) {
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
        for o in self.by_address.of(a) {
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
            .map(|t| {
                json!({"label": t.label, "entity": t.entity, "category": t.category,
                    "confidence": t.confidence, "source": t.source, "is_public": t.is_public,
                    "lastmod": t.lastmod, "file": t.file, "line": t.line})
            })
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
            .iter()
            .filter(|t| in_cluster(&t.address))
            .map(|t| {
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
    pub fn search(&self, q: &str, limit: usize) -> Result<Value, ApiError> {
        let (_, limit) = page_bounds(0, limit)?;
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
        let needle = q.to_lowercase();
        let hits: Vec<&Tag> = self
            .tags
            .iter()
            .filter(|t| {
                [&t.address, &t.label, &t.entity, &t.category, &t.source]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .collect();
        if hits.is_empty() {
            // Say what the text is, as the command line would.
            let why = match self.address_id(q) {
                Err(e) if e.kind == "input" => e.message,
                _ => format!("nothing in the dataset or its labels matches {q:?}"),
            };
            return Err(ApiError::not_found(
                why,
                "search an address, a txid, or a word of a label (entity, category, source)",
            ));
        }
        let matches: Vec<Value> = hits
            .iter()
            .take(limit)
            .map(|t| {
                json!({"address": t.address, "label": t.label, "entity": t.entity,
                    "category": t.category, "source": t.source, "confidence": t.confidence,
                    "in_dataset": self.idx.address_id(&t.address).is_some()})
            })
            .collect();
        Ok(json!({"kind": "labels", "total": hits.len(), "matches": matches}))
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
        let forward = match direction {
            "forward" | "out" | "" => true,
            "backward" | "in" => false,
            d => {
                return Err(ApiError::input(
                    format!("direction {d:?}: give forward or backward"),
                    "forward: where the money went; backward: where it came from",
                ));
            }
        };
        let a = self.address_id(text)?;
        let idx = &self.idx;
        // The transactions to read: spending A's outputs (forward) or paying A (backward).
        let mut txs: BTreeSet<u32> = BTreeSet::new();
        for o in self.by_address.of(a) {
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

    /// The `chaintrace trace` command line of `q`, writing into `out`.
    pub fn trace_argv(&self, q: &TraceQuery, out: &Path) -> Result<Vec<String>, ApiError> {
        if q.seeds.is_empty() {
            return Err(ApiError::input("no seeds", "give at least one seed"));
        }
        if q.seeds.len() > MAX_SEEDS {
            return Err(ApiError::limit(
                format!("{} seeds: at most {MAX_SEEDS} per trace", q.seeds.len()),
                "trace a cluster (cluster:ADDRESS) or use the command line with @FILE",
            ));
        }
        if let Some(h) = q.max_hops
            && h > MAX_HOPS
        {
            return Err(ApiError::limit(
                format!("max_hops {h}: at most {MAX_HOPS} through the canvas"),
                "use `chaintrace trace` for longer traces",
            ));
        }
        let mut argv = vec![
            self.program.clone(),
            "trace".to_string(),
            "--data".to_string(),
            self.data.display().to_string(),
            "--network".to_string(),
            self.network.clone(),
        ];
        for s in &q.seeds {
            if s.trim().starts_with('@') {
                return Err(ApiError::input(
                    format!("seed {s:?}: a file of seeds is not read through the API"),
                    "give the seeds themselves",
                ));
            }
            argv.push("--seed".into());
            argv.push(s.trim().to_string());
        }
        if !q.policy.is_empty() {
            argv.push("--policy".into());
            argv.push(q.policy.join(","));
        }
        if let Some(h) = q.max_hops {
            argv.push("--max-hops".into());
            argv.push(h.to_string());
        }
        if let Some(m) = &q.min_value {
            argv.push("--min-value".into());
            argv.push(m.clone());
        }
        if !q.stop_at.is_empty() {
            argv.push("--stop-at".into());
            argv.push(q.stop_at.join(","));
        }
        if let Some(d) = &q.direction {
            argv.push("--direction".into());
            argv.push(d.clone());
        }
        if let Some(l) = &q.level {
            argv.push("--level".into());
            argv.push(l.clone());
        }
        argv.push("--out".into());
        argv.push(out.display().to_string());
        Ok(argv)
    }

    /// `POST /api/trace`: runs the trace `q` as `chaintrace trace` would (the same command
    /// line parsed by the same code) into a scratch folder, and answers with each model's
    /// totals, exposure, exits by entity with their deposit addresses, the plain-words
    /// headline of the report, and its flow chart laid out as the report's (boxes, edges,
    /// colours, column names), every chart edge with the transfers (txids) behind it.
    ///
    /// # Errors
    /// What `chaintrace trace` would refuse (400), a request over the limits (422).
    pub fn trace(&self, q: &TraceQuery) -> Result<Value, ApiError> {
        let n = self.traces.fetch_add(1, Ordering::Relaxed);
        let out = self.scratch.join(format!("trace-{n}"));
        let argv = self.trace_argv(q, &out)?;
        let _ = std::fs::remove_dir_all(&out);
        let run = self.run_trace(&argv, &out);
        let answer = run.and_then(|()| case_answer(&out));
        let _ = std::fs::remove_dir_all(&out);
        let mut v = answer?;
        v["command"] = json!(argv);
        Ok(v)
    }

    /// Runs `argv` (a `chaintrace trace` command line) writing its case into `out`, as
    /// that command does (its audit trail included when `out` is a case).
    fn run_trace(&self, argv: &[String], out: &Path) -> Result<(), ApiError> {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| {
            let text = e.render().to_string();
            ApiError::input(
                text.split("\n\nUsage:")
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                "see `chaintrace trace --help` for the fields",
            )
        })?;
        let crate::cli::Command::Trace(a) = &cli.command else {
            return Err(ApiError::internal("not a trace command line"));
        };
        // One trace at a time: the recorded command line is process-wide.
        let _one = self.one_trace.lock().unwrap_or_else(|p| p.into_inner());
        crate::cli::set_command_line(Some(argv.to_vec()));
        let r = crate::cli::trace::run_quietly(a, out);
        crate::cli::set_command_line(None);
        r.map(|_| ()).map_err(|e| {
            let msg = crate::cli::error_text(&e.error);
            if e.code == 2 {
                ApiError::internal(msg)
            } else if msg.contains("not in the dataset") || msg.contains("never") {
                ApiError::not_found(msg, "check the seeds")
            } else {
                ApiError::input(msg, "see `chaintrace trace --help`")
            }
        })
    }

    /// `POST /api/save`: writes the trace `q` into the open case as `chaintrace trace
    /// --out CASE` does (the same files, byte for byte, and an entry in its audit trail),
    /// then `annotations` (the canvas's notes on nodes and edges, any JSON object) into
    /// `CASE/annotations.json`, logged in the audit trail as an `annotate` entry.
    ///
    /// # Errors
    /// No case open (409), what the trace would refuse.
    pub fn save(&self, q: &TraceQuery, annotations: &Value) -> Result<Value, ApiError> {
        let Some(case) = &self.case else {
            return Err(ApiError {
                status: 409,
                kind: "input",
                message: "no case is open".into(),
                hint: "restart with `chaintrace serve --case DIR` to save into a case folder"
                    .into(),
            });
        };
        if !annotations.is_object() && !annotations.is_null() {
            return Err(ApiError::input(
                "annotations must be a JSON object",
                "send {\"nodes\": {...}, \"edges\": {...}}",
            ));
        }
        let argv = self.trace_argv(q, case)?;
        self.run_trace(&argv, case)?;
        let mut files = vec!["trace.json", "edges.parquet", "ends.parquet"];
        if annotations.is_object() {
            let mut bytes = serde_json::to_vec_pretty(annotations)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            bytes.push(b'\n');
            let path = case.join(ANNOTATIONS_FILE);
            crate::store::sink::write_atomic(&path, &bytes)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let outputs = crate::case::hashes([(ANNOTATIONS_FILE.to_string(), &path)])
                .map_err(|e| ApiError::internal(e.to_string()))?;
            crate::case::append(
                case,
                crate::case::Action {
                    action: "annotate",
                    command: vec![
                        self.program.clone(),
                        "serve".into(),
                        "POST /api/save".into(),
                    ],
                    outputs,
                    time: crate::cli::now_secs(),
                    ..Default::default()
                },
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
            files.push(ANNOTATIONS_FILE);
        }
        let mut v = case_answer(case)?;
        v["command"] = json!(argv);
        v["case"] = json!(case.display().to_string());
        v["files"] = json!(files);
        Ok(v)
    }

    /// Logs one request in the open case's audit trail (`action: "request"`).
    ///
    /// # Errors
    /// The trail cannot be written.
    pub fn log_request(&self, method: &str, path: &str) -> Result<(), ApiError> {
        let Some(case) = &self.case else {
            return Ok(());
        };
        std::fs::create_dir_all(case).map_err(|e| {
            ApiError::internal(format!(
                "cannot create the case folder {}: {e}",
                case.display()
            ))
        })?;
        crate::case::append(
            case,
            crate::case::Action {
                action: "request",
                command: vec![
                    self.program.clone(),
                    "serve".into(),
                    format!("{method} {path}"),
                ],
                time: crate::cli::now_secs(),
                ..Default::default()
            },
        )
        .map(|_| ())
        .map_err(|e| ApiError::internal(e.to_string()))
    }
}

/// `#rrggbb` of a category in the report's palette.
pub fn colour(category: &str) -> String {
    let c = crate::report::draw::colour(category);
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The answer of the case in `dir`: per model, its totals, exposure, exits by entity
/// (deposit addresses), headline and flow chart (see [`Api::trace`]).
fn case_answer(dir: &Path) -> Result<Value, ApiError> {
    use crate::report::{draw, graph, layout};
    let case =
        crate::report::case::Case::load(dir).map_err(|e| ApiError::internal(e.to_string()))?;
    let dec = case.decimals();
    let unit = case.unit().to_string();
    let mut models = Vec::new();
    for r in &case.results {
        let fg = graph::build(&case, r, &graph::GraphOptions::default());
        let label = |ei: usize| {
            let e = &fg.edges[ei];
            let mut s = format!("{} {}", draw::shown(e.amount, dec), unit);
            if e.transfers > 1 {
                s.push_str(&format!(" · {} tx", e.transfers));
            }
            s
        };
        let lay = layout::layout(&fg, &draw::measure, &label);
        // Which chart node each address (or cluster) of the trace is drawn in.
        let mut node_of: HashMap<&str, usize> = HashMap::new();
        for (i, n) in fg.nodes.iter().enumerate() {
            node_of.insert(n.key.as_str(), i);
            for m in &n.members {
                node_of.insert(m.as_str(), i);
            }
        }
        let mut transfers: HashMap<(usize, usize), Vec<Value>> = HashMap::new();
        for e in &r.edges {
            let (Some(&f), Some(&t)) = (node_of.get(e.from.as_str()), node_of.get(e.to.as_str()))
            else {
                continue;
            };
            transfers.entry((f, t)).or_default().push(json!({
                "txid": e.txid, "vout": e.vout, "height": e.height, "time": e.time,
                "from": e.from_address, "to": e.to_address, "amount": e.amount.to_string(),
                "hop": e.hop}));
        }
        let nodes: Vec<Value> = fg
            .nodes
            .iter()
            .zip(&lay.boxes)
            .map(|(n, b)| {
                json!({"key": n.key, "title": n.title, "detail": n.detail,
                    "category": n.category, "colour": colour(&n.category), "members": n.members,
                    "seed": n.seed, "received": n.received.to_string(), "sent": n.sent.to_string(),
                    "layer": n.layer, "box": [b.x, b.y, b.w, b.h]})
            })
            .collect();
        let edges: Vec<Value> = lay
            .edges
            .iter()
            .map(|d| {
                let e = &fg.edges[d.edge];
                json!({"from": e.from, "to": e.to, "amount": e.amount.to_string(),
                    "amount_text": format!("{} {unit}", draw::shown(e.amount, dec)),
                    "transfers": transfers.get(&(e.from, e.to)).cloned().unwrap_or_default(),
                    "points": d.points, "label": d.label,
                    "label_box": [d.label_box.x, d.label_box.y, d.label_box.w, d.label_box.h],
                    "anchor": [d.anchor.0, d.anchor.1], "width": d.width, "back": d.back,
                    "colour": colour(&fg.nodes[e.from].category)})
            })
            .collect();
        let deposits = crate::report::deposits(&case, r);
        let exits: Vec<Value> = deposits
            .entities
            .iter()
            .map(|((entity, category), total, addrs)| {
                json!({"entity": entity, "category": category, "amount": total.to_string(),
                    "amount_text": format!("{} {unit}", draw::shown(*total, dec)),
                    "deposit_addresses": addrs.iter().map(|d| json!({
                        "address": d.address, "amount": d.amount.to_string(),
                        "payments": d.payments, "first": d.first, "last": d.last})).collect::<Vec<_>>()})
            })
            .collect();
        models.push(json!({
            "policy": r.policy,
            "headline": crate::report::headline(&case, r),
            "totals": r.totals,
            "exposure_category": r.exposure_category,
            "exposure_entity": r.exposure_entity,
            "exits": exits,
            "graph": {"width": lay.width, "height": lay.height, "columns": fg.column_names,
                "nodes": nodes, "edges": edges, "merged_small": fg.merged_small},
        }));
    }
    // The spread between models: each entity's exposure under each model.
    let mut spread: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    for r in &case.results {
        for (e, v) in &r.exposure_entity {
            spread
                .entry(e.as_str())
                .or_default()
                .insert(r.policy.as_str(), v.to_string());
        }
    }
    Ok(
        json!({"unit": unit, "decimals": dec, "seeds": case.seed_nodes, "models": models,
        "spread": spread}),
    )
}
