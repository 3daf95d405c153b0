//! The per-packet path of both `audit` and `live`: a frame through decode,
//! the flow table and the names stage, counted in the run's totals.

use std::collections::BTreeMap;

use crate::capture::LinkType;
use crate::decode::{self, AnomalyCounter, Decoded, FrameRef};
use crate::flow::FlowTable;
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
            let inspect = table.observe(&ip, ts, at, c.anomalies);
            if let (Some(inspect), Some(names)) = (inspect, names) {
                if !names.inspect(inspect, &ip, ts) {
                    table.end_inspection();
                }
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
