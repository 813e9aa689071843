//! Foreign-cluster change (cluster-aware): after the precise rules have run (multi-input
//! and the precise change rules of the set), an output whose address already sits in
//! another multi-address cluster than the sender's belongs to someone else; when every
//! output but one is such a foreign output, the remaining one is change. Imprecise alone
//! (0.90 on the real Bitcoin Core world A): a vote of [`super::change_vote`]. Source:
//! Möser & Narayanan, "Resurrecting Address Clustering in Bitcoin", FC 2022 (iterating
//! change detection over clusters); Kappos et al., USENIX Security 2022.

use super::TxView;

/// The change output's position, if the rule names one. Needs the first pass's clusters
/// ([`TxView::sender_cluster`], [`super::Output::cluster`]); without them it names none.
pub fn change(tx: &TxView) -> Option<usize> {
    let sender = tx.sender_cluster?;
    let mut rest = None;
    let mut foreign = 0;
    for (i, o) in tx.outputs.iter().enumerate() {
        if o.address.is_none() {
            continue;
        }
        match o.cluster {
            Some((root, size)) if root != sender && size >= 2 => foreign += 1,
            None => return None,
            _ if rest.is_some() => return None,
            _ => rest = Some(i),
        }
    }
    rest.filter(|_| foreign > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_output_outside_other_clusters_is_change() {
        let mut tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 1), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), None, "without clusters");
        tx.sender_cluster = Some(1);
        tx.outputs[0].cluster = Some((40, 12));
        tx.outputs[1].cluster = Some((8, 1));
        assert_eq!(change(&tx), Some(1));
        // A singleton "foreign" cluster says nothing: none.
        tx.outputs[0].cluster = Some((7, 1));
        assert_eq!(change(&tx), None);
        // Both in other clusters: none.
        tx.outputs[0].cluster = Some((40, 12));
        tx.outputs[1].cluster = Some((41, 3));
        assert_eq!(change(&tx), None);
        // One already in the sender's cluster, the other foreign: that one.
        tx.outputs[1].cluster = Some((1, 30));
        assert_eq!(change(&tx), Some(1));
    }
}
