//! Shards of the per-packet path: flow tables and names stages that each
//! see the packets of some address pairs.
//!
//! Contract:
//! - A packet goes to the shard of its outermost address pair, the same
//!   whichever way it goes ([`shard_of`]): the fragments of a datagram and
//!   every flow inside a tunnel go where the tunnel's packets go.
//! - The shards' tables do not sweep by themselves: the reader keeps one
//!   [`SweepClock`](crate::flow::SweepClock) over every packet and sends
//!   each shard the sweeps, at the packets where one table would have
//!   swept. With the frame-derived flow ids, each flow is the one a
//!   single table makes, with the same id, whatever the number of shards,
//!   unless a bound is reached: each shard holds up to `--max-flows`
//!   flows and [`MAX_TUNNELS`](crate::flow::MAX_TUNNELS) tunnels, so
//!   which flows are pushed out, once one shard is full, depends on the
//!   number of shards.
//!   A tunnel mirror is one address pair, so one shard: it is bounded as
//!   one table would be.
//! - A shard keeps no DNS map: it hands the responses it parses on, with
//!   where they were, and whoever merges the shards applies every shard's
//!   responses in packet order before naming the flows that ended up to
//!   that point, as one names stage would.
//! - At each part ([`Shard::part`]) a shard hands on the flows that ended,
//!   the DNS responses and how its live flows changed, packet by packet;
//!   at the end ([`Shard::finish`]) the flows still alive, sorted by first
//!   packet, in chunks, so that a merge of every shard's chunks is the
//!   order one table gives.

use std::net::IpAddr;

use super::packets::observe_ip;
use super::read::AuditConfig;
use crate::decode::{AnomalyCounter, Decapsulation, FrameRef, IpPacket};
use crate::flow::{FlowRecord, FlowTable};
use crate::names::{DnsResponse, FlowNames, NameInspector};
use crate::time::Timestamp;

/// The shard of a packet whose outermost addresses are `ip`'s, of `n`.
pub fn shard_of(ip: &IpPacket<'_>, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let (a, b) = (fold(ip.src), fold(ip.dst));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    // A multiplicative mix (Fibonacci hashing) of the unordered pair; the
    // high bits are the best mixed.
    let h = (lo ^ hi.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (((h >> 32) * n as u64) >> 32) as usize
}

fn fold(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17)
        }
    }
}

/// How the live flows of a shard changed at one packet: how many ended
/// (swept, pushed out) and then how many started. With every shard's
/// changes in packet order, the most flows alive at once is what one table
/// would count.
#[derive(Clone, Copy, Debug)]
pub struct LiveChange {
    /// The packet's number in the run, from 0.
    pub packet: u64,
    pub ended: u32,
    pub started: u32,
}

/// What a shard hands on at a part.
pub struct ShardPart {
    /// Flows that ended, with the server names the shard found (no DNS
    /// names: they come from the merged map).
    pub flows: Vec<(FlowRecord, Option<FlowNames>)>,
    pub responses: Vec<DnsResponse>,
    pub changes: Vec<LiveChange>,
}

/// What a shard hands on at the end, before the flows still alive.
pub struct ShardLast {
    pub responses: Vec<DnsResponse>,
    /// The changes since the last part (not those of the end: the flows
    /// alive then are counted already).
    pub changes: Vec<LiveChange>,
    pub anomalies: AnomalyCounter,
    pub evicted: u64,
}

/// One shard: a flow table and a names stage.
pub struct Shard {
    table: FlowTable,
    names: Option<NameInspector>,
    anomalies: AnomalyCounter,
    changes: Vec<LiveChange>,
}

impl Shard {
    /// A shard for `config`.
    pub fn new(config: &AuditConfig) -> Self {
        Shard {
            table: sharded_table(config),
            names: (!config.no_names).then(NameInspector::deferring),
            anomalies: AnomalyCounter::default(),
            changes: Vec::new(),
        }
    }

    /// The sweep the reader's clock calls for at packet `packet`.
    pub fn sweep(&mut self, packet: u64, ts: Timestamp) {
        let before = self.watch();
        self.table.sweep_now(ts, &mut self.anomalies);
        self.changed(packet, before);
    }

    /// A decoded packet, the run's `packet`th.
    pub fn observe(
        &mut self,
        packet: u64,
        ip: IpPacket<'_>,
        decap: &Decapsulation,
        ts: Timestamp,
        at: FrameRef,
    ) {
        let before = self.watch();
        observe_ip(ip, decap, &mut self.table, self.names.as_mut(), ts, at, &mut self.anomalies);
        self.changed(packet, before);
    }

    fn watch(&self) -> (usize, u64) {
        (self.table.live_flows(), self.table.started_count())
    }

    fn changed(&mut self, packet: u64, (live, started): (usize, u64)) {
        let started = (self.table.started_count() - started) as usize;
        let now = self.table.live_flows();
        if now != live || started > 0 {
            let ended = (live + started).saturating_sub(now);
            self.changes.push(LiveChange { packet, ended: ended as u32, started: started as u32 });
        }
    }

    /// The flows that ended since the last part, with what else a part
    /// carries.
    pub fn part(&mut self) -> ShardPart {
        let names = &mut self.names;
        let flows = self.table.drain_finished().map(|f| named(names.as_mut(), f)).collect();
        ShardPart {
            flows,
            responses: self.names.as_mut().map(NameInspector::take_responses).unwrap_or_default(),
            changes: std::mem::take(&mut self.changes),
        }
    }

    /// Ends the shard at the capture's `latest` packet time: first what
    /// [`ShardLast`] holds, then every flow not handed on yet, in
    /// first-packet order, in chunks of at most `chunk`.
    pub fn finish(
        mut self,
        latest: Timestamp,
        chunk: usize,
        last: impl FnOnce(ShardLast),
        mut flows: impl FnMut(Vec<(FlowRecord, Option<FlowNames>)>),
    ) {
        let changes = std::mem::take(&mut self.changes);
        self.table.saw_until(latest);
        // The last sweep and the fragments still waiting, once: their
        // anomalies are the last ones.
        self.table.release_fragments(&mut self.anomalies);
        let mut names = self.names;
        last(ShardLast {
            responses: names.as_mut().map(NameInspector::take_responses).unwrap_or_default(),
            changes,
            evicted: self.table.evicted(),
            anomalies: std::mem::take(&mut self.anomalies),
        });
        self.table.finish_in_parts(chunk, |part| {
            flows(part.into_iter().map(|f| named(names.as_mut(), f)).collect());
        });
    }
}

/// A flow table for a shard of `config`'s audit (up to `--max-flows`
/// flows, sweeps from the caller's clock).
pub fn sharded_table(config: &AuditConfig) -> FlowTable {
    let mut table = FlowTable::new(config.timeouts, config.local.clone());
    if let Some(max) = config.max_flows {
        table.set_max_flows(max);
    }
    table.drive_sweeps();
    table
}

/// A finished flow with the names its shard found.
fn named(names: Option<&mut NameInspector>, flow: FlowRecord) -> (FlowRecord, Option<FlowNames>) {
    let names = names.and_then(|names| {
        let found = names.finish(flow.id, flow.remote().map(|r| r.ip), flow.start);
        (found != FlowNames::default()).then_some(found)
    });
    (flow, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: [u8; 4], dst: [u8; 4]) -> IpPacket<'static> {
        IpPacket {
            src: IpAddr::from(src),
            dst: IpAddr::from(dst),
            protocol: 17,
            ports: Some((1, 2)),
            tcp_flags: 0,
            tcp_seq: 0,
            ip_len: 28,
            payload_len: 0,
            fragment: None,
            payload: &[],
        }
    }

    #[test]
    fn both_ways_go_to_one_shard_and_pairs_spread() {
        let mut counts = [0usize; 3];
        for i in 0..=255u8 {
            for j in [1u8, 2, 3, 4] {
                let (a, b) = ([198, 51, 100, i], [192, 0, 2, j]);
                let s = shard_of(&packet(a, b), 3);
                assert_eq!(s, shard_of(&packet(b, a), 3));
                counts[s] += 1;
            }
        }
        // 1,024 pairs over three shards: none has fewer than a quarter.
        assert!(counts.iter().all(|&c| c > 256), "{counts:?}");
        assert_eq!(shard_of(&packet([1, 2, 3, 4], [5, 6, 7, 8]), 1), 0);
    }
}
