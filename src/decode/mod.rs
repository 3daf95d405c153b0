//! From a captured frame to the facts the flow stage needs: addresses,
//! protocol, ports, TCP flags, IP-layer length on the wire and the L4
//! payload.
//!
//! Decoding borrows from the frame and allocates nothing. It never fails and
//! never panics: a malformed packet yields what could be read plus an
//! [`AnomalyKind`]. Only the outermost IP header is used; tunnels are flows
//! of their outer addresses.

mod anomaly;
mod link;

pub use anomaly::{AnomalyCounter, AnomalyKind, FrameRef, FRAMES_KEPT};
pub use link::{locate_ip, Link};

use std::net::IpAddr;

use etherparse::err::ip::{HeaderError, LaxHeaderSliceError};
use etherparse::{ip_number, LaxIpSlice, LaxIpv4Slice, LaxIpv6Slice, TcpHeaderSlice};

use crate::capture::LinkType;

/// TCP flag bits as they appear in byte 13 of the TCP header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The fragment header fields of a packet that is part of a fragmented
/// datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
    /// Offset in 8-byte units; 0 for the first fragment.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

/// The decoded outer IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the payload (after IPv6 extension headers).
    pub protocol: u8,
    /// Source and destination port for TCP, UDP, UDP-Lite, SCTP and DCCP,
    /// when the packet carries the transport header.
    pub ports: Option<(u16, u16)>,
    /// TCP flags (byte 13 of the header), 0 for other protocols.
    pub tcp_flags: u8,
    /// IP-layer length on the wire: IPv4 total length, IPv6 payload length
    /// plus 40, whatever the snapshot length cut.
    pub ip_len: u32,
    /// L4 payload length on the wire (after the TCP/UDP header; for other
    /// protocols everything after the IP headers).
    pub payload_len: u32,
    /// Set when this packet is one fragment of a larger datagram.
    pub fragment: Option<Fragment>,
    /// The captured part of the L4 payload.
    pub payload: &'a [u8],
}

/// The result of decoding one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// An IP packet, possibly with something wrong that did not prevent
    /// counting it.
    Ip(IpPacket<'a>, Option<AnomalyKind>),
    /// Not IP (ARP, LLDP, …).
    NotIp,
    /// A link type that is not supported.
    UnsupportedLinkType,
    /// Too broken to attribute to a flow.
    Malformed(AnomalyKind),
}

/// Decodes a frame of `link_type` whose on-wire length was `wire_len`.
pub fn decode(link_type: LinkType, frame: &[u8], wire_len: u32) -> Decoded<'_> {
    let (offset, announced) = match locate_ip(link_type, frame) {
        Link::Ip { offset, version } => (offset, version),
        Link::NotIp => return Decoded::NotIp,
        Link::Unsupported => return Decoded::UnsupportedLinkType,
        Link::Truncated => return Decoded::Malformed(AnomalyKind::LinkHeaderTruncated),
    };
    let ip = frame.get(offset..).unwrap_or_default();
    // The captured bytes are all there is when the snapshot length did not
    // cut the frame; only then is a short header damage.
    let cut_by_snaplen = (frame.len() as u64) < u64::from(wire_len);
    let wire_ip_len = u64::from(wire_len).saturating_sub(offset as u64);
    let (slice, ext_error) = match LaxIpSlice::from_slice(ip) {
        Ok((slice, err)) => (slice, err.is_some()),
        Err(LaxHeaderSliceError::Len(_)) => {
            return Decoded::Malformed(AnomalyKind::IpHeaderTruncated)
        }
        Err(LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. })) => {
            return Decoded::Malformed(AnomalyKind::IpVersionMismatch)
        }
        Err(LaxHeaderSliceError::Content(HeaderError::Ipv4HeaderLengthSmallerThanHeader {
            ..
        })) => return Decoded::Malformed(AnomalyKind::Ipv4HeaderLength),
    };
    let version = if matches!(slice, LaxIpSlice::Ipv4(_)) {
        4
    } else {
        6
    };
    if announced != 0 && announced != version {
        return Decoded::Malformed(AnomalyKind::IpVersionMismatch);
    }
    let mut anomaly = ext_error.then_some(AnomalyKind::IpExtensionHeader);
    let (header_len, claimed_len, fragment) = match &slice {
        LaxIpSlice::Ipv4(v4) => ipv4_facts(v4),
        LaxIpSlice::Ipv6(v6) => ipv6_facts(v6),
    };
    let payload = slice.payload();
    // The length field decides, unless it contradicts the header or the
    // frame; then the frame's own length is the best evidence.
    let ip_len = match claimed_len {
        len if len >= header_len && u64::from(len) <= wire_ip_len => len,
        // IPv6 payload length 0: a jumbogram (RFC 2675) or a length left to
        // the NIC by segmentation offload.
        0 if version == 6 => (wire_ip_len as u32).max(header_len),
        _ => {
            anomaly = anomaly.or(Some(AnomalyKind::IpLengthInconsistent));
            (wire_ip_len as u32).max(header_len)
        }
    };
    let protocol = payload.ip_number.0;
    let mut packet = IpPacket {
        src: slice.source_addr(),
        dst: slice.destination_addr(),
        protocol,
        ports: None,
        tcp_flags: 0,
        ip_len,
        payload_len: ip_len.saturating_sub(header_len),
        fragment,
        payload: payload.payload,
    };
    // Only an unfragmented packet or a first fragment starts with the
    // transport header.
    if fragment.is_none_or(|f| f.offset == 0) {
        if let Some(kind) = transport(&mut packet, cut_by_snaplen) {
            anomaly = anomaly.or(Some(kind));
        }
    }
    Decoded::Ip(packet, anomaly)
}

/// Header length (IPv4 header, or IPv6 header plus extension headers), the
/// length the header claims for the whole packet (0 for an IPv6 payload
/// length of 0), and fragment facts.
fn ipv4_facts(v4: &LaxIpv4Slice<'_>) -> (u32, u32, Option<Fragment>) {
    let h = v4.header();
    let header_len =
        h.slice().len() as u32 + v4.extensions().auth.map_or(0, |a| a.slice().len() as u32);
    let offset = h.fragments_offset().value();
    let fragment = (offset != 0 || h.more_fragments()).then(|| Fragment {
        id: u32::from(h.identification()),
        offset,
        more: h.more_fragments(),
    });
    (header_len, u32::from(h.total_len()), fragment)
}

fn ipv6_facts(v6: &LaxIpv6Slice<'_>) -> (u32, u32, Option<Fragment>) {
    let h = v6.header();
    let exts = v6.extensions();
    let header_len = 40 + exts.slice().len() as u32;
    let fragment = ipv6_fragment(h.next_header().0, exts.slice());
    let claimed = match h.payload_length() {
        0 => 0,
        n => u32::from(n) + 40,
    };
    (header_len, claimed, fragment)
}

/// Finds a fragmenting fragment header in the extension headers that
/// etherparse separated.
///
/// etherparse's `Ipv6ExtensionSliceIter` reads past the end of the slice
/// (undefined behaviour) when lax parsing stopped inside the chain, as in
/// tcpdump's `ipv6hdr-heapoverflow.pcap`; this walk checks every bound.
fn ipv6_fragment(first: u8, exts: &[u8]) -> Option<Fragment> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTIONS: u8 = 60;
    let mut next = first;
    let mut rest = exts;
    loop {
        let header = rest.get(0..2)?;
        let len = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTIONS => (usize::from(header[1]) + 1) * 8,
            AUTH => (usize::from(header[1]) + 2) * 4,
            FRAGMENT => {
                let f = rest.get(0..8)?;
                let offset = u16::from_be_bytes([f[2], f[3]]) >> 3;
                let more = f[3] & 1 == 1;
                if offset == 0 && !more {
                    8 // an atomic fragment (RFC 6946) fragments nothing
                } else {
                    let id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                    return Some(Fragment { id, offset, more });
                }
            }
            _ => return None,
        };
        next = header[0];
        rest = rest.get(len..)?;
    }
}

/// Reads ports, flags and the payload start from the transport header.
fn transport(packet: &mut IpPacket<'_>, cut_by_snaplen: bool) -> Option<AnomalyKind> {
    let data = packet.payload;
    let header_len = match packet.protocol {
        p if p == ip_number::TCP.0 => match TcpHeaderSlice::from_slice(data) {
            Ok(tcp) => {
                packet.tcp_flags = tcp.slice()[13];
                tcp.slice().len()
            }
            Err(etherparse::err::tcp::HeaderSliceError::Content(_)) => {
                packet.ports = ports(data);
                return Some(AnomalyKind::TcpDataOffset);
            }
            Err(etherparse::err::tcp::HeaderSliceError::Len(_)) => {
                // The ports and flags may still be there.
                packet.tcp_flags = data.get(13).copied().unwrap_or(0);
                packet.ports = ports(data);
                // Assume a header without options for the payload length.
                packet.payload_len = packet.payload_len.saturating_sub(20);
                packet.payload = &[];
                return (!cut_by_snaplen).then_some(AnomalyKind::TransportHeaderTruncated);
            }
        },
        p if p == ip_number::UDP.0 || p == ip_number::UDP_LITE.0 => 8,
        p if p == ip_number::SCTP.0 => 12,
        p if p == ip_number::DCCP.0 => 16,
        _ => return None,
    };
    packet.ports = ports(data);
    if data.len() < header_len {
        packet.payload = &[];
        packet.payload_len = packet.payload_len.saturating_sub(header_len as u32);
        if packet.ports.is_none() && !cut_by_snaplen {
            return Some(AnomalyKind::TransportHeaderTruncated);
        }
        return None;
    }
    packet.payload = &data[header_len..];
    packet.payload_len = packet.payload_len.saturating_sub(header_len as u32);
    None
}

fn ports(data: &[u8]) -> Option<(u16, u16)> {
    let b = data.get(0..4)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}
