//! Where the intelligence data comes from: the defaults compiled into the
//! binary (from `geoip/`), the user's data directory (ranges refreshed by
//! `db update`, which take precedence), and files named on the command line
//! (their own country/ASN databases and overlays, which are used instead of
//! the defaults, never silently replaced by them).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::geo::MmdbDatabase;
use super::layers_cache::{self, CacheDir};
use super::{
    AddressLayers, AsnTable, IntelDb, IntelError, LayersOrigin, Overlay, ProviderCatalogue,
    ProviderRanges, RegionTable, VendorCatalogue,
};
use crate::files::DATABASE_LIMIT;

/// The default data, compiled in so that a copied binary works offline.
/// The AS table is inflated by `build.rs` from `geoip/asn.xbasn.gz`; the
/// three address sources are merged at first use (`layers_cache`).
pub mod embedded {
    pub const COUNTRY: &[u8] = include_bytes!("../../geoip/country.mmdb");
    pub const ASN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/asn.xbasn"));
    pub const RANGES: &[u8] = include_bytes!("../../geoip/provider-ranges.csv.gz");
    pub const PROVIDERS: &str = include_str!("../../geoip/providers.toml");
    pub const VENDORS: &str = include_str!("../../geoip/vendors.toml");
    pub const REGIONS: &str = include_str!("../../geoip/regions.csv");
    pub const DATASETS: &str = include_str!("../../geoip/datasets.toml");

    // ASN_SHA256, COUNTRY_SHA256, RANGES_SHA256.
    include!(concat!(env!("OUT_DIR"), "/source_digests.rs"));
}

/// Provenance of one shipped or built file (`datasets.toml`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    pub file: String,
    pub name: String,
    pub source: String,
    pub snapshot: String,
    pub licence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}

/// A range feed as last built or refreshed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeedEntry {
    pub name: String,
    pub provider: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub prefixes: usize,
}

/// `datasets.toml`: what each data file is and where it came from.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatasetsFile {
    #[serde(default)]
    pub dataset: Vec<DatasetEntry>,
    #[serde(default)]
    pub feed: Vec<FeedEntry>,
}

impl DatasetsFile {
    pub fn parse(text: &str, path: &Path) -> Result<Self, IntelError> {
        toml::from_str(text).map_err(|e| IntelError::toml(path, text, e))
    }

    /// The provenance file at `path`; `None` when there is none. One that
    /// cannot be read or parsed is an error naming it.
    pub fn read_optional(path: &Path) -> Result<Option<Self>, IntelError> {
        match crate::files::read_text_limited(path, "provenance file", crate::files::CONFIG_LIMIT) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IntelError::io(path, e)),
        }
    }

    pub fn entry(&self, file: &str) -> Option<&DatasetEntry> {
        self.dataset.iter().find(|d| d.file == file)
    }
}

/// The bytes of a dataset in use, for its checksum.
#[derive(Clone, Debug)]
pub enum Content {
    Embedded(&'static [u8]),
    File(PathBuf),
}

/// A dataset in use, as `db info` and reports describe it.
#[derive(Clone, Debug)]
pub struct DatasetInfo {
    /// What it is for: `country`, `asn`, `provider ranges`, `providers`,
    /// `regions`, `overlay`.
    pub role: &'static str,
    /// `embedded geoip/FILE` or the path.
    pub location: String,
    pub entry: Option<DatasetEntry>,
    /// Record counts in words, e.g. `412,338 IPv4 and 103,001 IPv6 ranges`.
    pub records: String,
    pub content: Content,
}

impl DatasetInfo {
    /// SHA-256 of the content, hex.
    pub fn sha256(&self) -> Result<String, IntelError> {
        Ok(match &self.content {
            Content::Embedded(bytes) => sha256_hex(bytes),
            Content::File(path) => {
                sha256_hex(&std::fs::read(path).map_err(|e| IntelError::io(path, e))?)
            }
        })
    }
}

/// SHA-256 of `bytes`, lower-case hex (datasets, rule packs).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The user's data directory: `$XBORDER_DATA_DIR`, else
/// `$XDG_DATA_HOME/xborder`, else `~/.local/share/xborder`.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("XBORDER_DATA_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return Some(PathBuf::from(d).join("xborder"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/xborder"))
}

/// Name of the ranges, shipped and refreshed in the data directory.
pub const RANGES_FILE: &str = "provider-ranges.csv.gz";
/// Names of the shipped AS table (as embedded, and as committed) and
/// country database.
pub const ASN_FILE: &str = "asn.xbasn";
pub const ASN_GZ_FILE: &str = "asn.xbasn.gz";
pub const COUNTRY_FILE: &str = "country.mmdb";
/// Name of the provenance file next to them.
pub const DATASETS_FILE: &str = "datasets.toml";

/// What to load.
#[derive(Clone, Debug, Default)]
pub struct IntelSources {
    /// The user's country database instead of the default.
    pub country_db: Option<PathBuf>,
    /// The user's ASN database (MaxMind format) instead of the default.
    pub asn_db: Option<PathBuf>,
    /// Where refreshed ranges live; `None`: [`default_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// Overlay files, later ones winning.
    pub overlays: Vec<PathBuf>,
    /// A second core is idle while this loads (an audit of small
    /// captures, read long before): the built-in data's cache is read on
    /// both.
    pub spare_core: bool,
}

fn count(n: usize) -> String {
    crate::units::grouped(n as u64)
}

impl IntelSources {
    /// Checks that every file named by the user can be opened.
    pub fn check_files(&self) -> Result<(), IntelError> {
        let named = self.country_db.iter().chain(&self.asn_db).chain(&self.overlays);
        for path in named {
            crate::files::regular_file(path, "database")
                .and_then(|_| std::fs::File::open(path))
                .map_err(|e| IntelError::io(path, e))?;
        }
        Ok(())
    }

    /// The provider catalogue the lookups will use: the shipped one and
    /// the providers the overlays define (cheap: no range or geo-IP data).
    pub fn catalogue(&self) -> Result<ProviderCatalogue, IntelError> {
        Ok(self.checked_catalogue()?.0)
    }

    /// [`Self::catalogue`], with the overlays' warnings (`file:line:
    /// warning: …`) for the user.
    pub fn checked_catalogue(&self) -> Result<(ProviderCatalogue, Vec<String>), IntelError> {
        let mut catalogue = shipped_catalogue()?;
        let read = self.overlay(&mut catalogue)?;
        Ok((catalogue, read.warnings))
    }

    /// Reads and builds every overlay (checked as a whole: a network naming
    /// a provider no file defines is an error here, not at the first
    /// lookup), adding the providers they define to `catalogue`.
    fn overlay(&self, catalogue: &mut ProviderCatalogue) -> Result<OverlaysRead, IntelError> {
        let mut read = OverlaysRead::default();
        let mut networks = Vec::new();
        for path in &self.overlays {
            let text =
                crate::files::read_text_limited(path, "overlay", crate::files::OVERLAY_LIMIT)
                    .map_err(|e| IntelError::io(path, e))?;
            let parsed = Overlay::parse(&text, path)?;
            for p in parsed.providers {
                catalogue.add(p, path)?;
            }
            read.warnings.extend(parsed.warnings);
            read.provenance.push(DatasetInfo {
                role: "overlay",
                location: path.display().to_string(),
                entry: None,
                records: format!("{} networks", parsed.networks.len()),
                content: Content::File(path.clone()),
            });
            let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
            networks.extend(parsed.networks.into_iter().map(|n| (n, file.clone())));
        }
        read.overlay = Overlay::build(networks, |id| catalogue.index_of(id))?;
        Ok(read)
    }

    /// The vendor catalogue the names are attributed with (cheap: one
    /// small TOML file).
    pub fn vendors(&self) -> Result<VendorCatalogue, IntelError> {
        shipped_vendors()
    }

    /// Loads every layer.
    pub fn load(&self) -> Result<IntelDb, IntelError> {
        self.load_then(|| {})
    }

    /// [`Self::load`], calling `checked` as soon as every file the user
    /// named (databases, overlays, refreshed ranges and their provenance) is
    /// read and checked for its kind and syntax, before the long part (the
    /// flattening and merging of address tables) is done: an audit loading
    /// on another core starts reading captures then, and a wrong file fails
    /// it before the first packet. With no file of the user's, `checked` is
    /// called first thing.
    pub fn load_then(&self, checked: impl FnOnce()) -> Result<IntelDb, IntelError> {
        let mut checked = Some(checked);
        let mut signal_checked = || checked.take().map_or((), |f| f());
        // Nothing of the user's to check (no database, overlay or refreshed
        // ranges): the packets need not wait while the built-in tables,
        // which the test suite checks, are parsed (a few milliseconds).
        // The refreshed ranges are looked for once: here when nothing named
        // comes before them, else where they are loaded.
        let named = self.country_db.is_some() || self.asn_db.is_some() || !self.overlays.is_empty();
        let early_ranges = if named { None } else { Some(self.user_ranges()?) };
        if matches!(early_ranges, Some(None)) {
            signal_checked();
        }
        let shipped = DatasetsFile::parse(embedded::DATASETS, Path::new("geoip/datasets.toml"))?;
        let mut provenance = Vec::new();
        let embedded_info = |role, file: &str, records: String, bytes: &'static [u8]| DatasetInfo {
            role,
            location: format!("embedded geoip/{file}"),
            entry: shipped.entry(file).cloned(),
            records,
            content: Content::Embedded(bytes),
        };

        let mut catalogue = shipped_catalogue()?;
        provenance.push(embedded_info(
            "providers",
            "providers.toml",
            format!("{} providers", catalogue.len()),
            embedded::PROVIDERS.as_bytes(),
        ));
        let vendors = shipped_vendors()?;
        provenance.push(DatasetInfo {
            role: "vendors",
            location: "embedded geoip/vendors.toml".to_owned(),
            entry: Some(DatasetEntry {
                file: "vendors.toml".to_owned(),
                name: vendors.info.name.clone(),
                source: vendors.info.source.clone(),
                snapshot: vendors.info.snapshot.clone(),
                licence: vendors.info.licence.clone(),
                attribution: None,
            }),
            records: format!(
                "{} vendors, {} domains",
                vendors.vendors().len(),
                vendors.domain_count()
            ),
            content: Content::Embedded(embedded::VENDORS.as_bytes()),
        });
        let regions = RegionTable::parse(embedded::REGIONS, Path::new("geoip/regions.csv"))?;
        provenance.push(embedded_info(
            "regions",
            "regions.csv",
            format!("{} regions", regions.len()),
            embedded::REGIONS.as_bytes(),
        ));

        // Overlays may define providers, so they are read before the ranges
        // resolve provider ids.
        let OverlaysRead { provenance: overlay_info, overlay, .. } =
            self.overlay(&mut catalogue)?;
        provenance.extend(overlay_info);

        // The country database is opened (and its kind checked) first.
        let (country_db, country_info, country_dataset) = match &self.country_db {
            Some(path) => {
                let db = MmdbDatabase::open(path)?.require_country()?;
                let info = user_mmdb_info("country", path, &db);
                (db, info, Arc::from(format!("geoip {}", path.display())))
            }
            None => {
                let path = Path::new("geoip/country.mmdb");
                let db = MmdbDatabase::from_static(embedded::COUNTRY, path)?.require_country()?;
                let info = embedded_info(
                    "country",
                    "country.mmdb",
                    format!("type {}, built {}", db.database_type(), epoch_date(db.build_epoch())),
                    embedded::COUNTRY,
                );
                (db, info, Arc::from("geoip"))
            }
        };
        // With only built-in data, the merge cached in the data directory
        // at first use is used in place (its tables are little-endian).
        // Else the country database's search tree is flattened on another
        // core while the ranges and the AS table load, and the three are
        // merged (and, for the built-in data, cached).
        let user_ranges = match early_ranges {
            Some(ranges) => ranges,
            None => self.user_ranges()?,
        };
        let built_in = self.country_db.is_none()
            && self.asn_db.is_none()
            && user_ranges.is_none()
            && cfg!(target_endian = "little");
        let cache = if built_in {
            // Only built-in data is left, which the test suite checks.
            signal_checked();
            self.layers_cache_dir()
        } else {
            None
        };
        let cached =
            cache.as_ref().and_then(|c| layers_cache::read(c, &catalogue, self.spare_core).ok());
        let (ranges, ranges_info, addresses, asn_info, asn_dataset, layers_origin) =
            if let Some((addresses, sources, ranges, path)) = cached {
                let ranges_info = embedded_info(
                    "provider ranges",
                    RANGES_FILE,
                    format!("{} prefixes", count(ranges.len())),
                    embedded::RANGES,
                );
                let (v4, v6) = sources.asn_segments;
                let records = asn_records(v4 as usize, v6 as usize, addresses.systems());
                let asn_info = embedded_info("asn", ASN_FILE, records, embedded::ASN);
                let origin = LayersOrigin::Cache(path);
                (ranges, ranges_info, addresses, asn_info, Arc::from("asn"), origin)
            } else {
                let (ranges, ranges_info, addresses, asn_info, asn_dataset, asn_segments) =
                    std::thread::scope(|scope| -> Result<_, IntelError> {
                        let flattening = scope.spawn(|| country_db.country_table());
                        let (ranges, ranges_info) =
                            Self::load_ranges(user_ranges, &catalogue, &embedded_info)?;
                        let user_asn = match &self.asn_db {
                            Some(path) => Some((MmdbDatabase::open(path)?.require_asn()?, path)),
                            None => None,
                        };
                        signal_checked();
                        let (asn, asn_info, asn_dataset) =
                            Self::load_asn(user_asn, &embedded_info)?;
                        let (v4, v6, _) = asn.counts();
                        let country =
                            flattening.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                        let addresses = AddressLayers::merge(asn, country, ranges.table());
                        let asn_segments = (v4 as u32, v6 as u32);
                        Ok((ranges, ranges_info, addresses, asn_info, asn_dataset, asn_segments))
                    })?;
                let origin = match &cache {
                    None => LayersOrigin::MergedAtLoad,
                    Some(cache) => {
                        let sources = layers_cache::built_in_sources(asn_segments);
                        match layers_cache::write(cache, &addresses, &ranges, &sources, &catalogue)
                        {
                            Ok(path) => LayersOrigin::Cached(path),
                            Err(why) => LayersOrigin::NotCached(why),
                        }
                    }
                };
                (ranges, ranges_info, addresses, asn_info, asn_dataset, origin)
            };
        provenance.extend([ranges_info, asn_info, country_info]);
        Ok(IntelDb {
            catalogue,
            vendors,
            overlay,
            ranges,
            addresses,
            provenance,
            layers_origin,
            asn_dataset,
            country_dataset,
        })
    }

    /// Where the built-in layers are cached: the data directory. One the
    /// user named is used only if it exists; the default one is created.
    fn layers_cache_dir(&self) -> Option<CacheDir> {
        let named = self
            .data_dir
            .clone()
            .or_else(|| std::env::var_os("XBORDER_DATA_DIR").map(PathBuf::from));
        match named {
            Some(dir) => Some(CacheDir { dir, create: false }),
            None => default_data_dir().map(|dir| CacheDir { dir, create: true }),
        }
    }

    /// The ranges `db update` refreshed into the data directory, if any,
    /// and that directory. A data directory that is not one, or that
    /// cannot be read, is an error, not the built-in ranges in silence;
    /// the default one not existing (yet) is not.
    fn user_ranges(&self) -> Result<Option<(PathBuf, PathBuf)>, IntelError> {
        let Some(data_dir) = self.data_dir.clone().or_else(default_data_dir) else {
            return Ok(None);
        };
        match std::fs::metadata(&data_dir) {
            Ok(m) if !m.is_dir() => {
                let message = "the data directory is not a directory".to_owned();
                return Err(IntelError::invalid(&data_dir, message));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IntelError::io(&data_dir, e)),
        }
        let path = data_dir.join(RANGES_FILE);
        match std::fs::metadata(&path) {
            Ok(_) => Ok(Some((path, data_dir))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IntelError::io(&path, e)),
        }
    }

    /// The provider ranges: those `db update` refreshed in the data
    /// directory, else the built-in ones.
    fn load_ranges(
        user_ranges: Option<(PathBuf, PathBuf)>,
        catalogue: &ProviderCatalogue,
        embedded_info: &EmbeddedInfo<'_>,
    ) -> Result<(ProviderRanges, DatasetInfo), IntelError> {
        Ok(match user_ranges {
            Some((path, data_dir)) => {
                let bytes = crate::files::read_limited(&path, "range file", DATABASE_LIMIT)
                    .map_err(|e| IntelError::io(&path, e))?;
                let ranges = ProviderRanges::read(&bytes, &path, catalogue)?;
                let entry = DatasetsFile::read_optional(&data_dir.join(DATASETS_FILE))?
                    .and_then(|f| f.entry(RANGES_FILE).cloned());
                let info = DatasetInfo {
                    role: "provider ranges",
                    location: path.display().to_string(),
                    entry,
                    records: format!("{} prefixes", count(ranges.len())),
                    content: Content::File(path),
                };
                (ranges, info)
            }
            None => {
                let path = Path::new("geoip/provider-ranges.csv.gz");
                let ranges = ProviderRanges::read(embedded::RANGES, path, catalogue)?;
                let info = embedded_info(
                    "provider ranges",
                    RANGES_FILE,
                    format!("{} prefixes", count(ranges.len())),
                    embedded::RANGES,
                );
                (ranges, info)
            }
        })
    }

    /// The AS table: the user's database (opened and checked) or the
    /// built-in table, and the dataset name that flows attributed through
    /// it carry.
    fn load_asn(
        user_asn: Option<(MmdbDatabase, &PathBuf)>,
        embedded_info: &EmbeddedInfo<'_>,
    ) -> Result<(AsnTable, DatasetInfo, Arc<str>), IntelError> {
        Ok(match user_asn {
            Some((db, path)) => {
                let info = user_mmdb_info("asn", path, &db);
                (db.asn_table()?, info, Arc::from(format!("asn {}", path.display())))
            }
            None => {
                let table = AsnTable::read(embedded::ASN, Path::new("geoip/asn.xbasn"))?;
                let (v4, v6, systems) = table.counts();
                let info =
                    embedded_info("asn", ASN_FILE, asn_records(v4, v6, systems), embedded::ASN);
                (table, info, Arc::from("asn"))
            }
        })
    }
}

/// The overlays as one [`Overlay`], with each file's provenance and their
/// warnings.
#[derive(Default)]
struct OverlaysRead {
    provenance: Vec<DatasetInfo>,
    overlay: Overlay,
    warnings: Vec<String>,
}

/// The record counts of an AS table, in words.
fn asn_records(v4: usize, v6: usize, systems: usize) -> String {
    format!("{} IPv4 and {} IPv6 ranges, {} organisations", count(v4), count(v6), count(systems))
}

/// Describes a compiled-in dataset: role, file name, records, bytes.
type EmbeddedInfo<'a> = dyn Fn(&'static str, &str, String, &'static [u8]) -> DatasetInfo + 'a;

fn shipped_vendors() -> Result<VendorCatalogue, IntelError> {
    VendorCatalogue::parse(embedded::VENDORS, Path::new("geoip/vendors.toml"))
}

fn shipped_catalogue() -> Result<ProviderCatalogue, IntelError> {
    ProviderCatalogue::parse(embedded::PROVIDERS, Path::new("geoip/providers.toml"))
}

/// Provenance of a database the user named.
fn user_mmdb_info(role: &'static str, path: &Path, db: &MmdbDatabase) -> DatasetInfo {
    DatasetInfo {
        role,
        location: path.display().to_string(),
        entry: None,
        records: format!("type {}, built {}", db.database_type(), epoch_date(db.build_epoch())),
        content: Content::File(path.to_owned()),
    }
}

/// `YYYY-MM-DD` of a Unix time.
fn epoch_date(secs: u64) -> String {
    crate::time::Timestamp::from_parts(i64::try_from(secs).unwrap_or(i64::MAX), 0).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// build.rs hashed the sources the binary embeds.
    #[test]
    fn the_source_digests_are_those_of_the_embedded_sources() {
        let digest = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
        assert_eq!(embedded::ASN_SHA256, digest(embedded::ASN));
        assert_eq!(embedded::COUNTRY_SHA256, digest(embedded::COUNTRY));
        assert_eq!(embedded::RANGES_SHA256, digest(embedded::RANGES));
    }

    /// The first load merges and caches the built-in data; the next uses
    /// the cache in place and answers the same; a damaged or foreign
    /// cache is merged again and replaced, never used.
    #[test]
    fn the_built_in_layers_are_cached_at_first_use_and_answer_as_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let sources = IntelSources { data_dir: Some(dir.path().to_owned()), ..Default::default() };
        let merged = sources.load().unwrap();
        let path = dir.path().join(layers_cache::CACHE_FILE);
        assert_eq!(merged.layers_origin, LayersOrigin::Cached(path.clone()));
        assert!(!merged.addresses.in_place());
        let cached = sources.load().unwrap();
        assert_eq!(cached.layers_origin, LayersOrigin::Cache(path.clone()));
        assert!(cached.addresses.in_place());
        assert_eq!(format!("{:?}", cached.provenance), format!("{:?}", merged.provenance));
        assert_eq!(cached.addresses.counts(), merged.addresses.counts());
        assert_eq!(cached.ranges.len(), merged.ranges.len());
        assert!(
            (0..merged.ranges.len() as u32).all(|i| cached.ranges.info(i) == merged.ranges.info(i))
        );
        assert_eq!(cached.ranges.table(), merged.ranges.table());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ip = if x % 4 == 0 {
                std::net::IpAddr::from(std::net::Ipv6Addr::from(
                    ((0x2000u128 << 112) | u128::from(x)) << 8,
                ))
            } else {
                std::net::IpAddr::from(std::net::Ipv4Addr::from((x >> 32) as u32))
            };
            assert_eq!(cached.lookup(ip), merged.lookup(ip), "{ip}");
        }

        // This process keeps the bytes it read: the checks below are of
        // `read_checked`, the file reader.
        let good = std::fs::read(&path).unwrap();
        // Read on one core and on two (each half on its own): the same
        // bytes, and damage in either half (or at its edges) is found.
        for two_cores in [false, true] {
            let read = layers_cache::read_checked(&path, two_cores).unwrap();
            assert!(read == &good[..good.len() - layers_cache::SEAL_LEN], "{two_cores}");
            let middle = ((good.len() - layers_cache::SEAL_LEN) / 2) & !4095;
            for at in [100, middle.saturating_sub(1), middle, good.len() - 5, good.len() - 1] {
                let mut damaged = good.clone();
                damaged[at] ^= 1;
                std::fs::write(&path, &damaged).unwrap();
                let err = layers_cache::read_checked(&path, two_cores).unwrap_err();
                assert!(err.contains("damaged"), "{two_cores} {at}: {err}");
            }
            std::fs::write(&path, &good[..1000]).unwrap();
            assert!(layers_cache::read_checked(&path, two_cores).is_err());
            std::fs::write(&path, &good).unwrap();
        }
        // Another build's: a source digest differs (the file's own digest
        // made to hold).
        let mut foreign = good[..good.len() - layers_cache::SEAL_LEN].to_vec();
        foreign[8 + 40] ^= 1;
        let digest = layers_cache::sealed(&foreign);
        foreign.extend_from_slice(&digest);
        std::fs::write(&path, &foreign).unwrap();
        let err = layers_cache::read_checked(&path, false).unwrap_err();
        assert!(err.contains("other data"), "{err}");
        std::fs::write(&path, &good).unwrap();
        assert!(layers_cache::read_checked(&path, false).is_ok());
    }
}
