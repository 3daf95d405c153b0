//! The provider catalogue (`geoip/providers.toml`): who runs a network and
//! which country's law the operator answers to.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{CountryCode, IntelError};

/// A provider as written in the catalogue.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    /// ISO 3166-1 alpha-2 code of the controlling company's legal home.
    #[serde(deserialize_with = "super::country::assigned::required")]
    pub jurisdiction: CountryCode,
    /// One line: why this jurisdiction.
    #[serde(default)]
    pub jurisdiction_reason: Option<String>,
    #[serde(default)]
    pub asns: Vec<u32>,
    /// Domain suffixes the provider's services answer under.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The official range feed, where there is one.
    #[serde(default)]
    pub feed: Option<String>,
    /// What an address of the provider's ASNs outside its published ranges
    /// is called: the company's own services, not a cloud customer's
    /// server (Google's AS15169 outside Google Cloud's ranges is "Google
    /// (own services)"). Only for providers with a feed, which tells the
    /// two apart.
    #[serde(default)]
    pub outside_feed_name: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    provider: Vec<ProviderConfig>,
}

/// A provider as the lookups use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    pub id: Arc<str>,
    pub name: Arc<str>,
    /// [`ProviderConfig::outside_feed_name`].
    pub outside_feed_name: Option<Arc<str>>,
    pub jurisdiction: CountryCode,
    pub config: ProviderConfig,
}

/// Every known provider, by id and by ASN.
#[derive(Clone, Debug, Default)]
pub struct ProviderCatalogue {
    providers: Vec<Provider>,
    by_id: HashMap<Arc<str>, usize>,
    // Consulted on every lookup of an address without a provider range.
    by_asn: HashMap<u32, usize, ahash::RandomState>,
}

impl ProviderCatalogue {
    /// Parses a catalogue; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, IntelError> {
        let file: CatalogueFile =
            toml::from_str(text).map_err(|e| IntelError::toml(path, text, e))?;
        let mut catalogue = Self::default();
        for p in file.provider {
            catalogue.add(p, path)?;
        }
        Ok(catalogue)
    }

    /// Adds a provider; an id already present is an error.
    pub fn add(&mut self, config: ProviderConfig, path: &Path) -> Result<(), IntelError> {
        let id: Arc<str> = Arc::from(config.id.as_str());
        if self.by_id.contains_key(&id) {
            return Err(IntelError::invalid(path, format!("provider '{id}' is defined twice")));
        }
        if config.outside_feed_name.is_some() && config.feed.is_none() {
            return Err(IntelError::invalid(
                path,
                format!("provider '{id}' has an outside_feed_name but no feed to tell it apart"),
            ));
        }
        let index = self.providers.len();
        for asn in &config.asns {
            if let Some(&other) = self.by_asn.get(asn) {
                return Err(IntelError::invalid(
                    path,
                    format!("AS{asn} is listed for both '{}' and '{id}'", self.providers[other].id),
                ));
            }
            self.by_asn.insert(*asn, index);
        }
        self.by_id.insert(id.clone(), index);
        self.providers.push(Provider {
            id,
            name: Arc::from(config.name.as_str()),
            outside_feed_name: config.outside_feed_name.as_deref().map(Arc::from),
            jurisdiction: config.jurisdiction,
            config,
        });
        Ok(())
    }

    /// The index of provider `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The provider at `index`.
    pub fn get(&self, index: usize) -> Option<&Provider> {
        self.providers.get(index)
    }

    /// The provider operating `asn`.
    pub fn by_asn(&self, asn: u32) -> Option<usize> {
        self.by_asn.get(&asn).copied()
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_column() {
        let text = "[[provider]]\nid = \"x\"\nname = \"X\"\njurisdiction = \"CHN\"\n";
        let err = ProviderCatalogue::parse(text, Path::new("p.toml")).unwrap_err().to_string();
        assert!(err.starts_with("p.toml:4:16: unknown country code \"CHN\""), "{err}");
        let text = "[[provider]]\nid = \"x\"\nname = \"X\"\njurisdiction = \"CN\"\nasn = [1]\n";
        let err = ProviderCatalogue::parse(text, Path::new("p.toml")).unwrap_err().to_string();
        assert!(err.contains("p.toml:5:1: unknown field `asn`"), "{err}");
    }

    #[test]
    fn an_asn_belongs_to_one_provider() {
        let text = "[[provider]]\nid = \"a\"\nname = \"A\"\njurisdiction = \"US\"\nasns = [7]\n\
                    [[provider]]\nid = \"b\"\nname = \"B\"\njurisdiction = \"CN\"\nasns = [7]\n";
        let err = ProviderCatalogue::parse(text, Path::new("p.toml")).unwrap_err().to_string();
        assert_eq!(err, "p.toml: AS7 is listed for both 'a' and 'b'");
    }
}
