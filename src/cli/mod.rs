//! The `chaintrace` command line (DESIGN.md §2).

mod args;
mod ingest;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};

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
        Command::Ingest(args::IngestCommand::Bitcoin(a)) => ingest::bitcoin(cli, a),
        other => Err(CliError::user(anyhow::anyhow!(
            "`chaintrace {}` is not built yet in this version ({}); see the issues of the project for its status",
            other.name(),
            env!("CARGO_PKG_VERSION")
        ))),
    }
}

/// Whether progress bars should be drawn.
pub(crate) fn show_progress(cli: &Cli) -> bool {
    !cli.quiet && std::io::stderr().is_terminal()
}
