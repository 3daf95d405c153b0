//! `cargo bench --bench audit`: xborder against tcpdump on the same large
//! generated capture, in the same run, reported as a ratio of wall times
//! (these machines are shared and noisy; absolute times are not comparable
//! between runs).
//!
//! For each round it runs `tcpdump -n -r FILE -w /dev/null` and
//! `xborder audit FILE --flows jsonl -o /dev/null` alternately and reports
//! medians, packets per second, and xborder's peak memory per live flow
//! (GNU time's maximum RSS beyond that of a run on a tiny capture, divided
//! by the most flows alive at once).
//!
//! The same traffic inside a VXLAN mirror (every frame in UDP 4789 from one
//! mirror source, as AWS Traffic Mirroring delivers it) is measured the
//! same way, against tcpdump on that file.
//!
//! Environment: `XBORDER_BENCH_PACKETS` (default 1000000),
//! `XBORDER_BENCH_FLOWS` (100000), `XBORDER_BENCH_ROUNDS` (7),
//! `XBORDER_BENCH_ARGS` (extra arguments for xborder, e.g. to compare
//! options).

#[path = "../tests/support/mod.rs"]
mod support;

use support::bench::{capture, env_u64, median, vxlan_capture};

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

fn main() {
    // `cargo bench` passes --bench; under `cargo test --benches` there is
    // nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let packets = env_u64("XBORDER_BENCH_PACKETS", 1_000_000);
    let flows = env_u64("XBORDER_BENCH_FLOWS", 100_000);
    let rounds = env_u64("XBORDER_BENCH_ROUNDS", 7).max(1);
    let extra = std::env::var("XBORDER_BENCH_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let file = capture(packets, flows);
    let file_str = file.to_str().unwrap();
    let xborder = env!("CARGO_BIN_EXE_xborder");
    // The policy stage adds finding records to the output: the first three
    // variants run an empty rule pack so that each measures one stage.
    let no_rules = file.with_file_name("no-rules.toml");
    std::fs::write(
        &no_rules,
        "[pack]\nname = \"none\"\ndescription = \"no rules\"\nsource = \"bench\"\nversion = \"1\"\n",
    )
    .unwrap();
    let no_rules = no_rules.to_str().unwrap();
    let mut with_rules = vec![
        "audit",
        file_str,
        "--format",
        "jsonl",
        "--flows",
        "-o",
        "/dev/null",
        "-q",
        "--fail-on",
        "none",
    ];
    with_rules.extend(&extra);
    let mut with_intel = with_rules.clone();
    with_intel.extend(["--rules", no_rules]);
    let mut flows_only = with_intel.clone();
    flows_only.push("--no-intel");
    let mut bare = flows_only.clone();
    bare.push("--no-names");
    let vxlan = vxlan_capture(packets, flows);
    let vxlan_str = vxlan.to_str().unwrap();
    let mut vxlan_rules = with_rules.clone();
    vxlan_rules[1] = vxlan_str;
    // Warm the page cache so every command reads from memory.
    std::fs::read(&file).map(drop).unwrap();
    std::fs::read(&vxlan).map(drop).unwrap();

    // tcpdump and the xborder variants alternate in every round, so that
    // all see the same machine.
    let have_tcpdump = Command::new("tcpdump").arg("--version").output().is_ok();
    let variants = [
        ("flows only (--no-intel --no-names)", &bare),
        ("with names (--no-intel)", &flows_only),
        ("with names and endpoint intelligence", &with_intel),
        ("with names, intelligence and the shipped rule packs", &with_rules),
    ];
    let mut ref_times = Vec::new();
    let mut times = vec![Vec::new(); variants.len()];
    let (mut vxlan_ref, mut vxlan_times) = (Vec::new(), Vec::new());
    let tcpdump = |f: &str| time(Command::new("tcpdump").args(["-n", "-r", f, "-w", "/dev/null"]));
    for _ in 0..rounds {
        if have_tcpdump {
            ref_times.push(tcpdump(file_str));
        }
        for (i, (_, args)) in variants.iter().enumerate() {
            times[i].push(time(Command::new(xborder).args(args.iter())));
        }
        if have_tcpdump {
            vxlan_ref.push(tcpdump(vxlan_str));
        }
        vxlan_times.push(time(Command::new(xborder).args(vxlan_rules.iter())));
    }
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "capture: {} ({packets} packets, {flows} flows, {:.0} MB)",
        file.display(),
        size as f64 / 1e6
    );
    let reference = have_tcpdump.then(|| median(ref_times));
    match reference {
        Some(r) => println!(
            "tcpdump -n -r FILE -w /dev/null: median {:.3} s over {rounds} rounds",
            r.as_secs_f64()
        ),
        None => println!("tcpdump not installed: no reference ratio (apt-get install tcpdump)"),
    }
    // Each stage's cost also as the median of the rounds' own ratios: the
    // two runs of a round are seconds apart, so a busy spell on the host
    // moves both.
    let paired = |a: usize, b: usize| {
        let mut r: Vec<f64> = times[a]
            .iter()
            .zip(&times[b])
            .map(|(a, b)| (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0)
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let paired = [paired(0, 1), paired(1, 2), paired(2, 3)];
    let mut medians = Vec::new();
    for ((name, _), t) in variants.iter().zip(times) {
        let xb = median(t);
        medians.push(xb);
        print!(
            "xborder audit --format jsonl --flows -o /dev/null, {name}: median {:.3} s",
            xb.as_secs_f64()
        );
        if let Some(r) = reference {
            print!(", ratio to tcpdump {:.2}", xb.as_secs_f64() / r.as_secs_f64());
        }
        println!(", {:.2} M packets/s", packets as f64 / xb.as_secs_f64() / 1e6);
    }
    let xb = median(vxlan_times);
    print!(
        "the same inside a VXLAN mirror ({}), with names, intelligence and the shipped rule packs: median {:.3} s",
        vxlan.display(),
        xb.as_secs_f64()
    );
    if have_tcpdump {
        let r = median(vxlan_ref);
        print!(
            ", tcpdump {:.3} s, ratio to tcpdump {:.2}",
            r.as_secs_f64(),
            xb.as_secs_f64() / r.as_secs_f64()
        );
    }
    println!(", {:.2} M packets/s", packets as f64 / xb.as_secs_f64() / 1e6);
    let change = |a: Duration, b: Duration| (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0;
    println!(
        "names add {:+.1}% to the flows-only run (median of rounds: {:+.1}%)",
        change(medians[0], medians[1]),
        paired[0]
    );
    println!(
        "endpoint intelligence adds {:+.1}% to the run with names (median of rounds: {:+.1}%)",
        change(medians[1], medians[2]),
        paired[1]
    );
    println!(
        "the shipped rule packs (and their finding records) add {:+.1}% to that (median of rounds: {:+.1}%)",
        change(medians[2], medians[3]),
        paired[2]
    );

    // Memory of the flow stage: peak RSS beyond a run on a tiny capture,
    // both without intelligence (whose data is a fixed ~40 MB).
    let tiny = capture(1000, 100);
    let summary = Command::new(xborder).args(["audit", "--no-intel", file_str]).output().unwrap();
    let summary = String::from_utf8_lossy(&summary.stdout);
    let live: u64 = summary
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("at most ")?.split(' ').next().map(|n| n.replace(',', ""))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut tiny_args = flows_only.clone();
    tiny_args[1] = tiny.to_str().unwrap();
    let (Some(big), Some(small)) = (
        peak_rss_kib(&[&[xborder][..], &flows_only].concat()),
        peak_rss_kib(&[&[xborder][..], &tiny_args].concat()),
    ) else {
        println!("GNU time not installed: no memory figures (apt-get install time)");
        return;
    };
    println!(
        "peak RSS {big} KiB ({small} KiB on a tiny capture); at most {live} flows alive at once"
    );
    if live > 0 {
        println!(
            "  {:.0} bytes per live flow (all of the growth, including the finished flow records kept for the report)",
            (big.saturating_sub(small) * 1024) as f64 / live as f64
        );
    }
}
