//! Test support: packets built with etherparse's `PacketBuilder`, link-layer
//! framing for every supported link type, and pcap/pcapng writers. The
//! fixtures in `fixtures/` are made by `fixtures.rs` from these pieces, so a
//! person can read exactly what each capture contains.

#![allow(dead_code)] // each test binary uses a different part

pub mod bench;
pub mod clickhouse;
pub mod fixtures;
pub mod generator;
pub mod mmdb;
pub mod quic;
pub mod traffic;

use std::io::Write;
use std::net::IpAddr;

use etherparse::{Ipv4Header, PacketBuilder};

/// A fixed xorshift sequence: the same numbers on every run.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `n` deterministic random public addresses: IPv4 three times in four,
/// else IPv6 in 2000::/4.
/// Runs the xborder binary in the crate root (so paths in reports are
/// relative to it), without colour. Integration tests only: examples
/// include this module too, and cargo names the binary to tests alone.
#[cfg(test)]
pub fn xborder_in_root(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A directory of the project's shared data: `$ENV` if set, else
/// `../shared/DEFAULT` beside the crate. When it (its `marker` file) is
/// missing, a test skips with one loud line on standard error, except under
/// `CI=true`, where it fails: CI always has `shared/`.
pub fn shared_data(env: &str, default: &str, marker: &str) -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os(env) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(default),
    };
    if dir.join(marker).exists() {
        return Some(dir);
    }
    let why = format!(
        "{} is missing (set {env} or put the project's shared/ beside the crate; \
         README.md says how to get it)",
        dir.join(marker).display()
    );
    assert!(std::env::var_os("CI").is_none_or(|v| v != "true"), "{why}");
    // Once per test binary, and past the test harness's capture (which
    // takes only the print macros), so that it shows in a normal run.
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
    });
    None
}

pub fn random_public_addresses(seed: u64, n: usize) -> Vec<IpAddr> {
    let mut rng = XorShift(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let ip = if rng.next() % 4 == 0 {
            let bits =
                ((0x2000u128 + u128::from(rng.next() % 0x1000)) << 112) | u128::from(rng.next());
            IpAddr::from(std::net::Ipv6Addr::from(bits))
        } else {
            IpAddr::from((rng.next() as u32).to_be_bytes())
        };
        if xborder::intel::classify(ip) == xborder::intel::AddressClass::Public {
            out.push(ip);
        }
    }
    out
}

/// The transport part of a built packet.
#[derive(Clone, Copy, Debug)]
pub enum L4<'a> {
    /// TCP with flags written as letters: S, A, F, R, P.
    Tcp {
        sport: u16,
        dport: u16,
        flags: &'a str,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// An echo request.
    Icmp,
}

/// An IP packet (no link layer) from `src` to `dst`.
pub fn ip_packet(src: &str, dst: &str, l4: L4<'_>, payload: &[u8]) -> Vec<u8> {
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let builder = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed address families"),
    };
    let mut out = Vec::new();
    match l4 {
        L4::Tcp { sport, dport, flags } => {
            let mut b = builder.tcp(sport, dport, 1000, 65535);
            for f in flags.chars() {
                b = match f {
                    'S' => b.syn(),
                    'A' => b.ack(1),
                    'F' => b.fin(),
                    'R' => b.rst(),
                    'P' => b.psh(),
                    other => panic!("unknown TCP flag {other}"),
                };
            }
            b.write(&mut out, payload).unwrap();
        }
        L4::Udp { sport, dport } => builder.udp(sport, dport).write(&mut out, payload).unwrap(),
        L4::Icmp => {
            if src.is_ipv4() {
                builder.icmpv4_echo_request(1, 1).write(&mut out, payload).unwrap()
            } else {
                builder.icmpv6_echo_request(1, 1).write(&mut out, payload).unwrap()
            }
        }
    }
    out
}

/// Splits an IPv4 packet into fragments carrying at most `chunk` payload
/// bytes each (a multiple of 8), all with identification `id`.
pub fn fragment_ipv4(packet: &[u8], chunk: usize, id: u16) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let (header, payload) = Ipv4Header::from_slice(packet).unwrap();
    let mut out = Vec::new();
    for (i, piece) in payload.chunks(chunk).enumerate() {
        let mut h = header.clone();
        h.identification = id;
        h.fragment_offset = ((i * chunk / 8) as u16).try_into().unwrap();
        h.more_fragments = (i + 1) * chunk < payload.len();
        h.set_payload_len(piece.len()).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut p = h.to_bytes().to_vec();
        p.extend_from_slice(piece);
        out.push(p);
    }
    out
}

/// Splits an IPv6 packet (no extension headers) into fragments with a
/// fragment header, at most `chunk` payload bytes each.
pub fn fragment_ipv6(packet: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let next_header = packet[6];
    let payload = &packet[40..];
    let mut out = Vec::new();
    for (i, piece) in payload.chunks(chunk).enumerate() {
        let mut p = packet[..40].to_vec();
        p[6] = 44; // fragment header
        let len = (piece.len() + 8) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        let more = (i + 1) * chunk < payload.len();
        let offset_field = (((i * chunk / 8) as u16) << 3) | u16::from(more);
        p.extend_from_slice(&[next_header, 0]);
        p.extend_from_slice(&offset_field.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(piece);
        out.push(p);
    }
    out
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

fn ethertype_of(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    }
}

/// An Ethernet frame around `ip`, with VLAN tags (TPIDs such as 0x8100 and
/// 0x88a8, outermost first).
pub fn ethernet(vlans: &[u16], ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for (i, tpid) in vlans.iter().enumerate() {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype_of(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// A PPPoE session frame inside Ethernet.
pub fn pppoe(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0x64];
    f.extend_from_slice(&[0x11, 0x00, 0x00, 0x01]);
    f.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    f.extend_from_slice(&ppp_protocol(ip));
    f.extend_from_slice(ip);
    f
}

fn ppp_protocol(ip: &[u8]) -> [u8; 2] {
    if ip[0] >> 4 == 6 {
        [0x00, 0x57]
    } else {
        [0x00, 0x21]
    }
}

/// Frames `ip` for a pcap link type.
pub fn frame(link_type: u16, ip: &[u8]) -> Vec<u8> {
    let v6 = ip[0] >> 4 == 6;
    let mut f = match link_type {
        1 => return ethernet(&[], ip),
        // DLT_NULL: address family in host (here little-endian) order.
        0 => (if v6 { 30u32 } else { 2 }).to_le_bytes().to_vec(),
        // DLT_LOOP: network order.
        108 => (if v6 { 24u32 } else { 2 }).to_be_bytes().to_vec(),
        9 | 50 => {
            let mut f = vec![0xff, 0x03];
            f.extend_from_slice(&ppp_protocol(ip));
            f
        }
        12 | 14 | 101 | 228 | 229 => Vec::new(),
        113 => {
            let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            f.extend_from_slice(&ethertype_of(ip).to_be_bytes());
            f
        }
        276 => {
            let mut f = ethertype_of(ip).to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f
        }
        // IEEE 802.11 QoS data to the distribution system, LLC/SNAP.
        105 => wifi(ip),
        // Radiotap (8 bytes: version, padding, length, no fields) + 802.11.
        127 => [&[0, 0, 8, 0, 0, 0, 0, 0][..], &wifi(ip)].concat(),
        // PPI (8 bytes naming link type 105) + 802.11.
        192 => [&[0, 0, 8, 0, 105, 0, 0, 0][..], &wifi(ip)].concat(),
        // Linux ARCNET: source, destination, offset, protocol id (IP 212,
        // IPv6 196), split flag, sequence number.
        129 => vec![0xbe, 0x50, 0, 0, if v6 { 196 } else { 212 }, 0, 0, 1],
        other => panic!("no framing for link type {other}"),
    };
    f.extend_from_slice(ip);
    f
}

/// An IEEE 802.11 QoS data frame (to the DS) carrying `ip` with LLC/SNAP.
fn wifi(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x88, 0x01, 0x2c, 0x00];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x0b]);
    f.extend_from_slice(&[0x10, 0x00, 0x00, 0x00]); // sequence control, QoS control
    f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
    f.extend_from_slice(&ethertype_of(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// One packet record to write.
#[derive(Clone, Debug)]
pub struct Record {
    /// Nanoseconds since the epoch.
    pub ts_ns: i64,
    pub data: Vec<u8>,
    /// On-wire length; `data` may be shorter (snapshot length).
    pub wire_len: u32,
    /// pcapng interface (ignored for pcap).
    pub interface: u32,
}

impl Record {
    pub fn new(ts_ns: i64, data: Vec<u8>) -> Self {
        let wire_len = data.len() as u32;
        Self { ts_ns, data, wire_len, interface: 0 }
    }

    /// The same record cut to `snaplen` captured bytes.
    pub fn cut(mut self, snaplen: usize) -> Self {
        self.data.truncate(snaplen);
        self
    }
}

/// Classic pcap options.
#[derive(Clone, Copy, Debug)]
pub struct PcapFormat {
    pub link_type: u16,
    pub nanos: bool,
    pub big_endian: bool,
    /// The "modified" (Kuznetzov) format with 24-byte record headers.
    pub modified: bool,
    pub snaplen: u32,
}

impl PcapFormat {
    pub fn new(link_type: u16) -> Self {
        Self { link_type, nanos: false, big_endian: false, modified: false, snaplen: 65535 }
    }
}

/// Streams a classic pcap file.
pub struct PcapWriter<W: Write> {
    out: W,
    format: PcapFormat,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, format: PcapFormat) -> std::io::Result<Self> {
        let magic = match (format.modified, format.nanos) {
            (true, _) => 0xa1b2_cd34u32,
            (false, true) => 0xa1b2_3c4d,
            (false, false) => 0xa1b2_c3d4,
        };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&Self::u32b(format, magic));
        h.extend_from_slice(&Self::u16b(format, 2));
        h.extend_from_slice(&Self::u16b(format, 4));
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&Self::u32b(format, format.snaplen));
        h.extend_from_slice(&Self::u32b(format, u32::from(format.link_type)));
        out.write_all(&h)?;
        Ok(Self { out, format })
    }

    fn u16b(f: PcapFormat, v: u16) -> [u8; 2] {
        if f.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32b(f: PcapFormat, v: u32) -> [u8; 4] {
        if f.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Writes one record: `data` captured, `wire_len` on the wire.
    pub fn write(&mut self, ts_ns: i64, data: &[u8], wire_len: u32) -> std::io::Result<()> {
        let f = self.format;
        let sec = (ts_ns / 1_000_000_000) as u32;
        let ns = (ts_ns % 1_000_000_000) as u32;
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&Self::u32b(f, sec));
        h[4..8].copy_from_slice(&Self::u32b(f, if f.nanos { ns } else { ns / 1000 }));
        h[8..12].copy_from_slice(&Self::u32b(f, data.len() as u32));
        h[12..16].copy_from_slice(&Self::u32b(f, wire_len));
        let hlen = if f.modified { 24 } else { 16 };
        self.out.write_all(&h[..hlen])?;
        self.out.write_all(data)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a classic pcap file.
pub fn pcap(format: PcapFormat, records: &[Record]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), format).unwrap();
    for r in records {
        w.write(r.ts_ns, &r.data, r.wire_len).unwrap();
    }
    w.into_inner()
}

/// Builds a pcapng file block by block.
pub struct Pcapng {
    pub out: Vec<u8>,
    big_endian: bool,
}

impl Default for Pcapng {
    fn default() -> Self {
        Self::new()
    }
}

impl Pcapng {
    pub fn new() -> Self {
        Self { out: Vec::new(), big_endian: false }
    }

    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Appends a block with the given body (padded to 4 bytes).
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        let (t, l) = (self.u32b(block_type), self.u32b(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&l);
        self
    }

    fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = self.u16b(code).to_vec();
        o.extend_from_slice(&self.u16b(value.len() as u16));
        o.extend_from_slice(value);
        o.resize(o.len().next_multiple_of(4), 0);
        o
    }

    /// A section header block; the section's byte order follows.
    pub fn section(&mut self, big_endian: bool) -> &mut Self {
        self.big_endian = big_endian;
        let mut body = self.u32b(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&[0xff; 8]); // section length unknown
        body.extend_from_slice(&self.option(4, b"xborder tests"));
        body.extend_from_slice(&[0; 4]);
        self.block(0x0a0d_0d0a, &body)
    }

    /// An interface description block.
    pub fn interface(
        &mut self,
        link_type: u16,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> &mut Self {
        let mut body = self.u16b(link_type).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32b(0));
        body.extend_from_slice(&self.option(2, b"eth0"));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.option(9, &[r]));
        }
        if let Some(o) = tsoffset {
            let v = if self.big_endian { o.to_be_bytes() } else { o.to_le_bytes() };
            body.extend_from_slice(&self.option(14, &v));
        }
        body.extend_from_slice(&[0; 4]);
        self.block(1, &body)
    }

    /// An enhanced packet block with a timestamp in interface units.
    pub fn enhanced(
        &mut self,
        interface: u32,
        units: u64,
        data: &[u8],
        wire_len: u32,
    ) -> &mut Self {
        let mut body = self.u32b(interface).to_vec();
        body.extend_from_slice(&self.u32b((units >> 32) as u32));
        body.extend_from_slice(&self.u32b(units as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(wire_len));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        body.extend_from_slice(&self.option(1, b"a comment"));
        body.extend_from_slice(&[0; 4]);
        self.block(6, &body)
    }

    /// A simple packet block (interface 0, no timestamp).
    pub fn simple(&mut self, data: &[u8]) -> &mut Self {
        let mut body = self.u32b(data.len() as u32).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// An obsolete packet block.
    pub fn obsolete(&mut self, interface: u16, units: u64, data: &[u8]) -> &mut Self {
        let mut body = self.u16b(interface).to_vec();
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b((units >> 32) as u32));
        body.extend_from_slice(&self.u32b(units as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}

/// Gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Tunnel encapsulations around a packet, as tunnel endpoints would write
/// them (for `fixtures/tunnels.pcap` and the tunnel benchmark).
pub mod encap {
    use super::{ip_packet, L4};

    /// An Ethernet header (no VLAN) with `ethertype`, then `payload`.
    pub fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ether_ip(ip: &[u8]) -> Vec<u8> {
        ether(if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 }, ip)
    }

    /// An IP packet of protocol `protocol` carrying `payload`.
    pub fn ip_proto(src: &str, dst: &str, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let (s, d): (std::net::IpAddr, std::net::IpAddr) =
            (src.parse().unwrap(), dst.parse().unwrap());
        let b = match (s, d) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                etherparse::PacketBuilder::ipv4(s.octets(), d.octets(), 64)
            }
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
                etherparse::PacketBuilder::ipv6(s.octets(), d.octets(), 64)
            }
            _ => panic!("mixed address families"),
        };
        let mut out = Vec::new();
        b.write(&mut out, etherparse::IpNumber(protocol), payload).unwrap();
        out
    }

    /// VXLAN (UDP 4789) from `src` to `dst`, VNI `vni`, Ethernet inside.
    pub fn vxlan(src: &str, dst: &str, sport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(&ether_ip(inner));
        ip_packet(src, dst, L4::Udp { sport, dport: 4789 }, &p)
    }

    /// GENEVE (UDP 6081) with one 8-byte option, protocol IPv4 or IPv6.
    pub fn geneve(src: &str, dst: &str, vni: u32, inner: &[u8]) -> Vec<u8> {
        let ty: u16 = if inner[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
        let mut p = vec![0x02, 0];
        p.extend_from_slice(&ty.to_be_bytes());
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        // Option class 0x0108, type 1, one word of data.
        p.extend_from_slice(&[0x01, 0x08, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        p.extend_from_slice(inner);
        ip_packet(src, dst, L4::Udp { sport: 51000, dport: 6081 }, &p)
    }

    /// GRE with a key (RFC 2890), IPv4 or IPv6 inside.
    pub fn gre_key(src: &str, dst: &str, key: u32, inner: &[u8]) -> Vec<u8> {
        let ty: u16 = if inner[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
        let mut p = vec![0x20, 0];
        p.extend_from_slice(&ty.to_be_bytes());
        p.extend_from_slice(&key.to_be_bytes());
        p.extend_from_slice(inner);
        ip_proto(src, dst, 47, &p)
    }

    /// ERSPAN type II (GRE 0x88be with a sequence number), session `session`.
    pub fn erspan_ii(src: &str, dst: &str, session: u16, seq: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x10, 0, 0x88, 0xbe];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0x10, 0x00]);
        p.extend_from_slice(&(session & 0x3ff).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&ether_ip(inner));
        ip_proto(src, dst, 47, &p)
    }

    /// ERSPAN type III (GRE 0x22eb), session `session`, with the platform
    /// subheader.
    pub fn erspan_iii(src: &str, dst: &str, session: u16, seq: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x10, 0, 0x22, 0xeb];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0x20, 0x00]);
        p.extend_from_slice(&(session & 0x3ff).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x10, 0]); // timestamp
        p.extend_from_slice(&[0, 0, 0, 0x01]); // SGT, Ethernet frame, O set
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&ether_ip(inner));
        ip_proto(src, dst, 47, &p)
    }

    /// GTP-U (UDP 2152) T-PDU with TEID `teid` and a PDU session container
    /// extension header.
    pub fn gtp_u(src: &str, dst: &str, teid: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x34, 0xff, 0, 0];
        p.extend_from_slice(&teid.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0x85, 1, 0x10, 0x09, 0]);
        p.extend_from_slice(inner);
        let len = (p.len() - 8) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        ip_packet(src, dst, L4::Udp { sport: 2152, dport: 2152 }, &p)
    }

    /// Teredo (UDP 3544 at the server) with an origin indicator in front
    /// of the IPv6 packet when `origin`.
    pub fn teredo(src: &str, dst: &str, to_server: bool, origin: bool, inner: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        if origin {
            p.extend_from_slice(&[0, 0, 0xf2, 0x27, 0x3f, 0x57, 0x61, 0xaf]);
        }
        p.extend_from_slice(inner);
        let l4 = if to_server {
            L4::Udp { sport: 40001, dport: 3544 }
        } else {
            L4::Udp { sport: 3544, dport: 40001 }
        };
        ip_packet(src, dst, l4, &p)
    }
}
