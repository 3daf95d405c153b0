//! The `xborder` binary: parse arguments, run, map the outcome to an exit
//! code (0 clean, 2 error).

mod cli;
mod config;
mod lookup;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;

use cli::{AuditArgs, Cli, Command, FlowFormat};
use xborder::audit::{self, AuditConfig};
use xborder::flow::{FlowTimeouts, LocalNetworks};
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
    // The intelligence loads on the other core while the captures are read;
    // files the user named are checked first, so a typo fails at once.
    let intel = match args.no_intel {
        true => None,
        false => {
            let sources = config::intel_sources(&args.intel)?;
            sources.check_files()?;
            Some(std::thread::spawn(move || sources.load()))
        }
    };
    let mut report = audit::run(&config);
    if let Some(loader) = intel {
        let db = loader
            .join()
            .map_err(|_| anyhow::anyhow!("loading the intelligence data failed"))??;
        audit::attach_intel(&mut report, &db);
    }
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
            Some(out) => flows::write_jsonl(&report, out)?,
            None => flows::write_jsonl(&report, &mut BufWriter::new(io::stdout().lock()))?,
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
