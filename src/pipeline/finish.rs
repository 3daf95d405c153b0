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
//! - The digest's rules are the policy's by index: a new policy
//!   ([`Finishing::replace_knowledge`]) goes with a new digest, after the
//!   caller has taken the old one.

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

/// See the module's contract.
pub struct Finishing {
    /// The last part finished; between parts it keeps the policy, the
    /// inputs' paths (which findings name) and the cache of intelligence.
    part: AuditReport,
    digest: Digest,
    json: IntelJsonCache,
    render_json: bool,
    db: Option<IntelDb>,
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
        }
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
    pub fn into_intel_json(self) -> IntelJsonCache {
        self.json
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
        let db = self.db.as_ref()?;
        let (cache, json, render) = (&mut self.part.remote_intel, &mut self.json, self.render_json);
        let intel = cache.entry(ip).or_insert_with(|| {
            let intel = db.lookup(ip);
            if render {
                json.render(ip, &intel);
            }
            Arc::new(intel)
        });
        Some(intel.clone())
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
        if self.db.is_some() {
            for i in 0..self.part.flows.len() {
                if let Some(ip) = self.part.flows[i].remote().map(|r| r.ip) {
                    self.intel(ip);
                }
            }
        }
        match &self.db {
            Some(db) => attribute_vendors(&mut self.part, &db.vendors),
            None => self.part.vendors.clear(),
        }
        evaluate(&mut self.part);
        self.digest.add(&self.part);
    }
}

/// Attributes each flow's names to the vendor whose product they belong to
/// ([`VendorCatalogue::of_names`]).
fn attribute_vendors(report: &mut AuditReport, vendors: &VendorCatalogue) {
    report.vendors = report
        .names
        .iter()
        .filter_map(|(id, names)| Some((*id, vendors.of_names(names)?)))
        .collect();
}

/// [`evaluate`] with `policy`.
#[cfg(test)]
pub(crate) fn apply_policy(report: &mut AuditReport, policy: Policy) {
    report.policy = policy;
    evaluate(report);
}

/// Checks every flow of `report` against its policy, once, with its
/// remote endpoint's intelligence, names and vendor.
fn evaluate(report: &mut AuditReport) {
    let mut findings = std::mem::take(&mut report.findings);
    findings.clear();
    let policy = &report.policy;
    // Without rules the pass over every flow would find nothing.
    let flows = if policy.rule_count() == 0 { &[][..] } else { &report.flows[..] };
    for (index, flow) in flows.iter().enumerate() {
        let intel = flow.remote().and_then(|r| report.remote_intel.get(&r.ip)).map(|i| &**i);
        let vendor = report.vendors.get(&flow.id);
        let facts = FlowFacts { flow, intel, names: report.names.get(&flow.id), vendor };
        for matched in policy.evaluate(&facts) {
            let (_, rule) = policy.rule(&matched);
            let country = finding_country(rule, intel, vendor);
            findings.push(Finding { flow: index, matched, country, early: false });
        }
    }
    report.findings = findings;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Direction;
    use crate::report::flows::tests::flow;

    /// Flows `first..first + n`, every third inbound.
    fn part(first: u64, n: u64) -> Vec<(FlowRecord, FlowNames)> {
        let remote = "198.51.100.1".parse().unwrap();
        (first..first + n)
            .map(|id| {
                let direction = if id % 3 == 0 { Direction::Inbound } else { Direction::Outbound };
                (flow(id, remote, direction), FlowNames::default())
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
