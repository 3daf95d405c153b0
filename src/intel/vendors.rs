//! The vendor catalogue (`geoip/vendors.toml`): device and app makers
//! identified by the server names their services answer under, whoever
//! hosts them (a Hikvision camera's cloud on someone else's CDN is told by
//! its name, not its address).
//!
//! A domain matches a name equal to it or ending in `.` + it (whole
//! labels); the longest matching domain wins. Matching is ASCII
//! case-insensitive and ignores one trailing dot; a name that is not plain
//! ASCII never matches. Loading refuses what would make the list imprecise:
//! public suffixes, shared cloud and CDN names, a domain listed twice, an
//! entry without its source.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CountryCode, IntelError};
use crate::names::FlowNames;

/// The catalogue's own provenance (`[catalogue]`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CatalogueInfo {
    pub name: String,
    pub snapshot: String,
    pub licence: String,
    pub source: String,
}

/// A product or service of a vendor.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub name: String,
    /// Domain suffixes (whole labels), lower case.
    pub domains: Vec<String>,
    /// Where these names come from, when not the vendor's own source.
    #[serde(default)]
    pub source: Option<String>,
}

/// A vendor as written in the catalogue.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    pub id: String,
    pub name: String,
    pub parent: String,
    pub category: String,
    /// ISO 3166-1 alpha-2 code of the country whose law the vendor answers to.
    #[serde(deserialize_with = "super::country::assigned::required")]
    pub jurisdiction: CountryCode,
    /// One line: why this jurisdiction.
    pub jurisdiction_reason: String,
    pub source: String,
    #[serde(rename = "product")]
    pub products: Vec<Product>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    catalogue: CatalogueInfo,
    #[serde(default)]
    vendor: Vec<Vendor>,
}

/// Names of shared infrastructure: clouds, CDNs and hosting whose names
/// serve other companies' content. A vendor domain equal to one of these or
/// below one is refused: it would attribute every customer to the vendor.
const SHARED_DOMAINS: &[&str] = &[
    "akamai.net",
    "akamaiedge.net",
    "akamaihd.net",
    "akamaized.net",
    "edgekey.net",
    "edgesuite.net",
    "cloudfront.net",
    "amazonaws.com",
    "azureedge.net",
    "azurewebsites.net",
    "cloudapp.net",
    "windows.net",
    "googleapis.com",
    "googleusercontent.com",
    "appspot.com",
    "fastly.net",
    "fastlylb.net",
    "cloudflare.net",
    "workers.dev",
    "aliyuncs.com",
    "alikunlun.com",
    "myqcloud.com",
    "tencentcs.com",
    "myhuaweicloud.com",
    "huaweicloud.com",
    "bcebos.com",
    "volces.com",
    "ksyuncs.com",
    "wscdns.com",
    "chinanetcenter.com",
    "cdn20.com",
];

/// Second-level public suffixes a vendor domain may not be (top-level ones
/// are refused by their single label): those of the countries the
/// catalogue's vendors and their markets use.
const PUBLIC_SECOND_LEVEL: &[&str] = &[
    "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "com.hk", "com.tw", "co.jp", "co.kr",
    "co.uk", "com.ru", "com.au", "com.br", "co.in",
];

/// A vendor's product named by a flow's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorMatch {
    pub vendor: Arc<Vendor>,
    /// Index into the vendor's products.
    pub product: usize,
    /// The catalogue domain that matched.
    pub domain: Arc<str>,
    /// The name from the traffic that matched (lower case), shared with
    /// the flow's names.
    pub name: Arc<str>,
}

impl VendorMatch {
    pub fn product(&self) -> &Product {
        &self.vendor.products[self.product]
    }
}

/// What `xborder lookup NAME` and the JSON reports say about a match.
#[derive(Clone, Debug, Serialize)]
pub struct VendorView<'a> {
    pub name: &'a str,
    pub vendor: &'a str,
    pub vendor_name: &'a str,
    pub parent: &'a str,
    pub category: &'a str,
    pub jurisdiction: CountryCode,
    pub jurisdiction_reason: &'a str,
    pub product: &'a str,
    pub domain: &'a str,
    pub source: &'a str,
}

impl VendorMatch {
    pub fn view(&self) -> VendorView<'_> {
        let v = &*self.vendor;
        let p = self.product();
        VendorView {
            name: &self.name,
            vendor: &v.id,
            vendor_name: &v.name,
            parent: &v.parent,
            category: &v.category,
            jurisdiction: v.jurisdiction,
            jurisdiction_reason: &v.jurisdiction_reason,
            product: &p.name,
            domain: &self.domain,
            source: p.source.as_deref().unwrap_or(&v.source),
        }
    }
}

/// Every vendor, and each domain's vendor and product.
#[derive(Clone, Debug, Default)]
pub struct VendorCatalogue {
    pub info: CatalogueInfo,
    vendors: Vec<Arc<Vendor>>,
    /// Domain → (vendor index, product index). Hashed with ahash: looked up
    /// once per label of every name of every flow.
    by_domain: HashMap<Arc<str>, (usize, usize), ahash::RandomState>,
}

impl VendorCatalogue {
    /// Parses and checks a catalogue; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, IntelError> {
        let file: CatalogueFile =
            toml::from_str(text).map_err(|e| IntelError::toml(path, text, e))?;
        let mut catalogue =
            Self { info: file.catalogue, vendors: Vec::new(), by_domain: HashMap::default() };
        let invalid = |message: String| IntelError::invalid(path, message);
        for vendor in file.vendor {
            let id = &vendor.id;
            if !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                || id.is_empty()
            {
                return Err(invalid(format!(
                    "vendor id '{id}': use lower-case letters, digits and '_'"
                )));
            }
            if catalogue.index_of(id).is_some() {
                return Err(invalid(format!("vendor '{id}' is defined twice")));
            }
            if vendor.source.trim().is_empty() || vendor.jurisdiction_reason.trim().is_empty() {
                return Err(invalid(format!("vendor '{id}' has no source or jurisdiction reason")));
            }
            if vendor.products.is_empty() {
                return Err(invalid(format!("vendor '{id}' has no product")));
            }
            let index = catalogue.vendors.len();
            for (p, product) in vendor.products.iter().enumerate() {
                if product.domains.is_empty() {
                    return Err(invalid(format!(
                        "vendor '{id}', product '{}' has no domain",
                        product.name
                    )));
                }
                for domain in &product.domains {
                    check_domain(domain).map_err(|why| {
                        invalid(format!("vendor '{id}': domain \"{domain}\" {why}"))
                    })?;
                    let key: Arc<str> = Arc::from(domain.as_str());
                    if let Some(&(other, _)) = catalogue.by_domain.get(&key) {
                        let other = &catalogue.vendors.get(other).map_or(id, |v| &v.id);
                        return Err(invalid(format!(
                            "domain \"{domain}\" is listed for both '{other}' and '{id}'"
                        )));
                    }
                    catalogue.by_domain.insert(key, (index, p));
                }
            }
            catalogue.vendors.push(Arc::new(vendor));
        }
        Ok(catalogue)
    }

    pub fn vendors(&self) -> &[Arc<Vendor>] {
        &self.vendors
    }

    /// The index of vendor `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.vendors.iter().position(|v| v.id == id)
    }

    /// How many domains the catalogue lists.
    pub fn domain_count(&self) -> usize {
        self.by_domain.len()
    }

    /// The vendor product `name` belongs to: its longest listed suffix.
    pub fn lookup(&self, name: &str) -> Option<VendorMatch> {
        self.lookup_shared(name, None)
    }

    /// [`Self::lookup`] of a name the flow holds as `shared`: the match
    /// shares it when it is already in the catalogue's form.
    fn lookup_shared(&self, name: &str, shared: Option<&Arc<str>>) -> Option<VendorMatch> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || !name.is_ascii() {
            return None;
        }
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let mut suffix = name;
        loop {
            if let Some((key, &(v, p))) = self.by_domain.get_key_value(suffix) {
                return Some(VendorMatch {
                    vendor: self.vendors[v].clone(),
                    product: p,
                    domain: key.clone(),
                    name: match shared {
                        Some(s) if **s == *name => s.clone(),
                        _ => name.into(),
                    },
                });
            }
            suffix = &suffix[suffix.find('.')? + 1..];
        }
    }

    /// The vendor of a flow's names: its server name's, else that of the
    /// first of its DNS names (queried name, then the CNAME chain) that a
    /// vendor owns.
    pub fn of_names(&self, names: &FlowNames) -> Option<VendorMatch> {
        let server = names.server_name.as_ref().map(|(s, _)| s);
        server.into_iter().chain(names.dns.iter()).find_map(|n| self.lookup_shared(n, Some(n)))
    }
}

/// Why `domain` cannot be a catalogue domain, if it cannot.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    let labels: Vec<&str> = domain.split('.').collect();
    let plain = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !plain {
        return Err("is not a lower-case domain name of whole labels");
    }
    if labels.len() < 2 {
        return Err("is a top-level domain");
    }
    if PUBLIC_SECOND_LEVEL.contains(&domain) {
        return Err("is a public suffix");
    }
    let shared = SHARED_DOMAINS.iter().any(|s| {
        domain == *s || domain.ends_with(&format!(".{s}")) || s.ends_with(&format!(".{domain}"))
    });
    if shared {
        return Err("is (or contains) a shared cloud or CDN name that serves other companies");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../geoip/vendors.toml");

    fn shipped() -> VendorCatalogue {
        VendorCatalogue::parse(SHIPPED, Path::new("geoip/vendors.toml")).unwrap()
    }

    fn vendor_of(c: &VendorCatalogue, name: &str) -> Option<(String, String)> {
        c.lookup(name).map(|m| (m.vendor.id.clone(), m.product().name.clone()))
    }

    #[test]
    fn the_shipped_catalogue_loads_and_names_its_sources() {
        let c = shipped();
        for id in [
            "huawei",
            "zte",
            "xiaomi",
            "bytedance",
            "tencent",
            "alibaba",
            "hikvision",
            "dahua",
            "hytera",
            "kaspersky",
            "dji",
            "pdd",
        ] {
            assert!(c.index_of(id).is_some(), "{id} missing");
        }
        assert!(c.domain_count() >= 60, "{}", c.domain_count());
        for v in c.vendors() {
            assert!(!v.source.is_empty() && !v.jurisdiction_reason.is_empty(), "{}", v.id);
        }
    }

    #[test]
    fn whole_labels_only_and_the_longest_domain_wins() {
        let c = shipped();
        let tiktok = Some(("bytedance".to_owned(), "TikTok".to_owned()));
        assert_eq!(vendor_of(&c, "vcs-va.tiktokv.com"), tiktok);
        assert_eq!(vendor_of(&c, "TikTok.com."), tiktok);
        assert_eq!(vendor_of(&c, "tiktok.com"), tiktok);
        // A vendor's name inside another label, or above another domain.
        assert_eq!(vendor_of(&c, "nothuawei.com"), None);
        assert_eq!(vendor_of(&c, "huawei.com.example.test"), None);
        assert_eq!(vendor_of(&c, "myqq.com"), None);
        assert_eq!(vendor_of(&c, "com"), None);
        assert_eq!(vendor_of(&c, ""), None);
        assert_eq!(vendor_of(&c, "."), None);
        assert_eq!(vendor_of(&c, "hik-connect.com\u{e9}"), None);
        // The more specific product.
        let wechat = vendor_of(&c, "res.wx.qq.com").unwrap();
        assert_eq!(wechat, ("tencent".to_owned(), "WeChat (Weixin)".to_owned()));
        assert_eq!(vendor_of(&c, "pingma.qq.com").unwrap().1, "QQ and Tencent portals");
        assert_eq!(vendor_of(&c, "api.io.mi.com").unwrap().1, "Mi Home (Xiaomi IoT cloud)");
        assert_eq!(vendor_of(&c, "account.xiaomi.com").unwrap().0, "xiaomi");
        let m = c.lookup("Cloud.Huawei.com").unwrap();
        assert_eq!((&*m.domain, &*m.name), ("cloud.huawei.com", "cloud.huawei.com"));
    }

    #[test]
    fn the_first_name_with_a_vendor_is_taken() {
        let c = shipped();
        let dns = |names: &[&str]| FlowNames {
            server_name: None,
            dns: names.iter().map(|&n| Arc::from(n)).collect(),
        };
        let names = dns(&["www.example.test", "edge.ezvizlife.com", "x.dji.com"]);
        let m = c.of_names(&names).unwrap();
        assert_eq!((m.vendor.id.as_str(), &*m.name), ("hikvision", "edge.ezvizlife.com"));
        // The match shares the flow's copy of the name.
        assert!(Arc::ptr_eq(&m.name, &names.dns[1]));
        assert_eq!(c.of_names(&dns(&["a.example", "b.example"])), None);
        // A name not in the catalogue's form gets its own copy.
        let m = c.of_names(&dns(&["Edge.EzvizLife.com."])).unwrap();
        assert_eq!(&*m.name, "edge.ezvizlife.com");
    }

    fn one(domain: &str) -> String {
        format!(
            "[catalogue]\nname = \"t\"\nsnapshot = \"s\"\nlicence = \"l\"\nsource = \"s\"\n\
             [[vendor]]\nid = \"v\"\nname = \"V\"\nparent = \"P\"\ncategory = \"c\"\n\
             jurisdiction = \"CN\"\njurisdiction_reason = \"r\"\nsource = \"s\"\n\
             [[vendor.product]]\nname = \"p\"\ndomains = [\"{domain}\"]\n"
        )
    }

    fn error(text: &str) -> String {
        VendorCatalogue::parse(text, Path::new("v.toml")).unwrap_err().to_string()
    }

    #[test]
    fn imprecise_domains_are_refused() {
        assert!(VendorCatalogue::parse(&one("example.com"), Path::new("v.toml")).is_ok());
        assert_eq!(error(&one("com")), "v.toml: vendor 'v': domain \"com\" is a top-level domain");
        assert!(error(&one("com.cn")).ends_with("is a public suffix"));
        assert!(VendorCatalogue::parse(&one("zte.com.cn"), Path::new("v.toml")).is_ok());
        assert!(error(&one("x.aliyuncs.com")).contains("shared cloud or CDN"));
        assert!(error(&one("akamaized.net")).contains("shared cloud or CDN"));
        assert!(error(&one("net")).contains("top-level"));
        assert!(error(&one("Huawei.com")).contains("lower-case"));
        assert!(error(&one("a..b")).contains("whole labels"));
        let twice = format!(
            "{}\n[[vendor.product]]\nname = \"q\"\ndomains = [\"example.com\"]\n",
            one("example.com")
        );
        assert_eq!(error(&twice), "v.toml: domain \"example.com\" is listed for both 'v' and 'v'");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let text = one("example.com").replace("jurisdiction = \"CN\"", "jurisdiction = \"CHN\"");
        assert!(error(&text).starts_with("v.toml:11:16:"), "{}", error(&text));
        let text = one("example.com").replace("jurisdiction = \"CN\"", "jurisdiction = \"UK\"");
        assert!(error(&text).contains("(the United Kingdom is GB)"), "{}", error(&text));
        let text =
            one("example.com").replace("source = \"s\"\n[[vendor.product]]", "[[vendor.product]]");
        assert!(error(&text).contains("missing field `source`"), "{}", error(&text));
    }
}
