//! Compiled provider ranges (`provider-ranges.csv.gz`): one line per prefix,
//! `prefix,provider,service,region,country,feed`, built by `xborder db
//! build` or `xborder db update` from the providers' own feeds. `country`
//! is the hosting country the provider states (geofeeds) or that its region
//! implies (region table). The longest matching prefix wins.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;

use super::asn::Cursor;
use super::segments::{PrefixTable, NONE};
use super::{CountryCode, IntelError, ProviderCatalogue};

/// One published range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RangeEntry {
    pub prefix: IpNet,
    pub provider: String,
    pub service: Option<String>,
    pub region: Option<String>,
    /// Hosting country from the feed or the region.
    pub country: Option<CountryCode>,
    /// The feed it came from, e.g. `aws`.
    pub feed: String,
}

/// What a range says about an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeInfo {
    pub prefix: IpNet,
    /// Index in the catalogue.
    pub provider: usize,
    pub service: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    /// Hosting country from the feed or the region.
    pub country: Option<CountryCode>,
    pub feed: Arc<str>,
}

/// Provider ranges with longest-prefix lookup.
#[derive(Clone, Debug, Default)]
pub struct ProviderRanges {
    /// Built at first use: an audit on the built-in data's cache never
    /// uses it (the merged address layers hold each segment's range), and
    /// building it was a third of the start's instructions.
    table: OnceLock<PrefixTable>,
    infos: Vec<RangeInfo>,
}

const HEADER: &str = "prefix,provider,service,region,country,feed";

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl ProviderRanges {
    /// Reads the gzip-compressed CSV into entries.
    pub fn read_entries(gz: &[u8], path: &Path) -> Result<Vec<RangeEntry>, IntelError> {
        let text = inflate(gz, path)?;
        let entries = rows(&text, path)?
            .map(|row| {
                let r = row?;
                Ok(RangeEntry {
                    prefix: r.prefix,
                    provider: r.provider.to_owned(),
                    service: r.service.map(str::to_owned),
                    region: r.region.map(str::to_owned),
                    country: r.country,
                    feed: r.feed.to_owned(),
                })
            })
            .collect();
        entries
    }

    /// Loads the gzip-compressed CSV; every provider must be in `catalogue`.
    /// (Straight into the lookup form, without owned entries: this runs at
    /// every start.)
    pub fn read(gz: &[u8], path: &Path, catalogue: &ProviderCatalogue) -> Result<Self, IntelError> {
        let text = inflate(gz, path)?;
        let (mut services, mut regions, mut feeds) = Default::default();
        let mut providers = Interner::default();
        let mut infos = Vec::new();
        for row in rows(&text, path)? {
            let r = row?;
            // Interned first: one catalogue look-up per provider, not per row.
            let id = providers.get(r.provider);
            let provider = catalogue.index_of(&id).ok_or_else(|| IntelError::Syntax {
                path: path.to_owned(),
                line: r.line,
                message: format!("provider '{}' is not in the catalogue", r.provider),
            })?;
            infos.push(RangeInfo {
                prefix: r.prefix,
                provider,
                service: r.service.map(|s| Interner::get(&mut services, s)),
                region: r.region.map(|s| Interner::get(&mut regions, s)),
                country: r.country,
                feed: Interner::get(&mut feeds, r.feed),
            });
        }
        Ok(Self::from_infos(infos))
    }

    /// Builds the lookup table.
    pub fn from_entries(
        entries: &[RangeEntry],
        path: &Path,
        catalogue: &ProviderCatalogue,
    ) -> Result<Self, IntelError> {
        let mut interner = Interner::default();
        let mut infos = Vec::with_capacity(entries.len());
        for e in entries {
            let provider = catalogue.index_of(&e.provider).ok_or_else(|| {
                IntelError::invalid(
                    path,
                    format!("{}: provider '{}' is not in the catalogue", e.prefix, e.provider),
                )
            })?;
            infos.push(RangeInfo {
                prefix: e.prefix,
                provider,
                service: e.service.as_deref().map(|s| interner.get(s)),
                region: e.region.as_deref().map(|s| interner.get(s)),
                country: e.country,
                feed: interner.get(&e.feed),
            });
        }
        Ok(Self::from_infos(infos))
    }

    fn from_infos(infos: Vec<RangeInfo>) -> Self {
        Self { table: OnceLock::new(), infos }
    }

    /// The compact form kept in the compiled address layers, read back by
    /// [`Self::from_compiled`] several times faster than the CSV is parsed:
    ///
    /// ```text
    /// u32        strings (provider ids, services, regions, feeds)
    /// u32        per string: where it ends in the text
    /// u32, text  the text's length, the text (UTF-8)
    /// u32        ranges
    /// 36 bytes   per range: address (16, IPv4 in the first 4), family
    ///            (4 or 6), prefix length, country (2 letters, or 0 0),
    ///            then u32 strings: provider, service, region, feed
    ///            (service and region u32::MAX when absent)
    /// ```
    pub fn write_compiled(
        &self,
        catalogue: &ProviderCatalogue,
        path: &Path,
    ) -> Result<Vec<u8>, IntelError> {
        let mut strings: HashMap<String, u32> = HashMap::new();
        let mut text = String::new();
        let mut ends = Vec::new();
        let mut intern = |s: &str| -> u32 {
            if let Some(&i) = strings.get(s) {
                return i;
            }
            text.push_str(s);
            ends.push(text.len() as u32);
            let i = (ends.len() - 1) as u32;
            strings.insert(s.to_owned(), i);
            i
        };
        let mut rows = Vec::with_capacity(self.infos.len() * 36);
        for r in &self.infos {
            let provider = catalogue.get(r.provider).ok_or_else(|| {
                IntelError::invalid(path, format!("{}: provider not in the catalogue", r.prefix))
            })?;
            let (address, family) = match r.prefix {
                IpNet::V4(n) => {
                    let mut a = [0u8; 16];
                    a[..4].copy_from_slice(&n.network().octets());
                    (a, 4u8)
                }
                IpNet::V6(n) => (n.network().octets(), 6u8),
            };
            rows.extend_from_slice(&address);
            rows.extend_from_slice(&[family, r.prefix.prefix_len()]);
            rows.extend_from_slice(
                r.country.as_ref().map_or(&[0, 0][..], |c| c.as_str().as_bytes()),
            );
            let provider = intern(&provider.id);
            let service = r.service.as_deref().map_or(NONE, &mut intern);
            let region = r.region.as_deref().map_or(NONE, &mut intern);
            let feed = intern(&r.feed);
            for v in [provider, service, region, feed] {
                rows.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut out = Vec::with_capacity(rows.len() + text.len() + ends.len() * 4 + 12);
        out.extend_from_slice(&(ends.len() as u32).to_le_bytes());
        for e in &ends {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&(self.infos.len() as u32).to_le_bytes());
        out.extend_from_slice(&rows);
        Ok(out)
    }

    /// Reads [`Self::write_compiled`]'s form; every provider must be in
    /// `catalogue`.
    pub fn from_compiled(
        data: &[u8],
        path: &Path,
        catalogue: &ProviderCatalogue,
    ) -> Result<Self, IntelError> {
        let mut r = Cursor::new(data, path);
        let n = r.u32()? as usize;
        let ends = r.u32s(n)?;
        let len = r.u32()? as usize;
        let text = std::str::from_utf8(r.take(len)?)
            .map_err(|_| r.corrupt("range strings are not UTF-8".into()))?;
        let mut start = 0;
        let mut strings = Vec::with_capacity(n);
        for end in ends {
            let end = end as usize;
            let s = text
                .get(start..end)
                .ok_or_else(|| r.corrupt("a range string ends outside its text".into()))?;
            strings.push(Arc::<str>::from(s));
            start = end;
        }
        let string = |i: u32| strings.get(i as usize).cloned();
        // Providers by string, looked up in the catalogue once each.
        let mut providers: Vec<Option<usize>> = vec![None; strings.len()];
        let count = r.u32()? as usize;
        let rows = r.take(count.saturating_mul(36))?;
        let mut infos = Vec::with_capacity(count);
        for (k, row) in rows.chunks_exact(36).enumerate() {
            let bad = |what: &str| IntelError::corrupt(path, format!("range {k}: {what}"));
            let word =
                |at: usize| u32::from_le_bytes([row[at], row[at + 1], row[at + 2], row[at + 3]]);
            let mut address = [0u8; 16];
            address.copy_from_slice(&row[..16]);
            let ip = match row[16] {
                4 => IpAddr::from([address[0], address[1], address[2], address[3]]),
                6 => IpAddr::from(address),
                _ => return Err(bad("not IPv4 nor IPv6")),
            };
            let prefix = IpNet::new(ip, row[17]).map_err(|_| bad("bad prefix length"))?;
            let country = match &row[18..20] {
                [0, 0] => None,
                c => Some(
                    std::str::from_utf8(c)
                        .ok()
                        .and_then(CountryCode::parse)
                        .ok_or_else(|| bad("bad country"))?,
                ),
            };
            let id = word(20);
            let provider = match providers.get(id as usize).copied().flatten() {
                Some(p) => p,
                None => {
                    let name = string(id).ok_or_else(|| bad("no provider"))?;
                    let p = catalogue.index_of(&name).ok_or_else(|| {
                        IntelError::invalid(
                            path,
                            format!("provider '{name}' is not in the catalogue"),
                        )
                    })?;
                    // `string(id)` was found, so the slot is there.
                    if let Some(slot) = providers.get_mut(id as usize) {
                        *slot = Some(p);
                    }
                    p
                }
            };
            let optional = |v: u32| {
                if v == NONE {
                    Ok(None)
                } else {
                    string(v).map(Some).ok_or_else(|| bad("no such string"))
                }
            };
            infos.push(RangeInfo {
                prefix,
                provider,
                service: optional(word(24))?,
                region: optional(word(28))?,
                country,
                feed: string(word(32)).ok_or_else(|| bad("no feed"))?,
            });
        }
        Ok(Self::from_infos(infos))
    }

    /// Writes entries as the gzip-compressed CSV, sorted.
    pub fn write(entries: &[RangeEntry], out: impl Write) -> std::io::Result<()> {
        let mut w = flate2::write::GzEncoder::new(out, flate2::Compression::best());
        writeln!(w, "{HEADER}")?;
        for e in entries {
            writeln!(
                w,
                "{},{},{},{},{},{}",
                e.prefix,
                e.provider,
                e.service.as_deref().unwrap_or(""),
                e.region.as_deref().unwrap_or(""),
                e.country.as_ref().map_or("", |c| c.as_str()),
                e.feed
            )?;
        }
        w.finish()?.flush()
    }

    /// The most specific range holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&RangeInfo> {
        self.table().get(ip).and_then(|i| self.info(i))
    }

    /// The range of index `i` (the values of [`Self::table`]).
    #[inline]
    pub fn info(&self, i: u32) -> Option<&RangeInfo> {
        self.infos.get(i as usize)
    }

    /// Address → range index, to merge with the other address layers.
    pub fn table(&self) -> &PrefixTable {
        self.table.get_or_init(|| {
            PrefixTable::build(self.infos.iter().enumerate().map(|(i, r)| (r.prefix, i as u32)))
        })
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Prefix counts per feed.
    pub fn feed_counts(&self) -> Vec<(Arc<str>, usize)> {
        let mut counts: HashMap<Arc<str>, usize> = HashMap::new();
        for r in &self.infos {
            *counts.entry(r.feed.clone()).or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort();
        v
    }
}

fn inflate(gz: &[u8], path: &Path) -> Result<String, IntelError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| IntelError::corrupt(path, format!("not gzip-compressed UTF-8 text: {e}")))?;
    Ok(text)
}

/// One line of the file, borrowed.
struct Row<'t> {
    line: usize,
    prefix: IpNet,
    provider: &'t str,
    service: Option<&'t str>,
    region: Option<&'t str>,
    country: Option<CountryCode>,
    feed: &'t str,
}

/// The data lines after the header.
fn rows<'t>(
    text: &'t str,
    path: &'t Path,
) -> Result<impl Iterator<Item = Result<Row<'t>, IntelError>> + 't, IntelError> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(IntelError::corrupt(path, format!("expected the header '{HEADER}'")));
    }
    Ok(lines.enumerate().map(move |(n, line)| {
        let syntax =
            |message: String| IntelError::Syntax { path: path.to_owned(), line: n + 2, message };
        let mut cols = line.split(',');
        let mut next = || cols.next().ok_or_else(|| syntax(format!("expected {HEADER}")));
        let (prefix, provider, service, region, country, feed) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        if cols.next().is_some() {
            return Err(syntax(format!("expected {HEADER}")));
        }
        let country = match opt(country) {
            Some(c) => {
                Some(CountryCode::parse(c).ok_or_else(|| syntax(format!("bad country '{c}'")))?)
            }
            None => None,
        };
        Ok(Row {
            line: n + 2,
            prefix: parse_prefix(prefix).ok_or_else(|| syntax(format!("bad prefix '{prefix}'")))?,
            provider,
            service: opt(service),
            region: opt(region),
            country,
            feed,
        })
    }))
}

/// `ADDRESS/LENGTH`, through the standard library's address parsers
/// (several times faster than `IpNet`'s own, on 71,000 rows at every start).
fn parse_prefix(s: &str) -> Option<IpNet> {
    let (addr, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    IpNet::new(addr.parse::<IpAddr>().ok()?, len).ok()
}

/// One shared string per distinct service, region and feed name.
#[derive(Default)]
struct Interner {
    map: ahash::HashMap<Box<str>, Arc<str>>,
    /// Neighbouring rows mostly repeat the previous value.
    last: Option<Arc<str>>,
}

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.last.as_ref().filter(|a| &***a == s) {
            return a.clone();
        }
        let a = match self.map.get(s) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(s);
                self.map.insert(Box::from(s), a.clone());
                a
            }
        };
        self.last = Some(a.clone());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> (ProviderRanges, ProviderCatalogue) {
        let catalogue = ProviderCatalogue::parse(
            super::super::store::embedded::PROVIDERS,
            Path::new("providers.toml"),
        )
        .unwrap();
        let entry = |prefix: &str, provider: &str, service: Option<&str>, country| RangeEntry {
            prefix: prefix.parse().unwrap(),
            provider: provider.into(),
            service: service.map(str::to_owned),
            region: service.map(|_| "eu-south-1".to_owned()),
            country: CountryCode::parse(country),
            feed: provider.into(),
        };
        let entries = [
            entry("192.0.2.0/24", "aws", Some("EC2"), "IT"),
            entry("198.51.100.0/25", "oracle", None, ""),
            entry("2001:db8::/32", "aws", Some("S3"), "IT"),
        ];
        (ProviderRanges::from_entries(&entries, Path::new("r.csv"), &catalogue).unwrap(), catalogue)
    }

    #[test]
    fn the_compiled_form_reads_back_the_same_ranges() {
        let (ranges, catalogue) = ranges();
        let bytes = ranges.write_compiled(&catalogue, Path::new("r")).unwrap();
        let back = ProviderRanges::from_compiled(&bytes, Path::new("r"), &catalogue).unwrap();
        assert_eq!(back.len(), 3);
        assert!((0..3).all(|i| back.info(i) == ranges.info(i)));
        assert_eq!(back.table(), ranges.table());
        let hit = back.lookup("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            (hit.service.as_deref(), hit.region.as_deref()),
            (Some("S3"), Some("eu-south-1"))
        );
    }

    #[test]
    fn damaged_compiled_ranges_are_errors_naming_the_file() {
        let (ranges, catalogue) = ranges();
        let bytes = ranges.write_compiled(&catalogue, Path::new("r")).unwrap();
        let path = Path::new("layers.xbl");
        for cut in 0..bytes.len() {
            let e = ProviderRanges::from_compiled(&bytes[..cut], path, &catalogue).err().unwrap();
            assert!(e.to_string().contains("layers.xbl"), "{e}");
        }
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                if let Err(e) = ProviderRanges::from_compiled(&bad, path, &catalogue) {
                    assert!(e.to_string().contains("layers.xbl"), "{e}");
                }
            }
        }
    }
}
