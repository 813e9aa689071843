//! Exact formatting of amounts, dates and fiat values (integers only: no float ever reaches
//! a figure of the evidence).

use std::collections::BTreeMap;
use std::path::Path;

use super::ReportError;

use crate::trace::Amount;
use crate::types::{ix, n32};

/// `amount` base units as a decimal coin amount with all `decimals` places
/// (`123456789, 8` → `1.23456789`).
pub fn amount(units: Amount, decimals: u32) -> String {
    if decimals == 0 {
        return units.to_string();
    }
    let scale = 10u128.pow(decimals);
    format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = ix(decimals)
    )
}

/// A shorter amount for charts: at most `places` decimals, trailing zeros kept so columns
/// align (`123456789, 8, 4` → `1.2346`, rounded half up).
pub fn amount_short(units: Amount, decimals: u32, places: u32) -> String {
    let drop = 10u128.pow(decimals - places.min(decimals));
    let rounded = units / drop + Amount::from(units % drop >= drop.div_ceil(2) && drop > 1);
    let scale = 10u128.pow(places.min(decimals));
    if places == 0 {
        return rounded.to_string();
    }
    format!(
        "{}.{:0width$}",
        rounded / scale,
        rounded % scale,
        width = ix(places)
    )
}

/// The civil date (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's
/// algorithm).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (y2, m2) = if m <= 2 {
        (y - 1, i64::from(m) + 9)
    } else {
        (y, i64::from(m) - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of unix seconds.
pub fn date(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM` of unix seconds.
pub fn month(secs: i64) -> String {
    let (y, m, _) = civil(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of unix seconds.
pub fn datetime(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(secs),
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Unix seconds from `YYYY-MM-DDTHH:MM:SSZ`, `YYYY-MM-DD` or plain seconds.
///
/// # Errors
/// Any other text.
pub fn parse_timestamp(s: &str) -> Result<i64, ReportError> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let bad = || {
        ReportError::Input(format!(
            "{s:?} is not a time: use YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DD or unix seconds"
        ))
    };
    let (d, t) = match s.split_once('T') {
        Some((d, t)) => (d, t.trim_end_matches('Z')),
        None => (s, "00:00:00"),
    };
    let dp: Vec<&str> = d.split('-').collect();
    let tp: Vec<&str> = t.split(':').collect();
    if dp.len() != 3 || tp.len() != 3 {
        return Err(bad());
    }
    let n = |x: &str| x.parse::<i64>().map_err(|_| bad());
    let (y, m, dd) = (n(dp[0])?, n(dp[1])?, n(dp[2])?);
    let (h, mi, se) = (n(tp[0])?, n(tp[1])?, n(tp[2])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, n32(m), n32(dd)) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Daily prices in micro-units of the fiat currency per coin (exact: parsed from the
/// decimal text, never through a float).
#[derive(Clone, Debug, Default)]
pub struct Prices {
    pub currency: String,
    /// Day number → micro-units per coin.
    pub by_day: BTreeMap<i64, u128>,
    pub file: String,
}

/// Parses a decimal text into micro-units (six places, rounded half up at the seventh).
fn micros(s: &str) -> Option<u128> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let fb = frac.as_bytes();
    for i in 0..6 {
        v = v * 10 + fb.get(i).map_or(0, |b| u128::from(b - b'0'));
    }
    if fb.get(6).is_some_and(|&b| b >= b'5') {
        v += 1;
    }
    Some(v)
}

impl Prices {
    /// Reads a daily price CSV with a `Date` column (YYYY-MM-DD) and a `Close` (or `Price`)
    /// column, as `BTC-USD.csv` of Yahoo Finance.
    ///
    /// # Errors
    /// A missing file, missing columns or a malformed row (named by line).
    pub fn load(path: &Path, currency: &str) -> Result<Prices, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            what: "cannot read the price file",
            path: path.to_path_buf(),
            source,
        })?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
        let (Some(dc), Some(pc)) = (col(&["date", "day"]), col(&["close", "price"])) else {
            return Err(ReportError::Input(format!(
                "{}: the header needs a Date column and a Close (or Price) column, found {:?}",
                path.display(),
                header
            )));
        };
        let mut by_day = BTreeMap::new();
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            let lineno = n + 2;
            let day = f
                .get(dc)
                .and_then(|d| parse_timestamp(d.trim()).ok())
                .ok_or_else(|| {
                    ReportError::Input(format!("{}:{lineno}: bad date", path.display()))
                })?;
            let Some(p) = f.get(pc).and_then(|p| micros(p)) else {
                // Yahoo writes "null" on days without a quote: such a day has no price.
                if f.get(pc).is_some_and(|p| p.trim() == "null") {
                    continue;
                }
                return Err(ReportError::Input(format!(
                    "{}:{lineno}: bad price",
                    path.display()
                )));
            };
            by_day.insert(day.div_euclid(86_400), p);
        }
        if by_day.is_empty() {
            return Err(ReportError::Input(format!(
                "{} holds no price",
                path.display()
            )));
        }
        Ok(Prices {
            currency: currency.to_ascii_uppercase(),
            by_day,
            file: path.display().to_string(),
        })
    }

    /// The value of `units` (10^-`decimals` coin) on the day of `secs`, in cents, rounded
    /// half up; `None` when the file has no price for that day.
    pub fn cents(&self, units: Amount, decimals: u32, secs: i64) -> Option<u128> {
        let p = self.by_day.get(&secs.div_euclid(86_400))?;
        // units * micro / 10^decimals / 10^4 (micro → cents).
        let den = 10u128.pow(decimals) * 10_000;
        Some((units.saturating_mul(*p) + den / 2) / den)
    }
}

/// `1234567` cents → `12,345.67`.
pub fn cents(c: u128) -> String {
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{grouped}.{:02}", c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(amount(123_456_789, 8), "1.23456789");
        assert_eq!(amount(5, 8), "0.00000005");
        assert_eq!(amount(21_000_000 * 100_000_000, 8), "21000000.00000000");
        assert_eq!(amount_short(123_456_789, 8, 4), "1.2346");
        assert_eq!(amount_short(4_999, 8, 4), "0.0000");
        assert_eq!(amount_short(5_000, 8, 4), "0.0001");
        // Wei beyond u64, and raw token units (no decimals): every digit kept.
        let wei = 123_456_789_012_345_678_901_234u128;
        assert_eq!(amount(wei, 18), "123456.789012345678901234");
        assert_eq!(amount(450 * 10u128.pow(18), 0), "450000000000000000000");
        assert_eq!(
            crate::report::graph::trim(450 * 10u128.pow(18), 0),
            "450000000000000000000"
        );
        assert_eq!(
            crate::report::graph::trim(1_500_000_000_000_000_000, 18),
            "1.5"
        );
        assert_eq!(amount_short(wei, 18, 4), "123456.7890");
    }

    #[test]
    fn dates_round_trip() {
        for days in [-1, 0, 59, 60, 365, 11_016, 20_000, 20_819] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(datetime(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600
        );
        assert_eq!(parse_timestamp("2024-02-29").unwrap() % 86_400, 0);
        assert!(parse_timestamp("2024-13-01").is_err());
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn fiat_is_exact_integer_arithmetic() {
        assert_eq!(micros("66628.734375"), Some(66_628_734_375));
        assert_eq!(micros("5.0000005"), Some(5_000_001));
        assert_eq!(micros("x"), None);
        let mut p = Prices::default();
        p.by_day.insert(0, 50_000_000_000); // 50,000.000000 per coin
        // 0.1 BTC at 50,000 = 5,000.00; 1 sat = 0.0005 → rounds to 0.00 (half up at 0.5 cent).
        assert_eq!(p.cents(10_000_000, 8, 3600), Some(500_000));
        assert_eq!(p.cents(1, 8, 0), Some(0));
        assert_eq!(p.cents(1, 8, 86_400), None);
        assert_eq!(cents(123_456_789), "1,234,567.89");
        assert_eq!(cents(5), "0.05");
    }
}
