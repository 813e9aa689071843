//! Round-payment change: when exactly one output is not a round amount and every other is,
//! the non-round one is change (people pay round sums; change is what is left). Source:
//! Meiklejohn et al. 2013 follow-ups; BlockSci `ChangeType::RoundValue`.

use super::{TxView, only};

/// Whether `sat` is round: a positive multiple of 10^4 satoshi (0.0001 BTC).
pub fn is_round(sat: u64) -> bool {
    sat > 0 && sat.is_multiple_of(10_000)
}

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let c = only(tx, |o| !is_round(o.value))?;
    tx.outputs
        .iter()
        .enumerate()
        .all(|(i, o)| i == c || is_round(o.value))
        .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_unround_output_is_change() {
        assert!(is_round(1_000_000) && is_round(10_000) && !is_round(1_234_567) && !is_round(0));
        let tx = TxView::literal(
            &[(1, 2_000_000)],
            &[(7, 1_000_000, true, 1), (8, 987_654, true, 1)],
        );
        assert_eq!(change(&tx), Some(1));
        // Both round: none; both unround: none.
        let tx = TxView::literal(
            &[(1, 2_000_000)],
            &[(7, 1_000_000, true, 1), (8, 990_000, true, 1)],
        );
        assert_eq!(change(&tx), None);
        let tx = TxView::literal(
            &[(1, 2_000_000)],
            &[(7, 1_000_001, true, 1), (8, 987_654, true, 1)],
        );
        assert_eq!(change(&tx), None);
    }
}
