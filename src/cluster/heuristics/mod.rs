//! Clustering heuristics: each a named, switchable rule that proposes merges for one
//! transaction, in a file of its own with its source and exact cases, acting on a
//! [`TxView`] (the transaction's inputs and outputs as the index knows them, or as a test
//! writes them). CoinJoin detection ([`coinjoin`]) is separate: it vetoes multi-input
//! merging and change detection on the transactions it recognises.

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

pub mod change_fresh;
pub mod change_one_time;
pub mod change_optimal;
pub mod change_round;
pub mod change_type;
pub mod coinjoin;
pub mod txview;

pub use coinjoin::WHIRLPOOL_DENOMINATIONS;
pub use txview::{Input, Output, TxView};

/// The CoinJoin pattern of transaction `t` of `idx` ([`coinjoin::detect`]), or `None`.
pub fn detect_coinjoin(idx: &Index, t: crate::types::TxIx) -> Option<&'static str> {
    coinjoin::detect(&TxView::of(idx, t))
}

/// The change output of `tx` under change heuristic `h` (its position among the
/// outputs), if exactly one output qualifies. Coinbases and single-output transactions
/// have none, and so has a transaction that pays back to one of its input addresses (its
/// change is that output, already known). Multi-input proposes no change.
pub fn change_output(tx: &TxView, h: Heuristic) -> Option<usize> {
    if tx.outputs.len() < 2 || tx.coinbase || tx.partial || tx.inputs.is_empty() {
        return None;
    }
    // Change paid back to an input address is already known (and merging it is moot):
    // no other output may then be called change.
    if tx
        .outputs
        .iter()
        .any(|o| o.address.is_some() && tx.inputs.iter().any(|i| i.address == o.address))
    {
        return None;
    }
    match h {
        Heuristic::MultiInput => None,
        Heuristic::ChangeFresh => change_fresh::change(tx),
        Heuristic::ChangeOneTime => change_one_time::change(tx),
        Heuristic::ChangeType => change_type::change(tx),
        Heuristic::ChangeOptimal => change_optimal::change(tx),
        Heuristic::ChangeRound => change_round::change(tx),
    }
}

/// The only new output for which `pred` holds, when every other output pays an address
/// seen before (the fresh-address rules' shared shape).
pub(crate) fn only_new(tx: &TxView, pred: impl Fn(&Output) -> bool) -> Option<usize> {
    let c = only(tx, |o| o.first_seen && pred(o))?;
    tx.outputs
        .iter()
        .enumerate()
        .all(|(i, o)| i == c || !o.first_seen)
        .then_some(c)
}

/// The only output with an address for which `pred` holds, if exactly one does.
pub(crate) fn only(tx: &TxView, pred: impl Fn(&Output) -> bool) -> Option<usize> {
    let mut hit = tx
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.address.is_some() && pred(o));
    let (first, _) = hit.next()?;
    hit.next().is_none().then_some(first)
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
    }
}
