//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/TARGET/`)
//! from the project's fixtures, its rule packs and, when present, the
//! shared corpus of real captures: whole capture files, frames with their
//! link type, and the DNS, TLS, QUIC and HTTP payloads in them.
//! `scripts/fuzz` runs it; `cargo run --example fuzz_seeds -- [DIR...]`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use xborder::capture::{expand_inputs, open_capture, Opened};
use xborder::decode::{decode, Decoded};

/// Seeds kept per target and input file: enough variety, a corpus that
/// starts in seconds.
const PER_FILE: usize = 64;

struct Seeds {
    root: PathBuf,
    written: HashSet<String>,
}

impl Seeds {
    fn add(&mut self, target: &str, bytes: &[u8]) {
        let name = xborder::intel::sha256_hex(bytes)[..16].to_owned();
        if self.written.insert(format!("{target}/{name}")) {
            let dir = self.root.join(target);
            std::fs::create_dir_all(&dir).expect("create the corpus directory");
            std::fs::write(dir.join(name), bytes).expect("write a seed");
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs.push(root.join("fixtures"));
        let shared = root.join("../shared/corpus");
        if shared.is_dir() {
            dirs.push(shared);
        }
    }
    let mut seeds = Seeds { root: root.join("fuzz/corpus"), written: HashSet::new() };
    for entry in std::fs::read_dir(root.join("rules")).expect("rules/") {
        let path = entry.expect("rules/ entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            seeds.add("rules", &std::fs::read(&path).expect("read a rule pack"));
        }
    }
    let expanded = expand_inputs(&dirs);
    for input in &expanded.inputs {
        if input.path.extension().is_some_and(|e| e == "toml") {
            seeds.add("overlay", &std::fs::read(&input.path).expect("read an overlay"));
            continue;
        }
        let size = std::fs::metadata(&input.path).map_or(u64::MAX, |m| m.len());
        let Ok(Opened::Reader(mut reader)) = open_capture(input) else { continue };
        if size <= 1 << 20 {
            seeds.add("capture", &std::fs::read(&input.path).expect("read a capture"));
        }
        let mut kept = [0usize; 5];
        while let Ok(Some(p)) = reader.next_packet() {
            let mut frame = p.link_type.0.to_be_bytes().to_vec();
            frame.extend_from_slice(p.data);
            let Decoded::Ip(ip, _) = decode(p.link_type, p.data, p.wire_len) else { continue };
            let payload = ip.payload;
            let ports = ip.ports.unwrap_or((0, 0));
            let on = |port: u16| ports.0 == port || ports.1 == port;
            let target = match ip.protocol {
                17 if on(53) || on(5353) => Some((1, "dns")),
                17 if on(443) => Some((2, "quic")),
                6 if payload.first() == Some(&0x16) => Some((3, "tls")),
                6 if payload.starts_with(b"GET ") || payload.starts_with(b"POST ") => {
                    Some((4, "http"))
                }
                _ => None,
            };
            if kept[0] < PER_FILE {
                kept[0] += 1;
                seeds.add("decode", &frame);
            }
            if let Some((slot, target)) = target.filter(|_| !payload.is_empty()) {
                if kept[slot] < PER_FILE {
                    kept[slot] += 1;
                    seeds.add(target, payload);
                }
            }
        }
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for name in &seeds.written {
        let target = name.split('/').next().unwrap_or("").to_owned();
        match counts.iter_mut().find(|(t, _)| *t == target) {
            Some((_, n)) => *n += 1,
            None => counts.push((target, 1)),
        }
    }
    counts.sort();
    for (target, n) in counts {
        println!("{target}: {n} seeds");
    }
}
