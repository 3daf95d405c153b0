//! The audit pipeline: capture → decode → flow → names → intel → policy →
//! outputs, for saved captures (`xborder audit`); `live` runs the same
//! per-packet path ([`observe_frame`]) and policy ([`apply_policy`]) on an
//! interface.
//!
//! Contract:
//! - [`audit`] reads every input in order through one flow table (a
//!   connection spanning rotated capture files stays one flow) on the
//!   calling thread. Finished flows leave it in parts of at most
//!   [`PART_FLOWS`], every [`HANDOVER_PACKETS`] packets (or sooner, once
//!   [`PART_FLOWS`] flows have finished) and at the end, for a second thread,
//!   which loads the intelligence meanwhile, then for each part looks the
//!   remote addresses up, attributes vendors, applies the policy, adds the
//!   part to the run's [`Digest`] and hands it to every [`Sink`].
//!   Memory is the live flows, up to ten parts of at most [`PART_FLOWS`]
//!   flows (eight in flight, one being made, one being finished), a bounded
//!   cache of looked-up addresses and the digest (bounded, see
//!   `report::digest`), not the run's flows or findings.
//! - Record order: by part, in the order the parts leave; within a part
//!   by first packet (start time, then input and frame, then flow id).
//!   A part holds the flows that finished (idle, closed, evicted) since
//!   the one before, and the last one every flow still alive at the end.
//!   Parts are cut by packet and flow counts, so the same input gives the
//!   same records in the same order. A run of fewer than
//!   [`HANDOVER_PACKETS`] packets and [`PART_FLOWS`] finished flows is
//!   one part: its records are in first packet order.
//! - Damaged inputs never stop the run: their errors are in the report's
//!   inputs. Only the intelligence failing to load is an error, and it is
//!   raised before the first packet is read when a file the user named is
//!   wrong.
//! - A sink's error stops that sink only (its later parts and its finish
//!   are skipped); [`audit`] returns each sink's outcome in order.
//! - No stage module imports this one, except `live`, which shares the
//!   per-packet path.

pub mod evidence;
mod packets;
mod read;
pub mod sink;

pub use evidence::{EvidenceCounts, EvidenceSink};
pub use packets::{observe_frame, observe_packet, Counts, Frame};
pub use read::{
    apply_policy, attribute_vendors, AuditConfig, AuditProgress, HANDOVER_PACKETS, PART_FLOWS,
};
pub use sink::{ReportFormat, ReportSink, Sink};

use std::io;
use std::sync::{mpsc, Arc};
use std::thread;

use read::Handed;

use crate::flow::FlowRecord;
use crate::intel::{IntelDb, IntelError, IntelSources};
use crate::names::FlowNames;
use crate::policy::Policy;
use crate::report::digest::{Digest, Keep};
use crate::report::flows::IntelJsonCache;
use crate::report::{AuditReport, InputSummary};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Intel(#[from] IntelError),
    /// The thread that loads the intelligence and finishes the parts
    /// (policy, reports, outputs) stopped without saying why (a bug).
    #[error("the thread finishing the flows (intelligence, rules, outputs) stopped unexpectedly")]
    IntelThread,
    #[error("cannot start the intelligence thread: {0}")]
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

/// Addresses whose intelligence is kept between parts, at most: past it
/// the cache starts again (a flood from random sources must not grow it).
const INTEL_CACHE: usize = 1 << 14;

/// Parts in flight between the reader and the thread that finishes them:
/// the reader waits when the other is behind, so memory stays bounded;
/// eight let it read on while the intelligence loads (measured: about 8%
/// off a million-packet audit against two).
const PARTS_IN_FLIGHT: usize = 8;

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
    let (hand, handed) = mpsc::sync_channel::<Handed>(PARTS_IN_FLIGHT);
    let (checked, files_checked) = mpsc::channel::<()>();
    let part = AuditReport { policy, observer: observer.clone(), ..AuditReport::default() };
    let mut finisher = Finisher {
        part,
        digest: Digest::keeping(keep),
        json: IntelJsonCache::default(),
        render_json: render_intel_json,
        db: None,
        outcomes: sinks.iter().map(|_| Ok(())).collect(),
    };
    let sources = intel.as_ref();
    let parts_sinks = &mut *sinks;
    let (mut report, finisher) = thread::scope(|s| {
        // Named, so that `top -H` and perf tell it from the capture reader.
        let worker = thread::Builder::new()
            .name("intel".into())
            .spawn_scoped(s, move || -> Result<Finisher, IntelError> {
                if let Some(sources) = sources {
                    finisher.db = Some(sources.load_then(|| {
                        let _ = checked.send(());
                    })?);
                } else {
                    drop(checked);
                }
                for h in handed {
                    match h {
                        Handed::Input(path) => finisher.part.inputs.push(InputSummary {
                            path,
                            format: None,
                            packets: 0,
                            error: None,
                        }),
                        Handed::Flows(flows) => finisher.finish_part(flows, parts_sinks),
                    }
                }
                Ok(finisher)
            })
            .map_err(PipelineError::Spawn)?;
        let join = |worker: thread::ScopedJoinHandle<'_, Result<Finisher, IntelError>>| {
            worker.join().map_err(|_| PipelineError::IntelThread)?.map_err(PipelineError::Intel)
        };
        // The first packet waits until every file the user named is
        // checked: a wrong database fails the run now, not after hours of
        // captures. If loading failed, the sender is gone and the join
        // says why.
        if intel.is_some() && files_checked.recv().is_err() {
            drop(hand);
            join(worker)?;
            return Err(PipelineError::IntelThread);
        }
        // Closed: the other thread stopped; its join says why.
        let report = read::read_inputs(&config, &mut |h| hand.send(h).is_ok());
        drop(hand);
        Ok((report, join(worker)?))
    })?;
    let Finisher { part, digest, json, db, mut outcomes, .. } = finisher;
    report.policy = part.policy;
    report.observer = observer;
    report.digest = digest;
    if let Some(db) = db {
        report.provenance = db.provenance;
    }
    let run = AuditRun { report, intel_json: json };
    for (sink, outcome) in sinks.iter_mut().zip(&mut outcomes) {
        if outcome.is_ok() {
            *outcome = sink.finish(&run);
        }
    }
    Ok((run, outcomes))
}

/// The second thread's state: the part being finished (its flows, and
/// what stays between parts: the policy, the inputs' paths, the cache of
/// intelligence), the digest and the sinks' outcomes.
struct Finisher {
    part: AuditReport,
    digest: Digest,
    json: IntelJsonCache,
    render_json: bool,
    db: Option<IntelDb>,
    outcomes: SinkOutcomes,
}

impl Finisher {
    fn finish_part(
        &mut self,
        mut flows: Vec<(FlowRecord, Option<FlowNames>)>,
        sinks: &mut [&mut (dyn Sink + Send)],
    ) {
        // A tunnelled packet starts its tunnel's flow and the flow inside
        // it, in that order of ids: with the id, the unstable sort is
        // deterministic.
        flows.sort_unstable_by_key(|(f, _)| (f.start, f.first_frame, f.id));
        let part = &mut self.part;
        if part.remote_intel.len() > INTEL_CACHE {
            part.remote_intel.clear();
            self.json = IntelJsonCache::default();
        }
        part.flows.clear();
        part.names.clear();
        for (flow, names) in flows {
            if let Some(names) = names {
                part.names.insert(flow.id, names);
            }
            part.flows.push(flow);
        }
        if let Some(db) = &self.db {
            for flow in &part.flows {
                let Some(remote) = flow.remote() else { continue };
                part.remote_intel.entry(remote.ip).or_insert_with(|| {
                    let intel = db.lookup(remote.ip);
                    if self.render_json {
                        self.json.render(remote.ip, &intel);
                    }
                    Arc::new(intel)
                });
            }
            attribute_vendors(part, &db.vendors);
        }
        read::evaluate(part);
        self.digest.add(part);
        for (sink, outcome) in sinks.iter_mut().zip(&mut self.outcomes) {
            if outcome.is_ok() {
                *outcome = sink.part(part, &self.json);
            }
        }
    }
}
