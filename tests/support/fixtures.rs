//! Every capture in `fixtures/`, built from readable packet descriptions.
//! `fixtures/README.md` lists what each one holds and what xborder must
//! report for it. Regenerate with
//! `XBORDER_WRITE_FIXTURES=1 cargo test --test fixtures`.

use super::*;

/// The local host of every fixture.
pub const LOCAL: &str = "192.168.1.10";
pub const LOCAL6: &str = "fd00::10";

fn tcp<'a>(sport: u16, dport: u16, flags: &'a str) -> L4<'a> {
    L4::Tcp { sport, dport, flags }
}

fn udp(sport: u16, dport: u16) -> L4<'static> {
    L4::Udp { sport, dport }
}

/// An ARP request as an Ethernet frame.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 192, 168, 1, 10]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 168, 1, 1]);
    f
}

/// A TCP connection from `client` to `server`: handshake, `up` bytes sent,
/// `down` bytes received, FIN from both sides: 8 packets.
fn tcp_session(
    t: f64,
    client: (&str, u16),
    server: (&str, u16),
    up: usize,
    down: usize,
) -> Vec<(f64, Vec<u8>)> {
    let (c, cp) = client;
    let (s, sp) = server;
    vec![
        (t, ip_packet(c, s, tcp(cp, sp, "S"), &[])),
        (t + 0.010, ip_packet(s, c, tcp(sp, cp, "SA"), &[])),
        (t + 0.020, ip_packet(c, s, tcp(cp, sp, "A"), &[])),
        (t + 0.030, ip_packet(c, s, tcp(cp, sp, "PA"), &vec![b'u'; up])),
        (t + 0.040, ip_packet(s, c, tcp(sp, cp, "PA"), &vec![b'd'; down])),
        (t + 0.050, ip_packet(c, s, tcp(cp, sp, "FA"), &[])),
        (t + 0.060, ip_packet(s, c, tcp(sp, cp, "FA"), &[])),
        (t + 0.070, ip_packet(c, s, tcp(cp, sp, "A"), &[])),
    ]
}

fn ethernet_records(packets: Vec<(f64, Vec<u8>)>) -> Vec<Record> {
    packets.into_iter().map(|(t, ip)| Record::new(at(t), ethernet(&[], &ip))).collect()
}

/// The base time of every fixture, 2024-03-01T12:00:00Z, in nanoseconds.
pub const BASE_NS: i64 = 1_709_294_400_000_000_000;

/// `offset` seconds after [`BASE_NS`], exact to the nanosecond.
pub fn at(offset: f64) -> i64 {
    BASE_NS + (offset * 1e9).round() as i64
}

/// `quickstart.pcap`: one small office morning.
pub fn quickstart_records() -> Vec<Record> {
    let mut p = tcp_session(0.0, (LOCAL, 50000), ("203.0.113.10", 443), 100, 1000);
    p.push((0.5, ip_packet(LOCAL, "198.51.100.53", udp(53000, 53), &[b'q'; 30])));
    p.push((0.51, ip_packet("198.51.100.53", LOCAL, udp(53, 53000), &[b'r'; 80])));
    p.push((1.0, ip_packet(LOCAL, "192.0.2.1", L4::Icmp, &[0; 56])));
    p.push((2.0, ip_packet(LOCAL, "192.0.2.1", L4::Icmp, &[0; 56])));
    p.push((2.5, ip_packet(LOCAL6, "2001:db8::443", tcp(50001, 443, "S"), &[])));
    p.push((2.51, ip_packet("2001:db8::443", LOCAL6, tcp(443, 50001, "SA"), &[])));
    p.push((2.52, ip_packet(LOCAL6, "2001:db8::443", tcp(50001, 443, "A"), &[])));
    p.push((3.0, ip_packet(LOCAL, "192.168.1.1", udp(5353, 53), &[b'i'; 20])));
    p.push((4.0, ip_packet("198.51.100.7", LOCAL, tcp(40000, 22, "S"), &[])));
    p.push((4.01, ip_packet(LOCAL, "198.51.100.7", tcp(22, 40000, "SA"), &[])));
    let mut records = ethernet_records(p);
    records.push(Record::new(at(4.5), arp_frame()));
    records
}

/// A UDP exchange over IPv4 and one over IPv6: 2 flows, 4 packets.
fn udp_pair(v4: bool, v6: bool) -> Vec<(f64, Vec<u8>)> {
    let mut p = Vec::new();
    if v4 {
        p.push((0.0, ip_packet(LOCAL, "203.0.113.20", udp(40000, 53), &[b'q'; 20])));
        p.push((0.1, ip_packet("203.0.113.20", LOCAL, udp(53, 40000), &[b'r'; 40])));
    }
    if v6 {
        p.push((1.0, ip_packet(LOCAL6, "2001:db8::20", udp(40001, 53), &[b'q'; 20])));
        p.push((1.1, ip_packet("2001:db8::20", LOCAL6, udp(53, 40001), &[b'r'; 40])));
    }
    p
}

/// `linktypes/NAME.pcap` for each link layer: (file name, link type, frames).
pub fn link_type_fixtures() -> Vec<(String, u16, Vec<Record>)> {
    let plain: [(&str, u16); 16] = [
        ("ethernet", 1),
        ("null", 0),
        ("loop", 108),
        ("raw", 101),
        ("raw-openbsd", 12),
        ("raw-bsdos", 14),
        ("ipv4", 228),
        ("ipv6", 229),
        ("linux-sll", 113),
        ("linux-sll2", 276),
        ("ppp", 9),
        ("ppp-hdlc", 50),
        ("ieee802-11", 105),
        ("radiotap", 127),
        ("ppi", 192),
        ("arcnet-linux", 129),
    ];
    let mut out = Vec::new();
    for (name, lt) in plain {
        let packets = udp_pair(lt != 229, lt != 228);
        let records =
            packets.into_iter().map(|(t, ip)| Record::new(at(t), frame(lt, &ip))).collect();
        out.push((name.to_string(), lt, records));
    }
    type Wrap = fn(&[u8]) -> Vec<u8>;
    let wrapped: [(&str, Wrap); 3] = [
        ("vlan", |ip| ethernet(&[0x8100], ip)),
        ("qinq", |ip| ethernet(&[0x88a8, 0x8100], ip)),
        ("pppoe", pppoe),
    ];
    for (name, wrap) in wrapped {
        let records =
            udp_pair(true, true).into_iter().map(|(t, ip)| Record::new(at(t), wrap(&ip))).collect();
        out.push((name.to_string(), 1, records));
    }
    // LINKTYPE_USER0: nothing xborder can decode.
    let records = udp_pair(true, false).into_iter().map(|(t, ip)| Record::new(at(t), ip)).collect();
    out.push(("unsupported-user0".to_string(), 147, records));
    out
}

/// `fragments.pcap`: fragmented UDP datagrams.
pub fn fragment_records() -> Vec<Record> {
    let mut p: Vec<(f64, Vec<u8>)> = Vec::new();
    // In order: 3000 payload bytes in 3 fragments.
    let d1 = ip_packet(LOCAL, "203.0.113.30", udp(5000, 4000), &[1; 3000]);
    for (i, f) in fragment_ipv4(&d1, 1480, 1).into_iter().enumerate() {
        p.push((0.001 * i as f64, f));
    }
    // Out of order: last, middle, first.
    let d2 = ip_packet(LOCAL, "203.0.113.30", udp(5001, 4000), &[2; 2000]);
    let mut f2 = fragment_ipv4(&d2, 800, 2);
    f2.reverse();
    for (i, f) in f2.into_iter().enumerate() {
        p.push((1.0 + 0.001 * i as f64, f));
    }
    // IPv6: 3000 bytes in 3 fragments.
    let d3 = ip_packet(LOCAL6, "2001:db8::30", udp(5002, 4000), &[3; 3000]);
    for (i, f) in fragment_ipv6(&d3, 1448, 3).into_iter().enumerate() {
        p.push((2.0 + 0.001 * i as f64, f));
    }
    // Two fragments whose first fragment was never captured.
    let d4 = ip_packet(LOCAL, "203.0.113.31", udp(5003, 4000), &[4; 2000]);
    for (i, f) in fragment_ipv4(&d4, 800, 9).into_iter().skip(1).enumerate() {
        p.push((3.0 + 0.001 * i as f64, f));
    }
    ethernet_records(p)
}

/// `snaplen.pcap`: the quickstart TCP session captured with a 64-byte
/// snapshot length.
pub fn snaplen_records() -> Vec<Record> {
    ethernet_records(tcp_session(0.0, (LOCAL, 50000), ("203.0.113.10", 443), 100, 1000))
        .into_iter()
        .map(|r| r.cut(64))
        .collect()
}

/// `timeouts.pcap`: idle timeouts, TCP close and port reuse.
pub fn timeout_records() -> Vec<Record> {
    let mut p: Vec<(f64, Vec<u8>)> = Vec::new();
    // UDP: packets at 0 s and 30 s share a flow; 100 s is 70 s idle: new flow.
    for t in [0.0, 30.0, 100.0] {
        p.push((t, ip_packet(LOCAL, "203.0.113.40", udp(6000, 6000), &[0; 10])));
    }
    // TCP closed with FIN, then a new SYN on the same 5-tuple 1 s later.
    p.extend(tcp_session(0.0, (LOCAL, 7000), ("203.0.113.41", 80), 10, 10));
    p.push((1.0, ip_packet(LOCAL, "203.0.113.41", tcp(7000, 80, "S"), &[])));
    p.push((1.01, ip_packet("203.0.113.41", LOCAL, tcp(80, 7000, "SA"), &[])));
    // TCP idle for 400 s (> 5 min): the late ACK starts a new flow.
    p.push((0.0, ip_packet(LOCAL, "203.0.113.42", tcp(7100, 80, "S"), &[])));
    p.push((0.01, ip_packet("203.0.113.42", LOCAL, tcp(80, 7100, "SA"), &[])));
    p.push((400.0, ip_packet(LOCAL, "203.0.113.42", tcp(7100, 80, "A"), &[])));
    // TCP reset: a packet 2 s later still belongs to it, one 20 s later not.
    p.push((0.0, ip_packet(LOCAL, "203.0.113.43", tcp(7200, 80, "S"), &[])));
    p.push((0.01, ip_packet("203.0.113.43", LOCAL, tcp(80, 7200, "R"), &[])));
    p.push((2.0, ip_packet(LOCAL, "203.0.113.43", tcp(7200, 80, "A"), &[])));
    p.push((20.0, ip_packet(LOCAL, "203.0.113.43", tcp(7200, 80, "A"), &[])));
    p.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    ethernet_records(p)
}

/// `formats/multi.pcapng`: two sections of opposite byte order, three
/// interfaces of different link types and timestamp resolutions, every
/// packet block type, and blocks to skip.
pub fn multi_pcapng() -> Vec<u8> {
    let v4 = udp_pair(true, false);
    let v6 = udp_pair(false, true);
    let mut n = Pcapng::new();
    n.section(false)
        .interface(1, None, None) // if 0: Ethernet, microseconds
        .interface(101, Some(9), None) // if 1: raw IP, nanoseconds
        .block(0x0000_0bad, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]) // custom block
        .enhanced(0, (BASE_NS / 1000) as u64, &ethernet(&[], &v4[0].1), 0)
        .block(0x0000_1234, &[0; 8]) // unknown block type
        .enhanced(1, BASE_NS as u64 + 100_000_000, &v4[1].1, 0)
        .simple(&ethernet(&[], &v6[0].1))
        .obsolete(1, BASE_NS as u64 + 1_100_000_000, &v6[1].1);
    // Fix the wire lengths written as 0 above: EPB original length = data.
    let mut bytes = std::mem::take(&mut n.out);
    patch_epb_wire_lengths(&mut bytes);
    n.out = bytes;
    // Section 2, big-endian: Linux cooked capture with 2^-20 s units and an
    // offset of 1000 s added to every timestamp.
    let t = ((BASE_NS / 1_000_000_000 + 5 - 1000) as u64) << 20;
    let p = ip_packet(LOCAL, "203.0.113.50", udp(9000, 9001), &[5; 50]);
    let framed = frame(113, &p);
    n.section(true).interface(113, Some(0x80 | 20), Some(1000)).enhanced(
        0,
        t,
        &framed,
        framed.len() as u32,
    );
    n.out
}

/// Sets the original length of little-endian EPBs written with 0 to their
/// captured length.
fn patch_epb_wire_lengths(bytes: &mut [u8]) {
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let ty = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if ty == 6 {
            let cap = bytes[at + 20..at + 24].to_vec();
            bytes[at + 24..at + 28].copy_from_slice(&cap);
        }
        at += len;
    }
}

/// A TLS ClientHello record naming `name` (no SNI extension if empty).
pub fn client_hello(name: &str) -> Vec<u8> {
    let mut ext = vec![0x00, 0x0a, 0, 4, 0, 2, 0, 0x1d]; // supported_groups
    if !name.is_empty() {
        let list_len = (name.len() + 3) as u16;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(list_len + 2).to_be_bytes());
        ext.extend_from_slice(&list_len.to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name.as_bytes());
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A DNS response for `query`: a CNAME to `canonical`, which has `ip`.
fn dns_response(query: &str, canonical: &str, ip: [u8; 4]) -> Vec<u8> {
    let name = |n: &str| -> Vec<u8> {
        let mut out = Vec::new();
        for label in n.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    };
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(&name(query));
    m.extend_from_slice(&[0, 1, 0, 1]);
    let target = name(canonical);
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 1, 0x2c]);
    m.extend_from_slice(&(target.len() as u16).to_be_bytes());
    let target_at = m.len() as u8;
    m.extend_from_slice(&target);
    m.extend_from_slice(&[0xc0, target_at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend_from_slice(&ip);
    m
}

/// TCP with an explicit sequence number.
pub fn tcp_seq(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    flags: &str,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = ip_packet(src, dst, tcp(sport, dport, flags), payload);
    // The builder writes sequence number 1000; set ours and fix nothing
    // else (xborder does not verify checksums).
    let ihl = usize::from(p[0] & 0x0f) * 4;
    p[ihl + 4..ihl + 8].copy_from_slice(&seq.to_be_bytes());
    p
}

/// `names.pcap`: names from DNS, TLS and HTTP.
pub fn names_records() -> Vec<Record> {
    let (c, dns) = (LOCAL, "198.51.100.53");
    let mut p: Vec<(f64, Vec<u8>)> = vec![
        (0.0, ip_packet(c, dns, udp(53001, 53), b"query")),
        (
            0.01,
            ip_packet(
                dns,
                c,
                udp(53, 53001),
                &dns_response("www.example-cn.test", "edge.example-cn.test", [203, 0, 113, 80]),
            ),
        ),
    ];
    // TLS to the answered address; the ClientHello in two segments, the
    // second sent first.
    let hello = client_hello("Storage.Example-CN.test");
    let (a, b) = hello.split_at(40);
    let (s, port) = ("203.0.113.80", 50100);
    p.push((1.0, tcp_seq(c, s, port, 443, "S", 5000, &[])));
    p.push((1.01, tcp_seq(s, c, 443, port, "SA", 9000, &[])));
    p.push((1.02, tcp_seq(c, s, port, 443, "A", 5001, &[])));
    p.push((1.03, tcp_seq(c, s, port, 443, "PA", 5001 + a.len() as u32, b)));
    p.push((1.04, tcp_seq(c, s, port, 443, "PA", 5001, a)));
    p.push((1.05, tcp_seq(s, c, 443, port, "PA", 9001, &[0x16, 3, 3, 0, 4, 2, 0, 0, 0])));
    // HTTP.
    let get = b"GET /f HTTP/1.1\r\nHost: Files.Example.test:8080\r\nAccept: */*\r\n\r\n";
    p.push((2.0, tcp_seq(c, "203.0.113.81", 50101, 80, "S", 100, &[])));
    p.push((2.01, tcp_seq("203.0.113.81", c, 80, 50101, "SA", 700, &[])));
    p.push((2.02, tcp_seq(c, "203.0.113.81", 50101, 80, "PA", 101, get)));
    // TLS without SNI, and a stream that is neither TLS nor HTTP.
    p.push((3.0, tcp_seq(c, "203.0.113.82", 50102, 443, "PA", 1, &client_hello(""))));
    p.push((3.1, tcp_seq(c, "203.0.113.83", 50103, 22, "PA", 1, b"SSH-2.0-OpenSSH_9.6\r\n")));
    ethernet_records(p)
}

/// A TLS connection: handshake, a ClientHello naming `sni`, `up` more
/// bytes in 1000-byte segments, `down` bytes back, FIN from both sides.
fn tls_session(
    t: f64,
    client: (&str, u16),
    server: (&str, u16),
    sni: &str,
    up: usize,
    down: usize,
) -> Vec<(f64, Vec<u8>)> {
    let ((c, cp), (s, sp)) = (client, server);
    let mut seq = 1u32;
    let mut p = vec![
        (t, tcp_seq(c, s, cp, sp, "S", 0, &[])),
        (t + 0.010, tcp_seq(s, c, sp, cp, "SA", 0, &[])),
        (t + 0.020, tcp_seq(c, s, cp, sp, "A", 1, &[])),
    ];
    let hello = client_hello(sni);
    p.push((t + 0.030, tcp_seq(c, s, cp, sp, "PA", seq, &hello)));
    seq += hello.len() as u32;
    let mut sent = 0;
    let mut at = t + 0.040;
    while sent < up {
        let n = (up - sent).min(1000);
        p.push((at, tcp_seq(c, s, cp, sp, "A", seq, &vec![b'u'; n])));
        seq += n as u32;
        sent += n;
        at += 0.001;
    }
    p.push((at, tcp_seq(s, c, sp, cp, "PA", 1, &vec![b'd'; down])));
    p.push((at + 0.010, tcp_seq(c, s, cp, sp, "FA", seq, &[])));
    p.push((at + 0.020, tcp_seq(s, c, sp, cp, "FA", 1 + down as u32, &[])));
    p.push((at + 0.030, tcp_seq(c, s, cp, sp, "A", seq + 1, &[])));
    p
}

/// `policy/gateway.pcap`: three local hosts of a gateway talking to
/// documentation addresses that `fixtures/policy/overlay.toml` maps to
/// test providers and countries (the expected findings are in
/// fixtures/README.md and the golden reports in fixtures/policy/).
pub fn gateway_records() -> Vec<Record> {
    let (a, b, c) = ("10.1.0.5", "10.1.0.6", "10.1.0.7");
    let mut p: Vec<(f64, Vec<u8>)> = vec![
        (0.0, ip_packet(a, "198.51.100.53", udp(53001, 53), b"query")),
        (
            0.01,
            ip_packet(
                "198.51.100.53",
                a,
                udp(53, 53001),
                &dns_response(
                    "bucket.cn-cloud.example",
                    "edge.cn-cloud.example",
                    [203, 0, 113, 10],
                ),
            ),
        ),
    ];
    // CN-controlled provider, hosted in the US, named by DNS and SNI.
    p.extend(tls_session(
        1.0,
        (a, 50001),
        ("203.0.113.10", 443),
        "bucket.cn-cloud.example",
        4500,
        800,
    ));
    // The same provider from another host, no names.
    p.extend(tcp_session(2.0, (b, 50002), ("203.0.113.11", 443), 1200, 300));
    // RU-controlled provider hosted in RU.
    p.extend(tcp_session(3.0, (a, 50003), ("203.0.113.140", 443), 800, 100));
    // An Iranian network without a provider, over HTTP.
    let get = b"GET / HTTP/1.1\r\nHost: portal.ir.example\r\n\r\n";
    p.push((4.0, tcp_seq(b, "192.0.2.10", 50004, 80, "S", 0, &[])));
    p.push((4.01, tcp_seq("192.0.2.10", b, 80, 50004, "SA", 0, &[])));
    p.push((4.02, tcp_seq(b, "192.0.2.10", 50004, 80, "PA", 1, get)));
    p.push((4.03, tcp_seq("192.0.2.10", b, 80, 50004, "PA", 1, &[b'd'; 500])));
    // US provider hosted in Germany: nothing to report.
    p.extend(tcp_session(5.0, (c, 50005), ("198.51.100.20", 443), 2000, 2000));
    // US provider hosted in Hong Kong.
    p.extend(tcp_session(6.0, (c, 50006), ("192.0.2.200", 443), 600, 600));
    // Hosted in Venezuela, over IPv6.
    p.extend(tcp_session(7.0, ("fd00::7", 50007), ("2001:db8::1", 443), 300, 300));
    // Inbound from the RU provider's range to SSH: not an upload.
    p.extend(tcp_session(8.0, ("203.0.113.141", 40000), (a, 22), 100, 100));
    ethernet_records(p)
}

/// `vendors.pcap`: devices and apps of catalogued vendors talking to
/// documentation addresses, each named one way (TLS SNI, HTTP Host, QUIC
/// SNI, a DNS answer), and names that only look like a vendor's. The
/// expected vendors and findings are in fixtures/README.md.
pub fn vendor_records() -> Vec<Record> {
    let (c, dns) = (LOCAL, "198.51.100.53");
    let mut p: Vec<(f64, Vec<u8>)> = vec![
        (0.0, ip_packet(c, dns, udp(53002, 53), b"query")),
        (
            0.01,
            ip_packet(
                dns,
                c,
                udp(53, 53002),
                &dns_response("api.io.mi.com", "mi-edge.example.test", [203, 0, 113, 23]),
            ),
        ),
    ];
    // A Hikvision camera's cloud, by TLS SNI.
    p.extend(tls_session(1.0, (c, 50201), ("203.0.113.20", 443), "api.hik-connect.com", 1500, 400));
    // Kaspersky's updater, by HTTP Host.
    let get = b"GET /diffs/bases/av/kdb/i386/kdb-i386-1211g.xml.dif HTTP/1.1\r\n\
                Host: dnl-03.geo.kaspersky.com\r\n\r\n";
    p.push((2.0, tcp_seq(c, "203.0.113.21", 50202, 80, "S", 0, &[])));
    p.push((2.01, tcp_seq("203.0.113.21", c, 80, 50202, "SA", 0, &[])));
    p.push((2.02, tcp_seq(c, "203.0.113.21", 50202, 80, "PA", 1, get)));
    p.push((2.03, tcp_seq("203.0.113.21", c, 80, 50202, "PA", 1, &[b'd'; 900])));
    // TikTok over QUIC: the client Initial names it, the server answers.
    let hello = client_hello("www.tiktok.com");
    let initial = super::quic::client_initial(&[0x5a; 8], &hello[5..]);
    p.push((3.0, ip_packet(c, "203.0.113.22", udp(50203, 443), &initial)));
    p.push((3.02, ip_packet("203.0.113.22", c, udp(443, 50203), &[0x40; 300])));
    // Xiaomi's IoT cloud: no name in the connection, the DNS answer names
    // the address.
    p.extend(tcp_session(4.0, (c, 50204), ("203.0.113.23", 443), 700, 200));
    // WeChat, Huawei's device cloud, DJI and Temu by SNI.
    p.extend(tls_session(5.0, (c, 50205), ("203.0.113.26", 443), "web.wechat.com", 300, 300));
    // Names that only look like a vendor's: another label, another domain.
    p.extend(tls_session(6.0, (c, 50206), ("203.0.113.24", 443), "www.nothuawei.com", 100, 100));
    p.extend(tls_session(
        7.0,
        (c, 50207),
        ("203.0.113.25", 443),
        "huawei.com.example.test",
        100,
        100,
    ));
    p.extend(tls_session(8.0, (c, 50208), ("203.0.113.27", 443), "cloud.huawei.com", 2500, 300));
    p.extend(tls_session(9.0, (c, 50209), ("203.0.113.28", 443), "www.dji.com", 800, 300));
    p.extend(tls_session(10.0, (c, 50210), ("203.0.113.29", 443), "www.temu.com", 400, 900));
    // No name at all: the vendor is unknown, nothing is reported.
    p.extend(tcp_session(11.0, (c, 50211), ("203.0.113.30", 443), 100, 100));
    // The other vendors of the catalogue: ZTE, Alibaba, Ant and the three
    // carriers by SNI, Hytera by HTTP Host, Dahua's P2P cloud by DNS.
    for (n, sni) in [
        (31, "www.ztedevices.com"),
        (34, "www.aliexpress.com"),
        (35, "mobilegw.alipay.com"),
        (36, "www.10086.cn"),
        (37, "www.189.cn"),
        (38, "www.10010.com"),
    ] {
        let t = 12.0 + f64::from(n - 31);
        let server = format!("203.0.113.{n}");
        p.extend(tls_session(t, (c, 50200 + n), (&server, 443), sni, 200, 200));
    }
    let get = b"GET /firmware HTTP/1.1\r\nHost: www.hytera.com\r\n\r\n";
    p.push((20.0, tcp_seq(c, "203.0.113.32", 50232, 80, "S", 0, &[])));
    p.push((20.01, tcp_seq("203.0.113.32", c, 80, 50232, "SA", 0, &[])));
    p.push((20.02, tcp_seq(c, "203.0.113.32", 50232, 80, "PA", 1, get)));
    p.push((21.0, ip_packet(c, dns, udp(53003, 53), b"query")));
    p.push((
        21.01,
        ip_packet(
            dns,
            c,
            udp(53, 53003),
            &dns_response("p2p.easy4ip.com", "dh-edge.example.test", [203, 0, 113, 33]),
        ),
    ));
    p.extend(tcp_session(22.0, (c, 50233), ("203.0.113.33", 443), 300, 100));
    ethernet_records(p)
}

/// `demo.pcap`: a laptop (192.168.1.10) behind a gateway, its DNS answered
/// by the local resolver (192.168.1.1), talking over TLS to real public
/// addresses of the kinds xborder is for; each connection named by a DNS
/// answer (with a CNAME) and its SNI. A file only: no packet of it is ever
/// sent. The expected findings are in fixtures/README.md.
pub const DEMO: &[(&str, &str, &str, [u8; 4], usize)] = &[
    // (SNI and queried name, canonical name, why it is here, address, bytes up)
    (
        "oss-us-west-1.aliyuncs.com",
        "us-west-1.oss.aliyuncs.com",
        "Alibaba Cloud in the US",
        [47, 88, 1, 1],
        48_000,
    ),
    (
        "cos.ap-guangzhou.myqcloud.com",
        "gz.cos.myqcloud.com",
        "Tencent Cloud in CN",
        [159, 75, 0, 1],
        12_000,
    ),
    (
        "storage.yandexcloud.net",
        "s3.storage.yandexcloud.net",
        "Yandex Cloud in RU",
        [51, 250, 0, 1],
        9_000,
    ),
    (
        "s3.eu-central-1.amazonaws.com",
        "s3-r-w.eu-central-1.amazonaws.com",
        "AWS in Frankfurt",
        [3, 120, 0, 1],
        30_000,
    ),
    ("www.google.com", "www3.l.google.com", "Google in the US", [142, 250, 74, 36], 3_000),
    (
        "api.hik-connect.com",
        "hik-connect-eu.amazonaws.example",
        "a Hikvision camera's cloud on AWS",
        [18, 184, 0, 1],
        6_000,
    ),
];

pub fn demo_records() -> Vec<Record> {
    let (c, resolver) = (LOCAL, "192.168.1.1");
    let mut p: Vec<(f64, Vec<u8>)> = Vec::new();
    for (n, (name, canonical, _, ip, up)) in DEMO.iter().enumerate() {
        let t = n as f64 * 10.0;
        let port = 51000 + n as u16;
        p.push((t, ip_packet(c, resolver, udp(port, 53), b"query")));
        p.push((
            t + 0.02,
            ip_packet(resolver, c, udp(53, port), &dns_response(name, canonical, *ip)),
        ));
        let server = format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
        p.extend(tls_session(t + 0.1, (c, 52000 + n as u16), (&server, 443), name, *up, 4_000));
    }
    ethernet_records(p)
}

/// `tunnels.pcap`: one flow inside each kind of tunnel (see
/// `fixtures/README.md` for what xborder must report).
pub fn tunnel_records() -> Vec<Record> {
    use super::encap::*;
    let (mirror, target) = ("192.0.2.50", "192.0.2.60");
    let (client, aws) = ("10.0.0.5", "54.86.237.188");
    let mut p: Vec<(f64, Vec<u8>)> = Vec::new();
    // A VXLAN mirror (VNI 100) of TLS to an AWS address: both directions
    // arrive from the mirror source.
    let hello = client_hello("api.mirror.example");
    let tls = [
        ip_packet(client, aws, tcp(50100, 443, "S"), &[]),
        ip_packet(aws, client, tcp(443, 50100, "SA"), &[]),
        ip_packet(client, aws, tcp(50100, 443, "A"), &[]),
        tcp_seq(client, aws, 50100, 443, "PA", 1001, &hello),
        ip_packet(aws, client, tcp(443, 50100, "PA"), &[b'd'; 400]),
        ip_packet(client, aws, tcp(50100, 443, "FA"), &[]),
        ip_packet(aws, client, tcp(443, 50100, "FA"), &[]),
        ip_packet(client, aws, tcp(50100, 443, "A"), &[]),
    ];
    for (i, inner) in tls.iter().enumerate() {
        p.push((i as f64 * 0.01, vxlan(mirror, target, 49152, 100, inner)));
    }
    // Two tenants (VNI 201 and 202) with the same inner 5-tuple.
    for (i, vni) in [201, 202].into_iter().enumerate() {
        let t = 1.0 + i as f64 * 0.1;
        let query = ip_packet("10.0.0.9", "203.0.113.9", udp(40000, 53), &[b'q'; 30]);
        let answer = ip_packet("203.0.113.9", "10.0.0.9", udp(53, 40000), &[b'r'; 60]);
        p.push((t, vxlan(mirror, target, 49153, vni, &query)));
        p.push((t + 0.01, vxlan(mirror, target, 49153, vni, &answer)));
    }
    // GENEVE with an option (VNI 7), both ways.
    let ping = ip_packet("10.1.0.1", "198.51.100.99", L4::Icmp, &[0; 32]);
    let pong = ip_packet("198.51.100.99", "10.1.0.1", L4::Icmp, &[0; 32]);
    p.push((2.0, geneve("192.0.2.70", "192.0.2.71", 7, &ping)));
    p.push((2.01, geneve("192.0.2.71", "192.0.2.70", 7, &pong)));
    // GRE with key 42.
    let up = ip_packet("10.2.0.1", "203.0.113.20", udp(5000, 5001), &[b'u'; 20]);
    let down = ip_packet("203.0.113.20", "10.2.0.1", udp(5001, 5000), &[b'd'; 20]);
    p.push((3.0, gre_key("198.51.100.1", "198.51.100.2", 42, &up)));
    p.push((3.01, gre_key("198.51.100.2", "198.51.100.1", 42, &down)));
    // ERSPAN II (session 5) and III (session 6) from one switch.
    let syn2 = ip_packet("10.3.0.1", "203.0.113.30", tcp(1111, 80, "S"), &[]);
    let syn3 = ip_packet("10.3.0.2", "203.0.113.31", tcp(2222, 80, "S"), &[]);
    p.push((4.0, erspan_ii("192.0.2.80", "192.0.2.81", 5, 1, &syn2)));
    p.push((4.01, erspan_iii("192.0.2.80", "192.0.2.81", 6, 2, &syn3)));
    // GTP-U with an extension header: TEID 0x1001 up, 0x2002 down.
    let q = ip_packet("10.45.0.2", "203.0.113.40", udp(3000, 53), &[b'q'; 30]);
    let a = ip_packet("203.0.113.40", "10.45.0.2", udp(53, 3000), &[b'a'; 50]);
    p.push((5.0, gtp_u("198.51.100.10", "198.51.100.11", 0x1001, &q)));
    p.push((5.01, gtp_u("198.51.100.11", "198.51.100.10", 0x2002, &a)));
    // 6in4 and 4in6.
    let v6 = ip_packet("2001:db8:90::1", "2001:db8:91::1", tcp(3333, 443, "S"), &[]);
    p.push((6.0, ip_proto("192.0.2.90", "198.51.100.90", 41, &v6)));
    let v4 = ip_packet("10.4.0.1", "203.0.113.50", udp(4444, 123), &[0; 48]);
    p.push((6.5, ip_proto("2001:db8:a::1", "2001:db8:b::1", 4, &v4)));
    // Teredo: to the server, and back with an origin indicator.
    let out6 = ip_packet("2001:0:c000:264::1", "2001:db8:100::1", L4::Icmp, &[0; 8]);
    let in6 = ip_packet("2001:db8:100::1", "2001:0:c000:264::1", L4::Icmp, &[0; 8]);
    p.push((7.0, teredo(LOCAL, "192.0.2.100", true, false, &out6)));
    p.push((7.01, teredo("192.0.2.100", LOCAL, false, true, &in6)));
    // GRE (key 1) carrying GRE (key 2) carrying ICMP.
    let icmp = ip_packet("10.6.0.1", "203.0.113.60", L4::Icmp, &[0; 16]);
    let middle = gre_key("10.5.0.1", "10.5.0.2", 2, &icmp);
    p.push((8.0, gre_key("198.51.100.20", "198.51.100.21", 1, &middle)));
    // A truncated VXLAN header: an anomaly, the outer flow still counted.
    p.push((9.0, ip_packet(mirror, target, udp(49154, 4789), &[0x08, 0, 0])));
    ethernet_records(p)
}

/// Every fixture file: path below `fixtures/` and contents.
pub fn all() -> Vec<(String, Vec<u8>)> {
    let quick = pcap(PcapFormat::new(1), &quickstart_records());
    let mut files = vec![
        ("quickstart.pcap".to_string(), quick.clone()),
        ("fragments.pcap".to_string(), pcap(PcapFormat::new(1), &fragment_records())),
        (
            "snaplen.pcap".to_string(),
            pcap(PcapFormat { snaplen: 64, ..PcapFormat::new(1) }, &snaplen_records()),
        ),
        ("timeouts.pcap".to_string(), pcap(PcapFormat::new(1), &timeout_records())),
        ("names.pcap".to_string(), pcap(PcapFormat::new(1), &names_records())),
        ("policy/gateway.pcap".to_string(), pcap(PcapFormat::new(1), &gateway_records())),
        ("vendors.pcap".to_string(), pcap(PcapFormat::new(1), &vendor_records())),
        ("demo.pcap".to_string(), pcap(PcapFormat::new(1), &demo_records())),
        ("tunnels.pcap".to_string(), pcap(PcapFormat::new(1), &tunnel_records())),
        (
            "formats/quickstart-ns-be.pcap".to_string(),
            pcap(
                PcapFormat { nanos: true, big_endian: true, ..PcapFormat::new(1) },
                &quickstart_records(),
            ),
        ),
        (
            "formats/quickstart-modified.pcap".to_string(),
            pcap(PcapFormat { modified: true, ..PcapFormat::new(1) }, &quickstart_records()),
        ),
        ("formats/quickstart.pcap.gz".to_string(), gzip(&quick)),
        ("formats/multi.pcapng".to_string(), multi_pcapng()),
        ("formats/multi.pcapng.gz".to_string(), gzip(&multi_pcapng())),
    ];
    for (name, lt, records) in link_type_fixtures() {
        files.push((format!("linktypes/{name}.pcap"), pcap(PcapFormat::new(lt), &records)));
    }
    // Damaged: the last record of quickstart.pcap cut in the middle.
    files.push(("damaged/truncated-record.pcap".to_string(), quick[..quick.len() - 20].to_vec()));
    // Damaged: the trailing length of the seventh block (the second EPB) altered.
    let mut bad = multi_pcapng();
    let mut at = 0;
    for _ in 0..6 {
        at += u32::from_le_bytes(bad[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    let len = u32::from_le_bytes(bad[at + 4..at + 8].try_into().unwrap()) as usize;
    bad[at + len - 4] ^= 0x40;
    files.push(("damaged/bad-trailer.pcapng".to_string(), bad));
    files
}
