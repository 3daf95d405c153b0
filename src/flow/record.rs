use serde::Serialize;

use super::{Direction, Endpoint};
use crate::decode::{FrameRef, TunnelChain, TunnelKind};
use crate::time::Timestamp;

/// What one side of a flow sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SideStats {
    pub packets: u64,
    /// IP-layer bytes on the wire.
    pub bytes: u64,
    /// L4 payload bytes on the wire.
    pub payload_bytes: u64,
    /// TCP flags seen from this side (OR of byte 13).
    pub tcp_flags: u8,
}

/// A flow's two ends as local host and remote endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Sides<'a> {
    pub local: Endpoint,
    /// What the local end sent ("bytes out").
    pub sent: &'a SideStats,
    pub remote: Endpoint,
    /// What the remote end sent ("bytes in").
    pub received: &'a SideStats,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for longer than the protocol's idle timeout.
    IdleTimeout,
    /// A TCP connection closed with FIN from both sides or a RST.
    TcpClosed,
    /// A new SYN reused the 5-tuple of a closed connection.
    PortReuse,
    /// The capture ended with the flow still active.
    EndOfCapture,
    /// Pushed out of a full table (`--max-flows`), idlest first.
    Evicted,
    /// Not over: a snapshot of a live flow (live mode's early alerts).
    Active,
}

/// A finished flow. `source` is the initiator, `destination` the responder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    /// Unique in its run, from the frame that started the flow and its depth
    /// in tunnels (the same with any number of shards).
    pub id: u64,
    /// IP protocol number.
    pub protocol: u8,
    pub source: Endpoint,
    pub destination: Endpoint,
    /// Sent by the initiator.
    pub source_stats: SideStats,
    /// Sent by the responder.
    pub destination_stats: SideStats,
    /// Timestamp of the first packet.
    pub start: Timestamp,
    /// Timestamp of the last packet.
    pub end: Timestamp,
    /// Input and frame number of the first packet.
    pub first_frame: FrameRef,
    pub direction: Direction,
    pub end_reason: EndReason,
    /// The tunnels the flow's packets were inside, outermost first, as the
    /// first packet inside them showed them (empty: none).
    pub tunnels: TunnelChain,
    /// The tunnel the flow carries, when its packets were decapsulated:
    /// the flow is itself a tunnel (its peer is audited as any endpoint).
    pub carries: Option<TunnelKind>,
}

impl FlowRecord {
    /// Where the flow stands in first-packet order: start, first frame,
    /// then id (a tunnelled packet starts its tunnel's flow and the flow
    /// inside it, in that order of ids). Records, and what reports say
    /// came first, follow it.
    pub fn first_packet_order(&self) -> (Timestamp, FrameRef, u64) {
        (self.start, self.first_frame, self.id)
    }

    /// Does the protocol carry ports?
    pub fn has_ports(&self) -> bool {
        protocol_has_ports(self.protocol)
    }

    /// The remote endpoint (the side outside the local networks), if any.
    pub fn remote(&self) -> Option<Endpoint> {
        self.direction.remote_is_responder().map(|responder| {
            if responder {
                self.destination
            } else {
                self.source
            }
        })
    }

    /// The flow seen from its local end: for internal flows the initiator
    /// counts as local, for external ones (neither end local) the responder
    /// counts as remote, as in [`FlowRecord::remote`].
    pub fn sides(&self) -> Sides<'_> {
        if self.direction == Direction::Inbound {
            Sides {
                local: self.destination,
                sent: &self.destination_stats,
                remote: self.source,
                received: &self.source_stats,
            }
        } else {
            Sides {
                local: self.source,
                sent: &self.source_stats,
                remote: self.destination,
                received: &self.destination_stats,
            }
        }
    }

    /// Bytes in both directions.
    pub fn total_bytes(&self) -> u64 {
        self.source_stats.bytes + self.destination_stats.bytes
    }

    /// Packets in both directions.
    pub fn total_packets(&self) -> u64 {
        self.source_stats.packets + self.destination_stats.packets
    }
}

/// TCP, UDP, DCCP, SCTP and UDP-Lite flows are keyed on ports too.
pub fn protocol_has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 33 | 132 | 136)
}

/// The IANA keyword of an IP protocol for `network.transport`.
pub fn protocol_name(protocol: u8) -> Option<&'static str> {
    Some(match protocol {
        1 => "icmp",
        2 => "igmp",
        4 => "ipv4",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        88 => "eigrp",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        115 => "l2tp",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}
