//! `chaintrace trace`.

mod ethereum;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
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

/// The seeds, each with where it came from (`FILE:LINE` for a seed file): @FILE is read as
/// a spreadsheet writes it (a byte-order mark, comma, semicolon or tab delimiters, quotes; a
/// header naming `address` is skipped).
fn seed_items_from(seeds: &[String]) -> Result<Vec<(String, Option<String>)>, CliError> {
    let mut items = Vec::new();
    for s in seeds {
        let Some(file) = s.strip_prefix('@') else {
            items.push((s.trim().to_string(), None));
            continue;
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::user(anyhow!("cannot read the seed file {file}: {e}")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let delimiter = crate::labels::sniff_delimiter(text.lines().next().unwrap_or(""));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .delimiter(delimiter)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        // The column named `address` when a header names one, else the first.
        let mut col = 0;
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| {
                CliError::user(anyhow!("seed file {file}: not readable as CSV: {e}"))
            })?;
            let line = crate::labels::record_line(text, &record);
            if n == 0
                && let Some(i) = record
                    .iter()
                    .position(|f| f.trim().eq_ignore_ascii_case("address"))
            {
                col = i;
                continue;
            }
            let first = record.get(col).unwrap_or("").trim();
            if first.is_empty() {
                continue;
            }
            items.push((first.to_string(), Some(format!("{file}:{line}"))));
        }
    }
    Ok(items)
}

fn seed_outputs(
    idx: &Index,
    seeds: &[String],
    data: &std::path::Path,
    network: &str,
    allow_flagged_cluster: bool,
    max_seed_cluster: usize,
) -> Result<Vec<u64>, CliError> {
    let items = seed_items_from(seeds)?;
    let mut outputs: BTreeSet<u64> = BTreeSet::new();
    let mut addresses: HashSet<u32> = HashSet::new();
    for (it, origin) in &items {
        let named = |mut e: CliError| {
            if let Some(o) = origin {
                e.error = e.error.context(format!("seed at {o}"));
            }
            e
        };
        seed_one(
            idx,
            it,
            data,
            network,
            allow_flagged_cluster,
            max_seed_cluster,
            &mut outputs,
            &mut addresses,
        )
        .map_err(named)?;
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

/// Resolves one seed into outputs (TXID, TXID:VOUT) or addresses (ADDRESS, cluster:).
#[allow(clippy::too_many_arguments)]
fn seed_one(
    idx: &Index,
    it: &str,
    data: &std::path::Path,
    network: &str,
    allow_flagged_cluster: bool,
    max_seed_cluster: usize,
    outputs: &mut BTreeSet<u64>,
    addresses: &mut HashSet<u32>,
) -> Result<(), CliError> {
    {
        if let Some(a) = it.strip_prefix("cluster:") {
            let stored = crate::cluster::load(idx, &crate::cluster::clusters_dir(data, network))
                .map_err(CliError::user)?;
            let id = seed_address(idx, a, network)?;
            let c = stored.cluster_of[id as usize];
            if let Some(w) = stored.meta.warnings.iter().find(|w| w.cluster_id == c)
                && !allow_flagged_cluster
            {
                return Err(CliError::user(anyhow!(
                    "seed cluster:{a} is flagged by `chaintrace cluster` ({}): {}. Seeding with it would taint every address it joined; seed with the addresses you know, or add --allow-conflicted-cluster to seed with the whole cluster anyway",
                    w.kind,
                    w.message
                )));
            }
            let members: Vec<u32> = (0..idx.addresses())
                .filter(|&x| stored.cluster_of[x as usize] == c)
                .collect();
            if members.len() > max_seed_cluster && !allow_flagged_cluster {
                return Err(CliError::user(anyhow!(
                    "seed cluster:{a} holds {} addresses, more than --max-seed-cluster {max_seed_cluster}: a cluster that large is usually a service or a collapse, not one actor. Seed with the addresses you know, raise --max-seed-cluster, or add --allow-conflicted-cluster",
                    members.len()
                )));
            }
            addresses.extend(members);
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
            addresses.insert(seed_address(idx, it, network)?);
        }
    }
    Ok(())
}

/// The id of a seed address on a Bitcoin dataset of `network`, after checking what it is:
/// an Ethereum address, a checksum typo, another network's address and an address the
/// dataset never saw each get their own message. Bech32 is matched in lower case.
fn seed_address(idx: &Index, it: &str, network: &str) -> Result<u32, CliError> {
    if let Some(id) = idx.address_id(it) {
        return Ok(id);
    }
    if it.starts_with("0x") || it.starts_with("0X") {
        return Err(CliError::user(anyhow!(
            "seed {it} is an Ethereum address, and this dataset is Bitcoin ({network}); add --chain ethereum to trace on an Ethereum dataset"
        )));
    }
    let lower = it.to_ascii_lowercase();
    let bech32 = ["bc1", "tb1", "bcrt1"].iter().any(|p| lower.starts_with(p));
    let parsed = bitcoin::Address::from_str(it).map_err(|e| {
        // A bech32 address fails as bech32 (checksum, mixed case), not as base58.
        let why = if bech32 {
            bitcoin::bech32::segwit::decode(it)
                .err()
                .map_or_else(|| e.to_string(), |b| format!("bech32: {b}"))
        } else if it.len() == 64 && it.bytes().all(|b| b.is_ascii_hexdigit()) {
            "it is a transaction id that is not in the dataset".to_string()
        } else {
            e.to_string()
        };
        CliError::user(anyhow!(
            "seed {it} is not a valid Bitcoin address ({why}); a mistyped character fails the checksum: copy the address again"
        ))
    })?;
    let ours = crate::types::Network::from_name(network).map(crate::types::Network::to_bitcoin);
    if let Some(n) = ours
        && !parsed.is_valid_for_network(n)
    {
        let theirs = [
            (bitcoin::Network::Bitcoin, "mainnet"),
            (bitcoin::Network::Testnet, "testnet/signet/testnet4"),
            (bitcoin::Network::Regtest, "regtest"),
        ]
        .into_iter()
        .find(|(n, _)| parsed.is_valid_for_network(*n))
        .map_or("another network", |(_, name)| name);
        return Err(CliError::user(anyhow!(
            "seed {it} is a {theirs} address, and this dataset is {network}; trace it on a {theirs} dataset (--data)"
        )));
    }
    let normalised = parsed.assume_checked().to_string();
    idx.address_id(&normalised).ok_or_else(|| {
        CliError::user(anyhow!(
            "seed address {it} is valid for {network} but never appears in the dataset (not ingested yet, or outside its heights?)"
        ))
    })
}

/// Names nodes by cluster (`rep` gives a node's cluster name) and drops transfers inside a
/// cluster.
fn to_clusters(results: &mut [PolicyResult], rep: &dyn Fn(&str) -> String) {
    for r in results {
        let mut merged: Vec<crate::trace::Edge> = Vec::new();
        let mut at: HashMap<(String, String, String, u32, u32), usize> = HashMap::new();
        for mut e in std::mem::take(&mut r.edges) {
            e.from = rep(&e.from);
            e.to = rep(&e.to);
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
/// plain number of seconds. Dates are calendar-checked (2024-02-31 is refused).
fn parse_time(s: &str, end_of_day: bool) -> Result<u64, CliError> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return u64::try_from(t.timestamp())
            .map_err(|_| CliError::user(anyhow!("{s:?} is before 1970")));
    }
    let day = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| {
        CliError::user(anyhow!(
            "{s:?} is not a time ({e}): use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix seconds"
        ))
    })?;
    let t = if end_of_day {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    }
    .expect("a valid time of day");
    u64::try_from(t.and_utc().timestamp())
        .map_err(|_| CliError::user(anyhow!("{s:?} is before 1970")))
}

/// The unit a `--min-value` was given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinValueUnit {
    /// A bare integer: the asset's base units.
    Base,
    /// `sat`/`btc`.
    Satoshi,
    /// `wei`/`gwei`/`eth`.
    Wei,
}

/// `--min-value`, in base units, with the unit family it was written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinValue {
    pub amount: Amount,
    pub unit: MinValueUnit,
    pub text: String,
}

/// Parses `0.001btc`, `100000sat`, `1.5eth`, `20gwei`, `1000wei` or a bare integer into
/// base units, exactly (no floats): `1.5eth` is 1500000000000000000 wei.
///
/// # Errors
/// An unknown unit, a malformed number, more decimals than the unit has, or an overflow.
pub fn parse_min_value(s: &str) -> Result<MinValue, String> {
    let t = s.trim().to_ascii_lowercase().replace('_', "");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let (decimals, family) = match unit {
        "" => (0, MinValueUnit::Base),
        "sat" | "sats" | "satoshi" => (0, MinValueUnit::Satoshi),
        "btc" => (8, MinValueUnit::Satoshi),
        "wei" => (0, MinValueUnit::Wei),
        "gwei" => (9, MinValueUnit::Wei),
        "eth" | "ether" => (18, MinValueUnit::Wei),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use btc or sat (Bitcoin), eth, gwei or wei (Ethereum), or a bare integer of base units"
            ));
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(format!("{s:?} is not an amount"));
    }
    if frac.len() > decimals {
        return Err(format!(
            "{s:?} has {} decimals; {} has {decimals}",
            frac.len(),
            if unit.is_empty() {
                "a bare amount of base units"
            } else {
                unit
            }
        ));
    }
    let digits = format!("{int}{frac:0<decimals$}");
    let amount = digits
        .trim_start_matches('0')
        .parse::<Amount>()
        .or_else(|e| {
            if digits.bytes().all(|b| b == b'0') {
                Ok(0)
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("{s:?} is not an amount: {e}"))?;
    Ok(MinValue {
        amount,
        unit: family,
        text: s.trim().to_string(),
    })
}

/// `--min-value` in the traced asset's base units; a unit of the other chain (or any unit
/// on a token, whose decimals vary) is refused.
fn min_value(a: &TraceArgs, asset_is_eth: bool) -> Result<Amount, CliError> {
    let m = &a.min_value;
    let fits = match (a.chain.as_str(), m.unit) {
        (_, MinValueUnit::Base) => true,
        ("bitcoin", u) => u == MinValueUnit::Satoshi,
        (_, u) => u == MinValueUnit::Wei && asset_is_eth,
    };
    if fits {
        Ok(m.amount)
    } else {
        Err(CliError::user(anyhow!(
            "--min-value {}: the unit does not fit {} ({}); give {} or a bare integer of base units",
            m.text,
            if a.chain == "bitcoin" {
                "a Bitcoin trace"
            } else if asset_is_eth {
                "an ETH trace"
            } else {
                "a token trace"
            },
            a.chain,
            if a.chain == "bitcoin" {
                "btc or sat"
            } else if asset_is_eth {
                "eth, gwei or wei"
            } else {
                "no unit"
            }
        )))
    }
}

/// The categories where the trace stops: `--stop-at` as given (`none`: nowhere), or, when
/// it is not given, `exchange` if a loaded label of the chain has it. A category that no
/// label of the chain in use has is refused: a typo (`exchnage`) would otherwise stop
/// nowhere and report nothing reached.
fn check_stop_at(
    a: &TraceArgs,
    resolved: &crate::labels::Resolved,
) -> Result<Vec<String>, CliError> {
    let present: BTreeSet<&str> = resolved
        .chosen
        .iter()
        .map(|t| t.category.as_str())
        .collect();
    let lowered: Vec<String> = a
        .stop_at
        .iter()
        .map(|c| c.trim().to_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let given: Vec<&str> = lowered.iter().map(String::as_str).collect();
    if given.is_empty() {
        return Ok(if present.contains("exchange") {
            vec!["exchange".to_string()]
        } else {
            Vec::new()
        });
    }
    if given == ["none"] {
        return Ok(Vec::new());
    }
    let missing: Vec<&str> = given
        .iter()
        .copied()
        .filter(|c| !present.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(given.iter().map(|c| c.to_string()).collect());
    }
    // A category carried only by tags that lost a conflict: say so, never "none".
    if let Some(c) = resolved.conflicts.iter().find(|c| {
        c.others
            .iter()
            .any(|o| missing.contains(&o.category.as_str()))
    }) {
        let shadowed = resolved
            .conflicts
            .iter()
            .filter(|c| {
                c.others
                    .iter()
                    .any(|o| missing.contains(&o.category.as_str()))
            })
            .count();
        return Err(CliError::user(anyhow!(
            "--stop-at {}: only tags that lost a conflict carry it, at {shadowed} address(es) (e.g. {} uses {} [{}] by {}); `chaintrace labels conflicts` shows them; add --prefer SOURCE|FILE to use those tags",
            missing.join(","),
            c.address,
            c.chosen.entity,
            c.chosen.category,
            c.decided_by.describe()
        )));
    }
    Err(CliError::user(anyhow!(
        "--stop-at {}: no label of this {} dataset has {}; the categories present are: {}{}",
        missing.join(","),
        a.chain,
        if missing.len() == 1 {
            "this category"
        } else {
            "these categories"
        },
        if present.is_empty() {
            format!(
                "none (no labels imported; run chaintrace labels import FILE --data {}, or leave out --stop-at)",
                a.dataset.data.display()
            )
        } else {
            present
                .into_iter()
                .map(|c| if c.is_empty() { "(none)" } else { c })
                .collect::<Vec<_>>()
                .join(", ")
        },
        if resolved.private_ignored > 0 {
            format!(
                " ({} non-public tag(s) left out; add --include-private to use them)",
                resolved.private_ignored
            )
        } else {
            String::new()
        }
    )))
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

/// The files a trace writes into its case folder (besides `report/`, which `report` adds).
const CASE_FILES: [&str; 4] = ["trace.json", "edges.parquet", "ends.parquet", "SHA256SUMS"];

/// Checks `--out` before tracing: it must be new, empty, or a case written by this same
/// command (a rerun reproduces it). Another case is replaced only with `--force`, which
/// also removes its report (it would describe the old trace); a folder holding anything
/// else is never written into.
fn prepare_out(a: &TraceArgs) -> Result<(), CliError> {
    let out = &a.out;
    let entries: Vec<String> = match std::fs::read_dir(out) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CliError::user(anyhow!(
                "cannot read --out {}: {e}",
                out.display()
            )));
        }
    };
    // The case's metadata and audit trail belong to it and are never removed.
    let kept = [
        crate::case::META_FILE,
        crate::case::AUDIT_FILE,
        crate::case::HEAD_FILE,
        "eval_trace.json",
    ];
    let entries: Vec<String> = entries
        .into_iter()
        .filter(|e| !kept.contains(&e.as_str()))
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let foreign: Vec<&String> = entries
        .iter()
        .filter(|e| !CASE_FILES.contains(&e.as_str()) && e.as_str() != "report")
        .collect();
    if !foreign.is_empty() || !entries.iter().any(|e| e == "trace.json") {
        return Err(CliError::user(anyhow!(
            "--out {} is not empty and is not a case folder (it holds {}); choose a new or empty folder",
            out.display(),
            entries
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let old: Option<Vec<String>> = std::fs::read(out.join("trace.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["command"].clone()).ok());
    // The same question: the old command parses to the same trace request (flag order,
    // spelling of paths, --quiet/--json/--force do not matter).
    let same =
        old.as_ref()
            .is_some_and(|o| match <super::Cli as clap::Parser>::try_parse_from(o) {
                Ok(super::Cli {
                    command: super::Command::Trace(old_a),
                    ..
                }) => request_key(&old_a) == request_key(a),
                _ => false,
            });
    if !same && !a.force {
        return Err(CliError::user(anyhow!(
            "--out {} holds a case of another trace ({}); choose a new folder, or add --force to replace it (its report/ is removed too)",
            out.display(),
            old.map_or_else(|| "unreadable trace.json".to_string(), |o| o.join(" "))
        )));
    }
    Ok(())
}

/// Clears the old case in `--out` once the new one is ready to be written (never before:
/// a bad seed or an interrupted trace must leave the old evidence as it was).
fn clear_old_case(out: &std::path::Path) -> Result<(), CliError> {
    for f in CASE_FILES {
        match std::fs::remove_file(out.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CliError::user(anyhow!(
                    "cannot remove {}: {e}",
                    out.join(f).display()
                )));
            }
        }
    }
    // The report described the old run (labels or the dataset may have changed since).
    let report = out.join("report");
    if report.exists() {
        std::fs::remove_dir_all(&report)
            .map_err(|e| CliError::user(anyhow!("cannot remove {}: {e}", report.display())))?;
        eprintln!(
            "chaintrace: removed {}: it described the earlier run; run chaintrace report again",
            report.display()
        );
    }
    Ok(())
}

/// What a trace asks, independent of how the command line was written: the request with
/// paths made absolute and output-only flags left out.
fn request_key(a: &TraceArgs) -> String {
    let abs = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    format!(
        "{:?}",
        (
            (abs(&a.dataset.data), &a.dataset.network, &a.chain, &a.token),
            (&a.seeds, &a.direction, &a.policy),
            (a.max_hops, a.min_value.amount, &a.stop_at),
            (a.from_height, a.to_height, &a.from_time, &a.to_time),
            (a.include_private, &a.prefer, &a.level),
            (
                a.allow_conflicted_cluster,
                a.max_seed_cluster,
                a.through_coinjoins
            ),
            abs(&a.out),
        )
    )
}

pub(crate) fn run(cli: &Cli, a: &TraceArgs) -> Result<(), CliError> {
    prepare_out(a)?;
    if a.chain == "ethereum" {
        return ethereum::run(cli, a);
    }
    let pols = policies(&a.policy)?;
    let (chain, network) = chain_dir(&a.dataset)?;
    let (idx, _) = Index::open_or_build(&chain).map_err(CliError::user)?;
    let seeds = seed_outputs(
        &idx,
        &a.seeds,
        &a.dataset.data,
        &network,
        a.allow_conflicted_cluster,
        a.max_seed_cluster,
    )?;
    let (labels, resolved) = load_labels(a, "bitcoin", &network, |addr| idx.address_id(addr))?;
    let stop_at = check_stop_at(a, &resolved)?;
    let heights = idx.block_time.len() as u32;
    let times: Vec<(u32, u64)> = (0..heights)
        .map(|h| (h, idx.block_time.get(h as usize)))
        .collect();
    let (from_height, to_height) = height_window(a, &times)?;
    if from_height >= heights {
        return Err(CliError::user(anyhow!(
            "the window starts after the dataset's last block (height {}): nothing to trace",
            heights.saturating_sub(1)
        )));
    }
    // Seeds are outputs created inside the window: what the seeds held before or after it
    // is not part of this trace (it would be "held" in a window that ended before it).
    let all_seeds = seeds.len();
    let seeds: Vec<u64> = seeds
        .into_iter()
        .filter(|&o| {
            let h = idx.tx_height.get(idx.out_tx.get(o as usize) as usize) as u32;
            (from_height..=to_height).contains(&h)
        })
        .collect();
    if seeds.is_empty() {
        return Err(CliError::user(anyhow!(
            "none of the {all_seeds} seed output(s) was created inside the window (heights {from_height} to {to_height}); widen --from/--to"
        )));
    }
    let params = Params {
        direction: if a.direction == "backward" {
            Direction::Backward
        } else {
            Direction::Forward
        },
        max_hops: a.max_hops,
        min_value: min_value(a, false)?,
        from_height,
        to_height,
        stop_at: stop_at.clone(),
        through_coinjoins: a.through_coinjoins,
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
    let label_conflicts = conflicts_in_trace(&results, &seed_nodes, &resolved, |addr| {
        idx.address_id(addr).map(name_of)
    });
    let clustering = match &stored {
        Some(s) => serde_json::json!({
            "heuristics": s.meta.heuristics,
            "clusters": s.meta.clusters,
            "addresses": s.meta.addresses,
            "coinjoins": s.meta.coinjoins,
            "warnings": s.meta.warnings,
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
    parameters["stop_at"] = stop_at.clone().into();
    parameters["labels_private_ignored"] = resolved.private_ignored.into();
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
            label_conflicts: &label_conflicts,
            attributions: &attributions_in_trace(&results, &resolved),
            private_ignored: resolved.private_ignored,
        },
        &results,
    )
}

/// The `--from-time`/`--to-time` window as heights (with `--from-height`/`--to-height`),
/// through the blocks' `(height, time)` in height order.
fn height_window(a: &TraceArgs, times: &[(u32, u64)]) -> Result<(u32, u32), CliError> {
    if let (Some(f), Some(t)) = (&a.from_time, &a.to_time)
        && parse_time(f, false)? > parse_time(t, true)?
    {
        return Err(CliError::user(anyhow!(
            "--from-time {f} is after --to-time {t}: the window is empty"
        )));
    }
    if a.from_height > a.to_height {
        return Err(CliError::user(anyhow!(
            "--from-height {} is above --to-height {}: the window is empty",
            a.from_height,
            a.to_height
        )));
    }
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
        "min_value": json_amount(a.min_value.amount),
        "from_height": a.from_height,
        "to_height": a.to_height,
        "from_time": a.from_time,
        "to_time": a.to_time,
        "followed_heights": followed,
        "stop_at": a.stop_at,
        "include_private": a.include_private,
        "through_coinjoins": a.through_coinjoins,
        "min_share_percent": a.min_share.text,
        "prefer": a.prefer,
        "level": a.level,
        "labels": labels,
    })
}

/// An amount in a JSON `Value`: a number while it fits u64, else its decimal text (a
/// `Value` holds no larger integer).
fn json_amount(v: Amount) -> serde_json::Value {
    u64::try_from(v).map_or_else(|_| v.to_string().into(), Into::into)
}

/// The labels in use on `chain` (DATA/labels/tags.parquet after the documented precedence,
/// `--prefer` and `--include-private` applied), by node id (`id_of` maps an address to
/// it), with the whole resolution (its conflicts and the private tags left out).
fn load_labels(
    a: &TraceArgs,
    chain: &str,
    network: &str,
    id_of: impl Fn(&str) -> Option<u32>,
) -> Result<(HashMap<u32, Label>, crate::labels::Resolved), CliError> {
    let selection = crate::labels::Selection {
        include_private: a.include_private,
        prefer: a.prefer.clone(),
    };
    let resolved = crate::labels::load(&a.dataset.data, Some(chain), Some(network), &selection)
        .map_err(CliError::user)?;
    let labels = resolved
        .chosen
        .iter()
        .filter_map(|t| {
            id_of(&t.address).map(|id| {
                (
                    id,
                    Label {
                        entity: t.entity.clone(),
                        category: t.category.clone(),
                    },
                )
            })
        })
        .collect();
    Ok((labels, resolved))
}

/// Where an attribution comes from: the tag in use for an address.
#[derive(Clone, Debug, Serialize)]
struct Attribution {
    entity: String,
    category: String,
    label: String,
    source: String,
    confidence: String,
    /// `FILE:LINE` of the tag as imported.
    tag: String,
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
                    .flat_map(|e| [e.from_address.as_str(), e.to_address.as_str()]),
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
                    entity: t.entity.clone(),
                    category: t.category.clone(),
                    label: t.label.clone(),
                    source: t.source.clone(),
                    confidence: t.confidence.clone(),
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
                .flat_map(|e| [e.from.as_str(), e.to.as_str()])
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
    labelled: impl Iterator<Item = (String, &'a Label)>,
) -> BTreeMap<String, &'a Label> {
    let in_trace = nodes_in_trace(results, seed_nodes);
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
    /// Label conflicts of addresses in the trace (which tag was used, and why).
    label_conflicts: &'a [&'a crate::labels::Conflict],
    /// The tag behind every labelled address of the trace.
    attributions: &'a BTreeMap<String, Attribution>,
    /// Non-public tags left out (no `--include-private`).
    private_ignored: usize,
}

/// The sha256 of everything a trace read besides the dataset's parts (which the manifest's
/// hash pins): the manifest, the labels, the seed files and the clustering used.
fn trace_inputs(
    a: &TraceArgs,
    info: &CaseInfo,
) -> Result<BTreeMap<String, String>, crate::case::CaseError> {
    let data = &a.dataset.data;
    let mut files: Vec<(String, std::path::PathBuf)> = vec![(
        "labels/tags.parquet".to_string(),
        crate::labels::tags_path(data),
    )];
    for s in &a.seeds {
        if let Some(f) = s.strip_prefix('@') {
            files.push((format!("seeds {f}"), std::path::PathBuf::from(f)));
        }
    }
    if a.level == "cluster" || a.seeds.iter().any(|s| s.starts_with("cluster:")) {
        // Ethereum's clusters live under `ethereum`, Bitcoin's under the network's name.
        let net = if info.chain == "ethereum" {
            "ethereum"
        } else {
            info.network
        };
        let dir = crate::cluster::clusters_dir(data, net);
        for f in ["_meta.json", "address_cluster.parquet", "cluster_of.bin"] {
            files.push((format!("clusters/{net}/{f}"), dir.join(f)));
        }
    }
    let mut out = crate::case::hashes(files)?;
    out.insert(
        format!("{}/_manifest.json", info.network),
        info.manifest_sha256.to_string(),
    );
    Ok(out)
}

/// `trace.json`, written straight from these types (a `serde_json::Value` cannot hold the
/// u128 amounts of wei).
#[derive(Serialize)]
struct TraceDoc<'a> {
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
    node_labels: &'a BTreeMap<String, &'a Label>,
    /// Addresses in the trace whose tags disagree: the tag used, the rule that chose it
    /// and the others (see `labels::precedence`).
    label_conflicts: &'a [&'a crate::labels::Conflict],
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

#[derive(Serialize)]
struct Summary<'a> {
    policy: Policy,
    totals: &'a crate::trace::Totals,
    exposure_category: &'a BTreeMap<String, Amount>,
    exposure_entity: &'a BTreeMap<String, Amount>,
}

/// An amount column named `name`: Int64 satoshi on Bitcoin, Decimal128(38, 0) base units
/// elsewhere; `None` values are nulls (the field is nullable when `nullable`).
fn amount_column(
    chain: &str,
    name: &str,
    nullable: bool,
    values: impl Iterator<Item = Option<Amount>>,
) -> Result<(Field, ArrayRef), CliError> {
    let internal = |e: anyhow::Error| CliError { code: 2, error: e };
    let too_big = |x: Amount, to: &str| {
        CliError::user(anyhow!("an amount of {x} base units does not fit {to}"))
    };
    if chain == "bitcoin" {
        let mut v: Vec<Option<i64>> = Vec::new();
        for x in values {
            v.push(
                x.map(|x| i64::try_from(x).map_err(|_| too_big(x, "Int64")))
                    .transpose()?,
            );
        }
        return Ok((
            Field::new(name, DataType::Int64, nullable),
            Arc::new(Int64Array::from(v)),
        ));
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
        .map_err(|e| internal(e.into()))?;
    Ok((
        Field::new(name, DataType::Decimal128(38, 0), nullable),
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
    clear_old_case(&a.out)?;
    if let Ok(problems) = crate::case::verify_chain(&a.out)
        && !problems.is_empty()
    {
        eprintln!(
            "chaintrace: warning: the case's audit trail is broken ({}); `chaintrace case verify` shows it; this trace is appended after the break",
            problems[0]
        );
    }
    let inputs = trace_inputs(a, info).map_err(CliError::user)?;
    let doc = TraceDoc {
        tool: format!("chaintrace {}", crate::VERSION),
        inputs: &inputs,
        chain: info.chain,
        network: info.network,
        asset: info.asset.as_ref(),
        dataset_manifest_sha256: info.manifest_sha256,
        command: super::command_line(),
        data: &a.dataset.data,
        seed_nodes: info.seed_nodes,
        node_labels: info.node_labels,
        label_conflicts: info.label_conflicts,
        attributions: info.attributions,
        methodology: results
            .iter()
            .map(|r| {
                (
                    r.policy.name(),
                    if info.asset.is_some() {
                        r.policy.account_definition()
                    } else {
                        r.policy.definition()
                    },
                )
            })
            .collect(),
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
    let edge_amount = amount_column(
        info.chain,
        "amount",
        false,
        edges.iter().map(|e| Some(e.1.amount)),
    )?;
    let edge_whole = amount_column(
        info.chain,
        "output_value",
        true,
        edges.iter().map(|e| e.1.output_value),
    )?;
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
            u("vout"),
            s("from_address"),
            s("to_address"),
            edge_whole.0,
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
            Arc::new(UInt32Array::from(
                edges.iter().map(|e| e.1.vout).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                edges
                    .iter()
                    .map(|e| e.1.from_address.as_str())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                edges
                    .iter()
                    .map(|e| e.1.to_address.as_str())
                    .collect::<Vec<_>>(),
            )),
            edge_whole.1,
        ],
    )?;
    let ends: Vec<(&str, &crate::trace::End)> = results
        .iter()
        .flat_map(|r| r.ends.iter().map(move |e| (r.policy.name(), e)))
        .collect();
    let end_amount = amount_column(
        info.chain,
        "amount",
        false,
        ends.iter().map(|e| Some(e.1.amount)),
    )?;
    let end_whole = amount_column(
        info.chain,
        "output_value",
        true,
        ends.iter().map(|e| e.1.output_value),
    )?;
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
            n("cluster"),
            end_whole.0,
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
            Arc::new(StringArray::from(
                ends.iter()
                    .map(|e| e.1.cluster.as_deref())
                    .collect::<Vec<_>>(),
            )),
            end_whole.1,
        ],
    )?;
    // Each file hashed once: for SHA256SUMS and for the audit trail.
    let mut outputs = crate::case::hashes(
        CASE_FILES[..3]
            .iter()
            .map(|f| (f.to_string(), a.out.join(f))),
    )
    .map_err(CliError::user)?;
    let sums: String = outputs.iter().map(|(f, h)| format!("{h}  {f}\n")).collect();
    sink::write_atomic(&a.out.join("SHA256SUMS"), sums.as_bytes()).map_err(CliError::user)?;
    outputs.extend(
        crate::case::hashes([("SHA256SUMS".to_string(), a.out.join("SHA256SUMS"))])
            .map_err(CliError::user)?,
    );
    crate::case::append(
        &a.out,
        crate::case::Action {
            action: "trace",
            command: super::command_line(),
            inputs,
            outputs,
            note: None,
            time: super::now_secs(),
        },
    )
    .map_err(CliError::user)?;
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
    // Amounts in BTC (or the account-model asset's unit), exact, with the integer beside.
    let asset = info.asset.as_ref();
    let unit = asset
        .and_then(|x| x.get("unit"))
        .and_then(serde_json::Value::as_str);
    let decimals = asset
        .and_then(|x| x.get("decimals"))
        .and_then(serde_json::Value::as_u64)
        .map_or(0, |d| u32::try_from(d).unwrap_or(0));
    let show = |v: Amount| match unit {
        Some(u) if decimals > 0 => format!(
            "{} {u} ({v} {})",
            crate::report::graph::trim(v, decimals),
            if u == "ETH" { "wei" } else { "base units" }
        ),
        Some(u) => format!("{v} {u}"),
        None => format!("{} BTC ({v} sat)", crate::report::fmt::amount(v, 8)),
    };
    let backward = a.direction == "backward";
    println!(
        "{}: {} trace of {}, {} label(s) on this chain",
        a.out.display(),
        a.direction,
        info.seeds,
        info.labels
    );
    // A default that decides the answer is said, not assumed.
    if a.stop_at.is_empty() {
        match info.parameters["stop_at"].as_array() {
            Some(c) if !c.is_empty() => println!(
                "stopping at exchange labels (the default; --stop-at CATEGORY,... or none to change)"
            ),
            _ => println!(
                "stopping at no label: no exchange label is loaded and no --stop-at was given"
            ),
        }
    }
    for r in results {
        let t = &r.totals;
        if backward || r.policy == Policy::Poison {
            println!(
                "{}: {} {}",
                r.policy.name(),
                if backward { "traced back" } else { "seeded" },
                show(t.seeded)
            );
        } else {
            println!(
                "{}: {} entered the seeds from outside{}",
                r.policy.name(),
                show(t.entered_seeds),
                if t.seeded > t.entered_seeds {
                    format!(
                        "; {} more only moved between seed addresses (not counted again)",
                        show(t.seeded - t.entered_seeds)
                    )
                } else {
                    String::new()
                }
            );
        }
        let share = |v: Amount| -> String {
            let base = if backward { t.seeded } else { t.entered_seeds };
            crate::trace::percent_text(v, base, 1)
                .map_or_else(String::new, |p| format!(", {p} of it"))
        };
        if r.policy == Policy::Poison {
            println!(
                "  (poison is an upper bound: the whole value of every output the taint touched, not an amount that moved)"
            );
        }
        let poison = r.policy == Policy::Poison;
        let verb = match (backward, poison) {
            (_, true) => "touched outputs at",
            (true, false) => "came from",
            (false, false) => "reached",
        };
        if poison {
            let touched: BTreeSet<(&str, u32)> =
                r.edges.iter().map(|e| (e.txid.as_str(), e.vout)).collect();
            println!(
                "  outputs touched: {} worth {} in all (not an amount that moved)",
                touched.len(),
                show(
                    r.edges
                        .iter()
                        .map(|e| (e.txid.as_str(), e.vout, e.output_value.unwrap_or(e.amount)))
                        .collect::<BTreeSet<_>>()
                        .iter()
                        .map(|x| x.2)
                        .sum()
                )
            );
        }
        let mut by_entity: Vec<(&String, &Amount)> = r.exposure_entity.iter().collect();
        by_entity.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        if by_entity.is_empty() {
            println!(
                "  {verb} no labelled {}",
                match info.parameters["stop_at"].as_array() {
                    Some(c) if !c.is_empty() => c
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .collect::<Vec<_>>()
                        .join("/"),
                    _ => "exit (the trace stops at no category: no exchange label is loaded and no --stop-at was given)".to_string(),
                }
            );
        }
        for (entity, v) in by_entity {
            let exits: Vec<&crate::trace::End> = r
                .ends
                .iter()
                .filter(|e| e.kind == "exit" && e.entity.as_ref() == Some(entity))
                .collect();
            let addresses: BTreeSet<&str> = exits.iter().map(|e| e.address.as_str()).collect();
            let category = exits
                .first()
                .and_then(|e| e.category.as_deref())
                .unwrap_or("");
            let deposits: Amount = exits.iter().filter_map(|e| e.output_value).sum();
            let hidden: Vec<&&crate::trace::End> = exits
                .iter()
                .filter(|e| {
                    crate::trace::share_bp(e.amount, e.output_value) < a.min_share.basis_points
                })
                .collect();
            println!(
                "  {verb} {entity} [{category}]: {}{} through {} address(es), {} deposit(s) worth {}{}",
                show(*v),
                if poison { String::new() } else { share(*v) },
                addresses.len(),
                exits.len(),
                show(deposits),
                if hidden.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} deposit(s) below --min-share {} % not listed ({})",
                        hidden.len(),
                        a.min_share.text,
                        show(hidden.iter().map(|e| e.amount).sum())
                    )
                }
            );
        }
        // Dilution: exits that are a sliver of the deposit they sit in.
        let diluted: Vec<&crate::trace::End> = r
            .ends
            .iter()
            .filter(|e| e.kind == "exit" && crate::trace::share_bp(e.amount, e.output_value) < 100)
            .collect();
        if !diluted.is_empty() && !poison {
            println!(
                "  {} exit(s) carry under 1 % of their deposit ({} in all): the model spread the seeds' value thinly, read them with care",
                diluted.len(),
                show(diluted.iter().map(|e| e.amount).sum())
            );
        }
        // Labelled entities the value went through without the trace stopping there.
        let received: HashSet<&str> = r.edges.iter().map(|e| e.to.as_str()).collect();
        let mut through: BTreeMap<String, Amount> = BTreeMap::new();
        for e in &r.edges {
            if let Some(l) = info.node_labels.get(&e.from)
                && received.contains(e.from.as_str())
                && !info.seed_nodes.contains(&e.from)
            {
                *through
                    .entry(format!("{} [{}]", l.entity, l.category))
                    .or_default() += e.amount;
            }
        }
        for (name, v) in &through {
            println!(
                "  passed through {name} without stopping ({} moved on; add its category to --stop-at to end the trace there)",
                show(*v)
            );
        }
        let unresolved = [
            ("held (unspent)", t.holdings),
            ("spent outside the height/time window", t.outside_window),
            ("beyond the hop limit", t.hop_limit),
            ("below --min-value", t.below_min),
        ];
        if let Some((what, v)) = unresolved.iter().filter(|u| u.1 > 0).max_by_key(|u| u.1) {
            println!("  largest unresolved: {} {what}", show(*v));
        }
        let ends: Vec<String> = t
            .ends()
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(n, v)| format!("{n} {}", show(*v)))
            .collect();
        println!("  all ends: {}", ends.join(", "));
    }
    if info.private_ignored > 0 {
        println!(
            "note: {} non-public tag(s) left out; add --include-private to use them",
            info.private_ignored
        );
    }
    if !info.label_conflicts.is_empty() {
        println!(
            "note: {} address(es) in this trace carry disagreeing tags; the tag used and why are in trace.json (label_conflicts) and the report; `chaintrace labels conflicts` lists all",
            info.label_conflicts.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_values_parse_exactly_in_their_units() {
        let base = |s: &str| parse_min_value(s).map(|m| (m.amount, m.unit));
        assert_eq!(base("0.001btc"), Ok((100_000, MinValueUnit::Satoshi)));
        assert_eq!(base("100000sat"), Ok((100_000, MinValueUnit::Satoshi)));
        assert_eq!(base("1 BTC"), Ok((100_000_000, MinValueUnit::Satoshi)));
        assert_eq!(
            base("1.5eth"),
            Ok((1_500_000_000_000_000_000, MinValueUnit::Wei))
        );
        assert_eq!(base("20gwei"), Ok((20_000_000_000, MinValueUnit::Wei)));
        assert_eq!(base("0"), Ok((0, MinValueUnit::Base)));
        assert_eq!(base("12345"), Ok((12_345, MinValueUnit::Base)));
        assert!(base("0.000000001btc").unwrap_err().contains("9 decimals"));
        assert!(base("1.5").unwrap_err().contains("decimals"));
        assert!(base("5 usd").unwrap_err().contains("unknown unit"));
        assert!(base("btc").is_err());
        assert!(base("1.2.3eth").is_err());
    }

    #[test]
    fn dates_are_calendar_checked() {
        assert_eq!(parse_time("2024-02-29", false).unwrap(), 1_709_164_800);
        assert_eq!(parse_time("2024-02-29", true).unwrap(), 1_709_251_199);
        assert!(parse_time("2023-02-29", false).is_err());
        assert!(parse_time("2024-02-31", false).is_err());
        assert_eq!(parse_time("1700000000", false).unwrap(), 1_700_000_000);
    }
}
