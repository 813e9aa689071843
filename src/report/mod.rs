//! `chaintrace report`: a trace's case folder → flow chart, Sankey chart and time series
//! (SVG and PNG, drawn with plotters), a self-contained HTML evidence report, and exports
//! (CSV, GraphML, DOT, JSON). Every amount in a table or export is an exact integer (or its
//! exact decimal text); the same case and options give byte-identical files, the
//! generation time aside (pin it with `timestamp`).

pub mod case;
pub mod draw;
pub mod export;
pub mod fmt;
pub mod graph;
pub mod html;
pub mod layout;
pub mod pdf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::case::{Case, PolicyResult};
use self::draw::{Flow, FlowText, Frame};
use self::graph::{FlowGraph, GraphOptions};
use crate::store::sink;
use crate::trace::Amount;
use crate::types::n64;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A wrong option or an unusable case (a changed, newer or empty one); exit 1.
    #[error("{0}")]
    Input(String),
    /// A file that cannot be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that is not what it should be.
    #[error("{context}: {source}")]
    Parse {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// A chart that could not be drawn.
    #[error("cannot draw the {what}: {why}")]
    Draw { what: String, why: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Case(#[from] crate::case::CaseError),
}

/// Every output format.
pub const FORMATS: [&str; 8] = ["svg", "png", "html", "csv", "graphml", "dot", "json", "pdf"];

/// What to produce.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub out: PathBuf,
    pub formats: BTreeSet<String>,
    /// The model the charts show (default: haircut if traced, else the first).
    pub policy: Option<String>,
    pub graph: GraphOptions,
    pub prices: Option<PathBuf>,
    pub currency: String,
    /// Unix seconds of the generation time; `None`: now.
    pub timestamp: Option<i64>,
    /// The command line, for the provenance section.
    pub command: Vec<String>,
    /// At most this many rows in the HTML transfers table (all are in edges.csv).
    pub max_table_rows: usize,
    /// Exits (1-based numbers of the exits table, E1…) to draw a detail chart of the path
    /// for: `path-E{n}.svg`/`.png`, a section of the HTML and a page of the PDF each.
    pub paths: PathChoice,
}

impl ReportOptions {
    /// The report of the case in `case_dir` with the command line's defaults: into
    /// `case_dir/report`, every format but the PDF, the default model, 200 chart nodes,
    /// hop columns, USD, generated now, 2,000 table rows, no path charts.
    pub fn new(case_dir: &Path) -> ReportOptions {
        ReportOptions {
            out: case_dir.join("report"),
            formats: ["svg", "png", "html", "csv", "graphml", "dot", "json"]
                .map(String::from)
                .into(),
            policy: None,
            graph: GraphOptions::default(),
            prices: None,
            currency: "usd".into(),
            timestamp: None,
            command: Vec::new(),
            max_table_rows: 2_000,
            paths: PathChoice::None,
        }
    }
}

/// One deposit address of a labelled entity: what the trace paid it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit<'a> {
    pub address: &'a str,
    /// The traced amount, in base units.
    pub amount: Amount,
    pub payments: usize,
    /// Block times (unix seconds) of the first and last payment.
    pub first: u32,
    pub last: u32,
}

/// The deposit addresses to request records for, per entity.
#[derive(Clone, Debug, Default)]
pub struct Deposits<'a> {
    /// ((entity, category), traced total, addresses largest first), largest entity first.
    pub entities: Vec<((&'a str, &'a str), Amount, Vec<Deposit<'a>>)>,
    /// Exits carrying under 1 % of their deposit: (count, traced sum).
    pub thin: (usize, Amount),
    /// Exits below the trace's `--min-share`, left out of `entities`: (count, traced sum).
    pub hidden: (usize, Amount),
}

/// The exits of `r` as deposit addresses per labelled entity, with the thin ones counted
/// and those below the case's `--min-share` left out (not out of any total).
pub fn deposits<'a>(c: &Case, r: &'a PolicyResult) -> Deposits<'a> {
    let times: BTreeMap<(&str, &str), u32> = r
        .edges
        .iter()
        .map(|e| ((e.txid.as_ref(), case::paid_address(e)), e.time))
        .collect();
    let min_bp: u128 =
        crate::trace::parse_min_share(&c.param("min_share_percent")).map_or(0, |m| m.basis_points);
    let mut d = Deposits::default();
    let mut by: BTreeMap<(&str, &str), BTreeMap<&str, Deposit>> = BTreeMap::new();
    for e in r.ends.iter().filter(|e| e.kind == "exit") {
        let bp = crate::trace::share_bp(e.amount, e.output_value);
        if bp < 100 {
            d.thin.0 += 1;
            d.thin.1 += e.amount;
        }
        if bp < min_bp {
            d.hidden.0 += 1;
            d.hidden.1 += e.amount;
            continue;
        }
        let (Some(ent), Some(cat)) = (e.entity.as_deref(), e.category.as_deref()) else {
            continue;
        };
        let t = times
            .get(&(e.txid.as_str(), e.address.as_str()))
            .copied()
            .unwrap_or(0);
        let x = by
            .entry((ent, cat))
            .or_default()
            .entry(e.address.as_str())
            .or_insert(Deposit {
                address: e.address.as_str(),
                amount: 0,
                payments: 0,
                first: u32::MAX,
                last: 0,
            });
        x.amount += e.amount;
        x.payments += 1;
        x.first = x.first.min(t);
        x.last = x.last.max(t);
    }
    for (key, addrs) in by {
        let mut v: Vec<Deposit> = addrs.into_values().collect();
        v.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.address.cmp(b.address)));
        let total = v.iter().map(|x| x.amount).sum();
        d.entities.push((key, total, v));
    }
    d.entities.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    d
}

/// A result's transfers by txid, built once for every path chart.
pub type TransfersByTxid<'a> = std::collections::HashMap<&'a str, Vec<&'a case::Transfer>>;

/// The transfers of `r` by txid.
pub fn transfers_by_txid(r: &PolicyResult) -> TransfersByTxid<'_> {
    let mut m: TransfersByTxid = std::collections::HashMap::new();
    for x in &r.edges {
        m.entry(x.txid.as_ref()).or_default().push(x);
    }
    m
}

/// A box of the summary or a path chart: (title, detail, the label of its edge).
pub type ChartBox = (String, String, String);

/// Which exits get a detail chart of their path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PathChoice {
    /// None (the default).
    #[default]
    None,
    /// These exit numbers (E1 is 1).
    Exits(Vec<usize>),
    /// Every exit of the charted model.
    All,
}

impl PathChoice {
    /// Parses `E3`, `3`, `E1,E4` or `all` (case-insensitive).
    ///
    /// # Errors
    /// Text that names no exit number.
    pub fn parse(items: &[String]) -> Result<PathChoice, crate::types::InvalidValue> {
        let mut ns = Vec::new();
        for item in items.iter().flat_map(|s| s.split(',')) {
            let t = item.trim();
            if t.is_empty() {
                continue;
            }
            if t.eq_ignore_ascii_case("all") {
                return Ok(PathChoice::All);
            }
            let digits = t.strip_prefix(['E', 'e']).unwrap_or(t);
            match digits.parse::<usize>() {
                Ok(n) if n >= 1 => ns.push(n),
                _ => {
                    return Err(format!(
                        "--path {t:?} names no exit: give exit numbers of the exits table (E1, E2, …), or all"
                    ).into());
                }
            }
        }
        ns.sort_unstable();
        ns.dedup();
        Ok(if ns.is_empty() {
            PathChoice::None
        } else {
            PathChoice::Exits(ns)
        })
    }
}

/// The detail chart of exit `n` (1-based, the exits table's order) of `r`: one step per
/// transaction on its path from a seed — (title: hop, height and date; detail: the txid;
/// arrow: what the model moved on along the path, and to which address) — the last step
/// being the exit's own transaction. `None` when there is no exit `n`.
pub fn path_steps(
    case: &Case,
    r: &PolicyResult,
    by_tx: &TransfersByTxid,
    n: usize,
) -> Option<Vec<(String, String, String)>> {
    let e = r
        .ends
        .iter()
        .filter(|e| e.kind == "exit")
        .nth(n.checked_sub(1)?)?;
    let unit = case.unit();
    let amt = |v: Amount| format!("{} {unit}", fmt::amount(v, case.decimals()));
    let none: Vec<&case::Transfer> = Vec::new();
    let edges_of = |t: &str| by_tx.get(t).unwrap_or(&none).iter().copied();
    // Account model: a transaction moves value in several transfers (its value, then
    // internal calls), all "output 0": the exit's own is the one paid to its account.
    let account = case.asset.is_some();
    let mut steps = Vec::new();
    for (i, t) in e.path.iter().enumerate() {
        let on: Vec<&case::Transfer> = if t == &e.txid && i + 1 == e.path.len() {
            edges_of(t)
                .filter(|x| x.vout == e.vout && (!account || case::paid_address(x) == e.address))
                .collect()
        } else if let Some(next) = e.path.get(i + 1) {
            let spent: BTreeSet<&str> = edges_of(next).map(|x| x.from.as_ref()).collect();
            edges_of(t)
                .filter(|x| spent.contains(x.to.as_ref()))
                .collect()
        } else {
            edges_of(t).collect()
        };
        if i == 0
            && let Some(x) = on.first()
        {
            let addr = if x.from_address.is_empty() {
                x.from.as_ref()
            } else {
                x.from_address.as_ref()
            };
            steps.push((
                if &*x.from == addr {
                    "seed".to_string()
                } else {
                    format!("seed cluster {}", x.from)
                },
                format!("address {addr}"),
                "spent in the transaction below".to_string(),
            ));
        }
        // A transaction whose transfers all stayed inside one cluster has no edge in the
        // case: its block and time are not known here (not block 0 of 1970).
        let when = edges_of(t).next().map_or_else(
            || {
                "block and time not in the case (its transfers stayed inside one cluster)"
                    .to_string()
            },
            |x| format!("block {}, {}", x.height, fmt::datetime(i64::from(x.time))),
        );
        let moved: Amount = on.iter().map(|x| x.amount).sum();
        let mut to: Vec<&str> = on.iter().map(|x| case::paid_address(x)).collect();
        to.dedup();
        let arrow = match to.as_slice() {
            [] => String::new(),
            [a] => format!("{} to {a}", amt(moved)),
            [a, ..] => format!("{} to {a} and {} other(s)", amt(moved), to.len() - 1),
        };
        // Account model: each step is a transfer (a transaction can hold two in a row).
        let step = if account { "transfer" } else { "hop" };
        steps.push((
            format!("{step} {}: {when}", i + 1),
            format!("txid {t}"),
            arrow,
        ));
    }
    let tag = case.attributions.get(&e.address).map_or_else(
        || {
            format!(
                "{} ({})",
                e.entity.as_deref().unwrap_or("unlabelled"),
                e.category.as_deref().unwrap_or("")
            )
        },
        |t| format!("tag: {} ({}, {})", t.entity, t.category, t.source),
    );
    let share = e
        .output_value
        .filter(|w| *w > 0)
        .map_or_else(String::new, |w| {
            format!(
                " of a {} deposit ({})",
                amt(w),
                crate::trace::percent_text(e.amount, w, 2).unwrap_or_default()
            )
        });
    let at = if account {
        "the transfer above".to_string()
    } else {
        format!("output {} of the transaction above", e.vout)
    };
    steps.push((
        format!("E{n}: {tag}"),
        format!("{at}: {}{share}", amt(e.amount)),
        String::new(),
    ));
    Some(steps)
}

/// What was produced.
#[derive(Clone, Debug, Serialize)]
pub struct ReportSummary {
    pub out: PathBuf,
    pub policy: String,
    pub headline: String,
    /// (file, sha256, bytes), in write order, `SHA256SUMS` excluded.
    pub files: Vec<(String, String, u64)>,
    pub transfers: usize,
    pub chart_nodes: usize,
    pub chart_edges: usize,
    pub crossings: usize,
    pub peel_chains: Vec<usize>,
    pub merged_small: usize,
    pub generated: String,
    /// Files of an earlier report in the same folder that this one did not write, removed.
    pub removed: Vec<String>,
    /// What the reader must know about the figures (fiat on a test network, price gaps).
    pub warnings: Vec<String>,
}

/// The examiner's notes written on the canvas (`chaintrace serve`), from the case's
/// `annotations.json`: (what the note is on — a node's key or `FROM → TO` for an edge —,
/// the note), nodes first, each sorted; empty when there is none or the file is not the
/// canvas's.
pub fn canvas_notes(case_dir: &Path) -> Vec<(String, String)> {
    let Some(v) = std::fs::read(case_dir.join(crate::serve::ANNOTATIONS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (kind, sep) in [("nodes", ""), ("edges", " → ")] {
        if let Some(m) = v[kind].as_object() {
            for (k, n) in m {
                if let Some(n) = n.as_str().filter(|n| !n.trim().is_empty()) {
                    let on = if sep.is_empty() {
                        k.clone()
                    } else {
                        k.replace('→', sep)
                    };
                    out.push((on, n.to_string()));
                }
            }
        }
    }
    out
}

/// Warnings about fiat values of `r`: a network whose coins have no market price (regtest,
/// testnets, simulated worlds), and days the case moves value on that `p` has no price for.
pub fn fiat_warnings(case: &Case, r: &PolicyResult, p: &fmt::Prices) -> Vec<String> {
    let mut out = Vec::new();
    if !matches!(case.network.as_str(), "bitcoin" | "mainnet") {
        out.push(format!(
            "fiat values are illustrative: {} coins have no market price; the {} prices of {} are applied only to show the method",
            case.network, p.currency, p.file
        ));
    }
    let missing: BTreeSet<i64> = r
        .edges
        .iter()
        .map(|e| i64::from(e.time).div_euclid(86_400))
        .filter(|d| !p.by_day.contains_key(d))
        .collect();
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        out.push(format!(
            "{} has no price for {} day(s) this case moves value on ({} to {}); those amounts show \"no price\", not 0",
            p.file,
            missing.len(),
            fmt::date(first * 86_400),
            fmt::date(last * 86_400)
        ));
    }
    out
}

/// One sentence on what the trace shows, under `r`.
pub fn headline(case: &Case, r: &PolicyResult) -> String {
    let unit = case.unit();
    // Every decimal kept (0.01800000 BTC, not 0.018), and satoshi beside BTC.
    let amt = |v: Amount| {
        let text = format!("{} {unit}", fmt::amount(v, case.decimals()));
        if case.asset.is_none() {
            format!("{text} ({v} sat)")
        } else {
            text
        }
    };
    let mut per_cat: BTreeMap<&str, (Amount, BTreeSet<&str>)> = BTreeMap::new();
    for e in r.ends.iter().filter(|e| e.kind == "exit") {
        if let (Some(c), Some(ent)) = (&e.category, &e.entity) {
            let x = per_cat.entry(c).or_default();
            x.0 += e.amount;
            x.1.insert(ent);
        }
    }
    let noun = if case.param("level") == "cluster" {
        "cluster"
    } else {
        "address"
    };
    let account = case.asset.is_some();
    let noun = if account && noun == "address" {
        "account"
    } else {
        noun
    };
    let n = case.seed_nodes.len();
    // Account model: seed transactions are seeds of their own kind.
    let seed_txs = case
        .parameters
        .get("seed_transactions")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let seed_accounts = case
        .parameters
        .get("seed_accounts")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let seeds = match (n, noun) {
        _ if account && seed_txs > 0 && seed_accounts == 0 => {
            format!(
                "{seed_txs} seed transaction{}",
                if seed_txs == 1 { "" } else { "s" }
            )
        }
        (1, _) => format!("1 seed {noun}"),
        (_, "cluster") => format!("{n} seed clusters"),
        (_, "account") => format!("{n} seed accounts"),
        _ => format!("{n} seed addresses"),
    };
    let backward = case.param("direction") == "backward";
    // What "held" means: unspent outputs; an account's balance; backward, taint that was
    // already in an account when the dataset (or the window) begins.
    let held = match (backward, account) {
        (true, true) => "from balances held before the window",
        (false, true) => "still held in accounts",
        (_, false) => "unspent",
    };
    let mut parts: Vec<(Amount, String)> = per_cat
        .iter()
        .map(|(c, (v, ents))| {
            let k = ents.len();
            let what = if k == 1 {
                // One entity: named.
                format!("{c} ({})", ents.iter().next().copied().unwrap_or(""))
            } else {
                format!("{k} {c} entities")
            };
            let verb = if backward { "came from" } else { "reached" };
            let one = if k == 1 { "1 " } else { "" };
            (*v, format!("{} {verb} {one}{what}", amt(*v)))
        })
        .collect();
    parts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let t = &r.totals;
    // The other ends that hold value, largest first (zeros left out).
    let mut rest: Vec<(Amount, &str)> = [
        (t.holdings, held),
        (t.fees, "in fees"),
        (t.hop_limit, "beyond the hop limit"),
        (t.outside_window, "outside the window"),
        (t.before_window, "from outside the dataset"),
        (t.unresolved, "through an unresolved transfer"),
        (t.below_min, "below the minimum"),
        (t.coinjoins, "into CoinJoins"),
        (t.mined, "mined"),
    ]
    .into_iter()
    .filter(|x| x.0 > 0)
    .collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let rest: Vec<String> = rest
        .into_iter()
        .map(|(v, what)| format!("{} {what}", amt(v)))
        .collect();
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!("; {}", rest.join(", "))
    };
    let context = if backward {
        format!("of {} traced back from {seeds}{rest}", amt(t.seeded))
    } else if r.policy == "poison" {
        format!(
            "an upper bound: whole {} touched, of {} seeded in {seeds}{rest}",
            if account { "transfers" } else { "outputs" },
            amt(t.seeded)
        )
    } else if account && seed_txs > 0 && seed_accounts == 0 {
        format!("of {} that {seeds} moved{rest}", amt(t.seeded))
    } else {
        format!(
            "of {} that entered {seeds} from outside{}{rest}",
            amt(t.entered_seeds),
            if t.seeded > t.entered_seeds {
                format!(
                    " ({} more only moved between them)",
                    amt(t.seeded - t.entered_seeds)
                )
            } else {
                String::new()
            }
        )
    };
    if parts.is_empty() {
        let where_ = if backward { "came from" } else { "reached" };
        // Without an exit, who holds it (backward: where it was before) is the answer.
        let mut holders: Vec<&crate::report::case::End> =
            r.ends.iter().filter(|e| e.kind == "holding").collect();
        holders.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.address.cmp(&b.address)));
        let top: Vec<String> = holders
            .iter()
            .take(3)
            .map(|e| format!("{} {}", amt(e.amount), e.address))
            .collect();
        let largest = if top.is_empty() {
            String::new()
        } else {
            format!(
                " Largest {}: {}{}.",
                if backward { "sources" } else { "holdings" },
                top.join("; "),
                if holders.len() > 3 {
                    format!(" (and {} more)", holders.len() - 3)
                } else {
                    String::new()
                }
            )
        };
        return format!(
            "{}: no traced value {where_} a labelled entity ({context}).{largest}",
            r.policy
        );
    }
    let body: Vec<String> = parts.into_iter().map(|p| p.1).collect();
    format!("{}: {} ({context}).", r.policy, body.join("; "))
}

/// The summary chart's boxes: one per receiving entity (largest first, at most 28, the
/// rest merged), then what reached no labelled entity; each with the exits' numbers
/// (E1… in the order of the exits table).
fn summary_data(case: &Case, r: &PolicyResult) -> Vec<(String, String, String)> {
    let unit = case.unit();
    let amt = |v: Amount| format!("{} {unit}", fmt::amount(v, case.decimals()));
    let base = if case.param("direction") == "backward" {
        r.totals.seeded
    } else {
        r.totals.entered_seeds
    };
    let share = |v: Amount| {
        crate::trace::percent_text(v, base, 1).map_or_else(String::new, |p| format!(", {p}"))
    };
    let mut by: BTreeMap<(String, String), (Amount, Vec<usize>)> = BTreeMap::new();
    for (i, e) in r.ends.iter().filter(|e| e.kind == "exit").enumerate() {
        let key = (
            e.entity.clone().unwrap_or_default(),
            e.category.clone().unwrap_or_default(),
        );
        let x = by.entry(key).or_default();
        x.0 += e.amount;
        x.1.push(i + 1);
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let keys = |ns: &[usize]| -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < ns.len() {
            let mut j = i;
            while j + 1 < ns.len() && ns[j + 1] == ns[j] + 1 {
                j += 1;
            }
            parts.push(if j > i {
                format!("E{}-E{}", ns[i], ns[j])
            } else {
                format!("E{}", ns[i])
            });
            i = j + 1;
        }
        let text = parts.join(", ");
        if text.len() > 40 {
            format!(
                "{}... ({} exits)",
                &text[..text[..36].rfind(',').unwrap_or(36)],
                ns.len()
            )
        } else {
            text
        }
    };
    let mut out: Vec<(String, String, String)> = Vec::new();
    let cap = 28;
    for ((ent, cat), (v, ns)) in rows.iter().take(cap) {
        out.push((
            format!("tag: {ent} ({cat})"),
            format!("{}{} in {} exit(s)", amt(*v), share(*v), ns.len()),
            keys(ns),
        ));
    }
    if rows.len() > cap {
        let rest = &rows[cap..];
        let v: Amount = rest.iter().map(|x| x.1.0).sum();
        let n: usize = rest.iter().map(|x| x.1.1.len()).sum();
        out.push((
            format!("{} other entities", rest.len()),
            format!("{}{} in {n} exit(s)", amt(v), share(v)),
            String::new(),
        ));
    }
    // The rest of what entered (so the boxes add up to the seeds box): held, fees, beyond
    // the hop limit or the window, below the minimum, into CoinJoins.
    let exits: Amount = rows.iter().map(|x| x.1.0).sum();
    let open = base.saturating_sub(exits);
    if open > 0 {
        out.push((
            "the rest: at no labelled entity".to_string(),
            format!(
                "{}{}: {}",
                amt(open),
                share(open),
                if case.asset.is_some() {
                    "held, fees, limits"
                } else {
                    "held, fees, limits, CoinJoins"
                }
            ),
            String::new(),
        ));
    }
    out
}

/// Why the summary's "rest" box is smaller than held + fees + CoinJoins + limits, when it
/// is: the seeds box counts what entered the seeds from outside, the ends count all the
/// seeds held, including value that only moved between seed addresses and, of that, some
/// did not come back to a seed. `None` when the two agree (or backward).
pub fn rest_note(case: &Case, r: &PolicyResult) -> Option<String> {
    if case.param("direction") == "backward" {
        return None;
    }
    let t = &r.totals;
    let between = t.seeded.saturating_sub(t.entered_seeds);
    let elsewhere = between.saturating_sub(t.returned_to_seeds);
    (elsewhere > 0).then(|| {
        let amt = |v: Amount| format!("{} {}", fmt::amount(v, case.decimals()), case.unit());
        format!(
            "The seeds box counts the {} that entered the seeds from outside; the ends (held, fees, CoinJoins, limits) count all the seeds held, including {} that only moved between seed addresses, of which {} came back to seeds and {} ended elsewhere: so they exceed \"the rest\" by {}.",
            amt(t.entered_seeds),
            amt(between),
            amt(t.returned_to_seeds),
            amt(elsewhere),
            amt(elsewhere)
        )
    })
}

/// Frame texts of the charts.
fn frame(case: &Case, r: &PolicyResult, fg: &FlowGraph, generated: &str, what: &str) -> Frame {
    let mut sub = vec![
        format!("max hops {}", case.param("max_hops")),
        format!(
            "heights {}",
            case.param("followed_heights").replace(", ", "–")
        ),
    ];
    let stop = case.param("stop_at");
    if !stop.is_empty() {
        sub.push(format!("exits: {stop}"));
    }
    sub.push(format!("{} transfers", r.edges.len()));
    if !fg.peel_chains.is_empty() {
        sub.push(format!("{} peel chain(s) collapsed", fg.peel_chains.len()));
    }
    if fg.merged_small > 0 {
        sub.push(format!("{} smaller nodes merged", fg.merged_small));
    }
    Frame {
        title: format!(
            "{what} — {} trace from {} seed node(s), {} model, {} {}",
            case.param("direction"),
            case.seed_nodes.len(),
            r.policy,
            case.chain,
            case.network
        ),
        subtitle: sub.join(" · "),
        footer: format!(
            "dataset manifest sha256 {} · trace.json sha256 {} · generated {generated} · chaintrace {}",
            case.dataset_manifest_sha256,
            &case.trace_sha256,
            crate::VERSION
        ),
    }
}

/// The Sankey chart's columns and bands.
/// `report.json`, written straight from these types (a `serde_json::Value` cannot hold
/// amounts beyond u64, and wei pass it at 18.4 ETH).
#[derive(Serialize)]
struct ReportDoc<'a> {
    tool: String,
    generated: &'a str,
    dataset_manifest_sha256: &'a str,
    trace_sha256: &'a str,
    chart_policy: &'a str,
    headline: &'a str,
    unit: &'a str,
    decimals: u32,
    totals: BTreeMap<&'a str, &'a case::Totals>,
    exposure_entity: BTreeMap<&'a str, &'a BTreeMap<String, Amount>>,
    exposure_category: BTreeMap<&'a str, &'a BTreeMap<String, Amount>>,
    chart: ChartDoc<'a>,
    nodes: &'a [export::ExportNode],
    edges: Vec<EdgeDoc<'a>>,
}

#[derive(Serialize)]
struct ChartDoc<'a> {
    width: i32,
    height: i32,
    crossings: usize,
    nodes: Vec<ChartNode<'a>>,
    edges: Vec<ChartEdge<'a>>,
}

#[derive(Serialize)]
struct ChartNode<'a> {
    key: &'a str,
    title: &'a str,
    detail: &'a str,
    category: &'a str,
    seed: bool,
    members: usize,
    received: Amount,
    sent: Amount,
    column: usize,
    r#box: [i32; 4],
}

#[derive(Serialize)]
struct ChartEdge<'a> {
    from: &'a str,
    to: &'a str,
    amount: Amount,
    transfers: usize,
}

#[derive(Serialize)]
struct EdgeDoc<'a> {
    txid: &'a str,
    height: u64,
    time: String,
    from: &'a str,
    to: &'a str,
    amount: Amount,
    hop: u32,
}

type SankeyData = ([Vec<(String, Amount, String)>; 3], Vec<Flow>);

fn sankey_data(case: &Case, r: &PolicyResult) -> SankeyData {
    let mut mid: BTreeMap<(String, String), Amount> = BTreeMap::new();
    let unlabelled = if case.param("direction") == "backward" {
        "unlabelled sources before the window"
    } else {
        "held at unlabelled addresses"
    };
    // Exits and holdings by entity; the other ends (mined, ...) come from the totals below.
    for e in r
        .ends
        .iter()
        .filter(|e| e.kind == "exit" || e.kind == "holding")
    {
        let key = match (&e.entity, &e.category) {
            (Some(ent), Some(c)) => (ent.clone(), c.clone()),
            _ => (unlabelled.into(), "unlabelled".into()),
        };
        *mid.entry(key).or_default() += e.amount;
    }
    // The ends that are not outputs (exits and holdings came from `r.ends` above).
    for (name, v) in r.totals.ends() {
        let cat = match name {
            "reached exits" | "held (unspent)" => continue,
            "back into seeds" => "seed",
            _ => "not followed",
        };
        if v > 0 {
            *mid.entry((name.into(), cat.into())).or_default() += v;
        }
    }
    let mut mids: Vec<((String, String), Amount)> = mid.into_iter().filter(|m| m.1 > 0).collect();
    mids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if mids.len() > 12 {
        let rest: Vec<_> = mids.split_off(11);
        let mut by_cat: BTreeMap<String, (Amount, usize)> = BTreeMap::new();
        for ((_, c), v) in rest {
            let x = by_cat.entry(c).or_default();
            x.0 += v;
            x.1 += 1;
        }
        for (c, (v, n)) in by_cat {
            mids.push(((format!("{n} other {c}"), c), v));
        }
    }
    let total: Amount = mids.iter().map(|m| m.1).sum();
    let seeds_name = format!("{} seed node(s)", case.seed_nodes.len());
    let col0 = vec![(seeds_name.clone(), total, "seed".to_string())];
    let col1: Vec<(String, Amount, String)> = mids
        .iter()
        .map(|((n, c), v)| (n.clone(), *v, c.clone()))
        .collect();
    let mut cats: BTreeMap<String, Amount> = BTreeMap::new();
    for ((_, c), v) in &mids {
        *cats.entry(c.clone()).or_default() += v;
    }
    let mut col2: Vec<(String, Amount, String)> =
        cats.into_iter().map(|(c, v)| (c.clone(), v, c)).collect();
    col2.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut flows: Vec<Flow> = Vec::new();
    for ((n, c), v) in &mids {
        flows.push(Flow {
            col: 0,
            from: seeds_name.clone(),
            to: n.clone(),
            amount: *v,
            category: c.clone(),
        });
    }
    // Bands into each category in the order of the middle column.
    for ((n, c), v) in &mids {
        flows.push(Flow {
            col: 1,
            from: n.clone(),
            to: c.clone(),
            amount: *v,
            category: c.clone(),
        });
    }
    ([col0, col1, col2], flows)
}

/// Time buckets (day, or month when the trace spans more than 92 days): amount moved and
/// the cumulative amount reaching exits.
fn timeline_data(r: &PolicyResult) -> Vec<(String, Amount, Amount)> {
    let Some(min) = r.edges.iter().map(|e| e.time).min() else {
        return Vec::new();
    };
    let max = r.edges.iter().map(|e| e.time).max().unwrap_or(min);
    let monthly = u64::from(max - min) > 92 * 86_400;
    let bucket = |t: u32| {
        if monthly {
            fmt::month(i64::from(t))
        } else {
            fmt::date(i64::from(t))
        }
    };
    let mut names: Vec<String> = Vec::new();
    let mut day = i64::from(min).div_euclid(86_400);
    while day <= i64::from(max).div_euclid(86_400) {
        let n = bucket((day * 86_400) as u32);
        if names.last() != Some(&n) {
            names.push(n);
        }
        day += 1;
    }
    let at: BTreeMap<&String, usize> = names.iter().enumerate().map(|(i, n)| (n, i)).collect();
    let mut moved = vec![0 as Amount; names.len()];
    let mut exits = vec![0 as Amount; names.len()];
    let mut time_of: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for e in &r.edges {
        moved[at[&bucket(e.time)]] += e.amount;
        time_of.insert((e.txid.as_ref(), case::paid_address(e)), e.time);
    }
    for e in r.ends.iter().filter(|e| e.kind == "exit") {
        if let Some(&t) = time_of.get(&(e.txid.as_str(), e.address.as_str())) {
            exits[at[&bucket(t)]] += e.amount;
        }
    }
    let mut cum = 0;
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            cum += exits[i];
            (n, moved[i], cum)
        })
        .collect()
}

/// Writes `bytes` to `out/name` atomically and records its hash.
fn put(
    out: &Path,
    name: &str,
    bytes: &[u8],
    files: &mut Vec<(String, String, u64)>,
) -> Result<(), ReportError> {
    sink::write_atomic(&out.join(name), bytes)?;
    use bitcoin::hashes::Hash;
    files.push((
        name.to_string(),
        bitcoin::hashes::sha256::Hash::hash(bytes).to_string(),
        n64(bytes.len()),
    ));
    Ok(())
}

/// Refuses a case whose files no longer match the `SHA256SUMS` its trace wrote: a report
/// of an edited case would present altered evidence as the trace's.
fn check_sums(case_dir: &Path, hashes: &BTreeMap<String, String>) -> Result<(), ReportError> {
    let got = |name: &str| hashes.get(name).cloned().unwrap_or_default();
    let files = ["trace.json", "edges.parquet", "ends.parquet"];
    // The audit trail's record of what the trace wrote, then SHA256SUMS: editing a file
    // and its sum together still fails the first.
    if let Some((t, _)) = crate::case::read(case_dir)
        .ok()
        .and_then(|entries| entries.into_iter().rev().find(|(e, _)| e.action == "trace"))
    {
        for (name, want) in t
            .outputs
            .iter()
            .filter(|(n, _)| files.contains(&n.as_str()))
        {
            if got(name) != *want {
                return Err(ReportError::Input(format!(
                    "{} is not what the trace wrote (sha256 {}; the audit trail's entry {} records {want}): the case was changed after its trace. Run `chaintrace case verify {}` to see what changed, and trace again for a sound case",
                    case_dir.join(name).display(),
                    got(name),
                    t.seq,
                    case_dir.display()
                )));
            }
        }
    }
    let sums = case_dir.join("SHA256SUMS");
    let Ok(text) = std::fs::read_to_string(&sums) else {
        return Ok(()); // a case from before SHA256SUMS
    };
    for (want, name) in text.lines().filter_map(|l| l.split_once("  ")) {
        if files.contains(&name) && got(name) != want {
            return Err(ReportError::Input(format!(
                "{} does not match {} (sha256 {}, recorded {want}): the case was changed after its trace wrote it. Run `chaintrace case verify {}` to see what changed, and trace again for a sound case",
                case_dir.join(name).display(),
                sums.display(),
                got(name),
                case_dir.display()
            )));
        }
    }
    Ok(())
}

/// The files an earlier report listed in `out/SHA256SUMS` (its own outputs, not the
/// case's files it also lists).
fn earlier_outputs(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("SHA256SUMS"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_once("  ").map(|x| x.1.to_string()))
                .filter(|f| !f.contains('/') && !f.contains('\\'))
                .collect()
        })
        .unwrap_or_default()
}

/// Produces the report of the case in `case_dir`.
///
/// # Errors
/// An unreadable case, an unknown policy or format, an unreadable price file, or a
/// failure to write.
pub fn report(case_dir: &Path, o: &ReportOptions) -> Result<ReportSummary, ReportError> {
    for f in &o.formats {
        if !FORMATS.contains(&f.as_str()) {
            return Err(ReportError::Input(format!(
                "unknown format {f:?}; choose from {}",
                FORMATS.join(",")
            )));
        }
    }
    let case = Case::load(case_dir)?;
    // The case's three files, hashed once: checked here, listed in SHA256SUMS and the
    // audit trail below.
    let mut case_hashes = crate::case::hashes(
        ["edges.parquet", "ends.parquet"].map(|f| (f.to_string(), case_dir.join(f))),
    )?;
    case_hashes.insert("trace.json".to_string(), case.trace_sha256.clone());
    check_sums(case_dir, &case_hashes)?;
    let policy = match &o.policy {
        Some(p) => p.clone(),
        None if case.results.iter().any(|r| r.policy == "haircut") => "haircut".into(),
        None => case.results[0].policy.clone(),
    };
    let r = case
        .results
        .iter()
        .find(|r| r.policy == policy)
        .ok_or_else(|| {
            let have: Vec<&str> = case.results.iter().map(|r| r.policy.as_str()).collect();
            ReportError::Input(format!(
                "the case has no {policy} result; it has {}",
                have.join(", ")
            ))
        })?;
    // A wrong --path is refused before anything is written.
    if let PathChoice::Exits(ns) = &o.paths {
        let exit_count = r.ends.iter().filter(|e| e.kind == "exit").count();
        if let Some(n) = ns.iter().find(|&&n| n > exit_count) {
            return Err(ReportError::Input(format!(
                "--path E{n}: the {policy} result has {exit_count} exit(s) (E1 to E{exit_count} in the exits table)"
            )));
        }
    }
    let prices = o
        .prices
        .as_ref()
        .map(|p| fmt::Prices::load(p, &o.currency))
        .transpose()?;
    let warnings = prices
        .as_ref()
        .map(|p| fiat_warnings(&case, r, p))
        .unwrap_or_default();
    let prices_sha = o
        .prices
        .as_ref()
        .map(|p| sink::sha256_file(p))
        .transpose()?;
    let generated = fmt::datetime(o.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }));
    std::fs::create_dir_all(&o.out).map_err(|source| ReportError::Io {
        what: "cannot create",
        path: o.out.clone(),
        source,
    })?;
    let earlier = earlier_outputs(&o.out);
    let want = |f: &str| o.formats.contains(f);
    let text = FlowText {
        unit: case.unit().to_string(),
        decimals: case.decimals(),
    };
    let fg = graph::build(&case, r, &o.graph);
    let label = |ei: usize| {
        let e = &fg.edges[ei];
        let mut s = format!("{} {}", draw::shown(e.amount, case.decimals()), case.unit());
        if e.transfers > 1 {
            s.push_str(&format!(" · {} tx", e.transfers));
        }
        s.push_str(&format!(" · {}", fmt::date(i64::from(e.first_time))));
        s
    };
    let lay = layout::layout(&fg, &draw::measure, &label);
    let flow_frame = frame(&case, r, &fg, &generated, "Flow of funds");
    let (cols, flows) = sankey_data(&case, r);
    let sankey_size = (1300, (cols[1].len() as i32 * 44 + 200).max(560));
    let sankey_frame = frame(&case, r, &fg, &generated, "Where the traced value ended");
    let buckets = timeline_data(r);
    let timeline_size = (1300, 760);
    let timeline_frame = frame(&case, r, &fg, &generated, "Traced amounts over time");
    let summary_frame = frame(
        &case,
        r,
        &fg,
        &generated,
        "Summary: where the seeds' value went",
    );
    let sum = summary_data(&case, r);
    let seeds_title = format!(
        "Seeds: {} {}",
        case.seed_nodes.len(),
        if case.param("level") == "cluster" {
            "clusters"
        } else {
            "addresses"
        }
    );
    let seeds_detail = if case.param("direction") == "backward" {
        format!(
            "{} {} traced back",
            fmt::amount(r.totals.seeded, case.decimals()),
            case.unit()
        )
    } else {
        format!(
            "{} {} entered from outside",
            fmt::amount(r.totals.entered_seeds, case.decimals()),
            case.unit()
        )
    };
    let summary_legend = format!(
        "Each line: the value the {} model attributes from the seeds to the entity, intermediate transactions collapsed; E-numbers are the rows of the exits table (txid:vout). Boxes name tags, not verdicts.",
        r.policy
    );
    let charts = [
        (
            "summary",
            draw::Chart::Summary {
                size: (1300, draw::summary_height(sum.len())),
                frame: &summary_frame,
                seeds: (&seeds_title, &seeds_detail),
                boxes: &sum,
                columns: (
                    "seeds",
                    "receiving entities (exits, after any number of hops)",
                ),
                legend: &summary_legend,
            },
        ),
        (
            "flow",
            draw::Chart::Flow {
                graph: &fg,
                layout: &lay,
                frame: &flow_frame,
                text: &text,
            },
        ),
        (
            "sankey",
            draw::Chart::Sankey {
                size: sankey_size,
                columns: &cols,
                flows: &flows,
                frame: &sankey_frame,
                text: &text,
            },
        ),
        (
            "timeline",
            draw::Chart::Timeline {
                size: timeline_size,
                buckets: &buckets,
                frame: &timeline_frame,
                text: &text,
            },
        ),
    ];
    // Detail charts of the paths asked for.
    let path_ns: Vec<usize> = match &o.paths {
        PathChoice::None => Vec::new(),
        // Every exit the exits table lists (those below --min-share are not listed).
        PathChoice::All => {
            let min_bp = crate::trace::parse_min_share(&case.param("min_share_percent"))
                .map_or(0, |m| m.basis_points);
            r.ends
                .iter()
                .filter(|e| e.kind == "exit")
                .enumerate()
                .filter(|(_, e)| crate::trace::share_bp(e.amount, e.output_value) >= min_bp)
                .map(|(i, _)| i + 1)
                .collect()
        }
        // Checked before anything was written.
        PathChoice::Exits(ns) => ns.clone(),
    };
    let by_tx = transfers_by_txid(r);
    let paths: Vec<(usize, Vec<ChartBox>)> = path_ns
        .iter()
        .filter_map(|&n| path_steps(&case, r, &by_tx, n).map(|s| (n, s)))
        .collect();
    let path_frames: Vec<(String, Frame)> = paths
        .iter()
        .map(|(n, _)| {
            let title = format!("Path of exit E{n}, from a seed");
            let f = frame(&case, r, &fg, &generated, &title);
            (title, f)
        })
        .collect();
    let mut files = Vec::new();
    let mut path_svgs: Vec<(String, String)> = Vec::new();
    for ((n, steps), (title, f)) in paths.iter().zip(&path_frames) {
        let chart = draw::Chart::Path {
            size: (1300, draw::path_height(steps.len())),
            frame: f,
            steps,
        };
        let svg = chart.svg()?;
        if want("svg") {
            put(
                &o.out,
                &format!("path-E{n}.svg"),
                svg.as_bytes(),
                &mut files,
            )?;
        }
        if want("png") {
            put(
                &o.out,
                &format!("path-E{n}.png"),
                &chart.png(&o.out)?,
                &mut files,
            )?;
        }
        path_svgs.push((title.clone(), svg));
    }
    let mut svgs = Vec::new();
    for (name, chart) in &charts {
        let svg = chart.svg()?;
        if want("svg") {
            put(&o.out, &format!("{name}.svg"), svg.as_bytes(), &mut files)?;
        }
        svgs.push(svg);
    }
    if want("png") {
        for (name, chart) in &charts {
            put(
                &o.out,
                &format!("{name}.png"),
                &chart.png(&o.out)?,
                &mut files,
            )?;
        }
    }
    let nodes = export::nodes(&case);
    // The HTML's transfer table points to edges.csv when it is cut: it is written then.
    let all_edges: usize = case.results.iter().map(|r| r.edges.len()).sum();
    // The HTML (when its table is cut) and the PDF (its appendix) point to edges.csv.
    if want("csv") || want("pdf") || (want("html") && all_edges > o.max_table_rows) {
        put(
            &o.out,
            "nodes.csv",
            export::nodes_csv(&case, &nodes).as_bytes(),
            &mut files,
        )?;
        put(
            &o.out,
            "edges.csv",
            export::edges_csv(&case, prices.as_ref()).as_bytes(),
            &mut files,
        )?;
    }
    if want("graphml") {
        put(
            &o.out,
            "graph.graphml",
            export::graphml(&case, r, &nodes).as_bytes(),
            &mut files,
        )?;
    }
    if want("dot") {
        put(
            &o.out,
            "graph.dot",
            export::dot(&case, r, &nodes).as_bytes(),
            &mut files,
        )?;
    }
    let headline = headline(&case, r);
    if want("json") {
        let by_policy = |f: &dyn Fn(&PolicyResult) -> &BTreeMap<String, Amount>| {
            case.results
                .iter()
                .map(|r| (r.policy.as_str(), f(r)))
                .collect::<BTreeMap<_, _>>()
        };
        let doc = ReportDoc {
            tool: format!("chaintrace {}", crate::VERSION),
            generated: &generated,
            dataset_manifest_sha256: &case.dataset_manifest_sha256,
            trace_sha256: &case.trace_sha256,
            chart_policy: &policy,
            headline: &headline,
            unit: case.unit(),
            decimals: case.decimals(),
            totals: case
                .results
                .iter()
                .map(|r| (r.policy.as_str(), &r.totals))
                .collect(),
            exposure_entity: by_policy(&|r| &r.exposure_entity),
            exposure_category: by_policy(&|r| &r.exposure_category),
            chart: ChartDoc {
                width: lay.width,
                height: lay.height,
                crossings: lay.crossings,
                nodes: fg
                    .nodes
                    .iter()
                    .zip(&lay.boxes)
                    .map(|(n, b)| ChartNode {
                        key: &n.key,
                        title: &n.title,
                        detail: &n.detail,
                        category: &n.category,
                        seed: n.seed,
                        members: n.members.len(),
                        received: n.received,
                        sent: n.sent,
                        column: n.layer,
                        r#box: [b.x, b.y, b.w, b.h],
                    })
                    .collect(),
                edges: fg
                    .edges
                    .iter()
                    .map(|e| ChartEdge {
                        from: &fg.nodes[e.from].key,
                        to: &fg.nodes[e.to].key,
                        amount: e.amount,
                        transfers: e.transfers,
                    })
                    .collect(),
            },
            nodes: &nodes,
            edges: r
                .edges
                .iter()
                .map(|e| EdgeDoc {
                    txid: &e.txid,
                    height: e.height,
                    time: fmt::datetime(i64::from(e.time)),
                    from: &e.from,
                    to: &e.to,
                    amount: e.amount,
                    hop: e.hop,
                })
                .collect(),
        };
        let mut b = serde_json::to_vec_pretty(&doc).expect("reports serialise");
        b.push(b'\n');
        put(&o.out, "report.json", &b, &mut files)?;
    }
    let notes = format!(
        "The flow chart groups addresses by labelled entity{}{}; edge labels give the amount under the {policy} model and the date of the first transfer. The exports keep every transfer at address level.",
        if fg.peel_chains.is_empty() {
            String::new()
        } else {
            format!(
                ", collapses {} peel chain(s) of {} hops",
                fg.peel_chains.len(),
                fg.peel_chains
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if fg.merged_small > 0 {
            format!(
                ", and merges the {} smallest flows per column to stay legible",
                fg.merged_small
            )
        } else {
            String::new()
        }
    );
    let notes = match rest_note(&case, r) {
        Some(n) => format!("{notes} {n}"),
        None => notes,
    };
    // The measured error of this very trace (`eval trace`), if any.
    let measured: Option<serde_json::Value> = std::fs::read(case_dir.join("eval_trace.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|v: &serde_json::Value| v["trace_sha256"] == case.trace_sha256.as_str());
    let mut audit: Vec<crate::case::Entry> = crate::case::read(case_dir)?
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    // The canvas logs every request it answers: counted in the report, listed by `chaintrace
    // case log`.
    let canvas_requests = audit.iter().filter(|e| e.action == "request").count();
    audit.retain(|e| e.action != "request");
    let notes_on_chart = canvas_notes(case_dir);
    if want("pdf") {
        let meta = crate::case::Meta::load(case_dir)?;
        let edges_sha = files
            .iter()
            .find(|f| f.0 == "edges.csv")
            .map(|f| f.1.clone());
        let bytes = pdf::render(&pdf::PdfInput {
            case: &case,
            result: r,
            headline: &headline,
            generated: &generated,
            meta: meta.as_ref(),
            edges_csv_sha256: edges_sha.as_deref(),
            measured: measured.as_ref(),
            max_rows: 600,
            summary: (&seeds_title, &seeds_detail, &sum),
            paths: &paths,
            audit: &audit,
            canvas_notes: &notes_on_chart,
            canvas_requests,
        });
        put(&o.out, "report.pdf", &bytes, &mut files)?;
    }
    if want("html") {
        let meta = crate::case::Meta::load(case_dir)?;
        let doc = html::render(&html::HtmlInput {
            measured: measured.as_ref(),
            meta: meta.as_ref(),
            audit: &audit,
            case: &case,
            policy: &policy,
            headline: &headline,
            generated: &generated,
            command: &o.command,
            prices: prices.as_ref(),
            prices_sha256: prices_sha.as_deref(),
            charts: [
                ("Summary: where the seeds' value went", svgs[0].as_str()),
                ("Flow of funds: all transfers", &svgs[1]),
                ("Where the traced value ended", &svgs[2]),
                ("Traced amounts over time", &svgs[3]),
            ]
            .into_iter()
            .chain(path_svgs.iter().map(|(t, s)| (t.as_str(), s.as_str())))
            .collect(),
            files: &files,
            chart_notes: &notes,
            warnings: &warnings,
            max_rows: o.max_table_rows,
            canvas_notes: &notes_on_chart,
            canvas_requests,
        });
        let mut with_html = files.clone();
        put(&o.out, "report.html", doc.as_bytes(), &mut with_html)?;
        files = with_html;
    }
    // The case's own files too (`sha256sum -c` from report/), so a report left beside a
    // re-traced case cannot verify.
    let mut sums = String::new();
    for f in ["trace.json", "edges.parquet", "ends.parquet"] {
        let p = case_dir.join(f);
        if let Some(h) = case_hashes.get(f) {
            let name = if o.out == case_dir.join("report") {
                format!("../{f}")
            } else {
                // Absolute: `sha256sum -c` works from the report's folder.
                std::fs::canonicalize(&p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            };
            sums.push_str(&format!("{h}  {name}\n"));
        }
    }
    for (f, h, _) in &files {
        sums.push_str(&format!("{h}  {f}\n"));
    }
    sink::write_atomic(&o.out.join("SHA256SUMS"), sums.as_bytes())?;
    // What an earlier report wrote and this one did not would sit beside it unlisted and
    // describe another rendering: it goes.
    let mut removed = Vec::new();
    for f in earlier {
        if !files.iter().any(|x| x.0 == f) && f != "SHA256SUMS" {
            match std::fs::remove_file(o.out.join(&f)) {
                Ok(()) => removed.push(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ReportError::Input(format!(
                        "cannot remove {}: {e}",
                        o.out.join(&f).display()
                    )));
                }
            }
        }
    }
    // The case's audit trail: what the report read and wrote.
    // Files inside the case by their path in it; others by their absolute path.
    let out_abs = std::fs::canonicalize(&o.out).unwrap_or_else(|_| o.out.clone());
    let case_abs = std::fs::canonicalize(case_dir).unwrap_or_else(|_| case_dir.to_path_buf());
    let rel = |f: &str| -> String {
        match out_abs.strip_prefix(&case_abs) {
            Ok(r) => r.join(f).display().to_string(),
            Err(_) => out_abs.join(f).display().to_string(),
        }
    };
    let mut inputs = case_hashes.clone();
    if let (Some(p), Some(h)) = (&o.prices, &prices_sha) {
        inputs.insert(format!("prices {}", p.display()), h.clone());
    }
    let mut outputs: BTreeMap<String, String> =
        files.iter().map(|(f, h, _)| (rel(f), h.clone())).collect();
    outputs.insert(
        rel("SHA256SUMS"),
        sink::sha256_file(&o.out.join("SHA256SUMS"))?,
    );
    crate::case::append(
        case_dir,
        crate::case::Action {
            action: "report",
            command: o.command.clone(),
            inputs,
            outputs,
            note: None,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        },
    )?;
    Ok(ReportSummary {
        out: o.out.clone(),
        policy,
        headline,
        transfers: r.edges.len(),
        chart_nodes: fg.nodes.len(),
        chart_edges: fg.edges.len(),
        crossings: lay.crossings,
        peel_chains: fg.peel_chains.clone(),
        merged_small: fg.merged_small,
        files,
        generated,
        warnings,
        removed,
    })
}
