//! A minimal MaxMind DB writer for tests: an IPv4 or IPv6 search tree with
//! 32-bit records over a few networks, each pointing to a record built from
//! JSON (objects, strings, unsigned integers). Enough to make files in the
//! schemas of GeoLite2/GeoIP2, DB-IP, IPinfo lite and ip-location-db.

use std::net::IpAddr;

use serde_json::Value;

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    assert!(size < 285, "this writer handles values under 285 bytes");
    let small = size.min(29) as u8;
    if kind <= 7 {
        out.push((kind << 5) | small);
    } else {
        out.push(small);
        out.push(kind - 7);
    }
    // Sizes from 29 on take one more byte after the type bytes.
    if size >= 29 {
        out.push((size - 29) as u8);
    }
}

fn uint(out: &mut Vec<u8>, kind: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

/// Encodes a JSON value as MMDB data.
pub fn encode(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) => uint(out, 6, n.as_u64().expect("unsigned")),
        Value::Object(m) => {
            control(out, 7, m.len());
            for (k, v) in m {
                encode(out, &Value::String(k.clone()));
                encode(out, v);
            }
        }
        Value::Array(a) => {
            control(out, 11, a.len());
            for v in a {
                encode(out, v);
            }
        }
        other => panic!("cannot encode {other}"),
    }
}

/// Writes a database of `ip_version` 4 or 6 whose `networks` map to
/// `records` (JSON), with the given `database_type`.
pub fn write(ip_version: u16, database_type: &str, networks: &[(&str, Value)]) -> Vec<u8> {
    let bits = if ip_version == 4 { 32 } else { 128 };
    // Nodes: [left, right] as either a node index or a leaf (record index).
    #[derive(Clone, Copy)]
    enum Slot {
        Empty,
        Node(usize),
        Leaf(usize),
    }
    let mut nodes: Vec<[Slot; 2]> = vec![[Slot::Empty, Slot::Empty]];
    for (i, (cidr, _)) in networks.iter().enumerate() {
        let net: ipnet::IpNet = cidr.parse().unwrap();
        let addr: u128 = match (net.network(), ip_version) {
            (IpAddr::V4(a), 4) => u128::from(u32::from(a)) << 96,
            (IpAddr::V4(a), _) => u128::from(u32::from(a)),
            (IpAddr::V6(a), _) => u128::from(a),
        };
        let len = if ip_version == 6 && net.network().is_ipv4() {
            96 + usize::from(net.prefix_len())
        } else {
            usize::from(net.prefix_len())
        };
        let mut node = 0;
        for depth in 0..len {
            let bit = ((addr >> (127 - depth)) & 1) as usize;
            if depth + 1 == len {
                nodes[node][bit] = Slot::Leaf(i);
            } else {
                node = match nodes[node][bit] {
                    Slot::Node(n) => n,
                    _ => {
                        nodes.push([Slot::Empty, Slot::Empty]);
                        let n = nodes.len() - 1;
                        nodes[node][bit] = Slot::Node(n);
                        n
                    }
                };
            }
        }
    }
    let _ = bits;
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for (_, record) in networks {
        offsets.push(data.len());
        encode(&mut data, record);
    }
    let count = nodes.len() as u32;
    let mut out = Vec::new();
    for node in &nodes {
        for slot in node {
            let v = match *slot {
                Slot::Empty => count,
                Slot::Node(n) => n as u32,
                Slot::Leaf(i) => count + 16 + offsets[i] as u32,
            };
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    let meta = serde_json::json!({
        "binary_format_major_version": 2,
        "binary_format_minor_version": 0,
        "database_type": database_type,
        "description": {"en": "xborder test database"},
        "languages": ["en"],
        "record_size": 32,
    });
    let mut m = Vec::new();
    // Metadata with the integer types the format requires.
    control(&mut m, 7, 9);
    for (k, v) in meta.as_object().unwrap() {
        encode(&mut m, &Value::String(k.clone()));
        match k.as_str() {
            "binary_format_major_version" | "binary_format_minor_version" | "record_size" => {
                uint(&mut m, 5, v.as_u64().unwrap())
            }
            _ => encode(&mut m, v),
        }
    }
    encode(&mut m, &Value::String("build_epoch".into()));
    uint(&mut m, 9, 1_700_000_000);
    encode(&mut m, &Value::String("ip_version".into()));
    uint(&mut m, 5, u64::from(ip_version));
    encode(&mut m, &Value::String("node_count".into()));
    uint(&mut m, 6, u64::from(count));
    out.extend_from_slice(&m);
    out
}
