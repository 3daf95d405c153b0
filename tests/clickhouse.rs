//! `--clickhouse` against a real server: Debian's clickhouse-server,
//! started by the test with its own configuration on loopback ports and a
//! temporary directory, stopped afterwards (also when a test fails).

mod support;

use support::clickhouse::{Server, SERVER};

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const OVERLAY: &str = "fixtures/policy/overlay.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn available() -> bool {
    if Path::new(SERVER).exists() {
        return true;
    }
    let why = "clickhouse-server is missing (apt-get install clickhouse-server; scripts/test does it as root)";
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
    eprintln!("SKIPPED: {why}");
    false
}

fn xborder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(args)
        .current_dir(root())
        .env("XBORDER_DATA_DIR", "/nonexistent")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the jsonl of an audit says: per table, records, bytes and rule ids.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    flows: u64,
    flow_bytes: u64,
    findings: u64,
    rules: BTreeMap<String, u64>,
}

fn jsonl_totals(path: &Path) -> Totals {
    let mut t = Totals::default();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        if r["event"]["kind"] == "alert" {
            t.findings += 1;
            *t.rules.entry(r["rule"]["id"].as_str().unwrap().to_owned()).or_default() += 1;
        } else {
            t.flows += 1;
            t.flow_bytes += r["network"]["bytes"].as_u64().unwrap();
        }
    }
    t
}

fn store_totals(server: &Server, observer: &str) -> Totals {
    let n = |sql: String| -> u64 { server.query(&sql).unwrap().trim().parse().unwrap() };
    let w = format!("WHERE `observer.name` = '{observer}'");
    let mut rules = BTreeMap::new();
    let sql =
        format!("SELECT `rule.id`, count() FROM xborder.findings FINAL {w} GROUP BY `rule.id`");
    for line in server.query(&sql).unwrap().lines() {
        let (rule, count) = line.split_once('\t').unwrap();
        rules.insert(rule.to_owned(), count.parse().unwrap());
    }
    Totals {
        flows: n(format!("SELECT count() FROM xborder.flows FINAL {w}")),
        flow_bytes: n(format!("SELECT sum(`network.bytes`) FROM xborder.flows FINAL {w}")),
        findings: n(format!("SELECT count() FROM xborder.findings FINAL {w}")),
        rules,
    }
}

/// Audits `captures` as `observer` into the store and into a jsonl file.
fn audit(url: &str, observer: &str, captures: &[&str], spool: &Path, jsonl: &Path) -> Output {
    let mut args = vec!["audit", "--overlay", OVERLAY, "--format", "jsonl", "--flows"];
    args.extend(["-o", jsonl.to_str().unwrap(), "--clickhouse", url, "--observer", observer]);
    args.extend(["--spool-dir", spool.to_str().unwrap()]);
    args.extend(captures);
    xborder(&args)
}

#[test]
fn two_gateways_into_one_store_exactly_and_example_queries() {
    if !available() {
        return;
    }
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // A missing table is an error naming it, before any capture is read.
    let out = audit(&url, "gw1", &["fixtures/policy/gateway.pcap"], &spool, &dir.path().join("x"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("table xborder.flows: ") && stderr(&out).contains("clickhouse init"),
        "{}",
        stderr(&out)
    );
    for _ in 0..2 {
        let init = xborder(&["clickhouse", "init", "--url", &url]);
        assert!(init.status.success(), "{}", stderr(&init));
    }
    // The schema the tests use is the one shipped as SQL.
    let sql = xborder::clickhouse::schema_sql("xborder");
    let shipped = root().join("contrib/clickhouse/schema.sql");
    if std::env::var_os("XBORDER_WRITE_FIXTURES").is_some() {
        std::fs::write(&shipped, &sql).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&shipped).unwrap(),
        sql,
        "XBORDER_WRITE_FIXTURES=1 rewrites it"
    );

    let gw1 = dir.path().join("gw1.jsonl");
    let gw2 = dir.path().join("gw2.jsonl");
    let out = audit(&url, "gw1", &["fixtures/policy/gateway.pcap"], &spool, &gw1);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // gw2 also sees tunnels: their records carry the tunnel columns.
    let gw2_captures = ["fixtures/names.pcap", "fixtures/fragments.pcap", "fixtures/tunnels.pcap"];
    let out = audit(&url, "gw2", &gw2_captures, &spool, &gw2);
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", stderr(&out));
    // Sent twice: counted once.
    let again = audit(&url, "gw1", &["fixtures/policy/gateway.pcap"], &spool, &gw1);
    assert_eq!(again.status.code(), Some(1));
    for (observer, jsonl) in [("gw1", &gw1), ("gw2", &gw2)] {
        let want = jsonl_totals(jsonl);
        assert!(want.flows > 0, "{observer}");
        assert_eq!(store_totals(&server, observer), want, "{observer}");
    }
    assert!(!spool.exists() || std::fs::read_dir(&spool).unwrap().next().is_none());
    // The flows inside tunnels, with their chains, queryable.
    let sql = "SELECT count() FROM xborder.flows FINAL WHERE `observer.name` = 'gw2' \
               AND `xborder.tunnels` LIKE '%\"type\":\"vxlan\"%'";
    assert_eq!(server.query(sql).unwrap().trim(), "3");

    // The example queries run; the first and third answer as the jsonl.
    let queries = std::fs::read_to_string(root().join("contrib/clickhouse/queries.sql")).unwrap();
    let statements: Vec<&str> = queries
        .split(';')
        .map(|q| {
            q.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n")
        })
        .filter(|q| !q.trim().is_empty())
        .map(|q| Box::leak(q.into_boxed_str()) as &str)
        .collect();
    assert_eq!(statements.len(), 4);
    let answers: Vec<String> = statements
        .iter()
        .map(|q| server.query(&format!("{q} FORMAT TSV")).unwrap_or_else(|| panic!("failed: {q}")))
        .collect();
    assert!(answers[0].contains("2024-03-01\tCN\t"), "{}", answers[0]);
    let want = jsonl_totals(&gw1);
    let mut top: BTreeMap<String, u64> = BTreeMap::new();
    for line in answers[2].lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        *top.entry(cols[1].to_owned()).or_default() += cols[2].parse::<u64>().unwrap();
    }
    let mut both = want.rules.clone();
    for (rule, n) in jsonl_totals(&gw2).rules {
        *both.entry(rule).or_default() += n;
    }
    assert_eq!(top, both);
}

/// Two shards with Distributed tables over them: the same numbers as the
/// jsonl through the Distributed tables, records spread over both shards,
/// and an audit sent twice still counted once.
#[test]
fn a_two_shard_cluster_gives_the_same_numbers() {
    if !available() {
        return;
    }
    let (a, b) = Server::start_cluster();
    let init = xborder(&[
        "clickhouse",
        "init",
        "--url",
        &a.url(),
        "--shard-url",
        &b.url(),
        "--cluster",
        "xb",
    ]);
    assert!(init.status.success(), "{}", stderr(&init));
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let jsonl = dir.path().join("gw.jsonl");
    let captures =
        ["fixtures/policy/gateway.pcap", "fixtures/names.pcap", "fixtures/timeouts.pcap"];
    for _ in 0..2 {
        let out = audit(&a.url(), "gw1", &captures, &spool, &jsonl);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    let want = jsonl_totals(&jsonl);
    assert_eq!(store_totals(&a, "gw1"), want);
    assert_eq!(store_totals(&b, "gw1"), want, "through the other shard's Distributed tables");
    let local = |s: &Server| -> u64 {
        s.query("SELECT count() FROM xborder.flows_local FINAL").unwrap().trim().parse().unwrap()
    };
    let (on_a, on_b) = (local(&a), local(&b));
    assert!(on_a > 0 && on_b > 0, "{on_a} and {on_b} flows");
    assert_eq!(on_a + on_b, want.flows);
}

/// The server stopped before an audit: everything is spooled, the exit
/// status is the audit's; once it is back, flush delivers exactly, and a
/// second flush adds nothing.
#[test]
fn a_stopped_server_loses_nothing() {
    if !available() {
        return;
    }
    let mut server = Server::start();
    let url = server.url();
    let init = xborder(&["clickhouse", "init", "--url", &url]);
    assert!(init.status.success(), "{}", stderr(&init));
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let jsonl = dir.path().join("gw3.jsonl");
    let out = audit(
        &url,
        "gw3",
        &["fixtures/policy/gateway.pcap", "fixtures/timeouts.pcap"],
        &spool,
        &jsonl,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let want = jsonl_totals(&jsonl);
    let records = want.flows + want.findings;
    let line = format!("0 records sent to {url}/, {records} spooled to ");
    assert!(stderr(&out).contains(&line), "{}", stderr(&out));
    // Flushing to a server that is down keeps the spool.
    let flush =
        xborder(&["clickhouse", "flush", "--url", &url, "--spool-dir", spool.to_str().unwrap()]);
    assert_eq!(flush.status.code(), Some(2));
    assert!(stderr(&flush).contains("cannot reach the server"), "{}", stderr(&flush));

    server.run();
    let flush =
        xborder(&["clickhouse", "flush", "--url", &url, "--spool-dir", spool.to_str().unwrap()]);
    assert!(flush.status.success(), "{}", stderr(&flush));
    assert!(
        stderr(&flush).contains(&format!("{records} records in 2 segments")),
        "{}",
        stderr(&flush)
    );
    assert_eq!(store_totals(&server, "gw3"), want);
    let flush =
        xborder(&["clickhouse", "flush", "--url", &url, "--spool-dir", spool.to_str().unwrap()]);
    assert!(stderr(&flush).contains("0 records in 0 segments"), "{}", stderr(&flush));
    assert_eq!(store_totals(&server, "gw3"), want);
}

/// A wrong URL (not ClickHouse) and a table with a column missing are
/// errors that name them.
#[test]
fn wrong_servers_and_schemas_are_named() {
    if !available() {
        return;
    }
    let server = Server::start();
    let url = server.url();
    // Not ClickHouse: a web server answering 404.
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let web_url = format!("http://{}", web.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in web.incoming().flatten().take(4) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found");
        }
    });
    let out = xborder(&["clickhouse", "init", "--url", &web_url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("{web_url}/: HTTP 404: Not Found")), "{}", stderr(&out));
    assert!(xborder(&["clickhouse", "init", "--url", &url]).status.success());
    server.query("ALTER TABLE xborder.findings DROP COLUMN `rule.id`").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = audit(
        &url,
        "gw1",
        &["fixtures/quickstart.pcap"],
        &dir.path().join("s"),
        &dir.path().join("j"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("table xborder.findings: missing column rule.id"),
        "{}",
        stderr(&out)
    );
    // Tables of an older xborder (here also without the tunnel columns):
    // init adds what they lack, and the audit (which checks every column
    // first) goes through.
    for column in ["xborder.flow.carries", "xborder.tunnels"] {
        server.query(&format!("ALTER TABLE xborder.flows DROP COLUMN `{column}`")).unwrap();
    }
    let init = xborder(&["clickhouse", "init", "--url", &url]);
    assert!(init.status.success(), "{}", stderr(&init));
    let out = audit(
        &url,
        "gw1",
        &["fixtures/tunnels.pcap"],
        &dir.path().join("s"),
        &dir.path().join("j"),
    );
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", stderr(&out));
}

/// Every field the records of the fixtures carry has its column (a new
/// field without one would make the server refuse the batch).
#[test]
fn every_record_field_has_a_column() {
    use xborder::clickhouse::{row, Table};
    let mut args = vec!["audit", "--overlay", OVERLAY, "--format", "jsonl", "--flows", "-q"];
    let fixtures: Vec<String> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.extend(fixtures.iter().map(String::as_str));
    args.push("fixtures/policy/gateway.pcap");
    let out = xborder(&args);
    let mut seen = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (table, row) = row(&serde_json::from_str(line).unwrap(), "gw").unwrap();
        let columns = table.columns();
        for key in row.as_object().unwrap().keys() {
            let known = ["id", "day", "observer.name"].contains(&key.as_str())
                || columns.contains(&key.as_str());
            assert!(known, "{key} of a {} record has no column", table.name());
        }
        seen += 1;
    }
    assert!(seen > 100, "{seen}");
    assert_eq!(Table::ALL.len(), 2);
}

/// The server killed (SIGKILL) while an audit sends its batches: what it
/// had taken stays, the rest is spooled, and after a restart and a flush
/// the store holds every record exactly once.
#[test]
fn a_server_killed_during_an_audit_loses_nothing() {
    use support::{ethernet, ip_packet, pcap, PcapFormat, Record, L4};
    if !available() {
        return;
    }
    let mut server = Server::start();
    let url = server.url();
    assert!(xborder(&["clickhouse", "init", "--url", &url]).status.success());
    // 3,000 UDP flows to the overlay's CN provider: 3,000 flow records
    // and their findings, in batches of 20.
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..3000u32)
        .map(|i| {
            let l4 = L4::Udp { sport: 10_000 + (i % 50_000) as u16, dport: 443 };
            let dst = format!("203.0.113.{}", 1 + i % 100);
            let ip = ip_packet(&format!("10.1.{}.{}", i / 250, 1 + i % 250), &dst, l4, b"x");
            Record::new(1_700_000_000_000_000_000 + i64::from(i) * 1000, ethernet(&[], &ip))
        })
        .collect();
    let capture = dir.path().join("many.pcap");
    std::fs::write(&capture, pcap(PcapFormat::new(1), &records)).unwrap();
    let (spool, jsonl) = (dir.path().join("spool"), dir.path().join("k.jsonl"));
    let child = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", "--overlay", OVERLAY, "--format", "jsonl", "--flows", "-o"])
        .arg(&jsonl)
        .args([
            "--clickhouse",
            &url,
            "--observer",
            "gw-k",
            "--clickhouse-batch",
            "20",
            "--spool-dir",
        ])
        .arg(&spool)
        .arg(&capture)
        .current_dir(root())
        .env("XBORDER_DATA_DIR", "/nonexistent")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once it has some of the records.
    let start = std::time::Instant::now();
    loop {
        let n: u64 = server
            .query("SELECT count() FROM xborder.flows")
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if n > 0 {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "no record arrived");
    }
    server.stop();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(" spooled to "), "{err}");
    server.run();
    let flush =
        xborder(&["clickhouse", "flush", "--url", &url, "--spool-dir", spool.to_str().unwrap()]);
    assert!(flush.status.success(), "{}", stderr(&flush));
    let want = jsonl_totals(&jsonl);
    assert_eq!(want.flows, 3000);
    assert_eq!(store_totals(&server, "gw-k"), want);
}
