//! Flow records as JSON lines, one object per flow in order of the first
//! packet. Field names follow the Elastic Common Schema where it has one;
//! the rest lives under `xborder.*`. The schema is documented in README.md.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use super::findings::FindingView;
use super::json::{escape_into, JsonObject};
use super::AuditReport;
use crate::flow::{protocol_name, EndReason, Endpoint, FlowRecord, SideStats};
use crate::intel::Intel;
use crate::names::{FlowNames, NameSource};

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

/// The intelligence of one remote address as JSON, written once per
/// address and copied into each of its flows: the endpoint's ECS fields
/// and the `remote` object.
/// The rendered intelligence of each remote address, for the records
/// (hashed as [`super::RemoteIntel`]).
pub type IntelJsonCache = HashMap<IpAddr, IntelJson, ahash::RandomState>;

pub struct IntelJson {
    /// The endpoint's fields, then the remote's: one allocation (an audit
    /// keeps one per distinct remote address).
    fields: Box<[u8]>,
    /// Where the remote's fields start.
    split: usize,
}

impl IntelJson {
    pub fn new(i: &Intel) -> Self {
        // Written as objects, kept without their braces: they are fields
        // of the enclosing objects.
        let mut buf = Vec::with_capacity(512);
        let mut fields = |write: &dyn Fn(&mut JsonObject<'_>)| {
            let start = buf.len();
            let mut o = JsonObject::new(&mut buf);
            write(&mut o);
            o.end();
            buf.pop();
            buf.remove(start);
            buf.len()
        };
        let split = fields(&|o| endpoint_intel(o, i));
        fields(&|o| remote_intel(o, i));
        Self { fields: buf.into_boxed_slice(), split }
    }

    fn endpoint(&self) -> &[u8] {
        self.fields.get(..self.split).unwrap_or_default()
    }

    fn remote(&self) -> &[u8] {
        self.fields.get(self.split..).unwrap_or_default()
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

/// Appends one flow record (without the newline) to `buf`; `file` is the
/// input's path, already a JSON string; `intel` describes the remote end.
pub fn write_record(
    buf: &mut Vec<u8>,
    rec: &FlowRecord,
    file: &[u8],
    intel: Option<&IntelJson>,
    names: Option<&FlowNames>,
    finding: Option<&FindingView<'_>>,
) {
    let remote_is_responder = rec.direction.remote_is_responder();
    let fields = intel.map(IntelJson::endpoint);
    let (src_intel, dst_intel) = match remote_is_responder {
        Some(true) => (None, fields),
        Some(false) => (fields, None),
        None => (None, None),
    };
    let mut o = JsonObject::new(buf);
    o.timestamp("@timestamp", rec.start);
    let mut event = o.object("event");
    event.keyword("kind", if finding.is_some() { "alert" } else { "event" });
    event.keywords("category", ["network"].into_iter());
    if let Some(f) = finding {
        event.u64("severity", f.rule.severity.number());
    }
    event.timestamp("start", rec.start);
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
    if let Some(f) = finding {
        rule_fields(&mut o, f);
    }
    let mut x = o.object("xborder");
    if let Some(f) = finding {
        finding_fields(&mut x, f);
    }
    let mut flow = x.object("flow");
    flow.raw("file", file);
    flow.u64("first_frame", rec.first_frame.frame);
    flow.keyword("end_reason", end_reason(rec.end_reason));
    if let Some(responder) = remote_is_responder {
        flow.keyword("remote", if responder { "destination" } else { "source" });
    }
    let tcp = rec.protocol == 6;
    side_extra(&mut flow, "source", &rec.source_stats, tcp);
    side_extra(&mut flow, "destination", &rec.destination_stats, tcp);
    flow.end();
    if let Some(i) = intel.filter(|_| remote_is_responder.is_some()) {
        x.raw_fields(i.remote());
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
    x.end();
    o.end();
}

/// ECS `rule.*`.
fn rule_fields(o: &mut JsonObject<'_>, f: &FindingView<'_>) {
    let mut rule = o.object("rule");
    rule.string("id", &f.rule.id);
    rule.string("name", &f.rule.title);
    rule.string("ruleset", &f.pack.name);
    rule.string("version", &f.pack.version);
    if let Some(d) = &f.rule.description {
        rule.string("description", d);
    }
    if let Some(r) = &f.pack.reference {
        rule.string("reference", r);
    }
    rule.end();
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
/// `cached` holds the intelligence JSON of addresses already rendered (it
/// can be filled on another thread meanwhile); the rest are rendered here.
pub fn write_jsonl(
    report: &AuditReport,
    cached: &mut IntelJsonCache,
    records: Records,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_records(report, cached, records, false, out)
}

/// The records of [`write_jsonl`]: one per line, or (`array`) separated
/// by commas as the elements of a JSON array.
pub(super) fn write_records(
    report: &AuditReport,
    cached: &mut IntelJsonCache,
    records: Records,
    array: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut first = true;
    let mut record = |buf: &mut Vec<u8>, write: &dyn Fn(&mut Vec<u8>)| {
        if array && !first {
            buf.push(b',');
        }
        first = false;
        write(buf);
        if !array {
            buf.push(b'\n');
        }
    };
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
    let mut buf = Vec::with_capacity(1 << 16);
    let mut findings = report.finding_views().peekable();
    for (index, rec) in report.flows.iter().enumerate() {
        let has_finding = findings.peek().is_some_and(|f| f.finding.flow == index);
        if !records.flows && !has_finding {
            continue;
        }
        let file = files.get(rec.first_frame.file as usize).map_or(&b"\"\""[..], Vec::as_slice);
        // One hash lookup per record when the JSON is cached already.
        let intel = rec.remote().and_then(|r| match cached.entry(r.ip) {
            Entry::Occupied(o) => Some(&*o.into_mut()),
            Entry::Vacant(v) => {
                report.remote_intel.get(&r.ip).map(|f| &*v.insert(IntelJson::new(f)))
            }
        });
        let names = report.names.get(&rec.id);
        if records.flows {
            record(&mut buf, &|b| write_record(b, rec, file, intel, names, None));
        }
        while let Some(f) = findings.next_if(|f| f.finding.flow == index) {
            if records.findings {
                record(&mut buf, &|b| write_record(b, rec, file, intel, names, Some(&f)));
            }
        }
        if buf.len() > 60_000 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}
