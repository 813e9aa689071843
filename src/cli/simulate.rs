//! `chaintrace simulate`.

use anyhow::anyhow;

use super::args::{PresetArg, SimulateArgs};
use super::{Cli, CliError, progress_bar};
use crate::simulate::{Preset, SimOptions, simulate};

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
    };
    let pb = progress_bar(cli, "tx");
    let s = simulate(&opts, &pb).map_err(CliError::user)?;
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
