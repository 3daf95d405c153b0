//! Where a finished audit goes: one small trait, and the report formats.
//!
//! A sink writes what it makes of the run and flushes; the caller owns
//! the destination (a file committed by rename, standard output) and
//! decides what a write error means (a closed pipe is not a failed run).

use std::io::{self, Write};

use super::AuditRun;
use crate::report::flows::{self, Records};
use crate::report::{document, findings, html, text};

/// An output of the audit.
pub trait Sink {
    /// Writes the finished run.
    fn write(&mut self, run: &AuditRun) -> io::Result<()>;
}

/// The report formats (also `--format`'s values; the doc comments are its
/// help).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Headline, findings by rule and local host, capture summary.
    Text,
    /// One document: run metadata, totals, aggregates, findings.
    Json,
    /// One JSON object per finding (and per flow with --flows) and line.
    Jsonl,
    /// One row per finding.
    Csv,
    /// One self-contained HTML page to hand on (charts, a sortable and
    /// filterable findings table; nothing fetched).
    Html,
}

impl ReportFormat {
    /// Does the format carry each remote address's intelligence as JSON?
    pub fn renders_intel_json(self) -> bool {
        matches!(self, Self::Json | Self::Jsonl)
    }
}

/// A report in one format into a writer.
pub struct ReportSink<W: Write> {
    pub format: ReportFormat,
    /// Flow records too (JSON formats).
    pub flows: bool,
    /// ANSI colours (text on a terminal).
    pub colour: bool,
    pub out: W,
}

impl<W: Write> Sink for ReportSink<W> {
    fn write(&mut self, run: &AuditRun) -> io::Result<()> {
        let (report, json) = (&run.report, &run.intel_json);
        let out = &mut self.out;
        match self.format {
            ReportFormat::Text => out.write_all(text::render(report, self.colour).as_bytes()),
            ReportFormat::Json => document::write_json(report, json, self.flows, out),
            ReportFormat::Jsonl => {
                let records = Records { flows: self.flows, findings: true };
                flows::write_jsonl(report, json, records, out)
            }
            ReportFormat::Csv => findings::write_csv(report, out),
            ReportFormat::Html => html::write_html(report, out),
        }?;
        out.flush()
    }
}
