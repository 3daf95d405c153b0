//! The audit pipeline: capture → decode → flow → names → intel → policy →
//! outputs, for saved captures (`xborder audit`); `live` runs the same
//! per-packet path ([`observe_frame`]) and policy ([`apply_policy`]) on an
//! interface.
//!
//! Contract:
//! - [`audit`] reads every input in order through one flow table (a
//!   connection spanning rotated capture files stays one flow), loads the
//!   intelligence on another thread meanwhile and looks each remote
//!   address up there once, as its flows finish; then attributes vendors
//!   and applies the policy. Damaged inputs never stop it: their errors
//!   are in the report's inputs. Only the intelligence failing to load is
//!   an error, and it is raised before the first packet is read when a
//!   file the user named is wrong.
//! - Outputs are [`Sink`]s: [`AuditRun::write_to`] hands each the finished
//!   run (the report formats are [`ReportSink`], the evidence capture of
//!   the flagged flows [`EvidenceSink`]; the HTML report and fleet sinks
//!   plug in the same way).
//! - No stage module imports this one, except `live`, which shares the
//!   per-packet path.

pub mod evidence;
mod packets;
mod read;
pub mod sink;

pub use evidence::{EvidenceCounts, EvidenceSink};
pub use packets::{observe_frame, observe_packet, Counts, Frame};
pub use read::{apply_policy, attribute_vendors, run, run_observed, AuditConfig, AuditProgress};
pub use sink::{ReportFormat, ReportSink, Sink};

use std::io;
use std::net::IpAddr;
use std::sync::{mpsc, Arc};
use std::thread;

use crate::intel::{IntelError, IntelSources};
use crate::policy::Policy;
use crate::report::flows::IntelJsonCache;
use crate::report::{AuditReport, RemoteIntel};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Intel(#[from] IntelError),
    #[error("loading the intelligence data failed")]
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
    /// Render each remote address's intelligence as JSON on the lookup
    /// thread (for the JSON formats), while the captures are read.
    pub render_intel_json: bool,
}

/// A finished audit, ready for its outputs.
pub struct AuditRun {
    pub report: AuditReport,
    /// The intelligence of remote addresses as JSON, when asked.
    pub intel_json: IntelJsonCache,
}

impl AuditRun {
    /// Hands the run to `sink`.
    pub fn write_to(&self, sink: &mut dyn Sink) -> io::Result<()> {
        sink.write(self)
    }
}

/// Addresses go to the lookup thread in batches, so the channel (and the
/// wake-up of a waiting thread) is paid once per 4,096 flows, not per flow.
const LOOKUP_BATCH: usize = 4096;

/// Runs `job`.
pub fn audit(job: Audit) -> Result<AuditRun, PipelineError> {
    let Audit { config, intel, policy, render_intel_json } = job;
    let mut run = match intel {
        None => AuditRun { report: run(&config), intel_json: IntelJsonCache::default() },
        Some(sources) => with_intel(&config, sources, render_intel_json)?,
    };
    apply_policy(&mut run.report, policy);
    Ok(run)
}

/// Reads the captures while the intelligence loads on another thread,
/// which then looks remote endpoints up (and renders their JSON) as their
/// flows finish.
fn with_intel(
    config: &AuditConfig,
    sources: IntelSources,
    render_json: bool,
) -> Result<AuditRun, PipelineError> {
    sources.check_files()?;
    let (remotes, incoming) = mpsc::channel::<Vec<IpAddr>>();
    let (checked, files_checked) = mpsc::channel::<()>();
    // Named, so that `top -H` and perf tell it from the capture reader.
    let worker = thread::Builder::new()
        .name("intel".into())
        .spawn(move || -> Result<_, IntelError> {
            let db = sources.load_then(|| {
                let _ = checked.send(());
            })?;
            let mut found = RemoteIntel::default();
            let mut json = IntelJsonCache::default();
            for ip in incoming.into_iter().flatten() {
                found.entry(ip).or_insert_with(|| {
                    let intel = db.lookup(ip);
                    if render_json {
                        json.render(ip, &intel);
                    }
                    Arc::new(intel)
                });
            }
            Ok((db, found, json))
        })
        .map_err(PipelineError::Spawn)?;
    let join = |worker: thread::JoinHandle<Result<_, IntelError>>| {
        worker.join().map_err(|_| PipelineError::IntelThread)?.map_err(PipelineError::Intel)
    };
    // The first packet waits until every file the user named is checked: a
    // wrong database fails the run now, not after hours of captures. If
    // loading failed, the sender is gone and the join says why.
    if files_checked.recv().is_err() {
        drop(remotes);
        join(worker)?;
        return Err(PipelineError::IntelThread);
    }
    let mut batch = Vec::with_capacity(LOOKUP_BATCH);
    let mut report = run_observed(config, &mut |flow| {
        if let Some(remote) = flow.remote() {
            batch.push(remote.ip);
            if batch.len() == LOOKUP_BATCH {
                // A closed channel means loading failed; the join says why.
                let _ =
                    remotes.send(std::mem::replace(&mut batch, Vec::with_capacity(LOOKUP_BATCH)));
            }
        }
    });
    let _ = remotes.send(batch);
    drop(remotes);
    let (db, found, intel_json) = join(worker)?;
    // The observer saw every flow: every remote endpoint is looked up.
    report.remote_intel = found;
    attribute_vendors(&mut report, &db.vendors);
    report.provenance = db.provenance;
    Ok(AuditRun { report, intel_json })
}
