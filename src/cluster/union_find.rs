//! Disjoint sets over dense `u32` ids: union by size, path halving.
//!
//! # Complexity
//! `find` and `union` run in amortised O(α(n)) (inverse Ackermann), so clustering is
//! linear in the number of merges in practice.

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
            size: vec![1; n as usize],
        }
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
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
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        true
    }

    /// Size of `x`'s set.
    pub fn size_of(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.size[r as usize]
    }

    /// For every element, the smallest id in its set: a labelling that does not depend on
    /// the order of unions.
    pub fn min_labels(&mut self) -> Vec<u32> {
        let n = self.parent.len();
        let mut min_of_root = vec![u32::MAX; n];
        for x in 0..n as u32 {
            let r = self.find(x) as usize;
            min_of_root[r] = min_of_root[r].min(x);
        }
        (0..n as u32)
            .map(|x| min_of_root[self.find(x) as usize])
            .collect()
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

    use super::UnionFind;

    /// Each element's set, named by its smallest member (independent of the representative
    /// union-find happens to pick).
    fn partition(uf: &mut UnionFind, n: u32) -> Vec<u32> {
        let mut least = vec![u32::MAX; n as usize];
        for x in 0..n {
            let r = uf.find(x) as usize;
            least[r] = least[r].min(x);
        }
        (0..n).map(|x| least[uf.find(x) as usize]).collect()
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
                let j = usize::try_from(s % (i as u64 + 1)).expect("small");
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
