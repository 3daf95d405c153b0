//! `--format html` in a real browser: Debian's chromium, headless, in a
//! network namespace of its own (`unshare -rn`: no packet can leave, not
//! even the browser's own update checks), with a net log that shows any
//! request the page makes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::fixtures::{client_hello, tcp_seq};
use support::{ethernet, pcap, PcapFormat, Record};

const CAPTURE: &str = "fixtures/policy/gateway.pcap";
const OVERLAY: &str = "fixtures/policy/overlay.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The browser, or `None` (a loud skip; under CI=true a failure).
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    let why = "chromium is missing (apt-get install chromium; scripts/test does it as root)";
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

struct Page {
    dom: String,
    /// Requests the page itself made (initiator: the file's opaque origin).
    page_requests: Vec<String>,
}

/// Opens `file` headless; its DOM after the scripts ran, and the requests
/// the page made according to the net log. With `screenshot`, also saves
/// one.
fn open(browser: &Path, file: &Path, screenshot: Option<&Path>) -> Page {
    let dir = tempfile::tempdir().unwrap();
    let netlog = dir.path().join("netlog.json");
    let mut args: Vec<String> = [
        "-rn",
        browser.to_str().unwrap(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,2400",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", dir.path().join("profile").display()));
    args.push(format!("--log-net-log={}", netlog.display()));
    match screenshot {
        Some(out) if out.extension().is_some_and(|e| e == "pdf") => {
            args.push("--no-pdf-header-footer".into());
            args.push(format!("--print-to-pdf={}", out.display()));
        }
        Some(png) => args.push(format!("--screenshot={}", png.display())),
        None => args.push("--dump-dom".into()),
    }
    args.push(format!("file://{}", file.display()));
    let out = Command::new("unshare").args(&args).output().expect("unshare");
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(&netlog).unwrap_or_default();
    // URL requests of the page carry `"initiator":"null"` (a file's
    // origin is opaque); the browser's own carry "not an origin".
    let page_requests = log
        .lines()
        .filter(|l| l.contains("\"initiator\":\"null\""))
        .map(|l| l.chars().take(300).collect())
        .collect();
    Page { dom: String::from_utf8_lossy(&out.stdout).into_owned(), page_requests }
}

fn audit_html(args: &[&str], out: &Path) {
    let mut all = vec!["audit", "-q", "--format", "html", "-o", out.to_str().unwrap()];
    all.extend(args);
    let o = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(&all)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.code().is_some_and(|c| c < 2), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The page's findings data (the JSON in its `findings-data` script).
fn findings_data(html: &str) -> serde_json::Value {
    let start = html.find("id=\"findings-data\">").unwrap() + "id=\"findings-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn the_html_report_renders_every_finding_and_fetches_nothing() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("gateway.html");
    audit_html(&[CAPTURE, "--overlay", OVERLAY], &report);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));

    // Golden: the report's data, not its pixels.
    let data = findings_data(&html);
    let golden = root().join("fixtures/policy/gateway.html.json");
    let pretty = serde_json::to_string_pretty(&data).unwrap() + "\n";
    if std::env::var_os("XBORDER_WRITE_FIXTURES").is_some() {
        std::fs::write(&golden, &pretty).unwrap();
    }
    assert_eq!(
        pretty,
        std::fs::read_to_string(&golden).unwrap(),
        "XBORDER_WRITE_FIXTURES=1 rewrites it"
    );

    let page = open(&browser, &report, None);
    assert!(page.page_requests.is_empty(), "the page fetched: {:?}", page.page_requests);
    // Every flagged endpoint and rule is in the table the script built.
    let csv = Command::new(env!("CARGO_BIN_EXE_xborder"))
        .args(["audit", CAPTURE, "--overlay", OVERLAY, "--format", "csv"])
        .current_dir(root())
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    let mut rows = 0;
    for line in csv.lines().skip(1) {
        let cols = csv_fields(line);
        let (rule, remote) = (&cols[1], &cols[6]);
        assert!(page.dom.contains(&format!("<td>{remote} port")), "{remote} not in the table");
        assert!(page.dom.contains(&format!(">{rule}</td>")), "{rule} not in the table");
        rows += 1;
    }
    assert_eq!(page.dom.matches("<span class=\"sev sev-").count(), rows);
    assert!(page.dom.contains(&format!("{rows} of {rows} findings")));
    assert!(page.dom.matches("<svg class=\"chart\"").count() >= 3);
    assert!(page.dom.contains("By the provider's jurisdiction"));
    assert!(page.dom.contains("<dt>Local hosts</dt><dd>10.1.0.5 "));

    // The screenshot (look at it: target/html-report.png); the README's
    // copy is rewritten with the goldens.
    let png = root().join("target/html-report.png");
    open(&browser, &report, Some(&png));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 50_000, "{} bytes", bytes.len());
    if std::env::var_os("XBORDER_WRITE_FIXTURES").is_some() {
        std::fs::copy(&png, root().join("docs/html-report.png")).unwrap();
    }

    // "Print to PDF" with the print stylesheet: a document of pages.
    let pdf = dir.path().join("gateway.pdf");
    open(&browser, &report, Some(&pdf));
    let bytes = std::fs::read(&pdf).unwrap();
    let pages = bytes.windows(11).filter(|w| w == b"/Type /Page").count()
        - bytes.windows(12).filter(|w| w == b"/Type /Pages").count();
    assert!(bytes.starts_with(b"%PDF") && pages >= 2, "{pages} pages");
}

/// The check above can fail: a page with an image and a script from
/// elsewhere shows its two requests in the net log (which go nowhere: the
/// namespace has no network).
#[test]
fn the_request_check_sees_a_page_that_fetches() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("fetches.html");
    std::fs::write(
        &page,
        "<html><body><img src=\"http://203.0.113.5/x.png\">\
         <script src=\"https://198.51.100.7/a.js\"></script></body></html>",
    )
    .unwrap();
    assert_eq!(open(&browser, &page, None).page_requests.len(), 2);
}

/// A server name holding markup shows as text: no element, no script.
#[test]
fn names_from_the_traffic_are_text_not_markup() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let name = "<script>document.title='owned'</script><b>x</b>.example";
    let (c, s, port) = ("10.1.0.5", "203.0.113.10", 50123);
    let hello = client_hello(name);
    let packets = [
        tcp_seq(c, s, port, 443, "S", 1000, &[]),
        tcp_seq(s, c, 443, port, "SA", 5000, &[]),
        tcp_seq(c, s, port, 443, "PA", 1001, &hello),
    ];
    let records: Vec<Record> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| Record::new(1_700_000_000_000_000_000 + i as i64 * 1000, ethernet(&[], p)))
        .collect();
    let capture = dir.path().join("hostile.pcap");
    std::fs::write(&capture, pcap(PcapFormat::new(1), &records)).unwrap();
    let report = dir.path().join("hostile.html");
    audit_html(&[capture.to_str().unwrap(), "--overlay", OVERLAY], &report);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<b>x</b>"), "raw markup in the file");
    let page = open(&browser, &report, None);
    assert!(
        page.dom.contains(
            "&lt;script&gt;document.title='owned'&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;.example"
        ),
        "{}",
        page.dom
    );
    assert!(!page.dom.contains("<title>owned</title>"));
    assert_eq!(page.dom.matches("<script").count(), 2, "only the report's own scripts");
    assert!(!page.dom.contains("<b>x</b>"));
}
