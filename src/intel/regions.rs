//! Cloud region → hosting country (`geoip/regions.csv`: provider, region,
//! country). Where a provider publishes the region of a range, the region
//! decides the hosting country: geo-IP puts many AWS regions (Cape Town,
//! Milan, Tel Aviv, UAE, …) in the US and Hong Kong in CN.

use std::collections::HashMap;
use std::path::Path;

use super::{CountryCode, IntelError};

#[derive(Clone, Debug, Default)]
pub struct RegionTable {
    map: HashMap<(String, String), CountryCode>,
}

impl RegionTable {
    /// Parses `provider,region,country` lines after a header.
    pub fn parse(text: &str, path: &Path) -> Result<Self, IntelError> {
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split(',').collect();
            let [provider, region, country] = cols[..] else {
                return Err(IntelError::Syntax {
                    path: path.to_owned(),
                    line: n + 1,
                    message: format!("expected provider,region,country in '{line}'"),
                });
            };
            let country = CountryCode::parse(country).ok_or_else(|| IntelError::Syntax {
                path: path.to_owned(),
                line: n + 1,
                message: format!("'{country}' is not a two-letter country code"),
            })?;
            map.insert((provider.to_owned(), region.to_owned()), country);
        }
        Ok(Self { map })
    }

    /// The hosting country of `region` of `provider`.
    pub fn country(&self, provider: &str, region: &str) -> Option<CountryCode> {
        self.map.get(&(provider.to_owned(), region.to_owned())).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
