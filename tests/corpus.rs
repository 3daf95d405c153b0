//! xborder against real captures from other projects in `../shared/corpus`
//! (present in CI), with tshark's flow tables in `oracle/` as the reference.
//!
//! Per-flow packet counts of the outer layer must agree exactly with
//! tshark wherever tshark read the file whole, except for the files listed
//! in [`KNOWN_DIFFERENCES`], each with its reason, which are checked for
//! what can still be checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

/// The corpus: `$XBORDER_CORPUS` or `../shared/corpus`; `None` (the test
/// skips, loudly) when it is missing outside CI.
fn corpus_dir() -> Option<PathBuf> {
    support::shared_data("XBORDER_CORPUS", "corpus", "MANIFEST.tsv")
}

/// The corpus, once a test has found it there.
fn corpus() -> PathBuf {
    corpus_dir().expect("the test checked that the corpus is there")
}

/// How a file's flows are allowed to differ from tshark's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Difference {
    /// A link type xborder does not decode: no flows, every packet counted
    /// under unsupported link types.
    UnsupportedLinkType,
    /// IP fragments: tshark reassembles and counts fragments that do not
    /// complete a datagram under "data"; xborder puts every fragment in its
    /// datagram's flow. The same packets, attributed differently.
    FragmentAttribution,
    /// Fuzzed packets: tshark's reassembly of garbage fragments and broken
    /// headers differs from xborder's per-packet decoding; only robustness
    /// and an upper bound on packets are checked.
    Fuzzed,
}

const KNOWN_DIFFERENCES: &[(&str, Difference)] = &[
    ("arkime__80211http.pcap", Difference::UnsupportedLinkType), // 127, 802.11 radiotap
    ("zeek__wlanmon.pcap", Difference::UnsupportedLinkType),     // 105, 802.11
    ("libpcap__http_PPI.pcap", Difference::UnsupportedLinkType), // 192, PPI
    ("tcpdump__arcnet-rfc1201-arp-icmp-http.pcap", Difference::UnsupportedLinkType), // 129
    ("zeek__gtp1_gn_normal_incl_fragmentation.pcap", Difference::FragmentAttribution),
    ("zeek__fragmented-1.pcap", Difference::FragmentAttribution),
    ("nDPI__ip_fragmented_garbage.pcap", Difference::FragmentAttribution),
    ("zeek__ipv6-fragmented-dns.pcap", Difference::FragmentAttribution),
    ("nDPI__fuzz-2006-06-26-2594.pcap", Difference::Fuzzed),
    ("nDPI__fuzz-2020-02-16-11740.pcap", Difference::Fuzzed),
];

/// A flow as both sides can name it: transport token and the two
/// endpoints, sorted.
type FlowName = (String, [String; 2]);

struct Oracle {
    exit_code: i32,
    packets: u64,
    /// Outer flows with tshark's frame counts; rows tshark could not give
    /// addresses for ("?", malformed headers) are left out.
    flows: BTreeMap<FlowName, u64>,
}

fn read_oracle(file: &str) -> Oracle {
    let text = std::fs::read_to_string(corpus().join(format!("oracle/{file}.tshark.txt"))).unwrap();
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{file}: no {name}"))
            .to_owned()
    };
    let table = text.split("== EXACT OUTER FLOWS").nth(1).unwrap().split("\n==").next().unwrap();
    let mut flows = BTreeMap::new();
    for row in table.lines().skip(2) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 4 || cols[1] == "?" || cols[2] == "?" {
            continue;
        }
        let mut ends = [cols[1].to_owned(), cols[2].to_owned()];
        ends.sort();
        *flows.entry((cols[0].to_owned(), ends)).or_default() += cols[3].parse::<u64>().unwrap();
    }
    Oracle {
        exit_code: field("tshark_exit_code").parse().unwrap(),
        packets: field("packets_tshark").parse().unwrap(),
        flows,
    }
}

/// tshark's name for the protocol after the IP header.
fn token(iana: u8) -> String {
    match iana {
        1 => "icmp",
        2 => "igmp",
        4 => "ip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "icmpv6",
        88 => "eigrp",
        112 => "vrrp",
        132 => "sctp",
        other => return other.to_string(),
    }
    .to_owned()
}

fn endpoint(side: &Value) -> String {
    let ip = side["ip"].as_str().unwrap();
    match side.get("port") {
        Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some(port) => format!("{ip}:{port}"),
        None => ip.to_owned(),
    }
}

struct Run {
    code: Option<i32>,
    stderr: String,
    flows: BTreeMap<FlowName, u64>,
    packets_in_flows: u64,
}

fn run(path: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "--quiet", "--no-intel", "--format", "jsonl", "--flows"])
        .arg(path)
        .output()
        .unwrap();
    let mut flows = BTreeMap::new();
    let mut packets_in_flows = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        let iana: u8 = f["network"]["iana_number"].as_str().unwrap().parse().unwrap();
        let mut ends = [endpoint(&f["source"]), endpoint(&f["destination"])];
        ends.sort();
        let packets = f["network"]["packets"].as_u64().unwrap();
        packets_in_flows += packets;
        *flows.entry((token(iana), ends)).or_default() += packets;
    }
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        flows,
        packets_in_flows,
    }
}

/// Differences between tshark's flows and ours. Rows tshark could not
/// dissect past IP ("(none)", "data") match a port-less flow of ours
/// between the same addresses, whatever its protocol number.
fn compare(oracle: &BTreeMap<FlowName, u64>, ours: &BTreeMap<FlowName, u64>) -> Vec<String> {
    let mut ours = ours.clone();
    let mut diffs = Vec::new();
    let mut undissected = Vec::new();
    for (name, &frames) in oracle {
        match ours.remove(name) {
            Some(n) if n == frames => {}
            Some(n) => diffs.push(format!("{name:?}: tshark {frames} packets, xborder {n}")),
            None if name.0 == "(none)" || name.0 == "data" => undissected.push((name, frames)),
            None => diffs.push(format!("{name:?}: tshark {frames} packets, xborder none")),
        }
    }
    for (name, frames) in undissected {
        let portless = ours
            .keys()
            .find(|(_, ends)| *ends == name.1 && !ends.iter().any(|e| e.contains("]:")))
            .cloned();
        match portless.and_then(|k| ours.remove(&k).map(|n| (k, n))) {
            Some((_, n)) if n == frames => {}
            other => diffs.push(format!("{name:?}: tshark {frames} packets, xborder {other:?}")),
        }
    }
    for (name, n) in ours {
        diffs.push(format!("{name:?}: tshark none, xborder {n} packets"));
    }
    diffs
}

#[test]
fn corpus_flows_agree_with_tshark() {
    let Some(dir) = corpus_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut unexpected = Vec::new();
    let mut compared = 0;
    for line in manifest.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let oracle = read_oracle(file);
        let run = run(&dir.join(file));
        // Never a panic or a signal: a clean run, or exit 2 with a message
        // naming the file.
        match run.code {
            Some(0) => {}
            Some(2) => assert!(
                run.stderr.contains(file),
                "{file}: exit 2 without naming the file: {}",
                run.stderr
            ),
            other => panic!("{file}: exit status {other:?}\n{}", run.stderr),
        }
        if oracle.exit_code != 0 {
            // tshark could not read the whole file; ours must not claim more
            // packets than the file has (tshark's partial count or 0).
            assert!(
                run.code == Some(2) || run.packets_in_flows <= oracle.packets.max(1) * 2,
                "{file}"
            );
            continue;
        }
        let diffs = compare(&oracle.flows, &run.flows);
        let known = KNOWN_DIFFERENCES.iter().find(|(f, _)| *f == file).map(|(_, d)| *d);
        let oracle_packets: u64 = oracle.flows.values().sum();
        match known {
            None if diffs.is_empty() => compared += 1,
            None => unexpected.push(format!("{file}:\n    {}", diffs.join("\n    "))),
            Some(kind) => {
                assert!(
                    !diffs.is_empty(),
                    "{file} now agrees with tshark: remove it from KNOWN_DIFFERENCES"
                );
                match kind {
                    Difference::UnsupportedLinkType => {
                        assert_eq!(run.packets_in_flows, 0, "{file}")
                    }
                    Difference::FragmentAttribution => {
                        assert_eq!(
                            run.packets_in_flows, oracle_packets,
                            "{file}: same packets in flows"
                        )
                    }
                    Difference::Fuzzed => assert!(run.packets_in_flows <= oracle.packets, "{file}"),
                }
            }
        }
    }
    assert!(unexpected.is_empty(), "flows differ from tshark:\n{}", unexpected.join("\n"));
    assert!(compared >= 60, "only {compared} files compared exactly");
}

/// Server names tshark finds that xborder does not, with the reason.
const KNOWN_MISSING_NAMES: &[(&str, &str, &str)] = &[
    // QUIC draft-29: only v1 and v2 Initials are decrypted.
    ("nDPI__dlt_ppp.pcap", "server4", "QUIC draft-29"),
    // Only the outer IP layer is a flow: names inside tunnels are not seen.
    ("nDPI__4in6tunnel.pcap", "www.bing.com", "inside 4in6"),
    ("zeek__vxlan-encapsulated-http.pcap", "eu.httpbin.org", "inside VXLAN"),
    (
        "zeek__gtp1_gn_normal_incl_fragmentation.pcap",
        "o-o.preferred.telekomrs-beg1.v2.lscache8.c.youtube.com",
        "inside GTP",
    ),
    // Unsupported link types.
    ("arkime__80211http.pcap", "qq.com", "802.11"),
    ("tcpdump__arcnet-rfc1201-arp-icmp-http.pcap", "tcpdump.org", "ARCNET"),
];

/// The values of an oracle summary line, e.g. `tls_sni: a b c`.
fn oracle_list(file: &str, field: &str) -> Vec<String> {
    let text = std::fs::read_to_string(corpus().join(format!("oracle/{file}.tshark.txt"))).unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix(&format!("{field}: "))).unwrap_or("(none)");
    if line == "(none)" {
        return Vec::new();
    }
    line.split(' ').map(str::to_owned).collect()
}

#[test]
fn corpus_server_names_agree_with_tshark() {
    let Some(dir) = corpus_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut missing = Vec::new();
    let mut found_total = 0;
    for line in manifest.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let sni = oracle_list(file, "tls_sni");
        // SSDP's Host over UDP multicast is not a server name.
        let hosts: Vec<String> = oracle_list(file, "http_host")
            .into_iter()
            .filter(|h| {
                !h.starts_with("239.255.255.250") && !h.to_ascii_lowercase().starts_with("[ff02")
            })
            .collect();
        if sni.is_empty() && hosts.is_empty() {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
            .args(["audit", "--quiet", "--no-intel", "--format", "jsonl", "--flows"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        let mut ours = std::collections::HashSet::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Value = serde_json::from_str(l).unwrap();
            if let Some(name) = f["xborder"]["names"]["server_name"].as_str() {
                ours.insert(name.to_owned());
            }
        }
        let expected = sni.into_iter().chain(hosts.into_iter().map(|h| {
            // tshark keeps the port and the brackets of the Host header.
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
                None => h.split(':').next().unwrap_or("").to_owned(),
            }
        }));
        for name in expected {
            if ours.contains(&name) {
                found_total += 1;
            } else if !KNOWN_MISSING_NAMES.iter().any(|(f, n, _)| *f == file && *n == name) {
                missing.push(format!("{file}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "server names tshark found and xborder did not:\n{}",
        missing.join("\n")
    );
    assert!(found_total >= 100, "only {found_total} names found");
}

/// The corpus captures whose server names (tshark's TLS SNI and HTTP Host)
/// the vendor catalogue attributes: each such flow's record carries that
/// vendor. Names xborder cannot see yet ([`KNOWN_MISSING_NAMES`]) are left
/// out; the list of captures is printed (`--nocapture`).
#[test]
fn corpus_vendor_names_are_attributed() {
    let Some(dir) = corpus_dir() else { return };
    let vendors = xborder::intel::IntelSources::default().vendors().unwrap();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let (mut checked, mut wrong) = (Vec::new(), Vec::new());
    for line in manifest.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let names: Vec<String> = oracle_list(file, "tls_sni")
            .into_iter()
            .chain(
                oracle_list(file, "http_host")
                    .into_iter()
                    .map(|h| h.to_ascii_lowercase().split(':').next().unwrap_or("").to_owned()),
            )
            .filter(|n| !KNOWN_MISSING_NAMES.iter().any(|(f, m, _)| *f == file && m == n))
            .filter(|n| vendors.lookup(n).is_some())
            .collect();
        if names.is_empty() {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
            .args(["audit", "--quiet", "--format", "jsonl", "--flows"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        let mut ours: BTreeMap<String, String> = BTreeMap::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Value = serde_json::from_str(l).unwrap();
            let x = &f["xborder"];
            if let (Some(n), Some(v)) =
                (x["names"]["server_name"].as_str(), x["vendor"]["id"].as_str())
            {
                ours.insert(n.to_owned(), v.to_owned());
            }
        }
        for name in names {
            let want = vendors.lookup(&name).map(|m| m.vendor.id.clone());
            if ours.get(&name) != want.as_ref() {
                wrong.push(format!("{file}: {name}: want {want:?}, got {:?}", ours.get(&name)));
            }
            checked.push(format!("{file}: {name} -> {}", want.unwrap_or_default()));
        }
    }
    println!("corpus names of catalogued vendors:\n{}", checked.join("\n"));
    assert!(wrong.is_empty(), "vendors differ:\n{}", wrong.join("\n"));
    // nDPI's WeChat, 1kxun and sites captures name Tencent, Huawei and
    // ByteDance services.
    assert!(
        checked.len() >= 8,
        "only {} names of catalogued vendors:\n{}",
        checked.len(),
        checked.join("\n")
    );
}

/// The DNS answers tshark reports: (queried name, addresses).
fn tshark_dns(path: &Path) -> Vec<(String, Vec<std::net::IpAddr>)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-Y",
            "dns.flags.response == 1",
            "-T",
            "fields",
            "-e",
            "dns.qry.name",
            "-e",
            "dns.a",
            "-e",
            "dns.aaaa",
        ])
        .output()
        .expect("tshark (Debian package tshark) must be installed: scripts/test installs it");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let name = cols.first()?.split(',').next()?.to_ascii_lowercase();
            let ips = cols[1..]
                .iter()
                .flat_map(|c| c.split(','))
                .filter_map(|a| a.parse().ok())
                .collect();
            Some((name, ips))
        })
        .collect()
}

/// Every DNS answer in the capture, as xborder's names stage keeps them.
fn our_dns(path: &Path) -> xborder::names::NameInspector {
    use xborder::capture::{open_capture, InputSpec, Opened};
    use xborder::decode::{decode, AnomalyCounter, Decoded, FrameRef};
    use xborder::flow::{FlowTable, FlowTimeouts, LocalNetworks};
    let mut names = xborder::names::NameInspector::new();
    let mut table = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
    let mut anomalies = AnomalyCounter::default();
    let input = InputSpec { path: path.to_owned(), from_directory: false };
    let Ok(Opened::Reader(mut reader)) = open_capture(&input) else { return names };
    while let Ok(Some(p)) = reader.next_packet() {
        if let Decoded::Ip(ip, _) = decode(p.link_type, p.data, p.wire_len) {
            let at = FrameRef { file: 0, frame: p.frame };
            if let Some(inspect) = table.observe(&ip, p.timestamp, at, &mut anomalies) {
                if !names.inspect(inspect, &ip, p.timestamp) {
                    table.end_inspection();
                }
            }
        }
    }
    names
}

/// Files whose DNS answers xborder does not see, with the reason.
const KNOWN_MISSING_DNS: &[(&str, &str)] = &[
    ("zeek__ipv6-fragmented-dns.pcap", "the answer is fragmented; fragments are not reassembled"),
    ("arkime__gtp-iphone.pcap", "inside GTP tunnels"),
    ("arkime__ipv6-gtp6.pcap", "inside GTP tunnels"),
    ("zeek__Teredo.pcap", "inside Teredo tunnels"),
    ("zeek__wlanmon.pcap", "802.11"),
    ("libpcap__http_PPI.pcap", "PPI"),
    ("tcpdump__arcnet-rfc1201-arp-icmp-http.pcap", "ARCNET"),
    (
        "nDPI__badpackets.pcap",
        "first fragments of answers cut by the capture: fragments are not inspected",
    ),
    ("zeek__icmp-destunreach-udp.pcap", "the answer is inside an ICMP error message"),
];

#[test]
fn corpus_dns_answers_agree_with_tshark() {
    let Some(dir) = corpus_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if !cols.get(9).is_some_and(|tags| tags.split(',').any(|t| t == "dns")) {
            continue;
        }
        let file = cols[0];
        let path = dir.join(file);
        let answers = tshark_dns(&path);
        if answers.iter().all(|(_, ips)| ips.is_empty()) {
            continue;
        }
        let ours = our_dns(&path);
        let known = KNOWN_MISSING_DNS.iter().any(|(f, _)| *f == file);
        for (name, ips) in answers {
            for ip in ips {
                checked += 1;
                // tshark's dns.a also lists glue records, named by their
                // own owner, not the query: any name for the address counts.
                let names = ours.dns_names(ip);
                if names.is_empty() && !known {
                    missing.push(format!("{file}: {name} -> {ip} (xborder: {names:?})"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "DNS answers tshark reports and xborder does not:\n{}",
        missing.join("\n")
    );
    assert!(checked >= 20, "only {checked} answers checked");
}
