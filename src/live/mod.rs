//! `xborder live`: the audit pipeline on a network interface, for months.
//!
//! Two threads: the capture thread only copies packets from libpcap into
//! batches on a bounded queue (a full queue drops the batch and counts it:
//! capture never waits); the analysis thread (the caller's) runs decode →
//! flow → names → intel → policy on trace timestamps and hands alerts and
//! reports to an output thread through a bounded queue of its own (a full
//! one drops the alert and counts it: analysis never waits on output).
//!
//! Time: flows, timeouts and alerts use trace time (packet timestamps),
//! carried forward by the wall clock while no packet arrives so that flows
//! end on time in a quiet network; report periods and statistics use the
//! wall clock.

mod capture;
mod evidence;

pub use capture::{CaptureOptions, LiveCapture};
pub use evidence::EvidenceSettings;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
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
use crate::pipeline::{self, observe_frame, Counts, Frame};
use crate::policy::{finding_country, FlowFacts, Policy, Severity};
use crate::report::findings::FindingView;
use crate::report::flows::{write_record, IntelJson};
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
    /// A periodic report, or the last one.
    Report(Box<AuditReport>),
    Stats(CaptureStats),
    /// A line for the log (standard error).
    Log(String),
    /// SIGHUP: reopen output files (log rotation).
    Reopen,
}

/// Forgets looked-up addresses beyond this many (months of traffic).
const INTEL_CACHE_LIMIT: usize = 200_000;

/// A report period also ends after this many finished flows, so that the
/// flows kept for its report stay bounded (about 200 MB) whatever
/// `--report-every` says, or without it.
const PERIOD_FLOWS: usize = 1_000_000;

/// The analysis thread's state.
struct Analysis {
    settings: Settings,
    table: FlowTable,
    names: Option<NameInspector>,
    knowledge: Knowledge,
    /// The JSON string of the interface name, for the records' `file`.
    file: Vec<u8>,
    interface: String,
    intel: HashMap<IpAddr, Arc<Intel>>,
    /// Flows whose early alert is due at the given trace time.
    pending: VecDeque<(Timestamp, FlowKey, u64)>,
    period: AuditReport,
    period_start: Timestamp,
    frames: u64,
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
    let mut a = Analysis {
        names: (!settings.no_names).then(NameInspector::new),
        settings,
        table,
        knowledge,
        file,
        interface,
        intel: HashMap::new(),
        pending: VecDeque::new(),
        period: AuditReport::default(),
        period_start: Timestamp::wall_clock(),
        frames: 0,
        events,
        alerts: Arc::new(AtomicU64::new(0)),
        alerts_dropped: Arc::new(AtomicU64::new(0)),
        evidence,
        evidence_before_failure: (0, 0),
        store,
        store_counters: None,
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
    for f in table.finish(&mut anomalies) {
        a.finished(f);
    }
    a.period.anomalies = anomalies;
    a.flush_evidence();
    // What is left goes to the store (or its spool) before the final
    // statistics count it.
    if let Some(store) = a.store.take() {
        let counters = store.counters.clone();
        store.finish();
        a.store_counters = Some(counters);
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
            self.flush_evidence();
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
            if signals.reload.swap(false, Ordering::Relaxed) && reloading.is_none() {
                let (tx, rx) = mpsc::channel();
                let loader = loader.clone();
                let spawned = thread::Builder::new()
                    .name("reload".into())
                    .spawn(move || drop(tx.send(loader())));
                match spawned {
                    Ok(_) => reloading = Some(rx),
                    Err(e) => self.log(format!("reload failed: {e}")),
                }
                self.send(Event::Reopen);
            }
            if let Some(rx) = &reloading {
                match rx.try_recv() {
                    Ok(Ok(k)) => {
                        self.knowledge = k;
                        self.intel.clear();
                        reloading = None;
                        self.log("reloaded rule packs and intelligence data".into());
                    }
                    Ok(Err(e)) => {
                        reloading = None;
                        self.log(format!("reload failed, keeping the rules and data in use: {e}"));
                    }
                    Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => reloading = None,
                }
            }
            if let Some(every) = self.settings.stats_every {
                if stats_at.elapsed() >= every {
                    stats_at = Instant::now();
                    let stats = self.stats(counters);
                    self.send(Event::Stats(stats));
                }
            }
            let due = self.settings.report_every.is_some_and(|every| report_at.elapsed() >= every);
            if due || self.period.flows.len() >= PERIOD_FLOWS {
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
            if let Some(ev) = &mut self.evidence {
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
                    if let Err(e) = ev.packet(&flows[..n], ts, data, wire_len) {
                        self.evidence_failed(&e);
                    }
                }
            }
            last = Some(ts);
        }
        last
    }

    fn stats(&self, c: &CaptureCounters) -> CaptureStats {
        CaptureStats {
            received: c.received.load(Ordering::Relaxed),
            kernel_dropped: c.kernel_dropped.load(Ordering::Relaxed),
            interface_dropped: c.interface_dropped.load(Ordering::Relaxed),
            queue_dropped: c.queue_dropped.load(Ordering::Relaxed),
            live_flows: self.table.live_flows() as u64,
            evicted_flows: self.table.evicted(),
            alerts: self.alerts.load(Ordering::Relaxed),
            alerts_dropped: self.alerts_dropped.load(Ordering::Relaxed),
            evidence_packets: self
                .evidence
                .as_ref()
                .map_or(self.evidence_before_failure.0, |e| e.written),
            evidence_dropped: self
                .evidence
                .as_ref()
                .map_or(self.evidence_before_failure.1, |e| e.dropped),
            store: self
                .store
                .as_ref()
                .map(|s| s.counters.clone())
                .or_else(|| self.store_counters.clone())
                .map(|c| StoreStats {
                    sent: c.sent.load(Ordering::Relaxed),
                    spooled: c.spooled.load(Ordering::Relaxed),
                    retried: c.retried.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                }),
        }
    }

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

    fn intel(&mut self, ip: IpAddr) -> Option<Arc<Intel>> {
        let db = self.knowledge.intel.as_ref()?;
        if self.intel.len() >= INTEL_CACHE_LIMIT {
            self.intel.clear();
        }
        Some(self.intel.entry(ip).or_insert_with(|| Arc::new(db.lookup(ip))).clone())
    }

    /// The early alerts of a live flow whose names should be known by now.
    fn early(&mut self, key: &FlowKey, id: u64) {
        let Some(flow) = self.table.snapshot(key, id) else {
            return; // Already over: its end alerts say everything.
        };
        let remote = flow.remote().map(|r| r.ip);
        let names = self.names.as_ref().map(|n| n.peek(id, remote, flow.start));
        let vendor = self.vendor(names.as_ref());
        if !self.alert(&flow, names.as_ref(), vendor.as_ref(), true) {
            if let Some(ev) = &mut self.evidence {
                ev.cleared(id);
            }
        }
    }

    /// The vendor of a flow's names (`None` without intelligence).
    fn vendor(&self, names: Option<&FlowNames>) -> Option<VendorMatch> {
        let db = self.knowledge.intel.as_ref()?;
        db.vendors.of_names(names?)
    }

    /// A finished flow: its end alerts, and into the period's report.
    fn finished(&mut self, flow: FlowRecord) {
        let remote = flow.remote().map(|r| r.ip);
        let names = self.names.as_mut().map(|n| n.finish(flow.id, remote, flow.start));
        let vendor = self.vendor(names.as_ref());
        self.alert(&flow, names.as_ref(), vendor.as_ref(), false);
        if let Some(ev) = &mut self.evidence {
            ev.ended(flow.id);
        }
        if self.store.is_some() {
            let intel = remote.and_then(|ip| self.intel(ip));
            let intel_json = intel.as_deref().map(IntelJson::new);
            let mut line = Vec::with_capacity(1024);
            let fields = intel_json.as_ref().map(IntelJson::fields);
            write_record(
                &mut line,
                &flow,
                &self.file,
                fields,
                names.as_ref(),
                vendor.as_ref(),
                None,
            );
            if let Some(store) = &self.store {
                store.record(line);
            }
        }
        if let Some(v) = vendor {
            self.period.vendors.insert(flow.id, v);
        }
        if let Some(ip) = remote {
            if let Some(i) = self.intel(ip) {
                self.period.remote_intel.insert(ip, i);
            }
        }
        if let Some(n) = names.filter(|n| *n != FlowNames::default()) {
            self.period.names.insert(flow.id, n);
        }
        self.period.flows.push(flow);
    }

    fn alert(
        &mut self,
        flow: &FlowRecord,
        names: Option<&FlowNames>,
        vendor: Option<&VendorMatch>,
        early: bool,
    ) -> bool {
        let intel = flow.remote().and_then(|r| self.intel(r.ip));
        let facts = FlowFacts { flow, intel: intel.as_deref(), names, vendor };
        let matches = self.knowledge.policy.evaluate(&facts);
        if matches.is_empty() {
            return false;
        }
        let evidence_file = self.evidence_of(flow, &matches);
        let intel_json = intel.as_deref().map(IntelJson::new);
        for matched in matches {
            let (pack, rule) = self.knowledge.policy.rule(&matched);
            let severity = rule.severity;
            let finding = Finding {
                flow: 0,
                country: finding_country(rule, intel.as_deref(), vendor),
                matched: matched.clone(),
                early,
            };
            let view = FindingView {
                finding: &finding,
                flow,
                pack,
                rule,
                sides: flow.sides(),
                intel: intel.as_deref(),
                names,
                vendor,
                file: Path::new(&self.interface),
            };
            let mut line = Vec::with_capacity(1024);
            write_record(
                &mut line,
                flow,
                &self.file,
                intel_json.as_ref().map(IntelJson::fields),
                names,
                vendor,
                Some(&view),
            );
            if let Some(observer) = &self.settings.observer {
                let mut name = Vec::new();
                escape_into(&mut name, observer);
                crate::report::flows::with_observer(&mut line, 0, &name);
            }
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
            self.send(Event::Alert(line, severity));
        }
        true
    }

    /// Flow `flow` has alerts: its evidence is kept; the file holding it.
    fn evidence_of(
        &mut self,
        flow: &FlowRecord,
        matches: &[crate::policy::RuleMatch],
    ) -> Option<Arc<Path>> {
        self.evidence.as_ref()?;
        let rules: Vec<String> = matches
            .iter()
            .map(|m| {
                let (_, rule) = self.knowledge.policy.rule(m);
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

    /// Hands the period's report over and starts the next period.
    fn report(&mut self, stats: CaptureStats, last: bool, peak_live_flows: usize) {
        let end = Timestamp::wall_clock();
        let mut report = std::mem::take(&mut self.period);
        report.flows.sort_unstable_by_key(|f| (f.start, f.first_frame, f.id));
        report.inputs.push(InputSummary {
            path: PathBuf::from(&self.interface),
            format: None,
            packets: report.totals.packets,
            error: None,
        });
        report.peak_live_flows = peak_live_flows;
        report.observer = self.settings.observer.clone();
        if let Some(db) = &self.knowledge.intel {
            report.provenance = db.provenance.clone();
        }
        pipeline::apply_policy(&mut report, self.knowledge.policy.clone());
        report.digest = crate::report::digest::Digest::of(&report);
        report.live = Some(LivePeriod {
            interface: self.interface.clone(),
            start: self.period_start,
            end,
            last,
            stats,
        });
        self.period_start = end;
        self.send(Event::Report(Box::new(report)));
    }
}
