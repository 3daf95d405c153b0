//! The report to hand on: one self-contained HTML file (`--format html`).
//!
//! Contract:
//! - Nothing is fetched: CSS, JavaScript and the SVG charts are inline,
//!   and a Content-Security-Policy forbids every load (`default-src
//!   'none'`), so it opens the same on an air-gapped laptop and in a mail
//!   client's preview.
//! - Every string from the traffic or the inputs is escaped: in the markup
//!   by [`escape`], in the findings' data by JSON with `<` written as
//!   `\u003c`, and the script puts text into the page with `textContent`
//!   only, never as markup.
//! - Contents: headlines per rule pack (provider jurisdiction and hosting
//!   country kept apart), charts (bytes out by jurisdiction and by
//!   provider, flagged bytes over trace time), the findings table (sorted
//!   and filtered in the page, a page of rows at a time), rule packs, data
//!   provenance and the capture summary. No world map: no map geometry
//!   ships with xborder.
//! - Size: the findings table holds at most [`MAX_ROWS`] findings, the most
//!   severe first, and says how many were left out (the CSV and JSON
//!   formats hold them all; headlines and charts count every finding);
//!   charts show at most [`CHART_BARS`] bars. Rows are arrays and each
//!   rule is written once, so 20,000 findings are a few megabytes.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use serde_json::{json, Value};

use super::digest::country_key;
use super::findings::{aggregate, headline, regime_headlines, FindingView};
use super::summary::{grouped, human_bytes};
use super::AuditReport;
use crate::flow::protocol_name;
use crate::intel::CountryCode;

/// Findings in the table at most.
pub const MAX_ROWS: usize = 20_000;
/// Bars per chart at most (the rest are summed into "other").
pub const CHART_BARS: usize = 12;
/// Columns of the flagged-bytes timeline.
const TIMELINE_BUCKETS: usize = 60;

/// `<`, `>`, `&`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The columns of a finding row in the page's data (rows are arrays, so
/// that 20,000 findings stay a few megabytes).
pub const COLUMNS: &[&str] = &[
    "rule",
    "local",
    "local_port",
    "remote",
    "remote_port",
    "transport",
    "hosted_in",
    "operator",
    "law",
    "about",
    "vendor",
    "names",
    "bytes_out",
    "bytes_in",
    "first_seen",
    "file",
    "frame",
];

/// The findings as the page's data: the rules once, then a row per
/// finding (the most severe first, then report order), at most
/// [`MAX_ROWS`].
pub fn findings_data(r: &AuditReport) -> Value {
    // Most severe first, report order within a severity.
    let views: Vec<FindingView<'_>> = r.digest.most_severe.values().map(|k| k.view(r)).collect();
    let total = r.digest.findings;
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index: HashMap<(usize, usize), usize> = HashMap::new();
    let files: Vec<String> = r
        .inputs
        .iter()
        .map(|i| {
            i.path
                .file_name()
                .map_or_else(|| i.path.display().to_string(), |n| n.to_string_lossy().into())
        })
        .collect();
    let rows: Vec<Value> = views
        .iter()
        .take(MAX_ROWS)
        .map(|v| {
            let m = &v.finding.matched;
            let rule = *rule_index.entry((m.pack, m.rule)).or_insert_with(|| {
                rules.push(json!({
                    "id": v.rule.id,
                    "title": v.rule.title,
                    "pack": v.pack.name,
                    "severity": v.rule.severity.as_str(),
                    "rank": v.rule.severity as u8,
                }));
                rules.len() - 1
            });
            let i = v.intel;
            let names = v.names.map(|n| {
                let mut all: Vec<&str> = n.server_name.iter().map(|(s, _)| &**s).collect();
                for d in n.dns.iter() {
                    if !all.contains(&&**d) {
                        all.push(d);
                    }
                }
                all.join(" ")
            });
            json!([
                rule,
                v.sides.local.ip.to_string(),
                v.sides.local.port,
                v.sides.remote.ip.to_string(),
                v.sides.remote.port,
                protocol_name(v.flow.protocol)
                    .map_or_else(|| v.flow.protocol.to_string(), str::to_owned),
                i.and_then(|i| i.country).map(|c| c.to_string()),
                v.operator(),
                i.and_then(|i| i.jurisdiction).map(|c| c.to_string()),
                v.finding.country.map(|c| c.to_string()),
                v.vendor.map(|m| m.vendor.name.clone()),
                names,
                v.sides.sent.bytes,
                v.sides.received.bytes,
                v.flow.start.to_string(),
                v.flow.first_frame.file,
                v.flow.first_frame.frame,
            ])
        })
        .collect();
    json!({
        "total": total,
        "shown": rows.len(),
        "columns": COLUMNS,
        "rules": rules,
        "files": files,
        "findings": rows,
    })
}

/// JSON safe inside a `<script>` element.
fn script_json(v: &Value) -> io::Result<String> {
    let text = serde_json::to_string(v).map_err(io::Error::other)?;
    Ok(text.replace('<', "\\u003c").replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029"))
}

/// Horizontal bars: (label, total, flagged part).
fn bar_chart(title: &str, rows: &[(String, u64, u64)]) -> String {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if rows.len() > CHART_BARS {
        let rest = rows.split_off(CHART_BARS - 1);
        let other = rest.iter().fold((0, 0), |(t, f), r| (t + r.1, f + r.2));
        rows.push((format!("{} others", rest.len()), other.0, other.1));
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (170.0, 330.0, 22.0);
    let height = row_h * rows.len() as f64 + 8.0;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" role=\"img\" viewBox=\"0 0 640 {height}\" width=\"640\" height=\"{height}\"><title>{}</title>",
        escape(title),
        escape(title)
    );
    for (n, (label, total, flagged)) in rows.iter().enumerate() {
        let y = 4.0 + row_h * n as f64;
        let w = bar_w * *total as f64 / max as f64;
        let fw = bar_w * *flagged as f64 / max as f64;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"all\" x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\"/>\
             <rect class=\"flagged\" x=\"{label_w}\" y=\"{y}\" width=\"{fw:.1}\" height=\"16\"/>\
             <text x=\"{}\" y=\"{}\">{}{}</text>",
            label_w - 6.0,
            y + 12.5,
            escape(label),
            label_w + w + 6.0,
            y + 12.5,
            human_bytes(*total),
            if *flagged > 0 {
                format!(" ({} flagged)", human_bytes(*flagged))
            } else {
                String::new()
            }
        ));
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Flagged bytes out over trace time, by the start of their flows.
fn timeline(r: &AuditReport) -> Option<String> {
    let (first, last) = (r.totals.first?, r.totals.last?);
    let span = last.as_nanos().saturating_sub(first.as_nanos()).max(1) as f64;
    let mut buckets = [0u64; TIMELINE_BUCKETS];
    for (start, bytes) in r.digest.timeline_points() {
        let at = start.saturating_sub(first.as_nanos()) as f64 / span;
        let b = ((at * TIMELINE_BUCKETS as f64) as usize).min(TIMELINE_BUCKETS - 1);
        buckets[b] += bytes;
    }
    let max = *buckets.iter().max()?;
    if max == 0 {
        return None;
    }
    let (w, h) = (600.0 / TIMELINE_BUCKETS as f64, 120.0);
    let mut svg = String::from(
        "<figure><figcaption>Flagged bytes out over trace time</figcaption>\
         <svg class=\"chart\" role=\"img\" viewBox=\"0 0 640 160\" width=\"640\" height=\"160\">\
         <title>Flagged bytes out over trace time</title>",
    );
    for (n, bytes) in buckets.iter().enumerate() {
        let bh = h * *bytes as f64 / max as f64;
        svg.push_str(&format!(
            "<rect class=\"flagged\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{}</title></rect>",
            20.0 + w * n as f64,
            10.0 + h - bh,
            (w - 1.0).max(1.0),
            human_bytes(*bytes)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"20\" y=\"150\">{}</text><text x=\"620\" y=\"150\" text-anchor=\"end\">{}</text>\
         <text x=\"24\" y=\"22\">{}</text></svg></figure>",
        escape(&first.to_string()),
        escape(&last.to_string()),
        human_bytes(max)
    ));
    Some(svg)
}

/// Keys (country codes, addresses) with bytes, most first.
type Shares = Vec<(String, u64)>;

/// Per rule pack: flagged bytes by the provider's jurisdiction and, apart,
/// by hosting country, and by local host.
fn regime_split(r: &AuditReport, pack: usize) -> (Shares, Shares, Shares) {
    let sorted = |mut v: Vec<(String, u64)>| {
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let Some(split) = r.digest.splits.get(pack) else { return Default::default() };
    let countries = |m: &HashMap<Option<CountryCode>, u64, ahash::RandomState>| {
        sorted(m.iter().map(|(c, b)| (country_key(*c), *b)).collect())
    };
    let hosts = sorted(split.hosts.iter().map(|(ip, b)| (ip.to_string(), *b)).collect());
    (countries(&split.law), countries(&split.hosted), hosts)
}

fn shares(list: &[(String, u64)]) -> String {
    let shown: Vec<String> =
        list.iter().take(8).map(|(c, b)| format!("{} {}", escape(c), human_bytes(*b))).collect();
    let more = list.len().saturating_sub(8);
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Writes the report.
pub fn write_html(r: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let mut h = String::with_capacity(64 * 1024);
    let title = match &r.live {
        Some(live) => format!("xborder live on {}: {} .. {}", live.interface, live.start, live.end),
        None => {
            let inputs: Vec<String> = r
                .inputs
                .iter()
                .map(|i| {
                    i.path.file_name().map_or_else(
                        || i.path.display().to_string(),
                        |n| n.to_string_lossy().into(),
                    )
                })
                .collect();
            format!("xborder audit: {}", inputs.join(", "))
        }
    };
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(&format!(
        "<title>{}</title>\n<style>{STYLE}</style></head><body>\n",
        escape(&title)
    ));
    h.push_str(&format!("<header><h1>{}</h1>", escape(&title)));
    if let Some(observer) = &r.observer {
        h.push_str(&format!("<p class=\"meta\">Observer {}</p>", escape(observer)));
    }
    if let (Some(first), Some(last)) = (r.totals.first, r.totals.last) {
        h.push_str(&format!(
            "<p class=\"meta\">Trace time {} .. {} · {} packets · {} flows · {} findings · xborder {}</p>",
            escape(&first.to_string()),
            escape(&last.to_string()),
            grouped(r.totals.packets),
            grouped(r.digest.flows),
            grouped(r.digest.findings),
            env!("CARGO_PKG_VERSION")
        ));
    }
    h.push_str(&format!("<p class=\"headline\">{}</p></header>\n", escape(&headline(r))));

    h.push_str("<main>\n<section id=\"regimes\"><h2>By rule pack</h2>");
    let regimes = regime_headlines(r);
    if regimes.is_empty() {
        h.push_str("<p>No finding at severity low or above.</p>");
    }
    for g in &regimes {
        let index = r.policy.packs.iter().position(|p| p.name == g.pack).unwrap_or(0);
        let (law, hosted, hosts) = regime_split(r, index);
        h.push_str(&format!(
            "<article class=\"regime\"><h3>{}</h3><p>{}</p><dl>\
             <dt>By the provider's jurisdiction</dt><dd>{}</dd>\
             <dt>By hosting country</dt><dd>{}</dd>\
             <dt>Local hosts</dt><dd>{}</dd></dl></article>",
            escape(&g.pack),
            escape(&format!(
                "{} local host{} sent {} to {}",
                grouped(g.headline.local_hosts as u64),
                if g.headline.local_hosts == 1 { "" } else { "s" },
                human_bytes(g.headline.bytes_out),
                g.headline.places()
            )),
            shares(&law),
            shares(&hosted),
            shares(&hosts)
        ));
    }
    h.push_str("</section>\n");

    let a = aggregate(r);
    if a.all.flows > 0 {
        h.push_str("<section id=\"charts\"><h2>Where the bytes went</h2>");
        let rows = |m: &BTreeMap<String, super::findings::Totals>| -> Vec<(String, u64, u64)> {
            m.iter().map(|(k, t)| (k.clone(), t.bytes_out, t.flagged_bytes_out)).collect()
        };
        h.push_str(&bar_chart("Bytes out by provider jurisdiction", &rows(&a.by_jurisdiction)));
        // Providers by name (the aggregates are keyed by id).
        let names = &r.digest.provider_names;
        let by_provider: Vec<(String, u64, u64)> = rows(&a.by_provider)
            .into_iter()
            .map(|(id, all, flagged)| (names.get(&id).map_or(id, Clone::clone), all, flagged))
            .collect();
        h.push_str(&bar_chart("Bytes out by provider", &by_provider));
        h.push_str(&bar_chart("Bytes out by hosting country", &rows(&a.by_hosting_country)));
        if let Some(t) = timeline(r) {
            h.push_str(&t);
        }
        h.push_str("</section>\n");
    }

    let data = findings_data(r);
    h.push_str("<section id=\"findings\"><h2>Findings</h2>");
    let (total, shown) = (data["total"].as_u64().unwrap_or(0), data["shown"].as_u64().unwrap_or(0));
    if shown < total {
        h.push_str(&format!(
            "<p class=\"note\">The {} most severe of {} findings are listed; the CSV and JSON formats hold them all.</p>",
            grouped(shown),
            grouped(total)
        ));
    }
    h.push_str(CONTROLS);
    h.push_str(
        "<table id=\"table\"><thead><tr>\
         <th data-key=\"rank\">Severity</th><th data-key=\"rule\">Rule</th>\
         <th data-key=\"local\">Local host</th><th data-key=\"remote\">Remote</th>\
         <th data-key=\"hosted_in\">Hosted in</th><th data-key=\"operator\">Provider (law)</th>\
         <th data-key=\"names\">Names</th><th data-key=\"bytes_out\">Out</th>\
         <th data-key=\"bytes_in\">In</th><th data-key=\"first_seen\">First seen</th>\
         <th data-key=\"file\">Evidence</th></tr></thead><tbody></tbody></table>\
         <p class=\"pager\"><button id=\"prev\">Previous</button> <span id=\"page\"></span> <button id=\"next\">Next</button></p>",
    );
    h.push_str("</section>\n");

    h.push_str("<section id=\"packs\"><h2>Rule packs</h2><table><thead><tr><th>Pack</th><th>Version</th><th>Source</th><th>Location</th><th>SHA-256</th></tr></thead><tbody>");
    for p in &r.policy.packs {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"hash\">{}</td></tr>",
            escape(&p.name),
            escape(&p.version),
            escape(&p.source),
            escape(&p.location),
            escape(&p.sha256)
        ));
    }
    h.push_str("</tbody></table></section>\n");
    if !r.provenance.is_empty() {
        h.push_str("<section id=\"data\"><h2>Data</h2><table><thead><tr><th>Role</th><th>Dataset</th><th>Records</th><th>Licence</th><th>SHA-256</th></tr></thead><tbody>");
        for d in &r.provenance {
            let what = d.entry.as_ref().map_or_else(
                || d.location.clone(),
                |e| format!("{}, snapshot {} ({})", e.name, e.snapshot, d.location),
            );
            let licence = d.entry.as_ref().map_or("", |e| e.licence.as_str());
            let sha = d.sha256().unwrap_or_else(|e| e.to_string());
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"hash\">{}</td></tr>",
                escape(d.role),
                escape(&what),
                escape(&d.records),
                escape(licence),
                escape(&sha)
            ));
        }
        h.push_str("</tbody></table></section>\n");
    }
    h.push_str(&format!(
        "<section id=\"summary\"><h2>Capture summary</h2><pre>{}</pre></section>\n</main>\n",
        escape(&super::summary::render(r))
    ));
    h.push_str(&format!(
        "<script type=\"application/json\" id=\"findings-data\">{}</script>\n<script>{SCRIPT}</script>\n</body></html>\n",
        script_json(&data)?
    ));
    out.write_all(h.as_bytes())
}

const CONTROLS: &str = "<form class=\"controls\" onsubmit=\"return false\">\
<label>Severity at least <select id=\"f-severity\"><option value=\"0\">info</option>\
<option value=\"1\">low</option><option value=\"2\">medium</option><option value=\"3\">high</option>\
<option value=\"4\">critical</option></select></label> \
<label>Rule <select id=\"f-rule\"><option value=\"\">any</option></select></label> \
<label>Host <input id=\"f-host\" type=\"search\" placeholder=\"local or remote address\"></label> \
<label>Country <input id=\"f-country\" type=\"search\" size=\"4\" placeholder=\"CN\"></label> \
<span id=\"count\"></span></form>";

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#fff}
header{background:#1d2b45;color:#fff;padding:18px 28px}
header h1{font-size:20px;margin:0 0 4px}
.meta{opacity:.8;margin:0 0 8px}
.headline{font-size:16px;margin:0;max-width:72em}
main{padding:8px 28px 40px}
h2{font-size:17px;border-bottom:2px solid #1d2b45;padding-bottom:3px;margin-top:28px}
.regime{border-left:4px solid #b3261e;padding:2px 12px;margin:10px 0}
.regime h3{margin:4px 0;font-size:15px}
.regime dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}
.regime dt{color:#555}
.regime dd{margin:0}
figure{display:inline-block;margin:8px 24px 8px 0;vertical-align:top}
figcaption{font-weight:600;margin-bottom:4px}
.chart text{font-size:12px;fill:#1d2330}
.chart rect.all{fill:#b8c4d9}
.chart rect.flagged{fill:#b3261e}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #dde2ea;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eef1f6;cursor:pointer;white-space:nowrap}
th.asc::after{content:" \25B2"} th.desc::after{content:" \25BC"}
td.num{text-align:right;white-space:nowrap}
.sev{font-weight:700;text-transform:uppercase;font-size:11px;padding:1px 5px;border-radius:3px;color:#fff}
.sev-critical{background:#6d0f0a}.sev-high{background:#b3261e}.sev-medium{background:#c76b00}.sev-low{background:#5f6b7a}.sev-info{background:#9aa4b1}
.filter{font-family:ui-monospace,monospace;font-size:11px;color:#444;word-break:break-all}
.hash{font-family:ui-monospace,monospace;font-size:11px;word-break:break-all}
.controls{margin:8px 0;display:flex;flex-wrap:wrap;gap:12px;align-items:center}
.note{color:#8a4b00}
pre{background:#f6f7f9;padding:10px;overflow:auto;font-size:12px}
@media print{
 header{background:none;color:#000;border-bottom:2px solid #000}
 .controls,.pager{display:none}
 th{cursor:auto}
 section{break-inside:auto}
 tr,figure,.regime{break-inside:avoid}
 body{font-size:11px}
}
"#;

const SCRIPT: &str = r##"
(function(){
"use strict";
var data=JSON.parse(document.getElementById("findings-data").textContent);
var rows=data.findings.map(function(a){
 var r={};data.columns.forEach(function(c,i){r[c]=a[i];});
 var rule=data.rules[r.rule];r.rule=rule.id;r.title=rule.title;r.pack=rule.pack;r.severity=rule.severity;r.rank=rule.rank;
 r.file=data.files[r.file];return r;});
var view=rows.slice(), page=0, size=200, key="rank", dir=-1;
/* A Wireshark display filter isolating the flow: its 5-tuple (a later
   flow on the same 5-tuple matches too; the first frame tells them apart). */
function filter(r){
 var ip=r.local.indexOf(":")>=0?"ipv6":"ip";
 var f=ip+".addr == "+r.local+" && "+ip+".addr == "+r.remote;
 if((r.transport==="tcp"||r.transport==="udp")&&r.local_port!=null&&r.remote_port!=null){
  f+=" && "+r.transport+".port == "+r.local_port;
  if(r.local_port!==r.remote_port)f+=" && "+r.transport+".port == "+r.remote_port;
 }
 return f;
}
var body=document.querySelector("#table tbody");
var sel=document.getElementById("f-rule"), rules={};
rows.forEach(function(r){rules[r.rule]=1;});
Object.keys(rules).sort().forEach(function(r){var o=document.createElement("option");o.value=r;o.textContent=r;sel.appendChild(o);});
function bytes(n){var u=["B","kB","MB","GB","TB"],i=0;while(n>=1000&&i<u.length-1){n/=1000;i++;}return i?n.toFixed(1)+" "+u[i]:n+" B";}
function cell(tr,text,cls){var td=document.createElement("td");if(cls)td.className=cls;td.textContent=text==null?"":String(text);tr.appendChild(td);return td;}
function row(r){
 var tr=document.createElement("tr");
 var td=document.createElement("td"),s=document.createElement("span");
 s.className="sev sev-"+r.severity;s.textContent=r.severity;td.appendChild(s);tr.appendChild(td);
 var rule=cell(tr,r.rule);rule.title=r.title+" ["+r.pack+"]";
 cell(tr,r.local);
 cell(tr,r.remote+(r.remote_port!=null?" port "+r.remote_port:"")+" "+r.transport);
 cell(tr,r.hosted_in||"unknown");
 cell(tr,(r.vendor?r.vendor+"; ":"")+(r.operator||"")+(r.law?" ("+r.law+" law)":""));
 cell(tr,r.names||"");
 cell(tr,bytes(r.bytes_out),"num");cell(tr,bytes(r.bytes_in),"num");
 cell(tr,r.first_seen);
 var ev=cell(tr,r.file+" frame "+r.frame);
 var f=document.createElement("div");f.className="filter";f.textContent=filter(r);ev.appendChild(f);
 return tr;
}
function render(all){
 body.textContent="";
 var start=all?0:page*size, end=all?view.length:Math.min(view.length,start+size);
 var frag=document.createDocumentFragment();
 for(var i=start;i<end;i++)frag.appendChild(row(view[i]));
 body.appendChild(frag);
 var pages=Math.max(1,Math.ceil(view.length/size));
 document.getElementById("page").textContent="page "+(page+1)+" of "+pages;
 document.getElementById("count").textContent=view.length+" of "+data.total+" findings";
}
function apply(){
 var sev=+document.getElementById("f-severity").value, rule=sel.value;
 var host=document.getElementById("f-host").value.trim(), cc=document.getElementById("f-country").value.trim().toUpperCase();
 view=rows.filter(function(r){
  return r.rank>=sev&&(!rule||r.rule===rule)&&(!host||r.local.indexOf(host)>=0||r.remote.indexOf(host)>=0)
   &&(!cc||r.hosted_in===cc||r.law===cc||r.about===cc);
 });
 view.sort(function(a,b){var x=a[key],y=b[key];if(x==null)x="";if(y==null)y="";return (x<y?-1:x>y?1:0)*dir;});
 page=0;render(false);
}
document.querySelectorAll("#table th").forEach(function(th){
 th.addEventListener("click",function(){
  var k=th.getAttribute("data-key");dir=(k===key)?-dir:(k==="rank"||k.indexOf("bytes")===0?-1:1);key=k;
  document.querySelectorAll("#table th").forEach(function(t){t.className="";});
  th.className=dir>0?"asc":"desc";apply();
 });
});
["f-severity","f-rule","f-host","f-country"].forEach(function(id){document.getElementById(id).addEventListener("input",apply);});
document.getElementById("prev").addEventListener("click",function(){if(page>0){page--;render(false);}});
document.getElementById("next").addEventListener("click",function(){if((page+1)*size<view.length){page++;render(false);}});
window.addEventListener("beforeprint",function(){render(true);});
window.addEventListener("afterprint",function(){render(false);});
apply();
})();
"##;
