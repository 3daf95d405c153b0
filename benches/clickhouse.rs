//! `cargo bench --bench clickhouse`: the records of a 1M-packet audit
//! (every flow and finding) into a local ClickHouse server (Debian's
//! clickhouse-server, started here on loopback ports), against tcpdump's
//! plain read of the same capture in the same run, with and without the
//! sink. Reports records per second of the sink and both ratios.
//!
//! Environment: `XBORDER_BENCH_PACKETS` (default 1000000),
//! `XBORDER_BENCH_FLOWS` (100000), `XBORDER_BENCH_ROUNDS` (3).

#[path = "../tests/support/mod.rs"]
mod support;

use support::bench::{capture, env_u64, median};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).output().expect("run");
    let elapsed = start.elapsed();
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    (elapsed, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !Path::new(support::clickhouse::SERVER).exists() {
        println!("clickhouse: SKIPPED (no clickhouse-server)");
        return;
    }
    let (packets, flows) =
        (env_u64("XBORDER_BENCH_PACKETS", 1_000_000), env_u64("XBORDER_BENCH_FLOWS", 100_000));
    let rounds = env_u64("XBORDER_BENCH_ROUNDS", 3) as usize;
    let file = capture(packets, flows);
    let f = file.to_str().unwrap();
    let server = support::clickhouse::Server::start();
    let url = server.url();
    let xborder = env!("CARGO_BIN_EXE_xborder");
    let init = Command::new(xborder).args(["clickhouse", "init", "--url", &url]).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let spool = tempfile::tempdir().unwrap();
    let (mut tcpdump, mut plain, mut sink) = (Vec::new(), Vec::new(), Vec::new());
    let mut summary = String::new();
    for _ in 0..rounds {
        tcpdump.push(run(Command::new("tcpdump").args(["-n", "-r", f, "-w", "/dev/null"])).0);
        plain.push(run(Command::new(xborder).args(["audit", "-q", "-o", "/dev/null", f])).0);
        let (t, err) = run(Command::new(xborder)
            .args(["audit", "-o", "/dev/null", "--clickhouse", &url, "--observer", "bench"])
            .args(["--spool-dir", spool.path().to_str().unwrap(), f]));
        sink.push(t);
        summary = err.lines().find(|l| l.starts_with("clickhouse: ")).unwrap_or("").to_owned();
    }
    let (t, p, s) = (median(tcpdump), median(plain), median(sink));
    let records: u64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or(0);
    let sink_time = s.saturating_sub(p).as_secs_f64().max(1e-9);
    println!(
        "capture: {} ({packets} packets, {flows} flows); {rounds} rounds, medians",
        file.display()
    );
    println!("tcpdump -n -r FILE -w /dev/null: {:.3} s", t.as_secs_f64());
    println!(
        "xborder audit (defaults): {:.3} s = {:.2}x tcpdump",
        p.as_secs_f64(),
        p.as_secs_f64() / t.as_secs_f64()
    );
    println!(
        "xborder audit --clickhouse: {:.3} s = {:.2}x tcpdump; {summary}",
        s.as_secs_f64(),
        s.as_secs_f64() / t.as_secs_f64()
    );
    println!(
        "sink: {records} records in {:.3} s more = {:.0} records/s",
        sink_time,
        records as f64 / sink_time
    );
}
