//! Regression tests for what a probe of careless use and broken machines
//! found (issue 17): symbolic link loops, FIFOs and sockets in walked
//! directories, `-o` naming an input, closed pipes, full standard error and
//! output, devices and FIFOs given as rule packs, overlays, configuration
//! or databases. Each failed before its fix.

mod support;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn xborder() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xborder"));
    c.stdin(Stdio::null());
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits for `child`; a run still going after a minute is killed and
/// fails the test (the defects here were hangs: this only bounds them).
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("xborder did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    let child = xborder().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish(child)
}

fn str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Packets the run read, from its flow records.
fn packets(out: &Output) -> u64 {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"]["kind"] == "event")
        .map(|r| r["network"]["packets"].as_u64().unwrap())
        .sum()
}

#[test]
fn symbolic_link_loops_are_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(fixture("quickstart.pcap"), d.join("a.pcap")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    // Two loops: before the fix the walk was exponential.
    std::os::unix::fs::symlink(".", d.join("loop")).unwrap();
    std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
    let out = run(&["audit", "--no-intel", "--format", "jsonl", "--flows", str(d)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // quickstart.pcap: 19 packets, 18 of them in flows.
    assert_eq!(packets(&out), 18);
    let err = stderr(&out);
    let loops = err.lines().filter(|l| l.contains("(a symbolic link loop?)")).count();
    assert_eq!(loops, 2, "{err}");
    assert!(
        err.contains(&format!(
            "skipping {}: the directory {} again",
            d.join("loop").display(),
            d.display()
        )),
        "{err}"
    );
}

#[test]
fn fifos_sockets_and_dangling_links_in_a_walk_are_skipped_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(fixture("quickstart.pcap"), d.join("a.pcap")).unwrap();
    nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", d.join("dangling")).unwrap();
    let out = run(&["audit", "--no-intel", "--format", "jsonl", "--flows", "-q", str(d)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(packets(&out), 18);
    let err = stderr(&out);
    let at = |n: &str| d.join(n).display().to_string();
    assert!(
        err.contains(&format!("skipping {}: not a regular file (a FIFO)", at("fifo"))),
        "{err}"
    );
    assert!(
        err.contains(&format!("skipping {}: not a regular file (a socket)", at("sock"))),
        "{err}"
    );
    assert!(
        err.contains(&format!("skipping {}: No such file or directory", at("dangling"))),
        "{err}"
    );
    assert_eq!(err.lines().count(), 3, "{err}");
}

#[test]
fn a_file_named_twice_or_inside_a_named_directory_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.pcap");
    std::fs::copy(fixture("quickstart.pcap"), &a).unwrap();
    let out = run(&[
        "audit",
        "--no-intel",
        "--format",
        "jsonl",
        "--flows",
        str(&a),
        str(&a),
        str(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(packets(&out), 18);
    let err = stderr(&out);
    assert_eq!(
        err.matches(&format!("the same file as {}, read once", a.display())).count(),
        2,
        "{err}"
    );
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_capture_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cap.pcap");
    std::fs::copy(fixture("quickstart.pcap"), &cap).unwrap();
    let original = std::fs::read(&cap).unwrap();
    for input in [cap.clone(), dir.path().to_owned()] {
        let out = run(&["audit", str(&input), "-o", str(&cap)]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            stderr(&out),
            format!(
                "xborder: {}: the report would overwrite an input of the run ({}); choose another -o\n",
                cap.display(),
                input.display()
            )
        );
        assert_eq!(std::fs::read(&cap).unwrap(), original);
    }
    // A previous report inside the walked directory is no capture: it is
    // replaced.
    let report = dir.path().join("report.txt");
    std::fs::write(&report, "old report\n").unwrap();
    let out = run(&["audit", "-q", str(dir.path()), "-o", str(&report)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&report).unwrap().contains("xborder audit: 1 input"));
}

#[test]
fn a_run_that_fails_leaves_the_previous_report_whole() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.txt");
    std::fs::write(&report, "the previous report\n").unwrap();
    let q = fixture("quickstart.pcap");
    let out = run(&["audit", str(&q), "-o", str(&report), "--geoip-country", "/nonexistent.mmdb"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "the previous report\n");
    // Nothing is left beside it; a run that succeeds replaces it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let out = run(&["audit", str(&q), "-o", str(&report), "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&report).unwrap().contains("xborder audit: 1 input"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A pipe whose reader has already gone: every write fails with EPIPE.
fn closed_pipe() -> OwnedFd {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    write
}

#[test]
fn a_closed_pipe_stops_the_writing_and_keeps_the_exit_status() {
    let gateway = fixture("policy/gateway.pcap");
    let overlay = fixture("policy/overlay.toml");
    for format in ["jsonl", "json", "csv", "text"] {
        let child = xborder()
            .args(["audit", str(&gateway), "--overlay", str(&overlay), "--format", format])
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish(child);
        // Findings: 1, with the headline on standard error and no error.
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        assert!(!stderr(&out).contains("Broken pipe"), "{format}: {}", stderr(&out));
        // Damage: 2.
        let child = xborder()
            .args(["audit", str(&fixture("damaged/truncated-record.pcap")), "--format", format])
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert_eq!(finish(child).status.code(), Some(2), "{format}");
    }
}

#[test]
fn a_full_standard_error_does_not_panic_and_a_full_output_is_an_error() {
    let gateway = fixture("policy/gateway.pcap");
    let overlay = fixture("policy/overlay.toml");
    let child = xborder()
        .args(["audit", str(&gateway), "--overlay", str(&overlay), "--format", "jsonl"])
        .stdout(Stdio::null())
        .stderr(File::create("/dev/full").unwrap())
        .spawn()
        .unwrap();
    assert_eq!(finish(child).status.code(), Some(1));
    // An error message that cannot be written still exits 2, not 101.
    let child = xborder()
        .args(["audit", "/nonexistent.pcap"])
        .stdout(Stdio::null())
        .stderr(File::create("/dev/full").unwrap())
        .spawn()
        .unwrap();
    assert_eq!(finish(child).status.code(), Some(2));
    let child = xborder()
        .args(["audit", str(&gateway), "--format", "jsonl", "--flows"])
        .stdout(File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "xborder: standard output: No space left on device (os error 28)\n");
}

#[test]
fn devices_and_fifos_are_refused_as_rule_packs_overlays_configs_and_databases() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let q = fixture("quickstart.pcap");
    let cases = [
        ("--rules", "rule packs"),
        ("--overlay", "overlays"),
        ("--config", "configuration files"),
        ("--geoip-country", "databases"),
        ("--geoip-asn", "databases"),
    ];
    for (flag, what) in cases {
        for (path, kind) in [("/dev/zero", "a character device"), (str(&fifo), "a FIFO")] {
            let out = run(&["audit", str(&q), flag, path]);
            assert_eq!(out.status.code(), Some(2), "{flag} {path}");
            let want =
                format!("xborder: {path}: not a regular file ({kind}): {what} are read whole\n");
            assert_eq!(stderr(&out), want, "{flag} {path}");
        }
    }
    let out = run(&["rules", "check", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a regular file (a character device)"), "{}", stderr(&out));
}

#[test]
fn rules_check_and_audit_judge_packs_alike() {
    let dir = tempfile::tempdir().unwrap();
    let pack = "[pack]\nname = \"same\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n\
                [[rule]]\nid = \"x\"\ntitle = \"X\"\nseverity = \"info\"\n[rule.match]\n\
                transport = \"tcp\"\n";
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, pack).unwrap();
    std::fs::write(&b, pack).unwrap();
    let want =
        format!("{}: error: rule pack 'same' is also loaded from {}\n", b.display(), a.display());
    let out = run(&["rules", "check", str(&a), str(&b)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), want);
    let q = fixture("quickstart.pcap");
    let out = run(&["audit", str(&q), "--rules", str(&a), "--rules", str(&b)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), format!("xborder: {want}"));
    // The same file twice: read once, with a warning, in both.
    let twice = format!("{}: warning: the same file as {}, read once\n", a.display(), a.display());
    let out = run(&["rules", "check", str(&a), str(&a)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), twice);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: pack same 1, 1 rule\n", a.display())
    );
    let out = run(&["audit", str(&q), "-q", "--rules", str(&a), "--rules", str(&a)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("xborder: {twice}"));
}

#[test]
fn a_data_directory_that_is_not_one_or_a_corrupt_provenance_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let q = fixture("quickstart.pcap");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = run(&["audit", str(&q), "--data-dir", str(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("xborder: {}: the data directory is not a directory\n", file.display())
    );
    // Refreshed ranges with a provenance file that does not parse: before,
    // the provenance lines vanished in silence.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/provider-ranges.csv.gz");
    std::fs::copy(shipped, data.join("provider-ranges.csv.gz")).unwrap();
    std::fs::write(data.join("datasets.toml"), "[[dataset]\n").unwrap();
    let out = run(&["audit", str(&q), "--data-dir", str(&data)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("xborder: {}:1:", data.join("datasets.toml").display())),
        "{err}"
    );
    // Without it, the refreshed ranges are used.
    std::fs::remove_file(data.join("datasets.toml")).unwrap();
    let out = run(&["audit", str(&q), "--data-dir", str(&data), "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `audit -` on a standard input that stays open and sends nothing: a run
/// that read captures before checking its files would wait for ever.
fn audit_waiting_stdin(args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    let child = xborder()
        .args(["audit", "-"])
        .args(args)
        .stdin(Stdio::from(read))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child);
    drop(write);
    out
}

#[test]
fn every_file_is_checked_before_the_first_packet() {
    let country = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/country.mmdb");
    let out = audit_waiting_stdin(&["--geoip-asn", str(&country)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!("xborder: {}:", country.display())),
        "{}",
        stderr(&out)
    );
    // An overlay network naming a provider no file defines: audit and
    // `rules check --overlay` alike.
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("o.toml");
    std::fs::write(&overlay, "[[network]]\ncidr = \"203.0.113.0/24\"\nprovider = \"nobody\"\n")
        .unwrap();
    let out = audit_waiting_stdin(&["--overlay", str(&overlay)]);
    assert_eq!(out.status.code(), Some(2));
    let want = "provider 'nobody' is neither in the catalogue nor defined in an overlay";
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/us-icts-vendors.toml");
    let out = run(&["rules", "check", "--overlay", str(&overlay), str(&pack)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
}

#[test]
fn overlays_are_checked_as_rule_packs_are() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o.toml");
    let q = fixture("quickstart.pcap");
    // Codes no rule could match: the rules' check and hints.
    std::fs::write(&o, "[[network]]\ncidr = \"192.0.2.0/24\"\ncountry = \"UK\"\n").unwrap();
    let out = run(&["audit", str(&q), "--overlay", str(&o)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "xborder: {}:3:11: unknown country code \"UK\": not an ISO 3166-1 alpha-2 code (the \
             United Kingdom is GB)\n",
            o.display()
        )
    );
    std::fs::write(&o, "[[network]]\ncidr = \"192.0.2.0/24\"\njurisdiction = \"EU\"\n").unwrap();
    let out = run(&["audit", str(&q), "--overlay", str(&o)]);
    assert!(stderr(&out).contains(":3:16: unknown country code \"EU\""), "{}", stderr(&out));
    // Host bits and a network listed twice: warnings, as for rules.
    std::fs::write(
        &o,
        "[[network]]\ncidr = \"192.0.2.7/24\"\ncountry = \"DE\"\n\
         [[network]]\ncidr = \"192.0.2.0/24\"\ncountry = \"FR\"\n",
    )
    .unwrap();
    let out = run(&["audit", str(&q), "-q", "--overlay", str(&o)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let f = o.display();
    assert_eq!(
        stderr(&out),
        format!(
            "xborder: {f}:2: warning: \"192.0.2.7/24\" has host bits set; it means 192.0.2.0/24\n\
             xborder: {f}:5: warning: network 192.0.2.0/24 is also listed on line 2; this later \
             entry wins\n"
        )
    );
    // A configuration file's errors are placed the same way.
    let c = dir.path().join("c.toml");
    std::fs::write(&c, "[intel]\ngeoip_country = 7\n").unwrap();
    let out = run(&["audit", str(&q), "--config", str(&c)]);
    assert!(
        stderr(&out).starts_with(&format!("xborder: {}:2:17: ", c.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_device_named_as_a_capture_is_not_called_empty() {
    let out = run(&["audit", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains("empty file"), "{err}");
    assert!(err.contains("/dev/zero"), "{err}");
}
