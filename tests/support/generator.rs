//! Large deterministic captures for benchmarks: a realistic mix of TCP, UDP
//! and ICMP over IPv4 and IPv6, small and full-size packets, flows that
//! start and end over the trace. The same parameters always give the same
//! bytes (a fixed xorshift sequence, no randomness from the system).

use std::io::{self, Write};

use super::{ethernet, ip_packet, PcapFormat, PcapWriter, XorShift, L4};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub packets: u64,
    pub flows: u64,
    /// Only documentation addresses (RFC 5737, RFC 3849) on both sides, for
    /// traffic that is really sent (e.g. replayed into a veth pair): local
    /// hosts 198.51.100.0/24 and 2001:db8:1::/48, remote ones 203.0.113.0/24
    /// and 2001:db8::/48 (the default uses private local addresses and
    /// 203.0.0.0/17 remote ones, which geo-IP attributes).
    pub documentation_only: bool,
    /// Every frame as a VXLAN mirror delivers it (AWS VPC Traffic
    /// Mirroring): Ethernet, IPv4 from the mirror source 192.0.2.50 to the
    /// target 192.0.2.60, UDP to 4789 from a source port derived from the
    /// flow, VNI 100 to 103, then the original frame.
    pub vxlan_mirror: bool,
}

/// What was generated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Generated {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
    Icmp,
}

/// Flow `flow`'s packet `ip` as a VXLAN mirror delivers it (see
/// [`Mix::vxlan_mirror`]).
pub fn mirrored(flow: u64, ip: &[u8]) -> Vec<u8> {
    let sport = 49152 + (flow % 16384) as u16;
    let outer = super::encap::vxlan("192.0.2.50", "192.0.2.60", sport, 100 + (flow % 4) as u32, ip);
    ethernet(&[], &outer)
}

/// Writes the capture (Ethernet, microseconds) to `out`.
///
/// Flows are generated in blocks: each block of `packets / flows * 1000`
/// packets interleaves 1000 flows in a random order, each with the same
/// number of packets, so each flow lives for about a second of trace time.
/// A TCP flow opens with a SYN and ends with a FIN. Packets are 100 µs
/// apart.
pub fn generate(mix: Mix, out: impl Write) -> io::Result<Generated> {
    let mut w = PcapWriter::new(out, PcapFormat::new(1))?;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let per_flow = (mix.packets / mix.flows.max(1)).max(1);
    let block_flows = 1000.min(mix.flows.max(1));
    let block_packets = per_flow * block_flows;
    let mut generated = Generated { flows: mix.flows, ..Generated::default() };
    let zeros = [0u8; 1500];
    let mut seen = vec![0u64; block_flows as usize];
    let mut order: Vec<u64> = Vec::new();
    for i in 0..mix.packets {
        let block = i / block_packets;
        if i % block_packets == 0 {
            seen.iter_mut().for_each(|s| *s = 0);
            // Every flow of the block per_flow times, shuffled (Fisher-Yates).
            order = (0..block_packets).map(|j| j % block_flows).collect();
            for j in (1..order.len()).rev() {
                order.swap(j, (rng.next() % (j as u64 + 1)) as usize);
            }
        }
        let slot = order[(i % block_packets) as usize];
        let flow = (block * block_flows + slot) % mix.flows.max(1);
        let n = seen[slot as usize];
        seen[slot as usize] += 1;
        // Flow properties derive from its number only.
        let h = flow.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let kind = match h % 100 {
            0..=69 => Kind::Tcp,
            70..=94 => Kind::Udp,
            _ => Kind::Icmp,
        };
        let v6 = (h >> 8) % 5 == 0;
        let client_port = 1024 + (flow % 60000) as u16;
        let server_port = [443u16, 80, 53, 123, 8443][((h >> 16) % 5) as usize];
        // The last two packets close a TCP connection: FIN from each side.
        let last = n + 1 == per_flow;
        let outbound = if per_flow > 2 && n + 2 >= per_flow { !last } else { (rng.next() % 5) < 3 };
        let (local, remote) = if mix.documentation_only {
            if v6 {
                (
                    format!("2001:db8:1::{:x}:{:x}", flow >> 16, flow & 0xffff),
                    format!("2001:db8::{:x}:{:x}", (h >> 24) & 0xffff, flow & 0xff),
                )
            } else {
                (format!("198.51.100.{}", flow & 0xff), format!("203.0.113.{}", (h >> 24) & 0xff))
            }
        } else if v6 {
            (
                format!("fd00::{:x}:{:x}", flow >> 16, flow & 0xffff),
                format!("2001:db8::{:x}:{:x}", (h >> 24) & 0xffff, flow & 0xff),
            )
        } else {
            (
                format!("10.{}.{}.{}", (flow >> 16) & 0xff, (flow >> 8) & 0xff, flow & 0xff),
                format!("203.0.{}.{}", (h >> 24) & 0x7f, (h >> 32) & 0xff),
            )
        };
        let (src, dst, sport, dport) = if outbound || n == 0 {
            (&local, &remote, client_port, server_port)
        } else {
            (&remote, &local, server_port, client_port)
        };
        // Sizes: 45% bare ACKs and queries, 15% medium, 40% full frames.
        let size_class = rng.next() % 100;
        let overhead = if v6 { 60 } else { 40 };
        let payload_len = match size_class {
            0..=44 => 0,
            45..=59 => 200 + (rng.next() % 600) as usize,
            _ => 1500 - overhead,
        };
        let payload = &zeros[..payload_len];
        let flags = if n == 0 {
            "S"
        } else if per_flow > 2 && n + 2 >= per_flow {
            "FA"
        } else if payload_len > 0 {
            "PA"
        } else {
            "A"
        };
        let l4 = match kind {
            Kind::Tcp => L4::Tcp { sport, dport, flags },
            Kind::Udp => L4::Udp { sport, dport },
            Kind::Icmp => L4::Icmp,
        };
        let ip = ip_packet(src, dst, l4, payload);
        let frame = if mix.vxlan_mirror { mirrored(flow, &ip) } else { ethernet(&[], &ip) };
        let ts = 1_709_294_400_000_000_000 + i as i64 * 100_000;
        w.write(ts, &frame, frame.len() as u32)?;
        generated.packets += 1;
        generated.bytes += frame.len() as u64 + 16;
    }
    w.into_inner().flush()?;
    Ok(generated)
}
