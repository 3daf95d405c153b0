//! `audit --evidence FILE`: the packets of the flagged flows as pcapng,
//! checked by auditing the evidence again and by tshark.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const OVERLAY: &str = "fixtures/policy/overlay.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn xborder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(args)
        .current_dir(root())
        .env("XBORDER_DATA_DIR", "/nonexistent")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A flow as the JSON lines name it: transport, both ends, first packet.
type FlowId = (String, String, String, String);

fn flow_id(r: &Value) -> FlowId {
    let end = |side: &str| format!("{}:{}", r[side]["ip"], r[side]["port"]);
    (
        r["network"]["transport"].to_string(),
        end("source"),
        end("destination"),
        r["event"]["start"].to_string(),
    )
}

fn records(out: &Output) -> Vec<Value> {
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Three inputs (one gzip-compressed): the gateway's flows, fragments
/// (some after their datagram's first), idle timeouts and port reuse.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let gz = dir.join("fragments.pcap.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut e,
        &std::fs::read(root().join("fixtures/fragments.pcap")).unwrap(),
    )
    .unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    vec![root().join("fixtures/policy/gateway.pcap"), gz, root().join("fixtures/timeouts.pcap")]
}

fn strs(paths: &[PathBuf]) -> Vec<&str> {
    paths.iter().map(|p| p.to_str().unwrap()).collect()
}

#[test]
fn the_evidence_holds_exactly_the_flagged_flows_with_their_packets() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let evidence = dir.path().join("evidence.pcapng");
    let mut args = vec!["audit", "--overlay", OVERLAY, "--format", "jsonl"];
    args.extend(["--evidence", evidence.to_str().unwrap()]);
    args.extend(strs(&inputs));
    let out = xborder(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Flagged: a finding at low or above (the default), with the flow's
    // packets.
    let mut flagged: BTreeMap<FlowId, u64> = BTreeMap::new();
    let mut rules: BTreeMap<FlowId, BTreeSet<String>> = BTreeMap::new();
    for r in records(&out) {
        if r["event"]["severity"].as_u64().unwrap() >= 2 {
            flagged.insert(flow_id(&r), r["network"]["packets"].as_u64().unwrap());
            rules.entry(flow_id(&r)).or_default().insert(r["rule"]["id"].as_str().unwrap().into());
        }
    }
    assert!(flagged.len() >= 10, "{flagged:?}");
    let packets: u64 = flagged.values().sum();
    let line = format!("evidence: {packets} packets of {} flagged flows in ", flagged.len());
    assert!(text(&out.stderr).contains(&line), "{}", text(&out.stderr));

    // The evidence audited again: those flows, each with all its packets.
    let again = xborder(&[
        "audit",
        "--no-intel",
        "--format",
        "jsonl",
        "--flows",
        evidence.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let found: BTreeMap<FlowId, u64> = records(&again)
        .iter()
        .map(|r| (flow_id(r), r["network"]["packets"].as_u64().unwrap()))
        .collect();
    assert_eq!(found, flagged);

    // tshark reads it: every packet is one of the inputs', with its
    // timestamp and length, and its comment names its flow's rules.
    let fields = |path: &Path, extra: &[&str]| -> Vec<Vec<String>> {
        let mut args = vec!["-r", path.to_str().unwrap(), "-T", "fields", "-E", "separator=|"];
        for f in ["frame.time_epoch", "frame.len", "frame.cap_len"].iter().chain(extra) {
            args.extend(["-e", f]);
        }
        let out = Command::new("tshark").args(&args).output().expect("tshark");
        assert!(out.status.success(), "tshark: {}", text(&out.stderr));
        text(&out.stdout).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
    };
    let originals: BTreeSet<Vec<String>> = inputs.iter().flat_map(|p| fields(p, &[])).collect();
    let written = fields(&evidence, &["frame.comment"]);
    assert_eq!(written.len() as u64, packets);
    for packet in &written {
        assert!(originals.contains(&packet[..3]), "{packet:?} is no input's packet");
        let comment = &packet[3];
        assert!(comment.starts_with("xborder: "), "{comment}");
        assert!(comment.contains("; remote "), "{comment}");
    }
    let all_rules: BTreeSet<&String> = rules.values().flatten().collect();
    for rule in all_rules {
        assert!(written.iter().any(|p| p[3].contains(rule.as_str())), "{rule} in no comment");
    }
    // One interface per input (tshark names them by their description).
    let interfaces = fields(&evidence, &["frame.interface_description"]);
    let described: BTreeSet<&str> = interfaces.iter().map(|p| p[3].as_str()).collect();
    assert!(described.len() >= 2, "{described:?}");
}

/// `--evidence-min-severity`: only flows with a finding that severe.
/// Without any, the evidence is a valid capture without packets.
#[test]
fn evidence_of_critical_findings_only_and_without_any() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("e.pcapng");
    let e = evidence.to_str().unwrap();
    let capture = "fixtures/policy/gateway.pcap";
    let all = xborder(&["audit", capture, "--overlay", OVERLAY, "--format", "jsonl"]);
    let critical: BTreeSet<FlowId> = records(&all)
        .iter()
        .filter(|r| r["event"]["severity"].as_u64().unwrap() >= 5)
        .map(flow_id)
        .collect();
    let some = ["--evidence", e, "--evidence-min-severity", "critical", "-q"];
    let out = xborder(&[&["audit", capture, "--overlay", OVERLAY][..], &some].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let again = xborder(&["audit", "--no-intel", "--format", "jsonl", "--flows", e]);
    let found: BTreeSet<FlowId> = records(&again).iter().map(flow_id).collect();
    assert_eq!(found, critical);

    let out = xborder(&["audit", "fixtures/quickstart.pcap", "--evidence", e]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("evidence: 0 packets of 0 flagged flows"));
    let again = xborder(&["audit", "--no-intel", "--format", "jsonl", "--flows", e]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(again.stdout.is_empty());
    let tshark = Command::new("tshark").args(["-r", e]).output().expect("tshark");
    assert!(tshark.status.success(), "{}", text(&tshark.stderr));
    assert!(tshark.stdout.is_empty());
}

#[test]
fn evidence_refuses_standard_input_and_its_own_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let e = dir.path().join("e.pcapng");
    let out = xborder(&["audit", "-", "--evidence", e.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("standard input"), "{}", text(&out.stderr));
    assert!(!e.exists());
    let copy = dir.path().join("in.pcap");
    std::fs::copy(root().join("fixtures/quickstart.pcap"), &copy).unwrap();
    let c = copy.to_str().unwrap();
    let out = xborder(&["audit", c, "--evidence", c]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("would overwrite an input"), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(root().join("fixtures/quickstart.pcap")).unwrap()
    );
}
