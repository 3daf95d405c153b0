//! `xborder db build` and `xborder db update`: producing the range and ASN
//! data from the providers' feeds, repeatably.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::feeds::{self, FeedSpec, ParsedFeed, FEEDS};
use super::store::{
    embedded, DatasetEntry, DatasetsFile, FeedEntry, ASN_GZ_FILE, COUNTRY_FILE, DATASETS_FILE,
    RANGES_FILE,
};
use super::{
    AsnTable, IntelError, MmdbDatabase, ProviderCatalogue, ProviderRanges, RangeEntry, RegionTable,
};

/// Where each feed's snapshot lies in the `shared/data/cloud-ranges`
/// layout (see its SOURCES.md).
const SNAPSHOTS: &[(&str, &[&str])] = &[
    ("aws", &["seligman-aws-ip-ranges/ip-ranges.json"]),
    ("google-cloud", &["femueller-cloud-ip-ranges/google-cloud-ip-ranges.json"]),
    ("oracle", &["femueller-cloud-ip-ranges/oracle-cloud-ip-ranges.json"]),
    ("azure", &["femueller-cloud-ip-ranges/microsoft-azure-ip-ranges.json"]),
    (
        "cloudflare",
        &["lord-alfred-ipranges/cloudflare/ipv4.txt", "lord-alfred-ipranges/cloudflare/ipv6.txt"],
    ),
    ("fastly", &["femueller-cloud-ip-ranges/fastly-ip-ranges.json"]),
    ("digitalocean", &["femueller-cloud-ip-ranges/digitalocean.csv"]),
    ("linode", &["femueller-cloud-ip-ranges/linode.txt"]),
];

/// Feeds kept as one directory per region in the snapshot.
const REGION_DIR_SNAPSHOTS: &[(&str, &str, &str)] = &[
    ("azure-china", "azure_china", "navystack-ipranges/microsoft-azure/china"),
    ("vultr", "vultr", "navystack-ipranges/vultr/regions"),
];

/// Provider names of `region-country/cloud_region_country.csv`.
const REGION_PROVIDERS: &[(&str, &str)] = &[
    ("aws", "aws"),
    ("gcp", "google"),
    ("oci", "oracle"),
    ("azure-public-cloud", "microsoft"),
    ("azure-us-gov", "microsoft"),
    ("azure-germany", "microsoft"),
    ("azure-china", "azure_china"),
];

const RANGES_LICENCE: &str =
    "facts published by the providers in their official feeds, which state no \
    data licence; snapshots via seligman/aws-ip-ranges (MIT), lord-alfred/ipranges (CC0-1.0), \
    NavyStack/ipranges (MIT) and femueller/cloud-ip-ranges (verbatim official feeds)";

fn spec(name: &str) -> Option<&'static FeedSpec> {
    FEEDS.iter().find(|f| f.name == name)
}

fn read(path: &Path) -> Result<Vec<u8>, IntelError> {
    std::fs::read(path).map_err(|e| IntelError::io(path, e))
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IntelError> {
    crate::files::write_atomically(path, bytes).map_err(|e| IntelError::io(path, e))
}

/// What `db build` should do.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// A directory in the layout of `shared/data/cloud-ranges`.
    pub from: PathBuf,
    /// ip-location-db's `asn` package directory (asn-ipv4.csv, asn-ipv6.csv).
    pub asn_csv: Option<PathBuf>,
    /// A country mmdb to ship.
    pub country_mmdb: Option<PathBuf>,
    /// Output directory (the project's `geoip/`).
    pub out: PathBuf,
    /// Snapshot date to record, `YYYY-MM-DD`.
    pub snapshot: String,
}

/// Counts of what was built, for the command's output.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub lines: Vec<String>,
}

impl BuildReport {
    /// Says how many special-purpose prefixes a feed held (left out).
    fn dropped_special(&mut self, feed: &str, n: usize) {
        if n > 0 {
            self.lines.push(format!("{feed}: left out {n} special-purpose prefixes"));
        }
    }
}

/// Builds `regions.csv`, `provider-ranges.csv.gz` and, when asked,
/// `asn.xbasn.gz` and `country.mmdb`; records their provenance in
/// `datasets.toml`.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, IntelError> {
    let mut report = BuildReport::default();
    std::fs::create_dir_all(&opts.out).map_err(|e| IntelError::io(&opts.out, e))?;
    let datasets_path = opts.out.join(DATASETS_FILE);
    let mut datasets = DatasetsFile::read_optional(&datasets_path)?.unwrap_or_default();

    // Regions.
    let src = opts.from.join("region-country/cloud_region_country.csv");
    let text = String::from_utf8_lossy(&read(&src)?).into_owned();
    let mut regions_csv = String::from("provider,region,country\n");
    let mut n_regions = 0;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let (Some(p), Some(region), Some(country)) = (cols.first(), cols.get(1), cols.get(2))
        else {
            continue;
        };
        let Some((_, id)) = REGION_PROVIDERS.iter().find(|(name, _)| name == p) else { continue };
        if country.len() == 2 {
            regions_csv.push_str(&format!("{id},{region},{country}\n"));
            n_regions += 1;
        }
    }
    let regions_path = opts.out.join("regions.csv");
    write_atomic(&regions_path, regions_csv.as_bytes())?;
    let regions = RegionTable::parse(&regions_csv, &regions_path)?;
    report.lines.push(format!("regions.csv: {n_regions} regions"));
    set_dataset(&mut datasets, DatasetEntry {
        file: "regions.csv".into(),
        name: "cloud region to hosting country".into(),
        source: "shared/data/cloud-ranges/region-country/cloud_region_country.csv (expected_country, from the providers' region documentation)".into(),
        snapshot: opts.snapshot.clone(),
        licence: "facts from the providers' documentation, compiled for this project".into(),
        attribution: None,
    });

    // Ranges.
    let mut entries = Vec::new();
    datasets.feed.clear();
    for (name, files) in SNAPSHOTS {
        let Some(spec) = spec(name) else { continue };
        let contents: Vec<Vec<u8>> =
            files.iter().map(|f| read(&opts.from.join(f))).collect::<Result<_, _>>()?;
        let refs: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
        let parsed = feeds::parse(spec, &refs, &regions)?;
        report.dropped_special(spec.name, parsed.dropped_special);
        datasets.feed.push(FeedEntry {
            name: spec.name.into(),
            provider: spec.provider.into(),
            source: files.join(" "),
            version: parsed.version.clone(),
            prefixes: parsed.entries.len(),
        });
        entries.extend(parsed.entries);
    }
    for (name, provider, dir) in REGION_DIR_SNAPSHOTS {
        let found = feeds::parse_region_dirs(&opts.from.join(dir), name, provider, &regions)?;
        report.dropped_special(name, found.dropped_special);
        datasets.feed.push(FeedEntry {
            name: (*name).into(),
            provider: (*provider).into(),
            source: (*dir).into(),
            version: None,
            prefixes: found.entries.len(),
        });
        entries.extend(found.entries);
    }
    let entries = write_ranges(&opts.out.join(RANGES_FILE), entries)?;
    report.lines.push(format!(
        "{RANGES_FILE}: {} prefixes from {} feeds",
        entries,
        datasets.feed.len()
    ));
    set_dataset(&mut datasets, DatasetEntry {
        file: RANGES_FILE.into(),
        name: "cloud provider ranges".into(),
        source: format!("providers' feeds as snapshotted in shared/data/cloud-ranges, built by `xborder db build --from {}`", opts.from.display()),
        snapshot: opts.snapshot.clone(),
        licence: RANGES_LICENCE.into(),
        attribution: None,
    });

    if let Some(dir) = &opts.asn_csv {
        let v4 = dir.join("asn-ipv4.csv");
        let v6 = dir.join("asn-ipv6.csv");
        let table = AsnTable::from_csv(&[&v4, &v6])?;
        // Compressed (a third of the size); build.rs inflates it.
        let path = opts.out.join(ASN_GZ_FILE);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        table.write(&mut gz).map_err(|e| IntelError::io(&path, e))?;
        write_atomic(&path, &gz.finish().map_err(|e| IntelError::io(&path, e))?)?;
        let (a, b, c) = table.counts();
        report
            .lines
            .push(format!("{ASN_GZ_FILE}: {a} IPv4 and {b} IPv6 segments, {c} organisations"));
        let version = package_version(dir).unwrap_or_else(|| "unknown version".into());
        set_dataset(&mut datasets, DatasetEntry {
            file: "asn.xbasn".into(),
            name: "IP to ASN (ip-location-db asn)".into(),
            source: format!("npm @ip-location-db/asn {version} (asn-ipv4.csv, asn-ipv6.csv), converted by `xborder db build --asn-csv`"),
            snapshot: opts.snapshot.clone(),
            licence: "CC BY 4.0".into(),
            attribution: Some("RouteViews (routeviews.org), DB-IP (db-ip.com), NRO (nro.net)".into()),
        });
    }

    if let Some(mmdb) = &opts.country_mmdb {
        let db = MmdbDatabase::open(mmdb)?.require_country()?;
        let out = opts.out.join(COUNTRY_FILE);
        if mmdb.canonicalize().ok() != out.canonicalize().ok() {
            write_atomic(&out, &read(mmdb)?)?;
        }
        report.lines.push(format!("country.mmdb: type {}", db.database_type()));
        let version =
            mmdb.parent().and_then(package_version).unwrap_or_else(|| "unknown version".into());
        set_dataset(&mut datasets, DatasetEntry {
            file: "country.mmdb".into(),
            name: format!("IP to country ({})", db.database_type()),
            source: format!("npm @ip-location-db/geo-whois-asn-country-mmdb {version} (geo-whois-asn-country.mmdb)"),
            snapshot: opts.snapshot.clone(),
            licence: "CC BY 4.0 (the NRO statistics it is built from; the package itself declares CC0-1.0)".into(),
            attribution: Some("NRO (nro.net)".into()),
        });
    }

    // The merge of the three is derived data, made at first use (see
    // `layers_cache`); an entry an earlier build left is dropped.
    datasets.dataset.retain(|d| d.file != "address-layers.xbl");

    let text = toml::to_string(&datasets)
        .map_err(|e| IntelError::invalid(&datasets_path, e.to_string()))?;
    write_atomic(&datasets_path, text.as_bytes())?;
    Ok(report)
}

fn set_dataset(datasets: &mut DatasetsFile, entry: DatasetEntry) {
    datasets.dataset.retain(|d| d.file != entry.file);
    datasets.dataset.push(entry);
    datasets.dataset.sort_by(|a, b| a.file.cmp(&b.file));
}

/// The `version` of an npm package directory's package.json.
fn package_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["version"].as_str().map(str::to_owned)
}

/// Merges, checks against the shipped catalogue, sorts and writes ranges;
/// returns how many prefixes were written.
fn write_ranges(path: &Path, entries: Vec<RangeEntry>) -> Result<usize, IntelError> {
    let mut entries = feeds::merge_duplicates(entries);
    entries.sort();
    let catalogue =
        ProviderCatalogue::parse(embedded::PROVIDERS, Path::new("geoip/providers.toml"))?;
    ProviderRanges::from_entries(&entries, path, &catalogue)?;
    let mut bytes = Vec::new();
    ProviderRanges::write(&entries, &mut bytes).map_err(|e| IntelError::io(path, e))?;
    write_atomic(path, &bytes)?;
    Ok(entries.len())
}

/// What `db update` should do.
#[derive(Clone, Debug, Default)]
pub struct UpdateOptions {
    /// Read the official files from this directory instead of downloading.
    pub from: Option<PathBuf>,
    /// Download every file from this base URL instead of the official ones.
    pub mirror: Option<String>,
    /// Only these feeds (default: every feed that can be fetched).
    pub feeds: Vec<String>,
    /// Accept feeds that shrank by more than 20%.
    pub force: bool,
    /// Where to write (the user data directory).
    pub data_dir: PathBuf,
    pub timeout: Duration,
}

/// Refreshes provider ranges into the user data directory.
pub fn update(opts: &UpdateOptions) -> Result<BuildReport, IntelError> {
    let mut report = BuildReport::default();
    let regions = RegionTable::parse(embedded::REGIONS, Path::new("geoip/regions.csv"))?;
    // The ranges and feed versions in use now: the user's, else the shipped.
    let current_path = opts.data_dir.join(RANGES_FILE);
    let datasets_path = opts.data_dir.join(DATASETS_FILE);
    let (mut entries, mut datasets) = if current_path.exists() {
        let entries = ProviderRanges::read_entries(&read(&current_path)?, &current_path)?;
        (entries, DatasetsFile::read_optional(&datasets_path)?.unwrap_or_default())
    } else {
        let entries = ProviderRanges::read_entries(
            embedded::RANGES,
            Path::new("geoip/provider-ranges.csv.gz"),
        )?;
        (entries, DatasetsFile::parse(embedded::DATASETS, Path::new("geoip/datasets.toml"))?)
    };
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(opts.timeout)).build().into();
    let mut refreshed = 0;
    for spec in FEEDS {
        if !opts.feeds.is_empty() && !opts.feeds.iter().any(|f| f == spec.name) {
            continue;
        }
        let contents = match fetch(spec, opts, &agent) {
            Ok(Some(c)) => c,
            Ok(None) => {
                report.lines.push(format!("{}: skipped (no file or URL)", spec.name));
                continue;
            }
            Err(e) => return Err(e),
        };
        let refs: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
        let parsed: ParsedFeed = feeds::parse(spec, &refs, &regions)?;
        report.dropped_special(spec.name, parsed.dropped_special);
        let old = datasets.feed.iter().find(|f| f.name == spec.name);
        let old_count = entries.iter().filter(|e| e.feed == spec.name).count();
        feeds::check_refresh(
            spec.name,
            &parsed,
            old.and_then(|o| o.version.as_deref()),
            old_count,
            opts.force,
        )?;
        entries.retain(|e| e.feed != spec.name);
        report.lines.push(format!(
            "{}: {} prefixes (was {old_count}){}",
            spec.name,
            parsed.entries.len(),
            parsed.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default()
        ));
        datasets.feed.retain(|f| f.name != spec.name);
        datasets.feed.push(FeedEntry {
            name: spec.name.into(),
            provider: spec.provider.into(),
            source: source_of(spec, opts),
            version: parsed.version.clone(),
            prefixes: parsed.entries.len(),
        });
        entries.extend(parsed.entries);
        refreshed += 1;
    }
    if refreshed == 0 {
        return Err(IntelError::Feed {
            feed: "all".into(),
            message: "no feed could be refreshed".into(),
        });
    }
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| IntelError::io(&opts.data_dir, e))?;
    let n = write_ranges(&current_path, entries)?;
    datasets.feed.sort_by(|a, b| a.name.cmp(&b.name));
    set_dataset(
        &mut datasets,
        DatasetEntry {
            file: RANGES_FILE.into(),
            name: "cloud provider ranges".into(),
            source: "refreshed by `xborder db update`".into(),
            snapshot: crate::time::Timestamp::wall_clock().date(),
            licence: RANGES_LICENCE.into(),
            attribution: None,
        },
    );
    let text = toml::to_string(&datasets)
        .map_err(|e| IntelError::invalid(&datasets_path, e.to_string()))?;
    write_atomic(&datasets_path, text.as_bytes())?;
    report.lines.push(format!("wrote {} ({n} prefixes)", current_path.display()));
    Ok(report)
}

fn source_of(spec: &FeedSpec, opts: &UpdateOptions) -> String {
    match (&opts.from, &opts.mirror) {
        (Some(dir), _) => spec
            .files
            .iter()
            .map(|f| dir.join(f).display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        (None, Some(m)) => spec
            .files
            .iter()
            .map(|f| format!("{}/{f}", m.trim_end_matches('/')))
            .collect::<Vec<_>>()
            .join(" "),
        (None, None) => spec.urls.join(" "),
    }
}

/// The feed's files, `None` when this feed has no source here.
fn fetch(
    spec: &FeedSpec,
    opts: &UpdateOptions,
    agent: &ureq::Agent,
) -> Result<Option<Vec<Vec<u8>>>, IntelError> {
    if let Some(dir) = &opts.from {
        let paths: Vec<PathBuf> = spec.files.iter().map(|f| dir.join(f)).collect();
        if !paths.iter().all(|p| p.exists()) {
            return Ok(None);
        }
        return paths.iter().map(|p| read(p)).collect::<Result<Vec<_>, _>>().map(Some);
    }
    let urls: Vec<String> = match &opts.mirror {
        Some(m) => spec.files.iter().map(|f| format!("{}/{f}", m.trim_end_matches('/'))).collect(),
        None if spec.urls.is_empty() => return Ok(None),
        None => spec.urls.iter().map(|u| (*u).to_owned()).collect(),
    };
    let mut out = Vec::new();
    for url in urls {
        let download = |message: String| IntelError::Download { url: url.clone(), message };
        let mut response = agent.get(&url).call().map_err(|e| download(e.to_string()))?;
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| download(e.to_string()))?;
        out.push(body);
    }
    Ok(Some(out))
}
