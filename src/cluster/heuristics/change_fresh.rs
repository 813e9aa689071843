//! Fresh-address change: the only output address never seen before, when the other
//! outputs pay addresses seen before, is change. Source: Meiklejohn et al., "A Fistful of
//! Bitcoins", IMC 2013 (heuristic 2, "one-time change addresses", relaxed to first use);
//! BlockSci `ChangeType::AddressReuse`.

use super::{TxView, only_new};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    only_new(tx, |_| true)
}

#[cfg(test)]
mod tests {
    use super::super::{Heuristic, change_output};
    use super::*;

    #[test]
    fn the_one_new_address_is_change() {
        // Pays a known merchant (seen before) and a new address: the new one is change.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, false, 9), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), Some(1));
        assert_eq!(change_output(&tx, Heuristic::ChangeFresh), Some(1));
        // Two new addresses: no telling which.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 1), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), None);
        // No new address: none.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, false, 2), (8, 19_000, false, 3)],
        );
        assert_eq!(change(&tx), None);
        // Paying back to an input address: that is the change, and no other output is.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(1, 30_000, false, 2), (8, 19_000, true, 1)],
        );
        assert_eq!(change_output(&tx, Heuristic::ChangeFresh), None);
    }
}
