//! Disjoint sets over dense `u32` ids: union by size, path halving.
//!
//! # Complexity
//! `find` and `union` run in amortised O(α(n)) (inverse Ackermann), so clustering is
//! linear in the number of merges in practice.

use crate::types::{ix, n32};

/// A union-find forest.
#[derive(Clone, Debug)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singleton sets.
    pub fn new(n: u32) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; ix(n)],
        }
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[ix(x)] != x {
            let p = self.parent[ix(x)];
            self.parent[ix(x)] = self.parent[ix(p)];
            x = p;
        }
        x
    }

    /// Joins the sets of `a` and `b`; returns whether they were apart.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (big, small) = if self.size[ix(ra)] >= self.size[ix(rb)] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[ix(small)] = big;
        self.size[ix(big)] += self.size[ix(small)];
        true
    }

    /// Size of `x`'s set.
    pub fn size_of(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.size[ix(r)]
    }

    /// For every element, the smallest id in its set: a labelling that does not depend on
    /// the order of unions.
    pub fn min_labels(&mut self) -> Vec<u32> {
        let n = self.parent.len();
        let mut min_of_root = vec![u32::MAX; n];
        for x in 0..n32(n) {
            let r = ix(self.find(x));
            min_of_root[r] = min_of_root[r].min(x);
        }
        (0..n32(n)).map(|x| min_of_root[ix(self.find(x))]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_and_labels() {
        let mut u = UnionFind::new(6);
        assert!(u.union(4, 2));
        assert!(u.union(2, 5));
        assert!(!u.union(5, 4));
        assert_eq!(u.size_of(5), 3);
        assert_eq!(u.min_labels(), vec![0, 1, 2, 3, 2, 2]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use crate::types::{ix, n64};

    use super::UnionFind;

    /// Each element's set, named by its smallest member (independent of the representative
    /// union-find happens to pick).
    fn partition(uf: &mut UnionFind, n: u32) -> Vec<u32> {
        let mut least = vec![u32::MAX; ix(n)];
        for x in 0..n {
            let r = ix(uf.find(x));
            least[r] = least[r].min(x);
        }
        (0..n).map(|x| least[ix(uf.find(x))]).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The sets do not depend on the order of the merges (nor on their direction).
        #[test]
        fn the_partition_does_not_depend_on_merge_order(
            pairs in proptest::collection::vec((0u32..40, 0u32..40), 0..80),
            seed in any::<u64>(),
        ) {
            let n = 40;
            let mut a = UnionFind::new(n);
            for &(x, y) in &pairs {
                a.union(x, y);
            }
            // Another order: a deterministic shuffle, and each pair reversed.
            let mut shuffled = pairs.clone();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let j = usize::try_from(s % (n64(i) + 1)).expect("small");
                shuffled.swap(i, j);
            }
            let mut b = UnionFind::new(n);
            for &(x, y) in &shuffled {
                b.union(y, x);
            }
            prop_assert_eq!(partition(&mut a, n), partition(&mut b, n));
        }
    }
}
