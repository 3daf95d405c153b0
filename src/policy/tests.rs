use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::decode::FrameRef;
use crate::flow::{EndReason, Endpoint, SideStats};
use crate::intel::{CountrySource, ProviderConfig};
use crate::names::NameSource;
use crate::time::Timestamp;

static PROVIDERS: std::sync::LazyLock<ProviderCatalogue> = std::sync::LazyLock::new(|| {
    let mut c = ProviderCatalogue::default();
    for (id, j) in [("alibaba_cloud", "CN"), ("aws", "US"), ("yandex_cloud", "RU")] {
        let text = format!("id = \"{id}\"\nname = \"{id}\"\njurisdiction = \"{j}\"\n");
        let config: ProviderConfig = toml::from_str(&text).unwrap();
        c.add(config, Path::new("p.toml")).unwrap();
    }
    c
});

/// The shipped vendor catalogue.
static VENDORS: std::sync::LazyLock<VendorCatalogue> =
    std::sync::LazyLock::new(|| crate::intel::IntelSources::default().vendors().unwrap());

/// Three test providers and the shipped vendors.
fn catalogue() -> Catalogues<'static> {
    Catalogues { providers: &PROVIDERS, vendors: &VENDORS }
}

/// The shipped catalogues.
fn shipped_catalogues() -> Catalogues<'static> {
    static SHIPPED: std::sync::LazyLock<ProviderCatalogue> =
        std::sync::LazyLock::new(|| crate::intel::IntelSources::default().catalogue().unwrap());
    Catalogues { providers: &SHIPPED, vendors: &VENDORS }
}

fn check(text: &str) -> Vec<String> {
    match RulePack::parse(text, Path::new("r.toml"), catalogue()) {
        Ok((_, warnings)) => warnings.iter().map(|d| d.to_string()).collect(),
        Err(diags) => diags.iter().map(|d| d.to_string()).collect(),
    }
}

fn pack(rules: &str) -> RulePack {
    let text = format!(
        "[pack]\nname = \"t\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n{rules}"
    );
    let (pack, warnings) = RulePack::parse(&text, Path::new("r.toml"), catalogue())
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    pack
}

const HEAD: &str = "[pack]\nname = \"t\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n";

#[test]
fn errors_name_line_column_and_what_was_expected() {
    let text = format!(
        "{HEAD}[[rule]]\nid = \"a\"\ntitle = \"A\"\nseverity = \"hgih\"\nwhen_unknown = \"ignore\"\n\
         [rule.match]\nhosting_country = [\"CN\", \"UK\"]\ncontry = \"RU\"\ncidr = \"10.0.0.0/33\"\n\
         provider = \"alibaba\"\n"
    );
    assert_eq!(
        check(&text),
        [
            "r.toml:9:12: error: bad severity \"hgih\" (expected info, low, medium, high or critical)",
            "r.toml:13:1: error: unknown field `contry` in [rule.match]; expected one of: \
             hosting_country, jurisdiction, provider, service, region, asn, vendor, \
             vendor_jurisdiction, cidr, domain_suffix, transport, remote_port, direction, \
             min_bytes_out, local_network, local_host",
            "r.toml:12:26: error: unknown country code \"UK\": not an ISO 3166-1 alpha-2 code \
             (the United Kingdom is GB)",
            "r.toml:15:12: error: unknown provider id \"alibaba\" (did you mean alibaba_cloud?)",
            "r.toml:14:8: error: bad CIDR \"10.0.0.0/33\" (expected an address or \
             address/prefix, e.g. 203.0.113.0/24)",
        ]
    );
}

#[test]
fn syntax_errors_and_missing_fields_are_reported() {
    assert_eq!(
        check("[pack]\nname = \"t\nversion = 1\n")[0],
        "r.toml:2:10: error: invalid basic string, expected `\"`"
    );
    let text = "[pack]\nname = \"t\"\ndescription = \"d\"\nsource = \"s\"\n[[rule]]\nid = \"a\"\n";
    assert_eq!(
        check(text),
        [
            "r.toml:1:1: error: [pack] has no `version`",
            "r.toml:5:1: error: rule \"a\" has no `title`",
            "r.toml:5:1: error: rule \"a\" has no `severity`",
            "r.toml:5:1: error: rule \"a\" has no `match`",
        ]
    );
}

#[test]
fn intel_rules_must_say_what_unknown_means() {
    let text = format!(
        "{HEAD}[[rule]]\nid = \"a\"\ntitle = \"A\"\nseverity = \"low\"\n\
         [rule.match]\njurisdiction = \"CN\"\n"
    );
    assert_eq!(
        check(&text),
        ["r.toml:6:1: error: rule \"a\" tests hosting country, jurisdiction, provider, service, \
          region, ASN or vendor: say what to do when that is unknown with when_unknown = \
          \"match\" or \"ignore\""]
    );
}

#[test]
fn warns_about_rules_that_can_never_match() {
    let text = format!(
        "{HEAD}[[rule]]\nid = \"a\"\ntitle = \"A\"\nseverity = \"low\"\nwhen_unknown = \"ignore\"\n\
         [rule.match]\nprovider = \"aws\"\njurisdiction = \"CN\"\n\
         [[rule]]\nid = \"b\"\ntitle = \"B\"\nseverity = \"low\"\n\
         [rule.match]\ntransport = \"icmp\"\nremote_port = 443\n\
         [[rule]]\nid = \"c\"\ntitle = \"C\"\nseverity = \"low\"\n\
         [rule.match]\ndomain_suffix = []\n\
         [[rule]]\nid = \"c\"\ntitle = \"C2\"\nseverity = \"low\"\n\
         [rule.match]\ncidr = \"192.0.2.1/24\"\n"
    );
    assert_eq!(
        check(&text),
        [
            "r.toml:11:1: warning: rule \"a\" can never match: none of its providers has one of \
             its jurisdictions in the catalogue",
            "r.toml:18:1: warning: rule \"b\" can never match: remote_port with transports that \
             have no ports",
            "r.toml:26:17: warning: `domain_suffix` is an empty list: the block can never hold",
            "r.toml:32:8: warning: \"192.0.2.1/24\" has host bits set; it means 192.0.2.0/24",
            "r.toml:28:6: error: rule id \"c\" is already used on line 22",
        ]
    );
}

#[test]
fn shipped_packs_are_valid_and_cite_their_source() {
    let (policy, warnings) = shipped::policy(shipped_catalogues()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(policy.packs.len(), 5);
    for p in &policy.packs {
        assert!(!p.source.is_empty() && !p.rules.is_empty(), "{}", p.name);
        assert!(p.location.starts_with("embedded rules/"));
    }
}

#[test]
fn eu_pack_lists_every_code_outside_the_eea_and_adequacy_decisions() {
    let (policy, _) = shipped::policy(shipped_catalogues()).unwrap();
    let eu = policy.packs.iter().find(|p| p.name == "eu-third-countries").unwrap();
    let listed = eu.rules[0].matches.hosting_country.clone().unwrap();
    let inside = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES \
                  SE IS LI NO AX GF GP MQ RE YT MF AD AR CA FO GG IL IM JP JE NZ KR CH GB UY US BR";
    let expected: Vec<CountryCode> = crate::intel::iso3166::COUNTRIES
        .iter()
        .filter(|(c, _)| !inside.split(' ').any(|i| i == *c))
        .filter_map(|(c, _)| CountryCode::parse(c))
        .collect();
    assert_eq!(listed[..], expected[..]);
}

fn cc(s: &str) -> Option<CountryCode> {
    CountryCode::parse(s)
}

fn intel(ip: &str, country: Option<&str>, provider: Option<(&str, &str)>) -> Intel {
    let ip: IpAddr = ip.parse().unwrap();
    Intel {
        ip,
        class: crate::intel::classify(ip),
        country: country.and_then(cc),
        country_source: country.map(|_| CountrySource::GeoIp),
        asn: None,
        as_org: None,
        provider: provider.map(|(p, _)| Arc::from(p)),
        provider_name: None,
        service: None,
        region: None,
        jurisdiction: provider.and_then(|(_, j)| cc(j)),
        prefix: None,
        dataset: None,
    }
}

fn flow(local: &str, remote: &str, port: u16, direction: Direction, bytes_out: u64) -> FlowRecord {
    let (source, destination) =
        if direction == Direction::Inbound { (remote, local) } else { (local, remote) };
    let stats = |bytes| SideStats { packets: 1, bytes, payload_bytes: 0, tcp_flags: 0 };
    let (s, d) = if direction == Direction::Inbound {
        (stats(10), stats(bytes_out))
    } else {
        (stats(bytes_out), stats(10))
    };
    FlowRecord {
        id: 1,
        protocol: 6,
        source: Endpoint { ip: source.parse().unwrap(), port: Some(40000) },
        destination: Endpoint { ip: destination.parse().unwrap(), port: Some(port) },
        source_stats: s,
        destination_stats: d,
        start: Timestamp::from_parts(0, 0),
        end: Timestamp::from_parts(1, 0),
        first_frame: FrameRef { file: 0, frame: 1 },
        direction,
        end_reason: EndReason::EndOfCapture,
        tunnels: Default::default(),
        carries: None,
    }
}

fn matches(
    policy: &Policy,
    f: &FlowRecord,
    i: Option<&Intel>,
    n: Option<&FlowNames>,
) -> Vec<String> {
    policy
        .evaluate(&FlowFacts { flow: f, intel: i, names: n, vendor: None })
        .iter()
        .map(|m| {
            let (_, rule) = policy.rule(m);
            if m.unknown.is_empty() {
                rule.id.clone()
            } else {
                format!("{} (unknown {})", rule.id, m.unknown.join(", "))
            }
        })
        .collect()
}

#[test]
fn fields_are_all_required_values_are_alternatives() {
    let p = Policy {
        packs: vec![pack(
            "[[rule]]\nid = \"cn-https\"\ntitle = \"t\"\nseverity = \"high\"\nwhen_unknown = \"ignore\"\n\
             [rule.match]\nhosting_country = [\"CN\", \"HK\"]\nremote_port = [443, \"8000-8100\"]\n\
             direction = \"outbound\"\nmin_bytes_out = 100\n",
        )],
    };
    let hk = intel("192.0.2.1", Some("HK"), None);
    let f = |port, dir, bytes| flow("10.0.0.1", "192.0.2.1", port, dir, bytes);
    assert_eq!(matches(&p, &f(443, Direction::Outbound, 100), Some(&hk), None), ["cn-https"]);
    assert_eq!(matches(&p, &f(8050, Direction::Outbound, 500), Some(&hk), None), ["cn-https"]);
    assert!(matches(&p, &f(80, Direction::Outbound, 500), Some(&hk), None).is_empty());
    assert!(matches(&p, &f(443, Direction::Inbound, 500), Some(&hk), None).is_empty());
    assert!(matches(&p, &f(443, Direction::Outbound, 99), Some(&hk), None).is_empty());
    let us = intel("192.0.2.1", Some("US"), None);
    assert!(matches(&p, &f(443, Direction::Outbound, 500), Some(&us), None).is_empty());
}

#[test]
fn unknown_facts_follow_the_rules_choice_and_never_touch_special_addresses() {
    let rules = |w: &str| Policy {
        packs: vec![pack(&format!(
            "[[rule]]\nid = \"cn\"\ntitle = \"t\"\nseverity = \"high\"\nwhen_unknown = \"{w}\"\n\
                 [rule.match]\njurisdiction = \"CN\"\n"
        ))],
    };
    // 8.8.8.8 is public: without a provider its jurisdiction is unknown.
    let public = intel("8.8.8.8", Some("US"), None);
    let f = flow("10.0.0.1", "8.8.8.8", 443, Direction::Outbound, 1);
    assert_eq!(matches(&rules("match"), &f, Some(&public), None), ["cn (unknown jurisdiction)"]);
    assert!(matches(&rules("ignore"), &f, Some(&public), None).is_empty());
    // Multicast is never attributed: nothing unknown about it.
    let multicast = intel("224.0.0.251", None, None);
    let f = flow("10.0.0.1", "224.0.0.251", 5353, Direction::Outbound, 1);
    assert!(matches(&rules("match"), &f, Some(&multicast), None).is_empty());
}

/// Facts are tested in order and stop at the first that fails: every
/// unknown fact is listed, in the rule's order, when the others hold, and a
/// false fact before or after an unknown one means no match.
#[test]
fn unknown_facts_are_listed_in_order_and_a_false_fact_wins() {
    let rule = |facts: &str| Policy {
        packs: vec![pack(&format!(
            "[[rule]]\nid = \"r\"\ntitle = \"t\"\nseverity = \"high\"\nwhen_unknown = \"match\"\n\
             [rule.match]\n{facts}"
        ))],
    };
    // Public, hosted in the US, no provider, no ASN: jurisdiction, provider
    // and asn are unknown; hosting_country is known.
    let public = intel("8.8.8.8", Some("US"), None);
    let f = flow("10.0.0.1", "8.8.8.8", 443, Direction::Outbound, 1);
    let unknowns = rule("jurisdiction = \"CN\"\nprovider = \"alibaba_cloud\"\nasn = 37963\n");
    assert_eq!(
        matches(&unknowns, &f, Some(&public), None),
        ["r (unknown jurisdiction, provider, asn)"]
    );
    let unknown_then_false = rule("jurisdiction = \"CN\"\nasn = 37963\nhosting_country = \"CN\"\n");
    assert!(matches(&unknown_then_false, &f, Some(&public), None).is_empty());
    let false_then_unknown = rule("hosting_country = \"CN\"\njurisdiction = \"CN\"\n");
    assert!(matches(&false_then_unknown, &f, Some(&public), None).is_empty());
    let true_then_unknown = rule("hosting_country = \"US\"\nasn = 37963\n");
    assert_eq!(matches(&true_then_unknown, &f, Some(&public), None), ["r (unknown asn)"]);
    // Every fact unknown (no intelligence but the class, no names), listed
    // in the order they are tested, whatever the rule's order.
    let nothing = intel("8.8.8.8", None, None);
    let all = rule(
        "vendor_jurisdiction = \"CN\"\nvendor = \"kaspersky\"\nasn = 37963\nregion = \"r\"\n\
         service = \"s\"\nprovider = \"alibaba_cloud\"\njurisdiction = \"CN\"\n\
         hosting_country = \"CN\"\n",
    );
    assert_eq!(
        matches(&all, &f, Some(&nothing), None),
        ["r (unknown hosting_country, jurisdiction, provider, service, region, asn, vendor, \
          vendor_jurisdiction)"]
    );
}

#[test]
fn unless_excepts_hosts_and_domains() {
    let p = Policy {
        packs: vec![pack(
            "[[rule]]\nid = \"cn\"\ntitle = \"t\"\nseverity = \"high\"\nwhen_unknown = \"ignore\"\n\
             [rule.match]\njurisdiction = \"CN\"\n\
             [[rule.unless]]\nlocal_host = \"10.0.0.9\"\n\
             [[rule.unless]]\nlocal_network = \"10.1.0.0/16\"\ndomain_suffix = \".Example.CN.\"\n",
        )],
    };
    let ali = intel("47.88.1.1", Some("US"), Some(("alibaba_cloud", "CN")));
    let names = |n: &str| FlowNames {
        server_name: Some((n.into(), NameSource::TlsSni)),
        dns: [Arc::from("cdn.other.test")].into(),
    };
    let f = |local| flow(local, "47.88.1.1", 443, Direction::Outbound, 1);
    assert_eq!(matches(&p, &f("10.0.0.1"), Some(&ali), None), ["cn"]);
    assert!(matches(&p, &f("10.0.0.9"), Some(&ali), None).is_empty());
    let n = names("www.example.cn");
    assert!(matches(&p, &f("10.1.2.3"), Some(&ali), Some(&n)).is_empty());
    let n = names("notexample.cn");
    assert_eq!(matches(&p, &f("10.1.2.3"), Some(&ali), Some(&n)), ["cn"]);
    assert_eq!(matches(&p, &f("10.2.0.1"), Some(&ali), Some(&names("example.cn"))), ["cn"]);
}

/// `matches` with the flow's vendor attributed from its names.
fn vendor_matches(p: &Policy, f: &FlowRecord, i: &Intel, n: Option<&FlowNames>) -> Vec<String> {
    let vendor = n.and_then(|n| VENDORS.of_names(n));
    p.evaluate(&FlowFacts { flow: f, intel: Some(i), names: n, vendor: vendor.as_ref() })
        .iter()
        .map(|m| {
            let id = p.rule(m).1.id.clone();
            if m.unknown.is_empty() {
                id
            } else {
                format!("{id} (unknown {})", m.unknown.join(", "))
            }
        })
        .collect()
}

#[test]
fn vendor_rules_match_the_names_vendor_and_know_a_name_without_one() {
    let rules = |w: &str| Policy {
        packs: vec![pack(&format!(
            "[[rule]]\nid = \"cams\"\ntitle = \"t\"\nseverity = \"high\"\nwhen_unknown = \"{w}\"\n\
             [rule.match]\nvendor = [\"hikvision\", \"dahua\"]\n\
             [[rule]]\nid = \"cn-vendor\"\ntitle = \"t\"\nseverity = \"low\"\n\
             when_unknown = \"{w}\"\n[rule.match]\nvendor_jurisdiction = \"CN\"\n\
             [[rule.unless]]\nvendor = \"hikvision\"\n"
        ))],
    };
    // A documentation address: no provider, but its name tells the vendor.
    let remote = intel("8.8.4.4", Some("US"), None);
    let f = flow("10.0.0.1", "8.8.4.4", 443, Direction::Outbound, 1);
    let sni = |n: &str| FlowNames {
        server_name: Some((n.into(), NameSource::TlsSni)),
        dns: Default::default(),
    };
    let p = rules("match");
    assert_eq!(vendor_matches(&p, &f, &remote, Some(&sni("api.hik-connect.com"))), ["cams"]);
    assert_eq!(
        vendor_matches(&p, &f, &remote, Some(&sni("www.imoulife.com"))),
        ["cams", "cn-vendor"]
    );
    assert_eq!(vendor_matches(&p, &f, &remote, Some(&sni("web.wechat.com"))), ["cn-vendor"]);
    // A vendor's name as part of another label, or above another domain.
    assert!(vendor_matches(&p, &f, &remote, Some(&sni("hik-connect.com.example"))).is_empty());
    assert!(vendor_matches(&p, &f, &remote, Some(&sni("nothikvision.com"))).is_empty());
    // A DNS name counts when the server name has no vendor.
    let dns = FlowNames {
        server_name: Some(("edge.example.test".into(), NameSource::TlsSni)),
        dns: [Arc::from("a.example.test"), Arc::from("p2p.easy4ip.com")].into(),
    };
    assert_eq!(vendor_matches(&p, &f, &remote, Some(&dns)), ["cams", "cn-vendor"]);
    // No name at all: the vendor is unknown, and the rule's choice decides.
    assert_eq!(
        vendor_matches(&p, &f, &remote, None),
        ["cams (unknown vendor)", "cn-vendor (unknown vendor_jurisdiction)"]
    );
    assert!(vendor_matches(&rules("ignore"), &f, &remote, None).is_empty());
    // The finding is about the vendor's country, not the hosting country.
    let n = sni("api.hik-connect.com");
    let m = VENDORS.of_names(&n).unwrap();
    let rule = &p.packs[0].rules[0];
    assert_eq!(finding_country(rule, Some(&remote), Some(&m)), cc("CN"));
}

#[test]
fn vendor_ids_are_checked_against_the_catalogue() {
    let text = format!(
        "{HEAD}[[rule]]\nid = \"a\"\ntitle = \"A\"\nseverity = \"low\"\nwhen_unknown = \"ignore\"\n\
         [rule.match]\nvendor = [\"hikvison\", \"bytedance\", \"huwei\", \"acme\"]\n"
    );
    assert_eq!(
        check(&text),
        [
            "r.toml:12:11: error: unknown vendor id \"hikvison\" (did you mean hikvision?)",
            "r.toml:12:36: error: unknown vendor id \"huwei\" (did you mean huawei?)",
            "r.toml:12:45: error: unknown vendor id \"acme\" (geoip/vendors.toml lists the ids)",
        ]
    );
}

#[test]
fn domain_suffixes_match_whole_labels() {
    assert!(has_suffix("oss-cn-hangzhou.aliyuncs.com", "aliyuncs.com"));
    assert!(has_suffix("aliyuncs.com.", "aliyuncs.com"));
    assert!(has_suffix("ALIYUNCS.COM", "aliyuncs.com"));
    assert!(!has_suffix("evilaliyuncs.com", "aliyuncs.com"));
    assert!(!has_suffix("com", "aliyuncs.com"));
    // A name from the traffic may cut a character where the suffix starts.
    assert!(!has_suffix("\u{e9}.com", "x.com"));
    assert!(has_suffix("\u{e9}.x.com", "x.com"));
}

proptest::proptest! {
    /// No rule file, however broken, makes the checker panic.
    #[test]
    fn arbitrary_rule_files_never_panic(text in "\\PC{0,400}") {
        let _ = RulePack::parse(&text, Path::new("r.toml"), catalogue());
    }

    /// Nor does a valid pack with any byte changed.
    #[test]
    fn damaged_rule_files_never_panic(at in 0usize..600, byte in 0u8..128) {
        let mut text = format!(
            "{HEAD}[[rule]]\nid = \"a\"\ntitle = \"A\"\nseverity = \"low\"\n\
             when_unknown = \"match\"\n[rule.match]\nhosting_country = [\"CN\", \"RU\"]\n\
             cidr = \"192.0.2.0/24\"\nremote_port = [443, \"8000-8100\"]\nasn = \"AS4134\"\n\
             [[rule.unless]]\nlocal_host = \"10.0.0.1\"\ndomain_suffix = \"a.example\"\n"
        ).into_bytes();
        let at = at % text.len();
        text[at] = byte;
        if let Ok(text) = String::from_utf8(text) {
            let _ = RulePack::parse(&text, Path::new("r.toml"), catalogue());
        }
    }

    /// Suffix matching takes any name.
    #[test]
    fn any_name_against_any_suffix(name in "\\PC{0,40}", suffix in "[a-z.]{0,12}") {
        let _ = has_suffix(&name, &suffix);
    }
}

#[test]
fn disabled_rules_never_match() {
    let p = Policy {
        packs: vec![pack(
            "[[rule]]\nid = \"all\"\ntitle = \"t\"\nseverity = \"info\"\nenabled = false\n\
             [rule.match]\ndirection = \"outbound\"\n",
        )],
    };
    let f = flow("10.0.0.1", "192.0.2.1", 443, Direction::Outbound, 1);
    assert!(matches(&p, &f, None, None).is_empty());
    assert_eq!(p.rule_count(), 0);
}

/// Loading is linear in the rules (it was quadratic: 200,000 rules took
/// over a minute); the last duplicate id is still found with its line.
#[test]
fn a_pack_of_200000_rules_loads() {
    let mut text = String::from(HEAD);
    for i in 0..200_000 {
        text.push_str(&format!(
            "[[rule]]\nid = \"r{i}\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.match]\n\
             cidr = \"198.51.100.{}/32\"\n",
            i % 256
        ));
    }
    text.push_str(
        "[[rule]]\nid = \"r7\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.match]\ntransport = \"tcp\"\n",
    );
    let errors = check(&text);
    assert_eq!(errors, ["r.toml:1200007:6: error: rule id \"r7\" is already used on line 49"]);
}
