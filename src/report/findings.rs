//! Findings joined with their flow, rule, intelligence and names; the
//! headline; aggregates; CSV.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::digest::{country_key, CountryTally, HeadlineTally};
use super::summary::{grouped, human_bytes};
use super::{AuditReport, Finding};
use crate::flow::{protocol_name, FlowRecord, Sides};
use crate::intel::{Intel, VendorMatch};
use crate::names::FlowNames;
use crate::policy::{Rule, RulePack, Severity};

/// Findings at or above this severity count as "restricted" in the
/// headline and the aggregates; info findings are context.
pub const RESTRICTED: Severity = Severity::Low;

/// A finding with everything a report shows about it.
#[derive(Clone, Copy)]
pub struct FindingView<'a> {
    pub finding: &'a Finding,
    pub flow: &'a FlowRecord,
    pub pack: &'a RulePack,
    pub rule: &'a Rule,
    pub sides: Sides<'a>,
    /// Shared, so that what keeps it need not look it up again.
    pub intel: Option<&'a Arc<Intel>>,
    pub names: Option<&'a FlowNames>,
    /// The vendor the names belong to.
    pub vendor: Option<&'a VendorMatch>,
    /// The input holding the flow's first packet.
    pub file: &'a Path,
}

impl FindingView<'_> {
    /// The server name, else the first DNS name.
    pub fn name(&self) -> Option<&str> {
        self.shared_name().map(|n| &**n)
    }

    /// [`Self::name`], as the flow's names hold it.
    pub fn shared_name(&self) -> Option<&Arc<str>> {
        let n = self.names?;
        n.server_name.as_ref().map(|(s, _)| s).or_else(|| n.dns.first())
    }

    /// Who runs the remote endpoint: provider, else AS organisation.
    pub fn operator(&self) -> Option<&str> {
        let i = self.intel?;
        i.provider_name.as_deref().or(i.as_org.as_deref())
    }

    /// Who the finding is about: the vendor when the rule tested it, else
    /// the [`Self::operator`].
    pub fn subject(&self) -> Option<&str> {
        match self.vendor {
            Some(v) if self.rule.matches.tests_vendor() => Some(&v.vendor.name),
            _ => self.operator(),
        }
    }
}

impl AuditReport {
    /// Every finding, in order, with its context.
    pub fn finding_views(&self) -> impl Iterator<Item = FindingView<'_>> {
        self.findings.iter().map(move |finding| self.finding_view(finding))
    }

    /// One of [`Self::findings`] with its context.
    pub fn finding_view<'a>(&'a self, finding: &'a Finding) -> FindingView<'a> {
        let flow = &self.flows[finding.flow];
        let (pack, rule) = self.policy.rule(&finding.matched);
        FindingView {
            finding,
            flow,
            pack,
            rule,
            sides: flow.sides(),
            intel: flow.remote().and_then(|r| self.remote_intel.get(&r.ip)),
            names: self.names.get(&flow.id),
            vendor: self.vendors.get(&flow.id),
            file: self.input_path(flow.first_frame.file),
        }
    }

    /// Findings per severity, most severe first (only severities present).
    pub fn severity_counts(&self) -> Vec<(Severity, usize)> {
        self.digest.by_severity.iter().rev().map(|(s, n)| (*s, *n as usize)).collect()
    }

    /// The most severe finding, if any.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.digest.worst_severity()
    }
}

/// Flows and bytes of one group of remote flows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub flows: u64,
    /// Sent by the local end.
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Flows with a finding of severity low or above.
    pub flagged_flows: u64,
    pub flagged_bytes_out: u64,
}

impl Totals {
    /// Adds `other`'s counts.
    pub(super) fn merge(&mut self, other: &Totals) {
        self.flows += other.flows;
        self.bytes_out += other.bytes_out;
        self.bytes_in += other.bytes_in;
        self.flagged_flows += other.flagged_flows;
        self.flagged_bytes_out += other.flagged_bytes_out;
    }

    pub(super) fn add(&mut self, f: &FlowRecord, flagged: bool) {
        let s = f.sides();
        self.flows += 1;
        self.bytes_out += s.sent.bytes;
        self.bytes_in += s.received.bytes;
        if flagged {
            self.flagged_flows += 1;
            self.flagged_bytes_out += s.sent.bytes;
        }
    }
}

/// Every flow with a remote endpoint, grouped four ways. Keys are ISO
/// codes, provider ids and addresses; `unknown` when intelligence had no
/// answer, `none` for an address no provider runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Aggregates {
    pub all: Totals,
    pub by_jurisdiction: BTreeMap<String, Totals>,
    pub by_hosting_country: BTreeMap<String, Totals>,
    pub by_provider: BTreeMap<String, Totals>,
    pub by_local_host: BTreeMap<IpAddr, Totals>,
}

/// The aggregates of every flow of the run.
pub fn aggregate(r: &AuditReport) -> Aggregates {
    r.digest.aggregates.aggregates()
}

/// How many countries a headline names; the rest are "N more".
pub const HEADLINE_COUNTRIES: usize = 5;
/// How many operators a headline names per country.
const HEADLINE_OPERATORS: usize = 3;

/// The countries one group of restricted findings is about, each with its
/// operators: who sent how much where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Headline {
    /// Local hosts with a restricted finding.
    pub local_hosts: usize,
    /// Bytes those flows sent (each flow counted once).
    pub bytes_out: u64,
    /// The countries, most bytes first, at most [`HEADLINE_COUNTRIES`].
    pub countries: Vec<CountryShare>,
    /// Countries left out.
    pub more_countries: usize,
}

/// A country of a [`Headline`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CountryShare {
    /// ISO code, or `unknown`.
    pub country: String,
    pub bytes_out: u64,
    /// Who the findings are about (vendor, provider or AS organisation),
    /// most bytes first, at most three.
    pub operators: Vec<String>,
    pub more_operators: usize,
}

impl Headline {
    /// Of the restricted findings a tally took in.
    pub(super) fn of_tally(t: &HeadlineTally) -> Self {
        let mut countries: Vec<(String, &CountryTally)> =
            t.countries.iter().map(|(c, tally)| (country_key(*c), tally)).collect();
        countries.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
        let more_countries = countries.len().saturating_sub(HEADLINE_COUNTRIES);
        let countries = countries
            .into_iter()
            .take(HEADLINE_COUNTRIES)
            .map(|(country, tally)| {
                let mut ops: Vec<(&String, &u64)> = tally.operators.iter().collect();
                ops.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
                let more_operators = ops.len().saturating_sub(HEADLINE_OPERATORS);
                let operators =
                    ops.into_iter().take(HEADLINE_OPERATORS).map(|(n, _)| n.clone()).collect();
                CountryShare {
                    country: country.clone(),
                    bytes_out: tally.bytes,
                    operators,
                    more_operators,
                }
            })
            .collect();
        Headline {
            local_hosts: t.local_hosts.len(),
            bytes_out: t.bytes_out,
            countries,
            more_countries,
        }
    }
    /// "CN (A, B, 2 more), RU (C), and 3 more countries".
    pub fn places(&self) -> String {
        let mut parts: Vec<String> = self
            .countries
            .iter()
            .map(|c| {
                let mut names = c.operators.clone();
                if c.more_operators > 0 {
                    names.push(format!("{} more", c.more_operators));
                }
                format!("{} ({})", c.country, names.join(", "))
            })
            .collect();
        if self.more_countries > 0 {
            parts.push(format!(
                "and {} more countr{}",
                self.more_countries,
                if self.more_countries == 1 { "y" } else { "ies" }
            ));
        }
        parts.join(", ")
    }
}

/// The headline of one rule pack (one regime).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegimeHeadline {
    pub pack: String,
    /// The sentence, as the text report prints it.
    pub text: String,
    #[serde(flatten)]
    pub headline: Headline,
}

/// One headline per rule pack with restricted findings, in pack order:
/// GDPR third countries and US foreign adversaries are different
/// questions, and each gets its own answer.
pub fn regime_headlines(r: &AuditReport) -> Vec<RegimeHeadline> {
    r.policy
        .packs
        .iter()
        .enumerate()
        .filter_map(|(index, pack)| {
            let h = r.digest.regimes.get(index)?.headline();
            (h.local_hosts > 0).then(|| RegimeHeadline {
                pack: pack.name.clone(),
                text: format!(
                    "{}: {} local host{} sent {} to {}",
                    pack.name,
                    grouped(h.local_hosts as u64),
                    plural(h.local_hosts),
                    human_bytes(h.bytes_out),
                    h.places()
                ),
                headline: h,
            })
        })
        .collect()
}

/// One sentence a manager can read: who sent how much where, over every
/// pack (at most [`HEADLINE_COUNTRIES`] countries are named).
pub fn headline(r: &AuditReport) -> String {
    let h = r.digest.headline.headline();
    if h.local_hosts == 0 {
        // Two figures of the tally: no need to key the aggregates as
        // reports write them.
        let a = &r.digest.aggregates;
        let info = r.digest.findings as usize;
        return format!(
            "No flow matched a rule at severity {RESTRICTED} or above: {} local host{} sent {} \
             to remote endpoints{}.",
            grouped(a.by_local_host.len() as u64),
            plural(a.by_local_host.len()),
            human_bytes(a.all.bytes_out),
            if info > 0 {
                format!(" ({info} info finding{})", plural(info))
            } else {
                String::new()
            }
        );
    }
    format!(
        "{} local host{} sent {} to endpoints in or under restricted jurisdictions: {}",
        grouped(h.local_hosts as u64),
        plural(h.local_hosts),
        human_bytes(h.bytes_out),
        h.places()
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// CSV columns, one row per finding.
pub const CSV_COLUMNS: &[&str] = &[
    "severity",
    "rule_id",
    "rule_pack",
    "rule_title",
    "local_ip",
    "local_port",
    "remote_ip",
    "remote_port",
    "transport",
    "direction",
    "hosting_country",
    "country_source",
    "jurisdiction",
    "provider",
    "provider_name",
    "service",
    "region",
    "asn",
    "as_org",
    "server_name",
    "dns_names",
    "vendor",
    "vendor_name",
    "vendor_product",
    "vendor_jurisdiction",
    "bytes_out",
    "bytes_in",
    "packets_out",
    "packets_in",
    "first_seen",
    "last_seen",
    "file",
    "first_frame",
    "unknown_facts",
];

/// RFC 4180: quote a field holding a comma, quote, CR or LF.
fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One row per finding, with a header; values exact (bytes, RFC 3339 UTC).
pub fn write_csv(r: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    write_csv_header(r, out)?;
    write_csv_rows(r, out)?;
    out.flush()
}

/// The header row of [`write_csv`].
pub fn write_csv_header(r: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let mut line = CSV_COLUMNS.join(",");
    // With --observer, one column more: who saw it.
    if r.observer.is_some() {
        line.push_str(",observer");
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

/// The rows of the findings of `r`'s flows (a part of a run).
pub fn write_csv_rows(r: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let mut line = String::new();
    for v in r.finding_views() {
        let i = v.intel;
        let opt = |s: Option<&str>| s.unwrap_or("").to_owned();
        let fields = [
            v.rule.severity.as_str().to_owned(),
            v.rule.id.clone(),
            v.pack.name.clone(),
            v.rule.title.clone(),
            v.sides.local.ip.to_string(),
            v.sides.local.port.map_or_else(String::new, |p| p.to_string()),
            v.sides.remote.ip.to_string(),
            v.sides.remote.port.map_or_else(String::new, |p| p.to_string()),
            protocol_name(v.flow.protocol)
                .map_or_else(|| v.flow.protocol.to_string(), str::to_owned),
            v.flow.direction.as_str().to_owned(),
            opt(i.and_then(|i| i.country).as_ref().map(|c| c.as_str())),
            opt(i.and_then(|i| i.country_source).map(|s| s.as_str())),
            opt(i.and_then(|i| i.jurisdiction).as_ref().map(|c| c.as_str())),
            opt(i.and_then(|i| i.provider.as_deref())),
            opt(i.and_then(|i| i.provider_name.as_deref())),
            opt(i.and_then(|i| i.service.as_deref())),
            opt(i.and_then(|i| i.region.as_deref())),
            i.and_then(|i| i.asn).map_or_else(String::new, |a| a.to_string()),
            opt(i.and_then(|i| i.as_org.as_deref())),
            opt(v.names.and_then(|n| n.server_name.as_ref()).map(|(s, _)| &**s)),
            v.names.map_or_else(String::new, |n| {
                n.dns.iter().map(|d| &**d).collect::<Vec<_>>().join(" ")
            }),
            opt(v.vendor.map(|m| m.vendor.id.as_str())),
            opt(v.vendor.map(|m| m.vendor.name.as_str())),
            opt(v.vendor.map(|m| m.product().name.as_str())),
            opt(v.vendor.map(|m| m.vendor.jurisdiction.as_str())),
            v.sides.sent.bytes.to_string(),
            v.sides.received.bytes.to_string(),
            v.sides.sent.packets.to_string(),
            v.sides.received.packets.to_string(),
            v.flow.start.to_string(),
            v.flow.end.to_string(),
            v.file.display().to_string(),
            v.flow.first_frame.frame.to_string(),
            v.finding.matched.unknown.join(" "),
        ];
        line.clear();
        for (n, f) in fields.iter().enumerate() {
            if n > 0 {
                line.push(',');
            }
            csv_field(&mut line, f);
        }
        if let Some(observer) = &r.observer {
            line.push(',');
            csv_field(&mut line, observer);
        }
        line.push_str("\r\n");
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut s = String::new();
        csv_field(&mut s, "plain");
        s.push(',');
        csv_field(&mut s, "a, \"b\"");
        assert_eq!(s, "plain,\"a, \"\"b\"\"\"");
    }
}
