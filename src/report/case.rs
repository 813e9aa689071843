//! A trace's case folder (`trace.json`), as the report reads it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The tag behind an address's name in a case.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Attribution {
    pub entity: String,
    pub category: String,
    #[serde(default)]
    pub label: String,
    pub source: String,
    pub confidence: String,
    pub tag: String,
}

/// A label of a node.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct NodeLabel {
    pub entity: String,
    pub category: String,
}

/// One transfer of the trace (the trace's own type).
pub use crate::trace::Edge as Transfer;

/// The address a transfer paid: `to_address`, or `to` in cases written before it existed.
pub fn paid_address(e: &Transfer) -> &str {
    if e.to_address.is_empty() {
        &e.to
    } else {
        &e.to_address
    }
}

/// Where traced value ended (an exit or a holding).
#[derive(Clone, Debug, Deserialize)]
pub struct End {
    pub kind: String,
    pub txid: String,
    pub vout: u32,
    pub address: String,
    pub amount: crate::trace::Amount,
    pub hop: u32,
    pub entity: Option<String>,
    pub category: Option<String>,
    /// The cluster holding `address` (`--level cluster`).
    #[serde(default)]
    pub cluster: Option<String>,
    /// The whole value of the output (transfer) `amount` is part of.
    #[serde(default)]
    pub output_value: Option<crate::trace::Amount>,
    /// For a `coinjoin` end: `TXID (pattern)` of the CoinJoin.
    #[serde(default)]
    pub coinjoin: Option<String>,
    #[serde(default)]
    pub path: Vec<String>,
}

/// Where all the seeded value ended (the trace's own type).
pub use crate::trace::Totals;

/// One policy's result.
#[derive(Clone, Debug, Deserialize)]
pub struct PolicyResult {
    pub policy: String,
    pub totals: Totals,
    pub edges: Vec<Transfer>,
    pub ends: Vec<End>,
    pub exposure_entity: BTreeMap<String, crate::trace::Amount>,
    pub exposure_category: BTreeMap<String, crate::trace::Amount>,
}

/// The traced asset of an account-model trace.
#[derive(Clone, Debug, Deserialize)]
pub struct Asset {
    pub unit: String,
    pub decimals: u32,
    pub contract: Option<String>,
}

/// A case: the trace's question and answers.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// `trace.json`'s format ([`crate::trace::case::CASE_FORMAT`]); 0 before versioning.
    #[serde(default)]
    pub format_version: u32,
    pub tool: String,
    pub chain: String,
    pub network: String,
    /// The traced asset on account chains (ETH, or a token with its decimals).
    #[serde(default)]
    pub asset: Option<Asset>,
    pub dataset_manifest_sha256: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub data: Option<String>,
    /// sha256 of every input the trace read besides the dataset's parts (newer cases).
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub seed_nodes: Vec<String>,
    #[serde(default)]
    pub node_labels: BTreeMap<String, NodeLabel>,
    /// Address → the tag that names it (entity, category, label, source, confidence, tag =
    /// FILE:LINE).
    #[serde(default)]
    pub attributions: BTreeMap<String, Attribution>,
    /// Each model's definition when the trace was made (newer cases).
    #[serde(default)]
    pub methodology: BTreeMap<String, String>,
    /// Addresses of the trace whose tags disagree (the tag used and why).
    #[serde(default)]
    pub label_conflicts: Vec<crate::labels::Conflict>,
    #[serde(default)]
    pub clustering: Option<serde_json::Value>,
    pub parameters: serde_json::Value,
    pub results: Vec<PolicyResult>,
    /// sha256 of `trace.json` (filled in when loading).
    #[serde(skip)]
    pub trace_sha256: String,
}

impl Case {
    /// Reads `dir/trace.json`.
    ///
    /// # Errors
    /// A missing or malformed file, or a trace with no result.
    pub fn load(dir: &Path) -> Result<Case, super::ReportError> {
        let path = dir.join("trace.json");
        if !path.exists() && dir.join(crate::case::META_FILE).is_file() {
            return Err(super::ReportError::Input(format!(
                "{} holds no trace yet (no trace.json): run `chaintrace trace --seed … --out {}` first",
                dir.display(),
                dir.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            super::ReportError::Input(format!(
                "cannot read {}: {e}; is {} a case folder written by `chaintrace trace --out`?",
                path.display(),
                dir.display()
            ))
        })?;
        // The version and tool alone (the rest read past, not built into a JSON tree).
        #[derive(serde::Deserialize)]
        struct Written {
            #[serde(default)]
            format_version: u64,
            #[serde(default)]
            tool: String,
        }
        let written = serde_json::from_slice::<Written>(&bytes).ok();
        let version = written.as_ref().map_or(0, |w| w.format_version);
        if version > u64::from(crate::trace::case::CASE_FORMAT) {
            return Err(super::ReportError::Input(format!(
                "{} is case format {version}, written by a newer chaintrace ({}); this version ({}) reads up to format {}: use that version, or trace again with this one",
                path.display(),
                written.map(|w| w.tool).unwrap_or_default(),
                crate::VERSION,
                crate::trace::case::CASE_FORMAT
            )));
        }
        let mut case: Case =
            serde_json::from_slice(&bytes).map_err(|source| super::ReportError::Parse {
                context: format!(
                    "{} is not a trace written by this version of chaintrace; run the trace again",
                    path.display()
                ),
                source,
            })?;
        if case.results.is_empty() {
            return Err(super::ReportError::Input(format!(
                "{} holds no policy result",
                path.display()
            )));
        }
        use bitcoin::hashes::Hash;
        case.trace_sha256 = bitcoin::hashes::sha256::Hash::hash(&bytes).to_string();
        // Cases written before `entered_seeds` existed: its default 0 would read as
        // "nothing entered". Their best figure is what their engine counted: seeded minus
        // what flowed back into seeds.
        let old = !String::from_utf8_lossy(&bytes).contains("\"entered_seeds\"");
        if old {
            for r in &mut case.results {
                r.totals.entered_seeds = r.totals.seeded.saturating_sub(r.totals.returned_to_seeds);
            }
        }
        Ok(case)
    }

    /// A parameter as text ("" when absent or null).
    pub fn param(&self, key: &str) -> String {
        match self.parameters.get(key) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            Some(v) => v.to_string(),
        }
    }

    /// The unit of amounts (BTC; ETH or the token's symbol on Ethereum).
    pub fn unit(&self) -> &str {
        match &self.asset {
            Some(a) => &a.unit,
            None if self.chain == "ethereum" => "ETH",
            None => "BTC",
        }
    }

    /// The number of base units (satoshi, wei, token units) per coin, as decimal places.
    pub fn decimals(&self) -> u32 {
        match &self.asset {
            Some(a) => a.decimals,
            None if self.chain == "ethereum" => 18,
            None => 8,
        }
    }
}
