//! Non-first IP fragments carry no ports; they belong to the flow of their
//! datagram, found through the first fragment (matched on addresses,
//! protocol and identification). Fragments that arrive before their first
//! fragment wait here; if it never comes they are released without ports.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Timestamp;

use super::key::TunnelId;
use super::table::Observation;
use super::tunnels::IdSet;

/// How long a datagram's fragments are tracked after the last one was seen
/// (Linux `ipfrag_time` and RFC 8200 both use 60 s; 30 s is the Linux
/// IPv4 default).
pub const FRAGMENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DatagramId {
    /// The tunnels around the datagram: fragments inside two tunnels are
    /// two datagrams.
    pub tunnel: TunnelId,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub id: u32,
}

#[derive(Debug, Default)]
struct Datagram {
    /// Ports from the first fragment, once seen.
    ports: Option<(u16, u16)>,
    seen_first: bool,
    last_seen: Timestamp,
    /// Fragments seen before the first one.
    waiting: Vec<Observation>,
}

/// Datagrams with fragments in flight.
#[derive(Debug, Default)]
pub struct FragmentTracker {
    datagrams: HashMap<DatagramId, Datagram, ahash::RandomState>,
}

impl FragmentTracker {
    /// Records the first fragment; returns the fragments that waited for it.
    pub fn first(
        &mut self,
        id: DatagramId,
        ports: Option<(u16, u16)>,
        ts: Timestamp,
    ) -> Vec<Observation> {
        let d = self.datagrams.entry(id).or_default();
        d.ports = ports;
        d.seen_first = true;
        d.last_seen = d.last_seen.max(ts);
        std::mem::take(&mut d.waiting)
    }

    /// A later fragment: its ports when the first fragment was seen, else it
    /// is kept until then (`None`).
    pub fn later(&mut self, id: DatagramId, obs: Observation) -> Option<Option<(u16, u16)>> {
        let d = self.datagrams.entry(id).or_default();
        d.last_seen = d.last_seen.max(obs.ts);
        if d.seen_first {
            Some(d.ports)
        } else {
            d.waiting.push(obs);
            None
        }
    }

    /// Adds the tunnels of the datagrams in flight to `in_use`.
    pub fn tunnels_in_use(&self, in_use: &mut IdSet) {
        for id in self.datagrams.keys() {
            in_use.insert(id.tunnel);
        }
    }

    /// Forgets datagrams idle for longer than [`FRAGMENT_TIMEOUT`] at `now`
    /// (all of them with `now = None`), returning the fragments whose first
    /// fragment never came.
    pub fn expire(&mut self, now: Option<Timestamp>) -> Vec<Observation> {
        let mut orphans = Vec::new();
        self.datagrams.retain(|_, d| {
            let keep = now.is_some_and(|now| now.since(d.last_seen) <= FRAGMENT_TIMEOUT);
            if !keep {
                orphans.append(&mut d.waiting);
            }
            keep
        });
        // In the order they came, not the map's (random) one: the first
        // of them decides a new flow's initiator.
        orphans.sort_by_key(|o| o.at);
        orphans
    }
}
