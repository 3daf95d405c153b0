//! Parsers for the providers' own range feeds, in their official formats,
//! and the checks a refreshed feed must pass. The same parsers serve `db
//! build` (from snapshots) and `db update` (from the official URLs or a
//! directory of downloaded files).

use std::collections::BTreeMap;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

use super::{CountryCode, IntelError, RangeEntry, RegionTable};

/// The format of a feed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedFormat {
    /// AWS `ip-ranges.json`: `prefixes[].ip_prefix/region/service`.
    Aws,
    /// Google Cloud `cloud.json`: `prefixes[].ipv4Prefix|ipv6Prefix/scope`.
    GoogleCloud,
    /// Oracle `public_ip_ranges.json`: `regions[].region/cidrs[].cidr`.
    Oracle,
    /// Azure service tags: `values[].properties.region/systemService/addressPrefixes`.
    AzureServiceTags,
    /// Fastly `public-ip-list`: `addresses`, `ipv6_addresses`.
    Fastly,
    /// One CIDR per line (Cloudflare `ips-v4`/`ips-v6`).
    CidrList,
    /// RFC 8805 geofeed CSV: `prefix,country,region,city,postal`
    /// (DigitalOcean, Linode, Vultr).
    Geofeed,
}

/// A feed xborder knows how to refresh.
#[derive(Clone, Copy, Debug)]
pub struct FeedSpec {
    /// Feed name, recorded per range.
    pub name: &'static str,
    /// Provider id in the catalogue.
    pub provider: &'static str,
    pub format: FeedFormat,
    /// Official URLs (several files make one feed, e.g. IPv4 and IPv6).
    pub urls: &'static [&'static str],
    /// The file names `db update --from DIR` looks for, one per URL.
    pub files: &'static [&'static str],
}

/// The official feeds. Azure publishes its service tags under a file name
/// that changes weekly, so they are refreshed from a directory only.
pub const FEEDS: &[FeedSpec] = &[
    FeedSpec {
        name: "aws",
        provider: "aws",
        format: FeedFormat::Aws,
        urls: &["https://ip-ranges.amazonaws.com/ip-ranges.json"],
        files: &["ip-ranges.json"],
    },
    FeedSpec {
        name: "google-cloud",
        provider: "google",
        format: FeedFormat::GoogleCloud,
        urls: &["https://www.gstatic.com/ipranges/cloud.json"],
        files: &["cloud.json"],
    },
    FeedSpec {
        name: "oracle",
        provider: "oracle",
        format: FeedFormat::Oracle,
        urls: &["https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json"],
        files: &["public_ip_ranges.json"],
    },
    FeedSpec {
        name: "azure",
        provider: "microsoft",
        format: FeedFormat::AzureServiceTags,
        urls: &[],
        files: &["ServiceTags_Public.json"],
    },
    FeedSpec {
        name: "azure-china",
        provider: "azure_china",
        format: FeedFormat::AzureServiceTags,
        urls: &[],
        files: &["ServiceTags_China.json"],
    },
    FeedSpec {
        name: "cloudflare",
        provider: "cloudflare",
        format: FeedFormat::CidrList,
        urls: &["https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"],
        files: &["ips-v4", "ips-v6"],
    },
    FeedSpec {
        name: "fastly",
        provider: "fastly",
        format: FeedFormat::Fastly,
        urls: &["https://api.fastly.com/public-ip-list"],
        files: &["public-ip-list"],
    },
    FeedSpec {
        name: "digitalocean",
        provider: "digitalocean",
        format: FeedFormat::Geofeed,
        urls: &["https://www.digitalocean.com/geo/google.csv"],
        files: &["digitalocean.csv"],
    },
    FeedSpec {
        name: "linode",
        provider: "akamai_linode",
        format: FeedFormat::Geofeed,
        urls: &["https://geoip.linode.com/"],
        files: &["linode.csv"],
    },
    FeedSpec {
        name: "vultr",
        provider: "vultr",
        format: FeedFormat::Geofeed,
        urls: &["https://geofeed.constant.com/?text"],
        files: &["vultr.csv"],
    },
];

/// A parsed feed.
#[derive(Clone, Debug, Default)]
pub struct ParsedFeed {
    pub entries: Vec<RangeEntry>,
    /// The feed's own version stamp (AWS `createDate`, Google
    /// `creationTime`, Oracle `last_updated_timestamp`, Azure
    /// `changeNumber`), comparable as a string of fixed shape.
    pub version: Option<String>,
    /// Special-purpose prefixes the feed held, left out ([`screen`]).
    pub dropped_special: usize,
}

/// A feed prefix shorter than this (IPv4 /8, IPv6 /16) is refused, and the
/// feed with it: no provider holds a larger block, and `0.0.0.0/0` or
/// `::/0` would attribute every unattributed address to the feed's
/// provider.
pub const MIN_PREFIX_V4: u8 = 8;
pub const MIN_PREFIX_V6: u8 = 16;

/// Is `net` special-purpose space no provider can be said to run: a
/// special-purpose block of RFC 6890 at either end, or inside 6to4
/// (2002::/16) or Teredo (2001::/32), whose addresses embed IPv4 ones.
fn is_special(net: &IpNet) -> bool {
    use super::{classify, AddressClass};
    const TRANSITION: [&str; 2] = ["2002::/16", "2001::/32"];
    classify(net.network()) != AddressClass::Public
        || classify(net.broadcast()) != AddressClass::Public
        || TRANSITION
            .iter()
            .filter_map(|t| t.parse::<IpNet>().ok())
            .any(|t| t.contains(net) || net.contains(&t))
}

/// Screens a feed's prefixes: refuses a default route or a prefix shorter
/// than [`MIN_PREFIX_V4`]/[`MIN_PREFIX_V6`] (the feed is broken or
/// hostile); leaves out special-purpose ones and says how many.
pub fn screen(feed: &str, entries: &mut Vec<RangeEntry>) -> Result<usize, IntelError> {
    if let Some(e) = entries.iter().find(|e| {
        let min = if e.prefix.addr().is_ipv4() { MIN_PREFIX_V4 } else { MIN_PREFIX_V6 };
        e.prefix.prefix_len() < min
    }) {
        return Err(bad(
            feed,
            format!(
                "prefix {} is shorter than /{MIN_PREFIX_V4} (IPv4) or /{MIN_PREFIX_V6} (IPv6): \
                 no provider holds that much; the feed is refused",
                e.prefix
            ),
        ));
    }
    let before = entries.len();
    entries.retain(|e| !is_special(&e.prefix));
    Ok(before - entries.len())
}

fn bad(feed: &str, message: String) -> IntelError {
    IntelError::Feed { feed: feed.to_owned(), message }
}

fn net(feed: &str, s: &str) -> Result<IpNet, IntelError> {
    s.trim()
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| bad(feed, format!("'{s}' is not a CIDR prefix")))
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Parses the files of one feed (in the order of [`FeedSpec::files`]).
pub fn parse(
    spec: &FeedSpec,
    contents: &[&[u8]],
    regions: &RegionTable,
) -> Result<ParsedFeed, IntelError> {
    let feed = spec.name;
    let mut out = ParsedFeed::default();
    let add = |out: &mut ParsedFeed,
               prefix: IpNet,
               service: Option<String>,
               region: Option<String>,
               country: Option<CountryCode>| {
        let country =
            country.or_else(|| region.as_deref().and_then(|r| regions.country(spec.provider, r)));
        out.entries.push(RangeEntry {
            prefix,
            provider: spec.provider.to_owned(),
            service,
            region,
            country,
            feed: feed.to_owned(),
        });
    };
    for bytes in contents {
        match spec.format {
            FeedFormat::Aws => {
                #[derive(Deserialize)]
                struct P {
                    ip_prefix: Option<String>,
                    ipv6_prefix: Option<String>,
                    region: String,
                    service: String,
                }
                #[derive(Deserialize)]
                struct F {
                    #[serde(rename = "createDate")]
                    create_date: String,
                    prefixes: Vec<P>,
                    ipv6_prefixes: Vec<P>,
                }
                let f: F = serde_json::from_slice(bytes).map_err(|e| bad(feed, e.to_string()))?;
                out.version = Some(f.create_date);
                for p in f.prefixes.into_iter().chain(f.ipv6_prefixes) {
                    let Some(cidr) = p.ip_prefix.or(p.ipv6_prefix) else {
                        return Err(bad(
                            feed,
                            "an entry has neither ip_prefix nor ipv6_prefix".into(),
                        ));
                    };
                    let region = (p.region != "GLOBAL").then_some(p.region);
                    add(&mut out, net(feed, &cidr)?, opt(&p.service), region, None);
                }
            }
            FeedFormat::GoogleCloud => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct P {
                    ipv4_prefix: Option<String>,
                    ipv6_prefix: Option<String>,
                    service: Option<String>,
                    scope: Option<String>,
                }
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct F {
                    creation_time: String,
                    prefixes: Vec<P>,
                }
                let f: F = serde_json::from_slice(bytes).map_err(|e| bad(feed, e.to_string()))?;
                out.version = Some(f.creation_time);
                for p in f.prefixes {
                    let Some(cidr) = p.ipv4_prefix.or(p.ipv6_prefix) else {
                        return Err(bad(
                            feed,
                            "an entry has neither ipv4Prefix nor ipv6Prefix".into(),
                        ));
                    };
                    let region = p.scope.filter(|s| s != "global");
                    add(
                        &mut out,
                        net(feed, &cidr)?,
                        p.service.as_deref().and_then(opt),
                        region,
                        None,
                    );
                }
            }
            FeedFormat::Oracle => {
                #[derive(Deserialize)]
                struct C {
                    cidr: String,
                    #[serde(default)]
                    tags: Vec<String>,
                }
                #[derive(Deserialize)]
                struct R {
                    region: String,
                    cidrs: Vec<C>,
                }
                #[derive(Deserialize)]
                struct F {
                    last_updated_timestamp: String,
                    regions: Vec<R>,
                }
                let f: F = serde_json::from_slice(bytes).map_err(|e| bad(feed, e.to_string()))?;
                out.version = Some(f.last_updated_timestamp);
                for r in f.regions {
                    for c in r.cidrs {
                        let service = opt(&c.tags.join("+"));
                        add(&mut out, net(feed, &c.cidr)?, service, Some(r.region.clone()), None);
                    }
                }
            }
            FeedFormat::AzureServiceTags => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Props {
                    #[serde(default)]
                    region: String,
                    #[serde(default)]
                    system_service: String,
                    address_prefixes: Vec<String>,
                }
                #[derive(Deserialize)]
                struct V {
                    properties: Props,
                }
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct F {
                    change_number: u64,
                    values: Vec<V>,
                }
                let f: F = serde_json::from_slice(bytes).map_err(|e| bad(feed, e.to_string()))?;
                out.version = Some(format!("{:012}", f.change_number));
                for v in f.values {
                    for cidr in &v.properties.address_prefixes {
                        add(
                            &mut out,
                            net(feed, cidr)?,
                            opt(&v.properties.system_service),
                            opt(&v.properties.region),
                            None,
                        );
                    }
                }
            }
            FeedFormat::Fastly => {
                #[derive(Deserialize)]
                struct F {
                    addresses: Vec<String>,
                    #[serde(default)]
                    ipv6_addresses: Vec<String>,
                }
                let f: F = serde_json::from_slice(bytes).map_err(|e| bad(feed, e.to_string()))?;
                for cidr in f.addresses.iter().chain(&f.ipv6_addresses) {
                    add(&mut out, net(feed, cidr)?, None, None, None);
                }
            }
            FeedFormat::CidrList => {
                let text =
                    std::str::from_utf8(bytes).map_err(|_| bad(feed, "not UTF-8 text".into()))?;
                for line in
                    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    add(&mut out, net(feed, line)?, None, None, None);
                }
            }
            FeedFormat::Geofeed => {
                let text =
                    std::str::from_utf8(bytes).map_err(|_| bad(feed, "not UTF-8 text".into()))?;
                for line in
                    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    let cols: Vec<&str> = line.split(',').collect();
                    let prefix = net(feed, cols[0])?;
                    let country = cols.get(1).and_then(|c| CountryCode::parse(c.trim()));
                    let region = cols.get(2).and_then(|r| opt(r));
                    add(&mut out, prefix, None, region, country);
                }
            }
        }
    }
    out.dropped_special = screen(feed, &mut out.entries)?;
    if out.entries.is_empty() {
        return Err(bad(feed, "no prefixes".into()));
    }
    Ok(out)
}

/// Ranges from one directory per region with `ipv4.txt`/`ipv6.txt` (the
/// layout of per-region mirrors). A region named like an ISO 3166-2 code
/// (`AU-NSW`) gives the country; others go through the region table.
pub fn parse_region_dirs(
    dir: &Path,
    feed: &str,
    provider: &str,
    regions: &RegionTable,
) -> Result<ParsedFeed, IntelError> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| IntelError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for region in names {
        let country = match region.as_bytes() {
            [_, _, b'-', ..] => CountryCode::parse(&region[..2]),
            _ => regions.country(provider, &region),
        };
        for file in ["ipv4.txt", "ipv6.txt"] {
            let path = dir.join(&region).join(file);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                out.push(RangeEntry {
                    prefix: net(feed, line)?,
                    provider: provider.to_owned(),
                    service: None,
                    region: Some(region.clone()),
                    country,
                    feed: feed.to_owned(),
                });
            }
        }
    }
    let dropped_special = screen(feed, &mut out)?;
    Ok(ParsedFeed { entries: out, version: None, dropped_special })
}

/// One entry per (prefix, provider): a prefix listed under several
/// services keeps the specific ones (AWS lists most prefixes under both
/// `AMAZON` and e.g. `EC2`; Azure under `AzureCloud` and a service).
pub fn merge_duplicates(entries: Vec<RangeEntry>) -> Vec<RangeEntry> {
    const GENERIC: [&str; 3] = ["AMAZON", "AzureCloud", "Google Cloud"];
    let mut by_key: BTreeMap<(IpNet, String), Vec<RangeEntry>> = BTreeMap::new();
    for e in entries {
        by_key.entry((e.prefix, e.provider.clone())).or_default().push(e);
    }
    by_key
        .into_values()
        .map(|mut group| {
            let mut services: Vec<String> =
                group.iter().filter_map(|e| e.service.clone()).collect();
            services.sort();
            services.dedup();
            if services.len() > 1 {
                services.retain(|s| !GENERIC.contains(&s.as_str()));
            }
            let mut first = group.swap_remove(0);
            first.region = first.region.or_else(|| group.iter().find_map(|e| e.region.clone()));
            first.country = first.country.or_else(|| group.iter().find_map(|e| e.country));
            first.service = (!services.is_empty()).then(|| services.join("+"));
            first
        })
        .collect()
}

/// Checks a refreshed feed against the one it replaces: its version stamp
/// must not go back, and it must not have shrunk by more than 20% unless
/// forced.
pub fn check_refresh(
    feed: &str,
    new: &ParsedFeed,
    old_version: Option<&str>,
    old_count: usize,
    force: bool,
) -> Result<(), IntelError> {
    if let (Some(new_v), Some(old_v)) = (new.version.as_deref(), old_version) {
        if new_v < old_v {
            return Err(bad(feed, format!("version {new_v} is older than the installed {old_v}")));
        }
    }
    // The installed count is of merged prefixes (one per prefix and
    // provider, services joined): count the new feed the same way.
    let new_count = merge_duplicates(new.entries.clone()).len();
    if !force && old_count > 0 && new_count * 5 < old_count * 4 {
        return Err(bad(
            feed,
            format!("shrank from {old_count} to {new_count} prefixes (more than 20%); use --force to accept"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(prefix: &str, service: &str) -> RangeEntry {
        RangeEntry {
            prefix: prefix.parse().unwrap(),
            provider: "vultr".into(),
            service: Some(service.into()),
            region: None,
            country: None,
            feed: "vultr".into(),
        }
    }

    #[test]
    fn default_routes_and_short_prefixes_refuse_the_feed() {
        for p in ["0.0.0.0/0", "::/0", "8.0.0.0/7", "2a00::/15"] {
            let err = screen("vultr", &mut vec![entry("1.2.3.0/24", "x"), entry(p, "x")]);
            let err = err.unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("feed vultr: prefix {p} is shorter than /8")),
                "{err}"
            );
        }
        let mut ok = vec![entry("8.0.0.0/8", "x"), entry("2a00::/16", "x")];
        assert_eq!(screen("vultr", &mut ok).unwrap(), 0);
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn special_purpose_prefixes_are_left_out_and_counted() {
        let mut entries = vec![
            entry("45.32.0.0/16", "x"),
            entry("192.0.2.0/24", "x"),
            entry("2002::/16", "x"),
            entry("2002:c000:200::/40", "x"),
            entry("2001:0:4136::/48", "x"),
            entry("2001:db8::/32", "x"),
            entry("10.0.0.0/8", "x"),
            entry("2001:19f0::/32", "x"),
        ];
        assert_eq!(screen("vultr", &mut entries).unwrap(), 6);
        let kept: Vec<String> = entries.iter().map(|e| e.prefix.to_string()).collect();
        assert_eq!(kept, ["45.32.0.0/16", "2001:19f0::/32"]);
    }

    #[test]
    fn a_refresh_is_compared_with_the_installed_prefixes_merged_alike() {
        // 100 installed (merged) prefixes; the new feed lists 70 of them,
        // each under two services: 140 raw entries, 70 prefixes.
        let mut new = ParsedFeed::default();
        for i in 0..70 {
            for service in ["EC2", "S3"] {
                new.entries.push(entry(&format!("45.32.{i}.0/24"), service));
            }
        }
        let err = check_refresh("aws", &new, None, 100, false).unwrap_err().to_string();
        assert_eq!(
            err,
            "feed aws: shrank from 100 to 70 prefixes (more than 20%); use --force to accept"
        );
        assert!(check_refresh("aws", &new, None, 100, true).is_ok());
        assert!(check_refresh("aws", &new, None, 80, false).is_ok());
    }
}
