//! The finishing stage, shared by `audit` and `live`: parts of finished,
//! named flows → intelligence → vendors → rules → the run's digest.
//!
//! Contract:
//! - [`Finishing::finish`] takes a part's flows in record order with their
//!   complete names and leaves them in [`Finishing::part`], with the
//!   intelligence of their remote addresses, their vendors and their
//!   findings (in flow order, then pack and rule order), added to the
//!   digest; the caller hands that part to its sinks (audit) or alerts
//!   (live) before the next.
//! - Each remote address is looked up once while it stays in a bounded
//!   cache ([`INTEL_CACHE`] addresses, then it starts again: a flood from
//!   random sources must not grow it); with `render_json` its
//!   intelligence is rendered as JSON once too.
//! - With a core to spare ([`Finishing::use_spare_core`]), a part of at
//!   least [`TWO_THREADS_FROM`] flows has its new addresses looked up,
//!   its vendors attributed, its flows checked against the rules and its
//!   tallies added to the digest on two threads; the part, the cache and
//!   the digest are the ones one thread makes.
//! - The digest's rules are the policy's by index: a new policy
//!   ([`Finishing::replace_knowledge`]) goes with a new digest, after the
//!   caller has taken the old one.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use crate::flow::FlowRecord;
use crate::intel::{Intel, IntelDb, VendorCatalogue, VendorMatch};
use crate::names::FlowNames;
use crate::policy::{finding_country, FlowFacts, Policy};
use crate::report::digest::{Digest, Keep};
use crate::report::flows::IntelJsonCache;
use crate::report::{AuditReport, Finding, InputSummary};

/// Addresses whose intelligence is kept between parts, at most.
pub const INTEL_CACHE: usize = 1 << 14;

/// Flows in a part from which a spare core is worth a thread.
pub const TWO_THREADS_FROM: usize = 1024;

/// See the module's contract.
pub struct Finishing {
    /// The last part finished; between parts it keeps the policy, the
    /// inputs' paths (which findings name) and the cache of intelligence.
    part: AuditReport,
    digest: Digest,
    json: IntelJsonCache,
    render_json: bool,
    db: Option<IntelDb>,
    spare_core: bool,
}

impl Finishing {
    /// A stage checking against `policy`, without intelligence until
    /// [`Self::set_intel`]; `observer` goes into every part's records;
    /// `keep`: what its digest keeps.
    pub fn new(policy: Policy, observer: Option<String>, keep: Keep, render_json: bool) -> Self {
        Finishing {
            part: AuditReport { policy, observer, ..AuditReport::default() },
            digest: Digest::keeping(keep),
            json: IntelJsonCache::default(),
            render_json,
            db: None,
            spare_core: false,
        }
    }

    /// From now on a core is idle (the audit's capture is read): big
    /// parts use it.
    pub fn use_spare_core(&mut self) {
        self.spare_core = true;
    }

    /// Whether a part of `flows` flows is worth the spare core, if any.
    pub fn two_threads_for(&self, flows: usize) -> bool {
        self.spare_core && flows >= TWO_THREADS_FROM
    }

    pub fn set_intel(&mut self, db: IntelDb) {
        self.db = Some(db);
    }

    pub fn intel_db(&self) -> Option<&IntelDb> {
        self.db.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.part.policy
    }

    /// An input whose frames the flows' `first_frame.file` counts.
    pub fn add_input(&mut self, path: std::path::PathBuf) {
        self.part.inputs.push(InputSummary { path, format: None, packets: 0, error: None });
    }

    /// The part last finished.
    pub fn part(&self) -> &AuditReport {
        &self.part
    }

    /// The rendered intelligence of (at least) the last part's remote
    /// addresses, when rendering was asked for.
    pub fn intel_json(&self) -> &IntelJsonCache {
        &self.json
    }

    /// The rendered intelligence, handed over at the end.
    pub fn take_intel_json(&mut self) -> IntelJsonCache {
        std::mem::take(&mut self.json)
    }

    /// The digest so far, handed over; the stage goes on with an empty one
    /// keeping the same.
    pub fn take_digest(&mut self) -> Digest {
        let keep = self.digest.keep;
        std::mem::replace(&mut self.digest, Digest::keeping(keep))
    }

    /// New rules and intelligence (live's SIGHUP). Take the digest first:
    /// the new one counts by the new policy's rules.
    pub fn replace_knowledge(&mut self, policy: Policy, db: Option<IntelDb>) {
        self.part.policy = policy;
        // The last part's findings were of the old rules.
        self.part.flows.clear();
        self.part.findings.clear();
        self.db = db;
        self.forget_intel();
        let _ = self.take_digest();
    }

    fn forget_intel(&mut self) {
        self.part.remote_intel.clear();
        self.json = IntelJsonCache::default();
    }

    /// The intelligence of `ip`, looked up once while cached (`None`
    /// without intelligence).
    pub fn intel(&mut self, ip: IpAddr) -> Option<Arc<Intel>> {
        if let Some(cached) = self.part.remote_intel.get(&ip) {
            return Some(cached.clone());
        }
        let intel = self.db.as_ref()?.lookup(ip);
        Some(self.keep_intel(ip, intel))
    }

    /// Caches the intelligence of `ip` just looked up, and renders it
    /// (with `render_json`).
    fn keep_intel(&mut self, ip: IpAddr, intel: Intel) -> Arc<Intel> {
        if self.render_json {
            self.json.render(ip, &intel);
        }
        let intel = Arc::new(intel);
        self.part.remote_intel.insert(ip, intel.clone());
        intel
    }

    /// [`Self::intel`] of every flow's remote address: the addresses not
    /// yet cached are looked up (`two_threads`: each half on its own
    /// thread), then cached (and rendered) in the order the flows name
    /// them.
    fn look_up_new_addresses(&mut self, two_threads: bool) {
        let Some(db) = self.db.as_ref() else { return };
        let cache = &self.part.remote_intel;
        let mut new: Vec<IpAddr> = Vec::new();
        let mut listed: HashSet<IpAddr, ahash::RandomState> = HashSet::default();
        for ip in self.part.flows.iter().filter_map(|f| f.remote().map(|r| r.ip)) {
            if !cache.contains_key(&ip) && listed.insert(ip) {
                new.push(ip);
            }
        }
        let found = crate::parallel::map_in_order(new, two_threads, |ip| (ip, db.lookup(ip)));
        for (ip, intel) in found {
            self.keep_intel(ip, intel);
        }
    }

    /// The vendor of a flow's names (`None` without intelligence).
    pub fn vendor(&self, names: &FlowNames) -> Option<VendorMatch> {
        self.db.as_ref()?.vendors.of_names(names)
    }

    /// See the module's contract.
    pub fn finish(&mut self, flows: impl IntoIterator<Item = (FlowRecord, FlowNames)>) {
        if self.part.remote_intel.len() > INTEL_CACHE {
            self.forget_intel();
        }
        let part = &mut self.part;
        part.flows.clear();
        part.names.clear();
        for (flow, names) in flows {
            if names != FlowNames::default() {
                part.names.insert(flow.id, names);
            }
            part.flows.push(flow);
        }
        let two_threads = self.two_threads_for(self.part.flows.len());
        self.look_up_new_addresses(two_threads);
        match &self.db {
            Some(db) => attribute_vendors(&mut self.part, &db.vendors, two_threads),
            None => self.part.vendors.clear(),
        }
        evaluate(&mut self.part, two_threads);
        if two_threads {
            self.digest.add_on_two_threads(&self.part);
        } else {
            self.digest.add(&self.part);
        }
    }
}

/// Attributes each flow's names to the vendor whose product they belong to
/// ([`VendorCatalogue::of_names`]); `two_threads`: each half of the flows
/// on its own thread.
fn attribute_vendors(report: &mut AuditReport, vendors: &VendorCatalogue, two_threads: bool) {
    let named: Vec<(&u64, &FlowNames)> = report.names.iter().collect();
    let found = crate::parallel::map_in_order(named, two_threads, |(id, names)| {
        Some((*id, vendors.of_names(names)?))
    });
    report.vendors = found.into_iter().flatten().collect();
}

/// [`evaluate`] with `policy`.
#[cfg(test)]
pub(crate) fn apply_policy(report: &mut AuditReport, policy: Policy) {
    report.policy = policy;
    evaluate(report, false);
}

/// Checks every flow of `report` against its policy, once, with its
/// remote endpoint's intelligence, names and vendor; `two_threads`: each
/// half of the flows on its own thread.
fn evaluate(report: &mut AuditReport, two_threads: bool) {
    let mut findings = std::mem::take(&mut report.findings);
    findings.clear();
    find(report, two_threads, &mut findings);
    report.findings = findings;
}

/// The findings of [`evaluate`], appended to `findings`.
fn find(report: &AuditReport, two_threads: bool, findings: &mut Vec<Finding>) {
    let policy = &report.policy;
    // Without rules the pass over every flow would find nothing.
    let flows = if policy.rule_count() == 0 { 0 } else { report.flows.len() };
    let check = |range: std::ops::Range<usize>, findings: &mut Vec<Finding>| {
        // The matches of a flow, kept from flow to flow.
        let mut found = Vec::new();
        for (index, flow) in range.clone().zip(&report.flows[range]) {
            let intel = flow.remote().and_then(|r| report.remote_intel.get(&r.ip)).map(|i| &**i);
            let vendor = report.vendors.get(&flow.id);
            let facts = FlowFacts { flow, intel, names: report.names.get(&flow.id), vendor };
            policy.evaluate_into(&facts, &mut found);
            for matched in found.drain(..) {
                let (_, rule) = policy.rule(&matched);
                let country = finding_country(rule, intel, vendor);
                findings.push(Finding { flow: index, matched, country, early: false });
            }
        }
    };
    if two_threads {
        let half = flows / 2;
        let mut second = Vec::new();
        crate::parallel::both(|| check(half..flows, &mut second), || check(0..half, findings));
        findings.append(&mut second);
    } else {
        check(0..flows, findings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Direction;
    use crate::report::flows::tests::flow;

    /// Flows `first..first + n`, every third inbound, to 500 remote
    /// addresses.
    fn part(first: u64, n: u64) -> Vec<(FlowRecord, FlowNames)> {
        (first..first + n)
            .map(|id| {
                let direction = if id % 3 == 0 { Direction::Inbound } else { Direction::Outbound };
                // Documentation addresses: 198.51.100.0/24, 203.0.113.0/24.
                let host = (id % 250) as u8;
                let remote = match id % 500 {
                    0..250 => std::net::Ipv4Addr::new(198, 51, 100, host),
                    _ => std::net::Ipv4Addr::new(203, 0, 113, host),
                };
                (flow(id, remote.into(), direction), FlowNames::default())
            })
            .collect()
    }

    #[test]
    fn parts_leave_their_findings_and_add_up_in_the_digest() {
        let policy = crate::policy::one_rule_policy("inbound", "inbound");
        let mut stage = Finishing::new(policy, None, Keep::default(), false);
        stage.finish(part(1, 6));
        // Flows 3 and 6, by their index in the part.
        let found: Vec<usize> = stage.part().findings.iter().map(|f| f.flow).collect();
        assert_eq!(found, [2, 5]);
        stage.finish(part(7, 4));
        assert_eq!(stage.part().flows.len(), 4);
        let found: Vec<u64> =
            stage.part().findings.iter().map(|f| stage.part().flows[f.flow].id).collect();
        assert_eq!(found, [9]);
        let digest = stage.take_digest();
        assert_eq!((digest.flows, digest.findings), (10, 3));
        // The next digest starts empty.
        stage.finish(part(11, 1));
        assert_eq!(stage.take_digest().flows, 1);
    }

    /// A spare core changes who does the work, not the findings or the
    /// digest (here as the text and JSON reports show it), with one rule
    /// and with several (whose groups the two threads share out).
    #[test]
    fn a_spare_core_gives_the_findings_and_digest_of_one_thread() {
        let one_rule = crate::policy::one_rule_policy("inbound", "inbound");
        let several = crate::policy::rules_policy(&[
            ("in", "low", "inbound"),
            ("out", "high", "outbound"),
            ("out-too", "medium", "outbound"),
        ]);
        for (policy, findings) in [(one_rule, 3_333), (several, 16_667)] {
            spare_core_gives_what_one_thread_gives(&policy, findings);
        }
    }

    fn spare_core_gives_what_one_thread_gives(policy: &Policy, findings: usize) {
        let run = |spare: bool| {
            let policy = policy.clone();
            let mut stage = Finishing::new(policy, None, Keep::default(), false);
            if spare {
                stage.use_spare_core();
            }
            let mut found = Vec::new();
            for first in [1, 5_001] {
                stage.finish(part(first, 5_000));
                let p = stage.part();
                found.extend(p.findings.iter().map(|f| (p.flows[f.flow].id, f.matched.rule)));
            }
            let report = AuditReport {
                policy: stage.policy().clone(),
                digest: stage.take_digest(),
                ..AuditReport::default()
            };
            let mut json = Vec::new();
            crate::report::document::write_document(&report, false, &mut json, &mut |_, _| Ok(()))
                .unwrap();
            (found, crate::report::text::render(&report, false), String::from_utf8(json).unwrap())
        };
        let (one, two) = (run(false), run(true));
        assert_eq!(one.0.len(), findings);
        assert!(one.0 == two.0, "the findings differ");
        assert_eq!(one.1, two.1);
        assert_eq!(one.2, two.2);
    }

    #[test]
    fn new_knowledge_starts_a_digest_of_its_own_rules() {
        let policy = crate::policy::one_rule_policy("inbound", "inbound");
        let mut stage = Finishing::new(policy, None, Keep::default(), false);
        stage.finish(part(1, 3));
        stage.replace_knowledge(Policy::default(), None);
        stage.finish(part(4, 3));
        assert!(stage.part().findings.is_empty());
        let digest = stage.take_digest();
        assert_eq!((digest.flows, digest.findings), (3, 0));
        assert_eq!(stage.policy().rule_count(), 0);
    }
}
