//! `cargo bench --bench intel`: how long loading the built-in intelligence
//! takes, and how long one uncached lookup over all layers takes (overlay,
//! provider ranges, ASN, geo-IP), over random public addresses and over
//! addresses inside provider ranges.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use xborder::intel::IntelSources;

#[path = "../tests/support/mod.rs"]
mod support;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sources = IntelSources { data_dir: Some("/nonexistent".into()), ..IntelSources::default() };
    let loads: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            black_box(sources.load().expect("load"));
            t.elapsed()
        })
        .collect();
    println!("load built-in data: median {:.1} ms over 9 loads", median(loads).as_secs_f64() * 1e3);

    let db = sources.load().expect("load");
    let public = support::random_public_addresses(0x1234_5678_9abc_def1, 100_000);
    // Addresses inside provider ranges: the first addresses of the feeds'
    // prefixes, shuffled.
    let mut cloud: Vec<IpAddr> =
        public.iter().copied().filter(|ip| db.ranges.lookup(*ip).is_some()).collect();
    for ip in ["3.5.140.1", "47.88.1.1", "20.42.0.1", "34.35.0.1", "129.80.0.1", "104.16.0.1"] {
        cloud.push(ip.parse().unwrap());
    }
    let repeat: usize =
        std::env::var("XBORDER_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    for _ in 1..repeat {
        for ip in public.iter().take(1000) {
            black_box(db.lookup(black_box(*ip)));
        }
    }
    // A gateway's endpoints recur: 1,000 distinct addresses looked up over
    // and over (no memoisation, but the CPU caches are warm).
    let warm: Vec<IpAddr> = public.iter().take(1000).copied().cycle().take(100_000).collect();
    for (name, ips) in [
        ("random public addresses, cold caches", &public),
        ("addresses in provider ranges", &cloud),
        ("a working set of 1,000 public addresses, warm caches", &warm),
    ] {
        let batch = 1000.min(ips.len());
        let mut per_lookup = Vec::new();
        for chunk in ips.chunks(batch) {
            let t = Instant::now();
            for ip in chunk {
                black_box(db.lookup(black_box(*ip)));
            }
            per_lookup.push(t.elapsed() / chunk.len() as u32);
        }
        println!(
            "uncached lookup, {name} ({} addresses): median {} ns per lookup (median of batches of {batch})",
            ips.len(),
            median(per_lookup).as_nanos()
        );
    }
}
