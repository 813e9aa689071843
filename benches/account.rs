//! The account-model trace engine on a synthetic ledger: `cargo bench --bench account`.
//!
//! `CHAINTRACE_BENCH_TRANSFERS` transfers (default 10,000,000) among
//! `CHAINTRACE_BENCH_ACCOUNTS` accounts (default 1,000,000), values up to 100 ETH in wei,
//! one in five paying a fee; each account sends to a few favourite counterparties so that
//! taint spreads as it does through exchanges and services. The seeds are 100 accounts.
//! Prints, per policy: seconds, transfers/s, edges, accounts still holding taint and peak
//! memory growth (the ledger itself is counted before). Each run includes its pass for the
//! opening balances; backward also the closing ones.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chaintrace::trace::account::{FEE, Ledger, Seeds, Transfer, run};
use chaintrace::trace::policy::Policy;
use chaintrace::trace::{Direction, Params};

mod common;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process so far, MiB (Linux `VmHWM`).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let _ = common::args();
    let n = env("CHAINTRACE_BENCH_TRANSFERS", 10_000_000);
    let k = env("CHAINTRACE_BENCH_ACCOUNTS", 1_000_000) as u32;
    let t = Instant::now();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut transfers = Vec::with_capacity(n as usize + n as usize / 5);
    for i in 0..n {
        let from = (rnd() % u64::from(k)) as u32;
        // Mostly one of four favourite counterparties, sometimes anyone.
        let to = if rnd() % 4 == 0 {
            (rnd() % u64::from(k)) as u32
        } else {
            ((u64::from(from) * 2_654_435_761 + rnd() % 4) % u64::from(k)) as u32
        };
        let value = u128::from(rnd() % 100_000) * 1_000_000_000_000_000;
        let block = (i / 200) as u32;
        if i % 5 == 0 {
            transfers.push(Transfer {
                block: u64::from(block),
                time: block * 12,
                tx: i as u32,
                from,
                to: FEE,
                value: 21_000 * 30_000_000_000,
                unresolved: false,
            });
        }
        transfers.push(Transfer {
            block: u64::from(block),
            time: block * 12,
            tx: i as u32,
            from,
            to,
            value,
            unresolved: false,
        });
    }
    let ledger = Ledger {
        accounts: (0..k).map(|a| format!("0x{a:040x}")).collect(),
        txids: (0..n).map(|i| format!("0x{i:064x}")).collect(),
        transfers,
    };
    let base = peak_mib();
    println!(
        "ledger: {} transfers, {k} accounts, built in {:.1} s, {base:.0} MiB",
        ledger.transfers.len(),
        t.elapsed().as_secs_f64()
    );
    let seeds = Seeds {
        accounts: (0..100).map(|i| i * (k / 100)).collect::<HashSet<u32>>(),
        txs: HashSet::new(),
    };
    let p = Params {
        direction: Direction::Forward,
        max_hops: 20,
        min_value: 0,
        from_height: 0,
        to_height: u64::MAX,
        stop_at: Vec::new(),
        through_coinjoins: false,
        before_labels: Default::default(),
    };
    println!(
        "{:<13} {:>8} {:>12} {:>10} {:>9} {:>10}",
        "policy", "seconds", "transfers/s", "edges", "holding", "peak MiB"
    );
    let runs = [Policy::Poison, Policy::Haircut, Policy::Fifo, Policy::Lifo]
        .map(|x| (x, Direction::Forward))
        .into_iter()
        .chain([
            (Policy::Haircut, Direction::Backward),
            (Policy::Fifo, Direction::Backward),
        ]);
    for (policy, direction) in runs {
        let t = Instant::now();
        let p = Params {
            direction,
            ..p.clone()
        };
        let r = run(&ledger, &seeds, &HashMap::new(), &p, policy);
        let s = t.elapsed().as_secs_f64();
        assert!(!policy.conserves() || r.totals.balanced());
        let name = match direction {
            Direction::Forward => policy.name().to_string(),
            Direction::Backward => format!("{} back", policy.name()),
        };
        println!(
            "{:<13} {s:>8.2} {:>12.0} {:>10} {:>9} {:>10.0}",
            name,
            ledger.transfers.len() as f64 / s,
            r.edges.len(),
            r.ends.len(),
            peak_mib()
        );
    }
}
