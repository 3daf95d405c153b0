//! MaxMind DB files: country (and optionally ASN) by IP. One reader serves
//! every common schema; which one a file uses is recognised from its
//! metadata and records, never assumed:
//!
//! | schema | country field | ASN fields |
//! |---|---|---|
//! | MaxMind GeoLite2/GeoIP2 Country and City, DB-IP lite | `country.iso_code` (else `registered_country.iso_code`) | — |
//! | MaxMind GeoLite2/GeoIP2 ASN, DB-IP ASN lite | — | `autonomous_system_number`, `autonomous_system_organization` |
//! | IPinfo lite | `country_code` | `asn` ("AS13335"), `as_name` |
//! | ip-location-db (`*-country-mmdb`, `asn-mmdb`) | `country_code` | `autonomous_system_number`, `autonomous_system_organization` |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{LookupResult, MaxMindDbError, PathElement, Reader};
use serde::Deserialize;

use super::asn::{AsRecord, AsnTable, OrgNames};
use super::segments::NONE;
use super::tree::{Leaf, NetworkTable, NetworkTableBuilder, SearchTree, MAX_RECORDS};
use super::{CountryCode, IntelError};

#[derive(Deserialize, Default)]
struct IsoCode<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

/// MaxMind's `country` is a map with `iso_code`; IPinfo's is the name.
#[derive(Deserialize)]
#[serde(untagged)]
enum CountryField<'a> {
    #[serde(borrow)]
    Map(IsoCode<'a>),
    #[allow(dead_code)]
    Name(&'a str),
}

/// The union of the fields of every supported schema.
#[derive(Deserialize, Default)]
struct AnyRecord<'a> {
    #[serde(borrow)]
    country: Option<CountryField<'a>>,
    #[serde(borrow)]
    registered_country: Option<IsoCode<'a>>,
    country_code: Option<&'a str>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<&'a str>,
    asn: Option<&'a str>,
    as_name: Option<&'a str>,
}

impl AnyRecord<'_> {
    fn country(&self) -> Option<CountryCode> {
        let country = match &self.country {
            Some(CountryField::Map(m)) => m.iso_code,
            _ => None,
        };
        let registered = self.registered_country.as_ref().and_then(|c| c.iso_code);
        country.or(self.country_code).or(registered).and_then(CountryCode::parse)
    }

    fn asn(&self) -> Option<(u32, Option<&str>)> {
        if let Some(n) = self.autonomous_system_number {
            return Some((n, self.autonomous_system_organization));
        }
        let n = self.asn?.trim_start_matches("AS").parse().ok()?;
        Some((n, self.as_name))
    }
}

/// Where a country code can be, in the order the schemas are tried.
const COUNTRY_PATHS: [&[PathElement<'static>]; 3] = [
    &[PathElement::Key("country"), PathElement::Key("iso_code")],
    &[PathElement::Key("country_code")],
    &[PathElement::Key("registered_country"), PathElement::Key("iso_code")],
];

/// What a database can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub country: bool,
    pub asn: bool,
}

/// Addresses that every real-world database covers, used to recognise a
/// file's schema: Google, Cloudflare, Quad9, a RIPE NCC address, and the
/// same providers over IPv6.
const PROBES: [&str; 8] = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "193.0.6.139",
    "81.2.69.142",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2001:67c:2e8:22::c100:68b",
];

/// The bytes of a database: compiled in, or read from a file (shared with
/// the reader, so that the search tree can be walked too).
#[derive(Clone)]
pub enum DbBytes {
    Static(&'static [u8]),
    Owned(Arc<[u8]>),
}

impl AsRef<[u8]> for DbBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            DbBytes::Static(b) => b,
            DbBytes::Owned(b) => b,
        }
    }
}

/// Country by IP: a country database's networks, flattened.
pub type CountryTable = NetworkTable<CountryCode>;

/// A MaxMind-format database.
pub struct MmdbDatabase {
    reader: Reader<DbBytes>,
    bytes: DbBytes,
    path: PathBuf,
    capabilities: Capabilities,
}

impl MmdbDatabase {
    /// Opens a file and recognises its schema.
    pub fn open(path: &Path) -> Result<Self, IntelError> {
        let bytes = crate::files::read_limited(path, "database", crate::files::DATABASE_LIMIT)
            .map_err(|e| IntelError::io(path, e))?;
        Self::from_bytes(DbBytes::Owned(Arc::from(bytes)), path)
    }

    /// A database compiled into the binary, named `path` in messages.
    pub fn from_static(bytes: &'static [u8], path: &Path) -> Result<Self, IntelError> {
        Self::from_bytes(DbBytes::Static(bytes), path)
    }

    fn from_bytes(bytes: DbBytes, path: &Path) -> Result<Self, IntelError> {
        let reader = Reader::from_source(bytes.clone())
            .map_err(|e| IntelError::corrupt(path, format!("not a MaxMind DB file ({e})")))?;
        let mut capabilities = Capabilities { country: false, asn: false };
        for probe in PROBES {
            let Ok(ip) = probe.parse::<IpAddr>() else { continue };
            let Ok(found) = reader.lookup(ip) else { continue };
            let record: Option<AnyRecord<'_>> = found.decode().map_err(|e| {
                IntelError::corrupt(path, format!("record for {ip} cannot be decoded: {e}"))
            })?;
            if let Some(r) = record {
                capabilities.country |= r.country().is_some();
                capabilities.asn |= r.asn().is_some();
            }
        }
        Ok(Self { reader, bytes, path: path.to_owned(), capabilities })
    }

    /// What the file can answer.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The metadata's database type, e.g. `GeoLite2-Country`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Build time as Unix seconds.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails unless the file answers countries.
    pub fn require_country(self) -> Result<Self, IntelError> {
        if self.capabilities.country {
            Ok(self)
        } else {
            Err(IntelError::WrongKind {
                path: self.path.clone(),
                message: format!(
                    "not a country database (type '{}'; its records have neither country.iso_code nor country_code)",
                    self.database_type()
                ),
            })
        }
    }

    /// Fails unless the file answers ASNs.
    pub fn require_asn(self) -> Result<Self, IntelError> {
        if self.capabilities.asn {
            Ok(self)
        } else {
            Err(IntelError::WrongKind {
                path: self.path.clone(),
                message: format!(
                    "not an ASN database (type '{}'; its records have neither autonomous_system_number nor asn)",
                    self.database_type()
                ),
            })
        }
    }

    /// Every network's country, flattened for lookups.
    pub fn country_table(&self) -> Result<CountryTable, IntelError> {
        self.flatten(|found| {
            // Reading the two or three paths that can hold a country is much
            // cheaper than decoding whole records (City records are large).
            // A path that does not fit the schema (IPinfo's `country` is
            // a name, not a map) is not where this file keeps the code.
            Ok(COUNTRY_PATHS
                .iter()
                .find_map(|path| found.decode_path::<&str>(path).ok().flatten())
                .and_then(CountryCode::parse))
        })
    }

    /// Every network's AS number and organisation, flattened for lookups.
    pub fn asn_table(&self) -> Result<AsnTable, IntelError> {
        let mut names = OrgNames::default();
        let networks = self.flatten(|found| {
            let Some(record) = found.decode::<AnyRecord<'_>>()? else { return Ok(None) };
            Ok(record
                .asn()
                .map(|(asn, org)| AsRecord { asn, org: org.map_or(NONE, |o| names.add(o)) }))
        })?;
        Ok(AsnTable::from_networks(networks, names))
    }

    /// Walks the search tree into a [`NetworkTable`]; `decode` reads each
    /// distinct record once. A damaged tree or record fails the whole
    /// file: a database that answers wrongly is worse than none.
    fn flatten<R>(
        &self,
        mut decode: impl FnMut(&LookupResult<'_, DbBytes>) -> Result<Option<R>, MaxMindDbError>,
    ) -> Result<NetworkTable<R>, IntelError> {
        let meta = self.reader.metadata();
        let corrupt = |m: String| IntelError::corrupt(&self.path, m);
        let tree = SearchTree::new(
            self.bytes.as_ref(),
            meta.node_count,
            meta.record_size,
            meta.ip_version == 6,
        )
        .map_err(|e| corrupt(e.to_string()))?;
        // Half the nodes are about as many leaves as one family has.
        let mut table = NetworkTableBuilder::with_capacity(meta.node_count as usize / 2);
        // Record pointer -> index in the table (None: nothing useful);
        // neighbouring networks mostly share a record.
        let mut seen: ahash::HashMap<u32, Option<u32>> = Default::default();
        let mut last: Option<(u32, Option<u32>)> = None;
        let mut failed = None;
        let mut record = |pointer: u32, ip: IpAddr, table: &mut NetworkTableBuilder<R>| {
            if let Some((_, index)) = last.filter(|(p, _)| *p == pointer) {
                return index;
            }
            if let Some(index) = seen.get(&pointer) {
                last = Some((pointer, *index));
                return *index;
            }
            let index = match self.decode_at(ip, pointer, &mut decode) {
                Ok(Some(r)) => table.add_record(r).or_else(|| {
                    failed.get_or_insert(format!("more than {MAX_RECORDS} distinct records"));
                    None
                }),
                Ok(None) => None,
                Err(e) => {
                    failed.get_or_insert(e);
                    None
                }
            };
            seen.insert(pointer, index);
            last = Some((pointer, index));
            index
        };
        tree.walk_v4(&mut |a, len, leaf| {
            let index = match leaf {
                Leaf::Data(p) => record(p, IpAddr::from(Ipv4Addr::from(a)), &mut table),
                Leaf::Empty | Leaf::V4Alias => None,
            };
            table.push_v4(a, len, index);
        })
        .map_err(|e| corrupt(e.to_string()))?;
        tree.walk_v6(&mut |a, len, leaf| match leaf {
            Leaf::Data(p) => {
                let index = record(p, IpAddr::from(Ipv6Addr::from(a)), &mut table);
                table.push_v6(a, len, index);
            }
            Leaf::Empty => table.push_v6(a, len, None),
            Leaf::V4Alias => table.push_v6_alias(a, len),
        })
        .map_err(|e| corrupt(e.to_string()))?;
        match failed {
            Some(e) => Err(corrupt(e)),
            None => Ok(table.build()),
        }
    }

    /// Decodes the record that the tree walk found at `pointer` for `ip`,
    /// through a lookup (which must reach the same record).
    fn decode_at<R>(
        &self,
        ip: IpAddr,
        pointer: u32,
        decode: &mut impl FnMut(&LookupResult<'_, DbBytes>) -> Result<Option<R>, MaxMindDbError>,
    ) -> Result<Option<R>, String> {
        let found = self.reader.lookup(ip).map_err(|e| format!("lookup of {ip}: {e}"))?;
        let expected =
            (pointer as usize).checked_sub(self.reader.metadata().node_count as usize + 16);
        if found.offset() != expected {
            return Err(format!("the search tree does not lead {ip} to its record"));
        }
        decode(&found).map_err(|e| format!("record for {ip} cannot be decoded: {e}"))
    }
}
