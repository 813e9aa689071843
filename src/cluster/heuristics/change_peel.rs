//! Peel-chain continuation (forward-looking): in a peel chain each hop spends the previous
//! hop's change alone and again pays one or a few outputs plus change, so the only output
//! spent by a transaction of the same shape (one input, as many outputs) continues the
//! chain and is change. Imprecise alone (0.93 on the real Bitcoin Core world A): a vote of
//! [`super::change_vote`]. Source: Kappos et al., "How to Peel a Million: Validating and
//! Expanding Bitcoin Clusters", USENIX Security 2022.

use super::{TxView, only};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let n = u32::try_from(tx.outputs.len()).ok()?;
    only(tx, |o| {
        o.spender.is_some_and(|s| s.inputs == 1 && s.outputs == n)
    })
}

#[cfg(test)]
mod tests {
    use super::super::txview::Spender;
    use super::*;

    #[test]
    fn the_hop_that_continues_the_chain_is_change() {
        let mut tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 1), (8, 19_000, true, 1)],
        );
        tx.outputs[0].spender = Some(Spender::new(1, 3, 4));
        tx.outputs[1].spender = Some(Spender::new(1, 2, 5));
        assert_eq!(change(&tx), Some(1));
        // The other also continues a 2-output chain: none.
        tx.outputs[0].spender = Some(Spender::new(1, 2, 4));
        assert_eq!(change(&tx), None);
    }
}
