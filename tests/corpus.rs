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

/// Flows with the packets each of the two (sorted) endpoints sent.
type Flows = BTreeMap<FlowName, [u64; 2]>;

struct Oracle {
    exit_code: i32,
    packets: u64,
    /// Flows of the outermost IP header, with tshark's per-direction frame
    /// counts; rows tshark could not give addresses for ("?", malformed
    /// headers) are left out.
    outer: Flows,
    /// Flows of the innermost IP header (tunnels removed), the same way.
    inner: Flows,
}

/// Adds a flow from `a` to `b` whose ends sent `from_a` and `from_b`.
fn add_flow(flows: &mut Flows, token: String, a: String, b: String, from_a: u64, from_b: u64) {
    let (ends, sent) = if a <= b { ([a, b], [from_a, from_b]) } else { ([b, a], [from_b, from_a]) };
    let entry = flows.entry((token, ends)).or_default();
    entry[0] += sent[0];
    entry[1] += sent[1];
}

fn oracle_table(text: &str, title: &str) -> Flows {
    let table = text.split(title).nth(1).unwrap().split("\n==").next().unwrap();
    let mut flows = Flows::new();
    for row in table.lines().skip(2) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 8 || cols[1] == "?" || cols[2] == "?" {
            continue;
        }
        let (a_to_b, b_to_a) = (cols[5].parse().unwrap(), cols[7].parse().unwrap());
        add_flow(
            &mut flows,
            cols[0].to_owned(),
            cols[1].to_owned(),
            cols[2].to_owned(),
            a_to_b,
            b_to_a,
        );
    }
    flows
}

fn read_oracle(file: &str) -> Oracle {
    let text = std::fs::read_to_string(corpus().join(format!("oracle/{file}.tshark.txt"))).unwrap();
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{file}: no {name}"))
            .to_owned()
    };
    Oracle {
        exit_code: field("tshark_exit_code").parse().unwrap(),
        packets: field("packets_tshark").parse().unwrap(),
        outer: oracle_table(&text, "== EXACT OUTER FLOWS"),
        inner: oracle_table(&text, "== EXACT INNER FLOWS"),
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
    /// Records of the outermost layer: no tunnel around them.
    outer: Flows,
    /// Records of the innermost layer: carrying no tunnel themselves.
    inner: Flows,
    packets_in_flows: u64,
}

fn run(path: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "--quiet", "--no-intel", "--format", "jsonl", "--flows"])
        .arg(path)
        .output()
        .unwrap();
    let (mut outer, mut inner) = (Flows::new(), Flows::new());
    let mut packets_in_flows = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        let iana: u8 = f["network"]["iana_number"].as_str().unwrap().parse().unwrap();
        let (src, dst) = (endpoint(&f["source"]), endpoint(&f["destination"]));
        let sent = |side: &str| f[side]["packets"].as_u64().unwrap();
        let (from_src, from_dst) = (sent("source"), sent("destination"));
        if f["xborder"]["tunnels"].is_null() {
            packets_in_flows += from_src + from_dst;
            add_flow(&mut outer, token(iana), src.clone(), dst.clone(), from_src, from_dst);
        }
        if f["xborder"]["flow"]["carries"].is_null() {
            add_flow(&mut inner, token(iana), src, dst, from_src, from_dst);
        }
    }
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outer,
        inner,
        packets_in_flows,
    }
}

/// Differences between tshark's flows and ours, per direction. Rows tshark
/// could not dissect past IP ("(none)", "data") match a port-less flow of
/// ours between the same addresses, whatever its protocol number.
fn compare(oracle: &Flows, ours: &Flows) -> Vec<String> {
    let mut ours = ours.clone();
    let mut diffs = Vec::new();
    let mut undissected = Vec::new();
    for (name, &frames) in oracle {
        match ours.remove(name) {
            Some(n) if n == frames => {}
            Some(n) => diffs.push(format!("{name:?}: tshark {frames:?} packets, xborder {n:?}")),
            None if name.0 == "(none)" || name.0 == "data" => undissected.push((name, frames)),
            None => diffs.push(format!("{name:?}: tshark {frames:?} packets, xborder none")),
        }
    }
    for (name, frames) in undissected {
        let portless = ours
            .keys()
            .find(|(_, ends)| *ends == name.1 && !ends.iter().any(|e| e.contains("]:")))
            .cloned();
        match portless.and_then(|k| ours.remove(&k).map(|n| (k, n))) {
            Some((_, n)) if n == frames => {}
            other => diffs.push(format!("{name:?}: tshark {frames:?} packets, xborder {other:?}")),
        }
    }
    for (name, n) in ours {
        diffs.push(format!("{name:?}: tshark none, xborder {n:?} packets"));
    }
    diffs
}

/// Captures whose innermost flows (tunnels removed) are allowed to differ
/// from tshark's, with the reason; the rest of their inner flows must
/// agree.
const KNOWN_INNER_DIFFERENCES: &[(&str, &str)] = &[
    (
        "zeek__gtp1_gn_normal_incl_fragmentation.pcap",
        "GTP-U over fragmented outer IP: xborder decodes the inner packet from the first \
         fragment, which holds its headers, so 4 datagrams whose last fragment never came count \
         on the inner TCP flow; tshark counts a datagram inside the tunnel only once reassembled \
         and shows the rest as outer \"data\"",
    ),
    (
        "nDPI__fuzz-2006-06-26-2594.pcap",
        "fuzzed packets (see KNOWN_DIFFERENCES); tshark reassembles garbage fragments",
    ),
    (
        "nDPI__fuzz-2020-02-16-11740.pcap",
        "fuzzed packets (see KNOWN_DIFFERENCES); tshark reassembles garbage fragments",
    ),
];

#[test]
fn corpus_flows_agree_with_tshark() {
    let Some(dir) = corpus_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut unexpected = Vec::new();
    let (mut compared, mut tunnelled) = (0, 0);
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
        let diffs = compare(&oracle.outer, &run.outer);
        let known = KNOWN_DIFFERENCES.iter().find(|(f, _)| *f == file).map(|(_, d)| *d);
        let oracle_packets: u64 = oracle.outer.values().flatten().sum();
        match known {
            None if diffs.is_empty() => compared += 1,
            None => unexpected.push(format!("{file}:\n    {}", diffs.join("\n    "))),
            Some(kind) => {
                assert!(
                    !diffs.is_empty(),
                    "{file} now agrees with tshark: remove it from KNOWN_DIFFERENCES"
                );
                match kind {
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
        if oracle.inner == oracle.outer {
            continue;
        }
        tunnelled += 1;
        let inner = compare(&oracle.inner, &run.inner);
        let known_inner = KNOWN_INNER_DIFFERENCES.iter().find(|(f, _)| *f == file);
        match (inner.is_empty(), known_inner) {
            (true, None) => {}
            (true, Some(_)) => unexpected.push(format!(
                "{file}: inner flows now agree with tshark: remove it from KNOWN_INNER_DIFFERENCES"
            )),
            (false, Some(_)) => {}
            (false, None) => {
                unexpected.push(format!("{file} (inner flows):\n    {}", inner.join("\n    ")))
            }
        }
    }
    assert!(unexpected.is_empty(), "flows differ from tshark:\n{}", unexpected.join("\n"));
    assert!(compared >= 60, "only {compared} files compared exactly");
    assert!(tunnelled >= 8, "only {tunnelled} files with tunnels compared");
}

/// Server names tshark finds that xborder does not, with the reason.
const KNOWN_MISSING_NAMES: &[(&str, &str, &str)] = &[
    // QUIC draft-29: only v1 and v2 Initials are decrypted.
    ("nDPI__dlt_ppp.pcap", "server4", "QUIC draft-29"),
    // Outer fragments are not reassembled: the inner packet is decoded
    // from the first fragment, and this request's Host header is in the
    // second.
    (
        "zeek__gtp1_gn_normal_incl_fragmentation.pcap",
        "o-o.preferred.telekomrs-beg1.v2.lscache8.c.youtube.com",
        "in the second fragment of a GTP-U datagram",
    ),
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
            let known = KNOWN_MISSING_NAMES.iter().any(|(f, n, _)| *f == file && *n == name);
            match (ours.contains(&name), known) {
                (true, false) => found_total += 1,
                (true, true) => missing.push(format!(
                    "{file}: {name} is found now: remove it from KNOWN_MISSING_NAMES"
                )),
                (false, false) => missing.push(format!("{file}: {name}")),
                (false, true) => {}
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
    use xborder::decode::{AnomalyCounter, Decapsulation, FrameRef};
    use xborder::flow::{FlowTable, FlowTimeouts, LocalNetworks};
    use xborder::pipeline::{observe_frame, Counts, Frame};
    let mut names = xborder::names::NameInspector::new();
    let mut table = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
    let mut anomalies = AnomalyCounter::default();
    let mut totals = xborder::report::PacketTotals::default();
    let mut unsupported = BTreeMap::new();
    let input = InputSpec { path: path.to_owned(), from_directory: false };
    let Ok(Opened::Reader(mut reader)) = open_capture(&input) else { return names };
    while let Ok(Some(p)) = reader.next_packet() {
        let frame = Frame {
            link_type: p.link_type,
            data: p.data,
            wire_len: p.wire_len,
            ts: p.timestamp,
            at: FrameRef { file: 0, frame: p.frame },
        };
        let counts = Counts {
            totals: &mut totals,
            anomalies: &mut anomalies,
            unsupported: &mut unsupported,
        };
        observe_frame(frame, &Decapsulation::default(), &mut table, Some(&mut names), counts);
    }
    names
}

/// Files whose DNS answers xborder does not see, with the reason.
const KNOWN_MISSING_DNS: &[(&str, &str)] = &[
    ("zeek__wlanmon.pcap", "multicast DNS (port 5353) answers: only DNS on port 53 is read"),
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
        let mut all_found = true;
        for (name, ips) in answers {
            for ip in ips {
                checked += 1;
                // tshark's dns.a also lists glue records, named by their
                // own owner, not the query: any name for the address counts.
                let names = ours.dns_names(ip);
                all_found &= !names.is_empty();
                if names.is_empty() && !known {
                    missing.push(format!("{file}: {name} -> {ip} (xborder: {names:?})"));
                }
            }
        }
        if known && all_found {
            missing.push(format!(
                "{file}: every answer is found now: remove it from KNOWN_MISSING_DNS"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "DNS answers tshark reports and xborder does not:\n{}",
        missing.join("\n")
    );
    assert!(checked >= 20, "only {checked} answers checked");
}
