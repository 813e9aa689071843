//! Seeds as an analyst gives them — ADDRESS, TXID, TXID:VOUT, `cluster:ADDRESS`, `@FILE`
//! (a spreadsheet's CSV: BOM, `,`/`;`/tab, quotes; a header naming `address` is skipped) —
//! resolved on a Bitcoin dataset into output ids, each failure naming the seed and, for a
//! seed file, its line.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use super::request::TraceError;
use crate::index::Index;
use crate::types::{AddrIx, OutIx};

/// The seeds, each with where it came from (`FILE:LINE` for a seed file): @FILE is read as
/// a spreadsheet writes it (a byte-order mark, comma, semicolon or tab delimiters, quotes; a
/// header naming `address` is skipped).
pub fn seed_items_from(seeds: &[String]) -> Result<Vec<(String, Option<String>)>, TraceError> {
    let mut items = Vec::new();
    for s in seeds {
        let Some(file) = s.strip_prefix('@') else {
            items.push((s.trim().to_string(), None));
            continue;
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| TraceError::Input(format!("cannot read the seed file {file}: {e}")))?;
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
        let lines = crate::labels::Lines::new(text);
        let before = items.len();
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| {
                TraceError::Input(format!("seed file {file}: not readable as CSV: {e}"))
            })?;
            let line = lines.of(&record);
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
        if items.len() == before {
            return Err(TraceError::Input(format!(
                "the seed file {file} names no seed (it is empty, or holds only a header, blank lines or # comments): give one seed per line, as --seed takes it (see chaintrace trace --help)"
            )));
        }
    }
    Ok(items)
}

pub(crate) fn seed_outputs(
    idx: &Index,
    seeds: &[String],
    data: &std::path::Path,
    network: &str,
    allow_flagged_cluster: bool,
    max_seed_cluster: usize,
) -> Result<Vec<OutIx>, TraceError> {
    let items = seed_items_from(seeds)?;
    let mut outputs: BTreeSet<OutIx> = BTreeSet::new();
    let mut addresses: HashSet<AddrIx> = HashSet::new();
    for (it, origin) in &items {
        let named = |e: TraceError| match origin {
            Some(o) => TraceError::Context {
                context: format!("seed at {o}"),
                source: Box::new(e),
            },
            None => e,
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
    // Each seed address's outputs, from the index's address → outputs rows.
    for &a in &addresses {
        outputs.extend(idx.outputs_paid(a));
    }
    if outputs.is_empty() {
        return Err(TraceError::Input("the seeds select no output".to_string()));
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
    outputs: &mut BTreeSet<OutIx>,
    addresses: &mut HashSet<AddrIx>,
) -> Result<(), TraceError> {
    {
        if let Some(a) = it.strip_prefix("cluster:") {
            let stored = crate::cluster::load(idx, &crate::cluster::clusters_dir(data, network))
                .map_err(TraceError::stage)?;
            let id = seed_address(idx, a, network)?;
            let c = stored.cluster_of[id.ix()];
            if let Some(w) = stored.meta.warnings.iter().find(|w| w.cluster_id == c)
                && !allow_flagged_cluster
            {
                return Err(TraceError::Input(format!(
                    "seed cluster:{a} is flagged by `chaintrace cluster` ({}): {}. Seeding with it would taint every address it joined; seed with the addresses you know, or add --allow-conflicted-cluster to seed with the whole cluster anyway",
                    w.kind, w.message
                )));
            }
            let members: Vec<AddrIx> = idx
                .address_ids()
                .filter(|&x| stored.cluster_of[x.ix()] == c)
                .collect();
            if members.len() > max_seed_cluster && !allow_flagged_cluster {
                return Err(TraceError::Input(format!(
                    "seed cluster:{a} holds {} addresses, more than --max-seed-cluster {max_seed_cluster}: a cluster that large is usually a service or a collapse, not one actor. Seed with the addresses you know, raise --max-seed-cluster, or add --allow-conflicted-cluster",
                    members.len()
                )));
            }
            addresses.extend(members);
        } else if let Some((txid, vout)) = it.split_once(':') {
            let t = txid
                .parse()
                .ok()
                .and_then(|h| idx.tx_id(&h))
                .ok_or_else(|| {
                    TraceError::Input(format!("seed transaction {txid} is not in the dataset"))
                })?;
            let n = idx.n_outputs(t);
            let v: u32 = vout.parse().map_err(|_| {
                TraceError::Input(format!("seed {it}: {vout} is not an output index"))
            })?;
            if u64::from(v) >= n {
                return Err(TraceError::Input(format!(
                    "seed {it}: transaction {txid} has {n} outputs"
                )));
            }
            outputs.extend(idx.output(t, v));
        } else if it.len() == 64 && it.bytes().all(|b| b.is_ascii_hexdigit()) {
            let t = it.parse().ok().and_then(|h| idx.tx_id(&h)).ok_or_else(|| {
                TraceError::Input(format!("seed transaction {it} is not in the dataset"))
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
pub fn seed_address(idx: &Index, it: &str, network: &str) -> Result<AddrIx, TraceError> {
    check_address(idx, it, network, "seed")
}

/// [`seed_address`] for any use: `role` names the address in the messages ("seed",
/// "address").
///
/// # Errors
/// [`TraceError::Input`] saying what the text is when it is not an address of the dataset.
pub fn check_address(
    idx: &Index,
    it: &str,
    network: &str,
    role: &str,
) -> Result<AddrIx, TraceError> {
    if let Some(id) = idx.address_id(it) {
        return Ok(id);
    }
    if it.starts_with("0x") || it.starts_with("0X") {
        let what = if it.len() == 66 {
            "an Ethereum transaction hash"
        } else {
            "an Ethereum address"
        };
        let hint = if role == "seed" {
            "add --chain ethereum to trace on an Ethereum dataset"
        } else {
            "look it up in an Ethereum dataset"
        };
        return Err(TraceError::Input(format!(
            "{role} {it} is {what}, and this dataset is Bitcoin ({network}); {hint}"
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
        TraceError::Input(format!(
            "{role} {it} is not a valid Bitcoin address ({why}); a mistyped character fails the checksum: copy the address again"
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
        return Err(TraceError::Input(format!(
            "{role} {it} is a {theirs} address, and this dataset is {network}; use a {theirs} dataset (--data)"
        )));
    }
    let normalised = parsed.assume_checked().to_string();
    idx.address_id(&normalised).ok_or_else(|| {
        TraceError::Input(format!(
            "{role} {it} is valid for {network} but never appears in the dataset (not ingested yet, or outside its heights?)"
        ))
    })
}
