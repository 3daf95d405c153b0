//! Tunnels on `fixtures/tunnels.pcap` (one flow inside each kind of tunnel,
//! built by `tests/support/fixtures.rs`): the records a person can check
//! against the fixture's description in `fixtures/README.md`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

mod support;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tunnels.pcap")
}

fn audit(extra: &[&str]) -> (Vec<Value>, Output) {
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "--quiet", "--format", "jsonl", "--flows"])
        .args(extra)
        .arg(fixture())
        .output()
        .unwrap();
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"]["kind"] == "event")
        .collect();
    (records, out)
}

fn endpoint(e: &Value) -> String {
    match e.get("port") {
        Some(p) => format!("{}:{p}", e["ip"].as_str().unwrap()),
        None => e["ip"].as_str().unwrap().to_owned(),
    }
}

/// One line per flow record: transport, source > destination, packets each
/// way, the tunnel it carries, and the tunnels around it (outermost first).
fn lines(records: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| {
            let chain: Vec<String> = r["xborder"]["tunnels"]
                .as_array()
                .map(|layers| {
                    layers
                        .iter()
                        .map(|l| {
                            let id = l.get("id").map_or(String::new(), |id| format!(" {id}"));
                            format!(
                                "{} {}>{}{id}",
                                l["type"].as_str().unwrap(),
                                l["source"]["ip"].as_str().unwrap(),
                                l["destination"]["ip"].as_str().unwrap()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{} {} > {} {}/{} carries {} in [{}]",
                r["network"]["transport"].as_str().unwrap(),
                endpoint(&r["source"]),
                endpoint(&r["destination"]),
                r["source"]["packets"],
                r["destination"]["packets"],
                r["xborder"]["flow"]["carries"].as_str().unwrap_or("-"),
                chain.join(" / ")
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_tunnel_kind_yields_its_inner_flow_and_its_own() {
    let (records, out) = audit(&[]);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = [
        "gre 10.5.0.1 > 10.5.0.2 1/0 carries gre in [gre 198.51.100.20>198.51.100.21 1]",
        "gre 192.0.2.80 > 192.0.2.81 2/0 carries erspan-ii in []",
        "gre 198.51.100.1 > 198.51.100.2 1/1 carries gre in []",
        "gre 198.51.100.20 > 198.51.100.21 1/0 carries gre in []",
        "icmp 10.1.0.1 > 198.51.100.99 1/1 carries - in [geneve 192.0.2.70>192.0.2.71 7]",
        "icmp 10.6.0.1 > 203.0.113.60 1/0 carries - in \
         [gre 198.51.100.20>198.51.100.21 1 / gre 10.5.0.1>10.5.0.2 2]",
        "ipv4 2001:db8:a::1 > 2001:db8:b::1 1/0 carries ip-in-ip in []",
        "ipv6 192.0.2.90 > 198.51.100.90 1/0 carries ip-in-ip in []",
        "ipv6-icmp 2001:0:c000:264::1 > 2001:db8:100::1 1/1 carries - in \
         [teredo 192.168.1.10>192.0.2.100]",
        "tcp 10.0.0.5:50100 > 54.86.237.188:443 5/3 carries - in [vxlan 192.0.2.50>192.0.2.60 100]",
        "tcp 10.3.0.1:1111 > 203.0.113.30:80 1/0 carries - in [erspan-ii 192.0.2.80>192.0.2.81 5]",
        "tcp 10.3.0.2:2222 > 203.0.113.31:80 1/0 carries - in [erspan-iii 192.0.2.80>192.0.2.81 6]",
        "tcp 2001:db8:90::1:3333 > 2001:db8:91::1:443 1/0 carries - in \
         [ip-in-ip 192.0.2.90>198.51.100.90]",
        "udp 10.0.0.9:40000 > 203.0.113.9:53 1/1 carries - in [vxlan 192.0.2.50>192.0.2.60 201]",
        "udp 10.0.0.9:40000 > 203.0.113.9:53 1/1 carries - in [vxlan 192.0.2.50>192.0.2.60 202]",
        "udp 10.2.0.1:5000 > 203.0.113.20:5001 1/1 carries - in [gre 198.51.100.1>198.51.100.2 42]",
        "udp 10.4.0.1:4444 > 203.0.113.50:123 1/0 carries - in [ip-in-ip 2001:db8:a::1>2001:db8:b::1]",
        // TEIDs differ per direction: one flow, named by the first packet's.
        "udp 10.45.0.2:3000 > 203.0.113.40:53 1/1 carries - in \
         [gtp-u 198.51.100.10>198.51.100.11 4097]",
        "udp 192.0.2.50:49152 > 192.0.2.60:4789 8/0 carries vxlan in []",
        "udp 192.0.2.50:49153 > 192.0.2.60:4789 4/0 carries vxlan in []",
        // The truncated VXLAN header: an ordinary flow, and an anomaly.
        "udp 192.0.2.50:49154 > 192.0.2.60:4789 1/0 carries - in []",
        "udp 192.0.2.70:51000 > 192.0.2.71:6081 1/0 carries geneve in []",
        "udp 192.0.2.71:51000 > 192.0.2.70:6081 1/0 carries geneve in []",
        "udp 192.168.1.10:40001 > 192.0.2.100:3544 1/1 carries teredo in []",
        "udp 198.51.100.10:2152 > 198.51.100.11:2152 1/1 carries gtp-u in []",
    ];
    assert_eq!(lines(&records), expected);
    // The mirrored flow is audited as any flow: its remote's provider, and
    // the name in its ClientHello.
    let tls =
        records.iter().find(|r| r["destination"]["port"] == 443 && r["source"]["port"] == 50100);
    let tls = tls.expect("the TLS flow inside VXLAN");
    assert_eq!(tls["xborder"]["remote"]["provider"], "aws");
    assert_eq!(tls["xborder"]["remote"]["region"], "us-east-1");
    assert_eq!(tls["tls"]["client"]["server_name"], "api.mirror.example");
    assert_eq!(tls["network"]["direction"], "outbound");
}

#[test]
fn the_truncated_tunnel_header_is_an_anomaly() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_xborder")).arg("audit").arg(fixture()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("tunnel header truncated"));
    let line = line.unwrap_or_else(|| panic!("no tunnel anomaly in\n{text}"));
    assert!(line.contains(" 1 ") && line.ends_with("first: tunnels.pcap#26"), "{line}");
    // The finding about the AWS endpoint says which tunnel it came through.
    assert!(text.contains("      inside vxlan 192.0.2.50 > 192.0.2.60 id 100\n"), "{text}");
}

#[test]
fn tunnels_outer_keys_every_flow_on_the_outermost_header() {
    let (inner, _) = audit(&[]);
    let (outer, out) = audit(&["--tunnels", "outer"]);
    assert!(out.status.code().is_some_and(|c| c <= 1));
    let expected: Vec<String> = lines(&inner)
        .into_iter()
        .filter(|l| l.ends_with("in []"))
        .map(|l| l.split(" carries ").next().unwrap().to_owned())
        .collect();
    let got: Vec<String> = lines(&outer)
        .into_iter()
        .map(|l| {
            assert!(l.ends_with("carries - in []"), "{l}");
            l.split(" carries ").next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn tunnel_ports_come_from_flags_and_the_config_file() {
    let count_inner = |records: &[Value]| {
        records.iter().filter(|r| r["xborder"]["tunnels"][0]["type"] == "vxlan").count()
    };
    let (all, _) = audit(&[]);
    assert_eq!(count_inner(&all), 3);
    let (none, _) = audit(&["--vxlan-port", "0"]);
    assert_eq!(count_inner(&none), 0);
    // GENEVE moved to another port: its packets are ordinary UDP.
    let (moved, _) = audit(&["--geneve-port", "6082"]);
    assert!(!moved.iter().any(|r| r["xborder"]["tunnels"][0]["type"] == "geneve"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("xborder.toml");
    std::fs::write(&config, "[tunnels]\nvxlan_ports = []\n").unwrap();
    let (from_file, out) = audit(&["--config", config.to_str().unwrap()]);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count_inner(&from_file), 0);
    std::fs::write(&config, "[tunnels]\ndecode = \"outer\"\n").unwrap();
    let (outer, _) = audit(&["--config", config.to_str().unwrap()]);
    assert!(outer.iter().all(|r| r["xborder"]["tunnels"].is_null()));
    // The flag wins over the file.
    let (inner, _) = audit(&["--config", config.to_str().unwrap(), "--tunnels", "inner"]);
    assert_eq!(count_inner(&inner), 3);
    std::fs::write(&config, "[tunnels]\ndecode = \"innermost\"\n").unwrap();
    let (_, bad) = audit(&["--config", config.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("xborder.toml:2:"), "{err}");
}

/// A packet in a flagged tunnel and in a flagged flow inside it is written
/// to the evidence once, commented with the innermost flow's findings.
#[test]
fn evidence_holds_each_tunnelled_packet_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("tunnel-test.toml");
    std::fs::write(
        &rules,
        "[pack]\nname = \"tunnel-test\"\ndescription = \"the mirror and the AWS flow in it\"\n\
         source = \"tests/tunnels.rs\"\nversion = \"1\"\n\n\
         [[rule]]\nid = \"mirror-target\"\ntitle = \"VXLAN to the mirror target\"\n\
         severity = \"high\"\n[rule.match]\nremote_port = [4789]\n\n\
         [[rule]]\nid = \"aws-endpoint\"\ntitle = \"The AWS endpoint\"\nseverity = \"high\"\n\
         [rule.match]\ncidr = [\"54.86.237.188/32\"]\n",
    )
    .unwrap();
    let evidence = dir.path().join("flagged.pcapng");
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "-q", "--fail-on", "none", "-o"])
        .arg(dir.path().join("report.txt"))
        .arg("--rules")
        .arg(&rules)
        .arg("--evidence")
        .arg(&evidence)
        .arg(fixture())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The 8 packets of the mirrored TLS flow, the 4 of the tenants and the
    // truncated one, in order.
    let tshark = Command::new("tshark")
        .args(["-r"])
        .arg(&evidence)
        .args(["-T", "fields", "-e", "frame.comment"])
        .output();
    let Ok(tshark) = tshark else {
        eprintln!("tshark not installed: evidence comments not checked");
        return;
    };
    let comments: Vec<String> =
        String::from_utf8_lossy(&tshark.stdout).lines().map(str::to_owned).collect();
    assert_eq!(comments.len(), 13, "{comments:?}");
    for (i, c) in comments.iter().enumerate() {
        let rule = if i < 8 { "aws-endpoint" } else { "mirror-target" };
        assert!(c.starts_with(&format!("xborder: {rule} (high)")), "frame {}: {c}", i + 1);
    }
}

/// A fragment inside a tunnel that comes before the first of its datagram:
/// the evidence still holds its packet, once, for the flagged flow inside.
#[test]
fn evidence_keeps_a_tunnelled_fragment_that_waits_for_its_first() {
    use support::{encap, ethernet, fragment_ipv4, ip_packet, pcap, PcapFormat, Record, L4};
    let datagram =
        ip_packet("10.0.0.5", "203.0.113.77", L4::Udp { sport: 4000, dport: 4001 }, &[7; 100]);
    let pieces = fragment_ipv4(&datagram, 64, 0x4242);
    assert_eq!(pieces.len(), 2);
    let wrap = |ip: &[u8]| ethernet(&[], &encap::vxlan("192.0.2.50", "192.0.2.60", 49152, 9, ip));
    let base = 1_709_294_400_000_000_000;
    let records =
        vec![Record::new(base, wrap(&pieces[1])), Record::new(base + 1_000_000, wrap(&pieces[0]))];
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("fragment-in-vxlan.pcap");
    std::fs::write(&capture, pcap(PcapFormat::new(1), &records)).unwrap();
    let rules = dir.path().join("inner.toml");
    std::fs::write(
        &rules,
        "[pack]\nname = \"inner\"\ndescription = \"the flow inside\"\nsource = \"test\"\n\
         version = \"1\"\n\n[[rule]]\nid = \"inner\"\ntitle = \"inside\"\nseverity = \"high\"\n\
         [rule.match]\ncidr = [\"203.0.113.77/32\"]\n",
    )
    .unwrap();
    let evidence = dir.path().join("flagged.pcapng");
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "--no-intel", "--fail-on", "none", "-o"])
        .arg(dir.path().join("report.txt"))
        .arg("--rules")
        .arg(&rules)
        .arg("--evidence")
        .arg(&evidence)
        .arg(&capture)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("evidence: 2 packets of 1 flagged flow"), "{err}");
    assert!(!err.contains("omitted") && !err.contains("waiting"), "{err}");
}
