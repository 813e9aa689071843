//! `chaintrace watch`: follows a chain's tip and alerts when a watched address (or a
//! cluster grown from one, or an item of a partner's watchlist) receives, spends, or pays an
//! exchange.
//!
//! Each poll reads the new blocks since the last one seen (Bitcoin Core RPC `getblock` with
//! verbosity 3, whose inputs carry their prevouts; Ethereum JSON-RPC
//! `eth_getBlockByNumber` with full transactions), first walking back from the last seen
//! block until the node's hash agrees (a reorganisation): alerts on blocks that left the
//! chain are **retracted** (a retraction file beside them). Every alert is a small
//! evidence bundle, `ALERTS/<time>-<txid>.json`; each poll with news writes one digest,
//! `ALERTS/digest-<time>.json`, and calls `--alert-cmd DIGEST ALERT...` once. The state
//! (blocks seen, alerts issued, addresses added to watched clusters) is `ALERTS/state.json`,
//! written atomically after each poll: a restart neither loses nor repeats an alert.

pub mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::trace::Amount;

/// Blocks remembered for finding a reorganisation's fork point.
pub const KEEP_BLOCKS: usize = 200;

/// One transaction as the watcher sees it: addresses and values of inputs and outputs
/// (satoshi or wei). Inputs without an address (coinbase, non-standard) have `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    pub txid: String,
    pub inputs: Vec<(Option<String>, Amount)>,
    pub outputs: Vec<(Option<String>, Amount)>,
}

/// A block: height, hash, parent, time and transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub height: u64,
    pub hash: String,
    pub parent: String,
    pub time: u64,
    pub txs: Vec<Tx>,
}

/// The persisted state of a watch (`ALERTS/state.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The source it follows (its URL with secrets hidden): a state is not reused for
    /// another chain.
    pub source: String,
    pub chain: String,
    /// The last blocks processed, `(height, hash)`, oldest first.
    pub blocks: Vec<(u64, String)>,
    /// Alerts issued: id (`BLOCKHASH:TXID`) → (height, file, retracted).
    pub alerts: BTreeMap<String, AlertRecord>,
    /// Addresses added to the watch by `--watch-clusters` (multi-input links), with the
    /// watched address they were linked to.
    pub linked: BTreeMap<String, String>,
    /// Digests not yet delivered to `--alert-cmd` (it failed or could not run): retried,
    /// oldest first, at every poll until it succeeds.
    #[serde(default)]
    pub pending: Vec<String>,
}

/// An alert issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub height: u64,
    pub file: String,
    pub retracted: Option<String>,
}

impl State {
    /// Reads `dir/state.json` (a new state when there is none).
    ///
    /// # Errors
    /// An unreadable or damaged file.
    pub fn load(dir: &Path) -> anyhow::Result<Option<State>> {
        let p = dir.join("state.json");
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| {
                anyhow::anyhow!(
                    "{} is damaged ({e}); move it away to start the watch afresh (alerts already written stay)",
                    p.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", p.display())),
        }
    }

    /// Writes `dir/state.json` atomically.
    ///
    /// # Errors
    /// It cannot be written.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let mut b = serde_json::to_vec_pretty(self).expect("states serialise");
        b.push(b'\n');
        crate::store::sink::write_atomic(&dir.join("state.json"), &b)?;
        Ok(())
    }

    /// The last block processed.
    pub fn tip(&self) -> Option<&(u64, String)> {
        self.blocks.last()
    }

    fn push_block(&mut self, height: u64, hash: &str) {
        self.blocks.push((height, hash.to_string()));
        if self.blocks.len() > KEEP_BLOCKS {
            let cut = self.blocks.len() - KEEP_BLOCKS;
            self.blocks.drain(..cut);
        }
    }
}

/// What is watched.
#[derive(Debug, Default)]
pub struct Watched {
    /// Addresses, normalised (bech32 and 0x in lower case), with why each is watched.
    pub addresses: BTreeMap<String, String>,
    /// Partners' watchlists: (file name, key, list).
    pub lists: Vec<(String, crate::share::Key, crate::share::Watchlist)>,
    /// Labels of exchanges (address → entity): a watched spend paying one is an `exchange`
    /// alert.
    pub exchanges: BTreeMap<String, String>,
    /// Grow watched sets by the multi-input rule as new transactions link to them.
    pub clusters: bool,
}

/// An address in the form the watcher compares: lower case for bech32 and 0x.
pub fn normal(a: &str) -> String {
    let l = a.to_ascii_lowercase();
    if l.starts_with("0x") || l.starts_with("bc1") || l.starts_with("tb1") || l.starts_with("bcrt1")
    {
        l
    } else {
        a.to_string()
    }
}

impl Watched {
    /// Why `address` is watched, if it is.
    fn why(&self, chain: &str, address: &str, linked: &BTreeMap<String, String>) -> Option<String> {
        let a = normal(address);
        if let Some(w) = self.addresses.get(&a) {
            return Some(w.clone());
        }
        if let Some(root) = linked.get(&a) {
            return Some(format!("cluster of {root} (multi-input)"));
        }
        let item = crate::share::item(chain, &a);
        self.lists.iter().find_map(|(name, key, list)| {
            list.matcher().contains(key, &item).then(|| {
                format!(
                    "watchlist {name} (possible; request reference {})",
                    crate::share::reference(key, &item)
                )
            })
        })
    }
}

/// What one poll did.
#[derive(Debug, Default)]
pub struct Poll {
    pub tip: u64,
    pub blocks: usize,
    /// Files of new alerts.
    pub alerts: Vec<PathBuf>,
    /// Files of retractions.
    pub retracted: Vec<PathBuf>,
    /// The digest written (when there was news).
    pub digest: Option<PathBuf>,
    /// Why `--alert-cmd` failed this poll (its digests stay pending).
    pub delivery_error: Option<String>,
    /// Why the poll stopped before the tip (the blocks before are done and saved).
    pub failure: Option<String>,
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// The alert for `tx` in `block`, if it touches a watched item (and the addresses it
/// links to watched ones, for `--watch-clusters`): the JSON bundle without the fields of
/// the moment (`confirmations`, `detected_at`, `source`, `tool`).
pub fn alert_for(
    chain: &str,
    w: &Watched,
    state: &State,
    block: &Block,
    tx: &Tx,
) -> (Option<Value>, Vec<(String, String)>) {
    let mut matches = Vec::new();
    let mut spent: Amount = 0;
    let mut root = None;
    for (a, v) in &tx.inputs {
        if let Some(a) = a
            && let Some(why) = w.why(chain, a, &state.linked)
        {
            spent += *v;
            root.get_or_insert_with(|| normal(a));
            matches.push(
                json!({"kind": "spend", "address": a, "value": v.to_string(), "watched_as": why}),
            );
        }
    }
    let mut links = Vec::new();
    if w.clusters
        && let Some(r) = &root
    {
        for a in tx.inputs.iter().filter_map(|x| x.0.as_ref()) {
            let n = normal(a);
            if w.why(chain, &n, &state.linked).is_none() {
                links.push((n, r.clone()));
            }
        }
    }
    let from_watched = !matches.is_empty();
    for (a, v) in &tx.outputs {
        let Some(a) = a else { continue };
        if let Some(ex) = w.exchanges.get(&normal(a))
            && from_watched
        {
            matches.push(
                json!({"kind": "exchange", "address": a, "value": v.to_string(), "exchange": ex}),
            );
        }
        if !from_watched && let Some(why) = w.why(chain, a, &state.linked) {
            matches.push(
                json!({"kind": "receive", "address": a, "value": v.to_string(), "watched_as": why}),
            );
        }
    }
    if matches.is_empty() {
        return (None, links);
    }
    let side = |xs: &[(Option<String>, Amount)]| -> Vec<Value> {
        xs.iter()
            .map(|(a, v)| {
                json!({"address": a, "value": v.to_string(),
                    "exchange": a.as_ref().and_then(|a| w.exchanges.get(&normal(a)))})
            })
            .collect()
    };
    let kinds: BTreeSet<&str> = matches.iter().filter_map(|m| m["kind"].as_str()).collect();
    (
        Some(json!({
            "id": format!("{}:{}", block.hash, tx.txid),
            "kinds": kinds,
            "chain": chain,
            "txid": tx.txid,
            "block_hash": block.hash,
            "height": block.height,
            "block_time": block.time,
            "unit": if chain == "ethereum" { "wei" } else { "sat" },
            "moved_from_watched": spent.to_string(),
            "matches": matches,
            "one_hop": {"from": side(&tx.inputs), "to": side(&tx.outputs)},
        })),
        links,
    )
}

/// Runs one poll of `src`: rolls back a reorganisation (retracting its alerts), then
/// processes every block up to the tip, writing alerts, a digest and the state into `dir`,
/// and calling `alert_cmd` once with the digest and the new alert files.
///
/// # Errors
/// The source fails (the state stays as the last completed poll left it), a file cannot be
/// written, the alert command cannot be started.
pub async fn poll(
    src: &source::Source,
    w: &Watched,
    state: &mut State,
    dir: &Path,
    alert_cmd: Option<&str>,
    tool: &str,
) -> anyhow::Result<Poll> {
    let chain = src.chain();
    let tip = src.tip().await?;
    let mut out = Poll {
        tip,
        ..Poll::default()
    };
    // A first poll starts at the tip: alerts are for blocks mined after the watch began.
    if state.blocks.is_empty() {
        let hash = src.hash_at(tip).await?;
        state.push_block(tip, &hash);
        state.save(dir)?;
        return Ok(out);
    }
    // Reorganisation: the newest block seen that the node still has is the fork point.
    // Found before anything changes: a node on another chain changes nothing.
    let mut keep = None;
    for (i, (h, hash)) in state.blocks.iter().enumerate().rev() {
        if *h <= tip && src.hash_at(*h).await? == *hash {
            keep = Some(i);
            break;
        }
    }
    let Some(keep) = keep else {
        anyhow::bail!(
            "the node's chain shares none of the last {} blocks this watch saw: a different chain or a reorganisation deeper than that; nothing was changed — check the source, or move {} away to start afresh",
            state.blocks.len(),
            dir.join("state.json").display()
        );
    };
    let gone_blocks: Vec<(u64, String)> = state.blocks.drain(keep + 1..).collect();
    for (h, hash) in gone_blocks.iter().rev() {
        let gone: Vec<String> = state
            .alerts
            .iter()
            .filter(|(_, r)| r.height == *h && r.retracted.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let f = dir.join(format!(
                "{}-{}-retracted.json",
                stamp(),
                id.split(':').nth(1).unwrap_or("")
            ));
            let body = json!({"retracts": id, "height": h, "block_hash": hash,
                "reason": format!("block {h} ({hash}) left the chain in a reorganisation; the transaction may confirm again in another block, which would raise a new alert"),
                "tool": tool});
            write_json(&f, &body)?;
            if let Some(r) = state.alerts.get_mut(&id) {
                r.retracted = Some(file_name(&f));
            }
            out.retracted.push(f);
        }
    }
    let from = state.tip().map_or(tip, |t| t.0 + 1);
    for h in from..=tip {
        let block = match src.block(h).await {
            Ok(b) => b,
            Err(e) => {
                // What was done is kept (state, alerts, their digest); the rest next poll.
                out.failure = Some(format!("{e:#}"));
                break;
            }
        };
        if let Some((_, last)) = state.tip()
            && block.parent != *last
        {
            // The chain moved under us between calls: the next poll rolls back.
            break;
        }
        for tx in &block.txs {
            let (alert, links) = alert_for(chain, w, state, &block, tx);
            for (a, r) in links {
                state.linked.entry(a).or_insert(r);
            }
            let Some(mut alert) = alert else { continue };
            let id = alert["id"].as_str().unwrap_or_default().to_string();
            if state.alerts.contains_key(&id) {
                continue;
            }
            alert["confirmations"] = json!(tip - block.height + 1);
            alert["detected_at"] =
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            alert["source"] = json!(state.source);
            alert["tool"] = json!(tool);
            let f = dir.join(format!("{}-{}.json", stamp(), tx.txid));
            write_json(&f, &alert)?;
            state.alerts.insert(
                id,
                AlertRecord {
                    height: block.height,
                    file: file_name(&f),
                    retracted: None,
                },
            );
            out.alerts.push(f);
        }
        state.push_block(block.height, &block.hash);
        out.blocks += 1;
        // After each block: a crash loses nothing done and repeats nothing.
        state.save(dir)?;
    }
    if !out.alerts.is_empty() || !out.retracted.is_empty() {
        let d = dir.join(format!("digest-{}.json", stamp()));
        write_json(
            &d,
            &json!({"tip": tip, "blocks": out.blocks, "source": state.source, "tool": tool,
                "alerts": out.alerts.iter().map(|p| file_name(p)).collect::<Vec<_>>(),
                "retracted": out.retracted.iter().map(|p| file_name(p)).collect::<Vec<_>>()}),
        )?;
        if alert_cmd.is_some() {
            state.pending.push(file_name(&d));
        }
        out.digest = Some(d);
    }
    // The state first: a crash after it never repeats these alerts, and the digests it has
    // not delivered stay pending.
    state.save(dir)?;
    if let Some(cmd) = alert_cmd {
        while let Some(d) = state.pending.first().cloned() {
            match deliver(cmd, dir, &d) {
                Ok(()) => {
                    state.pending.remove(0);
                    state.save(dir)?;
                }
                Err(e) => {
                    out.delivery_error = Some(e);
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Runs `cmd DIGEST FILE...` for the digest `name` in `dir` (its alert and retraction
/// files as further arguments).
fn deliver(cmd: &str, dir: &Path, name: &str) -> Result<(), String> {
    let d = dir.join(name);
    let v: Value = std::fs::read(&d)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("cannot read the digest {}", d.display()))?;
    let files: Vec<PathBuf> = ["alerts", "retracted"]
        .iter()
        .flat_map(|k| v[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(|f| dir.join(f)))
        .collect();
    let status = std::process::Command::new(cmd)
        .arg(&d)
        .args(&files)
        .status()
        .map_err(|e| format!("--alert-cmd {cmd}: cannot run it: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "--alert-cmd {cmd} exited with {status} for {}",
            d.display()
        ))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_json(p: &Path, v: &Value) -> anyhow::Result<()> {
    let mut b = serde_json::to_vec_pretty(v).expect("values serialise");
    b.push(b'\n');
    crate::store::sink::write_atomic(p, &b)?;
    Ok(())
}
