//! Vendors told by the names in the traffic: `fixtures/vendors.pcap`
//! (built by `tests/support/fixtures.rs::vendor_records`) through the real
//! binary with the shipped vendor catalogue and rule packs, in every
//! format, and `xborder lookup NAME`. The capture talks to documentation
//! addresses only: whatever a vendor is found for comes from its name.

mod support;

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::Value;
use support::xborder_in_root as xborder;

const CAPTURE: &str = "fixtures/vendors.pcap";

fn records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The remote address of a record.
fn remote(r: &Value) -> String {
    let side = r["xborder"]["flow"]["remote"].as_str().unwrap();
    r[side]["ip"].as_str().unwrap().to_owned()
}

#[test]
fn the_quic_builder_makes_initials_the_names_stage_reads() {
    let hello = support::fixtures::client_hello("www.tiktok.com");
    let datagram = support::quic::client_initial(&[1, 2, 3, 4, 5, 6, 7, 8], &hello[5..]);
    assert_eq!(datagram.len(), 1200);
    let pieces = xborder::names::quic::initial_crypto(&datagram);
    let stream = xborder::names::quic::assemble_kept(&pieces);
    assert_eq!(xborder::names::quic::crypto_sni(&stream), Ok(Some("www.tiktok.com".into())));
}

/// A ClientHello in two Initials (as Chrome's with a post-quantum key
/// share), in either order: the flow is named once both have come, and
/// only by the connection's datagrams.
#[test]
fn a_client_hello_spanning_two_initials_names_the_flow_in_either_order() {
    use support::{ip_packet, pcap, PcapFormat, Record, L4};
    let hello = support::fixtures::client_hello("www.tiktok.com");
    let (first, second) = hello[5..].split_at(40);
    let dcid = [7; 8];
    let initials = [
        support::quic::client_initial_piece(&dcid, 0, 0, first),
        support::quic::client_initial_piece(&dcid, 1, 40, second),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (order, name) in [([0, 1], "in-order.pcap"), ([1, 0], "reversed.pcap")] {
        let packets: Vec<Record> = order
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let udp = L4::Udp { sport: 50300, dport: 443 };
                let ip = ip_packet("192.0.2.10", "203.0.113.22", udp, &initials[n]);
                Record::new(
                    1_700_000_000_000_000_000 + i as i64 * 1_000_000,
                    support::ethernet(&[], &ip),
                )
            })
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, pcap(PcapFormat::new(1), &packets)).unwrap();
        let out = xborder(&[
            "audit",
            path.to_str().unwrap(),
            "--no-intel",
            "--format",
            "jsonl",
            "--flows",
            "--fail-on",
            "none",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let flows = records(&out);
        assert_eq!(flows.len(), 1, "{name}");
        assert_eq!(flows[0]["tls"]["client"]["server_name"], "www.tiktok.com", "{name}");
    }
}

#[test]
fn each_flow_carries_the_vendor_its_names_belong_to() {
    let out = xborder(&["audit", CAPTURE, "--format", "jsonl", "--flows"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let flows: BTreeMap<String, Value> = records(&out)
        .into_iter()
        .filter(|r| r["event"]["kind"] == "event")
        .map(|r| (remote(&r), r))
        .collect();
    // 21 flows, two of them DNS to the same server.
    assert_eq!(flows.len(), 20);
    // Every vendor of the catalogue is named by one flow.
    let named: std::collections::BTreeSet<&str> =
        flows.values().filter_map(|r| r["xborder"]["vendor"]["id"].as_str()).collect();
    let catalogue = xborder::intel::IntelSources::default().vendors().unwrap();
    let all: std::collections::BTreeSet<&str> =
        catalogue.vendors().iter().map(|v| v.id.as_str()).collect();
    assert_eq!(named, all);
    // remote → (vendor, product, catalogue domain, name that matched), how
    // the name was learned.
    type Vendor = Option<(&'static str, &'static str, &'static str, &'static str)>;
    let expected: &[(&str, Vendor, &str)] = &[
        (
            "203.0.113.20",
            Some(("hikvision", "Hik-Connect", "hik-connect.com", "api.hik-connect.com")),
            "tls_sni",
        ),
        (
            "203.0.113.21",
            Some((
                "kaspersky",
                "Kaspersky security software",
                "kaspersky.com",
                "dnl-03.geo.kaspersky.com",
            )),
            "http_host",
        ),
        ("203.0.113.22", Some(("bytedance", "TikTok", "tiktok.com", "www.tiktok.com")), "quic_sni"),
        ("203.0.113.23", Some(("xiaomi", "Mi Home", "io.mi.com", "api.io.mi.com")), "dns"),
        ("203.0.113.24", None, "tls_sni"),
        ("203.0.113.25", None, "tls_sni"),
        ("203.0.113.26", Some(("tencent", "WeChat", "wechat.com", "web.wechat.com")), "tls_sni"),
        (
            "203.0.113.27",
            Some(("huawei", "Huawei Mobile Services", "cloud.huawei.com", "cloud.huawei.com")),
            "tls_sni",
        ),
        ("203.0.113.28", Some(("dji", "DJI drones", "dji.com", "www.dji.com")), "tls_sni"),
        ("203.0.113.29", Some(("pdd", "Temu", "temu.com", "www.temu.com")), "tls_sni"),
        ("203.0.113.30", None, "none"),
        ("203.0.113.31", Some(("zte", "ZTE", "ztedevices.com", "www.ztedevices.com")), "tls_sni"),
        ("203.0.113.32", Some(("hytera", "Hytera", "hytera.com", "www.hytera.com")), "http_host"),
        ("203.0.113.33", Some(("dahua", "Imou", "easy4ip.com", "p2p.easy4ip.com")), "dns"),
        (
            "203.0.113.34",
            Some(("alibaba", "AliExpress", "aliexpress.com", "www.aliexpress.com")),
            "tls_sni",
        ),
        (
            "203.0.113.35",
            Some(("ant_group", "Alipay", "alipay.com", "mobilegw.alipay.com")),
            "tls_sni",
        ),
        (
            "203.0.113.36",
            Some(("china_mobile", "China Mobile", "10086.cn", "www.10086.cn")),
            "tls_sni",
        ),
        (
            "203.0.113.37",
            Some(("china_telecom", "China Telecom", "189.cn", "www.189.cn")),
            "tls_sni",
        ),
        (
            "203.0.113.38",
            Some(("china_unicom", "China Unicom", "10010.com", "www.10010.com")),
            "tls_sni",
        ),
    ];
    for (ip, vendor, learned) in expected {
        let r = &flows[*ip];
        let names = &r["xborder"]["names"];
        let how = match names["source"].as_str() {
            Some(s) => s.to_owned(),
            None if names["dns"].is_array() => "dns".to_owned(),
            None => "none".to_owned(),
        };
        assert_eq!(how, *learned, "{ip}: {names}");
        let v = &r["xborder"]["vendor"];
        match vendor {
            None => assert!(v.is_null(), "{ip} has a vendor: {v}"),
            Some((id, product, domain, name)) => {
                assert_eq!(v["id"], *id, "{ip}");
                assert!(v["product"].as_str().unwrap().starts_with(product), "{ip}: {v}");
                assert_eq!(v["domain"], *domain, "{ip}");
                assert_eq!(v["matched_name"], *name, "{ip}");
                assert_eq!(v["jurisdiction"], if *id == "kaspersky" { "RU" } else { "CN" });
                assert!(!v["parent"].as_str().unwrap().is_empty());
            }
        }
    }
    // The DNS server itself is nobody's vendor.
    assert!(flows["198.51.100.53"]["xborder"]["vendor"].is_null());
}

#[test]
fn the_shipped_pack_reports_each_vendor_under_its_us_action() {
    let out = xborder(&["audit", CAPTURE, "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    let mut got: Vec<(String, String, String, String)> = records(&out)
        .iter()
        .map(|r| {
            (
                remote(r),
                r["rule"]["id"].as_str().unwrap().to_owned(),
                r["xborder"]["finding"]["severity"].as_str().unwrap().to_owned(),
                r["xborder"]["finding"]["country"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("203.0.113.20", "fcc-covered-equipment-vendor", "high", "CN"),
        ("203.0.113.21", "icts-kaspersky", "critical", "RU"),
        ("203.0.113.22", "pafaca-bytedance", "high", "CN"),
        ("203.0.113.23", "icts-foreign-adversary-vendor", "medium", "CN"),
        ("203.0.113.26", "icts-foreign-adversary-vendor", "medium", "CN"),
        ("203.0.113.27", "fcc-covered-equipment-vendor", "high", "CN"),
        ("203.0.113.28", "fcc-covered-drones", "medium", "CN"),
        ("203.0.113.29", "icts-foreign-adversary-vendor", "medium", "CN"),
        ("203.0.113.31", "fcc-covered-equipment-vendor", "high", "CN"),
        ("203.0.113.32", "fcc-covered-equipment-vendor", "high", "CN"),
        ("203.0.113.33", "fcc-covered-equipment-vendor", "high", "CN"),
        ("203.0.113.34", "icts-foreign-adversary-vendor", "medium", "CN"),
        ("203.0.113.35", "icts-foreign-adversary-vendor", "medium", "CN"),
        ("203.0.113.36", "fcc-covered-carrier-service", "high", "CN"),
        ("203.0.113.37", "fcc-covered-carrier-service", "high", "CN"),
        ("203.0.113.38", "fcc-covered-carrier-service", "high", "CN"),
    ];
    let want: Vec<(String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// The fields of one RFC 4180 line.
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[test]
fn csv_and_text_show_vendor_and_product_with_each_finding() {
    let out = xborder(&["audit", CAPTURE, "--format", "csv"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap());
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), 16);
    let kaspersky = rows.iter().find(|r| r[col("rule_id")] == "icts-kaspersky").unwrap();
    assert_eq!(kaspersky[col("vendor")], "kaspersky");
    assert_eq!(kaspersky[col("vendor_name")], "Kaspersky");
    assert_eq!(kaspersky[col("vendor_jurisdiction")], "RU");
    assert_eq!(kaspersky[col("server_name")], "dnl-03.geo.kaspersky.com");
    assert!(rows.iter().all(|r| !r[col("vendor_product")].is_empty()));

    let out = xborder(&["audit", CAPTURE]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("      vendor Hikvision (CN law): Hik-Connect"), "{text}");
    assert!(text.contains("      vendor ByteDance (CN law): TikTok\n"), "{text}");
    // The headline names the vendors, not the (unknown) operators.
    assert!(text.starts_with("1 local host sent 13.3 kB to endpoints in or under restricted"));
    assert!(text.contains("RU (Kaspersky)"), "{text}");
}

#[test]
fn without_intelligence_no_vendor_is_told() {
    let out = xborder(&["audit", CAPTURE, "--no-intel", "--format", "jsonl", "--flows"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let recs = records(&out);
    assert_eq!(recs.len(), 21);
    assert!(recs.iter().all(|r| r["xborder"]["vendor"].is_null()));
}

#[test]
fn lookup_tells_what_the_catalogue_says_of_a_name() {
    let out = xborder(&["lookup", "Res.WX.qq.com", "nothuawei.com"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Res.WX.qq.com\n  vendor        Tencent (tencent)\n"), "{text}");
    assert!(
        text.contains("  product       WeChat (Weixin)\n  domain        wx.qq.com\n"),
        "{text}"
    );
    assert!(text.contains("  jurisdiction  CN (Headquartered in Shenzhen, PRC)\n"), "{text}");
    assert!(text.contains("nothuawei.com\n  vendor        - (no vendor"), "{text}");

    let out = xborder(&["lookup", "--json", "api.io.mi.com", "8.8.8.8"]);
    assert!(out.status.success());
    let recs = records(&out);
    assert_eq!(recs[0]["vendor"], "xiaomi");
    assert_eq!(recs[0]["product"], "Mi Home (Xiaomi IoT cloud)");
    assert_eq!(recs[1]["ip"], "8.8.8.8");

    let out = xborder(&["lookup", "not a name"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "xborder: 'not a name' is neither an IP address nor a server name\n"
    );
}
