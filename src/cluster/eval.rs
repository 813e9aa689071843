//! Accuracy of a clustering against ground truth (`address → entity`).
//!
//! Pairwise precision, recall and F1 (over pairs of addresses: a pair is predicted when
//! both are in one cluster, true when both belong to one entity), and homogeneity /
//! completeness (Rosenberg & Hirschberg 2007, the V-measure's parts), computed from the
//! contingency table of clusters × entities over the addresses present in both.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use serde::Serialize;

use crate::index::Index;
use crate::store::StoreError;
use crate::types::{n32, n64};

/// Scores of one clustering.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Scores {
    pub heuristics: String,
    pub addresses: u64,
    pub clusters: u64,
    pub entities: u64,
    /// Pairwise precision: true pairs found / `predicted_pairs`; 1.0 when no pair is
    /// predicted (0/0: nothing claimed), which `eval clusters` shows as "-" (JSON: null).
    pub precision: f64,
    /// Pairwise recall: true pairs found / `true_pairs`; 1.0 when there is no true pair
    /// (0/0), shown as "-" (JSON: null).
    pub recall: f64,
    /// F1 of the two; "-" (JSON: null) when either is 0/0.
    pub f1: f64,
    /// Pairs of addresses of the truth that the clustering puts in one cluster.
    pub predicted_pairs: u64,
    /// Pairs of addresses of the truth that belong to one entity.
    pub true_pairs: u64,
    pub homogeneity: f64,
    pub completeness: f64,
    /// Merges the clustering recorded; `None` for a row without merges of its own (the
    /// oracle).
    #[serde(default)]
    pub merges: Option<u64>,
    /// Merges joining two addresses of the truth that belong to different entities, per
    /// 1,000 merges between addresses of the truth; `None` when no merge joined two
    /// addresses of the truth (nothing to judge), never a 0 that means "unknown".
    #[serde(default)]
    pub false_merges_per_1000: Option<f64>,
    /// Per heuristic of the set: its merges between addresses of the truth, and the share
    /// of them joining one entity (a merge's measured precision, its confidence).
    #[serde(default)]
    pub by_rule: BTreeMap<String, RuleScore>,
    /// What the truth file held: set on every row by `eval clusters`, so that a score is
    /// read with the share of the truth it covers (`addresses` of `listed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<TruthCoverage>,
}

/// How much of a truth file a score covers.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TruthCoverage {
    /// Addresses the file names an owner for.
    pub listed: u64,
    /// Rows left out for lacking an address or an owner (also said on stderr).
    pub rows_left_out: u64,
}

/// One heuristic's merges scored against the truth.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct RuleScore {
    /// Its merges between two addresses of the truth.
    pub merges: u64,
    /// The share of those joining addresses of one entity.
    pub precision: f64,
}

fn pairs(n: u64) -> u128 {
    u128::from(n) * u128::from(n.saturating_sub(1)) / 2
}

fn entropy(counts: impl Iterator<Item = u64>, total: f64) -> f64 {
    counts
        .filter(|&c| c > 0)
        .map(|c| c as f64 / total)
        .map(|p| -p * p.ln())
        .sum()
}

/// Scores `cluster_of` (per address id of `idx`) against `truth` (address string → entity).
pub fn score(
    idx: &Index,
    cluster_of: &[u32],
    truth: &HashMap<String, String>,
    heuristics: &str,
) -> Scores {
    let pairs = idx.address_ids().filter_map(|a| {
        truth
            .get(idx.address(a))
            .map(|e| (cluster_of[a.ix()], e.as_str()))
    });
    score_assignments(pairs, heuristics)
}

/// The `eval clusters` stage: clusters the dataset of `idx` under each heuristic set of
/// `sets` and scores each against `truth` (address → entity), then appends `oracle` (see
/// [`oracle`]) when given. `opts` give the collapse guard and the wallet fingerprints
/// ([`super::fingerprint::read`]) each set is clustered with. When `dir` (the dataset's
/// clustering folder) exists the scores are kept there as `_eval.json` (with the truth's
/// file name `truth_name` and the dataset's manifest hash), so that traces and reports can
/// state the measured accuracy. `None` when no address of the truth is in the dataset.
///
/// # Errors
/// `_eval.json` cannot be written.
pub fn evaluate_sets(
    idx: &Index,
    truth: &HashMap<String, String>,
    truth_name: Option<String>,
    sets: &[Vec<super::Heuristic>],
    oracle: Option<Scores>,
    opts: &super::ClusterOptions,
    dir: &Path,
) -> Result<Option<Vec<Scores>>, StoreError> {
    let mut rows = Vec::new();
    for set in sets {
        let c = super::cluster_guarded(idx, set, None, opts);
        let name: Vec<&str> = set.iter().map(|h| h.name()).collect();
        let mut row = score(idx, &c.cluster_of, truth, &name.join("+"));
        add_merge_errors(&mut row, idx, &c.merges, truth);
        rows.push(row);
    }
    if rows.first().is_some_and(|r| r.addresses == 0) {
        return Ok(None);
    }
    rows.extend(oracle);
    if dir.is_dir() {
        let doc = serde_json::json!({
            "truth": truth_name,
            "manifest_sha256": idx.meta.manifest_sha256,
            "scores": rows,
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("scores serialise");
        bytes.push(b'\n');
        crate::store::sink::write_atomic(&dir.join("_eval.json"), &bytes)?;
    }
    Ok(Some(rows))
}

/// Sets `merges` and `false_merges_per_1000` of `row` from `merges`.
fn add_merge_errors(
    row: &mut Scores,
    idx: &Index,
    merges: &[super::Merge],
    truth: &HashMap<String, String>,
) {
    score_merges(
        row,
        idx,
        merges.iter().map(|m| {
            (
                m.a,
                m.b,
                m.heuristic.name(),
                super::vote_kind(m.heuristic, m.because),
            )
        }),
        truth,
    );
}

/// Sets `merges`, `false_merges_per_1000` and `by_rule` of `row` from `merges` (address
/// id a, address id b, heuristic name, the consensus merge's kind
/// [`super::vote_kind`]), e.g. a stored clustering's. A consensus merge counts under its
/// heuristic and under its kind.
pub fn score_merges<'a>(
    row: &mut Scores,
    idx: &Index,
    merges: impl Iterator<Item = (u32, u32, &'a str, Option<&'static str>)>,
    truth: &HashMap<String, String>,
) {
    let entity = |a: u32| truth.get(idx.address(crate::types::AddrIx(a)));
    let (mut judged, mut wrong, mut all) = (0u64, 0u64, 0usize);
    let mut per: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (a, b, h, kind) in merges {
        all += 1;
        if let (Some(x), Some(y)) = (entity(a), entity(b)) {
            judged += 1;
            wrong += u64::from(x != y);
            for key in std::iter::once(h).chain(kind) {
                let e = per.entry(key).or_default();
                e.0 += 1;
                e.1 += u64::from(x != y);
            }
        }
    }
    row.by_rule = per
        .into_iter()
        .map(|(h, (n, w))| {
            let precision = if n == 0 {
                1.0
            } else {
                (n - w) as f64 / n as f64
            };
            (
                h.to_string(),
                RuleScore {
                    merges: n,
                    precision,
                },
            )
        })
        .collect();
    row.merges = Some(n64(all));
    row.false_merges_per_1000 = (judged > 0).then(|| 1000.0 * wrong as f64 / judged as f64);
}

/// The oracle of change detection: multi-input merging (CoinJoins excluded) plus every
/// true change output (`is_change` in the truth, owned by the entity of the transaction's
/// first input) linked to the first input — what perfect change detection would reach.
pub fn oracle(
    idx: &Index,
    truth: &HashMap<String, String>,
    is_change: &std::collections::HashSet<String>,
) -> Scores {
    let mut uf = super::union_find::UnionFind::new(idx.addresses());
    let mut view = super::heuristics::TxView::default();
    for t in idx.tx_ids() {
        if idx.is_coinbase(t) {
            continue;
        }
        view.load(idx, t);
        if super::heuristics::coinjoin::detect(&view).is_some() {
            continue;
        }
        let mut ins = idx.input_addresses(t);
        let Some(first) = ins.next() else { continue };
        for a in ins {
            uf.union(first.0, a.0);
        }
        let owner = truth.get(idx.address(first));
        for o in idx.outputs_of(t) {
            if let Some(a) = idx.out_address(o) {
                let s = idx.address(a);
                if is_change.contains(s) && truth.get(s) == owner {
                    uf.union(first.0, a.0);
                }
            }
        }
    }
    let labels = uf.into_labels();
    score(idx, &labels, truth, "multi-input+perfect-change (oracle)")
}

/// The addresses the truth marks as change (`is_change` true or 1): from a simulator
/// truth directory or its `addresses.parquet` (a Boolean column), or a CSV (the regtest
/// world's `ground_truth/addresses.csv`, 0/1). `None` when there is no such column.
///
/// # Errors
/// Unreadable file.
pub fn read_change_flags(
    path: &Path,
) -> Result<Option<std::collections::HashSet<String>>, TruthError> {
    let path = truth_file(path);
    let fmt = |what: String| TruthError::Format {
        path: path.display().to_string(),
        what,
    };
    let mut out = std::collections::HashSet::new();
    let mut left_out = (0u64, 0u64);
    if path.extension().is_some_and(|e| e == "parquet") {
        for batch in parquet_batches(&path)? {
            let batch = batch.map_err(|e| fmt(e.to_string()))?;
            let (Some(a), Some(c)) = (
                batch.column_by_name("address"),
                batch.column_by_name("is_change"),
            ) else {
                return Ok(None);
            };
            let a = as_utf8(a).map_err(|e| fmt(format!("address: {e}")))?;
            let Some(c) = as_flags(c) else {
                return Ok(None);
            };
            for (a, change) in a.into_iter().zip(c) {
                match (a, change) {
                    (Some(a), Some(change)) => {
                        if change {
                            out.insert(a);
                        }
                    }
                    (Some(_), None) => left_out.1 += 1,
                    _ => left_out.0 += 1,
                }
            }
        }
        warn_left_out(&path, left_out, &["is_change"]);
        return Ok(Some(out));
    }
    if !csv_has_column(&path, "is_change") {
        return Ok(None);
    }
    let flags = read_mapping_listing(&path, &["is_change"], true, &|v| flag_of(v).map(|_| ()))?.0;
    out.extend(
        flags
            .into_iter()
            .filter(|(_, v)| flag_of(v) == Ok(true))
            .map(|(a, _)| a),
    );
    Ok(Some(out))
}

/// A change flag as a truth CSV writes it: 1/0, true/false, yes/no (y/n, t/f), any case;
/// anything else is refused, with what to give.
fn flag_of(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "t" => Ok(true),
        "0" | "false" | "no" | "n" | "f" => Ok(false),
        _ => Err(format!(
            "is_change is {v:?}: give 1 or 0, true or false, yes or no"
        )),
    }
}

/// A CSV file's delimiter (commas, semicolons or tabs: the one its header uses, as for
/// label lists) and its header's column names (lower case, without a byte-order mark,
/// quotes or padding).
fn csv_header(path: &Path) -> std::io::Result<(u8, Vec<String>)> {
    use std::io::BufRead;
    let mut header = String::new();
    std::io::BufReader::new(std::fs::File::open(path)?).read_line(&mut header)?;
    let delimiter = crate::labels::sniff_delimiter(&header);
    let names = header
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n'])
        .split(char::from(delimiter))
        .map(|c| c.trim().trim_matches('"').trim().to_ascii_lowercase())
        .collect();
    Ok((delimiter, names))
}

/// Whether the CSV file `path`'s header names `column` (false when unreadable: reading it
/// again says why).
fn csv_has_column(path: &Path, column: &str) -> bool {
    csv_header(path).is_ok_and(|(_, names)| names.iter().any(|n| n == column))
}

/// The 1-based line of a CSV file where the record at byte `at` starts (the reader's own
/// count is one low: it places a record on the line end before it). Read again only for
/// an error message.
fn line_at(path: &Path, at: u64) -> usize {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let mut at = usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
    while bytes.get(at).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        at += 1;
    }
    1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
}

/// A text column's values (`None` for nulls), whatever its string type: Arrow's strings,
/// large strings (polars writes these) or string views.
fn as_utf8(c: &arrow_array::ArrayRef) -> Result<Vec<Option<String>>, String> {
    let own = |v: Option<&str>| v.map(str::to_string);
    if let Some(a) = c.as_string_opt::<i32>() {
        Ok(a.iter().map(own).collect())
    } else if let Some(a) = c.as_string_opt::<i64>() {
        Ok(a.iter().map(own).collect())
    } else if let Some(a) = c.as_string_view_opt() {
        Ok(a.iter().map(own).collect())
    } else {
        Err(format!("a column of {}, not text", c.data_type()))
    }
}

/// A Boolean column's values, or 0/1 integers as Booleans (`None` for a null); `None` for
/// other types.
fn as_flags(c: &arrow_array::ArrayRef) -> Option<Vec<Option<bool>>> {
    use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type};
    if let Some(b) = c.as_boolean_opt() {
        return Some(b.iter().collect());
    }
    macro_rules! ints {
        ($($t:ty),*) => {$(
            if let Some(a) = c.as_primitive_opt::<$t>() {
                return Some(a.iter().map(|v| v.map(|v| v == 1)).collect());
            }
        )*};
    }
    ints!(Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type);
    None
}

/// The record batches of the Parquet file `path` (a truth table).
fn parquet_batches(
    path: &Path,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, TruthError> {
    let fmt = |what: String| TruthError::Format {
        path: path.display().to_string(),
        what,
    };
    let f = std::fs::File::open(path).map_err(|e| fmt(e.to_string()))?;
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.build())
        .map_err(|e| fmt(e.to_string()))
}

/// A truth path as a file: a directory's `addresses.parquet`, else its `addresses.csv`.
fn truth_file(path: &Path) -> std::path::PathBuf {
    if path.is_dir() {
        let p = path.join("addresses.parquet");
        if p.is_file() {
            p
        } else {
            path.join("addresses.csv")
        }
    } else {
        path.to_path_buf()
    }
}

/// Why the truth at `path` cannot be read, before reading it: a directory without either
/// truth file.
fn check_truth_path(path: &Path) -> Result<(), TruthError> {
    if path.is_dir() && !truth_file(path).is_file() {
        return Err(TruthError::Format {
            path: path.display().to_string(),
            what: "this folder holds neither addresses.parquet nor addresses.csv".into(),
        });
    }
    Ok(())
}

/// Scores `(cluster, entity)` assignments, one per address.
pub fn score_assignments<'a>(
    assignments: impl Iterator<Item = (u32, &'a str)>,
    heuristics: &str,
) -> Scores {
    let mut entity_ids: HashMap<&str, u32> = HashMap::new();
    // Ordered maps: the floating-point sums below run in one order, so the same input
    // gives the same scores to the last bit (a HashMap's order varies between runs).
    let mut joint: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    let mut by_cluster: BTreeMap<u32, u64> = BTreeMap::new();
    let mut by_entity: BTreeMap<u32, u64> = BTreeMap::new();
    let mut n = 0u64;
    for (c, e) in assignments {
        let next = n32(entity_ids.len());
        let e = *entity_ids.entry(e).or_insert(next);
        *joint.entry((c, e)).or_default() += 1;
        *by_cluster.entry(c).or_default() += 1;
        *by_entity.entry(e).or_default() += 1;
        n += 1;
    }
    let tp: u128 = joint.values().map(|&x| pairs(x)).sum();
    let pred: u128 = by_cluster.values().map(|&x| pairs(x)).sum();
    let real: u128 = by_entity.values().map(|&x| pairs(x)).sum();
    let ratio = |a: u128, b: u128| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(tp, pred), ratio(tp, real));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    let total = n.max(1) as f64;
    let h_e = entropy(by_entity.values().copied(), total);
    let h_c = entropy(by_cluster.values().copied(), total);
    // Conditional entropies H(E|C) and H(C|E).
    let mut h_e_given_c = 0.0;
    let mut h_c_given_e = 0.0;
    for (&(c, e), &x) in &joint {
        let p = x as f64 / total;
        h_e_given_c -= p * (x as f64 / by_cluster[&c] as f64).ln();
        h_c_given_e -= p * (x as f64 / by_entity[&e] as f64).ln();
    }
    let homogeneity = if h_e == 0.0 {
        1.0
    } else {
        1.0 - h_e_given_c / h_e
    };
    let completeness = if h_c == 0.0 {
        1.0
    } else {
        1.0 - h_c_given_e / h_c
    };
    Scores {
        heuristics: heuristics.to_string(),
        addresses: n,
        clusters: n64(by_cluster.len()),
        entities: n64(by_entity.len()),
        precision,
        recall,
        f1,
        predicted_pairs: u64::try_from(pred).unwrap_or(u64::MAX),
        true_pairs: u64::try_from(real).unwrap_or(u64::MAX),
        homogeneity,
        completeness,
        merges: None,
        false_merges_per_1000: None,
        by_rule: BTreeMap::new(),
        truth: None,
    }
}

/// Errors reading ground truth.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TruthError {
    #[error(
        "{path}: {what}; expected the simulator's truth/addresses.parquet or a CSV with address and entity columns"
    )]
    Format { path: String, what: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads `address → entity` from a simulator truth directory (`addresses.parquet`), a
/// Parquet file, or a CSV with a header naming `address` and `entity` columns (the regtest
/// world's `ground_truth/addresses.csv`).
///
/// # Errors
/// Unreadable file or missing columns.
pub fn read_truth(path: &Path) -> Result<HashMap<String, String>, TruthError> {
    Ok(read_truth_counted(path)?.0)
}

/// [`read_truth`], with the number of rows left out for lacking an address or an entity.
///
/// # Errors
/// As [`read_truth`].
pub fn read_truth_counted(path: &Path) -> Result<(HashMap<String, String>, u64), TruthError> {
    check_truth_path(path)?;
    read_mapping_listing(path, &["entity"], true, &|_| Ok(()))
}

/// Reads `address → value` where value is the first of `value_columns` present: from a
/// directory (its `addresses.parquet` or `addresses.csv`), a Parquet file or a CSV file.
///
/// # Errors
/// Unreadable file or missing columns.
pub fn read_mapping(
    path: &Path,
    value_columns: &[&str],
) -> Result<HashMap<String, String>, TruthError> {
    Ok(read_mapping_listing(path, value_columns, false, &|_| Ok(()))?.0)
}

/// [`read_mapping`]; `truth`: the file is ground truth, where an address listed twice with
/// two values is an error (which one holds is unknown, and either bends the scores), not
/// the last row winning. `check` refuses a value, and the error names its line (CSV) or
/// address (Parquet).
fn read_mapping_listing(
    path: &Path,
    value_columns: &[&str],
    truth: bool,
    check: &dyn Fn(&str) -> Result<(), String>,
) -> Result<(HashMap<String, String>, u64), TruthError> {
    let path = truth_file(path);
    let fmt = |what: String| TruthError::Format {
        path: path.display().to_string(),
        what,
    };
    let twice = |a: &str, before: &str, now: &str| fmt(twice_what(a, before, now));
    let mut out = HashMap::new();
    // Rows left out: (without an address, with an address but no value).
    let mut left_out = (0u64, 0u64);
    if path.extension().is_some_and(|e| e == "parquet") {
        for batch in parquet_batches(&path)? {
            let batch = batch.map_err(|e| fmt(e.to_string()))?;
            let (Some(a), Some(e)) = (
                batch.column_by_name("address"),
                value_columns.iter().find_map(|c| batch.column_by_name(c)),
            ) else {
                return Err(fmt(format!(
                    "no address and {} columns",
                    value_columns.join("/")
                )));
            };
            let a = as_utf8(a).map_err(|e| fmt(format!("address: {e}")))?;
            let e = as_utf8(e).map_err(|e| fmt(format!("{}: {e}", value_columns[0])))?;
            for (a, e) in a.into_iter().zip(e) {
                match (a, e) {
                    (Some(a), Some(e)) if !a.trim().is_empty() && !e.trim().is_empty() => {
                        check(&e).map_err(|w| fmt(format!("{a}: {w}")))?;
                        if let Some(before) = out.insert(a.clone(), e.clone())
                            && truth
                            && before != e
                        {
                            return Err(twice(&a, &before, &e));
                        }
                    }
                    (Some(a), _) if !a.trim().is_empty() => left_out.1 += 1,
                    _ => left_out.0 += 1,
                }
            }
        }
        warn_left_out(&path, left_out, value_columns);
        return Ok((out, left_out.0 + left_out.1));
    }
    // A spreadsheet's CSV: quoted fields (a comma inside quotes), a byte-order mark,
    // CRLF line ends, padded cells, and semicolons or tabs as some locales export.
    let (delimiter, header) = csv_header(&path).map_err(|e| fmt(e.to_string()))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_path(&path)
        .map_err(|e| fmt(e.to_string()))?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(ai), Some(ei)) = (col("address"), value_columns.iter().find_map(|c| col(c))) else {
        return Err(fmt(format!(
            "the header must name an address and a {} column; read {} column(s) split by {}: {}",
            value_columns.join("/"),
            header.len(),
            crate::labels::delimiter_name(delimiter),
            header
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    for record in reader.records() {
        let r = record.map_err(|e| {
            let line = e.position().map_or(0, |p| line_at(&path, p.byte()));
            fmt(format!("line {line}: {e}"))
        })?;
        let line = || r.position().map_or(0, |p| line_at(&path, p.byte()));
        match (r.get(ai), r.get(ei)) {
            (Some(a), Some(e)) if !a.is_empty() && !e.is_empty() => {
                check(e).map_err(|w| fmt(format!("line {}: {w}", line())))?;
                if let Some(before) = out.insert(a.to_string(), e.to_string())
                    && truth
                    && before != e
                {
                    return Err(fmt(format!(
                        "line {}: {}",
                        line(),
                        twice_what(a, &before, e)
                    )));
                }
            }
            (Some(a), _) if !a.is_empty() => left_out.1 += 1,
            _ => left_out.0 += 1,
        }
    }
    warn_left_out(&path, left_out, value_columns);
    Ok((out, left_out.0 + left_out.1))
}

/// What a truth file listing `address` with two values says.
fn twice_what(address: &str, before: &str, now: &str) -> String {
    format!(
        "{address} is listed twice, as {before:?} and as {now:?}: ground truth names one owner an address; remove the wrong row"
    )
}

/// Says on stderr how many rows of a truth or label file were left out (they would
/// otherwise vanish from a score without a word): `(without an address, with an address
/// but no value)`. The change flags are read from the truth already read for its
/// entities: their rows without an address were said then, and only the oracle (perfect
/// change detection) leaves out a row without a flag.
fn warn_left_out(path: &Path, (no_address, no_value): (u64, u64), value_columns: &[&str]) {
    let flags = value_columns == ["is_change"];
    if no_address > 0 && !flags {
        eprintln!(
            "chaintrace: warning: {no_address} row(s) of {} have no address; they are left out",
            path.display(),
        );
    }
    if no_value > 0 {
        eprintln!(
            "chaintrace: warning: {no_value} row(s) of {} have no {}; they are left out{}",
            path.display(),
            value_columns.join("/"),
            if flags {
                " of the oracle (perfect change detection) only"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_computation() {
        // Clusters {a,b,c} and {d}; entities X = {a,b}, Y = {c,d}.
        // Predicted pairs 3 (ab, ac, bc), true pairs 2 (ab, cd), correct 1 (ab).
        let s = score_assignments([(0, "X"), (0, "X"), (0, "Y"), (1, "Y")].into_iter(), "t");
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert!((s.f1 - 0.4).abs() < 1e-12);
        assert_eq!((s.clusters, s.entities, s.addresses), (2, 2, 4));
        // A perfect clustering scores 1 everywhere; singletons are homogeneous but not complete.
        let p = score_assignments([(0, "X"), (0, "X"), (1, "Y")].into_iter(), "p");
        assert_eq!(
            (p.precision, p.recall, p.homogeneity, p.completeness),
            (1.0, 1.0, 1.0, 1.0)
        );
        let single = score_assignments([(0, "X"), (1, "X"), (2, "Y")].into_iter(), "s");
        assert_eq!(single.homogeneity, 1.0);
        assert!(single.completeness < 1.0);
        assert_eq!(single.recall, 0.0);
    }
}
