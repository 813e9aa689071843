//! The flow graph of a trace, as a chart shows it: addresses grouped by entity, long peel
//! chains optionally collapsed, the smallest flows merged when there are too many nodes.
//! Every amount stays an exact integer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::case::{Case, PolicyResult};
use crate::trace::Amount;
use crate::types::ix;

/// How columns are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// The hop at which value first reached the node.
    Hop,
    /// The day at which value first reached the node.
    Time,
}

/// A node of the chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Stable key: an address, `entity:NAME`, `seeds`, `peel:ADDRESS`, `other:LAYER`.
    pub key: String,
    pub title: String,
    pub detail: String,
    /// Label category, or `seed`, `unlabelled`, `peel chain`, `other`.
    pub category: String,
    pub members: Vec<String>,
    pub seed: bool,
    pub received: Amount,
    pub sent: Amount,
    pub layer: usize,
    /// The earliest time value reached it (or left it, for seeds).
    pub first_time: u32,
}

/// An edge of the chart: all transfers between two nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub amount: Amount,
    pub first_time: u32,
    pub last_time: u32,
    pub transfers: usize,
}

/// The chart's graph.
#[derive(Clone, Debug, Default)]
pub struct FlowGraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Peel chains collapsed, with their hop counts.
    pub peel_chains: Vec<usize>,
    /// Nodes merged into "other" nodes to stay legible.
    pub merged_small: usize,
    /// The header of each column (layer), left to right: "seeds", "hop 3" or a date,
    /// "labelled receivers".
    pub column_names: Vec<String>,
}

/// Options of the chart graph.
#[derive(Clone, Copy, Debug)]
pub struct GraphOptions {
    pub collapse_peel_chains: bool,
    /// Peel chains shorter than this stay expanded.
    pub min_peel_hops: usize,
    pub max_nodes: usize,
    pub columns: Columns,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            collapse_peel_chains: false,
            min_peel_hops: 3,
            max_nodes: 200,
            columns: Columns::Hop,
        }
    }
}

/// Shortens an address for a box: `bcrt1qxy…9fk2`.
pub fn short(addr: &str) -> String {
    let c: Vec<char> = addr.chars().collect();
    if c.len() <= 16 {
        return addr.to_string();
    }
    let head: String = c[..8].iter().collect();
    let tail: String = c[c.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

/// What an address is, as the chart groups it.
struct Grouping<'a> {
    case: &'a Case,
    seeds: BTreeSet<&'a str>,
    /// Address → group key, overriding the default.
    key: HashMap<String, String>,
}

impl Grouping<'_> {
    fn key_of(&self, addr: &str) -> String {
        if let Some(k) = self.key.get(addr) {
            return k.clone();
        }
        if let Some(l) = self.case.node_labels.get(addr) {
            return format!("entity:{}", l.entity);
        }
        if self.seeds.contains(addr) && self.seeds.len() > 6 {
            return "seeds".into();
        }
        addr.to_string()
    }
}

/// Aggregates the transfers of `r` under a grouping.
fn aggregate(case: &Case, r: &PolicyResult, g: &Grouping, opts: &GraphOptions) -> FlowGraph {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes: Vec<Node> = Vec::new();
    let mut node = |addr: &str, nodes: &mut Vec<Node>| -> usize {
        let key = g.key_of(addr);
        if let Some(&i) = index.get(&key) {
            if !nodes[i].members.iter().any(|m| m == addr) {
                nodes[i].members.push(addr.to_string());
            }
            return i;
        }
        let label = case.node_labels.get(addr);
        let seed = g.seeds.contains(addr);
        let category = match (label, seed) {
            (Some(l), _) => l.category.clone(),
            (None, true) => "seed".into(),
            (None, false) if key.starts_with("peel:") => "peel chain".into(),
            (None, false) if key.starts_with("other:") => "other".into(),
            _ => "unlabelled".into(),
        };
        let title = match label {
            Some(l) => l.entity.clone(),
            None if key == "seeds" => "seed addresses".into(),
            None if key.starts_with("peel:") => "peel chain".into(),
            None if key.starts_with("other:") => "smaller flows".into(),
            None => short(addr),
        };
        index.insert(key.clone(), nodes.len());
        nodes.push(Node {
            key,
            title,
            detail: String::new(),
            category,
            members: vec![addr.to_string()],
            seed,
            received: 0,
            sent: 0,
            layer: 0,
            first_time: u32::MAX,
        });
        nodes.len() - 1
    };
    for s in &case.seed_nodes {
        let i = node(s, &mut nodes);
        nodes[i].seed = true;
    }
    let mut edges: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
    let mut first_hop: HashMap<usize, u32> = HashMap::new();
    for t in &r.edges {
        let (a, b) = (node(&t.from, &mut nodes), node(&t.to, &mut nodes));
        if a == b {
            continue;
        }
        nodes[a].sent += t.amount;
        nodes[b].received += t.amount;
        nodes[a].first_time = nodes[a].first_time.min(t.time);
        nodes[b].first_time = nodes[b].first_time.min(t.time);
        let h = first_hop.entry(b).or_insert(t.hop);
        *h = (*h).min(t.hop);
        let e = edges.entry((a, b)).or_insert(Edge {
            from: a,
            to: b,
            amount: 0,
            first_time: t.time,
            last_time: t.time,
            transfers: 0,
        });
        e.amount += t.amount;
        e.first_time = e.first_time.min(t.time);
        e.last_time = e.last_time.max(t.time);
        e.transfers += 1;
    }
    let mut fg = FlowGraph {
        nodes,
        edges: edges.into_values().collect(),
        ..FlowGraph::default()
    };
    assign_layers(&mut fg, &first_hop, opts.columns);
    for n in &mut fg.nodes {
        if n.members.len() > 1 && !n.key.starts_with("peel:") {
            n.detail = format!("{} addresses", n.members.len());
        }
    }
    fg
}

/// Columns: seeds first, sinks with a label last, the rest by hop or by day.
fn assign_layers(fg: &mut FlowGraph, first_hop: &HashMap<usize, u32>, columns: Columns) {
    let days: BTreeSet<u32> = fg
        .nodes
        .iter()
        .filter(|n| !n.seed && n.first_time != u32::MAX)
        .map(|n| n.first_time / 86_400)
        .collect();
    let day_rank: HashMap<u32, usize> = days.iter().enumerate().map(|(i, &d)| (d, i + 1)).collect();
    let has_out: BTreeSet<usize> = fg.edges.iter().map(|e| e.from).collect();
    for (i, n) in fg.nodes.iter_mut().enumerate() {
        n.layer = if n.seed {
            0
        } else {
            match columns {
                Columns::Hop => ix(first_hop.get(&i).copied().unwrap_or(1).max(1)),
                Columns::Time => day_rank.get(&(n.first_time / 86_400)).copied().unwrap_or(1),
            }
        };
    }
    let last = fg.nodes.iter().map(|n| n.layer).max().unwrap_or(0) + 1;
    for (i, n) in fg.nodes.iter_mut().enumerate() {
        let labelled = !matches!(
            n.category.as_str(),
            "seed" | "unlabelled" | "peel chain" | "other"
        );
        if labelled && !n.seed && !has_out.contains(&i) {
            n.layer = last;
        }
    }
    // Close gaps left by empty columns.
    let used: BTreeSet<usize> = fg.nodes.iter().map(|n| n.layer).collect();
    let rank: HashMap<usize, usize> = used.iter().enumerate().map(|(i, &l)| (l, i)).collect();
    for n in &mut fg.nodes {
        n.layer = rank[&n.layer];
    }
    let day_of: Vec<u32> = days.into_iter().collect();
    fg.column_names = used
        .iter()
        .map(|&l| {
            if l == 0 {
                "seeds".to_string()
            } else if l == last {
                "labelled receivers (exits)".to_string()
            } else {
                match columns {
                    Columns::Hop => format!("hop {l}"),
                    Columns::Time => day_of.get(l - 1).map_or_else(String::new, |&d| {
                        format!("first reached {}", super::fmt::date(i64::from(d) * 86_400))
                    }),
                }
            }
        })
        .collect();
}

/// Finds peel chains: paths of unlabelled, non-seed addresses, each reached by one edge
/// only and passing value on to exactly one address that goes on.
fn peel_chains(fg: &FlowGraph, min_hops: usize) -> Vec<Vec<usize>> {
    let n = fg.nodes.len();
    let mut indeg = vec![0usize; n];
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &fg.edges {
        indeg[e.to] += 1;
        outs[e.from].push(e.to);
    }
    let candidate =
        |i: usize| fg.nodes[i].category == "unlabelled" && indeg[i] == 1 && outs[i].len() <= 3;
    let next = |i: usize| -> Option<usize> {
        let mut it = outs[i]
            .iter()
            .copied()
            .filter(|&j| candidate(j) && !outs[j].is_empty());
        let first = it.next()?;
        it.next().is_none().then_some(first)
    };
    let mut has_prev = vec![false; n];
    for i in (0..n).filter(|&i| candidate(i)) {
        if let Some(j) = next(i) {
            has_prev[j] = true;
        }
    }
    let mut chains = Vec::new();
    let mut seen = vec![false; n];
    for start in (0..n).filter(|&i| candidate(i) && !has_prev[i]) {
        let mut chain = vec![start];
        seen[start] = true;
        let mut cur = start;
        while let Some(j) = next(cur) {
            if seen[j] {
                break;
            }
            seen[j] = true;
            chain.push(j);
            cur = j;
        }
        if chain.len() >= min_hops {
            chains.push(chain);
        }
    }
    chains
}

/// Builds the chart graph of one policy result.
pub fn build(case: &Case, r: &PolicyResult, opts: &GraphOptions) -> FlowGraph {
    let mut g = Grouping {
        case,
        seeds: case.seed_nodes.iter().map(String::as_str).collect(),
        key: HashMap::new(),
    };
    let mut fg = aggregate(case, r, &g, opts);
    let mut peel = Vec::new();
    if opts.collapse_peel_chains {
        for chain in peel_chains(&fg, opts.min_peel_hops.max(2)) {
            let head = &fg.nodes[chain[0]];
            let key = format!("peel:{}", head.key);
            for &i in &chain {
                for m in &fg.nodes[i].members {
                    g.key.insert(m.clone(), key.clone());
                }
            }
            peel.push((key, chain.len(), head.received));
        }
        if !peel.is_empty() {
            fg = aggregate(case, r, &g, opts);
        }
    }
    describe_peel(&mut fg, &peel, case);
    if fg.nodes.len() > opts.max_nodes {
        // Keep the seeds, labelled nodes and the largest flows; merge the rest per column.
        let mut rank: Vec<usize> = (0..fg.nodes.len()).collect();
        let weight = |n: &Node| {
            let keep = n.seed || !matches!(n.category.as_str(), "unlabelled" | "other");
            (
                std::cmp::Reverse(keep),
                std::cmp::Reverse(n.received.max(n.sent)),
            )
        };
        rank.sort_by(|&a, &b| {
            weight(&fg.nodes[a])
                .cmp(&weight(&fg.nodes[b]))
                .then_with(|| fg.nodes[a].key.cmp(&fg.nodes[b].key))
        });
        let layers = fg.nodes.iter().map(|n| n.layer).max().unwrap_or(0) + 1;
        let keep = opts.max_nodes.saturating_sub(layers).max(1);
        let mut merged = 0;
        for &i in &rank[keep.min(rank.len())..] {
            let n = &fg.nodes[i];
            if n.seed || !matches!(n.category.as_str(), "unlabelled" | "peel chain") {
                continue;
            }
            merged += 1;
            for m in &n.members {
                g.key.insert(m.clone(), format!("other:{:04}", n.layer));
            }
        }
        fg = aggregate(case, r, &g, opts);
        fg.merged_small = merged;
        describe_peel(&mut fg, &peel, case);
    }
    fg
}

/// Names the collapsed peel chains: "N hops, X BTC" (the amount entering the chain).
fn describe_peel(fg: &mut FlowGraph, peel: &[(String, usize, Amount)], case: &Case) {
    for (key, hops, amount) in peel {
        if let Some(n) = fg.nodes.iter_mut().find(|n| &n.key == key) {
            n.detail = format!(
                "{hops} hops, {} {}",
                super::draw::shown(*amount, case.decimals()),
                case.unit()
            );
        }
    }
    fg.peel_chains = peel.iter().map(|p| p.1).collect();
}

/// An exact amount without trailing zeros (`150000000` → `1.5`).
pub fn trim(units: Amount, decimals: u32) -> String {
    let s = super::fmt::amount(units, decimals);
    if decimals == 0 {
        return s; // an integer: its zeros are digits
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
