//! The measured error of a trace: each model's exposure compared with ground truth.
//!
//! The truth is the true transfers of the flagged entity's coins to labelled entities:
//! the simulator's `truth/flows.parquet` (flagged_entity, txid, vout, to_entity,
//! to_category, amount) or a regtest world's `peel_chain.csv` (the vendor's payouts, by txid
//! and address). A case's exits are matched to true flows by outpoint (txid:vout) or, for a
//! peel chain, by txid and address; the totals per category and per receiving entity give
//! the signed error of each model (positive: the model overstates what reached them).
//! A peel chain is the truth of its own payouts only: exits elsewhere (the flagged entity's
//! other payments) count as "matching no true flow", not as errors of the matched ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use arrow_array::cast::AsArray;
use serde::Serialize;
use thiserror::Error;

use super::Amount;
use crate::report::case::Case;

/// An error reading a truth.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("cannot read the truth {path}: {what}")]
    Truth { path: String, what: String },
    #[error(
        "the truth {path} has flows of several flagged entities ({found}); choose one with --flagged"
    )]
    WhichFlagged { path: String, found: String },
    #[error("the truth {path} has no flows of {flagged:?}; its flagged entities: {found}")]
    UnknownFlagged {
        path: String,
        flagged: String,
        found: String,
    },
    #[error(
        "none of the {flows} transactions of the truth {truth} appears anywhere in {case} (any model, any transfer): the truth describes another dataset or another flagged entity than this case's seeds. Check --truth and --flagged; to measure a trace that truly finds none of them, add --allow-disjoint"
    )]
    Disjoint {
        flows: usize,
        truth: String,
        case: String,
    },
    #[error(transparent)]
    Case(#[from] crate::report::ReportError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Audit(#[from] crate::case::CaseError),
}

/// Each model's traced and true exposure to `category` per calendar month (UTC): a truth
/// flow counts in the month of its block (`times`: height → unix seconds, from the
/// dataset), a traced exit in the month of the transfer that made it. Months come in order;
/// empty when the truth gives no heights. One JSON row per (model, month): `policy`,
/// `month` (`YYYY-MM`), `traced`, `truth` (base units).
pub fn by_month(
    case: &Case,
    truth: &[TruthFlow],
    category: &str,
    times: &HashMap<u32, i64>,
) -> Vec<serde_json::Value> {
    let month = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .format("%Y-%m")
            .to_string()
    };
    let mut true_per: BTreeMap<String, Amount> = BTreeMap::new();
    for f in truth.iter().filter(|f| f.category == category) {
        let Some(t) = f.height.and_then(|h| times.get(&h)) else {
            continue;
        };
        *true_per.entry(month(*t)).or_default() += f.amount;
    }
    if true_per.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in &case.results {
        let time_of: HashMap<&str, u32> =
            r.edges.iter().map(|e| (e.txid.as_ref(), e.time)).collect();
        let mut traced: BTreeMap<String, Amount> = BTreeMap::new();
        for e in r
            .ends
            .iter()
            .filter(|e| e.kind == "exit" && e.category.as_deref() == Some(category))
        {
            if let Some(t) = time_of.get(e.txid.as_str()) {
                *traced.entry(month(i64::from(*t))).or_default() += e.amount;
            }
        }
        let months: BTreeSet<&String> = true_per.keys().chain(traced.keys()).collect();
        for m in months {
            let (tr, tt) = (
                traced.get(m).copied().unwrap_or(0),
                true_per.get(m).copied().unwrap_or(0),
            );
            out.push(serde_json::json!({
                "policy": r.policy,
                "month": m,
                "traced": tr,
                "truth": tt,
                "signed_error_ppm": ppm(tr, tt).and_then(|x| i64::try_from(x).ok()),
            }));
        }
    }
    out
}

/// Block times (unix seconds) by height of the Bitcoin dataset a case traced: what
/// [`by_month`] needs; empty when the dataset is not where the case says.
fn block_times(case: &Case) -> HashMap<u32, i64> {
    let mut out = HashMap::new();
    let Some(data) = case.data.as_deref() else {
        return out;
    };
    let dir = Path::new(data).join(&case.network).join("blocks");
    let Ok(files) = crate::store::reader::part_files(&dir) else {
        return out;
    };
    let _ = crate::store::reader::each_batch_of(&files, &["height", "time"], |b| {
        let (Some(h), Some(t)) = (
            b.column_by_name("height")
                .and_then(|c| c.as_primitive_opt::<arrow_array::types::UInt32Type>()),
            b.column_by_name("time")
                .and_then(|c| c.as_primitive_opt::<arrow_array::types::TimestampMillisecondType>()),
        ) else {
            return Ok::<(), crate::store::reader::ReadError>(());
        };
        for i in 0..b.num_rows() {
            out.insert(h.value(i), t.value(i) / 1000);
        }
        Ok(())
    });
    out
}

/// What the `eval trace` stage asks: the case, the truth and what to measure.
#[derive(Clone, Debug)]
pub struct Measure<'a> {
    /// The case folder.
    pub case: &'a Path,
    /// A truth folder (`flows.parquet` or `peel_chain.csv` in it) or file.
    pub truth: &'a Path,
    /// The flagged entity whose flows count (`--flagged`), when the truth has several.
    pub flagged: Option<&'a str>,
    /// The exit category measured (`exchange`).
    pub category: &'a str,
    /// Measure even when no truth transaction appears in the case.
    pub allow_disjoint: bool,
    /// The command recorded in the case's audit trail.
    pub command: Vec<String>,
    /// Unix seconds of the measurement.
    pub now: i64,
}

/// The `eval trace` stage: each model's exposure in the case against the truth's flows,
/// written to `CASE/eval_trace.json` (with the truth's sha256, the time and the trace's
/// hash) and appended to the case's audit trail. `by_hops` (the same measured at other
/// hop limits, made by running the trace again) is kept as given. Returns the document.
///
/// # Errors
/// An unreadable case or truth, a truth disjoint from the case (unless allowed), a file
/// that cannot be written.
pub fn measure(
    m: &Measure<'_>,
    by_hops: Vec<serde_json::Value>,
) -> Result<(serde_json::Value, Vec<ModelError>), EvalError> {
    let case = Case::load(m.case)?;
    let truth = read_truth(m.truth, m.flagged)?;
    if !truth.is_empty() && overlap(&case, &truth) == 0 && !m.allow_disjoint {
        return Err(EvalError::Disjoint {
            flows: truth.len(),
            truth: m.truth.display().to_string(),
            case: m.case.display().to_string(),
        });
    }
    let models = evaluate(&case, &truth, m.category);
    let truth_file = if m.truth.is_dir() {
        [
            m.truth.join("flows.parquet"),
            m.truth.join("peel_chain.csv"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| m.truth.to_path_buf())
    } else {
        m.truth.to_path_buf()
    };
    let truth_sha = crate::store::sink::sha256_file(&truth_file)?;
    let measured_at = chrono::DateTime::from_timestamp(m.now, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Per month when the truth has heights and the case's dataset is where it says; when
    // it is not, the document says why instead of an unexplained empty list.
    let has_heights = truth.iter().any(|f| f.height.is_some());
    let times = if case.chain == "bitcoin" && has_heights {
        block_times(&case)
    } else {
        HashMap::new()
    };
    let months = by_month(&case, &truth, m.category, &times);
    let by_month_note = match (has_heights, times.is_empty()) {
        (false, _) => Some(
            "the truth gives no block heights (a peel_chain.csv): no per-month scores".to_string(),
        ),
        (true, true) => Some(format!(
            "no per-month scores: the dataset's block times are not at {} (the case's --data); run eval trace where the dataset is",
            case.data.as_deref().unwrap_or("(not recorded)")
        )),
        (true, false) => None,
    };
    let doc = serde_json::json!({
        "truth": truth_file,
        "truth_sha256": truth_sha,
        "measured_at": measured_at,
        "category": m.category,
        "trace_sha256": case.trace_sha256,
        "models": models,
        "by_hops": by_hops,
        "by_month": months,
        "by_month_note": by_month_note,
    });
    let out = m.case.join("eval_trace.json");
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("evaluations serialise");
    bytes.push(b'\n');
    crate::store::sink::write_atomic(&out, &bytes)?;
    let outputs = crate::case::hashes([("eval_trace.json".to_string(), out.as_path())])?;
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(format!("truth {}", truth_file.display()), truth_sha);
    inputs.insert("trace.json".to_string(), case.trace_sha256.clone());
    crate::case::append(
        m.case,
        crate::case::Action {
            action: "eval",
            command: m.command.clone(),
            inputs,
            outputs,
            time: m.now,
            ..crate::case::Action::default()
        },
    )?;
    Ok((doc, models))
}

/// How many of the truth's transactions appear anywhere in the case (any model's
/// transfers or ends). None of them: the truth describes another dataset or another
/// flagged entity than the case's seeds.
pub fn overlap(case: &Case, truth: &[TruthFlow]) -> usize {
    let seen: BTreeSet<&str> = case
        .results
        .iter()
        .flat_map(|r| {
            r.edges
                .iter()
                .map(|e| e.txid.as_ref())
                .chain(r.ends.iter().map(|e| e.txid.as_str()))
        })
        .collect();
    truth
        .iter()
        .map(|f| f.txid.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|t| seen.contains(t))
        .count()
}

/// One true transfer of the flagged entity's coins to a labelled entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruthFlow {
    pub txid: String,
    /// The output, when the truth names it (simulator).
    pub vout: Option<u32>,
    /// The address paid, when the truth names it (peel chain).
    pub address: Option<String>,
    pub entity: String,
    pub category: String,
    pub amount: Amount,
    /// The flow's block height, when the truth gives it (simulator).
    pub height: Option<u32>,
}

/// The truth's flows, from a simulator truth folder (or its `flows.parquet`) or a regtest
/// world's `peel_chain.csv` (or its ground-truth folder).
///
/// # Errors
/// A truth that cannot be read, or several flagged entities without `flagged`.
pub fn read_truth(path: &Path, flagged: Option<&str>) -> Result<Vec<TruthFlow>, EvalError> {
    let err = |what: String| EvalError::Truth {
        path: path.display().to_string(),
        what,
    };
    let flows = if path.is_dir() {
        path.join("flows.parquet")
    } else {
        path.to_path_buf()
    };
    let peel = if path.is_dir() {
        path.join("peel_chain.csv")
    } else {
        path.to_path_buf()
    };
    if flows.extension().is_some_and(|e| e == "parquet") && flows.is_file() {
        let f = std::fs::File::open(&flows).map_err(|e| err(e.to_string()))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.build())
            .map_err(|e| err(e.to_string()))?;
        let mut all = Vec::new();
        for b in reader {
            let b = b.map_err(|e| err(e.to_string()))?;
            let s = |n: &str| {
                b.column_by_name(n)
                    .and_then(|c| c.as_string_opt::<i32>())
                    .cloned()
                    .ok_or_else(|| err(format!("no text column {n}")))
            };
            let (who, txid, to, cat) = (
                s("flagged_entity")?,
                s("txid")?,
                s("to_entity")?,
                s("to_category")?,
            );
            let vout = b
                .column_by_name("vout")
                .and_then(|c| c.as_primitive_opt::<arrow_array::types::UInt32Type>())
                .cloned()
                .ok_or_else(|| err("no vout column".into()))?;
            let amount = b
                .column_by_name("amount")
                .and_then(|c| c.as_primitive_opt::<arrow_array::types::UInt64Type>())
                .cloned()
                .ok_or_else(|| err("no amount column".into()))?;
            // Truths written before the height column have none.
            let height = b
                .column_by_name("height")
                .and_then(|c| c.as_primitive_opt::<arrow_array::types::UInt32Type>())
                .cloned();
            for i in 0..b.num_rows() {
                all.push((
                    who.value(i).to_string(),
                    TruthFlow {
                        txid: txid.value(i).to_string(),
                        vout: Some(vout.value(i)),
                        address: None,
                        entity: to.value(i).to_string(),
                        category: cat.value(i).to_string(),
                        amount: amount.value(i).into(),
                        height: height.as_ref().map(|h| h.value(i)),
                    },
                ));
            }
        }
        let who: BTreeSet<&str> = all.iter().map(|(w, _)| w.as_str()).collect();
        let pick = match (flagged, who.len()) {
            (Some(f), _) if !who.contains(f) => {
                return Err(EvalError::UnknownFlagged {
                    path: path.display().to_string(),
                    flagged: f.to_string(),
                    found: who.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
            (Some(f), _) => f.to_string(),
            (None, 1) => who.iter().next().map(|w| w.to_string()).unwrap_or_default(),
            (None, _) => {
                return Err(EvalError::WhichFlagged {
                    path: path.display().to_string(),
                    found: who.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
        };
        return Ok(all
            .into_iter()
            .filter(|(w, _)| *w == pick)
            .map(|(_, f)| f)
            .collect());
    }
    // A regtest world's peel chain: hop,txid,in_address,payout_address,payout_entity,
    // payout_sats,onward_address,onward_entity,onward_vout,onward_sats,fee_sats. Its one
    // flagged entity is the vendor.
    if let Some(f) = flagged.filter(|f| *f != "vendor") {
        return Err(EvalError::UnknownFlagged {
            path: peel.display().to_string(),
            flagged: f.to_string(),
            found: "vendor (a peel chain is one vendor's)".to_string(),
        });
    }
    let mut reader = csv::Reader::from_path(&peel).map_err(|e| err(e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |n: &str| {
        header.iter().position(|h| h == n).ok_or_else(|| {
            err(format!(
                "no column {n} (neither flows.parquet nor peel_chain.csv)"
            ))
        })
    };
    let (tx, pa, pe, ps, oa, oe, ov, os) = (
        col("txid")?,
        col("payout_address")?,
        col("payout_entity")?,
        col("payout_sats")?,
        col("onward_address")?,
        col("onward_entity")?,
        col("onward_vout")?,
        col("onward_sats")?,
    );
    let mut out = Vec::new();
    for r in reader.records() {
        let r = r.map_err(|e| err(e.to_string()))?;
        let get = |i: usize| r.get(i).unwrap_or("").trim();
        let amount = |i: usize| get(i).parse::<Amount>().ok();
        // The vendor's own onward outputs are not flows to others.
        for (a, e, v, vout) in [(pa, pe, ps, None), (oa, oe, os, Some(ov))] {
            let (entity, Some(value)) = (get(e), amount(v)) else {
                continue;
            };
            if entity.is_empty() || entity == "vendor" {
                continue;
            }
            out.push(TruthFlow {
                txid: get(tx).to_string(),
                vout: vout.and_then(|i| get(i).parse().ok()),
                address: Some(get(a).to_string()),
                entity: entity.to_string(),
                // The peel chain's receivers are the exchange or users; users are customers.
                category: if entity.starts_with("exchange") {
                    "exchange".into()
                } else {
                    "user".into()
                },
                amount: value,
                height: None,
            });
        }
    }
    Ok(out)
}

/// One model's measured error.
#[derive(Clone, Debug, Serialize)]
pub struct ModelError {
    pub policy: String,
    /// What the model says reached the category (sum of its exits there).
    pub traced: Amount,
    /// What truly reached it.
    pub truth: Amount,
    /// (traced − truth) / truth in parts per million; `None` when the truth is 0.
    pub signed_error_ppm: Option<i128>,
    /// True flows matched by an exit of the model, of all true flows.
    pub flows_found: usize,
    /// True flows whose matching exits carry exactly the true amount.
    pub flows_exact: usize,
    pub flows_true: usize,
    /// Exits of the model in the category that match no true flow.
    pub exits_unmatched: usize,
    /// Those exits, as `txid:vout amount`: either errors of the model or true flows the
    /// truth does not list (a peel chain lists only its own payouts).
    pub unmatched: Vec<String>,
    /// Per receiving entity: (traced, truth).
    pub per_entity: BTreeMap<String, (Amount, Amount)>,
}

/// A signed error in parts per million as a percentage with one decimal (`+34.0 %`),
/// rounded half away from zero; `n/a` when there was nothing true to compare with.
pub fn percent(ppm: Option<i128>) -> String {
    match ppm {
        None => "n/a".into(),
        // Under 1 % two decimals (a small error is not shown as none), else one.
        Some(p) if p.abs() < 10_000 && p != 0 => {
            let hundredths = (p.abs() + 50) / 100;
            format!(
                "{}{}.{:02} %",
                if p < 0 { "-" } else { "+" },
                hundredths / 100,
                hundredths % 100
            )
        }
        Some(p) => {
            let tenths = (p.abs() + 500) / 1000;
            format!(
                "{}{}.{} %",
                if p < 0 { "-" } else { "+" },
                tenths / 10,
                tenths % 10
            )
        }
    }
}

fn ppm(traced: Amount, truth: Amount) -> Option<i128> {
    let (t, u) = (i128::try_from(traced).ok()?, i128::try_from(truth).ok()?);
    (u != 0).then(|| (t - u) * 1_000_000 / u)
}

/// Each model's exposure to `category` in `case`, against `truth`.
pub fn evaluate(case: &Case, truth: &[TruthFlow], category: &str) -> Vec<ModelError> {
    let flows: Vec<&TruthFlow> = truth.iter().filter(|f| f.category == category).collect();
    let true_total: Amount = flows.iter().map(|f| f.amount).sum();
    let mut true_per: BTreeMap<String, Amount> = BTreeMap::new();
    for f in &flows {
        *true_per.entry(f.entity.clone()).or_default() += f.amount;
    }
    case.results
        .iter()
        .map(|r| {
            let exits: Vec<&crate::report::case::End> = r
                .ends
                .iter()
                .filter(|e| e.kind == "exit" && e.category.as_deref() == Some(category))
                .collect();
            let matches = |f: &TruthFlow, e: &crate::report::case::End| {
                f.txid == e.txid
                    && (f.vout == Some(e.vout) || f.address.as_deref() == Some(e.address.as_str()))
            };
            let flows_found = flows
                .iter()
                .filter(|f| exits.iter().any(|e| matches(f, e)))
                .count();
            let flows_exact = flows
                .iter()
                .filter(|f| {
                    exits
                        .iter()
                        .filter(|e| matches(f, e))
                        .map(|e| e.amount)
                        .sum::<Amount>()
                        == f.amount
                })
                .count();
            let unmatched: Vec<String> = exits
                .iter()
                .filter(|e| !flows.iter().any(|f| matches(f, e)))
                .map(|e| format!("{}:{} {}", e.txid, e.vout, e.amount))
                .collect();
            let exits_unmatched = unmatched.len();
            let traced: Amount = exits.iter().map(|e| e.amount).sum();
            let mut per_entity: BTreeMap<String, (Amount, Amount)> =
                true_per.iter().map(|(k, v)| (k.clone(), (0, *v))).collect();
            for e in &exits {
                per_entity
                    .entry(e.entity.clone().unwrap_or_default())
                    .or_default()
                    .0 += e.amount;
            }
            ModelError {
                policy: r.policy.clone(),
                traced,
                truth: true_total,
                signed_error_ppm: ppm(traced, true_total),
                flows_found,
                flows_exact,
                flows_true: flows.len(),
                exits_unmatched,
                unmatched,
                per_entity,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_errors_are_relative_to_the_truth() {
        assert_eq!(ppm(134, 100), Some(340_000));
        assert_eq!(ppm(90, 100), Some(-100_000));
        assert_eq!(ppm(5, 0), None);
    }
}

#[cfg(test)]
mod percent_tests {
    use super::percent;

    #[test]
    fn small_errors_keep_two_decimals() {
        assert_eq!(percent(Some(0)), "+0.0 %");
        assert_eq!(percent(Some(200)), "+0.02 %");
        assert_eq!(percent(Some(-4_999)), "-0.50 %");
        assert_eq!(percent(Some(68_000)), "+6.8 %");
        assert_eq!(percent(Some(1_542_000)), "+154.2 %");
        assert_eq!(percent(None), "n/a");
    }
}
