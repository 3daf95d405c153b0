//! The `xborder` binary: parse arguments, run, map the outcome to an exit
//! code (0 clean, 2 error).

/// A line on standard error. A full or closed standard error must not
/// panic (`eprintln!` does) nor change the exit status: the line is lost.
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod config;
mod live_cmd;
mod lookup;
mod progress;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use cli::{AnalysisArgs, AuditArgs, Cli, Command, IntelArgs, RulesCommand};
use xborder::files::ReportFile;
use xborder::flow::{FlowTimeouts, LocalNetworks};
use xborder::intel::IntelSources;
use xborder::pipeline::{
    self, Audit, AuditConfig, EvidenceCounts, EvidenceSink, ReportFormat, ReportSink,
};
use xborder::policy::{self, Catalogues, Level, Policy};
use xborder::report::findings;

/// `xborder man DIR`: the manual pages, from the same definitions as
/// `--help` (clap_mangen), one per command and subcommand.
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let command = <Cli as clap::CommandFactory>::command();
    let mut pages = vec![(String::from("xborder"), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("xborder-{}", sub.get_name());
        for subsub in sub.get_subcommands() {
            pages.push((format!("{name}-{}", subsub.get_name()), subsub.clone()));
        }
        pages.push((name, sub.clone()));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page.name(name.clone())).render(&mut bytes)?;
        xborder::files::write_atomically(&path, &bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses `-o` naming a file the run reads: one given, or a capture
/// inside a directory given (the report would replace it). A previous
/// report in a walked directory is no capture and may be replaced.
fn refuse_input_as_output(output: &std::path::Path, inputs: &[PathBuf]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    use xborder::capture::{open_capture, InputSpec, Opened};
    let Ok(out) = std::fs::metadata(output) else { return Ok(()) };
    let out_canonical = std::fs::canonicalize(output).ok();
    let is_capture = || {
        let spec = InputSpec { path: output.to_owned(), from_directory: true };
        out.is_file() && matches!(open_capture(&spec), Ok(Opened::Reader(_)))
    };
    for input in inputs {
        let Ok(m) = std::fs::metadata(input) else { continue };
        let same = (m.dev(), m.ino()) == (out.dev(), out.ino());
        let inside = m.is_dir()
            && std::fs::canonicalize(input)
                .ok()
                .zip(out_canonical.as_ref())
                .is_some_and(|(dir, out)| out.starts_with(dir))
            && is_capture();
        if same || inside {
            anyhow::bail!(
                "{}: the report would overwrite an input of the run ({}); choose another -o",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Audit(mut args) => {
            // `-o -`: standard output, as `-` is standard input among the
            // captures (not a file named `-`).
            if args.output.as_deref().is_some_and(|o| o.as_os_str() == "-") {
                args.output = None;
            }
            run_audit(&args)
        }
        Command::Lookup(args) => lookup::run_lookup(&args),
        Command::Db(cmd) => lookup::run_db(cmd),
        Command::Rules(RulesCommand::Check { files, intel }) => run_rules_check(&files, &intel),
        Command::Live(args) => live_cmd::run_live(&args),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer
            // fails (a closed pipe).
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "xborder", &mut script);
            io::stdout().write_all(&script).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Man { dir } => write_man_pages(&dir),
        Command::Clickhouse(cmd) => run_clickhouse(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Our errors already name their cause; the chain would repeat it.
            warn!("xborder: {err}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// The flow settings both `audit` and `live` take.
fn flow_settings(
    a: &AnalysisArgs,
) -> anyhow::Result<(FlowTimeouts, LocalNetworks, xborder::decode::Decapsulation)> {
    let timeouts = FlowTimeouts {
        tcp: a.tcp_timeout,
        tcp_closed: a.tcp_close_timeout,
        udp: a.udp_timeout,
        other: a.other_timeout,
    };
    let local = if a.local_nets.is_empty() {
        LocalNetworks::default()
    } else {
        LocalNetworks::new(a.local_nets.clone())
    };
    Ok((timeouts, local, config::tunnel_settings(a)?))
}

/// The rule packs in force (`--rules`, else the shipped ones), checked
/// against the catalogue the intelligence sources give; warnings printed.
fn load_policy(rules: &[std::path::PathBuf], sources: &IntelSources) -> anyhow::Result<Policy> {
    let (providers, overlay_warnings) = sources.checked_catalogue()?;
    for w in overlay_warnings {
        warn!("xborder: {w}");
    }
    let vendors = sources.vendors()?;
    let catalogues = Catalogues { providers: &providers, vendors: &vendors };
    let (policy, warnings) = if rules.is_empty() {
        policy::shipped::policy(catalogues)?
    } else {
        Policy::load(rules, catalogues)?
    };
    for w in warnings {
        warn!("xborder: {w}");
    }
    Ok(policy)
}

/// `--threads N`: the cores the audit runs on, all it may use by default.
/// The packets' shards are N less the two threads that read and finish
/// (intelligence, rules, outputs), at least 1, which then runs on the
/// reader's thread; measured on 2 cores (1M packets of gateway traffic):
/// one shard 481 ms, two 557 ms, since the finishing thread is the
/// busiest and a shard thread adds a copy of every packet. N above the
/// cores makes more shards than can run at once, with the same answers.
/// Returns N and the shards.
fn audit_threads(threads: Option<u16>) -> (usize, usize) {
    let n = threads.map_or_else(available_cores, usize::from);
    (n, n.saturating_sub(2).max(1))
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// With `n` below the cores this process may use, keeps it to `n` of them
/// (see [`keep_to_cores`]), so that `--threads 1` leaves the others to the
/// machine's own work, as `taskset` would. Call it before any thread
/// starts: threads keep to the cores of the thread that starts them. A
/// refusal is said (unless `quiet`) and the run goes on on every core:
/// the answers are the same.
fn keep_audit_to(n: usize, quiet: bool) {
    let cores = available_cores();
    if n < cores {
        if let Err(e) = keep_to_cores(n) {
            if !quiet {
                warn!("xborder: --threads {n}: cannot keep to {n} of the cores ({e}); using all {cores}");
            }
        }
    }
}

/// Keeps this thread, and every thread it starts from now on, to `n` of
/// the cores it may run on: the one it runs on and the next ones it may
/// use. The kernel starts a process on a little-used core, so audits run
/// side by side (`xargs -P`) each keep to their own, not all to one.
fn keep_to_cores(n: usize) -> nix::Result<()> {
    use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0))?;
    let here = sched_getcpu().unwrap_or(0) % CpuSet::count();
    let mut kept = CpuSet::new();
    let mut left = n;
    for cpu in (here..CpuSet::count()).chain(0..here) {
        if left == 0 {
            break;
        }
        if allowed.is_set(cpu)? {
            kept.set(cpu)?;
            left -= 1;
        }
    }
    sched_setaffinity(Pid::from_raw(0), &kept)
}

fn run_audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let a = &args.analysis;
    let (timeouts, local, tunnels) = flow_settings(a)?;
    let format = args.format;
    if args.flows && matches!(format, ReportFormat::Text | ReportFormat::Csv | ReportFormat::Html) {
        anyhow::bail!("--flows needs --format jsonl or json");
    }
    let (threads, shards) = audit_threads(args.threads);
    let progress = Arc::new(pipeline::AuditProgress::default());
    let config = AuditConfig {
        paths: args.paths.clone(),
        timeouts,
        no_names: a.no_names,
        local,
        tunnels,
        max_flows: Some(args.max_flows),
        progress: Some(progress.clone()),
        shards,
    };
    // Rules, the intelligence files and the output are checked before the
    // captures are read: a typo should not cost a long run.
    let sources = config::intel_sources(&a.intel)?;
    let policy = load_policy(&a.rules, &sources)?;
    let mut output = match &args.output {
        Some(path) => {
            refuse_input_as_output(path, &args.paths)?;
            Some(
                ReportFile::create(path)
                    .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?,
            )
        }
        // A closed standard output cannot be told from /dev/null here:
        // Rust's start-up opens /dev/null on a closed descriptor 0, 1 or 2.
        None => None,
    };
    let evidence = match &args.evidence {
        Some(path) => {
            if path.as_os_str() == "-" {
                // `-o -` is standard output; the evidence never is.
                anyhow::bail!(
                    "--evidence -: the evidence is a pcapng file; name one \
                     (standard output is the report's)"
                );
            }
            if args.paths.iter().any(|p| p.as_os_str() == "-") {
                anyhow::bail!(
                    "--evidence reads the inputs a second time, which standard input cannot be: \
                     save it to a file first"
                );
            }
            refuse_input_as_output(path, &args.paths)?;
            let same = |a: &std::path::Path, b: &std::path::Path| {
                std::path::absolute(a).ok() == std::path::absolute(b).ok()
                    || matches!(
                        (std::fs::canonicalize(a), std::fs::canonicalize(b)),
                        (Ok(x), Ok(y)) if x == y
                    )
            };
            if args.output.as_deref().is_some_and(|o| same(o, path)) {
                anyhow::bail!("{}: the report and the evidence would be one file", path.display());
            }
            let file = ReportFile::create(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?;
            Some((path, file, config.clone()))
        }
        None => None,
    };
    let mut store = match &args.fleet.clickhouse {
        Some(url) => {
            use xborder::clickhouse::{spool::Spool, ClickHouse, ClickHouseError, ClickHouseSink};
            let client = ClickHouse::new(url, &args.fleet.clickhouse_database);
            let spool =
                Spool::new(spool_dir(args.fleet.spool_dir.as_deref())?, args.fleet.spool_max_bytes);
            // A server that answers wrongly is an error now; one that
            // cannot be reached gets the records later, from the spool.
            let reachable = match client.check() {
                Ok(()) => true,
                Err(e @ ClickHouseError::Unreachable { .. }) => {
                    warn!("xborder: {e}; the records go to {}", spool.dir.display());
                    false
                }
                Err(e) => return Err(e.into()),
            };
            let observer = args.fleet.observer.clone().unwrap_or_else(host_name);
            let mut sink = ClickHouseSink::new(client, spool, observer, reachable);
            sink.batch_records = args.fleet.clickhouse_batch;
            Some(sink)
        }
        None => None,
    };
    let to_stdout = args.output.is_none();
    let colour = to_stdout
        && format == ReportFormat::Text
        && io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let report_out: Box<dyn Write + Send> = match output.as_mut() {
        Some(f) => Box::new(BufWriter::new(f.writer())),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut report_sink = ReportSink::new(format, args.flows, colour, report_out);
    let mut evidence = evidence;
    let mut evidence_sink = evidence.as_mut().map(|(_, file, config)| {
        EvidenceSink::new(
            config.clone(),
            args.evidence_min_severity.into(),
            BufWriter::new(file.writer()),
        )
    });
    // In this order: the report, then the evidence, then the fleet (a
    // spool that cannot be written must not cost the evidence file).
    let render_intel_json = format.renders_intel_json() || store.is_some();
    let mut sinks: Vec<&mut (dyn pipeline::Sink + Send)> = vec![&mut report_sink];
    if let Some(sink) = &mut evidence_sink {
        sinks.push(sink);
    }
    if let Some(sink) = &mut store {
        sinks.push(sink);
    }
    // Records streamed to a terminal would be cut by the progress line.
    let streams_to_terminal = to_stdout
        && matches!(format, ReportFormat::Jsonl | ReportFormat::Csv)
        && io::stdout().is_terminal();
    // The run's first thread starts here: from now on they keep to the
    // same cores.
    keep_audit_to(threads, args.quiet);
    let display = progress::ProgressDisplay::start(&progress, args.quiet || streams_to_terminal);
    let (run, outcomes) = pipeline::audit(
        Audit {
            config,
            intel: (!a.no_intel).then_some(sources),
            policy,
            render_intel_json,
            observer: args.fleet.observer.clone(),
            keep: format.digest(),
        },
        &mut sinks,
    )?;
    drop(sinks);
    drop(display);
    let mut outcomes = outcomes.into_iter();
    let report = &run.report;
    for (path, reason) in &report.skipped {
        warn!("xborder: skipping {}: {reason}", path.display());
    }
    for input in &report.inputs {
        if let Some(err) = &input.error {
            warn!("xborder: {err}");
        }
    }
    let written = outcomes.next().unwrap_or(Ok(()));
    drop(report_sink);
    let target = args.output.as_ref().map_or("standard output".into(), |p| p.display().to_string());
    match (written, output) {
        (Ok(()), Some(f)) => f.commit().map_err(|e| anyhow::anyhow!("{target}: {e}"))?,
        (Ok(()), None) => {}
        // The reader went away (`| head`): writing stops quietly and the
        // exit status stays what the run found.
        (Err(e), None) if e.kind() == io::ErrorKind::BrokenPipe => {}
        (Err(e), _) => anyhow::bail!("{target}: {e}"),
    }
    let evidence_written =
        evidence_sink.map(|sink| (outcomes.next().unwrap_or(Ok(())), sink.written));
    if let (Some((path, file, _)), Some((written, counts))) = (evidence, evidence_written) {
        written.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let EvidenceCounts { flows, packets, omitted } = counts;
        file.commit().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if !args.quiet {
            warn!(
                "evidence: {} packets of {} flagged flows in {}",
                xborder::units::grouped(packets),
                xborder::units::grouped(flows as u64),
                path.display()
            );
        }
        if omitted > 0 {
            warn!(
                "xborder: evidence: {} fragments of flagged flows left out (more out-of-order \
                 fragments waiting than the evidence pass holds)",
                xborder::units::grouped(omitted)
            );
        }
    }
    if let Some(sink) = &mut store {
        let dir = sink.spool.dir.display().to_string();
        let written = outcomes.next().unwrap_or(Ok(()));
        written.map_err(|e| anyhow::anyhow!("clickhouse (spool {dir}): {e}"))?;
        let c = sink.counts;
        if !args.quiet || c.spooled + c.dropped > 0 {
            let mut line = format!(
                "clickhouse: {} records sent to {}",
                xborder::units::grouped(c.sent),
                sink.client.url
            );
            if c.spooled > 0 {
                line.push_str(&format!(
                    ", {} spooled to {dir} (`xborder clickhouse flush` delivers them)",
                    xborder::units::grouped(c.spooled)
                ));
            }
            if c.dropped > 0 {
                line.push_str(&format!(
                    ", {} dropped: the spool is at --spool-max-bytes",
                    xborder::units::grouped(c.dropped)
                ));
            }
            if let Some(why) = &sink.first_failure {
                line.push_str(&format!(" (first failure: {why})"));
            }
            warn!("{line}");
        }
    }
    // The headline where a person will see it when the report goes to a
    // file or a machine.
    let report_on_terminal = to_stdout && format == ReportFormat::Text;
    if !report_on_terminal && !args.quiet {
        warn!("{}", findings::headline(report));
        if let Some(path) = &args.output {
            warn!("report: {}", path.display());
        }
    }
    let fails = args
        .fail_on
        .severity()
        .is_some_and(|threshold| report.worst_severity().is_some_and(|w| w >= threshold));
    let code = if report.has_errors() {
        ExitCode::from(2)
    } else if fails {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    // The process ends here: freeing every flow record and every address's
    // intelligence one by one took about 30 ms of a 0.65 s million-packet
    // audit (`cargo bench --bench audit`), for memory the exit returns at
    // once.
    std::mem::forget(run);
    Ok(code)
}

/// The spool directory: the one named, else spool/ in the data directory.
pub(crate) fn spool_dir(named: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    match named {
        Some(d) => Ok(d.to_owned()),
        None => xborder::intel::default_data_dir()
            .map(|d| xborder::clickhouse::spool::default_dir(&d))
            .ok_or_else(|| {
                anyhow::anyhow!("no data directory (set XBORDER_DATA_DIR or --spool-dir)")
            }),
    }
}

/// The host name, for `observer.name`.
pub(crate) fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `xborder clickhouse init|flush`.
fn run_clickhouse(cmd: cli::ClickhouseCommand) -> anyhow::Result<ExitCode> {
    use xborder::clickhouse::{spool::Spool, ClickHouse};
    match cmd {
        cli::ClickhouseCommand::Init { store, cluster, shard_urls } => {
            let urls = std::iter::once(&store.url).chain(&shard_urls);
            for url in urls {
                let ch = ClickHouse::new(url, &store.database);
                match &cluster {
                    Some(c) => ch.init_cluster(c)?,
                    None => ch.init()?,
                }
                ch.check()?;
                warn!("clickhouse: {} ready at {}", store.database, ch.url);
            }
        }
        cli::ClickhouseCommand::Flush { store, spool_dir: dir } => {
            let ch = ClickHouse::new(&store.url, &store.database);
            let dir = spool_dir(dir.as_deref())?;
            ch.check()?;
            let (counts, result) = ch.flush(&mut Spool::new(dir.clone(), u64::MAX));
            warn!(
                "clickhouse: {} records in {} segments delivered from {}",
                xborder::units::grouped(counts.records),
                xborder::units::grouped(counts.segments),
                dir.display()
            );
            result?;
            if let Some(first) = &counts.first_rejection {
                anyhow::bail!(
                    "{} records refused by the server, set aside as .rejected (first: {first})",
                    xborder::units::grouped(counts.rejected)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `xborder rules check`: every message of every file; 2 on any error.
fn run_rules_check(files: &[std::path::PathBuf], intel: &IntelArgs) -> anyhow::Result<ExitCode> {
    let sources = config::intel_sources(intel)?;
    let (providers, overlay_warnings) = sources.checked_catalogue()?;
    for w in &overlay_warnings {
        warn!("{w}");
    }
    let vendors = sources.vendors()?;
    let catalogues = Catalogues { providers: &providers, vendors: &vendors };
    let (policy, diagnostics) = Policy::check(files, catalogues)?;
    let mut out = io::stdout().lock();
    for pack in &policy.packs {
        let rules = pack.rules.len();
        writeln!(
            out,
            "{}: pack {} {}, {rules} rule{}",
            pack.location,
            pack.name,
            pack.version,
            if rules == 1 { "" } else { "s" }
        )?;
    }
    let mut errors = 0;
    for d in diagnostics {
        if d.level == Level::Error {
            errors += 1;
        }
        warn!("{d}");
    }
    Ok(if errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--threads 1` keeps the audit, and every thread it starts, to one
    /// of the cores; the answers themselves are checked in
    /// `tests/threads.rs`.
    #[test]
    fn one_thread_keeps_to_one_core_and_so_do_the_threads_it_starts() {
        // Shards: the threads less the reader and the finishing thread.
        assert_eq!(audit_threads(Some(5)), (5, 3));
        assert_eq!(audit_threads(Some(1)), (1, 1));
        let cores = available_cores();
        // On its own thread: the pinning stays with it.
        let seen = std::thread::spawn(move || {
            if let Err(e) = keep_to_cores(1) {
                // A sandbox that forbids it: the run says so and goes on.
                eprintln!("cannot keep to one core here: {e}");
                return None;
            }
            let own = std::thread::available_parallelism().map(|n| n.get()).ok();
            let started =
                std::thread::spawn(|| std::thread::available_parallelism().map(|n| n.get()));
            Some((own, started.join().ok().and_then(Result::ok)))
        })
        .join()
        .unwrap();
        if let Some(seen) = seen {
            assert_eq!(seen, (Some(1), Some(1)), "on {cores} cores");
        }
    }
}
