//! Compiled provider ranges (`provider-ranges.csv.gz`): one line per prefix,
//! `prefix,provider,service,region,country,feed`, built by `xborder db
//! build` or `xborder db update` from the providers' own feeds. `country`
//! is the hosting country the provider states (geofeeds) or that its region
//! implies (region table). The longest matching prefix wins.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use super::segments::PrefixTable;
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
    table: PrefixTable,
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
        let table = PrefixTable::build(infos.iter().enumerate().map(|(i, r)| (r.prefix, i as u32)));
        Ok(Self { table, infos })
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
        let table = PrefixTable::build(infos.iter().enumerate().map(|(i, r)| (r.prefix, i as u32)));
        Ok(Self { table, infos })
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
        self.table.get(ip).and_then(|i| self.info(i))
    }

    /// The range of index `i` (the values of [`Self::table`]).
    #[inline]
    pub fn info(&self, i: u32) -> Option<&RangeInfo> {
        self.infos.get(i as usize)
    }

    /// Address → range index, to merge with the other address layers.
    pub fn table(&self) -> &PrefixTable {
        &self.table
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
