//! The layers keyed by address — its autonomous system, its geo-IP
//! country and the provider range holding it — merged into one segment
//! table when the intelligence loads: a lookup finds all three with one
//! binary search.
//!
//! Why (perf on `cargo bench --bench intel`): a lookup's time is cache
//! misses in the searches; before the provider ranges were merged in,
//! their own search was about a sixth of it.

use std::net::IpAddr;

use ipnet::IpNet;

use std::sync::Arc;

use super::asn::{AsRecord, AsnTable, OrgName, OrgNames};
use super::segments::{PrefixTable, Segments, NONE};
use super::tree::{resolve, NetworkTable};
use super::CountryCode;

/// AS and country by address, merged.
#[derive(Clone, Debug, Default)]
pub struct AddressLayers {
    /// Per segment: the AS table's value, the country table's value, the
    /// provider range's index.
    v4: Segments<u32, [u32; 3]>,
    v6: Segments<u128, [u32; 3]>,
    ases: Vec<AsRecord>,
    names: Arc<OrgNames>,
    countries: Vec<CountryCode>,
}

/// What the address layers know of one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressFacts {
    /// The AS number and its organisation.
    pub system: Option<(u32, Option<OrgName>)>,
    /// The country and the database's network around the address.
    pub country: Option<(CountryCode, IpNet)>,
    /// The index of the most specific provider range holding the address.
    pub range: Option<u32>,
}

impl AddressLayers {
    pub fn merge(
        ases: AsnTable,
        countries: NetworkTable<CountryCode>,
        ranges: &PrefixTable,
    ) -> Self {
        let (ases, names) = ases.into_parts();
        let (a4, a6, ases) = ases.into_parts();
        let (c4, c6, countries) = countries.into_parts();
        let v4 = Segments::merge([&a4, &c4, &ranges.v4]);
        let v6 = Segments::merge([&a6, &c6, &ranges.v6]);
        Self { v4, v6, ases, names, countries }
    }

    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> AddressFacts {
        let cell = match ip {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        };
        let layer = |i: usize| resolve(ip, cell[i], |v4| self.v4.get(v4)[i]);
        AddressFacts {
            system: layer(0)
                .and_then(|(r, _)| self.ases.get(r as usize))
                .map(|r| (r.asn, OrgName::listed(&self.names, r.org))),
            country: layer(1).and_then(|(r, net)| Some((*self.countries.get(r as usize)?, net))),
            range: (cell[2] != NONE).then_some(cell[2]),
        }
    }

    /// Number of (IPv4, IPv6) segments.
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }
}
