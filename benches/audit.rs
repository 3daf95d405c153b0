//! `cargo bench --bench audit`: xborder against tcpdump on the same large
//! generated captures, in the same run, reported as ratios of wall times
//! (these machines are shared and noisy; absolute times are not comparable
//! between runs).
//!
//! The capture is a gateway's traffic (tests/support/traffic.rs: the
//! shares of TCP, DNS, QUIC, NTP, ICMP and IPv6 of the pipeline issue's
//! external captures, remotes in clouds and restricted countries, about
//! 1.3 findings per flow with the shipped rule packs). Every round runs
//! `tcpdump -n -r FILE -w /dev/null` and each xborder variant alternately;
//! the figures are medians. What it reports:
//!
//! - the default audit (`xborder audit FILE -o /dev/null`: names,
//!   intelligence, the shipped rule packs, the text report) on every core,
//!   and both pinned to one core (`taskset -c 0`);
//! - `--format jsonl --flows -o /dev/null`, and what each stage adds to it
//!   (names, intelligence, the rule packs);
//! - the same traffic inside a VXLAN mirror (AWS Traffic Mirroring);
//! - a capture ten times larger: its time as a multiple of the first's,
//!   and its peak memory (GNU time's maximum RSS);
//! - bytes per live flow: a SYN flood's peak memory beyond a tiny run's,
//!   per flow alive at once.
//!
//! Environment: `XBORDER_BENCH_PACKETS` (default 1000000),
//! `XBORDER_BENCH_FLOWS` (100000), `XBORDER_BENCH_ROUNDS` (7),
//! `XBORDER_BENCH_LARGE` (1: also the ten times larger capture, ~6 GB in
//! target/xborder-bench; 0: not), `XBORDER_BENCH_ARGS` (extra arguments
//! for every xborder run, e.g. to compare options).

#[path = "../tests/support/mod.rs"]
mod support;

use support::bench::{capture, env_u64, flood_capture, median, rotated, vxlan_capture};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
    let elapsed = start.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    elapsed
}

/// Maximum resident set size in KiB, from GNU time, if installed.
fn peak_rss_kib(cmd: &[&str]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .args(cmd)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()
}

/// `cmd` with its arguments, pinned to the first core when `pinned`.
fn command(pinned: bool, program: &str, args: &[&str]) -> Command {
    if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", program]).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

/// The most flows alive at once, from a text report.
fn live_flows(report: &str) -> u64 {
    report
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("at most ")?.split(' ').next().map(|n| n.replace(',', ""))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --benches` there is
    // nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let packets = env_u64("XBORDER_BENCH_PACKETS", 1_000_000);
    let flows = env_u64("XBORDER_BENCH_FLOWS", 100_000);
    let rounds = env_u64("XBORDER_BENCH_ROUNDS", 7).max(1);
    let large = env_u64("XBORDER_BENCH_LARGE", 1) != 0;
    let extra = std::env::var("XBORDER_BENCH_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let xborder = env!("CARGO_BIN_EXE_xborder");
    let have_tcpdump = Command::new("tcpdump").arg("--version").output().is_ok();
    if !have_tcpdump {
        println!("tcpdump not installed: no reference (apt-get install tcpdump)");
        return;
    }
    let file = capture(packets, flows);
    let file_str = file.to_str().unwrap();
    // The stages: an empty rule pack so that each measures one stage.
    let no_rules = file.with_file_name("no-rules.toml");
    std::fs::write(
        &no_rules,
        "[pack]\nname = \"none\"\ndescription = \"no rules\"\nsource = \"bench\"\nversion = \"1\"\n",
    )
    .unwrap();
    let no_rules = no_rules.to_str().unwrap();
    let quiet = ["-o", "/dev/null", "-q", "--fail-on", "none"];
    let mut default = vec!["audit", file_str];
    default.extend(quiet);
    default.extend(&extra);
    let mut jsonl = default.clone();
    jsonl.extend(["--format", "jsonl", "--flows"]);
    let mut with_intel = jsonl.clone();
    with_intel.extend(["--rules", no_rules]);
    let mut with_names = with_intel.clone();
    with_names.push("--no-intel");
    let mut bare = with_names.clone();
    bare.push("--no-names");
    let vxlan = vxlan_capture(packets, flows);
    let vxlan_str = vxlan.to_str().unwrap();
    let mut vxlan_default = default.clone();
    vxlan_default[1] = vxlan_str;
    // Warm the page cache so every command reads from memory.
    std::fs::read(&file).map(drop).unwrap();
    std::fs::read(&vxlan).map(drop).unwrap();

    // (name, capture for tcpdump, pinned, xborder arguments)
    let variants: Vec<(&str, &str, bool, &Vec<&str>)> = vec![
        ("default (text report), every core", file_str, false, &default),
        ("default, both pinned to one core", file_str, true, &default),
        ("--format jsonl --flows", file_str, false, &jsonl),
        ("  jsonl, flows only (--no-intel --no-names, no rules)", file_str, false, &bare),
        ("  jsonl, with names (--no-intel, no rules)", file_str, false, &with_names),
        ("  jsonl, with names and intelligence (no rules)", file_str, false, &with_intel),
        ("default, inside a VXLAN mirror", vxlan_str, false, &vxlan_default),
    ];
    let mut times = vec![Vec::new(); variants.len()];
    let mut refs = vec![Vec::new(); variants.len()];
    let tcpdump = |pinned: bool, f: &str| {
        time(&mut command(pinned, "tcpdump", &["-n", "-r", f, "-w", "/dev/null"]))
    };
    for _ in 0..rounds {
        for (i, (_, capture, pinned, args)) in variants.iter().enumerate() {
            refs[i].push(tcpdump(*pinned, capture));
            times[i].push(time(&mut command(*pinned, xborder, args)));
        }
    }
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "capture: {} ({packets} packets, {flows} flows, {:.0} MB), {rounds} rounds",
        file.display(),
        size as f64 / 1e6
    );
    let mut medians = Vec::new();
    for (i, (name, _, _, _)) in variants.iter().enumerate() {
        let (xb, r) = (median(times[i].clone()), median(refs[i].clone()));
        medians.push(xb);
        println!(
            "{name}: {:.3} s, tcpdump {:.3} s, ratio to tcpdump {:.2}, {:.2} M packets/s",
            xb.as_secs_f64(),
            r.as_secs_f64(),
            xb.as_secs_f64() / r.as_secs_f64(),
            packets as f64 / xb.as_secs_f64() / 1e6
        );
    }
    // Each stage's cost also as the median of the rounds' own ratios: the
    // runs of a round are seconds apart, so a busy spell moves both.
    let paired = |a: usize, b: usize| {
        let mut r: Vec<f64> = times[a]
            .iter()
            .zip(&times[b])
            .map(|(a, b)| (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0)
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    println!("names add {:+.1}% to the flows-only jsonl run", paired(3, 4));
    println!("intelligence adds {:+.1}% to the run with names", paired(4, 5));
    println!("the shipped rule packs and their finding records add {:+.1}%", paired(5, 2));

    // Ten times the packets and flows: time against the default run, and
    // peak memory.
    if large {
        let big = capture(packets * 10, flows * 10);
        let big_str = big.to_str().unwrap();
        let mut big_default = default.clone();
        big_default[1] = big_str;
        let big_rounds = rounds.div_ceil(2);
        let (mut small_t, mut big_t, mut big_ref) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..big_rounds {
            small_t.push(time(&mut command(false, xborder, &default)));
            big_t.push(time(&mut command(false, xborder, &big_default)));
            big_ref.push(tcpdump(false, big_str));
        }
        let (s, b, r) = (median(small_t), median(big_t), median(big_ref));
        println!(
            "ten times larger ({} packets, {} flows): default {:.3} s, {:.2}x the {packets}-packet run, ratio to tcpdump {:.2} ({big_rounds} rounds)",
            packets * 10,
            flows * 10,
            b.as_secs_f64(),
            b.as_secs_f64() / s.as_secs_f64(),
            b.as_secs_f64() / r.as_secs_f64()
        );
        match peak_rss_kib(&[&[xborder][..], &big_default].concat()) {
            Some(kib) => println!("  peak RSS {:.0} MiB", kib as f64 / 1024.0),
            None => println!("  GNU time not installed: no memory figure (apt-get install time)"),
        }
    }
    match peak_rss_kib(&[&[xborder][..], &default].concat()) {
        Some(kib) => println!(
            "default run on the {packets}-packet capture: peak RSS {:.0} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("GNU time not installed: no memory figures (apt-get install time)"),
    }

    // Bytes per live flow: a flood of a million flows, all alive at the
    // end (the default --max-flows is a million), flows only.
    let flood = flood_capture(1_000_000);
    let flood_str = flood.to_str().unwrap();
    let tiny = capture(1000, 100);
    let flood_args = ["audit", flood_str, "--no-intel", "--no-names", "-q", "--fail-on", "none"];
    let report = Command::new(xborder).args(flood_args).output().unwrap();
    let live = live_flows(&String::from_utf8_lossy(&report.stdout));
    let mut tiny_args = flood_args;
    tiny_args[1] = tiny.to_str().unwrap();
    if let (Some(big), Some(small)) = (
        peak_rss_kib(&[&[xborder][..], &flood_args[..], &["-o", "/dev/null"]].concat()),
        peak_rss_kib(&[&[xborder][..], &tiny_args[..], &["-o", "/dev/null"]].concat()),
    ) {
        println!(
            "SYN flood ({}): peak RSS {big} KiB ({small} KiB on a tiny capture), at most {live} flows alive at once: {:.0} bytes per live flow",
            flood.display(),
            (big.saturating_sub(small) * 1024) as f64 / live.max(1) as f64
        );
    }
    // A directory of 8 rotated captures (the 1M-packet one cut in 8): one
    // core (`--threads 1` keeps the audit to one) against two, with the
    // default report.
    let dir = rotated(&file, 8);
    let dir_str = dir.to_str().unwrap();
    let threads = |n: &'static str| {
        let mut args = default.clone();
        args[1] = dir_str;
        args.extend(["--threads", n]);
        args
    };
    let (one, two) = (threads("1"), threads("2"));
    let (mut t1, mut t2) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        t1.push(time(&mut command(false, xborder, &one)));
        t2.push(time(&mut command(false, xborder, &two)));
    }
    let (t1, t2) = (median(t1), median(t2));
    println!(
        "a directory of 8 captures ({dir_str}): --threads 1 {:.3} s, --threads 2 {:.3} s, {:.2}x faster with 2",
        t1.as_secs_f64(),
        t2.as_secs_f64(),
        t1.as_secs_f64() / t2.as_secs_f64()
    );
}
