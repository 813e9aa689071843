//! The `chaintrace` command line (DESIGN.md §2).

mod args;
mod case;
mod cluster;
pub mod data_dir;
mod demo;
mod ingest;
mod labels;
mod report;
mod serve;
mod share;
mod simulate;
mod stats;
pub(crate) mod trace;
mod watch;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command, StatsCommand};
pub use case::shell_words;

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

/// Prints an error: on stderr, or with `--json` as the one JSON document on stdout:
/// `{"error": {"kind", "message", "hint"}}` (kind: usage, input, internal).
/// An error and its causes on one line, each cause once (many error types repeat their
/// source's text in their own), with every URL's secrets hidden.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for c in e.chain() {
        let t = c.to_string();
        if t.is_empty() || s.contains(&t) {
            continue;
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&t);
    }
    crate::ingest::bitcoin::rpc::redact_text(&s)
}

fn report_error(json: bool, kind: &str, message: &str, hint: &str) {
    if json {
        let v = serde_json::json!({"error": {"kind": kind, "message": message, "hint": hint}});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("errors serialise")
        );
    } else {
        let _ = writeln!(std::io::stderr(), "chaintrace: error: {message}");
    }
}

/// Parses the command line, runs it, prints errors and returns the exit code: 0 ok, 1 bad
/// input or usage (clap's usage errors included), 2 internal error.
pub fn main() -> ExitCode {
    // `chaintrace ... | head` ends quietly, as other command-line tools do, instead of
    // panicking on the closed pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // glibc raises its mmap threshold (up to 32 MiB) each time a large block is freed, and
    // from then on serves blocks of that size from the heap, which it keeps: a stage that
    // grows and frees arrays of millions of ids kept ~30 MiB more than it used on a 1 M
    // world (cluster bitcoin: 89 -> 61 MiB at the peak). Blocks of 1 MiB and more are
    // mapped and returned to the system when freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no thread has started yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    catch_panics();
    let json = std::env::args_os().any(|a| a == "--json");
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if json && e.kind() == ErrorKind::DisplayVersion {
                println!("{}", serde_json::json!({"version": crate::VERSION}));
                return ExitCode::SUCCESS;
            }
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if json {
                // The message up to the usage lines, on one line.
                let text = e.render().to_string();
                let message = text
                    .split("\n\nUsage:")
                    .next()
                    .unwrap_or("")
                    .split("\n\nFor more information")
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                report_error(true, "usage", &message, "see chaintrace --help");
            } else {
                let _ = e.print();
            }
            return ExitCode::from(1);
        }
    };
    // A budget from the environment is checked as --memory is: a tight budget mistyped
    // must not become the default (half the RAM) without a word.
    let memory = match (cli.memory, std::env::var("CHAINTRACE_MEMORY")) {
        (Some(b), _) => Some(b),
        // Empty is unset, as for other environment variables.
        (None, Ok(v)) if v.trim().is_empty() => None,
        (None, Ok(v)) => match crate::memory::Budget::parse(&v) {
            Ok(b) => Some(b),
            Err(e) => {
                report_error(
                    cli.json,
                    "usage",
                    &format!("CHAINTRACE_MEMORY: {}", e.0),
                    "set CHAINTRACE_MEMORY to a size such as 8G, or unset it (default: half the RAM)",
                );
                return ExitCode::from(1);
            }
        },
        (None, Err(_)) => None,
    };
    if let Some(b) = memory {
        crate::memory::set(b);
        let ram = crate::memory::Budget::half_of_ram()
            .bytes()
            .saturating_mul(2);
        if b.bytes() > ram {
            eprintln!(
                "chaintrace: warning: the memory budget {b} is more than this machine's RAM ({}): the stages will plan for memory that is not there",
                crate::memory::show(ram)
            );
        }
    }
    if let Err(e) = data_dir::resolve_command(&mut cli.command) {
        let help = format!("see chaintrace {} --help", cli.command.name());
        report_error(cli.json, "input", &error_text(&e.error), &help);
        return ExitCode::from(e.code);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&cli)));
    let Ok(outcome) = outcome else {
        return crashed(&cli);
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`chaintrace ... | head`) is not an error.
            if e.error.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            if e.error.downcast_ref::<Reported>().is_some() {
                return ExitCode::from(e.code);
            }
            let message = error_text(&e.error);
            let (kind, hint) = match e.code {
                2 => (
                    "internal",
                    "this is a bug in chaintrace; please report it with the command line",
                ),
                130 => (
                    "interrupted",
                    "what was saved before the stop is kept (the message says what); run the same command again to go on",
                ),
                _ => ("input", ""),
            };
            let help = format!("see chaintrace {} --help", cli.command.name());
            let hint = if hint.is_empty() { help.as_str() } else { hint };
            report_error(cli.json, kind, &message, hint);
            ExitCode::from(e.code)
        }
    }
}

/// The first panic of this process: its message and where it was raised.
static PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Replaces Rust's panic message (a source line and a backtrace hint, then exit code 101)
/// with [`crashed`]'s: the first panic's text is kept for it. A panic in a thread other
/// than the main one is also said on stderr when it happens (a server's worker, say, whose
/// panic never reaches the main thread). With `RUST_BACKTRACE` set, Rust's own message is
/// printed too.
fn catch_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        let text = match info.location() {
            Some(l) => format!("{what} (at {}:{})", l.file(), l.line()),
            None => what,
        };
        let text = crate::ingest::bitcoin::rpc::redact_text(&text);
        let thread = std::thread::current();
        if thread.name() != Some("main") {
            eprintln!(
                "chaintrace: internal error in thread {}: {text}",
                thread.name().unwrap_or("(unnamed)")
            );
        }
        PANIC
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(text);
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default(info);
        }
    }));
}

/// What to say when a command panicked, and its exit code. An index loaded by the command
/// whose files no longer match the sha256 recorded at build is the likely cause (a damaged
/// file of the right size passes the checks at load, and an id read from it can point past
/// an array): it is named, with the rebuild that mends it (exit 1). Otherwise the panic is
/// a bug, reported as an internal error (exit 2). With `--json`, either is the one JSON
/// document on stdout.
fn crashed(cli: &Cli) -> ExitCode {
    let panic = PANIC
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| "a panic without a message".to_string());
    for dir in crate::index::loaded_dirs() {
        let damaged = match crate::index::Index::damaged_files(&dir) {
            Ok(d) => d,
            Err(e) => vec![e.to_string()],
        };
        if damaged.is_empty() {
            continue;
        }
        let message = format!(
            "the index in {} is damaged: {} (the command failed on it: {panic})",
            dir.display(),
            damaged.join(", ")
        );
        let hint = rebuild_hint(&dir);
        report_error(cli.json, "input", &message, &hint);
        if !cli.json {
            eprintln!("chaintrace: {hint}");
        }
        return ExitCode::from(1);
    }
    // An index built before file hashes were recorded cannot be checked: it may be the
    // cause, and its rebuild (with --data) is the first thing to try.
    let unverified = crate::index::loaded_dirs()
        .into_iter()
        .find(|d| crate::index::Index::load(d).is_ok_and(|ix| ix.meta.files_sha256.is_empty()));
    let hint = match unverified {
        None => "this is a bug in chaintrace; please report it with the command line".to_string(),
        Some(d) => format!(
            "this is a bug in chaintrace, or a damaged index in {} (built by an older version, it records no file hashes to check): {}, and report the bug if the command still fails",
            d.display(),
            rebuild_hint(&d)
        ),
    };
    report_error(
        cli.json,
        "internal",
        &format!("internal error: {panic}"),
        &hint,
    );
    if !cli.json {
        eprintln!("chaintrace: {hint}");
    }
    ExitCode::from(2)
}

/// The command that rebuilds the index in `dir` (`DATA/<network>/index`) from its dataset.
pub(crate) fn rebuild_hint(dir: &Path) -> String {
    let data = dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| dir.display().to_string(), |d| d.display().to_string());
    format!(
        "rebuild the index from the dataset: chaintrace cluster index --data {} --rebuild",
        shell_words(&[data])
    )
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
        Command::Check(args::CheckCommand::Ethereum(a)) => ingest::check_ethereum(cli, a),
        Command::Trace(a) => trace::run(cli, a),
        Command::Report(a) => report::run(cli, a),
        Command::Demo(a) => demo::run(cli, a),
        Command::Serve(a) => serve::run(cli, a),
        Command::Share(c) => share::run(cli, c),
        Command::Watch(a) => watch::run(cli, a),
        Command::Stats(s) => stats::run(cli, s),
        Command::Case(c) => case::run(cli, c),
        Command::Labels(args::LabelsCommand::Import(a)) => labels::import(cli, a),
        Command::Labels(args::LabelsCommand::List(a)) => labels::list(cli, a),
        Command::Labels(args::LabelsCommand::Search(a)) => labels::search(cli, a),
        Command::Labels(args::LabelsCommand::Remove(a)) => labels::remove(cli, a),
        Command::Labels(args::LabelsCommand::Conflicts(a)) => labels::conflicts(cli, a),
        Command::Cluster(args::ClusterCommand::Bitcoin(a)) => cluster::bitcoin(cli, a),
        Command::Cluster(args::ClusterCommand::Index(a)) => cluster::index(cli, a),
        Command::Cluster(args::ClusterCommand::Ethereum(a)) => cluster::ethereum(cli, a),
        Command::Cluster(args::ClusterCommand::Explain(a)) => cluster::explain(cli, a),
        Command::Cluster(args::ClusterCommand::Show(a)) => cluster::show(cli, a),
        Command::Eval(args::EvalCommand::Clusters(a)) => cluster::eval_clusters(cli, a),
        Command::Eval(args::EvalCommand::Trace(a)) => case::eval_trace(cli, a),
        other => Err(CliError::user(anyhow::anyhow!(
            "`chaintrace {}` is not built yet in this version ({}); see the issues of the project for its status",
            other.name(),
            crate::VERSION
        ))),
    }
}

/// An error already reported on stdout (as the command's JSON document): exit with its code,
/// print nothing more.
#[derive(Debug)]
pub(crate) struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported above")
    }
}

impl std::error::Error for Reported {}

/// Seconds since the Unix epoch, now (0 on a clock before 1970).
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Prints `v` as the command's one JSON document on stdout.
pub(crate) fn print_json(v: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("command results serialise")
    );
}

/// The command line a case records: the one typed, or the step the demo runs.
static COMMAND_LINE: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// The command line being run (see [`COMMAND_LINE`]).
pub(crate) fn command_line() -> Vec<String> {
    redact_args(
        COMMAND_LINE
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .unwrap_or_else(|| std::env::args().collect()),
    )
}

/// A command line with its secrets hidden, for files and messages: the value of
/// `--rpc-password` and `--rpc-header`, and every URL's credentials, query and key-like
/// path segments ([`crate::ingest::bitcoin::rpc::redact`]).
pub(crate) fn redact_args(args: Vec<String>) -> Vec<String> {
    const SECRET: [&str; 2] = ["--rpc-password", "--rpc-header"];
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
            continue;
        }
        if SECRET.contains(&a.as_str()) {
            hide_next = true;
            out.push(a);
        } else if let Some(flag) = SECRET.iter().find(|f| a.starts_with(&format!("{f}="))) {
            out.push(format!("{flag}=***"));
        } else {
            // Every URL inside the argument (`--rpc=URL`, `esplora:URL`, a bare URL).
            out.push(crate::ingest::bitcoin::rpc::redact_in(&a));
        }
    }
    out
}

/// Records `argv` as the command line being run, until `None` is set again.
pub(crate) fn set_command_line(argv: Option<Vec<String>>) {
    if let Ok(mut c) = COMMAND_LINE.lock() {
        *c = argv;
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
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{prefix}} {{msg}}"
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
