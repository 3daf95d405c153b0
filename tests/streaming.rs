//! The audit streams (issue 15): its memory is bounded by the flows alive
//! at once and the report's aggregates, not by the flows or findings of
//! the run (issue 17, item 13: a SYN flood from random sources took
//! 985 MiB, 3.4 GB as a JSON document), and a run handed on in many parts
//! keeps every record and count.
//!
//! The memory of each run is the peak resident set of the child process
//! (`getrusage(RUSAGE_CHILDREN)`), so this file holds one test: another
//! test's children would count too.

mod support;

use std::fs::File;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Peak resident set in MiB of the largest child waited for so far.
fn children_peak_mib() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    // Linux gives kilobytes.
    usage.max_rss() as u64 / 1024
}

fn audit(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .arg("audit")
        .args(args)
        .args(["-q", "--fail-on", "none"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// What memory a run may take with `--max-flows 100000`: the
/// intelligence (~60 MiB), a table of 100,000 flows (~270 B each), the
/// parts in flight, the report's bounded lists, and slack for the
/// allocator. Measured: ~180 MiB.
const BOUND_100K_MIB: u64 = 250;

/// With the default `--max-flows` (1,000,000): the table at its bound is
/// ~270 MiB (and half as much again while it grows). Measured: ~550 MiB.
const BOUND_DEFAULT_MIB: u64 = 700;

#[test]
fn a_syn_flood_from_random_sources_is_audited_in_bounded_memory_and_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let flood = dir.path().join("flood.pcap");
    let packets = 3_000_000;
    support::traffic::syn_flood(&flood, packets);
    let flood = flood.to_str().unwrap();

    // The smaller bound first: the peak is of every child so far.
    let text = audit(&[flood, "--max-flows", "100000"]);
    let text_peak = children_peak_mib();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Packets    3,000,000 (IP 3,000,000"), "{text}");
    assert!(text.contains("ended early: more than --max-flows alive at once"), "{text}");
    assert!(text_peak < BOUND_100K_MIB, "the text report's run took {text_peak} MiB");
    // The document holds every finding; they wait on disk, not in memory.
    let report = dir.path().join("flood.json");
    audit(&[flood, "--format", "json", "--max-flows", "100000", "-o", report.to_str().unwrap()]);
    let json_peak = children_peak_mib();
    assert!(json_peak < BOUND_100K_MIB, "the JSON document's run took {json_peak} MiB");
    let doc: Value = serde_json::from_reader(File::open(&report).unwrap()).unwrap();
    let findings = doc["findings"].as_array().unwrap().len() as u64;
    assert_eq!(doc["totals"]["findings"].as_u64(), Some(findings));
    assert!(findings > 0, "random sources include restricted countries");
    assert_eq!(doc["totals"]["packets"].as_u64(), Some(packets));
    let flows = doc["totals"]["flows"].as_u64().unwrap();
    assert!(flows > 2_900_000, "{flows} flows");

    // Every flow's record, as the parts of the run came, with the default
    // bound of a million flows alive.
    let records = dir.path().join("flood.jsonl");
    audit(&[flood, "--format", "jsonl", "--flows", "-o", records.to_str().unwrap()]);
    let default_peak = children_peak_mib();
    assert!(default_peak < BOUND_DEFAULT_MIB, "the default run took {default_peak} MiB");
    let lines = std::io::BufRead::lines(std::io::BufReader::new(File::open(&records).unwrap()));
    let (mut flow_records, mut finding_records) = (0u64, 0u64);
    for line in lines {
        let line = line.unwrap();
        let record: Value = serde_json::from_str(&line).unwrap();
        match record["event"]["kind"].as_str() {
            Some("event") => flow_records += 1,
            Some("alert") => finding_records += 1,
            other => panic!("a record of kind {other:?}"),
        }
    }
    // The same flows with a bound ten times larger: fewer end early, none
    // is lost.
    assert!(flow_records >= 3_000_000 - 65_536 && flow_records <= flows, "{flow_records}");
    assert!(finding_records > 0);
    eprintln!(
        "peak RSS: text {text_peak} MiB, JSON {json_peak} MiB (--max-flows 100000), jsonl \
         {default_peak} MiB (default)"
    );
}
