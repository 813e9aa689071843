//! The account-model trace engine on a synthetic ledger: `cargo bench --bench account`.
//!
//! `CHAINTRACE_BENCH_TRANSFERS` transfers (default 10,000,000) among
//! `CHAINTRACE_BENCH_ACCOUNTS` accounts (default 1,000,000), values up to 100 ETH in wei,
//! one in five paying a fee; each account sends to a few favourite counterparties so that
//! taint spreads as it does through exchanges and services. The seeds are 100 accounts.
//! Prints, per policy: seconds, transfers/s, edges, accounts still holding taint and peak
//! memory growth (the ledger itself is counted before). Each run includes its pass for the
//! opening balances; backward also the closing ones.
//!
//! Then the real path: the first `CHAINTRACE_BENCH_PARQUET_TRANSFERS` transactions (default
//! 2,000,000) written as an Ethereum dataset (blocks and transactions Parquet parts of 1,000
//! blocks, a manifest), traced with `trace::Request::run` as `chaintrace trace --chain
//! ethereum` does: part by part, twice (balances, then the replay), from the same 100
//! seed accounts.

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
    parquet_path(&ledger, &seeds);
}

/// An array of `len` rows for `field`: from `given` when it names the column, else nulls
/// (nullable) or zeros / empty text.
fn column(
    field: &arrow_schema::Field,
    len: usize,
    given: &HashMap<&str, arrow_array::ArrayRef>,
) -> arrow_array::ArrayRef {
    use arrow_schema::DataType;
    use std::sync::Arc;
    if let Some(a) = given.get(field.name().as_str()) {
        return a.clone();
    }
    if field.is_nullable() {
        return arrow_array::new_null_array(field.data_type(), len);
    }
    match field.data_type() {
        DataType::UInt32 => Arc::new(arrow_array::UInt32Array::from(vec![0u32; len])),
        DataType::UInt64 => Arc::new(arrow_array::UInt64Array::from(vec![0u64; len])),
        DataType::Utf8 => Arc::new(arrow_array::StringArray::from(vec![""; len])),
        DataType::Boolean => Arc::new(arrow_array::BooleanArray::from(vec![false; len])),
        t => panic!("no default for {t}"),
    }
}

fn write_part(
    path: &std::path::Path,
    schema: arrow_schema::SchemaRef,
    len: usize,
    given: &HashMap<&str, arrow_array::ArrayRef>,
) -> chaintrace::store::manifest::PartFile {
    let cols = schema
        .fields()
        .iter()
        .map(|f| column(f, len, given))
        .collect();
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), cols).expect("batch");
    std::fs::create_dir_all(path.parent().expect("a table folder")).expect("mkdir");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        schema,
        None,
    )
    .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    chaintrace::store::manifest::PartFile {
        file: path.file_name().unwrap().to_string_lossy().to_string(),
        rows: len as u64,
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        sha256: chaintrace::store::sink::sha256_file(path).expect("hash"),
    }
}

/// The ledger's first transactions as an Ethereum dataset, traced through the library's
/// real path (Parquet parts read twice), haircut and FIFO forward.
fn parquet_path(ledger: &Ledger, seeds: &Seeds) {
    use chaintrace::tables::Table;
    use chaintrace::tables::eth_blocks::EthBlocks;
    use chaintrace::tables::eth_transactions::EthTransactions;
    use std::sync::Arc;
    let limit = env("CHAINTRACE_BENCH_PARQUET_TRANSFERS", 2_000_000) as usize;
    let t = Instant::now();
    let d = tempfile::tempdir().expect("tempdir");
    let chain = d.path().join("ethereum");
    // One row per transaction: its value transfer, with the fee before it when it pays one.
    struct Tx {
        block: u64,
        from: u32,
        to: u32,
        value: u128,
        fee: bool,
    }
    let mut txs: Vec<Tx> = Vec::new();
    let mut fee_next = false;
    for tr in &ledger.transfers {
        if tr.to == FEE {
            fee_next = true;
            continue;
        }
        txs.push(Tx {
            block: tr.block,
            from: tr.from,
            to: tr.to,
            value: tr.value,
            fee: std::mem::take(&mut fee_next),
        });
        if txs.len() == limit {
            break;
        }
    }
    let name = |a: u32| ledger.accounts[a as usize].as_str();
    let mut m = chaintrace::store::manifest::Manifest::new(
        "ethereum",
        "chain-31337",
        chaintrace::store::manifest::Source {
            kind: "rpc".into(),
            location: "bench".into(),
            chain_selection: Some("traces geth".into()),
        },
        1000,
    );
    let last_block = txs.last().map_or(0, |x| x.block);
    let mut start = 0usize;
    for first in (0..=last_block).step_by(1000) {
        let end_block = (first + 999).min(last_block);
        let stop = txs[start..]
            .iter()
            .position(|x| x.block > end_block)
            .map_or(txs.len(), |p| start + p);
        let part = &txs[start..stop];
        let file = chaintrace::store::sink::part_name(first, end_block);
        let blocks: Vec<u64> = (first..=end_block).collect();
        let bhash = |b: u64| format!("0x{b:064x}");
        let mut given: HashMap<&str, arrow_array::ArrayRef> = HashMap::new();
        given.insert(
            "number",
            Arc::new(arrow_array::UInt64Array::from(blocks.clone())),
        );
        given.insert(
            "hash",
            Arc::new(arrow_array::StringArray::from_iter_values(
                blocks.iter().map(|&b| bhash(b)),
            )),
        );
        given.insert(
            "timestamp",
            Arc::new(arrow_array::UInt64Array::from_iter_values(
                blocks.iter().map(|&b| 1_700_000_000 + 12 * b),
            )),
        );
        let mut files = std::collections::BTreeMap::new();
        files.insert(
            "blocks".to_string(),
            write_part(
                &chain.join("blocks").join(&file),
                EthBlocks::schema(),
                blocks.len(),
                &given,
            ),
        );
        let mut given: HashMap<&str, arrow_array::ArrayRef> = HashMap::new();
        let n = part.len();
        given.insert(
            "block_number",
            Arc::new(arrow_array::UInt64Array::from_iter_values(
                part.iter().map(|x| x.block),
            )),
        );
        given.insert(
            "tx_index",
            Arc::new(arrow_array::UInt32Array::from_iter_values(
                (0..n).map(|i| i as u32),
            )),
        );
        given.insert(
            "hash",
            Arc::new(arrow_array::StringArray::from_iter_values(
                (start..stop).map(|i| format!("0x{i:064x}")),
            )),
        );
        given.insert(
            "from",
            Arc::new(arrow_array::StringArray::from_iter_values(
                part.iter().map(|x| name(x.from)),
            )),
        );
        given.insert(
            "to",
            Arc::new(arrow_array::StringArray::from_iter_values(
                part.iter().map(|x| name(x.to)),
            )),
        );
        given.insert(
            "value",
            Arc::new(arrow_array::StringArray::from_iter_values(
                part.iter().map(|x| x.value.to_string()),
            )),
        );
        given.insert(
            "status",
            Arc::new(arrow_array::UInt32Array::from(vec![1u32; n])),
        );
        given.insert(
            "gas_used",
            Arc::new(arrow_array::UInt64Array::from_iter_values(
                part.iter().map(|x| if x.fee { 21_000 } else { 0 }),
            )),
        );
        given.insert(
            "effective_gas_price",
            Arc::new(arrow_array::StringArray::from(vec!["30000000000"; n])),
        );
        files.insert(
            "transactions".to_string(),
            write_part(
                &chain.join("transactions").join(&file),
                EthTransactions::schema(),
                n,
                &given,
            ),
        );
        m.parts.push(chaintrace::store::manifest::Part {
            from: first,
            to: end_block,
            first_hash: bhash(first),
            last_hash: bhash(end_block),
            files,
        });
        start = stop;
    }
    m.save(&chain).expect("manifest");
    println!(
        "parquet dataset: {} transactions in {} parts, written in {:.1} s",
        txs.len(),
        m.parts.len(),
        t.elapsed().as_secs_f64()
    );
    let mut seed_names: Vec<String> = seeds
        .accounts
        .iter()
        .map(|&a| name(a).to_string())
        .collect();
    seed_names.sort();
    let used: HashSet<&str> = txs
        .iter()
        .flat_map(|x| [name(x.from), name(x.to)])
        .collect();
    seed_names.retain(|s| used.contains(s.as_str()));
    for policy in [Policy::Haircut, Policy::Fifo] {
        let t = Instant::now();
        let req = chaintrace::trace::request::Request {
            chain: chaintrace::trace::request::Chain::Ethereum,
            seeds: seed_names.clone(),
            policies: vec![policy],
            stop_at: vec!["none".into()],
            ..chaintrace::trace::request::Request::bitcoin(d.path())
        };
        let case = req.run(&()).expect("the trace runs");
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:<13} {s:>8.2} {:>12.0} {:>10} {:>9} {:>10.0}   (Parquet path, {} seeds)",
            format!("{} parquet", policy.name()),
            txs.len() as f64 / s,
            case.results[0].edges.len(),
            case.results[0].ends.len(),
            peak_mib(),
            seed_names.len()
        );
    }
}
