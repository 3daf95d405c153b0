//! `xborder live` on a veth pair between two network namespaces this test
//! creates (and removes, also when it fails). Traffic goes only from the
//! client namespace to documentation addresses in the server namespace,
//! which an overlay maps to a restricted test provider. Needs root (CI
//! runs as root); without it the test says so and passes.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod support;

use nix::sched::{setns, CloneFlags};
use serde_json::Value;

/// Two namespaces joined by a veth pair; removed on drop.
struct Net {
    client: String,
    server: String,
    veth: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2) is needed");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    fn new() -> Net {
        // Unique per test of this process: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let net = Net {
            client: format!("xbt{id}c"),
            server: format!("xbt{id}s"),
            veth: format!("xb{id}"),
        };
        let (c, s) = (net.client.as_str(), net.server.as_str());
        let (vc, vs) = (format!("{}c", net.veth), format!("{}s", net.veth));
        ip(&["netns", "add", c]);
        ip(&["netns", "add", s]);
        ip(&["link", "add", &vc, "type", "veth", "peer", "name", &vs]);
        ip(&["link", "set", &vc, "netns", c]);
        ip(&["link", "set", &vs, "netns", s]);
        for (ns, dev, host) in [(c, &vc, "10"), (s, &vs, "200")] {
            ip(&["-n", ns, "addr", "add", &format!("192.0.2.{host}/24"), "dev", dev]);
            ip(&["-n", ns, "addr", "add", &format!("198.51.100.{host}/24"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("2001:db8:0:1::{host}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        net
    }

    fn client_if(&self) -> String {
        format!("{}c", self.veth)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and its peer.
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap();
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// Accepts `n` connections on `addr` and counts the bytes each sent.
fn tcp_server(ns: &str, addr: &str, n: usize) -> thread::JoinHandle<Vec<usize>> {
    let addr: SocketAddr = addr.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = in_ns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        tx.send(()).unwrap();
        (0..n)
            .map(|_| {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = Vec::new();
                c.read_to_end(&mut buf).unwrap();
                buf.len()
            })
            .collect()
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    h
}

fn udp_sink(ns: &str, addr: &str) -> thread::JoinHandle<()> {
    let addr: SocketAddr = addr.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = in_ns(ns, move || {
        let s = UdpSocket::bind(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        while s.recv(&mut buf).is_ok() {}
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    h
}

fn send_tcp(ns: &str, to: &'static str, bytes: usize) {
    in_ns(ns, move || {
        let mut c = TcpStream::connect(to).unwrap();
        c.write_all(&vec![b'x'; bytes]).unwrap();
    })
    .join()
    .unwrap();
}

fn send_udp(ns: &str, to: &'static str, datagrams: usize, size: usize) {
    in_ns(ns, move || {
        let to: SocketAddr = to.parse().unwrap();
        let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(bind).unwrap();
        for _ in 0..datagrams {
            s.send_to(&vec![b'u'; size], to).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
    })
    .join()
    .unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `test` holds for the file's text.
fn wait_for(path: &Path, what: &str, test: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = read(path);
        if test(&text) {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}:\n{text}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The alerts written so far (complete lines only: one may be in the
/// middle of being written).
fn alerts(path: &Path) -> Vec<Value> {
    let text = read(path);
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn has_alert(alerts: &[Value], rule: &str, port: u64, phase: &str) -> bool {
    alerts.iter().any(|a| {
        a["rule"]["id"] == rule
            && a["destination"]["port"] == port
            && a["xborder"]["finding"]["phase"] == phase
    })
}

const OVERLAY: &str = r#"
[[provider]]
id = "test_restricted"
name = "Test Restricted Cloud"
jurisdiction = "CN"

[[network]]
cidr = "192.0.2.128/25"
country = "US"
provider = "test_restricted"

[[network]]
cidr = "198.51.100.128/25"
country = "US"
provider = "test_restricted"

[[network]]
cidr = "2001:db8:0:1::/64"
country = "US"
provider = "test_restricted"
"#;

fn rules(with_udp: bool) -> String {
    let mut r = String::from(
        "[pack]\nname = \"live-test\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n\
         [[rule]]\nid = \"restricted-tcp\"\ntitle = \"TCP to the restricted provider\"\n\
         severity = \"high\"\nwhen_unknown = \"ignore\"\n\
         [rule.match]\nprovider = \"test_restricted\"\ntransport = \"tcp\"\n",
    );
    if with_udp {
        r.push_str(
            "[[rule]]\nid = \"restricted-udp\"\ntitle = \"UDP to the restricted provider\"\n\
             severity = \"medium\"\nwhen_unknown = \"ignore\"\n\
             [rule.match]\nprovider = \"test_restricted\"\ntransport = \"udp\"\n",
        );
    }
    r
}

/// A child killed when dropped: xborder stops even when an assertion
/// fails before the clean stop.
struct Kill(Option<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Live tests need root (network namespaces, capture); without it they
/// say so and pass.
fn as_root() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("live test skipped: needs root for network namespaces and capture");
    }
    root
}

/// Waits at most 10 s for the process to exit.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("xborder did not stop within 10 s of the signal");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, name: &str) {
    let out = Command::new("kill").args(["-s", name, &child.id().to_string()]).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn live_capture_alerts_reports_reloads_and_stops_cleanly() {
    if !as_root() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (overlay, rules_file) = (d.join("overlay.toml"), d.join("rules.toml"));
    std::fs::write(&overlay, OVERLAY).unwrap();
    std::fs::write(&rules_file, rules(false)).unwrap();
    let (alerts_file, reports, log) = (d.join("alerts.jsonl"), d.join("reports"), d.join("stderr"));
    // A syslog daemon of our own: the alerts arrive as RFC 3164 datagrams.
    let syslog_path = d.join("syslog.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&syslog_path).unwrap();
    syslog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let child = Command::new("ip")
        .args(["netns", "exec", &net.client, env!("CARGO_BIN_EXE_xborder"), "live"])
        .args(["-i", &net.client_if(), "--overlay", &path(&overlay), "--rules", &path(&rules_file)])
        .args(["--local-net", "192.0.2.10/32", "--local-net", "198.51.100.10/32"])
        .args(["--local-net", "2001:db8:0:1::10/128", "--alert-delay", "300ms"])
        .args([
            "--alerts",
            &path(&alerts_file),
            "--report-every",
            "1s",
            "--report-dir",
            &path(&reports),
            "--evidence-dir",
            &path(&d.join("evidence")),
        ])
        .args(["--stats-every", "1s", "--bpf", "ip or ip6"])
        .args(["--syslog", "--syslog-socket", &path(&syslog_path)])
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Killed if an assertion fails before the clean stop.
    wait_for(&log, "the capture to start", |t| t.contains("capturing on"));
    let guard = Kill(Some(child));

    let tcp4 = tcp_server(&net.server, "192.0.2.200:443", 2);
    let tcp4b = tcp_server(&net.server, "198.51.100.200:8443", 1);
    let tcp6 = tcp_server(&net.server, "[2001:db8:0:1::200]:443", 1);
    let udp4 = udp_sink(&net.server, "192.0.2.200:5353");
    let udp6 = udp_sink(&net.server, "[2001:db8:0:1::200]:5353");
    send_tcp(&net.client, "192.0.2.200:443", 50_000);
    send_tcp(&net.client, "198.51.100.200:8443", 20_000);
    send_tcp(&net.client, "[2001:db8:0:1::200]:443", 30_000);
    send_udp(&net.client, "192.0.2.200:5353", 3, 700);

    // Alerts as it happens: each TCP flow's early alert, without waiting
    // for the flow to end (closed TCP flows linger 5 s).
    wait_for(&alerts_file, "early TCP alerts", |_| {
        let a = alerts(&alerts_file);
        [443, 8443].iter().all(|p| has_alert(&a, "restricted-tcp", *p, "early"))
    });
    assert!(!alerts(&alerts_file).iter().any(|a| a["rule"]["id"] == "restricted-udp"));
    let mut buf = vec![0u8; 65536];
    let n = syslog.recv(&mut buf).unwrap();
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Facility daemon (3), level error (3) for a high finding.
    assert!(message.starts_with("<27>xborder["), "{message}");
    let json = &message[message.find("]: ").unwrap() + 3..];
    let record: Value = serde_json::from_str(json).unwrap();
    assert_eq!(record["rule"]["id"], "restricted-tcp");

    // SIGHUP with a new rule: UDP now alerts.
    std::fs::write(&rules_file, rules(true)).unwrap();
    signal(guard.0.as_ref().unwrap(), "HUP");
    wait_for(&log, "the reload", |t| t.contains("reloaded rule packs"));
    send_udp(&net.client, "[2001:db8:0:1::200]:5353", 2, 300);
    wait_for(&alerts_file, "a UDP alert after the reload", |_| {
        has_alert(&alerts(&alerts_file), "restricted-udp", 5353, "early")
    });

    // SIGHUP with a broken file: logged, the old rules keep running.
    std::fs::write(&rules_file, "[pack]\nname = \"broken\n").unwrap();
    signal(guard.0.as_ref().unwrap(), "HUP");
    wait_for(&log, "the failed reload", |t| t.contains("reload failed, keeping the rules"));
    send_tcp(&net.client, "192.0.2.200:443", 10_000);
    wait_for(&alerts_file, "a TCP alert after the failed reload", |_| {
        alerts(&alerts_file)
            .iter()
            .filter(|a| a["rule"]["id"] == "restricted-tcp" && a["destination"]["port"] == 443)
            .filter(|a| a["xborder"]["finding"]["phase"] == "early")
            .count()
            >= 3
    });
    let received: Vec<usize> =
        [tcp4, tcp4b, tcp6].into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(received, [50_000, 10_000, 20_000, 30_000]);

    // A periodic report.
    let periodic = wait_for(&log, "statistics", |t| t.contains("stats:"));
    assert!(periodic.contains("dropped 0 by the kernel"), "{periodic}");
    let listing = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> =
            std::fs::read_dir(&reports).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    let first = listing().into_iter().find(|p| p.extension().is_some_and(|e| e == "json")).unwrap();
    let doc: Value = serde_json::from_str(&read(&first)).unwrap();
    assert_eq!(doc["live"]["final_report"], false);

    // SIGTERM: every live flow ends into the final report; exit 0.
    let mut guard = guard;
    let mut child = guard.0.take().unwrap();
    signal(&child, "TERM");
    let status = wait_exit(&mut child);
    let text = read(&log);
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("final report:"), "{text}");
    // Reports are renamed into place: no temporary file is left.
    let names: Vec<String> =
        listing().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n.starts_with("xborder-")), "{names:?}");
    drop((udp4, udp6));

    // Every flow is in exactly one report (the period it ended in): the
    // payload each client sent is counted exactly.
    let mut sent = Vec::new();
    for p in listing().iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let doc: Value = serde_json::from_str(&read(p)).unwrap();
        for f in doc["findings"].as_array().unwrap() {
            sent.push((
                f["network"]["transport"].as_str().unwrap().to_owned(),
                f["destination"]["ip"].as_str().unwrap().to_owned(),
                f["xborder"]["flow"]["source"]["payload_bytes"].as_u64().unwrap(),
            ));
        }
    }
    sent.sort();
    let want = |t: &str, ip: &str, n: u64| (t.to_owned(), ip.to_owned(), n);
    assert_eq!(
        sent,
        [
            want("tcp", "192.0.2.200", 10_000),
            want("tcp", "192.0.2.200", 50_000),
            want("tcp", "198.51.100.200", 20_000),
            want("tcp", "2001:db8:0:1::200", 30_000),
            want("udp", "192.0.2.200", 2_100),
            want("udp", "2001:db8:0:1::200", 600),
        ]
    );
    let last =
        listing().into_iter().rev().find(|p| p.to_string_lossy().ends_with("-final.json")).unwrap();
    let doc: Value = serde_json::from_str(&read(&last)).unwrap();
    assert_eq!(doc["live"]["final_report"], true);
    assert_eq!(doc["live"]["stats"]["queue_dropped"], 0);
    assert_eq!(doc["live"]["stats"]["kernel_dropped"], 0);
    // Evidence: the early alerts name their file, which holds every packet
    // of those flows, as the final report counted them.
    assert_eq!(doc["live"]["stats"]["evidence_dropped"], 0);
    let early: Vec<Value> = alerts(&alerts_file)
        .into_iter()
        .filter(|a| a["xborder"]["finding"]["phase"] == "early")
        .collect();
    assert!(early.iter().all(|a| a["file"]["path"]
        .as_str()
        .is_some_and(|p| p.contains("/evidence/xborder-evidence-"))));
    let key = |f: &Value| {
        (
            f["source"]["port"].as_u64().unwrap(),
            f["destination"]["ip"].as_str().unwrap().to_owned(),
            f["destination"]["port"].as_u64().unwrap(),
        )
    };
    let early: std::collections::BTreeSet<_> = early.iter().map(key).collect();
    let flow = |f: &Value| {
        let (sport, ip, dport) = key(f);
        (sport, ip, dport, f["network"]["packets"].as_u64().unwrap())
    };
    let mut reported: Vec<_> = Vec::new();
    for p in listing().iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let doc: Value = serde_json::from_str(&read(p)).unwrap();
        let findings = doc["findings"].as_array().unwrap();
        reported.extend(findings.iter().filter(|f| early.contains(&key(f))).map(flow));
    }
    reported.sort();
    reported.dedup();
    let mut files: Vec<String> = std::fs::read_dir(d.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut args = vec!["audit", "--no-intel", "--format", "jsonl", "--flows"];
    args.extend(files.iter().map(String::as_str));
    let out = Command::new(env!("CARGO_BIN_EXE_xborder")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut kept: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| flow(&serde_json::from_str::<Value>(l).unwrap()))
        .collect();
    kept.sort();
    // The four TCP flows and the UDP one after the reload.
    assert_eq!(kept.len(), 5, "{kept:?}");
    assert_eq!(kept, reported, "early alerts: {early:?}");

    // The same period as a page to hand on, beside the json and text.
    let page = read(&last.with_extension("html"));
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("xborder live on "),
        "{page:.200}"
    );
    assert!(last.with_extension("txt").exists());
    drop(net);
}

/// The uid the process `pid` runs as.
fn uid_of(pid: u32) -> String {
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    status.lines().find(|l| l.starts_with("Uid:")).unwrap_or_default().to_owned()
}

#[test]
fn runs_unprivileged_with_user_or_capabilities() {
    if !as_root() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    // Writable by nobody, who writes the reports after the drop.
    Command::new("chmod").args(["777", reports.to_str().unwrap()]).status().unwrap();
    let xborder = env!("CARGO_BIN_EXE_xborder");
    let iface = net.client_if();
    // Only UDP passes the filter: after the one datagram the capture is
    // quiet, and a stop must still end it (libpcap can wait in poll()).
    let live = [
        "live",
        "-i",
        iface.as_str(),
        "--no-intel",
        "--bpf",
        "udp",
        "--report-dir",
        reports.to_str().unwrap(),
    ];
    // 1. As root, dropping to nobody once the capture is open.
    let mut with_user: Vec<&str> = vec!["netns", "exec", &net.client, xborder];
    with_user.extend(live);
    with_user.extend(["--user", "nobody"]);
    // 2. As nobody from the start, with only the capture capabilities.
    let mut with_caps: Vec<&str> = vec![
        "netns",
        "exec",
        &net.client,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_raw,+net_admin",
        "--ambient-caps=+net_raw,+net_admin",
        xborder,
    ];
    with_caps.extend(live);
    for (what, args) in [("--user nobody", with_user), ("capabilities only", with_caps)] {
        let log = dir.path().join("stderr");
        let mut child = Command::new("ip")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let text = wait_for(&log, "the capture to start", |t| {
            t.contains("capturing on") || t.contains("error") || t.contains("cannot")
        });
        assert!(text.contains("capturing on"), "{what}: {text}");
        assert!(uid_of(child.id()).contains("65534"), "{what}: {}", uid_of(child.id()));
        send_udp(&net.client, "192.0.2.200:9", 1, 10);
        thread::sleep(Duration::from_millis(500));
        signal(&child, "TERM");
        let status = wait_exit(&mut child);
        let text = read(&log);
        assert_eq!(status.code(), Some(0), "{what}: {text}");
        assert!(text.contains("final report:"), "{what}: {text}");
    }
    drop(net);
}

/// `live --clickhouse` with the server (in the capture's namespace, on its
/// loopback) stopped and started again mid-run: records spooled meanwhile
/// are retried, and after SIGTERM the store holds exactly the flows and
/// findings of the reports.
#[test]
fn live_records_reach_clickhouse_across_a_server_restart() {
    if !as_root() {
        return;
    }
    if !Path::new(support::clickhouse::SERVER).exists() {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "clickhouse-server is missing");
        eprintln!("SKIPPED: clickhouse-server is missing");
        return;
    }
    let net = Net::new();
    let mut server = support::clickhouse::Server::start_in(Some(&net.client));
    let url = server.url();
    let xborder = env!("CARGO_BIN_EXE_xborder");
    let init = Command::new("ip")
        .args(["netns", "exec", &net.client, xborder, "clickhouse", "init", "--url", &url])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (overlay, rules_file) = (d.join("overlay.toml"), d.join("rules.toml"));
    std::fs::write(&overlay, OVERLAY).unwrap();
    std::fs::write(&rules_file, rules(false)).unwrap();
    let (alerts_file, reports, log) = (d.join("alerts.jsonl"), d.join("reports"), d.join("stderr"));
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let child = Command::new("ip")
        .args(["netns", "exec", &net.client, xborder, "live", "-i", &net.client_if()])
        .args(["--overlay", &path(&overlay), "--rules", &path(&rules_file)])
        .args(["--local-net", "192.0.2.10/32", "--alert-delay", "300ms", "--bpf", "tcp"])
        .args(["--alerts", &path(&alerts_file), "--report-dir", &path(&reports)])
        .args([
            "--clickhouse",
            &url,
            "--observer",
            "gw-live",
            "--spool-dir",
            &path(&d.join("spool")),
        ])
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for(&log, "the capture to start", |t| t.contains("capturing on"));
    let mut guard = Kill(Some(child));
    let tcp = tcp_server(&net.server, "192.0.2.200:443", 3);
    let early_alerts =
        |p: &Path| alerts(p).iter().filter(|a| a["xborder"]["finding"]["phase"] == "early").count();
    send_tcp(&net.client, "192.0.2.200:443", 10_000);
    wait_for(&alerts_file, "the first early alert", |_| early_alerts(&alerts_file) >= 1);
    // Sent within a second; then the server goes away.
    thread::sleep(Duration::from_millis(1500));
    server.stop();
    send_tcp(&net.client, "192.0.2.200:443", 20_000);
    wait_for(&alerts_file, "the second early alert", |_| early_alerts(&alerts_file) >= 2);
    thread::sleep(Duration::from_millis(1500));
    server.run();
    send_tcp(&net.client, "192.0.2.200:443", 30_000);
    wait_for(&alerts_file, "the third early alert", |_| early_alerts(&alerts_file) >= 3);
    let mut child = guard.0.take().unwrap();
    signal(&child, "TERM");
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{}", read(&log));
    assert_eq!(tcp.join().unwrap(), [10_000, 20_000, 30_000]);

    // The reports' flows and findings, and what the store holds.
    let (mut flows, mut findings) = (0u64, 0u64);
    let mut final_stats = Value::Null;
    for e in std::fs::read_dir(&reports).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let doc: Value = serde_json::from_str(&read(&p)).unwrap();
            flows += doc["totals"]["flows"].as_u64().unwrap();
            findings += doc["findings"].as_array().unwrap().len() as u64;
            if doc["live"]["final_report"] == true {
                final_stats = doc["live"]["stats"]["store"].clone();
            }
        }
    }
    assert_eq!((flows, findings), (3, 3));
    let count = |table: &str| -> u64 {
        let sql =
            format!("SELECT count() FROM xborder.{table} FINAL WHERE `observer.name` = 'gw-live'");
        server.query(&sql).unwrap().trim().parse().unwrap()
    };
    assert_eq!((count("flows"), count("findings")), (flows, findings), "{}", read(&log));
    assert!(final_stats["spooled"].as_u64().unwrap() > 0, "{final_stats}");
    assert_eq!(final_stats["spooled"], final_stats["retried"], "{final_stats}");
    assert_eq!(final_stats["dropped"], 0, "{final_stats}");
    drop(net);
}

/// A cloud mirror port: the traffic arrives inside VXLAN (a real kernel
/// VXLAN device in each namespace, VNI 100, over the veth pair). The flow
/// inside is the one audited: its alert names the remote inside the tunnel
/// and carries the tunnel.
#[test]
fn live_audits_the_flow_inside_a_vxlan_tunnel() {
    if !as_root() {
        return;
    }
    let net = Net::new();
    let vxlan = |ns: &str, local: &str, remote: &str, dev: &str, addr: &str| -> bool {
        let add = Command::new("ip")
            .args(["-n", ns, "link", "add", "xbvx", "type", "vxlan", "id", "100"])
            .args(["local", local, "remote", remote, "dstport", "4789", "dev", dev])
            .output()
            .unwrap();
        if !add.status.success() {
            return false;
        }
        ip(&["-n", ns, "addr", "add", addr, "dev", "xbvx"]);
        ip(&["-n", ns, "link", "set", "xbvx", "up"]);
        true
    };
    let server_if = format!("{}s", net.veth);
    if !vxlan(&net.client, "192.0.2.10", "192.0.2.200", &net.client_if(), "203.0.113.10/24")
        || !vxlan(&net.server, "192.0.2.200", "192.0.2.10", &server_if, "203.0.113.200/24")
    {
        eprintln!("VXLAN test skipped: the kernel has no vxlan driver");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (overlay, rules_file) = (d.join("overlay.toml"), d.join("rules.toml"));
    // The restricted provider is the inner server's network this time.
    std::fs::write(&overlay, OVERLAY.replace("192.0.2.128/25", "203.0.113.128/25")).unwrap();
    std::fs::write(&rules_file, rules(false)).unwrap();
    let (alerts_file, log) = (d.join("alerts.jsonl"), d.join("stderr"));
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let child = Command::new("ip")
        .args(["netns", "exec", &net.client, env!("CARGO_BIN_EXE_xborder"), "live"])
        .args(["-i", &net.client_if(), "--overlay", &path(&overlay), "--rules", &path(&rules_file)])
        .args(["--local-net", "192.0.2.10/32", "--local-net", "203.0.113.10/32"])
        .args(["--alert-delay", "300ms", "--alerts", &path(&alerts_file)])
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for(&log, "the capture to start", |t| t.contains("capturing on"));
    let mut guard = Kill(Some(child));
    let server = tcp_server(&net.server, "203.0.113.200:443", 1);
    send_tcp(&net.client, "203.0.113.200:443", 30_000);
    assert_eq!(server.join().unwrap(), vec![30_000]);
    wait_for(&alerts_file, "the alert of the flow inside VXLAN", |_| {
        has_alert(&alerts(&alerts_file), "restricted-tcp", 443, "early")
    });
    let alert =
        alerts(&alerts_file).into_iter().find(|a| a["rule"]["id"] == "restricted-tcp").unwrap();
    assert_eq!(alert["destination"]["ip"], "203.0.113.200");
    assert_eq!(alert["source"]["ip"], "203.0.113.10");
    let tunnel = &alert["xborder"]["tunnels"][0];
    assert_eq!(tunnel["type"], "vxlan", "{alert}");
    assert_eq!(tunnel["id"], 100);
    assert_eq!(tunnel["source"]["ip"], "192.0.2.10");
    assert_eq!(tunnel["destination"]["ip"], "192.0.2.200");
    let child = guard.0.take().unwrap();
    signal(&child, "TERM");
    let mut child = child;
    assert!(wait_exit(&mut child).success(), "{}", read(&log));
}
