//! Trace benchmark: `cargo bench --bench trace [-- DATA TRUTH]`.
//!
//! Without arguments it simulates a world of `CHAINTRACE_BENCH_TXS` transactions (default
//! 1,000,000, default preset) and ingests it. It labels the exchanges from the ground truth,
//! seeds the illicit vendor's addresses and prints, per policy, the latency of loading the
//! memory-mapped index plus tracing forward with 1, 5 and 20 hops, and how the traced
//! exposure to each exchange compares with the simulator's true flows.

use std::collections::{BTreeMap, HashMap};
mod common;

use std::path::Path;
use std::time::Instant;

use arrow_array::cast::AsArray;
use chaintrace::index::Index;
use chaintrace::trace::policy::Policy;
use chaintrace::trace::{Direction, Label, Params, run};

fn read_truth(truth: &Path) -> (HashMap<String, (String, String)>, BTreeMap<String, u64>) {
    let owner = common::truth_owners(truth);
    let mut flows = BTreeMap::new();
    let f = std::fs::File::open(truth.join("flows.parquet")).expect("truth flows");
    for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let amount = b
            .column_by_name("amount")
            .unwrap()
            .as_primitive::<arrow_array::types::UInt64Type>()
            .clone();
        let (from, to, cat) = (s("flagged_entity"), s("to_entity"), s("to_category"));
        for i in 0..b.num_rows() {
            if from.value(i) == "vendor" && cat.value(i) == "exchange" {
                *flows.entry(to.value(i).to_string()).or_insert(0) += amount.value(i);
            }
        }
    }
    (owner, flows)
}

fn bench(data: &Path, truth: &Path) {
    let chain = data.join("regtest");
    Index::open_or_build(&chain).expect("the index builds");
    let (owner, true_flows) = read_truth(truth);
    let t0 = Instant::now();
    let (idx, _) = Index::open_or_build(&chain).expect("the index loads");
    let load = t0.elapsed().as_secs_f64();
    let mut labels = HashMap::new();
    let mut vendor = std::collections::HashSet::new();
    for a in idx.address_ids() {
        match owner.get(idx.address(a)) {
            Some((e, c)) if c == "exchange" => {
                labels.insert(
                    a.0,
                    Label {
                        entity: e.as_str().into(),
                        category: c.as_str().into(),
                    },
                );
            }
            Some((e, _)) if e == "vendor" => {
                vendor.insert(a);
            }
            _ => {}
        }
    }
    let seeds: Vec<chaintrace::types::OutIx> = (0..idx.meta.outputs)
        .map(chaintrace::types::OutIx)
        .filter(|&o| idx.out_address(o).is_some_and(|a| vendor.contains(&a)))
        .collect();
    println!(
        "\n== {}: {} txs; {} seed outputs of the vendor; index load {:.3} s",
        data.display(),
        idx.meta.txs,
        seeds.len(),
        load
    );
    println!(
        "{:<8} {:>5} {:>10} {:>10} {:>16} {:>16} {:>10}",
        "policy", "hops", "load+trace", "edges", "to exchanges", "true (direct)", "ratio"
    );
    let truth_total: u64 = true_flows.values().sum();
    for policy in Policy::ALL {
        for hops in [1u32, 5, 20] {
            let p = Params {
                direction: Direction::Forward,
                max_hops: hops,
                min_value: 0,
                from_height: 0,
                to_height: u64::MAX,
                stop_at: vec!["exchange".into()],
                through_coinjoins: false,
                before_labels: Default::default(),
            };
            let t = Instant::now();
            let r = run(&idx, &seeds, &labels, &p, policy);
            let secs = load + t.elapsed().as_secs_f64();
            assert!(
                !policy.conserves() || r.totals.balanced(),
                "{policy:?} does not balance"
            );
            let traced = r.exposure_category.get("exchange").copied().unwrap_or(0);
            println!(
                "{:<8} {:>5} {:>9.3}s {:>10} {:>16} {:>16} {:>10.3}",
                policy.name(),
                hops,
                secs,
                r.edges.len(),
                traced,
                truth_total,
                traced as f64 / truth_total.max(1) as f64
            );
            if hops == 20 {
                // Per exchange: how far each policy's attribution is from the true flows.
                let err: u128 = true_flows
                    .iter()
                    .map(|(e, &v)| {
                        r.exposure_entity
                            .get(e)
                            .copied()
                            .unwrap_or(0)
                            .abs_diff(u128::from(v))
                    })
                    .sum();
                println!(
                    "{:<8} {:>5} per-exchange L1 error {:.1}% of the true total",
                    "",
                    "",
                    100.0 * err as f64 / truth_total.max(1) as f64
                );
            }
        }
    }
}

fn main() {
    let args = common::args();
    if args.len() >= 2 {
        bench(Path::new(&args[0]), Path::new(&args[1]));
        return;
    }
    let (_world, data, truth) =
        common::ingested_world(common::world_size(), chaintrace::simulate::Preset::Default);
    bench(&data, &truth);
}
