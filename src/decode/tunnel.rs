//! Tunnels: from a decoded IP packet that carries another packet to the
//! packet inside.
//!
//! Detection is by IP protocol number (GRE 47, IP-in-IP 4 and 41) and by
//! well-known UDP destination port (VXLAN 4789 and 8472, GENEVE 6081,
//! GTP-U 2152; Teredo 3544 on either side), never by guessing from the
//! payload, so an ordinary UDP flow is not misread as a tunnel. The ports
//! are configurable ([`TunnelPorts`]). A tunnel header that is damaged is an
//! anomaly; the packet then counts on its outer flow only. Teredo's port is
//! also used by other software, so a datagram on it is Teredo only when what
//! follows the optional indicators is an IPv6 header whose length is the
//! datagram's exactly; anything else there is ordinary UDP, without an
//! anomaly.
//!
//! [`decapsulate`] removes one layer; the caller repeats it, up to
//! [`MAX_TUNNEL_DEPTH`] layers.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::link::{ether_type, locate_ip, locate_ip_quickly, Link};
use super::{decode_ip, AnomalyKind, Decoded, IpPacket};
use crate::capture::LinkType;

/// How many tunnel layers are removed from one packet. A packet nested
/// deeper counts on the flow of its fourth inner layer, with
/// [`AnomalyKind::TunnelTooDeep`].
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// A tunnel protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunnelKind {
    /// RFC 7348; the identifier is the VNI.
    Vxlan,
    /// RFC 8926; the identifier is the VNI.
    Geneve,
    /// RFC 2784/2890; the identifier is the key, when present. NVGRE (RFC
    /// 7637) is GRE carrying Ethernet with a key, which on the wire cannot
    /// be told from a Linux gretap tunnel with a key: both are `gre`, the
    /// whole key their identifier (NVGRE's virtual subnet id is its upper
    /// 24 bits).
    Gre,
    /// ERSPAN type I: GRE 0x88be without a sequence number, no header.
    ErspanI,
    /// ERSPAN type II; the identifier is the session id.
    ErspanII,
    /// ERSPAN type III; the identifier is the session id.
    ErspanIII,
    /// PPTP's enhanced GRE (version 1) carrying PPP; the identifier is the
    /// call id.
    PptpGre,
    /// GTP-U version 1 (3GPP TS 29.281); the identifier is the TEID.
    GtpU,
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (protocols 4 and 41: 4in4,
    /// 6in4, 4in6, 6in6).
    IpInIp,
    /// RFC 4380: IPv6 in UDP.
    Teredo,
}

impl TunnelKind {
    /// Every kind, in a fixed order (its index is stored per flow).
    pub const ALL: [TunnelKind; 10] = [
        TunnelKind::Vxlan,
        TunnelKind::Geneve,
        TunnelKind::Gre,
        TunnelKind::ErspanI,
        TunnelKind::ErspanII,
        TunnelKind::ErspanIII,
        TunnelKind::PptpGre,
        TunnelKind::GtpU,
        TunnelKind::IpInIp,
        TunnelKind::Teredo,
    ];

    /// The name in records (`xborder.tunnels[].type`).
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanI => "erspan-i",
            TunnelKind::ErspanII => "erspan-ii",
            TunnelKind::ErspanIII => "erspan-iii",
            TunnelKind::PptpGre => "pptp-gre",
            TunnelKind::GtpU => "gtp-u",
            TunnelKind::IpInIp => "ip-in-ip",
            TunnelKind::Teredo => "teredo",
        }
    }

    /// Does the identifier name the tunnel in both directions? GTP-U TEIDs
    /// and PPTP call ids are chosen by each receiving end, so the two
    /// directions of one inner flow carry different ones: keying on them
    /// would split every flow in two.
    pub fn identifier_is_symmetric(self) -> bool {
        !matches!(self, TunnelKind::GtpU | TunnelKind::PptpGre)
    }
}

/// One tunnel layer around a packet: its protocol, the addresses of the IP
/// header that carries it and its identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TunnelLayer {
    pub kind: TunnelKind,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// VNI, GRE key, NVGRE VSID, ERSPAN session, PPTP call id or TEID.
    pub id: Option<u32>,
}

impl TunnelLayer {
    /// What tells this tunnel from another whichever way a packet goes: the
    /// kind, the two addresses in order and the identifier where it is the
    /// same both ways.
    pub fn identity(&self) -> (TunnelKind, [IpAddr; 2], Option<u32>) {
        let ends = if self.src <= self.dst { [self.src, self.dst] } else { [self.dst, self.src] };
        let id = self.id.filter(|_| self.kind.identifier_is_symmetric());
        (self.kind, ends, id)
    }
}

/// The tunnels around a flow's packets, outermost first; empty for most
/// flows. Shared: every flow in a tunnel shows the same chain, and a copy
/// per flow was an allocation on the reader and a free on the finishing
/// thread for each (a VXLAN mirror's every flow).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelChain(Option<Arc<[TunnelLayer]>>);

impl TunnelChain {
    pub fn new(layers: &[TunnelLayer]) -> Self {
        TunnelChain((!layers.is_empty()).then(|| layers.into()))
    }
}

impl std::ops::Deref for TunnelChain {
    type Target = [TunnelLayer];

    fn deref(&self) -> &[TunnelLayer] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Serialize for TunnelChain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

/// The UDP ports tunnels are recognised on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelPorts {
    pub vxlan: Vec<u16>,
    pub geneve: Vec<u16>,
    pub gtp_u: Vec<u16>,
    pub teredo: Vec<u16>,
}

impl Default for TunnelPorts {
    fn default() -> Self {
        Self { vxlan: vec![4789, 8472], geneve: vec![6081], gtp_u: vec![2152], teredo: vec![3544] }
    }
}

/// Whether and how tunnels are decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decapsulation {
    /// `false` (`--tunnels outer`): every flow is keyed on the outermost IP
    /// header, as before tunnels were decoded.
    pub inner: bool,
    pub ports: TunnelPorts,
}

impl Decapsulation {
    /// Whether [`decapsulate`] could find a tunnel in `packet`: a quick test
    /// on its protocol and ports, so that the rest of the traffic pays for
    /// nothing more.
    #[inline]
    pub fn may_carry(&self, packet: &IpPacket<'_>) -> bool {
        match (packet.protocol, packet.ports) {
            (4 | 41 | 47, _) => true,
            (17, Some((sport, dport))) => {
                let p = &self.ports;
                p.vxlan.contains(&dport)
                    || p.geneve.contains(&dport)
                    || p.gtp_u.contains(&dport)
                    || p.teredo.contains(&dport)
                    || p.teredo.contains(&sport)
            }
            _ => false,
        }
    }
}

impl Default for Decapsulation {
    fn default() -> Self {
        Self { inner: true, ports: TunnelPorts::default() }
    }
}

/// What one layer of decapsulation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decap<'a> {
    /// Not a tunnel.
    None,
    /// A tunnel protocol whose header is damaged or cut short.
    Damaged(TunnelKind, AnomalyKind),
    /// A tunnel layer, with the packet it carries: `None` when it carries
    /// nothing to decode (GTP-U signalling, a PPTP acknowledgement, an
    /// ERSPAN frame of another type), else the carried frame decoded (IP,
    /// or not IP such as ARP in VXLAN, or malformed).
    Layer(TunnelLayer, Option<Decoded<'a>>),
}

const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_I_II: u16 = 0x88be;
const ETHERTYPE_ERSPAN_III: u16 = 0x22eb;
const ETHERTYPE_PPP: u16 = 0x880b;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// The bytes after a tunnel header: where the carried frame starts, and its
/// length on the wire when known.
#[derive(Clone, Copy)]
struct Carried<'a> {
    bytes: &'a [u8],
    /// `None` when the outer packet is a fragment: its datagram's length is
    /// not known here.
    wire_len: Option<u64>,
}

impl<'a> Carried<'a> {
    fn after(self, n: usize) -> Carried<'a> {
        Carried {
            bytes: self.bytes.get(n..).unwrap_or_default(),
            wire_len: self.wire_len.map(|w| w.saturating_sub(n as u64)),
        }
    }

    /// The frame was cut (snapshot length or fragmentation) before `n`
    /// bytes: a short header there is not damage.
    fn cut_before(self, n: usize) -> bool {
        self.wire_len.is_none_or(|w| w >= n as u64) && self.bytes.len() < n
    }

    fn ip(self, announced: u8) -> Decoded<'a> {
        decode_ip(self.bytes, announced, self.wire_len)
    }

    fn link(self, link: Link) -> Decoded<'a> {
        match link {
            Link::Ip { offset, version } => self.after(offset).ip(version),
            Link::NotIp | Link::Unsupported => Decoded::NotIp,
            Link::Truncated => Decoded::Malformed(AnomalyKind::LinkHeaderTruncated),
        }
    }

    fn ethernet(self) -> Decoded<'a> {
        self.link(locate_ip_quickly(LinkType::ETHERNET, self.bytes))
    }

    /// A header of `n` bytes that is not all there: damage, unless the
    /// capture cut it.
    fn short(self, kind: TunnelKind, n: usize) -> Option<Decap<'a>> {
        (self.bytes.len() < n).then(|| {
            if self.cut_before(n) {
                Decap::Layer(layer_unknown(kind), None)
            } else {
                Decap::Damaged(kind, AnomalyKind::TunnelHeaderTruncated)
            }
        })
    }
}

/// A placeholder layer; [`decapsulate`] fills in the addresses.
fn layer_unknown(kind: TunnelKind) -> TunnelLayer {
    let zero = IpAddr::from([0u8; 4]);
    TunnelLayer { kind, src: zero, dst: zero, id: None }
}

/// Removes one tunnel layer from `packet`, if it carries one.
pub fn decapsulate<'a>(packet: &IpPacket<'a>, ports: &TunnelPorts) -> Decap<'a> {
    // A later fragment has no tunnel header; a first fragment has, and the
    // carried packet's headers are in it.
    if packet.fragment.is_some_and(|f| f.offset != 0) {
        return Decap::None;
    }
    let wire_len = match packet.fragment {
        Some(_) => None,
        None => Some(u64::from(packet.payload_len)),
    };
    let carried = Carried { bytes: packet.payload, wire_len };
    let found = match (packet.protocol, packet.ports) {
        (4, _) => Decap::Layer(layer_unknown(TunnelKind::IpInIp), Some(carried.ip(4))),
        (41, _) => Decap::Layer(layer_unknown(TunnelKind::IpInIp), Some(carried.ip(6))),
        (47, _) => gre(carried),
        (17, Some((sport, dport))) => {
            if ports.vxlan.contains(&dport) {
                vxlan(carried)
            } else if ports.geneve.contains(&dport) {
                geneve(carried)
            } else if ports.gtp_u.contains(&dport) {
                gtp_u(carried)
            } else if ports.teredo.contains(&dport) || ports.teredo.contains(&sport) {
                teredo(carried)
            } else {
                Decap::None
            }
        }
        _ => Decap::None,
    };
    match found {
        Decap::Layer(layer, inner) => {
            Decap::Layer(TunnelLayer { src: packet.src, dst: packet.dst, ..layer }, inner)
        }
        other => other,
    }
}

/// VXLAN: flags (the I bit 0x08 says the VNI is valid), 3 reserved bytes,
/// the 24-bit VNI, a reserved byte, then Ethernet.
fn vxlan(c: Carried<'_>) -> Decap<'_> {
    let kind = TunnelKind::Vxlan;
    if let Some(short) = c.short(kind, 8) {
        return short;
    }
    let b = c.bytes;
    if b[0] & 0x08 == 0 {
        return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
    }
    let vni = u32::from_be_bytes([0, b[4], b[5], b[6]]);
    Decap::Layer(TunnelLayer { id: Some(vni), ..layer_unknown(kind) }, Some(c.after(8).ethernet()))
}

/// GENEVE: version (2 bits, 0) and option length in 4-byte words, flags,
/// protocol type, the 24-bit VNI, a reserved byte, then the options.
fn geneve(c: Carried<'_>) -> Decap<'_> {
    let kind = TunnelKind::Geneve;
    if let Some(short) = c.short(kind, 8) {
        return short;
    }
    let b = c.bytes;
    if b[0] >> 6 != 0 {
        return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
    }
    let len = 8 + usize::from(b[0] & 0x3f) * 4;
    if let Some(short) = c.short(kind, len) {
        return short;
    }
    let layer =
        TunnelLayer { id: Some(u32::from_be_bytes([0, b[4], b[5], b[6]])), ..layer_unknown(kind) };
    let protocol = u16::from_be_bytes([b[2], b[3]]);
    let inner = c.after(len);
    let decoded = match protocol {
        ETHERTYPE_TEB => inner.ethernet(),
        ty => inner.link(ether_type(inner.bytes, 0, ty)),
    };
    Decap::Layer(layer, Some(decoded))
}

/// GRE (RFC 2784 with RFC 2890's key and sequence number, RFC 1701's
/// routing), and PPTP's version 1.
fn gre(c: Carried<'_>) -> Decap<'_> {
    const CHECKSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQUENCE: u16 = 0x1000;
    const ACK: u16 = 0x0080;
    let kind = TunnelKind::Gre;
    if let Some(short) = c.short(kind, 4) {
        return short;
    }
    let b = c.bytes;
    let flags = u16::from_be_bytes([b[0], b[1]]);
    let protocol = u16::from_be_bytes([b[2], b[3]]);
    match flags & 7 {
        0 => {}
        // PPTP (RFC 2637) has neither checksum nor routing.
        1 if flags & (CHECKSUM | ROUTING) != 0 => {
            return Decap::Damaged(TunnelKind::PptpGre, AnomalyKind::TunnelHeaderInvalid)
        }
        1 => return pptp(c, flags & SEQUENCE != 0, flags & ACK != 0, flags & KEY != 0, protocol),
        _ => return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid),
    }
    let mut len = 4;
    if flags & (CHECKSUM | ROUTING) != 0 {
        len += 4;
    }
    let key_at = len;
    if flags & KEY != 0 {
        len += 4;
    }
    if flags & SEQUENCE != 0 {
        len += 4;
    }
    if let Some(short) = c.short(kind, len) {
        return short;
    }
    let key = (flags & KEY != 0).then(|| be32(b, key_at).unwrap_or(0));
    if flags & ROUTING != 0 {
        // Source route entries: address family, offset, length, then that
        // many bytes; a null entry (family 0, length 0) ends the list.
        loop {
            let (Some(family), Some(&n)) = (be16(b, len), b.get(len + 3)) else {
                return c
                    .short(kind, len + 4)
                    .unwrap_or(Decap::Damaged(kind, AnomalyKind::TunnelHeaderTruncated));
            };
            len += 4 + usize::from(n);
            if family == 0 && n == 0 {
                break;
            }
        }
        if let Some(short) = c.short(kind, len) {
            return short;
        }
    }
    let inner = c.after(len);
    let gre = TunnelLayer { id: key, ..layer_unknown(kind) };
    match protocol {
        ETHERTYPE_TEB => Decap::Layer(gre, Some(inner.ethernet())),
        // Type I has no header and no sequence number (Wireshark tells them
        // apart the same way).
        ETHERTYPE_ERSPAN_I_II if flags & SEQUENCE == 0 => {
            Decap::Layer(layer_unknown(TunnelKind::ErspanI), Some(inner.ethernet()))
        }
        ETHERTYPE_ERSPAN_I_II => erspan_ii(inner),
        ETHERTYPE_ERSPAN_III => erspan_iii(inner),
        ETHERTYPE_PPP => Decap::Layer(gre, Some(inner.link(locate_ip(LinkType::PPP, inner.bytes)))),
        ty => Decap::Layer(gre, Some(inner.link(ether_type(inner.bytes, 0, ty)))),
    }
}

/// PPTP's enhanced GRE (RFC 2637): the key field holds the payload length
/// and the call id; an optional sequence and acknowledgement number; PPP.
fn pptp(c: Carried<'_>, sequence: bool, ack: bool, key: bool, protocol: u16) -> Decap<'_> {
    let kind = TunnelKind::PptpGre;
    if !key || protocol != ETHERTYPE_PPP {
        return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
    }
    let len = 8 + if sequence { 4 } else { 0 } + if ack { 4 } else { 0 };
    if let Some(short) = c.short(kind, len) {
        return short;
    }
    let payload_len = be16(c.bytes, 4).unwrap_or(0);
    let layer = TunnelLayer { id: be16(c.bytes, 6).map(u32::from), ..layer_unknown(kind) };
    if !sequence || payload_len == 0 {
        // An acknowledgement only.
        return Decap::Layer(layer, None);
    }
    let inner = c.after(len);
    Decap::Layer(layer, Some(inner.link(locate_ip(LinkType::PPP, inner.bytes))))
}

/// ERSPAN type II: version 1, VLAN, then CoS, encapsulation, truncation
/// and the 10-bit session id, then reserved bits and the index; Ethernet.
fn erspan_ii(c: Carried<'_>) -> Decap<'_> {
    let kind = TunnelKind::ErspanII;
    if let Some(short) = c.short(kind, 8) {
        return short;
    }
    let b = c.bytes;
    if b[0] >> 4 != 1 {
        return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
    }
    let session = u32::from(u16::from_be_bytes([b[2], b[3]]) & 0x03ff);
    Decap::Layer(
        TunnelLayer { id: Some(session), ..layer_unknown(kind) },
        Some(c.after(8).ethernet()),
    )
}

/// ERSPAN type III: version 2, VLAN, CoS, BSO, truncation, session id, a
/// timestamp, the security group tag, then P, frame type, hardware id,
/// direction, granularity and O (an 8-byte platform subheader follows).
/// Frame type 0 is Ethernet, 2 is IP.
fn erspan_iii(c: Carried<'_>) -> Decap<'_> {
    let kind = TunnelKind::ErspanIII;
    if let Some(short) = c.short(kind, 12) {
        return short;
    }
    let b = c.bytes;
    if b[0] >> 4 != 2 {
        return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
    }
    let len = if b[11] & 1 == 1 { 20 } else { 12 };
    if let Some(short) = c.short(kind, len) {
        return short;
    }
    let layer = TunnelLayer {
        id: Some(u32::from(u16::from_be_bytes([b[2], b[3]]) & 0x03ff)),
        ..layer_unknown(kind)
    };
    let inner = c.after(len);
    match (b[10] >> 2) & 0x1f {
        0 => Decap::Layer(layer, Some(inner.ethernet())),
        2 => Decap::Layer(layer, Some(inner.ip(0))),
        _ => Decap::Layer(layer, None),
    }
}

/// GTP-U version 1: version, protocol type, E, S and PN flags, message type
/// (255: a T-PDU, user traffic), length, TEID; with any flag set a sequence
/// number, N-PDU number and next extension type; then extension headers,
/// each its length in 4-byte words, its content and the next type.
fn gtp_u(c: Carried<'_>) -> Decap<'_> {
    const T_PDU: u8 = 0xff;
    let kind = TunnelKind::GtpU;
    if let Some(short) = c.short(kind, 8) {
        return short;
    }
    let b = c.bytes;
    // Version 1, protocol type 1 (GTP, not GTP').
    if b[0] >> 5 != 1 || b[0] & 0x10 == 0 {
        return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
    }
    let layer = TunnelLayer { id: be32(b, 4), ..layer_unknown(kind) };
    let mut len = 8;
    if b[0] & 0x07 != 0 {
        len = 12;
        if let Some(short) = c.short(kind, len) {
            return short;
        }
        // The next extension type means something only with E set.
        let mut next = if b[0] & 0x04 != 0 { b[11] } else { 0 };
        while next != 0 {
            let Some(&words) = b.get(len) else {
                return c
                    .short(kind, len + 1)
                    .unwrap_or(Decap::Damaged(kind, AnomalyKind::TunnelHeaderTruncated));
            };
            if words == 0 {
                return Decap::Damaged(kind, AnomalyKind::TunnelHeaderInvalid);
            }
            len += usize::from(words) * 4;
            if let Some(short) = c.short(kind, len) {
                return short;
            }
            next = b[len - 1];
        }
    }
    if b[1] != T_PDU {
        return Decap::Layer(layer, None);
    }
    Decap::Layer(layer, Some(c.after(len).ip(0)))
}

/// Teredo: an optional authentication indicator (0x0001, client id and
/// authentication value lengths, both, an 8-byte nonce, a confirmation
/// byte) and origin indicator (0x0000, port, address), then IPv6.
fn teredo(c: Carried<'_>) -> Decap<'_> {
    let mut at = 0;
    if be16(c.bytes, at) == Some(0x0001) {
        let (Some(&id_len), Some(&auth_len)) = (c.bytes.get(2), c.bytes.get(3)) else {
            return Decap::None;
        };
        at += 4 + usize::from(id_len) + usize::from(auth_len) + 9;
    }
    if be16(c.bytes, at) == Some(0x0000) {
        at += 8;
    }
    let inner = c.after(at);
    let b = inner.bytes;
    let Some(payload_len) = be16(b, 4).filter(|_| b.len() >= 40 && b[0] >> 4 == 6) else {
        return Decap::None;
    };
    // Exactly one IPv6 packet fills the datagram, or this is not Teredo.
    if inner.wire_len.is_some_and(|w| w != 40 + u64::from(payload_len)) {
        return Decap::None;
    }
    Decap::Layer(layer_unknown(TunnelKind::Teredo), Some(inner.ip(6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const ETH_IPV4: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];

    fn inner_tcp() -> Vec<u8> {
        let mut ip = Vec::new();
        PacketBuilder::ipv4([172, 16, 0, 1], [54, 86, 237, 188], 64)
            .tcp(40000, 443, 1, 1000)
            .syn()
            .write(&mut ip, &[])
            .unwrap();
        ip
    }

    fn udp_outer(dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut ip = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(50000, dport)
            .write(&mut ip, payload)
            .unwrap();
        ip
    }

    fn ip_outer(protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut ip = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut ip, etherparse::IpNumber(protocol), payload)
            .unwrap();
        ip
    }

    /// One layer removed: the layer, the inner packet's addresses and
    /// protocol, and an anomaly.
    type Peeled = (Option<TunnelLayer>, Option<(IpAddr, IpAddr, u8)>, Option<AnomalyKind>);

    /// Decodes `outer` (raw IP) and removes one layer.
    fn peel(outer: &[u8]) -> Peeled {
        let Decoded::Ip(p, None) = decode(LinkType::RAW, outer, outer.len() as u32) else {
            panic!("outer not decoded");
        };
        match decapsulate(&p, &TunnelPorts::default()) {
            Decap::None => (None, None, None),
            Decap::Damaged(_, kind) => (None, None, Some(kind)),
            Decap::Layer(layer, Some(Decoded::Ip(inner, a))) => {
                (Some(layer), Some((inner.src, inner.dst, inner.protocol)), a)
            }
            Decap::Layer(layer, Some(Decoded::Malformed(kind))) => (Some(layer), None, Some(kind)),
            Decap::Layer(layer, _) => (Some(layer), None, None),
        }
    }

    fn expect_inner(outer: &[u8], kind: TunnelKind, id: Option<u32>) {
        let (layer, inner, anomaly) = peel(outer);
        let layer = layer.expect("a tunnel");
        assert_eq!((layer.kind, layer.id), (kind, id));
        assert_eq!(layer.src, IpAddr::from([192, 0, 2, 1]));
        assert_eq!(anomaly, None);
        let (src, dst, protocol) = inner.expect("an inner IP packet");
        assert_eq!((src, dst, protocol), ([172, 16, 0, 1].into(), [54, 86, 237, 188].into(), 6));
    }

    #[test]
    fn vxlan() {
        let mut p = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
        p.extend_from_slice(&ETH_IPV4);
        p.extend_from_slice(&inner_tcp());
        expect_inner(&udp_outer(4789, &p), TunnelKind::Vxlan, Some(0x1234));
        expect_inner(&udp_outer(8472, &p), TunnelKind::Vxlan, Some(0x1234));
        // Any other port is ordinary UDP.
        assert_eq!(peel(&udp_outer(4790, &p)), (None, None, None));
        p[0] = 0;
        assert_eq!(peel(&udp_outer(4789, &p)).2, Some(AnomalyKind::TunnelHeaderInvalid));
        assert_eq!(peel(&udp_outer(4789, &p[..5])).2, Some(AnomalyKind::TunnelHeaderTruncated));
    }

    #[test]
    fn geneve_skips_its_options() {
        // Two words of options, protocol IPv4, VNI 7.
        let mut p = vec![0x02, 0, 0x08, 0x00, 0, 0, 7, 0];
        p.extend_from_slice(&[0x01, 0x02, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        p.extend_from_slice(&inner_tcp());
        expect_inner(&udp_outer(6081, &p), TunnelKind::Geneve, Some(7));
        let mut eth = vec![0, 0, 0x65, 0x58, 0, 0, 8, 0];
        eth.extend_from_slice(&ETH_IPV4);
        eth.extend_from_slice(&inner_tcp());
        expect_inner(&udp_outer(6081, &eth), TunnelKind::Geneve, Some(8));
        p[0] = 0x40; // version 1
        assert_eq!(peel(&udp_outer(6081, &p)).2, Some(AnomalyKind::TunnelHeaderInvalid));
        p[0] = 0x3f; // 252 bytes of options that are not there
        assert_eq!(peel(&udp_outer(6081, &p)).2, Some(AnomalyKind::TunnelHeaderTruncated));
    }

    #[test]
    fn gre_with_checksum_key_and_sequence() {
        let mut p = vec![0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 1];
        p.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &p), TunnelKind::Gre, Some(42));
        let mut plain = vec![0, 0, 0x08, 0x00];
        plain.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &plain), TunnelKind::Gre, None);
        // Transparent Ethernet bridging with a sequence number: GRE.
        let mut teb = vec![0x30, 0, 0x65, 0x58, 0, 0, 0, 9, 0, 0, 0, 1];
        teb.extend_from_slice(&ETH_IPV4);
        teb.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &teb), TunnelKind::Gre, Some(9));
        // Version 3 does not exist.
        assert_eq!(peel(&ip_outer(47, &[0, 3, 8, 0])).2, Some(AnomalyKind::TunnelHeaderInvalid));
        assert_eq!(
            peel(&ip_outer(47, &[0x20, 0, 8, 0, 0])).2,
            Some(AnomalyKind::TunnelHeaderTruncated)
        );
    }

    #[test]
    fn gre_with_routing() {
        let mut p = vec![0x40, 0, 0x08, 0x00, 0, 0, 0, 0];
        p.extend_from_slice(&[0x08, 0x00, 0, 4, 192, 0, 2, 9, 0, 0, 0, 0]);
        p.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &p), TunnelKind::Gre, None);
    }

    #[test]
    fn nvgre_is_gre_with_its_whole_key() {
        // VSID 0x1001, flow id 0x77: a gretap tunnel with key 0x100177
        // looks the same.
        let mut p = vec![0x20, 0, 0x65, 0x58, 0x00, 0x10, 0x01, 0x77];
        p.extend_from_slice(&ETH_IPV4);
        p.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &p), TunnelKind::Gre, Some(0x0010_0177));
    }

    #[test]
    fn erspan_types() {
        let mut one = vec![0, 0, 0x88, 0xbe];
        one.extend_from_slice(&ETH_IPV4);
        one.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &one), TunnelKind::ErspanI, None);
        let mut two = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 5];
        two.extend_from_slice(&[0x10, 0x01, 0x03, 0xff, 0, 0, 0, 1]);
        two.extend_from_slice(&ETH_IPV4);
        two.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &two), TunnelKind::ErspanII, Some(0x3ff));
        let mut three = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 5];
        three.extend_from_slice(&[0x20, 0x01, 0x00, 0x64, 1, 2, 3, 4, 0, 0, 0, 0x01]);
        three.extend_from_slice(&[0; 8]); // platform subheader (O set)
        three.extend_from_slice(&ETH_IPV4);
        three.extend_from_slice(&inner_tcp());
        expect_inner(&ip_outer(47, &three), TunnelKind::ErspanIII, Some(100));
        let mut bad = two.clone();
        bad[8] = 0x30;
        assert_eq!(peel(&ip_outer(47, &bad)).2, Some(AnomalyKind::TunnelHeaderInvalid));
    }

    #[test]
    fn pptp_carries_ppp() {
        let ip = inner_tcp();
        let mut p = vec![0x30, 0x81, 0x88, 0x0b];
        p.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x00, 0x21]);
        p.extend_from_slice(&ip);
        expect_inner(&ip_outer(47, &p), TunnelKind::PptpGre, Some(0x1234));
    }

    #[test]
    fn gtp_u_with_an_extension_header() {
        let ip = inner_tcp();
        // E flag, T-PDU, TEID 0xabc, sequence 0, next extension 0x85 (PDU
        // session container, one word), then none.
        let mut p = vec![0x34, 0xff, 0, 0, 0, 0, 0x0a, 0xbc, 0, 0, 0, 0x85];
        p.extend_from_slice(&[1, 0x10, 0x09, 0]);
        p.extend_from_slice(&ip);
        let len = (p.len() - 8) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        expect_inner(&udp_outer(2152, &p), TunnelKind::GtpU, Some(0xabc));
        // S only: the next extension byte is not read.
        let mut s_only = vec![0x32, 0xff, 0, 0, 0, 0, 0x0a, 0xbc, 0, 7, 0, 0x85];
        s_only.extend_from_slice(&ip);
        let len = (s_only.len() - 8) as u16;
        s_only[2..4].copy_from_slice(&len.to_be_bytes());
        expect_inner(&udp_outer(2152, &s_only), TunnelKind::GtpU, Some(0xabc));
        // An echo request carries no user traffic: a layer, nothing inside.
        let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
        let (layer, inner, anomaly) = peel(&udp_outer(2152, &echo));
        assert_eq!((layer.map(|l| l.kind), inner, anomaly), (Some(TunnelKind::GtpU), None, None));
        // An extension header of length 0 would never end.
        let mut zero = p.clone();
        zero[12] = 0;
        assert_eq!(peel(&udp_outer(2152, &zero)).2, Some(AnomalyKind::TunnelHeaderInvalid));
        // GTPv2 on the user-plane port is not GTP-U.
        let mut v2 = p;
        v2[0] = 0x48;
        assert_eq!(peel(&udp_outer(2152, &v2)).2, Some(AnomalyKind::TunnelHeaderInvalid));
    }

    #[test]
    fn ip_in_ip() {
        expect_inner(&ip_outer(4, &inner_tcp()), TunnelKind::IpInIp, None);
        let mut v6 = Vec::new();
        PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x26; 16],
            64,
        )
        .udp(1, 2)
        .write(&mut v6, b"x")
        .unwrap();
        let (layer, inner, anomaly) = peel(&ip_outer(41, &v6));
        assert_eq!(layer.map(|l| l.kind), Some(TunnelKind::IpInIp));
        assert_eq!(inner.map(|i| i.2), Some(17));
        assert_eq!(anomaly, None);
        // 4in6: IPv4 inside IPv6, next header 4.
        let mut four_in_six = Vec::new();
        PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x26; 16],
            64,
        )
        .write(&mut four_in_six, etherparse::IpNumber(4), &inner_tcp())
        .unwrap();
        let Decoded::Ip(p, None) = decode(LinkType::RAW, &four_in_six, four_in_six.len() as u32)
        else {
            panic!()
        };
        let Decap::Layer(_, Some(Decoded::Ip(inner, None))) =
            decapsulate(&p, &TunnelPorts::default())
        else {
            panic!("4in6 not decoded")
        };
        assert_eq!(inner.dst, IpAddr::from([54, 86, 237, 188]));
        // An IPv6 header announced by protocol 41 that is IPv4 is damage.
        let (_, _, anomaly) = peel(&ip_outer(41, &inner_tcp()));
        assert_eq!(anomaly, Some(AnomalyKind::IpVersionMismatch));
    }

    fn teredo_payload(indicators: &[u8]) -> Vec<u8> {
        let mut v6 = Vec::new();
        PacketBuilder::ipv6(
            [0x20, 1, 0, 0, 0x41, 0x37, 0x9e, 0x50, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .write(&mut v6, etherparse::IpNumber(59), &[])
        .unwrap();
        [indicators, &v6].concat()
    }

    #[test]
    fn teredo_with_indicators() {
        for indicators in [
            &[][..],
            &[0, 0, 0xf2, 0x27, 0x3f, 0x57, 0x61, 0xaf][..],
            &[0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0xf2, 0x27, 0x3f, 0x57, 0x61, 0xaf][..],
        ] {
            let (layer, inner, anomaly) = peel(&udp_outer(3544, &teredo_payload(indicators)));
            assert_eq!(layer.map(|l| l.kind), Some(TunnelKind::Teredo), "{indicators:?}");
            assert_eq!((inner.map(|i| i.2), anomaly), (Some(59), None));
        }
        // The server's replies come from port 3544.
        let mut reply = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(3544, 50000)
            .write(&mut reply, &teredo_payload(&[]))
            .unwrap();
        assert!(peel(&reply).0.is_some());
        // Something else on the port is ordinary UDP, without an anomaly.
        assert_eq!(
            peel(&udp_outer(3544, b"not teredo at all, just some bytes of another protocol")),
            (None, None, None)
        );
        let mut longer = teredo_payload(&[]);
        longer.push(0);
        assert_eq!(peel(&udp_outer(3544, &longer)), (None, None, None));
    }

    #[test]
    fn vxlan_carrying_arp_is_a_layer_with_nothing_decoded() {
        let mut p = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        p.extend_from_slice(&ETH_IPV4[..12]);
        p.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        let frame = udp_outer(4789, &p);
        let Decoded::Ip(outer, _) = decode(LinkType::RAW, &frame, frame.len() as u32) else {
            panic!()
        };
        assert!(matches!(
            decapsulate(&outer, &TunnelPorts::default()),
            Decap::Layer(TunnelLayer { kind: TunnelKind::Vxlan, .. }, Some(Decoded::NotIp))
        ));
    }

    #[test]
    fn identities_are_the_same_both_ways() {
        let a = TunnelLayer {
            kind: TunnelKind::Vxlan,
            src: [192, 0, 2, 1].into(),
            dst: [192, 0, 2, 2].into(),
            id: Some(5),
        };
        let b = TunnelLayer { src: a.dst, dst: a.src, ..a };
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), TunnelLayer { id: Some(6), ..a }.identity());
        let up = TunnelLayer { kind: TunnelKind::GtpU, id: Some(1), ..a };
        let down = TunnelLayer { kind: TunnelKind::GtpU, id: Some(2), ..b };
        assert_eq!(up.identity(), down.identity(), "TEIDs differ per direction");
    }

    proptest! {
        #[test]
        fn arbitrary_tunnel_payloads_never_panic(
            protocol in proptest::sample::select(&[4u8, 41, 47, 17][..]),
            port in proptest::sample::select(&[4789u16, 6081, 2152, 3544][..]),
            payload in proptest::collection::vec(any::<u8>(), 0..120),
            cut in 0usize..120,
        ) {
            let outer = if protocol == 17 { udp_outer(port, &payload) } else { ip_outer(protocol, &payload) };
            let cut = outer.len().saturating_sub(cut).max(20);
            if let Decoded::Ip(p, _) = decode(LinkType::RAW, &outer[..cut.min(outer.len())], outer.len() as u32) {
                let _ = decapsulate(&p, &TunnelPorts::default());
            }
        }
    }
}
