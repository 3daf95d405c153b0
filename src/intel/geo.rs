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

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::{PathElement, Reader};
use serde::Deserialize;

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

/// The bytes of a database: compiled in, or read from a file.
pub enum DbBytes {
    Static(&'static [u8]),
    Owned(Box<[u8]>),
}

impl AsRef<[u8]> for DbBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            DbBytes::Static(b) => b,
            DbBytes::Owned(b) => b,
        }
    }
}

/// A MaxMind-format database.
pub struct MmdbDatabase {
    reader: Reader<DbBytes>,
    path: PathBuf,
    capabilities: Capabilities,
}

impl MmdbDatabase {
    /// Opens a file and recognises its schema.
    pub fn open(path: &Path) -> Result<Self, IntelError> {
        let bytes = std::fs::read(path).map_err(|e| IntelError::io(path, e))?;
        Self::from_bytes(DbBytes::Owned(bytes.into_boxed_slice()), path)
    }

    /// A database compiled into the binary, named `path` in messages.
    pub fn from_static(bytes: &'static [u8], path: &Path) -> Result<Self, IntelError> {
        Self::from_bytes(DbBytes::Static(bytes), path)
    }

    fn from_bytes(bytes: DbBytes, path: &Path) -> Result<Self, IntelError> {
        let reader = Reader::from_source(bytes)
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
        Ok(Self { reader, path: path.to_owned(), capabilities })
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

    fn record(&self, ip: IpAddr) -> Option<(AnyRecord<'_>, Option<IpNet>)> {
        let found = self.reader.lookup(ip).ok()?;
        let record: AnyRecord<'_> = found.decode().ok()??;
        let net = found.network().ok().and_then(|n| IpNet::new(n.network(), n.prefix()).ok());
        Some((record, net))
    }

    /// The country of `ip` and the network it was found in. A damaged
    /// record reads as "not found".
    pub fn country(&self, ip: IpAddr) -> Option<(CountryCode, Option<IpNet>)> {
        let found = self.reader.lookup(ip).ok()?;
        // Reading the two or three paths that can hold a country is much
        // cheaper than decoding whole records (City records are large).
        let code =
            COUNTRY_PATHS.iter().find_map(|path| found.decode_path::<&str>(path).ok().flatten())?;
        let net = found.network().ok().and_then(|n| IpNet::new(n.network(), n.prefix()).ok());
        Some((CountryCode::parse(code)?, net))
    }

    /// The ASN and organisation of `ip`.
    pub fn asn(&self, ip: IpAddr) -> Option<(u32, Option<String>)> {
        let (r, _) = self.record(ip)?;
        r.asn().map(|(n, org)| (n, org.map(str::to_owned)))
    }
}
