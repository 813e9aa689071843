//! `chaintrace demo`: the whole pipeline on built-in data. Each step calls the library
//! stage its command calls (ingest, `cluster::build`, `cluster::eval::evaluate_sets`,
//! `labels::import`, `trace::Request::run`, `trace::eval::measure`, `report::report`) and
//! prints what the command prints, after the command line a user would type for it: the
//! demo is also a walk-through of the commands, and what it writes records those lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::anyhow;

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

/// Shows the command a user would type for the next step (`$ chaintrace …`), records it
/// as the command line of what the step writes (case, audit trail, report), and, with
/// `--json`, sends the step's own output to stderr. The step itself calls the library.
fn announce(cli: &Cli, args: &[&str]) -> Result<Option<StdoutToStderr>, CliError> {
    // The report draws no progress bar: its command line never had --quiet.
    let mut argv = vec!["chaintrace"];
    if cli.quiet && args.first() != Some(&"report") {
        argv.push("--quiet");
    }
    argv.extend_from_slice(args);
    if !cli.json {
        println!("\n$ {}", argv.join(" "));
    }
    super::set_command_line(Some(argv.iter().map(|s| s.to_string()).collect()));
    if cli.json {
        StdoutToStderr::new()
            .map(Some)
            .map_err(|e| CliError::user(anyhow!("cannot redirect stdout: {e}")))
    } else {
        Ok(None)
    }
}

/// The steps print as their commands do, without progress bars (the demo's own output).
fn step_cli(a: &DemoArgs) -> Cli {
    Cli {
        json: false,
        quiet: true,
        memory: None,
        command: super::Command::Demo(a.clone()),
    }
}

/// A step's error, named by the step.
fn failed(what: &str) -> impl Fn(CliError) -> CliError + '_ {
    move |e| CliError {
        code: e.code,
        error: e.error.context(format!("demo step {what} failed")),
    }
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

/// One world's run: dataset, clusters, labels, trace, report, each a library call (the
/// command a user would type is shown before it). Returns the report summary.
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
    let sub = step_cli(a);
    let data = dir.join("data");
    let case = dir.join("case");
    if data.exists() {
        // A rerun starts from a clean dataset, so the demo's output is its own.
        std::fs::remove_dir_all(&data)
            .map_err(|e| CliError::user(anyhow!("cannot clear {}: {e}", data.display())))?;
    }
    let (data_s, case_s) = (s(&data), s(&case));

    // Ingest: Bitcoin Core's blocks directory into the dataset.
    let quiet = announce(
        cli,
        &[
            "ingest",
            "bitcoin",
            "--blocks-dir",
            &s(blocks),
            "--data",
            &data_s,
        ],
    )?;
    {
        let _lock = super::ingest::lock_dataset(&data).map_err(failed("ingest"))?;
        let opts = crate::ingest::bitcoin::BlocksDirOptions {
            blocks_dir: blocks.to_path_buf(),
            chain_selection: crate::ingest::bitcoin::ChainSelection::Auto,
            range: crate::ingest::bitcoin::RangeOptions::new(&data),
        };
        let mut summary =
            crate::ingest::bitcoin::ingest_blocks_dir(&opts, &indicatif::ProgressBar::hidden())
                .map_err(|e| failed("ingest")(CliError::user(e)))?;
        if let Some(e) = summary.error.take() {
            return Err(failed("ingest")(CliError::user(e)));
        }
        super::ingest::print_summary(&sub, &summary, None);
    }
    drop(quiet);

    // Labels first: the world's exchanges, services and flagged entities, so that the
    // clustering's guard holds back change merges joining differently labelled actors.
    let labels_csv = dir.join("labels.csv");
    write_labels(&labels_csv, labels)?;
    let mut import: Vec<String> = ["labels", "import", &s(&labels_csv), "--data", &data_s]
        .map(String::from)
        .to_vec();
    if let Some(t) = &a.timestamp {
        import.extend(["--imported-at".to_string(), t.clone()]);
    }
    let quiet = announce(cli, &import.iter().map(String::as_str).collect::<Vec<_>>())?;
    let now_ms = match &a.timestamp {
        Some(t) => crate::report::fmt::parse_timestamp(t).map_err(CliError::user)?,
        None => super::now_secs(),
    }
    .saturating_mul(1000);
    let report = crate::labels::import(std::slice::from_ref(&labels_csv), None, &data, now_ms)
        .map_err(|e| failed("labels")(CliError::user(e)))?;
    super::labels::print_rejected(&report.files);
    super::labels::print_import(&data, &report);
    drop(quiet);

    // Cluster: the address index, then the default heuristics (multi-input, change vote).
    let quiet = announce(cli, &["cluster", "bitcoin", "--data", &data_s])?;
    let (chain, network) = crate::trace::request::chain_dir(&data, None)
        .map_err(|e| failed("cluster")(CliError::user(e)))?;
    let idx = super::cluster::open_index(&chain).map_err(failed("cluster"))?;
    let actors: std::collections::HashMap<String, String> = labels
        .iter()
        .map(|(addr, (entity, _))| (addr.clone(), entity.clone()))
        .collect();
    let t = Instant::now();
    let built = crate::cluster::build(
        &idx,
        &data,
        &network,
        &crate::cluster::BuildOptions {
            labels: Some(&actors),
            ..crate::cluster::BuildOptions::new(&crate::cluster::heuristics::Heuristic::DEFAULT)
        },
    )
    .map_err(|e| failed("cluster")(CliError::user(e)))?;
    super::cluster::print_built(&sub, &built, t.elapsed().as_secs_f64());
    drop(quiet);

    // Clustering's error against the world's own truth.
    let quiet = announce(
        cli,
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
            "multi-input+change-vote",
        ],
    )?;
    {
        use crate::cluster::heuristics::Heuristic;
        let truth_map = crate::cluster::eval::read_truth(truth)
            .map_err(|e| failed("eval")(CliError::user(e)))?;
        let sets = [vec![Heuristic::MultiInput], Heuristic::DEFAULT.to_vec()];
        // What perfect change detection would reach, when the truth marks change.
        let oracle = crate::cluster::eval::read_change_flags(truth)
            .map_err(|e| failed("eval")(CliError::user(e)))?
            .map(|flags| crate::cluster::eval::oracle(&idx, &truth_map, &flags));
        let rows = crate::cluster::eval::evaluate_sets(
            &idx,
            &truth_map,
            truth.file_name().map(|f| f.to_string_lossy().to_string()),
            &sets,
            oracle,
            &crate::cluster::ClusterOptions {
                max_change_join: Some(crate::cluster::DEFAULT_HOLD_SIZE),
                labels: None,
                fingerprints: Some(
                    &crate::cluster::fingerprint::read(&idx, &chain)
                        .map_err(|e| failed("eval")(CliError::user(e)))?,
                ),
                prices: None,
            },
            &built.dir,
        )
        .map_err(|e| failed("eval")(CliError::user(e)))?
        .ok_or_else(|| {
            CliError::user(anyhow!(
                "demo step eval failed: no address of {} appears in the dataset",
                truth.display()
            ))
        })?;
        super::cluster::print_scores(&sub, &rows);
    }
    drop(quiet);
    drop(idx);

    // Trace: forward from the flagged entity's addresses, every model, to the exchanges.
    let seeds_file = dir.join("seeds.csv");
    std::fs::write(&seeds_file, format!("address\n{}\n", seeds.join("\n")))
        .map_err(|e| CliError::user(anyhow!("cannot write {}: {e}", seeds_file.display())))?;
    let seed_arg = format!("@{}", s(&seeds_file));
    let quiet = announce(
        cli,
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
    {
        use crate::trace::request::{Level, Request, parse_min_value, parse_policies};
        super::trace::case_folder(&case).map_err(failed("trace"))?;
        let all = ["all".to_string()];
        let req = Request {
            seeds: vec![seed_arg.clone()],
            policies: parse_policies(&all).map_err(|e| failed("trace")(CliError::user(e)))?,
            all_policies: true,
            stop_at: vec!["exchange".into()],
            max_hops: 8,
            min_value: parse_min_value("100000")
                .map_err(|e| CliError::user(anyhow!("demo step trace failed: {e}")))?,
            level: Level::Cluster,
            ..Request::bitcoin(&data)
        };
        let found = req
            .run(&())
            .map_err(|e| failed("trace")(CliError::user(e)))?;
        super::trace::save_case(&case, &found).map_err(failed("trace"))?;
        super::trace::print_case(&sub, &case, &req, &found);
    }
    drop(quiet);

    // The trace's measured error against the world's own truth, shown in the report.
    let trace_truth = if truth.is_file() {
        truth.parent().unwrap_or(truth)
    } else {
        truth
    };
    let quiet = announce(
        cli,
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
    let (doc, models) = crate::trace::eval::measure(
        &crate::trace::eval::Measure {
            case: &case,
            truth: trace_truth,
            flagged: Some("vendor"),
            category: "exchange",
            allow_disjoint: false,
            command: super::command_line(),
            now: super::now_secs(),
        },
        Vec::new(),
    )
    .map_err(|e| failed("eval trace")(CliError::user(e)))?;
    super::case::print_eval(&sub, &case, "exchange", &doc, &models, &[]);
    drop(quiet);

    // The report: charts, evidence HTML, tables.
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
    let quiet = announce(
        cli,
        &report_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let mut o = crate::report::ReportOptions::new(&case);
    o.graph.collapse_peel_chains = true;
    o.graph.max_nodes = 80;
    o.prices.clone_from(&a.prices);
    o.timestamp = a
        .timestamp
        .as_deref()
        .map(crate::report::fmt::parse_timestamp)
        .transpose()
        .map_err(CliError::user)?;
    o.command = super::command_line();
    let summary = crate::report::report(&case, &o).map_err(|e| {
        CliError::user(anyhow::Error::from(e).context(format!("demo step report ({name}) failed")))
    })?;
    drop(quiet);
    super::set_command_line(None);
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
            "\n$ chaintrace simulate --txs {} --seed {} --start 2025-01-01 --end 2025-12-31{} --out {}",
            a.txs,
            a.seed,
            a.prices
                .as_ref()
                .map(|p| format!(" --prices {}", p.display()))
                .unwrap_or_default(),
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
            // A year of 2025, so the timeline and the monthly charts show something real.
            period: Some(crate::simulate::Period {
                start: 1_735_689_600,
                end: 1_767_225_600,
            }),
            // The report's prices also make round payments round in dollars on the days
            // they cover.
            prices: a.prices.clone(),
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
