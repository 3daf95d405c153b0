//! Endpoint intelligence against independent references: mmdblookup for
//! the country database, the providers' own feed files for the ranges.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xborder::intel::feeds::{self, FEEDS};
use xborder::intel::{AddressClass, IntelSources, MmdbDatabase, RegionTable};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cloud-range snapshots: `$XBORDER_CLOUD_RANGES` or
/// `../shared/data/cloud-ranges`; `None` (the test skips, loudly) when
/// they are missing outside CI.
fn shared() -> Option<PathBuf> {
    support::shared_data("XBORDER_CLOUD_RANGES", "data/cloud-ranges", "SOURCES.md")
}

fn xborder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(args)
        .env("XBORDER_DATA_DIR", "/nonexistent")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn db() -> xborder::intel::IntelDb {
    IntelSources { data_dir: Some("/nonexistent".into()), ..IntelSources::default() }
        .load()
        .unwrap()
}

/// mmdblookup's answer for `country_code`, None when not found.
fn mmdblookup(file: &Path, ip: IpAddr) -> Option<String> {
    let out = Command::new("mmdblookup")
        .args(["--file", file.to_str().unwrap(), "--ip", &ip.to_string(), "country_code"])
        .output()
        .expect("mmdblookup (Debian package mmdb-bin) must be installed: scripts/test installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split('"').nth(1).map(str::to_owned)
}

#[test]
fn country_agrees_with_mmdblookup_on_10000_random_public_addresses() {
    let file = root().join("geoip/country.mmdb");
    let db = MmdbDatabase::open(&file).unwrap().require_country().unwrap().country_table().unwrap();
    // The built-in data answers from the layers `db build` compiled.
    let compiled = self::db();
    let ips = support::random_public_addresses(0xdead_beef_cafe_f00d, 10_000);
    let disagreements: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = ips
            .chunks(2500)
            .map(|chunk| {
                let (db, file, compiled) = (&db, &file, &compiled);
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|ip| {
                            let ours = db.lookup(*ip).map(|(c, _)| c.to_string());
                            let built_in = compiled.addresses.lookup(*ip).country;
                            let built_in = built_in.map(|(c, _)| c.to_string());
                            let theirs = mmdblookup(file, *ip);
                            (ours != theirs || built_in != theirs).then(|| {
                                format!("{ip}: xborder {ours:?} (built in {built_in:?}), mmdblookup {theirs:?}")
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The layers `db build` compiled answer as the same data merged at load
/// (the path a user's own database or refreshed ranges take).
#[test]
fn compiled_layers_agree_with_the_layers_merged_at_load() {
    let compiled = db();
    let merged = IntelSources {
        data_dir: Some("/nonexistent".into()),
        country_db: Some(root().join("geoip/country.mmdb")),
        ..IntelSources::default()
    }
    .load()
    .unwrap();
    let (c4, c6) = compiled.addresses.counts();
    assert_eq!((c4, c6), merged.addresses.counts());
    assert!(c4 > 500_000 && c6 > 500_000, "{c4} IPv4 and {c6} IPv6 segments");
    let mut ips = support::random_public_addresses(0x5eed_1a7e_2500_0001, 100_000);
    // Every provider range's first address, and the one before it.
    for (start, _) in compiled.ranges.table().v4.iter().take(20_000) {
        ips.push(IpAddr::from(std::net::Ipv4Addr::from(start)));
        ips.push(IpAddr::from(std::net::Ipv4Addr::from(start.wrapping_sub(1))));
    }
    for (start, _) in compiled.ranges.table().v6.iter().take(20_000) {
        ips.push(IpAddr::from(std::net::Ipv6Addr::from(start)));
    }
    ips.push("::ffff:47.88.1.1".parse().unwrap());
    ips.push("2002:2f58:0101::1".parse().unwrap());
    let differ: Vec<String> = ips
        .iter()
        .filter(|ip| compiled.addresses.lookup(**ip) != merged.addresses.lookup(**ip))
        .take(10)
        .map(|ip| {
            format!(
                "{ip}: compiled {:?}, merged {:?}",
                compiled.addresses.lookup(*ip),
                merged.addresses.lookup(*ip)
            )
        })
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// `db build` reproduces the shipped ranges and regions byte for byte from
/// the snapshots in ../shared, as in a ranges-only refresh (their merge
/// with the AS table and the country database is derived at first use,
/// never built nor committed).
#[test]
fn db_build_reproduces_the_shipped_data() {
    let Some(shared) = shared() else { return };
    let out = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("geoip/country.mmdb"), out.path().join("country.mmdb")).unwrap();
    let o = xborder(&[
        "db",
        "build",
        "--from",
        shared.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--snapshot",
        "2026-11-28",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["regions.csv", "provider-ranges.csv.gz"] {
        let built = std::fs::read(out.path().join(file)).unwrap();
        let shipped = std::fs::read(root().join("geoip").join(file)).unwrap();
        assert!(
            built == shipped,
            "{file} differs from geoip/{file}: run the db build command in geoip/README.md"
        );
    }
}

#[test]
fn every_aws_google_cloud_and_oracle_prefix_resolves_to_its_provider_region_and_service() {
    let Some(shared) = shared() else { return };
    let regions = RegionTable::parse(
        &std::fs::read_to_string(root().join("geoip/regions.csv")).unwrap(),
        Path::new("regions.csv"),
    )
    .unwrap();
    let db = db();
    let files = [
        ("aws", "seligman-aws-ip-ranges/ip-ranges.json"),
        ("google-cloud", "femueller-cloud-ip-ranges/google-cloud-ip-ranges.json"),
        ("oracle", "femueller-cloud-ip-ranges/oracle-cloud-ip-ranges.json"),
    ];
    let mut all = Vec::new();
    for (name, file) in files {
        let spec = FEEDS.iter().find(|f| f.name == name).unwrap();
        let bytes = std::fs::read(shared.join(file)).unwrap();
        all.extend(feeds::parse(spec, &[&bytes], &regions).unwrap().entries);
    }
    let expected = feeds::merge_duplicates(all);
    // Where a longer prefix starts at the same address, the first address
    // belongs to it; those prefixes are checked at their last address.
    let starts: HashSet<(IpAddr, u8)> =
        expected.iter().map(|e| (e.prefix.network(), e.prefix.prefix_len())).collect();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for e in &expected {
        let shadowed =
            starts.iter().any(|(a, l)| *a == e.prefix.network() && *l > e.prefix.prefix_len());
        let probe = if shadowed { e.prefix.broadcast() } else { e.prefix.network() };
        let got = db.lookup(probe);
        if got.prefix != Some(e.prefix) {
            // A more specific range nested at the end: nothing to compare.
            if shadowed {
                continue;
            }
        }
        checked += 1;
        let ok = got.provider.as_deref() == Some(e.provider.as_str())
            && got.region.as_deref() == e.region.as_deref()
            && got.service.as_deref() == e.service.as_deref()
            && got.prefix == Some(e.prefix);
        if !ok {
            wrong.push(format!("{e:?} -> {got:?}"));
        }
    }
    assert!(checked > 10_000, "only {checked} prefixes checked");
    assert!(
        wrong.is_empty(),
        "{} of {checked} prefixes wrong, e.g.\n{}",
        wrong.len(),
        wrong[..wrong.len().min(5)].join("\n")
    );
}

#[test]
fn alibaba_in_the_us_is_hosted_in_the_us_under_cn_jurisdiction() {
    let db = db();
    for ip in ["47.88.0.1", "47.89.128.7", "47.91.255.254"] {
        let i = db.lookup(ip.parse().unwrap());
        assert_eq!(i.provider.as_deref(), Some("alibaba_cloud"), "{ip}");
        assert_eq!(i.jurisdiction.map(|c| c.to_string()).as_deref(), Some("CN"), "{ip}");
        assert_eq!(i.country.map(|c| c.to_string()).as_deref(), Some("US"), "{ip}");
    }
    // A region decides over geo-IP: AWS Cape Town is in South Africa.
    let cape_town = db.lookup("13.244.0.1".parse().unwrap());
    assert_eq!(cape_town.country.map(|c| c.to_string()).as_deref(), Some("ZA"));
    assert_eq!(cape_town.region.as_deref(), Some("af-south-1"));
}

#[test]
fn special_purpose_addresses_get_no_country_nor_provider() {
    let db = db();
    for ip in [
        "10.0.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "127.0.0.1",
        "169.254.1.1",
        "192.0.2.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "2001:db8::1",
        "255.255.255.255",
    ] {
        let i = db.lookup(ip.parse().unwrap());
        assert_ne!(i.class, AddressClass::Public, "{ip}");
        assert_eq!((i.country, i.provider.clone(), i.asn), (None, None, None), "{ip}");
    }
}

#[test]
fn wrong_corrupt_and_missing_databases_are_errors_naming_the_file() {
    let country = root().join("geoip/country.mmdb");
    let out = xborder(&["lookup", "--geoip-asn", country.to_str().unwrap(), "1.1.1.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}: not an ASN database (type 'country ipvAll'",
            country.display()
        )),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.mmdb");
    let bytes = std::fs::read(&country).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let out = xborder(&["lookup", "--geoip-country", broken.to_str().unwrap(), "1.1.1.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}: not a usable database: not a MaxMind DB file",
            broken.display()
        )),
        "{}",
        stderr(&out)
    );

    let out = xborder(&[
        "audit",
        "--geoip-country",
        "/nonexistent/GeoLite2-Country.mmdb",
        root().join("fixtures/quickstart.pcap").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/GeoLite2-Country.mmdb: No such file or directory"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "a missing database fails before any work");
}

#[test]
fn overlay_describes_documentation_addresses_and_flows_carry_it() {
    let overlay = root().join("fixtures/intel/overlay.toml");
    let out = xborder(&[
        "lookup",
        "--json",
        "--overlay",
        overlay.to_str().unwrap(),
        "203.0.113.10",
        "2001:db8::443",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["provider"], "test_cn_cloud");
    assert_eq!(lines[0]["jurisdiction"], "CN");
    assert_eq!(lines[0]["country"], "US");
    assert_eq!(lines[0]["country_source"], "overlay");
    assert_eq!(lines[0]["class"], "documentation");
    assert_eq!(lines[1]["country"], "RU");
    assert_eq!(lines[1]["provider"], serde_json::Value::Null);

    let out = xborder(&[
        "audit",
        "--format",
        "jsonl",
        "--flows",
        "--fail-on",
        "none",
        "--overlay",
        overlay.to_str().unwrap(),
        root().join("fixtures/quickstart.pcap").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let flows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|f: &serde_json::Value| f["event"]["kind"] == "event")
        .collect();
    let https = flows.iter().find(|f| f["destination"]["ip"] == "203.0.113.10").unwrap();
    assert_eq!(https["destination"]["geo"]["country_iso_code"], "US");
    assert_eq!(https["destination"]["as"]["number"], 64500);
    assert_eq!(https["destination"]["as"]["organization"]["name"], "Test CN Cloud US");
    let remote = &https["xborder"]["remote"];
    assert_eq!(remote["provider"], "test_cn_cloud");
    assert_eq!(remote["jurisdiction"], "CN");
    assert_eq!(remote["region"], "us-east");
    assert_eq!(remote["service"], "object-storage");
    assert_eq!(remote["prefix"], "203.0.113.0/24");
    // Inbound: the remote end is the source.
    let ssh = flows.iter().find(|f| f["source"]["ip"] == "198.51.100.7").unwrap();
    assert_eq!(ssh["source"]["geo"]["country_iso_code"], "DE");
    assert!(ssh["destination"].get("geo").is_none());
    assert_eq!(ssh["xborder"]["remote"]["provider"], "test_us_cloud");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("restricted jurisdictions: CN (Test CN Cloud)"), "{summary}");
}

#[test]
fn overlay_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("overlay.toml");
    std::fs::write(&bad, "[[network]]\ncidr = \"203.0.113.0/33\"\n").unwrap();
    let out = xborder(&["lookup", "--overlay", bad.to_str().unwrap(), "1.1.1.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:2:8: invalid IP address syntax", bad.display())),
        "{}",
        stderr(&out)
    );
    std::fs::write(&bad, "[[network]]\ncidr = \"203.0.113.0/24\"\nprovider = \"nobody\"\n")
        .unwrap();
    let out = xborder(&["lookup", "--overlay", bad.to_str().unwrap(), "1.1.1.1"]);
    assert!(
        stderr(&out)
            .contains("provider 'nobody' is neither in the catalogue nor defined in an overlay"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn db_info_lists_every_dataset_with_licence_and_checksum() {
    let out = xborder(&["db", "info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for role in ["providers:", "vendors:", "regions:", "provider ranges:", "asn:", "country:"] {
        assert!(text.contains(role), "{role} missing:\n{text}");
    }
    assert!(text.contains("licence   CC BY 4.0"), "{text}");
    assert!(text.contains("attribute NRO (nro.net)"), "{text}");
    assert_eq!(text.matches("sha256    ").count(), 6);
    assert!(text.contains("snapshot  2026-12-02"), "{text}");
    assert!(text.contains("feed aws: "), "{text}");
}

/// The built-in layers: merged and cached in the data directory by the
/// first run, read from there by the next, merged at every run where the
/// directory named does not exist (it is not created), and merged again
/// over a damaged cache, which is replaced. The answers never change.
#[test]
fn the_built_in_layers_are_cached_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let run = |dir: &str| {
        let out = xborder(&["lookup", "--json", "--data-dir", dir, "47.88.1.1", "2a0b:4340::1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let info = xborder(&["db", "info", "--data-dir", dir]);
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        let layers = info.lines().find(|l| l.starts_with("address layers: ")).unwrap().to_owned();
        (out.stdout, layers)
    };
    let (merged, layers) = run(data_dir);
    assert!(layers.contains("merged at every load: cannot cache them"), "{layers}");
    assert!(layers.contains("data/built-in-layers.xbl"), "{layers}");
    assert!(!data.exists(), "a data directory named is not created");

    std::fs::create_dir(&data).unwrap();
    let cache = data.join("built-in-layers.xbl");
    let first = xborder(&["lookup", "--json", "--data-dir", data_dir, "47.88.1.1", "2a0b:4340::1"]);
    assert_eq!(first.stdout, merged);
    let size = std::fs::metadata(&cache).unwrap().len();
    assert!(size > 10_000_000, "{size} bytes");
    let (cached, layers) = run(data_dir);
    assert_eq!(cached, merged);
    assert!(layers.starts_with("address layers: the built-in data's, cached in "), "{layers}");

    let mut bytes = std::fs::read(&cache).unwrap();
    bytes[4096] ^= 0x40;
    std::fs::write(&cache, &bytes).unwrap();
    let damaged =
        xborder(&["lookup", "--json", "--data-dir", data_dir, "47.88.1.1", "2a0b:4340::1"]);
    assert_eq!(damaged.stdout, merged);
    assert_ne!(std::fs::read(&cache).unwrap(), bytes, "the damaged cache is replaced");
    let (_, layers) = run(data_dir);
    assert!(layers.contains("cached in "), "{layers}");
}

/// Serves `files` (name → bytes) over HTTP on loopback until dropped.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap_or_default();
            let path =
                request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = files.iter().find(|(n, _)| *n == path).map(|(_, b)| b.clone());
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
            let _ = stream.read(&mut [0u8; 1]);
        }
    });
    format!("http://{addr}")
}

fn aws_feed(date: &str, prefixes: &[(&str, &str, &str)]) -> Vec<u8> {
    let items: Vec<String> = prefixes
        .iter()
        .map(|(p, r, s)| format!(r#"{{"ip_prefix":"{p}","region":"{r}","service":"{s}","network_border_group":"{r}"}}"#))
        .collect();
    format!(
        r#"{{"syncToken":"1","createDate":"{date}","prefixes":[{}],"ipv6_prefixes":[]}}"#,
        items.join(",")
    )
    .into_bytes()
}

#[test]
fn db_update_refreshes_from_a_mirror_with_checks() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let small = aws_feed(
        "2030-01-01-00-00-00",
        &[("44.1.0.0/16", "eu-south-1", "EC2"), ("44.2.0.0/16", "us-east-1", "S3")],
    );
    let mirror = serve(vec![("ip-ranges.json", small)]);

    // A feed that shrank from thousands of prefixes to two is refused.
    let out =
        xborder(&["db", "update", "--mirror", &mirror, "--feed", "aws", "--data-dir", data_dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("feed aws: shrank from"), "{}", stderr(&out));
    assert!(!data.path().join("provider-ranges.csv.gz").exists());

    let out = xborder(&[
        "db",
        "update",
        "--mirror",
        &mirror,
        "--feed",
        "aws",
        "--force",
        "--data-dir",
        data_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("aws: 2 prefixes"));
    let leftovers: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the ranges and datasets.toml, no temporary files: {leftovers:?}"
    );

    // The refreshed data now takes precedence: 44.1.0.0/16 is AWS Milan.
    let out = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["lookup", "--json", "--data-dir", data_dir, "44.1.2.3"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["provider"], "aws");
    assert_eq!(v["region"], "eu-south-1");
    assert_eq!(v["country"], "IT");
    assert_eq!(v["country_source"], "region");
    let info = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["db", "info", "--data-dir", data_dir])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&info.stdout)
        .contains(&format!("provider ranges: {data_dir}/provider-ranges.csv.gz")));

    // An older feed than the one installed is refused.
    let old = aws_feed(
        "2029-01-01-00-00-00",
        &[("44.1.0.0/16", "eu-south-1", "EC2"), ("44.2.0.0/16", "us-east-1", "S3")],
    );
    let mirror = serve(vec![("ip-ranges.json", old)]);
    let out =
        xborder(&["db", "update", "--mirror", &mirror, "--feed", "aws", "--data-dir", data_dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "feed aws: version 2029-01-01-00-00-00 is older than the installed 2030-01-01-00-00-00"
        ),
        "{}",
        stderr(&out)
    );

    // A broken feed names itself.
    let mirror = serve(vec![("ip-ranges.json", b"{\"createDate\": 5}".to_vec())]);
    let out =
        xborder(&["db", "update", "--mirror", &mirror, "--feed", "aws", "--data-dir", data_dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("feed aws: invalid type"), "{}", stderr(&out));

    // A missing file on the mirror names the URL.
    let mirror = serve(vec![]);
    let out =
        xborder(&["db", "update", "--mirror", &mirror, "--feed", "aws", "--data-dir", data_dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{mirror}/ip-ranges.json: http status: 404")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn db_update_reads_official_files_from_a_directory() {
    let data = tempfile::tempdir().unwrap();
    let feeds = tempfile::tempdir().unwrap();
    std::fs::write(feeds.path().join("ips-v4"), "104.16.0.0/13\n104.24.0.0/14\n").unwrap();
    std::fs::write(feeds.path().join("ips-v6"), "2606:4700::/32\n").unwrap();
    let out = xborder(&[
        "db",
        "update",
        "--from",
        feeds.path().to_str().unwrap(),
        "--force",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cloudflare: 3 prefixes"), "{text}");
    assert!(text.contains("aws: skipped (no file or URL)"), "{text}");
}

mod support;

/// Networks covering the probe addresses xborder uses to recognise schemas.
fn probe_networks(record: serde_json::Value) -> Vec<(&'static str, serde_json::Value)> {
    vec![("8.8.8.0/24", record.clone()), ("1.1.1.0/24", record.clone()), ("2001:4860::/32", record)]
}

#[test]
fn user_databases_in_every_common_schema_are_recognised() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "GeoLite2-Country",
            json!({"country": {"iso_code": "SE", "names": {"en": "Sweden"}}, "continent": {"code": "EU"}}),
            "country",
            Some("SE"),
            None,
        ),
        (
            "GeoIP2-City",
            json!({"city": {"names": {"en": "Paris"}}, "registered_country": {"iso_code": "FR"}}),
            "country",
            Some("FR"),
            None,
        ),
        ("DBIP-Country-Lite", json!({"country": {"iso_code": "JP"}}), "country", Some("JP"), None),
        (
            "ipinfo lite.mmdb",
            json!({"country_code": "BR", "country": "Brazil", "asn": "AS64511", "as_name": "IPinfo Test"}),
            "both",
            Some("BR"),
            Some(64511),
        ),
        ("geo-whois-asn-country", json!({"country_code": "KE"}), "country", Some("KE"), None),
        (
            "GeoLite2-ASN",
            json!({"autonomous_system_number": 64512, "autonomous_system_organization": "MaxMind Test"}),
            "asn",
            None,
            Some(64512),
        ),
        (
            "DBIP-ASN-Lite",
            json!({"autonomous_system_number": 64513, "autonomous_system_organization": "DB-IP Test"}),
            "asn",
            None,
            Some(64513),
        ),
    ];
    for (kind, record, role, country, asn) in cases {
        let path = dir.path().join(format!("{kind}.mmdb"));
        std::fs::write(&path, support::mmdb::write(6, kind, &probe_networks(record))).unwrap();
        let p = path.to_str().unwrap();
        let as_country = xborder(&["lookup", "--json", "--geoip-country", p, "8.8.8.8"]);
        let as_asn = xborder(&["lookup", "--json", "--geoip-asn", p, "8.8.8.8"]);
        match role {
            "country" => {
                assert!(as_country.status.success(), "{kind}: {}", stderr(&as_country));
                assert!(
                    stderr(&as_asn).contains("not an ASN database"),
                    "{kind}: {}",
                    stderr(&as_asn)
                );
            }
            "asn" => {
                assert!(as_asn.status.success(), "{kind}: {}", stderr(&as_asn));
                assert!(
                    stderr(&as_country).contains("not a country database"),
                    "{kind}: {}",
                    stderr(&as_country)
                );
            }
            _ => {
                assert!(as_country.status.success() && as_asn.status.success(), "{kind}");
            }
        }
        if let Some(c) = country {
            let v: serde_json::Value = serde_json::from_slice(&as_country.stdout).unwrap();
            assert_eq!(v["country"], c, "{kind}");
            assert_eq!(v["country_source"], "geoip", "{kind}");
        }
        if let Some(a) = asn {
            let v: serde_json::Value = serde_json::from_slice(&as_asn.stdout).unwrap();
            assert_eq!(v["asn"], a, "{kind}");
        }
    }
    // An IPv4-only database answers IPv4 and nothing else, without error.
    let v4 = dir.path().join("v4.mmdb");
    std::fs::write(
        &v4,
        support::mmdb::write(
            4,
            "GeoLite2-Country",
            &[("8.8.8.0/24", json!({"country": {"iso_code": "AU"}}))],
        ),
    )
    .unwrap();
    let out = xborder(&[
        "lookup",
        "--json",
        "--geoip-country",
        v4.to_str().unwrap(),
        "8.8.8.8",
        "2001:4860::1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["country"], "AU");
    assert_eq!(lines[1]["country"], serde_json::Value::Null);
}

/// An address of a provider's ASN outside its published ranges is the
/// company's own service, not a cloud customer's server: named so, with
/// the same id and jurisdiction (Google's AS15169 holds 8.8.8.8).
#[test]
fn own_services_outside_the_published_ranges_are_named_apart() {
    let db = db();
    let own = db.lookup("8.8.8.8".parse().unwrap());
    assert_eq!(own.provider.as_deref(), Some("google"));
    assert_eq!(
        own.provider_name.as_deref(),
        Some("Google (own services, outside the Google Cloud ranges)")
    );
    assert_eq!(own.jurisdiction, xborder::intel::CountryCode::parse("US"));
    assert_eq!(own.dataset.as_deref(), Some("asn"));
    let cloud = db.lookup("3.120.0.1".parse().unwrap());
    assert_eq!(cloud.provider_name.as_deref(), Some("Amazon Web Services"));
    assert_eq!(cloud.dataset.as_deref(), Some("aws"));
}
