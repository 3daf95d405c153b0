//! Writes a large deterministic capture for benchmarks and experiments.
//!
//! `cargo run --release --example gen_capture -- PACKETS FLOWS FILE
//! [--documentation]` (defaults: 1000000 100000 mix.pcap); with
//! `--documentation` every address is a documentation address, for
//! captures that are replayed onto a (virtual) network; with `--gateway`
//! the benchmark's gateway traffic (tests/support/traffic.rs) instead;
//! `--vxlan` puts every frame inside a VXLAN mirror.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs::File;
use std::io::BufWriter;

fn main() -> std::io::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let documentation_only = all.iter().any(|a| a == "--documentation");
    let vxlan_mirror = all.iter().any(|a| a == "--vxlan");
    let gateway = all.iter().any(|a| a == "--gateway");
    let args: Vec<&String> = all.iter().filter(|a| !a.starts_with("--")).collect();
    let num = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let mix = support::generator::Mix {
        packets: num(0, 1_000_000),
        flows: num(1, 100_000),
        documentation_only,
        vxlan_mirror,
    };
    let path = args.get(2).map_or("mix.pcap", |s| s.as_str());
    let out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let g = if gateway {
        support::traffic::generate(mix.packets, mix.flows, vxlan_mirror, out)?
    } else {
        support::generator::generate(mix, out)?
    };
    println!("{path}: {} packets, {} bytes, {} flows", g.packets, g.bytes, g.flows);
    Ok(())
}
