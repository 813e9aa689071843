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
    /// Single use: the only output paying a new address that is never paid again is
    /// change ([`change_single_use`]).
    ChangeSingleUse,
    /// Decimal precision: the only output with at most one trailing zero in satoshi, when
    /// the others have three or more, is change ([`change_decimals`]).
    ChangeDecimals,
    /// Spent alone (forward-looking): the only output later spent as a transaction's
    /// single input ([`change_spent_alone`]).
    ChangeSpentAlone,
    /// Peel-chain continuation (forward-looking): the only output spent by a transaction
    /// of the same shape ([`change_peel`]).
    ChangePeel,
    /// First spent (forward-looking): the output spent strictly first
    /// ([`change_first_spent`]).
    ChangeFirstSpent,
    /// Foreign cluster (cluster-aware, second pass): the only output not already in
    /// another entity's cluster ([`change_foreign`]).
    ChangeForeign,
    /// Batch continuation (forward-looking): in a batch, the only output spent by another
    /// batch ([`change_batch`]).
    ChangeBatch,
    /// Same fingerprint (forward-looking): the only output spent by a transaction with
    /// this one's wallet fingerprint ([`change_fingerprint`]).
    ChangeFingerprint,
    /// Swept payee (forward-looking): the only output not swept into a consolidation of
    /// many inputs when every other is ([`change_sweep`]).
    ChangeSweep,
    /// Round in fiat: the only output not a round fiat amount at the day's price, when the
    /// others are, is change ([`change_round_fiat`]; needs prices).
    ChangeRoundFiat,
    /// Consensus of the rules above ([`change_vote`]): the precise rules decide, else a
    /// clear majority of the forward-looking and cluster-aware votes.
    ChangeVote,
}

impl Heuristic {
    /// Every heuristic.
    pub const ALL: [Heuristic; 17] = [
        Heuristic::MultiInput,
        Heuristic::ChangeOneTime,
        Heuristic::ChangeType,
        Heuristic::ChangeOptimal,
        Heuristic::ChangeRound,
        Heuristic::ChangeFresh,
        Heuristic::ChangeSingleUse,
        Heuristic::ChangeDecimals,
        Heuristic::ChangeSpentAlone,
        Heuristic::ChangePeel,
        Heuristic::ChangeFirstSpent,
        Heuristic::ChangeForeign,
        Heuristic::ChangeBatch,
        Heuristic::ChangeFingerprint,
        Heuristic::ChangeSweep,
        Heuristic::ChangeRoundFiat,
        Heuristic::ChangeVote,
    ];

    /// The default set, chosen by measurement (docs/CLUSTERING.md): the largest pairwise
    /// recall at pairwise precision ≥ 0.97 on the real Bitcoin Core world A and on the
    /// simulator's default and adversarial presets.
    pub const DEFAULT: [Heuristic; 2] = [Heuristic::MultiInput, Heuristic::ChangeVote];

    /// Whether the rule reads the first pass's clusters (it runs in a second pass, after
    /// multi-input and the other rules of the set).
    pub fn needs_clusters(self) -> bool {
        matches!(self, Heuristic::ChangeForeign | Heuristic::ChangeVote)
    }

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
            Heuristic::ChangeSingleUse => {
                "Single use: the only output paying a new address that is never paid again is change (wallets never reuse change addresses). Source: Androulaki et al., FC 2013; Bitcoin Core's internal keychain."
            }
            Heuristic::ChangeDecimals => {
                "Decimal precision: the only output ending in at most one zero in satoshi, when every other ends in three or more, is change. Source: Möser & Narayanan, FC 2022."
            }
            Heuristic::ChangeSpentAlone => {
                "Spent alone (forward-looking): the only output later spent as the single input of a transaction is change. Source: Möser & Narayanan, FC 2022; Kappos et al., USENIX Security 2022."
            }
            Heuristic::ChangePeel => {
                "Peel-chain continuation (forward-looking): the only output spent by a one-input transaction with as many outputs is change. Source: Kappos et al., \"How to Peel a Million\", USENIX Security 2022."
            }
            Heuristic::ChangeFirstSpent => {
                "First spent (forward-looking): the output spent strictly before every other is change. Source: Möser & Narayanan, FC 2022."
            }
            Heuristic::ChangeForeign => {
                "Foreign cluster (second pass): when every output but one already belongs to another entity's cluster, the remaining one is change. Source: Möser & Narayanan, FC 2022."
            }
            Heuristic::ChangeBatch => {
                "Batch continuation (forward-looking): in a transaction of three or more outputs, the only output spent by another such transaction is change (a service funds its next batch with this one's change). Source: Möser & Narayanan, FC 2022."
            }
            Heuristic::ChangeFingerprint => {
                "Same fingerprint (forward-looking): the only output spent by a transaction with this transaction's wallet fingerprint (version, lock-time and sequence habits), when another is spent by a different one, is change. Source: Möser & Narayanan, FC 2022."
            }
            Heuristic::ChangeSweep => {
                "Swept payee (forward-looking): when every other output is spent by a transaction of ten or more inputs (a service sweeping its deposit or invoice addresses) and this one is not, it is change. Not a vote of the consensus (docs/CLUSTERING.md). Source: Möser & Narayanan, FC 2022; Kappos et al., USENIX Security 2022."
            }
            Heuristic::ChangeRoundFiat => {
                "Round in fiat: when exactly one output is not a round amount in the price file's currency at its day's close (two significant digits), it is change. Needs --prices. Source: Möser & Narayanan, FC 2022; Meiklejohn et al. 2013."
            }
            Heuristic::ChangeVote => {
                "Consensus: among new addresses used once, the precise rules (single use, round, decimals) decide when they agree; otherwise spent-alone, peel, first-spent, foreign-cluster, batch, same-type, same-fingerprint and optimal-change vote, and an output needs two votes and a lead of two over every other. Sources: Möser & Narayanan, FC 2022; Kappos et al. 2022; GraphSense's change consensus."
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
            Heuristic::ChangeSingleUse => "change-single-use",
            Heuristic::ChangeDecimals => "change-decimals",
            Heuristic::ChangeSpentAlone => "change-spent-alone",
            Heuristic::ChangePeel => "change-peel",
            Heuristic::ChangeFirstSpent => "change-first-spent",
            Heuristic::ChangeForeign => "change-foreign",
            Heuristic::ChangeBatch => "change-batch",
            Heuristic::ChangeFingerprint => "change-fingerprint",
            Heuristic::ChangeSweep => "change-sweep",
            Heuristic::ChangeRoundFiat => "change-round-fiat",
            Heuristic::ChangeVote => "change-vote",
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

pub mod change_batch;
pub mod change_decimals;
pub mod change_fingerprint;
pub mod change_first_spent;
pub mod change_foreign;
pub mod change_fresh;
pub mod change_one_time;
pub mod change_optimal;
pub mod change_peel;
pub mod change_round;
pub mod change_round_fiat;
pub mod change_single_use;
pub mod change_spent_alone;
pub mod change_sweep;
pub mod change_type;
pub mod change_vote;
pub mod coinjoin;
pub mod txview;

pub use coinjoin::WHIRLPOOL_DENOMINATIONS;
pub use txview::{Input, Output, Spender, TxView};

/// The CoinJoin pattern of transaction `t` of `idx` ([`coinjoin::detect`]), or `None`.
pub fn detect_coinjoin(idx: &Index, t: crate::types::TxIx) -> Option<&'static str> {
    coinjoin::detect(&TxView::of(idx, t))
}

/// The change output of `tx` under change heuristic `h` (its position among the
/// outputs), if exactly one output qualifies. Coinbases and single-output transactions
/// have none, and so has a transaction that pays back to one of its input addresses (its
/// change is that output, already known). Multi-input proposes no change.
pub fn change_output(tx: &TxView, h: Heuristic) -> Option<usize> {
    if !judgeable(tx) {
        return None;
    }
    apply(tx, h)
}

/// Rule `h` on `tx`, without [`change_output`]'s preconditions (the consensus checks them
/// once for all its rules).
pub(crate) fn apply(tx: &TxView, h: Heuristic) -> Option<usize> {
    match h {
        Heuristic::MultiInput => None,
        Heuristic::ChangeFresh => change_fresh::change(tx),
        Heuristic::ChangeOneTime => change_one_time::change(tx),
        Heuristic::ChangeType => change_type::change(tx),
        Heuristic::ChangeOptimal => change_optimal::change(tx),
        Heuristic::ChangeRound => change_round::change(tx),
        Heuristic::ChangeSingleUse => change_single_use::change(tx),
        Heuristic::ChangeDecimals => change_decimals::change(tx),
        Heuristic::ChangeSpentAlone => change_spent_alone::change(tx),
        Heuristic::ChangePeel => change_peel::change(tx),
        Heuristic::ChangeFirstSpent => change_first_spent::change(tx),
        Heuristic::ChangeForeign => change_foreign::change(tx),
        Heuristic::ChangeBatch => change_batch::change(tx),
        Heuristic::ChangeFingerprint => change_fingerprint::change(tx),
        Heuristic::ChangeSweep => change_sweep::change(tx),
        Heuristic::ChangeRoundFiat => change_round_fiat::change(tx),
        Heuristic::ChangeVote => change_vote::change(tx),
    }
}

/// [`change_output`] with the rules behind the decision: `h` itself, or for
/// [`Heuristic::ChangeVote`] the rules whose agreement or votes named the output.
pub fn change_output_why(tx: &TxView, h: Heuristic) -> Option<(usize, Vec<Heuristic>)> {
    if h == Heuristic::ChangeVote {
        return judgeable(tx).then(|| change_vote::decide(tx)).flatten();
    }
    change_output(tx, h).map(|c| (c, vec![h]))
}

/// Whether any change rule may judge `tx`: not a coinbase, every input known, two outputs
/// or more, and no output paying back to an input address (its change is then known, and
/// merging it is moot: no other output may be called change).
fn judgeable(tx: &TxView) -> bool {
    tx.outputs.len() >= 2
        && !tx.coinbase
        && !tx.partial
        && !tx.inputs.is_empty()
        && !tx
            .outputs
            .iter()
            .any(|o| o.address.is_some() && tx.inputs.iter().any(|i| i.address == o.address))
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
