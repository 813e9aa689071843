//! The `chaintrace` command line (DESIGN.md §2).

mod args;
mod cluster;
mod demo;
mod ingest;
mod labels;
mod report;
mod simulate;
mod stats;
mod trace;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command, StatsCommand};

/// An error at the command-line edge, with its exit code.
#[derive(Debug)]
pub struct CliError {
    /// 1: bad input or a missing file (the user can fix it); 2: an internal error.
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    /// A user error (exit 1).
    pub fn user(error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            code: 1,
            error: error.into(),
        }
    }
}

/// Parses the command line, runs it, prints errors and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`chaintrace ... | head`) is not an error.
            if e.error.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "chaintrace: error: {:#}", e.error);
            ExitCode::from(e.code)
        }
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// What the command failed with, classified by exit code.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Ingest(i) if matches!(**i, args::IngestCommand::Bitcoin(_)) => {
            let args::IngestCommand::Bitcoin(a) = &**i else {
                unreachable!("matched above")
            };
            ingest::bitcoin(cli, a)
        }
        Command::Ingest(i) if matches!(**i, args::IngestCommand::Ethereum(_)) => {
            let args::IngestCommand::Ethereum(a) = &**i else {
                unreachable!("matched above")
            };
            ingest::ethereum(cli, a)
        }
        Command::Simulate(a) => simulate::run(cli, a),
        Command::Trace(a) => trace::run(cli, a),
        Command::Report(a) => report::run(cli, a),
        Command::Demo(a) => demo::run(cli, a),
        Command::Stats(s) => stats::run(cli, s),
        Command::Labels(args::LabelsCommand::Import(a)) => labels::import(cli, a),
        Command::Cluster(args::ClusterCommand::Bitcoin(a)) => cluster::bitcoin(cli, a),
        Command::Cluster(args::ClusterCommand::Ethereum(a)) => cluster::ethereum(cli, a),
        Command::Cluster(args::ClusterCommand::Explain(a)) => cluster::explain(cli, a),
        Command::Cluster(args::ClusterCommand::Show(a)) => cluster::show(cli, a),
        Command::Eval(args::EvalCommand::Clusters(a)) => cluster::eval_clusters(cli, a),
        other => Err(CliError::user(anyhow::anyhow!(
            "`chaintrace {}` is not built yet in this version ({}); see the issues of the project for its status",
            other.name(),
            env!("CARGO_PKG_VERSION")
        ))),
    }
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal or `--quiet`.
pub(crate) fn progress_bar(cli: &Cli, unit: &str) -> indicatif::ProgressBar {
    if !show_progress(cli) {
        return indicatif::ProgressBar::hidden();
    }
    let pb =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
        ))
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    pb
}

/// Whether progress bars should be drawn.
pub(crate) fn show_progress(cli: &Cli) -> bool {
    !cli.quiet && std::io::stderr().is_terminal()
}
