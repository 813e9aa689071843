//! `chaintrace trace`.

mod ethereum;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use arrow_array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use serde::Serialize;

use super::args::TraceArgs;
use super::cluster::chain_dir;
use super::{Cli, CliError};
use crate::index::Index;
use crate::store::sink;
use crate::trace::policy::Policy;
use crate::trace::{Amount, Direction, Label, Params, PolicyResult, run as run_policy};

/// The seeds, with @FILE expanded (first CSV column; `#` comments and an `address` header
/// skipped).
fn seed_items(seeds: &[String]) -> Result<Vec<String>, CliError> {
    let mut items: Vec<String> = Vec::new();
    for s in seeds {
        if let Some(file) = s.strip_prefix('@') {
            let text = std::fs::read_to_string(file)
                .map_err(|e| CliError::user(anyhow!("cannot read the seed file {file}: {e}")))?;
            for (n, line) in text.lines().enumerate() {
                let first = line.split(',').next().unwrap_or("").trim();
                if first.is_empty() || first.starts_with('#') || (n == 0 && first == "address") {
                    continue;
                }
                items.push(first.to_string());
            }
        } else {
            items.push(s.trim().to_string());
        }
    }
    Ok(items)
}

fn seed_outputs(
    idx: &Index,
    seeds: &[String],
    data: &std::path::Path,
    network: &str,
) -> Result<Vec<u64>, CliError> {
    let items = seed_items(seeds)?;
    let mut outputs: BTreeSet<u64> = BTreeSet::new();
    let mut addresses: HashSet<u32> = HashSet::new();
    for it in &items {
        if let Some(a) = it.strip_prefix("cluster:") {
            let stored = crate::cluster::load(idx, &crate::cluster::clusters_dir(data, network))
                .map_err(CliError::user)?;
            let id = idx.address_id(a).ok_or_else(|| {
                CliError::user(anyhow!("seed address {a} does not appear in the dataset"))
            })?;
            let c = stored.cluster_of[id as usize];
            addresses.extend((0..idx.addresses()).filter(|&x| stored.cluster_of[x as usize] == c));
        } else if let Some((txid, vout)) = it.split_once(':') {
            let t = idx.tx_id(txid).ok_or_else(|| {
                CliError::user(anyhow!("seed transaction {txid} is not in the dataset"))
            })?;
            let r = idx.outputs_of(t);
            let v: u64 = vout
                .parse()
                .map_err(|_| CliError::user(anyhow!("seed {it}: {vout} is not an output index")))?;
            if v >= r.end - r.start {
                return Err(CliError::user(anyhow!(
                    "seed {it}: transaction {txid} has {} outputs",
                    r.end - r.start
                )));
            }
            outputs.insert(r.start + v);
        } else if it.len() == 64 && it.bytes().all(|b| b.is_ascii_hexdigit()) {
            let t = idx.tx_id(it).ok_or_else(|| {
                CliError::user(anyhow!("seed transaction {it} is not in the dataset"))
            })?;
            outputs.extend(idx.outputs_of(t));
        } else {
            let id = idx.address_id(it).ok_or_else(|| {
                CliError::user(anyhow!("seed address {it} does not appear in the dataset (wrong network, or not ingested yet?)"))
            })?;
            addresses.insert(id);
        }
    }
    if !addresses.is_empty() {
        for o in 0..idx.meta.outputs {
            if idx.out_address(o).is_some_and(|a| addresses.contains(&a)) {
                outputs.insert(o);
            }
        }
    }
    if outputs.is_empty() {
        return Err(CliError::user(anyhow!("the seeds select no output")));
    }
    Ok(outputs.into_iter().collect())
}

/// Names nodes by cluster (`rep` gives a node's cluster name) and drops transfers inside a
/// cluster.
fn to_clusters(results: &mut [PolicyResult], rep: &dyn Fn(&str) -> String) {
    for r in results {
        let mut merged: Vec<crate::trace::Edge> = Vec::new();
        let mut at: HashMap<(String, String, String, u32), usize> = HashMap::new();
        for mut e in std::mem::take(&mut r.edges) {
            e.from = rep(&e.from);
            e.to = rep(&e.to);
            if e.from == e.to {
                continue; // inside one cluster
            }
            let key = (e.txid.clone(), e.from.clone(), e.to.clone(), e.hop);
            match at.get(&key) {
                Some(&i) => merged[i].amount += e.amount,
                None => {
                    at.insert(key, merged.len());
                    merged.push(e);
                }
            }
        }
        r.edges = merged;
        for e in &mut r.ends {
            e.address = rep(&e.address);
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
        n.entry(e.from.as_str()).or_default().0 += e.amount;
        n.entry(e.to.as_str()).or_default().1 += e.amount;
    }
    n.into_iter()
        .map(|(node, (sent, received))| NodeFlow {
            node,
            sent,
            received,
        })
        .collect()
}

/// Unix seconds from `YYYY-MM-DD` (start of the day, or its end with `end_of_day`) or a
/// plain number of seconds.
fn parse_time(s: &str, end_of_day: bool) -> Result<u64, CliError> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let bad = || {
        CliError::user(anyhow!(
            "{s:?} is not a time: use YYYY-MM-DD or unix seconds"
        ))
    };
    let f: Vec<&str> = s.split('-').collect();
    let [y, m, d] = f.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + if end_of_day { 86_399 } else { 0 };
    u64::try_from(secs).map_err(|_| bad())
}

fn policies(names: &[String]) -> Result<Vec<Policy>, CliError> {
    let mut out = Vec::new();
    for n in names.iter().map(|s| s.trim()) {
        if n == "all" {
            out.extend(Policy::ALL);
            continue;
        }
        out.push(Policy::from_name(n).ok_or_else(|| {
            CliError::user(anyhow!(
                "unknown policy {n:?}; choose poison, haircut, fifo, lifo, tiho or all"
            ))
        })?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn write_parquet(
    path: &std::path::Path,
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
) -> Result<(), CliError> {
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| CliError {
            code: 2,
            error: e.into(),
        })?;
    let staged = sink::stage(path, &batch).map_err(CliError::user)?;
    sink::commit(std::slice::from_ref(&staged)).map_err(CliError::user)
}

pub(crate) fn run(cli: &Cli, a: &TraceArgs) -> Result<(), CliError> {
    if a.chain == "ethereum" {
        return ethereum::run(cli, a);
    }
    let pols = policies(&a.policy)?;
    let (chain, network) = chain_dir(&a.dataset)?;
    let (idx, _) = Index::open_or_build(&chain).map_err(CliError::user)?;
    let seeds = seed_outputs(&idx, &a.seeds, &a.dataset.data, &network)?;
    let mut labels: HashMap<u32, Label> = HashMap::new();
    for (t, _) in crate::labels::read_tags(&crate::labels::tags_path(&a.dataset.data))
        .map_err(CliError::user)?
    {
        if t.chain != "bitcoin" || (!t.is_public && !a.include_private) {
            continue;
        }
        if let Some(id) = idx.address_id(&t.address) {
            labels.entry(id).or_insert(Label {
                entity: t.entity,
                category: t.category,
            });
        }
    }
    let heights = idx.block_time.len() as u32;
    let times: Vec<(u32, u64)> = (0..heights)
        .map(|h| (h, idx.block_time.get(h as usize)))
        .collect();
    let (from_height, to_height) = height_window(a, &times)?;
    let params = Params {
        direction: if a.direction == "backward" {
            Direction::Backward
        } else {
            Direction::Forward
        },
        max_hops: a.max_hops,
        min_value: a.min_value,
        from_height,
        to_height,
        stop_at: a.stop_at.clone(),
    };
    let mut results: Vec<PolicyResult> = pols
        .iter()
        .map(|&p| run_policy(&idx, &seeds, &labels, &params, p))
        .collect();
    check_balanced(&results)?;
    let uses_clusters = a.level == "cluster" || a.seeds.iter().any(|s| s.starts_with("cluster:"));
    let clusters_dir = crate::cluster::clusters_dir(&a.dataset.data, &network);
    let stored = if uses_clusters {
        Some(crate::cluster::load(&idx, &clusters_dir).map_err(CliError::user)?)
    } else {
        None
    };
    let name_of = |id: u32| -> String {
        match (&stored, a.level.as_str()) {
            (Some(s), "cluster") => idx.address(s.cluster_of[id as usize]).to_string(),
            _ => idx.address(id).to_string(),
        }
    };
    if let (true, Some(s)) = (a.level == "cluster", &stored) {
        let rep = |addr: &str| match idx.address_id(addr) {
            Some(id) => idx.address(s.cluster_of[id as usize]).to_string(),
            None => addr.to_string(),
        };
        to_clusters(&mut results, &rep);
    }
    // What the report needs to draw the nodes: which hold the seeds, and their labels.
    let seed_nodes: BTreeSet<String> = seeds
        .iter()
        .filter_map(|&o| idx.out_address(o))
        .map(name_of)
        .collect();
    let mut labelled: Vec<(&u32, &Label)> = labels.iter().collect();
    labelled.sort_by_key(|(id, _)| **id);
    let node_labels = labels_in_trace(
        &results,
        &seed_nodes,
        labelled.into_iter().map(|(&id, l)| (name_of(id), l)),
    );
    let clustering = match &stored {
        Some(s) => serde_json::json!({
            "heuristics": s.meta.heuristics,
            "clusters": s.meta.clusters,
            "addresses": s.meta.addresses,
            "coinjoins": s.meta.coinjoins,
            "evaluation": std::fs::read(clusters_dir.join("_eval.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()),
        }),
        None => serde_json::Value::Null,
    };
    let mut parameters = parameters(
        a,
        &pols,
        [from_height, to_height.min(heights.saturating_sub(1))],
        labels.len(),
    );
    parameters["seed_outputs"] = seeds.len().into();
    write_case(
        cli,
        a,
        &CaseInfo {
            chain: "bitcoin",
            network: &network,
            manifest_sha256: &idx.meta.manifest_sha256,
            asset: None,
            seed_nodes: &seed_nodes,
            node_labels: &node_labels,
            clustering: &clustering,
            parameters: &parameters,
            seeds: format!("{} seed output(s)", seeds.len()),
            labels: labels.len(),
        },
        &results,
    )
}

/// The `--from-time`/`--to-time` window as heights (with `--from-height`/`--to-height`),
/// through the blocks' `(height, time)` in height order.
fn height_window(a: &TraceArgs, times: &[(u32, u64)]) -> Result<(u32, u32), CliError> {
    let (mut from_height, mut to_height) = (a.from_height, a.to_height);
    if let Some(t) = &a.from_time {
        let from = parse_time(t, false)?;
        from_height = from_height.max(times.iter().find(|b| b.1 >= from).map_or(u32::MAX, |b| b.0));
    }
    if let Some(t) = &a.to_time {
        let to = parse_time(t, true)?;
        let Some(last) = times.iter().rev().find(|b| b.1 <= to) else {
            return Err(CliError::user(anyhow!(
                "--to-time {t} is before the first block of the dataset"
            )));
        };
        to_height = to_height.min(last.0);
    }
    Ok((from_height, to_height))
}

/// Refuses results of a conserving model whose ends do not add up to what was seeded.
fn check_balanced(results: &[PolicyResult]) -> Result<(), CliError> {
    match results
        .iter()
        .find(|r| r.policy.conserves() && !r.totals.balanced())
    {
        Some(r) => Err(CliError {
            code: 2,
            error: anyhow!(
                "internal error: the {} trace does not balance: {:?}",
                r.policy.name(),
                r.totals
            ),
        }),
        None => Ok(()),
    }
}

/// The parameters every trace records (the chain's own are added by the caller).
fn parameters(
    a: &TraceArgs,
    pols: &[Policy],
    followed: [u32; 2],
    labels: usize,
) -> serde_json::Value {
    serde_json::json!({
        "seeds": a.seeds,
        "direction": a.direction,
        "policies": pols.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "max_hops": a.max_hops,
        "min_value": json_amount(a.min_value),
        "from_height": a.from_height,
        "to_height": a.to_height,
        "from_time": a.from_time,
        "to_time": a.to_time,
        "followed_heights": followed,
        "stop_at": a.stop_at,
        "include_private": a.include_private,
        "level": a.level,
        "labels": labels,
    })
}

/// An amount in a JSON `Value`: a number while it fits u64, else its decimal text (a
/// `Value` holds no larger integer).
fn json_amount(v: Amount) -> serde_json::Value {
    u64::try_from(v).map_or_else(|_| v.to_string().into(), Into::into)
}

/// The labels of the nodes that appear in the trace (edges or seeds), first label per node.
fn labels_in_trace<'a>(
    results: &[PolicyResult],
    seed_nodes: &BTreeSet<String>,
    labelled: impl Iterator<Item = (String, &'a Label)>,
) -> BTreeMap<String, &'a Label> {
    let in_trace: HashSet<&str> = results
        .iter()
        .flat_map(|r| {
            r.edges
                .iter()
                .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        })
        .chain(seed_nodes.iter().map(String::as_str))
        .collect();
    let mut out = BTreeMap::new();
    for (n, l) in labelled {
        if in_trace.contains(n.as_str()) {
            out.entry(n).or_insert(l);
        }
    }
    out
}

/// What a case records besides the results.
struct CaseInfo<'a> {
    chain: &'a str,
    network: &'a str,
    manifest_sha256: &'a str,
    asset: Option<serde_json::Value>,
    seed_nodes: &'a BTreeSet<String>,
    node_labels: &'a BTreeMap<String, &'a Label>,
    clustering: &'a serde_json::Value,
    parameters: &'a serde_json::Value,
    /// "N seed output(s)" and the like, for the summary line.
    seeds: String,
    labels: usize,
}

/// `trace.json`, written straight from these types (a `serde_json::Value` cannot hold the
/// u128 amounts of wei).
#[derive(Serialize)]
struct TraceDoc<'a> {
    tool: String,
    chain: &'a str,
    network: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset: Option<&'a serde_json::Value>,
    dataset_manifest_sha256: &'a str,
    command: Vec<String>,
    data: &'a Path,
    seed_nodes: &'a BTreeSet<String>,
    node_labels: &'a BTreeMap<String, &'a Label>,
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

#[derive(Serialize)]
struct Summary<'a> {
    policy: Policy,
    totals: &'a crate::trace::Totals,
    exposure_category: &'a BTreeMap<String, Amount>,
    exposure_entity: &'a BTreeMap<String, Amount>,
}

/// The amount column: Int64 satoshi on Bitcoin, Decimal128(38, 0) base units elsewhere.
fn amount_column(
    chain: &str,
    values: impl Iterator<Item = Amount>,
) -> Result<(Field, ArrayRef), CliError> {
    let internal = |e: anyhow::Error| CliError { code: 2, error: e };
    if chain == "bitcoin" {
        let v: Vec<i64> = values.map(|v| v as i64).collect();
        return Ok((
            Field::new("amount", DataType::Int64, false),
            Arc::new(Int64Array::from(v)),
        ));
    }
    let max = 10i128.pow(38) - 1;
    let mut v = Vec::new();
    for x in values {
        match i128::try_from(x) {
            Ok(x) if x <= max => v.push(x),
            _ => {
                return Err(CliError::user(anyhow!(
                    "an amount of {x} base units does not fit Decimal128(38, 0)"
                )));
            }
        }
    }
    let a = Decimal128Array::from(v)
        .with_precision_and_scale(38, 0)
        .map_err(|e| internal(e.into()))?;
    Ok((
        Field::new("amount", DataType::Decimal128(38, 0), false),
        Arc::new(a),
    ))
}

/// Writes `trace.json`, `edges.parquet` and `ends.parquet` into `--out`, then prints the
/// summary (or `--json`).
fn write_case(
    cli: &Cli,
    a: &TraceArgs,
    info: &CaseInfo,
    results: &[PolicyResult],
) -> Result<(), CliError> {
    std::fs::create_dir_all(&a.out)
        .map_err(|e| CliError::user(anyhow!("cannot create {}: {e}", a.out.display())))?;
    let doc = TraceDoc {
        tool: format!("chaintrace {}", env!("CARGO_PKG_VERSION")),
        chain: info.chain,
        network: info.network,
        asset: info.asset.as_ref(),
        dataset_manifest_sha256: info.manifest_sha256,
        command: std::env::args().collect(),
        data: &a.dataset.data,
        seed_nodes: info.seed_nodes,
        node_labels: info.node_labels,
        clustering: info.clustering,
        parameters: info.parameters,
        nodes: results
            .iter()
            .map(|r| PolicyNodes {
                policy: r.policy,
                nodes: nodes(r),
            })
            .collect(),
        results,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("traces serialise");
    bytes.push(b'\n');
    sink::write_atomic(&a.out.join("trace.json"), &bytes).map_err(CliError::user)?;
    let edges: Vec<(&str, &crate::trace::Edge)> = results
        .iter()
        .flat_map(|r| r.edges.iter().map(move |e| (r.policy.name(), e)))
        .collect();
    let edge_amount = amount_column(info.chain, edges.iter().map(|e| e.1.amount))?;
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let u = |n: &str| Field::new(n, DataType::UInt32, false);
    write_parquet(
        &a.out.join("edges.parquet"),
        vec![
            s("policy"),
            s("txid"),
            u("height"),
            u("time"),
            s("from"),
            s("to"),
            edge_amount.0,
            u("hop"),
        ],
        vec![
            Arc::new(StringArray::from(
                edges.iter().map(|e| e.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                edges.iter().map(|e| e.1.txid.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(UInt32Array::from(
                edges.iter().map(|e| e.1.height).collect::<Vec<_>>(),
            )),
            Arc::new(UInt32Array::from(
                edges.iter().map(|e| e.1.time).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                edges.iter().map(|e| e.1.from.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                edges.iter().map(|e| e.1.to.as_str()).collect::<Vec<_>>(),
            )),
            edge_amount.1,
            Arc::new(UInt32Array::from(
                edges.iter().map(|e| e.1.hop).collect::<Vec<_>>(),
            )),
        ],
    )?;
    let ends: Vec<(&str, &crate::trace::End)> = results
        .iter()
        .flat_map(|r| r.ends.iter().map(move |e| (r.policy.name(), e)))
        .collect();
    let end_amount = amount_column(info.chain, ends.iter().map(|e| e.1.amount))?;
    let n = |name: &str| Field::new(name, DataType::Utf8, true);
    write_parquet(
        &a.out.join("ends.parquet"),
        vec![
            s("policy"),
            s("kind"),
            s("txid"),
            u("vout"),
            s("address"),
            end_amount.0,
            u("hop"),
            n("entity"),
            n("category"),
        ],
        vec![
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
            end_amount.1,
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
        ],
    )?;
    if cli.json {
        let v: Vec<Summary> = results
            .iter()
            .map(|r| Summary {
                policy: r.policy,
                totals: &r.totals,
                exposure_category: &r.exposure_category,
                exposure_entity: &r.exposure_entity,
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return Ok(());
    }
    // Bitcoin in satoshi; an account-model asset in its own unit, exact (all decimals kept).
    let asset = info.asset.as_ref();
    let unit = asset
        .and_then(|x| x.get("unit"))
        .and_then(serde_json::Value::as_str);
    let decimals = asset
        .and_then(|x| x.get("decimals"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as u32;
    let show = |v: Amount| match unit {
        Some(u) => format!("{} {u}", crate::report::graph::trim(v, decimals)),
        None => format!("{v} sat"),
    };
    println!(
        "{}: {} trace of {}, {} label(s) on this chain",
        a.out.display(),
        a.direction,
        info.seeds,
        info.labels
    );
    for r in results {
        let t = &r.totals;
        let ends: Vec<String> = t
            .ends()
            .iter()
            .map(|(n, v)| format!("{n} {}", show(*v)))
            .collect();
        println!(
            "{:<8} seeded {} -> {}",
            r.policy.name(),
            show(t.seeded),
            ends.join(", ")
        );
        for (c, v) in &r.exposure_category {
            println!("         {} reached {c}", show(*v));
        }
    }
    Ok(())
}
