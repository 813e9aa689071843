//! `chaintrace case init|note|log|verify`.

use std::collections::BTreeMap;

use anyhow::anyhow;

use super::args::{
    CaseCommand, CaseDirArgs, CaseExportArgs, CaseInitArgs, CaseNoteArgs, CaseVerifyArgs,
    EvalTraceArgs,
};
use super::{Cli, CliError, print_json};
use crate::case::{self, Action, Entry, Meta};

pub(crate) fn run(cli: &Cli, c: &CaseCommand) -> Result<(), CliError> {
    match c {
        CaseCommand::Init(a) => init(cli, a),
        CaseCommand::Note(a) => note(cli, a),
        CaseCommand::Log(a) => log(cli, a),
        CaseCommand::Verify(a) => verify(cli, a),
        CaseCommand::Export(a) => export(cli, a),
    }
}

fn init(cli: &Cli, a: &CaseInitArgs) -> Result<(), CliError> {
    let mut meta = Meta::load(&a.case)
        .map_err(CliError::user)?
        .unwrap_or_default();
    let mut changed = Vec::new();
    for (name, field, value) in [
        ("number", &mut meta.number, &a.number),
        ("examiner", &mut meta.examiner, &a.examiner),
        ("agency", &mut meta.agency, &a.agency),
        ("question", &mut meta.question, &a.question),
    ] {
        if let (Some(old), Some(new)) = (field.as_ref(), value.as_ref())
            && old != new
        {
            changed.push(format!("{name}: {old:?} -> {new:?}"));
        }
        if value.is_some() {
            field.clone_from(value);
        }
    }
    if !changed.is_empty() && !a.amend {
        return Err(CliError::user(anyhow!(
            "{} already records {}; changing a case's metadata needs --amend (the change is then kept in its audit trail)",
            a.case.join(case::META_FILE).display(),
            changed.join(", ")
        )));
    }
    meta.save(&a.case).map_err(CliError::user)?;
    let path = a.case.join(case::META_FILE);
    let outputs =
        case::hashes([(case::META_FILE.to_string(), path.as_path())]).map_err(CliError::user)?;
    case::append(
        &a.case,
        Action {
            action: "init",
            command: super::command_line(),
            outputs,
            note: (!changed.is_empty()).then(|| format!("amended {}", changed.join(", "))),
            time: super::now_secs(),
            ..Action::default()
        },
    )
    .map_err(CliError::user)?;
    if cli.json {
        print_json(&meta);
    } else {
        println!("{} written", path.display());
    }
    Ok(())
}

/// A command line as a shell would take it back: arguments with spaces or quotes quoted.
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:@=,+%".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn note(cli: &Cli, a: &CaseNoteArgs) -> Result<(), CliError> {
    if a.text.trim().is_empty() {
        return Err(CliError::user(anyhow!(
            "the note is empty; write what it should record"
        )));
    }
    if !a.case.is_dir() {
        return Err(CliError::user(anyhow!(
            "{} is no case folder (it does not exist); give the folder of `chaintrace trace --out` or `case init`",
            a.case.display()
        )));
    }
    let e = case::append(
        &a.case,
        Action {
            action: "note",
            command: super::command_line(),
            note: Some(a.text.clone()),
            time: super::now_secs(),
            ..Action::default()
        },
    )
    .map_err(CliError::user)?;
    if cli.json {
        print_json(&e);
    } else {
        println!(
            "note {} added to {}",
            e.seq,
            a.case.join(case::AUDIT_FILE).display()
        );
    }
    Ok(())
}

fn log(cli: &Cli, a: &CaseDirArgs) -> Result<(), CliError> {
    let entries = case::read(&a.case).map_err(CliError::user)?;
    if cli.json {
        let v: Vec<&Entry> = entries.iter().map(|(e, _)| e).collect();
        print_json(&v);
        return Ok(());
    }
    if entries.is_empty() {
        println!("{} has no audit trail yet", a.case.display());
    }
    for (e, _) in &entries {
        let what = match &e.note {
            Some(n) => format!("\"{n}\""),
            None => shell_words(&e.command),
        };
        println!("{:>3} {} {:<6} {what}", e.seq, e.time, e.action);
    }
    Ok(())
}

/// The dataset folder a trace entry read (`--data` as recorded, relative to its working
/// directory), or `data` when given.
fn data_of(t: &Entry, data: Option<&std::path::Path>) -> std::path::PathBuf {
    let cwd = std::path::Path::new(&t.cwd);
    let recorded = t
        .command
        .iter()
        .position(|x| x == "--data")
        .and_then(|i| t.command.get(i + 1))
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("CHAINTRACE_DATA").map(std::path::PathBuf::from))
        .unwrap_or_else(|| "data".into());
    data.map_or_else(|| cwd.join(&recorded), std::path::Path::to_path_buf)
}

/// Adds every file below `dir` to the zip under `prefix`, in name order.
fn zip_dir(
    zip: &mut zip::ZipWriter<std::fs::File>,
    dir: &std::path::Path,
    prefix: &str,
    added: &mut Vec<String>,
) -> Result<(), CliError> {
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = format!(
            "{prefix}/{}",
            p.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        if p.is_dir() {
            zip_dir(zip, &p, &name, added)?;
        } else {
            zip_file(zip, &p, &name, added)?;
        }
    }
    Ok(())
}

fn zip_file(
    zip: &mut zip::ZipWriter<std::fs::File>,
    path: &std::path::Path,
    name: &str,
    added: &mut Vec<String>,
) -> Result<(), CliError> {
    use std::io::Write;
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", path.display())))?;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    zip.start_file(name, options)
        .and_then(|()| zip.write_all(&bytes).map_err(Into::into))
        .map_err(|e| CliError::user(anyhow!("cannot write {name} into the bundle: {e}")))?;
    added.push(name.to_string());
    Ok(())
}

fn export(cli: &Cli, a: &CaseExportArgs) -> Result<(), CliError> {
    let entries = case::read(&a.case).map_err(CliError::user)?;
    let Some(t) = last(&entries, "trace") else {
        return Err(CliError::user(anyhow!(
            "{} records no trace in its audit trail: nothing to bundle",
            a.case.display()
        )));
    };
    if a.bundle.exists() {
        return Err(CliError::user(anyhow!(
            "{} exists; give a new file name",
            a.bundle.display()
        )));
    }
    if !a
        .bundle
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        return Err(CliError::user(anyhow!(
            "{}: a bundle is a zip file; give a name ending in .zip",
            a.bundle.display()
        )));
    }
    let data = data_of(t, a.data.as_deref());
    // A bundle whose inputs are not the ones the trace read, or whose files are not the
    // ones the trail records, could never verify.
    let mut changed = changed_inputs(t, &a.case, a.data.as_deref(), None);
    changed.extend(case::verify_outputs(&a.case, t));
    changed.extend(written_since_trace(&a.case, &entries).0);
    if !changed.is_empty() && !a.anyway {
        return Err(CliError::user(anyhow!(
            "the case or its inputs changed since the trail recorded them, so the bundle would not verify: {}. Run chaintrace case verify to see it all; trace (or report) again, then export; or add --anyway to bundle it as it is (verify will report the differences)",
            changed.join("; ")
        )));
    }
    let file = std::fs::File::create(&a.bundle)
        .map_err(|e| CliError::user(anyhow!("cannot create {}: {e}", a.bundle.display())))?;
    let mut zip = zip::ZipWriter::new(file);
    let mut added = Vec::new();
    // The case's own files: what chaintrace wrote there, not whatever else sits in the
    // folder (an analyst's notes or screenshots are theirs to hand over).
    let mut own: Vec<String> = crate::trace::case::CASE_FILES
        .iter()
        .chain(&[
            case::AUDIT_FILE,
            case::HEAD_FILE,
            case::META_FILE,
            "eval_trace.json",
        ])
        .map(ToString::to_string)
        .collect();
    if let Ok(sums) = std::fs::read_to_string(a.case.join("report").join("SHA256SUMS")) {
        own.push("report/SHA256SUMS".into());
        own.extend(
            sums.lines()
                .filter_map(|l| l.split_once("  ").map(|x| x.1))
                .filter(|f| !f.contains('/'))
                .map(|f| format!("report/{f}")),
        );
    }
    for f in &own {
        let p = a.case.join(f);
        if p.is_file() {
            zip_file(&mut zip, &p, &format!("case/{f}"), &mut added)?;
        }
    }
    let mut left_out: Vec<String> = Vec::new();
    for dir in [a.case.clone(), a.case.join("report")] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let rel = e
                .path()
                .strip_prefix(&a.case)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            if rel != "report" && !own.contains(&rel) {
                left_out.push(rel);
            }
        }
    }
    left_out.sort();
    // The recorded inputs, where the trace found them.
    for name in t.inputs.keys() {
        let (path, inside) = match name.strip_prefix("seeds ") {
            Some(f) => (
                std::path::Path::new(&t.cwd).join(f),
                format!(
                    "inputs/seeds/{}",
                    std::path::Path::new(f)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("seeds")
                ),
            ),
            None => (data.join(name), format!("data/{name}")),
        };
        if path.is_file() && !added.contains(&inside) {
            zip_file(&mut zip, &path, &inside, &mut added)?;
        }
    }
    // The whole clustering the trace used (its merges too, which `cluster explain` and the
    // trace's cluster loader read), not only the hashed files.
    let mut cluster_dirs: Vec<String> = t
        .inputs
        .keys()
        .filter_map(|k| k.strip_prefix("clusters/"))
        .filter_map(|k| k.split('/').next())
        .map(|net| format!("clusters/{net}"))
        .collect();
    cluster_dirs.dedup();
    for d in cluster_dirs {
        let dir = data.join(&d);
        if dir.is_dir() {
            let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", dir.display())))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for f in files {
                let inside = format!(
                    "data/{d}/{}",
                    f.file_name().and_then(|n| n.to_str()).unwrap_or("")
                );
                if !added.contains(&inside) {
                    zip_file(&mut zip, &f, &inside, &mut added)?;
                }
            }
        }
    }
    // A neighbourhood fetched from an API cannot be fetched again the same (the chain
    // moves on, the API may change): its parts (small) always go in.
    let neighbourhood = ["bitcoin", "testnet", "testnet4", "signet", "regtest"]
        .iter()
        .any(|c| {
            crate::store::manifest::Manifest::load(&data.join(c))
                .ok()
                .flatten()
                .is_some_and(|m| m.neighbourhood.is_some())
        });
    let with_data = a.with_data || neighbourhood;
    if with_data {
        for chain in [
            "bitcoin", "testnet", "testnet4", "signet", "regtest", "ethereum",
        ] {
            let dir = data.join(chain);
            if dir.join("_manifest.json").is_file() {
                for table in std::fs::read_dir(&dir)
                    .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", dir.display())))?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir() && !p.ends_with("index"))
                {
                    let name = format!(
                        "data/{chain}/{}",
                        table.file_name().and_then(|n| n.to_str()).unwrap_or("")
                    );
                    zip_dir(&mut zip, &table, &name, &mut added)?;
                }
            }
        }
    }
    let readme = format!(
        "chaintrace case bundle\n\nMade by chaintrace {} from {}.\n\ncase/    the case folder: trace.json, edges.parquet, ends.parquet, SHA256SUMS, report/, audit.jsonl (hash-chained), audit.head, case.toml\ninputs/  the seed files the trace read\ndata/    the dataset's manifest (every part's sha256 and its source), labels/tags.parquet and clustering{}\n\nTo replay: unzip this bundle into a folder, install chaintrace (the same version, or check the differences), and in that folder run\n  chaintrace case verify case --data data\nwhich checks the audit trail, every recorded hash, and runs the recorded trace again, with the seed files of inputs/seeds/ and the dataset in data/ in place of the paths it recorded:\n  {}\n",
        crate::VERSION,
        a.case.display(),
        if with_data {
            ", and its Parquet parts"
        } else {
            " (not the Parquet parts: ingest the same chain from the recorded source, or export with --with-data)"
        },
        shell_words(&t.command)
    );
    {
        use std::io::Write;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default());
        zip.start_file("README.txt", options)
            .and_then(|()| zip.write_all(readme.as_bytes()).map_err(Into::into))
            .map_err(|e| CliError::user(anyhow!("cannot write the bundle's README: {e}")))?;
    }
    zip.finish()
        .map_err(|e| CliError::user(anyhow!("cannot finish {}: {e}", a.bundle.display())))?;
    // The export is part of the case's history: what was handed over, and its hash.
    let outputs = case::hashes([(format!("bundle {}", a.bundle.display()), a.bundle.clone())])
        .map_err(CliError::user)?;
    case::append(
        &a.case,
        case::Action {
            action: "export",
            command: super::command_line(),
            inputs: BTreeMap::new(),
            outputs,
            note: None,
            time: super::now_secs(),
        },
    )
    .map_err(CliError::user)?;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"bundle": a.bundle, "files": added.len() + 1, "left_out": left_out})
        );
    } else {
        println!(
            "{}: {} file(s) and README.txt",
            a.bundle.display(),
            added.len()
        );
        if !left_out.is_empty() {
            println!(
                "left out of the bundle (not written by chaintrace): {}",
                left_out.join(", ")
            );
        }
    }
    Ok(())
}

/// The inputs of a trace entry whose files no longer have the recorded hash. Inputs are
/// found as the trace found them: in its dataset folder (`--data`, as recorded or as
/// overridden by `data`) and, for seed files, in its working directory.
fn changed_inputs(
    t: &Entry,
    case: &std::path::Path,
    data: Option<&std::path::Path>,
    bundled: Option<&std::path::Path>,
) -> Vec<String> {
    let cwd = std::path::Path::new(&t.cwd);
    let data_dir = data_of(t, data);
    let mut out = Vec::new();
    for (name, want) in &t.inputs {
        let path = match name.strip_prefix("seeds ") {
            Some(f) => seed_moved(seed_path(f, cwd, bundled), case, data),
            None => data_dir.join(name),
        };
        // In pieces: a dataset's or clustering's file may be larger than the memory.
        match crate::store::sink::sha256_file(&path) {
            Ok(got) => {
                if got != *want {
                    out.push(format!(
                        "input {name} ({}) changed since entry {} (trace) read it",
                        path.display(),
                        t.seq
                    ));
                }
            }
            Err(_) => out.push(format!(
                "input {name} is not at {} ({})",
                path.display(),
                if name.starts_with("seeds ") {
                    "moved? an unpacked bundle's inputs/seeds/ are used when present"
                } else if data.is_some() {
                    "not in the --data folder given: copy it there from where the trace read it (a bundle's data/)"
                } else {
                    "moved? give --data"
                }
            )),
        }
    }
    // Labels the trace did not have (none were imported then) that are there now: the
    // rerun uses them, so its answer can differ.
    let tags = "labels/tags.parquet";
    if !t.inputs.contains_key(tags) && data_dir.join(tags).is_file() {
        out.push(format!(
            "input {tags} ({}) appeared since entry {} (trace): the trace read no labels, a rerun reads these",
            data_dir.join(tags).display(),
            t.seq
        ));
    }
    out
}

/// Where a seed file the trace read is now: the unpacked bundle's copy
/// (`inputs/seeds/NAME` beside the case folder) when there is one, else where it was.
fn seed_path(
    recorded: &str,
    cwd: &std::path::Path,
    bundled: Option<&std::path::Path>,
) -> std::path::PathBuf {
    let name = std::path::Path::new(recorded)
        .file_name()
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    match bundled.map(|b| b.join(&name)).filter(|p| p.is_file()) {
        Some(p) => p,
        None => cwd.join(recorded),
    }
}

/// A seed file that is no longer where the trace read it, looked for by name beside the
/// case folder and beside the dataset (a working folder moved as a whole).
fn seed_moved(
    recorded: std::path::PathBuf,
    case: &std::path::Path,
    data: Option<&std::path::Path>,
) -> std::path::PathBuf {
    if recorded.is_file() {
        return recorded;
    }
    let Some(name) = recorded.file_name() else {
        return recorded;
    };
    [case.parent(), data.and_then(std::path::Path::parent)]
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or(recorded)
}

/// The last entry of an action.
fn last<'a>(entries: &'a [(Entry, String)], action: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .rev()
        .map(|(e, _)| e)
        .find(|e| e.action == action)
}

/// The recorded trace command with its `--out` pointed at `out` (and `--quiet`). A
/// `--opening-balances URL` becomes `cached` (the balances the trace kept in the dataset);
/// `--source` goes: the rerun traces the neighbourhood the trace fetched, offline (its
/// manifest's hash is checked), instead of asking the API again.
fn rerun_args(command: &[String], out: &std::path::Path) -> Option<Vec<String>> {
    let mut args: Vec<String> = Vec::new();
    let mut it = command.iter().skip(1);
    let mut replaced = false;
    while let Some(x) = it.next() {
        if x == "--source" {
            it.next()?;
        } else if x.starts_with("--source=") {
        } else if x == "--opening-balances" || x.starts_with("--opening-balances=") {
            // The node's balances the trace kept in the dataset (its URL, recorded with
            // its secrets hidden, could not be asked again anyway).
            if x == "--opening-balances" {
                it.next()?;
            }
            args.extend(["--opening-balances".to_string(), "cached".to_string()]);
        } else if x == "--out" {
            it.next()?;
            replaced = true;
            args.extend(["--out".to_string(), out.display().to_string()]);
        } else if x.starts_with("--out=") {
            replaced = true;
            args.push(format!("--out={}", out.display()));
        } else if !["--force", "--json", "--quiet", "-q"].contains(&x.as_str()) {
            args.push(x.clone());
        }
    }
    args.insert(0, "--quiet".into());
    replaced.then_some(args)
}

/// `trace.json` without what may differ between two runs of one trace that are not results:
/// the command line, where the dataset was, and the tool string (the dataset itself is
/// pinned by its manifest's hash, which stays compared).
///
/// Each top-level field is kept as its JSON text, borrowed from `bytes` (a trace of
/// millions of edges is not built into a JSON tree, which took ten times the file);
/// `parameters` alone is parsed, to leave out its seeds.
fn trace_without_command(bytes: &[u8]) -> Option<(BTreeMap<String, &str>, serde_json::Value)> {
    let fields: BTreeMap<String, &serde_json::value::RawValue> =
        serde_json::from_slice(bytes).ok()?;
    let mut kept: BTreeMap<String, &str> = fields.into_iter().map(|(k, v)| (k, v.get())).collect();
    // The inputs' hashes are checked on their own; their paths and the seed files' paths
    // may differ where a case is replayed (an unpacked bundle).
    for k in ["command", "data", "tool", "inputs"] {
        kept.remove(k);
    }
    let mut parameters: serde_json::Value = match kept.remove("parameters") {
        Some(p) => serde_json::from_str(p).ok()?,
        None => serde_json::Value::Null,
    };
    if let Some(p) = parameters.as_object_mut() {
        p.remove("seeds");
    }
    Some((kept, parameters))
}

/// Whether two `trace.json` files hold the same results ([`trace_without_command`]): each
/// field's text compared, and only a field whose text differs parsed and compared as JSON
/// (a field written in another layout by another version is still the same result).
fn same_results(old: &[u8], new: &[u8]) -> bool {
    let (Some((a, pa)), Some((b, pb))) = (trace_without_command(old), trace_without_command(new))
    else {
        return false;
    };
    let same_json = |x: &str, y: &str| {
        let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
        x == y || parse(x).is_some_and(|v| Some(v) == parse(y))
    };
    pa == pb
        && a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
}

/// The Parquet parts the manifest of each dataset a trace read lists but `data` lacks:
/// (network, the missing files, how many are listed).
fn missing_parts(t: &Entry, data: &std::path::Path) -> Vec<(String, Vec<String>, usize)> {
    let mut out = Vec::new();
    for name in t.inputs.keys() {
        let Some(net) = name.strip_suffix("/_manifest.json") else {
            continue;
        };
        let dir = data.join(net);
        let Ok(Some(m)) = crate::store::manifest::Manifest::load(&dir) else {
            continue;
        };
        let files: Vec<std::path::PathBuf> = m
            .parts
            .iter()
            .flat_map(|p| {
                p.files
                    .iter()
                    .map(|(table, f)| dir.join(table).join(&f.file))
            })
            .collect();
        let missing: Vec<String> = files
            .iter()
            .filter(|f| !f.is_file())
            .map(|f| f.strip_prefix(data).unwrap_or(f).display().to_string())
            .collect();
        if !missing.is_empty() {
            out.push((net.to_string(), missing, files.len()));
        }
    }
    out
}

/// The files the reports and trace measurements (`eval`) after the case's last trace
/// wrote, each checked against its latest writer's hash (a later report into the same
/// folder legitimately replaces an earlier one's files): (changed, removed). Files outside
/// the case folder are checked too, by their recorded absolute path.
fn written_since_trace(
    case_dir: &std::path::Path,
    entries: &[(Entry, String)],
) -> (Vec<String>, Vec<String>) {
    let trace_seq = last(entries, "trace").map_or(0, |t| t.seq);
    let mut latest: BTreeMap<&str, (&str, u64, &str)> = BTreeMap::new();
    for (e, _) in entries {
        if e.seq > trace_seq && matches!(e.action.as_str(), "report" | "eval") {
            for (f, h) in &e.outputs {
                latest.insert(f.as_str(), (h.as_str(), e.seq, e.action.as_str()));
            }
        }
    }
    let (mut changed, mut removed) = (Vec::new(), Vec::new());
    for (f, (want, seq, action)) in latest {
        match crate::store::sink::sha256_file(&case_dir.join(f)) {
            Ok(got) => {
                if got != want {
                    changed.push(format!("{f} changed since entry {seq} ({action}) wrote it"));
                }
            }
            Err(_) => removed.push(format!(
                "{f} is missing; entry {seq} ({action}) wrote it (a rendering or measurement of the case: run chaintrace {} again to make it)",
                if action == "eval" { "eval trace" } else { "report" }
            )),
        }
    }
    (changed, removed)
}

fn verify(cli: &Cli, a: &CaseVerifyArgs) -> Result<(), CliError> {
    if a.case.is_file() {
        return Err(CliError::user(anyhow!(
            "{} is a file, not a case folder{}",
            a.case.display(),
            if a.case
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
            {
                format!(
                    "; a `case export` bundle is verified unpacked: unzip {} -d DIR, then chaintrace case verify DIR/case --data DIR/data",
                    a.case.display()
                )
            } else {
                String::new()
            }
        )));
    }
    let entries = case::read(&a.case).map_err(CliError::user)?;
    // In an unpacked bundle, its own data/ unless --data says otherwise: the defence must
    // not verify against the investigator's dataset by accident.
    let bundle_data = a.case.parent().map(|p| p.join("data")).filter(|d| {
        d.is_dir()
            && a.case
                .parent()
                .is_some_and(|p| p.join("README.txt").is_file() && p.join("inputs").is_dir())
    });
    let a = &CaseVerifyArgs {
        data: a.data.clone().or_else(|| {
            bundle_data.inspect(|d| {
                eprintln!(
                    "chaintrace: verifying against the bundle's {} (give --data to choose another dataset)",
                    d.display()
                );
            })
        }),
        ..a.clone()
    };
    if entries.is_empty() {
        return Err(CliError::user(anyhow!(
            "{} has no audit trail ({}): it was not written by this chaintrace, or the file was removed",
            a.case.display(),
            case::AUDIT_FILE
        )));
    }
    let mut problems = case::verify_chain(&a.case).map_err(CliError::user)?;
    // An unpacked `case export` bundle: the case beside inputs/seeds/.
    let bundled = a
        .case
        .parent()
        .map(|p| p.join("inputs").join("seeds"))
        .filter(|d| d.is_dir())
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d));
    let trace = last(&entries, "trace");
    if let Some(t) = trace {
        problems.extend(case::verify_outputs(&a.case, t));
        problems.extend(changed_inputs(
            t,
            &a.case,
            a.data.as_deref(),
            bundled.as_deref(),
        ));
        // The address index the rerun reads is derived data, not an input: a damaged or
        // altered index would reproduce a wrong answer, so its files are checked too.
        for net in t
            .inputs
            .keys()
            .filter_map(|n| n.strip_suffix("/_manifest.json"))
        {
            let index = data_of(t, a.data.as_deref()).join(net).join("index");
            if !index.join("meta.json").is_file() {
                continue;
            }
            match crate::index::Index::damaged_files(&index) {
                Ok(d) if d.is_empty() => {}
                Ok(d) => problems.push(format!(
                    "the address index {} is damaged: {}; a rerun would read it: rebuild it with `chaintrace cluster index --rebuild --data DATA`",
                    index.display(),
                    d.join(", ")
                )),
                Err(e) => problems.push(format!("the address index {}: {e}", index.display())),
            }
        }
    } else {
        problems.push("the audit trail records no trace".into());
    }
    // What every report and measurement since the trace wrote, each file as its latest
    // writer left it; a removed rendering is a note, a changed file a problem.
    let (changed, notes) = written_since_trace(&a.case, &entries);
    problems.extend(changed);
    if let Some(i) = last(&entries, "init") {
        problems.extend(case::verify_outputs(&a.case, i));
    }
    let mut rerun = "not run (--no-rerun)".to_string();
    let absent = trace.map(|t| missing_parts(t, &data_of(t, a.data.as_deref())));
    if let (Some(absent), false) = (&absent, a.no_rerun)
        && !absent.is_empty()
    {
        for (net, missing, listed) in absent {
            problems.push(format!(
                "the trace cannot be run again: the dataset lacks {} of the {listed} Parquet files its {net}/_manifest.json lists ({}{}; a bundle exported without --with-data holds none). Ingest the same chain from the manifest's source into a folder, copy the bundle's data/labels and data/clusters into it, and give it as --data; or export with --with-data",
                missing.len(),
                missing.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if missing.len() > 3 { ", …" } else { "" }
            ));
        }
        rerun = "not possible (dataset parts missing)".into();
    } else if let (Some(t), false) = (trace, a.no_rerun) {
        let out = std::env::temp_dir().join(format!(
            "chaintrace-verify-{}-{}",
            std::process::id(),
            super::now_secs()
        ));
        let Some(args) = rerun_args(&t.command, &out) else {
            return Err(CliError::user(anyhow!(
                "the recorded trace command has no --out: {}",
                t.command.join(" ")
            )));
        };
        let exe = std::env::current_exe()
            .map_err(|e| CliError::user(anyhow!("cannot find this program: {e}")))?;
        let mut args = args;
        if let Some(d) = &a.data {
            let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            let d = d.display().to_string();
            match args.iter().position(|x| x == "--data") {
                Some(i) if i + 1 < args.len() => args[i + 1] = d,
                _ => {
                    args.retain(|x| !x.starts_with("--data="));
                    args.extend(["--data".to_string(), d]);
                }
            }
        }
        // In an unpacked bundle the seed files are its own copies.
        for x in &mut args {
            if let Some(f) = x.strip_prefix('@') {
                let p = seed_moved(
                    seed_path(f, std::path::Path::new(&t.cwd), bundled.as_deref()),
                    &a.case,
                    a.data.as_deref(),
                );
                *x = format!("@{}", p.display());
            }
        }
        let cwd = if std::path::Path::new(&t.cwd).is_dir() {
            std::path::PathBuf::from(&t.cwd)
        } else {
            std::env::current_dir().unwrap_or_default()
        };
        let o = std::process::Command::new(exe)
            .args(&args)
            .current_dir(&cwd)
            .output()
            .map_err(|e| CliError::user(anyhow!("cannot run the trace again: {e}")))?;
        if o.status.success() {
            let mut same = Vec::new();
            for f in ["edges.parquet", "ends.parquet"] {
                let (x, y) = (std::fs::read(a.case.join(f)), std::fs::read(out.join(f)));
                match (x, y) {
                    (Ok(x), Ok(y)) if x == y => same.push(f),
                    _ => problems.push(format!("{f}: the trace run again gives other bytes")),
                }
            }
            let (old, new) = (
                std::fs::read(a.case.join("trace.json")).unwrap_or_default(),
                std::fs::read(out.join("trace.json")).unwrap_or_default(),
            );
            if same_results(&old, &new) {
                same.push("trace.json (but its command line, dataset path and tool string)");
            } else {
                problems.push("trace.json: the trace run again gives other results".into());
            }
            rerun = format!("ran again ({}): {}", args.join(" "), same.join(", "));
        } else {
            problems.push(format!(
                "the recorded trace failed when run again in {}: {}",
                t.cwd,
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            rerun = "failed".into();
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    if cli.json {
        let v = serde_json::json!({
            "case": a.case,
            "entries": entries.len(),
            "ok": problems.is_empty(),
            "problems": problems,
            "notes": notes,
            "rerun": rerun,
        });
        print_json(&v);
    } else {
        println!(
            "{}: {} audit entries, hash chain {}",
            a.case.display(),
            entries.len(),
            if problems.iter().any(|p| p.starts_with(case::AUDIT_FILE)) {
                "BROKEN"
            } else {
                "intact"
            }
        );
        println!("rerun: {rerun}");
        for n in &notes {
            println!("note: {n}");
        }
        for p in &problems {
            println!("DIFFERS: {p}");
        }
    }
    if problems.is_empty() {
        if !cli.json {
            println!(
                "verified: the trail is intact and every recorded hash matches{}",
                if a.no_rerun {
                    " (the trace was not run again: --no-rerun)"
                } else {
                    ", and the trace reproduces"
                }
            );
        }
        Ok(())
    } else if cli.json {
        // The document above is the answer; exit 1 without a second one.
        Err(CliError::user(super::Reported))
    } else {
        Err(CliError::user(anyhow!(
            "{} check(s) failed for {}",
            problems.len(),
            a.case.display()
        )))
    }
}

/// The case's recorded trace run again at each of `--hops` (into temporary folders) and
/// measured: `[{hops, models}]`.
fn hop_sweep(
    a: &EvalTraceArgs,
    truth: &[crate::trace::eval::TruthFlow],
) -> Result<Vec<serde_json::Value>, CliError> {
    if a.hops.is_empty() {
        return Ok(Vec::new());
    }
    let entries = case::read(&a.case).map_err(CliError::user)?;
    let Some(t) = last(&entries, "trace") else {
        return Err(CliError::user(anyhow!(
            "--hops runs the case's trace again, and {} records none in its audit trail",
            a.case.display()
        )));
    };
    let exe = std::env::current_exe()
        .map_err(|e| CliError::user(anyhow!("cannot find this program: {e}")))?;
    let mut out = Vec::new();
    for &h in &a.hops {
        let dir = std::env::temp_dir().join(format!(
            "chaintrace-eval-{}-{}-{h}",
            std::process::id(),
            super::now_secs()
        ));
        let Some(mut args) = rerun_args(&t.command, &dir) else {
            return Err(CliError::user(anyhow!(
                "the recorded trace command has no --out: {}",
                t.command.join(" ")
            )));
        };
        match args.iter().position(|x| x == "--max-hops") {
            Some(i) if i + 1 < args.len() => args[i + 1] = h.to_string(),
            _ => args.extend(["--max-hops".to_string(), h.to_string()]),
        }
        let o = std::process::Command::new(&exe)
            .args(&args)
            .current_dir(&t.cwd)
            .output()
            .map_err(|e| CliError::user(anyhow!("cannot run the trace again: {e}")))?;
        if !o.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(CliError::user(anyhow!(
                "the trace at --max-hops {h} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let c = crate::report::case::Case::load(&dir).map_err(CliError::user)?;
        let models = crate::trace::eval::evaluate(&c, truth, &a.category);
        let _ = std::fs::remove_dir_all(&dir);
        out.push(serde_json::json!({"hops": h, "models": models}));
    }
    Ok(out)
}

/// `chaintrace eval trace CASE --truth T`.
pub(crate) fn eval_trace(cli: &Cli, a: &EvalTraceArgs) -> Result<(), CliError> {
    // The sweep over other hop limits runs the trace again (this program, as a child).
    let sweep = if a.hops.is_empty() {
        Vec::new()
    } else {
        let truth = crate::trace::eval::read_truth(&a.truth, a.flagged.as_deref())
            .map_err(CliError::user)?;
        hop_sweep(a, &truth)?
    };
    let (doc, models) = crate::trace::eval::measure(
        &crate::trace::eval::Measure {
            case: &a.case,
            truth: &a.truth,
            flagged: a.flagged.as_deref(),
            category: &a.category,
            allow_disjoint: a.allow_disjoint,
            command: super::command_line(),
            now: super::now_secs(),
        },
        sweep.clone(),
    )
    .map_err(CliError::user)?;
    print_eval(cli, &a.case, &a.category, &doc, &models, &sweep);
    Ok(())
}

/// Prints what `eval trace` measured (`--json`: the document).
pub(crate) fn print_eval(
    cli: &Cli,
    case_dir: &std::path::Path,
    category: &str,
    doc: &serde_json::Value,
    models: &[crate::trace::eval::ModelError],
    sweep: &[serde_json::Value],
) {
    let truth_file = doc["truth"].as_str().unwrap_or("").to_string();
    if cli.json {
        print_json(doc);
        return;
    }
    println!(
        "{}: exposure to {} against {} (sha256 {})",
        case_dir.display(),
        category,
        truth_file,
        doc["truth_sha256"].as_str().unwrap_or("")
    );
    println!(
        "{:<8} {:>16} {:>16} {:>10} {:>12} {:>12} {:>10}",
        "model", "traced (sat)", "true (sat)", "error", "flows found", "exact", "unmatched"
    );
    for m in models {
        println!(
            "{:<8} {:>16} {:>16} {:>10} {:>6}/{:<5} {:>6}/{:<5} {:>10}",
            m.policy,
            m.traced,
            m.truth,
            crate::trace::eval::percent(m.signed_error_ppm),
            m.flows_found,
            m.flows_true,
            m.flows_exact,
            m.flows_true,
            m.exits_unmatched
        );
    }
    for s in sweep {
        let row: Vec<String> = s["models"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{} {}",
                    m["policy"].as_str().unwrap_or(""),
                    crate::trace::eval::percent(m["signed_error_ppm"].as_i64().map(i128::from))
                )
            })
            .collect();
        println!("at {:>2} hops: {}", s["hops"], row.join(", "));
    }
    match (doc["by_month_note"].as_str(), doc["by_month"].as_array()) {
        (Some(note), _) => println!("note: {note}"),
        (None, Some(rows)) => {
            let months: std::collections::BTreeSet<&str> =
                rows.iter().filter_map(|r| r["month"].as_str()).collect();
            println!(
                "scored month by month over {} month(s): by_month in eval_trace.json",
                months.len()
            );
        }
        (None, None) => {}
    }
    println!("written to {}", case_dir.join("eval_trace.json").display());
}

#[cfg(test)]
mod tests {
    use super::same_results;

    #[test]
    fn a_replay_compares_results_not_the_command_seeds_or_layout() {
        let doc = |command: &str, seeds: &str, amount: u64, pretty: bool| {
            let v = serde_json::json!({
                "format_version": 3,
                "tool": "chaintrace 0.1.0 (abc)",
                "command": [command],
                "data": "/somewhere",
                "inputs": {"regtest/_manifest.json": "00"},
                "parameters": {"seeds": [seeds], "max_hops": 20},
                "results": [{"edges": [{"txid": "aa", "amount": amount}]}],
            });
            if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            }
        };
        let a = doc("chaintrace trace", "@seeds.txt", 5, true);
        assert!(same_results(
            &a,
            &doc("/tmp/x trace", "@/elsewhere/seeds.txt", 5, true)
        ));
        assert!(same_results(
            &a,
            &doc("chaintrace trace", "@seeds.txt", 5, false)
        ));
        assert!(!same_results(
            &a,
            &doc("chaintrace trace", "@seeds.txt", 6, true)
        ));
        assert!(!same_results(&a, b"not json"));
    }
}
