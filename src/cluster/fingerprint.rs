//! Wallet fingerprints of transactions: what a wallet's software writes the same way every
//! time — the transaction version, the nLockTime habit (0, or the chain tip as Bitcoin
//! Core's and Electrum's anti-fee-sniping set it), and the nSequence habit (final, or
//! signalling replace-by-fee, BIP 125). The change of a transaction is spent later by the
//! same wallet, so by a transaction with the same fingerprint; a payee's wallet may differ.
//! Source: Möser & Narayanan, "Resurrecting Address Clustering in Bitcoin", FC 2022 (wallet
//! fingerprints); Erhardt & Shigeya, "An Empirical Analysis of the Bitcoin Wallet
//! Ecosystem" (Bitcoin Optech, 2019).

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type};

use crate::index::{Index, IndexError, scan_table};
use crate::types::{InIx, ix};

/// A fingerprint: `version class | lock-time class << 2 | sequence class << 4`, with
/// version 1 → 0, 2 → 1, other → 2; lock time 0 → 0, within 100 blocks below the
/// transaction's height → 1 (anti-fee-sniping), other → 2; sequences all final
/// (0xffffffff) → 0, any below 0xfffffffe (BIP 125 replace-by-fee) → 1, other → 2.
pub type Fingerprint = u8;

/// The fingerprint of a transaction of `version` and `locktime` mined at `height`, whose
/// inputs' sequences are `sequences`.
pub fn of(
    version: i32,
    locktime: u32,
    height: u32,
    sequences: impl Iterator<Item = u32>,
) -> Fingerprint {
    let (mut all_final, mut rbf) = (true, false);
    for s in sequences {
        all_final &= s == u32::MAX;
        rbf |= s < u32::MAX - 1;
    }
    of_parts(version, locktime, height, all_final, rbf)
}

/// [`of`] from what the sequences say: whether all are final, whether one signals RBF.
fn of_parts(version: i32, locktime: u32, height: u32, all_final: bool, rbf: bool) -> Fingerprint {
    let v = match version {
        1 => 0,
        2 => 1,
        _ => 2,
    };
    let l = if locktime == 0 {
        0
    } else if locktime <= height && height - locktime <= 100 {
        1
    } else {
        2
    };
    let s = if all_final {
        0
    } else if rbf {
        1
    } else {
        2
    };
    v | l << 2 | s << 4
}

/// The fingerprint of every transaction of `idx` (by transaction id), read from the
/// dataset's `transactions` (version, lock_time) and `inputs` (sequence) tables in
/// `chain_dir`, in the index's order.
///
/// # Errors
/// Unreadable tables, or tables that do not match the index.
pub fn read(idx: &Index, chain_dir: &Path) -> Result<Vec<Fingerprint>, IndexError> {
    let inconsistent = |what: String| IndexError::Inconsistent {
        dir: chain_dir.to_path_buf(),
        what,
    };
    // One byte a transaction, the only memory held: first what its inputs' sequences say
    // (bit 0: one is not final; bit 1: one signals RBF), then its fingerprint.
    let n = ix(idx.txs());
    let mut fp: Vec<Fingerprint> = vec![0; n];
    let mut k = 0u64;
    scan_table(chain_dir, "inputs", &["sequence"], |b| {
        let s = b
            .column_by_name("sequence")
            .expect("checked against the table registry")
            .as_primitive::<UInt32Type>();
        for &seq in s.values() {
            if k >= idx.meta.inputs {
                return Err(inconsistent(format!(
                    "more inputs in the table than the index's {}",
                    idx.meta.inputs
                )));
            }
            let t = idx.in_tx(InIx(k)).ix();
            k += 1;
            fp[t] |= u8::from(seq != u32::MAX) | u8::from(seq < u32::MAX - 1) << 1;
        }
        Ok(())
    })?;
    let mut t = 0usize;
    scan_table(
        chain_dir,
        "transactions",
        &["height", "version", "locktime"],
        |b| {
            let h = b
                .column_by_name("height")
                .expect("checked against the table registry")
                .as_primitive::<UInt32Type>();
            let v = b
                .column_by_name("version")
                .expect("checked against the table registry")
                .as_primitive::<Int32Type>();
            let l = b
                .column_by_name("locktime")
                .expect("checked against the table registry")
                .as_primitive::<UInt32Type>();
            for i in 0..b.num_rows() {
                let Some(x) = fp.get_mut(t) else {
                    return Err(inconsistent(format!(
                        "more transactions in the table than the index's {n}"
                    )));
                };
                *x = of_parts(v.value(i), l.value(i), h.value(i), *x & 1 == 0, *x & 2 != 0);
                t += 1;
            }
            Ok(())
        },
    )?;
    if t != n || k != idx.meta.inputs {
        return Err(inconsistent(format!(
            "{t} transactions and {k} inputs in the tables, {n} and {} in the index",
            idx.meta.inputs
        )));
    }
    Ok(fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn habits_make_the_fingerprint() {
        // Bitcoin Core: version 2, lock time at the tip, replace-by-fee signalled.
        let core = of(2, 799_999, 800_000, [0xffff_fffd].into_iter());
        assert_eq!(core, 1 | 1 << 2 | 1 << 4);
        // Core's 10 % of older lock times still count as anti-fee-sniping.
        assert_eq!(of(2, 799_950, 800_000, [0xffff_fffd].into_iter()), core);
        // An old mobile wallet: version 1, lock time 0, final sequences.
        assert_eq!(of(1, 0, 800_000, [u32::MAX, u32::MAX].into_iter()), 0);
        // A lock time far from the height, and 0xfffffffe sequences (no RBF).
        assert_eq!(
            of(2, 500_000, 800_000, [0xffff_fffe].into_iter()),
            1 | 2 << 2 | 2 << 4
        );
    }
}
