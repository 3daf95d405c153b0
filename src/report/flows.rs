//! Flow records as JSON lines, one object per flow in order of the first
//! packet. Field names follow the Elastic Common Schema where it has one;
//! the rest lives under `xborder.*`. The schema is documented in README.md.

use std::io::{self, Write};

use serde::Serialize;

use super::AuditReport;
use crate::flow::{protocol_name, Direction, EndReason, FlowRecord, SideStats};
use crate::time::Timestamp;

#[derive(Serialize)]
struct FlowDoc<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    event: EventDoc,
    source: EndpointDoc,
    destination: EndpointDoc,
    network: NetworkDoc,
    xborder: XborderDoc<'a>,
}

#[derive(Serialize)]
struct EventDoc {
    kind: &'static str,
    category: [&'static str; 1],
    start: Timestamp,
    end: Timestamp,
    /// Nanoseconds, as ECS defines `event.duration`.
    duration: i64,
}

#[derive(Serialize)]
struct EndpointDoc {
    ip: std::net::IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    packets: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct NetworkDoc {
    transport: String,
    iana_number: String,
    direction: Direction,
    packets: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct XborderDoc<'a> {
    flow: FlowExtraDoc<'a>,
}

#[derive(Serialize)]
struct FlowExtraDoc<'a> {
    file: &'a str,
    first_frame: u64,
    end_reason: EndReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<&'static str>,
    source: SideExtraDoc,
    destination: SideExtraDoc,
}

#[derive(Serialize)]
struct SideExtraDoc {
    payload_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags: Option<Vec<&'static str>>,
}

const FLAG_NAMES: [(u8, &str); 8] = [
    (0x02, "SYN"),
    (0x10, "ACK"),
    (0x08, "PSH"),
    (0x01, "FIN"),
    (0x04, "RST"),
    (0x20, "URG"),
    (0x40, "ECE"),
    (0x80, "CWR"),
];

fn side_extra(stats: &SideStats, tcp: bool) -> SideExtraDoc {
    SideExtraDoc {
        payload_bytes: stats.payload_bytes,
        tcp_flags: tcp.then(|| {
            FLAG_NAMES
                .iter()
                .filter(|(bit, _)| stats.tcp_flags & bit != 0)
                .map(|(_, name)| *name)
                .collect()
        }),
    }
}

fn endpoint(ep: crate::flow::Endpoint, stats: &SideStats) -> EndpointDoc {
    EndpointDoc { ip: ep.ip, port: ep.port, packets: stats.packets, bytes: stats.bytes }
}

fn document<'a>(rec: &FlowRecord, file: &'a str) -> FlowDoc<'a> {
    let tcp = rec.protocol == 6;
    FlowDoc {
        timestamp: rec.start,
        event: EventDoc {
            kind: "event",
            category: ["network"],
            start: rec.start,
            end: rec.end,
            duration: rec.end.as_nanos().saturating_sub(rec.start.as_nanos()),
        },
        source: endpoint(rec.source, &rec.source_stats),
        destination: endpoint(rec.destination, &rec.destination_stats),
        network: NetworkDoc {
            transport: protocol_name(rec.protocol)
                .map_or_else(|| rec.protocol.to_string(), str::to_owned),
            iana_number: rec.protocol.to_string(),
            direction: rec.direction,
            packets: rec.total_packets(),
            bytes: rec.total_bytes(),
        },
        xborder: XborderDoc {
            flow: FlowExtraDoc {
                file,
                first_frame: rec.first_frame.frame,
                end_reason: rec.end_reason,
                remote: rec.direction.remote_is_responder().map(|r| {
                    if r {
                        "destination"
                    } else {
                        "source"
                    }
                }),
                source: side_extra(&rec.source_stats, tcp),
                destination: side_extra(&rec.destination_stats, tcp),
            },
        },
    }
}

/// Writes one JSON object per flow, each on its own line.
pub fn write_jsonl(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    for rec in &report.flows {
        let file = report.input_path(rec.first_frame.file).to_string_lossy();
        serde_json::to_writer(&mut *out, &document(rec, &file))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
