//! Malformed packets are data, not failures: each is counted by kind, and
//! the frames of the first few are kept as pointers for an analyst.

use serde::Serialize;

/// What was wrong with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The frame ended inside a link-layer header.
    LinkHeaderTruncated,
    /// The frame ended inside the IP header although nothing was cut by the
    /// snapshot length.
    IpHeaderTruncated,
    /// The IP version is neither 4 nor 6, or differs from what the link
    /// layer announced.
    IpVersionMismatch,
    /// An IPv4 header length below 20 bytes.
    Ipv4HeaderLength,
    /// The IP length field is smaller than the header or larger than the
    /// frame; the frame's length was used instead.
    IpLengthInconsistent,
    /// An IPv6 extension header (or IPv4 authentication header) could not
    /// be parsed.
    IpExtensionHeader,
    /// The frame ended inside the TCP/UDP header although nothing was cut by
    /// the snapshot length.
    TransportHeaderTruncated,
    /// A TCP data offset below 5 words.
    TcpDataOffset,
    /// IP fragments whose first fragment (the one with the ports) never
    /// arrived; they were counted in a flow without ports.
    OrphanFragments,
    /// A tunnel header (VXLAN, GENEVE, GRE, ERSPAN, GTP-U) ended early
    /// although nothing was cut by the snapshot length; the packet counts on
    /// its outer flow only.
    TunnelHeaderTruncated,
    /// A tunnel header with a version or flags its protocol does not have;
    /// the packet counts on its outer flow only.
    TunnelHeaderInvalid,
    /// A packet inside a tunnel could not be decoded (its own IP or link
    /// header is damaged); the packet counts on its outer flow only.
    TunnelInnerMalformed,
    /// Tunnels nested deeper than the decoder goes
    /// ([`crate::decode::MAX_TUNNEL_DEPTH`]).
    TunnelTooDeep,
    /// More distinct tunnels alive at once than flows can be keyed on; the
    /// packet counts on its outer flow only.
    TunnelsExhausted,
}

impl AnomalyKind {
    /// Every kind, in report order.
    pub const ALL: [AnomalyKind; 14] = [
        AnomalyKind::LinkHeaderTruncated,
        AnomalyKind::IpHeaderTruncated,
        AnomalyKind::IpVersionMismatch,
        AnomalyKind::Ipv4HeaderLength,
        AnomalyKind::IpLengthInconsistent,
        AnomalyKind::IpExtensionHeader,
        AnomalyKind::TransportHeaderTruncated,
        AnomalyKind::TcpDataOffset,
        AnomalyKind::OrphanFragments,
        AnomalyKind::TunnelHeaderTruncated,
        AnomalyKind::TunnelHeaderInvalid,
        AnomalyKind::TunnelInnerMalformed,
        AnomalyKind::TunnelTooDeep,
        AnomalyKind::TunnelsExhausted,
    ];

    /// A short description for reports.
    pub fn description(self) -> &'static str {
        match self {
            AnomalyKind::LinkHeaderTruncated => "link-layer header truncated",
            AnomalyKind::IpHeaderTruncated => "IP header truncated",
            AnomalyKind::IpVersionMismatch => "bad IP version",
            AnomalyKind::Ipv4HeaderLength => "IPv4 header length below 20 bytes",
            AnomalyKind::IpLengthInconsistent => "IP length field inconsistent with the frame",
            AnomalyKind::IpExtensionHeader => "malformed IP extension header",
            AnomalyKind::TransportHeaderTruncated => "TCP/UDP header truncated",
            AnomalyKind::TcpDataOffset => "TCP data offset below 5",
            AnomalyKind::OrphanFragments => "IP fragments without their first fragment",
            AnomalyKind::TunnelHeaderTruncated => "tunnel header truncated",
            AnomalyKind::TunnelHeaderInvalid => "tunnel header with a bad version or flags",
            AnomalyKind::TunnelInnerMalformed => "malformed packet inside a tunnel",
            AnomalyKind::TunnelTooDeep => "tunnels nested too deep",
            AnomalyKind::TunnelsExhausted => "too many tunnels alive at once",
        }
    }
}

/// Where to find a packet: the input's index and its frame number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FrameRef {
    pub file: u32,
    pub frame: u64,
}

/// How many frames of each kind are kept.
pub const FRAMES_KEPT: usize = 5;

/// `at` into the [`FRAMES_KEPT`] earliest frames, kept in order.
fn keep_earliest(kept: &mut Vec<FrameRef>, at: FrameRef) {
    // Frames mostly come in order: then this is one comparison.
    if kept.len() == FRAMES_KEPT && kept.last().is_some_and(|&last| last <= at) {
        return;
    }
    let i = kept.partition_point(|&k| k <= at);
    kept.insert(i, at);
    kept.truncate(FRAMES_KEPT);
}

/// Anomaly counts by kind with the earliest few frames of each (by input
/// and frame, whenever they were counted: counters of several shards merge
/// into what one would hold).
#[derive(Clone, Debug, Default)]
pub struct AnomalyCounter {
    counts: [u64; AnomalyKind::ALL.len()],
    first: [Vec<FrameRef>; AnomalyKind::ALL.len()],
}

impl AnomalyCounter {
    /// Counts one anomaly seen at `at`.
    pub fn record(&mut self, kind: AnomalyKind, at: FrameRef) {
        self.add(kind, 1, at);
    }

    /// Counts `n` anomalies of one kind, the first at `at`.
    pub fn add(&mut self, kind: AnomalyKind, n: u64, at: FrameRef) {
        let i = kind as usize;
        self.counts[i] += n;
        keep_earliest(&mut self.first[i], at);
    }

    /// Adds another counter's anomalies to these.
    pub fn merge(&mut self, other: &AnomalyCounter) {
        for (i, frames) in other.first.iter().enumerate() {
            self.counts[i] += other.counts[i];
            for &at in frames {
                keep_earliest(&mut self.first[i], at);
            }
        }
    }

    /// Total anomalies of every kind.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The kinds seen, with their count and first frames.
    pub fn iter(&self) -> impl Iterator<Item = (AnomalyKind, u64, &[FrameRef])> + '_ {
        AnomalyKind::ALL
            .iter()
            .map(|&k| (k, self.counts[k as usize], self.first[k as usize].as_slice()))
            .filter(|(_, n, _)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(frame: u64) -> FrameRef {
        FrameRef { file: 0, frame }
    }

    /// Counters of several shards merge into what one would hold: the
    /// counts summed, the earliest frames whatever the order they came in.
    #[test]
    fn merged_counters_keep_the_earliest_frames() {
        let (mut one, mut a, mut b) =
            (AnomalyCounter::default(), AnomalyCounter::default(), AnomalyCounter::default());
        for frame in [9, 2, 7, 4, 11, 1, 8] {
            one.record(AnomalyKind::OrphanFragments, at(frame));
            if frame % 2 == 0 { &mut a } else { &mut b }
                .record(AnomalyKind::OrphanFragments, at(frame));
        }
        a.merge(&b);
        let frames =
            |c: &AnomalyCounter| c.iter().map(|(k, n, f)| (k, n, f.to_vec())).collect::<Vec<_>>();
        assert_eq!(frames(&a), frames(&one));
        let kept: Vec<u64> = one.iter().next().unwrap().2.iter().map(|f| f.frame).collect();
        assert_eq!(kept, [1, 2, 4, 7, 8]);
        assert_eq!(one.total(), 7);
    }
}
