//! Sets of field values: sorted, disjoint, non-adjacent closed intervals over `u128` (wide enough for
//! every field of the field table, IPv6 addresses included). The one value-set type of the analysis
//! engine and of the shadow pass.

/// A set of values: sorted, disjoint, non-adjacent closed intervals.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Set(pub(crate) Vec<(u128, u128)>);

impl Set {
    /// `[lo, hi]` (empty when `lo > hi`).
    pub fn range(lo: u128, hi: u128) -> Set {
        if lo > hi {
            Set::default()
        } else {
            Set(vec![(lo, hi)])
        }
    }
    /// `{v}`.
    pub fn single(v: u128) -> Set {
        Set(vec![(v, v)])
    }
    /// The union of `v`'s intervals (any order, overlaps allowed; `lo > hi` pairs ignored).
    pub fn from_intervals(mut v: Vec<(u128, u128)>) -> Set {
        v.retain(|&(lo, hi)| lo <= hi);
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Set(out)
    }
    /// The intervals, ascending.
    pub fn intervals(&self) -> &[(u128, u128)] {
        &self.0
    }
    /// Holds no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Smallest value.
    pub fn first(&self) -> Option<u128> {
        self.0.first().map(|i| i.0)
    }
    /// Number of values (saturating).
    pub fn len(&self) -> u128 {
        self.0.iter().fold(0u128, |n, &(lo, hi)| {
            n.saturating_add(hi - lo).saturating_add(1)
        })
    }
    /// `v` is in the set (binary search over the intervals).
    pub fn contains(&self, v: u128) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < v);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= v)
    }
    /// The values in both sets (a merge of the two interval lists, linear time).
    pub fn intersect(&self, o: &Set) -> Set {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.0.len() && j < o.0.len() {
            let (a, b) = (self.0[i], o.0[j]);
            let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Set(out)
    }
    /// Some value is in both sets (as `!intersect(o).is_empty()`, without building it).
    pub fn intersects(&self, o: &Set) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < o.0.len() {
            let (a, b) = (self.0[i], o.0[j]);
            if a.0.max(b.0) <= a.1.min(b.1) {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }
    /// `self \ o`.
    pub fn subtract(&self, o: &Set) -> Set {
        let mut out = Vec::new();
        let mut j = 0;
        for &(lo, hi) in &self.0 {
            let mut cur = lo;
            while j < o.0.len() && o.0[j].1 < cur {
                j += 1;
            }
            let mut k = j;
            let mut done = false;
            while k < o.0.len() && o.0[k].0 <= hi {
                let (blo, bhi) = o.0[k];
                if blo > cur {
                    out.push((cur, blo - 1));
                }
                if bhi >= hi {
                    done = true;
                    break;
                }
                cur = cur.max(bhi + 1);
                k += 1;
            }
            if !done && cur <= hi {
                out.push((cur, hi));
            }
        }
        Set(out)
    }
    /// Every value of `self` is in `o` (`o`'s intervals are merged, so this is exact).
    pub fn is_subset(&self, o: &Set) -> bool {
        let mut j = 0;
        for &(lo, hi) in &self.0 {
            while j < o.0.len() && o.0[j].1 < lo {
                j += 1;
            }
            match o.0.get(j) {
                Some(&(olo, ohi)) if olo <= lo && hi <= ohi => {}
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_splits_and_trims() {
        let a = Set::from_intervals(vec![(0, 10), (20, 30)]);
        assert_eq!(a.subtract(&Set::range(5, 25)), Set(vec![(0, 4), (26, 30)]));
        assert_eq!(a.subtract(&Set::range(0, 30)), Set::default());
        assert_eq!(a.subtract(&Set::range(11, 19)), a);
        assert_eq!(
            Set::range(0, u128::MAX).subtract(&Set::range(0, u128::MAX)),
            Set::default()
        );
    }

    #[test]
    fn from_intervals_merges_adjacent_and_contains_bisects() {
        let s = Set::from_intervals(vec![(5, 9), (0, 4), (20, 21), (3, 6)]);
        assert_eq!(s, Set(vec![(0, 9), (20, 21)]));
        assert!(s.contains(0) && s.contains(9) && s.contains(21));
        assert!(!s.contains(10) && !s.contains(22));
        assert_eq!(s.len(), 12);
        assert!(Set::range(2, 3).is_subset(&s) && !Set::range(9, 10).is_subset(&s));
    }
}
