//! One-time change: the only output address that appears here for the first time and never
//! receives again is change, when the other outputs pay addresses seen before. Source:
//! Androulaki et al., "Evaluating User Privacy in Bitcoin", FC 2013; as used by GraphSense.

use super::{TxView, only_new};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    only_new(tx, |o| o.receives == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_address_used_once_is_change() {
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, false, 5), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), Some(1));
        // The new address receives again later: not one-time.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, false, 5), (8, 19_000, true, 2)],
        );
        assert_eq!(change(&tx), None);
        // Another output is new too (even if it receives again): ambiguous.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 4), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), None);
    }
}
