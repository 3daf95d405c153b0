//! A MaxMind DB search tree flattened into segment tables at load time, so
//! that a lookup is a binary search over a few cache lines instead of a
//! walk of up to 128 nodes scattered over megabytes (measured: ~300 ns a
//! lookup in the tree, under 100 ns in the segments).
//!
//! The walk reads the tree section as the MaxMind DB format specification
//! lays it out (records of 24, 28 or 32 bits; a record below the node
//! count is a node, equal to it "no data", above it a data pointer). The
//! `maxminddb` crate has no walk that does not also build a network and a
//! result per leaf (74 ms for the shipped database's million networks;
//! this walk: a few ms), so the walk is ours; each distinct record is
//! still decoded by `maxminddb`, once, through a lookup of one of its
//! addresses.
//!
//! In an IPv6 database the IPv4 space is the subtree at `::/96`, and other
//! prefixes (`::ffff:0:0/96`, `2002::/16`) may point at the same subtree.
//! The IPv4 table holds that subtree once; an IPv6 segment that points at
//! it says so ([`ALIAS`]) and a lookup there continues in the IPv4 table
//! with the embedded address, as a lookup in the tree would.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::segments::{Segments, SegmentsBuilder, NONE};

/// A value with this top byte marks an IPv6 segment that continues in the
/// IPv4 table; the low byte is the prefix length at which it does.
const ALIAS: u32 = 0xff00_0000;

/// The most records a table can index (24 bits of the value; the low byte
/// is the prefix length).
pub const MAX_RECORDS: usize = 0xff_0000;

/// What a leaf of the tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// No data.
    Empty,
    /// A data pointer (the record's raw value).
    Data(u32),
    /// The IPv4 subtree of an IPv6 database.
    V4Alias,
}

/// Why a tree cannot be walked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// A node lies beyond the end of the file.
    Truncated { node: u32 },
    /// The tree goes deeper than the address has bits.
    TooDeep { node: u32 },
    /// More nodes visited than a tree of this size has: nodes are shared
    /// (or the tree loops).
    NotATree,
    /// A record size other than 24, 28 and 32 bits.
    RecordSize(u16),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Truncated { node } => write!(f, "search tree node {node} is past the end"),
            TreeError::TooDeep { node } => {
                write!(f, "search tree node {node} is deeper than an address has bits")
            }
            TreeError::NotATree => write!(f, "search tree nodes are shared or loop"),
            TreeError::RecordSize(s) => write!(f, "unsupported record size {s}"),
        }
    }
}

/// The search tree section of a database.
pub struct SearchTree<'a> {
    bytes: &'a [u8],
    node_count: u32,
    record_size: u16,
    ipv6: bool,
}

impl<'a> SearchTree<'a> {
    pub fn new(
        bytes: &'a [u8],
        node_count: u32,
        record_size: u16,
        ipv6: bool,
    ) -> Result<Self, TreeError> {
        if !matches!(record_size, 24 | 28 | 32) {
            return Err(TreeError::RecordSize(record_size));
        }
        Ok(Self { bytes, node_count, record_size, ipv6 })
    }

    /// The left and right records of `node`.
    #[inline]
    fn children(&self, node: u32) -> Result<(u32, u32), TreeError> {
        let size = usize::from(self.record_size) / 4;
        let base = node as usize * size;
        let b = self.bytes.get(base..base + size).ok_or(TreeError::Truncated { node })?;
        let be3 = |x: &[u8]| u32::from_be_bytes([0, x[0], x[1], x[2]]);
        Ok(match self.record_size {
            24 => (be3(&b[0..3]), be3(&b[3..6])),
            // The middle byte's high nibble tops the left record, its low
            // nibble the right one.
            28 => (
                (u32::from(b[3] & 0xf0) << 20) | be3(&b[0..3]),
                (u32::from(b[3] & 0x0f) << 24) | be3(&b[4..7]),
            ),
            _ => (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ),
        })
    }

    /// The node or terminal record where the IPv4 space starts: after 96
    /// zero bits in an IPv6 tree (sooner if the tree ends sooner), the
    /// root in an IPv4 tree.
    fn ipv4_start(&self) -> Result<u32, TreeError> {
        let mut node = 0;
        if self.ipv6 {
            for _ in 0..96 {
                if node >= self.node_count {
                    break;
                }
                node = self.children(node)?.0;
            }
        }
        Ok(node)
    }

    /// Calls `leaf(first address, prefix length, what it holds)` for every
    /// leaf of the subtree at `root` (an address space of `bits` bits), in
    /// address order. A record pointing at `alias` is reported as
    /// [`Leaf::V4Alias`] instead of walked.
    fn walk(
        &self,
        root: u32,
        bits: u8,
        alias: Option<u32>,
        leaf: &mut impl FnMut(u128, u8, Leaf),
    ) -> Result<(), TreeError> {
        // In a tree every node is visited once; aliases are not followed.
        let mut budget = u64::from(self.node_count) + 1;
        let mut stack: Vec<(u32, u8, u128)> = vec![(root, 0, 0)];
        while let Some((record, depth, start)) = stack.pop() {
            if depth > 0 && alias == Some(record) && depth <= 96 {
                leaf(start, depth, Leaf::V4Alias);
            } else if record < self.node_count {
                if depth == bits {
                    return Err(TreeError::TooDeep { node: record });
                }
                budget = budget.checked_sub(1).ok_or(TreeError::NotATree)?;
                let (left, right) = self.children(record)?;
                stack.push((right, depth + 1, start | 1u128 << (bits - 1 - depth)));
                stack.push((left, depth + 1, start));
            } else if record == self.node_count {
                leaf(start, depth, Leaf::Empty);
            } else {
                leaf(start, depth, Leaf::Data(record));
            }
        }
        Ok(())
    }

    /// Every leaf of the IPv4 space.
    pub fn walk_v4(&self, leaf: &mut impl FnMut(u32, u8, Leaf)) -> Result<(), TreeError> {
        let start = self.ipv4_start()?;
        if start < self.node_count {
            self.walk(start, 32, None, &mut |a, len, l| leaf(a as u32, len, l))
        } else {
            // The tree ends above the IPv4 space: it is all one record.
            leaf(0, 0, if start == self.node_count { Leaf::Empty } else { Leaf::Data(start) });
            Ok(())
        }
    }

    /// Every leaf of the IPv6 space (none in an IPv4 database), with the
    /// IPv4 subtree as [`Leaf::V4Alias`] wherever it appears.
    pub fn walk_v6(&self, leaf: &mut impl FnMut(u128, u8, Leaf)) -> Result<(), TreeError> {
        if !self.ipv6 {
            return Ok(());
        }
        let start = self.ipv4_start()?;
        self.walk(0, 128, (start < self.node_count).then_some(start), leaf)
    }
}

/// Segment starts and their values as record indices (`NONE`: nothing).
pub type Indexed<K> = (Vec<K>, Vec<u32>);

/// The record index and the network that a segment value `v` found for
/// `ip` says, following an IPv6 alias into the IPv4 table (`v4`).
#[inline]
pub(crate) fn resolve(ip: IpAddr, v: u32, v4: impl Fn(u32) -> u32) -> Option<(u32, IpNet)> {
    if v == NONE {
        return None;
    }
    let (v, at) = match ip {
        IpAddr::V6(a) if v & ALIAS == ALIAS => {
            // The IPv4 address follows the alias's prefix.
            let at = (v & 0xff).min(96);
            (v4((u128::from(a) >> (96 - at)) as u32), at)
        }
        _ => (v, 0),
    };
    if v == NONE || v & ALIAS == ALIAS {
        return None;
    }
    let prefix = (at + (v & 0xff)) as u8;
    let net = match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, prefix).ok()?.trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, prefix).ok()?.trunc()),
    };
    Some((v >> 8, net))
}

/// Every network of a database as segments whose values name one of its
/// distinct records (decoded once each) and the network's prefix length.
#[derive(Clone, Debug)]
pub struct NetworkTable<R> {
    v4: Segments<u32>,
    v6: Segments<u128>,
    records: Vec<R>,
}

impl<R> Default for NetworkTable<R> {
    fn default() -> Self {
        Self { v4: Segments::default(), v6: Segments::default(), records: Vec::new() }
    }
}

/// Builds a [`NetworkTable`] from a tree's leaves.
pub struct NetworkTableBuilder<R> {
    v4: SegmentsBuilder<u32>,
    v6: SegmentsBuilder<u128>,
    records: Vec<R>,
}

impl<R> Default for NetworkTableBuilder<R> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<R> NetworkTableBuilder<R> {
    /// Room for about `n` segments of each family.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            v4: SegmentsBuilder::with_capacity(n),
            v6: SegmentsBuilder::with_capacity(n),
            records: Vec::new(),
        }
    }

    /// Adds a record; its index for [`Self::push_v4`] and [`Self::push_v6`].
    pub fn add_record(&mut self, record: R) -> Option<u32> {
        (self.records.len() < MAX_RECORDS).then(|| {
            self.records.push(record);
            (self.records.len() - 1) as u32
        })
    }

    /// The IPv4 network `start/len` holds record `index` (`None`: nothing).
    pub fn push_v4(&mut self, start: u32, len: u8, index: Option<u32>) {
        self.v4.push(start, index.map_or(NONE, |i| i << 8 | u32::from(len)));
    }

    /// The IPv6 network `start/len` holds record `index` (`None`: nothing).
    pub fn push_v6(&mut self, start: u128, len: u8, index: Option<u32>) {
        self.v6.push(start, index.map_or(NONE, |i| i << 8 | u32::from(len)));
    }

    /// The IPv6 network `start/len` holds the IPv4 space.
    pub fn push_v6_alias(&mut self, start: u128, len: u8) {
        self.v6.push(start, ALIAS | u32::from(len));
    }

    pub fn build(self) -> NetworkTable<R> {
        NetworkTable { v4: self.v4.build(), v6: self.v6.build(), records: self.records }
    }
}

impl<R> NetworkTable<R> {
    /// From segments whose values index `records` directly (`NONE`:
    /// nothing), for ranges that need not be CIDR networks: a lookup
    /// reports them as networks of length 0.
    pub fn from_indexed(v4: Indexed<u32>, v6: Indexed<u128>, records: Vec<R>) -> Option<Self> {
        let n = records.len().min(MAX_RECORDS);
        let encode = |mut values: Vec<u32>| {
            for v in &mut values {
                if *v != NONE {
                    *v = ((*v as usize) < n).then_some(*v << 8)?;
                }
            }
            Some(values)
        };
        Some(Self {
            v4: Segments::from_parts(v4.0, encode(v4.1)?)?,
            v6: Segments::from_parts(v6.0, encode(v6.1)?)?,
            records,
        })
    }

    /// The IPv4 and IPv6 segments with values as record indices (`NONE`:
    /// nothing or an alias), the inverse of [`Self::from_indexed`].
    pub fn indexed(&self) -> (Indexed<u32>, Indexed<u128>) {
        let index = |v: u32| if v == NONE || v & ALIAS == ALIAS { NONE } else { v >> 8 };
        let v4 = self.v4.iter().map(|(s, v)| (s, index(v))).unzip();
        let v6 = self.v6.iter().map(|(s, v)| (s, index(v))).unzip();
        (v4, v6)
    }

    /// The record holding `ip`, and the database's network around it.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<(&R, IpNet)> {
        let v = match ip {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        };
        let (index, net) = resolve(ip, v, |v4| self.v4.get(v4))?;
        Some((self.records.get(index as usize)?, net))
    }

    /// The segments and the records, to merge with another table.
    pub fn into_parts(self) -> (Segments<u32>, Segments<u128>, Vec<R>) {
        (self.v4, self.v6, self.records)
    }

    /// Number of (IPv4, IPv6) segments.
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    pub fn records(&self) -> &[R] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of 24-bit records from `(left, right)` pairs.
    fn tree24(nodes: &[(u32, u32)]) -> Vec<u8> {
        nodes
            .iter()
            .flat_map(|(l, r)| {
                let (l, r) = (l.to_be_bytes(), r.to_be_bytes());
                [l[1], l[2], l[3], r[1], r[2], r[3]]
            })
            .collect()
    }

    #[test]
    fn reads_28_bit_records_with_the_shared_nibble() {
        // left 0x0abcdef, right 0x1234567: nibbles 0 and 1 in the middle.
        let bytes = [0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67];
        let t = SearchTree::new(&bytes, 1, 28, false).unwrap();
        assert_eq!(t.children(0), Ok((0x0abcdef, 0x1234567)));
        let bytes = [0xab, 0xcd, 0xef, 0xf1, 0x23, 0x45, 0x67];
        let t = SearchTree::new(&bytes, 1, 28, false).unwrap();
        assert_eq!(t.children(0).map(|c| c.0), Ok(0xfabcdef));
        assert!(SearchTree::new(&bytes, 1, 20, false).is_err());
    }

    #[test]
    fn walks_leaves_in_address_order() {
        // IPv4 tree: 0.0.0.0/1 -> node 1; 128.0.0.0/1 -> data; node 1:
        // 0.0.0.0/2 empty, 64.0.0.0/2 data.
        let n = 2;
        let bytes = tree24(&[(1, n + 20), (n, n + 16)]);
        let t = SearchTree::new(&bytes, n, 24, false).unwrap();
        let mut seen = Vec::new();
        t.walk_v4(&mut |a, len, l| seen.push((a, len, l))).unwrap();
        t.walk_v6(&mut |_, _, _| panic!("no IPv6")).unwrap();
        assert_eq!(
            seen,
            [
                (0, 2, Leaf::Empty),
                (0x4000_0000, 2, Leaf::Data(n + 16)),
                (0x8000_0000, 1, Leaf::Data(n + 20))
            ]
        );
    }

    #[test]
    fn shared_or_looping_nodes_are_an_error() {
        // Node 0's children are both node 0: a loop.
        let bytes = tree24(&[(0, 0)]);
        let t = SearchTree::new(&bytes, 1, 24, false).unwrap();
        let err = t.walk_v4(&mut |_, _, _| {}).unwrap_err();
        assert_eq!(err, TreeError::NotATree);
        // A node past the end of the file.
        let bytes = tree24(&[(5, 1)]);
        let t = SearchTree::new(&bytes, 9, 24, false).unwrap();
        assert_eq!(t.walk_v4(&mut |_, _, _| {}), Err(TreeError::Truncated { node: 5 }));
    }

    #[test]
    fn ipv6_aliases_continue_in_the_ipv4_table() {
        let mut b = NetworkTableBuilder::default();
        let r = b.add_record("x");
        b.push_v4(0, 1, None);
        b.push_v4(0x8000_0000, 8, r);
        b.push_v4(0x8100_0000, 8, None);
        b.push_v6(0, 0, None);
        // 2002::/16 is 6to4: the IPv4 address follows the first 16 bits.
        b.push_v6_alias(0x2002 << 112, 16);
        b.push_v6(0x2003 << 112, 16, None);
        let t = b.build();
        let get = |s: &str| t.lookup(s.parse().unwrap()).map(|(r, n)| (*r, n.to_string()));
        assert_eq!(get("128.1.2.3"), Some(("x", "128.0.0.0/8".into())));
        assert_eq!(get("127.1.2.3"), None);
        assert_eq!(get("2002:8001:0203::1"), Some(("x", "2002:8000::/24".into())));
        assert_eq!(get("2002:7f01:0203::1"), None);
        assert_eq!(get("2003::1"), None);
    }
}
