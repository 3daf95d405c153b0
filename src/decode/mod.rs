//! From a captured frame to the facts the flow stage needs: addresses,
//! protocol, ports, TCP flags, IP-layer length on the wire and the L4
//! payload.
//!
//! Decoding borrows from the frame and allocates nothing. It never fails and
//! never panics: a malformed packet yields what could be read plus an
//! [`AnomalyKind`]. [`decode`] reads the outermost IP header; [`decapsulate`]
//! (in `tunnel.rs`) removes one tunnel layer at a time from a decoded packet.

mod anomaly;
mod link;
mod tunnel;

pub use anomaly::{AnomalyCounter, AnomalyKind, FrameRef, FRAMES_KEPT};
use link::locate_ip_quickly;
pub use link::{locate_ip, Link};
pub use tunnel::{
    decapsulate, Decap, Decapsulation, TunnelChain, TunnelKind, TunnelLayer, TunnelPorts,
    MAX_TUNNEL_DEPTH,
};

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
    /// TCP sequence number, 0 for other protocols.
    pub tcp_seq: u32,
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
#[inline]
pub fn decode(link_type: LinkType, frame: &[u8], wire_len: u32) -> Decoded<'_> {
    let (offset, announced) = match locate_ip_quickly(link_type, frame) {
        Link::Ip { offset, version } => (offset, version),
        Link::NotIp => return Decoded::NotIp,
        Link::Unsupported => return Decoded::UnsupportedLinkType,
        Link::Truncated => return Decoded::Malformed(AnomalyKind::LinkHeaderTruncated),
    };
    let ip = frame.get(offset..).unwrap_or_default();
    decode_ip(ip, announced, Some(u64::from(wire_len).saturating_sub(offset as u64)))
}

/// Decodes an IP packet whose link layer (or tunnel) announced `announced`
/// (4, 6, or 0 for nothing) and whose length on the wire is `wire_ip_len`:
/// `None` when it is not known (inside a first fragment of an outer
/// datagram), so the length fields are believed and a short packet is not
/// damage.
pub fn decode_ip(ip: &[u8], announced: u8, wire_ip_len: Option<u64>) -> Decoded<'_> {
    // The captured bytes are all there is when the snapshot length did not
    // cut the frame; only then is a short header damage.
    let cut_by_snaplen = wire_ip_len.is_none_or(|w| (ip.len() as u64) < w);
    let layer = match plain_ip_layer(ip, announced) {
        Some(layer) => layer,
        None => match ip_layer(ip, announced) {
            Ok(layer) => layer,
            Err(kind) => return Decoded::Malformed(kind),
        },
    };
    let IpLayer {
        version,
        header_len,
        claimed_len,
        fragment,
        ext_error,
        protocol,
        src,
        dst,
        payload,
    } = layer;
    let mut anomaly = ext_error.then_some(AnomalyKind::IpExtensionHeader);
    // The length field decides, unless it contradicts the header or the
    // frame; then the frame's own length is the best evidence.
    let wire_or_captured = wire_ip_len.unwrap_or(ip.len() as u64).min(u64::from(u32::MAX)) as u32;
    let ip_len = match claimed_len {
        len if len >= header_len && wire_ip_len.is_none_or(|w| u64::from(len) <= w) => len,
        // IPv6 payload length 0: a jumbogram (RFC 2675) or a length left to
        // the NIC by segmentation offload.
        0 if version == 6 => wire_or_captured.max(header_len),
        _ => {
            anomaly = anomaly.or(Some(AnomalyKind::IpLengthInconsistent));
            wire_or_captured.max(header_len)
        }
    };
    let mut packet = IpPacket {
        src,
        dst,
        protocol,
        ports: None,
        tcp_flags: 0,
        tcp_seq: 0,
        ip_len,
        payload_len: ip_len.saturating_sub(header_len),
        fragment,
        payload,
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

/// What the IP header (and IPv6 extension headers) of a packet say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IpLayer<'a> {
    version: u8,
    /// See [`ipv4_facts`].
    header_len: u32,
    claimed_len: u32,
    fragment: Option<Fragment>,
    /// An extension header could not be read (the payload starts where
    /// reading stopped).
    ext_error: bool,
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    /// After the headers, up to the claimed length when the packet holds
    /// it.
    payload: &'a [u8],
}

/// The IP layer as etherparse's lax slicing reads it, or what makes it
/// unreadable.
fn ip_layer(ip: &[u8], announced: u8) -> Result<IpLayer<'_>, AnomalyKind> {
    let (slice, ext_error) = match LaxIpSlice::from_slice(ip) {
        Ok((slice, err)) => (slice, err.is_some()),
        Err(LaxHeaderSliceError::Len(_)) => return Err(AnomalyKind::IpHeaderTruncated),
        Err(LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. })) => {
            return Err(AnomalyKind::IpVersionMismatch)
        }
        Err(LaxHeaderSliceError::Content(HeaderError::Ipv4HeaderLengthSmallerThanHeader {
            ..
        })) => return Err(AnomalyKind::Ipv4HeaderLength),
    };
    let version = if matches!(slice, LaxIpSlice::Ipv4(_)) { 4 } else { 6 };
    if announced != 0 && announced != version {
        return Err(AnomalyKind::IpVersionMismatch);
    }
    let (header_len, claimed_len, fragment) = match &slice {
        LaxIpSlice::Ipv4(v4) => ipv4_facts(v4),
        LaxIpSlice::Ipv6(v6) => ipv6_facts(v6),
    };
    let payload = slice.payload();
    Ok(IpLayer {
        version,
        header_len,
        claimed_len,
        fragment,
        ext_error,
        protocol: payload.ip_number.0,
        src: slice.source_addr(),
        dst: slice.destination_addr(),
        payload: payload.payload,
    })
}

/// [`ip_layer`] of the packets most traffic is made of, read in place: an
/// IPv4 header without options nor fragmentation, or an IPv6 header
/// straight to TCP, UDP or ICMPv6, with a length field that is not 0 and
/// not below the header. `None` for anything else (etherparse reads it):
/// lax slicing and reading its fields took about 150 instructions a
/// packet on gateway traffic; this takes about 40. A property test holds
/// the two to the same answer wherever this one answers, on packets whose
/// deciding bytes are overwritten, padded and cut.
#[inline]
fn plain_ip_layer(ip: &[u8], announced: u8) -> Option<IpLayer<'_>> {
    const AUTH: u8 = 51;
    let (version, header_len, claimed_len, protocol, src, dst) = match ip.first()? >> 4 {
        4 if announced != 6 => {
            let h: &[u8; 20] = ip.first_chunk()?;
            // IHL 5, no more fragments, offset 0; the authentication
            // header is an extension etherparse reads.
            if h[0] != 0x45 || h[6] & 0x3f != 0 || h[7] != 0 || h[9] == AUTH {
                return None;
            }
            let total = u32::from(u16::from_be_bytes([h[2], h[3]]));
            let src = IpAddr::from([h[12], h[13], h[14], h[15]]);
            let dst = IpAddr::from([h[16], h[17], h[18], h[19]]);
            (4, 20, total, h[9], src, dst)
        }
        6 if announced != 4 => {
            let h: &[u8; 40] = ip.first_chunk()?;
            // No extension header in between.
            if !matches!(h[6], 6 | 17 | 58) {
                return None;
            }
            let payload = u32::from(u16::from_be_bytes([h[4], h[5]]));
            let src = IpAddr::from(<[u8; 16]>::try_from(&h[8..24]).ok()?);
            let dst = IpAddr::from(<[u8; 16]>::try_from(&h[24..40]).ok()?);
            (6, 40, (payload != 0).then_some(payload + 40)?, h[6], src, dst)
        }
        _ => return None,
    };
    // A length below the header leaves `end` before the payload's start:
    // `None`, as for a packet shorter than its header.
    let end = (claimed_len as usize).min(ip.len());
    Some(IpLayer {
        version,
        header_len,
        claimed_len,
        fragment: None,
        ext_error: false,
        protocol,
        src,
        dst,
        payload: ip.get(header_len as usize..end)?,
    })
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
                packet.tcp_seq = tcp.sequence_number();
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
    Some((u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const LINK_TYPES: [u16; 19] =
        [0, 1, 7, 9, 12, 14, 50, 51, 101, 105, 108, 113, 127, 129, 147, 192, 228, 229, 276];

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
            .udp(1234, 53)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn udp_over_ethernet() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&udp4(b"hello"));
        let Decoded::Ip(p, None) = decode(LinkType::ETHERNET, &frame, frame.len() as u32) else {
            panic!("not decoded");
        };
        assert_eq!(p.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.ports, Some((1234, 53)));
        assert_eq!((p.ip_len, p.payload_len, p.payload), (33, 5, &b"hello"[..]));
    }

    /// The untagged Ethernet frames `decode` places itself are where
    /// `locate_ip` places them, of the version it announces.
    #[test]
    fn untagged_ethernet_is_placed_as_locate_ip_places_it() {
        for (ether_type, version, v6) in [([0x08, 0x00], 4, false), ([0x86, 0xdd], 6, true)] {
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&ether_type);
            frame.extend_from_slice(&mangled(v6, 17, b"hi", 0, (0, &[]), usize::MAX));
            let link = locate_ip(LinkType::ETHERNET, &frame);
            assert_eq!(link, Link::Ip { offset: 14, version });
            let Decoded::Ip(p, None) = decode(LinkType::ETHERNET, &frame, frame.len() as u32)
            else {
                panic!("IPv{version} not decoded");
            };
            assert_eq!((p.ports, p.payload), (Some((40000, 53)), &b"hi"[..]));
        }
    }

    #[test]
    fn snaplen_cut_keeps_wire_lengths_without_anomaly() {
        let ip = udp4(&[7; 500]);
        let Decoded::Ip(p, anomaly) = decode(LinkType::RAW, &ip[..40], ip.len() as u32) else {
            panic!("not decoded");
        };
        assert_eq!(anomaly, None);
        assert_eq!((p.ip_len, p.payload_len, p.payload.len()), (528, 500, 12));
    }

    #[test]
    fn lying_length_fields_fall_back_to_the_frame() {
        let mut ip = udp4(&[7; 10]);
        ip[2..4].copy_from_slice(&9000u16.to_be_bytes());
        let Decoded::Ip(p, anomaly) = decode(LinkType::RAW, &ip, ip.len() as u32) else {
            panic!("not decoded");
        };
        assert_eq!(anomaly, Some(AnomalyKind::IpLengthInconsistent));
        assert_eq!(p.ip_len, 38);
    }

    #[test]
    fn malformed_headers_are_anomalies() {
        assert_eq!(
            decode(LinkType::RAW, &[0x45, 0, 0], 3),
            Decoded::Malformed(AnomalyKind::IpHeaderTruncated)
        );
        let mut bad_ihl = udp4(b"x");
        bad_ihl[0] = 0x43;
        assert_eq!(
            decode(LinkType::RAW, &bad_ihl, bad_ihl.len() as u32),
            Decoded::Malformed(AnomalyKind::Ipv4HeaderLength)
        );
        let v4 = udp4(b"x");
        assert_eq!(
            decode(LinkType::IPV6, &v4, v4.len() as u32),
            Decoded::Malformed(AnomalyKind::IpVersionMismatch)
        );
        let mut tcp = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 0, 0)
            .write(&mut tcp, &[])
            .unwrap();
        let cut = &tcp[..30];
        let Decoded::Ip(p, anomaly) = decode(LinkType::RAW, cut, 30) else { panic!() };
        assert_eq!(anomaly, Some(AnomalyKind::IpLengthInconsistent));
        assert_eq!(p.ports, Some((1, 2)));
    }

    #[test]
    fn ipv6_fragment_headers() {
        // Next header 44 at offset 6; fragment header: next 17, offset 185
        // (1480 bytes), more fragments, id 0xdeadbeef.
        let mut ip = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
        ip.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(8));
        ip.extend_from_slice(&[17, 0, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef]);
        ip.extend_from_slice(&[0; 8]);
        let Decoded::Ip(p, _) = decode(LinkType::RAW, &ip, ip.len() as u32) else { panic!() };
        assert_eq!(p.fragment, Some(Fragment { id: 0xdead_beef, offset: 185, more: true }));
        assert_eq!(p.ports, None, "a later fragment has no transport header");
        assert_eq!(p.protocol, 17);
    }

    /// A built IPv4 or IPv6 packet (TCP, UDP or ICMP) followed by
    /// `padding` bytes past its length (as Ethernet pads short frames),
    /// with `patch` written over its bytes from `at` (as far as it
    /// reaches), then cut to `keep` bytes.
    fn mangled(
        v6: bool,
        proto: u8,
        payload: &[u8],
        padding: usize,
        (at, patch): (usize, &[u8]),
        keep: usize,
    ) -> Vec<u8> {
        let builder = if v6 {
            PacketBuilder::ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
        } else {
            PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
        };
        let mut ip = Vec::new();
        let written = match proto {
            6 => builder.tcp(40000, 443, 7, 1000).ack(1).write(&mut ip, payload),
            17 => builder.udp(40000, 53).write(&mut ip, payload),
            _ if v6 => builder.icmpv6_echo_request(1, 2).write(&mut ip, payload),
            _ => builder.icmpv4_echo_request(1, 2).write(&mut ip, payload),
        };
        written.unwrap();
        ip.resize(ip.len() + padding, 0xee);
        for (i, b) in patch.iter().enumerate() {
            if let Some(byte) = ip.get_mut(at + i) {
                *byte = *b;
            }
        }
        ip.truncate(keep);
        ip
    }

    #[test]
    fn plain_headers_are_read_in_place_and_others_left_to_etherparse() {
        for v6 in [false, true] {
            for proto in [6, 17, 1] {
                // Whole, padded past its length (the payload stops at the
                // length field), cut before its end.
                for (padding, keep) in [(0, usize::MAX), (18, usize::MAX), (0, 50)] {
                    let ip = mangled(v6, proto, b"hello", padding, (0, &[]), keep);
                    let plain = plain_ip_layer(&ip, 0);
                    assert!(plain.is_some(), "v6 {v6} protocol {proto} {padding} {keep}");
                    assert_eq!(plain.map(Ok), Some(ip_layer(&ip, 0)));
                }
            }
        }
        // Don't fragment is not a fragment.
        let df = mangled(false, 17, b"x", 6, (6, &[0x40]), usize::MAX);
        assert_eq!(plain_ip_layer(&df, 0).map(Ok), Some(ip_layer(&df, 0)));
        // IPv4 options, a fragment (more to come, or a later one), an
        // authentication header, an IPv6 extension header, a jumbogram
        // length, a length below the header: etherparse's.
        let options = mangled(false, 17, b"x", 0, (0, &[0x46]), usize::MAX);
        let auth = mangled(false, 17, b"x", 0, (9, &[51]), usize::MAX);
        let more = mangled(false, 17, b"x", 0, (6, &[0x20]), usize::MAX);
        let later = mangled(false, 17, b"x", 0, (7, &[0x01]), usize::MAX);
        let high_offset = mangled(false, 17, b"x", 0, (6, &[0x01]), usize::MAX);
        let hop_by_hop = mangled(true, 17, b"x", 0, (6, &[0]), usize::MAX);
        let jumbo = mangled(true, 17, b"x", 0, (4, &[0, 0]), usize::MAX);
        let short = mangled(false, 17, b"x", 0, (2, &[0, 19]), usize::MAX);
        for ip in [options, auth, more, later, high_offset, hop_by_hop, jumbo, short] {
            assert_eq!(plain_ip_layer(&ip, 0), None, "{ip:02x?}");
        }
        // The link layer says the other version: etherparse says how.
        let v4 = mangled(false, 6, b"", 0, (0, &[]), usize::MAX);
        assert_eq!(plain_ip_layer(&v4, 6), None);
    }

    proptest! {
        // The in-place reading decides on a few bytes: enough cases that
        // every guard is reached many times (each of the mutations tried
        // while writing it fails here).
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Wherever the in-place reading answers, it is what etherparse
        /// reads: TCP, UDP and ICMP packets with the bytes it decides on
        /// (lengths, fragment bits, protocol, version) overwritten, padded
        /// past their length and cut anywhere, announced as either version
        /// or none.
        #[test]
        fn plain_headers_read_as_etherparse_reads_them(
            v6 in any::<bool>(),
            proto in proptest::sample::select(&[6u8, 17, 1][..]),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            padding in prop_oneof![Just(0usize), 1usize..24],
            at in prop_oneof![proptest::sample::select(&[0usize, 2, 3, 4, 5, 6, 7, 9][..]), 0usize..48],
            patch in proptest::collection::vec(prop_oneof![
                any::<u8>(),
                // Versions and header lengths, fragment bits, extension
                // headers (hop-by-hop, routing, fragment, AH, options).
                proptest::sample::select(&[0x45u8, 0x46, 0x60, 0x20, 0x40, 0x01, 0, 43, 44, 51, 60][..]),
            ], 0..4),
            keep in prop_oneof![Just(usize::MAX), 0usize..170],
            announced in proptest::sample::select(&[0u8, 4, 6][..])) {
            let ip = mangled(v6, proto, &payload, padding, (at, &patch), keep);
            if let Some(plain) = plain_ip_layer(&ip, announced) {
                prop_assert_eq!(Ok(plain), ip_layer(&ip, announced));
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(lt in proptest::sample::select(&LINK_TYPES[..]),
                                       data in proptest::collection::vec(any::<u8>(), 0..200),
                                       extra in 0u32..100) {
            let _ = decode(LinkType(lt), &data, data.len() as u32 + extra);
        }

        #[test]
        fn ip_packets_after_arbitrary_link_headers_never_panic(
            lt in proptest::sample::select(&LINK_TYPES[..]),
            head in proptest::collection::vec(any::<u8>(), 0..40),
            tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut data = head;
            data.push(0x45);
            data.extend_from_slice(&tail);
            let _ = decode(LinkType(lt), &data, data.len() as u32);
            data.push(0x60);
            let _ = decode(LinkType(lt), &data, data.len() as u32);
        }

        #[test]
        fn built_packets_round_trip(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
                                    sport in any::<u16>(), dport in any::<u16>(),
                                    v6 in any::<bool>(), tcp in any::<bool>(),
                                    payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let builder = if v6 {
                PacketBuilder::ipv6(src, dst, 64)
            } else {
                PacketBuilder::ipv4(src[..4].try_into().unwrap(), dst[..4].try_into().unwrap(), 64)
            };
            let mut ip = Vec::new();
            if tcp {
                builder.tcp(sport, dport, 1, 1000).syn().write(&mut ip, &payload).unwrap();
            } else {
                builder.udp(sport, dport).write(&mut ip, &payload).unwrap();
            }
            let Decoded::Ip(p, anomaly) = decode(LinkType::RAW, &ip, ip.len() as u32) else {
                panic!("not decoded");
            };
            prop_assert_eq!(anomaly, None);
            let (s, d) = if v6 {
                (IpAddr::from(src), IpAddr::from(dst))
            } else {
                (IpAddr::from(<[u8; 4]>::try_from(&src[..4]).unwrap()), IpAddr::from(<[u8; 4]>::try_from(&dst[..4]).unwrap()))
            };
            prop_assert_eq!((p.src, p.dst), (s, d));
            prop_assert_eq!(p.ports, Some((sport, dport)));
            prop_assert_eq!(p.protocol, if tcp { 6 } else { 17 });
            prop_assert_eq!(p.ip_len as usize, ip.len());
            prop_assert_eq!(p.payload, &payload[..]);
            prop_assert_eq!(p.payload_len as usize, payload.len());
            prop_assert_eq!(p.tcp_flags, if tcp { tcp_flags::SYN } else { 0 });
        }
    }
}
