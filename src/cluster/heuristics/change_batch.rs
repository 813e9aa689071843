//! Batch continuation (forward-looking): a service paying many people at once (an
//! exchange's withdrawal batch, a pool's payout) funds its next batch with this batch's
//! change. In a transaction of three or more outputs, the only output later spent by
//! another transaction of three or more outputs is change. Imprecise alone (0.86 on the
//! simulator's default preset, 0.94 on the real Bitcoin Core world A): a vote of
//! [`super::change_vote`]. Source: Möser & Narayanan, "Resurrecting Address Clustering in
//! Bitcoin", FC 2022 (features of the spending transaction); exchanges' batching, Kappos
//! et al., USENIX Security 2022.

use super::{TxView, only};

/// Outputs that make a batch.
const BATCH: u32 = 3;

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    if tx.outputs.iter().filter(|o| o.address.is_some()).count() < BATCH as usize {
        return None;
    }
    only(tx, |o| o.spender.is_some_and(|s| s.outputs >= BATCH))
}

#[cfg(test)]
mod tests {
    use super::super::txview::Spender;
    use super::*;

    #[test]
    fn the_output_funding_the_next_batch_is_change() {
        let mut tx = TxView::literal(
            &[(1, 90_000_000)],
            &[
                (7, 1_000_000, true, 1),
                (8, 2_000_000, true, 1),
                (9, 86_000_000, true, 1),
            ],
        );
        tx.outputs[0].spender = Some(Spender::new(1, 2, 5));
        tx.outputs[2].spender = Some(Spender::new(2, 12, 3));
        assert_eq!(change(&tx), Some(2));
        // Two outputs funding batches: none.
        tx.outputs[1].spender = Some(Spender::new(1, 4, 9));
        assert_eq!(change(&tx), None);
        // Not a batch itself (two outputs): none.
        let mut tx = TxView::literal(
            &[(1, 90_000_000)],
            &[(7, 1_000_000, true, 1), (9, 88_000_000, true, 1)],
        );
        tx.outputs[1].spender = Some(Spender::new(2, 12, 3));
        assert_eq!(change(&tx), None);
    }
}
