//! Swept-payee change (forward-looking): services sweep the coins their customers pay them.
//! An exchange collects its deposit addresses, a merchant's payment processor its invoice
//! addresses, in consolidations of many inputs, while the payer spends its change in an
//! ordinary payment of a few inputs. When every other output is spent by a transaction of
//! at least [`SWEEP`] inputs and this one is not (spent by fewer, or unspent), it is
//! change. Imprecise alone (merge precision 0.87 on the real Bitcoin Core world A, 0.78
//! and 0.89 on the simulator's presets) and not a vote of [`super::change_vote`]: as a
//! vote it added recall on the 50,000-transaction calibration worlds (default preset
//! 0.0298 → 0.0329) but took the default set's pairwise precision to 0.968 on the
//! 1 M-transaction default preset, below the 0.97 every world must keep
//! (docs/CLUSTERING.md). Source: Möser & Narayanan,
//! "Resurrecting Address Clustering in Bitcoin", FC 2022 (the spending transaction's
//! number of inputs among the change features); deposit sweeping by exchanges, Kappos et
//! al., "How to Peel a Million", USENIX Security 2022.

use super::{Output, TxView, only};

/// Inputs of a transaction that consolidates (sweeps) coins.
pub const SWEEP: u32 = 10;

fn swept(o: &Output) -> bool {
    o.spender.is_some_and(|s| s.inputs >= SWEEP)
}

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let c = only(tx, |o| !swept(o))?;
    tx.outputs
        .iter()
        .enumerate()
        .any(|(i, o)| i != c && o.address.is_some())
        .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::super::txview::Spender;
    use super::*;

    fn payment() -> TxView {
        TxView::literal(
            &[(1, 50_000_000)],
            &[(7, 30_000_000, true, 1), (8, 19_990_000, true, 1)],
        )
    }

    #[test]
    fn the_output_not_swept_is_change() {
        let mut tx = payment();
        // The payee's coin is swept with 40 others; the change is spent in a payment.
        tx.outputs[0].spender = Some(Spender::new(41, 1, 20));
        tx.outputs[1].spender = Some(Spender::new(2, 2, 12));
        assert_eq!(change(&tx), Some(1));
        // Unspent change: still the only output not swept.
        tx.outputs[1].spender = None;
        assert_eq!(change(&tx), Some(1));
    }

    #[test]
    fn silent_unless_every_other_output_is_swept() {
        let mut tx = payment();
        // Nothing swept.
        tx.outputs[0].spender = Some(Spender::new(3, 2, 20));
        assert_eq!(change(&tx), None);
        // Both swept: no output stands apart.
        tx.outputs[0].spender = Some(Spender::new(SWEEP, 1, 20));
        tx.outputs[1].spender = Some(Spender::new(SWEEP + 5, 1, 21));
        assert_eq!(change(&tx), None);
        // Three outputs, one payee swept, one not: two candidates, none named.
        let mut tx = TxView::literal(
            &[(1, 90_000_000)],
            &[
                (7, 30_000_000, true, 1),
                (8, 20_000_000, true, 1),
                (9, 39_990_000, true, 1),
            ],
        );
        tx.outputs[0].spender = Some(Spender::new(50, 1, 20));
        assert_eq!(change(&tx), None);
        tx.outputs[1].spender = Some(Spender::new(12, 1, 20));
        assert_eq!(change(&tx), Some(2));
        // Just under the sweep size: an ordinary spend.
        tx.outputs[1].spender = Some(Spender::new(SWEEP - 1, 1, 20));
        assert_eq!(change(&tx), None);
    }
}
