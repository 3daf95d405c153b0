//! The bidirectional flow table.
//!
//! Per packet it hashes the canonical key and updates counters; nothing is
//! allocated unless a flow starts. Time is trace time only: a flow ends when
//! a later packet of the capture shows it has been idle past its timeout,
//! when a periodic sweep finds it so, or at the end of the capture. Memory
//! is bounded by the flows alive at once, never by the number of packets.

use std::net::IpAddr;
use std::time::Duration;

use indexmap::map::Entry;
use indexmap::IndexMap;

use super::fragments::{DatagramId, FragmentTracker};
use super::key::{Endpoint, FlowKey, TunnelId, Way};
use super::record::{EndReason, FlowRecord, SideStats};
use super::tunnels::{IdSet, TunnelRegistry};
use super::LocalNetworks;
use crate::decode::{
    tcp_flags, AnomalyCounter, AnomalyKind, FrameRef, IpPacket, TunnelChain, TunnelKind,
    TunnelLayer,
};
use crate::time::Timestamp;

/// Idle timeouts, close to Zeek's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// An open TCP connection (Zeek `tcp_inactivity_timeout`: 5 min).
    pub tcp: Duration,
    /// A TCP connection after FIN from both sides or a RST (Zeek
    /// `tcp_close_delay`: 5 s), so late ACKs still count to it.
    pub tcp_closed: Duration,
    /// UDP (Zeek `udp_inactivity_timeout`: 1 min).
    pub udp: Duration,
    /// ICMP and every other protocol (1 min).
    pub other: Duration,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        Self {
            tcp: Duration::from_secs(300),
            tcp_closed: Duration::from_secs(5),
            udp: Duration::from_secs(60),
            other: Duration::from_secs(60),
        }
    }
}

/// How many packets with payload of each flow are handed out for name
/// inspection (TLS ClientHello, QUIC Initial, HTTP request): the names are
/// in the first packets, and inspecting more would cost every packet.
/// Flows on port 53 (DNS) are inspected whole.
pub const INSPECTION_BUDGET: u8 = 8;

/// `FlowState::inspected`: the packets handed out in its low bits, these
/// low bits once the names stage is done with the flow, and a flag for a
/// known `stream_start`.
const INSPECTION_ENDED: u8 = 0x7f;
const INSPECTION_COUNT: u8 = 0x7f;
const STREAM_START_KNOWN: u8 = 0x80;

/// `FlowState::first`: the first packet's input (high 24 bits) and frame
/// number (low 40 bits), packed so that the entry keeps to two cache lines.
/// Beyond 16,777,215 inputs or 2^40 frames in one input the reference
/// wraps.
const FRAME_BITS: u32 = 40;

fn pack_frame(at: FrameRef) -> u64 {
    (u64::from(at.file) << FRAME_BITS) | (at.frame & ((1 << FRAME_BITS) - 1))
}

fn unpack_frame(first: u64) -> FrameRef {
    FrameRef { file: (first >> FRAME_BITS) as u32, frame: first & ((1 << FRAME_BITS) - 1) }
}

/// DNS, whose flows are inspected beyond the budget.
const DNS_PORT: u16 = 53;

/// A packet the names stage should look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspect {
    /// The flow's id ([`FlowRecord::id`]).
    pub flow: u64,
    /// Sent by the flow's initiator.
    pub from_initiator: bool,
    /// TCP: the sequence number of the client's first byte, when its SYN
    /// was seen (where its stream starts).
    pub stream_start: Option<u32>,
    /// Where the packet is (DNS answers are applied in packet order).
    pub frame: FrameRef,
}

/// How often, in trace time, idle flows are swept out.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// When the periodic sweeps run: at the first packet at or past the next
/// sweep time, before it is applied. A table keeps its own; a sharded
/// audit keeps one for every shard's table, so that each sweeps at the
/// same packets as one table would ([`FlowTable::drive_sweeps`]).
#[derive(Clone, Copy, Debug)]
pub struct SweepClock {
    next: Timestamp,
    /// The latest packet time seen.
    latest: Timestamp,
}

impl Default for SweepClock {
    fn default() -> Self {
        Self { next: Timestamp(i64::MIN), latest: Timestamp(i64::MIN) }
    }
}

impl SweepClock {
    /// A decoded packet at `ts`: whether the tables sweep at `ts` first.
    pub fn tick(&mut self, ts: Timestamp) -> bool {
        self.latest = self.latest.max(ts);
        if ts >= self.next {
            self.next = ts.plus(SWEEP_INTERVAL);
            return true;
        }
        false
    }

    /// The latest packet time seen (where the last sweep of a capture runs).
    pub fn latest(&self) -> Timestamp {
        self.latest
    }
}

/// A flow's id from the frame that started it and the packet's depth in
/// tunnels (a tunnelled packet starts its tunnel's flow and one per layer
/// inside; each packet of a frame is applied once): the same flow has the
/// same id however the packets are spread over shards. Unique up to 2^21
/// inputs and 2^40 frames per input.
fn flow_id(at: FrameRef, depth: u8) -> u64 {
    (pack_frame(at) << 3) | u64::from(depth & 7)
}

/// Where a packet sits among tunnels: inside which ones, and whether it
/// carries one itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// The tunnels around the packet ([`FlowTable::tunnel_id`]; 0: none).
    pub within: TunnelId,
    /// The tunnel this packet carries, when it was decapsulated: its payload
    /// is another packet, not for the names stage.
    pub carries: Option<TunnelKind>,
    /// How many tunnels are around the packet (0 outside any).
    pub depth: u8,
}

/// One packet's contribution to a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub ports: Option<(u16, u16)>,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    pub ip_len: u32,
    pub payload_len: u32,
    pub ts: Timestamp,
    pub at: FrameRef,
    pub place: Place,
}

impl Observation {
    /// The observation of a decoded packet.
    pub fn of(packet: &IpPacket<'_>, place: Place, ts: Timestamp, at: FrameRef) -> Self {
        Self {
            src: packet.src,
            dst: packet.dst,
            protocol: packet.protocol,
            ports: packet.ports,
            tcp_flags: packet.tcp_flags,
            tcp_seq: packet.tcp_seq,
            ip_len: packet.ip_len,
            payload_len: packet.payload_len,
            ts,
            at,
            place,
        }
    }

    fn key(&self) -> (FlowKey, Way) {
        FlowKey::within(
            self.place.within,
            self.protocol,
            Endpoint { ip: self.src, port: self.ports.map(|p| p.0) },
            Endpoint { ip: self.dst, port: self.ports.map(|p| p.1) },
        )
    }
}

/// Per-direction counters of a live flow.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    packets: u64,
    bytes: u64,
    payload_bytes: u64,
}

/// `FlowState::marks`: the initiator's [`Way`] in bit 0, and above it the
/// index in [`TunnelKind::ALL`] plus one of the tunnel the flow carries (0:
/// none), in one byte so that the entry keeps to two cache lines.
const MARK_HI_TO_LO: u8 = 1;
const MARK_CARRIES_SHIFT: u32 = 1;

#[derive(Clone, Debug)]
struct FlowState {
    /// See [`MARK_HI_TO_LO`].
    marks: u8,
    /// Indexed by [`Way`].
    counters: [Counters; 2],
    /// TCP flags seen, indexed by [`Way`]; apart from the counters so that
    /// the whole entry (key included) fits two cache lines.
    flags: [u8; 2],
    start: Timestamp,
    last: Timestamp,
    // The FrameRef of the first packet, split so that the fields pack.
    /// See [`pack_frame`].
    first: u64,
    /// TCP: the client's first sequence number (SYN + 1), when known.
    stream_start: u32,
    /// Packets with payload handed out for name inspection so far.
    inspected: u8,
    /// See [`flow_id`].
    id: u64,
}

impl FlowState {
    fn new(obs: &Observation, way: Way, id: u64) -> Self {
        // The SYN sender initiates; a SYN-ACK shows the receiver did.
        let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
        let initiator = if obs.protocol == 6 && obs.tcp_flags & syn_ack == syn_ack {
            way.reverse()
        } else {
            way
        };
        let marks = if initiator == Way::HiToLo { MARK_HI_TO_LO } else { 0 };
        Self {
            marks,
            counters: [Counters::default(); 2],
            flags: [0; 2],
            start: obs.ts,
            last: obs.ts,
            first: pack_frame(obs.at),
            stream_start: 0,
            inspected: 0,
            id,
        }
    }

    fn initiator(&self) -> Way {
        if self.marks & MARK_HI_TO_LO != 0 {
            Way::HiToLo
        } else {
            Way::LoToHi
        }
    }

    fn carries(&self) -> Option<TunnelKind> {
        let index = usize::from(self.marks >> MARK_CARRIES_SHIFT);
        index.checked_sub(1).and_then(|i| TunnelKind::ALL.get(i)).copied()
    }

    fn update(&mut self, obs: &Observation, way: Way) {
        if let Some(kind) = obs.place.carries {
            if self.carries().is_none() {
                let index = TunnelKind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8;
                self.marks |= (index + 1) << MARK_CARRIES_SHIFT;
            }
        }
        let side = &mut self.counters[way as usize];
        side.packets += 1;
        side.bytes += u64::from(obs.ip_len);
        side.payload_bytes += u64::from(obs.payload_len);
        self.flags[way as usize] |= obs.tcp_flags;
        if obs.ts < self.start {
            self.start = obs.ts;
            self.first = pack_frame(obs.at);
        }
        self.last = self.last.max(obs.ts);
    }

    fn side(&self, way: Way) -> SideStats {
        let c = self.counters[way as usize];
        SideStats {
            packets: c.packets,
            bytes: c.bytes,
            payload_bytes: c.payload_bytes,
            tcp_flags: self.flags[way as usize],
        }
    }

    /// FIN from both sides, or a RST.
    fn tcp_closed(&self) -> bool {
        let [a, b] = self.flags;
        (a & b & tcp_flags::FIN != 0) || ((a | b) & tcp_flags::RST != 0)
    }

    /// Why the flow is over at `now`, if it is.
    fn expiry(&self, protocol: u8, now: Timestamp, t: &FlowTimeouts) -> Option<EndReason> {
        let (timeout, reason) = match protocol {
            6 if self.tcp_closed() => (t.tcp_closed, EndReason::TcpClosed),
            6 => (t.tcp, EndReason::IdleTimeout),
            17 => (t.udp, EndReason::IdleTimeout),
            _ => (t.other, EndReason::IdleTimeout),
        };
        (now.since(self.last) > timeout).then_some(reason)
    }
}

/// Live flows keyed by [`FlowKey`].
pub struct FlowTable {
    /// The entries in one vector and the hash table holding their indices
    /// (an `IndexMap`): a flow costs its entry and a few bytes of index,
    /// and growing the table rehashes indices, never moves entries
    /// through a second table (a million flows in a `HashMap` of these
    /// entries took 405 bytes each at its peak). Flows leave by
    /// `swap_remove`, so the order is deterministic, never the hash's.
    flows: IndexMap<FlowKey, FlowState, ahash::RandomState>,
    fragments: FragmentTracker,
    tunnels: TunnelRegistry,
    timeouts: FlowTimeouts,
    local: LocalNetworks,
    finished: Vec<FlowRecord>,
    clock: SweepClock,
    /// The sweeps are run by the caller ([`FlowTable::drive_sweeps`]).
    driven: bool,
    peak_flows: usize,
    /// Flows started in the table so far (the live count grew by one).
    inserted: u64,
    /// `None`: unbounded (audit); live mode bounds memory.
    max_flows: Option<usize>,
    evicted: u64,
    /// Flows started since the last [`FlowTable::take_started`], when
    /// tracked (live mode's early alerts).
    started: Option<Vec<(FlowKey, u64, Timestamp)>>,
    /// Each frame with the flow it went into, as applied (with
    /// [`FlowTable::log_frames`]).
    frame_log: Option<Vec<(FrameRef, u64)>>,
    /// The flow of the last packet handed out for inspection.
    last_handout: Option<FlowKey>,
    /// Fragments queued to wait for the first of their datagram so far.
    queued_fragments: u64,
}

impl FlowTable {
    /// An empty table.
    pub fn new(timeouts: FlowTimeouts, local: LocalNetworks) -> Self {
        Self {
            flows: IndexMap::default(),
            fragments: FragmentTracker::default(),
            tunnels: TunnelRegistry::default(),
            timeouts,
            local,
            finished: Vec::new(),
            clock: SweepClock::default(),
            driven: false,
            peak_flows: 0,
            inserted: 0,
            max_flows: None,
            evicted: 0,
            frame_log: None,
            started: None,
            last_handout: None,
            queued_fragments: 0,
        }
    }

    /// Accounts one decoded packet. Returns which flow it belongs to when
    /// it is one of the first [`INSPECTION_BUDGET`] packets with payload of
    /// its flow (never for fragments, whose payload is not the start of a
    /// transport message).
    pub fn observe(
        &mut self,
        packet: &IpPacket<'_>,
        place: Place,
        ts: Timestamp,
        at: FrameRef,
        anomalies: &mut AnomalyCounter,
    ) -> Option<Inspect> {
        // A driven table's caller keeps the clock (and says when the
        // capture ended).
        if !self.driven && self.clock.tick(ts) {
            self.sweep(ts, anomalies);
        }
        let obs = Observation::of(packet, place, ts, at);
        let Some(fragment) = packet.fragment else {
            return self.apply(&obs);
        };
        let id = DatagramId {
            tunnel: place.within,
            src: packet.src,
            dst: packet.dst,
            protocol: packet.protocol,
            id: fragment.id,
        };
        if fragment.offset == 0 {
            self.apply(&obs);
            for waiting in self.fragments.first(id, packet.ports, ts) {
                self.apply(&Observation { ports: packet.ports, ..waiting });
            }
        } else if let Some(ports) = self.fragments.later(id, obs) {
            self.apply(&Observation { ports, ..obs });
        } else {
            self.queued_fragments += 1;
        }
        None
    }

    fn apply(&mut self, obs: &Observation) -> Option<Inspect> {
        let (key, way) = obs.key();
        if self.max_flows.is_some_and(|max| self.flows.len() >= max)
            && !self.flows.contains_key(&key)
        {
            self.evict();
        }
        let live = self.flows.len();
        let state = match self.flows.entry(key) {
            Entry::Occupied(mut e) => {
                let state = e.get_mut();
                let syn_only = obs.protocol == 6
                    && obs.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
                let reason = state
                    .expiry(key.protocol, obs.ts, &self.timeouts)
                    .or_else(|| (syn_only && state.tcp_closed()).then_some(EndReason::PortReuse));
                if let Some(reason) = reason {
                    let id = flow_id(obs.at, obs.place.depth);
                    let old = std::mem::replace(state, FlowState::new(obs, way, id));
                    let chain = self.tunnels.take_chain(old.id, key.tunnel());
                    self.finished.push(record(&key, &old, reason, &self.local, chain));
                    self.tunnels.flow_started(id, key.tunnel());
                }
                let state = e.into_mut();
                state.update(obs, way);
                state
            }
            Entry::Vacant(e) => {
                let id = flow_id(obs.at, obs.place.depth);
                if let Some(started) = &mut self.started {
                    started.push((key, id, obs.ts));
                }
                let state = e.insert(FlowState::new(obs, way, id));
                self.tunnels.flow_started(id, key.tunnel());
                self.inserted += 1;
                self.peak_flows = self.peak_flows.max(live + 1);
                state.update(obs, way);
                state
            }
        };
        if let Some(log) = &mut self.frame_log {
            log.push((obs.at, state.id));
        }
        // What the names stage reads: the client's payload (ClientHello,
        // HTTP request, QUIC Initial), with where its TCP stream starts (from
        // its SYN, kept here), and both sides of DNS (port 53), whose flows
        // have no budget.
        let from_initiator = way == state.initiator();
        if obs.protocol == 6
            && from_initiator
            && obs.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
        {
            state.stream_start = obs.tcp_seq.wrapping_add(1);
            state.inspected |= STREAM_START_KNOWN;
        }
        let dns = obs.ports.is_some_and(|(s, d)| s == DNS_PORT || d == DNS_PORT);
        let wanted = matches!(obs.protocol, 6 | 17)
            && obs.payload_len > 0
            && (from_initiator || dns)
            && obs.place.carries.is_none();
        let handed = state.inspected & INSPECTION_COUNT;
        if !wanted || handed == INSPECTION_ENDED || (handed >= INSPECTION_BUDGET && !dns) {
            return None;
        }
        if handed < INSPECTION_BUDGET {
            state.inspected += 1;
        }
        self.last_handout = Some(key);
        let stream_start =
            (state.inspected & STREAM_START_KNOWN != 0).then_some(state.stream_start);
        Some(Inspect { flow: state.id, from_initiator, stream_start, frame: obs.at })
    }

    /// The names stage has all it needs from the flow of the packet last
    /// handed out: hand out no more of it.
    pub fn end_inspection(&mut self) {
        if let Some(state) = self.last_handout.take().and_then(|k| self.flows.get_mut(&k)) {
            state.inspected = (state.inspected & STREAM_START_KNOWN) | INSPECTION_ENDED;
        }
    }

    /// The id of a chain of tunnels (outermost first) for [`Place::within`];
    /// `None` when too many are alive
    /// ([`MAX_TUNNELS`](super::tunnels::MAX_TUNNELS)).
    pub fn tunnel_id(&mut self, chain: &[TunnelLayer]) -> Option<TunnelId> {
        self.tunnels.intern(chain)
    }

    /// Ends the flows idle at `now`, releases orphaned fragments and the
    /// tunnel chains nothing uses any more.
    fn sweep(&mut self, now: Timestamp, anomalies: &mut AnomalyCounter) {
        let timeouts = self.timeouts;
        let mut ended = self.end_where(|key, state| state.expiry(key.protocol, now, &timeouts));
        self.finished.append(&mut ended);
        let orphans = self.fragments.expire(Some(now));
        self.release_orphans(orphans, anomalies);
        if !self.tunnels.is_empty() {
            let mut in_use = IdSet::default();
            for key in self.flows.keys() {
                in_use.insert(key.tunnel());
            }
            self.fragments.tunnels_in_use(&mut in_use);
            self.tunnels.retain(&in_use);
        }
    }

    fn release_orphans(
        &mut self,
        orphans: Vec<crate::flow::table::Observation>,
        anomalies: &mut AnomalyCounter,
    ) {
        // Each frame counts: the earliest are kept, in whichever table.
        for orphan in &orphans {
            anomalies.record(AnomalyKind::OrphanFragments, orphan.at);
        }
        for obs in orphans {
            self.apply(&Observation { ports: None, ..obs });
        }
    }

    /// Ends, in table order, the flows `end` gives a reason for, and
    /// returns their records.
    fn end_where(
        &mut self,
        mut end: impl FnMut(&FlowKey, &FlowState) -> Option<EndReason>,
    ) -> Vec<FlowRecord> {
        let mut ended = Vec::new();
        let mut i = 0;
        while let Some((key, state)) = self.flows.get_index(i) {
            let Some(reason) = end(key, state) else {
                i += 1;
                continue;
            };
            let chain = self.tunnels.take_chain(state.id, key.tunnel());
            ended.push(record(key, state, reason, &self.local, chain));
            // The last entry moves to `i`, which is looked at next.
            self.flows.swap_remove_index(i);
        }
        ended
    }

    /// Bounds the live flows to `max` (at least 1): a new flow in a full
    /// table first pushes out the idlest flows.
    pub fn set_max_flows(&mut self, max: usize) {
        self.max_flows = Some(max.max(1));
    }

    /// Flows pushed out of a full table so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Ends the idlest 1/16 of the table (at least one flow): two passes
    /// over the table per that many new flows, not one per flow.
    fn evict(&mut self) {
        let n = (self.flows.len() / 16).max(1);
        // Ties on the last packet are broken by flow id: the same input
        // must evict the same flows, whatever the table's order
        // (the evidence pass replays it). Only (last, id) is gathered: 16 MB
        // for a full table of a million flows.
        let mut idle: Vec<(Timestamp, u64)> = self.flows.values().map(|s| (s.last, s.id)).collect();
        // n is at least 1 and at most the table's size, unless it is empty.
        let Some(i) = n.checked_sub(1).filter(|&i| i < idle.len()) else { return };
        let cut = *idle.select_nth_unstable(i).1;
        drop(idle);
        let mut evicted = self
            .end_where(|_, state| ((state.last, state.id) <= cut).then_some(EndReason::Evicted));
        // In the order they were idle, not the table's.
        evicted.sort_unstable_by_key(|r| (r.end, r.id));
        self.evicted += evicted.len() as u64;
        self.finished.append(&mut evicted);
    }

    /// Ends the flows idle at `now` (live mode calls this while no packet
    /// arrives, so flows end on time in a quiet network).
    pub fn expire(&mut self, now: Timestamp, anomalies: &mut AnomalyCounter) {
        self.sweep(now, anomalies);
        self.clock.next = now.plus(SWEEP_INTERVAL);
    }

    /// The caller runs the periodic sweeps ([`FlowTable::sweep_now`]) from
    /// a [`SweepClock`] it keeps over more packets than this table sees (a
    /// shard's), and says at the end when the last packet was
    /// ([`FlowTable::saw_until`]).
    pub fn drive_sweeps(&mut self) {
        self.driven = true;
    }

    /// The periodic sweep at `now`, for a caller driving them.
    pub fn sweep_now(&mut self, now: Timestamp, anomalies: &mut AnomalyCounter) {
        self.sweep(now, anomalies);
    }

    /// The latest packet time of the capture, where the last sweep runs
    /// when the table finishes (for a table that saw only some packets).
    pub fn saw_until(&mut self, latest: Timestamp) {
        self.clock.latest = self.clock.latest.max(latest);
    }

    /// Flows started in the table so far; with [`FlowTable::live_flows`]
    /// it tells how many ended since the last look.
    pub fn started_count(&self) -> u64 {
        self.inserted
    }

    /// Logs which flow each frame goes into (the evidence pass reads it
    /// with [`FlowTable::drain_frame_log`]). A fragment waiting for the
    /// first of its datagram is logged when that comes.
    pub fn log_frames(&mut self) {
        self.frame_log.get_or_insert_with(Vec::new);
    }

    /// The frames applied since the last call, with their flow's id.
    pub fn drain_frame_log(&mut self) -> std::vec::Drain<'_, (FrameRef, u64)> {
        self.frame_log.get_or_insert_with(Vec::new).drain(..)
    }

    /// Starts recording each new flow's key, id and first packet time.
    pub fn track_started(&mut self) {
        self.started.get_or_insert_with(Vec::new);
    }

    /// The flows started since the last call (with [`track_started`]).
    ///
    /// [`track_started`]: FlowTable::track_started
    pub fn take_started(&mut self) -> Vec<(FlowKey, u64, Timestamp)> {
        self.started.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The live flow `key` as a record so far, if it is still flow `id`.
    pub fn snapshot(&self, key: &FlowKey, id: u64) -> Option<FlowRecord> {
        let state = self.flows.get(key).filter(|s| s.id == id)?;
        let chain = self.tunnels.chain_of(state.id, key.tunnel());
        Some(record(key, state, EndReason::Active, &self.local, chain))
    }

    /// Finished flows since the last call.
    pub fn drain_finished(&mut self) -> std::vec::Drain<'_, FlowRecord> {
        self.finished.drain(..)
    }

    /// Ends every live flow (end of capture) and returns all finished ones.
    pub fn finish(mut self, anomalies: &mut AnomalyCounter) -> Vec<FlowRecord> {
        self.release_fragments(anomalies);
        for (key, state) in self.flows.drain(..) {
            let chain = self.tunnels.take_chain(state.id, key.tunnel());
            let ended = record(&key, &state, EndReason::EndOfCapture, &self.local, chain);
            self.finished.push(ended);
        }
        self.finished
    }

    /// [`FlowTable::finish`] after [`FlowTable::release_fragments`], in
    /// parts of at most `part` flows, in the order of their first packet
    /// (start, first frame, id), so that the flows alive at the end of a
    /// capture never all exist as records at once: only their sort keys do
    /// (40 bytes a flow).
    pub fn finish_in_parts(mut self, part: usize, mut hand: impl FnMut(Vec<FlowRecord>)) {
        // A finished record is found by its index in `finished`, a live
        // flow by its index in the table (which is left as it is until the
        // table is dropped).
        enum Ended {
            Record(usize),
            Live(usize),
        }
        let mut ended: Vec<(Timestamp, u64, u64, Ended)> =
            Vec::with_capacity(self.finished.len() + self.flows.len());
        for (i, r) in self.finished.iter().enumerate() {
            let first = pack_frame(r.first_frame);
            ended.push((r.start, first, r.id, Ended::Record(i)));
        }
        for (i, state) in self.flows.values().enumerate() {
            ended.push((state.start, state.first, state.id, Ended::Live(i)));
        }
        ended.sort_unstable_by_key(|(start, first, id, _)| (*start, *first, *id));
        let mut finished: Vec<Option<FlowRecord>> =
            std::mem::take(&mut self.finished).into_iter().map(Some).collect();
        for chunk in ended.chunks(part.max(1)) {
            let mut records = Vec::with_capacity(chunk.len());
            for (_, _, _, e) in chunk {
                match e {
                    Ended::Record(i) => records.extend(finished.get_mut(*i).and_then(Option::take)),
                    Ended::Live(i) => {
                        let Some((key, state)) = self.flows.get_index(*i) else { continue };
                        let chain = self.tunnels.take_chain(state.id, key.tunnel());
                        let reason = EndReason::EndOfCapture;
                        records.push(record(key, state, reason, &self.local, chain));
                    }
                }
            }
            hand(records);
        }
    }

    /// What [`FlowTable::finish`] does before it ends the live flows: the
    /// flows over by the last packet end for their own reason (whenever
    /// the last periodic sweep ran), and fragments still waiting for the
    /// first of their datagram go to their flows without ports.
    pub fn release_fragments(&mut self, anomalies: &mut AnomalyCounter) {
        self.sweep(self.clock.latest, anomalies);
        let orphans = self.fragments.expire(None);
        self.release_orphans(orphans, anomalies);
    }

    /// How many fragments have been queued to wait for the first of their
    /// datagram (the evidence pass keeps such a frame until it is placed).
    pub fn queued_fragments(&self) -> u64 {
        self.queued_fragments
    }

    /// Flows alive now.
    pub fn live_flows(&self) -> usize {
        self.flows.len()
    }

    /// The most flows alive at once so far.
    pub fn peak_flows(&self) -> usize {
        self.peak_flows
    }
}

fn record(
    key: &FlowKey,
    state: &FlowState,
    end_reason: EndReason,
    local: &LocalNetworks,
    tunnels: TunnelChain,
) -> FlowRecord {
    let init = state.initiator();
    let resp = init.reverse();
    let source = key.sender(init);
    let destination = key.sender(resp);
    FlowRecord {
        id: state.id,
        protocol: key.protocol,
        source,
        destination,
        source_stats: state.side(init),
        destination_stats: state.side(resp),
        start: state.start,
        end: state.last,
        first_frame: unpack_frame(state.first),
        direction: local.direction(source.ip, destination.ip),
        end_reason,
        tunnels,
        carries: state.carries(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: [u8; 4], sport: u16, ts: i64) -> (IpPacket<'static>, Timestamp) {
        let p = IpPacket {
            src: IpAddr::from(src),
            dst: IpAddr::from([192, 0, 2, 1]),
            protocol: 17,
            ports: Some((sport, 53)),
            tcp_flags: 0,
            tcp_seq: 0,
            ip_len: 40,
            payload_len: 12,
            fragment: None,
            payload: &[],
        };
        (p, Timestamp::from_parts(ts, 0))
    }

    /// Flows tied on their last packet are evicted by id, whatever the
    /// table's order: the same input evicts the same flows.
    #[test]
    fn eviction_among_equally_idle_flows_is_deterministic() {
        let run = || {
            let mut t = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
            t.set_max_flows(8);
            let mut a = AnomalyCounter::default();
            for i in 0..16u8 {
                let (p, ts) = packet([10, 0, 0, i], 1000, 1);
                t.observe(
                    &p,
                    Place::default(),
                    ts,
                    FrameRef { file: 0, frame: u64::from(i) + 1 },
                    &mut a,
                );
            }
            t.drain_finished().map(|f| f.first_frame.frame).collect::<Vec<u64>>()
        };
        let first = run();
        assert_eq!(first, (1..=8).collect::<Vec<u64>>());
        for _ in 0..10 {
            assert_eq!(run(), first);
        }
    }

    #[test]
    fn a_full_table_evicts_the_idlest_flows_first() {
        let mut t = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
        t.set_max_flows(2);
        t.track_started();
        let mut a = AnomalyCounter::default();
        let at = FrameRef { file: 0, frame: 1 };
        for (src, ts) in [([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2), ([10, 0, 0, 1], 3)] {
            let (p, ts) = packet(src, 1000, ts);
            t.observe(&p, Place::default(), ts, at, &mut a);
        }
        // A third flow: 10.0.0.2 was idle longest.
        let (p, ts) = packet([10, 0, 0, 3], 1000, 4);
        t.observe(&p, Place::default(), ts, at, &mut a);
        assert_eq!(t.live_flows(), 2);
        assert_eq!(t.evicted(), 1);
        let gone: Vec<FlowRecord> = t.drain_finished().collect();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].source.ip, IpAddr::from([10, 0, 0, 2]));
        assert_eq!(gone[0].end_reason, EndReason::Evicted);
        let started = t.take_started();
        assert_eq!(started.len(), 3);
        let (key, id, _) = started[0];
        let snap = t.snapshot(&key, id).unwrap();
        assert_eq!((snap.source_stats.packets, snap.end_reason), (2, EndReason::Active));
        assert!(t.snapshot(&started[1].0, started[1].1).is_none());
        // A quiet network: flows still end on time.
        t.expire(Timestamp::from_parts(100, 0), &mut a);
        assert_eq!(t.live_flows(), 0);
    }

    #[test]
    fn an_ended_inspection_hands_out_no_more_packets() {
        let mut t = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
        let mut a = AnomalyCounter::default();
        let at = FrameRef { file: 0, frame: 1 };
        // UDP to port 53 is DNS (no budget): use another port.
        let (mut p, ts) = packet([10, 0, 0, 1], 1000, 1);
        p.ports = Some((1000, 443));
        assert!(t.observe(&p, Place::default(), ts, at, &mut a).is_some());
        assert!(t.observe(&p, Place::default(), ts, at, &mut a).is_some());
        t.end_inspection();
        assert!(t.observe(&p, Place::default(), ts, at, &mut a).is_none());
        // Another flow is not affected.
        let (mut q, ts) = packet([10, 0, 0, 2], 1000, 1);
        q.ports = Some((1000, 443));
        assert!(t.observe(&q, Place::default(), ts, at, &mut a).is_some());
    }

    #[test]
    fn a_table_entry_fits_two_cache_lines() {
        assert!(std::mem::size_of::<(FlowKey, FlowState)>() <= 128);
    }
}
