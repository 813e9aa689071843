//! Decimal-precision change: people and services pay amounts with few significant digits
//! (a payment of 0.04565 BTC ends in three zeros in satoshi), while change is what is left
//! and carries all eight decimals. The only output ending in at most one zero, when every
//! other ends in at least three, is change. A finer form of the round-payment rule
//! ([`super::change_round`], which asks for four zeros). Source: Möser & Narayanan,
//! "Resurrecting Address Clustering in Bitcoin", FC 2022 (value precision among the
//! change features); Meiklejohn et al. 2013.

use super::{TxView, only};

/// Trailing decimal zeros of `sat` (0 has none).
pub fn trailing_zeros(mut sat: u64) -> u32 {
    let mut n = 0;
    while sat != 0 && sat.is_multiple_of(10) {
        sat /= 10;
        n += 1;
    }
    n
}

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let c = only(tx, |o| trailing_zeros(o.value) <= 1)?;
    tx.outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.address.is_some())
        .all(|(i, o)| i == c || trailing_zeros(o.value) >= 3)
        .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_precise_output_is_change() {
        assert_eq!(trailing_zeros(4_565_000), 3);
        assert_eq!(trailing_zeros(0), 0);
        assert_eq!(trailing_zeros(120), 1);
        let tx = TxView::literal(
            &[(1, 40_000_000)],
            &[(7, 4_565_000, true, 1), (8, 35_431_772, true, 1)],
        );
        assert_eq!(change(&tx), Some(1));
        // A payment with two zeros is not clearly rounded: none.
        let tx = TxView::literal(
            &[(1, 40_000_000)],
            &[(7, 4_565_300, true, 1), (8, 35_431_772, true, 1)],
        );
        assert_eq!(change(&tx), None);
        // Both precise: none.
        let tx = TxView::literal(
            &[(1, 40_000_000)],
            &[(7, 4_565_301, true, 1), (8, 35_431_772, true, 1)],
        );
        assert_eq!(change(&tx), None);
    }
}
