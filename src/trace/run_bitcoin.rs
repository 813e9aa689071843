//! The Bitcoin trace of a [`Request`]: seeds resolved to outputs, every model run over the
//! address index, nodes named by address or cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::case::{Case, Found, to_clusters};
use super::request::{
    Level, Request, TraceError, check_balanced, check_stop_at, height_window, load_labels,
    min_value, parameters,
};
use super::seeds::seed_outputs;
use super::{Label, Params, PolicyResult, run_within};
use crate::index::Index;
use crate::types::{AddrIx, Height, Network, OutIx, ix};

/// The chain directory and network of a Bitcoin dataset in `data`: `network` if given,
/// else the only network present.
///
/// # Errors
/// An unknown network name, no Bitcoin dataset, or several networks and none chosen.
pub fn chain_dir(data: &Path, network: Option<&str>) -> Result<(PathBuf, String), TraceError> {
    if let Some(n) = network {
        let net = Network::from_name(n).ok_or_else(|| {
            TraceError::Input(format!(
                "unknown network {n:?}; use bitcoin, testnet, testnet4, signet or regtest"
            ))
        })?;
        let present = present_networks(data);
        if !present.contains(&net.as_str()) {
            return Err(TraceError::Input(format!(
                "{} holds no {} dataset{}",
                data.display(),
                net.as_str(),
                match present.as_slice() {
                    [] => format!(
                        "; run `chaintrace ingest bitcoin --data {}` first",
                        data.display()
                    ),
                    [one] =>
                        format!("; it holds {one}: use --network {one} or leave --network out"),
                    many => format!("; it holds {}: choose one with --network", many.join(", ")),
                }
            )));
        }
        return Ok((data.join(net.as_str()), net.as_str().to_string()));
    }
    let present = present_networks(data);
    match present.as_slice() {
        [one] => Ok((data.join(one), one.to_string())),
        [] if data.join("ethereum").join("_manifest.json").is_file() => {
            Err(TraceError::Input(format!(
                "{} holds an Ethereum dataset, not a Bitcoin one; add --chain ethereum",
                data.display()
            )))
        }
        [] => Err(TraceError::Input(format!(
            "{} holds no Bitcoin dataset; run `chaintrace ingest bitcoin --data {}` first",
            data.display(),
            data.display()
        ))),
        many => Err(TraceError::Input(format!(
            "{} holds several networks ({}); choose one with --network",
            data.display(),
            many.join(", ")
        ))),
    }
}

/// The Bitcoin networks `data` holds a dataset of.
fn present_networks(data: &Path) -> Vec<&'static str> {
    Network::ALL
        .iter()
        .map(|n| n.as_str())
        .filter(|n| data.join(n).join("_manifest.json").is_file())
        .collect()
}

/// The chosen labels of the outputs the dataset's inputs spend from outside it, by their
/// index in the index's `before_*` files.
fn before_labels(idx: &Index, resolved: &crate::labels::Resolved) -> HashMap<u64, Label> {
    if idx.meta.before == 0 {
        return HashMap::new();
    }
    let by_address: HashMap<&str, &crate::labels::Tag> = resolved
        .chosen
        .iter()
        .map(|t| (t.address.as_str(), t))
        .collect();
    (0..idx.meta.before)
        .filter_map(|k| {
            let t = by_address.get(idx.before_address(k))?;
            Some((
                k,
                Label {
                    entity: t.entity.clone(),
                    category: t.category.clone(),
                },
            ))
        })
        .collect()
}

/// The watch of a trace's walks: they may grow the process's memory to three quarters
/// of the budget ([`crate::memory::budget`]), what it holds already counted (the labels
/// and seeds loaded, the program's own), so the whole process stays within the budget;
/// the last quarter is for writing the case.
pub(crate) fn walk_watch() -> crate::memory::Watch {
    crate::memory::Watch::up_to(crate::memory::budget().bytes() / 4 * 3)
}

/// The error of a trace that outgrew its budget: how far it got (`progress`: "the haircut
/// model had recorded …"), and how to narrow it.
pub(crate) fn outgrown(progress: &str, o: &crate::memory::Outgrown) -> TraceError {
    let show = crate::memory::show;
    let budget = crate::memory::budget();
    TraceError::Input(format!(
        "the trace outgrew the memory budget ({budget}): {progress} when the memory had grown by {}, past the {} the walks may grow by (three quarters of the budget, less the {} held before them: the labels, the seeds and the program itself; the last quarter is for writing the case). Narrow the trace (fewer hops with --max-hops, a higher --min-value, fewer models with --policy, fewer seeds) or give it more memory with --memory",
        show(o.grown),
        show(o.limit),
        show((budget.bytes() / 4 * 3).saturating_sub(o.limit)),
    ))
}

pub(crate) fn run(a: &Request) -> Result<Case, TraceError> {
    let pols = a.policies.clone();
    let (chain, network) = chain_dir(&a.data, a.network.as_deref())?;
    let (idx, _) = Index::open_or_build(&chain).map_err(|e| match e {
        crate::index::IndexError::Interrupted { .. } => TraceError::Interrupted,
        e => TraceError::stage(e),
    })?;
    let seeds = seed_outputs(
        &idx,
        &a.seeds,
        &a.data,
        &network,
        a.allow_conflicted_cluster,
        a.max_seed_cluster,
    )?;
    let (labels, resolved) = load_labels(a, "bitcoin", &network, |addrs| {
        idx.address_ids_of(addrs)
            .into_iter()
            .map(|x| x.map(|x| x.0))
            .collect()
    })?;
    let stop_at = check_stop_at(a, &resolved)?;
    let heights = idx.heights();
    let times: Vec<(u64, u64)> = (0..heights)
        .map(|h| (u64::from(h), u64::from(idx.block_time(Height(h)))))
        .collect();
    let (from_height, to_height) = height_window(a, &times)?;
    if from_height >= u64::from(heights) {
        return Err(TraceError::Input(format!(
            "the window starts after the dataset's last block (height {}): nothing to trace",
            heights.saturating_sub(1)
        )));
    }
    // Seeds are outputs created inside the window: what the seeds held before or after it
    // is not part of this trace (it would be "held" in a window that ended before it).
    let all_seeds = seeds.len();
    let seeds: Vec<OutIx> = seeds
        .into_iter()
        .filter(|&o| {
            let h = u64::from(idx.tx_height(idx.out_tx(o)).0);
            (from_height..=to_height).contains(&h)
        })
        .collect();
    if seeds.is_empty() {
        return Err(TraceError::Input(format!(
            "none of the {all_seeds} seed output(s) was created inside the window (heights {from_height} to {to_height}); widen --from/--to"
        )));
    }
    let params = Params {
        direction: a.direction,
        max_hops: a.max_hops,
        min_value: min_value(a, false)?,
        from_height,
        to_height,
        stop_at: stop_at.clone(),
        through_coinjoins: a.through_coinjoins,
        before_labels: before_labels(&idx, &resolved),
    };
    // The walks' edges and taint grow with the trace: watched against the budget (what the
    // process holds now counted), with a quarter of it left for what writing the case adds.
    let mut watch = walk_watch();
    let mut results: Vec<PolicyResult> = Vec::with_capacity(pols.len());
    for &p in &pols {
        let r = run_within(&idx, &seeds, &labels, &params, p, &mut watch).map_err(|o| match o {
            super::Stopped::Interrupted => TraceError::Interrupted,
            super::Stopped::Outgrown { memory, edges, hop } => {
                let done: Vec<&str> = results.iter().map(|r| r.policy.name()).collect();
                let before = if done.is_empty() {
                    String::new()
                } else {
                    format!(
                        "the {} model(s) had finished ({} transfers) and ",
                        done.join(", "),
                        results.iter().map(|r| r.edges.len()).sum::<usize>()
                    )
                };
                let progress = format!(
                    "{before}the {} model had recorded {edges} transfers, up to hop {hop},",
                    p.name(),
                );
                outgrown(&progress, &memory)
            }
        })?;
        results.push(r);
    }
    check_balanced(&results)?;
    let clusters_dir = crate::cluster::clusters_dir(&a.data, &network);
    let stored = if a.uses_clusters() {
        Some(crate::cluster::load(&idx, &clusters_dir).map_err(TraceError::stage)?)
    } else {
        None
    };
    let name_of = |id: u32| -> &str {
        match (&stored, a.level) {
            (Some(s), Level::Cluster) => idx.address(AddrIx(s.cluster_of[ix(id)])),
            _ => idx.address(AddrIx(id)),
        }
    };
    if let (true, Some(s)) = (a.level == Level::Cluster, &stored) {
        let rep = |addr: &str| match idx.address_id(addr) {
            Some(id) => idx.address(AddrIx(s.cluster_of[id.ix()])).to_string(),
            None => addr.to_string(),
        };
        to_clusters(&mut results, &rep);
    }
    // What the report needs to draw the nodes: which hold the seeds, and their labels.
    let seed_nodes: BTreeSet<String> = seeds
        .iter()
        .filter_map(|&o| idx.out_address(o))
        .map(|a| name_of(a.0).to_string())
        .collect();
    // Labels imported after `cluster bitcoin` ran were not seen by its guard: a cluster the
    // trace uses whose addresses carry labels of different actors is named (the report's
    // cluster warnings), as `cluster bitcoin` names the conflicts it saw.
    let mut cluster_warnings = stored
        .as_ref()
        .map(|s| s.meta.warnings.clone())
        .unwrap_or_default();
    if let (Some(s), Level::Cluster) = (&stored, a.level) {
        let used: BTreeSet<u32> = seeds
            .iter()
            .filter_map(|&o| idx.out_address(o))
            .map(|x| s.cluster_of[x.ix()])
            .collect();
        let mut actors: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
        for (addr, l) in &labels {
            let c = s.cluster_of[ix(*addr)];
            if used.contains(&c) {
                actors.entry(c).or_default().insert(&*l.entity);
            }
        }
        for (c, names) in actors.into_iter().filter(|(_, n)| n.len() > 1) {
            if cluster_warnings.iter().any(|w| w.cluster_id == c) {
                continue;
            }
            let message = format!(
                "seed cluster {c} ({}) holds addresses labelled with different actors: {}. Its merges were made before these labels were imported, so the clustering's guard did not check them; `chaintrace cluster explain` two of them, or run `chaintrace cluster bitcoin` again, which holds back change merges joining labelled actors",
                idx.address(AddrIx(c)),
                names.iter().copied().collect::<Vec<_>>().join(", ")
            );
            eprintln!("chaintrace: warning: {message}");
            cluster_warnings.push(crate::cluster::Warning {
                cluster_id: c,
                kind: "conflict".into(),
                message,
            });
        }
    }
    let clustering = match &stored {
        Some(s) => serde_json::json!({
            "heuristics": s.meta.heuristics,
            "clusters": s.meta.clusters,
            "addresses": s.meta.addresses,
            "coinjoins": s.meta.coinjoins,
            "warnings": cluster_warnings,
            "held": s.meta.held.len(),
            "hold_size": s.meta.hold_size,
            "evaluation": std::fs::read(clusters_dir.join("_eval.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()),
        }),
        None => serde_json::Value::Null,
    };
    let mut parameters = parameters(
        a,
        &pols,
        [
            from_height,
            to_height.min(u64::from(heights.saturating_sub(1))),
        ],
        labels.len(),
    );
    parameters["seed_outputs"] = seeds.len().into();
    // A neighbourhood fetched from an API says so (and is not a height window).
    let neighbourhood = crate::store::manifest::Manifest::load(&chain)
        .ok()
        .flatten()
        .and_then(|m| m.neighbourhood);
    if let Some(n) = &neighbourhood {
        parameters["dataset_neighbourhood"] =
            serde_json::to_value(n).expect("neighbourhoods serialise");
    } else if idx.meta.first_height > 0 {
        parameters["dataset_first_height"] = idx.meta.first_height.into();
    }
    parameters["stop_at"] = stop_at.clone().into();
    parameters["labels_private_ignored"] = resolved.private_ignored.into();
    let mut labelled: Vec<(&u32, &Label)> = labels.iter().collect();
    labelled.sort_by_key(|(id, _)| **id);
    Case::assemble(
        a,
        Found {
            chain: "bitcoin",
            network,
            manifest_sha256: idx.meta.manifest_sha256.clone(),
            asset: None,
            seeds: format!("{} seed output(s)", seeds.len()),
            seed_nodes,
            clustering,
            parameters,
            labels: labels.len(),
            resolved: &resolved,
            results,
        },
        labelled
            .into_iter()
            .map(|(&id, l)| (std::borrow::Cow::Borrowed(name_of(id)), l)),
        |addr| idx.address_id(addr).map(|a| name_of(a.0).to_string()),
    )
}
