//! The report for machines: one JSON document with the run's metadata
//! (version, inputs, rule packs with their hashes, data provenance), the
//! totals, aggregates and every finding (and flow, when asked), in the
//! record schema of the JSON lines format.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};

use super::findings::{aggregate, headline, regime_headlines};
use super::AuditReport;

/// Everything but the records.
fn metadata(r: &AuditReport) -> io::Result<Vec<(&'static str, Value)>> {
    let inputs: Vec<Value> = r
        .inputs
        .iter()
        .map(|i| {
            json!({
                "path": i.path.display().to_string(),
                "format": i.format.map(|f| match f {
                    crate::capture::CaptureFormat::Pcap => "pcap",
                    crate::capture::CaptureFormat::Pcapng => "pcapng",
                }),
                "packets": i.packets,
                "error": i.error,
            })
        })
        .collect();
    let skipped: Vec<Value> = r
        .skipped
        .iter()
        .map(|(p, reason)| json!({"path": p.display().to_string(), "reason": reason}))
        .collect();
    let packs: Vec<Value> = r
        .policy
        .packs
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "version": p.version,
                "description": p.description,
                "source": p.source,
                "reference": p.reference,
                "location": p.location,
                "sha256": p.sha256,
                "rules": p.rules.iter().filter(|r| r.enabled).map(|r| &r.id).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut data = Vec::new();
    for d in &r.provenance {
        let e = d.entry.as_ref();
        data.push(json!({
            "role": d.role,
            "location": d.location,
            "name": e.map(|e| &e.name),
            "source": e.map(|e| &e.source),
            "snapshot": e.map(|e| &e.snapshot),
            "licence": e.map(|e| &e.licence),
            "attribution": e.and_then(|e| e.attribution.as_ref()),
            "records": d.records,
            "sha256": d.sha256().map_err(io::Error::other)?,
        }));
    }
    let t = &r.totals;
    let by_severity: BTreeMap<&str, usize> =
        r.severity_counts().into_iter().map(|(s, n)| (s.as_str(), n)).collect();
    let mut fields = vec![
        ("xborder", json!({"version": env!("CARGO_PKG_VERSION")})),
        (
            "run",
            json!({
                "inputs": inputs,
                "skipped": skipped,
                "first_packet": t.first,
                "last_packet": t.last,
            }),
        ),
        ("rule_packs", Value::Array(packs)),
        ("data", Value::Array(data)),
        ("headline", Value::String(headline(r))),
        ("headlines", serde_json::to_value(regime_headlines(r)).map_err(io::Error::other)?),
        (
            "totals",
            json!({
                "packets": t.packets,
                "ip_packets": t.ip_packets,
                "non_ip_packets": t.non_ip,
                "malformed_packets": t.malformed,
                "cut_by_snaplen": t.cut_by_snaplen,
                "anomalies": r.anomalies.total(),
                "flows": r.digest.flows,
                "bytes": r.digest.bytes,
                "findings": r.digest.findings,
                "findings_by_severity": by_severity,
            }),
        ),
        ("aggregates", serde_json::to_value(aggregate(r)).map_err(io::Error::other)?),
    ];
    // Only when it happened, so that a run within the bound keeps the
    // document it always had.
    if r.evicted_flows > 0 && r.live.is_none() {
        if let Some((_, Value::Object(totals))) = fields.iter_mut().find(|(k, _)| *k == "totals") {
            totals.insert("evicted_flows".into(), r.evicted_flows.into());
        }
    }
    if let Some(observer) = &r.observer {
        fields.insert(1, ("observer", json!({ "name": observer })));
    }
    if let Some(live) = &r.live {
        fields.insert(
            2,
            (
                "live",
                json!({
                    "interface": live.interface,
                    "period_start": live.start,
                    "period_end": live.end,
                    "final_report": live.last,
                    "stats": live.stats,
                }),
            ),
        );
    }
    Ok(fields)
}

/// The records of a document, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentRecords {
    Findings,
    Flows,
}

/// Writes the document (pretty at the top level, records one per line),
/// with `records` writing each array's elements.
pub fn write_document(
    r: &AuditReport,
    with_flows: bool,
    out: &mut dyn Write,
    records: &mut dyn FnMut(DocumentRecords, &mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    out.write_all(b"{\n")?;
    for (key, value) in metadata(r)? {
        write!(out, "\"{key}\": ")?;
        // Rendered first: serde_json's writer would hide the kind of an I/O
        // error (a closed pipe) inside its own.
        out.write_all(&serde_json::to_vec(&value).map_err(io::Error::other)?)?;
        out.write_all(b",\n")?;
    }
    out.write_all(b"\"findings\": [")?;
    records(DocumentRecords::Findings, out)?;
    out.write_all(b"]")?;
    if with_flows {
        out.write_all(b",\n\"flows\": [")?;
        records(DocumentRecords::Flows, out)?;
        out.write_all(b"]")?;
    }
    out.write_all(b"\n}\n")?;
    out.flush()
}
