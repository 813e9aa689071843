//! A trace case: what a [`super::request::Request`] found, and the case folder it is
//! written to — `trace.json` (the request, its inputs' sha256, the attributions, every
//! model's results), `edges.parquet` and `ends.parquet` (one row per transfer and per end,
//! amounts Int64 satoshi on Bitcoin, Decimal128(38, 0) base units elsewhere), `SHA256SUMS`,
//! and an entry of the case's audit trail (`audit.jsonl`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, UInt32Array};

use crate::tables::Table;
use serde::Serialize;

use super::policy::Policy;
use super::request::TraceError;
use super::{Amount, Label, PolicyResult};
use crate::store::sink;

/// The format version of a case folder's `trace.json` (and its Parquet files). Readers
/// refuse a newer one; cases from before versioning have none and are read as version 0.
pub const CASE_FORMAT: u32 = 1;

/// A trace's result with everything its case folder records.
#[derive(Clone, Debug)]
pub struct Case {
    /// `bitcoin` or `ethereum`.
    pub chain: &'static str,
    pub network: String,
    /// sha256 of the dataset's `_manifest.json` (which lists every part's hash).
    pub manifest_sha256: String,
    /// The account-model asset: `{"unit", "decimals", "contract"}`; `None` on Bitcoin.
    pub asset: Option<serde_json::Value>,
    /// The dataset directory, as given.
    pub data: PathBuf,
    /// The nodes (addresses or clusters) holding the seeds.
    pub seed_nodes: BTreeSet<String>,
    /// The label of every labelled node in the trace.
    pub node_labels: BTreeMap<String, Label>,
    /// The clustering used (its heuristics, counts, warnings and evaluation), or null.
    pub clustering: serde_json::Value,
    /// The request as recorded in `trace.json` (`parameters`).
    pub parameters: serde_json::Value,
    /// "N seed output(s)" and the like, for a summary line.
    pub seeds: String,
    /// Labels of the chain in use.
    pub labels: usize,
    /// Label conflicts of addresses in the trace (which tag was used, and why).
    pub label_conflicts: Vec<crate::labels::Conflict>,
    /// The tag behind every labelled address of the trace.
    pub attributions: BTreeMap<String, Attribution>,
    /// Non-public tags left out (no `include_private`).
    pub private_ignored: usize,
    /// sha256 of every input besides the dataset's parts, by name.
    pub inputs: BTreeMap<String, String>,
    /// One result per model, in [`Policy`] order.
    pub results: Vec<PolicyResult>,
}

/// What a chain's run found, for [`Case::assemble`].
pub(crate) struct Found<'a> {
    pub chain: &'static str,
    pub network: String,
    pub manifest_sha256: String,
    pub asset: Option<serde_json::Value>,
    /// "N seed output(s)" and the like.
    pub seeds: String,
    pub seed_nodes: BTreeSet<String>,
    pub clustering: serde_json::Value,
    pub parameters: serde_json::Value,
    /// Labels of the chain in use.
    pub labels: usize,
    pub resolved: &'a crate::labels::Resolved,
    pub results: Vec<PolicyResult>,
}

impl Case {
    /// The case of a run: the labels of the nodes in the trace (`labelled`: every labelled
    /// node's name and label, in id order), the conflicts of addresses in it (`node_of`
    /// names an address's node), every attribution, and the inputs' hashes. One place for
    /// both chains.
    ///
    /// # Errors
    /// An input that cannot be hashed.
    pub(crate) fn assemble<'l>(
        r: &super::request::Request,
        f: Found,
        labelled: impl Iterator<Item = (std::borrow::Cow<'l, str>, &'l Label)>,
        node_of: impl Fn(&str) -> Option<String>,
    ) -> Result<Case, TraceError> {
        let node_labels = labels_in_trace(&f.results, &f.seed_nodes, labelled)
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        let label_conflicts = conflicts_in_trace(&f.results, &f.seed_nodes, f.resolved, node_of)
            .into_iter()
            .cloned()
            .collect();
        Ok(Case {
            inputs: trace_inputs(r, &f.network, &f.manifest_sha256)?,
            attributions: attributions_in_trace(&f.results, f.resolved),
            chain: f.chain,
            network: f.network,
            manifest_sha256: f.manifest_sha256,
            asset: f.asset,
            data: r.data.clone(),
            seed_nodes: f.seed_nodes,
            node_labels,
            clustering: f.clustering,
            parameters: f.parameters,
            seeds: f.seeds,
            labels: f.labels,
            label_conflicts,
            private_ignored: f.resolved.private_ignored,
            results: f.results,
        })
    }
}

/// The sha256 of everything a trace read besides the dataset's parts (which the manifest's
/// hash pins): the manifest, the labels, the seed files and the clustering used.
fn trace_inputs(
    r: &super::request::Request,
    network: &str,
    manifest_sha256: &str,
) -> Result<BTreeMap<String, String>, TraceError> {
    let data = &r.data;
    let mut files: Vec<(String, PathBuf)> = vec![(
        "labels/tags.parquet".to_string(),
        crate::labels::tags_path(data),
    )];
    for s in &r.seeds {
        if let Some(f) = s.strip_prefix('@') {
            files.push((format!("seeds {f}"), PathBuf::from(f)));
        }
    }
    if r.opening_balances.is_some() {
        let f = super::request::OPENING_BALANCES_FILE;
        files.push((format!("ethereum/{f}"), data.join("ethereum").join(f)));
    }
    if r.uses_clusters() {
        // Ethereum's clusters live under `ethereum`, Bitcoin's under the network's name.
        let net = if r.chain == super::request::Chain::Ethereum {
            "ethereum"
        } else {
            network
        };
        let dir = crate::cluster::clusters_dir(data, net);
        for f in ["_meta.json", "address_cluster.parquet", "cluster_of.bin"] {
            files.push((format!("clusters/{net}/{f}"), dir.join(f)));
        }
    }
    let mut out = crate::case::hashes(files).map_err(TraceError::stage)?;
    // The manifest's path in the dataset: DATA/<network>/ for Bitcoin, DATA/ethereum/ for
    // Ethereum (whose network, e.g. chain-31337, is only recorded inside it).
    let dir = if r.chain == super::request::Chain::Ethereum {
        "ethereum"
    } else {
        network
    };
    out.insert(format!("{dir}/_manifest.json"), manifest_sha256.to_string());
    Ok(out)
}

/// Names nodes by cluster (`rep` gives a node's cluster name) and drops transfers inside a
/// cluster.
pub(crate) fn to_clusters(results: &mut [PolicyResult], rep: &dyn Fn(&str) -> String) {
    for r in results {
        use crate::labels::Text;
        let mut merged: Vec<crate::trace::Edge> = Vec::new();
        let mut at: HashMap<(Text, Text, Text, u32, u32), usize> = HashMap::new();
        // Each cluster's name made once, shared by its edges.
        let mut names = crate::labels::Interner::default();
        for mut e in std::mem::take(&mut r.edges) {
            e.from = names.text(&rep(&e.from));
            e.to = names.text(&rep(&e.to));
            if e.from == e.to {
                continue; // inside one cluster
            }
            // One edge per paid output (its address stays in `to_address`); the shares of
            // several inputs of one cluster are summed.
            let key = (e.txid.clone(), e.from.clone(), e.to.clone(), e.hop, e.vout);
            match at.get(&key) {
                Some(&i) => merged[i].amount += e.amount,
                None => {
                    at.insert(key, merged.len());
                    merged.push(e);
                }
            }
        }
        r.edges = merged;
        // An end keeps the address that was paid; its cluster is a column of its own.
        for e in &mut r.ends {
            e.cluster = Some(rep(&e.address));
        }
    }
}

/// A node of the trace and what it sent and received along the edges.
#[derive(Serialize)]
struct NodeFlow<'a> {
    node: &'a str,
    sent: Amount,
    received: Amount,
}

/// The trace's nodes (addresses, or clusters with `--level cluster`) in name order.
fn nodes(r: &PolicyResult) -> Vec<NodeFlow<'_>> {
    let mut n: BTreeMap<&str, (Amount, Amount)> = BTreeMap::new();
    for e in &r.edges {
        n.entry(e.from.as_ref()).or_default().0 += e.amount;
        n.entry(e.to.as_ref()).or_default().1 += e.amount;
    }
    n.into_iter()
        .map(|(node, (sent, received))| NodeFlow {
            node,
            sent,
            received,
        })
        .collect()
}

/// Where an attribution comes from: the tag in use for an address.
#[derive(Clone, Debug, Serialize)]
pub struct Attribution {
    pub entity: String,
    pub category: String,
    pub label: String,
    pub source: String,
    pub confidence: String,
    /// `FILE:LINE` of the tag as imported.
    pub tag: String,
}

/// The tag in use for every address of the trace's ends and edges that has one.
fn attributions_in_trace(
    results: &[PolicyResult],
    resolved: &crate::labels::Resolved,
) -> BTreeMap<String, Attribution> {
    let used: HashSet<&str> = results
        .iter()
        .flat_map(|r| {
            r.ends.iter().map(|e| e.address.as_str()).chain(
                r.edges
                    .iter()
                    .flat_map(|e| [e.from_address.as_ref(), e.to_address.as_ref()]),
            )
        })
        .collect();
    resolved
        .chosen
        .iter()
        .filter(|t| used.contains(t.address.as_str()))
        .map(|t| {
            (
                t.address.clone(),
                Attribution {
                    entity: t.entity.to_string(),
                    category: t.category.to_string(),
                    label: t.label.to_string(),
                    source: t.source.to_string(),
                    confidence: t.confidence.to_string(),
                    tag: format!("{}:{}", t.file, t.line),
                },
            )
        })
        .collect()
}

/// The nodes of a trace: both ends of every edge, and the seeds.
fn nodes_in_trace<'a>(
    results: &'a [PolicyResult],
    seed_nodes: &'a BTreeSet<String>,
) -> HashSet<&'a str> {
    results
        .iter()
        .flat_map(|r| {
            r.edges
                .iter()
                .flat_map(|e| [e.from.as_ref(), e.to.as_ref()])
        })
        .chain(seed_nodes.iter().map(String::as_str))
        .collect()
}

/// The label conflicts of addresses whose node (`node_of`) is in the trace.
fn conflicts_in_trace<'a>(
    results: &[PolicyResult],
    seed_nodes: &BTreeSet<String>,
    resolved: &'a crate::labels::Resolved,
    node_of: impl Fn(&str) -> Option<String>,
) -> Vec<&'a crate::labels::Conflict> {
    let in_trace = nodes_in_trace(results, seed_nodes);
    resolved
        .conflicts
        .iter()
        .filter(|c| node_of(&c.address).is_some_and(|n| in_trace.contains(n.as_str())))
        .collect()
}

/// The labels of the nodes that appear in the trace (edges or seeds), first label per node.
fn labels_in_trace<'a>(
    results: &[PolicyResult],
    seed_nodes: &BTreeSet<String>,
    labelled: impl Iterator<Item = (std::borrow::Cow<'a, str>, &'a Label)>,
) -> BTreeMap<String, &'a Label> {
    let in_trace = nodes_in_trace(results, seed_nodes);
    let mut out = BTreeMap::new();
    // Every labelled address of the dataset passes here: a name is copied only when it
    // is in the trace.
    for (n, l) in labelled {
        if in_trace.contains(n.as_ref()) {
            out.entry(n.into_owned()).or_insert(l);
        }
    }
    out
}

/// `trace.json`, written straight from these types (a `serde_json::Value` cannot hold the
/// u128 amounts of wei).
#[derive(Serialize)]
struct TraceDoc<'a> {
    /// [`CASE_FORMAT`]: what a reader of this file must understand.
    format_version: u32,
    tool: String,
    /// sha256 of every input besides the dataset's parts: the manifest (which lists the
    /// parts' hashes), the labels, seed files and clustering.
    inputs: &'a BTreeMap<String, String>,
    chain: &'a str,
    network: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset: Option<&'a serde_json::Value>,
    dataset_manifest_sha256: &'a str,
    command: Vec<String>,
    data: &'a Path,
    seed_nodes: &'a BTreeSet<String>,
    node_labels: &'a BTreeMap<String, Label>,
    /// Addresses in the trace whose tags disagree: the tag used, the rule that chose it
    /// and the others (see `labels::precedence`).
    label_conflicts: &'a [crate::labels::Conflict],
    /// Address → the tag that names it: an inference from a source, not an on-chain fact.
    attributions: &'a BTreeMap<String, Attribution>,
    /// Each model's definition as this version states it, kept with the case so that a
    /// later report of it shows the method the trace used.
    methodology: BTreeMap<&'static str, &'static str>,
    clustering: &'a serde_json::Value,
    parameters: &'a serde_json::Value,
    nodes: Vec<PolicyNodes<'a>>,
    results: &'a [PolicyResult],
}

#[derive(Serialize)]
struct PolicyNodes<'a> {
    policy: Policy,
    nodes: Vec<NodeFlow<'a>>,
}

/// An amount column ([`crate::tables::Kind::Amount`]): Int64 satoshi on Bitcoin,
/// Decimal128(38, 0) base units elsewhere; `None` values are nulls.
/// Block heights as the case table stores them: `UInt32` on Bitcoin, `UInt64` (block
/// numbers) on Ethereum.
fn height_column(chain: &str, values: impl Iterator<Item = u64>) -> Result<ArrayRef, TraceError> {
    if chain == "bitcoin" {
        let v = values
            .map(|h| {
                u32::try_from(h)
                    .map_err(|_| TraceError::Input(format!("Bitcoin height {h} beyond UInt32")))
            })
            .collect::<Result<Vec<u32>, _>>()?;
        return Ok(Arc::new(UInt32Array::from(v)));
    }
    Ok(Arc::new(arrow_array::UInt64Array::from(
        values.collect::<Vec<u64>>(),
    )))
}

fn amount_column(
    chain: &str,
    values: impl Iterator<Item = Option<Amount>>,
) -> Result<ArrayRef, TraceError> {
    let too_big = |x: Amount, to: &str| {
        TraceError::Input(format!("an amount of {x} base units does not fit {to}"))
    };
    if chain == "bitcoin" {
        let mut v: Vec<Option<i64>> = Vec::new();
        for x in values {
            v.push(
                x.map(|x| i64::try_from(x).map_err(|_| too_big(x, "Int64")))
                    .transpose()?,
            );
        }
        return Ok(Arc::new(Int64Array::from(v)));
    }
    let max = 10i128.pow(38) - 1;
    let mut v: Vec<Option<i128>> = Vec::new();
    for x in values {
        v.push(match x {
            None => None,
            Some(x) => match i128::try_from(x) {
                Ok(y) if y <= max => Some(y),
                _ => return Err(too_big(x, "Decimal128(38, 0)")),
            },
        });
    }
    let a = Decimal128Array::from(v)
        .with_precision_and_scale(38, 0)
        .map_err(|e| TraceError::Internal(e.to_string()))?;
    Ok(Arc::new(a))
}

/// Rows of a case table built into columns at a time: the columns of a trace of millions
/// of edges are never all in memory (the same trace still gives the same bytes).
const CASE_BATCH_ROWS: usize = 64 * 1024;

/// Writes `rows` as table `t` (its schema from the table registry; amounts as on Bitcoin
/// when `bitcoin`), [`CASE_BATCH_ROWS`] at a time through `cols`, which makes a batch's
/// columns, under a temporary name (staged: [`sink::commit`] renames it into place).
fn write_parquet<T>(
    path: &std::path::Path,
    t: &crate::tables::TableDef,
    bitcoin: bool,
    rows: &[T],
    cols: impl Fn(&[T]) -> Result<Vec<ArrayRef>, TraceError>,
) -> Result<sink::Staged, TraceError> {
    let schema = t.schema(bitcoin);
    let mut w = sink::PartWriter::create(path, schema.clone()).map_err(TraceError::stage)?;
    // An empty table still has its schema (one empty batch).
    for chunk in rows
        .chunks(CASE_BATCH_ROWS.max(1))
        .chain(rows.is_empty().then_some(rows))
    {
        let batch = RecordBatch::try_new(schema.clone(), cols(chunk)?)
            .map_err(|e| TraceError::Internal(e.to_string()))?;
        w.write(&batch).map_err(TraceError::stage)?;
    }
    w.finish().map_err(TraceError::stage)
}

/// The files a trace writes into its case folder (besides `report/`, which `report` adds).
pub const CASE_FILES: [&str; 4] = ["trace.json", "edges.parquet", "ends.parquet", "SHA256SUMS"];

impl Case {
    /// Writes `trace.json`, `edges.parquet`, `ends.parquet` and `SHA256SUMS` into `dir`
    /// (created if missing; files of an earlier case are replaced, each atomically) and
    /// appends the trace to the case's audit trail, recording `command` (the command line
    /// or the call that asked for it) at `time` (unix seconds).
    ///
    /// # Errors
    /// A file that cannot be written, or an amount that does not fit its column.
    pub fn write(&self, dir: &Path, command: &[String], time: i64) -> Result<(), TraceError> {
        self.write_recording(dir, command, command, time, || Ok(()))
    }

    /// [`Case::write`], with `trace.json` recording `trace_command` and the audit trail
    /// `audit_command`: a rerun of the same trace with other output flags (`--quiet`,
    /// `--json`) keeps `trace.json` as it was, byte for byte, while the trail logs what
    /// was typed.
    ///
    /// The three files are written under temporary names first; `before_commit` runs once
    /// they all are (the caller removes what the new case makes stale), and only then do
    /// they replace the old case's: a trace killed while it writes leaves the old case as
    /// it was (and `.NAME.tmp` files, which the next write replaces).
    ///
    /// # Errors
    /// As [`Case::write`], and `before_commit`'s.
    pub fn write_recording(
        &self,
        dir: &Path,
        trace_command: &[String],
        audit_command: &[String],
        time: i64,
        before_commit: impl FnOnce() -> Result<(), TraceError>,
    ) -> Result<(), TraceError> {
        let command = trace_command;
        std::fs::create_dir_all(dir).map_err(|e| TraceError::Context {
            context: format!("cannot create the case folder {}", dir.display()),
            source: Box::new(TraceError::stage(e)),
        })?;
        let results = &self.results;
        let mut staged = vec![
            sink::stage_with(&dir.join("trace.json"), |w| {
                self.write_trace_json(command, w)
            })
            .map_err(TraceError::stage)?,
        ];
        let edges: Vec<(&str, &super::Edge)> = results
            .iter()
            .flat_map(|r| r.edges.iter().map(move |e| (r.policy.name(), e)))
            .collect();
        staged.push(write_parquet(
            &dir.join("edges.parquet"),
            &crate::tables::case_edges::Edges::DEF,
            self.chain == "bitcoin",
            &edges,
            |edges| {
                Ok(vec![
                    Arc::new(StringArray::from(
                        edges.iter().map(|e| e.0).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        edges.iter().map(|e| e.1.txid.as_ref()).collect::<Vec<_>>(),
                    )),
                    height_column(self.chain, edges.iter().map(|e| e.1.height))?,
                    Arc::new(UInt32Array::from(
                        edges.iter().map(|e| e.1.time).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        edges.iter().map(|e| e.1.from.as_ref()).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        edges.iter().map(|e| e.1.to.as_ref()).collect::<Vec<_>>(),
                    )),
                    amount_column(self.chain, edges.iter().map(|e| Some(e.1.amount)))?,
                    Arc::new(UInt32Array::from(
                        edges.iter().map(|e| e.1.hop).collect::<Vec<_>>(),
                    )),
                    Arc::new(UInt32Array::from(
                        edges.iter().map(|e| e.1.vout).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        edges
                            .iter()
                            .map(|e| e.1.from_address.as_ref())
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        edges
                            .iter()
                            .map(|e| e.1.to_address.as_ref())
                            .collect::<Vec<_>>(),
                    )),
                    amount_column(self.chain, edges.iter().map(|e| e.1.output_value))?,
                ])
            },
        )?);
        let ends: Vec<(&str, &super::End)> = results
            .iter()
            .flat_map(|r| r.ends.iter().map(move |e| (r.policy.name(), e)))
            .collect();
        staged.push(write_parquet(
            &dir.join("ends.parquet"),
            &crate::tables::case_ends::Ends::DEF,
            self.chain == "bitcoin",
            &ends,
            |ends| {
                Ok(vec![
                    Arc::new(StringArray::from(
                        ends.iter().map(|e| e.0).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        ends.iter().map(|e| e.1.kind).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        ends.iter().map(|e| e.1.txid.as_str()).collect::<Vec<_>>(),
                    )),
                    Arc::new(UInt32Array::from(
                        ends.iter().map(|e| e.1.vout).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        ends.iter()
                            .map(|e| e.1.address.as_str())
                            .collect::<Vec<_>>(),
                    )),
                    amount_column(self.chain, ends.iter().map(|e| Some(e.1.amount)))?,
                    Arc::new(UInt32Array::from(
                        ends.iter().map(|e| e.1.hop).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        ends.iter()
                            .map(|e| e.1.entity.as_deref())
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        ends.iter()
                            .map(|e| e.1.category.as_deref())
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        ends.iter()
                            .map(|e| e.1.cluster.as_deref())
                            .collect::<Vec<_>>(),
                    )),
                    amount_column(self.chain, ends.iter().map(|e| e.1.output_value))?,
                ])
            },
        )?);
        before_commit()?;
        sink::commit(&staged).map_err(TraceError::stage)?;
        // Each file hashed as it was written: for SHA256SUMS and for the audit trail.
        let mut outputs: BTreeMap<String, String> = CASE_FILES[..3]
            .iter()
            .zip(&staged)
            .map(|(f, s)| (f.to_string(), s.sha256.clone()))
            .collect();
        let sums: String = outputs.iter().map(|(f, h)| format!("{h}  {f}\n")).collect();
        sink::write_atomic(&dir.join("SHA256SUMS"), sums.as_bytes()).map_err(TraceError::stage)?;
        outputs.extend(
            crate::case::hashes([("SHA256SUMS".to_string(), dir.join("SHA256SUMS"))])
                .map_err(TraceError::stage)?,
        );
        crate::case::append(
            dir,
            crate::case::Action {
                action: "trace",
                command: audit_command.to_vec(),
                inputs: self.inputs.clone(),
                outputs,
                note: None,
                time,
            },
        )
        .map_err(TraceError::stage)?;
        Ok(())
    }
}

/// The command a case's `trace.json` (at `path`) records, `None` when it is unreadable or
/// records none. Only that field is kept: the rest is read past, so a trace of millions
/// of edges is never held as a JSON tree.
pub fn recorded_command(path: &Path) -> Option<Vec<String>> {
    recorded(path).map(|r| r.command)
}

/// What a case's `trace.json` records of the question it answered: the command, the
/// sha256 of its inputs (seed files as `seeds FILE`, as typed) and of the dataset's
/// manifest. Read as [`recorded_command`] reads it.
#[derive(Debug, serde::Deserialize)]
pub struct Recorded {
    pub command: Vec<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub dataset_manifest_sha256: String,
}

/// [`Recorded`] of the case's `trace.json` at `path`; `None` when it is unreadable.
pub fn recorded(path: &Path) -> Option<Recorded> {
    let f = std::fs::File::open(path).ok()?;
    serde_json::from_reader::<_, Recorded>(std::io::BufReader::new(f)).ok()
}

impl Case {
    /// The bytes of `trace.json` with `command` recorded: the same case and command give
    /// the same bytes.
    pub fn trace_json(&self, command: &[String]) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_trace_json(command, &mut bytes)
            .expect("a trace serialises into memory");
        bytes
    }

    /// The sha256 (hex) of [`Case::trace_json`], without holding its bytes: whether a
    /// case folder's `trace.json` is this trace's.
    pub fn trace_json_sha256(&self, command: &[String]) -> String {
        let mut w = sink::Sha256Writer::default();
        self.write_trace_json(command, &mut w)
            .expect("a trace serialises into a hash");
        w.hex()
    }

    /// Writes [`Case::trace_json`] into `w` as it is serialised (a trace of millions of
    /// edges is never one buffer).
    ///
    /// # Errors
    /// The writer's.
    pub fn write_trace_json(&self, command: &[String], w: &mut dyn Write) -> std::io::Result<()> {
        let results = &self.results;
        let doc = TraceDoc {
            format_version: CASE_FORMAT,
            tool: format!("chaintrace {}", crate::VERSION),
            inputs: &self.inputs,
            chain: self.chain,
            network: &self.network,
            asset: self.asset.as_ref(),
            dataset_manifest_sha256: &self.manifest_sha256,
            command: command.to_vec(),
            data: &self.data,
            seed_nodes: &self.seed_nodes,
            node_labels: &self.node_labels,
            label_conflicts: &self.label_conflicts,
            attributions: &self.attributions,
            methodology: results
                .iter()
                .map(|r| {
                    (
                        r.policy.name(),
                        if self.asset.is_some() {
                            r.policy.account_definition()
                        } else {
                            r.policy.definition()
                        },
                    )
                })
                .collect(),
            clustering: &self.clustering,
            parameters: &self.parameters,
            nodes: results
                .iter()
                .map(|r| PolicyNodes {
                    policy: r.policy,
                    nodes: nodes(r),
                })
                .collect(),
            results,
        };
        serde_json::to_writer_pretty(&mut *w, &doc).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    }
}
