//! Endpoint intelligence: for an IP, `{address class, hosting country,
//! ASN, AS organisation, provider, service, region, jurisdiction}` with the
//! matched prefix and the dataset that said so; for a server name, the
//! vendor whose product it belongs to ([`VendorCatalogue`]).
//!
//! Sources, in order: the user's overlay; the providers' published ranges
//! (longest prefix wins; a known region decides the hosting country); the
//! provider operating the address's ASN; geo-IP for the hosting country.
//! Special-purpose addresses (RFC 6890) are never geolocated nor attributed
//! (only an overlay can describe them). Jurisdiction is the provider's
//! legal home from the catalogue, whatever the hosting country.
//!
//! Lookups take `&self`, allocate nothing beyond the returned `Intel`'s
//! shared strings, and "not found" is `None`, never an error. Loading a
//! missing, unreadable or wrong-kind database is an error, never a silent
//! fallback to the shipped data.

mod asn;
pub mod build;
mod catalogue;
mod class;
mod country;
mod error;
pub mod feeds;
mod geo;
pub(crate) mod iso3166;
mod layers;
mod layers_cache;
mod overlay;
mod ranges;
mod regions;
pub mod segments;
mod store;
mod tree;
mod vendors;

pub use asn::{AsRecord, AsnTable, OrgName, OrgNames};
pub use catalogue::{Provider, ProviderCatalogue, ProviderConfig};
pub use class::{classify, AddressClass};
pub use country::{CountryCode, CountryList};
pub use error::IntelError;
pub use geo::{Capabilities, CountryTable, MmdbDatabase};
pub use layers::{AddressFacts, AddressLayers};
pub use layers_cache::{LayersOrigin, CACHE_FILE};
pub use overlay::{Overlay, OverlayNetwork, ParsedOverlay};
pub use ranges::{ProviderRanges, RangeEntry, RangeInfo};
pub use regions::RegionTable;
pub use store::{default_data_dir, sha256_hex, DatasetInfo, IntelSources};
pub use tree::NetworkTable;
pub use vendors::{CatalogueInfo, Product, Vendor, VendorCatalogue, VendorMatch, VendorView};

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

/// Where the hosting country came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountrySource {
    Overlay,
    /// The provider's region (region table).
    Region,
    #[serde(rename = "geoip")]
    GeoIp,
}

impl CountrySource {
    pub fn as_str(self) -> &'static str {
        match self {
            CountrySource::Overlay => "overlay",
            CountrySource::Region => "region",
            CountrySource::GeoIp => "geoip",
        }
    }
}

/// Everything known about one address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Intel {
    pub ip: IpAddr,
    pub class: AddressClass,
    /// Hosting country.
    pub country: Option<CountryCode>,
    pub country_source: Option<CountrySource>,
    pub asn: Option<u32>,
    pub as_org: Option<OrgName>,
    /// Provider id (catalogue).
    pub provider: Option<Arc<str>>,
    pub provider_name: Option<Arc<str>>,
    pub service: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    /// The provider's legal home.
    pub jurisdiction: Option<CountryCode>,
    /// The prefix that attributed the provider (or the geo-IP network).
    pub prefix: Option<IpNet>,
    /// Which dataset attributed the provider: `overlay FILE`, the feed name
    /// (`aws`, `azure`, …) or `asn`; for an unattributed address the
    /// country's dataset.
    pub dataset: Option<Arc<str>>,
}

impl Intel {
    fn empty(ip: IpAddr, class: AddressClass) -> Self {
        Self {
            ip,
            class,
            country: None,
            country_source: None,
            asn: None,
            as_org: None,
            provider: None,
            provider_name: None,
            service: None,
            region: None,
            jurisdiction: None,
            prefix: None,
            dataset: None,
        }
    }
}

/// All intelligence layers, loaded.
pub struct IntelDb {
    pub catalogue: ProviderCatalogue,
    /// Vendors of devices and apps, told by the names of their services.
    pub vendors: VendorCatalogue,
    pub overlay: Overlay,
    pub ranges: ProviderRanges,
    /// AS (our compact table or a MaxMind-format database) and country (a
    /// MaxMind-format database), merged.
    pub addresses: AddressLayers,
    /// Where each dataset came from, for `db info` and reports.
    pub provenance: Vec<DatasetInfo>,
    /// Where the merged address layers came from, for `db info`.
    pub layers_origin: LayersOrigin,
    asn_dataset: Arc<str>,
    country_dataset: Arc<str>,
}

impl IntelDb {
    /// Everything known about `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Intel {
        let class = classify(ip);
        let mut intel = Intel::empty(ip, class);
        let mut provider_index = None;
        if let Some(o) = self.overlay.lookup(ip) {
            intel.country = o.network.country;
            intel.country_source = o.network.country.map(|_| CountrySource::Overlay);
            intel.service = o.service.clone();
            intel.region = o.region.clone();
            intel.asn = o.network.asn;
            intel.as_org = o.as_org.clone().map(OrgName::Text);
            intel.jurisdiction = o.network.jurisdiction;
            intel.prefix = Some(o.network.cidr);
            intel.dataset = Some(o.dataset.clone());
            provider_index = o.provider;
        }
        if class != AddressClass::Public {
            self.fill_provider(&mut intel, provider_index);
            return intel;
        }
        let facts = self.addresses.lookup(ip);
        if provider_index.is_none() {
            if let Some(r) = facts.range.and_then(|i| self.ranges.info(i)) {
                provider_index = Some(r.provider);
                intel.service = intel.service.take().or_else(|| r.service.clone());
                intel.region = intel.region.take().or_else(|| r.region.clone());
                intel.prefix = Some(r.prefix);
                intel.dataset = Some(r.feed.clone());
                if intel.country.is_none() {
                    if let Some(c) = r.country {
                        intel.country = Some(c);
                        intel.country_source = Some(CountrySource::Region);
                    }
                }
            }
        }
        if intel.asn.is_none() {
            if let Some((asn, org)) = facts.system {
                intel.asn = Some(asn);
                intel.as_org = org;
            }
        }
        let mut outside_feed = false;
        if provider_index.is_none() {
            if let Some(p) = intel.asn.and_then(|a| self.catalogue.by_asn(a)) {
                provider_index = Some(p);
                intel.dataset = Some(self.asn_dataset.clone());
                outside_feed = true;
            }
        }
        if intel.country.is_none() {
            if let Some((c, net)) = facts.country {
                intel.country = Some(c);
                intel.country_source = Some(CountrySource::GeoIp);
                // Without a provider, the country's network is the match.
                if provider_index.is_none() {
                    intel.prefix = Some(net);
                    intel.dataset = Some(self.country_dataset.clone());
                }
            }
        }
        self.fill_provider(&mut intel, provider_index);
        if outside_feed {
            // The provider's AS but none of its published ranges.
            if let Some(name) =
                provider_index.and_then(|i| self.catalogue.get(i)?.outside_feed_name.clone())
            {
                intel.provider_name = Some(name);
            }
        }
        intel
    }

    fn fill_provider(&self, intel: &mut Intel, index: Option<usize>) {
        if let Some(p) = index.and_then(|i| self.catalogue.get(i)) {
            intel.provider = Some(p.id.clone());
            intel.provider_name = Some(p.name.clone());
            intel.jurisdiction = intel.jurisdiction.or(Some(p.jurisdiction));
        }
    }
}
