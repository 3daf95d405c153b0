//! The policy stage: rule packs (TOML, `rules/README.md`) evaluated once
//! per finished flow against its remote endpoint's intelligence, the
//! names the traffic gave it and the vendor those names belong to.
//!
//! Within a field the values are alternatives; the fields of a block must
//! all hold. A rule matches when its `match` block holds and none of its
//! `unless` blocks does.

mod diagnostic;
mod parse;
pub mod shipped;

pub use diagnostic::{Diagnostic, Level};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use crate::files::RULE_PACK_LIMIT;
use crate::flow::{Direction, FlowRecord};
use crate::intel::{
    AddressClass, CountryCode, CountryList, Intel, ProviderCatalogue, VendorCatalogue, VendorMatch,
};
use crate::names::FlowNames;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// ECS `event.severity`: 1 (info) to 5 (critical).
    pub fn number(self) -> u64 {
        self as u64 + 1
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule does with a flow whose remote address is public but lacks
/// a fact the rule tests (hosting country, jurisdiction, provider,
/// service, region, ASN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenUnknown {
    /// The rule matches (the finding says which facts were unknown).
    Match,
    /// The rule does not match.
    Ignore,
}

/// One `match` or `unless` block. `None`: the field is not tested; an
/// empty list never holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    pub hosting_country: Option<CountryList>,
    pub jurisdiction: Option<CountryList>,
    pub provider: Option<Vec<Arc<str>>>,
    pub service: Option<Vec<String>>,
    pub region: Option<Vec<String>>,
    pub asn: Option<Vec<u32>>,
    /// Vendor ids (vendor catalogue), told by the flow's names.
    pub vendor: Option<Vec<Arc<str>>>,
    /// The jurisdiction of the flow's vendor.
    pub vendor_jurisdiction: Option<CountryList>,
    /// The remote address.
    pub cidr: Option<Vec<IpNet>>,
    /// Lower case, without leading or trailing dots.
    pub domain_suffix: Option<Vec<String>>,
    /// IP protocol numbers.
    pub transport: Option<Vec<u8>>,
    /// Inclusive port ranges of the remote endpoint.
    pub remote_port: Option<Vec<(u16, u16)>>,
    pub direction: Option<Vec<Direction>>,
    pub min_bytes_out: Option<u64>,
    /// The local address (`local_network` and `local_host` together).
    pub local: Option<Vec<IpNet>>,
}

/// Whether a block holds for a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holds {
    Yes,
    No,
    /// Every known fact holds; these facts are unknown.
    Unknown(UnknownFacts),
}

/// The facts of the intelligence and the vendor a block tests, in the
/// order it tests them (and the first of its fields).
const TESTED_FACTS: [&str; 8] = [
    "hosting_country",
    "jurisdiction",
    "provider",
    "service",
    "region",
    "asn",
    "vendor",
    "vendor_jurisdiction",
];

/// Facts of a block that were unknown, a bit per [`TESTED_FACTS`]: no
/// allocation, since most rules that meet one are not matched by it (on
/// the bench capture, 177,000 lists were made for 125,000 findings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct UnknownFacts(u8);

impl UnknownFacts {
    fn add(&mut self, name: &'static str) {
        debug_assert!(TESTED_FACTS.contains(&name), "{name} is not in TESTED_FACTS");
        if let Some(i) = TESTED_FACTS.iter().position(|f| *f == name) {
            self.0 |= 1 << i;
        }
    }

    /// In the order they are tested.
    fn names(self) -> impl Iterator<Item = &'static str> {
        TESTED_FACTS
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, f)| f)
    }
}

impl Conditions {
    /// Does the block test a fact of the remote endpoint's intelligence?
    pub fn tests_intel(&self) -> bool {
        self.hosting_country.is_some()
            || self.jurisdiction.is_some()
            || self.provider.is_some()
            || self.service.is_some()
            || self.region.is_some()
            || self.asn.is_some()
            || self.tests_vendor()
    }

    /// Does the block test the vendor the flow's names belong to?
    pub fn tests_vendor(&self) -> bool {
        self.vendor.is_some() || self.vendor_jurisdiction.is_some()
    }

    fn holds(&self, f: &FlowFacts<'_>) -> Holds {
        // Made only for the tests that need it, which the shipped rules do
        // not have (every flow meets every rule).
        let sides = || f.flow.sides();
        // In order of cost, each only when the ones before held.
        let plain = one_of(&self.direction, |d| *d == f.flow.direction)
            && one_of(&self.transport, |p| *p == f.flow.protocol)
            && one_of(&self.remote_port, |(lo, hi)| {
                sides().remote.port.is_some_and(|p| (*lo..=*hi).contains(&p))
            })
            && self.min_bytes_out.is_none_or(|min| sides().sent.bytes >= min)
            && one_of(&self.cidr, |n| n.contains(&sides().remote.ip))
            && one_of(&self.local, |n| n.contains(&sides().local.ip))
            && one_of(&self.domain_suffix, |s| f.names().any(|n| has_suffix(n, s)));
        if !plain {
            return Holds::No;
        }
        let intel = f.intel;
        // Special-purpose addresses are never geolocated nor attributed:
        // a missing fact there is an answer, not an unknown.
        let public = intel.is_some_and(|i| i.class == AddressClass::Public);
        let mut unknown = UnknownFacts::default();
        let mut fact = |name: &'static str, test: Option<Option<bool>>| match test {
            None => true,
            Some(Some(holds)) => holds,
            Some(None) if public => {
                unknown.add(name);
                true
            }
            Some(None) => false,
        };
        let i = intel;
        // Also in order, each only when the ones before held: most rules
        // fail most flows here (the shipped rules' plain test is at most
        // the direction), on the jurisdiction or hosting country. When
        // the block holds, every fact has been tested, so `unknown` lists
        // them all in this order.
        let facts = fact(
            "hosting_country",
            self.hosting_country
                .as_ref()
                .map(|v| i.and_then(|i| i.country).map(|c| v.contains(&c))),
        ) && fact(
            "jurisdiction",
            self.jurisdiction
                .as_ref()
                .map(|v| i.and_then(|i| i.jurisdiction).map(|c| v.contains(&c))),
        ) && fact(
            "provider",
            self.provider
                .as_ref()
                .map(|v| i.and_then(|i| i.provider.as_ref()).map(|p| v.contains(p))),
        ) && fact(
            "service",
            self.service
                .as_ref()
                .map(|v| i.and_then(|i| i.service.as_deref()).map(|s| v.iter().any(|x| x == s))),
        ) && fact(
            "region",
            self.region
                .as_ref()
                .map(|v| i.and_then(|i| i.region.as_deref()).map(|s| v.iter().any(|x| x == s))),
        ) && fact(
            "asn",
            self.asn.as_ref().map(|v| i.and_then(|i| i.asn).map(|a| v.contains(&a))),
        ) && fact(
            "vendor",
            self.vendor
                .as_ref()
                .map(|v| f.vendor_fact(|m| v.iter().any(|id| **id == *m.vendor.id))),
        ) && fact(
            "vendor_jurisdiction",
            self.vendor_jurisdiction
                .as_ref()
                .map(|v| f.vendor_fact(|m| v.contains(&m.vendor.jurisdiction))),
        );
        if !facts {
            Holds::No
        } else if unknown == UnknownFacts::default() {
            Holds::Yes
        } else {
            Holds::Unknown(unknown)
        }
    }
}

fn one_of<T>(values: &Option<Vec<T>>, test: impl Fn(&T) -> bool) -> bool {
    values.as_ref().is_none_or(|v| v.iter().any(test))
}

/// `name` is `suffix` or ends in `.suffix` (both lower case).
fn has_suffix(name: &str, suffix: &str) -> bool {
    // Bytes, not str slices: a name from the traffic may hold any UTF-8,
    // and a cut inside a character must not panic.
    let (name, suffix) = (name.trim_end_matches('.').as_bytes(), suffix.as_bytes());
    let Some(cut) = name.len().checked_sub(suffix.len()) else { return false };
    name[cut..].eq_ignore_ascii_case(suffix) && (cut == 0 || name[cut - 1] == b'.')
}

/// One rule of a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: Option<String>,
    /// `None` when the rule tests no intelligence fact.
    pub when_unknown: Option<WhenUnknown>,
    pub enabled: bool,
    pub matches: Conditions,
    pub unless: Vec<Conditions>,
}

/// A rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulePack {
    pub name: String,
    pub description: String,
    /// The legal or other source the pack implements.
    pub source: String,
    pub reference: Option<String>,
    pub version: String,
    /// The file it came from (`embedded rules/NAME.toml` for shipped packs).
    pub location: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub rules: Vec<Rule>,
}

impl RulePack {
    /// Parses and checks a pack; provider and vendor ids are checked
    /// against the catalogues. Returns the pack and its warnings, or every
    /// error (with the warnings).
    pub fn parse(
        text: &str,
        path: &Path,
        catalogues: Catalogues<'_>,
    ) -> Result<(RulePack, Vec<Diagnostic>), Vec<Diagnostic>> {
        let (pack, diagnostics) = parse::parse_pack(text, path, catalogues);
        match pack {
            Some(mut pack) if diagnostics.iter().all(|d| d.level == Level::Warning) => {
                pack.location = path.display().to_string();
                pack.sha256 = crate::intel::sha256_hex(text.as_bytes());
                Ok((pack, diagnostics))
            }
            _ => Err(diagnostics),
        }
    }
}

/// What rule packs are checked against: the ids rules may name.
#[derive(Clone, Copy, Debug)]
pub struct Catalogues<'a> {
    pub providers: &'a ProviderCatalogue,
    pub vendors: &'a VendorCatalogue,
}

/// Why rule packs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The first error; `rules check` prints them all.
    #[error("{}{}", errors[0], more(errors.len()))]
    Invalid { errors: Vec<Diagnostic> },
    #[error("{}: rule pack '{name}' is also loaded from {other}", path.display())]
    DuplicatePack { path: PathBuf, name: String, other: String },
}

fn only_errors(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.retain(|d| d.level == Level::Error);
    d
}

fn more(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => " (and 1 more error; `xborder rules check` lists them)".into(),
        n => format!(" (and {} more errors; `xborder rules check` lists them)", n - 1),
    }
}

/// The packs in force.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub packs: Vec<RulePack>,
}

/// What the policy stage knows about a flow.
#[derive(Clone, Copy, Debug)]
pub struct FlowFacts<'a> {
    pub flow: &'a FlowRecord,
    /// The remote endpoint's intelligence (`None` in a run without it).
    pub intel: Option<&'a Intel>,
    pub names: Option<&'a FlowNames>,
    /// The vendor the names belong to (`None` also in a run without
    /// intelligence).
    pub vendor: Option<&'a VendorMatch>,
}

impl<'a> FlowFacts<'a> {
    /// A test of the flow's vendor: unknown only when the traffic gave the
    /// flow no name at all; a name no vendor owns is a known "none".
    fn vendor_fact(&self, test: impl Fn(&VendorMatch) -> bool) -> Option<bool> {
        match self.vendor {
            Some(m) => Some(test(m)),
            None if self.names().next().is_some() => Some(false),
            None => None,
        }
    }

    /// The server name and the DNS names.
    fn names(&self) -> impl Iterator<Item = &'a str> {
        let names = self.names;
        let server = names.and_then(|n| n.server_name.as_ref()).map(|(s, _)| &**s);
        server.into_iter().chain(names.into_iter().flat_map(|n| n.dns.iter().map(|d| &**d)))
    }
}

/// A rule that matched a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    pub pack: usize,
    pub rule: usize,
    /// Facts the rule tests that were unknown (it matched by its
    /// `when_unknown = "match"`).
    pub unknown: Vec<&'static str>,
}

impl Policy {
    /// Adds a pack; two packs of the same name are an error.
    pub fn add(&mut self, pack: RulePack) -> Result<(), PolicyError> {
        if let Some(other) = self.packs.iter().find(|p| p.name == pack.name) {
            return Err(PolicyError::DuplicatePack {
                path: PathBuf::from(&pack.location),
                name: pack.name,
                other: other.location.clone(),
            });
        }
        self.packs.push(pack);
        Ok(())
    }

    /// Reads and checks rule files; warnings are returned, errors fail
    /// (the first with a count of the others: [`Policy::check`] has them
    /// all).
    pub fn load(
        paths: &[PathBuf],
        catalogues: Catalogues<'_>,
    ) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
        let (policy, diagnostics) = Self::check(paths, catalogues)?;
        let errors = only_errors(diagnostics.clone());
        if errors.is_empty() {
            Ok((policy, diagnostics))
        } else {
            Err(PolicyError::Invalid { errors })
        }
    }

    /// Reads, parses and adds each rule file, as `audit` does and `rules
    /// check` shows: the policy of the packs that are valid, and every
    /// message in file order, errors included (a pack whose name another
    /// file already gave is one). A file given twice is read once, with a
    /// warning. Only a file that cannot be read stops it.
    pub fn check(
        paths: &[PathBuf],
        catalogues: Catalogues<'_>,
    ) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
        use std::os::unix::fs::MetadataExt;
        let mut policy = Policy::default();
        let mut diagnostics = Vec::new();
        let mut seen: HashMap<(u64, u64), &PathBuf> = HashMap::new();
        for path in paths {
            let io = |source| PolicyError::Io { path: path.clone(), source };
            let text =
                crate::files::read_text_limited(path, "rule pack", RULE_PACK_LIMIT).map_err(io)?;
            let meta = std::fs::metadata(path).map_err(io)?;
            let whole_file = |level, message| Diagnostic {
                path: path.clone(),
                line: 0,
                column: 0,
                level,
                message,
            };
            if let Some(first) = seen.insert((meta.dev(), meta.ino()), path) {
                let message = format!("the same file as {}, read once", first.display());
                diagnostics.push(whole_file(Level::Warning, message));
                seen.insert((meta.dev(), meta.ino()), first);
                continue;
            }
            match RulePack::parse(&text, path, catalogues) {
                Ok((pack, warnings)) => {
                    diagnostics.extend(warnings);
                    if let Err(PolicyError::DuplicatePack { name, other, .. }) = policy.add(pack) {
                        let message = format!("rule pack '{name}' is also loaded from {other}");
                        diagnostics.push(whole_file(Level::Error, message));
                    }
                }
                Err(d) => diagnostics.extend(d),
            }
        }
        Ok((policy, diagnostics))
    }

    /// Parses a pack and adds it (`location` instead of the path, e.g. for
    /// a pack compiled in); its warnings go to `warnings`.
    pub(crate) fn add_text(
        &mut self,
        text: &str,
        path: &Path,
        location: Option<String>,
        catalogues: Catalogues<'_>,
        warnings: &mut Vec<Diagnostic>,
    ) -> Result<(), PolicyError> {
        let (mut pack, w) = RulePack::parse(text, path, catalogues)
            .map_err(|d| PolicyError::Invalid { errors: only_errors(d) })?;
        if let Some(location) = location {
            pack.location = location;
        }
        warnings.extend(w);
        self.add(pack)
    }

    /// The rule at `m`.
    pub fn rule(&self, m: &RuleMatch) -> (&RulePack, &Rule) {
        let pack = &self.packs[m.pack];
        (pack, &pack.rules[m.rule])
    }

    pub fn rule_count(&self) -> usize {
        self.packs.iter().map(|p| p.rules.iter().filter(|r| r.enabled).count()).sum()
    }

    /// Every enabled rule that matches the flow, in pack and rule order.
    pub fn evaluate(&self, facts: &FlowFacts<'_>) -> Vec<RuleMatch> {
        let mut found = Vec::new();
        self.evaluate_into(facts, &mut found);
        found
    }

    /// [`Self::evaluate`], appending to `found` (which the finishing stage
    /// keeps from flow to flow).
    pub fn evaluate_into(&self, facts: &FlowFacts<'_>, found: &mut Vec<RuleMatch>) {
        for (p, pack) in self.packs.iter().enumerate() {
            for (r, rule) in pack.rules.iter().enumerate() {
                if !rule.enabled {
                    continue;
                }
                let unknown = match rule.matches.holds(facts) {
                    Holds::No => continue,
                    Holds::Yes => Vec::new(),
                    Holds::Unknown(facts) if rule.when_unknown == Some(WhenUnknown::Match) => {
                        facts.names().collect()
                    }
                    Holds::Unknown(_) => continue,
                };
                // An exception applies only when it certainly holds.
                if rule.unless.iter().any(|u| u.holds(facts) == Holds::Yes) {
                    continue;
                }
                found.push(RuleMatch { pack: p, rule: r, unknown });
            }
        }
    }
}

/// The country a finding is about: the vendor's jurisdiction when the rule
/// tested the vendor; the provider's jurisdiction when the rule tested it
/// (and not the hosting country); else the hosting country.
pub fn finding_country(
    rule: &Rule,
    intel: Option<&Intel>,
    vendor: Option<&VendorMatch>,
) -> Option<CountryCode> {
    let m = &rule.matches;
    if m.tests_vendor() {
        if let Some(v) = vendor {
            return Some(v.vendor.jurisdiction);
        }
    }
    let intel = intel?;
    if m.jurisdiction.is_some() && m.hosting_country.is_none() || m.provider.is_some() {
        intel.jurisdiction.or(intel.country)
    } else {
        intel.country
    }
}

#[cfg(test)]
mod tests;

/// A policy of one low-severity rule `id` matching flows of `direction`
/// (`inbound`, `outbound`, …), for other modules' tests.
#[cfg(test)]
pub(crate) fn one_rule_policy(id: &str, direction: &str) -> Policy {
    rules_policy(&[(id, "low", direction)])
}

/// A pack of rules (id, severity, direction), for tests.
#[cfg(test)]
pub(crate) fn rules_policy(rules: &[(&str, &str, &str)]) -> Policy {
    let mut text = String::from(
        "[pack]\nname = \"p\"\ndescription = \"d\"\nsource = \"s\"\nversion = \"1\"\n",
    );
    for (id, severity, direction) in rules {
        text.push_str(&format!(
            "[[rule]]\nid = \"{id}\"\ntitle = \"{id}\"\nseverity = \"{severity}\"\n\
             [rule.match]\ndirection = \"{direction}\"\n"
        ));
    }
    let (providers, vendors) = Default::default();
    let catalogues = Catalogues { providers: &providers, vendors: &vendors };
    let (pack, _) = RulePack::parse(&text, std::path::Path::new("p.toml"), catalogues).unwrap();
    Policy { packs: vec![pack] }
}
