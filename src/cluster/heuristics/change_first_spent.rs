//! First-spent change (forward-looking): a wallet spends its change in its next payment,
//! usually before the payee moves the coin it received. The output spent in a strictly
//! earlier block than every other output is change. Imprecise alone (0.71 on the real
//! Bitcoin Core world A): a vote of [`super::change_vote`] only. Source: Möser &
//! Narayanan, "Resurrecting Address Clustering in Bitcoin", FC 2022 (time to spend among
//! the change features).

use super::TxView;

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let mut best: Option<(u32, usize)> = None;
    let mut second = u32::MAX;
    for (i, o) in tx.outputs.iter().enumerate() {
        if o.address.is_none() {
            continue;
        }
        let h = o.spender.map_or(u32::MAX, |s| s.height);
        match best {
            Some((b, _)) if h >= b => second = second.min(h),
            _ => {
                if let Some((b, _)) = best {
                    second = second.min(b);
                }
                best = Some((h, i));
            }
        }
    }
    let (h, i) = best?;
    (h < second && h != u32::MAX).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::super::txview::Spender;
    use super::*;

    #[test]
    fn the_output_spent_first_is_change() {
        let mut tx = TxView::literal(
            &[(1, 50_000)],
            &[
                (7, 30_000, true, 1),
                (8, 19_000, true, 1),
                (9, 1_000, true, 1),
            ],
        );
        assert_eq!(change(&tx), None, "none spent");
        tx.outputs[1].spender = Some(Spender::new(2, 2, 15));
        assert_eq!(change(&tx), Some(1), "the only one spent");
        tx.outputs[0].spender = Some(Spender::new(1, 2, 12));
        assert_eq!(change(&tx), Some(0));
        tx.outputs[2].spender = Some(Spender::new(1, 2, 12));
        assert_eq!(change(&tx), None, "two spent in the same block");
    }
}
