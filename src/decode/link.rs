//! Link layers down to the IP header: Ethernet (Ethernet II and 802.3 with
//! LLC/SNAP) with 802.1Q/802.1ad VLAN stacks, PPPoE sessions and MPLS label
//! stacks, Linux cooked capture v1 and v2, raw IP, BSD null/loopback, PPP,
//! FDDI, IP over InfiniBand, Solaris ipnet, Linux NFLOG, IEEE 802.11 data
//! frames (bare, behind radiotap or behind PPI) and ARCNET (RFC 1201).

use crate::capture::LinkType;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;

/// NFLOG attribute carrying the packet (`NFULA_PAYLOAD`).
const NFULA_PAYLOAD: u16 = 9;

/// Where the link layer led.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// An IP packet starts at this offset; `version` is what the link layer
    /// announced (4 or 6), 0 when it announced nothing (raw IP).
    Ip { offset: usize, version: u8 },
    /// Something other than IP (ARP, LLDP, spanning tree, …).
    NotIp,
    /// A link type this decoder does not handle.
    Unsupported,
    /// The frame ended inside a link-layer header.
    Truncated,
}

/// Finds the IP header in a frame of the given link type.
pub fn locate_ip(link_type: LinkType, frame: &[u8]) -> Link {
    match link_type {
        LinkType::ETHERNET => ethernet(frame),
        LinkType::LINUX_SLL => match frame.get(14..16) {
            Some(p) => ether_type(frame, 16, u16::from_be_bytes([p[0], p[1]])),
            None => Link::Truncated,
        },
        LinkType::LINUX_SLL2 => match frame.get(0..2) {
            Some(p) if frame.len() >= 20 => ether_type(frame, 20, u16::from_be_bytes([p[0], p[1]])),
            _ => Link::Truncated,
        },
        LinkType::RAW | LinkType::RAW_OPENBSD | LinkType::RAW_BSDOS => {
            Link::Ip { offset: 0, version: 0 }
        }
        LinkType::IPV4 => Link::Ip { offset: 0, version: 4 },
        LinkType::IPV6 => Link::Ip { offset: 0, version: 6 },
        LinkType::NULL | LinkType::LOOP => null_loopback(link_type, frame),
        LinkType::PPP | LinkType::PPP_HDLC => ppp(frame, 0),
        LinkType::PPP_ETHER => pppoe(frame, 0),
        // Frame control, destination, source, then LLC.
        LinkType::FDDI => llc_snap(frame, 13),
        // Solaris ipnet: a 24-byte header whose second byte is the family.
        LinkType::IPNET => match frame.get(1) {
            Some(2) if frame.len() >= 24 => Link::Ip { offset: 24, version: 4 },
            Some(26) if frame.len() >= 24 => Link::Ip { offset: 24, version: 6 },
            Some(_) if frame.len() >= 24 => Link::NotIp,
            _ => Link::Truncated,
        },
        // IP over InfiniBand (RFC 4391): 40 bytes of addresses, EtherType,
        // 2 reserved bytes.
        LinkType::IPOIB => match be16(frame, 40) {
            Some(t) if frame.len() >= 44 => ether_type(frame, 44, t),
            _ => Link::Truncated,
        },
        LinkType::NFLOG => nflog(frame),
        LinkType::IEEE802_11 => wifi(frame, 0, false),
        LinkType::IEEE802_11_RADIOTAP => radiotap(frame),
        LinkType::PPI => ppi(frame),
        LinkType::ARCNET_LINUX => arcnet(frame, 4),
        LinkType::ARCNET_BSD => arcnet(frame, 2),
        _ => Link::Unsupported,
    }
}

/// Radiotap: version, padding, the header's length and the bitmaps of the
/// fields present (little endian), then the fields, then the 802.11 frame.
/// Only the flags field matters here: its DATAPAD bit says the 802.11
/// header is padded to a multiple of 4 bytes (mac80211 does so).
fn radiotap(frame: &[u8]) -> Link {
    const PRESENT_TSFT: u32 = 1 << 0;
    const PRESENT_FLAGS: u32 = 1 << 1;
    const PRESENT_EXT: u32 = 1 << 31;
    const FLAG_DATAPAD: u8 = 0x20;
    let le32 =
        |at: usize| frame.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let (Some(len), Some(present)) = (frame.get(2..4), le32(4)) else { return Link::Truncated };
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    if len < 8 || frame.len() < len {
        return Link::Truncated;
    }
    // The fields start after the last (extended) present bitmap.
    let mut fields = 8;
    let mut word = present;
    while word & PRESENT_EXT != 0 {
        let Some(next) = le32(fields) else { return Link::Truncated };
        word = next;
        fields += 4;
    }
    let mut pad = false;
    if present & PRESENT_FLAGS != 0 {
        // TSFT (8 bytes, aligned to 8) comes first when present.
        let at = if present & PRESENT_TSFT != 0 { fields.next_multiple_of(8) + 8 } else { fields };
        pad = frame.get(at).filter(|_| at < len).is_some_and(|f| f & FLAG_DATAPAD != 0);
    }
    wifi(frame, len, pad)
}

/// Per-Packet Information: version, flags, the header's length and the
/// link type behind it (both little endian); 802.11 or Ethernet follow.
fn ppi(frame: &[u8]) -> Link {
    let Some(h) = frame.get(0..8) else { return Link::Truncated };
    let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
    let inner = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let inner = match u16::try_from(inner).map(LinkType) {
        _ if len < 8 => return Link::Truncated,
        Ok(lt @ (LinkType::IEEE802_11 | LinkType::ETHERNET)) => lt,
        _ => return Link::Unsupported,
    };
    match frame.get(len..).map(|rest| locate_ip(inner, rest)) {
        Some(Link::Ip { offset, version }) => Link::Ip { offset: len + offset, version },
        Some(other) => other,
        None => Link::Truncated,
    }
}

/// An IEEE 802.11 frame at `at`: data frames carry LLC/SNAP after a header
/// of 24 bytes, 30 with four addresses (to and from the distribution
/// system), plus the QoS control (2) and, with the order bit in a QoS
/// frame, the HT control (4); with `pad` (radiotap's DATAPAD) the header is
/// padded to a multiple of 4 bytes. Management and control frames, data
/// frames without a payload, protected (encrypted) frames and A-MSDU
/// aggregates are not IP here.
fn wifi(frame: &[u8], at: usize, pad: bool) -> Link {
    const DATA: u8 = 2;
    const TO_DS: u8 = 0x01;
    const FROM_DS: u8 = 0x02;
    const PROTECTED: u8 = 0x40;
    const ORDER: u8 = 0x80;
    let Some(fc) = frame.get(at..at + 2) else { return Link::Truncated };
    let (kind, subtype, flags) = ((fc[0] >> 2) & 3, fc[0] >> 4, fc[1]);
    // Subtypes 4 to 7 and 12 to 15 (null data) carry nothing.
    if kind != DATA || subtype & 0x04 != 0 || flags & PROTECTED != 0 {
        return Link::NotIp;
    }
    let qos = subtype & 0x08 != 0;
    let mut len = 24;
    if flags & (TO_DS | FROM_DS) == TO_DS | FROM_DS {
        len += 6;
    }
    let qos_at = at + len;
    if qos {
        len += 2;
        if flags & ORDER != 0 {
            len += 4;
        }
    }
    if frame.len() < at + len {
        return Link::Truncated;
    }
    // QoS control bit 7: an A-MSDU of subframes, not one LLC frame.
    if qos && frame[qos_at] & 0x80 != 0 {
        return Link::NotIp;
    }
    if pad {
        len = len.next_multiple_of(4);
    }
    llc_snap(frame, at + len)
}

/// ARCNET (RFC 1201) with the protocol id at `at` (after source,
/// destination and, on Linux, a 2-byte offset): IP (212) and IPv6 (196)
/// follow a split flag and a 2-byte sequence number; old-style IP (240)
/// follows directly. A fragment after the first of a split packet is not
/// the start of an IP packet.
fn arcnet(frame: &[u8], at: usize) -> Link {
    const IP: u8 = 212;
    const IPV6: u8 = 196;
    const IP_OLD: u8 = 240;
    let Some(&protocol) = frame.get(at) else { return Link::Truncated };
    let (version, offset) = match protocol {
        IP_OLD => return Link::Ip { offset: at + 1, version: 4 },
        IP => (4, at + 4),
        IPV6 => (6, at + 4),
        _ => return Link::NotIp,
    };
    match frame.get(at + 1) {
        None => Link::Truncated,
        // An exception packet: 0xff, then 4 more bytes before the header.
        Some(0xff) if frame.len() < offset + 4 => Link::Truncated,
        Some(0xff) => Link::Ip { offset: offset + 4, version },
        // A split packet's later fragments have an even, non-zero flag.
        Some(&flag) if flag != 0 && flag & 1 == 0 => Link::NotIp,
        Some(_) if frame.len() < offset => Link::Truncated,
        Some(_) => Link::Ip { offset, version },
    }
}

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    frame.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Where [`locate_ip`] places an untagged Ethernet frame carrying IPv4 or
/// IPv6 (most frames), found without its link-type dispatch: `(offset,
/// version)`, or `None` for every other frame.
#[inline]
pub(super) fn untagged_ethernet_ip(link_type: LinkType, frame: &[u8]) -> Option<(usize, u8)> {
    if link_type != LinkType::ETHERNET {
        return None;
    }
    match be16(frame, 12)? {
        ETHERTYPE_IPV4 => Some((14, 4)),
        ETHERTYPE_IPV6 => Some((14, 6)),
        _ => None,
    }
}

/// [`locate_ip`], with untagged Ethernet carrying IP (most frames, and
/// most frames inside VXLAN or GENEVE) placed before the link-type
/// dispatch ([`untagged_ethernet_ip`]).
#[inline]
pub(super) fn locate_ip_quickly(link_type: LinkType, frame: &[u8]) -> Link {
    match untagged_ethernet_ip(link_type, frame) {
        Some((offset, version)) => Link::Ip { offset, version },
        None => locate_ip(link_type, frame),
    }
}

fn ethernet(frame: &[u8]) -> Link {
    match be16(frame, 12) {
        Some(t) if t >= 0x0600 => ether_type(frame, 14, t),
        // An 802.3 length field: LLC follows.
        Some(_) => llc_snap(frame, 14),
        None => Link::Truncated,
    }
}

/// IEEE 802.2 LLC: only SNAP with an EtherType (OUI 0) can carry IP here;
/// other LLC frames (spanning tree, NetBIOS…) are not IP.
fn llc_snap(frame: &[u8], at: usize) -> Link {
    match frame.get(at..at + 8) {
        Some([0xaa, 0xaa, 0x03, 0, 0, 0, hi, lo]) => {
            ether_type(frame, at + 8, u16::from_be_bytes([*hi, *lo]))
        }
        Some(_) => Link::NotIp,
        None if frame.len() >= at + 3 => Link::NotIp,
        None => Link::Truncated,
    }
}

/// Linux NFLOG: a 4-byte header (family, version, group), then
/// type-length-value attributes in host byte order, padded to 4 bytes.
fn nflog(frame: &[u8]) -> Link {
    let Some(&family) = frame.first() else {
        return Link::Truncated;
    };
    let version = match family {
        2 => 4,
        10 => 6,
        _ => return Link::NotIp,
    };
    let mut at = 4;
    while let Some(tlv) = frame.get(at..at + 4) {
        let len = usize::from(u16::from_le_bytes([tlv[0], tlv[1]]));
        let kind = u16::from_le_bytes([tlv[2], tlv[3]]) & 0x7fff;
        if len < 4 {
            return Link::Truncated;
        }
        if kind == NFULA_PAYLOAD {
            return Link::Ip { offset: at + 4, version };
        }
        at += len.next_multiple_of(4);
    }
    Link::NotIp
}

/// Follows an EtherType whose payload starts at `at`.
pub(super) fn ether_type(frame: &[u8], mut at: usize, mut ty: u16) -> Link {
    loop {
        match ty {
            ETHERTYPE_IPV4 => return Link::Ip { offset: at, version: 4 },
            ETHERTYPE_IPV6 => return Link::Ip { offset: at, version: 6 },
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // Tag control information, then the next EtherType.
                let Some(next) = be16(frame, at + 2) else {
                    return Link::Truncated;
                };
                ty = next;
                at += 4;
            }
            ETHERTYPE_PPPOE_SESSION => return pppoe(frame, at),
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => return mpls(frame, at),
            _ => return Link::NotIp,
        }
    }
}

fn pppoe(frame: &[u8], at: usize) -> Link {
    // Version/type, code, session id, length: 6 bytes, then PPP.
    if frame.len() < at + 6 {
        return Link::Truncated;
    }
    ppp_protocol(frame, at + 6)
}

fn ppp(frame: &[u8], at: usize) -> Link {
    // Address 0xff and control 0x03 are absent under address/control field
    // compression (RFC 1661 §6.6).
    match frame.get(at..at + 2) {
        Some([0xff, 0x03]) => ppp_protocol(frame, at + 2),
        Some(_) => ppp_protocol(frame, at),
        None => Link::Truncated,
    }
}

fn ppp_protocol(frame: &[u8], at: usize) -> Link {
    let Some(&first) = frame.get(at) else {
        return Link::Truncated;
    };
    // Protocol field compression (RFC 1661 §6.5): an odd first byte is a
    // one-byte protocol number.
    let (protocol, len) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        match be16(frame, at) {
            Some(p) => (p, 2),
            None => return Link::Truncated,
        }
    };
    match protocol {
        PPP_IPV4 => Link::Ip { offset: at + len, version: 4 },
        PPP_IPV6 => Link::Ip { offset: at + len, version: 6 },
        PPP_MPLS | PPP_MPLS_MULTICAST => mpls(frame, at + len),
        _ => Link::NotIp,
    }
}

fn mpls(frame: &[u8], mut at: usize) -> Link {
    loop {
        let Some(label) = frame.get(at..at + 4) else {
            return Link::Truncated;
        };
        at += 4;
        if label[2] & 1 == 1 {
            break;
        }
    }
    // The label stack does not say what follows; IP announces its version.
    match frame.get(at).map(|b| b >> 4) {
        Some(4) => Link::Ip { offset: at, version: 4 },
        Some(6) => Link::Ip { offset: at, version: 6 },
        Some(_) => Link::NotIp,
        None => Link::Truncated,
    }
}

fn null_loopback(link_type: LinkType, frame: &[u8]) -> Link {
    let Some(b) = frame.get(0..4) else {
        return Link::Truncated;
    };
    // DLT_NULL stores the address family in the capturing host's byte order,
    // DLT_LOOP in network byte order.
    let family = if link_type == LinkType::LOOP {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    } else {
        let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if le > 0xffff {
            le.swap_bytes()
        } else {
            le
        }
    };
    match family {
        2 => Link::Ip { offset: 4, version: 4 },
        // AF_INET6 on BSDs (24), FreeBSD (28), Darwin (30) and Linux (10).
        10 | 24 | 28 | 30 => Link::Ip { offset: 4, version: 6 },
        _ => Link::NotIp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(types: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(types);
        f
    }

    #[test]
    fn ethernet_vlan_stacks() {
        assert_eq!(
            locate_ip(LinkType::ETHERNET, &eth(&[0x08, 0x00])),
            Link::Ip { offset: 14, version: 4 }
        );
        let qinq = eth(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x86, 0xdd]);
        assert_eq!(locate_ip(LinkType::ETHERNET, &qinq), Link::Ip { offset: 22, version: 6 });
        assert_eq!(locate_ip(LinkType::ETHERNET, &eth(&[0x81, 0x00, 0])), Link::Truncated);
        assert_eq!(locate_ip(LinkType::ETHERNET, &eth(&[0x08, 0x06])), Link::NotIp);
        assert_eq!(
            locate_ip(LinkType::ETHERNET, &eth(&[0x00, 0x40, 0x42, 0x42, 0x03])),
            Link::NotIp
        );
        let snap = eth(&[0x00, 0x40, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        assert_eq!(locate_ip(LinkType::ETHERNET, &snap), Link::Ip { offset: 22, version: 4 });
        assert_eq!(locate_ip(LinkType::ETHERNET, &[0; 5]), Link::Truncated);
    }

    #[test]
    fn pppoe_and_mpls() {
        let pppoe = eth(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 20, 0x00, 0x21]);
        assert_eq!(locate_ip(LinkType::ETHERNET, &pppoe), Link::Ip { offset: 22, version: 4 });
        let mpls = eth(&[0x88, 0x47, 0, 0, 0, 64, 0, 1, 1, 64, 0x45]);
        assert_eq!(locate_ip(LinkType::ETHERNET, &mpls), Link::Ip { offset: 22, version: 4 });
    }

    #[test]
    fn ppp_with_and_without_compression() {
        assert_eq!(
            locate_ip(LinkType::PPP, &[0xff, 0x03, 0x00, 0x21]),
            Link::Ip { offset: 4, version: 4 }
        );
        assert_eq!(locate_ip(LinkType::PPP, &[0x00, 0x57]), Link::Ip { offset: 2, version: 6 });
        assert_eq!(locate_ip(LinkType::PPP, &[0x21, 0x45]), Link::Ip { offset: 1, version: 4 });
        assert_eq!(locate_ip(LinkType::PPP, &[0xc0, 0x21]), Link::NotIp);
    }

    #[test]
    fn nflog_payload_attribute() {
        let mut f = vec![2, 0, 0, 42];
        f.extend_from_slice(&[8, 0, 1, 0, 0, 0, 3, 0]); // packet header attribute
        f.extend_from_slice(&[5, 0, 10, 0, 0, 0, 0, 0]); // 5 bytes, padded to 8
        f.extend_from_slice(&[24, 0, 9, 0, 0x45]);
        assert_eq!(locate_ip(LinkType::NFLOG, &f), Link::Ip { offset: 24, version: 4 });
        assert_eq!(locate_ip(LinkType::NFLOG, &f[..20]), Link::NotIp);
        assert_eq!(locate_ip(LinkType::NFLOG, &[7, 0, 0, 0]), Link::NotIp);
    }

    #[test]
    fn null_and_loop_families() {
        assert_eq!(locate_ip(LinkType::NULL, &[2, 0, 0, 0]), Link::Ip { offset: 4, version: 4 });
        assert_eq!(locate_ip(LinkType::NULL, &[0, 0, 0, 30]), Link::Ip { offset: 4, version: 6 });
        assert_eq!(locate_ip(LinkType::LOOP, &[0, 0, 0, 2]), Link::Ip { offset: 4, version: 4 });
        assert_eq!(locate_ip(LinkType::LOOP, &[0, 0]), Link::Truncated);
    }

    #[test]
    fn wifi_data_frames() {
        // QoS data to the DS, then LLC/SNAP IPv4.
        let mut f = vec![0x88, 0x01];
        f.extend_from_slice(&[0; 22]);
        f.extend_from_slice(&[0, 0]); // QoS control
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(locate_ip(LinkType::IEEE802_11, &f), Link::Ip { offset: 34, version: 4 });
        let mut protected = f.clone();
        protected[1] |= 0x40;
        assert_eq!(locate_ip(LinkType::IEEE802_11, &protected), Link::NotIp);
        let beacon = [0x80, 0, 0, 0];
        assert_eq!(locate_ip(LinkType::IEEE802_11, &beacon), Link::NotIp);
        // Four addresses, no QoS.
        let mut wds = vec![0x08, 0x03];
        wds.extend_from_slice(&[0; 28]);
        wds.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x86, 0xdd]);
        assert_eq!(locate_ip(LinkType::IEEE802_11, &wds), Link::Ip { offset: 38, version: 6 });
        assert_eq!(locate_ip(LinkType::IEEE802_11, &wds[..20]), Link::Truncated);
        // Radiotap of 12 bytes in front (a channel field).
        let mut radiotap = vec![0, 0, 12, 0, 0x08, 0, 0, 0, 0x6c, 0x09, 0xa0, 0x00];
        radiotap.extend_from_slice(&f);
        assert_eq!(
            locate_ip(LinkType::IEEE802_11_RADIOTAP, &radiotap),
            Link::Ip { offset: 46, version: 4 }
        );
        // TSFT and flags with DATAPAD: the 26-byte QoS header padded to 28.
        let mut padded = vec![0, 0, 17, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20];
        padded.extend_from_slice(&f[..26]);
        padded.extend_from_slice(&[0, 0]);
        padded.extend_from_slice(&f[26..]);
        assert_eq!(
            locate_ip(LinkType::IEEE802_11_RADIOTAP, &padded),
            Link::Ip { offset: 17 + 28 + 8, version: 4 }
        );
        assert_eq!(
            locate_ip(LinkType::IEEE802_11_RADIOTAP, &[0, 0, 4, 0, 0, 0, 0, 0]),
            Link::Truncated
        );
        // An A-MSDU: not one LLC frame.
        let mut amsdu = f.clone();
        amsdu[24] = 0x80;
        assert_eq!(locate_ip(LinkType::IEEE802_11, &amsdu), Link::NotIp);
        // PPI of 8 bytes naming 802.11.
        let mut ppi = vec![0, 0, 8, 0, 105, 0, 0, 0];
        ppi.extend_from_slice(&f);
        assert_eq!(locate_ip(LinkType::PPI, &ppi), Link::Ip { offset: 42, version: 4 });
        assert_eq!(locate_ip(LinkType::PPI, &[0, 0, 4, 0, 105, 0, 0, 0]), Link::Truncated);
    }

    #[test]
    fn arcnet_rfc1201() {
        let linux = [0xbe, 0x50, 0xa8, 0xe7, 0xd4, 0x00, 0x01, 0x66, 0x45];
        assert_eq!(locate_ip(LinkType::ARCNET_LINUX, &linux), Link::Ip { offset: 8, version: 4 });
        let arp = [0xbe, 0x00, 0xea, 0x08, 0xd5, 0x00, 0x01, 0x65];
        assert_eq!(locate_ip(LinkType::ARCNET_LINUX, &arp), Link::NotIp);
        let later_fragment = [0xbe, 0x50, 0xa8, 0xe7, 0xd4, 0x02, 0x01, 0x66, 0x45];
        assert_eq!(locate_ip(LinkType::ARCNET_LINUX, &later_fragment), Link::NotIp);
        assert_eq!(
            locate_ip(LinkType::ARCNET_BSD, &[1, 2, 240, 0x45]),
            Link::Ip { offset: 3, version: 4 }
        );
        assert_eq!(locate_ip(LinkType::ARCNET_BSD, &[1, 2]), Link::Truncated);
    }

    #[test]
    fn cooked_captures() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        assert_eq!(locate_ip(LinkType::LINUX_SLL, &sll), Link::Ip { offset: 16, version: 4 });
        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend_from_slice(&[0u8; 18]);
        assert_eq!(locate_ip(LinkType::LINUX_SLL2, &sll2), Link::Ip { offset: 20, version: 6 });
        assert_eq!(locate_ip(LinkType(147), &sll2), Link::Unsupported);
    }
}
