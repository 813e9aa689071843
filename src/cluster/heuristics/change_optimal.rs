//! Optimal change: the only output smaller than every input is change (a wallet would not
//! have spent an input it did not need, so the payment is larger than each input but the
//! change is not). Source: Nick, "Data-Driven De-Anonymization in Bitcoin", ETH 2015;
//! BlockSci `ChangeType::OptimalChange`.

use super::{TxView, only};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let min_in = tx.inputs.iter().map(|i| i.value).min()?;
    only(tx, |o| o.value < min_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_output_below_every_input_is_change() {
        let tx = TxView::literal(
            &[(1, 40_000), (2, 30_000)],
            &[(7, 60_000, true, 1), (8, 9_000, true, 1)],
        );
        assert_eq!(change(&tx), Some(1));
        // Equal to the smallest input is not smaller.
        let tx = TxView::literal(
            &[(1, 40_000), (2, 30_000)],
            &[(7, 39_000, true, 1), (8, 30_000, true, 1)],
        );
        assert_eq!(change(&tx), None);
        // Two outputs below every input: ambiguous.
        let tx = TxView::literal(
            &[(1, 40_000), (2, 30_000)],
            &[(7, 20_000, true, 1), (8, 29_000, true, 1)],
        );
        assert_eq!(change(&tx), None);
    }
}
