//! Taint models: how one transaction passes taint from its inputs to its outputs (forward)
//! or from its outputs back to its inputs (backward).
//!
//! Taint is a set of satoshi intervals within an output's value (`[start, end)`, sorted,
//! disjoint). FIFO and LIFO need the positions; the other models only use the total, kept
//! as `[0, amount)`. All amounts are integer satoshi and every split conserves value
//! exactly: proportional splits use the largest-remainder rule (floor each share, then give
//! the leftover satoshi one by one to the largest fractional parts, ties to the lower
//! index, the fee last).

use serde::Serialize;

/// Satoshi intervals `[start, end)`.
pub type Intervals = Vec<(u64, u64)>;

/// A taint model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Poison: any tainted input taints every output entirely (Möser et al. 2014, "Towards
    /// risk scoring of Bitcoin transactions"). Does not conserve value: an exposure bound.
    Poison,
    /// Haircut: each output carries the transaction's taint in proportion to its value
    /// (Möser et al. 2014; the fee takes its share).
    Haircut,
    /// FIFO: the transaction's satoshis flow in order, first input to first output, the
    /// fee last (Anderson et al. 2018, "Bitcoin redux", after Clayton's Case, 1816).
    Fifo,
    /// LIFO: as FIFO with the inputs taken last-first (the per-transaction reading of
    /// last-in-first-out; Anderson et al. 2018 discuss it as the alternative to Clayton).
    Lifo,
    /// TIHO, taint in – highest out: the tainted amount goes to the highest-value outputs
    /// first, the fee last (Anderson et al. 2018).
    Tiho,
}

impl Policy {
    /// Every policy, in output order.
    pub const ALL: [Policy; 5] = [
        Policy::Poison,
        Policy::Haircut,
        Policy::Fifo,
        Policy::Lifo,
        Policy::Tiho,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Poison => "poison",
            Policy::Haircut => "haircut",
            Policy::Fifo => "fifo",
            Policy::Lifo => "lifo",
            Policy::Tiho => "tiho",
        }
    }

    /// The model's definition and source (for reports).
    pub fn definition(self) -> &'static str {
        match self {
            Policy::Poison => {
                "Any tainted input taints every output of the transaction entirely. It does not conserve value: its figures are an upper bound of exposure. Source: Möser, Böhme & Breuker 2014, \"Towards risk scoring of Bitcoin transactions\"."
            }
            Policy::Haircut => {
                "Each output carries the transaction's taint in proportion to its value; the fee takes its share. Integer satoshi, split by the largest-remainder rule. Source: Möser, Böhme & Breuker 2014."
            }
            Policy::Fifo => {
                "First in, first out: the transaction's satoshis flow in order, first input to first output, the fee last. Source: Anderson et al. 2018, \"Bitcoin redux\", after Clayton's Case (1816)."
            }
            Policy::Lifo => {
                "Last in, first out, read per transaction: as FIFO with the inputs taken last first. Source: Anderson et al. 2018."
            }
            Policy::Tiho => {
                "Taint in, highest out: the tainted amount goes to the highest-value outputs first, the fee last. Source: Anderson et al. 2018."
            }
        }
    }

    /// The model's definition on the account model (Ethereum), for reports.
    pub fn account_definition(self) -> &'static str {
        match self {
            Policy::Poison => {
                "Once an account receives any taint, its whole balance and all it receives later are tainted, and every transfer out of it carries taint in full. It does not conserve value: its figures are an upper bound of exposure. Source: Möser, Böhme & Breuker 2014, read for accounts."
            }
            Policy::Haircut => {
                "Every transfer out of an account carries the account's tainted share of its balance at that moment (tainted × value ÷ balance, rounded half up; a transfer that empties the account takes all its taint). Source: Möser, Böhme & Breuker 2014, read for accounts."
            }
            Policy::Fifo => {
                "An account's balance is a queue of the amounts it received, in order; a transfer out takes the oldest units first. Source: Clayton's Case (1816), as Anderson et al. 2018 apply it."
            }
            Policy::Lifo => {
                "As FIFO, with the newest units taken first (the balance is a stack). Source: Anderson et al. 2018."
            }
            Policy::Tiho => {
                "Does not apply to accounts: it chooses among a transaction's outputs, and an account transfer has one recipient."
            }
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether the model conserves value (all but poison).
    pub fn conserves(self) -> bool {
        self != Policy::Poison
    }
}

/// Total satoshi of `iv`.
pub fn total(iv: &[(u64, u64)]) -> u64 {
    iv.iter().map(|(a, b)| b - a).sum()
}

/// The part of `iv` inside `[lo, hi)`, rebased so that `lo` is 0.
pub fn clip(iv: &[(u64, u64)], lo: u64, hi: u64) -> Intervals {
    iv.iter()
        .filter_map(|&(a, b)| {
            let (s, e) = (a.max(lo), b.min(hi));
            (s < e).then(|| (s - lo, e - lo))
        })
        .collect()
}

/// `[0, amount)`, or nothing.
fn prefix(amount: u64) -> Intervals {
    if amount == 0 {
        Vec::new()
    } else {
        vec![(0, amount)]
    }
}

/// Splits `amount` in proportion to `weights` by the largest-remainder rule.
pub fn split(amount: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<u64> = Vec::with_capacity(weights.len());
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let num = u128::from(amount) * u128::from(w);
        shares.push((num / sum) as u64);
        rems.push((num % sum, i));
    }
    let mut left = amount - shares.iter().sum::<u64>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// Lays `parts` (value, taint) end to end in `order` and returns the taint in global
/// positions.
fn concat(parts: &[(u64, &Intervals)], order: &[usize]) -> (Intervals, Vec<u64>) {
    let mut global = Vec::new();
    let mut offsets = vec![0u64; parts.len()];
    let mut off = 0;
    for &i in order {
        offsets[i] = off;
        global.extend(parts[i].1.iter().map(|(a, b)| (a + off, b + off)));
        off += parts[i].0;
    }
    global.sort_unstable();
    (global, offsets)
}

/// Forward: the taint of each output, and the fee's, from the inputs' `(value, taint)`.
pub fn forward(
    policy: Policy,
    inputs: &[(u64, &Intervals)],
    outputs: &[u64],
) -> (Vec<Intervals>, u64) {
    let in_value: u64 = inputs.iter().map(|i| i.0).sum();
    let out_value: u64 = outputs.iter().sum();
    let fee = in_value.saturating_sub(out_value);
    let taint: u64 = inputs.iter().map(|i| total(i.1)).sum();
    match policy {
        Policy::Poison => {
            if taint == 0 {
                (vec![Vec::new(); outputs.len()], 0)
            } else {
                (outputs.iter().map(|&v| prefix(v)).collect(), fee)
            }
        }
        Policy::Haircut => {
            let mut weights = outputs.to_vec();
            weights.push(fee);
            let mut shares = split(taint, &weights);
            let fee_share = shares.pop().expect("the fee's share");
            (shares.into_iter().map(prefix).collect(), fee_share)
        }
        Policy::Fifo | Policy::Lifo => {
            let mut order: Vec<usize> = (0..inputs.len()).collect();
            if policy == Policy::Lifo {
                order.reverse();
            }
            let (global, _) = concat(inputs, &order);
            let mut off = 0;
            let outs = outputs
                .iter()
                .map(|&v| {
                    let c = clip(&global, off, off + v);
                    off += v;
                    c
                })
                .collect();
            (outs, total(&clip(&global, out_value, in_value)))
        }
        Policy::Tiho => {
            let mut order: Vec<usize> = (0..outputs.len()).collect();
            order.sort_by(|&a, &b| outputs[b].cmp(&outputs[a]).then(a.cmp(&b)));
            let mut left = taint;
            let mut outs = vec![Vec::new(); outputs.len()];
            for i in order {
                let take = left.min(outputs[i]);
                outs[i] = prefix(take);
                left -= take;
            }
            (outs, left)
        }
    }
}

/// Backward: the taint of each input, from the outputs' `(value, taint)` (the fee is not
/// a source of funds).
pub fn backward(policy: Policy, outputs: &[(u64, &Intervals)], inputs: &[u64]) -> Vec<Intervals> {
    let taint: u64 = outputs.iter().map(|o| total(o.1)).sum();
    match policy {
        Policy::Poison => {
            if taint == 0 {
                vec![Vec::new(); inputs.len()]
            } else {
                inputs.iter().map(|&v| prefix(v)).collect()
            }
        }
        Policy::Haircut => split(taint, inputs).into_iter().map(prefix).collect(),
        Policy::Fifo | Policy::Lifo => {
            let order: Vec<usize> = (0..outputs.len()).collect();
            let (global, _) = concat(outputs, &order);
            let mut in_order: Vec<usize> = (0..inputs.len()).collect();
            if policy == Policy::Lifo {
                in_order.reverse();
            }
            let mut res = vec![Vec::new(); inputs.len()];
            let mut off = 0;
            for i in in_order {
                res[i] = clip(&global, off, off + inputs[i]);
                off += inputs[i];
            }
            res
        }
        Policy::Tiho => {
            let mut order: Vec<usize> = (0..inputs.len()).collect();
            order.sort_by(|&a, &b| inputs[b].cmp(&inputs[a]).then(a.cmp(&b)));
            let mut left = taint;
            let mut res = vec![Vec::new(); inputs.len()];
            for i in order {
                let take = left.min(inputs[i]);
                res[i] = prefix(take);
                left -= take;
            }
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs: A = 100 sat fully tainted, B = 100 sat clean. Outputs 150 and 40, fee 10.
    #[test]
    fn hand_computed_case_where_fifo_and_haircut_disagree() {
        let a: Intervals = vec![(0, 100)];
        let b: Intervals = Vec::new();
        let ins = [(100, &a), (100, &b)];
        let outs = [150, 40];
        let amounts = |p| {
            let (o, fee) = forward(p, &ins, &outs);
            (o.iter().map(|x| total(x)).collect::<Vec<_>>(), fee)
        };
        // FIFO: A's 100 sat are the first 100 of output 0.
        assert_eq!(amounts(Policy::Fifo), (vec![100, 0], 0));
        // Haircut: half of every output is tainted; 150/2 = 75, 40/2 = 20, fee 10/2 = 5.
        assert_eq!(amounts(Policy::Haircut), (vec![75, 20], 5));
        // LIFO: B first, so output 0 holds B's 100 and then A's first 50; output 1 the next
        // 40 of A; the fee the last 10.
        assert_eq!(amounts(Policy::Lifo), (vec![50, 40], 10));
        // TIHO: the highest output takes all 100.
        assert_eq!(amounts(Policy::Tiho), (vec![100, 0], 0));
        // Poison: everything.
        assert_eq!(amounts(Policy::Poison), (vec![150, 40], 10));
    }

    #[test]
    fn splits_conserve_and_follow_the_largest_remainder_rule() {
        assert_eq!(split(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split(1, &[1, 2]), vec![0, 1]);
        assert_eq!(split(7, &[0, 0]), vec![0, 0]);
        for amount in [0u64, 1, 99, 12_345_678_901] {
            let w = [3u64, 7, 11, 0, 5];
            assert_eq!(split(amount, &w).iter().sum::<u64>(), amount);
        }
    }

    #[test]
    fn every_conserving_policy_conserves_forward_and_backward() {
        let t1: Intervals = vec![(10, 50), (70, 90)];
        let t2: Intervals = vec![(0, 33)];
        let ins = [(100, &t1), (40, &Vec::new()), (60, &t2)];
        let outs = [55, 120, 7];
        let taint = 40 + 20 + 33;
        for p in Policy::ALL.into_iter().filter(|p| p.conserves()) {
            let (o, fee) = forward(p, &ins, &outs);
            assert_eq!(
                o.iter().map(|x| total(x)).sum::<u64>() + fee,
                taint,
                "{p:?} forward"
            );
            for (x, v) in o.iter().zip(outs) {
                assert!(total(x) <= v);
            }
            let back = backward(p, &[(55, &o[0]), (120, &o[1]), (7, &o[2])], &[100, 40, 60]);
            assert_eq!(
                back.iter().map(|x| total(x)).sum::<u64>(),
                taint - fee,
                "{p:?} backward"
            );
        }
        // FIFO backward inverts FIFO forward exactly where no fee is involved.
        let (o, _) = forward(Policy::Fifo, &ins, &outs);
        let back = backward(
            Policy::Fifo,
            &[(55, &o[0]), (120, &o[1]), (7, &o[2])],
            &[100, 40, 60],
        );
        assert_eq!(back[0], t1);
        assert_eq!(back[2], t2);
    }
}
