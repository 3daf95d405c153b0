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
    mut c: Counts<'_>,
) {
    let (ts, at) = (frame.ts, frame.at);
    if let Some(ip) = decode_frame(&frame, &mut c) {
        observe_ip(ip, decap, table, names, ts, at, c.anomalies);
    }
}

/// A frame counted in the run's totals and decoded: its IP packet, if it
/// has one (what is wrong with it is counted).
#[inline]
pub fn decode_frame<'a>(frame: &Frame<'a>, c: &mut Counts<'_>) -> Option<IpPacket<'a>> {
    let (ts, at) = (frame.ts, frame.at);
    let totals = &mut *c.totals;
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
            return Some(ip);
        }
        Decoded::NotIp => totals.non_ip += 1,
        Decoded::UnsupportedLinkType => *c.unsupported.entry(frame.link_type).or_default() += 1,
        Decoded::Malformed(kind) => {
            totals.malformed += 1;
            c.anomalies.record(kind, at);
        }
    }
    None
}

/// A decoded packet through the flow table and the names stage.
pub fn observe_ip<'a>(
    ip: IpPacket<'a>,
    decap: &Decapsulation,
    table: &mut FlowTable,
    names: Option<&mut NameInspector>,
    ts: Timestamp,
    at: FrameRef,
    anomalies: &mut AnomalyCounter,
) {
    match names {
        Some(names) => observe_packet(ip, decap, table, ts, at, anomalies, &mut |t, i, p| {
            if !names.inspect(i, p, ts) {
                t.end_inspection();
            }
        }),
        None => observe_packet(ip, decap, table, ts, at, anomalies, &mut |_, _, _| {}),
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
                // Cut by the snapshot length (or a fragment): the inner
                // headers are missing, not damaged.
                let cut = (packet.payload.len() as u64) < u64::from(packet.payload_len);
                if !cut && packet.fragment.is_none() {
                    anomalies.record(AnomalyKind::TunnelInnerMalformed, at);
                }
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
        place = Place { within: id, carries: None, depth: depth as u8 + 1 };
        packet = inner;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FlowTimeouts, LocalNetworks};
    use etherparse::{IpNumber, PacketBuilder};

    fn ip4(protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut out, IpNumber(protocol), payload)
            .unwrap();
        out
    }

    /// The flows and anomalies of one raw IP frame whose wire length is
    /// `wire_len`.
    fn observe(frame: &[u8], wire_len: u32) -> (Vec<crate::flow::FlowRecord>, AnomalyCounter) {
        let mut table = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
        let mut anomalies = AnomalyCounter::default();
        let Decoded::Ip(ip, _) = decode::decode(LinkType::RAW, frame, wire_len) else {
            panic!("not IP")
        };
        let (ts, at) = (Timestamp(0), FrameRef { file: 0, frame: 1 });
        let decap = Decapsulation::default();
        observe_packet(ip, &decap, &mut table, ts, at, &mut anomalies, &mut |_, _, _| {});
        let flows = table.finish(&mut anomalies);
        (flows, anomalies)
    }

    fn kinds(a: &AnomalyCounter) -> Vec<AnomalyKind> {
        a.iter().map(|(k, _, _)| k).collect()
    }

    #[test]
    fn nesting_stops_at_the_documented_depth() {
        let mut packet = ip4(17, &[0; 8]);
        for _ in 0..MAX_TUNNEL_DEPTH + 1 {
            packet = ip4(4, &packet);
        }
        let (flows, anomalies) = observe(&packet, packet.len() as u32);
        // The outer flow and one per layer removed, the last still IP-in-IP.
        assert_eq!(flows.len(), MAX_TUNNEL_DEPTH + 1);
        assert_eq!(flows.iter().map(|f| f.tunnels.len()).max(), Some(MAX_TUNNEL_DEPTH));
        assert_eq!(kinds(&anomalies), [AnomalyKind::TunnelTooDeep]);
    }

    #[test]
    fn an_inner_packet_cut_by_the_snapshot_length_is_not_damage() {
        let inner = ip4(17, &[0; 8]);
        let outer = ip4(4, &inner);
        // Cut inside the inner IP header.
        let (flows, anomalies) = observe(&outer[..30], outer.len() as u32);
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].carries, Some(TunnelKind::IpInIp));
        assert!(kinds(&anomalies).is_empty(), "{:?}", kinds(&anomalies));
        // The same bytes on the wire: damage, and the outer flow still counts.
        let short = ip4(4, &inner[..10]);
        let (flows, anomalies) = observe(&short, short.len() as u32);
        assert_eq!(flows.len(), 1);
        assert_eq!(kinds(&anomalies), [AnomalyKind::TunnelInnerMalformed]);
    }

    #[test]
    fn tunnels_outer_decodes_nothing() {
        let outer = ip4(4, &ip4(17, &[0; 8]));
        let mut table = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
        let mut anomalies = AnomalyCounter::default();
        let Decoded::Ip(ip, _) = decode::decode(LinkType::RAW, &outer, outer.len() as u32) else {
            panic!()
        };
        let decap = Decapsulation { inner: false, ..Decapsulation::default() };
        let at = FrameRef { file: 0, frame: 1 };
        observe_packet(ip, &decap, &mut table, Timestamp(0), at, &mut anomalies, &mut |_, _, _| {});
        let flows = table.finish(&mut anomalies);
        assert_eq!(flows.len(), 1);
        assert_eq!((flows[0].carries, flows[0].tunnels.len()), (None, 0));
    }
}
