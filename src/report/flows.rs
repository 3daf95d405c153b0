//! Flow records as JSON lines, one object per flow in order of the first
//! packet. Field names follow the Elastic Common Schema where it has one;
//! the rest lives under `xborder.*`. The schema is documented in README.md.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::mpsc;

use super::findings::FindingView;
use super::json::{escape_into, JsonObject};
use super::AuditReport;
use crate::flow::{protocol_name, EndReason, Endpoint, FlowRecord, SideStats};
use crate::intel::{Intel, VendorMatch};
use crate::names::{FlowNames, NameSource};
use crate::policy::{Rule, RulePack};

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

fn end_reason(r: EndReason) -> &'static str {
    match r {
        EndReason::IdleTimeout => "idle_timeout",
        EndReason::TcpClosed => "tcp_closed",
        EndReason::PortReuse => "port_reuse",
        EndReason::EndOfCapture => "end_of_capture",
        EndReason::Evicted => "evicted",
        EndReason::Active => "active",
    }
}

fn endpoint(
    o: &mut JsonObject<'_>,
    key: &str,
    ep: Endpoint,
    stats: &SideStats,
    intel: Option<&[u8]>,
) {
    let mut e = o.object(key);
    e.ip("ip", ep.ip);
    if let Some(port) = ep.port {
        e.u64("port", u64::from(port));
    }
    e.u64("packets", stats.packets);
    e.u64("bytes", stats.bytes);
    if let Some(fields) = intel {
        e.raw_fields(fields);
    }
    e.end();
}

/// The ECS fields of a remote endpoint: `geo.country_iso_code`,
/// `as.number`, `as.organization.name`.
fn endpoint_intel(e: &mut JsonObject<'_>, i: &Intel) {
    if let Some(c) = i.country {
        let mut geo = e.object("geo");
        geo.keyword("country_iso_code", c.as_str());
        geo.end();
    }
    if let Some(asn) = i.asn {
        let mut a = e.object("as");
        a.u64("number", u64::from(asn));
        if let Some(org) = &i.as_org {
            let mut organization = a.object("organization");
            organization.string("name", org);
            organization.end();
        }
        a.end();
    }
}

/// The intelligence of one remote address as JSON, borrowed: the
/// endpoint's ECS fields and the `remote` object's, each without braces
/// (they are fields of the enclosing objects), copied into each record.
#[derive(Clone, Copy, Debug)]
pub struct IntelFields<'a> {
    endpoint: &'a [u8],
    remote: &'a [u8],
}

/// Renders `i`'s fields at the end of `buf`; returns the endpoint's and
/// the remote's lengths.
fn render_fields(buf: &mut Vec<u8>, i: &Intel) -> (usize, usize) {
    let mut fields = |write: &dyn Fn(&mut JsonObject<'_>)| {
        let start = buf.len();
        let mut o = JsonObject::new(buf);
        write(&mut o);
        o.end();
        buf.pop();
        buf.remove(start);
        buf.len() - start
    };
    let endpoint = fields(&|o| endpoint_intel(o, i));
    let remote = fields(&|o| remote_intel(o, i));
    (endpoint, remote)
}

/// One address's rendered fields, owned (an address the cache did not
/// render).
pub struct IntelJson {
    fields: Vec<u8>,
    split: usize,
}

impl IntelJson {
    pub fn new(i: &Intel) -> Self {
        let mut fields = Vec::with_capacity(512);
        let (split, _) = render_fields(&mut fields, i);
        Self { fields, split }
    }

    pub fn fields(&self) -> IntelFields<'_> {
        let (endpoint, remote) = self.fields.split_at(self.split);
        IntelFields { endpoint, remote }
    }
}

/// The rendered intelligence of each remote address of an audit: rendered
/// once per address (on the lookup thread, as flows finish) and copied
/// into each of its records.
///
/// The fields of all addresses lie end to end in one buffer, with no
/// allocation per address.
#[derive(Default)]
pub struct IntelJsonCache {
    rendered: HashMap<IpAddr, Rendered, ahash::RandomState>,
    arena: Vec<u8>,
}

/// Where an address's fields lie in the arena: the endpoint's in
/// `start..split`, the remote's in `split..end`.
#[derive(Clone, Copy)]
struct Rendered {
    start: usize,
    split: usize,
    end: usize,
}

impl IntelJsonCache {
    /// Renders `intel` for `ip`, unless it is rendered already.
    pub fn render(&mut self, ip: IpAddr, intel: &Intel) {
        let arena = &mut self.arena;
        self.rendered.entry(ip).or_insert_with(|| {
            let start = arena.len();
            let (endpoint, remote) = render_fields(arena, intel);
            Rendered { start, split: start + endpoint, end: start + endpoint + remote }
        });
    }

    pub fn get(&self, ip: &IpAddr) -> Option<IntelFields<'_>> {
        let r = self.rendered.get(ip)?;
        Some(IntelFields {
            endpoint: self.arena.get(r.start..r.split)?,
            remote: self.arena.get(r.split..r.end)?,
        })
    }
}

/// `xborder.remote`: what ECS has no field for.
fn remote_intel(o: &mut JsonObject<'_>, i: &Intel) {
    let mut r = o.object("remote");
    r.keyword("address_class", i.class.as_str());
    if let Some(src) = i.country_source {
        r.keyword("country_source", src.as_str());
    }
    if let Some(p) = &i.provider {
        r.string("provider", p);
    }
    if let Some(p) = &i.provider_name {
        r.string("provider_name", p);
    }
    if let Some(j) = i.jurisdiction {
        r.keyword("jurisdiction", j.as_str());
    }
    if let Some(s) = &i.service {
        r.string("service", s);
    }
    if let Some(s) = &i.region {
        r.string("region", s);
    }
    if let Some(p) = i.prefix {
        r.net("prefix", p);
    }
    if let Some(d) = &i.dataset {
        r.string("dataset", d);
    }
    r.end();
}

fn side_extra(o: &mut JsonObject<'_>, key: &str, stats: &SideStats, tcp: bool) {
    let mut e = o.object(key);
    e.u64("payload_bytes", stats.payload_bytes);
    if tcp {
        let flags = FLAG_NAMES.iter().filter(|(bit, _)| stats.tcp_flags & bit != 0);
        e.keywords("tcp_flags", flags.map(|(_, name)| *name));
    }
    e.end();
}

/// A finding to write as a record, with its rule's `rule` object as
/// [`rule_json`] renders it (the same for every finding of the rule).
#[derive(Clone, Copy)]
pub struct FindingRecord<'v, 'a> {
    pub view: &'v FindingView<'a>,
    pub rule_json: &'v [u8],
}

/// A flow's record, rendered once, and where the records of its findings
/// differ from it.
///
/// A finding's record is its flow's with `event.kind` `alert`, an
/// `event.severity`, the `rule` and `xborder.finding` put in; everything
/// else is copied from the flow's record rather than rendered again for
/// each finding (rendering the same fields again was about 40% of writing
/// the records).
#[derive(Default)]
pub struct FlowJson {
    bytes: Vec<u8>,
    /// Offsets into `bytes`, in order: the `"kind"` field starts and ends;
    /// `event.category` ends (`event.severity` goes there); the top-level
    /// fields end (`rule` goes there, before `,"xborder":{`); the first
    /// field of `xborder` starts (`xborder.finding` goes before it).
    kind: usize,
    after_kind: usize,
    after_category: usize,
    xborder: usize,
    in_xborder: usize,
}

impl FlowJson {
    /// The record just rendered (no newline).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Renders the record of `rec` in place of the last one; `file` is
    /// the input's path and `observer` the `observer.name`, both already
    /// JSON strings; `intel` describes the remote end.
    pub fn render(
        &mut self,
        rec: &FlowRecord,
        file: &[u8],
        intel: Option<IntelFields<'_>>,
        names: Option<&FlowNames>,
        vendor: Option<&VendorMatch>,
        observer: Option<&[u8]>,
    ) {
        self.bytes.clear();
        let remote_is_responder = rec.direction.remote_is_responder();
        let fields = intel.map(|i| i.endpoint);
        let (src_intel, dst_intel) = match remote_is_responder {
            Some(true) => (None, fields),
            Some(false) => (fields, None),
            None => (None, None),
        };
        // `@timestamp` and `event.start` are the same string: made once.
        let mut start = [b'"'; 32];
        start[1..31].copy_from_slice(&rec.start.rfc3339());
        let mut o = JsonObject::new(&mut self.bytes);
        if let Some(name) = observer {
            // ECS observer.name: the gateway or machine that saw it.
            let mut obs = o.object("observer");
            obs.raw("name", name);
            obs.end();
        }
        o.raw("@timestamp", &start);
        let mut event = o.object("event");
        self.kind = event.position();
        event.keyword("kind", "event");
        self.after_kind = event.position();
        event.keywords("category", ["network"].into_iter());
        self.after_category = event.position();
        event.raw("start", &start);
        event.timestamp("end", rec.end);
        // Nanoseconds, as ECS defines event.duration.
        event.i64("duration", rec.end.as_nanos().saturating_sub(rec.start.as_nanos()));
        event.end();
        endpoint(&mut o, "source", rec.source, &rec.source_stats, src_intel);
        endpoint(&mut o, "destination", rec.destination, &rec.destination_stats, dst_intel);
        let mut net = o.object("network");
        let number = itoa::Buffer::new().format(rec.protocol).to_owned();
        net.keyword("transport", protocol_name(rec.protocol).unwrap_or(&number));
        net.keyword("iana_number", &number);
        net.keyword("direction", rec.direction.as_str());
        net.u64("packets", rec.total_packets());
        net.u64("bytes", rec.total_bytes());
        net.end();
        if let Some((name, source)) = names.and_then(|n| n.server_name.as_ref()) {
            // ECS: the SNI under tls.client, an HTTP Host under url.domain.
            match source {
                NameSource::TlsSni | NameSource::QuicSni => {
                    let mut tls = o.object("tls");
                    let mut client = tls.object("client");
                    client.string("server_name", name);
                    client.end();
                    tls.end();
                }
                NameSource::HttpHost => {
                    let mut url = o.object("url");
                    url.string("domain", name);
                    url.end();
                }
            }
        }
        self.xborder = o.position();
        let mut x = o.object("xborder");
        self.in_xborder = x.position();
        let mut flow = x.object("flow");
        flow.raw("file", file);
        flow.u64("first_frame", rec.first_frame.frame);
        flow.keyword("end_reason", end_reason(rec.end_reason));
        if let Some(responder) = remote_is_responder {
            flow.keyword("remote", if responder { "destination" } else { "source" });
        }
        if let Some(kind) = rec.carries {
            flow.keyword("carries", kind.as_str());
        }
        let tcp = rec.protocol == 6;
        side_extra(&mut flow, "source", &rec.source_stats, tcp);
        side_extra(&mut flow, "destination", &rec.destination_stats, tcp);
        flow.end();
        if !rec.tunnels.is_empty() {
            x.objects("tunnels", &rec.tunnels, |t, layer| {
                t.keyword("type", layer.kind.as_str());
                let mut src = t.object("source");
                src.ip("ip", layer.src);
                src.end();
                let mut dst = t.object("destination");
                dst.ip("ip", layer.dst);
                dst.end();
                if let Some(id) = layer.id {
                    t.u64("id", u64::from(id));
                }
            });
        }
        if let Some(i) = intel.filter(|_| remote_is_responder.is_some()) {
            x.raw_fields(i.remote);
        }
        if let Some(n) = names {
            let mut names = x.object("names");
            if let Some((name, source)) = &n.server_name {
                names.string("server_name", name);
                names.keyword("source", source.as_str());
            }
            if !n.dns.is_empty() {
                names.strings("dns", n.dns.iter().map(|s| &**s));
            }
            names.end();
        }
        if let Some(m) = vendor {
            vendor_fields(&mut x, m);
        }
        x.end();
        o.end();
    }

    /// Appends the record of `finding`, a finding of the flow just
    /// rendered, to `buf` (no newline).
    pub fn write_finding(&self, buf: &mut Vec<u8>, finding: FindingRecord<'_, '_>) {
        // The offsets are where `render` wrote these pieces, in order.
        let piece = |from: usize, to: usize| &self.bytes[from..to];
        buf.extend_from_slice(piece(0, self.kind));
        buf.extend_from_slice(b"\"kind\":\"alert\"");
        buf.extend_from_slice(piece(self.after_kind, self.after_category));
        buf.extend_from_slice(b",\"severity\":");
        let severity = finding.view.rule.severity.number();
        buf.extend_from_slice(itoa::Buffer::new().format(severity).as_bytes());
        buf.extend_from_slice(piece(self.after_category, self.xborder));
        buf.extend_from_slice(b",\"rule\":");
        buf.extend_from_slice(finding.rule_json);
        buf.extend_from_slice(piece(self.xborder, self.in_xborder));
        let mut x = JsonObject::opened(buf);
        finding_fields(&mut x, finding.view);
        // `xborder.flow` always follows.
        buf.push(b',');
        buf.extend_from_slice(piece(self.in_xborder, self.bytes.len()));
    }
}

/// `xborder.vendor`: whose device or app the flow's names belong to.
fn vendor_fields(x: &mut JsonObject<'_>, m: &VendorMatch) {
    let v = &m.vendor;
    let mut o = x.object("vendor");
    o.keyword("id", &v.id);
    o.string("name", &v.name);
    o.string("parent", &v.parent);
    o.string("category", &v.category);
    o.keyword("jurisdiction", v.jurisdiction.as_str());
    o.string("product", &m.product().name);
    o.keyword("domain", &m.domain);
    o.string("matched_name", &m.name);
    o.end();
}

/// ECS `rule.*`, the value of a finding record's `rule`: rendered once
/// per rule, not escaped again for each of its findings.
pub fn rule_json(pack: &RulePack, rule: &Rule) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut o = JsonObject::new(&mut buf);
    o.string("id", &rule.id);
    o.string("name", &rule.title);
    o.string("ruleset", &pack.name);
    o.string("version", &pack.version);
    if let Some(d) = &rule.description {
        o.string("description", d);
    }
    if let Some(r) = &pack.reference {
        o.string("reference", r);
    }
    o.end();
    buf
}

/// `xborder.finding`: the finding seen from the local host.
fn finding_fields(x: &mut JsonObject<'_>, f: &FindingView<'_>) {
    let mut o = x.object("finding");
    o.keyword("severity", f.rule.severity.as_str());
    o.keyword("phase", if f.finding.early { "early" } else { "end" });
    o.ip("local_ip", f.sides.local.ip);
    o.ip("remote_ip", f.sides.remote.ip);
    if let Some(c) = f.finding.country {
        o.keyword("country", c.as_str());
    }
    o.u64("bytes_out", f.sides.sent.bytes);
    o.u64("bytes_in", f.sides.received.bytes);
    o.u64("packets_out", f.sides.sent.packets);
    o.u64("packets_in", f.sides.received.packets);
    if !f.finding.matched.unknown.is_empty() {
        o.keywords("unknown", f.finding.matched.unknown.iter().copied());
    }
    o.end();
}

/// What a JSON lines report holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Records {
    pub flows: bool,
    pub findings: bool,
}

/// Writes one JSON object per flow and/or finding, each on its own line,
/// in flow order, a flow's findings after it.
///
/// `cached` holds the intelligence JSON of addresses rendered already (on
/// the lookup thread); the others of `report.remote_intel` are rendered
/// for each of their records.
pub fn write_jsonl(
    report: &AuditReport,
    cached: &IntelJsonCache,
    records: Records,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_records(report, cached, records, None, out)
}

/// The records of `report` as elements of a JSON array; `first`: none is
/// in the array yet (set to `false` once one is written).
pub fn write_array_records(
    report: &AuditReport,
    cached: &IntelJsonCache,
    records: Records,
    first: &mut bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_records(report, cached, records, Some(first), out)
}

/// How many records' intelligence [`fetch_ahead`] looks up at once.
const FETCH_AHEAD: usize = 32;

/// The intelligence fields of each of `run`'s remote endpoints.
///
/// Looked up for a run of records before any is written: the lookups do
/// not depend on each other, so their cache misses overlap. Looked up one
/// at a time between records, where each waits for the record before,
/// they took about twice as long (100,000 flows, 52,504 addresses: ~40 ms
/// against ~20 ms, measured in a scratch harness around `write_jsonl`).
fn fetch_ahead<'c>(
    cached: &'c IntelJsonCache,
    run: &[FlowRecord],
) -> [Option<IntelFields<'c>>; FETCH_AHEAD] {
    let mut fields = [None; FETCH_AHEAD];
    for (f, rec) in fields.iter_mut().zip(run) {
        *f = rec.remote().and_then(|r| cached.get(&r.ip));
    }
    fields
}

/// Flows per piece of work when the records are rendered on several
/// threads (~0.8 MB of JSON lines).
const RENDER_CHUNK: usize = 1024;

/// Threads that render records at most.
const RENDER_THREADS: usize = 4;

/// The records of [`write_jsonl`]: one per line, or (`array`) separated
/// by commas as the elements of a JSON array that holds a record already
/// unless `array` is `Some(true)` (set to `false` once one is written; a
/// run's parts go into one array this way).
///
/// Rendering the records is most of the time of writing them; it is
/// spread over the cores (the capture is read and the addresses looked
/// up by now), in chunks of flows written in order.
pub(super) fn write_records(
    report: &AuditReport,
    cached: &IntelJsonCache,
    records: Records,
    mut array: Option<&mut bool>,
    out: &mut dyn Write,
) -> io::Result<()> {
    // Each input's path is escaped once, not once per record.
    let files: Vec<Vec<u8>> = report
        .inputs
        .iter()
        .map(|i| {
            let mut b = Vec::new();
            escape_into(&mut b, &i.path.to_string_lossy());
            b
        })
        .collect();
    let observer = report.observer.as_deref().map(|o| {
        let mut b = Vec::new();
        escape_into(&mut b, o);
        b
    });
    // Only what finding records need.
    let rules = if records.findings && !report.findings.is_empty() {
        let packs = report.policy.packs.iter();
        packs.map(|pack| pack.rules.iter().map(|rule| rule_json(pack, rule)).collect()).collect()
    } else {
        Vec::new()
    };
    let pieces =
        RecordPieces { report, cached, files, rules, records, array: array.is_some(), observer };
    let chunks = report.flows.len().div_ceil(RENDER_CHUNK);
    // In an array each record comes after a comma, except the first.
    let mut emit = |buf: &[u8]| -> io::Result<()> {
        let bytes = match (buf.split_first(), array.as_deref_mut()) {
            (Some((b',', rest)), Some(first @ true)) => {
                *first = false;
                rest
            }
            _ => buf,
        };
        out.write_all(bytes)
    };
    // One thread (a single chunk, or a single core): no helpers.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(RENDER_THREADS)
        .min(chunks)
        .max(1);
    std::thread::scope(|s| {
        let pieces = &pieces;
        // Helper `h` renders chunks h, h + threads, …; this thread the
        // rest, and writes them all in order. Each helper is at most two
        // chunks ahead.
        let helpers: Vec<mpsc::Receiver<Vec<u8>>> = (1..threads)
            .map(|h| {
                let (done, rendered) = mpsc::sync_channel(2);
                s.spawn(move || {
                    for chunk in (h..chunks).step_by(threads) {
                        let mut buf = Vec::new();
                        pieces.render(chunk, &mut buf);
                        // Closed: the writer stopped on an error.
                        if done.send(buf).is_err() {
                            return;
                        }
                    }
                });
                rendered
            })
            .collect();
        let mut own = Vec::new();
        for chunk in 0..chunks {
            match chunk % threads {
                0 => {
                    own.clear();
                    pieces.render(chunk, &mut own);
                    emit(&own)?;
                }
                h => {
                    let buf = helpers
                        .get(h - 1)
                        .and_then(|r| r.recv().ok())
                        .ok_or_else(|| io::Error::other("a record rendering thread stopped"))?;
                    emit(&buf)?;
                }
            }
        }
        Ok::<_, io::Error>(())
    })?;
    out.flush()
}

/// What rendering a chunk of records needs; shared by the threads.
struct RecordPieces<'r> {
    report: &'r AuditReport,
    cached: &'r IntelJsonCache,
    /// Each input's path, as a JSON string.
    files: Vec<Vec<u8>>,
    /// Each pack's rules as [`rule_json`] renders them.
    rules: Vec<Vec<Vec<u8>>>,
    records: Records,
    array: bool,
    /// `observer.name` of every record, as a JSON string.
    observer: Option<Vec<u8>>,
}

impl RecordPieces<'_> {
    /// Appends the records of the flows of chunk `chunk` (and their
    /// findings) to `buf`, each followed by a newline or, in an array,
    /// preceded by a comma.
    fn render(&self, chunk: usize, buf: &mut Vec<u8>) {
        let report = self.report;
        let start = chunk * RENDER_CHUNK;
        let Some(flows) = report.flows.get(start..(start + RENDER_CHUNK).min(report.flows.len()))
        else {
            return;
        };
        let record = |buf: &mut Vec<u8>, write: &dyn Fn(&mut Vec<u8>)| {
            if self.array {
                buf.push(b',');
            }
            write(buf);
            if !self.array {
                buf.push(b'\n');
            }
        };
        let mut flow_json = FlowJson::default();
        let observer = self.observer.as_deref();
        // Findings are in flow order.
        let mut findings = report.findings[report.findings.partition_point(|f| f.flow < start)..]
            .iter()
            .peekable();
        let end = start + flows.len();
        if !self.records.flows && findings.peek().is_none_or(|f| f.flow >= end) {
            return;
        }
        for (run_index, run) in flows.chunks(FETCH_AHEAD).enumerate() {
            let intel = fetch_ahead(self.cached, run);
            for (offset, (rec, intel)) in run.iter().zip(intel).enumerate() {
                let index = start + run_index * FETCH_AHEAD + offset;
                let has_finding = findings.peek().is_some_and(|f| f.flow == index);
                if !self.records.flows && !has_finding {
                    continue;
                }
                // An address the lookup thread did not render.
                let rendered_here = match intel {
                    None => rec
                        .remote()
                        .and_then(|r| report.remote_intel.get(&r.ip))
                        .map(|i| IntelJson::new(i)),
                    Some(_) => None,
                };
                let intel = intel.or(rendered_here.as_ref().map(IntelJson::fields));
                let file = self
                    .files
                    .get(rec.first_frame.file as usize)
                    .map_or(&b"\"\""[..], Vec::as_slice);
                let names = report.names.get(&rec.id);
                let vendor = report.vendors.get(&rec.id);
                flow_json.render(rec, file, intel, names, vendor, observer);
                if self.records.flows {
                    record(buf, &|b| b.extend_from_slice(flow_json.bytes()));
                }
                while let Some(f) = findings.next_if(|f| f.flow == index) {
                    if self.records.findings {
                        let view = report.finding_view(f);
                        // Rendered from the policy `finding_view` has just
                        // found the rule in.
                        let rule_json = &self.rules[f.matched.pack][f.matched.rule];
                        let finding = FindingRecord { view: &view, rule_json };
                        record(buf, &|b| flow_json.write_finding(b, finding));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decode::FrameRef;
    use crate::flow::Direction;
    use crate::intel::{AddressClass, CountryCode, CountrySource};
    use crate::time::Timestamp;

    fn intel(ip: IpAddr, country: &str, asn: u32, provider: Option<&str>) -> Intel {
        Intel {
            ip,
            class: AddressClass::Public,
            country: CountryCode::parse(country),
            country_source: Some(CountrySource::GeoIp),
            asn: Some(asn),
            as_org: None,
            provider: provider.map(Arc::from),
            provider_name: None,
            service: None,
            region: None,
            jurisdiction: CountryCode::parse(country),
            prefix: None,
            dataset: Some(Arc::from("test")),
        }
    }

    pub(crate) fn flow(id: u64, remote: IpAddr, direction: Direction) -> FlowRecord {
        let local = Endpoint { ip: "192.0.2.10".parse().unwrap(), port: Some(40000) };
        let remote = Endpoint { ip: remote, port: Some(443) };
        let (source, destination) = match direction {
            Direction::Inbound => (remote, local),
            _ => (local, remote),
        };
        FlowRecord {
            id,
            protocol: 6,
            source,
            destination,
            source_stats: SideStats { packets: 1, bytes: 60, payload_bytes: 0, tcp_flags: 2 },
            destination_stats: SideStats::default(),
            start: Timestamp::from_parts(1_700_000_000 + id as i64, 0),
            end: Timestamp::from_parts(1_700_000_001 + id as i64, 0),
            first_frame: FrameRef { file: 0, frame: id },
            direction,
            end_reason: EndReason::IdleTimeout,
            tunnels: Default::default(),
            carries: None,
        }
    }

    #[test]
    fn the_cache_renders_each_address_once_as_the_owned_rendering_does() {
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let i = intel(ip, "DE", 64500, Some("hetzner"));
        let mut cache = IntelJsonCache::default();
        cache.render(ip, &i);
        let len = cache.arena.len();
        cache.render(ip, &i);
        assert_eq!(cache.arena.len(), len, "rendered twice");
        let cached = cache.get(&ip).unwrap();
        let owned = IntelJson::new(&i);
        assert_eq!(cached.endpoint, owned.fields().endpoint);
        assert_eq!(cached.remote, owned.fields().remote);
        let endpoint = String::from_utf8(cached.endpoint.to_vec()).unwrap();
        assert_eq!(endpoint, r#""geo":{"country_iso_code":"DE"},"as":{"number":64500}"#);
        assert!(cache.get(&"198.51.100.8".parse().unwrap()).is_none());
    }

    /// More flows than one rendering chunk and one fetch-ahead run, in
    /// both directions, with and without intelligence: the records are in
    /// flow order, the same whether the lookup thread rendered the
    /// addresses or the writer does, and each remote end carries its own
    /// address's fields.
    #[test]
    fn records_carry_each_remote_address_s_fields_whether_rendered_ahead_or_not() {
        // Five addresses: a run of 32 records does not start at the same
        // one each time.
        let remotes: Vec<IpAddr> =
            ["198.51.100.1", "198.51.100.2", "2001:db8::3", "203.0.113.4", "203.0.113.5"]
                .iter()
                .map(|a| a.parse().unwrap())
                .collect();
        let countries = ["DE", "CN", "US", "JP"];
        let mut report = AuditReport::default();
        for (n, remote) in
            remotes.iter().cycle().take(2 * RENDER_CHUNK + 3 * FETCH_AHEAD + 5).enumerate()
        {
            let direction = if n % 3 == 0 { Direction::Inbound } else { Direction::Outbound };
            report.flows.push(flow(n as u64 + 1, *remote, direction));
        }
        report.flows.push(flow(999, "192.0.2.20".parse().unwrap(), Direction::Internal));
        // The last address has no intelligence (e.g. looked up by no one).
        for (ip, country) in remotes.iter().zip(countries) {
            report.remote_intel.insert(*ip, Arc::new(intel(*ip, country, 64496, None)));
        }
        let records = Records { flows: true, findings: true };
        let mut ahead = IntelJsonCache::default();
        for (ip, i) in &report.remote_intel {
            ahead.render(*ip, i);
        }
        let mut filled = Vec::new();
        write_jsonl(&report, &ahead, records, &mut filled).unwrap();
        let mut at_write = Vec::new();
        write_jsonl(&report, &IntelJsonCache::default(), records, &mut at_write).unwrap();
        assert_eq!(String::from_utf8_lossy(&filled), String::from_utf8_lossy(&at_write));

        let lines: Vec<serde_json::Value> = filled
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), report.flows.len());
        for (line, rec) in lines.iter().zip(&report.flows) {
            assert_eq!(line["xborder"]["flow"]["first_frame"], rec.first_frame.frame, "order");
            let side = match rec.direction {
                Direction::Inbound => "source",
                _ => "destination",
            };
            let country = &line[side]["geo"]["country_iso_code"];
            match rec.remote().and_then(|r| report.remote_intel.get(&r.ip)) {
                Some(i) if rec.direction != Direction::Internal => {
                    assert_eq!(country, i.country.unwrap().as_str(), "{line}");
                    assert_eq!(
                        line["xborder"]["remote"]["jurisdiction"],
                        i.country.unwrap().as_str()
                    );
                }
                _ => {
                    assert!(country.is_null(), "{line}");
                    assert!(line["xborder"]["remote"].is_null(), "{line}");
                }
            }
        }
    }

    /// As the elements of an array (the JSON document): one comma between
    /// records, none before the first, in flow order over several chunks.
    #[test]
    fn records_as_array_elements_are_one_valid_array() {
        let mut report = AuditReport::default();
        let remote: IpAddr = "198.51.100.1".parse().unwrap();
        for n in 0..(RENDER_CHUNK * 2 + 7) as u64 {
            report.flows.push(flow(n + 1, remote, Direction::Outbound));
        }
        let records = Records { flows: true, findings: false };
        for flows in [&report.flows[..0], &report.flows[..1], &report.flows[..]] {
            let part = AuditReport { flows: flows.to_vec(), ..AuditReport::default() };
            let mut out = b"[".to_vec();
            let mut first = true;
            write_records(&part, &IntelJsonCache::default(), records, Some(&mut first), &mut out)
                .unwrap();
            // The next part of the run into the same array.
            let next = AuditReport { flows: flows.to_vec(), ..AuditReport::default() };
            write_records(&next, &IntelJsonCache::default(), records, Some(&mut first), &mut out)
                .unwrap();
            out.push(b']');
            let array: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
            assert_eq!(array.len(), flows.len() * 2);
            for (element, rec) in array.iter().zip(flows.iter().chain(flows)) {
                assert_eq!(element["xborder"]["flow"]["first_frame"], rec.first_frame.frame);
            }
        }
    }

    /// Findings on flows spread over several rendering chunks: each
    /// finding's record follows its flow's, and only they are written
    /// when the records are findings only.
    #[test]
    fn each_finding_follows_its_flow_across_chunks() {
        let policy = crate::policy::one_rule_policy("inbound", "inbound");
        let mut report = AuditReport::default();
        let remote: IpAddr = "198.51.100.1".parse().unwrap();
        for n in 0..(RENDER_CHUNK * 3 + 1) as u64 {
            // Inbound every 7th flow (some chunks start or end with one),
            // none in the second chunk.
            let inbound = n % 7 == 0 && n as usize / RENDER_CHUNK != 1;
            let direction = if inbound { Direction::Inbound } else { Direction::Outbound };
            report.flows.push(flow(n + 1, remote, direction));
        }
        crate::pipeline::apply_policy(&mut report, policy);
        let inbound = report.flows.iter().filter(|f| f.direction == Direction::Inbound).count();
        assert_eq!(report.findings.len(), inbound);

        let mut out = Vec::new();
        let all = Records { flows: true, findings: true };
        write_jsonl(&report, &IntelJsonCache::default(), all, &mut out).unwrap();
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), report.flows.len() + inbound);
        let frame = |v: &serde_json::Value| v["xborder"]["flow"]["first_frame"].as_u64();
        let mut flows = report.flows.iter();
        for (i, line) in lines.iter().enumerate() {
            if line["event"]["kind"] == "alert" {
                assert_eq!(frame(line), frame(&lines[i - 1]), "after its flow");
                assert_eq!(line["rule"]["id"], "inbound");
            } else {
                assert_eq!(frame(line), flows.next().map(|f| f.first_frame.frame), "flow order");
            }
        }

        let mut only = Vec::new();
        let findings = Records { flows: false, findings: true };
        write_jsonl(&report, &IntelJsonCache::default(), findings, &mut only).unwrap();
        let alerts: Vec<&serde_json::Value> =
            lines.iter().filter(|l| l["event"]["kind"] == "alert").collect();
        let only: Vec<serde_json::Value> = only
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(only.iter().collect::<Vec<_>>(), alerts);
    }
}
