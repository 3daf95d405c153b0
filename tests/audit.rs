//! The real binary on the project's fixtures (see fixtures/README.md for
//! what each capture holds).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn xborder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xborder")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `audit --format jsonl --flows` and parses the flow records
/// (leaving out finding records).
fn audit_flows(paths: &[PathBuf], extra: &[&str]) -> (Vec<Value>, Output) {
    let mut args = vec!["audit".to_string(), "--format".into(), "jsonl".into(), "--flows".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = xborder(&argv);
    let records = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["event"]["kind"] == "event")
        .collect();
    (records, out)
}

/// The flow whose endpoints include `ip:port`.
fn find<'a>(flows: &'a [Value], ip: &str, port: Option<u64>) -> Vec<&'a Value> {
    flows
        .iter()
        .filter(|f| {
            ["source", "destination"]
                .iter()
                .any(|side| f[side]["ip"] == ip && port.is_none_or(|p| f[side]["port"] == p))
        })
        .collect()
}

fn one<'a>(flows: &'a [Value], ip: &str, port: Option<u64>) -> &'a Value {
    let found = find(flows, ip, port);
    assert_eq!(found.len(), 1, "flows with {ip}:{port:?}: {found:#?}");
    found[0]
}

#[test]
fn quickstart_flows_have_exact_counts() {
    let (flows, out) = audit_flows(&[fixture("quickstart.pcap")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(flows.len(), 6);

    let https = one(&flows, "203.0.113.10", Some(443));
    assert_eq!(https["source"]["ip"], "192.168.1.10");
    assert_eq!(https["source"]["port"], 50000);
    // S, A, PA(100), FA, A from the client; SA, PA(1000), FA from the server;
    // 40-byte IPv4+TCP headers.
    assert_eq!(https["source"]["packets"], 5);
    assert_eq!(https["source"]["bytes"], 4 * 40 + 140);
    assert_eq!(https["destination"]["packets"], 3);
    assert_eq!(https["destination"]["bytes"], 2 * 40 + 1040);
    assert_eq!(https["network"]["transport"], "tcp");
    assert_eq!(https["network"]["iana_number"], "6");
    assert_eq!(https["network"]["direction"], "outbound");
    assert_eq!(https["network"]["packets"], 8);
    assert_eq!(https["event"]["start"], "2024-03-01T12:00:00.000000000Z");
    assert_eq!(https["event"]["end"], "2024-03-01T12:00:00.070000000Z");
    assert_eq!(https["event"]["duration"], 70_000_000);
    let x = &https["xborder"]["flow"];
    assert_eq!(x["first_frame"], 1);
    assert_eq!(x["remote"], "destination");
    assert_eq!(x["end_reason"], "end_of_capture");
    assert_eq!(x["source"]["payload_bytes"], 100);
    assert_eq!(x["destination"]["payload_bytes"], 1000);
    assert_eq!(x["source"]["tcp_flags"], serde_json::json!(["SYN", "ACK", "PSH", "FIN"]));
    assert!(x["file"].as_str().unwrap().ends_with("quickstart.pcap"));

    let icmp = one(&flows, "192.0.2.1", None);
    assert_eq!(icmp["network"]["transport"], "icmp");
    assert!(icmp["source"].get("port").is_none(), "ICMP flows carry no ports");
    assert_eq!(icmp["source"]["packets"], 2);
    assert_eq!(icmp["source"]["bytes"], 2 * (20 + 8 + 56));
    assert!(icmp["xborder"]["flow"]["source"].get("tcp_flags").is_none());

    let v6 = one(&flows, "2001:db8::443", Some(443));
    assert_eq!(v6["source"]["ip"], "fd00::10");
    assert_eq!(v6["source"]["bytes"], 2 * 60);

    let inbound = one(&flows, "198.51.100.7", None);
    assert_eq!(inbound["network"]["direction"], "inbound");
    assert_eq!(inbound["source"]["ip"], "198.51.100.7");
    assert_eq!(inbound["xborder"]["flow"]["remote"], "source");

    let internal = one(&flows, "192.168.1.1", None);
    assert_eq!(internal["network"]["direction"], "internal");
    assert!(internal["xborder"]["flow"].get("remote").is_none());

    let starts: Vec<&str> = flows.iter().map(|f| f["event"]["start"].as_str().unwrap()).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "flows come in first-timestamp order");
}

#[test]
fn summary_names_packets_flows_and_top_remotes() {
    let out = xborder(&["audit", fixture("quickstart.pcap").to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("Packets    19 (IP 18, non-IP 1, unsupported link type 0, malformed 0)"),
        "{text}"
    );
    assert!(text.contains("Flows      6 (tcp 3, udp 2, icmp 1)"), "{text}");
    let top = text.split("Top remote endpoints").nth(1).unwrap();
    let first = top.lines().nth(2).unwrap();
    assert!(
        first.contains("203.0.113.10") && first.contains("300 B") && first.contains("1.1 kB"),
        "{first}"
    );
}

/// Every record but the file name, for comparing the same traffic in
/// different containers.
fn without_file(mut flows: Vec<Value>) -> Vec<Value> {
    for f in &mut flows {
        f["xborder"]["flow"].as_object_mut().unwrap().remove("file");
    }
    flows
}

#[test]
fn every_container_variant_gives_the_same_flows() {
    let (reference, _) = audit_flows(&[fixture("quickstart.pcap")], &[]);
    for variant in [
        "formats/quickstart-ns-be.pcap",
        "formats/quickstart-modified.pcap",
        "formats/quickstart.pcap.gz",
    ] {
        let (got, out) = audit_flows(&[fixture(variant)], &[]);
        assert!(out.status.success(), "{variant}: {}", stderr(&out));
        assert_eq!(without_file(got), without_file(reference.clone()), "{variant}");
    }
}

#[test]
fn standard_input_is_read_like_a_file() {
    let (reference, _) = audit_flows(&[fixture("quickstart.pcap")], &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "--format", "jsonl", "--flows", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(fixture("formats/quickstart.pcap.gz")).unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got[0]["xborder"]["flow"]["file"], "-");
    assert_eq!(without_file(got), without_file(reference));
}

#[test]
fn pcapng_sections_interfaces_and_block_types() {
    let (flows, out) = audit_flows(&[fixture("formats/multi.pcapng")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(flows.len(), 3);
    // EPB on an Ethernet interface (µs) and on a raw-IP interface (ns).
    let v4 = one(&flows, "203.0.113.20", Some(53));
    assert_eq!(v4["network"]["packets"], 2);
    assert_eq!(v4["event"]["end"], "2024-03-01T12:00:00.100000000Z");
    // A simple packet block (no timestamp: the previous packet's) and an
    // obsolete packet block.
    let v6 = one(&flows, "2001:db8::20", Some(53));
    assert_eq!(v6["network"]["packets"], 2);
    assert_eq!(v6["xborder"]["flow"]["first_frame"], 3);
    assert_eq!(v6["event"]["start"], "2024-03-01T12:00:00.100000000Z");
    // Big-endian section, Linux cooked capture, 2^-20 s units plus a 1000 s
    // if_tsoffset.
    let be = one(&flows, "203.0.113.50", Some(9001));
    assert_eq!(be["xborder"]["flow"]["first_frame"], 5);
    assert_eq!(be["event"]["start"], "2024-03-01T12:00:05.000000000Z");
    let (gz, _) = audit_flows(&[fixture("formats/multi.pcapng.gz")], &[]);
    assert_eq!(without_file(gz), without_file(flows));
}

#[test]
fn every_link_type_decodes_to_the_same_flows() {
    let (ethernet, _) = audit_flows(&[fixture("linktypes/ethernet.pcap")], &[]);
    assert_eq!(ethernet.len(), 2);
    let names = [
        "null",
        "loop",
        "raw",
        "raw-openbsd",
        "raw-bsdos",
        "linux-sll",
        "linux-sll2",
        "ppp",
        "ppp-hdlc",
        "vlan",
        "qinq",
        "pppoe",
        "ieee802-11",
        "radiotap",
        "ppi",
        "arcnet-linux",
    ];
    for name in names {
        let (got, out) = audit_flows(&[fixture(&format!("linktypes/{name}.pcap"))], &[]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(without_file(got), without_file(ethernet.clone()), "{name}");
    }
    let (v4, _) = audit_flows(&[fixture("linktypes/ipv4.pcap")], &[]);
    assert_eq!(without_file(v4), without_file(ethernet[..1].to_vec()));
    let (mut v6, _) = audit_flows(&[fixture("linktypes/ipv6.pcap")], &[]);
    assert_eq!(v6[0]["xborder"]["flow"]["first_frame"], 1);
    v6[0]["xborder"]["flow"]["first_frame"] = ethernet[1]["xborder"]["flow"]["first_frame"].clone();
    assert_eq!(without_file(v6), without_file(ethernet[1..].to_vec()));
}

#[test]
fn unsupported_link_types_are_counted_not_errors() {
    let out = xborder(&["audit", fixture("linktypes/unsupported-user0.pcap").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("unsupported link type 2"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("link type 147") && l.ends_with(" 2 packets")),
        "{text}"
    );
}

#[test]
fn fragments_join_the_flow_of_their_datagram() {
    let (flows, out) = audit_flows(&[fixture("fragments.pcap")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(flows.len(), 4, "{flows:#?}");
    // 3008 bytes of UDP in fragments of 1480, 1480 and 48 bytes.
    let in_order = one(&flows, "192.168.1.10", Some(5000));
    assert_eq!(in_order["source"]["packets"], 3);
    assert_eq!(in_order["source"]["bytes"], 1500 + 1500 + 68);
    assert_eq!(in_order["xborder"]["flow"]["source"]["payload_bytes"], 3000);
    // Last fragment first: still one flow, starting at the earliest frame.
    let reversed = one(&flows, "192.168.1.10", Some(5001));
    assert_eq!(reversed["source"]["packets"], 3);
    assert_eq!(reversed["source"]["bytes"], 820 + 820 + 428);
    assert_eq!(reversed["xborder"]["flow"]["first_frame"], 4);
    // IPv6 fragment headers.
    let v6 = one(&flows, "2001:db8::30", Some(4000));
    assert_eq!(v6["source"]["packets"], 3);
    assert_eq!(v6["source"]["bytes"], 1496 + 1496 + 160);
    assert_eq!(v6["xborder"]["flow"]["source"]["payload_bytes"], 3000);
    // Fragments without their first fragment: one flow without ports.
    let orphans = one(&flows, "203.0.113.31", None);
    assert!(orphans["source"].get("port").is_none());
    assert_eq!(orphans["source"]["packets"], 2);
    let summary = xborder(&["audit", fixture("fragments.pcap").to_str().unwrap()]);
    assert!(stdout(&summary).contains(
        "IP fragments without their first fragment           2  first: fragments.pcap#10"
    ));
}

#[test]
fn packets_cut_by_the_snapshot_length_count_their_wire_length() {
    let (cut, out) = audit_flows(&[fixture("snaplen.pcap")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (full, _) = audit_flows(&[fixture("quickstart.pcap")], &[]);
    let cut = one(&cut, "203.0.113.10", Some(443));
    let full = one(&full, "203.0.113.10", Some(443));
    for side in ["source", "destination"] {
        assert_eq!(cut[side], full[side]);
        assert_eq!(
            cut["xborder"]["flow"][side]["payload_bytes"],
            full["xborder"]["flow"][side]["payload_bytes"]
        );
    }
    let summary = stdout(&xborder(&["audit", fixture("snaplen.pcap").to_str().unwrap()]));
    assert!(summary.contains("2 cut by the snapshot length"), "{summary}");
}

#[test]
fn idle_timeouts_close_and_port_reuse_split_flows() {
    let (flows, out) = audit_flows(&[fixture("timeouts.pcap")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(flows.len(), 8, "{flows:#?}");
    let summary = |ip: &str| -> Vec<(u64, String)> {
        find(&flows, ip, None)
            .iter()
            .map(|f| {
                (
                    f["network"]["packets"].as_u64().unwrap(),
                    f["xborder"]["flow"]["end_reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // The capture's last packet comes at 400 s, so every other flow is idle
    // by then.
    assert_eq!(summary("203.0.113.40"), [(2, "idle_timeout".into()), (1, "idle_timeout".into())]);
    assert_eq!(summary("203.0.113.41"), [(8, "port_reuse".into()), (2, "idle_timeout".into())]);
    assert_eq!(summary("203.0.113.42"), [(2, "idle_timeout".into()), (1, "end_of_capture".into())]);
    assert_eq!(summary("203.0.113.43"), [(3, "tcp_closed".into()), (1, "idle_timeout".into())]);
    // The ACK after 400 s idle starts a flow whose initiator is its sender.
    let late = find(&flows, "203.0.113.42", None)[1];
    assert_eq!(late["source"]["ip"], "192.168.1.10");

    // Longer timeouts keep them together.
    let (flows, _) = flows_with_timeouts();
    assert_eq!(find(&flows, "203.0.113.40", None).len(), 1);
    assert_eq!(find(&flows, "203.0.113.42", None).len(), 1);
    assert_eq!(find(&flows, "203.0.113.43", None).len(), 1);
}

fn flows_with_timeouts() -> (Vec<Value>, Output) {
    audit_flows(
        &[fixture("timeouts.pcap")],
        &["--udp-timeout", "2m", "--tcp-timeout", "10m", "--tcp-close-timeout", "30s"],
    )
}

#[test]
fn local_networks_decide_direction() {
    let (flows, _) = audit_flows(&[fixture("quickstart.pcap")], &["--local-net", "203.0.113.0/24"]);
    let https = one(&flows, "203.0.113.10", Some(443));
    assert_eq!(https["network"]["direction"], "inbound");
    let dns = one(&flows, "198.51.100.53", Some(53));
    assert_eq!(dns["network"]["direction"], "external");
    assert_eq!(dns["xborder"]["flow"]["remote"], "destination");
}

#[test]
fn a_truncated_file_keeps_every_packet_before_the_damage() {
    let path = fixture("damaged/truncated-record.pcap");
    let (flows, out) = audit_flows(std::slice::from_ref(&path), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: file ends inside a packet record at byte offset 2626 (58 bytes needed, 38 present)",
            path.display()
        )),
        "{err}"
    );
    let packets: u64 = flows.iter().map(|f| f["network"]["packets"].as_u64().unwrap()).sum();
    assert_eq!(packets, 18, "all IP packets before the cut ARP frame");
}

#[test]
fn a_damaged_pcapng_block_is_named_and_other_files_still_read() {
    let bad = fixture("damaged/bad-trailer.pcapng");
    let (flows, out) = audit_flows(&[bad.clone(), fixture("quickstart.pcap")], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: damaged pcapng block at byte offset 280: trailing length 56 differs from leading length 120",
            bad.display()
        )),
        "{err}"
    );
    assert_eq!(flows.len(), 1 + 6, "one packet of the damaged file, then quickstart");
}

#[test]
fn directories_are_walked_and_non_captures_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::copy(fixture("quickstart.pcap"), dir.path().join("b/2.pcap")).unwrap();
    std::fs::copy(fixture("formats/quickstart.pcap.gz"), dir.path().join("a.bin")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a capture").unwrap();
    std::fs::write(dir.path().join("empty.pcap"), "").unwrap();
    let (flows, out) = audit_flows(&[dir.path().to_owned()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("notes.txt: not a capture file (no pcap, pcapng or gzip magic number)"),
        "{err}"
    );
    assert!(err.contains("empty.pcap: empty file"), "{err}");
    // The same traffic twice, read in name order (a.bin first) through one
    // flow table: flows continue across files, except the HTTPS connection
    // closed by FIN, whose SYN in the second file starts a new flow.
    assert_eq!(flows.len(), 7);
    assert_eq!(one(&flows, "198.51.100.53", Some(53))["network"]["packets"], 4);
    let https = find(&flows, "203.0.113.10", Some(443));
    assert_eq!(https.len(), 2);
    assert_eq!(https[0]["xborder"]["flow"]["end_reason"], "port_reuse");
    assert!(https[0]["xborder"]["flow"]["file"].as_str().unwrap().ends_with("a.bin"));
    assert!(https[1]["xborder"]["flow"]["file"].as_str().unwrap().ends_with("2.pcap"));
}

#[test]
fn errors_name_the_file() {
    let out = xborder(&["audit", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out)
        .contains("xborder: /nonexistent/x.pcap: cannot open: No such file or directory"));

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let out = xborder(&["audit", text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("notes.txt: not a capture file"));

    let out =
        xborder(&["audit", "--tcp-timeout", "soon", fixture("quickstart.pcap").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'soon' for '--tcp-timeout <DURATION>'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn output_file_gets_the_report_and_stderr_the_headline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let out = xborder(&[
        "audit",
        "--format",
        "jsonl",
        "--flows",
        "-o",
        path.to_str().unwrap(),
        fixture("quickstart.pcap").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).starts_with("No flow matched a rule"), "{}", stderr(&out));
    assert!(stderr(&out).ends_with(&format!("report: {}\n", path.display())));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 6);
}

#[test]
fn output_dash_is_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let capture = fixture("quickstart.pcap");
    // In an empty directory, where a file named - would show.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xborder"))
            .arg("audit")
            .args(args)
            .arg(&capture)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["--format", "jsonl", "--flows", "-o", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 6, "the records, on standard output");
    assert!(!stderr(&out).contains("report:"), "{}", stderr(&out));
    assert!(!dir.path().join("-").exists(), "no file named -");
    // The text report, on standard output with its headline, as without -o.
    let (dash, none) = (run(&["-o", "-"]), run(&[]));
    assert!(dash.status.success(), "{}", stderr(&dash));
    assert_eq!(stdout(&dash), stdout(&none));
    assert_eq!(stderr(&dash), "");
    // Evidence is a file: `--evidence -` is refused, not a file named -.
    let evidence = run(&["--evidence", "-"]);
    assert_eq!(evidence.status.code(), Some(2));
    assert!(stderr(&evidence).contains("--evidence -: the evidence is a pcapng file"));
    assert!(!dir.path().join("-").exists(), "no file named -");
}

#[test]
fn names_from_dns_tls_and_http() {
    let (flows, out) = audit_flows(&[fixture("names.pcap")], &["--no-intel"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The ClientHello came in two segments, the second first.
    let tls = one(&flows, "203.0.113.80", Some(443));
    assert_eq!(tls["tls"]["client"]["server_name"], "storage.example-cn.test");
    let names = &tls["xborder"]["names"];
    assert_eq!(names["source"], "tls_sni");
    // The DNS answer seen before the flow, with its CNAME chain.
    assert_eq!(names["dns"], serde_json::json!(["www.example-cn.test", "edge.example-cn.test"]));
    let http = one(&flows, "203.0.113.81", Some(80));
    assert_eq!(http["url"]["domain"], "files.example.test");
    assert_eq!(http["xborder"]["names"]["source"], "http_host");
    for quiet in ["203.0.113.82", "203.0.113.83", "198.51.100.53"] {
        let f = one(&flows, quiet, None);
        assert!(f["xborder"].get("names").is_none() && f.get("tls").is_none(), "{f}");
    }
}

/// A SYN flood from 1,000 sources, then one of them again: with
/// `--max-flows 100` the table never holds more than 100 flows, the
/// idlest end early (`evicted`, counted in the summary and the JSON
/// totals), and every packet is still in a flow.
#[test]
fn max_flows_bounds_the_table_by_ending_the_idlest_flows() {
    use support::{ethernet, ip_packet, pcap, PcapFormat, Record, L4};
    let syn = |i: u32, t: i64| {
        let src = format!("198.51.{}.{}", 100 + i / 250, 1 + i % 250);
        let ip =
            ip_packet(&src, "192.168.1.10", L4::Tcp { sport: 40000, dport: 22, flags: "S" }, &[]);
        Record::new(1_700_000_000_000_000_000 + t * 1_000_000, ethernet(&[], &ip))
    };
    let mut records: Vec<Record> = (0..1000).map(|i| syn(i, i64::from(i))).collect();
    records.push(syn(0, 1000));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    std::fs::write(&path, pcap(PcapFormat::new(1), &records)).unwrap();

    let (flows, out) = audit_flows(
        std::slice::from_ref(&path),
        &["--max-flows", "100", "--no-intel", "--threads", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let reasons =
        |r: &str| flows.iter().filter(|f| f["xborder"]["flow"]["end_reason"] == r).count();
    // 1,001 flows: the first source's SYN at the end finds its flow
    // evicted. A full table ends its idlest 1/16 (six flows) at once: at
    // the 101st flow and every sixth after it, 151 times.
    assert_eq!(flows.len(), 1001);
    assert_eq!(reasons("evicted"), 906);
    assert_eq!(reasons("end_of_capture"), 95);
    let packets: u64 = flows.iter().map(|f| f["network"]["packets"].as_u64().unwrap()).sum();
    assert_eq!(packets, 1001);

    let path = path.to_str().unwrap();
    let text =
        stdout(&xborder(&["audit", "--max-flows", "100", "--no-intel", "--threads", "1", path]));
    assert!(text.contains("at most 100 alive at once"), "{text}");
    assert!(text.contains("906 ended early: more than --max-flows alive at once"), "{text}");
    let json = stdout(&xborder(&[
        "audit",
        "--format",
        "json",
        "--max-flows",
        "100",
        "--threads",
        "1",
        path,
    ]));
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["totals"]["evicted_flows"], 906);
    // Two shards (`--threads 4`: the reader, the finishing thread and
    // two shards) hold up to 100 each: at most 200, every packet in a flow.
    let (flows, _) = audit_flows(
        &[PathBuf::from(path)],
        &["--max-flows", "100", "--no-intel", "--threads", "4"],
    );
    let packets: u64 = flows.iter().map(|f| f["network"]["packets"].as_u64().unwrap()).sum();
    assert_eq!(packets, 1001);
    let text =
        stdout(&xborder(&["audit", "--max-flows", "100", "--no-intel", "--threads", "4", path]));
    let peak = text.split("at most ").nth(1).and_then(|t| t.split(' ').next());
    assert!(peak.and_then(|p| p.parse::<u64>().ok()).is_some_and(|p| p <= 200), "{text}");
    assert!(text.contains("ended early"), "{text}");
    // Within the bound nothing changes: no line, no field.
    let text = stdout(&xborder(&["audit", "--no-intel", path]));
    assert!(
        text.contains("at most 1,000 alive at once") && !text.contains("ended early"),
        "{text}"
    );
    let json = stdout(&xborder(&["audit", "--format", "json", path]));
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert!(doc["totals"].get("evicted_flows").is_none());
}
