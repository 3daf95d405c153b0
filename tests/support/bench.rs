//! What the benchmarks share: their settings from the environment, medians
//! and the generated capture they measure.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The generated capture of `packets` and `flows` in target/xborder-bench
/// (made once; the generator's version is part of the name, so a change
/// makes a new file): a gateway's traffic ([`super::traffic`]).
pub fn capture(packets: u64, flows: u64) -> PathBuf {
    generated(packets, flows, false)
}

/// The same traffic as [`capture`], every frame inside a VXLAN mirror.
pub fn vxlan_capture(packets: u64, flows: u64) -> PathBuf {
    generated(packets, flows, true)
}

fn generated(packets: u64, flows: u64, vxlan_mirror: bool) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/xborder-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let kind = if vxlan_mirror { "vxlan-" } else { "" };
    let path = dir.join(format!("gateway-v1-{kind}{packets}p-{flows}f.pcap"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let out = BufWriter::with_capacity(1 << 20, File::create(&tmp).unwrap());
        let g = super::traffic::generate(packets, flows, vxlan_mirror, out).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!("generated {}: {} packets, {} bytes", path.display(), g.packets, g.bytes);
    }
    path
}

/// A SYN flood of `packets` packets from random sources (every packet a
/// flow) in target/xborder-bench, made once.
pub fn flood_capture(packets: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/xborder-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("syn-flood-v1-{packets}p.pcap"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        super::traffic::syn_flood(&tmp, packets);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// `from` (a pcap) cut into `parts` consecutive files of about as many
/// packets each, as a rotating capture writes them, in a directory beside
/// it (made once).
pub fn rotated(from: &Path, parts: usize) -> PathBuf {
    let dir = from.with_extension(format!("rotated-{parts}"));
    if dir.exists() {
        return dir;
    }
    let data = std::fs::read(from).unwrap();
    let (header, mut rest) = data.split_at(24);
    let mut records = Vec::new();
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (record, tail) = rest.split_at(16 + caplen);
        records.push(record);
        rest = tail;
    }
    let tmp = dir.with_extension("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for (i, chunk) in records.chunks(records.len().div_ceil(parts)).enumerate() {
        let mut out = header.to_vec();
        chunk.iter().for_each(|r| out.extend_from_slice(r));
        std::fs::write(tmp.join(format!("part-{i}.pcap")), out).unwrap();
    }
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}
