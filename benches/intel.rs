//! `cargo bench --bench intel`: how long loading the built-in intelligence
//! takes, and how long one uncached lookup over all layers takes (overlay,
//! provider ranges, ASN, geo-IP), over random public addresses and over
//! addresses inside provider ranges; for the built-in data (its layers
//! cached in the data directory at first use, used in place) and for the
//! same data merged at load (the path of a user's own database). Starts
//! are timed as the user meets them: `xborder lookup` run as a process,
//! the first in an empty data directory (merge and cache), then with the
//! cache, then with a directory that cannot hold it.

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

/// The reference of this run: one random read that waits on the one
/// before, in 64 MB (a pointer chase through one random cycle). On these
/// shared machines it moves with the load on the host, and so do lookups;
/// their ratio to it does not.
fn dependent_read_ns() -> f64 {
    let n = 16 << 20;
    // Sattolo's shuffle: one cycle through every slot.
    let mut next: Vec<u32> = (0..n as u32).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        next.swap(i, (seed % i as u64) as usize);
    }
    let steps = 2_000_000;
    let mut at = 0u32;
    let t = Instant::now();
    for _ in 0..steps {
        at = next[at as usize];
    }
    black_box(at);
    t.elapsed().as_nanos() as f64 / steps as f64
}

/// Runs `xborder lookup --data-dir DIR 8.8.8.8` `n` times; the median.
fn start(data_dir: &std::path::Path, n: usize) -> Duration {
    let runs = (0..n)
        .map(|_| {
            let t = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_xborder"))
                .args(["lookup", "--data-dir", data_dir.to_str().expect("utf-8"), "8.8.8.8"])
                .output()
                .expect("run xborder");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            t.elapsed()
        })
        .collect();
    median(runs)
}

fn print_starts() {
    let dir = std::env::temp_dir().join(format!("xborder-bench-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let first = start(&dir, 1);
    let cached = start(&dir, 15);
    let merging = start(&dir.join("missing"), 9);
    println!(
        "start (xborder lookup, built-in data): first run, merging and caching {:.1} ms; \
         with the cache: median {:.1} ms over 15 runs; without a writable data directory: \
         median {:.1} ms over 9 runs",
        ms(first),
        ms(cached),
        ms(merging)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Loads `sources` `n` times and prints the median.
fn print_load(what: &str, sources: &IntelSources, n: usize) {
    let loads: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(sources.load().expect("load"));
            t.elapsed()
        })
        .collect();
    println!("load {what}: median {:.1} ms over {n} loads", median(loads).as_secs_f64() * 1e3);
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    print_starts();
    // In one process the cache is read once, then its bytes are reused.
    let cache_dir =
        std::env::temp_dir().join(format!("xborder-bench-cache-{}", std::process::id()));
    std::fs::create_dir_all(&cache_dir).expect("temp dir");
    let sources = IntelSources { data_dir: Some(cache_dir.clone()), ..IntelSources::default() };
    sources.load().expect("load");
    print_load("built-in data, in a process that read its cache", &sources, 9);
    let merging = IntelSources {
        country_db: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/country.mmdb").into()),
        ..sources.clone()
    };
    print_load("the same data merged at load (as with --geoip-country)", &merging, 5);

    // Ranges as `db update` leaves them (here the shipped ones, copied).
    let data_dir = std::env::temp_dir().join(format!("xborder-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir).expect("temp dir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/provider-ranges.csv.gz"),
        data_dir.join("provider-ranges.csv.gz"),
    )
    .expect("copy ranges");
    let refreshed = IntelSources { data_dir: Some(data_dir.clone()), ..IntelSources::default() };
    print_load("with ranges refreshed by db update", &refreshed, 5);
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(&cache_dir);

    let db = sources.load().expect("load");
    let merged = merging.load().expect("load");
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
    // Both databases first answer other addresses, so that every page of
    // their tables is mapped (the compiled tables are pages of the binary,
    // mapped when first touched): the figures are of lookups, not of page
    // faults. Their caches are cold again after the 100,000 addresses below.
    for ip in support::random_public_addresses(0x0ddb_a11c_0ffe_e000, 300_000) {
        black_box(db.lookup(ip));
        black_box(merged.lookup(ip));
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
        // One database after the other: alternating them batch by batch
        // would have each evict the other's tables from the caches.
        let [built_in, at_load] = [&db, &merged].map(|db| {
            ips.chunks(batch)
                .map(|chunk| {
                    let t = Instant::now();
                    for ip in chunk {
                        black_box(db.lookup(black_box(*ip)));
                    }
                    t.elapsed() / chunk.len() as u32
                })
                .collect::<Vec<_>>()
        });
        let reference = dependent_read_ns();
        let (built_in, at_load) = (median(built_in).as_nanos(), median(at_load).as_nanos());
        println!(
            "uncached lookup, {name} ({} addresses): median {built_in} ns per lookup ({:.2}× a dependent read from 64 MB, {reference:.0} ns now; median of batches of {batch}); merged at load: {at_load} ns",
            ips.len(),
            built_in as f64 / reference,
        );
    }
}
