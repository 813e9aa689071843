//! Spent-alone change (forward-looking): a wallet's next payment usually spends its last
//! change and nothing else, while a payee's coin waits to be swept or consolidated with
//! others. The only output later spent as the single input of a transaction is change.
//! Imprecise alone (0.93 on the real Bitcoin Core world A): a vote of
//! [`super::change_vote`]. Source: Möser & Narayanan, "Resurrecting Address Clustering in
//! Bitcoin", FC 2022 (features of the spending transaction); Kappos et al., "How to Peel a
//! Million", USENIX Security 2022.

use super::{TxView, only};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    only(tx, |o| o.spender.is_some_and(|s| s.inputs == 1))
}

#[cfg(test)]
mod tests {
    use super::super::txview::Spender;
    use super::*;

    #[test]
    fn the_one_output_spent_alone_is_change() {
        let mut tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 1), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), None, "nothing spent yet");
        tx.outputs[1].spender = Some(Spender::new(1, 2, 5));
        tx.outputs[0].spender = Some(Spender::new(12, 1, 9));
        assert_eq!(change(&tx), Some(1));
        tx.outputs[0].spender = Some(Spender::new(1, 2, 9));
        assert_eq!(change(&tx), None, "both spent alone");
    }
}
