//! Where an audit goes: one small trait, and the report formats.
//!
//! A sink takes the run's parts as they are finished (their flows,
//! findings, names and intelligence), then the finished run (its digest of
//! every flow). The caller owns the destination (a file committed by
//! rename, standard output) and decides what a write error means (a closed
//! pipe is not a failed run).

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use super::AuditRun;
use crate::report::digest::Keep;
use crate::report::document::{self, DocumentRecords};
use crate::report::flows::{self, IntelJsonCache, Records};
use crate::report::{findings, html, text, AuditReport};

/// An output of the audit.
pub trait Sink {
    /// A part of the run: finished flows in record order, with their
    /// names, vendors, intelligence and findings; `intel_json` holds the
    /// rendered intelligence of (some of) its remote addresses.
    fn part(&mut self, part: &AuditReport, intel_json: &IntelJsonCache) -> io::Result<()>;

    /// The run is over: `run.report` holds its inputs, counts and digest.
    fn finish(&mut self, run: &AuditRun) -> io::Result<()>;
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

    /// What the format shows of the digest beyond its counts, aggregates
    /// and headlines (which every run needs: the exit status, the headline
    /// on standard error).
    pub fn digest(self) -> Keep {
        Keep { text: self == Self::Text, html: self == Self::Html }
    }
}

/// A report in one format into a writer.
pub struct ReportSink<W: Write> {
    format: ReportFormat,
    /// Flow records too (JSON formats).
    flows: bool,
    /// ANSI colours (text on a terminal).
    colour: bool,
    out: W,
    /// The CSV header is written.
    header: bool,
    /// The JSON document's records until its metadata can be written.
    spilled: Option<[Spill; 2]>,
}

impl<W: Write> ReportSink<W> {
    pub fn new(format: ReportFormat, flows: bool, colour: bool, out: W) -> Self {
        let spilled = (format == ReportFormat::Json).then(|| [Spill::default(), Spill::default()]);
        ReportSink { format, flows, colour, out, header: false, spilled }
    }

    /// The writer, after [`Sink::finish`].
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for ReportSink<W> {
    fn part(&mut self, part: &AuditReport, json: &IntelJsonCache) -> io::Result<()> {
        let out = &mut self.out;
        match self.format {
            ReportFormat::Text | ReportFormat::Html => Ok(()),
            ReportFormat::Jsonl => {
                let records = Records { flows: self.flows, findings: true };
                flows::write_jsonl(part, json, records, out)
            }
            ReportFormat::Csv => {
                if !std::mem::replace(&mut self.header, true) {
                    findings::write_csv_header(part, out)?;
                }
                findings::write_csv_rows(part, out)
            }
            ReportFormat::Json => {
                let Some([found, all]) = &mut self.spilled else { return Ok(()) };
                found.records(part, json, Records { flows: false, findings: true })?;
                if self.flows {
                    all.records(part, json, Records { flows: true, findings: false })?;
                }
                Ok(())
            }
        }
    }

    fn finish(&mut self, run: &AuditRun) -> io::Result<()> {
        let report = &run.report;
        let out = &mut self.out;
        match self.format {
            ReportFormat::Text => out.write_all(text::render(report, self.colour).as_bytes()),
            ReportFormat::Jsonl => Ok(()),
            ReportFormat::Csv if !self.header => findings::write_csv_header(report, out),
            ReportFormat::Csv => Ok(()),
            ReportFormat::Json => {
                let Some([found, all]) = &mut self.spilled else { return Ok(()) };
                document::write_document(report, self.flows, out, &mut |which, out| match which {
                    DocumentRecords::Findings => found.copy_to(out),
                    DocumentRecords::Flows => all.copy_to(out),
                })
            }
            ReportFormat::Html => html::write_html(report, out),
        }?;
        out.flush()
    }
}

/// Records held until they can be written: in memory up to
/// [`SPILL_MEMORY`], then in an anonymous temporary file (`$TMPDIR`).
struct Spill {
    memory: Vec<u8>,
    file: Option<File>,
    /// No record yet (the array's first has no comma before it).
    first: bool,
}

impl Default for Spill {
    fn default() -> Self {
        Spill { memory: Vec::new(), file: None, first: true }
    }
}

/// Bytes of records a spill holds in memory.
const SPILL_MEMORY: usize = 8 << 20;

impl Spill {
    fn records(
        &mut self,
        part: &AuditReport,
        json: &IntelJsonCache,
        records: Records,
    ) -> io::Result<()> {
        flows::write_array_records(part, json, records, &mut self.first, &mut self.memory)?;
        if self.memory.len() >= SPILL_MEMORY {
            let file = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(tempfile::tempfile().map_err(spill_error)?),
            };
            file.write_all(&self.memory).map_err(spill_error)?;
            self.memory.clear();
        }
        Ok(())
    }

    fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.rewind().map_err(spill_error)?;
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = file.read(&mut buf).map_err(spill_error)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
            }
        }
        out.write_all(&self.memory)
    }
}

/// An error of the temporary file, said as one (the caller names the
/// report it was for).
fn spill_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("temporary file of the records: {e}"))
}
