//! The case folder as evidence: its metadata (`case.toml`) and its audit trail
//! (`audit.jsonl`).
//!
//! `audit.jsonl` is append-only and hash-chained: each line is one JSON entry — the action
//! (trace, report, note), the time, the tool version and commit, the command as typed, and
//! the sha256 of every input and output file — holding the sha256 of the line before it
//! (`prev_sha256`; 64 zeros for the first). Changing, removing or reordering a line breaks
//! the chain at that line, which [`verify_chain`] reports. (The same idea as a Git history
//! or a certificate-transparency log, without the signatures.)

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::types::n64;
use bitcoin::hashes::{Hash, sha256};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The audit log's file name in a case folder.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// The audit log's head: `SEQ SHA256` of its last line, rewritten on every append, so that
/// a log cut short (its last lines removed) no longer matches it.
pub const HEAD_FILE: &str = "audit.head";
/// The case metadata's file name in a case folder.
pub const META_FILE: &str = "case.toml";

/// An error reading or writing a case's log or metadata.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaseError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an audit entry written by chaintrace: {source}")]
    Entry {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is not valid: {what}")]
    Meta { path: PathBuf, what: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaseError + '_ {
    move |source| CaseError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who made the case and what it asks (`case.toml`); every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// The agency's case or file number.
    pub number: Option<String>,
    pub examiner: Option<String>,
    pub agency: Option<String>,
    /// The question the case answers, in the examiner's words.
    pub question: Option<String>,
}

impl Meta {
    /// The fields with their names, in the order a report shows them.
    pub fn fields(&self) -> [(&'static str, &Option<String>); 4] {
        [
            ("Case number", &self.number),
            ("Examiner", &self.examiner),
            ("Agency", &self.agency),
            ("Question", &self.question),
        ]
    }

    /// Reads `case.toml` of `case_dir` (`None` when there is none).
    ///
    /// # Errors
    /// An unreadable file or one with unknown keys.
    pub fn load(case_dir: &Path) -> Result<Option<Meta>, CaseError> {
        let path = case_dir.join(META_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| CaseError::Meta {
                path,
                what: e.to_string(),
            })
    }

    /// Writes `case.toml` into `case_dir` (created if needed).
    ///
    /// # Errors
    /// The folder or file cannot be written.
    pub fn save(&self, case_dir: &Path) -> Result<(), CaseError> {
        std::fs::create_dir_all(case_dir).map_err(io(case_dir))?;
        let path = case_dir.join(META_FILE);
        let text = toml::to_string(self).map_err(|e| CaseError::Meta {
            path: path.clone(),
            what: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(io(&path))
    }
}

/// One line of `audit.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, ... in the order written.
    pub seq: u64,
    /// UTC, RFC 3339.
    pub time: String,
    /// `chaintrace VERSION (COMMIT[, modified])`.
    pub tool: String,
    /// `trace`, `report`, `note`, `init`.
    pub action: String,
    /// The command line as typed (or as the demo ran it).
    pub command: Vec<String>,
    /// The working directory it ran in (relative paths of `command` are relative to it).
    #[serde(default)]
    pub cwd: String,
    /// File → sha256 (hex) of what the action read.
    pub inputs: BTreeMap<String, String>,
    /// File (relative to the case) → sha256 (hex) of what the action wrote.
    pub outputs: BTreeMap<String, String>,
    /// A note's text (`case note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// sha256 (hex) of the previous line's bytes; 64 zeros for the first entry.
    pub prev_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha256::Hash::hash(bytes).to_string()
}

/// The entries of `case_dir/audit.jsonl` with each line's own sha256 (empty when absent).
///
/// # Errors
/// An unreadable file or a line that is not an entry.
pub fn read(case_dir: &Path) -> Result<Vec<(Entry, String)>, CaseError> {
    let path = case_dir.join(AUDIT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Entry>(l)
                .map(|e| (e, sha256_hex(l.as_bytes())))
                .map_err(|source| CaseError::Entry {
                    path: path.clone(),
                    line: i + 1,
                    source,
                })
        })
        .collect()
}

/// What an action did, for [`append`].
#[derive(Clone, Debug, Default)]
pub struct Action<'a> {
    pub action: &'a str,
    pub command: Vec<String>,
    pub inputs: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub note: Option<String>,
    /// Unix seconds of the entry.
    pub time: i64,
}

/// Appends one entry to `case_dir/audit.jsonl`, chained to the last one.
///
/// # Errors
/// The log cannot be read or written.
pub fn append(case_dir: &Path, a: Action<'_>) -> Result<Entry, CaseError> {
    let old = read(case_dir)?;
    let (seq, prev) = old
        .last()
        .map_or((1, "0".repeat(64)), |(e, h)| (e.seq + 1, h.clone()));
    let entry = Entry {
        seq,
        time: chrono::DateTime::from_timestamp(a.time, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tool: format!("chaintrace {}", crate::VERSION),
        action: a.action.to_string(),
        command: a.command,
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        inputs: a.inputs,
        outputs: a.outputs,
        note: a.note,
        prev_sha256: prev,
    };
    let line = serde_json::to_string(&entry).expect("entries serialise");
    let path = case_dir.join(AUDIT_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(&path))?;
    let head = case_dir.join(HEAD_FILE);
    crate::store::sink::write_atomic(
        &head,
        format!("{} {}\n", entry.seq, sha256_hex(line.as_bytes())).as_bytes(),
    )
    .map_err(|e| CaseError::Meta {
        path: head.clone(),
        what: e.to_string(),
    })?;
    Ok(entry)
}

/// The sha256 (hex) of each file that exists, keyed by the name given.
///
/// # Errors
/// A file that exists but cannot be read.
pub fn hashes<P: AsRef<Path>>(
    files: impl IntoIterator<Item = (String, P)>,
) -> Result<BTreeMap<String, String>, CaseError> {
    let mut out = BTreeMap::new();
    for (name, path) in files {
        let path = path.as_ref();
        if path.is_file() {
            // In pieces: a dataset's or clustering's file may be larger than the memory.
            let hex = std::fs::File::open(path)
                .and_then(crate::store::sink::sha256_of)
                .map_err(io(path))?;
            out.insert(name, hex);
        }
    }
    Ok(out)
}

/// Checks the chain of `audit.jsonl`: every entry must hold the sha256 of the line before
/// it and the next number. Returns one message per break (empty: intact).
///
/// # Errors
/// As [`read`].
pub fn verify_chain(case_dir: &Path) -> Result<Vec<String>, CaseError> {
    let entries = read(case_dir)?;
    let mut problems = Vec::new();
    let mut prev = "0".repeat(64);
    for (i, (e, h)) in entries.iter().enumerate() {
        if e.prev_sha256 != prev {
            problems.push(format!(
                "{AUDIT_FILE} line {}: entry {} does not follow the line before it (prev_sha256 {} != {prev}): a line was changed, removed or inserted",
                i + 1,
                e.seq,
                e.prev_sha256
            ));
        }
        if e.seq != n64(i) + 1 {
            problems.push(format!(
                "{AUDIT_FILE} line {}: entry number {} where {} was expected",
                i + 1,
                e.seq,
                i + 1
            ));
        }
        prev = h.clone();
    }
    if let Some((last, h)) = entries.last() {
        let want = format!("{} {h}", last.seq);
        match std::fs::read_to_string(case_dir.join(HEAD_FILE)) {
            Ok(head) if head.trim() == want => {}
            Ok(head) => problems.push(format!(
                "{AUDIT_FILE}: its last entry ({want}) is not the head recorded in {HEAD_FILE} ({}): entries were removed from its end or the log was replaced",
                head.trim()
            )),
            Err(_) => problems.push(format!(
                "{HEAD_FILE} is missing: the log's end cannot be checked"
            )),
        }
    }
    Ok(problems)
}

/// Checks that the files an entry wrote still have the hashes it recorded (files of the
/// case, relative to `case_dir`). Returns one message per difference.
pub fn verify_outputs(case_dir: &Path, e: &Entry) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, want) in &e.outputs {
        let path = case_dir.join(file);
        match std::fs::File::open(&path).and_then(crate::store::sink::sha256_of) {
            Ok(got) if got == *want => {}
            Ok(_) => problems.push(format!(
                "{file} changed since entry {} ({}) wrote it",
                e.seq, e.action
            )),
            Err(_) => problems.push(format!(
                "{file} is missing; entry {} ({}) wrote it",
                e.seq, e.action
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_a_hash_chain_and_breaks_are_found() {
        let d = tempfile::tempdir().unwrap();
        for n in 0..3 {
            append(
                d.path(),
                Action {
                    action: "note",
                    note: Some(format!("note {n}")),
                    time: 1_700_000_000 + n,
                    ..Action::default()
                },
            )
            .unwrap();
        }
        assert!(verify_chain(d.path()).unwrap().is_empty());
        let entries = read(d.path()).unwrap();
        assert_eq!(entries[2].0.seq, 3);
        assert_eq!(entries[0].0.time, "2023-11-14T22:13:20Z");
        // Edit the second note: the third entry no longer follows it.
        let path = d.path().join(AUDIT_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("note 1", "note X")).unwrap();
        let problems = verify_chain(d.path()).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("line 3"));
    }
}
