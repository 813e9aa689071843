//! `chaintrace stats`.

use std::path::PathBuf;

use anyhow::anyhow;

use super::args::{StatsCommand, StatsCommon};
use super::cluster::chain_dir;
use super::{Cli, CliError};
use crate::report::fmt;
use crate::stats::{self, Period, Source, charts};

/// The dataset of `c`, and the period `by` (exposure has none: month, unused).
fn source(c: &StatsCommon, by: &str) -> Result<(Source, Period), CliError> {
    let (chain_dir, network) = chain_dir(&c.dataset)?;
    let p = Period::parse(by)
        .ok_or_else(|| CliError::user(anyhow!("--by must be day, week, month or year")))?;
    // The queries read the address index: build it now if needed, saying so (it takes a
    // while on a large dataset), rather than silently inside the first query.
    if chain_dir.join("_manifest.json").is_file() {
        super::cluster::open_index(&chain_dir)?;
    }
    Ok((
        Source {
            chain_dir,
            network,
            data: c.dataset.data.clone(),
            via_clusters: c.via_clusters,
            include_private: c.include_private,
            prefer: c.prefer.clone(),
            ..Default::default()
        },
        p,
    ))
}

fn footer(src: &Source) -> String {
    let manifest =
        crate::store::sink::sha256_file(&src.chain_dir.join("_manifest.json")).unwrap_or_default();
    format!(
        "dataset {} (manifest sha256 {manifest}){} · chaintrace {}",
        src.chain_dir.display(),
        coverage(&src.chain_dir)
            .map(|c| format!(" · {c}"))
            .unwrap_or_default(),
        crate::VERSION
    )
}

/// What a dataset that is not the whole chain covers: a height window, or a neighbourhood
/// fetched for a trace. Figures over it cover that only.
fn coverage(chain_dir: &std::path::Path) -> Option<String> {
    let m = crate::store::manifest::Manifest::load(chain_dir).ok()??;
    if let Some(n) = &m.neighbourhood {
        return Some(format!(
            "a neighbourhood fetched from {} at {}: only the transactions within {} hops of a trace's seeds",
            n.api, n.fetched_at, n.max_hops
        ));
    }
    let first = m.parts.iter().map(|p| p.from).min()?;
    let last = m.tip.as_ref().map(|t| t.height)?;
    (first > 0).then(|| {
        format!("a height window: blocks {first} to {last} only (nothing before block {first})")
    })
}

fn btc(v: i64) -> f64 {
    v as f64 / 1e8
}

fn print_files(files: &[PathBuf]) {
    for f in files {
        println!("  {}", f.display());
    }
}

pub(crate) fn run(cli: &Cli, cmd: &StatsCommand) -> Result<(), CliError> {
    let common = match cmd {
        StatsCommand::Flows(a) => &a.common,
        StatsCommand::Entity(a) => &a.common,
        StatsCommand::Exposure(a) => &a.common,
    };
    if !cli.quiet
        && let Ok((chain_dir, _)) = chain_dir(&common.dataset)
        && let Some(c) = coverage(&chain_dir)
    {
        eprintln!("chaintrace: note: this dataset is {c}; the figures cover that only");
    }
    match cmd {
        StatsCommand::Flows(a) => flows(cli, a),
        StatsCommand::Entity(a) => entity(cli, a),
        StatsCommand::Exposure(a) => exposure(cli, a),
    }
}

fn flows(cli: &Cli, a: &super::args::StatsFlowsArgs) -> Result<(), CliError> {
    let (src, p) = source(&a.common, &a.period.by)?;
    let cats: Vec<String> = a
        .category
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if cats.is_empty() {
        return Err(CliError::user(anyhow!(
            "--category needs at least one category"
        )));
    }
    let prices = a
        .prices
        .as_ref()
        .map(|p| fmt::Prices::load(p, &a.fiat))
        .transpose()
        .map_err(CliError::user)?;
    let mut f = stats::flows(&src, &cats, p, prices.as_ref()).map_err(CliError::user)?;
    if let (Some(pr), true) = (&prices, f.unpriced > 0) {
        eprintln!(
            "chaintrace: warning: {} payment(s) fall on days {} does not price: they are counted in the *_unpriced columns and left out of the *_cents columns (empty where no payment of the row is priced)",
            f.unpriced, pr.file
        );
    }
    if !f.need_to_know.is_empty() {
        eprintln!(
            "chaintrace: warning: {} is need-to-know: reported as aggregates only (its entities merged under the category, no counterparty list){}",
            f.need_to_know.join(", "),
            if f.suppressed > 0 {
                format!(
                    "; {} cell(s) of fewer than {} payments left out",
                    f.suppressed,
                    stats::MIN_CELL
                )
            } else {
                String::new()
            }
        );
    }
    let dir = a.common.out.join("flows");
    let mut files = Vec::new();
    for (name, df) in [
        ("inflows", &mut f.inflows),
        ("outflows", &mut f.outflows),
        ("top_counterparties", &mut f.top_counterparties),
    ] {
        files.extend(stats::write_table(df, &dir, name, p).map_err(CliError::user)?);
    }
    // Charts: received and sent per period, per category; payment sizes; top counterparties.
    let periods_in = stats::ints(&f.inflows, "period").map_err(CliError::user)?;
    let periods_out = stats::ints(&f.outflows, "period").map_err(CliError::user)?;
    let mut periods: Vec<i64> = periods_in
        .iter()
        .chain(&periods_out)
        .flatten()
        .copied()
        .collect();
    periods.sort_unstable();
    periods.dedup();
    let at = |ms: i64| periods.binary_search(&ms).unwrap_or(0);
    let mut series = Vec::new();
    for (label, df, amount, cat_col) in [
        ("received", &f.inflows, "received", "category"),
        ("sent", &f.outflows, "sent", "category"),
    ] {
        let cats_of = stats::strings(df, cat_col).map_err(CliError::user)?;
        let per = stats::ints(df, "period").map_err(CliError::user)?;
        let amt = stats::ints(df, amount).map_err(CliError::user)?;
        for c in &cats {
            let mut v = vec![0.0; periods.len()];
            for i in 0..df.height() {
                if cats_of[i].as_deref() == Some(c.as_str()) {
                    v[at(per[i].unwrap_or(0))] += btc(amt[i].unwrap_or(0));
                }
            }
            let colour_cat = if label == "sent" {
                "exchange".to_string()
            } else {
                c.clone()
            };
            series.push((format!("{c} {label}"), colour_cat, v));
        }
    }
    let x: Vec<String> = periods.iter().map(|&ms| p.name(ms)).collect();
    let foot = footer(&src);
    let title = |what: &str| {
        charts::frame(
            format!("{what} — {}", cats.join(", ")),
            format!(
                "per {} · {} · receipts exclude change and internal moves",
                a.period.by, src.network
            ),
            foot.clone(),
        )
    };
    let fr = title("Money received and sent");
    files.extend(
        charts::bars(
            &dir,
            &format!("{}_flows", p.adjective()),
            &fr,
            &x,
            &series,
            "BTC",
        )
        .map_err(CliError::user)?,
    );
    let names = stats::strings(&f.top_counterparties, "counterparty").map_err(CliError::user)?;
    let tcat = stats::strings(&f.top_counterparties, "to_category").map_err(CliError::user)?;
    let sent = stats::ints(&f.top_counterparties, "sent").map_err(CliError::user)?;
    let items: Vec<(String, u64, String)> = (0..f.top_counterparties.height().min(20))
        .map(|i| {
            (
                names[i].clone().unwrap_or_default(),
                u64::try_from(sent[i].unwrap_or(0)).unwrap_or(0),
                tcat[i].clone().unwrap_or_default(),
            )
        })
        .collect();
    let sizes = title("Payment sizes (receipts)");
    let cps = title("Top counterparties (where the money went)");
    files.extend(
        charts::sizes_and_counterparties(&dir, &f.payment_values, &sizes, &items, &cps)
            .map_err(CliError::user)?,
    );
    if cli.json {
        let v = serde_json::json!({
            "inflows": rows_json(&f.inflows, p)?,
            "outflows": rows_json(&f.outflows, p)?,
            "top_counterparties": rows_json(&f.top_counterparties, p)?,
            "files": files
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return Ok(());
    }
    let ent = stats::strings(&f.inflows, "entity").map_err(CliError::user)?;
    let rec = stats::ints(&f.inflows, "received").map_err(CliError::user)?;
    let pay = stats::ints(&f.inflows, "payments").map_err(CliError::user)?;
    let mut totals: std::collections::BTreeMap<
        String,
        (i64, i64, std::collections::BTreeSet<i64>),
    > = std::collections::BTreeMap::new();
    for i in 0..f.inflows.height() {
        let e = totals
            .entry(ent[i].clone().unwrap_or_default())
            .or_default();
        e.0 += rec[i].unwrap_or(0);
        e.1 += pay[i].unwrap_or(0);
        e.2.insert(periods_in[i].unwrap_or(0));
    }
    for (e, (r, n, k)) in &totals {
        println!(
            "{e}: received {} BTC in {n} payments over {} {}(s)",
            fmt::amount(*r as u128, 8),
            k.len(),
            a.period.by
        );
    }
    println!("wrote {}:", dir.display());
    print_files(&files);
    Ok(())
}

/// A table's rows as JSON objects (periods as names).
fn rows_json(
    df: &polars::prelude::DataFrame,
    p: Period,
) -> Result<Vec<serde_json::Value>, CliError> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = vec![serde_json::Map::new(); df.height()];
    for n in &names {
        let c = df.column(n).map_err(|e| CliError::user(anyhow!("{e}")))?;
        if matches!(c.dtype(), polars::prelude::DataType::String) {
            for (i, v) in stats::strings(df, n)
                .map_err(CliError::user)?
                .into_iter()
                .enumerate()
            {
                rows[i].insert(
                    n.clone(),
                    v.map_or(serde_json::Value::Null, serde_json::Value::String),
                );
            }
        } else {
            for (i, v) in stats::ints(df, n)
                .map_err(CliError::user)?
                .into_iter()
                .enumerate()
            {
                let val = match (n.as_str(), v) {
                    (_, None) => serde_json::Value::Null,
                    ("period", Some(ms)) => serde_json::Value::String(p.name(ms)),
                    (_, Some(x)) => serde_json::Value::from(x),
                };
                rows[i].insert(n.clone(), val);
            }
        }
    }
    Ok(rows.into_iter().map(serde_json::Value::Object).collect())
}

fn entity(cli: &Cli, a: &super::args::StatsEntityArgs) -> Result<(), CliError> {
    let (src, p) = source(&a.common, &a.period.by)?;
    let mut e = stats::entity(&src, &a.target, p).map_err(CliError::user)?;
    let safe: String = a
        .target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = a.common.out.join(format!("entity-{safe}"));
    let mut files = Vec::new();
    files.extend(stats::write_table(&mut e.activity, &dir, "activity", p).map_err(CliError::user)?);
    files.extend(
        stats::write_table(&mut e.counterparties, &dir, "counterparties", p)
            .map_err(CliError::user)?,
    );
    let mut summary = serde_json::to_vec_pretty(&e.summary).expect("values serialise");
    summary.push(b'\n');
    let sp = dir.join("summary.json");
    crate::store::sink::write_atomic(&sp, &summary).map_err(CliError::user)?;
    files.push(sp);
    let per = stats::ints(&e.activity, "period").map_err(CliError::user)?;
    let x: Vec<String> = per.iter().map(|v| p.name(v.unwrap_or(0))).collect();
    let col = |n: &str| -> Result<Vec<f64>, CliError> {
        Ok(stats::ints(&e.activity, n)
            .map_err(CliError::user)?
            .into_iter()
            .map(|v| btc(v.unwrap_or(0)))
            .collect())
    };
    let series = vec![
        ("received".to_string(), "seed".to_string(), col("received")?),
        ("sent".to_string(), "exchange".to_string(), col("sent")?),
    ];
    let foot = footer(&src);
    let fr = charts::frame(
        format!("Activity of {} ({} address(es))", e.name, e.addresses),
        format!(
            "per {} · receipts exclude change and internal moves",
            a.period.by
        ),
        foot.clone(),
    );
    files.extend(charts::bars(&dir, "activity", &fr, &x, &series, "BTC").map_err(CliError::user)?);
    let names = stats::strings(&e.counterparties, "counterparty").map_err(CliError::user)?;
    let dirn = stats::strings(&e.counterparties, "direction").map_err(CliError::user)?;
    let cat = stats::strings(&e.counterparties, "category").map_err(CliError::user)?;
    let amt = stats::ints(&e.counterparties, "amount").map_err(CliError::user)?;
    let mut items: Vec<(String, u64, String)> = (0..e.counterparties.height())
        .map(|i| {
            (
                format!(
                    "{} {}",
                    dirn[i].clone().unwrap_or_default(),
                    names[i].clone().unwrap_or_default()
                ),
                u64::try_from(amt[i].unwrap_or(0)).unwrap_or(0),
                cat[i].clone().unwrap_or_default(),
            )
        })
        .collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    items.truncate(20);
    let sizes = charts::frame(
        format!("Payment sizes received by {}", e.name),
        String::new(),
        foot.clone(),
    );
    let cps = charts::frame(
        format!("Top counterparties of {}", e.name),
        "from: payers (first input) · to: recipients".into(),
        foot,
    );
    files.extend(
        charts::sizes_and_counterparties(&dir, &e.payment_values, &sizes, &items, &cps)
            .map_err(CliError::user)?,
    );
    if cli.json {
        let v = serde_json::json!({"summary": e.summary, "activity": rows_json(&e.activity, p)?, "files": files});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return Ok(());
    }
    let s = &e.summary;
    println!(
        "{}: {} address(es); received {} sat from others in {} receipts, sent {} sat to others in {} sendings; balance {} sat; active {} – {}",
        e.name,
        e.addresses,
        s["received_from_others"],
        s["receipts"],
        s["sent_to_others"],
        s["sendings"],
        s["balance"],
        s["first_activity"].as_str().unwrap_or("-"),
        s["last_activity"].as_str().unwrap_or("-")
    );
    println!("wrote {}:", dir.display());
    print_files(&files);
    Ok(())
}

fn exposure(cli: &Cli, a: &super::args::StatsExposureArgs) -> Result<(), CliError> {
    let (src, p) = source(&a.common, "month")?;
    let illicit: Vec<String> = a
        .illicit
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let mut x = stats::exposure(
        &src,
        &a.category,
        &illicit,
        a.case.as_deref().map(|c| (c, a.policy.as_str())),
    )
    .map_err(CliError::user)?;
    let dir = a.common.out.join(format!("exposure-{}", a.category));
    let files = stats::write_table(&mut x.table, &dir, "exposure", p).map_err(CliError::user)?;
    if cli.json {
        let v =
            serde_json::json!({"basis": x.basis, "rows": rows_json(&x.table, p)?, "files": files});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return Ok(());
    }
    println!("illicit = {}", x.basis);
    println!(
        "{:<32} {:>20} {:>20} {:>10}",
        "entity", "inflow (sat)", "illicit (sat)", "share"
    );
    let e = stats::strings(&x.table, "entity").map_err(CliError::user)?;
    let f = stats::ints(&x.table, "inflow").map_err(CliError::user)?;
    let i = stats::ints(&x.table, "illicit").map_err(CliError::user)?;
    let s = stats::ints(&x.table, "share_ppm").map_err(CliError::user)?;
    for k in 0..x.table.height() {
        let ppm = s[k].unwrap_or(0);
        println!(
            "{:<32} {:>20} {:>20} {:>6}.{:04} %",
            e[k].clone().unwrap_or_default(),
            f[k].unwrap_or(0),
            i[k].unwrap_or(0),
            ppm / 10_000,
            ppm % 10_000
        );
    }
    println!("wrote {}:", dir.display());
    print_files(&files);
    Ok(())
}
