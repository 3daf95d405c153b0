//! Saved captures, in order, through the per-packet path into an
//! [`AuditReport`] of finished flows and their names; then vendors and
//! policy over those flows.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::packets::{observe_frame, Counts, Frame};
use crate::capture::{self, CaptureError, Opened};
use crate::decode::{Decapsulation, FrameRef};
use crate::flow::{FlowRecord, FlowTable, FlowTimeouts, LocalNetworks};
use crate::intel::VendorCatalogue;
use crate::names::{FlowNames, NameInspector};
use crate::policy::{finding_country, FlowFacts, Policy};
use crate::report::{AuditReport, Finding, InputSummary};

/// What an audit run needs.
#[derive(Clone, Debug, Default)]
pub struct AuditConfig {
    /// Files, directories and `-` (standard input), in the order given.
    pub paths: Vec<PathBuf>,
    pub timeouts: FlowTimeouts,
    pub local: LocalNetworks,
    /// Which tunnels are decoded, on which ports (`--tunnels`, `[tunnels]`).
    pub tunnels: Decapsulation,
    /// Skip the names stage (DNS, SNI, HTTP Host).
    pub no_names: bool,
    /// Most flows alive at once; beyond it the idlest ends early
    /// (`Evicted`, counted in [`AuditReport::evicted_flows`]). `None`: no
    /// bound.
    pub max_flows: Option<usize>,
    /// Counters a progress display reads while the run goes on.
    pub progress: Option<Arc<AuditProgress>>,
}

/// How far an audit is, for a progress display on another thread. Updated
/// every few thousand packets; never read by the audit itself.
#[derive(Debug, Default)]
pub struct AuditProgress {
    /// Sizes of the input files (0 for standard input).
    pub total_bytes: AtomicU64,
    /// Bytes read from the inputs, before decompression.
    pub read_bytes: Arc<AtomicU64>,
    pub packets: AtomicU64,
    /// Flows finished so far.
    pub flows: AtomicU64,
}

/// Reads every input, in order, through one flow table: a flow that spans
/// rotated capture files stays one flow.
///
/// Errors never stop the run: a damaged file keeps the packets before the
/// damage and its error is recorded in the report's inputs.
pub fn run(config: &AuditConfig) -> AuditReport {
    run_observed(config, &mut |_| {})
}

/// How many packets go by between hand-overs of finished flows to the
/// observer.
const HANDOVER_PACKETS: u64 = 1 << 16;

/// [`run`], calling `observer` for each finished flow soon after it ends
/// (e.g. to look its remote endpoint up on another thread meanwhile).
pub fn run_observed(config: &AuditConfig, observer: &mut dyn FnMut(&FlowRecord)) -> AuditReport {
    let mut report = AuditReport::default();
    let expanded = capture::expand_inputs(&config.paths);
    if let Some(p) = &config.progress {
        let sizes = expanded.inputs.iter().filter_map(|i| std::fs::metadata(&i.path).ok());
        p.total_bytes.store(sizes.map(|m| m.len()).sum(), Ordering::Relaxed);
    }
    let inputs = expanded.inputs;
    report.skipped.extend(expanded.skipped.into_iter().map(|s| (s.path, s.reason)));
    for err in expanded.errors {
        report.inputs.push(InputSummary {
            path: err.path().to_owned(),
            format: None,
            packets: 0,
            error: Some(err.to_string()),
        });
    }
    let mut table = FlowTable::new(config.timeouts, config.local.clone());
    if let Some(max) = config.max_flows {
        table.set_max_flows(max);
    }
    let mut names = (!config.no_names).then(NameInspector::new);
    for input in &inputs {
        let index = report.inputs.len() as u32;
        let mut summary =
            InputSummary { path: input.path.clone(), format: None, packets: 0, error: None };
        let counter = config.progress.as_ref().map(|p| p.read_bytes.clone());
        match capture::open_capture_counting(input, counter) {
            Ok(Opened::Skipped(skipped)) => {
                report.skipped.push((skipped.path, skipped.reason));
                continue;
            }
            Ok(Opened::Reader(mut reader)) => {
                summary.format = Some(reader.format());
                if let Err(err) = read_capture(
                    &mut reader,
                    index,
                    &config.tunnels,
                    &mut table,
                    &mut report,
                    &mut summary,
                    names.as_mut(),
                    observer,
                    config.progress.as_deref(),
                ) {
                    summary.error = Some(err.to_string());
                }
            }
            Err(err) => summary.error = Some(err.to_string()),
        }
        report.inputs.push(summary);
    }
    report.peak_live_flows = table.peak_flows();
    report.evicted_flows = table.evicted();
    for f in table.finish(&mut report.anomalies) {
        finished(f, names.as_mut(), &mut report.flows, &mut report.names, observer);
    }
    // A tunnelled packet starts its tunnel's flow and the flow inside it,
    // in that order of ids: with the id, the unstable sort is deterministic.
    report.flows.sort_unstable_by_key(|f| (f.start, f.first_frame, f.id));
    report
}

/// Attributes each flow's names to the vendor whose product they belong to
/// ([`VendorCatalogue::of_names`]).
pub fn attribute_vendors(report: &mut AuditReport, vendors: &VendorCatalogue) {
    report.vendors = report
        .names
        .iter()
        .filter_map(|(id, names)| Some((*id, vendors.of_names(names)?)))
        .collect();
}

/// Checks every flow against the policy, once, with its remote endpoint's
/// intelligence, names and vendor.
pub fn apply_policy(report: &mut AuditReport, policy: Policy) {
    let mut findings = Vec::new();
    // Without rules the pass over every flow would find nothing.
    let flows = if policy.rule_count() == 0 { &[][..] } else { &report.flows[..] };
    for (index, flow) in flows.iter().enumerate() {
        let intel = flow.remote().and_then(|r| report.remote_intel.get(&r.ip)).map(|i| &**i);
        let vendor = report.vendors.get(&flow.id);
        let facts = FlowFacts { flow, intel, names: report.names.get(&flow.id), vendor };
        for matched in policy.evaluate(&facts) {
            let (_, rule) = policy.rule(&matched);
            let country = finding_country(rule, intel, vendor);
            findings.push(Finding { flow: index, matched, country, early: false });
        }
    }
    report.findings = findings;
    report.policy = policy;
}

/// Hands a finished flow to the names stage and the observer, and keeps it.
fn finished(
    flow: FlowRecord,
    names: Option<&mut NameInspector>,
    flows: &mut Vec<FlowRecord>,
    all_names: &mut HashMap<u64, FlowNames>,
    observer: &mut dyn FnMut(&FlowRecord),
) {
    if let Some(names) = names {
        let found = names.finish(flow.id, flow.remote().map(|r| r.ip), flow.start);
        if found != FlowNames::default() {
            all_names.insert(flow.id, found);
        }
    }
    observer(&flow);
    flows.push(flow);
}

/// The per-packet loop for one capture.
#[expect(
    clippy::too_many_arguments,
    reason = "the run's state, borrowed for one file's loop; the one pipeline module (issue 15) \
              gathers it"
)]
fn read_capture(
    reader: &mut capture::CaptureReader,
    file: u32,
    tunnels: &Decapsulation,
    table: &mut FlowTable,
    report: &mut AuditReport,
    summary: &mut InputSummary,
    mut names: Option<&mut NameInspector>,
    observer: &mut dyn FnMut(&FlowRecord),
    progress: Option<&AuditProgress>,
) -> Result<(), CaptureError> {
    while let Some(packet) = reader.next_packet()? {
        summary.packets += 1;
        if (report.totals.packets + 1) % HANDOVER_PACKETS == 0 {
            for f in table.drain_finished() {
                finished(f, names.as_deref_mut(), &mut report.flows, &mut report.names, observer);
            }
            if let Some(p) = progress {
                p.packets.store(report.totals.packets, Ordering::Relaxed);
                p.flows.store(report.flows.len() as u64, Ordering::Relaxed);
            }
        }
        let at = FrameRef { file, frame: packet.frame };
        let counts = Counts {
            totals: &mut report.totals,
            anomalies: &mut report.anomalies,
            unsupported: &mut report.unsupported_link_types,
        };
        let frame = Frame {
            link_type: packet.link_type,
            data: packet.data,
            wire_len: packet.wire_len,
            ts: packet.timestamp,
            at,
        };
        observe_frame(frame, tunnels, table, names.as_deref_mut(), counts);
    }
    Ok(())
}
