//! A gateway's traffic, for the audit benchmark: what an office network
//! sends to the Internet, in the shares of the pipeline issue's external
//! captures, so that every stage does the work it does on real traffic.
//!
//! Flows (by count): 52% TCP with a handshake, a TLS ClientHello with SNI
//! (port 443) or an HTTP request with Host (port 80), server data and a
//! FIN exchange; 20% DNS, a query and an answer with one to three A or
//! AAAA records; 12% QUIC, a client Initial with SNI (RFC 9001 protection)
//! and short-header packets both ways; 3% NTP; 3% ICMP echo; 10% other
//! UDP. 20% of flows are IPv6. Local hosts are 2,048 (10.0.0.0/21 and
//! fd00::/116); remote endpoints are drawn from networks the shipped data
//! attributes: US, EU and CN clouds, Chinese and Russian networks, so that
//! the shipped rule packs find about 1.2 findings per flow. The same
//! parameters always give the same bytes.

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::generator::Generated;
use super::{ethernet, ip_packet, PcapFormat, PcapWriter, XorShift, L4};

/// Remote networks: (IPv4 base, IPv6 base, weight). Each flow's remote is
/// one of 4,096 addresses of its network.
const NETWORKS: &[([u8; 4], [u16; 2], u64)] = &[
    ([54, 86, 0, 0], [0x2600, 0x1f18], 30),   // AWS us-east-1
    ([34, 120, 0, 0], [0x2001, 0x4860], 10),  // Google, US
    ([20, 50, 0, 0], [0x2600, 0x1f18], 10),   // Azure, NL
    ([88, 198, 0, 0], [0x2a01, 0x04f8], 15),  // Hetzner, DE
    ([51, 68, 0, 0], [0x2a01, 0x04f8], 15),   // OVH, FR
    ([47, 92, 0, 0], [0x2408, 0x4000], 4),    // Alibaba Cloud, CN
    ([47, 88, 0, 0], [0x2408, 0x4000], 3),    // Alibaba Cloud, US
    ([43, 130, 0, 0], [0x240e, 0x0000], 2),   // Tencent Cloud, US
    ([202, 96, 128, 0], [0x240e, 0x0000], 3), // China Telecom
    ([5, 255, 0, 0], [0x2a02, 0x06b8], 2),    // Yandex, RU
    ([77, 88, 0, 0], [0x2a02, 0x06b8], 2),    // Yandex, RU
];

/// Names in SNI, HTTP Host and DNS: clouds' own, and vendors' the shipped
/// vendor catalogue knows.
const NAMES: &[&str] = &[
    "api.github.com",
    "s3.amazonaws.com",
    "login.microsoftonline.com",
    "www.example.com",
    "update.hicloud.com",
    "api16-normal.tiktokv.com",
    "www.baidu.com",
    "yandex.ru",
    "cdn.jsdelivr.net",
    "dl.kaspersky-labs.com",
    "www.hik-connect.com",
    "telemetry.example.org",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Dns,
    Quic,
    Ntp,
    Icmp,
    Udp,
}

/// One flow's addresses and ports; `n` numbers it.
struct Flow {
    n: u64,
    kind: Kind,
    local: String,
    remote: String,
    client_port: u16,
    server_port: u16,
}

fn kind_of(h: u64) -> Kind {
    match h % 100 {
        0..=51 => Kind::Tcp,
        52..=71 => Kind::Dns,
        72..=83 => Kind::Quic,
        84..=86 => Kind::Ntp,
        87..=89 => Kind::Icmp,
        _ => Kind::Udp,
    }
}

fn network_of(h: u64) -> usize {
    let total: u64 = NETWORKS.iter().map(|n| n.2).sum();
    let mut pick = h % total;
    for (i, n) in NETWORKS.iter().enumerate() {
        if pick < n.2 {
            return i;
        }
        pick -= n.2;
    }
    0
}

fn address(v6: bool, network: usize, host: u64) -> String {
    let (v4, v6base, _) = NETWORKS[network];
    let host = host % 4096;
    if v6 {
        Ipv6Addr::new(
            v6base[0],
            v6base[1],
            0,
            0,
            0,
            0,
            (host >> 8) as u16,
            (host & 0xff) as u16 + 1,
        )
        .to_string()
    } else {
        Ipv4Addr::new(v4[0], v4[1], v4[2] + (host >> 8) as u8 % 16, (host & 0xff) as u8).to_string()
    }
}

impl Flow {
    fn new(n: u64) -> Self {
        let h = n.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ (n >> 7);
        let kind = kind_of(h);
        let v6 = (h >> 8) % 5 == 0;
        let host = (h >> 16) % 2048;
        let local = if v6 {
            format!("fd00::{:x}", host + 1)
        } else {
            Ipv4Addr::new(10, 0, (host >> 8) as u8, ((host & 0xff) as u8).wrapping_add(1))
                .to_string()
        };
        let remote = address(v6, network_of(h >> 24), h >> 40);
        let server_port = match kind {
            Kind::Tcp if (h >> 12) % 4 == 0 => 80,
            Kind::Tcp | Kind::Quic => 443,
            Kind::Dns => 53,
            Kind::Ntp => 123,
            Kind::Icmp => 0,
            Kind::Udp => 3478 + ((h >> 20) % 8) as u16,
        };
        let client_port = 32768 + (n % 28000) as u16;
        Flow { n, kind, local, remote, client_port, server_port }
    }

    fn name(&self) -> &'static str {
        NAMES[(self.n.wrapping_mul(0x9e37_79b9) >> 8) as usize % NAMES.len()]
    }

    /// The flow's IP packets in order, each with whether the local end
    /// sent it.
    fn packets(&self) -> Vec<Vec<u8>> {
        let (l, r, cp, sp) =
            (&self.local[..], &self.remote[..], self.client_port, self.server_port);
        let out = |payload: &[u8], l4| ip_packet(l, r, l4, payload);
        let back = |payload: &[u8], l4| ip_packet(r, l, l4, payload);
        let udp_out = L4::Udp { sport: cp, dport: sp };
        let udp_back = L4::Udp { sport: sp, dport: cp };
        let tcp = |flags| L4::Tcp { sport: cp, dport: sp, flags };
        let tcp_back = |flags| L4::Tcp { sport: sp, dport: cp, flags };
        let data = [0u8; 1460];
        match self.kind {
            Kind::Tcp => {
                let request = if sp == 443 {
                    super::fixtures::client_hello(self.name())
                } else {
                    format!("GET / HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n\r\n", self.name())
                        .into_bytes()
                };
                let mut p = vec![
                    out(&[], tcp("S")),
                    back(&[], tcp_back("SA")),
                    out(&[], tcp("A")),
                    with_seq(out(&request, tcp("PA")), 1001),
                ];
                let segments = 3 + self.n % 9;
                for s in 0..segments {
                    p.push(back(
                        &data[..if s + 1 == segments { 600 } else { 1460 }],
                        tcp_back("A"),
                    ));
                    if s % 2 == 1 {
                        p.push(out(&[], tcp("A")));
                    }
                }
                p.push(out(&[], tcp("FA")));
                p.push(back(&[], tcp_back("FA")));
                p.push(out(&[], tcp("A")));
                p
            }
            Kind::Dns => {
                let v6 = self.remote.contains(':');
                let answers = 1 + (self.n % 3) as usize;
                let (query, answer) = dns_exchange(self.n as u16, self.name(), v6, answers, self.n);
                vec![out(&query, udp_out), back(&answer, udp_back)]
            }
            Kind::Quic => {
                let dcid = self.n.to_be_bytes();
                let hello = super::fixtures::client_hello(self.name());
                // The handshake message, without its TLS record header.
                let initial = super::quic::client_initial(&dcid, &hello[5..]);
                let short = |len: usize| {
                    let mut b = vec![0x40];
                    b.extend_from_slice(&dcid);
                    b.resize(len, 0x5a);
                    b
                };
                vec![
                    out(&initial, udp_out),
                    back(&short(1200), udp_back),
                    back(&short(1200), udp_back),
                    out(&short(60), udp_out),
                    back(&short(900), udp_back),
                    out(&short(40), udp_out),
                ]
            }
            Kind::Ntp => {
                let mut query = [0u8; 48];
                query[0] = 0x23;
                let mut answer = [0u8; 48];
                answer[0] = 0x24;
                vec![out(&query, udp_out), back(&answer, udp_back)]
            }
            Kind::Icmp => vec![out(&[0; 56], L4::Icmp), out(&[0; 56], L4::Icmp)],
            Kind::Udp => (0..4)
                .map(|i| {
                    if i % 2 == 0 {
                        out(&data[..160], udp_out)
                    } else {
                        back(&data[..160], udp_back)
                    }
                })
                .collect(),
        }
    }
}

/// `packet` (TCP, from the builder) with sequence number `seq`, so that
/// its payload follows the SYN's (checksums are not verified).
fn with_seq(mut packet: Vec<u8>, seq: u32) -> Vec<u8> {
    let header = if packet[0] >> 4 == 6 { 40 } else { usize::from(packet[0] & 0x0f) * 4 };
    packet[header + 4..header + 8].copy_from_slice(&seq.to_be_bytes());
    packet
}

/// A DNS query for `name` and its answer: `answers` A (or AAAA) records
/// of addresses in the remote networks.
fn dns_exchange(id: u16, name: &str, v6: bool, answers: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    let qtype: u16 = if v6 { 28 } else { 1 };
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let mut a = q.clone();
    a[2] = 0x81;
    a[3] = 0x80;
    a[7] = answers as u8;
    for i in 0..answers {
        let h = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(i as u64 * 7919);
        let ip = address(v6, network_of(h >> 24), h >> 40);
        a.extend_from_slice(&[0xc0, 12]);
        a.extend_from_slice(&qtype.to_be_bytes());
        a.extend_from_slice(&[0, 1, 0, 0, 1, 0x2c]);
        if v6 {
            let ip: Ipv6Addr = ip.parse().unwrap();
            a.extend_from_slice(&16u16.to_be_bytes());
            a.extend_from_slice(&ip.octets());
        } else {
            let ip: Ipv4Addr = ip.parse().unwrap();
            a.extend_from_slice(&4u16.to_be_bytes());
            a.extend_from_slice(&ip.octets());
        }
    }
    (q, a)
}

/// Writes `packets` packets of about `flows` flows (Ethernet,
/// microseconds) to `out`; with `vxlan_mirror` every frame inside VXLAN
/// as the other generator's `Mix::vxlan_mirror` makes it.
///
/// Flows are made in blocks of 1,000 whose packets are interleaved in a
/// random order (each flow's own in order), 100 µs apart; the flows' own
/// lengths (2 to 22 packets) decide how many flows the packets make, so
/// `flows` sets the mean length the blocks aim at by stretching TCP data.
pub fn generate(
    packets: u64,
    flows: u64,
    vxlan_mirror: bool,
    out: impl Write,
) -> io::Result<Generated> {
    let mut w = PcapWriter::new(out, PcapFormat::new(1))?;
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut generated = Generated::default();
    // The mix's mean is about 10 packets per flow; longer or shorter
    // flows repeat or cut the server's data.
    let stretch = (packets as f64 / flows.max(1) as f64 / 10.0).max(0.2);
    let mut next_flow = 0u64;
    while generated.packets < packets {
        let block: Vec<Vec<Vec<u8>>> = (0..1000)
            .map(|i| {
                let flow = Flow::new(next_flow + i);
                let mut p = flow.packets();
                if flow.kind == Kind::Tcp && stretch != 1.0 {
                    // Keep the handshake and the close; scale the data.
                    let body: Vec<Vec<u8>> = p.drain(4..p.len() - 3).collect();
                    let want = ((body.len() as f64 * stretch).round() as usize).max(1);
                    let tail: Vec<Vec<u8>> = p.drain(4..).collect();
                    p.extend(body.iter().cycle().take(want).cloned());
                    p.extend(tail);
                }
                p
            })
            .collect();
        next_flow += 1000;
        let mut order: Vec<u32> = Vec::new();
        for (i, p) in block.iter().enumerate() {
            order.extend(std::iter::repeat_n(i as u32, p.len()));
        }
        for j in (1..order.len()).rev() {
            order.swap(j, (rng.next() % (j as u64 + 1)) as usize);
        }
        let mut sent = vec![0usize; block.len()];
        let mut started = vec![false; block.len()];
        for slot in order {
            if generated.packets >= packets {
                break;
            }
            let slot = slot as usize;
            let ip = &block[slot][sent[slot]];
            sent[slot] += 1;
            if !std::mem::replace(&mut started[slot], true) {
                generated.flows += 1;
            }
            let frame = if vxlan_mirror {
                super::generator::mirrored(next_flow - 1000 + slot as u64, ip)
            } else {
                ethernet(&[], ip)
            };
            let ts = 1_709_294_400_000_000_000 + generated.packets as i64 * 100_000;
            w.write(ts, &frame, frame.len() as u32)?;
            generated.packets += 1;
            generated.bytes += frame.len() as u64 + 16;
        }
    }
    w.into_inner().flush()?;
    Ok(generated)
}

/// `packets` SYNs from random public IPv4 sources and ports to one local
/// server, 10.0.0.80:443, 1 µs apart: every packet starts a flow.
pub fn syn_flood(path: &Path, packets: u64) {
    let mut w = PcapWriter::new(
        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap()),
        PcapFormat::new(1),
    )
    .unwrap();
    let mut rng = XorShift(0x5eed_f100d);
    let sources = super::random_public_addresses(7, 65_536);
    // One frame made by the builder, then only the source address and port
    // change (xborder does not verify checksums).
    let template = super::ip_packet(
        "192.0.2.1",
        "10.0.0.80",
        L4::Tcp { sport: 1, dport: 443, flags: "S" },
        &[],
    );
    let v4: Vec<[u8; 4]> = sources
        .iter()
        .filter_map(|ip| match ip {
            std::net::IpAddr::V4(v4) => Some(v4.octets()),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    let mut ip = template;
    for i in 0..packets {
        let r = rng.next();
        let mut src = v4[(r % v4.len() as u64) as usize];
        // Each source address many times over, each time another one: the
        // last octet varies too.
        src[3] = (r >> 32) as u8;
        ip[12..16].copy_from_slice(&src);
        ip[20..22].copy_from_slice(&(1024 + (r >> 40) as u16 % 60000).to_be_bytes());
        let frame = ethernet(&[], &ip);
        w.write(1_709_294_400_000_000_000 + i as i64 * 1000, &frame, frame.len() as u32).unwrap();
    }
    std::io::Write::flush(&mut w.into_inner()).unwrap();
}
