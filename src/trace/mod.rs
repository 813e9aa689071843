//! Flow tracing from seeds over the memory-mapped index, under the taint models of
//! [`policy`], forward (where did the money go?) or backward (where did it come from?).
//!
//! Transactions are visited in chain order (forward) or reverse chain order (backward), so
//! every transaction sees all the taint that reaches it before passing it on, whatever the
//! paths. Every satoshi of the seeds ends in exactly one place: an **exit** (an output at
//! an address labelled with a `--stop-at` category), a **fee**, a **holding** (unspent),
//! **below minimum** (an output with less than `--min-value` taint, not followed), or the
//! **hop limit** (taint that would need more than `--max-hops` transactions). Backward, coins
//! that came from **mining** (coinbase inputs) end the walk too; taint that flows back into
//! a seed output is **returned to seeds** (the seed is counted in full already). For the conserving models
//! the five add up to the seeded amount exactly; this is checked on every trace.

pub mod account;
pub mod case;
pub mod ethereum;
pub mod eval;
pub mod policy;
pub mod request;
mod run_bitcoin;
mod run_ethereum;
pub mod seeds;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use self::policy::{Intervals, Policy, backward, forward, split, total};
use crate::index::{Index, Prev};
use crate::labels::Text;
use crate::types::{AddrIx, InIx, OutIx, TxIx, ix};

/// An amount of the traced asset in its base unit (satoshi, wei, token units): u128, as
/// wei balances pass u64 at 18.4 ETH.
pub type Amount = u128;

/// Trace direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Forward,
    Backward,
}

/// What to trace.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    pub direction: Direction,
    pub max_hops: u32,
    pub min_value: Amount,
    /// Heights outside this window are not followed.
    pub from_height: u64,
    pub to_height: u64,
    /// Label categories where the walk stops (exits).
    pub stop_at: Vec<String>,
    /// Follow taint through transactions detected as CoinJoins
    /// ([`crate::cluster::heuristics::detect_coinjoin`]) as through any other. Off: taint
    /// that reaches a CoinJoin ends there ("entered a CoinJoin"), because a model's split
    /// of a CoinJoin assigns the seeds' coins to innocent participants.
    pub through_coinjoins: bool,
    /// Labels of outputs spent from outside the dataset (before a height window, outside a
    /// neighbourhood), by their index `k` of [`Prev::BeforeWindow`]: their addresses may
    /// have no address id. Bitcoin only.
    pub before_labels: HashMap<u64, Label>,
}

/// A label, as the trace sees it: texts shared with the tags it came from
/// ([`crate::labels::Text`]), so a label costs two pointers, not two strings.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Label {
    pub entity: crate::labels::Text,
    pub category: crate::labels::Text,
}

/// One value transfer of the trace.
///
/// Its texts (txid, nodes, addresses) are shared ([`crate::labels::Text`]): the edges of a
/// trace hold each distinct txid and address once, so an edge costs about 130 bytes, not
/// five strings (about 420).
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Edge {
    pub txid: crate::labels::Text,
    pub height: u64,
    pub time: u32,
    pub from: crate::labels::Text,
    pub to: crate::labels::Text,
    pub amount: Amount,
    pub hop: u32,
    /// The output of `txid` this transfer paid (forward: the receiving output; backward:
    /// the output the taint was traced back from); 0 on the account model.
    #[serde(default)]
    pub vout: u32,
    /// The addresses (accounts) of both ends, also when `from`/`to` name clusters
    /// (`--level cluster`): a subpoena goes to an address, not to a cluster.
    #[serde(default = "no_text")]
    pub from_address: crate::labels::Text,
    #[serde(default = "no_text")]
    pub to_address: crate::labels::Text,
    /// The whole value of the paid output (account model: of the transfer), of which
    /// `amount` is the traced part: "amount of a output_value deposit".
    #[serde(default)]
    pub output_value: Option<Amount>,
}

/// An empty text (an edge read back without addresses).
fn no_text() -> crate::labels::Text {
    "".into()
}

/// Where the traced satoshi ended.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Totals {
    /// Everything the seeds held: each seed output (account receipt) in full, including
    /// value that only moved from one seed to another.
    pub seeded: Amount,
    /// Of `seeded`, the value that entered the seed set from outside, counted once, the
    /// same under every model: each seed output's share of its transaction's inputs that
    /// were not seed outputs (all of a coinbase; none of a seed's own coin coming back
    /// from a CoinJoin). Account model: `seeded` − `returned_to_seeds`. Shares and "how
    /// much of it" statements are based on this.
    #[serde(default)]
    pub entered_seeds: Amount,
    pub exits: Amount,
    pub fees: Amount,
    pub holdings: Amount,
    pub below_min: Amount,
    pub hop_limit: Amount,
    pub mined: Amount,
    /// Taint that flowed back into seeds (already counted as seeded in full).
    pub returned_to_seeds: Amount,
    /// Taint that reached a detected CoinJoin and was not followed through it.
    #[serde(default)]
    pub coinjoins: Amount,
    /// Taint in outputs spent after the height/time window (backward: created before it):
    /// not followed, and not "held" either.
    #[serde(default)]
    pub outside_window: Amount,
    /// Backward on a dataset that is a height window: taint that came from outputs created
    /// before the window's first block (the dataset cannot follow it further).
    #[serde(default)]
    pub before_window: Amount,
    /// Account model: taint that reached a SELFDESTRUCT frame whose value or beneficiary the
    /// node's call trace did not give (forward: it left the contract by that frame;
    /// backward: it came from it): where it went (came from) is unknown, so it ends there.
    /// Left out of `trace.json` when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unresolved: Amount,
}

fn is_zero(v: &Amount) -> bool {
    *v == 0
}

impl Totals {
    /// Where the seeded amount ended, named, in report order (the seeded amount itself is
    /// not among them).
    pub fn ends(&self) -> [(&'static str, Amount); 11] {
        [
            ("reached exits", self.exits),
            ("fees", self.fees),
            ("held (unspent)", self.holdings),
            ("spent outside the window", self.outside_window),
            ("below minimum", self.below_min),
            ("beyond hop limit", self.hop_limit),
            ("mined", self.mined),
            ("back into seeds", self.returned_to_seeds),
            ("entered a CoinJoin", self.coinjoins),
            ("from outside the dataset", self.before_window),
            ("through an unresolved transfer", self.unresolved),
        ]
    }

    /// Whether the ends add up to the seeded amount.
    pub fn balanced(&self) -> bool {
        self.ends().iter().map(|e| e.1).sum::<Amount>() == self.seeded
    }
}

/// An output where the walk ended at a labelled address, or a holding.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct End {
    pub kind: &'static str,
    pub txid: String,
    pub vout: u32,
    pub address: String,
    pub amount: Amount,
    pub hop: u32,
    pub entity: Option<String>,
    pub category: Option<String>,
    /// With `--level cluster`: the cluster (named by its representative address) that
    /// holds `address`; `address` stays the address that was paid.
    pub cluster: Option<String>,
    /// The whole value of the output (account model: of the transfer) of which `amount` is
    /// the traced part; `None` for an account's holding.
    pub output_value: Option<Amount>,
    /// For a `coinjoin` end: the CoinJoin transaction the tainted output entered (forward)
    /// or came from (backward), and the pattern detected, as `TXID (pattern)`.
    pub coinjoin: Option<String>,
    /// Transactions from a seed to this output (forward) or from this output to a seed
    /// (backward), following at each step the input (output) that carried the most taint.
    pub path: Vec<crate::labels::Text>,
}

/// The result of one policy.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyResult {
    pub policy: Policy,
    pub totals: Totals,
    pub edges: Vec<Edge>,
    pub ends: Vec<End>,
    /// Amount reaching each labelled entity, and each category.
    pub exposure_entity: BTreeMap<String, Amount>,
    pub exposure_category: BTreeMap<String, Amount>,
}

impl PolicyResult {
    /// The result, with the exposure per entity and category summed from the exits.
    pub fn new(
        policy: Policy,
        totals: Totals,
        mut edges: Vec<Edge>,
        mut ends: Vec<End>,
    ) -> PolicyResult {
        // Kept while the other models run: without the slack of their growth.
        edges.shrink_to_fit();
        ends.shrink_to_fit();
        let mut exposure_entity = BTreeMap::new();
        let mut exposure_category = BTreeMap::new();
        for e in ends.iter().filter(|e| e.kind == "exit") {
            if let (Some(en), Some(c)) = (&e.entity, &e.category) {
                *exposure_entity.entry(en.clone()).or_insert(0) += e.amount;
                *exposure_category.entry(c.clone()).or_insert(0) += e.amount;
            }
        }
        PolicyResult {
            policy,
            totals,
            edges,
            ends,
            exposure_entity,
            exposure_category,
        }
    }
}

/// Runs one policy from seed outputs.
///
/// # Complexity
/// O(transactions reached × their inputs and outputs), plus the taint intervals that FIFO
/// and LIFO carry.
pub fn run(
    idx: &Index,
    seeds: &[OutIx],
    labels: &HashMap<u32, Label>,
    p: &Params,
    policy: Policy,
) -> PolicyResult {
    match run_within(
        idx,
        seeds,
        labels,
        p,
        policy,
        &mut crate::memory::Watch::unlimited(),
    ) {
        Ok(r) => r,
        Err(_) => unreachable!("an unlimited watch never stops a walk"),
    }
}

/// Why a policy's walk stopped before its end.
#[derive(Debug, Clone)]
pub enum Stopped {
    /// The process outgrew its memory budget: the memory measured against the limit, the
    /// transfers (edges) the walk had recorded, and the hop it had reached.
    Outgrown {
        memory: crate::memory::Outgrown,
        edges: usize,
        hop: u32,
    },
    /// Ctrl-C, SIGTERM or [`crate::ingest::interrupt`].
    Interrupted,
}

/// [`run`], watching the process's memory with `watch` as it walks (once every
/// [`crate::memory::Watch::EVERY`] transactions): a trace whose edges and taint outgrow
/// the budget stops, instead of growing until the machine swaps or the kernel kills it.
///
/// It also stops when the watch is interrupted ([`crate::memory::Watch::interrupted`]: Ctrl-C).
///
/// # Errors
/// [`Stopped`]: the memory grew past the watch's limit, or the walk was interrupted.
pub fn run_within(
    idx: &Index,
    seeds: &[OutIx],
    labels: &HashMap<u32, Label>,
    p: &Params,
    policy: Policy,
    watch: &mut crate::memory::Watch,
) -> Result<PolicyResult, Stopped> {
    let mut taint: HashMap<OutIx, Intervals> = HashMap::new();
    let mut hop: HashMap<OutIx, u32> = HashMap::new();
    let mut totals = Totals::default();
    let mut ends = Vec::new();
    let mut edges = Vec::new();
    let mut names = Names::default();
    let mut queue: BTreeSet<TxIx> = BTreeSet::new();
    let seed_set: std::collections::HashSet<OutIx> = seeds.iter().copied().collect();
    // For each tainted output: the output it got most of its taint from, and the transaction.
    let mut pred: HashMap<OutIx, (OutIx, TxIx)> = HashMap::new();
    let height_of = |t: TxIx| u64::from(idx.tx_height(t).0);
    let label_of = |o: OutIx| idx.out_address(o).and_then(|a| labels.get(&a.0));
    let stops = |o: OutIx| label_of(o).is_some_and(|l| p.stop_at.iter().any(|c| *c == *l.category));
    let end = |kind: &'static str, o: OutIx, amount: u64, h: u32| {
        let l = label_of(o);
        End {
            kind,
            txid: idx.txid(idx.out_tx(o)).to_string(),
            vout: idx.vout(o),
            address: idx
                .out_address(o)
                .map(|a| idx.address(a).to_string())
                .unwrap_or_default(),
            amount: amount.into(),
            hop: h,
            entity: l.map(|l| l.entity.to_string()),
            category: l.map(|l| l.category.to_string()),
            cluster: None,
            output_value: Some(idx.value(o).to_sat().into()),
            coinjoin: None,
            path: Vec::new(),
        }
    };
    // The next transaction an output leads to, or what it ends as.
    let route = |o: OutIx,
                 amount: u64,
                 h: u32,
                 queue: &mut BTreeSet<TxIx>,
                 totals: &mut Totals,
                 ends: &mut Vec<End>,
                 seed: bool| {
        if !seed && stops(o) {
            totals.exits += Amount::from(amount);
            ends.push(end("exit", o, amount, h));
            return;
        }
        let next = match p.direction {
            Direction::Forward => idx.spender(o),
            Direction::Backward => Some(idx.out_tx(o)),
        };
        match next {
            Some(t) if (p.from_height..=p.to_height).contains(&height_of(t)) => {
                queue.insert(t);
            }
            // Spent (forward) or created (backward) outside the height window: not held.
            Some(_) => {
                totals.outside_window += Amount::from(amount);
                ends.push(end("outside_window", o, amount, h));
            }
            None => {
                totals.holdings += Amount::from(amount);
                ends.push(end("holding", o, amount, h));
            }
        }
    };
    for &o in seeds {
        let v = idx.value(o).to_sat();
        totals.seeded += Amount::from(v);
        totals.entered_seeds += entered_from_outside(idx, o, &seed_set);
        taint.insert(o, vec![(0, v)]);
        hop.insert(o, 0);
        route(o, v, 0, &mut queue, &mut totals, &mut ends, true);
    }
    while let Some(t) = match p.direction {
        Direction::Forward => queue.pop_first(),
        Direction::Backward => queue.pop_last(),
    } {
        let ins: Vec<InIx> = idx.inputs_of(t).collect();
        let outs: Vec<OutIx> = idx.outputs_of(t).collect();
        let prevs: Vec<Prev> = ins.iter().map(|&i| idx.prev(i)).collect();
        let prev: Vec<Option<OutIx>> = prevs
            .iter()
            .map(|p| match p {
                Prev::Output(o) => Some(*o),
                _ => None,
            })
            .collect();
        let empty = Vec::new();
        let part = |o: OutIx| (idx.value(o).to_sat(), taint.get(&o).unwrap_or(&empty));
        // `known`: the tainted outputs on the side the taint comes from.
        let known: Vec<OutIx> = match p.direction {
            Direction::Forward => prev
                .iter()
                .flatten()
                .copied()
                .filter(|o| taint.contains_key(o))
                .collect(),
            Direction::Backward => outs
                .iter()
                .copied()
                .filter(|o| taint.contains_key(o))
                .collect(),
        };
        let Some(h) = next_hop(&known, &hop, &taint, p, &mut totals) else {
            continue;
        };
        if watch.interrupted() {
            return Err(Stopped::Interrupted);
        }
        watch.grown_over().map_err(|memory| Stopped::Outgrown {
            memory,
            edges: edges.len(),
            hop: h,
        })?;
        if stop_at_coinjoin(
            idx,
            t,
            &known,
            &taint,
            &hop,
            p,
            &mut totals,
            &mut ends,
            &end,
        ) {
            continue;
        }
        // `fresh`: the outputs on the other side with the taint the model gives them.
        let fresh: Vec<(OutIx, Intervals)> = match p.direction {
            Direction::Forward => {
                // Inputs from outside the dataset (before a height window, outside a
                // neighbourhood) carry their real value, untainted.
                let in_parts: Vec<(u64, &Intervals)> = prevs
                    .iter()
                    .map(|p| match *p {
                        Prev::Output(o) => part(o),
                        Prev::BeforeWindow(k) => (idx.before_value(k).to_sat(), &empty),
                        Prev::Coinbase => (0, &empty),
                    })
                    .collect();
                let out_values: Vec<u64> = outs.iter().map(|&o| idx.value(o).to_sat()).collect();
                let (out_taint, fee) = forward(policy, &in_parts, &out_values);
                totals.fees += Amount::from(fee);
                outs.iter().copied().zip(out_taint).collect()
            }
            Direction::Backward => {
                if prevs.iter().all(|p| *p == Prev::Coinbase) {
                    totals.mined += known
                        .iter()
                        .map(|o| Amount::from(total(&taint[o])))
                        .sum::<Amount>(); // a coinbase
                    continue;
                }
                let out_parts: Vec<(u64, &Intervals)> = outs.iter().map(|&o| part(o)).collect();
                let in_values: Vec<u64> = prevs
                    .iter()
                    .map(|p| match *p {
                        Prev::Output(o) => idx.value(o).to_sat(),
                        Prev::BeforeWindow(k) => idx.before_value(k).to_sat(),
                        Prev::Coinbase => 0,
                    })
                    .collect();
                let in_taint = backward(policy, &out_parts, &in_values);
                let mut fresh = Vec::new();
                for (prev_of, iv) in prevs.iter().zip(in_taint) {
                    match *prev_of {
                        Prev::Output(o) => fresh.push((o, iv)),
                        // Created before the dataset's window: the walk ends here.
                        Prev::BeforeWindow(k) => {
                            let amount = total(&iv);
                            if amount == 0 {
                                continue;
                            }
                            // As an output of the dataset would: a stop label makes it an
                            // exit however small, else below the minimum is not followed.
                            let label = p.before_labels.get(&k);
                            let mut e = before_window_end(
                                idx, k, t, amount, h, &known, &taint, &mut edges, &mut names,
                            );
                            e.entity = label.map(|l| l.entity.to_string());
                            e.category = label.map(|l| l.category.to_string());
                            if label.is_some_and(|l| p.stop_at.iter().any(|c| *c == *l.category)) {
                                e.kind = "exit";
                                totals.exits += Amount::from(amount);
                                ends.push(e);
                            } else if Amount::from(amount) < p.min_value {
                                totals.below_min += Amount::from(amount);
                            } else {
                                totals.before_window += Amount::from(amount);
                                ends.push(e);
                            }
                        }
                        Prev::Coinbase => {}
                    }
                }
                fresh
            }
        };
        let info = (names.txid(idx, t), height_of(t), idx.tx_time(t));
        let weights: Vec<u64> = known.iter().map(|o| total(&taint[o])).collect();
        for (o, iv) in fresh {
            let amount = total(&iv);
            if amount == 0 {
                continue;
            }
            // Edges between `o` and each tainted counterpart, in proportion to its taint.
            for (j, share) in split(amount, &weights).into_iter().enumerate() {
                if share > 0 {
                    let (from, to, paid) = match p.direction {
                        Direction::Forward => (known[j], o, o),
                        Direction::Backward => (o, known[j], known[j]),
                    };
                    let (from, to) = (names.of(idx, from), names.of(idx, to));
                    edges.push(Edge {
                        txid: info.0.clone(),
                        height: info.1,
                        time: info.2,
                        from_address: from.clone(),
                        to_address: to.clone(),
                        from,
                        to,
                        amount: share.into(),
                        hop: h,
                        vout: idx.vout(paid),
                        output_value: Some(idx.value(paid).to_sat().into()),
                    });
                }
            }
            if seed_set.contains(&o) {
                totals.returned_to_seeds += Amount::from(amount);
                continue;
            }
            // Stop categories first: a deposit at an exchange is an exit however small.
            if Amount::from(amount) < p.min_value && !stops(o) {
                totals.below_min += Amount::from(amount);
                continue;
            }
            if let Some(j) = (0..known.len()).max_by_key(|&j| (weights[j], std::cmp::Reverse(j))) {
                pred.entry(o).or_insert((known[j], t));
            }
            // An exit keeps no taint: a later transaction spending it (a sweep with other
            // tainted coins) must not pass the exited satoshi on again. Backward, poison can
            // reach one output twice: its taint merges.
            if !stops(o) {
                let merged = match taint.remove(&o) {
                    Some(mut old) => {
                        old.extend(iv);
                        normalise(old)
                    }
                    None => iv,
                };
                taint.insert(o, merged);
            }
            hop.insert(o, h);
            route(o, amount, h, &mut queue, &mut totals, &mut ends, false);
        }
    }
    for e in &mut ends {
        let mut path = Vec::new();
        // A before-the-window end names the outpoint outside the dataset; its path starts
        // at the transaction that spent it, then follows the output that carried its taint.
        let held = std::mem::take(&mut e.path);
        let mut o = match out_of(idx, &e.txid, e.vout) {
            Some(o) => Some(o),
            None => {
                path.extend(held.first().cloned());
                held.get(1).and_then(|v: &Text| {
                    let (t, n) = v.split_once(':')?;
                    out_of(idx, t, n.parse().ok()?)
                })
            }
        };
        while let Some(&(prev, t)) = o.and_then(|o| pred.get(&o)) {
            path.push(names.txid(idx, t));
            o = Some(prev);
        }
        if p.direction == Direction::Forward {
            path.reverse();
        }
        // The hop shown is the number of transactions on the path shown.
        e.hop = u32::try_from(path.len()).unwrap_or(u32::MAX);
        e.path = path;
    }
    Ok(PolicyResult::new(policy, totals, edges, ends))
}

/// Ends `amount` of taint (backward) at the `k`-th output spent from before the dataset's
/// window by transaction `t`: returns an end of kind `before_window` naming that outpoint
/// (without its label; the caller counts it), and pushes edges from it to the tainted outputs `known` of `t` in proportion to their taint. The
/// end's `path` temporarily holds `t`'s txid and `TXID:VOUT` of the output that carried
/// most of the taint (the caller turns it into the path to a seed).
#[allow(clippy::too_many_arguments)]
fn before_window_end(
    idx: &Index,
    k: u64,
    t: TxIx,
    amount: u64,
    h: u32,
    known: &[OutIx],
    taint: &HashMap<OutIx, Intervals>,
    edges: &mut Vec<Edge>,
    names: &mut Names,
) -> End {
    let (txid, vout) = idx.before_outpoint(k);
    let from = Text::from(idx.before_address(k));
    let spender = names.txid(idx, t);
    let weights: Vec<u64> = known.iter().map(|o| total(&taint[o])).collect();
    for (j, share) in split(amount, &weights).into_iter().enumerate() {
        if share == 0 {
            continue;
        }
        let paid = known[j];
        let to = names.of(idx, paid);
        edges.push(Edge {
            txid: spender.clone(),
            height: u64::from(idx.tx_height(t).0),
            time: idx.tx_time(t),
            from_address: from.clone(),
            to_address: to.clone(),
            from: from.clone(),
            to,
            amount: share.into(),
            hop: h,
            vout: idx.vout(paid),
            output_value: Some(idx.value(paid).to_sat().into()),
        });
    }
    let via = (0..known.len())
        .max_by_key(|&j| (weights[j], std::cmp::Reverse(j)))
        .map(|j| format!("{}:{}", idx.txid(idx.out_tx(known[j])), idx.vout(known[j])));
    End {
        kind: "before_window",
        txid,
        vout,
        address: from.to_string(),
        amount: amount.into(),
        hop: h,
        entity: None,
        category: None,
        cluster: None,
        output_value: Some(idx.before_value(k).to_sat().into()),
        coinjoin: None,
        path: std::iter::once(spender)
            .chain(via.map(Text::from))
            .collect(),
    }
}

/// The part of seed output `o` that came from outside the seeds: its share of its
/// transaction's inputs that are not seed outputs (floor), all of it for a coinbase, and
/// for a detected CoinJoin the part beyond what the seeds put in (their own coins back).
fn entered_from_outside(idx: &Index, o: OutIx, seeds: &std::collections::HashSet<OutIx>) -> Amount {
    let v = idx.value(o).to_sat();
    let t = idx.out_tx(o);
    let (mut total, mut from_seeds) = (0u128, 0u128);
    let mut coinbase = true;
    for i in idx.inputs_of(t) {
        match idx.prev(i) {
            Prev::Coinbase => {}
            Prev::BeforeWindow(k) => {
                coinbase = false;
                total += u128::from(idx.before_value(k).to_sat());
            }
            Prev::Output(prev) => {
                coinbase = false;
                let x = u128::from(idx.value(prev).to_sat());
                total += x;
                if seeds.contains(&prev) {
                    from_seeds += x;
                }
            }
        }
    }
    let v = u128::from(v);
    if coinbase || from_seeds == 0 {
        return v;
    }
    if crate::cluster::heuristics::detect_coinjoin(idx, t).is_some() {
        return v.saturating_sub(from_seeds);
    }
    v * (total - from_seeds) / total.max(1)
}

/// Ends the taint of `known` (the tainted side of transaction `t`) as "entered a
/// CoinJoin" when `t` is a detected CoinJoin and the trace does not follow through them.
/// Returns whether it did.
#[allow(clippy::too_many_arguments)]
fn stop_at_coinjoin(
    idx: &Index,
    t: TxIx,
    known: &[OutIx],
    taint: &HashMap<OutIx, Intervals>,
    hop: &HashMap<OutIx, u32>,
    p: &Params,
    totals: &mut Totals,
    ends: &mut Vec<End>,
    end: &dyn Fn(&'static str, OutIx, u64, u32) -> End,
) -> bool {
    if p.through_coinjoins {
        return false;
    }
    let Some(pattern) = crate::cluster::heuristics::detect_coinjoin(idx, t) else {
        return false;
    };
    for &o in known {
        let amount = total(&taint[&o]);
        totals.coinjoins += Amount::from(amount);
        let mut e = end("coinjoin", o, amount, hop[&o]);
        e.coinjoin = Some(format!("{} ({pattern})", idx.txid(t)));
        ends.push(e);
    }
    true
}

/// The hop of a transaction whose tainted side is `known`, or `None` (with the taint
/// counted as stopped) if it lies beyond the hop limit.
fn next_hop(
    known: &[OutIx],
    hop: &HashMap<OutIx, u32>,
    taint: &HashMap<OutIx, Intervals>,
    p: &Params,
    totals: &mut Totals,
) -> Option<u32> {
    let h = 1 + known.iter().map(|o| hop[o]).max().unwrap_or(0);
    if h > p.max_hops {
        totals.hop_limit += known
            .iter()
            .map(|o| Amount::from(total(&taint[o])))
            .sum::<Amount>();
        return None;
    }
    Some(h)
}

fn out_of(idx: &Index, txid: &str, vout: u32) -> Option<OutIx> {
    idx.tx_id(&txid.parse().ok()?)
        .and_then(|t| idx.output(t, vout))
}

/// The address and txid texts of a trace's edges and paths, each made once ([`Text`]).
#[derive(Default)]
struct Names(HashMap<Option<AddrIx>, Text>, HashMap<TxIx, Text>);

impl Names {
    /// The txid of `t`.
    fn txid(&mut self, idx: &Index, t: TxIx) -> Text {
        self.1
            .entry(t)
            .or_insert_with(|| idx.txid(t).to_string().into())
            .clone()
    }

    /// The address `o` pays, `(no address)` for none.
    fn of(&mut self, idx: &Index, o: OutIx) -> Text {
        let a = idx.out_address(o);
        self.0
            .entry(a)
            .or_insert_with(|| a.map_or_else(|| "(no address)".into(), |a| idx.address(a).into()))
            .clone()
    }
}

/// Sorts and merges overlapping intervals.
fn normalise(mut iv: Intervals) -> Intervals {
    iv.sort_unstable();
    let mut out: Intervals = Vec::with_capacity(iv.len());
    for (a, b) in iv {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Poison's upper bound: how many outputs (account model: transfers) the taint touched and
/// their whole value, from `(txid, vout, from address, to address, whole value)` per edge.
/// An output is counted once however many edges reach it (Bitcoin: by txid:vout); on
/// accounts, where every transfer is "output 0" of its transaction, a transfer is told by
/// its sender and recipient too.
pub fn touched<'a>(
    edges: impl Iterator<Item = (&'a str, u32, &'a str, &'a str, Amount)>,
    account: bool,
) -> (usize, Amount) {
    let mut seen: BTreeMap<(&str, u32, &str, &str), Amount> = BTreeMap::new();
    for (txid, vout, from, to, whole) in edges {
        let key = if account {
            (txid, vout, from, to)
        } else {
            (txid, vout, "", "")
        };
        seen.entry(key).or_insert(whole);
    }
    (seen.len(), seen.values().sum())
}

/// `part` of `whole` in basis points (10,000 = all of it), rounded down; 10,000 when the
/// whole is unknown or 0 (nothing to be thin against). Integers only: shares decide what
/// lists show, so no float may tip them.
pub fn share_bp(part: Amount, whole: Option<Amount>) -> u128 {
    match whole {
        Some(w) if w > 0 => part.saturating_mul(10_000) / w,
        _ => 10_000,
    }
}

/// `part` of `base` as a percentage with `decimals` (1 or 2) places, rounded half up
/// (`"67.9 %"`); `None` when `base` is 0.
pub fn percent_text(part: Amount, base: Amount, decimals: u32) -> Option<String> {
    let scale = 10u128.pow(decimals.min(6) + 2);
    let q = (part.saturating_mul(scale) + base / 2).checked_div(base)?;
    let unit = 10u128.pow(decimals.min(6));
    Some(format!(
        "{}.{:0width$} %",
        q / unit,
        q % unit,
        width = ix(decimals.min(6))
    ))
}

/// `--min-share`: a percentage with at most two decimals, as basis points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinShare {
    pub basis_points: u128,
    pub text: String,
}

impl Default for MinShare {
    /// No exit hidden (0 %).
    fn default() -> MinShare {
        MinShare {
            basis_points: 0,
            text: "0".to_string(),
        }
    }
}

/// Parses `--min-share` (`1`, `0.5`, `12.25`: percent of the deposit).
///
/// # Errors
/// Not a number from 0 to 100 with at most two decimals.
pub fn parse_min_share(s: &str) -> Result<MinShare, crate::types::InvalidValue> {
    let t = s.trim().trim_end_matches('%');
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let ok = !int.is_empty()
        && frac.len() <= 2
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    let bp = ok
        .then(|| format!("{int}{frac:0<2}").parse::<u128>().ok())
        .flatten()
        .filter(|bp| *bp <= 10_000)
        .ok_or_else(|| {
            format!("{s:?} is not a percentage from 0 to 100 with at most two decimals")
        })?;
    Ok(MinShare {
        basis_points: bp,
        text: t.to_string(),
    })
}

#[cfg(test)]
mod share_tests {
    use super::*;

    #[test]
    fn shares_are_integer_and_rounded_as_stated() {
        assert_eq!(share_bp(1, Some(3)), 3333);
        assert_eq!(share_bp(5, None), 10_000);
        assert_eq!(percent_text(2, 3, 1).as_deref(), Some("66.7 %"));
        assert_eq!(percent_text(1, 8, 2).as_deref(), Some("12.50 %"));
        assert_eq!(percent_text(1, 0, 1), None);
        assert_eq!(parse_min_share("0.5").unwrap().basis_points, 50);
        assert!(parse_min_share("101").is_err() && parse_min_share("0.125").is_err());
    }
}
