//! Special-purpose address ranges (RFC 6890 and its updates). Addresses in
//! them are never geolocated nor attributed to a provider: a private or
//! documentation address says nothing about any jurisdiction.

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;
use serde::Serialize;

use super::segments::PrefixTable;

/// What kind of address an IP is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// Globally routed: geolocated and attributed.
    Public,
    /// RFC 1918, IPv6 unique local.
    Private,
    /// 100.64.0.0/10 (RFC 6598).
    SharedCgnat,
    Loopback,
    LinkLocal,
    Multicast,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32.
    Documentation,
    /// 198.18.0.0/15.
    Benchmarking,
    /// Every other special-purpose block (this network, broadcast, 240/4,
    /// IETF protocol assignments, IPv4-mapped, discard-only, …).
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Private => "private",
            AddressClass::SharedCgnat => "shared_cgnat",
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Multicast => "multicast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Reserved => "reserved",
        }
    }
}

const SPECIAL: &[(&str, AddressClass)] = &[
    ("0.0.0.0/8", AddressClass::Reserved),
    ("10.0.0.0/8", AddressClass::Private),
    ("100.64.0.0/10", AddressClass::SharedCgnat),
    ("127.0.0.0/8", AddressClass::Loopback),
    ("169.254.0.0/16", AddressClass::LinkLocal),
    ("172.16.0.0/12", AddressClass::Private),
    ("192.0.0.0/24", AddressClass::Reserved),
    ("192.0.2.0/24", AddressClass::Documentation),
    ("192.88.99.0/24", AddressClass::Reserved),
    ("192.168.0.0/16", AddressClass::Private),
    ("198.18.0.0/15", AddressClass::Benchmarking),
    ("198.51.100.0/24", AddressClass::Documentation),
    ("203.0.113.0/24", AddressClass::Documentation),
    ("224.0.0.0/4", AddressClass::Multicast),
    ("240.0.0.0/4", AddressClass::Reserved),
    // IPv4-compatible addresses (::a.b.c.d), deprecated by RFC 4291
    // §2.5.5.1: never the IPv4 host (MaxMind trees map ::/96 onto the
    // IPv4 data, so ::1.2.3.4 would be geolocated as 1.2.3.4).
    ("::/96", AddressClass::Reserved),
    ("::/128", AddressClass::Reserved),
    ("::1/128", AddressClass::Loopback),
    ("::ffff:0:0/96", AddressClass::Reserved),
    ("64:ff9b:1::/48", AddressClass::Private),
    ("100::/64", AddressClass::Reserved),
    ("2001::/23", AddressClass::Reserved),
    ("2001:db8::/32", AddressClass::Documentation),
    ("fc00::/7", AddressClass::Private),
    ("fe80::/10", AddressClass::LinkLocal),
    ("ff00::/8", AddressClass::Multicast),
];

/// Globally reachable blocks inside 2001::/23 (RFC 6890 and the IANA
/// registry): Teredo, AMT, AS112, ORCHIDv2, DRIP.
const GLOBAL_EXCEPTIONS: &[&str] = &[
    "2001::/32",
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:20::/28",
    "2001:30::/28",
];

const CLASSES: [AddressClass; 9] = [
    AddressClass::Public,
    AddressClass::Private,
    AddressClass::SharedCgnat,
    AddressClass::Loopback,
    AddressClass::LinkLocal,
    AddressClass::Multicast,
    AddressClass::Documentation,
    AddressClass::Benchmarking,
    AddressClass::Reserved,
];

/// The special-purpose blocks as a prefix table (the exceptions are more
/// specific prefixes mapping back to public).
static TABLE: LazyLock<PrefixTable> = LazyLock::new(|| {
    let index = |c: AddressClass| CLASSES.iter().position(|x| *x == c).unwrap_or(0) as u32;
    let special =
        SPECIAL.iter().filter_map(|(c, class)| Some((c.parse::<IpNet>().ok()?, index(*class))));
    let exceptions = GLOBAL_EXCEPTIONS.iter().filter_map(|c| Some((c.parse::<IpNet>().ok()?, 0)));
    PrefixTable::build(special.chain(exceptions))
});

/// The class of `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    TABLE.get(ip).and_then(|i| CLASSES.get(i as usize).copied()).unwrap_or(AddressClass::Public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_range_parses() {
        assert!(SPECIAL.iter().all(|(c, _)| c.parse::<IpNet>().is_ok()));
        assert!(GLOBAL_EXCEPTIONS.iter().all(|c| c.parse::<IpNet>().is_ok()));
    }

    #[test]
    fn special_purpose_ranges() {
        let c = |s: &str| classify(s.parse().unwrap());
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert_eq!(c("10.1.2.3"), AddressClass::Private);
        assert_eq!(c("100.100.0.1"), AddressClass::SharedCgnat);
        assert_eq!(c("203.0.113.7"), AddressClass::Documentation);
        assert_eq!(c("2001:db8::1"), AddressClass::Documentation);
        assert_eq!(c("255.255.255.255"), AddressClass::Reserved);
        assert_eq!(c("ff02::1"), AddressClass::Multicast);
        assert_eq!(c("2001::1"), AddressClass::Public, "Teredo is globally reachable");
        assert_eq!(c("2001:2::1"), AddressClass::Reserved, "benchmarking, inside 2001::/23");
        assert_eq!(c("2a00:1450::1"), AddressClass::Public);
        assert_eq!(c("::1.2.3.4"), AddressClass::Reserved, "IPv4-compatible, deprecated");
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("::1:0:0:0"), AddressClass::Public, "outside ::/96");
    }
}
