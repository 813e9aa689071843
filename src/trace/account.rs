//! Flow tracing on the **account model** (Ethereum: ETH, and each token on its own).
//!
//! An account has one balance, not coins, so the taint models act on that balance. The
//! transfers of one asset are replayed in chain order (block, transaction, then the order
//! inside the transaction: the fee first, the transaction's value, then its internal
//! transfers or token events), and each account keeps how much of its balance is tainted:
//! - **poison**: once an account receives any taint, its whole balance and all it receives
//!   later are tainted; an exposure bound that does not conserve value.
//! - **haircut**: every transfer out carries the account's tainted share of its balance at
//!   that moment (tainted × value ÷ balance, rounded half up; the last wei out takes the
//!   rest). Same source as the UTXO model (Möser et al. 2014).
//! - **fifo**: the balance is a queue of the amounts received, in order; a transfer out takes
//!   the oldest wei first (Clayton's Case, as Anderson et al. 2018 read it for accounts).
//! - **lifo**: as FIFO, the newest wei first (a stack).
//! - **tiho** ("taint in, highest out") picks among a transaction's outputs; an account
//!   transfer has one recipient, so the model has nothing to choose from: refused.
//!
//! Balances the dataset cannot see (genesis allocations, block rewards, withdrawals, or all
//! before the first ingested block) are found by one pass over the transfers: an account that
//! sends more than it received so far must have held the difference from the start, and is
//! given that much **clean** balance at its first appearance. Fees (gas used × effective gas
//! price, paid by the sender even when the transaction failed) leave the traced value as
//! **fees**.
//!
//! Seeds are accounts or transactions. A seed account's whole balance is tainted: what it
//! holds when the window opens and all it receives later are **seeded**; taint that comes
//! back to it from others is **returned to seeds**. A seed transaction taints exactly the
//! value it moved to each recipient. Every wei seeded ends as an exit (a transfer into an
//! account labelled with a `--stop-at` category), a fee, a holding (still in an account when
//! the replay ends), below minimum (a transfer carrying less taint than `--min-value`), beyond
//! the hop limit, or back into a seed: for the conserving models these add up exactly, and
//! the caller checks it.
//!
//! Backward ([`run_backward`]) undoes the transfers newest first from the balances at the
//! end of the window: FIFO and LIFO exactly invert their forward replay; haircut shares an
//! account's tainted units among its earlier receipts by the balance each arrived to.

use std::collections::{HashMap, HashSet, VecDeque};

use super::policy::Policy;
use super::{Amount, Direction, Edge, End, Label, Params, PolicyResult, Totals};

/// The recipient of a fee.
pub const FEE: u32 = u32::MAX;

/// One movement of the traced asset, in replay order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub block: u32,
    pub time: u32,
    /// Index into [`Ledger::txids`].
    pub tx: u32,
    /// Indices into [`Ledger::accounts`]; `to` is [`FEE`] for a fee.
    pub from: u32,
    pub to: u32,
    pub value: Amount,
}

/// Every transfer of one asset, sorted in chain order.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    pub accounts: Vec<String>,
    pub txids: Vec<String>,
    pub transfers: Vec<Transfer>,
}

/// What the trace starts from.
#[derive(Clone, Debug, Default)]
pub struct Seeds {
    pub accounts: HashSet<u32>,
    pub txs: HashSet<u32>,
}

/// Why a policy cannot run on accounts.
pub fn unsupported(policy: Policy) -> Option<&'static str> {
    (policy == Policy::Tiho).then_some(
        "tiho (taint in, highest out) chooses among a transaction's outputs; an account transfer has one recipient, so it does not apply to Ethereum: use poison, haircut, fifo or lifo",
    )
}

/// An account's balance and its tainted part.
#[derive(Clone, Debug)]
enum Pool {
    /// poison (tainted = all or nothing) and haircut.
    Sum { held: Amount, tainted: Amount },
    /// fifo and lifo: (amount, tainted) pieces, oldest first.
    Queue(VecDeque<(Amount, bool)>),
}

impl Pool {
    fn new(policy: Policy) -> Pool {
        match policy {
            Policy::Fifo | Policy::Lifo => Pool::Queue(VecDeque::new()),
            _ => Pool::Sum {
                held: 0,
                tainted: 0,
            },
        }
    }

    fn tainted(&self) -> Amount {
        match self {
            Pool::Sum { tainted, .. } => *tainted,
            Pool::Queue(q) => q.iter().filter(|p| p.1).map(|p| p.0).sum(),
        }
    }

    fn held(&self) -> Amount {
        match self {
            Pool::Sum { held, .. } => *held,
            Pool::Queue(q) => q.iter().map(|p| p.0).sum(),
        }
    }

    /// Adds `pieces` (amount, tainted) in order.
    fn put(&mut self, pieces: &[(Amount, bool)], poison: bool) {
        match self {
            Pool::Sum { held, tainted } => {
                for &(v, t) in pieces {
                    *held += v;
                    if t {
                        *tainted += v;
                    }
                }
                if poison && *tainted > 0 {
                    *tainted = *held;
                }
            }
            Pool::Queue(q) => {
                for &(v, t) in pieces.iter().filter(|p| p.0 > 0) {
                    match q.back_mut() {
                        Some(last) if last.1 == t => last.0 += v,
                        _ => q.push_back((v, t)),
                    }
                }
            }
        }
    }

    /// Taints the whole balance.
    fn taint_all(&mut self) {
        match self {
            Pool::Sum { held, tainted } => *tainted = *held,
            Pool::Queue(q) => {
                let all = q.iter().map(|p| p.0).sum();
                q.clear();
                if all > 0 {
                    q.push_back((all, true));
                }
            }
        }
    }

    /// Backward: undoes the receipt of the last `v` units (they are at the back of a queue):
    /// the pieces, front to back.
    fn take_back(&mut self, v: Amount, policy: Policy) -> Vec<(Amount, bool)> {
        match self {
            Pool::Sum { .. } => self.take(v, policy),
            Pool::Queue(_) => {
                let mut seg = self.take(v, Policy::Lifo);
                seg.reverse();
                seg
            }
        }
    }

    /// Backward: undoes a transfer out, putting `segment` (front to back, as the receiver
    /// got it) back where FIFO (the front) or LIFO (the back) took it from.
    fn restore(&mut self, segment: &[(Amount, bool)], policy: Policy) {
        match self {
            Pool::Sum { .. } => self.put(segment, policy == Policy::Poison),
            Pool::Queue(q) => {
                for &(v, t) in segment.iter().rev().filter(|p| p.0 > 0) {
                    let end = if policy == Policy::Lifo {
                        q.back_mut()
                    } else {
                        q.front_mut()
                    };
                    match end {
                        Some(e) if e.1 == t => e.0 += v,
                        _ if policy == Policy::Lifo => q.push_back((v, t)),
                        _ => q.push_front((v, t)),
                    }
                }
            }
        }
    }

    /// Takes `v` out (the balance holds at least `v`): the pieces that leave, in order.
    fn take(&mut self, v: Amount, policy: Policy) -> Vec<(Amount, bool)> {
        match self {
            Pool::Sum { held, tainted } => {
                let t = if policy == Policy::Poison {
                    if *tainted > 0 { v } else { 0 }
                } else if v >= *held {
                    *tainted
                } else {
                    share(*tainted, v, *held).min(v)
                };
                *held = held.saturating_sub(v);
                *tainted = tainted.saturating_sub(t).min(*held);
                if policy == Policy::Poison && *held > 0 && t > 0 {
                    *tainted = *held;
                }
                vec![(t, true), (v - t, false)]
            }
            Pool::Queue(q) => {
                let mut out = Vec::new();
                let mut left = v;
                while left > 0 {
                    let piece = if policy == Policy::Lifo {
                        q.back_mut()
                    } else {
                        q.front_mut()
                    };
                    let Some(piece) = piece else { break };
                    let n = piece.0.min(left);
                    piece.0 -= n;
                    left -= n;
                    out.push((n, piece.1));
                    if piece.0 == 0 {
                        if policy == Policy::Lifo {
                            q.pop_back();
                        } else {
                            q.pop_front();
                        }
                    }
                }
                // Unreachable with opening balances; clean if it ever happens.
                if left > 0 {
                    out.push((left, false));
                }
                out
            }
        }
    }
}

/// `tainted × v ÷ held`, rounded half up, exact for all u128 inputs (`v < held`).
fn share(tainted: Amount, v: Amount, held: Amount) -> Amount {
    if let Some(p) = tainted.checked_mul(v) {
        let (q, r) = (p / held, p % held);
        return q + Amount::from(r >= held - r);
    }
    let (hi, lo) = mul_wide(tainted, v);
    let (q, r) = div_wide(hi, lo, held);
    // Round half up: r ≥ held - r.
    q + Amount::from(r >= held - r)
}

/// The 256-bit product of `a` and `b` as (high, low) halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let lo = (p00 & u128::from(u64::MAX)) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// (hi·2¹²⁸ + lo) ÷ d as (quotient, remainder), for a quotient that fits in u128
/// (`hi < d`), by binary long division.
fn div_wide(hi: u128, lo: u128, d: u128) -> (u128, u128) {
    debug_assert!(hi < d);
    let mut rem = hi;
    let mut q: u128 = 0;
    for i in (0..128).rev() {
        let carry = rem >> 127;
        rem = (rem << 1) | ((lo >> i) & 1);
        q <<= 1;
        if carry == 1 || rem >= d {
            rem = rem.wrapping_sub(d);
            q |= 1;
        }
    }
    (q, rem)
}

/// The clean balance each account must have held before its first transfer in `ledger`
/// (the most it ever sent beyond what it had received).
pub fn opening_balances(ledger: &Ledger) -> Vec<Amount> {
    let mut net: Vec<i128> = vec![0; ledger.accounts.len()];
    let mut need: Vec<Amount> = vec![0; ledger.accounts.len()];
    for t in &ledger.transfers {
        let f = t.from as usize;
        let v = i128::try_from(t.value).unwrap_or(i128::MAX);
        net[f] = net[f].saturating_sub(v);
        if net[f] < 0 {
            need[f] = need[f].max(net[f].unsigned_abs());
        }
        if t.to != FEE {
            let to = t.to as usize;
            net[to] = net[to].saturating_add(v);
        }
    }
    need
}

/// Runs one policy forward over `ledger` (the caller picks [`run_backward`] for backward).
/// `opening` comes from [`opening_balances`]; `labels` are by account id.
///
/// # Panics
/// On [`Policy::Tiho`] (see [`unsupported`]).
///
/// # Complexity
/// O(transfers) for poison and haircut; FIFO and LIFO add the pieces each balance holds.
pub fn run(
    ledger: &Ledger,
    opening: &[Amount],
    seeds: &Seeds,
    labels: &HashMap<u32, Label>,
    p: &Params,
    policy: Policy,
) -> PolicyResult {
    assert!(unsupported(policy).is_none(), "{policy:?} on accounts");
    let poison = policy == Policy::Poison;
    let mut pools: Vec<Option<Pool>> = std::iter::repeat_with(|| None)
        .take(ledger.accounts.len())
        .collect();
    let mut hop: HashMap<u32, u32> = HashMap::new();
    // For each tainted account: where its first taint came from, and the transaction.
    let mut pred: HashMap<u32, (u32, u32)> = HashMap::new();
    // The last transaction that brought taint to each account.
    let mut last_tx: HashMap<u32, u32> = HashMap::new();
    let mut totals = Totals::default();
    let mut edges = Vec::new();
    let mut ends = Vec::new();
    let mut opened = false;
    let stops = |a: u32| {
        labels
            .get(&a)
            .is_some_and(|l| p.stop_at.contains(&l.category))
    };
    let mut seed_accounts: Vec<u32> = seeds.accounts.iter().copied().collect();
    seed_accounts.sort_unstable();
    let pool_of = |pools: &mut Vec<Option<Pool>>, a: u32| -> Pool {
        pools[a as usize].take().unwrap_or_else(|| {
            let mut pool = Pool::new(policy);
            pool.put(&[(opening[a as usize], false)], false);
            pool
        })
    };
    for t in &ledger.transfers {
        if t.block > p.to_height {
            break;
        }
        if !opened && t.block >= p.from_height {
            opened = true;
            for &a in &seed_accounts {
                let mut pool = pool_of(&mut pools, a);
                totals.seeded += pool.held();
                pool.taint_all();
                pools[a as usize] = Some(pool);
                hop.insert(a, 0);
            }
        }
        let mut from = pool_of(&mut pools, t.from);
        let pieces = from.take(t.value, policy);
        pools[t.from as usize] = Some(from);
        let mut carried: Amount = pieces.iter().filter(|x| x.1).map(|x| x.0).sum();
        let seed_tx = opened && t.to != FEE && seeds.txs.contains(&t.tx);
        if !opened || (carried == 0 && !seed_tx) {
            if t.to != FEE {
                let mut to = pool_of(&mut pools, t.to);
                to.put(&[(t.value, false)], poison);
                if opened && seeds.accounts.contains(&t.to) {
                    totals.seeded += t.value;
                    to.taint_all();
                }
                pools[t.to as usize] = Some(to);
            }
            continue;
        }
        if t.to == FEE {
            totals.fees += carried;
            continue;
        }
        let h = if seed_tx {
            0
        } else {
            1 + hop.get(&t.from).copied().unwrap_or(0)
        };
        let mut to = pool_of(&mut pools, t.to);
        let (piece_list, keep) = if seeds.accounts.contains(&t.to) {
            // Back into a seed: all it receives is seeded; the taint it brings ends here.
            totals.returned_to_seeds += carried;
            totals.seeded += t.value;
            edges.push(edge(ledger, t, carried, h));
            (vec![(t.value, true)], false)
        } else if seed_tx {
            totals.seeded += t.value - carried;
            carried = t.value;
            hop.insert(t.to, 0);
            (vec![(t.value, true)], true)
        } else if h > p.max_hops {
            totals.hop_limit += carried;
            (vec![(t.value, false)], false)
        } else {
            edges.push(edge(ledger, t, carried, h));
            if carried < p.min_value {
                totals.below_min += carried;
                (vec![(t.value, false)], false)
            } else if stops(t.to) {
                // An exit keeps no taint.
                totals.exits += carried;
                ends.push(end(ledger, labels, "exit", t.to, Some(t.tx), carried, h));
                pred.entry(t.to).or_insert((t.from, t.tx));
                (vec![(t.value, false)], false)
            } else {
                (pieces, true)
            }
        };
        to.put(&piece_list, poison);
        if keep {
            if !seed_tx {
                pred.entry(t.to).or_insert((t.from, t.tx));
                let e = hop.entry(t.to).or_insert(h);
                *e = (*e).min(h);
            }
            last_tx.insert(t.to, t.tx);
        }
        pools[t.to as usize] = Some(to);
    }
    if !opened {
        for &a in &seed_accounts {
            let held = opening[a as usize];
            totals.seeded += held;
            let mut pool = Pool::new(policy);
            pool.put(&[(held, true)], poison);
            pools[a as usize] = Some(pool);
        }
    }
    let held: Vec<(u32, Amount)> = pools
        .iter()
        .enumerate()
        .filter_map(|(a, pool)| Some((a as u32, pool.as_ref()?.tainted())))
        .filter(|x| x.1 > 0)
        .collect();
    for (a, v) in held {
        totals.holdings += v;
        let h = hop.get(&a).copied().unwrap_or(0);
        ends.push(end(
            ledger,
            labels,
            "holding",
            a,
            last_tx.get(&a).copied(),
            v,
            h,
        ));
    }
    set_paths(ledger, &mut ends, &pred, Direction::Forward);
    PolicyResult::new(policy, totals, edges, ends)
}

/// Each end's transactions from a seed (forward) or to a seed (backward), following the
/// first taint each account got.
fn set_paths(
    ledger: &Ledger,
    ends: &mut [End],
    pred: &HashMap<u32, (u32, u32)>,
    direction: Direction,
) {
    let index: HashMap<&str, u32> = ledger
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i as u32))
        .collect();
    for e in ends {
        let mut at = index.get(e.address.as_str()).copied();
        let mut path = Vec::new();
        while let Some(&(prev, tx)) = at.and_then(|a| pred.get(&a)) {
            path.push(ledger.txids[tx as usize].clone());
            at = Some(prev);
            if path.len() > ledger.transfers.len() {
                break;
            }
        }
        if direction == Direction::Forward {
            path.reverse();
        }
        e.path = path;
    }
}

/// The zero address: token mints come from it.
pub const ZERO: &str = "0x0000000000000000000000000000000000000000";

/// Runs one policy **backward** over `ledger`: where the seeds' money came from.
///
/// The balances at the end of the window are rebuilt by replaying forward, then the
/// transfers are undone newest first. Undoing a transfer into a seed taints it in full
/// (**seeded**); undoing a transfer into a tainted account hands the sender the part of it
/// that the model says the account's tainted units came from: FIFO and LIFO restore the
/// exact queue the forward replay had, so their answer is the exact inverse of the forward
/// models; haircut gives each earlier receipt its share of the account's tainted units in
/// proportion to the balance right after it arrived; poison taints a sender in full. Taint
/// still in an account when the window's first block is undone came from before the window
/// or from value the dataset does not show (**holding**; for tokens, the zero address's is
/// **mined**: minted).
///
/// # Panics
/// On [`Policy::Tiho`] (see [`unsupported`]).
pub fn run_backward(
    ledger: &Ledger,
    opening: &[Amount],
    seeds: &Seeds,
    labels: &HashMap<u32, Label>,
    p: &Params,
    policy: Policy,
) -> PolicyResult {
    assert!(unsupported(policy).is_none(), "{policy:?} on accounts");
    let last = ledger
        .transfers
        .iter()
        .position(|t| t.block > p.to_height)
        .unwrap_or(ledger.transfers.len());
    let mut held: Vec<Amount> = opening.to_vec();
    for t in &ledger.transfers[..last] {
        held[t.from as usize] = held[t.from as usize].saturating_sub(t.value);
        if t.to != FEE {
            held[t.to as usize] += t.value;
        }
    }
    let mut pools: Vec<Pool> = held
        .iter()
        .map(|&v| {
            let mut pool = Pool::new(policy);
            pool.put(&[(v, false)], false);
            pool
        })
        .collect();
    let clean = |seg: &[(Amount, bool)]| -> Vec<(Amount, bool)> {
        seg.iter().map(|x| (x.0, false)).collect()
    };
    let stops = |a: u32| {
        labels
            .get(&a)
            .is_some_and(|l| p.stop_at.contains(&l.category))
    };
    let mut hop: HashMap<u32, u32> = HashMap::new();
    let mut pred: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut last_tx: HashMap<u32, u32> = HashMap::new();
    let mut totals = Totals::default();
    let mut edges = Vec::new();
    let mut ends = Vec::new();
    for t in ledger.transfers[..last].iter().rev() {
        if t.block < p.from_height {
            break;
        }
        let (f, to) = (t.from as usize, t.to as usize);
        let seed_tx = t.to != FEE && seeds.txs.contains(&t.tx);
        let to_seed = t.to != FEE && seeds.accounts.contains(&t.to);
        let mut seg = if t.to == FEE {
            vec![(t.value, false)]
        } else {
            pools[to].take_back(t.value, policy)
        };
        let mut carried: Amount = seg.iter().filter(|x| x.1).map(|x| x.0).sum();
        if to_seed || seed_tx {
            totals.seeded += t.value - carried;
            carried = t.value;
            seg = vec![(t.value, true)];
        }
        if carried == 0 {
            pools[f].restore(&seg, policy);
            continue;
        }
        let h = if seed_tx {
            0
        } else if to_seed {
            1
        } else {
            1 + hop.get(&t.to).copied().unwrap_or(0)
        };
        let keep = if seeds.accounts.contains(&t.from) {
            totals.returned_to_seeds += carried;
            edges.push(edge(ledger, t, carried, h));
            false
        } else if h > p.max_hops {
            totals.hop_limit += carried;
            false
        } else {
            if !seed_tx {
                edges.push(edge(ledger, t, carried, h));
            }
            if carried < p.min_value {
                totals.below_min += carried;
                false
            } else if !seed_tx && stops(t.from) {
                totals.exits += carried;
                ends.push(end(ledger, labels, "exit", t.from, Some(t.tx), carried, h));
                if t.to != FEE {
                    pred.entry(t.from).or_insert((t.to, t.tx));
                }
                false
            } else {
                true
            }
        };
        if keep {
            pools[f].restore(&seg, policy);
            if !seed_tx {
                pred.entry(t.from).or_insert((t.to, t.tx));
            }
            let e = hop.entry(t.from).or_insert(h);
            *e = (*e).min(h);
            last_tx.insert(t.from, t.tx);
        } else {
            pools[f].restore(&clean(&seg), policy);
        }
    }
    for (a, pool) in pools.iter().enumerate() {
        let v = pool.tainted();
        if v == 0 {
            continue;
        }
        let a32 = a as u32;
        let minted = ledger.accounts[a] == ZERO;
        if minted {
            totals.mined += v;
        } else {
            totals.holdings += v;
        }
        ends.push(end(
            ledger,
            labels,
            if minted { "mined" } else { "holding" },
            a32,
            last_tx.get(&a32).copied(),
            v,
            hop.get(&a32).copied().unwrap_or(0),
        ));
    }
    set_paths(ledger, &mut ends, &pred, Direction::Backward);
    PolicyResult::new(policy, totals, edges, ends)
}

/// Where traced value ended: at account `a`, brought by transaction `tx`.
fn end(
    ledger: &Ledger,
    labels: &HashMap<u32, Label>,
    kind: &'static str,
    a: u32,
    tx: Option<u32>,
    amount: Amount,
    hop: u32,
) -> End {
    let l = labels.get(&a);
    End {
        kind,
        txid: tx
            .map(|t| ledger.txids[t as usize].clone())
            .unwrap_or_default(),
        vout: 0,
        address: ledger.accounts[a as usize].clone(),
        amount,
        hop,
        entity: l.map(|l| l.entity.clone()),
        category: l.map(|l| l.category.clone()),
        path: Vec::new(),
    }
}

fn edge(ledger: &Ledger, t: &Transfer, amount: Amount, hop: u32) -> Edge {
    Edge {
        txid: ledger.txids[t.tx as usize].clone(),
        height: t.block,
        time: t.time,
        from: ledger.accounts[t.from as usize].clone(),
        to: ledger.accounts[t.to as usize].clone(),
        amount,
        hop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Direction;

    fn params() -> Params {
        Params {
            direction: Direction::Forward,
            max_hops: 10,
            min_value: 0,
            from_height: 0,
            to_height: u32::MAX,
            stop_at: vec!["exchange".into()],
        }
    }

    /// Accounts: 0 seed, 1 mixer-like hub, 2 clean funder, 3 exchange, 4 other.
    fn ledger() -> Ledger {
        let t = |block, tx, from, to, value| Transfer {
            block,
            time: 1000 + block,
            tx,
            from,
            to,
            value,
        };
        Ledger {
            accounts: ["seed", "hub", "funder", "exchange", "other"]
                .map(String::from)
                .to_vec(),
            txids: (0..6).map(|i| format!("0x{i:02}")).collect(),
            transfers: vec![
                // The funder gives the hub 300 clean, then the seed 100 tainted.
                t(1, 0, 2, 1, 300),
                t(2, 1, 0, 1, 100),
                // The hub pays 10 in fees, sends 150 to the exchange, then 240 to other.
                t(3, 2, 1, FEE, 10),
                t(3, 2, 1, 3, 150),
                t(4, 3, 1, 4, 240),
            ],
        }
    }

    fn result(policy: Policy) -> PolicyResult {
        let l = ledger();
        let mut labels = HashMap::new();
        labels.insert(
            3,
            Label {
                entity: "Exch".into(),
                category: "exchange".into(),
            },
        );
        let seeds = Seeds {
            accounts: [0].into(),
            txs: HashSet::new(),
        };
        run(
            &l,
            &opening_balances(&l),
            &seeds,
            &labels,
            &params(),
            policy,
        )
    }

    #[test]
    fn hand_computed_account_traces() {
        // The seed needed 100 from before the dataset: seeded 100.
        // Haircut: hub holds 400, 100 tainted. Fee 10 carries 10·100/400 = 2.5 → 3;
        // then 390 held, 97 tainted: 150 carries 150·97/390 = 37.3 → 37; the last 240
        // empties the hub and carries the remaining 60.
        let h = result(Policy::Haircut);
        assert_eq!(
            (
                h.totals.seeded,
                h.totals.fees,
                h.totals.exits,
                h.totals.holdings
            ),
            (100, 3, 37, 60)
        );
        assert!(h.totals.balanced());
        assert_eq!(h.exposure_entity["Exch"], 37);
        // FIFO: the funder's 300 are older, so the fee and the 150 are clean; the 240 take
        // the remaining 140 clean, then the 100 tainted.
        let f = result(Policy::Fifo);
        assert_eq!(
            (f.totals.fees, f.totals.exits, f.totals.holdings),
            (0, 0, 100)
        );
        assert!(f.totals.balanced());
        // LIFO: the newest 100 tainted go first: 10 to fees, 90 to the exchange.
        let l = result(Policy::Lifo);
        assert_eq!(
            (l.totals.fees, l.totals.exits, l.totals.holdings),
            (10, 90, 0)
        );
        assert!(l.totals.balanced());
        assert_eq!(l.ends[0].path, vec!["0x01", "0x02"]);
        // Poison: the hub is poisoned, everything it sends is tainted.
        let p = result(Policy::Poison);
        assert_eq!(
            (p.totals.fees, p.totals.exits, p.totals.holdings),
            (10, 150, 240)
        );
    }

    #[test]
    fn backward_inverts_fifo_and_lifo_and_shares_haircut_by_balance() {
        let l = ledger();
        let seeds = Seeds {
            accounts: [4].into(),
            txs: HashSet::new(),
        };
        let back = |policy| {
            let mut p = params();
            p.direction = Direction::Backward;
            let r = run_backward(
                &l,
                &opening_balances(&l),
                &seeds,
                &HashMap::new(),
                &p,
                policy,
            );
            assert!(r.totals.balanced(), "{policy:?} {:?}", r.totals);
            r.ends
                .iter()
                .map(|e| (e.address.clone(), e.amount))
                .collect::<Vec<_>>()
        };
        let at = |a: &str, v: Amount| (a.to_string(), v);
        // Other's 240: FIFO forward gave it the funder's last 140 and the seed's 100.
        assert_eq!(back(Policy::Fifo), vec![at("seed", 100), at("funder", 140)]);
        // LIFO forward sent the seed's 100 out first (fee, exchange): other got the funder's.
        assert_eq!(back(Policy::Lifo), vec![at("funder", 240)]);
        // Haircut: the hub held 400 after the seed's 100 arrived, 240 of them bound for
        // other: 100·240/400 = 60 from the seed, the remaining 180 from the funder.
        assert_eq!(
            back(Policy::Haircut),
            vec![at("seed", 60), at("funder", 180)]
        );
    }

    #[test]
    fn a_seed_transaction_taints_only_what_it_moved() {
        let l = ledger();
        let seeds = Seeds {
            accounts: HashSet::new(),
            txs: [0].into(),
        };
        let r = run(
            &l,
            &opening_balances(&l),
            &seeds,
            &HashMap::new(),
            &params(),
            Policy::Fifo,
        );
        // The funder's 300 are the hub's oldest: the fee, then 150 to the (unlabelled)
        // exchange, then 140 of the 240 to other.
        assert_eq!(r.totals.seeded, 300);
        assert_eq!(r.totals.fees, 10);
        assert!(r.totals.balanced(), "{:?}", r.totals);
        assert_eq!(r.totals.holdings, 290);
        let held: Vec<(&str, Amount, u32)> = r
            .ends
            .iter()
            .map(|e| (e.address.as_str(), e.amount, e.hop))
            .collect();
        assert_eq!(held, vec![("exchange", 150, 1), ("other", 140, 1)]);
    }

    #[test]
    fn wide_arithmetic_is_exact() {
        assert_eq!(share(u128::MAX, u128::MAX - 1, u128::MAX), u128::MAX - 1);
        assert_eq!(share(3, 1, 2), 2); // 1.5 rounds up
        assert_eq!(share(1, 1, 3), 0);
        let (hi, lo) = mul_wide(u128::MAX, u128::MAX);
        assert_eq!((hi, lo), (u128::MAX - 1, 1));
        let big = 10u128.pow(30);
        assert_eq!(share(big, big, 3 * big), big / 3);
    }
}
