//! `chaintrace simulate`.

use anyhow::anyhow;

use super::args::{PresetArg, SimulateArgs};
use super::{Cli, CliError, progress_bar};
use crate::simulate::{Preset, SimOptions, simulate};

/// The calendar period of `--start`, `--end` and `--days`, checked.
fn period(a: &SimulateArgs) -> Result<Option<crate::simulate::Period>, CliError> {
    let day = |flag: &str, s: &str| -> Result<i64, CliError> {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| {
                d.and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc()
                    .timestamp()
            })
            .map_err(|e| CliError::user(anyhow!("--{flag} {s:?} is not a date YYYY-MM-DD: {e}")))
            .and_then(|t| {
                // Before 1970 or after 2106 cannot be a block time; a short year ("23-1-1")
                // parses as year 23.
                if (0..=i64::from(u32::MAX)).contains(&t) {
                    Ok(t)
                } else {
                    Err(CliError::user(anyhow!(
                        "--{flag} {s:?} lies outside 1970-2106 (block times are 32-bit unix seconds); write the year in full, e.g. 2024-01-01"
                    )))
                }
            })
    };
    let start = match (&a.start, a.end.is_some() || a.days.is_some()) {
        (None, false) => return Ok(None),
        (Some(s), _) => day("start", s)?,
        (None, true) if a.end.is_some() => {
            return Err(CliError::user(anyhow!("--end needs --start")));
        }
        (None, true) => day("start", "2024-01-01")?,
    };
    let end = match (&a.end, a.days) {
        (Some(e), _) => day("end", e)? + 86_400,
        (None, Some(0)) => {
            return Err(CliError::user(anyhow!(
                "--days must be at least 1 (the period holds whole days)"
            )));
        }
        (None, Some(n)) => start + i64::from(n) * 86_400,
        (None, None) => {
            return Err(CliError::user(anyhow!(
                "--start needs --end DATE or --days N"
            )));
        }
    };
    if end <= start {
        return Err(CliError::user(anyhow!(
            "the period is empty: --end is before --start"
        )));
    }
    let secs = |t: i64| {
        u32::try_from(t).map_err(|_| {
            CliError::user(anyhow!(
                "the period must lie between 1970 and 2106 (unix seconds in 32 bits, as block times are)"
            ))
        })
    };
    Ok(Some(crate::simulate::Period {
        start: secs(start)?,
        end: secs(end)?,
    }))
}

pub(crate) fn run(cli: &Cli, a: &SimulateArgs) -> Result<(), CliError> {
    if a.txs < 2 {
        return Err(CliError::user(anyhow!(
            "--txs must be at least 2 (genesis and one block)"
        )));
    }
    let preset = match a.preset {
        PresetArg::Small => Preset::Small,
        PresetArg::Default => Preset::Default,
        PresetArg::Adversarial => Preset::Adversarial,
    };
    let opts = SimOptions {
        seed: a.seed,
        txs: a.txs,
        preset,
        out: a.out.clone(),
        period: period(a)?,
        prices: a.prices.clone(),
    };
    let pb = progress_bar(cli, "tx");
    let s = simulate(&opts, &pb).map_err(CliError::user)?;
    if let Some(p) = &a.prices {
        if s.period.is_none() {
            eprintln!(
                "chaintrace: warning: --prices does nothing without a period (--start/--end or --days): the world's days are not calendar days"
            );
        } else if s.priced_days == 0 {
            eprintln!(
                "chaintrace: warning: {} prices none of the period's days: round payments stay round in BTC and no dollar value is known",
                p.display()
            );
        }
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summaries serialise")
        );
    } else {
        let g = &s.generated;
        println!(
            "{}: {} blocks, {} transactions in {} blk file(s); truth: {} addresses, {} flagged flows",
            s.out.display(),
            g.blocks,
            g.transactions,
            s.blk_files,
            g.addresses,
            g.flows
        );
        println!("tip {}", s.tip_hash);
        if let Some(p) = s.period {
            let day = |t: u32| {
                chrono::DateTime::from_timestamp(i64::from(t), 0)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            };
            println!(
                "period {} to {} (blocks after the first {} coinbase-only ones are spread over it){}",
                day(p.start),
                day(p.end - 1),
                crate::simulate::BOOTSTRAP_BLOCKS,
                if a.prices.is_some() {
                    format!("; {} of its days priced", s.priced_days)
                } else {
                    String::new()
                }
            );
        }
        println!(
            "ingest it with: chaintrace ingest bitcoin --blocks-dir {}",
            s.out.join("blocks").display()
        );
        eprintln!(
            "chaintrace: {:.0} tx/s, peak memory {} MiB, at most {} live coins",
            s.tx_per_sec,
            s.peak_rss_bytes.unwrap_or(0) / (1 << 20),
            s.max_live_coins
        );
    }
    Ok(())
}
