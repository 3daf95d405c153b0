//! Feeding the parsers from flows: the first packets of each flow (the
//! flow table hands out [`INSPECTION_BUDGET`] packets with payload per
//! flow), the client's TCP stream reassembled in sequence order up to
//! [`MAX_STREAM`] bytes, DNS answers kept in a bounded, TTL-aware map of
//! address → names. Per-flow state is freed as soon as a name is found or
//! the budget is spent.
//!
//! [`INSPECTION_BUDGET`]: crate::flow::INSPECTION_BUDGET

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{dns, http, quic, tls, Parsed};
use crate::decode::FrameRef;
use crate::decode::IpPacket;
use crate::flow::{Inspect, INSPECTION_BUDGET};
use crate::time::Timestamp;

/// Client bytes kept per flow while a message is incomplete.
pub const MAX_STREAM: usize = tls::MAX_HELLO + 5 * 4;
/// Addresses kept in the DNS map at most.
pub const MAX_DNS_ADDRESSES: usize = 200_000;
/// How long past its TTL an answer still names an address (clients keep
/// connections and caches longer than TTLs say).
pub const DNS_GRACE: Duration = Duration::from_secs(3600);

const DNS_PORT: u16 = 53;
/// The largest DNS message plus its length prefix.
const MAX_DNS_TCP: usize = 65_537;

/// Where a server name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    TlsSni,
    HttpHost,
    QuicSni,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::TlsSni => "tls_sni",
            NameSource::HttpHost => "http_host",
            NameSource::QuicSni => "quic_sni",
        }
    }
}

/// What the traffic says a flow's server is called.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowNames {
    pub server_name: Option<(Arc<str>, NameSource)>,
    /// Names that DNS answers seen before the flow gave for its remote
    /// address: queried names and CNAME chains.
    pub dns: DnsNames,
}

/// Names DNS answers gave an address, each once, in the order given: one
/// list for every flow an answer names (most flows' remote address has
/// one answer valid at their start).
pub type DnsNames = Arc<[Arc<str>]>;

/// A client stream being reassembled.
#[derive(Default)]
struct Stream {
    /// Sequence number of the first client byte, from the SYN; without a
    /// SYN the first segment seen is taken as the start.
    start: Option<u32>,
    /// (sequence number, bytes) held while a message is incomplete.
    segments: Vec<(u32, Vec<u8>)>,
    inspected: u8,
    /// Nothing (more) to find in this stream.
    done: bool,
}

impl Stream {
    /// The contiguous bytes from the stream's start.
    fn assembled(&self, start: u32) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let next = start.wrapping_add(out.len() as u32);
            // A segment covering `next` (retransmissions may overlap).
            let Some((seq, bytes)) =
                self.segments.iter().find(|(seq, b)| (next.wrapping_sub(*seq) as usize) < b.len())
            else {
                return out;
            };
            let off = next.wrapping_sub(*seq) as usize;
            out.extend_from_slice(&bytes[off..]);
            if out.len() >= MAX_STREAM {
                out.truncate(MAX_STREAM);
                return out;
            }
        }
    }
}

/// The server name in a client stream's first bytes.
fn server_name(data: &[u8]) -> Parsed<Option<(Arc<str>, NameSource)>> {
    match tls::client_hello_sni(data) {
        Parsed::Done(s) => Parsed::Done(s.map(|s| (s, NameSource::TlsSni))),
        Parsed::NeedMore => Parsed::NeedMore,
        Parsed::NotThis => match http::request_host(data) {
            Parsed::Done(h) => Parsed::Done(h.map(|h| (h, NameSource::HttpHost))),
            Parsed::NeedMore => Parsed::NeedMore,
            Parsed::NotThis => Parsed::NotThis,
        },
    }
}

struct DnsEntry {
    names: DnsNames,
    seen: Timestamp,
    until: Timestamp,
}

/// What one DNS response said: each address with the names that lead to
/// it and its TTL, seen at `ts` in frame `at`.
#[derive(Clone, Debug)]
pub struct DnsResponse {
    pub at: FrameRef,
    pub ts: Timestamp,
    pub addresses: Vec<(IpAddr, Vec<Arc<str>>, u32)>,
}

/// What DNS answers said each address is called: bounded
/// ([`MAX_DNS_ADDRESSES`]), TTL-aware. The same responses in the same order
/// give the same map, wherever they were parsed.
#[derive(Default)]
pub struct DnsMap {
    map: HashMap<IpAddr, Vec<DnsEntry>, ahash::RandomState>,
    /// One copy of each name the entries hold (up to [`MAX_INTERNED`], then
    /// it starts again): every flow named by the map clones its names, and
    /// a few shared copies stay in cache where one per response would not
    /// (a third of naming a flow was that clone's cache miss).
    interned: HashSet<Arc<str>, ahash::RandomState>,
    /// The list of no names, shared.
    none: DnsNames,
}

/// The names of `entries`, in order, each once.
fn merged<'a>(entries: impl Iterator<Item = &'a DnsEntry>) -> Vec<Arc<str>> {
    let mut out: Vec<Arc<str>> = Vec::new();
    for n in entries.flat_map(|e| e.names.iter()) {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// Names [`DnsMap`] shares at most.
const MAX_INTERNED: usize = 1 << 16;

impl DnsMap {
    /// The map's copy of `name`.
    fn intern(&mut self, name: &Arc<str>) -> Arc<str> {
        if let Some(shared) = self.interned.get(&**name) {
            return shared.clone();
        }
        if self.interned.len() >= MAX_INTERNED {
            self.interned.clear();
        }
        self.interned.insert(name.clone());
        name.clone()
    }

    pub fn insert(&mut self, response: &DnsResponse) {
        let ts = response.ts;
        for (ip, names, ttl) in &response.addresses {
            let mut unique: Vec<Arc<str>> = Vec::with_capacity(names.len());
            for n in names {
                if !unique.contains(n) {
                    unique.push(self.intern(n));
                }
            }
            let entry = DnsEntry {
                names: unique.into(),
                seen: ts,
                until: ts.plus(Duration::from_secs(u64::from(*ttl))).plus(DNS_GRACE),
            };
            let list = self.map.entry(*ip).or_default();
            list.retain(|e| e.until >= ts && e.names != entry.names);
            list.push(entry);
        }
        if self.map.len() > MAX_DNS_ADDRESSES {
            self.evict(ts);
        }
    }

    /// Drops expired answers; if that is not enough, the older half.
    fn evict(&mut self, now: Timestamp) {
        self.map.retain(|_, list| {
            list.retain(|e| e.until >= now);
            !list.is_empty()
        });
        if self.map.len() > MAX_DNS_ADDRESSES * 3 / 4 {
            let mut seen: Vec<Timestamp> =
                self.map.values().filter_map(|l| l.last()).map(|e| e.seen).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            self.map.retain(|_, list| list.last().is_some_and(|e| e.seen > cut));
        }
    }

    /// The names DNS answers valid at `start` gave `remote`: the list of
    /// the one answer valid then, shared, or those of several merged.
    pub fn names_at(&self, remote: Option<IpAddr>, start: Timestamp) -> DnsNames {
        let Some(list) = remote.and_then(|ip| self.map.get(&ip)) else {
            return self.none.clone();
        };
        let mut valid = list.iter().filter(|e| e.seen <= start && start <= e.until);
        let Some(first) = valid.next() else {
            return self.none.clone();
        };
        let Some(second) = valid.next() else {
            return first.names.clone();
        };
        merged([first, second].into_iter().chain(valid)).into()
    }

    /// Every name DNS answers gave `ip`, whenever they were seen.
    pub fn names(&self, ip: IpAddr) -> Vec<Arc<str>> {
        merged(self.map.get(&ip).into_iter().flatten())
    }

    /// Addresses held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The names stage of an audit.
#[derive(Default)]
pub struct NameInspector {
    // ahash: these are touched for the first packets of every flow.
    streams: HashMap<u64, Stream, ahash::RandomState>,
    /// CRYPTO frames of QUIC connections whose ClientHello is incomplete.
    quic: HashMap<u64, Vec<quic::CryptoPiece>, ahash::RandomState>,
    /// The last datagram's Initials, opened (buffers reused).
    opened_quic: quic::OpenedInitials,
    /// Incomplete DNS messages of DNS-over-TCP servers; `None` once a
    /// stream on port 53 turned out not to be DNS.
    dns_tcp: HashMap<u64, Option<Vec<u8>>, ahash::RandomState>,
    found: HashMap<u64, (Arc<str>, NameSource), ahash::RandomState>,
    dns: DnsMap,
    /// With [`NameInspector::deferring`]: the responses parsed since the
    /// last [`NameInspector::take_responses`], not in `dns`.
    deferred: Option<Vec<DnsResponse>>,
    /// DNS responses that could not be parsed.
    pub dns_errors: u64,
}

impl NameInspector {
    pub fn new() -> Self {
        Self::default()
    }

    /// A names stage that keeps no DNS map: it hands the responses it
    /// parses to the caller ([`NameInspector::take_responses`]), whose map
    /// (over every shard's responses, in packet order) names the flows'
    /// remote addresses; [`NameInspector::finish`] gives only server names.
    pub fn deferring() -> Self {
        Self { deferred: Some(Vec::new()), ..Self::default() }
    }

    /// The DNS responses parsed since the last call, in packet order
    /// (with [`NameInspector::deferring`]).
    pub fn take_responses(&mut self) -> Vec<DnsResponse> {
        self.deferred.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Looks at one packet the flow table handed out. Returns whether more
    /// packets of its flow are wanted: when not, the caller tells the table
    /// (`FlowTable::end_inspection`), which hands out no more of them.
    pub fn inspect(&mut self, at: Inspect, packet: &IpPacket<'_>, ts: Timestamp) -> bool {
        let Some((sport, dport)) = packet.ports else { return false };
        // DNS flows are followed whole.
        let dns = sport == DNS_PORT || dport == DNS_PORT;
        match packet.protocol {
            17 if sport == DNS_PORT => {
                self.dns_response(packet.payload, ts, at.frame);
            }
            6 if sport == DNS_PORT && !at.from_initiator => {
                self.dns_tcp_segment(at.flow, packet.payload, ts, at.frame)
            }
            17 if at.from_initiator && quic::looks_like_quic(packet.payload) => {
                return self.quic_datagram(at.flow, packet.payload) || dns;
            }
            6 if at.from_initiator => {
                return self.client_segment(at, packet.tcp_seq, packet.payload, dns) || dns;
            }
            // A client datagram that is not QUIC: the flow is not.
            17 if at.from_initiator => return dns,
            _ => {}
        }
        true
    }

    /// Returns whether more segments are wanted.
    fn client_segment(&mut self, at: Inspect, seq: u32, payload: &[u8], dns_flow: bool) -> bool {
        if payload.is_empty() {
            return true;
        }
        let flow = at.flow;
        // The common case, a whole message (or none) in the first segment,
        // is parsed in place and leaves no state (also when the segment
        // starts before the stream, e.g. a retransmission overlapping the
        // SYN's sequence number). Without a SYN the first segment seen is
        // taken as the start.
        let result = match self.streams.get_mut(&flow) {
            Some(stream) if stream.done => return false,
            Some(stream) => {
                stream.inspected += 1;
                let start = *stream.start.get_or_insert(seq);
                stream.segments.push((seq, payload.to_vec()));
                let result = server_name(&stream.assembled(start));
                if matches!(result, Parsed::NeedMore) && stream.inspected < INSPECTION_BUDGET {
                    return true;
                }
                result
            }
            None => {
                let start = at.stream_start.unwrap_or(seq);
                let offset = start.wrapping_sub(seq) as usize;
                // A later part of the stream may come first: then wait
                // for the start.
                let result = if offset < payload.len() {
                    server_name(&payload[offset..])
                } else {
                    Parsed::NeedMore
                };
                if matches!(result, Parsed::NeedMore) {
                    let stream = Stream {
                        start: Some(start),
                        segments: vec![(seq, payload.to_vec())],
                        inspected: 1,
                        done: false,
                    };
                    self.streams.insert(flow, stream);
                    return true;
                }
                result
            }
        };
        if let Parsed::Done(Some(name)) = result {
            self.found.insert(flow, name);
        }
        // Done. The table hands out no more of this flow, so its state can
        // go, except for a DNS flow (still followed), which keeps a marker.
        if dns_flow {
            self.streams.insert(flow, Stream { done: true, ..Stream::default() });
        } else {
            self.streams.remove(&flow);
        }
        false
    }

    /// DNS over TCP (RFC 7766): messages each behind a two-byte length, in
    /// the server's stream (taken in arrival order); a message may span
    /// segments.
    fn dns_tcp_segment(&mut self, flow: u64, payload: &[u8], ts: Timestamp, frame: FrameRef) {
        let Some(buf) = self.dns_tcp.entry(flow).or_insert_with(|| Some(Vec::new())) else {
            return; // not DNS after all
        };
        buf.extend_from_slice(payload);
        let mut messages = Vec::new();
        let mut at = 0;
        let mut valid = true;
        while let Some(prefix) = buf.get(at..at + 2) {
            let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
            // A DNS message has at least its 12-byte header.
            if len < 12 {
                valid = false;
                break;
            }
            let Some(message) = buf.get(at + 2..at + 2 + len) else { break };
            messages.push(message.to_vec());
            at += 2 + len;
        }
        buf.drain(..at);
        if !valid || buf.len() > MAX_DNS_TCP {
            self.dns_tcp.insert(flow, None);
        }
        for m in messages {
            if !self.dns_response(&m, ts, frame) {
                self.dns_tcp.insert(flow, None);
                return;
            }
        }
    }

    /// Returns whether more datagrams are wanted.
    fn quic_datagram(&mut self, flow: u64, datagram: &[u8]) -> bool {
        if self.found.contains_key(&flow) {
            return false;
        }
        // Most connections name their server in their first Initial:
        // those leave no state, and allocate nothing but the name.
        self.opened_quic.open(datagram);
        let earlier = if self.quic.is_empty() { None } else { self.quic.remove(&flow) };
        let kept = earlier.iter().flatten().map(|(off, d)| (*off, &d[..]));
        let stream = quic::assemble(kept.chain(self.opened_quic.pieces()));
        match quic::crypto_sni(&stream) {
            Ok(Some(name)) => {
                self.found.insert(flow, (name, NameSource::QuicSni));
                false
            }
            Ok(None) => false,
            // Wait for the rest of the ClientHello (Chrome's spans two
            // Initial packets), within the flow's budget.
            Err(_) => {
                drop(stream);
                let mut pieces = earlier.unwrap_or_default();
                pieces.extend(self.opened_quic.to_pieces());
                self.quic.insert(flow, pieces);
                true
            }
        }
    }

    /// Returns whether `message` was a DNS response (else it is counted
    /// in `dns_errors`).
    fn dns_response(&mut self, message: &[u8], ts: Timestamp, at: FrameRef) -> bool {
        let Ok(response) = dns::parse_response(message) else {
            self.dns_errors += 1;
            return false;
        };
        let response = DnsResponse { at, ts, addresses: response.names_by_address() };
        match &mut self.deferred {
            Some(deferred) => deferred.push(response),
            None => self.dns.insert(&response),
        }
        true
    }

    /// The names of a finished flow, forgetting its per-flow state.
    pub fn finish(&mut self, flow: u64, remote: Option<IpAddr>, start: Timestamp) -> FlowNames {
        // Most of these maps are empty most of the time: skip hashing then.
        if !self.streams.is_empty() {
            self.streams.remove(&flow);
        }
        if !self.quic.is_empty() {
            self.quic.remove(&flow);
        }
        if !self.dns_tcp.is_empty() {
            self.dns_tcp.remove(&flow);
        }
        let server_name = if self.found.is_empty() { None } else { self.found.remove(&flow) };
        FlowNames { server_name, dns: self.dns.names_at(remote, start) }
    }

    /// The names of a live flow so far, keeping its state.
    pub fn peek(&self, flow: u64, remote: Option<IpAddr>, start: Timestamp) -> FlowNames {
        let server_name = if self.found.is_empty() { None } else { self.found.get(&flow).cloned() };
        FlowNames { server_name, dns: self.dns.names_at(remote, start) }
    }

    /// Every name DNS answers gave `ip`, whenever they were seen.
    pub fn dns_names(&self, ip: IpAddr) -> Vec<Arc<str>> {
        self.dns.names(ip)
    }

    /// Per-flow states held now (for tests of the memory bound).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::decode::{decode, Decoded};
    use etherparse::PacketBuilder;

    const FRAME: FrameRef = FrameRef { file: 0, frame: 1 };

    /// A response at second `secs` naming `ip` `name` (a fresh copy).
    fn naming(ip: [u8; 4], name: &str, secs: i64) -> DnsResponse {
        DnsResponse {
            at: FRAME,
            ts: Timestamp::from_parts(secs, 0),
            addresses: vec![(IpAddr::from(ip), vec![Arc::from(name)], 300)],
        }
    }

    /// Responses that give the same name in copies of their own leave one
    /// shared copy in the map; past the bound it starts again, with the
    /// same answers.
    #[test]
    fn the_dns_map_shares_one_copy_of_each_name() {
        let mut map = DnsMap::default();
        map.insert(&naming([192, 0, 2, 1], "a.example", 1));
        map.insert(&naming([192, 0, 2, 2], "a.example", 2));
        let at = Timestamp::from_parts(3, 0);
        let one = map.names_at(Some([192, 0, 2, 1].into()), at);
        let two = map.names_at(Some([192, 0, 2, 2].into()), at);
        assert_eq!(*one, [Arc::<str>::from("a.example")]);
        assert!(Arc::ptr_eq(&one[0], &two[0]), "two copies of one name");
        for n in 0..MAX_INTERNED {
            map.interned.insert(Arc::from(format!("{n}.filler.example")));
        }
        map.insert(&naming([192, 0, 2, 3], "b.example", 4));
        assert_eq!(map.interned.len(), 1, "past the bound the shared names start again");
        let three = map.names_at(Some([192, 0, 2, 3].into()), Timestamp::from_parts(5, 0));
        assert_eq!(*three, [Arc::<str>::from("b.example")]);
        assert_eq!(map.names_at(Some([192, 0, 2, 1].into()), at), one);
    }

    /// Flows to an address one answer names share that answer's list;
    /// two valid answers give their names merged, in order, each once.
    #[test]
    fn flows_named_by_one_answer_share_its_list() {
        let mut map = DnsMap::default();
        let ip = [192, 0, 2, 1];
        let mut first = naming(ip, "a.example", 1);
        first.addresses[0].1.extend([Arc::from("cdn.example"), Arc::from("a.example")]);
        map.insert(&first);
        let at = |secs| map.names_at(Some(ip.into()), Timestamp::from_parts(secs, 0));
        let (one, two) = (at(2), at(3));
        assert_eq!(*one, [Arc::<str>::from("a.example"), Arc::from("cdn.example")]);
        assert!(Arc::ptr_eq(&one, &two), "each flow its own list");
        assert!(at(0).is_empty(), "before the answer");
        let mut second = naming(ip, "b.example", 4);
        second.addresses[0].1.push(Arc::from("cdn.example"));
        map.insert(&second);
        let merged = map.names_at(Some(ip.into()), Timestamp::from_parts(5, 0));
        let want = ["a.example", "cdn.example", "b.example"].map(Arc::<str>::from);
        assert_eq!(*merged, want);
        assert!(map.names_at(Some([192, 0, 2, 9].into()), Timestamp(0)).is_empty());
    }

    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(src, dst, 64).udp(sport, dport).write(&mut out, payload).unwrap();
        out
    }

    /// A response giving `n.example` the address 10.x.y.z for n.
    fn answer(n: u32) -> Vec<u8> {
        let label = format!("h{n}");
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, label.len() as u8];
        m.extend_from_slice(label.as_bytes());
        m.extend_from_slice(
            b"\x07example\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04",
        );
        m.extend_from_slice(&(0x0a00_0000 | n).to_be_bytes());
        m
    }

    #[test]
    fn the_dns_map_stays_bounded() {
        let mut names = NameInspector::new();
        let n = MAX_DNS_ADDRESSES as u32 + 1000;
        for i in 0..n {
            let ip = udp([192, 0, 2, 53], [192, 0, 2, 1], 53, 40000, &answer(i));
            let Decoded::Ip(p, _) = decode(LinkType::RAW, &ip, ip.len() as u32) else { panic!() };
            // Answers a second apart, all within their TTL.
            names.inspect(
                Inspect { flow: 1, from_initiator: false, stream_start: None, frame: FRAME },
                &p,
                Timestamp::from_parts(i64::from(i), 0),
            );
        }
        assert!(names.dns.len() <= MAX_DNS_ADDRESSES, "{} addresses kept", names.dns.len());
        // The newest answers are kept.
        let newest = IpAddr::from((0x0a00_0000 | (n - 1)).to_be_bytes());
        assert_eq!(names.dns_names(newest).len(), 1);
    }

    fn tcp(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .tcp(40000, 443, seq, 100)
            .ack(1)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn a_segment_overlapping_the_stream_start_is_read_from_the_start() {
        let mut names = NameInspector::new();
        // The flow table saw the SYN (sequence number 999).
        let at = Inspect { flow: 1, from_initiator: true, stream_start: Some(1000), frame: FRAME };
        // Two stray bytes before the stream's first byte (1000), then an
        // HTTP request: found without reassembly, and no state is left.
        let mut data = b"xx".to_vec();
        data.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
        let seg = tcp(998, &data);
        let Decoded::Ip(p, _) = decode(LinkType::RAW, &seg, seg.len() as u32) else { panic!() };
        assert!(!names.inspect(at, &p, Timestamp(0)), "done with the flow");
        assert_eq!(names.open_streams(), 0);
        let found = names.finish(1, None, Timestamp(0)).server_name;
        assert_eq!(found, Some(("a.example".into(), NameSource::HttpHost)));
    }

    #[test]
    fn per_flow_state_is_freed() {
        let mut names = NameInspector::new();
        let mut tcp = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .tcp(40000, 443, 7, 100)
            .write(&mut tcp, &[0x16, 3, 1, 0, 200, 1])
            .unwrap();
        let Decoded::Ip(p, _) = decode(LinkType::RAW, &tcp, tcp.len() as u32) else { panic!() };
        for flow in 0..100 {
            names.inspect(
                Inspect { flow, from_initiator: true, stream_start: None, frame: FRAME },
                &p,
                Timestamp(0),
            );
        }
        assert_eq!(names.open_streams(), 100, "incomplete ClientHellos wait");
        for flow in 0..100 {
            names.finish(flow, None, Timestamp(0));
        }
        assert_eq!(names.open_streams(), 0);
    }

    #[test]
    fn dns_over_tcp_across_segments() {
        let mut names = NameInspector::new();
        let m = answer(7);
        let mut stream = (m.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(&m);
        for chunk in [&stream[..1], &stream[1..20], &stream[20..]] {
            let mut tcp = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 53], [192, 0, 2, 1], 64)
                .tcp(53, 40000, 1, 100)
                .write(&mut tcp, chunk)
                .unwrap();
            let Decoded::Ip(p, _) = decode(LinkType::RAW, &tcp, tcp.len() as u32) else { panic!() };
            names.inspect(
                Inspect { flow: 9, from_initiator: false, stream_start: None, frame: FRAME },
                &p,
                Timestamp(0),
            );
        }
        assert_eq!(names.dns_names("10.0.0.7".parse().unwrap()), vec![Arc::from("h7.example")]);
    }
}
