//! Round-in-fiat payment: people price in their currency, so a payment of $4,500 is a round
//! amount in dollars at the day's exchange rate and an odd amount in satoshi; change is
//! what is left. When exactly one output is not round in fiat and every other is, the
//! unround one is change. Needs a daily price file (`cluster bitcoin --prices`); "round" is
//! two significant digits at the day's close, within one satoshi's worth. Source:
//! Möser & Narayanan, "Resurrecting Address Clustering in Bitcoin", FC 2022 (round values
//! in fiat); Meiklejohn et al., "A Fistful of Bitcoins", IMC 2013.

use super::{TxView, only};

/// Whether `sat` is a round fiat amount at `price` (micro-units of fiat per coin): at
/// least one unit of fiat, with two significant digits, within one satoshi's worth.
pub fn is_round_fiat(sat: u64, price: u128) -> bool {
    let micro = u128::from(sat) * price / 100_000_000;
    if micro < 1_000_000 {
        return false;
    }
    let mag = 10u128.pow(micro.ilog10() - 1);
    let r = micro % mag;
    let tol = price / 100_000_000 + 1;
    r <= tol || mag - r <= tol
}

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let price = tx.price?;
    let c = only(tx, |o| !is_round_fiat(o.value, price))?;
    tx.outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.address.is_some())
        .all(|(i, o)| i == c || is_round_fiat(o.value, price))
        .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_output_not_round_in_dollars_is_change() {
        // $30,000.00 per BTC (micro-dollars).
        let price = 30_000 * 1_000_000u128;
        // $4,500 is 0.15 BTC; $120 is 400,000 sat.
        assert!(is_round_fiat(15_000_000, price) && is_round_fiat(400_000, price));
        // One satoshi off still counts (a wallet converts and truncates).
        assert!(is_round_fiat(399_999, price));
        // $123.45 and anything under $1 do not.
        assert!(!is_round_fiat(411_500, price) && !is_round_fiat(3_000, price));
        let mut tx = TxView::literal(
            &[(1, 50_000_000)],
            &[(7, 15_000_000, true, 1), (8, 34_987_654, true, 1)],
        );
        assert_eq!(change(&tx), None, "without a price");
        tx.price = Some(price);
        assert_eq!(change(&tx), Some(1));
        // Both odd: none.
        tx.outputs[0].value = 15_123_457;
        assert_eq!(change(&tx), None);
    }
}
