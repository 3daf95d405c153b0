//! Reports, exit statuses and `rules check`, through the binary.
//!
//! Golden reports: `fixtures/policy/gateway.pcap` with the overlay
//! `fixtures/policy/overlay.toml` (documentation addresses mapped to test
//! providers and countries) against the shipped packs, in every format.
//! After a deliberate change: `XBORDER_WRITE_FIXTURES=1 cargo test --test
//! reports`, then read the diff.

mod support;

use std::path::Path;
use std::process::Output;

use support::xborder_in_root as xborder;

const CAPTURE: &str = "fixtures/policy/gateway.pcap";
const OVERLAY: &str = "fixtures/policy/overlay.toml";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn golden(name: &str, got: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy").join(name);
    if std::env::var_os("XBORDER_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_default();
    assert!(
        want == got,
        "{name} differs from the golden file; if the change is deliberate, run \
         XBORDER_WRITE_FIXTURES=1 cargo test --test reports\n--- got:\n{}",
        String::from_utf8_lossy(got)
    );
}

#[test]
fn golden_reports_in_every_format() {
    for (format, file) in [
        ("text", "gateway.txt"),
        ("json", "gateway.json"),
        ("jsonl", "gateway.jsonl"),
        ("csv", "gateway.csv"),
    ] {
        // The same on one core and with three shards (issue 15).
        for threads in ["1", "5"] {
            let args = ["audit", CAPTURE, "--overlay", OVERLAY, "--format", format];
            let out = xborder(&[&args[..], &["--threads", threads]].concat());
            assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
            if format == "text" {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
                assert!(!text.contains('\x1b'), "no colour when not on a terminal");
            }
            golden(file, &out.stdout);
        }
    }
}

#[test]
fn json_document_is_valid_and_carries_provenance() {
    let out = xborder(&["audit", CAPTURE, "--overlay", OVERLAY, "--format", "json", "--flows"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["flows"].as_array().unwrap().len(), 9);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 17);
    assert_eq!(doc["totals"]["findings_by_severity"]["critical"], 1);
    let packs = doc["rule_packs"].as_array().unwrap();
    assert_eq!(packs.len(), 5);
    assert!(packs.iter().all(|p| p["sha256"].as_str().unwrap().len() == 64));
    let roles: Vec<&str> =
        doc["data"].as_array().unwrap().iter().map(|d| d["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["providers", "vendors", "regions", "overlay", "provider ranges", "asn", "country"]
    );
    // The Alibaba-like case: CN jurisdiction, US hosting, both reported.
    let cn = &doc["aggregates"]["by_jurisdiction"]["CN"];
    assert_eq!(cn["flows"], 2);
    assert_eq!(cn["flagged_flows"], 2);
    assert_eq!(doc["aggregates"]["by_local_host"]["10.1.0.7"]["flows"], 2);
}

#[test]
fn jsonl_with_flows_puts_each_flows_findings_after_it() {
    let out = xborder(&["audit", CAPTURE, "--overlay", OVERLAY, "--format", "jsonl", "--flows"]);
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records.iter().map(|r| r["event"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "event").count(), 9);
    assert_eq!(kinds.iter().filter(|k| **k == "alert").count(), 17);
    // The DNS flow has no finding; the CN provider's flow has three.
    assert_eq!(kinds[..5], ["event", "event", "alert", "alert", "alert"]);
    let alert = &records[2];
    assert_eq!(alert["rule"]["id"], "usfa-provider-jurisdiction");
    assert_eq!(alert["event"]["severity"], 4);
    assert_eq!(alert["destination"]["geo"]["country_iso_code"], "US");
    assert_eq!(alert["xborder"]["remote"]["jurisdiction"], "CN");
    assert_eq!(alert["xborder"]["flow"]["end_reason"], "tcp_closed");
}

#[test]
fn exit_status_follows_fail_on() {
    let status = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            CAPTURE,
            "--overlay",
            OVERLAY,
            "-q",
            "--format",
            "csv",
            "-o",
            "/dev/null",
        ];
        args.extend(extra);
        xborder(&args).status.code()
    };
    assert_eq!(status(&[]), Some(1), "default --fail-on low, high findings");
    assert_eq!(status(&["--fail-on", "critical"]), Some(1), "one critical finding");
    assert_eq!(status(&["--fail-on", "none"]), Some(0));
    // Without the overlay the documentation addresses are never attributed.
    let out = xborder(&["audit", CAPTURE, "-q", "--format", "csv", "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Only info findings: below the default threshold, at --fail-on info.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("info.toml");
    std::fs::write(
        &rules,
        "[pack]\nname = \"info\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n\
         [[rule]]\nid = \"ve\"\ntitle = \"VE\"\nseverity = \"info\"\nwhen_unknown = \"ignore\"\n\
         [rule.match]\nhosting_country = \"VE\"\n",
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    assert_eq!(status(&["--rules", r]), Some(0));
    assert_eq!(status(&["--rules", r, "--fail-on", "info"]), Some(1));
}

#[test]
fn an_error_wins_over_findings_and_keeps_them() {
    let out = xborder(&[
        "audit",
        "fixtures/damaged/truncated-record.pcap",
        "--overlay",
        "fixtures/intel/overlay.toml",
        "--format",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("file ends inside a packet record"), "{}", stderr(&out));
    // The CN provider's HTTPS flow before the damage is still reported.
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.lines().any(|l| l.starts_with("high,cn-provider,")), "{csv}");
}

#[test]
fn site_rules_with_domains_exceptions_and_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("site.toml");
    std::fs::write(
        &rules,
        r#"[pack]
name = "site"
description = "Our own rules"
source = "internal policy 7"
version = "3"

[[rule]]
id = "cn-cloud-by-name"
title = "Test CN Cloud by name"
severity = "critical"
[rule.match]
domain_suffix = "cn-cloud.example"
[[rule.unless]]
local_host = "10.1.0.9"

[[rule]]
id = "big-upload"
title = "More than 1 kB to a CN-controlled provider"
severity = "medium"
when_unknown = "ignore"
[rule.match]
jurisdiction = "CN"
min_bytes_out = 1001
[[rule.unless]]
local_network = "10.1.0.4/31"

[[rule]]
id = "unattributed-https"
title = "HTTPS to Test CN Cloud or to a public address of unknown provider"
severity = "low"
when_unknown = "match"
[rule.match]
provider = ["test_cn_cloud"]
remote_port = 443
"#,
    )
    .unwrap();
    let out = xborder(&[
        "audit",
        CAPTURE,
        "--overlay",
        OVERLAY,
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_owned(), format!("{} {}", f[4], f[6]))
        })
        .collect();
    // Documentation addresses are not public: "unknown" never applies to
    // them, so the last rule matches only the provider's own endpoints.
    assert_eq!(
        rows,
        [
            ("cn-cloud-by-name".to_owned(), "10.1.0.5 203.0.113.10".to_owned()),
            ("unattributed-https".to_owned(), "10.1.0.5 203.0.113.10".to_owned()),
            ("big-upload".to_owned(), "10.1.0.6 203.0.113.11".to_owned()),
            ("unattributed-https".to_owned(), "10.1.0.6 203.0.113.11".to_owned()),
        ]
    );
}

#[test]
fn rules_check_reports_every_problem_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"[pack]
name = "bad"
description = "typos"
source = "none"
version = "1"

[[rule]]
id = "r1"
title = "typos"
severity = "severe"
when_unknown = "ignore"
[rule.match]
hosting_country = ["CN", "UK"]
jurisdictoin = "RU"
cidr = "198.51.100.0/33"
provider = "alicloud"
direction = "outgoing"
"#,
    )
    .unwrap();
    let out = xborder(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let f = bad.display();
    assert_eq!(
        stderr(&out),
        format!(
            "{f}:10:12: error: bad severity \"severe\" (expected info, low, medium, high or critical)\n\
             {f}:14:1: error: unknown field `jurisdictoin` in [rule.match]; expected one of: \
             hosting_country, jurisdiction, provider, service, region, asn, vendor, \
             vendor_jurisdiction, cidr, domain_suffix, transport, remote_port, direction, \
             min_bytes_out, local_network, local_host\n\
             {f}:13:26: error: unknown country code \"UK\": not an ISO 3166-1 alpha-2 code (the \
             United Kingdom is GB)\n\
             {f}:16:12: error: unknown provider id \"alicloud\" (did you mean \
             alibaba_cloud?)\n\
             {f}:15:8: error: bad CIDR \"198.51.100.0/33\" (expected an address or \
             address/prefix, e.g. 203.0.113.0/24)\n\
             {f}:17:13: error: bad direction \"outgoing\" (expected outbound, inbound, internal \
             or external)\n"
        )
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");

    // The same file fails an audit before any capture is read.
    let out = xborder(&["audit", CAPTURE, "--rules", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "xborder: {f}:10:12: error: bad severity \"severe\" (expected info, low, medium, \
             high or critical) (and 5 more errors; `xborder rules check` lists them)\n"
        )
    );
}

#[test]
fn rules_check_accepts_the_shipped_packs_and_warns() {
    let packs = [
        "rules/us-foreign-adversaries.toml",
        "rules/eu-third-countries.toml",
        "rules/ofac-comprehensive.toml",
        "rules/cn-ru-cloud-providers.toml",
        "rules/us-icts-vendors.toml",
    ];
    let mut args = vec!["rules", "check"];
    args.extend(packs);
    let out = xborder(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(
        "rules/us-foreign-adversaries.toml: pack us-foreign-adversaries 2026-11-28, 3 rules\n"
    ));

    // Warnings alone do not fail; providers of an overlay are known.
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.toml");
    std::fs::write(
        &w,
        "[pack]\nname = \"w\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n\
         [[rule]]\nid = \"x\"\ntitle = \"X\"\nseverity = \"low\"\nwhen_unknown = \"ignore\"\n\
         [rule.match]\nprovider = \"test_cn_cloud\"\njurisdiction = \"US\"\n",
    )
    .unwrap();
    let out = xborder(&["rules", "check", w.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "test_cn_cloud is unknown without the overlay");
    let out = xborder(&["rules", "check", "--overlay", OVERLAY, w.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out),
        format!(
            "{}:11:1: warning: rule \"x\" can never match: none of its providers has one of its \
             jurisdictions in the catalogue\n",
            w.display()
        )
    );
}

/// Flows to eight countries outside the EU's adequacy list: the headlines
/// name the five with the most bytes and count the rest; each regime has
/// its own line, and the JSON document carries the same.
#[test]
fn headlines_are_capped_and_given_per_rule_pack() {
    use support::{ethernet, ip_packet, pcap, PcapFormat, Record, L4};
    let countries = ["CN", "RU", "IR", "IN", "SG", "ZA", "TR", "VN"];
    let dir = tempfile::tempdir().unwrap();
    let mut overlay = String::new();
    let mut records = Vec::new();
    for (i, c) in countries.iter().enumerate() {
        overlay.push_str(&format!(
            "[[network]]\ncidr = \"198.51.100.{}/29\"\ncountry = \"{c}\"\nas_org = \"Net {c}\"\n",
            i * 8
        ));
        // More bytes to the earlier countries.
        let payload = vec![0u8; 100 * (countries.len() - i)];
        let dst = format!("198.51.100.{}", i * 8 + 1);
        let l4 = L4::Udp { sport: 40000 + i as u16, dport: 9000 };
        let ip = ip_packet("10.1.0.5", &dst, l4, &payload);
        records.push(Record::new(1_700_000_000_000_000_000 + i as i64, ethernet(&[], &ip)));
    }
    let overlay_path = dir.path().join("overlay.toml");
    std::fs::write(&overlay_path, overlay).unwrap();
    let capture = dir.path().join("eight.pcap");
    std::fs::write(&capture, pcap(PcapFormat::new(1), &records)).unwrap();
    let (c, o) = (capture.to_str().unwrap(), overlay_path.to_str().unwrap());

    let out = xborder(&["audit", c, "--overlay", o]);
    let text = String::from_utf8_lossy(&out.stdout);
    let headline = text.split("\n\n").next().unwrap().replace('\n', " ");
    assert!(
        headline.starts_with("1 local host sent 3.")
            && headline
                .contains(": CN (Net CN), RU (Net RU), IR (Net IR), IN (Net IN), SG (Net SG),")
            && headline.ends_with(", and 3 more countries"),
        "{headline}"
    );
    assert!(!headline.contains("ZA"), "{headline}");
    assert!(text.contains("By rule pack\n"), "{text}");
    assert!(text.contains("\n  eu-third-countries: 1 local host sent 3."), "{text}");
    let json = xborder(&["audit", c, "--overlay", o, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let regimes = doc["headlines"].as_array().unwrap();
    let eu = regimes.iter().find(|h| h["pack"] == "eu-third-countries").unwrap();
    assert_eq!(eu["local_hosts"], 1);
    assert_eq!(eu["countries"].as_array().unwrap().len(), 5);
    assert_eq!(eu["more_countries"], 3);
    assert_eq!(eu["countries"][0]["country"], "CN");
    assert_eq!(eu["countries"][0]["operators"][0], "Net CN");
}

/// `--observer NAME` (ECS observer.name) is in every output: each jsonl
/// record, the JSON document, a CSV column, the text summary and the page.
#[test]
fn the_observer_is_named_in_every_output() {
    let run = |format: &str| {
        let out = xborder(&[
            "audit",
            CAPTURE,
            "--overlay",
            OVERLAY,
            "--format",
            format,
            "--observer",
            "gw-\"lyon\"",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let jsonl = run("jsonl");
    assert!(jsonl.lines().all(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["observer"]["name"] == "gw-\"lyon\""
    }));
    let doc: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(doc["observer"]["name"], "gw-\"lyon\"");
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["observer"]["name"] == "gw-\"lyon\""));
    let csv = run("csv");
    assert!(csv.lines().next().unwrap().ends_with(",observer"));
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",\"gw-\"\"lyon\"\"\"")), "{csv}");
    assert!(run("text").contains("\nObserver   gw-\"lyon\"\n"));
    assert!(run("html").contains("<p class=\"meta\">Observer gw-&quot;lyon&quot;</p>"));
    // Without it, the outputs are as they were (the goldens).
    let out = xborder(&["audit", CAPTURE, "--overlay", OVERLAY, "--format", "jsonl"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("observer"));
}
