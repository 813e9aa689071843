//! Clustering heuristics: each a named, switchable rule that proposes merges for one
//! transaction. CoinJoin detection is separate: it vetoes multi-input merging and change
//! detection on the transactions it recognises.

use super::super::index::Index;

/// A heuristic that proposes merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Heuristic {
    /// Common-input ownership: all input addresses of a transaction belong to one entity.
    /// Source: Meiklejohn et al., "A Fistful of Bitcoins", IMC 2013 (heuristic 1); also
    /// Nakamoto 2008 §10. Skipped on detected CoinJoins.
    MultiInput,
    /// One-time change: the only output address that appears for the first time and never
    /// receives again is change. Source: Androulaki et al. 2013, as used by GraphSense.
    ChangeOneTime,
    /// Same script type: the only output whose script type equals that of all inputs is
    /// change. Source: Möser & Narayanan 2022 ("Resurrecting address clustering"),
    /// BlockSci `ChangeType::ScriptType`.
    ChangeType,
    /// Optimal change: the only output smaller than every input is change (a wallet would
    /// not have spent an unneeded input). Source: Nick 2015; BlockSci `optimalChange`.
    ChangeOptimal,
    /// Round payment: when exactly one output is not a round amount and the others are,
    /// the non-round one is change. Source: Meiklejohn et al. 2013 follow-ups; BlockSci
    /// `ChangeType::RoundValue`.
    ChangeRound,
    /// Fresh address: the only output address never seen before, when the others are
    /// reused, is change. Source: Meiklejohn et al. 2013 (heuristic 2, "one-time change
    /// addresses", relaxed); BlockSci `ChangeType::AddressReuse`.
    ChangeFresh,
}

impl Heuristic {
    /// Every heuristic.
    pub const ALL: [Heuristic; 6] = [
        Heuristic::MultiInput,
        Heuristic::ChangeOneTime,
        Heuristic::ChangeType,
        Heuristic::ChangeOptimal,
        Heuristic::ChangeRound,
        Heuristic::ChangeFresh,
    ];

    /// The name used on the command line and in files.
    /// What the rule says and where it comes from (for reports).
    pub fn description(self) -> &'static str {
        match self {
            Heuristic::MultiInput => {
                "Common-input ownership: all input addresses of a transaction belong to one entity; skipped on detected CoinJoins. Source: Meiklejohn et al., \"A Fistful of Bitcoins\", IMC 2013 (heuristic 1); Nakamoto 2008 §10."
            }
            Heuristic::ChangeOneTime => {
                "One-time change: the only output address that appears for the first time and never receives again is change. Source: Androulaki et al. 2013, as used by GraphSense."
            }
            Heuristic::ChangeType => {
                "Same script type: the only output whose script type equals that of all inputs is change. Source: Möser & Narayanan 2022, \"Resurrecting address clustering\"; BlockSci."
            }
            Heuristic::ChangeOptimal => {
                "Optimal change: the only output smaller than every input is change. Source: Nick 2015; BlockSci optimalChange."
            }
            Heuristic::ChangeRound => {
                "Round payment: when exactly one output is not a round amount, it is change. Source: Meiklejohn et al. 2013 follow-ups; BlockSci."
            }
            Heuristic::ChangeFresh => {
                "Fresh address: the only never-seen output address, when the others are reused, is change. Source: Meiklejohn et al. 2013 (heuristic 2, relaxed); BlockSci."
            }
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Heuristic::MultiInput => "multi-input",
            Heuristic::ChangeOneTime => "change-one-time",
            Heuristic::ChangeType => "change-type",
            Heuristic::ChangeOptimal => "change-optimal",
            Heuristic::ChangeRound => "change-round",
            Heuristic::ChangeFresh => "change-fresh",
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Heuristic> {
        Heuristic::ALL.into_iter().find(|h| h.name() == s)
    }

    /// Whether this heuristic identifies a change output.
    pub fn is_change(self) -> bool {
        self != Heuristic::MultiInput
    }
}

/// Whirlpool pool denominations (satoshi).
pub const WHIRLPOOL_DENOMINATIONS: [u64; 4] = [100_000, 1_000_000, 5_000_000, 50_000_000];

/// Recognises CoinJoin-like transactions.
///
/// - **Whirlpool**: 5 inputs and 5 outputs, every output one pool denomination
///   (Samourai's pools; GraphSense and BlockSci both single this pattern out);
/// - **JoinMarket**: n ≥ 3 equal outputs and n or n−1 other (change) outputs, with at
///   least n inputs (BlockSci `isCoinjoin`/JoinMarket rule);
/// - **equal-output (Wasabi-like)**: the most frequent output value occurs k ≥ 3 times,
///   covers at least a third of the outputs, and there are at least k inputs (Wasabi 1.x
///   and 2.0 rounds; BlockSci's generic equal-value rule).
///
/// Returns the pattern's name, or `None`.
pub fn detect_coinjoin(idx: &Index, t: u32) -> Option<&'static str> {
    let outs = idx.outputs_of(t);
    let n_out = (outs.end - outs.start) as usize;
    let n_in = (idx.inputs_of(t).end - idx.inputs_of(t).start) as usize;
    if n_out < 3 || n_in < 2 {
        return None;
    }
    let mut values: Vec<u64> = outs.map(|o| idx.out_value.get(o as usize)).collect();
    if n_in == 5
        && n_out == 5
        && values.iter().all(|v| *v == values[0])
        && WHIRLPOOL_DENOMINATIONS.contains(&values[0])
    {
        return Some("whirlpool");
    }
    values.sort_unstable();
    let (mut best, mut run) = (1usize, 1usize);
    for w in values.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        best = best.max(run);
    }
    if best < 3 || n_in < best {
        return None;
    }
    let others = n_out - best;
    if others == best || others + 1 == best {
        return Some("joinmarket");
    }
    (best * 3 >= n_out).then_some("equal-output")
}

/// Whether a value is round: a multiple of 10^4 satoshi or more (0.0001 BTC).
fn is_round(v: u64) -> bool {
    v > 0 && v.is_multiple_of(10_000)
}

/// The change output of transaction `t` under change heuristic `h`, if exactly one
/// output qualifies. Coinbases and single-output transactions have none, and so has a
/// transaction that pays back to one of its input addresses (its change is that output).
pub fn change_output(idx: &Index, t: u32, h: Heuristic) -> Option<u64> {
    let outs = idx.outputs_of(t);
    if outs.end - outs.start < 2 || idx.is_coinbase(t) {
        return None;
    }
    let ins: Vec<u64> = idx.spent_outputs(t).collect();
    if ins.is_empty() {
        return None;
    }
    let in_addrs: Vec<u32> = ins.iter().filter_map(|&o| idx.out_address(o)).collect();
    // Change paid back to an input address is already known (and merging it is moot):
    // no other output may then be called change.
    if outs
        .clone()
        .any(|o| idx.out_address(o).is_some_and(|a| in_addrs.contains(&a)))
    {
        return None;
    }
    let candidates: Vec<u64> = outs
        .clone()
        .filter(|&o| idx.out_address(o).is_some())
        .collect();
    let fresh = |o: u64| {
        idx.out_address(o)
            .is_some_and(|a| idx.addr_first_tx.get(a as usize) == u64::from(t))
    };
    let pick = |pred: &dyn Fn(u64) -> bool| -> Option<u64> {
        let mut hit = candidates.iter().copied().filter(|&o| pred(o));
        let first = hit.next()?;
        hit.next().is_none().then_some(first)
    };
    match h {
        Heuristic::MultiInput => None,
        Heuristic::ChangeFresh => {
            let c = pick(&fresh)?;
            // The other outputs must be addresses seen before.
            outs.clone()
                .filter(|&o| o != c)
                .all(|o| !fresh(o))
                .then_some(c)
        }
        Heuristic::ChangeOneTime => {
            let c = pick(&|o| {
                fresh(o)
                    && idx
                        .addr_n_recv
                        .get(idx.out_address(o).expect("has address") as usize)
                        == 1
            })?;
            outs.clone()
                .filter(|&o| o != c)
                .all(|o| !fresh(o))
                .then_some(c)
        }
        Heuristic::ChangeType => {
            let t0 = idx.out_script_type(ins[0]);
            if !ins.iter().all(|&o| idx.out_script_type(o) == t0) {
                return None;
            }
            pick(&|o| idx.out_script_type(o) == t0)
        }
        Heuristic::ChangeOptimal => {
            let min_in = ins.iter().map(|&o| idx.out_value.get(o as usize)).min()?;
            pick(&|o| idx.out_value.get(o as usize) < min_in)
        }
        Heuristic::ChangeRound => {
            let c = pick(&|o| !is_round(idx.out_value.get(o as usize)))?;
            outs.clone()
                .filter(|&o| o != c)
                .all(|o| is_round(idx.out_value.get(o as usize)))
                .then_some(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in Heuristic::ALL {
            assert_eq!(Heuristic::from_name(h.name()), Some(h));
        }
        assert!(!Heuristic::MultiInput.is_change());
        assert!(is_round(1_000_000) && !is_round(1_234_567) && !is_round(0));
    }
}
