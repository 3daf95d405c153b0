//! Saved captures, in order, through the per-packet path into parts of
//! finished flows with their names; vendors and policy over a part.

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

/// How many packets go by between parts of the run, at most.
pub const HANDOVER_PACKETS: u64 = 1 << 16;

/// How many finished flows make a part early (a flood, where every packet
/// is a flow, would otherwise make parts of 65,536 flows).
pub const PART_FLOWS: usize = 8192;

/// What the reader hands on as it goes.
pub(super) enum Handed {
    /// An input, in the order of the report's inputs (before any flow of
    /// it).
    Input(PathBuf),
    /// Finished flows with their names: a part of the run.
    Flows(Vec<(FlowRecord, Option<FlowNames>)>),
}

/// Reads every input, in order, through one flow table: a flow that spans
/// rotated capture files stays one flow. Finished flows are handed on
/// every [`HANDOVER_PACKETS`] packets (sooner once [`PART_FLOWS`] have
/// finished) and at the end, in parts of at most [`PART_FLOWS`]; the
/// report returned holds the inputs, the counts and the anomalies. `hand`
/// returns `false` when nothing takes the parts any more (the other thread
/// stopped): reading stops.
///
/// Errors never stop the run: a damaged file keeps the packets before the
/// damage and its error is recorded in the report's inputs.
pub(super) fn read_inputs(
    config: &AuditConfig,
    hand: &mut dyn FnMut(Handed) -> bool,
) -> AuditReport {
    let mut report = AuditReport::default();
    let expanded = capture::expand_inputs(&config.paths);
    if let Some(p) = &config.progress {
        let sizes = expanded.inputs.iter().filter_map(|i| std::fs::metadata(&i.path).ok());
        p.total_bytes.store(sizes.map(|m| m.len()).sum(), Ordering::Relaxed);
    }
    let inputs = expanded.inputs;
    report.skipped.extend(expanded.skipped.into_iter().map(|s| (s.path, s.reason)));
    for err in expanded.errors {
        if !hand(Handed::Input(err.path().to_owned())) {
            return report;
        }
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
    let mut reader = Reader {
        table,
        names: (!config.no_names).then(NameInspector::new),
        finished: Vec::new(),
        flows: 0,
        gone: false,
        hand,
        progress: config.progress.as_deref(),
    };
    for input in &inputs {
        if reader.gone {
            break;
        }
        let index = report.inputs.len() as u32;
        let mut summary =
            InputSummary { path: input.path.clone(), format: None, packets: 0, error: None };
        let counter = config.progress.as_ref().map(|p| p.read_bytes.clone());
        match capture::open_capture_counting(input, counter) {
            Ok(Opened::Skipped(skipped)) => {
                report.skipped.push((skipped.path, skipped.reason));
                continue;
            }
            Ok(Opened::Reader(mut capture)) => {
                reader.gone |= !(reader.hand)(Handed::Input(input.path.clone()));
                summary.format = Some(capture.format());
                if let Err(err) = reader.read_capture(
                    &mut capture,
                    index,
                    &config.tunnels,
                    &mut report,
                    &mut summary,
                ) {
                    summary.error = Some(err.to_string());
                }
            }
            Err(err) => {
                reader.gone |= !(reader.hand)(Handed::Input(input.path.clone()));
                summary.error = Some(err.to_string());
            }
        }
        report.inputs.push(summary);
    }
    report.peak_live_flows = reader.table.peak_flows();
    report.evicted_flows = reader.table.evicted();
    if reader.gone {
        return report;
    }
    let Reader { table, mut names, hand, .. } = reader;
    // The flows alive at the end leave in parts too: a table of a million
    // flows must not become a million records at once.
    table.finish_in_parts(&mut report.anomalies, PART_FLOWS, |last| {
        hand(Handed::Flows(last.into_iter().map(|f| named(names.as_mut(), f)).collect()));
    });
    report
}

/// The reader's state across inputs.
struct Reader<'h> {
    table: FlowTable,
    names: Option<NameInspector>,
    /// Finished flows being handed on.
    finished: Vec<(FlowRecord, Option<FlowNames>)>,
    /// Flows handed on so far.
    flows: u64,
    /// Nothing takes the parts any more.
    gone: bool,
    hand: &'h mut dyn FnMut(Handed) -> bool,
    progress: Option<&'h AuditProgress>,
}

/// A finished flow with its names, from the names stage.
fn named(names: Option<&mut NameInspector>, flow: FlowRecord) -> (FlowRecord, Option<FlowNames>) {
    let names = names.and_then(|names| {
        let found = names.finish(flow.id, flow.remote().map(|r| r.ip), flow.start);
        (found != FlowNames::default()).then_some(found)
    });
    (flow, names)
}

impl Reader<'_> {
    /// Hands the finished flows on, in parts of at most [`PART_FLOWS`] (a
    /// sweep or an eviction can end more at once), each in first-packet
    /// order.
    fn hand_on(&mut self) {
        self.flows += self.finished.len() as u64;
        let mut flows = std::mem::take(&mut self.finished);
        if flows.len() > PART_FLOWS {
            flows.sort_unstable_by_key(|(f, _)| (f.start, f.first_frame, f.id));
            while flows.len() > PART_FLOWS {
                let rest = flows.split_off(PART_FLOWS);
                self.gone |= !(self.hand)(Handed::Flows(std::mem::replace(&mut flows, rest)));
            }
        }
        self.gone |= !(self.hand)(Handed::Flows(flows));
        if let Some(p) = self.progress {
            p.flows.store(self.flows, Ordering::Relaxed);
        }
    }

    /// The per-packet loop for one capture.
    fn read_capture(
        &mut self,
        capture: &mut capture::CaptureReader,
        file: u32,
        tunnels: &Decapsulation,
        report: &mut AuditReport,
        summary: &mut InputSummary,
    ) -> Result<(), CaptureError> {
        while let Some(packet) = capture.next_packet()? {
            summary.packets += 1;
            if (report.totals.packets + 1) % HANDOVER_PACKETS == 0
                || self.table.finished_count() >= PART_FLOWS
            {
                let names = &mut self.names;
                let done = self.table.drain_finished().map(|f| named(names.as_mut(), f));
                self.finished.extend(done);
                self.hand_on();
                if self.gone {
                    return Ok(());
                }
                if let Some(p) = self.progress {
                    p.packets.store(report.totals.packets, Ordering::Relaxed);
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
            observe_frame(frame, tunnels, &mut self.table, self.names.as_mut(), counts);
        }
        Ok(())
    }
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

/// Checks every flow of `report` against `policy`, once, with its remote
/// endpoint's intelligence, names and vendor.
pub fn apply_policy(report: &mut AuditReport, policy: Policy) {
    report.policy = policy;
    evaluate(report);
}

/// [`apply_policy`] with the report's own policy.
pub(super) fn evaluate(report: &mut AuditReport) {
    let mut findings = std::mem::take(&mut report.findings);
    findings.clear();
    let policy = &report.policy;
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
}
