//! Same-fingerprint change (forward-looking): a wallet spends its change later with the
//! same software, so with the same transaction fingerprint ([`crate::cluster::fingerprint`]:
//! version, lock-time and sequence habits); a payee's wallet may write its transactions
//! differently. The only output spent by a transaction with this transaction's fingerprint,
//! when another output is spent by one with a different fingerprint, is change. Needs the
//! dataset's fingerprints; silent where every wallet writes alike (the real Bitcoin Core
//! world A). A vote of [`super::change_vote`]. Source: Möser & Narayanan, "Resurrecting
//! Address Clustering in Bitcoin", FC 2022 (wallet fingerprints of the spending
//! transaction).

use super::TxView;

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let fp = tx.fingerprint?;
    let (mut same, mut other) = (None, false);
    for (i, o) in tx.outputs.iter().enumerate() {
        if o.address.is_none() {
            continue;
        }
        match o.spender.and_then(|s| s.fingerprint) {
            Some(f) if f == fp => {
                if same.is_some() {
                    return None;
                }
                same = Some(i);
            }
            Some(_) => other = true,
            None => {}
        }
    }
    same.filter(|_| other)
}

#[cfg(test)]
mod tests {
    use super::super::txview::Spender;
    use super::*;

    #[test]
    fn the_output_spent_by_the_same_software_is_change() {
        let mut tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 1), (8, 19_000, true, 1)],
        );
        tx.fingerprint = Some(21);
        let spent = |fp: u8| {
            let mut s = Spender::new(1, 2, 5);
            s.fingerprint = Some(fp);
            Some(s)
        };
        tx.outputs[0].spender = spent(0);
        tx.outputs[1].spender = spent(21);
        assert_eq!(super::change(&tx), Some(1));
        // Both spent by the same software: none.
        tx.outputs[0].spender = spent(21);
        assert_eq!(super::change(&tx), None);
        // The other output unspent: nothing tells them apart.
        tx.outputs[0].spender = None;
        assert_eq!(super::change(&tx), None);
        // Without fingerprints: none.
        tx.outputs[0].spender = spent(0);
        tx.fingerprint = None;
        assert_eq!(super::change(&tx), None);
    }
}
