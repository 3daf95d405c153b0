//! Longest-prefix matching by binary search. Nested prefixes are flattened
//! at build time into disjoint segments, each carrying the value of the
//! most specific prefix that covers it, so a lookup is one binary search
//! over a sorted array (no trie to walk, no allocation).
//!
//! IPv4 segments are keyed by `u32`, IPv6 ones by `u128`: a lookup reads
//! as few cache lines as the addresses allow.

use std::borrow::Cow;
use std::fmt::Debug;
use std::net::IpAddr;

use ipnet::IpNet;
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// "No value" in a segment.
pub const NONE: u32 = u32::MAX;

/// What a segment holds: one `u32` (an index, usually), or one per merged
/// layer.
pub trait SegmentValue: Copy + PartialEq + Debug + FromBytes + Immutable {
    /// "No value": outside every prefix.
    const NONE: Self;

    /// Appends the value's bytes, little-endian.
    fn put_le(self, out: &mut Vec<u8>);
}

impl SegmentValue for u32 {
    const NONE: Self = NONE;

    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl<const N: usize> SegmentValue for [u32; N] {
    const NONE: Self = [NONE; N];

    fn put_le(self, out: &mut Vec<u8>) {
        for v in self {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// An address as a segment key: `u32` for IPv4, `u128` for IPv6.
pub trait SegmentKey: Copy + Ord + Debug + Default + FromBytes + Immutable {
    /// Address width in bits.
    const BITS: u32;

    /// Which of `2^bits` index buckets the address falls in. Monotonic (a
    /// larger address never has a smaller bucket), so the segment that
    /// holds an address starts in its bucket or is the last one before it.
    fn bucket(self, bits: u32) -> usize;

    fn from_u128(v: u128) -> Self;

    fn to_u128(self) -> u128;

    /// The first address after `self`, `None` at the end of the space.
    fn next(self) -> Option<Self>;

    /// Appends the key's bytes, little-endian.
    fn put_le(self, out: &mut Vec<u8>);
}

impl SegmentKey for u32 {
    const BITS: u32 = 32;

    fn bucket(self, bits: u32) -> usize {
        self.checked_shr(32 - bits).unwrap_or(0) as usize
    }

    fn from_u128(v: u128) -> Self {
        v as u32
    }

    fn to_u128(self) -> u128 {
        u128::from(self)
    }

    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// Every allocated IPv6 unicast address is in 2000::/3 (RFC 4291, IANA):
/// the index spreads that block over its buckets instead of
/// the whole space, where three quarters of them would stay empty.
const V6_INDEXED: u128 = 0x2000 << 112;

impl SegmentKey for u128 {
    const BITS: u32 = 128;

    fn bucket(self, bits: u32) -> usize {
        // Below 2000::/3 everything shares the first bucket, above it the
        // last: few segments lie there.
        let offset = self.saturating_sub(V6_INDEXED) >> (128 - 3 - bits);
        offset.min((1u128 << bits) - 1) as usize
    }

    fn from_u128(v: u128) -> Self {
        v
    }

    fn to_u128(self) -> u128 {
        self
    }

    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// Disjoint segments of one address family: segment `i` covers from its
/// start to the next one's (the last one to the end of the space).
///
/// Each start is kept next to its value, so the last probe of a search
/// has read the value too (one cache miss a lookup fewer than two arrays).
///
/// Tables of more than [`INDEXED_FROM`] segments get an index on the top
/// bits of the address (up to 2^16 buckets, no more than segments) that
/// narrows each binary search to the segments of one bucket: a lookup
/// touches a few cache lines instead of one per level of a search over
/// megabytes. (2^18- and 2^20-bucket indexes were measured slower: 1 and
/// 4 MiB of index miss the caches and the TLB.) Smaller tables are
/// searched whole.
///
/// A table is built in memory or used in place from the bytes of a file
/// compiled into the binary (see [`Segments::from_bytes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segments<K: Clone + 'static, V: Clone + 'static = u32> {
    /// By start.
    entries: Cow<'static, [Entry<K, V>]>,
    /// `index[b]`: the first segment whose start's bucket is ≥ `b`; empty
    /// for small tables.
    index: Cow<'static, [u32]>,
    /// log2 of the number of buckets.
    bits: u32,
}

/// One segment: where it starts and its value. `repr(C)`, so that a table
/// written by [`Segments::write_le`] can be used in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Entry<K, V> {
    pub start: K,
    pub value: V,
}

impl<K: Clone, V: Clone> Default for Segments<K, V> {
    fn default() -> Self {
        Self { entries: Cow::Borrowed(&[]), index: Cow::Borrowed(&[]), bits: 0 }
    }
}

/// Why table bytes cannot be used in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// Not a multiple of the entry size, or not aligned for it.
    Shape,
    /// The index does not fit the table.
    Index,
}

/// Tables with more segments than this are indexed.
pub const INDEXED_FROM: usize = 4096;

impl<K: SegmentKey, V: SegmentValue> Segments<K, V> {
    /// From raw parts, as stored on disk: `starts` strictly ascending.
    pub fn from_parts(starts: Vec<K>, values: Vec<V>) -> Option<Self> {
        let sorted = starts.windows(2).all(|w| w[0] < w[1]);
        (starts.len() == values.len() && sorted).then(|| {
            let entries =
                starts.into_iter().zip(values).map(|(start, value)| Entry { start, value });
            Self::from_entries(entries.collect())
        })
    }

    fn from_entries(entries: Vec<Entry<K, V>>) -> Self {
        if entries.len() <= INDEXED_FROM {
            return Self { entries: Cow::Owned(entries), index: Cow::Borrowed(&[]), bits: 0 };
        }
        let bits = entries.len().ilog2().clamp(12, 16);
        let mut index = vec![0u32; (1 << bits) + 1];
        let mut i = 0usize;
        for (b, slot) in index.iter_mut().enumerate() {
            while i < entries.len() && entries[i].start.bucket(bits) < b {
                i += 1;
            }
            *slot = i as u32;
        }
        Self { entries: Cow::Owned(entries), index: Cow::Owned(index), bits }
    }

    /// A table used in place: `entries` and `index` as [`Self::write_le`]
    /// wrote them, on a little-endian machine, aligned for the entries.
    ///
    /// Only the shape is checked (a full check would read every page of
    /// the table at each start): bytes that are not a table give wrong
    /// answers, never a panic, since every access is bounds-checked.
    pub fn from_bytes(
        entries: &'static [u8],
        index: &'static [u8],
        bits: u32,
    ) -> Result<Self, LayoutError> {
        let entries = <[Entry<K, V>]>::ref_from_bytes(entries).map_err(|_| LayoutError::Shape)?;
        let index = <[u32]>::ref_from_bytes(index).map_err(|_| LayoutError::Shape)?;
        let fits = match index.len() {
            0 => bits == 0,
            n => {
                bits <= 16 && n == (1 << bits) + 1 && index.last() == Some(&(entries.len() as u32))
            }
        };
        if !fits {
            return Err(LayoutError::Index);
        }
        Ok(Self { entries: Cow::Borrowed(entries), index: Cow::Borrowed(index), bits })
    }

    /// Appends the entries and the index in the layout that
    /// [`Self::from_bytes`] reads, each padded to `align` bytes.
    pub fn write_le(&self, out: &mut Vec<u8>, align: usize) {
        let size = std::mem::size_of::<Entry<K, V>>();
        for e in self.entries.iter() {
            let at = out.len();
            e.start.put_le(out);
            e.value.put_le(out);
            out.resize(at + size, 0);
        }
        out.resize(out.len().next_multiple_of(align), 0);
        for i in self.index.iter() {
            out.extend_from_slice(&i.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(align), 0);
    }

    /// Is the table used in place from a file's bytes (not copied)?
    pub fn in_place(&self) -> bool {
        matches!(self.entries, Cow::Borrowed(e) if !e.is_empty())
    }

    /// log2 of the number of index buckets; 0 for a table searched whole.
    pub fn index_bits(&self) -> u32 {
        self.bits
    }

    /// (start, value) of every segment, by start.
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + '_ {
        self.entries.iter().map(|e| (e.start, e.value))
    }

    /// The value of the segment holding `addr`, `NONE` outside every prefix.
    #[inline]
    pub fn get(&self, addr: K) -> V {
        let b = if self.index.is_empty() { 0 } else { addr.bucket(self.bits) };
        let (lo, hi) = match self.index.get(b..b + 2) {
            Some(&[lo, hi]) => (lo as usize, hi as usize),
            _ => (0, self.entries.len()),
        };
        // The holder starts in this bucket or is the last one before it.
        let Some(bucket) = self.entries.get(lo..hi) else { return V::NONE };
        match lo + starts_at_or_before(bucket, addr) {
            0 => V::NONE,
            i => self.entries.get(i - 1).map_or(V::NONE, |e| e.value),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// How many of `entries` (sorted by start) start at or before `addr`.
///
/// A binary search narrows the range to a few cache lines, which are then
/// counted whole: their loads do not wait on each other, where each probe
/// of a binary search waits on the one before (a cache miss each, when the
/// table is cold).
#[inline]
fn starts_at_or_before<K: SegmentKey, V>(entries: &[Entry<K, V>], addr: K) -> usize {
    let linear = (LINEAR_BYTES / std::mem::size_of::<Entry<K, V>>()).max(1);
    let (mut base, mut size) = (0, entries.len());
    while size > linear {
        let half = size / 2;
        // Everything before `base` starts at or before `addr`, nothing
        // from `base + size` on does.
        if entries.get(base + half).is_some_and(|e| e.start <= addr) {
            base += half;
        }
        size -= half;
    }
    base + entries
        .get(base..base + size)
        .map_or(0, |w| w.iter().filter(|e| e.start <= addr).count())
}

/// The span [`starts_at_or_before`] counts rather than halves (of 1, 2, 4
/// and 8 cache lines, 2 measured fastest on cold lookups).
const LINEAR_BYTES: usize = LINEAR_LINES * 64;
const LINEAR_LINES: usize = 2;

impl<K: SegmentKey> Segments<K> {
    /// One table of several: each segment holds every table's value there.
    pub fn merge<const N: usize>(tables: [&Self; N]) -> Segments<K, [u32; N]> {
        let mut entries = Vec::with_capacity(tables.iter().map(|t| t.len()).sum());
        let mut at = [0usize; N];
        let mut value = [NONE; N];
        loop {
            let mut next = None;
            for (t, &i) in tables.iter().zip(&at) {
                if let Some(e) = t.entries.get(i) {
                    next = Some(next.map_or(e.start, |n: K| n.min(e.start)));
                }
            }
            let Some(next) = next else { break };
            for ((t, i), v) in tables.iter().zip(&mut at).zip(&mut value) {
                if let Some(e) = t.entries.get(*i).filter(|e| e.start == next) {
                    *v = e.value;
                    *i += 1;
                }
            }
            // Starts are distinct; only a value equal to the previous one
            // (or a leading "none") adds nothing.
            if entries.last().map_or(value != [NONE; N], |e: &Entry<K, [u32; N]>| e.value != value)
            {
                entries.push(Entry { start: next, value });
            }
        }
        Segments::from_entries(entries)
    }

    /// Flattens `(first, last, prefix length, value)` ranges; among nested
    /// ones the longest prefix wins, among identical ones the later one.
    fn flatten(ranges: Vec<(K, K, u8, u32)>) -> Self {
        let mut sorted: Vec<(usize, (K, K, u8, u32))> = ranges.into_iter().enumerate().collect();
        // At one start, wider prefixes first; identical ones in input order.
        sorted.sort_unstable_by_key(|(i, (first, _, len, _))| (*first, *len, *i));
        let mut out = SegmentsBuilder::default();
        // Open prefixes, innermost last: (last address, value).
        let mut stack: Vec<(K, u32)> = Vec::new();
        for (_, (first, last, _, value)) in sorted {
            while let Some(&(top_last, _)) = stack.last() {
                if top_last >= first {
                    break;
                }
                stack.pop();
                // After an inner prefix ends, the enclosing one resumes.
                if let Some(next) = top_last.next() {
                    out.push(next, stack.last().map_or(NONE, |t| t.1));
                }
            }
            out.push(first, value);
            stack.push((last, value));
        }
        while let Some((top_last, _)) = stack.pop() {
            if let Some(next) = top_last.next() {
                out.push(next, stack.last().map_or(NONE, |t| t.1));
            }
        }
        out.build()
    }
}

/// Builds segments from starts in ascending order.
#[derive(Debug)]
pub struct SegmentsBuilder<K, V = u32> {
    entries: Vec<Entry<K, V>>,
}

impl<K, V> Default for SegmentsBuilder<K, V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<K: SegmentKey, V: SegmentValue> SegmentsBuilder<K, V> {
    pub fn with_capacity(n: usize) -> Self {
        Self { entries: Vec::with_capacity(n) }
    }

    /// A segment from `at` (≥ every earlier start) with `value`.
    pub fn push(&mut self, at: K, value: V) {
        // A segment starting where the previous one starts replaces it.
        if self.entries.last().is_some_and(|e| e.start == at) {
            self.entries.pop();
        }
        // Adjacent segments with one value are one segment.
        let same = match self.entries.last() {
            Some(e) => e.value == value,
            None => value == V::NONE,
        };
        if !same {
            self.entries.push(Entry { start: at, value });
        }
    }

    pub fn build(self) -> Segments<K, V> {
        Segments::from_entries(self.entries)
    }
}

/// Prefix tables for IPv4 and IPv6.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixTable {
    pub v4: Segments<u32>,
    pub v6: Segments<u128>,
}

impl PrefixTable {
    /// Builds the table; later entries win over identical earlier prefixes.
    pub fn build(prefixes: impl IntoIterator<Item = (IpNet, u32)>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (net, value) in prefixes {
            match net.trunc() {
                IpNet::V4(n) => v4.push((
                    u32::from(n.network()),
                    u32::from(n.broadcast()),
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
        Self { v4: Segments::flatten(v4), v6: Segments::flatten(v6) }
    }

    /// The value of the most specific prefix holding `ip`.
    #[inline]
    pub fn get(&self, ip: IpAddr) -> Option<u32> {
        let v = match ip {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
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

    #[test]
    fn ipv6_buckets_are_monotonic_and_spread_2000_3() {
        let b = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap()).bucket(16);
        let last = (1 << 16) - 1;
        assert_eq!(b("::1"), 0);
        assert_eq!(b("2000::"), 0);
        assert_eq!(b("2000:2000::"), 1, "a /19 per bucket");
        assert_eq!(b("2a00::"), 0xa00 << 3);
        assert_eq!(b("3fff:ffff::"), last);
        assert_eq!(b("fe80::1"), last);
        assert_eq!(u128::MAX.bucket(16), last);
        assert_eq!(u128::MAX.bucket(20), (1 << 20) - 1);
        assert_eq!(u32::MAX.bucket(20), (1 << 20) - 1);
    }

    /// Random nets, as a table and as a naive list.
    fn nets<K: SegmentKey>(raw: &[(u128, u8)]) -> Vec<(K, K, u8, u32)> {
        raw.iter()
            .enumerate()
            .map(|(i, &(a, len))| {
                let host = K::BITS - u32::from(len);
                let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
                let first = (a & !mask) & (u128::MAX >> (128 - K::BITS));
                (K::from_u128(first), K::from_u128(first | mask), len, i as u32)
            })
            .collect()
    }

    fn naive<K: SegmentKey>(nets: &[(K, K, u8, u32)], addr: K) -> u32 {
        nets.iter()
            .filter(|(f, l, _, _)| *f <= addr && addr <= *l)
            .max_by_key(|(_, _, len, i)| (*len, *i))
            .map_or(NONE, |n| n.3)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The flattened table agrees with a naive longest-prefix search,
        /// in small (searched whole) and indexed tables of both families.
        #[test]
        fn agrees_with_naive_lpm(raw in proptest::collection::vec((any::<u128>(), 0u8..=32), 0..40),
                                 extra in 0usize..6000,
                                 probes in proptest::collection::vec(any::<u128>(), 50)) {
            // Many /32s make the table large enough to be indexed.
            let mut raw = raw;
            raw.extend((0..extra).map(|i| ((i as u128) << 40 | 0x2a00 << 112 | (i as u128) << 8, 32)));
            let v4 = nets::<u32>(&raw.iter().map(|&(a, l)| (a & 0xffff_ffff, l)).collect::<Vec<_>>());
            let v6 = nets::<u128>(&raw.iter().map(|&(a, l)| (a, l * 4)).collect::<Vec<_>>());
            let t4 = Segments::flatten(v4.clone());
            let t6 = Segments::flatten(v6.clone());
            prop_assert_eq!(t6.index.is_empty(), t6.len() <= INDEXED_FROM);
            let n = raw.len() - extra;
            let starts4 = v4[..n].iter().flat_map(|n| [n.0, n.1]);
            for p in probes.iter().map(|p| *p as u32).chain(starts4) {
                prop_assert_eq!(t4.get(p), naive(&v4, p), "{}", std::net::Ipv4Addr::from(p));
            }
            let starts6 = v6[..n].iter().flat_map(|n| [n.0, n.1]);
            for p in probes.iter().copied().chain(starts6) {
                prop_assert_eq!(t6.get(p), naive(&v6, p), "{}", std::net::Ipv6Addr::from(p));
            }
        }
    }
}
