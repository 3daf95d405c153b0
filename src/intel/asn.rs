//! IP → autonomous system, from a compact file of our own format built from
//! ip-location-db's `asn-ipv4.csv` / `asn-ipv6.csv` (start, end, ASN,
//! organisation), or from a MaxMind-format ASN database (see `geo.rs`).
//!
//! File format (`.xbasn`, gzip-compressed, integers little-endian):
//! magic `XBASN001`; `u32` count of IPv4 segments, then per segment `u32`
//! first address and `u32` ASN (0: none); `u32` count of IPv6 segments, then
//! `u128` first address and `u32` ASN; `u32` count of organisations, then
//! `u32` ASN, `u16` length and that many UTF-8 bytes of the name.

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::segments::{Segments, NONE};
use super::IntelError;

const MAGIC: &[u8; 8] = b"XBASN001";

/// IP → (ASN, organisation).
#[derive(Clone, Debug, Default)]
pub struct AsnTable {
    v4: Segments,
    v6: Segments,
    /// (ASN, start, end) into `names`, sorted by ASN: one string for all
    /// 90,000 names loads far faster than one allocation each.
    orgs: Vec<(u32, u32, u32)>,
    names: String,
}

impl AsnTable {
    /// The ASN and its organisation for `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<(u32, Option<Arc<str>>)> {
        let asn = match ip {
            IpAddr::V4(a) => self.v4.get(u128::from(u32::from(a))),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        };
        (asn != NONE && asn != 0).then(|| (asn, self.org(asn).map(Arc::from)))
    }

    /// The organisation name of `asn`.
    pub fn org(&self, asn: u32) -> Option<&str> {
        let i = self.orgs.binary_search_by_key(&asn, |o| o.0).ok()?;
        let (_, start, end) = self.orgs[i];
        self.names.get(start as usize..end as usize)
    }

    /// Number of (IPv4, IPv6) segments and organisations.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.v4.len(), self.v6.len(), self.orgs.len())
    }

    /// Reads the compact format (gzip-compressed).
    pub fn read(bytes: &[u8], path: &Path) -> Result<Self, IntelError> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(|e| IntelError::corrupt(path, format!("not gzip data: {e}")))?;
        let mut r = Cursor { data: &raw, at: 0, path };
        if r.take(8)? != MAGIC {
            return Err(IntelError::corrupt(path, "not an xborder ASN table (bad magic)".into()));
        }
        let v4 = r.segments(4, 32)?;
        let v6 = r.segments(16, 128)?;
        let n = r.u32()? as usize;
        let mut orgs = Vec::with_capacity(n.min(raw.len() / 6));
        let mut names = String::with_capacity(raw.len() - r.at);
        for _ in 0..n {
            let asn = r.u32()?;
            let len = u16::from_le_bytes(r.take(2)?.try_into().unwrap_or_default()) as usize;
            let name = std::str::from_utf8(r.take(len)?).map_err(|_| {
                IntelError::corrupt(path, format!("organisation of AS{asn} is not UTF-8"))
            })?;
            let start = names.len() as u32;
            names.push_str(name);
            orgs.push((asn, start, names.len() as u32));
        }
        if !orgs.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(IntelError::corrupt(path, "organisations are not sorted by ASN".into()));
        }
        Ok(Self { v4, v6, orgs, names })
    }

    /// Writes the compact format (gzip-compressed).
    pub fn write(&self, out: impl Write) -> io::Result<()> {
        let mut w = flate2::write::GzEncoder::new(out, flate2::Compression::best());
        w.write_all(MAGIC)?;
        for (table, width) in [(&self.v4, 4), (&self.v6, 16)] {
            let (starts, values) = table.parts();
            w.write_all(&(starts.len() as u32).to_le_bytes())?;
            for (s, v) in starts.iter().zip(values) {
                w.write_all(&s.to_le_bytes()[..width])?;
                w.write_all(&v.to_le_bytes())?;
            }
        }
        w.write_all(&(self.orgs.len() as u32).to_le_bytes())?;
        for &(asn, start, end) in &self.orgs {
            let name = &self.names[start as usize..end as usize];
            let bytes = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
            w.write_all(&asn.to_le_bytes())?;
            w.write_all(&(bytes.len() as u16).to_le_bytes())?;
            w.write_all(bytes)?;
        }
        w.finish()?.flush()
    }

    /// Builds the table from ip-location-db CSV files (`start,end,asn,org`;
    /// either family in either file).
    pub fn from_csv(files: &[&Path]) -> Result<Self, IntelError> {
        let mut v4: Vec<(u128, u128, u32)> = Vec::new();
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
                    (IpAddr::V4(s), IpAddr::V4(e)) => {
                        v4.push((u32::from(s).into(), u32::from(e).into(), asn))
                    }
                    (IpAddr::V6(s), IpAddr::V6(e)) => v6.push((s.into(), e.into(), asn)),
                    _ => return Err(bad("start and end of different families")),
                }
                if !org.is_empty() {
                    orgs.entry(asn).or_insert(org);
                }
            }
        }
        let mut sorted: Vec<(u32, String)> = orgs.into_iter().collect();
        sorted.sort();
        let mut table =
            Self { v4: segments_of(v4, 32), v6: segments_of(v6, 128), ..Self::default() };
        for (asn, name) in sorted {
            let start = table.names.len() as u32;
            table.names.push_str(&name);
            table.orgs.push((asn, start, table.names.len() as u32));
        }
        Ok(table)
    }
}

/// Disjoint ranges (the CSV's) into segments with explicit gaps.
fn segments_of(mut ranges: Vec<(u128, u128, u32)>, width: u32) -> Segments {
    ranges.sort();
    let (mut starts, mut values) = (Vec::new(), Vec::new());
    let mut next_free: u128 = 0;
    for (first, last, asn) in ranges {
        if first < next_free && !starts.is_empty() {
            continue; // overlapping row: the first one stays
        }
        if first > next_free && !starts.is_empty() {
            starts.push(next_free);
            values.push(0);
        }
        if values.last() != Some(&asn) {
            starts.push(first);
            values.push(asn);
        }
        next_free = last.saturating_add(1);
    }
    starts.push(next_free);
    values.push(0);
    Segments::from_parts(starts, values, width).unwrap_or_default()
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IntelError> {
        let s = self.data.get(self.at..self.at + n).ok_or_else(|| {
            IntelError::corrupt(
                self.path,
                format!("ends early at byte {} of the decompressed data", self.at),
            )
        })?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, IntelError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }

    fn segments(&mut self, width: usize, bits: u32) -> Result<Segments, IntelError> {
        let n = self.u32()? as usize;
        if n > self.data.len() / (width + 4) {
            return Err(IntelError::corrupt(
                self.path,
                format!("segment count {n} exceeds the file"),
            ));
        }
        let (mut starts, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let mut b = [0u8; 16];
            b[..width].copy_from_slice(self.take(width)?);
            starts.push(u128::from_le_bytes(b));
            values.push(self.u32()?);
        }
        Segments::from_parts(starts, values, bits).ok_or_else(|| {
            IntelError::corrupt(self.path, "segments are not in ascending order".into())
        })
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
