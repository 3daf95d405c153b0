//! `xborder live`: opens the capture, drops privileges, wires signals and
//! writes what the analysis hands over (alerts, reports, statistics, log
//! lines) on an output thread of its own.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;

use anyhow::Context;

use xborder::files::{write_atomically, ReportFile};
use xborder::live::{
    self, CaptureOptions, Event, EvidenceSettings, Knowledge, LiveCapture, Loader, ReportDocuments,
    Settings, Signals,
};
use xborder::policy::Severity;
use xborder::report::{findings, AuditReport};

use crate::cli::LiveArgs;
use crate::{config, flow_settings, load_policy};

/// Alerts and reports waiting for the output thread; beyond it alerts are
/// dropped (and counted), never the capture.
const EVENT_QUEUE: usize = 65_536;
/// Packet batches (of up to 256 packets) waiting for analysis: 131,072
/// packets, over half a second at 200,000 packets/s, at most ~200 MB of
/// full-size frames.
const PACKET_QUEUE: usize = 512;

pub fn run_live(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    let a = &args.analysis;
    let sources = config::intel_sources(&a.intel)?;
    let load = {
        let (sources, no_intel) = (sources.clone(), a.no_intel);
        let rules = a.rules.clone();
        move || -> anyhow::Result<Knowledge> {
            let policy = load_policy(&rules, &sources)?;
            let intel = if no_intel { None } else { Some(sources.load()?) };
            Ok(Knowledge { policy, intel })
        }
    };
    // Everything that can fail on a typo fails before the capture starts.
    let knowledge = Knowledge {
        policy: load_policy(&a.rules, &sources)?,
        intel: if a.no_intel { None } else { Some(sources.load()?) },
    };
    let loader: Loader = Arc::new(move || load().map_err(|e| format!("{e:#}")));
    let capture = LiveCapture::open(&CaptureOptions {
        interface: args.interface.clone(),
        bpf: args.bpf.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_size: args.buffer_size,
        immediate: args.immediate,
    })?;
    let mut out = Outputs::open(args)?;
    if let Some(user) = &args.user {
        drop_privileges(user)?;
    }
    let signals = Signals::default();
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, signals.stop.clone())
            .context("cannot install signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, signals.reload.clone())
        .context("cannot install signal handlers")?;

    let (timeouts, local, tunnels) = flow_settings(a)?;
    let settings = Settings {
        timeouts,
        local,
        tunnels,
        no_names: a.no_names,
        max_flows: args.max_flows,
        alert_delay: args.alert_delay,
        report_every: args.report_every,
        stats_every: args.stats_every,
        queue_batches: PACKET_QUEUE,
        observer: args.fleet.observer.clone(),
        report_documents: args.report_dir.is_some(),
        evidence: args
            .evidence_dir
            .as_ref()
            .map(|dir| EvidenceSettings { dir: dir.clone(), max_bytes: args.evidence_max_bytes }),
    };
    warn!(
        "xborder: capturing on {} (link type {}){}",
        args.interface,
        capture.link_type.0,
        args.bpf.as_ref().map_or_else(String::new, |f| format!(", filter \"{f}\""))
    );
    let (events, incoming) = mpsc::sync_channel(EVENT_QUEUE);
    let writer = thread::Builder::new()
        .name("output".into())
        .spawn(move || out.run(incoming))
        .context("cannot start the output thread")?;
    let store = match &args.fleet.clickhouse {
        Some(url) => {
            use xborder::clickhouse::{spool::Spool, ClickHouse, ClickHouseError, LiveSender};
            let client = ClickHouse::new(url, &args.fleet.clickhouse_database);
            let dir = crate::spool_dir(args.fleet.spool_dir.as_deref())?;
            match client.check() {
                Ok(()) => {}
                // Down at the start: spooled, retried in the background.
                Err(e @ ClickHouseError::Unreachable { .. }) => {
                    warn!(
                        "xborder: {e}; records are spooled to {} until it answers",
                        dir.display()
                    );
                }
                Err(e) => return Err(e.into()),
            }
            let observer = args.fleet.observer.clone().unwrap_or_else(crate::host_name);
            let spool = Spool::new(dir, args.fleet.spool_max_bytes);
            Some(
                LiveSender::start(client, spool, observer)
                    .context("cannot start the ClickHouse sender")?,
            )
        }
        None => None,
    };
    let result = live::run(capture, settings, knowledge, loader, signals, events, store);
    writer.join().map_err(|_| anyhow::anyhow!("the output thread failed"))??;
    let stats = result?;
    warn!(
        "xborder: stopped; {} packets received, {} dropped by the kernel, {} by the interface, \
         {} by xborder; {} alerts",
        stats.received,
        stats.kernel_dropped,
        stats.interface_dropped,
        stats.queue_dropped,
        stats.alerts
    );
    Ok(ExitCode::SUCCESS)
}

/// Sets the user, its group and supplementary groups; the capture handle
/// stays open.
fn drop_privileges(name: &str) -> anyhow::Result<()> {
    use nix::unistd::{initgroups, setgid, setuid, User};
    let user = User::from_name(name)
        .with_context(|| format!("--user {name}: cannot look the user up"))?
        .ok_or_else(|| anyhow::anyhow!("--user {name}: no such user"))?;
    let cname = std::ffi::CString::new(name).context("--user: bad name")?;
    initgroups(&cname, user.gid).with_context(|| format!("--user {name}: cannot set groups"))?;
    setgid(user.gid).with_context(|| format!("--user {name}: cannot set the group"))?;
    setuid(user.uid).with_context(|| format!("--user {name}: cannot set the user"))?;
    Ok(())
}

/// Where alerts and reports go.
struct Outputs {
    alerts_path: Option<PathBuf>,
    alerts: Box<dyn Write + Send>,
    syslog: Option<UnixDatagram>,
    report_dir: Option<PathBuf>,
    reports: u64,
}

fn open_append(path: &Path) -> anyhow::Result<Box<dyn Write + Send>> {
    let f: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open for alerts", path.display()))?;
    Ok(Box::new(BufWriter::new(f)))
}

impl Outputs {
    fn open(args: &LiveArgs) -> anyhow::Result<Self> {
        let alerts_path = args.alerts.clone().filter(|p| p.as_os_str() != "-");
        let alerts = match &alerts_path {
            Some(p) => open_append(p)?,
            None => Box::new(io::stdout()),
        };
        let syslog = if args.syslog {
            let s = UnixDatagram::unbound().context("--syslog: cannot create a socket")?;
            let path = &args.syslog_socket;
            s.connect(path).with_context(|| format!("--syslog: {}", path.display()))?;
            Some(s)
        } else {
            None
        };
        if let Some(dir) = &args.report_dir {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("{}: cannot create the report directory", dir.display())
            })?;
        }
        Ok(Self { alerts_path, alerts, syslog, report_dir: args.report_dir.clone(), reports: 0 })
    }

    /// Writes every event; a failure (a full disk, a closed pipe) is logged
    /// and the next event tried: a gateway keeps running.
    fn run(&mut self, events: mpsc::Receiver<Event>) -> anyhow::Result<()> {
        for event in events {
            if let Err(e) = self.write(event) {
                warn!("xborder: {e:#}");
            }
        }
        self.alerts.flush()?;
        Ok(())
    }

    fn write(&mut self, event: Event) -> anyhow::Result<()> {
        {
            match event {
                Event::Alert(line, severity) => {
                    let context = || match &self.alerts_path {
                        Some(p) => format!("{}: cannot write the alert", p.display()),
                        None => "cannot write the alert to standard output".to_owned(),
                    };
                    self.alerts.write_all(&line).with_context(context)?;
                    self.alerts.write_all(b"\n").with_context(context)?;
                    // One alert is one line a reader can act on now.
                    self.alerts.flush().with_context(context)?;
                    if let Some(s) = &self.syslog {
                        // RFC 3164, facility daemon (3).
                        let level = match severity {
                            Severity::Critical => 2,
                            Severity::High => 3,
                            Severity::Medium => 4,
                            Severity::Low => 5,
                            Severity::Info => 6,
                        };
                        let mut msg =
                            format!("<{}>xborder[{}]: ", 3 * 8 + level, std::process::id())
                                .into_bytes();
                        msg.extend_from_slice(&line);
                        // A full or absent syslog must not stop alerts.
                        let _ = s.send(&msg);
                    }
                }
                Event::Report(report, documents) => self.report(&report, documents.as_deref())?,
                Event::Stats(st) => warn!(
                    "xborder: stats: {} received, dropped {} by the kernel, {} by the interface, \
                     {} by xborder; {} flows alive, {} evicted; {} alerts ({} dropped){}",
                    st.received,
                    st.kernel_dropped,
                    st.interface_dropped,
                    st.queue_dropped,
                    st.live_flows,
                    st.evicted_flows,
                    st.alerts,
                    st.alerts_dropped,
                    st.store.map_or_else(String::new, |s| format!(
                        "; clickhouse: {} sent, {} spooled, {} retried, {} dropped",
                        s.sent, s.spooled, s.retried, s.dropped
                    ))
                ),
                Event::Log(line) => warn!("xborder: {line}"),
                Event::Reopen => {
                    if let Some(p) = &self.alerts_path {
                        self.alerts.flush()?;
                        self.alerts = open_append(p)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes a report's documents (json, text and html), each atomically;
    /// without a report directory only the last report's headline goes to
    /// the log.
    fn report(
        &mut self,
        report: &AuditReport,
        documents: Option<&ReportDocuments>,
    ) -> anyhow::Result<()> {
        let last = report.live.as_ref().is_some_and(|l| l.last);
        let (Some(dir), Some(documents)) = (&self.report_dir, documents) else {
            if last {
                warn!("xborder: {}", findings::headline(report));
            }
            return Ok(());
        };
        self.reports += 1;
        let end = report.live.as_ref().map_or_else(xborder::time::Timestamp::wall_clock, |l| l.end);
        let stamp: String = String::from_utf8_lossy(&end.rfc3339()[..19])
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == 'T')
            .collect();
        let base =
            format!("xborder-{stamp}Z-{:04}{}", self.reports, if last { "-final" } else { "" });
        let context = || format!("{}: cannot write the report", dir.display());
        let mut json =
            ReportFile::create(&dir.join(format!("{base}.json"))).with_context(context)?;
        std::io::copy(&mut &documents.json, json.writer()).with_context(context)?;
        json.commit().with_context(context)?;
        for (extension, bytes) in [("txt", &documents.text), ("html", &documents.html)] {
            write_atomically(&dir.join(format!("{base}.{extension}")), bytes)
                .with_context(context)?;
        }
        if last {
            warn!("xborder: {}", findings::headline(report));
            warn!("xborder: final report: {}", dir.join(format!("{base}.json")).display());
        }
        Ok(())
    }
}
