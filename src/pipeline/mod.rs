//! The audit pipeline: capture → decode → flow → names → intel → policy →
//! outputs, for saved captures (`xborder audit`); `live` runs the same
//! stages on an interface, as one shard: the per-packet path
//! ([`observe_frame`]), the finishing stage ([`Finishing`]) and the
//! report sinks ([`ReportSink`]).
//!
//! Contract:
//! - [`audit`] reads every input in order on the calling thread, which
//!   decodes and counts each frame and hands its IP packet to the shard of
//!   its outermost address pair (`shard`): [`AuditConfig::shards`], each with
//!   its flow table and names stage across the inputs (a connection
//!   spanning rotated capture files stays one flow), the only one on the
//!   reader's thread or each on its own. A second thread loads the
//!   intelligence meanwhile (with inputs small enough that the reader
//!   will be idle, reading the built-in cache on both cores); every
//!   [`HANDOVER_PACKETS`] packets it takes each shard's part (the flows
//!   that ended and the DNS responses seen), applies the responses to the
//!   run's one DNS map in packet order, names the flows, and in parts of
//!   at most [`PART_FLOWS`] hands them to the finishing stage
//!   (intelligence, vendors, policy, the run's digest, `finish`) and then
//!   to every [`Sink`]. At the end it
//!   merges the shards' flows still alive in first-packet order, and
//!   finishes them with the reader's core too (`Finishing::use_spare_core`)
//!   when the process may run on more than one.
//! - The answers do not depend on the number of shards: flows (with their
//!   ids), names, findings, counts, anomalies and the most flows alive at
//!   once are what one table gives, because sweeps are the reader's, ids
//!   come from the frame that starts a flow and DNS answers are applied in
//!   packet order at the same points. The exception is a bound reached:
//!   each shard holds up to `--max-flows` flows and its own live tunnels.
//! - Memory is the live flows, the flows of one period of
//!   [`HANDOVER_PACKETS`] packets, up to `PARTS_IN_FLIGHT` (8) chunks of at
//!   most [`PART_FLOWS`] flows per shard, batches of packets in flight to
//!   the shard threads, a bounded cache of looked-up addresses, the DNS
//!   map (bounded) and the digest (bounded, see `report::digest`), not the
//!   run's flows or findings.
//! - Record order: by part, in the order the parts leave; within a part
//!   by first packet (start time, then input and frame, then flow id).
//!   A period's flows (those that finished, idle, closed or evicted, in
//!   its [`HANDOVER_PACKETS`] packets) make parts of [`PART_FLOWS`] in
//!   that order, and the flows still alive at the end the last parts.
//!   Periods are cut by packet counts, so the same input gives the same
//!   records in the same order, with any number of threads. A run of
//!   fewer than [`HANDOVER_PACKETS`] packets and [`PART_FLOWS`] flows is
//!   one part: its records are in first packet order.
//! - Damaged inputs never stop the run: their errors are in the report's
//!   inputs. The intelligence failing to load is an error, raised before
//!   the first packet is read when a file the user named is wrong; so are
//!   a thread that cannot start and one that stopped (a bug).
//! - A sink's error stops that sink only (its later parts and its finish
//!   are skipped); [`audit`] returns each sink's outcome in order.
//! - No stage module imports this one, except `live`, which runs its
//!   stages.

pub mod evidence;
pub mod finish;
mod packets;
mod read;
pub mod shard;
pub mod sink;

pub use evidence::{EvidenceCounts, EvidenceSink};
#[cfg(test)]
pub(crate) use finish::apply_policy;
pub use finish::Finishing;
pub use packets::{observe_frame, observe_packet, Counts, Frame};
pub use read::{AuditConfig, AuditProgress, HANDOVER_PACKETS, PART_FLOWS};
pub use sink::{ReportFormat, ReportSink, Sink};

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;

use read::{Handed, ShardOut};
use shard::{LiveChange, ShardLast};

use crate::flow::FlowRecord;
use crate::intel::{IntelError, IntelSources};
use crate::names::{DnsMap, DnsResponse, FlowNames};
use crate::policy::Policy;
use crate::report::digest::Keep;
use crate::report::flows::IntelJsonCache;
use crate::report::AuditReport;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Intel(#[from] IntelError),
    /// The thread that loads the intelligence and finishes the parts
    /// (policy, reports, outputs) stopped without saying why (a bug).
    #[error("the thread finishing the flows (intelligence, rules, outputs) stopped unexpectedly")]
    IntelThread,
    /// A shard thread stopped without handing on what it had (a bug).
    #[error("a thread reading the packets stopped unexpectedly")]
    ShardThread,
    #[error("cannot start the audit's threads: {0}")]
    Spawn(io::Error),
}

/// An audit to run.
pub struct Audit {
    pub config: AuditConfig,
    /// Where the intelligence comes from; `None`: flows without it.
    pub intel: Option<IntelSources>,
    pub policy: Policy,
    /// Render each remote address's intelligence as JSON once per address
    /// (for the JSON formats and the fleet sink).
    pub render_intel_json: bool,
    /// The gateway or machine that saw the traffic (`--observer`).
    pub observer: Option<String>,
    /// What the outputs need of the digest ([`ReportFormat::digest`]).
    pub keep: Keep,
}

/// A finished audit: its report holds no flows, its digest all of them.
pub struct AuditRun {
    pub report: AuditReport,
    /// The intelligence of remote addresses as JSON, when asked (of the
    /// last part; the parts have it as they go).
    pub intel_json: IntelJsonCache,
}

/// What each sink made of the run, in the order given.
pub type SinkOutcomes = Vec<io::Result<()>>;

/// Messages in flight from each shard to the thread that finishes the
/// parts (chunks of at most [`PART_FLOWS`] flows): the shards wait when it
/// is behind, so memory stays bounded; eight let the reader read on while
/// the intelligence loads (measured: about 8% off a million-packet audit
/// against two).
const PARTS_IN_FLIGHT: usize = 8;

/// The reader's marks in flight (inputs, parts): they carry no flows.
const MARKS_IN_FLIGHT: usize = 64;

/// Runs `job`, handing each part of the run to every sink and then the
/// finished run.
pub fn audit(
    job: Audit,
    sinks: &mut [&mut (dyn Sink + Send)],
) -> Result<(AuditRun, SinkOutcomes), PipelineError> {
    let Audit { config, intel, policy, render_intel_json, observer, keep } = job;
    if let Some(sources) = &intel {
        sources.check_files()?;
    }
    let spare_core = small_inputs(&config.paths);
    let intel = intel.map(|sources| IntelSources { spare_core, ..sources });
    let shards = config.shards.max(1);
    let (hand, handed) = mpsc::sync_channel::<Handed>(MARKS_IN_FLIGHT);
    let (shard_outs, shard_ins): (Vec<_>, Vec<_>) =
        (0..shards).map(|_| mpsc::sync_channel::<ShardOut>(PARTS_IN_FLIGHT)).unzip();
    let (checked, files_checked) = mpsc::channel::<()>();
    let mut finisher = Finisher {
        stage: Finishing::new(policy, observer.clone(), keep, render_intel_json),
        outcomes: sinks.iter().map(|_| Ok(())).collect(),
        dns: DnsMap::default(),
        live: LivePeak::default(),
        last: Vec::new(),
        flows: 0,
        progress: config.progress.clone(),
    };
    let sources = intel.as_ref();
    let parts_sinks = &mut *sinks;
    let (report, finisher) = thread::scope(|s| {
        // Named, so that `top -H` and perf tell it from the capture reader.
        let worker = thread::Builder::new()
            .name("intel".into())
            .spawn_scoped(s, move || -> Result<Finisher, PipelineError> {
                if let Some(sources) = sources {
                    finisher.stage.set_intel(sources.load_then(|| {
                        let _ = checked.send(());
                    })?);
                } else {
                    drop(checked);
                }
                for h in handed {
                    match h {
                        Handed::Input(path) => finisher.stage.add_input(path),
                        Handed::Part => finisher.merge_part(&shard_ins, parts_sinks)?,
                        Handed::End => finisher.merge_last(&shard_ins, parts_sinks)?,
                    }
                }
                Ok(finisher)
            })
            .map_err(PipelineError::Spawn)?;
        let join = |worker: thread::ScopedJoinHandle<'_, Result<Finisher, PipelineError>>| {
            worker.join().map_err(|_| PipelineError::IntelThread)?
        };
        // The first packet waits until every file the user named is
        // checked: a wrong database fails the run now, not after hours of
        // captures. If loading failed, the sender is gone and the join
        // says why.
        if intel.is_some() && files_checked.recv().is_err() {
            drop(hand);
            drop(shard_outs);
            join(worker)?;
            return Err(PipelineError::IntelThread);
        }
        // Closed: the other thread stopped; its join says why.
        let read = read::read_inputs(&config, shard_outs, &mut |h| hand.send(h).is_ok());
        drop(hand);
        let finisher = join(worker)?;
        Ok((read?, finisher))
    })?;
    let Finisher { mut stage, mut outcomes, live, last, dns, .. } = finisher;
    let mut report = report;
    report.digest = stage.take_digest();
    report.policy = stage.policy().clone();
    report.observer = observer;
    report.peak_live_flows = live.peak as usize;
    for shard in &last {
        report.anomalies.merge(&shard.anomalies);
        report.evicted_flows += shard.evicted;
    }
    if let Some(db) = stage.intel_db() {
        report.provenance = db.provenance.clone();
    }
    let run = AuditRun { report, intel_json: stage.take_intel_json() };
    drop_in_background((stage, dns));
    for (sink, outcome) in sinks.iter_mut().zip(&mut outcomes) {
        if outcome.is_ok() {
            *outcome = sink.finish(&run);
        }
    }
    Ok((run, outcomes))
}

/// Inputs so small that the reader is done with them long before the
/// intelligence is loaded (reading and checking the built-in cache takes
/// about as long as reading this much capture), on a machine with a core
/// for each: the load may use the reader's. Files only, by their size on
/// disk (a gzip file holds more): a directory or standard input may hold
/// any amount.
fn small_inputs(paths: &[std::path::PathBuf]) -> bool {
    const SMALL_INPUTS: u64 = 64 << 20;
    let mut total = 0u64;
    for path in paths {
        if path.as_os_str() == "-" {
            return false;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => total = total.saturating_add(m.len()),
            _ => return false,
        }
    }
    total <= SMALL_INPUTS && thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// Frees `state` on a thread of its own: the report need not wait while
/// the run's tables (the intelligence, the DNS map: about 10 ms on a
/// million-packet capture) are freed, and a process that ends first does
/// not free them at all. Without a thread they are freed here.
fn drop_in_background<T: Send + 'static>(state: T) {
    let _ = thread::Builder::new().name("free".into()).spawn(move || drop(state));
}

/// The most flows alive at once, from every shard's changes.
#[derive(Default)]
struct LivePeak {
    live: u64,
    peak: u64,
}

impl LivePeak {
    /// `changes` of every shard over the same packets, merged.
    fn apply(&mut self, mut changes: Vec<LiveChange>) {
        changes.sort_by_key(|c| c.packet);
        for at in changes.chunk_by(|a, b| a.packet == b.packet) {
            let ended: u64 = at.iter().map(|c| u64::from(c.ended)).sum();
            let started: u64 = at.iter().map(|c| u64::from(c.started)).sum();
            self.live = self.live.saturating_sub(ended) + started;
            self.peak = self.peak.max(self.live);
        }
    }
}

/// The second thread's state: the finishing stage, the DNS map over every
/// shard's responses, the most flows alive and the sinks' outcomes.
struct Finisher {
    stage: Finishing,
    outcomes: SinkOutcomes,
    dns: DnsMap,
    live: LivePeak,
    /// What each shard said at the end.
    last: Vec<ShardLast>,
    /// Flows finished so far.
    flows: u64,
    progress: Option<Arc<AuditProgress>>,
}

type Named = (FlowRecord, Option<FlowNames>);

impl Finisher {
    /// Every shard's part: their DNS responses in packet order into the
    /// map, then their flows, named, in first-packet order.
    fn merge_part(
        &mut self,
        shards: &[Receiver<ShardOut>],
        sinks: &mut [&mut (dyn Sink + Send)],
    ) -> Result<(), PipelineError> {
        let mut flows = Vec::new();
        let mut responses = Vec::new();
        let mut changes = Vec::new();
        for shard in shards {
            loop {
                match shard.recv().map_err(|_| PipelineError::ShardThread)? {
                    ShardOut::Flows(mut some) => flows.append(&mut some),
                    ShardOut::PartEnd { responses: mut r, changes: mut c } => {
                        responses.append(&mut r);
                        changes.append(&mut c);
                        break;
                    }
                    ShardOut::Last(_) => return Err(PipelineError::ShardThread),
                }
            }
        }
        self.learn(responses);
        self.live.apply(changes);
        // Record order within a part: by first packet.
        flows.sort_unstable_by_key(|(f, _)| f.first_packet_order());
        while !flows.is_empty() {
            let rest = flows.split_off(flows.len().min(PART_FLOWS));
            let part = std::mem::replace(&mut flows, rest);
            self.finish_part(part, sinks);
        }
        Ok(())
    }

    /// Every shard's last responses, then their flows still alive, merged
    /// in first-packet order into parts.
    fn merge_last(
        &mut self,
        shards: &[Receiver<ShardOut>],
        sinks: &mut [&mut (dyn Sink + Send)],
    ) -> Result<(), PipelineError> {
        let (mut responses, mut changes) = (Vec::new(), Vec::new());
        for shard in shards {
            match shard.recv() {
                Ok(ShardOut::Last(mut last)) => {
                    responses.append(&mut last.responses);
                    changes.append(&mut last.changes);
                    self.last.push(*last);
                }
                _ => return Err(PipelineError::ShardThread),
            }
        }
        self.learn(responses);
        self.live.apply(changes);
        // The capture is read: the reader's core is free for the parts,
        // if it is one this process may run on.
        if thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
            self.stage.use_spare_core();
        }
        // Each shard's chunks are in order: the merge takes the earliest
        // head each time.
        let mut heads: Vec<std::collections::VecDeque<Named>> =
            shards.iter().map(|_| Default::default()).collect();
        let mut open: Vec<bool> = shards.iter().map(|_| true).collect();
        let mut part = Vec::with_capacity(PART_FLOWS);
        loop {
            for (i, shard) in shards.iter().enumerate() {
                while open[i] && heads[i].is_empty() {
                    match shard.recv() {
                        Ok(ShardOut::Flows(flows)) => heads[i].extend(flows),
                        Ok(_) => return Err(PipelineError::ShardThread),
                        Err(_) => open[i] = false,
                    }
                }
            }
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| Some((h.front()?.0.first_packet_order(), i)))
                .min()
                .map(|(_, i)| i);
            let Some(i) = next else { break };
            part.extend(heads[i].pop_front());
            if part.len() == PART_FLOWS {
                self.finish_part(std::mem::take(&mut part), sinks);
            }
        }
        if !part.is_empty() {
            self.finish_part(part, sinks);
        }
        Ok(())
    }

    /// DNS responses of every shard, in packet order, into the map.
    fn learn(&mut self, mut responses: Vec<DnsResponse>) {
        // Stable: one frame's responses (DNS over TCP) keep their order.
        responses.sort_by_key(|r| r.at);
        for r in &responses {
            self.dns.insert(r);
        }
    }

    /// A part's flows, named by the DNS map as it stands, through the
    /// finishing stage into every sink.
    fn finish_part(&mut self, flows: Vec<Named>, sinks: &mut [&mut (dyn Sink + Send)]) {
        self.flows += flows.len() as u64;
        let dns = &self.dns;
        let two_threads = self.stage.two_threads_for(flows.len());
        let named = crate::parallel::map_in_order(flows, two_threads, |(flow, names)| {
            let mut names = names.unwrap_or_default();
            if !dns.is_empty() {
                names.dns = dns.names_at(flow.remote().map(|r| r.ip), flow.start);
            }
            (flow, names)
        });
        self.stage.finish(named);
        if let Some(p) = &self.progress {
            p.flows.store(self.flows, Ordering::Relaxed);
        }
        let (part, json) = (self.stage.part(), self.stage.intel_json());
        for (sink, outcome) in sinks.iter_mut().zip(&mut self.outcomes) {
            if outcome.is_ok() {
                *outcome = sink.part(part, json);
            }
        }
    }
}
