//! Evidence: the packets of the flows with findings, as a pcapng file to
//! open in Wireshark (`audit --evidence FILE`).
//!
//! Contract:
//! - A second pass over the inputs replays decode and the flow tables with
//!   the audit's settings (its shards, each swept at the same packets): the
//!   same input gives the same flows with the same ids, so each packet is
//!   known to belong to a flagged flow exactly as the audit counted it
//!   (timeouts, port reuse and fragments included). Frames several tables
//!   log at once (a sweep, the end) are taken in frame order, as one table
//!   logs them. Names and intelligence are not needed again.
//! - Packets keep their original bytes, timestamps (nanoseconds) and
//!   wire lengths; each (input, interface) that contributes becomes one
//!   interface of the evidence with its link type, described by the input's
//!   path. Each packet's comment names its flow's findings (rule id and
//!   severity) and remote endpoint.
//! - Packets are written in the order they are attributed: input order,
//!   except that a fragment that came before the first of its datagram
//!   follows that first fragment.
//! - Standard input cannot be read twice: the caller refuses `--evidence`
//!   with `-`. An input that no longer reads as it did (changed between
//!   the passes) is an error naming it.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use super::observe_packet;
use super::shard::{shard_of, sharded_table};
use super::{AuditConfig, AuditRun, Sink};
use crate::capture::{self, InputSpec, LinkType, Opened, PcapngWriter};
use crate::decode::{self, AnomalyCounter, Decoded, FrameRef};
use crate::flow::{FlowTable, SweepClock};
use crate::policy::Severity;
use crate::report::flows::IntelJsonCache;
use crate::report::AuditReport;

/// Bytes of fragments held at most while they wait for the first of their
/// datagram; a fragment that does not fit is not held, and if its flow is
/// flagged it is counted as omitted.
const PENDING_BYTES: usize = 64 << 20;

/// The evidence of a run into a writer.
///
/// It keeps each flagged flow's packet comment from the parts (memory by
/// flagged flows), and makes the file at the finish.
pub struct EvidenceSink<W: Write> {
    /// The audit's settings (inputs, timeouts, local networks, bound).
    pub config: AuditConfig,
    /// Findings below this severity do not make a flow evidence.
    pub min_severity: Severity,
    pub out: W,
    /// What was written, for the caller's summary line.
    pub written: EvidenceCounts,
    /// Flow id → the packet comment, of each flagged flow.
    comments: HashMap<u64, String>,
}

impl<W: Write> EvidenceSink<W> {
    pub fn new(config: AuditConfig, min_severity: Severity, out: W) -> Self {
        EvidenceSink {
            config,
            min_severity,
            out,
            written: EvidenceCounts::default(),
            comments: HashMap::new(),
        }
    }
}

/// What the evidence holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvidenceCounts {
    pub flows: usize,
    pub packets: u64,
    /// Packets of flagged flows left out: fragments that came before the
    /// first of their datagram when the queue holding them was full.
    pub omitted: u64,
}

impl<W: Write> Sink for EvidenceSink<W> {
    fn part(&mut self, part: &AuditReport, _: &IntelJsonCache) -> io::Result<()> {
        let mut rules: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for v in part.finding_views().filter(|v| v.rule.severity >= self.min_severity) {
            rules
                .entry(v.flow.id)
                .or_default()
                .push(format!("{} ({})", v.rule.id, v.rule.severity));
        }
        for flow in &part.flows {
            let Some(rules) = rules.get(&flow.id) else { continue };
            self.comments.insert(flow.id, packet_comment(flow, rules));
        }
        Ok(())
    }

    fn finish(&mut self, run: &AuditRun) -> io::Result<()> {
        let report = &run.report;
        let comments = std::mem::take(&mut self.comments);
        self.written = EvidenceCounts { flows: comments.len(), ..EvidenceCounts::default() };
        let mut pcapng = EvidenceFile { out: PcapngWriter::new(&mut self.out)? };
        if comments.is_empty() {
            return pcapng.out.out.flush();
        }
        // The audit's shards, each with its table across the inputs, swept
        // at the same packets.
        let shards = self.config.shards.max(1);
        let mut tables: Vec<FlowTable> = (0..shards)
            .map(|_| {
                let mut table = sharded_table(&self.config);
                table.log_frames();
                table
            })
            .collect();
        let mut clock = SweepClock::default();
        let mut anomalies = AnomalyCounter::default();
        let mut pending = Pending::default();
        let mut log: Vec<(FrameRef, u64)> = Vec::new();
        // The frames the tables logged: of several (a sweep, the end) in
        // frame order, as one table logs them.
        let mut attribute = |tables: &mut [FlowTable],
                             pcapng: &mut EvidenceFile<&mut W>,
                             pending: &mut Pending,
                             current: Option<(FrameRef, &capture::Packet<'_>)>|
         -> io::Result<(bool, bool, u64, u64)> {
            let (mut attributed, mut written, mut omitted) = (false, 0, 0);
            let mut current_written = false;
            log.clear();
            for table in tables.iter_mut() {
                log.extend(table.drain_frame_log());
            }
            if tables.len() > 1 {
                log.sort_by_key(|(frame, _)| *frame);
            }
            // A tunnelled packet is logged for its tunnel's flow and for
            // the flows inside, one after the other: it is written once,
            // for the innermost of them with findings.
            for group in log.chunk_by(|a, b| a.0 == b.0) {
                let frame = group[0].0;
                let is_current = current.is_some_and(|(at, _)| at == frame);
                attributed |= is_current;
                // A held fragment leaves the queue whoever's it is.
                let held = if is_current { None } else { pending.remove(&frame) };
                let Some(comment) = group.iter().rev().find_map(|(_, id)| comments.get(id)) else {
                    continue;
                };
                match (current, held) {
                    (Some((at, packet)), _) if at == frame => {
                        pcapng.packet(at.file, packet, comment)?;
                        current_written = true;
                    }
                    // Written already, for the tunnel it came in.
                    (_, Some(held)) if held.written => continue,
                    (_, Some(held)) => pcapng.held(frame.file, &held, comment)?,
                    // Not held (the queue was full): counted.
                    (_, None) => {
                        omitted += 1;
                        continue;
                    }
                }
                written += 1;
            }
            Ok((attributed, current_written, written, omitted))
        };
        for (index, input) in report.inputs.iter().enumerate() {
            if input.format.is_none() {
                continue;
            }
            let index = index as u32;
            let changed = |what: String| {
                io::Error::other(format!(
                    "{}: {what} (the input changed since the audit read it)",
                    input.path.display()
                ))
            };
            let spec = InputSpec { path: input.path.clone(), from_directory: false };
            let mut reader = match capture::open_capture(&spec) {
                Ok(Opened::Reader(reader)) => reader,
                Ok(Opened::Skipped(s)) => return Err(changed(s.reason)),
                Err(e) => return Err(changed(e.to_string())),
            };
            let mut packets = 0;
            loop {
                let packet = match reader.next_packet() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    // The audit stopped at the same damage and reported it.
                    Err(_) if packets == input.packets => break,
                    Err(e) => return Err(changed(e.to_string())),
                };
                packets += 1;
                let at = FrameRef { file: index, frame: packet.frame };
                let Decoded::Ip(ip, _) =
                    decode::decode(packet.link_type, packet.data, packet.wire_len)
                else {
                    continue;
                };
                let tunnels = &self.config.tunnels;
                let ts = packet.timestamp;
                if clock.tick(ts) {
                    for table in &mut tables {
                        table.sweep_now(ts, &mut anomalies);
                        table.drain_finished();
                    }
                    let (_, _, written, omitted) =
                        attribute(&mut tables, &mut pcapng, &mut pending, None)?;
                    self.written.packets += written;
                    self.written.omitted += omitted;
                }
                let table = &mut tables[shard_of(&ip, shards)];
                let queued = table.queued_fragments();
                observe_packet(ip, tunnels, table, ts, at, &mut anomalies, &mut |_, _, _| {});
                let (attributed, current_written, written, omitted) = attribute(
                    std::slice::from_mut(table),
                    &mut pcapng,
                    &mut pending,
                    Some((at, &packet)),
                )?;
                self.written.packets += written;
                self.written.omitted += omitted;
                // A fragment waiting for the first of its datagram: kept
                // until the table says whose it is. A tunnel's packet whose
                // inner packet is such a fragment is kept too (or, written
                // for its tunnel, remembered), for the flow inside.
                if !attributed || table.queued_fragments() > queued {
                    pending.insert(at, &packet, current_written);
                }
                table.drain_finished();
            }
            if packets != input.packets {
                return Err(changed(format!("{packets} packets, not {}", input.packets)));
            }
        }
        // Fragments still waiting at the end go to their flows, as in the
        // audit.
        for table in &mut tables {
            table.saw_until(clock.latest());
            table.release_fragments(&mut anomalies);
        }
        let (_, _, written, omitted) = attribute(&mut tables, &mut pcapng, &mut pending, None)?;
        self.written.packets += written;
        self.written.omitted += omitted;
        pcapng.out.out.flush()
    }
}

/// Fragments waiting for the first of their datagram, within
/// [`PENDING_BYTES`].
#[derive(Default)]
struct Pending {
    held: HashMap<FrameRef, Held>,
    bytes: usize,
}

impl Pending {
    /// Holds `p`, or with `written` only remembers that it was written.
    fn insert(&mut self, at: FrameRef, p: &capture::Packet<'_>, written: bool) {
        if written {
            self.held.insert(at, Held { data: Vec::new(), written: true, ..Held::of(&[][..], p) });
        } else if self.bytes + p.data.len() <= PENDING_BYTES {
            self.bytes += p.data.len();
            self.held.insert(at, Held::of(p.data, p));
        }
    }

    fn remove(&mut self, at: &FrameRef) -> Option<Held> {
        let held = self.held.remove(at)?;
        self.bytes -= held.data.len();
        Some(held)
    }
}

/// An evidence packet's comment (audit and live): its flow's rules, each
/// `id (severity)`, and remote endpoint, e.g. `xborder: cn-provider
/// (high); remote 203.0.113.10:443`.
pub fn packet_comment(flow: &crate::flow::FlowRecord, rules: &[String]) -> String {
    let remote = flow.remote().map_or_else(String::new, |r| match (r.ip, r.port) {
        (std::net::IpAddr::V6(ip), Some(port)) => format!("; remote [{ip}]:{port}"),
        (ip, Some(port)) => format!("; remote {ip}:{port}"),
        (ip, None) => format!("; remote {ip}"),
    });
    format!("xborder: {}{remote}", rules.join(", "))
}

/// A packet kept from an earlier frame.
struct Held {
    timestamp: crate::time::Timestamp,
    link_type: LinkType,
    interface: u32,
    data: Vec<u8>,
    wire_len: u32,
    /// Already in the evidence (for another flow the frame went into).
    written: bool,
}

impl Held {
    fn of(data: &[u8], p: &capture::Packet<'_>) -> Self {
        Self {
            timestamp: p.timestamp,
            link_type: p.link_type,
            interface: p.interface,
            data: data.to_vec(),
            wire_len: p.wire_len,
            written: false,
        }
    }
}

/// The evidence file: an interface per (input, interface, link type).
struct EvidenceFile<W: Write> {
    out: PcapngWriter<W>,
}

impl<W: Write> EvidenceFile<W> {
    fn interface(&mut self, input: u32, interface: u32, link_type: LinkType) -> io::Result<u32> {
        let description = || format!("xborder audit input {input}, interface {interface}");
        self.out.interface((input, interface, link_type.0), link_type, description)
    }

    fn packet(&mut self, input: u32, p: &capture::Packet<'_>, comment: &str) -> io::Result<()> {
        let id = self.interface(input, p.interface, p.link_type)?;
        self.out.packet(id, p.timestamp, p.data, p.wire_len, comment)
    }

    fn held(&mut self, input: u32, p: &Held, comment: &str) -> io::Result<()> {
        let id = self.interface(input, p.interface, p.link_type)?;
        self.out.packet(id, p.timestamp, &p.data, p.wire_len, comment)
    }
}
