//! Disjoint sets over dense `u32` ids: union by rank, path halving.
//!
//! # Memory
//! 5 bytes per element: a `u32` parent and a `u8` rank (ranks stay below 33 for 2^32
//! elements), the layout of petgraph's and GraphSense's union-find. Set sizes, which the
//! collapse guard needs, are a further 4 bytes per element and only kept when asked for
//! ([`UnionFind::with_sizes`]).
//!
//! # Complexity
//! `find` and `union` run in amortised O(α(n)) (inverse Ackermann; Tarjan & van Leeuwen
//! 1984, union by rank with path halving), so clustering is linear in the number of merges
//! in practice.

use crate::types::{ix, n32};

/// A union-find forest.
#[derive(Clone, Debug)]
pub struct UnionFind {
    parent: Vec<u32>,
    rank: Vec<u8>,
    /// Size of each root's set, when kept ([`UnionFind::with_sizes`]); empty otherwise.
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singleton sets, without sizes (5 bytes per element).
    pub fn new(n: u32) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
            rank: vec![0; ix(n)],
            size: Vec::new(),
        }
    }

    /// `n` singleton sets that also count their sizes ([`UnionFind::size_of`]; 9 bytes per
    /// element).
    pub fn with_sizes(n: u32) -> UnionFind {
        UnionFind {
            size: vec![1; ix(n)],
            ..UnionFind::new(n)
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
        let (hi, lo) = if self.rank[ix(ra)] >= self.rank[ix(rb)] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[ix(lo)] = hi;
        if self.rank[ix(hi)] == self.rank[ix(lo)] {
            self.rank[ix(hi)] += 1;
        }
        if !self.size.is_empty() {
            self.size[ix(hi)] += self.size[ix(lo)];
        }
        true
    }

    /// Size of `x`'s set.
    ///
    /// # Panics
    /// When the forest was made without sizes ([`UnionFind::new`]).
    pub fn size_of(&mut self, x: u32) -> u32 {
        assert!(!self.size.is_empty(), "size_of needs UnionFind::with_sizes");
        let r = self.find(x);
        self.size[ix(r)]
    }

    /// For every element, the smallest id in its set: a labelling that does not depend on
    /// the order of unions. Consumes the forest and reuses its parent array, so the
    /// labelling costs no memory beyond it.
    pub fn into_labels(mut self) -> Vec<u32> {
        let n = n32(self.parent.len());
        // In ascending order, the first member met of each set is its smallest: make it the
        // root. Every later member then finds it.
        for x in 0..n {
            let r = self.find(x);
            if r > x {
                self.parent[ix(r)] = x;
                self.parent[ix(x)] = x;
            }
        }
        for x in 0..n {
            let r = self.find(x);
            self.parent[ix(x)] = r;
        }
        self.parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_and_labels() {
        let mut u = UnionFind::with_sizes(6);
        assert!(u.union(4, 2));
        assert!(u.union(2, 5));
        assert!(!u.union(5, 4));
        assert_eq!(u.size_of(5), 3);
        assert_eq!(u.into_labels(), vec![0, 1, 2, 3, 2, 2]);
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
            // The consuming labelling re-roots each set at its smallest member: the same.
            prop_assert_eq!(a.clone().into_labels(), partition(&mut a, n));
            prop_assert_eq!(partition(&mut a, n), partition(&mut b, n));
        }
    }
}
