//! The user's overlay: an organisation's own knowledge (and test data) as
//! CIDR → attributes, consulted before any other source. It may also
//! define providers the catalogue does not know.
//!
//! ```toml
//! [[provider]]            # same fields as geoip/providers.toml
//! id = "acme_cloud"
//! name = "ACME Cloud"
//! jurisdiction = "CN"
//!
//! [[network]]
//! cidr = "203.0.113.0/24"
//! country = "US"          # hosting country
//! provider = "acme_cloud" # an id from the catalogue or defined above
//! region = "us-east"
//! service = "storage"
//! asn = 64500
//! as_org = "ACME"
//! jurisdiction = "CN"     # only to override the provider's
//! ```

use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

use super::catalogue::ProviderConfig;
use super::segments::PrefixTable;
use super::{CountryCode, IntelError};

/// A network of an overlay: its facts override every dataset's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayNetwork {
    pub cidr: IpNet,
    pub country: Option<CountryCode>,
    pub provider: Option<String>,
    pub service: Option<String>,
    pub region: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    pub jurisdiction: Option<CountryCode>,
}

/// A `[[network]]` as written, with where its CIDR stands in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkConfig {
    cidr: toml::Spanned<IpNet>,
    #[serde(default, deserialize_with = "super::country::assigned::optional")]
    country: Option<CountryCode>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(default)]
    as_org: Option<String>,
    #[serde(default, deserialize_with = "super::country::assigned::optional")]
    jurisdiction: Option<CountryCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayFile {
    #[serde(default)]
    provider: Vec<ProviderConfig>,
    #[serde(default)]
    network: Vec<NetworkConfig>,
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// One overlay file, read.
#[derive(Clone, Debug)]
pub struct ParsedOverlay {
    /// Providers it defines, to add to the catalogue first.
    pub providers: Vec<ProviderConfig>,
    pub networks: Vec<OverlayNetwork>,
    pub warnings: Vec<String>,
}

/// One overlay entry with its strings shared.
#[derive(Clone, Debug)]
pub struct OverlayEntry {
    pub network: OverlayNetwork,
    pub service: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    pub as_org: Option<Arc<str>>,
    /// Index of the provider in the catalogue.
    pub provider: Option<usize>,
    pub dataset: Arc<str>,
}

/// Every overlay file, merged; later files win over earlier ones for the
/// same prefix.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    table: PrefixTable,
    entries: Vec<OverlayEntry>,
}

impl Overlay {
    /// Parses one overlay file's text into providers (to add to the
    /// catalogue first), networks, and warnings as rule packs give them
    /// (`file:line: warning: …`): a CIDR with host bits set (it means its
    /// network, as it is then used) and a network listed twice (the later
    /// entry wins).
    pub fn parse(text: &str, path: &Path) -> Result<ParsedOverlay, IntelError> {
        let file: OverlayFile =
            toml::from_str(text).map_err(|e| IntelError::toml(path, text, e))?;
        let mut warnings = Vec::new();
        let mut first_line: std::collections::HashMap<IpNet, usize> = Default::default();
        let mut networks = Vec::with_capacity(file.network.len());
        for n in file.network {
            let line = line_of(text, n.cidr.span().start);
            let given = *n.cidr.get_ref();
            let cidr = given.trunc();
            let at = format!("{}:{line}: warning:", path.display());
            if cidr != given {
                warnings.push(format!("{at} \"{given}\" has host bits set; it means {cidr}"));
            }
            if let Some(first) = first_line.insert(cidr, line) {
                warnings.push(format!(
                    "{at} network {cidr} is also listed on line {first}; this later entry wins"
                ));
            }
            networks.push(OverlayNetwork {
                cidr,
                country: n.country,
                provider: n.provider,
                service: n.service,
                region: n.region,
                asn: n.asn,
                as_org: n.as_org,
                jurisdiction: n.jurisdiction,
            });
        }
        Ok(ParsedOverlay { providers: file.provider, networks, warnings })
    }

    /// Builds the overlay from parsed networks (with the file they came
    /// from); provider ids are resolved with `resolve`.
    pub fn build(
        networks: Vec<(OverlayNetwork, Arc<str>)>,
        resolve: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, IntelError> {
        let mut entries = Vec::with_capacity(networks.len());
        for (network, file) in networks {
            let provider = match &network.provider {
                Some(id) => Some(resolve(id).ok_or_else(|| {
                    IntelError::invalid(
                        Path::new(&*file),
                        format!("network {}: provider '{id}' is neither in the catalogue nor defined in an overlay", network.cidr),
                    )
                })?),
                None => None,
            };
            entries.push(OverlayEntry {
                service: network.service.as_deref().map(Arc::from),
                region: network.region.as_deref().map(Arc::from),
                as_org: network.as_org.as_deref().map(Arc::from),
                provider,
                dataset: Arc::from(format!("overlay {file}")),
                network,
            });
        }
        let table =
            PrefixTable::build(entries.iter().enumerate().map(|(i, e)| (e.network.cidr, i as u32)));
        Ok(Self { table, entries })
    }

    /// The most specific overlay entry holding `ip`.
    pub fn lookup(&self, ip: std::net::IpAddr) -> Option<&OverlayEntry> {
        self.table.get(ip).and_then(|i| self.entries.get(i as usize))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
