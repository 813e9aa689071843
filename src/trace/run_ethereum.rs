//! The Ethereum trace of a [`Request`]: the account model of [`super::account`] in two
//! passes over the dataset's parts (balances and accounts, then every model's replay).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::account::{self, FEE, Seeds};
use super::case::{Case, Found, to_clusters};
use super::ethereum::{self as eth, Asset};
use super::request::{
    Level, OPENING_BALANCES_FILE, OpeningBalances, Progress, Request, TraceError, check_balanced,
    check_stop_at, height_window, load_labels, min_value, parameters,
};
use super::seeds::seed_items_from;
use super::{Direction, Label, Params, PolicyResult};
use crate::types::{ix, n32, n64};

/// address → the cluster's name (its first address), from `cluster ethereum`.
fn cluster_names(data: &std::path::Path) -> Result<HashMap<String, String>, TraceError> {
    let dir = crate::cluster::clusters_dir(data, "ethereum");
    let rows = eth::address_clusters(&dir).map_err(|e| TraceError::Context {
        context: format!(
            "no Ethereum clusters in {}: run `chaintrace cluster ethereum --data {}` first",
            dir.display(),
            data.display()
        ),
        source: Box::new(TraceError::stage(e)),
    })?;
    // Cluster ids are the index of the cluster's first address in name order.
    let mut sorted: Vec<&(String, u32)> = rows.iter().collect();
    sorted.sort();
    let first: HashMap<u32, &str> = sorted
        .iter()
        .enumerate()
        .filter(|(i, (_, c))| n32(*i) == *c)
        .map(|(_, (a, c))| (*c, a.as_str()))
        .collect();
    Ok(rows
        .iter()
        .map(|(a, c)| (a.clone(), first.get(c).copied().unwrap_or(a).to_string()))
        .collect())
}

pub(crate) fn run(a: &Request, pb: &dyn Progress) -> Result<Case, TraceError> {
    let mut pols = a.policies.clone();
    if a.all_policies {
        pols.retain(|&p| account::unsupported(p).is_none());
    }
    for &p in &pols {
        if let Some(why) = account::unsupported(p) {
            return Err(TraceError::Input(why.to_string()));
        }
    }
    let chain = crate::ingest::ethereum::ingest::chain_dir(&a.data);
    let manifest = chain.join("_manifest.json");
    if !manifest.is_file() {
        return Err(TraceError::Input(format!(
            "{} holds no Ethereum dataset; run `chaintrace ingest ethereum --rpc URL --data {}` first",
            a.data.display(),
            a.data.display()
        )));
    }
    let manifest_doc = crate::store::manifest::Manifest::load(&chain).map_err(TraceError::stage)?;
    // A dataset ingested without call traces lacks every internal transfer.
    let no_traces = manifest_doc
        .as_ref()
        .and_then(|m| m.source.chain_selection.as_deref())
        == Some("traces none");
    let network = manifest_doc.map_or_else(|| "mainnet".to_string(), |m| m.network);
    let manifest_sha256 = crate::store::sink::sha256_file(&manifest).map_err(TraceError::stage)?;
    let asset = Asset::parse(&a.token, a.token_decimals, a.token_symbol.as_deref())
        .map_err(TraceError::stage)?;
    let times: Vec<(u64, u64)> = eth::block_times(&chain)
        .map_err(TraceError::stage)?
        .into_iter()
        .map(|(b, t)| (b, u64::from(t)))
        .collect();
    let (from_height, to_height) = height_window(a, &times)?;
    // Seeds as given: accounts (resolved to ids once every account is known) and hashes.
    let unit = asset.unit();
    let uses_clusters = a.uses_clusters();
    let clusters = if uses_clusters {
        Some(cluster_names(&a.data)?)
    } else {
        None
    };
    let mut seed_accounts: Vec<(String, String)> = Vec::new(); // (as given, address)
    let mut seed_txs: HashSet<String> = HashSet::new();
    for (given, origin) in seed_items_from(&a.seeds)? {
        // Messages name a seed read from a file by its file and line.
        let it = match &origin {
            Some(o) => format!("{given} (at {o})"),
            None => given.clone(),
        };
        let lower = given.to_ascii_lowercase();
        if let Some(x) = lower.strip_prefix("cluster:") {
            let names = clusters.as_ref().expect("loaded for cluster seeds");
            let name = names.get(x).ok_or_else(|| {
                TraceError::Input(format!("seed {it}: {x} is in no Ethereum cluster"))
            })?;
            seed_accounts.extend(
                names
                    .iter()
                    .filter(|(_, n)| *n == name)
                    .map(|(acc, _)| (String::new(), acc.clone())),
            );
        } else if lower.len() == 66
            && lower.starts_with("0x")
            && lower[2..].bytes().all(|b| b.is_ascii_hexdigit())
        {
            seed_txs.insert(lower);
        } else if eth::is_address(&lower) {
            if !crate::labels::eip55_ok(&given[2..]) {
                return Err(TraceError::Input(format!(
                    "seed {it}: the EIP-55 checksum of this mixed-case address fails: a character is mistyped; copy the address again"
                )));
            }
            seed_accounts.push((given, lower));
        } else {
            return Err(TraceError::Input(format!(
                "seed {it:?} is not an Ethereum account (0x + 40 hex), transaction hash (0x + 64 hex) or cluster:0x…"
            )));
        }
    }
    // Pass 1, part by part: every account, the opening balances, where the seed
    // transactions paid. Transfers after the window change nothing (backward rebuilds the
    // balances at its end from those before), so they are not read.
    let parts = eth::parts(&chain, &asset).map_err(TraceError::stage)?;
    let times: HashMap<u64, u32> = times.iter().map(|&(b, t)| (b, n32(t))).collect();
    pb.start(2 * n64(parts.len()));
    pb.message(&format!("{unit}: balances"));
    let mut accounts = eth::Accounts::default();
    let mut opening = account::Opening::default();
    let (mut transfers, mut nft, mut last_block) = (0usize, 0usize, 0u64);
    let mut incomplete: Vec<String> = Vec::new();
    let mut seed_tx_found: HashSet<String> = HashSet::new();
    let mut tx_recipients: BTreeSet<u32> = BTreeSet::new();
    let read = |part: &String, accounts: &mut eth::Accounts| {
        eth::chunk(
            &chain,
            &asset,
            std::slice::from_ref(part),
            to_height,
            &times,
            accounts,
        )
        .map_err(TraceError::stage)
    };
    for part in &parts {
        let c = read(part, &mut accounts)?;
        opening.feed(&c.transfers, accounts.names.len());
        transfers += c.transfers.len();
        nft += c.nft;
        incomplete.extend(c.incomplete.iter().cloned());
        last_block = last_block.max(c.transfers.last().map_or(0, |t| t.block));
        if !seed_txs.is_empty() {
            for t in c.transfers.iter().filter(|t| t.to != FEE && !t.unresolved) {
                let h = &c.txids[ix(t.tx)];
                if seed_txs.contains(h) {
                    seed_tx_found.insert(h.clone());
                    tx_recipients.insert(t.to);
                }
            }
        }
        pb.step();
    }
    if transfers == 0 {
        return Err(TraceError::stage(eth::nothing_to_trace(&asset, nft)));
    }
    if let Some(h) = seed_txs.iter().find(|h| !seed_tx_found.contains(*h)) {
        return Err(TraceError::Input(format!(
            "seed transaction {h} moved no {unit} in the dataset (wrong --token, or not ingested yet?)"
        )));
    }
    let mut seeds = Seeds {
        accounts: HashSet::new(),
        txs: seed_txs,
    };
    for (given, addr) in &seed_accounts {
        match accounts.id(addr) {
            Some(id) => {
                seeds.accounts.insert(id);
            }
            // A cluster member that never moved this asset has nothing to seed.
            None if given.is_empty() => {}
            None => {
                return Err(TraceError::Input(format!(
                    "seed account {given} has no {unit} transfer in the dataset (wrong --token, or not ingested yet?)"
                )));
            }
        }
    }
    if seeds.accounts.is_empty() && seeds.txs.is_empty() {
        // Only cluster seeds can select nothing: none of their accounts moved this asset.
        return Err(TraceError::Input(format!(
            "no account of the seed cluster(s) {} moved {unit} in the dataset: trace another asset (--token) or seed with accounts or transactions",
            a.seeds.join(", ")
        )));
    }
    // The node's opening balances: pass 1 again, each account starting from what the node
    // says it held before the dataset's first block.
    let mut short: Vec<String> = Vec::new();
    let mut opening_from = serde_json::Value::Null;
    if let Some(source) = &a.opening_balances {
        if !matches!(asset, Asset::Eth) {
            return Err(TraceError::Input(format!(
                "--opening-balances gives ETH balances; {unit} is a token (its balances would need balanceOf calls): leave it out"
            )));
        }
        let first = times.keys().min().copied().unwrap_or(0);
        let last = times.keys().max().copied().unwrap_or(0);
        let at = first.saturating_sub(1);
        let names: Vec<(u32, String)> = accounts
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| eth::is_address(n))
            .map(|(i, n)| (n32(i), n.clone()))
            .collect();
        let just: Vec<String> = names.iter().map(|x| x.1.clone()).collect();
        let (node, got) = opening_balances(a, source, &chain, last, at, &just, pb)?;
        opening = account::Opening::default();
        for ((id, _), b) in names.iter().zip(&got) {
            opening.preset(*id, *b);
        }
        for part in &parts {
            let c = read(part, &mut accounts)?;
            opening.feed(&c.transfers, accounts.names.len());
        }
        for ((id, name), b) in names.iter().zip(&got) {
            if opening.balances()[ix(*id)] > *b {
                short.push(name.clone());
            }
        }
        opening_from = serde_json::json!({
            "source": "eth_getBalance",
            "node": node,
            "at_block": at,
            "accounts": names.len(),
            "accounts_sending_more_than_the_node_says_they_held": short.len(),
        });
        if !short.is_empty() {
            eprintln!(
                "chaintrace: warning: {} account(s) send more in the dataset than the node says they held (first: {}): the dataset lacks receipts the node saw (no call traces?); their opening balance is raised to explain it",
                short.len(),
                short[0]
            );
        }
    }
    let (labels, resolved) = load_labels(a, "ethereum", "mainnet", |addrs| {
        addrs.iter().map(|addr| accounts.id(addr)).collect()
    })?;
    let stop_at = check_stop_at(a, &resolved)?;
    let direction = a.direction;
    let params = Params {
        direction,
        max_hops: a.max_hops,
        min_value: min_value(a, matches!(asset, Asset::Eth))?,
        from_height,
        to_height,
        stop_at: stop_at.clone(),
        through_coinjoins: a.through_coinjoins,
        before_labels: Default::default(),
    };
    // Pass 2: every model replays the parts (backward: newest first).
    pb.message(&format!("{unit}: {transfers} transfers, replaying"));
    let mut runs: Vec<account::Run> = pols
        .iter()
        .map(|&p| account::Run::new(p, &params, &seeds, &labels, &opening))
        .collect();
    let order: Vec<&String> = match direction {
        Direction::Forward => parts.iter().collect(),
        Direction::Backward => parts.iter().rev().collect(),
    };
    // The models' edges and taint grow with the replay: watched against the budget after
    // each part, as a Bitcoin trace's walks are.
    let mut watch = super::run_bitcoin::walk_watch();
    let n_parts = order.len();
    for (k, part) in order.into_iter().enumerate() {
        let c = read(part, &mut accounts)?;
        for r in &mut runs {
            r.feed(&accounts.names, &c.txids, &c.transfers);
        }
        if watch.interrupted() {
            return Err(TraceError::Interrupted);
        }
        watch.check().map_err(|o| {
            let progress = format!(
                "the replay had read {} of the dataset's {n_parts} parts ({} accounts),",
                k + 1,
                accounts.names.len()
            );
            super::run_bitcoin::outgrown(&progress, &o)
        })?;
        pb.step();
    }
    let mut results: Vec<PolicyResult> = runs
        .into_iter()
        .map(|r| r.finish(&accounts.names))
        .collect();
    pb.finish();
    check_balanced(&results)?;
    let name_of = |acc: &str| -> String {
        match (&clusters, a.level) {
            (Some(c), Level::Cluster) => c.get(acc).cloned().unwrap_or_else(|| acc.to_string()),
            _ => acc.to_string(),
        }
    };
    if a.level == Level::Cluster {
        to_clusters(&mut results, &name_of);
    }
    let mut seed_nodes: BTreeSet<String> = seeds
        .accounts
        .iter()
        .map(|&s| name_of(&accounts.names[ix(s)]))
        .collect();
    seed_nodes.extend(
        tx_recipients
            .iter()
            .map(|&t| name_of(&accounts.names[ix(t)])),
    );
    let clustering = if uses_clusters {
        let dir = crate::cluster::clusters_dir(&a.data, "ethereum");
        std::fs::read(dir.join("_meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    } else {
        serde_json::Value::Null
    };
    let asset_doc = match &asset {
        Asset::Eth => serde_json::json!({"unit": unit, "decimals": 18, "contract": null}),
        Asset::Token {
            contract, decimals, ..
        } => {
            serde_json::json!({"unit": unit, "decimals": decimals.unwrap_or(0), "contract": contract})
        }
    };
    let mut parameters = parameters(
        a,
        &pols,
        [from_height, to_height.min(last_block)],
        labels.len(),
    );
    parameters["seed_accounts"] = seeds.accounts.len().into();
    parameters["stop_at"] = stop_at.clone().into();
    parameters["labels_private_ignored"] = resolved.private_ignored.into();
    parameters["seed_transactions"] = seeds.txs.len().into();
    parameters["asset"] = unit.clone().into();
    if !incomplete.is_empty() {
        parameters["incomplete_internal_transfers"] = incomplete.clone().into();
    }
    parameters["transfers"] = transfers.into();
    if no_traces && matches!(asset, Asset::Eth) {
        parameters["call_traces"] = "none".into();
        eprintln!(
            "chaintrace: warning: the dataset was ingested without call traces (--traces none): ETH moved by internal calls (contracts forwarding, SELFDESTRUCTs) is missing, so contracts may look as if they still hold it; re-ingest with --traces geth or parity"
        );
    }
    if !opening_from.is_null() {
        parameters["opening_balances"] = opening_from;
    }
    let mut labelled: Vec<(&u32, &Label)> = labels.iter().collect();
    labelled.sort_by_key(|(id, _)| **id);
    Case::assemble(
        a,
        Found {
            chain: "ethereum",
            network,
            manifest_sha256,
            asset: Some(asset_doc),
            seeds: format!(
                "{} seed account(s) and {} seed transaction(s), {unit}",
                seeds.accounts.len(),
                seeds.txs.len()
            ),
            seed_nodes,
            clustering,
            parameters,
            labels: labels.len(),
            resolved: &resolved,
            results,
        },
        labelled
            .into_iter()
            .map(|(&id, l)| (std::borrow::Cow::Owned(name_of(&accounts.names[ix(id)])), l)),
        |addr| accounts.id(addr).map(|_| name_of(addr)),
    )
}

/// Every account's balance (wei) at block `at` for an ETH trace: asked of the node (and
/// kept in `chain/`[`OPENING_BALANCES_FILE`] for replays), or read from what an earlier
/// trace kept there. Returns the node's URL (secrets hidden) and the balances, in
/// `accounts` order.
///
/// # Errors
/// The node fails or follows another chain; nothing kept, kept at another block, or
/// lacking an account.
fn opening_balances(
    a: &Request,
    source: &OpeningBalances,
    chain: &Path,
    last: u64,
    at: u64,
    accounts: &[String],
    pb: &dyn Progress,
) -> Result<(String, Vec<u128>), TraceError> {
    let file = chain.join(OPENING_BALANCES_FILE);
    match source {
        OpeningBalances::Node(cfg) => {
            pb.message(&format!(
                "ETH: opening balances of {} accounts from the node",
                accounts.len()
            ));
            let client = crate::ingest::bitcoin::rpc::RpcClient::new(cfg.clone())
                .map_err(TraceError::stage)?
                .jsonrpc2();
            let got = crate::ingest::ethereum::check::node_balances(
                client,
                &a.data,
                last,
                accounts,
                &[at],
                &indicatif::ProgressBar::hidden(),
            )
            .map_err(TraceError::stage)?;
            let got: Vec<u128> = got.into_iter().map(|b| b[0]).collect();
            let node = crate::ingest::bitcoin::rpc::redact_text(&cfg.url);
            let balances: std::collections::BTreeMap<&str, String> = accounts
                .iter()
                .map(String::as_str)
                .zip(got.iter().map(u128::to_string))
                .collect();
            let doc = serde_json::json!({"at_block": at, "node": node, "balances": balances});
            let mut bytes = serde_json::to_vec_pretty(&doc).expect("balances serialise");
            bytes.push(b'\n');
            crate::store::sink::write_atomic(&file, &bytes).map_err(TraceError::stage)?;
            Ok((node, got))
        }
        OpeningBalances::Cached => {
            let missing = || {
                TraceError::Input(format!(
                    "no opening balances kept in {} for this dataset (block {at}): run the trace once with --opening-balances URL (the node's JSON-RPC)",
                    file.display()
                ))
            };
            let bytes = std::fs::read(&file).map_err(|_| missing())?;
            let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| missing())?;
            if doc["at_block"].as_u64() != Some(at) {
                return Err(TraceError::Input(format!(
                    "the opening balances kept in {} are at block {}, and this dataset starts after block {at}: fetch them again with --opening-balances URL",
                    file.display(),
                    doc["at_block"]
                )));
            }
            let mut out = Vec::with_capacity(accounts.len());
            for acc in accounts {
                let v = doc["balances"][acc.as_str()]
                    .as_str()
                    .and_then(|t| t.parse::<u128>().ok())
                    .ok_or_else(|| {
                        TraceError::Input(format!(
                            "the opening balances kept in {} lack account {acc} (the dataset grew since): fetch them again with --opening-balances URL",
                            file.display()
                        ))
                    })?;
                out.push(v);
            }
            Ok((doc["node"].as_str().unwrap_or("").to_string(), out))
        }
    }
}
