//! The shipped rule packs against the shipped intelligence: for each pack,
//! endpoints that must match and endpoints that must not. Addresses are
//! only looked up here, never contacted.

use std::collections::BTreeSet;
use std::net::IpAddr;

use xborder::decode::FrameRef;
use xborder::flow::{Direction, EndReason, Endpoint, FlowRecord, SideStats};
use xborder::intel::{IntelDb, IntelSources};
use xborder::policy::{shipped, Catalogues, FlowFacts, Policy};
use xborder::time::Timestamp;

fn flow(remote: &str, direction: Direction) -> FlowRecord {
    let local = Endpoint { ip: "10.0.0.5".parse().unwrap(), port: Some(50000) };
    let remote = Endpoint { ip: remote.parse().unwrap(), port: Some(443) };
    let (source, destination) =
        if direction == Direction::Inbound { (remote, local) } else { (local, remote) };
    let stats = SideStats { packets: 3, bytes: 1000, payload_bytes: 800, tcp_flags: 0x1b };
    FlowRecord {
        id: 1,
        protocol: 6,
        source,
        destination,
        source_stats: stats,
        destination_stats: stats,
        start: Timestamp::from_parts(1_700_000_000, 0),
        end: Timestamp::from_parts(1_700_000_001, 0),
        first_frame: FrameRef { file: 0, frame: 1 },
        direction,
        end_reason: EndReason::TcpClosed,
        tunnels: Default::default(),
        carries: None,
    }
}

/// The ids of the rules that match a flow to `remote`.
fn matching(db: &IntelDb, policy: &Policy, remote: &str, direction: Direction) -> BTreeSet<String> {
    let f = flow(remote, direction);
    let ip: IpAddr = remote.parse().unwrap();
    let intel = db.lookup(ip);
    policy
        .evaluate(&FlowFacts { flow: &f, intel: Some(&intel), names: None, vendor: None })
        .iter()
        .map(|m| policy.rule(m).1.id.clone())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn shipped_packs_match_what_they_should_and_nothing_else() {
    let sources = IntelSources::default();
    let db = sources.load().unwrap();
    let catalogues = Catalogues { providers: &db.catalogue, vendors: &db.vendors };
    let (policy, warnings) = shipped::policy(catalogues).unwrap();
    assert!(warnings.is_empty());
    let out = Direction::Outbound;
    let cases: &[(&str, &str, Direction, &[&str])] = &[
        // Alibaba Cloud hosted in the US: by jurisdiction, not by hosting
        // country.
        (
            "Alibaba Cloud in the US",
            "47.88.1.1",
            out,
            &["usfa-provider-jurisdiction", "cn-provider", "eu-us-hosting-dpf"],
        ),
        // An American provider in Hong Kong: by hosting country only.
        (
            "AWS ap-east-1 (Hong Kong)",
            "1.178.103.1",
            out,
            &["usfa-hosting-country", "eu-third-country-hosting"],
        ),
        ("AWS us-east-1", "1.178.4.1", out, &["eu-us-hosting-dpf"]),
        (
            "Yandex Cloud in Russia",
            "51.250.1.1",
            out,
            &[
                "usfa-hosting-country",
                "usfa-provider-jurisdiction",
                "ru-provider",
                "eu-third-country-hosting",
            ],
        ),
        (
            "ArvanCloud in Iran",
            "185.143.232.1",
            out,
            &[
                "usfa-hosting-country",
                "usfa-provider-jurisdiction",
                "ofac-hosting-country",
                "ofac-provider-jurisdiction",
                "eu-third-country-hosting",
            ],
        ),
        // Aeza's range geolocates to Germany; its legal home is Russia.
        (
            "Aeza (SDN) in Germany",
            "77.221.156.1",
            out,
            &["usfa-provider-jurisdiction", "ru-provider", "ofac-sdn-hosting-provider"],
        ),
        (
            "an Iranian mobile network",
            "2.144.0.1",
            out,
            &["usfa-hosting-country", "ofac-hosting-country", "eu-third-country-hosting"],
        ),
        (
            "a Cuban network",
            "200.55.128.1",
            out,
            &["usfa-hosting-country", "ofac-hosting-country", "eu-third-country-hosting"],
        ),
        (
            "a North Korean network",
            "175.45.176.1",
            out,
            &["usfa-hosting-country", "ofac-hosting-country", "eu-third-country-hosting"],
        ),
        // Venezuela: the Maduro entry is a regime, so info only.
        (
            "a Venezuelan network",
            "190.202.0.1",
            out,
            &["usfa-maduro-regime", "eu-third-country-hosting"],
        ),
        ("Hetzner in Germany", "5.75.128.1", out, &[]),
        // Inbound connections from adversary countries are not flagged by
        // the adversary packs (scans); sanctions apply both ways.
        ("inbound from Russia", "51.250.1.1", Direction::Inbound, &[]),
        ("inbound from Iran", "2.144.0.1", Direction::Inbound, &["ofac-hosting-country"]),
        // Special-purpose addresses are never attributed.
        ("multicast", "224.0.0.251", out, &[]),
        ("documentation", "198.51.100.1", out, &[]),
    ];
    for (what, ip, direction, expected) in cases {
        assert_eq!(matching(&db, &policy, ip, *direction), set(expected), "{what} ({ip})");
    }
}
