//! `chaintrace cluster ...` and `chaintrace eval clusters`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::args::{
    ClusterBitcoinArgs, ClusterIndexArgs, DatasetArgs, EvalClustersArgs, ExplainArgs, ShowArgs,
};
use super::{Cli, CliError};
use crate::cluster::heuristics::Heuristic;
use crate::cluster::{self, eval};
use crate::index::{Index, Provenance};

/// The chain directory of the dataset: `--network`, or the only network present.
pub(crate) fn chain_dir(d: &DatasetArgs) -> Result<(PathBuf, String), CliError> {
    crate::trace::request::chain_dir(&d.data, d.network.as_deref()).map_err(CliError::user)
}

/// An index build's error: exit 130 when Ctrl-C stopped it, else an input error.
pub(crate) fn index_failed(e: crate::index::IndexError) -> CliError {
    match e {
        crate::index::IndexError::Interrupted { .. } => CliError {
            code: 130,
            error: e.into(),
        },
        e => CliError::user(e),
    }
}

pub(crate) fn open_index(chain: &Path) -> Result<Index, CliError> {
    if let Some(reason) = Index::needs_build(chain).map_err(CliError::user)? {
        if let Some(data) = chain.parent() {
            super::ingest::not_being_written(data)?;
        }
        if Index::being_built(chain) {
            eprintln!(
                "chaintrace: waiting for another chaintrace building the address index of {}...",
                chain.display()
            );
        } else {
            eprintln!(
                "chaintrace: building the address index of {} within {} ({reason})...",
                chain.display(),
                crate::memory::budget()
            );
        }
    }
    let (idx, prov) = Index::open_or_build(chain).map_err(index_failed)?;
    match prov {
        Provenance::Built {
            reason,
            extended_from: Some(kept),
            ..
        } => eprintln!(
            "chaintrace: {} ({reason}): {} transactions, {} addresses",
            extended_what(&chain.display().to_string(), idx.meta.txs, kept),
            idx.meta.txs,
            idx.meta.addresses
        ),
        Provenance::Built {
            reason,
            not_extended,
            ..
        } => eprintln!(
            "chaintrace: built the address index ({reason}{}): {} transactions, {} addresses",
            not_extended_note(not_extended.as_deref()),
            idx.meta.txs,
            idx.meta.addresses
        ),
        Provenance::Loaded => {}
    }
    Ok(idx)
}

/// What an extension of the index of `what` that kept `kept` of its `txs` transactions
/// did, in words.
fn extended_what(what: &str, txs: u64, kept: u64) -> String {
    if txs == kept {
        format!(
            "re-read the address index of {what}: the dataset was rewritten with the same blocks, the index is unchanged"
        )
    } else {
        format!(
            "extended the address index of {what} (blocks appended: {} transactions added to {kept})",
            txs - kept
        )
    }
}

/// "; not extended: WHY" for a build from genesis where an old index was there to extend.
fn not_extended_note(why: Option<&str>) -> String {
    why.map(|w| format!("; not extended: {w}"))
        .unwrap_or_default()
}

/// An error naming the files of the index in `dir` that differ from the sha256 recorded
/// when it was built (or cannot be read), with the rebuild that mends it.
fn damaged_index(dir: &std::path::Path) -> Result<(), CliError> {
    let damaged = Index::damaged_files(dir).map_err(CliError::user)?;
    if damaged.is_empty() {
        return Ok(());
    }
    Err(CliError::user(anyhow!(
        "the address index {} is damaged: {}; its answers cannot be trusted: {}",
        dir.display(),
        damaged.join(", "),
        super::rebuild_hint(dir)
    )))
}

/// `chaintrace cluster index`: builds the index (if stale, or with --rebuild) within the
/// memory budget and says what it built.
pub(crate) fn index(cli: &Cli, a: &ClusterIndexArgs) -> Result<(), CliError> {
    let (chain, network) = chain_dir(&a.dataset)?;
    // --verify checks the index there is: a damaged file (a changed, cut or missing one)
    // is named, not rebuilt over (a file of the wrong size made it look stale).
    if a.verify && !a.rebuild && chain.join("index/meta.json").is_file() {
        damaged_index(&chain.join("index"))?;
    }
    let stale = Index::needs_build(&chain).map_err(CliError::user)?;
    if (stale.is_some() || a.rebuild)
        && let Some(data) = chain.parent()
    {
        super::ingest::not_being_written(data)?;
    }
    // Ctrl-C stops the build between batches; its partial files go with it.
    crate::ingest::stop_on_ctrl_c()
        .map_err(|e| CliError::user(anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    let budget = crate::memory::budget();
    let started = std::time::Instant::now();
    let say = |why: &str| {
        eprintln!(
            "chaintrace: building the address index of {} within {budget} ({why})...",
            chain.display()
        );
    };
    // (passes, the transactions an extension kept, why it was not extended)
    let built = match (&stale, a.rebuild) {
        (None, false) => None,
        (_, true) => {
            say("--rebuild");
            let b = Index::build(&chain, budget).map_err(index_failed)?;
            Some((b.passes, b.extended_from, None))
        }
        // As any other stage: after waiting for another process building it, only if it
        // is still needed; a dataset that only grew has its index extended.
        (Some(why), false) => {
            say(why);
            match Index::open_or_build(&chain).map_err(index_failed)?.1 {
                Provenance::Built {
                    passes,
                    extended_from,
                    not_extended,
                    ..
                } => Some((passes, extended_from, not_extended)),
                Provenance::Loaded => None,
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let idx = Index::load(&chain.join("index")).map_err(CliError::user)?;
    if a.verify {
        damaged_index(&idx.dir)?;
        if idx.meta.files_sha256.is_empty() {
            eprintln!(
                "chaintrace: warning: the index {} records no file hashes (built by an older chaintrace): nothing to check; --rebuild records them",
                idx.dir.display()
            );
        } else {
            eprintln!(
                "chaintrace: every file of the index {} has the sha256 recorded when it was built",
                idx.dir.display()
            );
        }
    }
    if cli.json {
        super::print_json(&serde_json::json!({
            "network": network,
            "index": chain.join("index"),
            "built": built.is_some(),
            "passes": built.as_ref().map(|b| b.0),
            // The transactions of the old index an extension kept (blocks appended since
            // it was built); null for a build from genesis.
            "extended_from_transactions": built.as_ref().and_then(|b| b.1),
            // For a build from genesis: why the old index was not extended.
            "not_extended": built.as_ref().and_then(|b| b.2.clone()),
            "reason": if a.rebuild { Some("--rebuild") } else { stale.as_deref() },
            "memory_budget_bytes": budget.bytes(),
            "seconds": built.as_ref().map(|_| (seconds * 100.0).round() / 100.0),
            "transactions": idx.meta.txs,
            "outputs": idx.meta.outputs,
            "inputs": idx.meta.inputs,
            "addresses": idx.meta.addresses,
            // --verify: every file matched its recorded sha256 (a mismatch is an error).
            "verified": a.verify && !idx.meta.files_sha256.is_empty(),
        }));
    } else if let Some((_, Some(kept), _)) = built {
        println!(
            "{} in {seconds:.1} s; now {} transactions, {} outputs, {} inputs, {} addresses (--rebuild to build it from genesis)",
            extended_what(&network, idx.meta.txs, kept),
            idx.meta.txs,
            idx.meta.outputs,
            idx.meta.inputs,
            idx.meta.addresses
        );
    } else if let Some((passes, None, why)) = built {
        println!(
            "built the address index of {network} in {seconds:.1} s: {} transactions, {} outputs, {} inputs, {} addresses ({passes} pass(es) over the outputs within {budget}{})",
            idx.meta.txs,
            idx.meta.outputs,
            idx.meta.inputs,
            idx.meta.addresses,
            not_extended_note(why.as_deref())
        );
    } else {
        println!(
            "the address index of {network} is current: {} transactions, {} addresses (--rebuild to build it again)",
            idx.meta.txs, idx.meta.addresses
        );
    }
    Ok(())
}

/// The daily prices of `--prices` (USD per BTC), for the round-in-fiat rule.
fn load_prices(path: Option<&Path>) -> Result<Option<crate::report::fmt::Prices>, CliError> {
    path.map(|p| crate::report::fmt::Prices::load(p, "usd"))
        .transpose()
        .map_err(CliError::user)
}

pub(crate) fn parse_heuristics(list: &[String]) -> Result<Vec<Heuristic>, CliError> {
    let mut out = Vec::new();
    for name in list
        .iter()
        .flat_map(|s| s.split(['+', ',']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let h = Heuristic::from_name(name).ok_or_else(|| {
            let all: Vec<&str> = Heuristic::ALL.iter().map(|h| h.name()).collect();
            CliError::user(anyhow!(
                "unknown heuristic {name:?}; choose from {}",
                all.join(", ")
            ))
        })?;
        if !out.contains(&h) {
            out.push(h);
        }
    }
    if out.is_empty() {
        return Err(CliError::user(anyhow!(
            "no heuristic given; the default is multi-input,change-vote (see `chaintrace cluster bitcoin --help`)"
        )));
    }
    out.sort();
    Ok(out)
}

pub(crate) fn bitcoin(cli: &Cli, a: &ClusterBitcoinArgs) -> Result<(), CliError> {
    let heuristics = parse_heuristics(&a.heuristics)?;
    if !heuristics.contains(&Heuristic::MultiInput) {
        eprintln!(
            "chaintrace: warning: the heuristics leave out multi-input (addresses spent together), the basis of every clustering; add it unless you mean to measure change rules alone"
        );
    }
    if !(a.max_share > 0.0 && a.max_share <= 1.0) {
        return Err(CliError::user(anyhow!("--max-share must be in (0, 1]")));
    }
    let prices = load_prices(a.prices.as_deref())?;
    if heuristics.contains(&Heuristic::ChangeRoundFiat) && prices.is_none() {
        eprintln!(
            "chaintrace: warning: change-round-fiat needs --prices (a daily price CSV); without it the rule names no change"
        );
    }
    let (chain, network) = chain_dir(&a.dataset)?;
    // One clustering of a network at a time: two would write over each other's files.
    let _lock = super::ingest::lock_in(
        &a.dataset.data.join("clusters"),
        &format!(".{network}.lock"),
        "clustering the network's addresses in",
    )?;
    // Ctrl-C stops the clustering between transactions; its scratch files go with it.
    crate::ingest::stop_on_ctrl_c()
        .map_err(|e| CliError::user(anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    let idx = open_index(&chain)?;
    let t = std::time::Instant::now();
    let tags = crate::labels::tags_path(&a.dataset.data);
    let by_address = match &a.labels {
        Some(f) => {
            Some(eval::read_mapping(f, &["actor", "entity", "label"]).map_err(CliError::user)?)
        }
        // The dataset's own labels: the tag in use per address, as a trace would use it.
        None if tags.is_file() => Some(
            crate::labels::load(
                &a.dataset.data,
                Some("bitcoin"),
                Some(&network),
                &crate::labels::Selection {
                    include_private: true,
                    prefer: Vec::new(),
                },
            )
            .map_err(CliError::user)?
            .chosen
            .into_iter()
            .map(|t| (t.address, t.entity.to_string()))
            .collect::<std::collections::HashMap<_, _>>(),
        ),
        None => None,
    };
    let built = cluster::build(
        &idx,
        &a.dataset.data,
        &network,
        &cluster::BuildOptions {
            heuristics: &heuristics,
            max_share: a.max_share,
            labels: by_address.as_ref(),
            hold_size: (a.hold_size > 0).then_some(a.hold_size),
            prices: prices.as_ref(),
        },
    )
    .map_err(|e| {
        if crate::ingest::interrupted() {
            CliError {
                code: 130,
                error: anyhow!(
                    "interrupted: no clustering was written (the previous one's _meta.json was already removed, so none loads); run the same command again"
                ),
            }
        } else {
            CliError::user(e)
        }
    })?;
    print_built(cli, &built, t.elapsed().as_secs_f64());
    Ok(())
}

/// Prints what `cluster bitcoin` made (`--json`: one document).
pub(crate) fn print_built(cli: &Cli, built: &cluster::Built, secs: f64) {
    let (meta, out, warnings, largest) = (&built.meta, &built.dir, &built.warnings, built.largest);
    for w in warnings {
        eprintln!("chaintrace: warning: {}", w.message);
    }
    for h in meta.held.iter().take(10) {
        eprintln!(
            "chaintrace: held back a {} merge of {} and {} (tx {}): {}",
            h.heuristic,
            h.address_a,
            h.address_b,
            h.txid,
            if h.reason == "labels" {
                "it would join addresses labelled with different actors".to_string()
            } else {
                format!(
                    "it would join clusters of {} and {} addresses (--hold-size)",
                    h.sizes.0, h.sizes.1
                )
            }
        );
    }
    if meta.held.len() > 10 {
        eprintln!(
            "chaintrace: ... and {} more held merges, all listed in {} (held)",
            meta.held.len() - 10,
            out.join("_meta.json").display()
        );
    }
    if cli.json {
        let v = serde_json::json!({"meta": meta, "warnings": warnings, "dir": out, "seconds": secs, "largest": largest});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
    } else {
        println!(
            "{}: {} addresses in {} clusters (largest {}), {} merges under {}; {} CoinJoin(s) excluded{}; {} merge(s) held back{}",
            out.display(),
            meta.addresses,
            meta.clusters,
            largest,
            meta.merges,
            meta.heuristics.join(","),
            meta.coinjoins.values().sum::<u64>(),
            if meta.coinjoins.is_empty() {
                String::new()
            } else {
                let kinds: Vec<String> = meta
                    .coinjoins
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                format!(" ({})", kinds.join(", "))
            },
            meta.held.len(),
            if meta.held.is_empty() {
                String::new()
            } else {
                " (listed in _meta.json: held)".to_string()
            }
        );
    }
}

/// The stored clustering of the dataset, after checking `addresses` the way a trace checks
/// its seeds (another network's address, a checksum typo and an address the dataset never
/// saw each get their own message).
fn stored(d: &DatasetArgs, addresses: &[&str]) -> Result<(Index, cluster::Stored), CliError> {
    let (chain, network) = chain_dir(d)?;
    let idx = open_index(&chain)?;
    for a in addresses {
        crate::trace::seeds::check_address(&idx, a, &network, "address").map_err(CliError::user)?;
    }
    let s =
        cluster::load(&idx, &cluster::clusters_dir(&d.data, &network)).map_err(CliError::user)?;
    Ok((idx, s))
}

pub(crate) fn explain(cli: &Cli, a: &ExplainArgs) -> Result<(), CliError> {
    let (idx, s) = stored(&a.dataset, &[&a.address_a, &a.address_b])?;
    let steps = cluster::explain(&idx, &s, &a.address_a, &a.address_b).map_err(CliError::user)?;
    // A chain of merges is right only if every step is: the product of the rules' rates,
    // as if independent (a rough figure, not an interval).
    // `None` when a step's rule was never measured: then there is no figure.
    let all_steps: Option<f64> = steps
        .iter()
        .map(|s| s.precision_ppm.map(|p| f64::from(p) / 1e6))
        .product();
    if cli.json {
        let weakest = steps.iter().min_by_key(|s| s.precision_ppm);
        let v = serde_json::json!({
            "steps": steps,
            "weakest_step": weakest,
            "all_steps_right": all_steps,
            "rates_measured_on": cluster::calibration::MEASURED_ON,
            "rates_are": "each rule's merge precision, the lowest of three worlds with a known truth (docs/CLUSTERING.md); a rate over many merges, not a probability for one",
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("steps serialise")
        );
        return Ok(());
    }
    println!(
        "{} and {} are one entity in {} step(s):",
        a.address_a,
        a.address_b,
        steps.len()
    );
    for (i, st) in steps.iter().enumerate() {
        println!(
            "  {}. {} -- {}{} ({}) --> {}  (tx {})",
            i + 1,
            st.from,
            st.heuristic,
            if st.because == st.heuristic {
                String::new()
            } else {
                format!(" [{}]", st.because)
            },
            precision_text(st.precision_ppm, &st.rate),
            st.to,
            st.txid
        );
    }
    if let Some(w) = steps.iter().min_by_key(|s| s.precision_ppm) {
        let all = all_steps.map_or_else(
            || "unknown: a step's rule was never measured".to_string(),
            |p| format!("about {p:.4} (the product of the rules' precisions, as if independent)"),
        );
        println!(
            "weakest step: {} ({}); all {} steps right: {all} (docs/CLUSTERING.md)",
            w.heuristic,
            precision_text(w.precision_ppm, &w.rate),
            steps.len()
        );
    }
    Ok(())
}

pub(crate) fn show(cli: &Cli, a: &ShowArgs) -> Result<(), CliError> {
    let (idx, s) = stored(&a.dataset, &[&a.address])?;
    let shown = cluster::show(&idx, &s, &a.address, a.top).map_err(CliError::user)?;
    // Labels of the cluster's addresses, from DATA/labels/tags.parquet.
    let tags = crate::labels::read_tags(&crate::labels::tags_path(&a.dataset.data))
        .map_err(CliError::user)?;
    let labels: Vec<serde_json::Value> = tags
        .iter()
        .filter(|(t, _)| &*t.chain == "bitcoin")
        .filter(|(t, _)| idx.address_id(&t.address).is_some_and(|id| s.cluster_of[id.ix()] == shown.stats.cluster_id))
        .map(|(t, _)| {
            serde_json::json!({"address": t.address, "label": t.label, "entity": t.entity, "category": t.category,
                "is_public": t.is_public, "source": t.source})
        })
        .collect();
    let held_here: Vec<&cluster::HeldMerge> = s
        .meta
        .held
        .iter()
        .filter(|h| {
            [&h.address_a, &h.address_b].iter().any(|x| {
                idx.address_id(x)
                    .is_some_and(|id| s.cluster_of[id.ix()] == shown.stats.cluster_id)
            })
        })
        .collect();
    if cli.json {
        let mut v = serde_json::to_value(&shown).expect("values serialise");
        v["labels"] = serde_json::Value::Array(labels);
        v["held"] = serde_json::to_value(&held_here).expect("values serialise");
        v["rates_measured_on"] = cluster::calibration::MEASURED_ON.into();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return Ok(());
    }
    let st = &shown.stats;
    println!("address        {}", shown.address);
    println!(
        "cluster        {} ({})",
        st.cluster_id, shown.representative
    );
    println!("heuristics     {}", s.meta.heuristics.join(","));
    println!("addresses      {}", st.size);
    println!("received       {} sat", st.total_received);
    println!("balance        {} sat", st.balance);
    if labels.is_empty() {
        println!("labels         none (import some with `chaintrace labels import`)");
    }
    // One line per tag (entity, label, category), with how many of the cluster's
    // addresses carry it: an exchange's cluster may hold thousands of tagged addresses
    // (--json lists every one).
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for l in &labels {
        let head = format!(
            "{} {} [{}]{}",
            l["entity"].as_str().unwrap_or(""),
            l["label"]
                .as_str()
                .map(|x| format!("({x})"))
                .unwrap_or_default(),
            l["category"].as_str().unwrap_or(""),
            if l["is_public"] == false {
                " (private)"
            } else {
                ""
            }
        );
        let address = l["address"].as_str().unwrap_or("");
        match groups.iter_mut().find(|g| g.0 == head) {
            Some(g) => g.1.push(address),
            None => groups.push((head, vec![address])),
        }
    }
    for (head, addresses) in &groups {
        let on = match addresses.as_slice() {
            [one] => format!("on {one}"),
            [a, b] => format!("on 2 addresses: {a}, {b}"),
            [a, b, ..] => format!(
                "on {} addresses, e.g. {a}, {b} (--json lists them all)",
                addresses.len()
            ),
            [] => String::new(),
        };
        println!("label          {head} {on}");
    }
    println!(
        "first/last     height {} / {}",
        st.first_height, st.last_height
    );
    println!(
        "members        {}{}",
        shown.sample_addresses.join(" "),
        if st.size > 10 { " ..." } else { "" }
    );
    println!("top counterparties, CoinJoins left out (sat sent to / received from):");
    for c in &shown.top_counterparties {
        println!(
            "  {:>10} {:<64} {:>16} {:>16}",
            c.cluster_id, c.representative, c.sent_to_it, c.received_from_it
        );
    }
    let by_rule: Vec<String> = shown
        .merges_by_rule
        .iter()
        .map(|(h, n)| format!("{h} {n}"))
        .collect();
    if !by_rule.is_empty() {
        println!("merges         {}", by_rule.join(", "));
    }
    if let Some(w) = &shown.weakest_link {
        println!(
            "weakest link   {} [{}] ({}): {} + {} in tx {}",
            w.heuristic,
            w.because,
            precision_text(w.precision_ppm, &w.rate),
            w.from,
            w.to,
            w.txid
        );
    }
    let here = held_here;
    if !here.is_empty() {
        println!(
            "held back      {} merge(s) would have joined this cluster to another (listed in _meta.json: held)",
            here.len()
        );
    }
    // Labels imported after `cluster bitcoin` ran were not checked by its guard: check
    // them now.
    let actors: std::collections::BTreeSet<&str> = labels
        .iter()
        .filter_map(|l| l["entity"].as_str())
        .filter(|e| !e.is_empty())
        .collect();
    if actors.len() > 1 {
        println!(
            "warning        this cluster holds addresses labelled with {} different actors ({}): a merge may be wrong; `chaintrace cluster explain` two of them to see which, or run `chaintrace cluster bitcoin` again so that its guard holds back change merges joining labelled actors",
            actors.len(),
            actors
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for w in &shown.warnings {
        println!("warning        {}", w.message);
    }
    Ok(())
}

/// `precision 0.9866 measured` from parts per million, or `precision not measured`.
/// A merge's measured precision and where it comes from, for the text output: "merge
/// precision 0.9400 (change-vote/votes, the lowest of three worlds measured DATE)".
fn precision_text(ppm: Option<u32>, rate: &str) -> String {
    let Some(ppm) = ppm else {
        return "precision not measured: a rule behind it never fired on the calibration worlds"
            .into();
    };
    format!(
        "merge precision {}.{:04} ({rate}, the lowest of three worlds measured {})",
        ppm / 1_000_000,
        (ppm % 1_000_000) / 100,
        cluster::calibration::MEASURED_ON
    )
}

pub(crate) fn eval_clusters(cli: &Cli, a: &EvalClustersArgs) -> Result<(), CliError> {
    let prices = load_prices(a.prices.as_deref())?;
    let (chain, network) = chain_dir(&a.dataset)?;
    let (truth, left_out) = eval::read_truth_counted(&a.truth).map_err(CliError::user)?;
    if truth.is_empty() {
        return Err(CliError::user(anyhow!(
            "{} names no owner for any address: {left_out} row(s), each without an address or an entity; ground truth needs address and entity filled in",
            a.truth.display()
        )));
    }
    let idx = open_index(&chain)?;
    let sets: Vec<Vec<Heuristic>> = if a.sets.is_empty() {
        let mut v = vec![vec![Heuristic::MultiInput]];
        for h in Heuristic::ALL.iter().filter(|h| h.is_change()) {
            v.push(vec![Heuristic::MultiInput, *h]);
        }
        if !v.iter().any(|s| s.as_slice() == Heuristic::DEFAULT) {
            v.push(Heuristic::DEFAULT.to_vec());
        }
        v.push(Heuristic::ALL.to_vec());
        v
    } else {
        a.sets
            .iter()
            .map(|s| parse_heuristics(std::slice::from_ref(s)))
            .collect::<Result<_, _>>()?
    };
    let dir = cluster::clusters_dir(&a.dataset.data, &network);
    let name = a.truth.file_name().map(|f| f.to_string_lossy().to_string());
    // What perfect change detection would reach, when the truth marks change.
    let oracle = eval::read_change_flags(&a.truth)
        .map_err(CliError::user)?
        .map(|flags| eval::oracle(&idx, &truth, &flags));
    let fps = cluster::fingerprint::read(&idx, &chain).map_err(CliError::user)?;
    let opts = cluster::ClusterOptions {
        max_change_join: (a.hold_size > 0).then_some(a.hold_size),
        labels: None,
        fingerprints: Some(&fps),
        prices: prices.as_ref(),
    };
    let Some(mut rows) = eval::evaluate_sets(&idx, &truth, name, &sets, oracle, &opts, &dir)
        .map_err(CliError::user)?
    else {
        return Err(CliError::user(anyhow!(
            "no address of {} appears in the dataset; is it the truth of this chain?",
            a.truth.display()
        )));
    };
    // The clustering on disk, as `cluster bitcoin` made it (its guard and labels
    // included): what a trace at cluster level uses.
    if let Ok(st) = cluster::load(&idx, &dir) {
        let mut row = eval::score(
            &idx,
            &st.cluster_of,
            &truth,
            &format!(
                "stored: {} (hold-size {}{})",
                st.meta.heuristics.join("+"),
                st.meta
                    .hold_size
                    .map_or_else(|| "off".to_string(), |n| n.to_string()),
                st.meta
                    .prices
                    .as_ref()
                    .map_or_else(String::new, |p| format!(", prices {p}"))
            ),
        );
        eval::score_merges(
            &mut row,
            &idx,
            st.merges
                .iter()
                .map(|m| (m.0, m.1, m.3.as_str(), cluster::vote_kind_named(&m.3, &m.4))),
            &truth,
        );
        rows.push(row);
    }
    let coverage = eval::TruthCoverage {
        listed: truth.len() as u64,
        rows_left_out: left_out,
    };
    for r in &mut rows {
        r.truth = Some(coverage.clone());
    }
    print_scores(cli, &rows);
    Ok(())
}

/// Prints `eval clusters`' scores (`--json`: one document).
pub(crate) fn print_scores(cli: &Cli, rows: &[eval::Scores]) {
    if cli.json {
        // A ratio of 0/0 is null, as the text shows "-" (not a perfect 1.0).
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("scores serialise");
                let (p_ok, r_ok) = (r.predicted_pairs > 0, r.true_pairs > 0);
                for (key, defined) in [("precision", p_ok), ("recall", r_ok), ("f1", p_ok && r_ok)]
                {
                    if !defined {
                        v[key] = serde_json::Value::Null;
                    }
                }
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("scores serialise")
        );
        return;
    }
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>9} {:>11} {:>15}",
        "heuristics",
        "addresses",
        "clusters",
        "precision",
        "recall",
        "F1",
        "homogeneity",
        "completeness",
        "merges",
        "false/1000",
        "rule precision"
    );
    let default = cluster::set_name(&Heuristic::DEFAULT);
    for r in rows {
        // The last rule ("stored: …" rows end with the guard: " (hold-size N)").
        let rule = r
            .heuristics
            .rsplit('+')
            .next()
            .and_then(|x| x.split(' ').next())
            .unwrap_or("");
        let name = if r.heuristics.len() > 46 && !r.heuristics.starts_with("stored:") {
            format!("all {} rules", r.heuristics.split('+').count())
        } else if r.heuristics == default {
            format!("{} (default)", r.heuristics)
        } else {
            r.heuristics.clone()
        };
        // No pair predicted: a precision of 0/0, shown as "-" (JSON keeps 1.0 with
        // predicted_pairs 0).
        let shown = |x: f64, defined: bool| {
            if defined {
                format!("{x:.4}")
            } else {
                "-".to_string()
            }
        };
        let (p_ok, r_ok) = (r.predicted_pairs > 0, r.true_pairs > 0);
        let (precision, recall, f1) = (
            shown(r.precision, p_ok),
            shown(r.recall, r_ok),
            shown(r.f1, p_ok && r_ok),
        );
        println!(
            "{:<46} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12.4} {:>12.4} {:>9} {:>11} {:>15}",
            name,
            r.addresses,
            r.clusters,
            precision,
            recall,
            f1,
            r.homogeneity,
            r.completeness,
            r.merges.map_or_else(|| "-".to_string(), |m| m.to_string()),
            r.false_merges_per_1000
                .map_or_else(|| "-".to_string(), |f| format!("{f:.2}")),
            r.by_rule
                .get(rule)
                .map_or_else(|| "-".to_string(), |x| format!("{:.4}", x.precision))
        );
    }
    // The consensus's merges by what decided them: the confidence each merge records.
    for r in rows {
        let kinds: Vec<String> = [
            (cluster::VOTE_PRECISE, "precise rules"),
            (cluster::VOTE_VOTES, "votes"),
        ]
        .iter()
        .filter_map(|(k, what)| {
            r.by_rule.get(*k).map(|x| {
                format!(
                    "decided by {what} {} merges, precision {:.4}",
                    x.merges, x.precision
                )
            })
        })
        .collect();
        if !kinds.is_empty() {
            println!("{}: change-vote {}", r.heuristics, kinds.join("; "));
        }
    }
    if let Some(t) = rows.first().and_then(|r| r.truth.as_ref()) {
        println!(
            "truth: {} {} listed, {} of them in the dataset (scored){}",
            t.listed,
            if t.listed == 1 {
                "address"
            } else {
                "addresses"
            },
            rows[0].addresses,
            if t.rows_left_out > 0 {
                format!(
                    "; {} row(s) left out for lacking an address or an entity",
                    t.rows_left_out
                )
            } else {
                String::new()
            }
        );
    }
    if rows.iter().any(|r| r.predicted_pairs == 0) {
        println!(
            "precision \"-\": the clustering puts no two addresses of the truth in one cluster (no pair predicted), so it has no precision to measure"
        );
    }
    if rows.iter().any(|r| r.true_pairs == 0) {
        println!(
            "recall \"-\": the truth gives no two of its addresses in the dataset one owner (no true pair), so there is no recall to measure"
        );
    }
    println!(
        "precision, recall, F1: over pairs of addresses of the truth (a pair predicted when in one cluster, true when of one owner); addresses: those of the truth in the dataset; merges: recorded merges; false/1000: merges joining two owners per 1,000 merges between addresses of the truth; rule precision: the share of the last rule's own merges joining one owner. The oracle links every true change output (perfect change detection); 'stored' is the clustering `cluster bitcoin` wrote, as traces use it: it can differ from the same set's row by the merges its guard held back with the labels it had, and by the price file it read (named in the row) when this run reads another or none. The last rule's precision of a set with several rules is its own merges' only."
    );
}

/// `chaintrace cluster ethereum`.
pub(crate) fn ethereum(cli: &Cli, a: &super::args::ClusterEthereumArgs) -> Result<(), CliError> {
    use crate::cluster::ethereum as eth;
    let chain = crate::ingest::ethereum::ingest::chain_dir(&a.data);
    let bounds = eth::Bounds {
        min_deposits: a.min_deposits.max(1),
        max_delay_blocks: a.max_delay_blocks,
        max_amount_diff: a.max_amount_diff,
    };
    let c = eth::cluster(&chain, &bounds).map_err(CliError::user)?;
    let out = cluster::clusters_dir(&a.data, "ethereum");
    let files = eth::write(&c, &bounds, &out).map_err(CliError::user)?;
    if cli.json {
        let v = serde_json::json!({"addresses": c.assignments.len(), "clusters": c.clusters, "deposits": c.deposits, "hot_wallets": c.hot_wallets, "merges": c.merges, "files": files});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return Ok(());
    }
    println!(
        "{}: {} deposit address(es) of {} hot wallet(s); {} addresses in {} clusters after {} merges (deposit-address-reuse)",
        out.display(),
        c.deposits,
        c.hot_wallets,
        c.assignments.len(),
        c.clusters,
        c.merges.len()
    );
    Ok(())
}
