//! The `xborder` binary: parse arguments, run, map the outcome to an exit
//! code (0 clean, 2 error).

mod cli;
mod config;
mod lookup;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;

use clap::Parser;

use cli::{AuditArgs, Cli, Command, FlowFormat};
use xborder::audit::{self, AuditConfig};
use xborder::flow::{FlowTimeouts, LocalNetworks};
use xborder::intel::IntelError;
use xborder::report::{flows, summary};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Audit(args) => run_audit(&args),
        Command::Lookup(args) => lookup::run_lookup(&args),
        Command::Db(cmd) => lookup::run_db(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Our errors already name their cause; the chain would repeat it.
            eprintln!("xborder: {err}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn run_audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let config = AuditConfig {
        paths: args.paths.clone(),
        timeouts: FlowTimeouts {
            tcp: args.tcp_timeout,
            tcp_closed: args.tcp_close_timeout,
            udp: args.udp_timeout,
            other: args.other_timeout,
        },
        no_names: args.no_names,
        local: if args.local_nets.is_empty() {
            LocalNetworks::default()
        } else {
            LocalNetworks::new(args.local_nets.clone())
        },
    };
    // Open the output first: a typo in -o should not cost a long run.
    let mut output: Option<Box<dyn Write>> = match &args.output {
        Some(path) => Some(Box::new(BufWriter::new(
            File::create(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?,
        ))),
        None => None,
    };
    // The intelligence loads on the other core while the captures are read,
    // then looks remote endpoints up (and renders their JSON) as their flows
    // finish; files the user named are checked first, so a typo fails at
    // once.
    let mut intel_json = HashMap::new();
    let report = if args.no_intel {
        audit::run(&config)
    } else {
        let sources = config::intel_sources(&args.intel)?;
        sources.check_files()?;
        let want_json = args.flows.is_some();
        let (remotes, incoming) = mpsc::channel::<IpAddr>();
        let worker = thread::spawn(move || -> Result<_, IntelError> {
            let db = sources.load()?;
            let mut found = HashMap::new();
            let mut json = HashMap::new();
            for ip in incoming {
                found.entry(ip).or_insert_with(|| {
                    let intel = db.lookup(ip);
                    if want_json {
                        json.insert(ip, flows::IntelJson::new(&intel));
                    }
                    Arc::new(intel)
                });
            }
            Ok((db, found, json))
        });
        let mut report = audit::run_observed(&config, &mut |flow| {
            if let Some(remote) = flow.remote() {
                // A closed channel means loading failed; the join says why.
                let _ = remotes.send(remote.ip);
            }
        });
        drop(remotes);
        let (db, found, json) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("loading the intelligence data failed"))??;
        report.remote_intel = found;
        intel_json = json;
        audit::attach_intel(&mut report, &db);
        report
    };
    for (path, reason) in &report.skipped {
        eprintln!("xborder: skipping {}: {reason}", path.display());
    }
    for input in &report.inputs {
        if let Some(err) = &input.error {
            eprintln!("xborder: {err}");
        }
    }
    let flows_to_stdout = args.flows.is_some() && args.output.is_none();
    if let Some(FlowFormat::Jsonl) = args.flows {
        match output.as_mut() {
            Some(out) => flows::write_jsonl(&report, &mut intel_json, out)?,
            None => flows::write_jsonl(
                &report,
                &mut intel_json,
                &mut BufWriter::new(io::stdout().lock()),
            )?,
        }
    }
    if !args.quiet {
        let text = summary::render(&report);
        if flows_to_stdout {
            io::stderr().write_all(text.as_bytes())?;
        } else {
            io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(if report.has_errors() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
