//! The charts of `chaintrace stats`, drawn with plotters through the report's chart code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::report::draw::{Chart, Frame};
use crate::types::{ix, n32};

/// Bar-chart series: (name, category for the colour, value per x).
pub type Series = Vec<(String, String, Vec<f64>)>;

/// Payment-size buckets: powers of ten of satoshi.
pub fn size_buckets(values: &[(String, u64)]) -> (Vec<String>, Series) {
    let digits = |v: u64| if v == 0 { 0 } else { ix(v.ilog10()) };
    let lo = values.iter().map(|v| digits(v.1)).min().unwrap_or(0);
    let hi = values.iter().map(|v| digits(v.1)).max().unwrap_or(0);
    let names: Vec<String> = (lo..=hi)
        .map(|d| {
            let a = crate::report::graph::trim(10u128.pow(n32(d)), 8);
            let b = crate::report::graph::trim(10u128.pow(n32(d) + 1), 8);
            format!("{a}–{b} BTC")
        })
        .collect();
    let mut by_cat: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (c, v) in values {
        by_cat
            .entry(c.as_str())
            .or_insert_with(|| vec![0.0; hi - lo + 1])[digits(*v) - lo] += 1.0;
    }
    let series = by_cat
        .into_iter()
        .map(|(c, v)| (c.to_string(), c.to_string(), v))
        .collect();
    (names, series)
}

/// Writes `chart` as `dir/name.svg` and `dir/name.png`.
///
/// # Errors
/// A drawing or write failure.
pub fn write(chart: &Chart, dir: &Path, name: &str) -> super::Result<Vec<PathBuf>> {
    let svg = dir.join(format!("{name}.svg"));
    crate::store::sink::write_atomic(&svg, chart.svg()?.as_bytes())?;
    let png = dir.join(format!("{name}.png"));
    crate::store::sink::write_atomic(&png, &chart.png(dir)?)?;
    Ok(vec![svg, png])
}

/// A chart frame for the stats commands.
pub fn frame(title: String, subtitle: String, footer: String) -> Frame {
    Frame {
        title,
        subtitle,
        footer,
    }
}

/// Writes grouped bars (1300×620) as `dir/name.svg` and `.png`.
///
/// # Errors
/// A drawing or write failure.
pub fn bars(
    dir: &Path,
    name: &str,
    frame: &Frame,
    x: &[String],
    series: &Series,
    y_desc: &str,
) -> super::Result<Vec<PathBuf>> {
    write(
        &Chart::Bars {
            size: (1300, 620),
            frame,
            x,
            series,
            y_desc,
        },
        dir,
        name,
    )
}

/// Writes the payment-size histogram and the top-counterparty bars (the charts `stats flows`
/// and `stats entity` share) into `dir`.
///
/// # Errors
/// A drawing or write failure.
pub fn sizes_and_counterparties(
    dir: &Path,
    values: &[(String, u64)],
    sizes: &Frame,
    items: &[(String, u64, String)],
    counterparties: &Frame,
) -> super::Result<Vec<PathBuf>> {
    let (x, series) = size_buckets(values);
    let mut files = bars(dir, "payment_sizes", sizes, &x, &series, "payments")?;
    files.extend(write(
        &Chart::HBars {
            size: (1300, 760),
            frame: counterparties,
            items,
            unit: "BTC",
        },
        dir,
        "top_counterparties",
    )?);
    Ok(files)
}
