//! IP → autonomous system, from a compact file of our own format built from
//! ip-location-db's `asn-ipv4.csv` / `asn-ipv6.csv` (start, end, ASN,
//! organisation), or from a MaxMind-format ASN database (see `geo.rs`).
//!
//! File format (`.xbasn`, integers little-endian), laid out in arrays so
//! that loading is copying rather than parsing, and not compressed:
//! inflating its 10 MB took 20 ms of every start, and git compresses the
//! file in the repository anyway:
//! magic `XBASN002`; `u32` count of autonomous systems, then per system
//! `u32` ASN, `u16` length and that many UTF-8 bytes of its organisation
//! (length 0: none), sorted by ASN; `u32` count of IPv4 segments, that
//! many `u32` first addresses, then as many `u32` values; the same for
//! IPv6 with `u128` first addresses. A value is the index of the segment's
//! system in the list, `u32::MAX` for addresses that no system announces.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::segments::{SegmentKey, NONE};
use super::tree::NetworkTable;
use super::IntelError;

const MAGIC: &[u8; 8] = b"XBASN002";

/// One autonomous system: its number and its organisation's name in the
/// table's [`OrgNames`] (`NONE`: no name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsRecord {
    pub asn: u32,
    pub org: u32,
}

/// The organisation names of an AS table, in one string.
#[derive(Debug, Default)]
pub struct OrgNames {
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<u32>,
    /// Names seen, while building: one copy of each.
    index: HashMap<Box<str>, u32>,
}

impl OrgNames {
    /// The index of `name`, added if new.
    pub fn add(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.push(name);
        self.index.insert(Box::from(name), i);
        i
    }

    /// Adds `name` without looking for a copy.
    fn push(&mut self, name: &str) -> u32 {
        self.text.push_str(name);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    pub fn get(&self, i: u32) -> Option<&str> {
        let i = i as usize;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? as usize };
        self.text.get(start..*self.ends.get(i)? as usize)
    }

    /// From the text and the end of each name, as [`Self::parts`] gave
    /// them; `None` if an end lies outside the text.
    pub fn from_parts(text: String, ends: Vec<u32>) -> Option<Arc<Self>> {
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        let inside = ends.last().is_none_or(|&e| e as usize <= text.len());
        (ordered && inside).then(|| Arc::new(Self { text, ends, index: HashMap::new() }))
    }

    /// Every name in one string, and where each ends in it.
    pub fn parts(&self) -> (&str, &[u32]) {
        (&self.text, &self.ends)
    }

    /// Done adding: the look-up map goes.
    fn finished(mut self) -> Arc<Self> {
        self.index = HashMap::new();
        Arc::new(self)
    }
}

/// An AS organisation's name. One from an AS table is the table and an
/// index: cloning it (each lookup does) touches only the table's shared
/// count, not the name, which is read when a report is written.
#[derive(Clone)]
pub enum OrgName {
    Listed(Arc<OrgNames>, u32),
    /// A name of its own (an overlay's).
    Text(Arc<str>),
}

impl OrgName {
    /// Name `index` of `names`; `NONE`: no name.
    #[inline]
    pub fn listed(names: &Arc<OrgNames>, index: u32) -> Option<Self> {
        (index != NONE).then(|| OrgName::Listed(names.clone(), index))
    }
}

impl std::ops::Deref for OrgName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            OrgName::Listed(names, i) => names.get(*i).unwrap_or(""),
            OrgName::Text(t) => t,
        }
    }
}

impl PartialEq for OrgName {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for OrgName {}

impl std::fmt::Display for OrgName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl std::fmt::Debug for OrgName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl serde::Serialize for OrgName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// IP → (ASN, organisation).
#[derive(Clone, Debug, Default)]
pub struct AsnTable {
    networks: NetworkTable<AsRecord>,
    names: Arc<OrgNames>,
}

impl AsnTable {
    /// The ASN and its organisation for `ip`.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<(u32, Option<OrgName>)> {
        let (r, _) = self.networks.lookup(ip)?;
        Some((r.asn, OrgName::listed(&self.names, r.org)))
    }

    /// Number of (IPv4, IPv6) segments and autonomous systems.
    pub fn counts(&self) -> (usize, usize, usize) {
        let (v4, v6) = self.networks.counts();
        (v4, v6, self.networks.records().len())
    }

    /// From networks whose systems name their organisations in `names`.
    pub fn from_networks(networks: NetworkTable<AsRecord>, names: OrgNames) -> Self {
        Self { networks, names: names.finished() }
    }

    /// The networks and the names, to merge with the country's networks.
    pub fn into_parts(self) -> (NetworkTable<AsRecord>, Arc<OrgNames>) {
        (self.networks, self.names)
    }

    /// Reads the compact format.
    pub fn read(raw: &[u8], path: &Path) -> Result<Self, IntelError> {
        let mut r = Cursor::new(raw, path);
        if r.take(8)? != MAGIC {
            return Err(IntelError::corrupt(path, "not an xborder ASN table (bad magic)".into()));
        }
        let n = r.u32()? as usize;
        let mut records = Vec::with_capacity(n.min(raw.len() / 6));
        let mut names = OrgNames::default();
        for _ in 0..n {
            let asn = r.u32()?;
            let len = u16::from_le_bytes(r.array()?) as usize;
            let name = std::str::from_utf8(r.take(len)?).map_err(|_| {
                IntelError::corrupt(path, format!("organisation of AS{asn} is not UTF-8"))
            })?;
            // The file holds one name per system: no copies to look for.
            let org = if name.is_empty() { NONE } else { names.push(name) };
            records.push(AsRecord { asn, org });
        }
        if !records.windows(2).all(|w| w[0].asn < w[1].asn) {
            return Err(IntelError::corrupt(path, "systems are not sorted by ASN".into()));
        }
        let v4 = r.segments::<u32, 4>()?;
        let v6 = r.segments::<u128, 16>()?;
        let networks = NetworkTable::from_indexed(v4, v6, records).ok_or_else(|| {
            IntelError::corrupt(path, "segments out of order or naming no system".into())
        })?;
        Ok(Self::from_networks(networks, names))
    }

    /// Writes the compact format.
    pub fn write(&self, out: impl Write) -> io::Result<()> {
        let mut w = io::BufWriter::new(out);
        w.write_all(MAGIC)?;
        let records = self.networks.records();
        w.write_all(&(records.len() as u32).to_le_bytes())?;
        for r in records {
            let name = self.names.get(r.org).unwrap_or("");
            // Cut at a character boundary within the u16 length.
            let mut end = name.len().min(u16::MAX as usize);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            w.write_all(&r.asn.to_le_bytes())?;
            w.write_all(&(end as u16).to_le_bytes())?;
            w.write_all(&name.as_bytes()[..end])?;
        }
        let ((s4, v4), (s6, v6)) = self.networks.indexed();
        w.write_all(&(s4.len() as u32).to_le_bytes())?;
        s4.iter().try_for_each(|s| w.write_all(&s.to_le_bytes()))?;
        v4.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?;
        w.write_all(&(s6.len() as u32).to_le_bytes())?;
        s6.iter().try_for_each(|s| w.write_all(&s.to_le_bytes()))?;
        v6.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?;
        w.flush()
    }

    /// Builds the table from ip-location-db CSV files (`start,end,asn,org`;
    /// either family in either file).
    pub fn from_csv(files: &[&Path]) -> Result<Self, IntelError> {
        let mut v4: Vec<(u32, u32, u32)> = Vec::new();
        let mut v6: Vec<(u128, u128, u32)> = Vec::new();
        let mut orgs: HashMap<u32, String> = HashMap::new();
        for path in files {
            let file = std::fs::File::open(path).map_err(|e| IntelError::io(path, e))?;
            for (n, line) in io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| IntelError::io(path, e))?;
                let bad = |what: &str| IntelError::Syntax {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: format!("{what} in '{line}'"),
                };
                let mut cols = line.splitn(4, ',');
                let (Some(start), Some(end), Some(asn)) = (cols.next(), cols.next(), cols.next())
                else {
                    return Err(bad("expected start,end,asn,organisation"));
                };
                let org = cols.next().unwrap_or("");
                // RFC 4180 quoting: "a ""b""" is a "b".
                let org = match org.strip_prefix('"').and_then(|o| o.strip_suffix('"')) {
                    Some(inner) => inner.replace("\"\"", "\""),
                    None => org.to_owned(),
                };
                let start: IpAddr = start.parse().map_err(|_| bad("bad start address"))?;
                let end: IpAddr = end.parse().map_err(|_| bad("bad end address"))?;
                let asn: u32 = asn.parse().map_err(|_| bad("bad ASN"))?;
                match (start, end) {
                    (IpAddr::V4(s), IpAddr::V4(e)) => v4.push((s.into(), e.into(), asn)),
                    (IpAddr::V6(s), IpAddr::V6(e)) => v6.push((s.into(), e.into(), asn)),
                    _ => return Err(bad("start and end of different families")),
                }
                if !org.is_empty() {
                    orgs.entry(asn).or_insert(org);
                }
            }
        }
        let (s4, a4) = segments_of(v4);
        let (s6, a6) = segments_of(v6);
        // One record per announced system, sorted by ASN (0: none).
        let mut asns: Vec<u32> = a4.iter().chain(&a6).copied().filter(|a| *a != 0).collect();
        asns.sort_unstable();
        asns.dedup();
        let index: HashMap<u32, u32> =
            asns.iter().enumerate().map(|(i, a)| (*a, i as u32)).collect();
        let values = |a: Vec<u32>| -> Vec<u32> {
            a.into_iter().map(|a| index.get(&a).copied().unwrap_or(NONE)).collect()
        };
        let (v4, v6) = (values(a4), values(a6));
        let mut names = OrgNames::default();
        let records = asns
            .iter()
            .map(|a| AsRecord { asn: *a, org: orgs.get(a).map_or(NONE, |o| names.add(o)) })
            .collect();
        let networks =
            NetworkTable::from_indexed((s4, v4), (s6, v6), records).ok_or_else(|| {
                let path = files.first().map_or(Path::new(""), |p| p);
                IntelError::invalid(path, "too many systems".into())
            })?;
        Ok(Self::from_networks(networks, names))
    }
}

/// Disjoint ranges (the CSV's) into segment starts and ASNs (0: a gap).
fn segments_of<K: SegmentKey>(mut ranges: Vec<(K, K, u32)>) -> (Vec<K>, Vec<u32>) {
    ranges.sort_unstable();
    let (mut starts, mut values) = (Vec::new(), Vec::new());
    // The first address not yet covered; None past the end of the space.
    let mut next_free = Some(K::default());
    for (first, last, asn) in ranges {
        let Some(free) = next_free else { break };
        if first < free && !starts.is_empty() {
            continue; // overlapping row: the first one stays
        }
        if first > free && !starts.is_empty() {
            starts.push(free);
            values.push(0);
        }
        if values.last() != Some(&asn) {
            starts.push(first);
            values.push(asn);
        }
        next_free = last.next();
    }
    if let Some(free) = next_free.filter(|_| !starts.is_empty()) {
        starts.push(free);
        values.push(0);
    }
    (starts, values)
}

/// Reads a binary file front to back; running out is a "corrupt" error
/// naming the file and the byte.
pub(super) struct Cursor<'a, 'p> {
    data: &'a [u8],
    at: usize,
    path: &'p Path,
}

impl<'a, 'p> Cursor<'a, 'p> {
    pub(super) fn new(data: &'a [u8], path: &'p Path) -> Self {
        Self { data, at: 0, path }
    }

    /// A "corrupt" error naming the file and where the cursor is.
    pub(super) fn corrupt(&self, message: String) -> IntelError {
        IntelError::corrupt(self.path, format!("at byte {}: {message}", self.at))
    }

    /// Where the next read starts.
    pub(super) fn at(&self) -> usize {
        self.at
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], IntelError> {
        let s = self.data.get(self.at..self.at.saturating_add(n)).ok_or_else(|| {
            IntelError::corrupt(self.path, format!("ends early at byte {}", self.at))
        })?;
        self.at += n;
        Ok(s)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], IntelError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn u32(&mut self) -> Result<u32, IntelError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// `n` little-endian `u32`s.
    pub(super) fn u32s(&mut self, n: usize) -> Result<Vec<u32>, IntelError> {
        let bytes = self.take(n.saturating_mul(4))?;
        Ok(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// A count, then that many `N`-byte starts and as many `u32` values.
    fn segments<K: SegmentKey, const N: usize>(
        &mut self,
    ) -> Result<(Vec<K>, Vec<u32>), IntelError> {
        let n = self.u32()? as usize;
        let starts = self.take(n.saturating_mul(N))?;
        let values = self.u32s(n)?;
        let starts = starts
            .chunks_exact(N)
            .map(|c| {
                let mut b = [0u8; 16];
                b[..N].copy_from_slice(c);
                K::from_u128(u128::from_le_bytes(b))
            })
            .collect();
        Ok((starts, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_through_the_compact_format() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("asn.csv");
        std::fs::write(
            &csv,
            "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n1.0.4.0,1.0.7.255,38803,Gtelecom\n\
             2001:db8::,2001:db8::ffff,64500,\"Quoted \"\"name\"\"\"\n",
        )
        .unwrap();
        let t = AsnTable::from_csv(&[&csv]).unwrap();
        let mut bytes = Vec::new();
        t.write(&mut bytes).unwrap();
        let t = AsnTable::read(&bytes, Path::new("t")).unwrap();
        let get = |s: &str| {
            t.lookup(s.parse().unwrap()).map(|(a, o)| (a, o.as_deref().map(str::to_owned)))
        };
        assert_eq!(get("1.0.0.7"), Some((13335, Some("Cloudflare, Inc.".into()))));
        assert_eq!(get("1.0.1.0"), None);
        assert_eq!(get("1.0.7.255"), Some((38803, Some("Gtelecom".into()))));
        assert_eq!(get("1.0.8.0"), None);
        assert_eq!(get("2001:db8::1"), Some((64500, Some("Quoted \"name\"".into()))));
        assert!(AsnTable::read(&bytes[..bytes.len() / 2], Path::new("t")).is_err());
        assert!(AsnTable::read(b"nonsense", Path::new("t")).is_err());
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("asn.csv");
        std::fs::write(&csv, "1.0.0.0,1.0.0.255,13335,x\n1.0.1.0,1.0.1.255,AS5,y\n").unwrap();
        let err = AsnTable::from_csv(&[&csv]).unwrap_err().to_string();
        assert!(err.ends_with("asn.csv:2: bad ASN in '1.0.1.0,1.0.1.255,AS5,y'"), "{err}");
    }
}
