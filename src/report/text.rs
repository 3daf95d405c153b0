//! The report for people: a headline, findings grouped by rule and local
//! host with the top remote endpoints, the rule packs and data in force,
//! then the capture summary. Fits 80 columns; colour only when asked
//! (the binary asks on a terminal).

use std::fmt::Write;
use std::net::IpAddr;

use super::digest::{EndpointTally, HostTally};
use super::findings::{headline, regime_headlines};
use super::summary::{self, grouped, human_bytes};
use super::AuditReport;
use crate::policy::Severity;

/// Local hosts listed per rule, and remote endpoints per local host.
pub const TOP_HOSTS: usize = 10;
pub const TOP_ENDPOINTS: usize = 5;
const WIDTH: usize = 80;

/// Renders the whole text report.
pub fn render(r: &AuditReport, colour: bool) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(r, colour, &mut s);
    s
}

fn paint(colour: bool, severity: Severity, text: &str) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match severity {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Word-wraps `text` to [`WIDTH`] columns, each line indented by `indent`.
fn wrap(s: &mut String, indent: usize, text: &str) {
    wrap_hanging(s, indent, indent, text);
}

/// [`wrap`], the lines after the first indented by `rest`.
fn wrap_hanging(s: &mut String, first: usize, rest: usize, text: &str) {
    let mut line = String::new();
    let mut indent = first;
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(s, "{:indent$}{line}", "");
            line.clear();
            indent = rest;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(s, "{:indent$}{line}", "");
    }
}

/// Cuts `text` to `width` characters, marking the cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn write_report(r: &AuditReport, colour: bool, s: &mut String) -> std::fmt::Result {
    wrap(s, 0, &headline(r));
    // Each regime's own answer, when there is more than the one above.
    let regimes = regime_headlines(r);
    if regimes.len() > 1 {
        writeln!(s, "\nBy rule pack")?;
        for h in &regimes {
            wrap_hanging(s, 2, 4, &h.text);
        }
    }
    writeln!(s)?;
    let counts = r.severity_counts();
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let by: Vec<String> =
        counts.iter().map(|(sev, n)| format!("{} {sev}", grouped(*n as u64))).collect();
    writeln!(
        s,
        "Findings   {}{} ({} rule pack{}, {} rule{})",
        grouped(total as u64),
        if by.is_empty() { String::new() } else { format!(": {}", by.join(", ")) },
        r.policy.packs.len(),
        if r.policy.packs.len() == 1 { "" } else { "s" },
        r.policy.rule_count(),
        if r.policy.rule_count() == 1 { "" } else { "s" }
    )?;

    // Rule (most severe first, then pack and rule order) → local host.
    for ((severity, pack, rule), tally) in &r.digest.groups {
        let pack = &r.policy.packs[*pack];
        let rule = &pack.rules[*rule];
        let label = paint(colour, severity.0, &severity.0.as_str().to_uppercase());
        writeln!(s, "\n{label} {} [{}]", rule.id, pack.name)?;
        wrap(s, 2, &rule.title);
        let mut hosts: Vec<(&IpAddr, &HostTally)> = tally.hosts.iter().collect();
        // The hosts past the first few are only summed.
        summary::sort_first(&mut hosts, TOP_HOSTS, |a, b| {
            b.1.bytes_out.cmp(&a.1.bytes_out).then(a.0.cmp(b.0))
        });
        // The remote endpoints of the hosts shown, gathered in one pass: a
        // map of every host's endpoints (up to thousands a rule) cost more
        // than the rest of the report.
        let top = &hosts[..hosts.len().min(TOP_HOSTS)];
        let mut remotes_of: Vec<Vec<(&IpAddr, &EndpointTally)>> = vec![Vec::new(); top.len()];
        for ((local, remote), e) in &tally.endpoints {
            if let Some(i) = top.iter().position(|(ip, _)| *ip == local) {
                remotes_of[i].push((remote, e));
            }
        }
        for ((ip, h), mut remotes) in top.iter().zip(remotes_of) {
            writeln!(
                s,
                "  {ip}  {} flow{}, {} out, {} in",
                grouped(h.flows),
                if h.flows == 1 { "" } else { "s" },
                human_bytes(h.bytes_out),
                human_bytes(h.bytes_in)
            )?;
            // Only those shown need their order.
            summary::sort_first(&mut remotes, TOP_ENDPOINTS, |a, b| {
                b.1.bytes_out.cmp(&a.1.bytes_out).then(a.0.cmp(b.0))
            });
            for (ip, e) in remotes.iter().take(TOP_ENDPOINTS) {
                write_endpoint(s, r, ip, e)?;
            }
            if h.forgotten {
                // More endpoints than the digest tracks (report::digest):
                // what the rest sent, which is exact, not how many they are.
                let shown = &remotes[..remotes.len().min(TOP_ENDPOINTS)];
                let flows = h.flows - shown.iter().map(|(_, e)| e.flows).sum::<u64>();
                let out = h.bytes_out - shown.iter().map(|(_, e)| e.bytes_out).sum::<u64>();
                writeln!(
                    s,
                    "    … and more remote endpoints: {} flows, {} out",
                    grouped(flows),
                    human_bytes(out)
                )?;
            } else if remotes.len() > TOP_ENDPOINTS {
                let more = (remotes.len() - TOP_ENDPOINTS) as u64;
                writeln!(s, "    … and {} more remote endpoints", grouped(more))?;
            }
        }
        if hosts.len() > TOP_HOSTS {
            let rest = &hosts[TOP_HOSTS..];
            let flows: u64 = rest.iter().map(|(_, h)| h.flows).sum();
            let out: u64 = rest.iter().map(|(_, h)| h.bytes_out).sum();
            writeln!(
                s,
                "  … and {} more local hosts: {} flows, {} out",
                grouped(rest.len() as u64),
                grouped(flows),
                human_bytes(out)
            )?;
        }
    }

    if !r.policy.packs.is_empty() {
        writeln!(s, "\nRule packs")?;
        for p in &r.policy.packs {
            writeln!(s, "  {} {} ({})", p.name, p.version, p.location)?;
            wrap(s, 4, &p.source);
        }
    }
    if !r.provenance.is_empty() {
        writeln!(s, "\nData")?;
        for d in &r.provenance {
            let what = d.entry.as_ref().map_or_else(
                || format!("{}, {}", d.location, d.records),
                |e| format!("{}, snapshot {}", e.name, e.snapshot),
            );
            writeln!(s, "{}", fit(&format!("  {:<16} {what}", d.role), WIDTH))?;
        }
    }
    writeln!(s)?;
    s.push_str(&summary::render(r));
    Ok(())
}

fn write_endpoint(
    s: &mut String,
    r: &AuditReport,
    ip: &IpAddr,
    e: &EndpointTally,
) -> std::fmt::Result {
    let ports: Vec<String> = e.ports.as_slice().iter().take(3).map(u16::to_string).collect();
    let more = if e.ports.as_slice().len() > 3 { ",…" } else { "" };
    let at = if ports.is_empty() {
        ip.to_string()
    } else {
        format!("{ip} port {}{more}", ports.join(","))
    };
    let mut line = format!(
        "    {at}  {} out, {} in, {} flow{}",
        human_bytes(e.bytes_out),
        human_bytes(e.bytes_in),
        e.flows,
        if e.flows == 1 { "" } else { "s" }
    );
    writeln!(s, "{}", fit(&line, WIDTH))?;
    let v = &e.first;
    // Who and where, then the name and the evidence of the first flow.
    line.clear();
    // Where first (it is what the rules are about), then who.
    if let Some(i) = &v.intel {
        match i.country {
            Some(c) => write!(line, "hosted in {c}")?,
            None => line.push_str("hosting country unknown"),
        }
        if let Some(region) = &i.region {
            write!(line, " ({region})")?;
        }
        let operator = i.provider_name.as_deref().or(i.as_org.as_deref());
        match (operator, i.jurisdiction) {
            (Some(op), Some(j)) if i.provider.is_some() => write!(line, "; {j}-law provider {op}")?,
            (Some(op), _) => write!(line, "; {op}")?,
            _ => {}
        }
        if let Some(asn) = i.asn {
            write!(line, "; AS{asn}")?;
        }
    }
    if !v.unknown.is_empty() {
        write!(line, "; unknown: {}", v.unknown.join(", "))?;
    }
    if !line.is_empty() {
        writeln!(s, "{}", fit(&format!("      {line}"), WIDTH))?;
    }
    if let Some(m) = &v.vendor {
        let vendor = format!(
            "      vendor {} ({} law): {}",
            m.vendor.name,
            m.vendor.jurisdiction,
            m.product().name
        );
        writeln!(s, "{}", fit(&vendor, WIDTH))?;
    }
    if !v.tunnels.is_empty() {
        let layers: Vec<String> = v
            .tunnels
            .iter()
            .map(|t| {
                let id = t.id.map_or_else(String::new, |id| format!(" id {id}"));
                format!("{} {} > {}{id}", t.kind.as_str(), t.src, t.dst)
            })
            .collect();
        writeln!(s, "{}", fit(&format!("      inside {}", layers.join(", in it ")), WIDTH))?;
    }
    let (start, frame, _) = v.order;
    let path = r.input_path(frame.file);
    let file = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let evidence = format!("{file} frame {} at {}", frame.frame, seconds(start));
    let text = match &v.name {
        Some(name) => format!("      {name} · first: {evidence}"),
        None => format!("      first: {evidence}"),
    };
    writeln!(s, "{}", fit(&text, WIDTH))
}

/// `2024-03-01 12:00:04Z`: trace time to the second, for people.
fn seconds(t: crate::time::Timestamp) -> String {
    let full = t.rfc3339();
    let full = String::from_utf8_lossy(&full);
    format!("{} {}Z", &full[..10], &full[11..19])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::decode::FrameRef;
    use crate::flow::{Direction, EndReason, Endpoint, FlowRecord, SideStats};
    use crate::policy::{FlowFacts, Policy, RulePack};
    use crate::report::Finding;
    use crate::time::Timestamp;

    /// A long flow that ends last comes in a later part than a short one to
    /// the same endpoint that started after it: the report's "first:" is
    /// still the long one, as in a report made from every flow at once.
    #[test]
    fn the_first_flow_shown_is_the_earliest_whatever_part_brought_it() {
        let policy = crate::policy::one_rule_policy("out", "outbound");
        let stats = SideStats { packets: 1, bytes: 100, payload_bytes: 0, tcp_flags: 0 };
        let flow = |id: u64, port: u16, start: i64| FlowRecord {
            id,
            protocol: 6,
            source: Endpoint { ip: [10, 0, 0, 1].into(), port: Some(port) },
            destination: Endpoint { ip: [192, 0, 2, 1].into(), port: Some(443) },
            source_stats: stats,
            destination_stats: stats,
            start: Timestamp::from_parts(start, 0),
            end: Timestamp::from_parts(start + 1, 0),
            first_frame: FrameRef { file: 0, frame: id },
            direction: Direction::Outbound,
            end_reason: EndReason::TcpClosed,
            tunnels: Default::default(),
            carries: None,
        };
        let mut r = AuditReport { policy, ..Default::default() };
        for part in [flow(2, 40002, 5), flow(1, 40001, 0)] {
            let facts = FlowFacts { flow: &part, intel: None, names: None, vendor: None };
            let findings = r.policy.evaluate(&facts);
            let part = AuditReport {
                flows: vec![part],
                findings: findings
                    .into_iter()
                    .map(|matched| Finding { flow: 0, matched, country: None, early: false })
                    .collect(),
                policy: r.policy.clone(),
                ..Default::default()
            };
            r.digest.add(&part);
        }
        let out = render(&r, false);
        assert!(out.contains("first:  frame 1 at 1970-01-01 00:00:00Z"), "{out}");
        assert!(out.contains("192.0.2.1 port 443  200 B out, 200 B in, 2 flows"), "{out}");
    }

    #[test]
    fn long_reports_stay_within_80_columns_and_list_the_top_hosts() {
        let text = "[pack]\nname = \"p\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n\
                    [[rule]]\nid = \"all-outbound\"\ntitle = \"Every outbound flow, with a title \
                    long enough to need wrapping at eighty columns of text\"\n\
                    severity = \"low\"\n[rule.match]\ndirection = \"outbound\"\n";
        let (providers, vendors) = Default::default();
        let catalogues = crate::policy::Catalogues { providers: &providers, vendors: &vendors };
        let (pack, _) = RulePack::parse(text, Path::new("p.toml"), catalogues).unwrap();
        let mut r = AuditReport { policy: Policy { packs: vec![pack] }, ..Default::default() };
        let stats = |bytes| SideStats { packets: 1, bytes, payload_bytes: 0, tcp_flags: 0 };
        for i in 0..(TOP_HOSTS as u8 + 2) {
            for j in 0..(TOP_ENDPOINTS as u8 + 1) {
                r.flows.push(FlowRecord {
                    id: r.flows.len() as u64 + 1,
                    protocol: 6,
                    source: Endpoint { ip: [10, 0, 0, i].into(), port: Some(40000) },
                    destination: Endpoint { ip: [192, 0, 2, j].into(), port: Some(443) },
                    source_stats: stats(1000 + u64::from(i)),
                    destination_stats: stats(10),
                    start: Timestamp::from_parts(0, 0),
                    end: Timestamp::from_parts(1, 0),
                    first_frame: FrameRef { file: 0, frame: r.flows.len() as u64 + 1 },
                    direction: Direction::Outbound,
                    end_reason: EndReason::TcpClosed,
                    tunnels: Default::default(),
                    carries: None,
                });
            }
        }
        for (index, flow) in r.flows.iter().enumerate() {
            let facts = FlowFacts { flow, intel: None, names: None, vendor: None };
            for matched in r.policy.evaluate(&facts) {
                r.findings.push(Finding { flow: index, matched, country: None, early: false });
            }
        }
        r.digest = crate::report::digest::Digest::of(&r);
        let out = render(&r, false);
        // The same report from a run handed on in parts of 7 flows, in
        // either order: a later part may bring an earlier flow (a long one
        // that ended last), whose finding is then the first seen.
        let whole = std::mem::take(&mut r.digest);
        for reversed in [false, true] {
            let mut parts = crate::report::digest::Digest::default();
            let mut chunks: Vec<(usize, &[FlowRecord])> = r.flows.chunks(7).enumerate().collect();
            if reversed {
                chunks.reverse();
            }
            for (n, flows) in chunks {
                let findings = r.findings.iter().filter(|f| f.flow / 7 == n);
                let part = AuditReport {
                    flows: flows.to_vec(),
                    findings: findings.map(|f| Finding { flow: f.flow % 7, ..f.clone() }).collect(),
                    policy: r.policy.clone(),
                    ..Default::default()
                };
                parts.add(&part);
            }
            r.digest = parts;
            assert_eq!(render(&r, false), out, "parts reversed: {reversed}");
        }
        r.digest = whole;
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(out.contains("  … and 2 more local hosts: 12 flows, 12.0 kB out\n"), "{out}");
        assert!(out.contains("    … and 1 more remote endpoints\n"), "{out}");
        // The host that sent most comes first.
        assert!(out.contains("LOW all-outbound [p]\n  Every outbound flow"), "{out}");
        assert!(out.contains("need wrapping at eighty\n  columns of text\n"), "{out}");
        assert!(out.contains("\n  10.0.0.11  6 flows, 6.1 kB out, 60 B in\n"), "{out}");
    }
}
