//! The per-packet path of both `audit` and `live`: a frame through decode,
//! tunnel decapsulation, the flow table and the names stage, counted in the
//! run's totals.

use std::collections::BTreeMap;

use crate::capture::LinkType;
use crate::decode::{
    self, decapsulate, AnomalyCounter, AnomalyKind, Decap, Decapsulation, Decoded, FrameRef,
    IpPacket, TunnelKind, TunnelLayer, MAX_TUNNEL_DEPTH,
};
use crate::flow::{FlowTable, Inspect, Place};
use crate::names::NameInspector;
use crate::report::PacketTotals;
use crate::time::Timestamp;

/// One captured frame.
pub struct Frame<'a> {
    pub link_type: LinkType,
    pub data: &'a [u8],
    pub wire_len: u32,
    pub ts: Timestamp,
    pub at: FrameRef,
}

/// The counters a frame updates.
pub struct Counts<'a> {
    pub totals: &'a mut PacketTotals,
    pub anomalies: &'a mut AnomalyCounter,
    pub unsupported: &'a mut BTreeMap<LinkType, u64>,
}

/// A frame through decode, the flow table and the names stage: the
/// per-packet path of both `audit` and `live`.
pub fn observe_frame(
    frame: Frame<'_>,
    decap: &Decapsulation,
    table: &mut FlowTable,
    names: Option<&mut NameInspector>,
    c: Counts<'_>,
) {
    let (ts, at) = (frame.ts, frame.at);
    let totals = c.totals;
    totals.packets += 1;
    totals.first = Some(totals.first.map_or(ts, |f| f.min(ts)));
    totals.last = Some(totals.last.map_or(ts, |l| l.max(ts)));
    if (frame.data.len() as u64) < u64::from(frame.wire_len) {
        totals.cut_by_snaplen += 1;
    }
    match decode::decode(frame.link_type, frame.data, frame.wire_len) {
        Decoded::Ip(ip, anomaly) => {
            if let Some(kind) = anomaly {
                c.anomalies.record(kind, at);
            }
            totals.ip_packets += 1;
            match names {
                Some(names) => {
                    observe_packet(ip, decap, table, ts, at, c.anomalies, &mut |t, i, p| {
                        if !names.inspect(i, p, ts) {
                            t.end_inspection();
                        }
                    })
                }
                None => observe_packet(ip, decap, table, ts, at, c.anomalies, &mut |_, _, _| {}),
            }
        }
        Decoded::NotIp => totals.non_ip += 1,
        Decoded::UnsupportedLinkType => *c.unsupported.entry(frame.link_type).or_default() += 1,
        Decoded::Malformed(kind) => {
            totals.malformed += 1;
            c.anomalies.record(kind, at);
        }
    }
}

/// A decoded packet into the flow table, and with tunnels decoded, the
/// packets inside them too: the packet counts on its outer flow (marked as
/// carrying a tunnel) and on the flow of each packet inside, keyed on the
/// tunnels around it. `inspect` gets the innermost packet when the table
/// hands it out for the names stage.
///
/// A damaged tunnel header or a carried packet that cannot be decoded is
/// an anomaly; the packets outside it are counted all the same.
pub fn observe_packet<'a>(
    outer: IpPacket<'a>,
    decap: &Decapsulation,
    table: &mut FlowTable,
    ts: Timestamp,
    at: FrameRef,
    anomalies: &mut AnomalyCounter,
    inspect: &mut dyn FnMut(&mut FlowTable, Inspect, &IpPacket<'a>),
) {
    if !decap.inner || !decap.may_carry(&outer) {
        if let Some(i) = table.observe(&outer, Place::default(), ts, at, anomalies) {
            inspect(table, i, &outer);
        }
        return;
    }
    observe_tunnelled(outer, decap, table, ts, at, anomalies, inspect);
}

/// [`observe_packet`] for a packet that may carry a tunnel: out of line,
/// so that the common path stays small.
#[inline(never)]
fn observe_tunnelled<'a>(
    outer: IpPacket<'a>,
    decap: &Decapsulation,
    table: &mut FlowTable,
    ts: Timestamp,
    at: FrameRef,
    anomalies: &mut AnomalyCounter,
    inspect: &mut dyn FnMut(&mut FlowTable, Inspect, &IpPacket<'a>),
) {
    let mut packet = outer;
    let mut place = Place::default();
    let unset = TunnelLayer {
        kind: TunnelKind::IpInIp,
        src: [0u8; 4].into(),
        dst: [0u8; 4].into(),
        id: None,
    };
    let mut chain = [unset; MAX_TUNNEL_DEPTH];
    for depth in 0..=MAX_TUNNEL_DEPTH {
        let step = decapsulate(&packet, &decap.ports);
        let (layer, carried) = match step {
            Decap::Layer(_, _) if depth == MAX_TUNNEL_DEPTH => {
                anomalies.record(AnomalyKind::TunnelTooDeep, at);
                (None, None)
            }
            Decap::Layer(layer, carried) => (Some(layer), carried),
            Decap::Damaged(_, kind) => {
                anomalies.record(kind, at);
                (None, None)
            }
            Decap::None => (None, None),
        };
        let Some(layer) = layer else {
            if let Some(i) = table.observe(&packet, place, ts, at, anomalies) {
                inspect(table, i, &packet);
            }
            return;
        };
        table.observe(&packet, Place { carries: Some(layer.kind), ..place }, ts, at, anomalies);
        let inner = match carried {
            Some(Decoded::Ip(inner, anomaly)) => {
                if let Some(kind) = anomaly {
                    anomalies.record(kind, at);
                }
                inner
            }
            Some(Decoded::Malformed(_)) => {
                anomalies.record(AnomalyKind::TunnelInnerMalformed, at);
                return;
            }
            // Not IP (ARP inside VXLAN), or nothing to decode (GTP-U
            // signalling): the tunnel's flow has counted it.
            Some(Decoded::NotIp | Decoded::UnsupportedLinkType) | None => return,
        };
        chain[depth] = layer;
        let Some(id) = table.tunnel_id(&chain[..=depth]) else {
            anomalies.record(AnomalyKind::TunnelsExhausted, at);
            return;
        };
        place = Place { within: id, carries: None };
        packet = inner;
    }
}
