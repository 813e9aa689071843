//! Research aggregates (`chaintrace stats`), computed with polars' lazy API directly over
//! the Parquet dataset, the labels and the clusters: only the columns a query needs are read
//! (projection pushdown) and filters run in the scan (predicate pushdown). Amounts stay
//! exact integers (Int64 satoshi); fiat values are computed per payment from daily prices in
//! integer arithmetic.
//!
//! Definitions (the same in every table):
//! - An **entity**'s addresses are the addresses tagged with it (`labels import`); with
//!   `via_clusters`, every address of a cluster holding a tagged address (after
//!   `cluster bitcoin`).
//! - A **receipt** is an output paid to one of the entity's addresses by a transaction none of
//!   whose inputs is the entity's (change and internal moves are not income). Its **payer** is
//!   the address of the transaction's first input; its label category (`from_category`)
//!   tells customer payments (unlabelled payers) from, e.g., exchange withdrawals.
//! - A **sending** is an output of a transaction all of whose inputs are the entity's, paid
//!   to an address that is not the entity's (CoinJoins and other transactions shared with
//!   others are not counted as the entity's spending). Its category is that of the
//!   entity's address spent by input 0, so an entity tagged with two of the categories asked
//!   for counts each sending once.
//! - **payers** counts distinct payer addresses; a receipt whose payer is unknown (input 0
//!   without an address, as a coinbase) adds none.

pub mod charts;
mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::report::fmt;
use crate::types::{n32, n64};

/// Where a query reads from.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// `data/<network>`.
    pub chain_dir: PathBuf,
    pub network: String,
    /// `data`.
    pub data: PathBuf,
    /// Propagate tags to whole clusters.
    pub via_clusters: bool,
    pub include_private: bool,
    /// Sources or label files to prefer when tags disagree (`labels::precedence`).
    pub prefer: Vec<String>,
    /// [`Source::entities`] once resolved, with the categories only losing tags carry
    /// ([`crate::labels::Resolved::lost_only`]); filled on first use (leave it empty):
    /// every query of a run reads the labels once.
    pub entities_cache: std::sync::OnceLock<(DataFrame, BTreeMap<String, crate::labels::LostOnly>)>,
}

/// Time buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// Parses `day`, `week`, `month`, `year`.
    pub fn parse(s: &str) -> Option<Period> {
        Some(match s {
            "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            "year" => Period::Year,
            _ => return None,
        })
    }

    fn every(self) -> &'static str {
        match self {
            Period::Day => "1d",
            Period::Week => "1w",
            Period::Month => "1mo",
            Period::Year => "1y",
        }
    }

    /// `daily`, `weekly`, `monthly`, `yearly` (the flows chart's file name).
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    /// The bucket's name from its start (unix ms).
    pub fn name(self, ms: i64) -> String {
        let s = ms.div_euclid(1000);
        match self {
            Period::Day | Period::Week => fmt::date(s),
            Period::Month => fmt::month(s),
            Period::Year => fmt::date(s)[..4].to_string(),
        }
    }
}

/// Why statistics could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A wrong request or a dataset without what it needs (exit 1).
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Polars(#[from] PolarsError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelError),
}

/// Results of this module.
pub type Result<T, E = StatsError> = std::result::Result<T, E>;

fn pe(e: PolarsError) -> StatsError {
    StatsError::Polars(e)
}

impl Source {
    fn table(&self, table: &str) -> Result<LazyFrame> {
        let dir = self.chain_dir.join(table);
        let any = std::fs::read_dir(&dir)
            .map(|mut r| {
                r.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet")))
            })
            .unwrap_or(false);
        if !any {
            return Err(StatsError::Input(format!(
                "{} has no Parquet parts: the dataset is empty; ingest a chain first (chaintrace ingest bitcoin ... --data {})",
                dir.display(),
                self.data.display()
            )));
        }
        let pattern = dir.join("*.parquet").display().to_string();
        LazyFrame::scan_parquet(PlRefPath::new(pattern), ScanArgsParquet::default()).map_err(pe)
    }

    fn file(path: &Path, what: &str) -> Result<LazyFrame> {
        if !path.is_file() {
            return Err(StatsError::Input(format!(
                "{} is missing: {what}",
                path.display()
            )));
        }
        LazyFrame::scan_parquet(
            PlRefPath::new(path.display().to_string()),
            ScanArgsParquet::default(),
        )
        .map_err(pe)
    }

    /// `address, entity, category` of every tagged (or cluster-tagged) address, one row
    /// per address: the tag in use after `labels::precedence` (the same one a trace uses).
    pub fn entities(&self) -> Result<LazyFrame> {
        Ok(self.labels()?.0.clone().lazy())
    }

    /// The entities and the categories only losing tags carry, resolved once.
    fn labels(&self) -> Result<&(DataFrame, BTreeMap<String, crate::labels::LostOnly>)> {
        if let Some(v) = self.entities_cache.get() {
            return Ok(v);
        }
        let (entities, lost) = self.resolve_entities()?;
        let df = entities.collect().map_err(pe)?;
        Ok(self.entities_cache.get_or_init(|| (df, lost)))
    }

    fn resolve_entities(&self) -> Result<(LazyFrame, BTreeMap<String, crate::labels::LostOnly>)> {
        let path = crate::labels::tags_path(&self.data);
        if !path.is_file() {
            return Err(StatsError::Input(format!(
                "{} is missing: no labels yet; import some with chaintrace labels import",
                path.display()
            )));
        }
        let resolved = crate::labels::load(
            &self.data,
            Some("bitcoin"),
            Some(&self.network),
            &crate::labels::Selection {
                include_private: self.include_private,
                prefer: self.prefer.clone(),
            },
        )?;
        let lost = resolved.lost_only();
        let column = |f: fn(&crate::labels::Tag) -> &str| -> Column {
            Column::new(
                "".into(),
                resolved.chosen.iter().map(f).collect::<Vec<&str>>(),
            )
        };
        let tags = DataFrame::new(
            resolved.chosen.len(),
            vec![
                column(|t| &t.address).with_name("address".into()),
                column(|t| &t.entity).with_name("entity".into()),
                column(|t| &t.category).with_name("category".into()),
            ],
        )
        .map_err(pe)?
        .lazy();
        if !self.via_clusters {
            return Ok((tags, lost));
        }
        let ac = Self::file(
            &crate::cluster::clusters_dir(&self.data, &self.network)
                .join("address_cluster.parquet"),
            "no clusters yet; run chaintrace cluster bitcoin first (or leave out --via-clusters)",
        )?;
        let cluster_label = tags
            .inner_join(ac.clone(), col("address"), col("address"))
            .sort(["cluster_id", "entity"], SortMultipleOptions::default())
            .group_by([col("cluster_id")])
            .agg([col("entity").first(), col("category").first()]);
        Ok((
            ac.inner_join(cluster_label, col("cluster_id"), col("cluster_id"))
                .select([col("address"), col("entity"), col("category")]),
            lost,
        ))
    }

    fn blocks(&self) -> Result<LazyFrame> {
        Ok(self.table("blocks")?.select([col("height"), col("time")]))
    }

    fn outputs(&self) -> Result<LazyFrame> {
        Ok(self
            .table("outputs")?
            .select([
                col("height"),
                col("txid"),
                col("vout"),
                col("value"),
                col("address"),
            ])
            .filter(col("address").is_not_null()))
    }

    fn inputs(&self) -> Result<LazyFrame> {
        Ok(self
            .table("inputs")?
            .select([col("txid"), col("vin"), col("value"), col("address")])
            .filter(col("address").is_not_null()))
    }
}

/// The distinct categories of the labels (for error messages).
fn categories(ents: LazyFrame) -> Result<Vec<String>> {
    let df = ents
        .select([col("category")])
        .unique(None, UniqueKeepStrategy::Any)
        .sort(["category"], SortMultipleOptions::default())
        .collect()
        .map_err(pe)?;
    Ok(strings(&df, "category")?.into_iter().flatten().collect())
}

/// A string column.
pub fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(name).map_err(pe)?;
    let s = c.str().map_err(pe)?;
    Ok(s.iter().map(|v| v.map(str::to_string)).collect())
}

/// An integer column (any integer type) as i64.
pub fn ints(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let c = df.column(name).map_err(pe)?;
    let c = c.cast(&DataType::Int64).map_err(pe)?;
    let s = c.i64().map_err(pe)?;
    Ok(s.iter().collect())
}

/// `entities` restricted to `cats`, or a clear error naming the categories there are.
fn in_categories(src: &Source, cats: &[String]) -> Result<LazyFrame> {
    let ents = src.entities()?;
    let have = categories(ents.clone())?;
    for c in cats {
        if !have.contains(c)
            && let Some(lost) = src.labels()?.1.get(c)
        {
            return Err(StatsError::Input(format!("--category {c}: {lost}")));
        }
        if !have.contains(c) {
            return Err(StatsError::Input(format!(
                "no label has the category {c:?}; the labels have: {}",
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )));
        }
    }
    let wanted = df!("category" => cats.to_vec()).map_err(pe)?.lazy();
    Ok(ents.inner_join(wanted, col("category"), col("category")))
}

fn period_col(p: Period) -> Expr {
    col("time").dt().truncate(lit(p.every())).alias("period")
}

/// Receipts and sendings of `ents` (see the module doc), found in one pass over the
/// address index ([`scan`]): receipts `height, txid, vout, value, address, entity,
/// category, payer, from_category, time, period`; sendings the same with `to_entity,
/// to_category` for the payer's columns.
fn receipts_and_sendings(
    src: &Source,
    ents: LazyFrame,
    p: Period,
) -> Result<(LazyFrame, LazyFrame)> {
    let (rec, send) = scan::scan(src, ents, src.entities()?)?;
    let timed = |f: LazyFrame| -> Result<LazyFrame> {
        Ok(f.inner_join(src.blocks()?, col("height"), col("height"))
            .with_column(period_col(p)))
    };
    Ok((timed(rec)?, timed(send)?))
}

/// The `keys` columns of `df` as text (group keys).
fn key_columns(df: &DataFrame, keys: &[&str]) -> Result<Vec<Vec<String>>> {
    keys.iter()
        .map(|k| {
            let c = df.column(k).map_err(pe)?;
            Ok(match c.dtype() {
                DataType::String => strings(df, k)?
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect(),
                _ => ints(df, k)?
                    .into_iter()
                    .map(|v| v.unwrap_or_default().to_string())
                    .collect(),
            })
        })
        .collect()
}

/// Sums `amount_col` in cents per group key, each row valued at its own day's price:
/// (cents, priced rows, unpriced rows) per key.
fn fiat_by(
    df: &DataFrame,
    keys: &[&str],
    amount_col: &str,
    prices: &fmt::Prices,
) -> Result<std::collections::BTreeMap<Vec<String>, (u128, usize, usize)>> {
    let amounts = ints(df, amount_col)?;
    let time = df
        .column("time")
        .map_err(pe)?
        .cast(&DataType::Int64)
        .map_err(pe)?;
    let time: Vec<Option<i64>> = time.i64().map_err(pe)?.iter().collect();
    let key_cols = key_columns(df, keys)?;
    let mut out = std::collections::BTreeMap::new();
    for i in 0..df.height() {
        let key: Vec<String> = key_cols.iter().map(|c| c[i].clone()).collect();
        let e: &mut (u128, usize, usize) = out.entry(key).or_default();
        let v = u64::try_from(amounts[i].unwrap_or(0)).unwrap_or(0);
        match time[i].and_then(|t| prices.cents(v.into(), 8, t.div_euclid(1000))) {
            Some(c) => {
                e.0 += c;
                e.1 += 1;
            }
            None => e.2 += 1,
        }
    }
    Ok(out)
}

/// Adds `<name>_<currency>_cents` (integer cents of the priced rows; null when no row of
/// the group has a price, never a misleading 0) and `<name>_unpriced` (rows without a
/// price) columns. Returns the unpriced rows in all.
fn add_fiat(
    table: &mut DataFrame,
    keys: &[&str],
    sums: &std::collections::BTreeMap<Vec<String>, (u128, usize, usize)>,
    name: &str,
    cur: &str,
) -> Result<u64> {
    let key_cols = key_columns(table, keys)?;
    let mut val: Vec<Option<i64>> = Vec::with_capacity(table.height());
    let mut missing = Vec::with_capacity(table.height());
    let mut unpriced = 0u64;
    for i in 0..table.height() {
        let key: Vec<String> = key_cols.iter().map(|c| c[i].clone()).collect();
        let (c, priced, m) = sums.get(&key).copied().unwrap_or_default();
        // No priced row in the group: the value is unknown, not zero.
        val.push((priced > 0).then(|| i64::try_from(c).unwrap_or(i64::MAX)));
        missing.push(n32(m));
        unpriced += n64(m);
    }
    table
        .with_column(Column::new(
            format!("{name}_{}_cents", cur.to_ascii_lowercase()).into(),
            val,
        ))
        .map_err(pe)?;
    table
        .with_column(Column::new(format!("{name}_unpriced").into(), missing))
        .map_err(pe)?;
    Ok(unpriced)
}

/// The tables of `stats flows`.
#[derive(Debug)]
pub struct Flows {
    /// period, entity, category, from_category (the payer's label category, or
    /// unlabelled), received, payments, payers (+ fiat).
    pub inflows: DataFrame,
    /// period, entity, category, to_category, sent, transfers (+ fiat).
    pub outflows: DataFrame,
    /// Every receipt's value with its entity's category (for the size histogram).
    pub payment_values: Vec<(String, u64)>,
    /// entity, counterparty, to_category, sent (top by amount).
    pub top_counterparties: DataFrame,
    /// With prices: receipts and sendings on days the price file does not cover.
    pub unpriced: u64,
    /// Cells of need-to-know categories left out for having fewer than [`MIN_CELL`]
    /// payments.
    pub suppressed: u64,
    /// The need-to-know categories named (reported as aggregates only).
    pub need_to_know: Vec<String>,
}

/// `stats flows`: money in and out of the entities of `cats`, per period.
///
/// # Errors
/// Unknown categories, a missing dataset or labels, or a polars error.
pub fn flows(
    src: &Source,
    cats: &[String],
    p: Period,
    prices: Option<&fmt::Prices>,
) -> Result<Flows> {
    let ents = in_categories(src, cats)?;
    // Need-to-know categories (crate::share::SENSITIVE): a counterparty's such label is
    // shown as `need_to_know` unless its category is named; a named one is reported as
    // aggregates only — its entities merged under the category's name, and cells of fewer
    // than MIN_CELL payments left out.
    let all_cats = categories(src.entities()?)?;
    let hidden: Vec<String> = all_cats
        .iter()
        .filter(|c| crate::share::is_sensitive(c) && !cats.contains(c))
        .cloned()
        .collect();
    let named: Vec<String> = cats
        .iter()
        .filter(|c| crate::share::is_sensitive(c))
        .cloned()
        .collect();
    let mask = |name: &str| -> Expr {
        when(col(name).is_in(
            lit(Series::new("h".into(), hidden.clone())).implode(false),
            false,
        ))
        .then(lit(NEED_TO_KNOW))
        .otherwise(col(name))
        .alias(name)
    };
    let aggregate = || -> Expr {
        when(col("category").is_in(
            lit(Series::new("n".into(), named.clone())).implode(false),
            false,
        ))
        .then(col("category"))
        .otherwise(col("entity"))
        .alias("entity")
    };
    // Receipts and sendings are small next to the tables they come from: computed once,
    // then every aggregate reads them from memory instead of scanning the dataset again.
    // Masking runs on the collected (small) receipts and sendings, only when labels of a
    // need-to-know category exist: the scans and joins before it are unchanged.
    let need_masking = !hidden.is_empty() || !named.is_empty();
    let (rec, send) = receipts_and_sendings(src, ents, p)?;
    let mut rec = rec.collect().map_err(pe)?.lazy();
    if need_masking {
        rec = rec
            .with_columns([mask("from_category"), aggregate()])
            .collect()
            .map_err(pe)?
            .lazy();
    }
    let mut inflows = rec
        .clone()
        .group_by([
            col("period"),
            col("entity"),
            col("category"),
            col("from_category"),
        ])
        .agg([
            col("value").sum().alias("received"),
            len().alias("payments"),
            // Distinct payer addresses: an unknown payer (input 0 without an address, a
            // coinbase) is not one more.
            col("payer").drop_nulls().n_unique().alias("payers"),
        ])
        .sort(
            ["period", "entity", "from_category"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(pe)?;
    let mut send = send.collect().map_err(pe)?.lazy();
    if need_masking {
        send = send
            .with_columns([
                mask("to_category"),
                aggregate(),
                when(col("to_category").eq(lit(NEED_TO_KNOW)))
                    .then(lit(NEED_TO_KNOW))
                    .otherwise(col("to_entity"))
                    .alias("to_entity"),
            ])
            .collect()
            .map_err(pe)?
            .lazy();
    }
    let mut outflows = send
        .clone()
        .group_by([
            col("period"),
            col("entity"),
            col("category"),
            col("to_category"),
        ])
        .agg([col("value").sum().alias("sent"), len().alias("transfers")])
        .sort(
            ["period", "entity", "to_category"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(pe)?;
    let mut unpriced = 0u64;
    if let Some(pr) = prices {
        let keys = ["period", "entity", "from_category"];
        let rows = rec
            .clone()
            .select([
                col("period"),
                col("entity"),
                col("from_category"),
                col("value"),
                col("time"),
            ])
            .collect()
            .map_err(pe)?;
        let sums = fiat_by(&rows, &keys, "value", pr)?;
        unpriced += add_fiat(&mut inflows, &keys, &sums, "received", &pr.currency)?;
        let rows = send
            .clone()
            .select([
                col("period"),
                col("entity"),
                col("to_category"),
                col("value"),
                col("time"),
            ])
            .collect()
            .map_err(pe)?;
        let sums = fiat_by(&rows, &["period", "entity", "to_category"], "value", pr)?;
        unpriced += add_fiat(
            &mut outflows,
            &["period", "entity", "to_category"],
            &sums,
            "sent",
            &pr.currency,
        )?;
    }
    let values = rec
        .filter(col("from_category").eq(lit("unlabelled")))
        .select([col("category"), col("value")])
        .collect()
        .map_err(pe)?;
    let payment_values = strings(&values, "category")?
        .into_iter()
        .zip(ints(&values, "value")?)
        .map(|(c, v)| {
            (
                c.unwrap_or_default(),
                u64::try_from(v.unwrap_or(0)).unwrap_or(0),
            )
        })
        .collect();
    let top_counterparties = send
        .with_column(
            col("to_entity")
                .fill_null(col("address"))
                .alias("counterparty"),
        )
        .group_by([col("entity"), col("counterparty"), col("to_category")])
        .agg([col("value").sum().alias("sent"), len().alias("transfers")])
        .sort(
            ["sent", "counterparty"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(50)
        .collect()
        .map_err(pe)?;
    // Aggregates only for the named need-to-know categories: small cells left out, and no
    // counterparty list of theirs.
    let named_s = Series::new("n".into(), named.clone());
    let sensitive_row = col("category").is_in(lit(named_s.clone()).implode(false), false);
    let mut suppressed = 0u64;
    let before = (inflows.height() + outflows.height()) as u64;
    if !named.is_empty() {
        inflows = inflows
            .lazy()
            .filter(
                sensitive_row
                    .clone()
                    .not()
                    .or(col("payments").gt_eq(lit(MIN_CELL))),
            )
            .collect()
            .map_err(pe)?;
        outflows = outflows
            .lazy()
            .filter(
                sensitive_row
                    .clone()
                    .not()
                    .or(col("transfers").gt_eq(lit(MIN_CELL))),
            )
            .collect()
            .map_err(pe)?;
        suppressed = before - (inflows.height() + outflows.height()) as u64;
    }
    let top_counterparties = if named.is_empty() {
        top_counterparties
    } else {
        top_counterparties
            .lazy()
            .filter(
                col("entity")
                    .is_in(lit(named_s).implode(false), false)
                    .not(),
            )
            .collect()
            .map_err(pe)?
    };
    Ok(Flows {
        inflows,
        outflows,
        payment_values,
        top_counterparties,
        unpriced,
        suppressed,
        need_to_know: named,
    })
}

/// What a need-to-know counterparty category is shown as when not named.
pub const NEED_TO_KNOW: &str = "need_to_know";
/// Fewest payments (or transfers) a cell of a need-to-know category may show.
pub const MIN_CELL: u32 = 10;

/// The tables of `stats exposure`.
#[derive(Debug)]
pub struct Exposure {
    /// entity, category, inflow, payments, illicit, share_ppm.
    pub table: DataFrame,
    /// What "illicit" means in this table.
    pub basis: String,
}

/// `stats exposure`: for each entity of `category`, its inflow from others and the part of
/// it that is illicit: directly (each receipt × the paying transaction's share of input
/// value from addresses of the `illicit` categories, floor — the haircut reading of one hop),
/// or as traced (`case`: the exits of a trace under `policy`).
///
/// # Errors
/// Unknown categories, missing inputs, or a polars error.
pub fn exposure(
    src: &Source,
    category: &str,
    illicit: &[String],
    case: Option<(&Path, &str)>,
) -> Result<Exposure> {
    let ents = in_categories(src, &[category.to_string()])?;
    let (rec, _) = receipts_and_sendings(src, ents, Period::Month)?;
    let inflow = rec
        .clone()
        .group_by([col("entity"), col("category")])
        .agg([col("value").sum().alias("inflow"), len().alias("payments")]);
    let (illicit_by_entity, basis): (Vec<(String, u128)>, String) = match case {
        None => {
            // Categories the labels lack are left out (and said so); none at all is an error.
            let have = categories(src.entities()?)?;
            let (known, missing): (Vec<String>, Vec<String>) =
                illicit.iter().cloned().partition(|c| have.contains(c));
            if known.is_empty() {
                return Err(StatsError::Input(format!(
                    "no label has any of the illicit categories {}; the labels have: {} (choose with --illicit)",
                    illicit.join(", "),
                    have.join(", ")
                )));
            }
            if !missing.is_empty() {
                eprintln!(
                    "chaintrace: no label has the categories {}; counting {} as illicit",
                    missing.join(", "),
                    known.join(", ")
                );
            }
            let illicit = &known;
            let ill = in_categories(src, illicit)?;
            let tx_in = src
                .inputs()?
                .group_by([col("txid")])
                .agg([col("value").sum().alias("total_in")]);
            let tx_ill = src
                .inputs()?
                .inner_join(ill, col("address"), col("address"))
                .group_by([col("txid")])
                .agg([col("value").sum().alias("illicit_in")]);
            let rows = rec
                .select([col("txid"), col("entity"), col("value")])
                .inner_join(tx_ill, col("txid"), col("txid"))
                .inner_join(tx_in, col("txid"), col("txid"))
                .collect()
                .map_err(pe)?;
            let (e, v, i, t) = (
                strings(&rows, "entity")?,
                ints(&rows, "value")?,
                ints(&rows, "illicit_in")?,
                ints(&rows, "total_in")?,
            );
            let mut m: std::collections::BTreeMap<String, u128> = std::collections::BTreeMap::new();
            for k in 0..rows.height() {
                let (v, i, t) = (
                    v[k].unwrap_or(0) as u128,
                    i[k].unwrap_or(0) as u128,
                    t[k].unwrap_or(0) as u128,
                );
                if let Some(part) = (v * i.min(t)).checked_div(t) {
                    *m.entry(e[k].clone().unwrap_or_default()).or_default() += part;
                }
            }
            (
                m.into_iter().collect(),
                format!(
                    "direct (one hop): each receipt times the paying transaction's share of input value from {} addresses, rounded down",
                    illicit.join("/")
                ),
            )
        }
        Some((dir, policy)) => {
            let ends = Source::file(
                &dir.join("ends.parquet"),
                "not a trace case folder (chaintrace trace --out)",
            )?;
            let df = ends
                .filter(
                    col("kind")
                        .eq(lit("exit"))
                        .and(col("policy").eq(lit(policy)))
                        .and(col("category").eq(lit(category))),
                )
                .group_by([col("entity")])
                .agg([col("amount").sum().alias("traced")])
                .collect()
                .map_err(pe)?;
            let rows = strings(&df, "entity")?
                .into_iter()
                .zip(ints(&df, "traced")?)
                .map(|(e, v)| (e.unwrap_or_default(), v.unwrap_or(0) as u128))
                .collect();
            (
                rows,
                format!("traced: exits of the {policy} trace in {}", dir.display()),
            )
        }
    };
    let mut table = inflow
        .sort(["entity"], SortMultipleOptions::default())
        .collect()
        .map_err(pe)?;
    let names = strings(&table, "entity")?;
    let inflows = ints(&table, "inflow")?;
    let m: std::collections::BTreeMap<String, u128> = illicit_by_entity.into_iter().collect();
    let ill: Vec<i64> = names
        .iter()
        .map(|n| m.get(n.as_deref().unwrap_or("")).copied().unwrap_or(0) as i64)
        .collect();
    let ppm: Vec<i64> = ill
        .iter()
        .zip(&inflows)
        .map(|(&i, f)| match f {
            Some(f) if *f > 0 => (i as i128 * 1_000_000 / i128::from(*f)) as i64,
            _ => 0,
        })
        .collect();
    table
        .with_column(Column::new("illicit".into(), ill))
        .map_err(pe)?;
    table
        .with_column(Column::new("share_ppm".into(), ppm))
        .map_err(pe)?;
    Ok(Exposure { table, basis })
}

/// The tables of `stats entity`.
#[derive(Debug)]
pub struct EntityStats {
    pub name: String,
    pub addresses: usize,
    /// Totals: received from others, sent to others, all received, all spent, balance,
    /// first and last block time (unix seconds).
    pub summary: serde_json::Value,
    /// period, received, payments_in, sent, payments_out.
    pub activity: DataFrame,
    /// direction, counterparty, category, amount, transfers.
    pub counterparties: DataFrame,
    pub payment_values: Vec<(String, u64)>,
}

/// `stats entity`: an entity (by label) or an address (with its cluster when
/// `via_clusters`).
///
/// # Errors
/// An unknown entity or address, or a polars error.
pub fn entity(src: &Source, target: &str, p: Period) -> Result<EntityStats> {
    let ents = src.entities().ok();
    let named = match &ents {
        Some(e) => e
            .clone()
            .filter(col("entity").eq(lit(target)))
            .select([col("address")])
            .collect()
            .map_err(pe)?,
        None => DataFrame::empty(),
    };
    let addresses: Vec<String> = if named.height() > 0 {
        strings(&named, "address")?.into_iter().flatten().collect()
    } else if src.via_clusters {
        let ac = Source::file(
            &crate::cluster::clusters_dir(&src.data, &src.network).join("address_cluster.parquet"),
            "no clusters yet; run chaintrace cluster bitcoin first (or leave out --via-clusters)",
        )?;
        let id = ac
            .clone()
            .filter(col("address").eq(lit(target)))
            .select([col("cluster_id")]);
        let df = ac
            .inner_join(id, col("cluster_id"), col("cluster_id"))
            .select([col("address")])
            .collect()
            .map_err(pe)?;
        strings(&df, "address")?.into_iter().flatten().collect()
    } else {
        vec![target.to_string()]
    };
    let set = df!("address" => addresses.clone(), "entity" => vec![target.to_string(); addresses.len()], "category" => vec!["target".to_string(); addresses.len()])
        .map_err(pe)?
        .lazy();
    let all_in = src
        .outputs()?
        .inner_join(set.clone(), col("address"), col("address"));
    let all_out = src
        .inputs()?
        .inner_join(set.clone(), col("address"), col("address"));
    let totals = all_in
        .clone()
        .select([
            col("value").sum().alias("received_all"),
            len().alias("outputs"),
        ])
        .collect()
        .map_err(pe)?;
    let outputs = ints(&totals, "outputs")?[0].unwrap_or(0);
    if outputs == 0 {
        return Err(StatsError::Input(format!(
            "{target:?} is neither a labelled entity nor an address that received anything in {} (check --network, the labels, or the ingest)",
            src.chain_dir.display()
        )));
    }
    let spent = all_out
        .select([col("value").sum().alias("spent_all")])
        .collect()
        .map_err(pe)?;
    let (rec, send) = receipts_and_sendings(src, set, p)?;
    let rec = rec.collect().map_err(pe)?.lazy();
    let send = send.collect().map_err(pe)?.lazy();
    let totals_of = |lf: &LazyFrame| {
        lf.clone()
            .select([
                col("value").sum().alias("v"),
                len().alias("n"),
                col("time").min().alias("first"),
                col("time").max().alias("last"),
            ])
            .collect()
            .map_err(pe)
    };
    let (r_tot, s_tot) = (totals_of(&rec)?, totals_of(&send)?);
    let received_all = ints(&totals, "received_all")?[0].unwrap_or(0);
    let spent_all = ints(&spent, "spent_all")?[0].unwrap_or(0);
    let t = |df: &DataFrame, c: &str| -> Result<Option<i64>> {
        Ok(ints(df, c)?[0].map(|ms| ms / 1000))
    };
    let first = [t(&r_tot, "first")?, t(&s_tot, "first")?]
        .into_iter()
        .flatten()
        .min();
    let last = [t(&r_tot, "last")?, t(&s_tot, "last")?]
        .into_iter()
        .flatten()
        .max();
    let summary = serde_json::json!({
        "entity": target,
        "addresses": addresses.len(),
        "received_from_others": ints(&r_tot, "v")?[0].unwrap_or(0),
        "receipts": ints(&r_tot, "n")?[0].unwrap_or(0),
        "sent_to_others": ints(&s_tot, "v")?[0].unwrap_or(0),
        "sendings": ints(&s_tot, "n")?[0].unwrap_or(0),
        "received_all": received_all,
        "spent_all": spent_all,
        "balance": received_all - spent_all,
        "first_activity": first.map(fmt::datetime),
        "last_activity": last.map(fmt::datetime),
    });
    let a_in = rec.clone().group_by([col("period")]).agg([
        col("value").sum().alias("received"),
        len().alias("payments_in"),
    ]);
    let a_out = send.clone().group_by([col("period")]).agg([
        col("value").sum().alias("sent"),
        len().alias("payments_out"),
    ]);
    let activity = a_in
        .join(
            a_out,
            [col("period")],
            [col("period")],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .with_columns([
            col("received").fill_null(lit(0i64)),
            col("payments_in").fill_null(lit(0u32)),
            col("sent").fill_null(lit(0i64)),
            col("payments_out").fill_null(lit(0u32)),
        ])
        .sort(["period"], SortMultipleOptions::default())
        .collect()
        .map_err(pe)?;
    let labels = src.entities().ok();
    let label_cols = |lf: LazyFrame, key: &str| -> LazyFrame {
        match &labels {
            Some(l) => lf.left_join(
                l.clone().select([
                    col("address").alias(key),
                    col("entity").alias("cp_entity"),
                    col("category").alias("cp_category"),
                ]),
                col(key),
                col(key),
            ),
            None => lf.with_columns([
                lit(NULL).cast(DataType::String).alias("cp_entity"),
                lit(NULL).cast(DataType::String).alias("cp_category"),
            ]),
        }
    };
    let cp_in = label_cols(rec.clone().filter(col("payer").is_not_null()), "payer")
        .with_columns([
            lit("from").alias("direction"),
            col("cp_entity")
                .fill_null(col("payer"))
                .alias("counterparty"),
            col("cp_category")
                .fill_null(lit("unlabelled"))
                .alias("category"),
        ])
        .group_by([col("direction"), col("counterparty"), col("category")])
        .agg([col("value").sum().alias("amount"), len().alias("transfers")]);
    let cp_out = send
        .with_columns([
            lit("to").alias("direction"),
            col("to_entity")
                .fill_null(col("address"))
                .alias("counterparty"),
            col("to_category").alias("category"),
        ])
        .group_by([col("direction"), col("counterparty"), col("category")])
        .agg([col("value").sum().alias("amount"), len().alias("transfers")]);
    let counterparties = concat([cp_in, cp_out], UnionArgs::default())
        .map_err(pe)?
        .sort(
            ["direction", "amount", "counterparty"],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .collect()
        .map_err(pe)?;
    let values = rec.select([col("value")]).collect().map_err(pe)?;
    let payment_values = ints(&values, "value")?
        .into_iter()
        .map(|v| {
            (
                target.to_string(),
                u64::try_from(v.unwrap_or(0)).unwrap_or(0),
            )
        })
        .collect();
    Ok(EntityStats {
        name: target.to_string(),
        addresses: addresses.len(),
        summary,
        activity,
        counterparties,
        payment_values,
    })
}

/// Writes `df` as CSV (periods as dates, integers exact) and Parquet, atomically.
///
/// # Errors
/// A write failure.
pub fn write_table(df: &mut DataFrame, dir: &Path, name: &str, p: Period) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| StatsError::Io {
        what: "cannot create",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut csv = String::new();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    csv.push_str(&names.join(","));
    csv.push('\n');
    let cols: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            let c = df.column(n).map_err(pe)?;
            Ok(match c.dtype() {
                DataType::String => strings(df, n)?
                    .into_iter()
                    .map(|v| crate::report::export::csv_field(&v.unwrap_or_default()))
                    .collect(),
                DataType::Boolean => c
                    .bool()
                    .map_err(pe)?
                    .iter()
                    .map(|v| v.map_or(String::new(), |b| b.to_string()))
                    .collect(),
                _ if n == "period" => ints(df, n)?
                    .into_iter()
                    .map(|v| v.map_or(String::new(), |ms| p.name(ms)))
                    .collect(),
                _ => ints(df, n)?
                    .into_iter()
                    .map(|v| v.map_or(String::new(), |x| x.to_string()))
                    .collect(),
            })
        })
        .collect::<Result<_>>()?;
    for i in 0..df.height() {
        let row: Vec<&str> = cols.iter().map(|c| c[i].as_str()).collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let csv_path = dir.join(format!("{name}.csv"));
    crate::store::sink::write_atomic(&csv_path, csv.as_bytes())?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(df).map_err(pe)?;
    let pq_path = dir.join(format!("{name}.parquet"));
    crate::store::sink::write_atomic(&pq_path, &buf)?;
    Ok(vec![csv_path, pq_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_name_their_buckets() {
        assert_eq!(Period::parse("month"), Some(Period::Month));
        assert_eq!(Period::parse("fortnight"), None);
        // 2024-02-29 12:00 UTC, in ms.
        let ms = 1_709_208_000_000;
        assert_eq!(Period::Day.name(ms), "2024-02-29");
        assert_eq!(Period::Month.name(ms), "2024-02");
        assert_eq!(Period::Year.name(ms), "2024");
        assert_eq!(Period::Day.every(), "1d");
    }

    #[test]
    fn tables_are_written_as_exact_csv() {
        let d = tempfile::tempdir().unwrap();
        let mut df = DataFrame::new(
            2,
            vec![
                Column::new("entity".into(), ["exchange, Inc.", "mixer"]),
                Column::new("sat".into(), [9_007_199_254_740_993i64, 1]),
                Column::new("public".into(), [true, false]),
            ],
        )
        .unwrap();
        let files = write_table(&mut df, d.path(), "t", Period::Day).unwrap();
        let csv = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "csv"))
            .unwrap();
        let text = std::fs::read_to_string(csv).unwrap();
        // 2^53 + 1 survives (no float on the way); the comma in a name is quoted.
        assert!(
            text.contains("\"exchange, Inc.\",9007199254740993,true"),
            "{text}"
        );
        assert!(text.starts_with("entity,sat,public\n"), "{text}");
    }
}
