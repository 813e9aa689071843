//! CoinJoin detection: transactions whose equal outputs make the common-input and change
//! heuristics false (many owners' inputs, no single change).
//!
//! - **Whirlpool**: 5 inputs and 5 outputs, every output one pool denomination (Samourai's
//!   pools; GraphSense and BlockSci both single this pattern out);
//! - **JoinMarket**: n ≥ 3 equal outputs and n or n−1 other (change) outputs, with at least
//!   n inputs (BlockSci `isCoinjoin`/JoinMarket rule);
//! - **equal-output (Wasabi-like)**: the most frequent output value occurs k ≥ 3 times,
//!   covers at least a third of the outputs, and there are at least k inputs (Wasabi 1.x and
//!   2.0 rounds; BlockSci's generic equal-value rule).

use super::TxView;

/// Whirlpool pool denominations (satoshi).
pub const WHIRLPOOL_DENOMINATIONS: [u64; 4] = [100_000, 1_000_000, 5_000_000, 50_000_000];

/// The CoinJoin pattern of `tx` (`whirlpool`, `joinmarket`, `equal-output`), or `None`.
pub fn detect(tx: &TxView) -> Option<&'static str> {
    let (n_in, n_out) = (tx.inputs.len(), tx.outputs.len());
    if n_out < 3 || n_in < 2 {
        return None;
    }
    let mut values: Vec<u64> = tx.outputs.iter().map(|o| o.value).collect();
    if n_in == 5
        && n_out == 5
        && values.iter().all(|v| *v == values[0])
        && WHIRLPOOL_DENOMINATIONS.contains(&values[0])
    {
        return Some("whirlpool");
    }
    values.sort_unstable();
    let (mut best, mut run) = (1usize, 1usize);
    for w in values.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        best = best.max(run);
    }
    if best < 3 || n_in < best {
        return None;
    }
    let others = n_out - best;
    if others == best || others + 1 == best {
        return Some("joinmarket");
    }
    (best * 3 >= n_out).then_some("equal-output")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n_in` inputs of 10 BTC, outputs of these values, every address new.
    fn tx(n_in: u32, outs: &[u64]) -> TxView {
        let ins: Vec<(u32, u64)> = (0..n_in).map(|i| (i, 1_000_000_000)).collect();
        let outs: Vec<(u32, u64, bool, u64)> = outs
            .iter()
            .enumerate()
            .map(|(i, &v)| (100 + crate::types::n32(i), v, true, 1))
            .collect();
        TxView::literal(&ins, &outs)
    }

    #[test]
    fn whirlpool_is_five_by_five_of_one_pool_denomination() {
        assert_eq!(detect(&tx(5, &[1_000_000; 5])), Some("whirlpool"));
        // Not a pool denomination: still five equal outputs from five inputs.
        assert_eq!(detect(&tx(5, &[1_000_001; 5])), Some("equal-output"));
        // Four inputs cannot fund five equal outputs in this rule.
        assert_eq!(detect(&tx(4, &[1_000_000; 5])), None);
    }

    #[test]
    fn joinmarket_is_n_equal_outputs_and_n_or_n_minus_one_changes() {
        let (e, c) = (20_000_000, [1_234_567, 2_345_678, 3_456_789]);
        assert_eq!(
            detect(&tx(3, &[e, e, e, c[0], c[1], c[2]])),
            Some("joinmarket")
        );
        assert_eq!(detect(&tx(3, &[e, e, e, c[0], c[1]])), Some("joinmarket"));
        // Fewer inputs than equal outputs: not one.
        assert_eq!(detect(&tx(2, &[e, e, e, c[0], c[1], c[2]])), None);
    }

    #[test]
    fn equal_output_needs_three_equal_outputs_covering_a_third() {
        let e = 5_000_000;
        let mut outs = vec![e; 4];
        outs.extend((1..=6).map(|i| 1_000_000 + i)); // 4 of 10 outputs equal
        assert_eq!(detect(&tx(4, &outs)), Some("equal-output"));
        assert_eq!(
            detect(&tx(3, &outs)),
            None,
            "fewer inputs than equal outputs"
        );
        let mut outs = vec![e; 3];
        outs.extend((1..=7).map(|i| 1_000_000 + i)); // 3 of 10: under a third
        assert_eq!(detect(&tx(5, &outs)), None);
        // A payment with change is no CoinJoin.
        assert_eq!(detect(&tx(2, &[e, 123_456])), None);
        // Two equal outputs are not enough.
        assert_eq!(detect(&tx(3, &[e, e, 7])), None);
    }
}
