//! Which dataset directory a command uses.
//!
//! `--data DIR` when given; otherwise `CHAINTRACE_DATA`; otherwise `./data` when it exists;
//! otherwise the `data = "DIR"` of the first `chaintrace.toml` found in the working
//! directory or above it (relative to that file). A `--data` that points inside a dataset
//! (`data/regtest`) means its parent and that network. Commands that read a dataset refuse
//! a directory that holds none, and label commands a directory that does not exist, so a
//! mistyped path never becomes a stray folder.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::CliError;
use super::args::{
    ClusterCommand, Command, DatasetArgs, EvalCommand, IngestCommand, LabelsCommand, StatsCommand,
};

/// The names a chain's directory inside a dataset can have.
const CHAIN_DIRS: [&str; 6] = [
    "bitcoin", "testnet", "testnet4", "signet", "regtest", "ethereum",
];

/// The configuration file looked for upward from the working directory.
pub const CONFIG_FILE: &str = "chaintrace.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    data: Option<PathBuf>,
}

/// What a command needs of its `--data`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// It creates the dataset (ingest).
    Nothing,
    /// The directory must exist (labels).
    Directory,
    /// It must hold a dataset.
    Dataset,
}

/// The `data = ...` of the nearest `chaintrace.toml` at or above `start`, resolved against
/// the file's directory.
fn from_config(start: &Path) -> Result<Option<(PathBuf, PathBuf)>, CliError> {
    for dir in start.ancestors() {
        let file = dir.join(CONFIG_FILE);
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", file.display())))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| CliError::user(anyhow!("{} is not valid: {e}", file.display())))?;
        return Ok(cfg.data.map(|d| (dir.join(d), file)));
    }
    Ok(None)
}

/// Whether `dir` holds a dataset of some chain.
fn holds_dataset(dir: &Path) -> bool {
    CHAIN_DIRS
        .iter()
        .any(|c| dir.join(c).join("_manifest.json").is_file())
}

/// Resolves one `--data` (and, for dataset readers, `--network`) in place.
fn resolve(
    data: &mut PathBuf,
    network: Option<&mut Option<String>>,
    need: Need,
) -> Result<(), CliError> {
    let mut from = "--data".to_string();
    if data.as_os_str() == "data" {
        if let Some(env) = std::env::var_os("CHAINTRACE_DATA").filter(|v| !v.is_empty()) {
            *data = PathBuf::from(env);
            from = "CHAINTRACE_DATA".into();
        } else if !Path::new("data").exists() {
            let cwd = std::env::current_dir()
                .map_err(|e| CliError::user(anyhow!("cannot read the working directory: {e}")))?;
            if let Some((d, file)) = from_config(&cwd)? {
                *data = d;
                from = format!("the data of {}:", file.display());
            }
        }
    }
    // Inside a dataset: `data/regtest` is `data` with network regtest.
    if data.join("_manifest.json").is_file()
        && let (Some(name), Some(parent)) = (
            data.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string),
            data.parent().map(Path::to_path_buf),
        )
        && CHAIN_DIRS.contains(&name.as_str())
    {
        *data = if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent
        };
        if let Some(n) = network
            && n.is_none()
            && name != "ethereum"
        {
            *n = Some(name);
        }
    }
    match need {
        Need::Nothing => Ok(()),
        Need::Directory if data.is_dir() => Ok(()),
        Need::Directory => Err(CliError::user(anyhow!(
            "{from} {} does not exist; give the dataset directory (ingest creates it; for labels before a `trace --source` that fills it, create it: mkdir), or set CHAINTRACE_DATA or a {CONFIG_FILE} with data = \"DIR\"",
            data.display()
        ))),
        Need::Dataset if holds_dataset(data) => Ok(()),
        Need::Dataset if !data.exists() => Err(CliError::user(anyhow!(
            "{from} {} does not exist; give the dataset directory that `chaintrace ingest ... --data DIR` wrote (check the path for a typo), or set CHAINTRACE_DATA or a {CONFIG_FILE} with data = \"DIR\"",
            data.display()
        ))),
        Need::Dataset => Err(CliError::user(anyhow!(
            "{from} {} holds no dataset: no Bitcoin dataset and no Ethereum dataset (no <chain>/_manifest.json in it); ingest one first (chaintrace ingest bitcoin|ethereum ... --data {}), or point --data, CHAINTRACE_DATA or {CONFIG_FILE} at an existing dataset",
            data.display(),
            data.display()
        ))),
    }
}

fn dataset(d: &mut DatasetArgs) -> Result<(), CliError> {
    resolve(&mut d.data, Some(&mut d.network), Need::Dataset)
}

/// Resolves the dataset directory of `command` in place (see the module docs).
///
/// # Errors
/// A dataset reader pointed at a folder without a dataset, a label command at a missing
/// folder, or an unreadable `chaintrace.toml`.
pub fn resolve_command(command: &mut Command) -> Result<(), CliError> {
    match command {
        Command::Ingest(i) => match &mut **i {
            IngestCommand::Bitcoin(a) => resolve(&mut a.data, None, Need::Nothing),
            IngestCommand::Ethereum(a) => resolve(&mut a.data, None, Need::Nothing),
        },
        Command::Labels(l) => {
            let data = match l {
                LabelsCommand::Import(a) => &mut a.data,
                LabelsCommand::List(a) => &mut a.data,
                LabelsCommand::Search(a) => &mut a.data,
                LabelsCommand::Remove(a) => &mut a.data,
                LabelsCommand::Conflicts(a) => &mut a.data,
            };
            resolve(data, None, Need::Directory)
        }
        Command::Cluster(c) => match c {
            ClusterCommand::Bitcoin(a) => dataset(&mut a.dataset),
            ClusterCommand::Index(a) => dataset(&mut a.dataset),
            ClusterCommand::Ethereum(a) => resolve(&mut a.data, None, Need::Dataset),
            ClusterCommand::Explain(a) => dataset(&mut a.dataset),
            ClusterCommand::Show(a) => dataset(&mut a.dataset),
        },
        // With --source the trace fetches its own dataset into --data, which must exist (a
        // typo creates nothing; the labels to stop at are imported there first).
        Command::Trace(a) if a.source.is_some() => resolve(
            &mut a.dataset.data,
            Some(&mut a.dataset.network),
            Need::Directory,
        ),
        Command::Trace(a) => dataset(&mut a.dataset),
        Command::Stats(s) => match s {
            StatsCommand::Flows(a) => dataset(&mut a.common.dataset),
            StatsCommand::Entity(a) => dataset(&mut a.common.dataset),
            StatsCommand::Exposure(a) => dataset(&mut a.common.dataset),
        },
        Command::Eval(EvalCommand::Clusters(a)) => dataset(&mut a.dataset),
        Command::Eval(EvalCommand::Trace(_)) => Ok(()),
        Command::Check(super::args::CheckCommand::Ethereum(a)) => {
            resolve(&mut a.data, None, Need::Dataset)
        }
        Command::Serve(a) => dataset(&mut a.dataset),
        Command::Share(_) | Command::Watch(_) => Ok(()),
        Command::Report(_) | Command::Simulate(_) | Command::Demo(_) | Command::Case(_) => Ok(()),
    }
}
