//! Single-use change: the only output paying an address that appears here for the first
//! time and never receives again is change, whatever the other outputs pay. Wallets take
//! change from an internal keychain and never hand those addresses out, so change is used
//! once; a payee's address is reused later often enough (about a quarter of receives on the
//! real Bitcoin Core world A) for the rule to fire. The one-time rule of Androulaki et al.
//! ([`super::change_one_time`]) also asks the other outputs to be old addresses, which
//! today's payees rarely are. Source: Androulaki et al., "Evaluating User Privacy in
//! Bitcoin", FC 2013 (one-time change); Bitcoin Core's `getrawchangeaddress` (BIP 44/84
//! internal chain, never reused).

use super::{TxView, only};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    only(tx, |o| o.first_seen && o.receives == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_address_used_once_is_change() {
        // Two new addresses; the payee's receives again later: the other is change.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 3), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), Some(1));
        // Both used once: no telling which.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, true, 1), (8, 19_000, true, 1)],
        );
        assert_eq!(change(&tx), None);
        // Used once but not new here (an old address): not change.
        let tx = TxView::literal(
            &[(1, 50_000)],
            &[(7, 30_000, false, 1), (8, 19_000, true, 2)],
        );
        assert_eq!(change(&tx), None);
    }
}
