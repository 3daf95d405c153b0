//! The last few items of a kind, kept for a per-packet shortcut (the
//! tunnels a mirror's packets travel, the QUIC connections just opened).
//!
//! Contract: a [`LastFew`] holds at most `N` items; [`LastFew::keep`] adds
//! one, in place of the one kept longest once `N` are held;
//! [`LastFew::position`] looks through them in order, which for a handful
//! costs less than hashing; [`LastFew::clear`] forgets them all.

/// See the module's contract.
#[derive(Debug)]
pub struct LastFew<T, const N: usize> {
    items: Vec<T>,
    /// Where the next item goes: they fill `items` in order, then go
    /// round.
    next: usize,
}

impl<T, const N: usize> Default for LastFew<T, N> {
    fn default() -> Self {
        LastFew { items: Vec::new(), next: 0 }
    }
}

impl<T, const N: usize> LastFew<T, N> {
    /// The first item `matches`, by its place. Inlined: it runs per packet,
    /// where the closure's comparison is what costs.
    #[inline]
    pub fn position(&self, matches: impl FnMut(&T) -> bool) -> Option<usize> {
        self.items.iter().position(matches)
    }

    #[inline]
    pub fn get(&self, at: usize) -> Option<&T> {
        self.items.get(at)
    }

    /// Keeps `item`, in place of the one kept longest when `N` are held;
    /// returns it where it is kept (`None` only when `N` is 0, which
    /// keeps nothing).
    pub fn keep(&mut self, item: T) -> Option<&T> {
        if N == 0 {
            return None;
        }
        let at = self.next;
        self.next = (at + 1) % N;
        match self.items.get_mut(at) {
            Some(slot) => *slot = item,
            // Not full yet: `at` is the next place.
            None => self.items.push(item),
        }
        self.items.get(at)
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.next = 0;
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n_in_place_of_the_oldest() {
        let mut few: LastFew<u32, 3> = LastFew::default();
        for n in 0..5 {
            assert_eq!(few.keep(n), Some(&n));
        }
        assert_eq!(few.iter().copied().collect::<Vec<_>>(), [3, 4, 2]);
        assert_eq!(few.position(|&n| n == 2), Some(2));
        assert_eq!(few.position(|&n| n == 1), None);
        few.clear();
        assert!(few.is_empty());
        assert_eq!(few.keep(7), Some(&7));
        assert_eq!(few.get(0), Some(&7));
        let mut none: LastFew<u32, 0> = LastFew::default();
        assert_eq!(none.keep(1), None);
        assert_eq!(none.len(), 0);
    }
}
