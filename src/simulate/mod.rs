//! `chaintrace simulate`: a synthetic Bitcoin economy in Bitcoin Core's file format, with
//! ground truth.
//!
//! The chain is regtest-framed (`blk*.dat` + `xor.dat`), starts at the real regtest genesis
//! block, and every block is structurally valid: correct txids and merkle roots, BIP 34
//! heights, BIP 141 witness commitments, previous-hash links, increasing timestamps and
//! headers that meet the regtest proof-of-work target. Signatures are placeholders of
//! realistic length (they do not verify). The economy is described in [`world`].
//!
//! Output is streamed: blocks are written as they are made and the ground-truth tables in
//! batches, so memory is bounded by the live coins of the actors, not by chain length.

pub mod keys;
pub mod rng;
pub mod world;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_schema::{DataType, Field};
use bitcoin::consensus::serialize;
use serde::Serialize;

use self::rng::Rng;
use self::world::{Generated, Params, Truth, World};
use self::writer::{BlkWriter, MAX_BLOCKFILE_SIZE, TableWriter, boolc, s, u64c};
use crate::store::StoreError;
use crate::types::{Network, ix, n32, n64};

/// The presets of `--preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Few actors, small blocks: for tests and the demo.
    Small,
    /// Realistic shares of behaviour.
    Default,
    /// Hard for heuristics: many CoinJoins, change that mimics payments, exchanges that
    /// reuse hot addresses, little address-type matching.
    Adversarial,
}

impl Preset {
    /// The parameters for a chain of `txs` transactions.
    pub fn params(self, txs: u64) -> Params {
        let users = |per: u64, min: u64| u32::try_from((txs / per).max(min)).unwrap_or(u32::MAX);
        match self {
            Preset::Small => Params {
                txs_per_block: 40,
                users: users(60, 25),
                exchanges: 2,
                merchants: 4,
                miners: 2,
                reuse_rate: 0.25,
                change_type_match: 0.8,
                round_payment: 0.5,
                coinjoin_weight: 2,
                change_mimics_payment: 0.0,
                exchange_reuses_hot: false,
                vendor_customer_share: 0.3,
                wallet_software: false,
            },
            Preset::Default => Params {
                txs_per_block: 1000,
                users: users(150, 50),
                exchanges: 5,
                merchants: users(3000, 10),
                miners: 6,
                reuse_rate: 0.25,
                change_type_match: 0.85,
                round_payment: 0.5,
                coinjoin_weight: 2,
                // Bitcoin Core (since v24) gives change the payment's address type; about
                // half the wallets here behave so, the rest keep their own type.
                change_mimics_payment: 0.5,
                exchange_reuses_hot: false,
                vendor_customer_share: 0.05,
                wallet_software: true,
            },
            Preset::Adversarial => Params {
                txs_per_block: 1000,
                users: users(150, 50),
                exchanges: 5,
                merchants: users(3000, 10),
                miners: 6,
                reuse_rate: 0.4,
                change_type_match: 0.3,
                round_payment: 0.1,
                coinjoin_weight: 10,
                change_mimics_payment: 0.7,
                exchange_reuses_hot: true,
                vendor_customer_share: 0.05,
                wallet_software: true,
            },
        }
    }
}

/// Options of a simulation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    /// Transactions to generate (coinbases included).
    pub txs: u64,
    pub preset: Preset,
    pub out: PathBuf,
    /// The calendar period the world spans (see [`Period`]); `None`: blocks every 5 to 15
    /// minutes from 2026-01-01, as many as the size needs.
    pub period: Option<Period>,
    /// A daily price CSV (`Date`, `Close` in dollars, as `BTC-USD.csv`): with a period, round
    /// payments on a priced day are round dollar amounts.
    pub prices: Option<PathBuf>,
}

/// A simulated world's calendar period, unix seconds `[start, end)`. Its blocks are spread
/// over the whole period: one every 10 minutes as on mainnet when the size fills them (at
/// least 4 transactions per block on average), wider apart for a smaller world, closer for
/// one whose blocks would overflow. Transactions per block follow a daily rhythm (busiest
/// in the afternoon UTC, quietest at night), a weekly one (weekends 25 % quieter) and growth
/// over the period (the last month about 1.5 times the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub start: u32,
    pub end: u32,
}

impl Period {
    /// The block count, each block's time and each block's transactions besides its
    /// coinbase, for a world of `txs` transactions (genesis included) whose blocks hold at
    /// most `cap` transactions. Times strictly increase inside `[start, end)`.
    fn schedule(self, txs: u64, cap: u32, rng: &mut Rng) -> Vec<(u32, u32)> {
        let secs = u64::from(self.end.saturating_sub(self.start)).max(1);
        let budget = txs.saturating_sub(1);
        let boot = u64::from(BOOTSTRAP_BLOCKS);
        let by_time = (secs / 600).max(boot + 1);
        let by_size = boot + budget.saturating_sub(boot) / 4;
        let half = u64::from(cap.max(2) / 2);
        let mut blocks = by_time.min(by_size).max(boot + 1);
        // Blocks never fuller than half the cap on average.
        let fill = |b: u64| budget.saturating_sub(b);
        while fill(blocks) > (blocks - boot) * half {
            blocks += 1;
        }
        let spacing = (secs / blocks).max(1);
        let times: Vec<u32> = (0..blocks)
            .map(|i| {
                let jitter = rng.range(0, (spacing / 2).max(1) - 1);
                n32(u64::from(self.start) + i * spacing + jitter)
            })
            .collect();
        // Weights of the blocks after the bootstrap: day, week, growth.
        let weight = |i: u64, t: u32| -> f64 {
            let hour = f64::from(t % 86_400) / 3600.0;
            let day = 1.0 + 0.5 * ((hour - 9.0) * std::f64::consts::PI / 12.0).sin();
            let weekday = (u64::from(t) / 86_400 + 4) % 7; // 0 = Sunday (1970-01-01 was a Thursday)
            let week = if weekday == 0 || weekday == 6 {
                0.75
            } else {
                1.0
            };
            let growth = 0.8 + 0.4 * (i as f64 / blocks as f64);
            day * week * growth
        };
        let w: Vec<f64> = (boot..blocks).map(|i| weight(i, times[ix(i)])).collect();
        let total_w: f64 = w.iter().sum();
        let to_fill = fill(blocks) as f64;
        let mut out = Vec::with_capacity(ix(blocks));
        let (mut cum, mut given, mut carry) = (0.0f64, 0u64, 0u64);
        for (i, &t) in times.iter().enumerate() {
            let n = if n64(i) < boot {
                0
            } else {
                cum += w[i - ix(boot)];
                let want = (to_fill * cum / total_w).round() as u64;
                let n = want.saturating_sub(given) + carry;
                let n_cap = n.min(u64::from(cap.saturating_sub(1)));
                carry = n - n_cap;
                given += n - carry;
                n_cap
            };
            out.push((t, n32(n)));
        }
        out
    }
}

/// What a simulation produced.
#[derive(Debug, Serialize)]
pub struct SimSummary {
    pub seed: u64,
    pub preset: Preset,
    pub out: PathBuf,
    pub generated: Generated,
    pub blk_files: usize,
    pub tip_hash: String,
    pub elapsed_secs: f64,
    pub tx_per_sec: f64,
    pub peak_rss_bytes: Option<u64>,
    pub max_live_coins: usize,
    /// The calendar period (`--start`/`--end`/`--days`, unix seconds), if any.
    pub period: Option<Period>,
    /// Days of the period the price file prices (0 without prices or without a period:
    /// round payments are then round in BTC, and no dollar amount is priced).
    pub priced_days: u64,
}

/// Blocks of coinbases only at the start, so the first coins mature before trade begins.
pub const BOOTSTRAP_BLOCKS: u32 = 101;
/// 2026-01-01T00:00:00Z.
const START_TIME: u32 = 1_767_225_600;

fn truth_table(dir: &Path, name: &str, fields: Vec<Field>) -> Result<TableWriter, StoreError> {
    TableWriter::create(&dir.join(format!("{name}.parquet")), fields)
}

fn f(name: &str, t: DataType) -> Field {
    Field::new(name, t, false)
}

/// Runs a simulation.
///
/// # Errors
/// I/O or Parquet errors writing the output.
pub fn simulate(
    opts: &SimOptions,
    progress: &indicatif::ProgressBar,
) -> Result<SimSummary, StoreError> {
    let started = Instant::now();
    // The inputs first: a bad price file must not cost the world already in --out.
    let prices = match &opts.prices {
        Some(path) => Some(
            crate::report::fmt::Prices::load(path, "usd").map_err(|e| StoreError::Input {
                path: path.clone(),
                what: format!(
                    "{e}; expected a CSV with Date (YYYY-MM-DD) and Close (USD per BTC) columns, as Yahoo Finance exports"
                ),
            })?,
        ),
        None => None,
    };
    let blocks_dir = opts.out.join("blocks");
    let truth_dir = opts.out.join("truth");
    for d in [&blocks_dir, &truth_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|source| StoreError::Io {
                path: d.clone(),
                source,
            })?;
        }
    }
    let mut key = [0u8; 8];
    Rng::new(opts.seed, 3).fill(&mut key);
    let mut blk = BlkWriter::create(&blocks_dir, key, MAX_BLOCKFILE_SIZE)?;
    let utf8 = || DataType::Utf8;
    let truth = Truth {
        addresses: truth_table(
            &truth_dir,
            "addresses",
            vec![
                Field::new("address", utf8(), true),
                f("entity", utf8()),
                f("category", utf8()),
                f("role", utf8()),
                f("script_type", utf8()),
                f("wallet_type", utf8()),
                f("is_change", DataType::Boolean),
                f("first_seen_height", DataType::UInt32),
            ],
        )?,
        transactions: truth_table(
            &truth_dir,
            "transactions",
            vec![
                f("txid", utf8()),
                f("height", DataType::UInt32),
                f("kind", utf8()),
                f("entity", utf8()),
            ],
        )?,
        flows: truth_table(
            &truth_dir,
            "flows",
            vec![
                f("flagged_entity", utf8()),
                f("txid", utf8()),
                f("vout", DataType::UInt32),
                f("height", DataType::UInt32),
                f("to_entity", utf8()),
                f("to_category", utf8()),
                f("amount", DataType::UInt64),
                f("path", utf8()),
            ],
        )?,
    };
    let params = opts.preset.params(opts.txs);
    let mut world = World::new(opts.seed, params.clone(), truth);
    world.timeline = opts.period.map(|p| (p.start, p.end));
    let mut priced_days = 0u64;
    if let Some(p) = prices {
        if let Some(period) = opts.period {
            let (a, b) = (
                i64::from(period.start) / 86_400,
                (i64::from(period.end) - 1) / 86_400,
            );
            priced_days = n64(p.by_day.range(a..=b).count());
        }
        world.prices = p;
    }
    let mut time_rng = Rng::new(opts.seed, 4);
    // With a period: the blocks' times and sizes, planned ahead.
    let plan = opts
        .period
        .map(|p| p.schedule(opts.txs, params.txs_per_block, &mut time_rng));

    let genesis = bitcoin::constants::genesis_block(Network::Regtest.to_bitcoin());
    blk.write_block(&serialize(&genesis))?;
    let mut prev = genesis.block_hash();
    let mut time = START_TIME;
    let mut total: u64 = 1; // the genesis coinbase
    let mut max_live = 0usize;
    progress.set_length(opts.txs);
    let mut height = 0u32;
    loop {
        let planned = match &plan {
            Some(p) => match p.get(ix(height)) {
                Some(&x) => Some(x),
                None => break,
            },
            None if total >= opts.txs => break,
            None => None,
        };
        height += 1;
        if let Some((t, _)) = planned {
            world.now = t;
        }
        world.begin_block(height);
        let room = opts.txs.saturating_sub(total + 1); // the coinbase takes one
        let n = match planned {
            Some((_, n)) => n32(u64::from(n).min(room)),
            None if height <= BOOTSTRAP_BLOCKS => 0,
            None => n32(u64::from(params.txs_per_block - 1).min(room)),
        };
        world.fill_block(n)?;
        time = match planned {
            Some((t, _)) => t,
            None => time + n32(time_rng.range(300, 900)),
        };
        let block = world.seal_block(prev, time)?;
        total += n64(block.txdata.len());
        prev = block.block_hash();
        blk.write_block(&serialize(&block))?;
        max_live = max_live.max(world.live_coins());
        progress.set_position(total.min(opts.txs));
    }
    let files = blk.finish()?;
    let generated = world.generated;
    let names = world.names.clone();
    // Each flagged entity's income and outflows per month, as stats flows defines them.
    // With prices, also in US cents (each output at its block's day's close) and the
    // outputs on days without a price; without, the table is as before.
    let priced = opts.prices.is_some();
    let mut fields = vec![
        f("flagged_entity", utf8()),
        f("month", utf8()),
        f("income", DataType::UInt64),
        f("outflows", DataType::UInt64),
    ];
    if priced {
        for name in [
            "income_usd_cents",
            "outflows_usd_cents",
            "income_unpriced",
            "outflows_unpriced",
        ] {
            fields.push(f(name, DataType::UInt64));
        }
    }
    let mut monthly = truth_table(&truth_dir, "monthly", fields)?;
    for ((e, month), m) in &world.monthly {
        let c = monthly.cols();
        s(&mut c[0], names[ix(*e)].0.clone());
        s(&mut c[1], month.clone());
        u64c(&mut c[2], m.income);
        u64c(&mut c[3], m.outflows);
        if priced {
            let cents = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
            u64c(&mut c[4], cents(m.income_cents));
            u64c(&mut c[5], cents(m.outflows_cents));
            u64c(&mut c[6], m.income_unpriced);
            u64c(&mut c[7], m.outflows_unpriced);
        }
        monthly.row_done()?;
    }
    monthly.finish()?;
    let (vendor, ransomware) = (world.vendor, world.ransomware);
    let truth = world.into_truth();
    truth.addresses.finish()?;
    truth.transactions.finish()?;
    truth.flows.finish()?;
    let mut entities = truth_table(
        &truth_dir,
        "entities",
        vec![
            f("entity", utf8()),
            f("category", utf8()),
            f("flagged", DataType::Boolean),
        ],
    )?;
    let mut flagged = truth_table(
        &truth_dir,
        "flagged",
        vec![f("entity", utf8()), f("category", utf8())],
    )?;
    for (i, (name, cat)) in names.iter().enumerate() {
        let is_flagged = n32(i) == vendor || n32(i) == ransomware;
        let c = entities.cols();
        s(&mut c[0], name.clone());
        s(&mut c[1], cat.as_str());
        boolc(&mut c[2], is_flagged);
        entities.row_done()?;
        if is_flagged {
            let c = flagged.cols();
            s(&mut c[0], name.clone());
            s(&mut c[1], cat.as_str());
            flagged.row_done()?;
        }
    }
    entities.finish()?;
    flagged.finish()?;
    let elapsed = started.elapsed().as_secs_f64();
    let summary = SimSummary {
        seed: opts.seed,
        preset: opts.preset,
        out: opts.out.clone(),
        generated: Generated {
            blocks: generated.blocks + 1,
            transactions: generated.transactions + 1,
            ..generated
        },
        blk_files: files.len(),
        tip_hash: prev.to_string(),
        elapsed_secs: elapsed,
        tx_per_sec: total as f64 / elapsed.max(1e-9),
        peak_rss_bytes: crate::ingest::bitcoin::peak_rss_bytes(),
        period: opts.period,
        priced_days,
        max_live_coins: max_live,
    };
    progress.finish_and_clear();
    Ok(summary)
}
