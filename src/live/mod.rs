//! `xborder live`: the audit pipeline on a network interface, for months.
//!
//! Two threads: the capture thread only copies packets from libpcap into
//! batches on a bounded queue (a full queue drops the batch and counts it:
//! capture never waits); the analysis thread (the caller's) runs the
//! audit's stages on trace timestamps, as one shard: the per-packet path
//! ([`observe_frame`]: decode → flow → names), then, for the flows that
//! finished, the finishing stage ([`Finishing`]: intelligence → vendors →
//! rules → the period's digest) and the report sinks ([`ReportSink`]),
//! and hands alerts and reports to an output thread through a bounded
//! queue of its own (a full one drops the alert and counts it: analysis
//! never waits on output).
//!
//! Memory: the live flows, a part of finished flows (at most
//! [`PART_FLOWS`], finished every 100 ms), the digest and, for the JSON
//! report, the period's finding records (in a temporary file), as in
//! `audit`; not the period's flows.
//!
//! Periods: a report covers the flows that ended in it, checked against
//! the rules in use; a reload (SIGHUP) that succeeds ends the period.
//!
//! Time: flows, timeouts and alerts use trace time (packet timestamps),
//! carried forward by the wall clock while no packet arrives so that flows
//! end on time in a quiet network; report periods and statistics use the
//! wall clock.

mod capture;
mod evidence;

pub use capture::{CaptureOptions, LiveCapture};
pub use evidence::EvidenceSettings;

use std::collections::VecDeque;
use std::io::Seek;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use capture::{capture_loop, Batch, CaptureCounters};
use evidence::LiveEvidence;

use crate::clickhouse::LiveSender;
use crate::decode::{Decapsulation, FrameRef, MAX_TUNNEL_DEPTH};
use crate::flow::{FlowKey, FlowRecord, FlowTable, FlowTimeouts, LocalNetworks};
use crate::intel::{Intel, IntelDb, VendorMatch};
use crate::names::{FlowNames, NameInspector};
use crate::pipeline::{
    observe_frame, AuditRun, Counts, Finishing, Frame, ReportFormat, ReportSink, Sink, PART_FLOWS,
};
use crate::policy::{finding_country, FlowFacts, Policy, Severity};
use crate::report::digest::Keep;
use crate::report::findings::FindingView;
use crate::report::flows::{rule_json, FindingRecord, FlowJson, IntelFields, IntelJsonCache};
use crate::report::json::escape_into;
use crate::report::{AuditReport, CaptureStats, Finding, InputSummary, LivePeriod, StoreStats};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot capture on {interface}: {message}")]
    Capture { interface: String, message: String },
    #[error("bad capture filter \"{filter}\": {message}")]
    Filter { filter: String, message: String },
    #[error("capture stopped: {0}")]
    Stopped(String),
    #[error("{dir}: cannot keep evidence there: {message}")]
    Evidence { dir: String, message: String },
}

/// What the analysis knows: the rules and the intelligence. Replaced as a
/// whole on SIGHUP.
pub struct Knowledge {
    pub policy: Policy,
    /// `None`: run without intelligence.
    pub intel: Option<IntelDb>,
}

/// Loads [`Knowledge`] afresh (on SIGHUP), or says why it cannot.
pub type Loader = Arc<dyn Fn() -> Result<Knowledge, String> + Send + Sync>;

/// Settings of the analysis.
#[derive(Clone, Debug)]
pub struct Settings {
    pub timeouts: FlowTimeouts,
    pub local: LocalNetworks,
    /// Which tunnels are decoded, on which ports.
    pub tunnels: Decapsulation,
    pub no_names: bool,
    /// Most flows alive at once; the idlest go first beyond it.
    pub max_flows: usize,
    /// How long after a flow's first packet its early alert is decided:
    /// its names (SNI, Host, DNS) are known by then.
    pub alert_delay: Duration,
    pub report_every: Option<Duration>,
    pub stats_every: Option<Duration>,
    /// Batches (of up to 256 packets) the capture queue holds.
    pub queue_batches: usize,
    /// Keep the packets of flagged flows (`--evidence-dir`).
    pub evidence: Option<EvidenceSettings>,
    /// `observer.name` in every alert and report (`--observer`).
    pub observer: Option<String>,
    /// Render each period's report as JSON, text and HTML documents
    /// ([`Event::Report`]; `--report-dir`).
    pub report_documents: bool,
}

/// A period's report as documents to write.
pub struct ReportDocuments {
    /// An anonymous temporary file (`$TMPDIR`), read from its start: it
    /// lists every finding of the period.
    pub json: std::fs::File,
    pub text: Vec<u8>,
    pub html: Vec<u8>,
}

/// Requests from signal handlers.
#[derive(Clone, Default)]
pub struct Signals {
    pub stop: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
}

/// What the analysis hands to the output thread.
pub enum Event {
    /// One alert: a JSON line (without the newline) and its severity.
    Alert(Vec<u8>, Severity),
    /// A periodic report, or the last one, with its documents when asked
    /// for ([`Settings::report_documents`]).
    Report(Box<AuditReport>, Option<Box<ReportDocuments>>),
    Stats(CaptureStats),
    /// A line for the log (standard error).
    Log(String),
    /// SIGHUP: reopen output files (log rotation).
    Reopen,
}

/// A report period also ends after this many finished flows, so that its
/// report (whose JSON lists every finding) stays a size a person can open,
/// whatever `--report-every` says, or without it.
const PERIOD_FLOWS: u64 = 1_000_000;

/// The analysis thread's state.
struct Analysis {
    settings: Settings,
    table: FlowTable,
    names: Option<NameInspector>,
    /// The rules, the intelligence, the period's digest.
    stage: Finishing,
    /// Flows that finished since the last part, with their names.
    ending: Vec<(FlowRecord, FlowNames)>,
    /// The period's JSON, text and HTML reports, when asked for.
    /// `None`: not asked for; an error: they could not be started this
    /// period (said in the log when the period ends).
    documents: Option<std::io::Result<PeriodDocuments>>,
    /// Flows pending their early alert at the given trace time.
    pending: VecDeque<(Timestamp, FlowKey, u64)>,
    /// The period's counts (its flows are in the stage's digest).
    period: AuditReport,
    period_flows: u64,
    period_start: Timestamp,
    frames: u64,
    out: Outputs,
}

/// Where the analysis hands what it finds: alerts, records, evidence.
struct Outputs {
    /// The JSON string of the interface name, for the records' `file`.
    file: Vec<u8>,
    interface: String,
    /// The JSON string of `--observer`.
    observer: Option<Vec<u8>>,
    events: SyncSender<Event>,
    alerts: Arc<AtomicU64>,
    alerts_dropped: Arc<AtomicU64>,
    evidence: Option<LiveEvidence>,
    /// Evidence counts when writing failed and evidence stopped.
    evidence_before_failure: (u64, u64),
    /// Flow records and alerts to ClickHouse (`--clickhouse`).
    store: Option<LiveSender>,
    /// Its counters once it has finished.
    store_counters: Option<Arc<crate::clickhouse::LiveCounters>>,
}

/// Runs until `signals.stop` is set (or the capture fails), then ends every
/// live flow, writes the last report and returns the final statistics.
pub fn run(
    capture: LiveCapture,
    settings: Settings,
    knowledge: Knowledge,
    loader: Loader,
    signals: Signals,
    events: SyncSender<Event>,
    store: Option<LiveSender>,
) -> Result<CaptureStats, LiveError> {
    let (queue, batches) = mpsc::sync_channel::<Batch>(settings.queue_batches.max(1));
    let counters = Arc::new(CaptureCounters::default());
    let link_type = capture.link_type;
    let interface = capture.interface.clone();
    let evidence = match &settings.evidence {
        Some(e) => Some(LiveEvidence::open(e.clone(), link_type).map_err(|err| {
            LiveError::Evidence { dir: e.dir.display().to_string(), message: err.to_string() }
        })?),
        None => None,
    };
    // libpcap may wait in poll() past its timeout while no packet comes
    // (Linux, TPACKET_V3): a stop must break its loop.
    let mut capture = capture;
    let breaker = capture.cap.breakloop_handle();
    let capture_thread = {
        let (stop, counters) = (signals.stop.clone(), counters.clone());
        thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture_loop(capture, queue, stop, counters))
            .map_err(|e| LiveError::Stopped(e.to_string()))?
    };
    let mut table = FlowTable::new(settings.timeouts, settings.local.clone());
    table.set_max_flows(settings.max_flows);
    table.track_started();
    if evidence.is_some() {
        table.log_frames();
    }
    let mut file = Vec::new();
    escape_into(&mut file, &interface);
    let observer = settings.observer.as_ref().map(|o| {
        let mut name = Vec::new();
        escape_into(&mut name, o);
        name
    });
    let docs = settings.report_documents;
    // Alerts carry the intelligence as JSON, so it is rendered once per
    // address.
    let keep = Keep { text: docs, html: docs };
    let mut stage = Finishing::new(knowledge.policy, settings.observer.clone(), keep, true);
    if let Some(db) = knowledge.intel {
        stage.set_intel(db);
    }
    stage.add_input(PathBuf::from(&interface));
    let mut a = Analysis {
        names: (!settings.no_names).then(NameInspector::new),
        documents: docs.then(PeriodDocuments::open),
        settings,
        table,
        stage,
        ending: Vec::new(),
        pending: VecDeque::new(),
        period: AuditReport::default(),
        period_flows: 0,
        period_start: Timestamp::wall_clock(),
        frames: 0,
        out: Outputs {
            file,
            interface,
            observer,
            events,
            alerts: Arc::new(AtomicU64::new(0)),
            alerts_dropped: Arc::new(AtomicU64::new(0)),
            evidence,
            evidence_before_failure: (0, 0),
            store,
            store_counters: None,
        },
    };
    a.analyse(link_type, &batches, &loader, &signals, &counters, &breaker);
    let failure = capture_thread.join().ok().flatten();
    // Every live flow ends into the last report.
    let peak = a.table.peak_flows();
    let mut anomalies = std::mem::take(&mut a.period.anomalies);
    let table = std::mem::replace(
        &mut a.table,
        FlowTable::new(FlowTimeouts::default(), LocalNetworks::default()),
    );
    // In first-packet order across the last parts, as an audit's are.
    let mut rest = table.finish(&mut anomalies);
    rest.sort_unstable_by_key(FlowRecord::first_packet_order);
    for f in rest {
        a.finished(f);
    }
    a.period.anomalies = anomalies;
    a.finish_part();
    a.out.flush_evidence();
    // What is left goes to the store (or its spool) before the final
    // statistics count it.
    if let Some(store) = a.out.store.take() {
        let counters = store.counters.clone();
        store.finish();
        a.out.store_counters = Some(counters);
    }
    let stats = a.stats(&counters);
    a.report(stats, true, peak);
    match failure {
        Some(message) => Err(LiveError::Stopped(message)),
        None => Ok(stats),
    }
}

impl Analysis {
    fn analyse(
        &mut self,
        link_type: crate::capture::LinkType,
        batches: &Receiver<Batch>,
        loader: &Loader,
        signals: &Signals,
        counters: &CaptureCounters,
        breaker: &pcap::BreakLoop,
    ) {
        // Trace time, carried forward by the wall clock between packets.
        let mut trace = (Timestamp::wall_clock(), Instant::now());
        let mut housekeeping = Instant::now();
        let mut report_at = Instant::now();
        let mut stats_at = Instant::now();
        let mut reloading: Option<Receiver<Result<Knowledge, String>>> = None;
        loop {
            match batches.recv_timeout(Duration::from_millis(100)) {
                Ok(batch) => {
                    if let Some(ts) = self.process(link_type, &batch) {
                        trace = (trace.0.max(ts), Instant::now());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The capture thread has stopped.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if housekeeping.elapsed() < Duration::from_millis(100) {
                continue;
            }
            housekeeping = Instant::now();
            self.out.flush_evidence();
            let now = trace.0.plus(trace.1.elapsed());
            self.table.expire(now, &mut self.period.anomalies);
            for (key, id, start) in self.table.take_started() {
                self.pending.push_back((start.plus(self.settings.alert_delay), key, id));
            }
            while self.pending.front().is_some_and(|(at, _, _)| *at <= now) {
                if let Some((_, key, id)) = self.pending.pop_front() {
                    self.early(&key, id);
                }
            }
            let finished: Vec<FlowRecord> = self.table.drain_finished().collect();
            for f in finished {
                self.finished(f);
            }
            self.finish_part();
            if signals.reload.swap(false, Ordering::Relaxed) && reloading.is_none() {
                let (tx, rx) = mpsc::channel();
                let loader = loader.clone();
                let spawned = thread::Builder::new()
                    .name("reload".into())
                    .spawn(move || drop(tx.send(loader())));
                match spawned {
                    Ok(_) => reloading = Some(rx),
                    Err(e) => self.out.log(format!("reload failed: {e}")),
                }
                self.out.send(Event::Reopen);
            }
            if let Some(rx) = &reloading {
                match rx.try_recv() {
                    Ok(Ok(k)) => {
                        reloading = None;
                        // The period's report is of the rules its flows
                        // were checked against.
                        if self.period_flows > 0 {
                            let stats = self.stats(counters);
                            self.report(stats, false, self.table.peak_flows());
                        }
                        self.stage.replace_knowledge(k.policy, k.intel);
                        self.out.log("reloaded rule packs and intelligence data".into());
                    }
                    Ok(Err(e)) => {
                        reloading = None;
                        self.out
                            .log(format!("reload failed, keeping the rules and data in use: {e}"));
                    }
                    Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => reloading = None,
                }
            }
            if let Some(every) = self.settings.stats_every {
                if stats_at.elapsed() >= every {
                    stats_at = Instant::now();
                    let stats = self.stats(counters);
                    self.out.send(Event::Stats(stats));
                }
            }
            let due = self.settings.report_every.is_some_and(|every| report_at.elapsed() >= every);
            if due || self.period_flows >= PERIOD_FLOWS {
                report_at = Instant::now();
                let stats = self.stats(counters);
                self.report(stats, false, self.table.peak_flows());
            }
            if signals.stop.load(Ordering::Relaxed) {
                breaker.breakloop();
                // Everything the capture thread still hands over, until it
                // has stopped.
                while let Ok(batch) = batches.recv() {
                    self.process(link_type, &batch);
                }
                return;
            }
        }
    }

    /// A batch through the per-packet path; returns its last timestamp.
    fn process(&mut self, link_type: crate::capture::LinkType, batch: &Batch) -> Option<Timestamp> {
        let mut last = None;
        for (data, ts, wire_len) in batch.iter() {
            self.frames += 1;
            let frame = Frame {
                link_type,
                data,
                wire_len,
                ts,
                at: FrameRef { file: 0, frame: self.frames },
            };
            let counts = Counts {
                totals: &mut self.period.totals,
                anomalies: &mut self.period.anomalies,
                unsupported: &mut self.period.unsupported_link_types,
            };
            observe_frame(
                frame,
                &self.settings.tunnels,
                &mut self.table,
                self.names.as_mut(),
                counts,
            );
            if self.out.evidence.is_some() {
                let at = FrameRef { file: 0, frame: self.frames };
                // The flows of this frame: one, or a tunnel's and those
                // inside it. A fragment that waited for its datagram's first
                // is gone by now: not kept.
                let mut flows = [0u64; MAX_TUNNEL_DEPTH + 1];
                let mut n = 0;
                for (frame, id) in self.table.drain_frame_log() {
                    if frame == at && n < flows.len() {
                        flows[n] = id;
                        n += 1;
                    }
                }
                if n > 0 {
                    self.out.evidence_packet(&flows[..n], ts, data, wire_len);
                }
            }
            last = Some(ts);
        }
        last
    }

    fn stats(&self, c: &CaptureCounters) -> CaptureStats {
        let out = &self.out;
        CaptureStats {
            received: c.received.load(Ordering::Relaxed),
            kernel_dropped: c.kernel_dropped.load(Ordering::Relaxed),
            interface_dropped: c.interface_dropped.load(Ordering::Relaxed),
            queue_dropped: c.queue_dropped.load(Ordering::Relaxed),
            live_flows: self.table.live_flows() as u64,
            evicted_flows: self.table.evicted(),
            alerts: out.alerts.load(Ordering::Relaxed),
            alerts_dropped: out.alerts_dropped.load(Ordering::Relaxed),
            evidence_packets: out
                .evidence
                .as_ref()
                .map_or(out.evidence_before_failure.0, |e| e.written),
            evidence_dropped: out
                .evidence
                .as_ref()
                .map_or(out.evidence_before_failure.1, |e| e.dropped),
            store: out
                .store
                .as_ref()
                .map(|s| s.counters.clone())
                .or_else(|| out.store_counters.clone())
                .map(|c| StoreStats {
                    sent: c.sent.load(Ordering::Relaxed),
                    spooled: c.spooled.load(Ordering::Relaxed),
                    retried: c.retried.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                }),
        }
    }

    /// The early alerts of a live flow whose names should be known by now.
    fn early(&mut self, key: &FlowKey, id: u64) {
        let Some(flow) = self.table.snapshot(key, id) else {
            return; // Already over: its end alerts say everything.
        };
        let remote = flow.remote().map(|r| r.ip);
        // As in a part (and an audit's records): a flow without names has
        // none, not empty ones.
        let names = self
            .names
            .as_ref()
            .map(|n| n.peek(id, remote, flow.start))
            .filter(|n| *n != FlowNames::default());
        let vendor = names.as_ref().and_then(|n| self.stage.vendor(n));
        let intel = remote.and_then(|ip| self.stage.intel(ip));
        let policy = self.stage.policy();
        let facts = FlowFacts {
            flow: &flow,
            intel: intel.as_deref(),
            names: names.as_ref(),
            vendor: vendor.as_ref(),
        };
        let findings: Vec<Finding> = policy
            .evaluate(&facts)
            .into_iter()
            .map(|matched| {
                let (_, rule) = policy.rule(&matched);
                let country = finding_country(rule, intel.as_deref(), vendor.as_ref());
                Finding { flow: 0, country, matched, early: true }
            })
            .collect();
        if findings.is_empty() {
            if let Some(ev) = &mut self.out.evidence {
                ev.cleared(id);
            }
            return;
        }
        let facts = AlertFacts {
            policy,
            intel: intel.as_ref(),
            intel_json: remote.and_then(|ip| self.stage.intel_json().get(&ip)),
            names: names.as_ref(),
            vendor: vendor.as_ref(),
        };
        self.out.alerts_of(&flow, &facts, &findings);
    }

    /// A finished flow, with its names, into the part being gathered.
    fn finished(&mut self, flow: FlowRecord) {
        let remote = flow.remote().map(|r| r.ip);
        let names = self.names.as_mut().map(|n| n.finish(flow.id, remote, flow.start));
        self.ending.push((flow, names.unwrap_or_default()));
        if self.ending.len() >= PART_FLOWS {
            self.finish_part();
        }
    }

    /// The flows gathered through the finishing stage: their end alerts,
    /// their records to the store, their evidence decided, and the
    /// period's reports.
    fn finish_part(&mut self) {
        if self.ending.is_empty() {
            return;
        }
        self.period_flows += self.ending.len() as u64;
        // Record order: by part, then first packet.
        self.ending.sort_unstable_by_key(|(f, _)| f.first_packet_order());
        self.stage.finish(self.ending.drain(..));
        let part = self.stage.part();
        let json = self.stage.intel_json();
        let mut findings = &part.findings[..];
        for (index, flow) in part.flows.iter().enumerate() {
            let n = findings.iter().take_while(|f| f.flow == index).count();
            let (of_flow, rest) = findings.split_at(n);
            findings = rest;
            let remote = flow.remote().map(|r| r.ip);
            let facts = AlertFacts {
                policy: &part.policy,
                intel: remote.and_then(|ip| part.remote_intel.get(&ip)),
                intel_json: remote.and_then(|ip| json.get(&ip)),
                names: part.names.get(&flow.id),
                vendor: part.vendors.get(&flow.id),
            };
            if !of_flow.is_empty() {
                self.out.alerts_of(flow, &facts, of_flow);
            }
            if let Some(ev) = &mut self.out.evidence {
                ev.ended(flow.id);
            }
            self.out.record(flow, &facts);
        }
        if let Some(Ok(docs)) = &mut self.documents {
            docs.part(part, json);
        }
    }

    /// Hands the period's report over and starts the next period.
    fn report(&mut self, stats: CaptureStats, last: bool, peak_live_flows: usize) {
        self.finish_part();
        let end = Timestamp::wall_clock();
        let counts = std::mem::take(&mut self.period);
        let report = AuditReport {
            inputs: vec![InputSummary {
                path: PathBuf::from(&self.out.interface),
                format: None,
                packets: counts.totals.packets,
                error: None,
            }],
            totals: counts.totals,
            anomalies: counts.anomalies,
            unsupported_link_types: counts.unsupported_link_types,
            peak_live_flows,
            observer: self.settings.observer.clone(),
            provenance: self.stage.intel_db().map(|db| db.provenance.clone()).unwrap_or_default(),
            policy: self.stage.policy().clone(),
            digest: self.stage.take_digest(),
            live: Some(LivePeriod {
                interface: self.out.interface.clone(),
                start: self.period_start,
                end,
                last,
                stats,
            }),
            ..AuditReport::default()
        };
        self.period_start = end;
        self.period_flows = 0;
        let run = AuditRun { report, intel_json: IntelJsonCache::default() };
        let documents = match self.documents.replace(PeriodDocuments::open()) {
            Some(docs) => match docs.and_then(|d| d.finish(&run)) {
                Ok(docs) => Some(Box::new(docs)),
                Err(e) => {
                    self.out.log(format!("cannot make the period's report: {e}"));
                    None
                }
            },
            None => None,
        };
        self.out.send(Event::Report(Box::new(run.report), documents));
    }
}

/// What an alert says of its flow besides the flow.
struct AlertFacts<'a> {
    policy: &'a Policy,
    intel: Option<&'a Arc<Intel>>,
    intel_json: Option<IntelFields<'a>>,
    names: Option<&'a FlowNames>,
    vendor: Option<&'a VendorMatch>,
}

impl Outputs {
    fn send(&self, event: Event) {
        match self.events.try_send(event) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(Event::Alert(..))) => {
                self.alerts_dropped.fetch_add(1, Ordering::Relaxed);
            }
            // Reports, statistics and log lines are rare: worth a wait.
            Err(TrySendError::Full(other)) => drop(self.events.send(other)),
        }
    }

    fn log(&self, line: String) {
        self.send(Event::Log(line));
    }

    /// The alerts of `flow`, one per finding (of one flow, early or at its
    /// end); its evidence is kept.
    fn alerts_of(&mut self, flow: &FlowRecord, facts: &AlertFacts<'_>, findings: &[Finding]) {
        let evidence_file = self.evidence_of(flow, facts.policy, findings);
        for finding in findings {
            let (pack, rule) = facts.policy.rule(&finding.matched);
            let view = FindingView {
                finding,
                flow,
                pack,
                rule,
                sides: flow.sides(),
                intel: facts.intel,
                names: facts.names,
                vendor: facts.vendor,
                file: Path::new(&self.interface),
            };
            let mut line = self.record_line(flow, facts, Some(&view));
            if let Some(file) = &evidence_file {
                // ECS `file.path`: where the flow's packets are.
                if line.pop() == Some(b'}') {
                    line.extend_from_slice(b",\"file\":{\"path\":");
                    escape_into(&mut line, &file.to_string_lossy());
                    line.extend_from_slice(b"}}");
                }
            }
            self.alerts.fetch_add(1, Ordering::Relaxed);
            if let Some(store) = &self.store {
                store.record(line.clone());
            }
            self.send(Event::Alert(line, rule.severity));
        }
    }

    /// A finished flow's record to the store.
    fn record(&self, flow: &FlowRecord, facts: &AlertFacts<'_>) {
        if let Some(store) = &self.store {
            store.record(self.record_line(flow, facts, None));
        }
    }

    /// The JSON record of `flow` (for the store, without `observer`), or
    /// of one of its findings (an alert, with it).
    fn record_line(
        &self,
        flow: &FlowRecord,
        facts: &AlertFacts<'_>,
        finding: Option<&FindingView<'_>>,
    ) -> Vec<u8> {
        let (intel, names, vendor) = (facts.intel_json, facts.names, facts.vendor);
        let mut flow_json = FlowJson::default();
        let Some(view) = finding else {
            flow_json.render(flow, &self.file, intel, names, vendor, None);
            // A copy of exactly the record's size: store records wait in a
            // queue of up to 65,536, where the rendering buffer's spare
            // room (up to as much again) would be held too.
            return flow_json.bytes().to_vec();
        };
        flow_json.render(flow, &self.file, intel, names, vendor, self.observer.as_deref());
        // Alerts are few: their rule is rendered for each.
        let rule_json = rule_json(view.pack, view.rule);
        let mut line = Vec::with_capacity(flow_json.bytes().len() + 1024);
        flow_json.write_finding(&mut line, FindingRecord { view, rule_json: &rule_json });
        line
    }

    /// Flow `flow` has alerts: its evidence is kept; the file holding it.
    fn evidence_of(
        &mut self,
        flow: &FlowRecord,
        policy: &Policy,
        findings: &[Finding],
    ) -> Option<Arc<Path>> {
        self.evidence.as_ref()?;
        let rules: Vec<String> = findings
            .iter()
            .map(|f| {
                let (_, rule) = policy.rule(&f.matched);
                format!("{} ({})", rule.id, rule.severity)
            })
            .collect();
        let comment = crate::pipeline::evidence::packet_comment(flow, &rules);
        let result = self.evidence.as_mut()?.flagged(flow.id, &comment);
        match result {
            Ok(file) => file,
            Err(e) => {
                self.evidence_failed(&e);
                None
            }
        }
    }

    fn evidence_packet(&mut self, flows: &[u64], ts: Timestamp, data: &[u8], wire_len: u32) {
        if let Some(Err(e)) = self.evidence.as_mut().map(|ev| ev.packet(flows, ts, data, wire_len))
        {
            self.evidence_failed(&e);
        }
    }

    fn flush_evidence(&mut self) {
        if let Some(Err(e)) = self.evidence.as_mut().map(LiveEvidence::flush) {
            self.evidence_failed(&e);
        }
    }

    /// Writing evidence failed (a full disk): said once, and no more is
    /// kept; capture and alerts go on.
    fn evidence_failed(&mut self, e: &std::io::Error) {
        if let Some(ev) = self.evidence.take() {
            // The counts stay in the statistics.
            self.evidence_before_failure = (ev.written, ev.dropped);
            self.log(format!("evidence: {e}; no more evidence is kept"));
        }
    }
}

/// A period's reports in the three formats, made as its parts finish: the
/// JSON into a temporary file, so that a period of many findings is not
/// held in memory.
struct PeriodDocuments {
    json: ReportSink<std::fs::File>,
    text: ReportSink<Vec<u8>>,
    html: ReportSink<Vec<u8>>,
    /// The first error (of the JSON's temporary files).
    failed: Option<std::io::Error>,
}

impl PeriodDocuments {
    fn open() -> std::io::Result<Self> {
        let file = tempfile::tempfile().map_err(|e| {
            std::io::Error::new(e.kind(), format!("temporary file of the JSON report: {e}"))
        })?;
        let sink = |format| ReportSink::new(format, false, false, Vec::new());
        Ok(PeriodDocuments {
            json: ReportSink::new(ReportFormat::Json, false, false, file),
            text: sink(ReportFormat::Text),
            html: sink(ReportFormat::Html),
            failed: None,
        })
    }

    fn part(&mut self, part: &AuditReport, json: &IntelJsonCache) {
        if self.failed.is_some() {
            return;
        }
        // Text and HTML are made of the digest alone.
        if let Err(e) = self.json.part(part, json) {
            self.failed = Some(e);
        }
    }

    fn finish(mut self, run: &AuditRun) -> std::io::Result<ReportDocuments> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.json.finish(run)?;
        self.text.finish(run)?;
        self.html.finish(run)?;
        let mut json = self.json.into_inner();
        json.rewind()?;
        Ok(ReportDocuments { json, text: self.text.into_inner(), html: self.html.into_inner() })
    }
}
