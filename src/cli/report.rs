//! `chaintrace report`.

use anyhow::anyhow;

use super::args::ReportArgs;
use super::{Cli, CliError};
use crate::report::graph::{Columns, GraphOptions};
use crate::report::{PathChoice, ReportOptions, ReportSummary, fmt, report};

/// The report options of the command line.
pub(crate) fn options(a: &ReportArgs) -> Result<ReportOptions, CliError> {
    let timestamp = a
        .timestamp
        .as_deref()
        .map(fmt::parse_timestamp)
        .transpose()
        .map_err(CliError::user)?;
    if a.max_nodes < 2 {
        return Err(CliError::user(anyhow!("--max-nodes must be at least 2")));
    }
    Ok(ReportOptions {
        out: a.out.clone().unwrap_or_else(|| case_of(a).join("report")),
        formats: a
            .format
            .iter()
            .map(|f| f.trim().to_ascii_lowercase())
            .filter(|f| !f.is_empty())
            .collect(),
        policy: a.policy.clone(),
        graph: GraphOptions {
            collapse_peel_chains: a.collapse_peel_chains,
            min_peel_hops: a.min_peel_hops,
            max_nodes: a.max_nodes,
            columns: if a.columns == "time" {
                Columns::Time
            } else {
                Columns::Hop
            },
        },
        prices: a.prices.clone(),
        currency: a.fiat.clone(),
        timestamp,
        command: super::command_line(),
        max_table_rows: a.max_table_rows,
        paths: PathChoice::parse(&a.path).map_err(|e| CliError::user(anyhow!(e)))?,
    })
}

/// Prints what a report wrote.
pub(crate) fn print_summary(s: &ReportSummary) {
    for w in &s.warnings {
        eprintln!("chaintrace: warning: {w}");
    }
    println!("{}", s.headline);
    println!(
        "flow chart ({} model): {} nodes, {} edges, {} crossings{}{}",
        s.policy,
        s.chart_nodes,
        s.chart_edges,
        s.crossings,
        if s.peel_chains.is_empty() {
            String::new()
        } else {
            format!(", {} peel chain(s) collapsed", s.peel_chains.len())
        },
        if s.merged_small > 0 {
            format!(", {} small nodes merged", s.merged_small)
        } else {
            String::new()
        }
    );
    for (f, _, bytes) in &s.files {
        println!("  {:<40} {:>10} bytes", s.out.join(f).display(), bytes);
    }
    if !s.removed.is_empty() {
        println!(
            "removed from {} (an earlier report's, not written this time): {}",
            s.out.display(),
            s.removed.join(", ")
        );
    }
}

pub(crate) fn run(cli: &Cli, a: &ReportArgs) -> Result<(), CliError> {
    let o = options(a)?;
    let s = report(case_of(a), &o).map_err(CliError::user)?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summaries serialise")
        );
    } else {
        print_summary(&s);
    }
    Ok(())
}

/// The case folder, given as CASE or as --case (clap requires one).
fn case_of(a: &ReportArgs) -> &std::path::Path {
    a.case
        .as_deref()
        .or(a.case_flag.as_deref())
        .expect("clap requires CASE or --case")
}
