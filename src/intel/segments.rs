//! Longest-prefix matching by binary search. Nested prefixes are flattened
//! at build time into disjoint segments, each carrying the value of the
//! most specific prefix that covers it, so a lookup is one binary search
//! over a sorted array (no trie to walk, no allocation).

use std::net::IpAddr;

use ipnet::IpNet;

/// "No value" in a segment.
pub const NONE: u32 = u32::MAX;

/// Disjoint segments of one address family: segment `i` covers
/// `starts[i]..starts[i + 1]` (the last one to the end of the space).
///
/// A 65,536-entry index on the top 16 bits of the address narrows each
/// binary search to the segments of one bucket: a lookup touches a few
/// cache lines instead of one per level of a search over megabytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segments {
    starts: Vec<u128>,
    values: Vec<u32>,
    /// `index[b]`: the first segment whose start's top 16 bits are ≥ `b`.
    index: Vec<u32>,
    /// Address width in bits (32 or 128).
    width: u32,
}

const BUCKETS: usize = 1 << 16;

impl Segments {
    /// From raw parts, as stored on disk: `starts` ascending, addresses of
    /// `width` bits (32 or 128).
    pub fn from_parts(starts: Vec<u128>, values: Vec<u32>, width: u32) -> Option<Self> {
        let sorted = starts.windows(2).all(|w| w[0] < w[1]);
        let fits = width == 128 || starts.last().is_none_or(|s| *s <= (1u128 << width));
        (starts.len() == values.len() && sorted && fits && (width == 32 || width == 128))
            .then(|| Self { starts, values, index: Vec::new(), width }.indexed())
    }

    fn bucket(&self, addr: u128) -> usize {
        // Starts may include the first address past the space (2^32 for
        // IPv4): clamp it into the last bucket.
        ((addr >> (self.width - 16)) as usize).min(BUCKETS - 1)
    }

    fn indexed(mut self) -> Self {
        let mut index = vec![0u32; BUCKETS + 1];
        let mut i = 0usize;
        for (b, slot) in index.iter_mut().enumerate() {
            while i < self.starts.len() && self.bucket(self.starts[i]) < b {
                i += 1;
            }
            *slot = i as u32;
        }
        self.index = index;
        self
    }

    pub fn parts(&self) -> (&[u128], &[u32]) {
        (&self.starts, &self.values)
    }

    /// The value of the segment holding `addr`, `NONE` outside every prefix.
    pub fn get(&self, addr: u128) -> u32 {
        if self.starts.is_empty() {
            return NONE;
        }
        let b = self.bucket(addr);
        // The holder starts in this bucket or is the last one before it.
        let lo = self.index[b] as usize;
        let hi = self.index[b + 1] as usize;
        match lo + self.starts[lo..hi].partition_point(|s| *s <= addr) {
            0 => NONE,
            i => self.values[i - 1],
        }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Flattens `(first, last, prefix length, value)` ranges; among nested
    /// ones the longest prefix wins, among identical ones the later one.
    fn flatten(ranges: Vec<(u128, u128, u8, u32)>, width: u32) -> Self {
        let mut sorted: Vec<(usize, (u128, u128, u8, u32))> =
            ranges.into_iter().enumerate().collect();
        // At one start, wider prefixes first; identical ones in input order.
        sorted.sort_by_key(|(i, (first, _, len, _))| (*first, *len, *i));
        let mut out = Segments { width, ..Segments::default() };
        // Open prefixes, innermost last: (last address, value).
        let mut stack: Vec<(u128, u32)> = Vec::new();
        for (_, (first, last, _, value)) in sorted {
            while let Some(&(top_last, _)) = stack.last() {
                if top_last >= first {
                    break;
                }
                stack.pop();
                // After an inner prefix ends, the enclosing one resumes.
                if let Some(next) = top_last.checked_add(1) {
                    out.push(next, stack.last().map_or(NONE, |t| t.1));
                }
            }
            out.push(first, value);
            stack.push((last, value));
        }
        while let Some((top_last, _)) = stack.pop() {
            if let Some(next) = top_last.checked_add(1) {
                out.push(next, stack.last().map_or(NONE, |t| t.1));
            }
        }
        out.indexed()
    }

    fn push(&mut self, at: u128, value: u32) {
        // A segment starting where the previous one starts replaces it.
        if self.starts.last() == Some(&at) {
            self.starts.pop();
            self.values.pop();
        }
        // Adjacent segments with one value are one segment.
        if self.values.last() == Some(&value) || (self.values.is_empty() && value == NONE) {
            return;
        }
        self.starts.push(at);
        self.values.push(value);
    }
}

/// Prefix tables for IPv4 and IPv6.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixTable {
    pub v4: Segments,
    pub v6: Segments,
}

impl PrefixTable {
    /// Builds the table; later entries win over identical earlier prefixes.
    pub fn build(prefixes: impl IntoIterator<Item = (IpNet, u32)>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (net, value) in prefixes {
            let net = net.trunc();
            match net {
                IpNet::V4(n) => v4.push((
                    u128::from(u32::from(n.network())),
                    u128::from(u32::from(n.broadcast())),
                    n.prefix_len(),
                    value,
                )),
                IpNet::V6(n) => v6.push((
                    u128::from(n.network()),
                    u128::from(n.broadcast()),
                    n.prefix_len(),
                    value,
                )),
            }
        }
        Self { v4: Segments::flatten(v4, 32), v6: Segments::flatten(v6, 128) }
    }

    /// The value of the most specific prefix holding `ip`.
    pub fn get(&self, ip: IpAddr) -> Option<u32> {
        let v = match ip {
            IpAddr::V4(a) => self.v4.get(u128::from(u32::from(a))),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        };
        (v != NONE).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(entries: &[(&str, u32)]) -> PrefixTable {
        PrefixTable::build(entries.iter().map(|(n, v)| (n.parse().unwrap(), *v)))
    }

    #[test]
    fn longest_prefix_wins() {
        let t =
            table(&[("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("10.1.2.0/24", 3), ("10.2.0.0/16", 4)]);
        let get = |s: &str| t.get(s.parse().unwrap());
        assert_eq!(get("9.255.255.255"), None);
        assert_eq!(get("10.0.0.1"), Some(1));
        assert_eq!(get("10.1.0.1"), Some(2));
        assert_eq!(get("10.1.2.200"), Some(3));
        assert_eq!(get("10.1.3.0"), Some(2));
        assert_eq!(get("10.2.255.255"), Some(4));
        assert_eq!(get("10.3.0.0"), Some(1));
        assert_eq!(get("11.0.0.0"), None);
    }

    #[test]
    fn edges_of_the_address_space() {
        let t = table(&[("0.0.0.0/0", 1), ("255.255.255.0/24", 2), ("::/0", 3), ("ffff::/16", 4)]);
        assert_eq!(t.get("0.0.0.0".parse().unwrap()), Some(1));
        assert_eq!(t.get("255.255.255.255".parse().unwrap()), Some(2));
        assert_eq!(t.get("ffff:ffff::1".parse().unwrap()), Some(4));
        assert_eq!(t.get("fffe::1".parse().unwrap()), Some(3));
        let same = table(&[("192.0.2.0/24", 1), ("192.0.2.0/24", 2)]);
        assert_eq!(same.get("192.0.2.9".parse().unwrap()), Some(2), "the later duplicate wins");
    }

    proptest! {
        /// The flattened table agrees with a naive longest-prefix search.
        #[test]
        fn agrees_with_naive_lpm(nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40),
                                 probes in proptest::collection::vec(any::<u32>(), 50)) {
            let nets: Vec<(IpNet, u32)> = nets.iter().enumerate()
                .map(|(i, (a, len))| (IpNet::new(std::net::Ipv4Addr::from(*a).into(), *len).unwrap().trunc(), i as u32))
                .collect();
            let t = PrefixTable::build(nets.clone());
            for p in probes.iter().copied().chain(nets.iter().map(|(n, _)| match n { IpNet::V4(n) => u32::from(n.network()), _ => 0 })) {
                let ip = IpAddr::from(std::net::Ipv4Addr::from(p));
                let naive = nets.iter().filter(|(n, _)| n.contains(&ip))
                    .max_by_key(|(n, i)| (n.prefix_len(), *i)).map(|(_, v)| *v);
                prop_assert_eq!(t.get(ip), naive, "{}", ip);
            }
        }
    }
}
