//! `chaintrace demo`: the whole pipeline on built-in data. Each step runs the same code as
//! its command (parsed from the same arguments a user would type), so the demo is also a
//! walk-through of the commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::anyhow;
use clap::Parser;

use super::args::DemoArgs;
use super::{Cli, CliError};
use crate::cluster::eval::read_mapping;
use crate::simulate::{Preset, SimOptions, simulate};

/// While alive, what the process writes to stdout goes to stderr: `demo --json` keeps
/// its steps' human output off stdout, which then holds only the demo's JSON document.
struct StdoutToStderr {
    saved: libc::c_int,
}

impl StdoutToStderr {
    fn new() -> std::io::Result<StdoutToStderr> {
        use std::io::Write;
        std::io::stdout().flush()?;
        // SAFETY: dup/dup2 on the process's own standard descriptors; the saved copy is
        // restored and closed in Drop.
        let saved = unsafe { libc::dup(libc::STDOUT_FILENO) };
        if saved < 0 || unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(StdoutToStderr { saved })
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: `saved` is the descriptor duplicated in `new`, still open.
        unsafe {
            libc::dup2(self.saved, libc::STDOUT_FILENO);
            libc::close(self.saved);
        }
    }
}

impl std::fmt::Debug for StdoutToStderr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StdoutToStderr")
    }
}

/// Runs one command as `chaintrace ARGS`.
fn step(cli: &Cli, what: &str, args: &[&str]) -> Result<(), CliError> {
    let mut argv = vec!["chaintrace"];
    if cli.quiet {
        argv.push("--quiet");
    }
    argv.extend_from_slice(args);
    if !cli.json {
        println!("\n$ {}", argv.join(" "));
    }
    let parsed = Cli::try_parse_from(&argv).map_err(|e| CliError {
        code: 2,
        error: anyhow!("internal error: the demo's {what} step does not parse: {e}"),
    })?;
    // Sub-steps print their own lines; with --json they go to stderr, and stdout holds only
    // the demo's summary.
    let _redirect = if cli.json {
        Some(
            StdoutToStderr::new()
                .map_err(|e| CliError::user(anyhow!("cannot redirect stdout: {e}")))?,
        )
    } else {
        None
    };
    let sub = Cli {
        json: false,
        quiet: true,
        command: parsed.command,
    };
    // The case records the step as a user would type it, not `chaintrace demo`.
    super::set_command_line(Some(argv.iter().map(|s| s.to_string()).collect()));
    let result = super::run(&sub);
    super::set_command_line(None);
    result.map_err(|e| CliError {
        code: e.code,
        error: e.error.context(format!("demo step {what} failed")),
    })
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Writes a labels CSV (address,label,category,actor) and returns the number of rows.
fn write_labels(path: &Path, rows: &BTreeMap<String, (String, String)>) -> Result<usize, CliError> {
    let mut csv = String::from("address,label,category,actor\n");
    for (a, (entity, cat)) in rows {
        csv.push_str(&format!("{a},{entity},{cat},{entity}\n"));
    }
    std::fs::write(path, csv)
        .map_err(|e| CliError::user(anyhow!("cannot write {}: {e}", path.display())))?;
    Ok(rows.len())
}

/// One world's run: dataset, clusters, labels, trace, report. Returns the report summary.
#[allow(clippy::too_many_arguments)]
fn world(
    cli: &Cli,
    name: &str,
    dir: &Path,
    blocks: &Path,
    truth: &Path,
    labels: &BTreeMap<String, (String, String)>,
    seeds: &[String],
    a: &DemoArgs,
) -> Result<crate::report::ReportSummary, CliError> {
    let data = dir.join("data");
    let case = dir.join("case");
    if data.exists() {
        // A rerun starts from a clean dataset, so the demo's output is its own.
        std::fs::remove_dir_all(&data)
            .map_err(|e| CliError::user(anyhow!("cannot clear {}: {e}", data.display())))?;
    }
    let (data_s, case_s) = (s(&data), s(&case));
    step(
        cli,
        "ingest",
        &[
            "ingest",
            "bitcoin",
            "--blocks-dir",
            &s(blocks),
            "--data",
            &data_s,
        ],
    )?;
    step(cli, "cluster", &["cluster", "bitcoin", "--data", &data_s])?;
    step(
        cli,
        "eval",
        &[
            "eval",
            "clusters",
            "--data",
            &data_s,
            "--truth",
            &s(truth),
            "--set",
            "multi-input",
            "--set",
            "multi-input+change-one-time",
        ],
    )?;
    let labels_csv = dir.join("labels.csv");
    write_labels(&labels_csv, labels)?;
    let mut import: Vec<String> = ["labels", "import", &s(&labels_csv), "--data", &data_s]
        .map(String::from)
        .to_vec();
    if let Some(t) = &a.timestamp {
        import.extend(["--imported-at".to_string(), t.clone()]);
    }
    let import: Vec<&str> = import.iter().map(String::as_str).collect();
    step(cli, "labels", &import)?;
    let seeds_file = dir.join("seeds.csv");
    std::fs::write(&seeds_file, format!("address\n{}\n", seeds.join("\n")))
        .map_err(|e| CliError::user(anyhow!("cannot write {}: {e}", seeds_file.display())))?;
    let seed_arg = format!("@{}", s(&seeds_file));
    step(
        cli,
        "trace",
        &[
            "trace",
            "--data",
            &data_s,
            "--seed",
            &seed_arg,
            "--policy",
            "all",
            "--stop-at",
            "exchange",
            "--max-hops",
            "8",
            "--min-value",
            "100000",
            "--force",
            "--level",
            "cluster",
            "--out",
            &case_s,
        ],
    )?;
    // The trace's measured error against the world's own truth, shown in the report.
    let trace_truth = if truth.is_file() {
        truth.parent().unwrap_or(truth)
    } else {
        truth
    };
    step(
        cli,
        "eval trace",
        &[
            "eval",
            "trace",
            &case_s,
            "--truth",
            &s(trace_truth),
            "--flagged",
            "vendor",
        ],
    )?;
    let mut report_args = vec![
        "report".to_string(),
        case_s.clone(),
        "--collapse-peel-chains".into(),
        "--max-nodes".into(),
        "80".into(),
    ];
    if let Some(p) = &a.prices {
        report_args.extend(["--prices".into(), s(p)]);
    }
    if let Some(t) = &a.timestamp {
        report_args.extend(["--timestamp".into(), t.clone()]);
    }
    let argv: Vec<&str> = std::iter::once("chaintrace")
        .chain(report_args.iter().map(String::as_str))
        .collect();
    if !cli.json {
        println!("\n$ {}", argv.join(" "));
    }
    let parsed = Cli::try_parse_from(&argv).map_err(|e| CliError {
        code: 2,
        error: anyhow!("internal error: the demo's report step does not parse: {e}"),
    })?;
    let super::Command::Report(ra) = &parsed.command else {
        unreachable!("parsed as a report")
    };
    let mut o = super::report::options(ra)?;
    o.command = argv.iter().map(|x| x.to_string()).collect();
    let summary = crate::report::report(&case, &o).map_err(|e| {
        CliError::user(anyhow::Error::from(e).context(format!("demo step report ({name}) failed")))
    })?;
    if !cli.json {
        super::report::print_summary(&summary);
    }
    Ok(summary)
}

pub(crate) fn run(cli: &Cli, a: &DemoArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let regtest_blocks = a.regtest.join("blocks");
    let regtest_truth = a.regtest.join("ground_truth");
    if !regtest_blocks.is_dir() || !regtest_truth.join("addresses.csv").is_file() {
        return Err(CliError::user(anyhow!(
            "the bundled regtest world is not at {} (expected blocks/ and ground_truth/ there); run the demo from the project's root or pass --regtest DIR",
            a.regtest.display()
        )));
    }
    std::fs::create_dir_all(&a.out)
        .map_err(|e| CliError::user(anyhow!("cannot create {}: {e}", a.out.display())))?;

    // 1. A simulated world with ground truth.
    let sim_dir = a.out.join("simulated");
    let world_dir = sim_dir.join("world");
    if !cli.json {
        println!(
            "== 1/2 simulated world: {} transactions, seed {} ==",
            a.txs, a.seed
        );
        println!(
            "\n$ chaintrace simulate --txs {} --seed {} --out {}",
            a.txs,
            a.seed,
            world_dir.display()
        );
    }
    if world_dir.exists() {
        std::fs::remove_dir_all(&world_dir)
            .map_err(|e| CliError::user(anyhow!("cannot clear {}: {e}", world_dir.display())))?;
    }
    let sim = simulate(
        &SimOptions {
            seed: a.seed,
            txs: a.txs,
            preset: Preset::Default,
            out: world_dir.clone(),
        },
        &indicatif::ProgressBar::hidden(),
    )
    .map_err(CliError::user)?;
    if !cli.json {
        println!(
            "{} blocks, {} transactions, {} flagged flows in the ground truth",
            sim.generated.blocks, sim.generated.transactions, sim.generated.flows
        );
    }
    let truth_addresses = world_dir.join("truth").join("addresses.parquet");
    let entity = read_mapping(&truth_addresses, &["entity"]).map_err(CliError::user)?;
    let category = read_mapping(&truth_addresses, &["category"]).map_err(CliError::user)?;
    let mut sim_labels = BTreeMap::new();
    let mut sim_seeds = Vec::new();
    for (addr, ent) in &entity {
        let cat = category.get(addr).map_or("", String::as_str);
        if matches!(
            cat,
            "exchange" | "mixer" | "merchant" | "illicit_vendor" | "ransomware"
        ) {
            sim_labels.insert(addr.clone(), (ent.clone(), cat.to_string()));
        }
        if cat == "illicit_vendor" {
            sim_seeds.push(addr.clone());
        }
    }
    sim_seeds.sort();
    let sim_summary = world(
        cli,
        "simulated",
        &sim_dir,
        &world_dir.join("blocks"),
        &world_dir.join("truth"),
        &sim_labels,
        &sim_seeds,
        a,
    )?;

    // 2. The bundled real regtest chain (written by Bitcoin Core).
    let rt_dir = a.out.join("regtest");
    if !cli.json {
        println!(
            "\n== 2/2 real Bitcoin Core regtest chain: {} ==",
            regtest_blocks.display()
        );
    }
    let rt_entity =
        read_mapping(&regtest_truth.join("addresses.csv"), &["entity"]).map_err(CliError::user)?;
    let rt_role =
        read_mapping(&regtest_truth.join("addresses.csv"), &["role"]).map_err(CliError::user)?;
    let mut rt_labels = BTreeMap::new();
    for (addr, ent) in &rt_entity {
        if rt_role.get(addr).is_some_and(|r| r.starts_with("exchange")) {
            rt_labels.insert(addr.clone(), (ent.clone(), "exchange".to_string()));
        }
    }
    let flagged =
        read_mapping(&regtest_truth.join("flagged.csv"), &["entity"]).map_err(CliError::user)?;
    for (addr, ent) in &flagged {
        rt_labels.insert(addr.clone(), (ent.clone(), "illicit_vendor".to_string()));
    }
    let mut rt_seeds: Vec<String> = flagged.keys().cloned().collect();
    rt_seeds.sort();
    let rt_summary = world(
        cli,
        "regtest",
        &rt_dir,
        &regtest_blocks,
        &regtest_truth.join("addresses.csv"),
        &rt_labels,
        &rt_seeds,
        a,
    )?;

    let secs = started.elapsed().as_secs_f64();
    if cli.json {
        let v = serde_json::json!({
            "seconds": secs,
            "simulated": sim_summary,
            "regtest": rt_summary,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("summaries serialise")
        );
        return Ok(());
    }
    println!("\n== what it shows ==");
    for (name, sum) in [
        ("simulated world", &sim_summary),
        ("regtest chain", &rt_summary),
    ] {
        println!("{name}: {}", sum.headline);
        println!(
            "  evidence report: {}",
            sum.out.join("report.html").display()
        );
        println!("  flow chart:      {}", sum.out.join("flow.png").display());
    }
    println!(
        "demo finished in {secs:.1} s; everything is in {}",
        PathBuf::from(&a.out).display()
    );
    Ok(())
}
