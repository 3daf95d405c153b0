//! The demo of the quick start: `fixtures/demo.pcap` (built by
//! `tests/support/fixtures.rs::demo_records`) with the built-in data and
//! rule packs gives the findings README.md and fixtures/README.md describe.

mod support;

use std::collections::BTreeSet;

#[test]
fn the_demo_shows_what_xborder_is_for() {
    let out = support::xborder_in_root(&["audit", "fixtures/demo.pcap", "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let got: BTreeSet<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let side = r["xborder"]["flow"]["remote"].as_str().unwrap().to_owned();
            (
                r[side.as_str()]["ip"].as_str().unwrap().to_owned(),
                r["rule"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        // Alibaba Cloud hosted in the US: by jurisdiction, not hosting.
        ("47.88.1.1", "usfa-provider-jurisdiction"),
        ("47.88.1.1", "cn-provider"),
        ("47.88.1.1", "eu-us-hosting-dpf"),
        // Tencent Cloud in CN: both, and a GDPR third country.
        ("159.75.0.1", "usfa-hosting-country"),
        ("159.75.0.1", "usfa-provider-jurisdiction"),
        ("159.75.0.1", "cn-provider"),
        ("159.75.0.1", "eu-third-country-hosting"),
        // Yandex Cloud in RU.
        ("51.250.0.1", "usfa-hosting-country"),
        ("51.250.0.1", "usfa-provider-jurisdiction"),
        ("51.250.0.1", "ru-provider"),
        ("51.250.0.1", "eu-third-country-hosting"),
        // Google in the US: context for GDPR transfers only.
        ("142.250.74.36", "eu-us-hosting-dpf"),
        // A Hikvision camera's cloud on AWS in Frankfurt: told by its name.
        ("18.184.0.1", "fcc-covered-equipment-vendor"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    // AWS in Frankfurt (3.120.0.1) has nothing to report.
    assert_eq!(got, want);
    let headline = String::from_utf8_lossy(&out.stderr);
    assert!(headline.starts_with("1 local host sent 79.2 kB to endpoints in or under restricted jurisdictions: CN (Alibaba Cloud (Aliyun), Tencent Cloud, Hikvision), RU (Yandex Cloud)"), "{headline}");
}
