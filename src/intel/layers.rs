//! The layers keyed by address — its autonomous system, its geo-IP
//! country and the provider range holding it — merged into one segment
//! table when the intelligence loads: a lookup finds all three with one
//! binary search.
//!
//! Why (perf on `cargo bench --bench intel`): a lookup's time is cache
//! misses in the searches; before the provider ranges were merged in,
//! their own search was about a sixth of it.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use super::asn::{AsRecord, AsnTable, Cursor, OrgName, OrgNames};
use super::segments::{Entry, LayoutError, PrefixTable, SegmentKey, Segments, NONE};
use super::tree::{resolve, NetworkTable};
use super::CountryCode;
use super::IntelError;

/// AS and country by address, merged.
#[derive(Clone, Debug, Default)]
pub struct AddressLayers {
    /// Per segment: the AS table's value, the country table's value, the
    /// provider range's index.
    v4: Segments<u32, [u32; 3]>,
    v6: Segments<u128, [u32; 3]>,
    ases: Vec<AsRecord>,
    names: Arc<OrgNames>,
    countries: Vec<CountryCode>,
}

/// What the address layers know of one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressFacts {
    /// The AS number and its organisation.
    pub system: Option<(u32, Option<OrgName>)>,
    /// The country and the database's network around the address.
    pub country: Option<(CountryCode, IpNet)>,
    /// The index of the most specific provider range holding the address.
    pub range: Option<u32>,
}

impl AddressLayers {
    pub fn merge(
        ases: AsnTable,
        countries: NetworkTable<CountryCode>,
        ranges: &PrefixTable,
    ) -> Self {
        let (ases, names) = ases.into_parts();
        let (a4, a6, ases) = ases.into_parts();
        let (c4, c6, countries) = countries.into_parts();
        let v4 = Segments::merge([&a4, &c4, &ranges.v4]);
        let v6 = Segments::merge([&a6, &c6, &ranges.v6]);
        Self { v4, v6, ases, names, countries }
    }

    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> AddressFacts {
        let cell = match ip {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        };
        let layer = |i: usize| resolve(ip, cell[i], |v4| self.v4.get(v4)[i]);
        AddressFacts {
            system: layer(0)
                .and_then(|(r, _)| self.ases.get(r as usize))
                .map(|r| (r.asn, OrgName::listed(&self.names, r.org))),
            country: layer(1).and_then(|(r, net)| Some((*self.countries.get(r as usize)?, net))),
            range: (cell[2] != NONE).then_some(cell[2]),
        }
    }

    /// Are the segment tables used in place from the compiled form?
    pub fn in_place(&self) -> bool {
        self.v4.in_place() && self.v6.in_place()
    }

    /// Number of autonomous systems.
    pub fn systems(&self) -> usize {
        self.ases.len()
    }

    /// Number of (IPv4, IPv6) segments.
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }
}

/// Magic of the compiled form ([`AddressLayers::write`]).
const MAGIC: &[u8; 8] = b"XBLAYER2";

/// Every table of the compiled form starts at a multiple of this: the
/// alignment of an IPv6 segment.
pub const ALIGN: usize = 16;

/// What a compiled table was merged from: the SHA-256 of each file, and
/// the AS table's own segment counts (for `db info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerSources {
    pub asn: [u8; 32],
    pub country: [u8; 32],
    pub ranges: [u8; 32],
    /// IPv4 and IPv6 segments of the AS table.
    pub asn_segments: (u32, u32),
}

impl LayerSources {
    /// The sources a compiled form records in its header, without reading
    /// its tables; `None` if `bytes` is not one.
    pub fn of_header(bytes: &[u8]) -> Option<Self> {
        let word = |i: usize| {
            let at = MAGIC.len() + 4 * i;
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let digest = |i: usize| -> Option<[u8; 32]> {
            let at = MAGIC.len() + 40 + 32 * i;
            bytes.get(at..at + 32)?.try_into().ok()
        };
        if bytes.get(..MAGIC.len())? != MAGIC {
            return None;
        }
        Some(Self {
            asn: digest(0)?,
            country: digest(1)?,
            ranges: digest(2)?,
            asn_segments: (word(8)?, word(9)?),
        })
    }
}

/// Bytes up to the next multiple of [`ALIGN`].
fn padded(n: usize) -> usize {
    n.checked_next_multiple_of(ALIGN).unwrap_or(usize::MAX)
}

impl AddressLayers {
    /// The compiled form, which [`Self::from_bytes`] uses in place:
    ///
    /// ```text
    /// "XBLAYER2"
    /// u32 × 10   IPv4 segments, IPv4 index bits, IPv6 segments, IPv6 index
    ///            bits, systems, countries, organisation names, their bytes,
    ///            the AS table's IPv4 and IPv6 segments
    /// 32 × 3     SHA-256 of the AS table, the country database, the ranges
    /// tables     IPv4 segments (16 bytes: start, AS, country, range), its
    ///            index (u32 per bucket, one more), then the same for IPv6
    ///            (32 bytes: start, the three values, 4 bytes of padding);
    ///            each padded to 16 bytes
    /// u32 × 2    per system: ASN, organisation name
    /// u8 × 2     per country: its code
    /// u32        per name: where it ends in the text
    /// text       the names, UTF-8
    /// ranges     the provider ranges the range values index, in the form
    ///            of `ProviderRanges::write_compiled`
    /// ```
    ///
    /// Little-endian throughout; the tables start on multiples of 16.
    pub fn write(&self, sources: &LayerSources, ranges: &[u8]) -> Vec<u8> {
        let (text, ends) = self.names.parts();
        let mut out = Vec::with_capacity(
            self.v4.len() * 16 + self.v6.len() * 32 + text.len() + ends.len() * 4 + (1 << 20),
        );
        out.extend_from_slice(MAGIC);
        let header = [
            self.v4.len(),
            self.v4.index_bits() as usize,
            self.v6.len(),
            self.v6.index_bits() as usize,
            self.ases.len(),
            self.countries.len(),
            ends.len(),
            text.len(),
            sources.asn_segments.0 as usize,
            sources.asn_segments.1 as usize,
        ];
        for n in header {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for digest in [&sources.asn, &sources.country, &sources.ranges] {
            out.extend_from_slice(digest);
        }
        out.resize(padded(out.len()), 0);
        self.v4.write_le(&mut out, ALIGN);
        self.v6.write_le(&mut out, ALIGN);
        for r in &self.ases {
            out.extend_from_slice(&r.asn.to_le_bytes());
            out.extend_from_slice(&r.org.to_le_bytes());
        }
        for c in &self.countries {
            out.extend_from_slice(c.as_str().as_bytes());
        }
        for e in ends {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(ranges);
        out
    }

    /// The compiled form, its segment tables used in place (no copy, no
    /// merge: pages are read as lookups touch them). `bytes` must start at
    /// a multiple of `ALIGN` (16) and the machine be little-endian; the
    /// systems, countries and names (a few MB) are copied and checked.
    /// Also returns the provider ranges' bytes, for
    /// `ProviderRanges::from_compiled`.
    pub fn from_bytes(
        bytes: &'static [u8],
        path: &Path,
    ) -> Result<(Self, LayerSources, &'static [u8]), IntelError> {
        let corrupt = |message: String| IntelError::corrupt(path, message);
        if cfg!(target_endian = "big") {
            return Err(corrupt("compiled for little-endian machines".into()));
        }
        let mut r = Cursor::new(bytes, path);
        if r.take(8)? != MAGIC {
            return Err(corrupt("not a compiled address-layers file (bad magic)".into()));
        }
        let mut header = [0usize; 10];
        for n in &mut header {
            *n = r.u32()? as usize;
        }
        let [n4, bits4, n6, bits6, n_ases, n_countries, n_names, text_len, asn4, asn6] = header;
        let sources = LayerSources {
            asn: r.array()?,
            country: r.array()?,
            ranges: r.array()?,
            asn_segments: (asn4 as u32, asn6 as u32),
        };
        r.take(padded(r.at()) - r.at())?;
        let v4 = compiled_table::<u32>(&mut r, n4, bits4)?;
        let v6 = compiled_table::<u128>(&mut r, n6, bits6)?;
        let ases = r
            .u32s(n_ases.saturating_mul(2))?
            .chunks_exact(2)
            .map(|w| AsRecord { asn: w[0], org: w[1] })
            .collect();
        let countries = r
            .take(n_countries.saturating_mul(2))?
            .chunks_exact(2)
            .map(|c| std::str::from_utf8(c).ok().and_then(CountryCode::parse))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| corrupt("a country code is not two letters".into()))?;
        let ends = r.u32s(n_names)?;
        let text = String::from_utf8(r.take(text_len)?.to_vec())
            .map_err(|_| corrupt("organisation names are not UTF-8".into()))?;
        let names = OrgNames::from_parts(text, ends)
            .ok_or_else(|| corrupt("organisation names end outside their text".into()))?;
        let ranges = r.take(bytes.len().saturating_sub(r.at()))?;
        Ok((Self { v4, v6, ases, names, countries }, sources, ranges))
    }
}

/// One family's segments and index from the compiled form.
fn compiled_table<K: SegmentKey>(
    r: &mut Cursor<'static, '_>,
    n: usize,
    bits: usize,
) -> Result<Segments<K, [u32; 3]>, IntelError> {
    let entry = std::mem::size_of::<Entry<K, [u32; 3]>>();
    let index = match bits {
        0 => 0,
        1..=16 => (1 << bits) + 1,
        _ => return Err(r.corrupt(format!("{bits} index bits (at most 16)"))),
    };
    let entries = &r.take(padded(n.saturating_mul(entry)))?[..n * entry];
    let index = &r.take(padded(index * 4))?[..index * 4];
    Segments::from_bytes(entries, index, bits as u32).map_err(|e| {
        r.corrupt(match e {
            LayoutError::Shape => "a segment table is not aligned (not the compiled file?)".into(),
            LayoutError::Index => "a segment index does not fit its table".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::tree::NetworkTableBuilder;
    use zerocopy::IntoBytes;

    /// A small merge: two systems, two countries (one via an IPv4 alias
    /// in IPv6), one provider range; enough /32s to index the IPv4 table.
    fn layers() -> AddressLayers {
        let mut names = OrgNames::default();
        let mut ases = NetworkTableBuilder::default();
        let a = ases.add_record(AsRecord { asn: 64500, org: names.add("Example Net") });
        let b = ases.add_record(AsRecord { asn: 64501, org: NONE });
        ases.push_v4(0xc000_0200, 24, a);
        ases.push_v4(0xc000_0300, 24, None);
        ases.push_v6(0x2001_0db8 << 96, 32, b);
        ases.push_v6(0x2001_0db9 << 96, 32, None);
        let mut countries = NetworkTableBuilder::default();
        let de = countries.add_record(CountryCode::parse("DE").unwrap());
        let fr = countries.add_record(CountryCode::parse("fr").unwrap());
        for i in 0..5000u32 {
            countries.push_v4(0x0a00_0000 + 2 * i, 32, if i % 2 == 0 { de } else { fr });
            countries.push_v4(0x0a00_0001 + 2 * i, 32, None);
        }
        countries.push_v4(0xc000_0200, 23, fr);
        countries.push_v4(0xc000_0400, 23, None);
        countries.push_v6(0xffff << 32, 96, None);
        countries.push_v6_alias(0xffff << 32, 96);
        countries.push_v6(0x1_0000_0000_0000, 96, None);
        let ranges: PrefixTable = PrefixTable::build([
            ("192.0.2.128/25".parse().unwrap(), 0),
            ("2001:db8:1::/48".parse().unwrap(), 1),
        ]);
        let asn = AsnTable::from_networks(ases.build(), names);
        AddressLayers::merge(asn, countries.build(), &ranges)
    }

    /// `bytes` copied to a leaked buffer aligned to 16 bytes, at `offset`.
    fn leaked(bytes: &[u8], offset: usize) -> &'static [u8] {
        let buffer: &'static mut [u128] =
            Vec::leak(vec![0u128; (bytes.len() + offset).div_ceil(16)]);
        let all = buffer.as_mut_bytes();
        all[offset..offset + bytes.len()].copy_from_slice(bytes);
        &all[offset..offset + bytes.len()]
    }

    #[test]
    fn the_compiled_form_answers_as_the_merge() {
        let merged = layers();
        assert!(merged.v4.index_bits() > 0, "the IPv4 table is indexed");
        let sources =
            LayerSources { asn: [1; 32], country: [2; 32], ranges: [3; 32], asn_segments: (4, 5) };
        let bytes = merged.write(&sources, b"ranges");
        let (compiled, read, ranges) =
            AddressLayers::from_bytes(leaked(&bytes, 0), Path::new("t.xbl")).unwrap();
        assert_eq!(read, sources);
        assert_eq!(LayerSources::of_header(&bytes), Some(sources));
        assert_eq!(LayerSources::of_header(&bytes[..100]), None);
        assert_eq!(ranges, b"ranges");
        assert_eq!(compiled.counts(), merged.counts());
        assert!(compiled.in_place());
        for ip in [
            "192.0.2.1",
            "192.0.2.200",
            "192.0.3.1",
            "192.0.4.1",
            "10.0.0.0",
            "10.0.0.1",
            "10.0.0.2",
            "10.0.39.15",
            "2001:db8::1",
            "2001:db8:1::1",
            "2001:db9::1",
            "::ffff:192.0.2.130",
            "::ffff:10.0.0.2",
            "8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(compiled.lookup(ip), merged.lookup(ip), "{ip}");
        }
        let facts = compiled.lookup("::ffff:192.0.2.130".parse().unwrap());
        assert_eq!(facts.country.map(|(c, _)| c.to_string()), Some("FR".into()));
        let facts = compiled.lookup("192.0.2.200".parse().unwrap());
        let (asn, org) = facts.system.unwrap();
        assert_eq!((asn, org.as_deref()), (64500, Some("Example Net")));
        assert_eq!(facts.range, Some(0));
    }

    #[test]
    fn damaged_compiled_forms_are_errors_not_panics() {
        let bytes = layers().write(&LayerSources::default(), &[]);
        let path = Path::new("t.xbl");
        let err =
            |b: &'static [u8]| AddressLayers::from_bytes(b, path).err().map(|e| e.to_string());
        let misaligned = err(leaked(&bytes, 8)).unwrap();
        assert!(misaligned.contains("t.xbl") && misaligned.contains("aligned"), "{misaligned}");
        for cut in [0, 7, 100, 144, bytes.len() / 2, bytes.len() - 1] {
            let e = err(leaked(&bytes[..cut], 0)).unwrap();
            assert!(e.contains("t.xbl"), "{e}");
        }
        let mut bad = bytes.clone();
        bad[..8].copy_from_slice(b"XBLAYER1");
        assert!(err(leaked(&bad, 0)).unwrap().contains("bad magic"));
        // A country code that is not two letters.
        let mut bad = bytes.clone();
        let at =
            bytes.len() - layers().names.parts().0.len() - 4 * layers().names.parts().1.len() - 2;
        bad[at] = b'1';
        assert!(err(leaked(&bad, 0)).unwrap().contains("country code"));
        // Random damage anywhere never panics.
        for i in (0..bytes.len()).step_by(97) {
            let mut bad = bytes.clone();
            bad[i] ^= 0xa5;
            let _ = err(leaked(&bad, 0));
        }
    }
}
