//! A trace request, checked once, and its run: seeds resolved on the dataset, labels
//! selected, every model run, the result made a [`Case`] that [`Case::write`] puts in a
//! case folder. The command line (`chaintrace trace`) and any other front end build a
//! [`Request`] and call [`Request::run`]:
//!
//! ```no_run
//! use chaintrace::trace::policy::Policy;
//! use chaintrace::trace::request::{Level, Request};
//! let case = Request::bitcoin("data")
//!     .seeds(["bcrt1q…", "cluster:bcrt1q…"])
//!     .policies([Policy::Fifo, Policy::Haircut])
//!     .stop_at(["exchange"])
//!     .level(Level::Cluster)
//!     .run(&())?;
//! case.write(std::path::Path::new("case"), &["my-tool".to_string()], 0)?;
//! # Ok::<(), chaintrace::trace::request::TraceError>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use thiserror::Error;

use super::case::Case;
use super::policy::Policy;
pub use super::run_bitcoin::chain_dir;
use super::{Amount, Direction, Label, MinShare, PolicyResult};

/// Why a trace could not be made.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The request or an input it names is wrong: a seed, a window, a unit, a category, a
    /// missing dataset (the user can fix it; exit 1).
    #[error("{0}")]
    Input(String),
    /// An input failed with its own stage's error (index, labels, clusters, files).
    #[error(transparent)]
    Stage(Box<dyn std::error::Error + Send + Sync>),
    /// Where in the request an error arose (`seed at FILE:LINE`), and the error.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<TraceError>,
    },
    /// A defect of chaintrace: a conserving model that does not balance (exit 2).
    #[error("internal error: {0}")]
    Internal(String),
    /// Stopped by Ctrl-C (SIGINT) or SIGTERM before anything was written ([`crate::ingest::interrupted`]).
    #[error("interrupted before the case was written; the case folder is as it was")]
    Interrupted,
}

impl TraceError {
    /// Wraps another stage's error.
    pub fn stage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> TraceError {
        TraceError::Stage(e.into())
    }

    /// True for a stop asked by the user (Ctrl-C).
    pub fn is_interrupted(&self) -> bool {
        match self {
            TraceError::Interrupted => true,
            TraceError::Context { source, .. } => source.is_interrupted(),
            _ => false,
        }
    }

    /// True for a defect of chaintrace rather than of its input.
    pub fn is_internal(&self) -> bool {
        match self {
            TraceError::Internal(_) => true,
            TraceError::Context { source, .. } => source.is_internal(),
            _ => false,
        }
    }
}

/// Progress of a long trace (the Ethereum replay reads every part twice): a front end
/// draws it; `()` ignores it.
pub trait Progress {
    /// The work ahead, in steps.
    fn start(&self, steps: u64);
    /// One step done.
    fn step(&self);
    /// What is being done.
    fn message(&self, text: &str);
    /// Done.
    fn finish(&self);
}

impl Progress for () {
    fn start(&self, _: u64) {}
    fn step(&self) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}

/// The chain a request traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chain {
    /// Bitcoin's UTXO model: outputs are traced.
    Bitcoin,
    /// Ethereum's account model ([`super::account`]): balances are traced.
    Ethereum,
}

impl Chain {
    /// `bitcoin` or `ethereum`.
    pub fn name(self) -> &'static str {
        match self {
            Chain::Bitcoin => "bitcoin",
            Chain::Ethereum => "ethereum",
        }
    }
}

/// The nodes of a trace: addresses, or the clusters of `chaintrace cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Address,
    Cluster,
}

impl Level {
    /// `address` or `cluster`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Address => "address",
            Level::Cluster => "cluster",
        }
    }
}

impl Direction {
    /// `forward` or `backward`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        }
    }
}

/// What to trace, checked once. Its defaults are the command line's (`chaintrace trace
/// --help` documents each field as a flag of the same name).
#[derive(Clone, Debug)]
pub struct Request {
    /// The dataset directory (`--data`).
    pub data: PathBuf,
    /// Bitcoin network (`bitcoin`, `testnet`, …); `None`: the only one in `data`.
    pub network: Option<String>,
    pub chain: Chain,
    /// Ethereum asset: `eth`, or an ERC-20 contract address.
    pub token: String,
    pub token_decimals: Option<u32>,
    pub token_symbol: Option<String>,
    /// Seeds as given: ADDRESS, TXID, TXID:VOUT, `cluster:ADDRESS`, `@FILE`.
    pub seeds: Vec<String>,
    pub direction: Direction,
    /// The models, in [`Policy`] order, without repeats.
    pub policies: Vec<Policy>,
    /// `all` was asked: on Ethereum the models the account model cannot run are left out
    /// instead of refused.
    pub all_policies: bool,
    pub max_hops: u32,
    /// Smallest output (or transfer) followed, in base units with its unit family.
    pub min_value: MinValue,
    /// Categories where the trace stops as given (empty: `exchange` when a label has it;
    /// `none`: nowhere).
    pub stop_at: Vec<String>,
    pub from_height: u64,
    pub to_height: u64,
    pub from_time: Option<String>,
    pub to_time: Option<String>,
    pub include_private: bool,
    /// Exits below this share of their deposit are not listed in summaries.
    pub min_share: MinShare,
    pub through_coinjoins: bool,
    pub allow_conflicted_cluster: bool,
    pub max_seed_cluster: usize,
    /// Sources or files whose tags win conflicts (`--prefer`).
    pub prefer: Vec<String>,
    pub level: Level,
    /// Ethereum (ETH): take every account's opening balance from this node
    /// (`eth_getBalance` at the block before the dataset's first; an archive node for old
    /// blocks) instead of the least balance that explains what the dataset shows it
    /// sending. Genesis allocations and balances older than the dataset then count: they
    /// dilute haircut shares and come first under FIFO.
    pub opening_balances: Option<OpeningBalances>,
}

/// Where an Ethereum trace takes every account's opening balance from (see
/// [`Request::opening_balances`]).
#[derive(Clone, Debug)]
pub enum OpeningBalances {
    /// This node's `eth_getBalance`; what it answers is kept in the dataset
    /// ([`OPENING_BALANCES_FILE`]) for replays.
    Node(crate::ingest::bitcoin::rpc::RpcConfig),
    /// What an earlier trace kept in the dataset (offline: `case verify` replays with it).
    Cached,
}

/// The node's opening balances an Ethereum trace fetched, in the dataset's `ethereum/`
/// folder: `{"at_block", "node" (secrets hidden), "balances": {account: wei text}}`. A
/// case that used them lists its sha256 among its inputs.
pub const OPENING_BALANCES_FILE: &str = "opening_balances.json";

impl Request {
    /// A Bitcoin trace of the dataset in `data`, with the command line's defaults: forward,
    /// haircut, 20 hops, no minimum, every height, address level.
    pub fn bitcoin(data: impl Into<PathBuf>) -> Request {
        Request {
            data: data.into(),
            network: None,
            chain: Chain::Bitcoin,
            token: "eth".to_string(),
            token_decimals: None,
            token_symbol: None,
            seeds: Vec::new(),
            direction: Direction::Forward,
            policies: vec![Policy::Haircut],
            all_policies: false,
            max_hops: 20,
            min_value: MinValue {
                amount: 0,
                unit: MinValueUnit::Base,
                text: "0".to_string(),
            },
            stop_at: Vec::new(),
            from_height: 0,
            to_height: u64::MAX,
            from_time: None,
            to_time: None,
            include_private: false,
            min_share: MinShare::default(),
            through_coinjoins: false,
            allow_conflicted_cluster: false,
            max_seed_cluster: 10_000,
            prefer: Vec::new(),
            level: Level::Address,
            opening_balances: None,
        }
    }

    /// An Ethereum trace (of ETH unless [`Request::token`] says otherwise).
    pub fn ethereum(data: impl Into<PathBuf>) -> Request {
        Request {
            chain: Chain::Ethereum,
            ..Request::bitcoin(data)
        }
    }

    /// The seeds (see [`Request::seeds`] field).
    #[must_use]
    pub fn seeds<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Request {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// The models to run.
    #[must_use]
    pub fn policies(mut self, p: impl IntoIterator<Item = Policy>) -> Request {
        let mut v: Vec<Policy> = p.into_iter().collect();
        v.sort();
        v.dedup();
        self.policies = v;
        self
    }

    /// The categories where the trace stops.
    #[must_use]
    pub fn stop_at<S: Into<String>>(mut self, c: impl IntoIterator<Item = S>) -> Request {
        self.stop_at = c.into_iter().map(Into::into).collect();
        self
    }

    /// Address or cluster level.
    #[must_use]
    pub fn level(mut self, level: Level) -> Request {
        self.level = level;
        self
    }

    /// Forward (where did it go) or backward (where did it come from).
    #[must_use]
    pub fn direction(mut self, d: Direction) -> Request {
        self.direction = d;
        self
    }

    /// The asset of an Ethereum trace: `eth` or an ERC-20 contract address.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Request {
        self.token = token.into();
        self
    }

    /// Runs the trace: resolves the seeds, selects the labels, runs every model and
    /// returns the case, ready to [`Case::write`].
    ///
    /// # Errors
    /// [`TraceError::Input`] for a request the dataset cannot answer (an unknown seed, an
    /// empty window, a category no label has, no dataset), [`TraceError::Stage`] for an
    /// unreadable input, [`TraceError::Internal`] for a model that does not balance.
    pub fn run(&self, progress: &dyn Progress) -> Result<Case, TraceError> {
        // Policies set on the field directly: in `Policy` order, each once (as
        // [`Request::policies`] keeps them).
        let mut req = std::borrow::Cow::Borrowed(self);
        let mut p = self.policies.clone();
        p.sort();
        p.dedup();
        if p != self.policies {
            req.to_mut().policies = p;
        }
        match req.chain {
            Chain::Bitcoin => super::run_bitcoin::run(&req),
            Chain::Ethereum => super::run_ethereum::run(&req, progress),
        }
    }

    /// Whether the trace reads the clusters (`--level cluster` or a `cluster:` seed).
    pub fn uses_clusters(&self) -> bool {
        self.level == Level::Cluster || self.seeds.iter().any(|s| s.starts_with("cluster:"))
    }
}

/// Unix seconds from `YYYY-MM-DD` (start of the day, or its end with `end_of_day`) or a
/// plain number of seconds. Dates are calendar-checked (2024-02-31 is refused).
pub fn parse_time(s: &str, end_of_day: bool) -> Result<u64, TraceError> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return u64::try_from(t.timestamp())
            .map_err(|_| TraceError::Input(format!("{s:?} is before 1970")));
    }
    let day = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| {
        TraceError::Input(format!(
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
        .map_err(|_| TraceError::Input(format!("{s:?} is before 1970")))
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
pub fn parse_min_value(s: &str) -> Result<MinValue, crate::types::InvalidValue> {
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
            ).into());
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(format!("{s:?} is not an amount").into());
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
        )
        .into());
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
pub(crate) fn min_value(a: &Request, asset_is_eth: bool) -> Result<Amount, TraceError> {
    let m = &a.min_value;
    let fits = match (a.chain, m.unit) {
        (_, MinValueUnit::Base) => true,
        (Chain::Bitcoin, u) => u == MinValueUnit::Satoshi,
        (_, u) => u == MinValueUnit::Wei && asset_is_eth,
    };
    if fits {
        Ok(m.amount)
    } else {
        Err(TraceError::Input(format!(
            "--min-value {}: the unit does not fit {} ({}); give {} or a bare integer of base units",
            m.text,
            if a.chain == Chain::Bitcoin {
                "a Bitcoin trace"
            } else if asset_is_eth {
                "an ETH trace"
            } else {
                "a token trace"
            },
            a.chain.name(),
            if a.chain == Chain::Bitcoin {
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
pub(crate) fn check_stop_at(
    a: &Request,
    resolved: &crate::labels::Resolved,
) -> Result<Vec<String>, TraceError> {
    let present: BTreeSet<&str> = resolved.chosen.iter().map(|t| &*t.category).collect();
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
    let lost = resolved.lost_only();
    if let Some(l) = missing.iter().find_map(|m| lost.get(*m)) {
        return Err(TraceError::Input(format!(
            "--stop-at {}: {l}",
            missing.join(",")
        )));
    }
    Err(TraceError::Input(format!(
        "--stop-at {}: no label of this {} dataset has {}; the categories present are: {}{}",
        missing.join(","),
        a.chain.name(),
        if missing.len() == 1 {
            "this category"
        } else {
            "these categories"
        },
        if present.is_empty() {
            format!(
                "none (no labels imported; run chaintrace labels import FILE --data {}, or leave out --stop-at)",
                a.data.display()
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

pub fn parse_policies(names: &[String]) -> Result<Vec<Policy>, TraceError> {
    let mut out = Vec::new();
    for n in names.iter().map(|s| s.trim()) {
        if n == "all" {
            out.extend(Policy::ALL);
            continue;
        }
        out.push(Policy::from_name(n).ok_or_else(|| {
            TraceError::Input(format!(
                "unknown policy {n:?}; choose poison, haircut, fifo, lifo, tiho or all"
            ))
        })?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The `--from-time`/`--to-time` window as heights (with `--from-height`/`--to-height`),
/// through the blocks' `(height, time)` in height order.
pub(crate) fn height_window(a: &Request, times: &[(u64, u64)]) -> Result<(u64, u64), TraceError> {
    if let (Some(f), Some(t)) = (&a.from_time, &a.to_time)
        && parse_time(f, false)? > parse_time(t, true)?
    {
        return Err(TraceError::Input(format!(
            "--from-time {f} is after --to-time {t}: the window is empty"
        )));
    }
    if a.from_height > a.to_height {
        return Err(TraceError::Input(format!(
            "--from-height {} is above --to-height {}: the window is empty",
            a.from_height, a.to_height
        )));
    }
    let (mut from_height, mut to_height) = (a.from_height, a.to_height);
    if let Some(t) = &a.from_time {
        let from = parse_time(t, false)?;
        from_height = from_height.max(times.iter().find(|b| b.1 >= from).map_or(u64::MAX, |b| b.0));
    }
    if let Some(t) = &a.to_time {
        let to = parse_time(t, true)?;
        let Some(last) = times.iter().rev().find(|b| b.1 <= to) else {
            return Err(TraceError::Input(format!(
                "--to-time {t} is before the first block of the dataset"
            )));
        };
        to_height = to_height.min(last.0);
    }
    Ok((from_height, to_height))
}

/// Refuses results of a conserving model whose ends do not add up to what was seeded.
pub(crate) fn check_balanced(results: &[PolicyResult]) -> Result<(), TraceError> {
    match results
        .iter()
        .find(|r| r.policy.conserves() && !r.totals.balanced())
    {
        Some(r) => Err(TraceError::Internal(format!(
            "the {} trace does not balance: {:?}",
            r.policy.name(),
            r.totals
        ))),
        None => Ok(()),
    }
}

/// The parameters every trace records (the chain's own are added by the caller).
pub(crate) fn parameters(
    a: &Request,
    pols: &[Policy],
    followed: [u64; 2],
    labels: usize,
) -> serde_json::Value {
    serde_json::json!({
        "seeds": a.seeds,
        "direction": a.direction.name(),
        "policies": pols.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "max_hops": a.max_hops,
        "min_value": json_amount(a.min_value.amount),
        "from_height": a.from_height,
        // null: no limit (up to the dataset's last block).
        "to_height": (a.to_height != u64::MAX).then_some(a.to_height),
        "from_time": a.from_time,
        "to_time": a.to_time,
        "followed_heights": followed,
        "stop_at": a.stop_at,
        "include_private": a.include_private,
        "through_coinjoins": a.through_coinjoins,
        "min_share_percent": a.min_share.text,
        "prefer": a.prefer,
        "level": a.level.name(),
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
/// The addresses where a trace of `a` stops: those whose chosen label's category is one
/// of its stop categories (the fetch of a neighbourhood stops there too).
///
/// # Errors
/// Unreadable labels, or a `--stop-at` category no label has.
pub fn stop_addresses(a: &Request) -> Result<std::collections::HashSet<String>, TraceError> {
    let selection = crate::labels::Selection {
        include_private: a.include_private,
        prefer: a.prefer.clone(),
    };
    let resolved = crate::labels::load(&a.data, Some("bitcoin"), None, &selection)
        .map_err(TraceError::stage)?;
    let stop = check_stop_at(a, &resolved)?;
    Ok(resolved
        .chosen
        .iter()
        .filter(|t| stop.iter().any(|c| *c == *t.category))
        .map(|t| t.address.clone())
        .collect())
}

pub(crate) fn load_labels(
    a: &Request,
    chain: &str,
    network: &str,
    ids_of: impl FnOnce(&[&str]) -> Vec<Option<u32>>,
) -> Result<(HashMap<u32, Label>, crate::labels::Resolved), TraceError> {
    let selection = crate::labels::Selection {
        include_private: a.include_private,
        prefer: a.prefer.clone(),
    };
    let mut resolved = crate::labels::load(&a.data, Some(chain), Some(network), &selection)
        .map_err(TraceError::stage)?;
    // Need-to-know categories (crate::share::SENSITIVE) stay need_to_know, in the answer and
    // the case, unless the trace names them (--stop-at).
    let named: Vec<String> = a
        .stop_at
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    for t in &mut resolved.chosen {
        if crate::share::is_sensitive(&t.category)
            && !named.contains(&t.category.to_ascii_lowercase())
        {
            let hidden: crate::labels::Text = crate::stats::NEED_TO_KNOW.into();
            t.category.clone_from(&hidden);
            t.entity.clone_from(&hidden);
            t.label = hidden;
        }
    }
    // All the chosen tags' addresses looked up at once, in address order: one pass of
    // galloping searches over the index instead of a binary search per tag.
    let addresses: Vec<&str> = resolved.chosen.iter().map(|t| t.address.as_str()).collect();
    let ids = ids_of(&addresses);
    let labels = resolved
        .chosen
        .iter()
        .zip(ids)
        .filter_map(|(t, id)| {
            id.map(|id| {
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
        assert!(base("0.000000001btc").unwrap_err().0.contains("9 decimals"));
        assert!(base("1.5").unwrap_err().0.contains("decimals"));
        assert!(base("5 usd").unwrap_err().0.contains("unknown unit"));
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
