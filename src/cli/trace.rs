//! `chaintrace trace`: the flags made a [`Request`], the case folder checked, the trace run
//! by the library ([`crate::trace::request`]), the case written, and the answer printed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::anyhow;
use serde::Serialize;

use super::args::TraceArgs;
use super::{Cli, CliError};
use crate::trace::case::{CASE_FILES, Case};
use crate::trace::policy::Policy;
use crate::trace::request::{Chain, Level, Progress, Request, TraceError, parse_policies};
use crate::trace::{Amount, Direction};

/// A library error at the command line: an internal one exits 2, the rest 1.
fn cli_error(e: TraceError) -> CliError {
    CliError {
        code: if e.is_internal() {
            2
        } else if e.is_interrupted() {
            130
        } else {
            1
        },
        error: e.into(),
    }
}

/// The trace's flags as a checked request.
fn request(a: &TraceArgs) -> Result<Request, CliError> {
    Ok(Request {
        data: a.dataset.data.clone(),
        network: a.dataset.network.clone(),
        chain: if a.chain == "ethereum" {
            Chain::Ethereum
        } else {
            Chain::Bitcoin
        },
        token: a.token.clone(),
        token_decimals: a.token_decimals,
        token_symbol: a.token_symbol.clone(),
        seeds: a.seeds.clone(),
        direction: if a.direction == "backward" {
            Direction::Backward
        } else {
            Direction::Forward
        },
        policies: parse_policies(&a.policy).map_err(cli_error)?,
        all_policies: a.policy.iter().any(|p| p.trim() == "all"),
        max_hops: a.max_hops,
        min_value: a.min_value.clone(),
        stop_at: a.stop_at.clone(),
        from_height: a.from_height,
        to_height: a.to_height.unwrap_or(u64::MAX),
        from_time: a.from_time.clone(),
        to_time: a.to_time.clone(),
        include_private: a.include_private,
        min_share: a.min_share.clone(),
        through_coinjoins: a.through_coinjoins,
        allow_conflicted_cluster: a.allow_conflicted_cluster,
        max_seed_cluster: a.max_seed_cluster,
        prefer: a.prefer.clone(),
        level: if a.level == "cluster" {
            Level::Cluster
        } else {
            Level::Address
        },
        opening_balances: match &a.opening_balances {
            Some(url) if a.chain != "ethereum" => {
                return Err(CliError::user(anyhow::anyhow!(
                    "--opening-balances {}: Ethereum only (add --chain ethereum); a Bitcoin output's value is in the dataset",
                    crate::ingest::bitcoin::rpc::redact_in(url)
                )));
            }
            Some(c) if c == "cached" => Some(crate::trace::request::OpeningBalances::Cached),
            Some(url) => Some(crate::trace::request::OpeningBalances::Node(
                super::ingest::rpc_config(url, None, &a.retry)?,
            )),
            None => None,
        },
    })
}

/// The progress bar of a trace.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&self, steps: u64) {
        self.0.set_length(steps);
    }
    fn step(&self) {
        self.0.inc(1);
    }
    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// `--source esplora:URL`: fetches the seeds' neighbourhood into `--data` first.
fn fetch_neighbourhood(cli: &Cli, a: &TraceArgs, req: &Request) -> Result<(), CliError> {
    use crate::ingest::bitcoin::neighbourhood::{FetchOptions, fetch};
    use crate::ingest::bitcoin::rpc::{RpcClient, redact, redact_in};
    let Some(source) = &a.source else {
        return Ok(());
    };
    let url = match source.split_once(':') {
        Some((kind, url)) if kind.eq_ignore_ascii_case("esplora") => url,
        _ => {
            return Err(CliError::user(anyhow::anyhow!(
                "--source {}: give esplora:URL (an Esplora REST API, e.g. esplora:https://blockstream.info/api)",
                redact_in(source)
            )));
        }
    };
    if a.chain != "bitcoin" {
        return Err(CliError::user(anyhow::anyhow!(
            "--source esplora: fetches Bitcoin; for Ethereum ingest a block range with `ingest ethereum --rpc URL --from N --to M`"
        )));
    }
    let cfg = super::ingest::rpc_config(url, None, &a.retry)?;
    let client = RpcClient::new(cfg).map_err(CliError::user)?;
    let stop_addresses = crate::trace::request::stop_addresses(req).map_err(cli_error)?;
    let opts = FetchOptions {
        data_dir: req.data.clone(),
        seeds: crate::trace::seeds::seed_items_from(&req.seeds)
            .map_err(cli_error)?
            .into_iter()
            .map(|(s, _)| s)
            .collect(),
        backward: req.direction == Direction::Backward,
        max_hops: req.max_hops,
        min_value: u64::try_from(req.min_value.amount).unwrap_or(u64::MAX),
        stop_addresses,
        concurrency: a.concurrency,
        max_rps: a.max_rps,
    };
    let pb = super::progress_bar(cli, "hops");
    let s = fetch(client, &opts, &pb).map_err(|e| match e {
        crate::ingest::bitcoin::IngestError::Interrupted => CliError {
            code: 130,
            error: anyhow::anyhow!(
                "interrupted while fetching; the replies received so far are cached in {}/.fetch-cache: run the same command again to resume",
                req.data.display()
            ),
        },
        e => CliError::user(e),
    })?;
    if crate::ingest::interrupted() {
        return Err(CliError {
            code: 130,
            error: anyhow::anyhow!(
                "interrupted after fetching; run the same command again (the replies are cached)"
            ),
        });
    }
    if s.unconfirmed_spends > 0 {
        eprintln!(
            "chaintrace: warning: {} followed output(s) are spent by unconfirmed (mempool) transactions; the trace counts them as held until they confirm",
            s.unconfirmed_spends
        );
    }
    if let Some(old) = &s.replaced {
        eprintln!(
            "chaintrace: warning: {} held the neighbourhood of another trace (seeds {}, {} hops {}, fetched {}); it was replaced, so that trace's case no longer verifies against this --data: use one --data per --source case",
            s.chain_dir.display(),
            match old.seeds.len() {
                n if n > 3 => format!("{} and {} more", old.seeds[..3].join(" "), n - 3),
                _ => old.seeds.join(" "),
            },
            old.max_hops,
            old.direction,
            old.fetched_at
        );
    }
    // The fetch's figures are part of the answer (what was asked of a third party).
    if !cli.json {
        let asked = s.requests + s.cache_hits;
        eprintln!(
            "chaintrace: fetched {} transaction(s) in {} block(s) from {} (tip {}): {} request(s), {} from the cache ({:.0} % hit rate), {:.1} MiB, {:.1} s",
            s.transactions,
            s.blocks,
            redact(url),
            s.tip_height,
            s.requests,
            s.cache_hits,
            100.0 * s.cache_hits as f64 / asked.max(1) as f64,
            s.bytes as f64 / f64::from(1u32 << 20),
            s.elapsed_secs
        );
    }
    Ok(())
}

pub(crate) fn run(cli: &Cli, a: &TraceArgs) -> Result<(), CliError> {
    // Ctrl-C stops the trace with a word (exit 130) instead of killing the process; the
    // case folder is only replaced once every file is written. Installed first: reading
    // an old case's command and the seeds can take a while.
    crate::ingest::stop_on_ctrl_c()
        .map_err(|e| CliError::user(anyhow::anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    let stopped = || {
        crate::ingest::interrupted().then(|| CliError {
            code: 130,
            error: TraceError::Interrupted.into(),
        })
    };
    prepare_out(a)?;
    let req = request(a)?;
    if let Some(e) = stopped() {
        return Err(e);
    }
    fetch_neighbourhood(cli, a, &req)?;
    // The address index: built (or waited for) now, saying so, not silently in the trace.
    if req.chain == Chain::Bitcoin
        && let Ok((chain, _)) = crate::trace::request::chain_dir(&req.data, req.network.as_deref())
        && chain.join("_manifest.json").is_file()
    {
        super::cluster::open_index(&chain)?;
    }
    let case = req
        .run(&Bar(super::progress_bar(cli, "parts")))
        .map_err(cli_error)?;
    // Asked to stop after the walks: nothing is written either.
    if let Some(e) = stopped() {
        return Err(e);
    }
    save_case(&a.out, &case)?;
    print_case(cli, &a.out, &req, &case);
    Ok(())
}

/// The trace of `a` written into `out` as `chaintrace trace` writes it, without progress
/// bars or printing (the canvas's server runs traces this way); `--source` is not read.
pub(crate) fn run_quietly(a: &TraceArgs, out: &std::path::Path) -> Result<Case, CliError> {
    prepare_out(a)?;
    let req = request(a)?;
    let case = req
        .run(&Bar(indicatif::ProgressBar::hidden()))
        .map_err(cli_error)?;
    save_case(out, &case)?;
    Ok(case)
}

/// Writes `case` into `out` (checked by [`case_folder`]) with the command line as
/// recorded: the old case goes only now (a bad seed or an interrupted trace leaves it as it
/// was), its report stays only when the trace is the same to the byte (a rerun, which
/// keeps the command that first made it).
pub(crate) fn save_case(out: &std::path::Path, case: &Case) -> Result<(), CliError> {
    let command = super::command_line();
    // The same trace again (whatever output flags were added): trace.json keeps the
    // command that first made it, so its bytes, and the report, stay.
    // Compared by sha256, and the old command read alone: a trace of millions of edges
    // is never held as bytes or as a JSON tree.
    let old_path = out.join("trace.json");
    let old_sha = crate::store::sink::sha256_file(&old_path).ok();
    let old_command = crate::trace::case::recorded_command(&old_path);
    let is_old = |c: &[String]| {
        old_sha
            .as_ref()
            .is_some_and(|h| *h == case.trace_json_sha256(c))
    };
    let (recorded, same) = match old_command {
        Some(c) if is_old(&c) => (c, true),
        _ => {
            let same = is_old(&command);
            (command.clone(), same)
        }
    };
    if let Ok(problems) = crate::case::verify_chain(out)
        && !problems.is_empty()
    {
        eprintln!(
            "chaintrace: warning: the case's audit trail is broken ({}); `chaintrace case verify` shows it; this trace is appended after the break",
            problems[0]
        );
    }
    // The old report and measurement go once the new files are written, just before they
    // replace the old ones: an interrupted trace leaves the old case whole.
    case.write_recording(out, &recorded, &command, super::now_secs(), || {
        clear_stale(out, !same).map_err(|e| TraceError::stage(e.error))
    })
    .map_err(cli_error)
}

#[derive(Serialize)]
struct Summary<'a> {
    policy: Policy,
    totals: &'a crate::trace::Totals,
    exposure_category: &'a BTreeMap<String, Amount>,
    exposure_entity: &'a BTreeMap<String, Amount>,
    /// Addresses of the trace whose tags disagree (the tag used and why: trace.json
    /// `label_conflicts`), as the text answer notes.
    label_conflicts: usize,
    /// Non-public tags left out (`--include-private` uses them).
    private_tags_left_out: usize,
}

/// Prints a trace's answer (`--json`: per model, the totals, the exposures and the label
/// notes the text answer prints).
pub(crate) fn print_case(cli: &Cli, out: &std::path::Path, req: &Request, info: &Case) {
    let results = &info.results;
    if cli.json {
        let v: Vec<Summary> = results
            .iter()
            .map(|r| Summary {
                policy: r.policy,
                totals: &r.totals,
                exposure_category: &r.exposure_category,
                exposure_entity: &r.exposure_entity,
                label_conflicts: info.label_conflicts.len(),
                private_tags_left_out: info.private_ignored,
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return;
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
    let backward = req.direction == Direction::Backward;
    let account = asset.is_some();
    println!(
        "{}: {} trace of {}, {} label(s) on addresses in this dataset",
        out.display(),
        req.direction.name(),
        info.seeds,
        info.labels
    );
    if let Some(list) = info.parameters["incomplete_internal_transfers"].as_array() {
        eprintln!(
            "chaintrace: warning: {} internal transfer(s) of unknown value (the node's call traces left out what a SELFDESTRUCT moved): taint that reached one ends there, as \"through an unresolved transfer\"; the report lists them. First: {}",
            list.len(),
            list.first().and_then(|v| v.as_str()).unwrap_or("")
        );
    }
    // A default that decides the answer is said, not assumed.
    if req.stop_at.is_empty() {
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
        // The account model's words: transfers and balances, not outputs.
        let outputs = if account { "transfer" } else { "output" };
        if r.policy == Policy::Poison {
            println!(
                "  (poison is an upper bound: the whole value of every {outputs} the taint touched, not an amount that moved)"
            );
        }
        let poison = r.policy == Policy::Poison;
        let touched_at = format!("touched {outputs}s at");
        let verb = match (backward, poison) {
            (_, true) => touched_at.as_str(),
            (true, false) => "came from",
            (false, false) => "reached",
        };
        if poison {
            let (n, value) = crate::trace::touched(
                r.edges.iter().map(|e| {
                    (
                        e.txid.as_ref(),
                        e.vout,
                        e.from_address.as_ref(),
                        e.to_address.as_ref(),
                        e.output_value.unwrap_or(e.amount),
                    )
                }),
                account,
            );
            let what = if account { "transfers" } else { "outputs" };
            println!(
                "  {what} touched: {n} worth {} in all (not an amount that moved)",
                show(value)
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
                    _ if req.stop_at.iter().any(|c| c.trim() == "none") => {
                        "exit (the trace stops at no category: --stop-at none)".to_string()
                    }
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
                    crate::trace::share_bp(e.amount, e.output_value) < req.min_share.basis_points
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
                        req.min_share.text,
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
        let received: HashSet<&str> = r.edges.iter().map(|e| e.to.as_ref()).collect();
        let mut through: BTreeMap<String, Amount> = BTreeMap::new();
        for e in &r.edges {
            if let Some(l) = info.node_labels.get(&*e.from)
                && received.contains(e.from.as_ref())
                && !info.seed_nodes.contains(&*e.from)
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
        let held = match (account, backward) {
            (true, true) => "from balances held before the window",
            (true, false) => "held (still in accounts)",
            (false, _) => "held (unspent)",
        };
        let unresolved = [
            (held, t.holdings),
            ("spent outside the height/time window", t.outside_window),
            ("from outside the dataset", t.before_window),
            (
                "through an unresolved transfer (value unknown)",
                t.unresolved,
            ),
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
            .map(|(n, v)| {
                let n = if *n == "held (unspent)" { held } else { n };
                format!("{n} {}", show(*v))
            })
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
}

/// Checks `--out` before tracing: it must be new, empty, or a case written by this same
/// command (a rerun reproduces it). Another case is replaced only with `--force`, which
/// also removes its report (it would describe the old trace); a folder holding anything
/// else is never written into.
fn prepare_out(a: &TraceArgs) -> Result<(), CliError> {
    let Some(old) = case_folder(&a.out)? else {
        return Ok(());
    };
    // The same question: the old command parses to the same trace request (flag order,
    // spelling of paths, --quiet/--json/--force do not matter), or, typed in another
    // working directory, asks it of the same seed files and dataset.
    let same =
        old.as_ref()
            .is_some_and(|o| match <super::Cli as clap::Parser>::try_parse_from(o) {
                Ok(super::Cli {
                    command: super::Command::Trace(old_a),
                    ..
                }) => request_key(&old_a) == request_key(a) || same_by_content(&old_a, a),
                _ => false,
            });
    if !same && !a.force {
        return Err(CliError::user(anyhow!(
            "--out {} holds a case of another trace ({}); choose a new folder, or add --force to replace it (its report/ is removed too)",
            a.out.display(),
            old.map_or_else(|| "unreadable trace.json".to_string(), |o| o.join(" "))
        )));
    }
    Ok(())
}

/// Whether `out` can take a case: `None` when it is new or empty, `Some(old command)` when
/// it holds a case (`Some(None)`: its trace.json is unreadable).
///
/// # Errors
/// A folder that holds other files, or cannot be read.
pub(crate) fn case_folder(out: &std::path::Path) -> Result<Option<Option<Vec<String>>>, CliError> {
    let entries: Vec<String> = match std::fs::read_dir(out) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
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
        crate::serve::ANNOTATIONS_FILE,
    ];
    // A trace interrupted while it wrote leaves its files' temporary names (`.NAME.tmp`),
    // which the next write replaces.
    let leftover = |e: &str| {
        CASE_FILES
            .iter()
            .any(|f| e.strip_prefix('.').and_then(|e| e.strip_suffix(".tmp")) == Some(*f))
    };
    let entries: Vec<String> = entries
        .into_iter()
        .filter(|e| !kept.contains(&e.as_str()) && !leftover(e))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    // A folder with a trace.json is a case folder (other files in it are left alone); a
    // folder without one that holds anything else is not written into.
    if !entries.iter().any(|e| e == "trace.json") {
        // A case whose trace.json is gone still has its audit trail: a case, unreadable.
        if out.join(crate::case::AUDIT_FILE).is_file() {
            return Ok(Some(None));
        }
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
    Ok(Some(crate::trace::case::recorded_command(
        &out.join("trace.json"),
    )))
}

/// Removes what described the old case in `--out` when `remove_report` (the new trace
/// differs): its report and its measurement. Called once the new case's files are written
/// and before they replace the old ones (never before: a bad seed or an interrupted trace
/// must leave the old evidence as it was).
fn clear_stale(out: &std::path::Path, remove_report: bool) -> Result<(), CliError> {
    // The report described the old run (labels or the dataset may have changed since).
    let report = out.join("report");
    // A measurement of the old trace measures nothing of the new one.
    let eval = out.join("eval_trace.json");
    if remove_report && eval.exists() {
        std::fs::remove_file(&eval)
            .map_err(|e| CliError::user(anyhow!("cannot remove {}: {e}", eval.display())))?;
        eprintln!(
            "chaintrace: removed {}: it measured the earlier run; run chaintrace eval trace again",
            eval.display()
        );
    }
    if remove_report && report.exists() {
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
    // A seed file (`@FILE`) by its place, not its spelling: `@seeds.txt` and
    // `@/case/seeds.txt` are one seed list.
    let seeds: Vec<String> = a
        .seeds
        .iter()
        .map(|s| match s.strip_prefix('@') {
            Some(f) => format!("@{}", abs(std::path::Path::new(f)).display()),
            None => s.clone(),
        })
        .collect();
    key_of(
        a,
        &abs(&a.dataset.data).display().to_string(),
        &seeds,
        &abs(&a.out).display().to_string(),
    )
}

/// A trace request's parameters as one comparable text, with the dataset, the seeds and
/// the case folder as given.
fn key_of(a: &TraceArgs, data: &str, seeds: &[String], out: &str) -> String {
    format!(
        "{:?}",
        (
            (data, &a.dataset.network, &a.chain, &a.token),
            (seeds, &a.direction, &a.policy),
            (a.max_hops, a.min_value.amount, &a.stop_at),
            (a.from_height, a.to_height, &a.from_time, &a.to_time),
            (a.include_private, &a.prefer, &a.level),
            (
                a.allow_conflicted_cluster,
                a.max_seed_cluster,
                a.through_coinjoins
            ),
            out,
        )
    )
}

/// Whether the case in `new.out`, made by `old` (typed in another working directory,
/// whose relative paths cannot be resolved from here), asked `new`'s question: the same
/// parameters, seed files of the same sha256 and a dataset whose manifest has the sha256
/// the case records.
fn same_by_content(old: &TraceArgs, new: &TraceArgs) -> bool {
    let Some(rec) = crate::trace::case::recorded(&new.out.join("trace.json")) else {
        return false;
    };
    let old_seeds: Option<Vec<String>> = old
        .seeds
        .iter()
        .map(|s| match s.strip_prefix('@') {
            Some(f) => rec
                .inputs
                .get(&format!("seeds {f}"))
                .map(|h| format!("@sha256:{h}")),
            None => Some(s.clone()),
        })
        .collect();
    let new_seeds: Option<Vec<String>> = new
        .seeds
        .iter()
        .map(|s| match s.strip_prefix('@') {
            Some(f) => crate::store::sink::sha256_file(std::path::Path::new(f))
                .ok()
                .map(|h| format!("@sha256:{h}")),
            None => Some(s.clone()),
        })
        .collect();
    let manifest = if new.chain == "ethereum" {
        Some(new.dataset.data.join("ethereum/_manifest.json"))
    } else {
        crate::trace::request::chain_dir(&new.dataset.data, new.dataset.network.as_deref())
            .ok()
            .map(|(chain, _)| chain.join("_manifest.json"))
    };
    let new_data = manifest.and_then(|m| crate::store::sink::sha256_file(&m).ok());
    match (old_seeds, new_seeds, new_data) {
        (Some(os), Some(ns), Some(nd)) if !rec.dataset_manifest_sha256.is_empty() => {
            key_of(old, &rec.dataset_manifest_sha256, &os, "") == key_of(new, &nd, &ns, "")
        }
        _ => false,
    }
}
