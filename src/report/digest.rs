//! What the reports keep of a run's finished flows: counts, aggregates and
//! bounded lists, fed one part of the run at a time, so that a run's
//! memory does not grow with its flows or findings.
//!
//! Contract:
//! - [`Digest::add`] takes a part of the run (an [`AuditReport`] holding
//!   some finished flows, their names, vendors, intelligence and findings;
//!   all of a flow's findings in the same part). Adding the parts of a run
//!   one by one gives the digest that adding them as one part gives,
//!   except where a bound below was reached.
//! - Exact, whatever the run's size: every count and sum, the aggregates
//!   (keyed by jurisdiction, hosting country, provider, local host), the
//!   headlines, each rule pack's split, the findings per rule and local
//!   host. What is kept per local host (a few hundred bytes each, in all)
//!   grows with the local hosts seen, which the local networks bound: a
//!   scan of a large local network from outside grows it.
//! - The lists only one report format shows are kept when the run asks
//!   ([`Keep`]: the text report's per-rule findings and top endpoints, the
//!   HTML report's most severe findings, splits and timeline).
//! - Bounded, each with what happens past its bound:
//!   - (local host, remote endpoint) pairs per rule:
//!     [`ENDPOINTS_PER_RULE`]; past it the lighter half (fewest bytes out)
//!     is forgotten, the hosts' totals stay exact, and for a host that
//!     lost some the text report gives the flows and bytes of the
//!     endpoints it does not list instead of their number;
//!   - the top remote endpoints by bytes: [`TRACKED_REMOTES`]; past it the
//!     lighter half is forgotten (the list keeps the heavy hitters, its "in
//!     all" becomes a lower bound, and says so);
//!   - the most severe findings the HTML report lists: its `MAX_ROWS`;
//!   - the timeline of flagged bytes: [`TIMELINE_POINTS`] distinct start
//!     times, past which times are merged in ever wider steps (a bar's
//!     edge may move by at most a step).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use indexmap::map::Entry;
use indexmap::IndexMap;

use super::findings::{Aggregates, FindingView, Headline, Totals, RESTRICTED};
use super::{AuditReport, Finding};
use crate::decode::{FrameRef, TunnelChain};
use crate::flow::FlowRecord;
use crate::intel::{CountryCode, Intel, VendorMatch};
use crate::names::FlowNames;
use crate::policy::Severity;
use crate::time::Timestamp;

/// (Local host, remote endpoint) pairs tracked per rule (the text report
/// lists five endpoints for each of ten hosts).
pub const ENDPOINTS_PER_RULE: usize = 4096;
/// Remote endpoints tracked for the top list by bytes.
pub const TRACKED_REMOTES: usize = 100_000;
/// Distinct flow start times the timeline holds before it merges them.
pub const TIMELINE_POINTS: usize = 1 << 16;

/// A finding with its own copy of what a report shows about it.
#[derive(Clone, Debug)]
pub struct KeptFinding {
    /// Its `flow` index is of the part it came in, meaningless here.
    pub finding: Finding,
    pub flow: FlowRecord,
    pub intel: Option<Arc<Intel>>,
    pub names: Option<FlowNames>,
    pub vendor: Option<VendorMatch>,
}

impl KeptFinding {
    fn of(v: &FindingView<'_>) -> Self {
        KeptFinding {
            finding: v.finding.clone(),
            flow: v.flow.clone(),
            intel: v.intel.cloned(),
            names: v.names.cloned(),
            vendor: v.vendor.cloned(),
        }
    }

    /// The finding's view, with the rule and input of `r`'s run.
    pub fn view<'a>(&'a self, r: &'a AuditReport) -> FindingView<'a> {
        let (pack, rule) = r.policy.rule(&self.finding.matched);
        FindingView {
            finding: &self.finding,
            flow: &self.flow,
            pack,
            rule,
            sides: self.flow.sides(),
            intel: self.intel.as_ref(),
            names: self.names.as_ref(),
            vendor: self.vendor.as_ref(),
            file: r.input_path(self.flow.first_frame.file),
        }
    }
}

/// Countries and operators of restricted findings, as they come in; see
/// [`Headline`].
#[derive(Clone, Debug, Default)]
pub struct HeadlineTally {
    pub local_hosts: FastSet<IpAddr>,
    /// Bytes the flows sent, each flow once.
    pub bytes_out: u64,
    /// Each flow once per country (`None`: unknown).
    pub countries: HashMap<Option<CountryCode>, CountryTally, ahash::RandomState>,
}

/// Bytes out to one country of a headline, and per operator.
#[derive(Clone, Debug, Default)]
pub struct CountryTally {
    pub bytes: u64,
    pub operators: HashMap<String, u64, ahash::RandomState>,
}

impl HeadlineTally {
    /// Adds the restricted findings of `views`, one part's (in flow
    /// order, as a part's findings are: a flow's come together).
    fn add<'a>(&mut self, views: impl Iterator<Item = &'a FindingView<'a>>) {
        let mut countries = PerFlow::default();
        for v in views.filter(|v| v.rule.severity >= RESTRICTED) {
            let (new_flow, new_country) = countries.see(v.finding.flow, v.finding.country);
            if new_flow {
                self.local_hosts.insert(v.sides.local.ip);
                self.bytes_out += v.sides.sent.bytes;
            }
            if !new_country {
                continue;
            }
            let c = self.countries.entry(v.finding.country).or_default();
            let bytes = v.sides.sent.bytes;
            c.bytes += bytes;
            let operator = v.subject().unwrap_or("unattributed");
            match c.operators.get_mut(operator) {
                Some(b) => *b += bytes,
                None => {
                    c.operators.insert(operator.to_owned(), bytes);
                }
            }
        }
    }

    pub fn headline(&self) -> Headline {
        Headline::of_tally(self)
    }
}

/// One rule pack's flagged bytes by the provider's jurisdiction, by
/// hosting country and by local host (each flow once; `None`: unknown).
#[derive(Clone, Debug, Default)]
pub struct RegimeSplit {
    pub law: HashMap<Option<CountryCode>, u64, ahash::RandomState>,
    pub hosted: HashMap<Option<CountryCode>, u64, ahash::RandomState>,
    pub hosts: HashMap<IpAddr, u64, ahash::RandomState>,
}

/// A set hashed with ahash, for the keys of one part.
type FastSet<T> = HashSet<T, ahash::RandomState>;

/// Over a part's findings in flow order (a flow's come together), which
/// start a flow and which are the first of their flow with a key (a
/// country, a pack): each flow counts once, and once per key.
struct PerFlow<K> {
    flow: Option<usize>,
    /// The keys of this flow's findings so far.
    keys: Vec<K>,
}

impl<K> Default for PerFlow<K> {
    fn default() -> Self {
        PerFlow { flow: None, keys: Vec::new() }
    }
}

impl<K: PartialEq> PerFlow<K> {
    /// Whether the finding of `flow` with `key` starts its flow, and
    /// whether it is the first of its flow with `key`.
    fn see(&mut self, flow: usize, key: K) -> (bool, bool) {
        let new_flow = self.flow != Some(flow);
        if new_flow {
            debug_assert!(self.flow < Some(flow), "findings in flow order");
            self.flow = Some(flow);
            self.keys.clear();
        }
        let new_key = !self.keys.contains(&key);
        if new_key {
            self.keys.push(key);
        }
        (new_flow, new_key)
    }
}

/// Who runs a remote endpoint, as the aggregates key it: `None` when
/// intelligence had no answer, `Some(None)` for an address no provider
/// runs.
type ProviderKey = Option<Option<Arc<str>>>;

/// The aggregates as they are added up (typed keys; see [`Aggregates`]
/// for the keys they are written with).
#[derive(Clone, Debug, Default)]
pub struct AggregateTally {
    pub all: Totals,
    pub by_jurisdiction: HashMap<Option<CountryCode>, Totals, ahash::RandomState>,
    pub by_hosting_country: HashMap<Option<CountryCode>, Totals, ahash::RandomState>,
    pub by_provider: HashMap<ProviderKey, Totals, ahash::RandomState>,
    pub by_local_host: HashMap<IpAddr, Totals, ahash::RandomState>,
}

impl AggregateTally {
    /// The aggregates keyed as reports write them.
    pub fn aggregates(&self) -> Aggregates {
        let countries = |m: &HashMap<Option<CountryCode>, Totals, ahash::RandomState>| {
            m.iter().map(|(c, t)| (country_key(*c), t.clone())).collect()
        };
        Aggregates {
            all: self.all.clone(),
            by_jurisdiction: countries(&self.by_jurisdiction),
            by_hosting_country: countries(&self.by_hosting_country),
            by_provider: {
                // A provider whose id is "unknown" or "none" adds to those,
                // as the reports always keyed it.
                let mut m: BTreeMap<String, Totals> = BTreeMap::new();
                for (p, t) in &self.by_provider {
                    let key = match p {
                        None => "unknown".to_owned(),
                        Some(None) => "none".to_owned(),
                        Some(Some(id)) => id.to_string(),
                    };
                    m.entry(key).or_default().merge(t);
                }
                m
            },
            by_local_host: self.by_local_host.iter().map(|(ip, t)| (*ip, t.clone())).collect(),
        }
    }
}

/// What the text report says of the first finding of a rule for a local
/// host and remote endpoint: where, who, what name, which frame.
#[derive(Clone, Debug)]
pub struct FirstSeen {
    /// The flow's place in first-packet order (start, first frame, id): a
    /// later part may bring an earlier flow (a long one that ended last).
    pub order: (Timestamp, FrameRef, u64),
    pub intel: Option<Arc<Intel>>,
    /// The server name, else the first DNS name. Shared with the flow's
    /// names, as the vendor's parts are: most endpoints are forgotten again
    /// (the bound), so this copy must cost no allocation.
    pub name: Option<Arc<str>>,
    pub vendor: Option<VendorMatch>,
    /// Facts the rule could not decide.
    pub unknown: Vec<&'static str>,
    pub tunnels: TunnelChain,
}

/// A remote endpoint of a rule's findings from one local host.
#[derive(Clone, Debug)]
pub struct EndpointTally {
    pub flows: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// The lowest remote ports (a report shows three, and whether there
    /// were more).
    pub ports: LowestPorts,
    pub first: FirstSeen,
}

/// A local host of a rule's findings: exact, whatever the bound on its
/// endpoints.
#[derive(Clone, Debug, Default)]
pub struct HostTally {
    pub flows: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Some of its remote endpoints were forgotten ([`ENDPOINTS_PER_RULE`]).
    pub forgotten: bool,
}

/// One rule's findings: per local host, and per local host and remote
/// endpoint (at most [`ENDPOINTS_PER_RULE`] of those).
#[derive(Clone, Debug, Default)]
pub struct RuleTally {
    pub hosts: HashMap<IpAddr, HostTally, ahash::RandomState>,
    /// By (local host, remote endpoint). An `IndexMap`, whose tallies
    /// are in one vector beside a table of their indices, not in a table
    /// of up to twice as many slots: each of the 17 shipped rules holds up
    /// to 4,096 endpoints of about 230 bytes (7 MB less at the peak of the
    /// 1M-packet bench capture).
    pub endpoints: IndexMap<(IpAddr, IpAddr), EndpointTally, ahash::RandomState>,
}

/// Ports an endpoint keeps: the three shown and one to tell "more".
pub const PORTS_KEPT: usize = 4;

/// The lowest of the ports seen, at most [`PORTS_KEPT`], in order; held in
/// place, as most endpoints are forgotten again soon (the bound).
#[derive(Clone, Copy, Debug, Default)]
pub struct LowestPorts {
    ports: [u16; PORTS_KEPT],
    len: u8,
}

impl LowestPorts {
    pub fn add(&mut self, port: u16) {
        let len = usize::from(self.len);
        let Err(at) = self.ports[..len].binary_search(&port) else { return };
        if at < PORTS_KEPT {
            self.ports.copy_within(at..PORTS_KEPT - 1, at + 1);
            self.ports[at] = port;
            self.len = (len + 1).min(PORTS_KEPT) as u8;
        }
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.ports[..usize::from(self.len)]
    }
}

impl RuleTally {
    /// Forgets the lighter half of the endpoints (fewest bytes out, then
    /// the highest addresses: a deterministic choice), marking their hosts.
    fn forget_light_endpoints(&mut self) {
        let mut order: Vec<(u64, Reverse<(IpAddr, IpAddr)>)> =
            self.endpoints.iter().map(|(k, e)| (e.bytes_out, Reverse(*k))).collect();
        let half = order.len() / 2;
        if half == 0 {
            return;
        }
        let cut = *order.select_nth_unstable(half - 1).1;
        drop(order);
        let hosts = &mut self.hosts;
        self.endpoints.retain(|k, e| {
            let keep = (e.bytes_out, Reverse(*k)) > cut;
            if !keep {
                if let Some(h) = hosts.get_mut(&k.0) {
                    h.forgotten = true;
                }
            }
            keep
        });
    }
}

/// Flows and bytes of one remote endpoint, with its intelligence.
#[derive(Clone, Debug, Default)]
pub struct RemoteTotals {
    pub flows: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub intel: Option<Arc<Intel>>,
}

/// Rule (most severe first, then pack and rule order).
pub type RuleKey = (Reverse<Severity>, usize, usize);

/// A finding's place among the most severe: severity (most first), then
/// its flow's first packet (start, frame, id), then pack and rule.
pub type SevereKey = (Reverse<Severity>, Timestamp, FrameRef, u64, usize, usize);

/// Which of the digest's lists a run keeps: its counts, aggregates and
/// headlines always are; each report format needs some of the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep {
    /// The findings per rule, local host and endpoint, and the top remote
    /// endpoints (the text report).
    pub text: bool,
    /// The most severe findings, each pack's split, the timeline (the HTML
    /// report).
    pub html: bool,
}

impl Default for Keep {
    /// Everything.
    fn default() -> Self {
        Keep { text: true, html: true }
    }
}

/// See the module's contract.
#[derive(Clone, Debug, Default)]
pub struct Digest {
    /// What this digest keeps beyond counts and aggregates; a report
    /// format it does not keep for shows empty lists.
    pub keep: Keep,
    pub flows: u64,
    /// At the IP layer, every flow.
    pub bytes: u64,
    pub findings: u64,
    pub by_severity: BTreeMap<Severity, u64>,
    /// Flows per IP protocol, in order of first appearance.
    pub by_protocol: Vec<(u8, u64)>,
    pub aggregates: AggregateTally,
    /// Over every rule pack.
    pub headline: HeadlineTally,
    /// Per rule pack, by its index.
    pub regimes: Vec<HeadlineTally>,
    pub splits: Vec<RegimeSplit>,
    /// The findings per rule.
    pub groups: BTreeMap<RuleKey, RuleTally>,
    /// Remote endpoints by address (see [`TRACKED_REMOTES`]).
    pub remotes: HashMap<IpAddr, RemoteTotals, ahash::RandomState>,
    /// Remote endpoints forgotten to keep the bound.
    pub remotes_forgotten: u64,
    /// Provider id → name, of every provider seen.
    pub provider_names: BTreeMap<String, String>,
    /// Flagged bytes out by flow start (nanoseconds, shifted right by
    /// `timeline_shift`).
    pub timeline: BTreeMap<i64, u64>,
    pub timeline_shift: u32,
    /// The most severe findings, in first-packet order within a severity
    /// (then pack and rule order), at most the HTML report's `MAX_ROWS`.
    pub most_severe: BTreeMap<SevereKey, KeptFinding>,
}

/// Findings the digest keeps in [`Digest::most_severe`].
const MOST_SEVERE: usize = super::html::MAX_ROWS;

/// A country as reports key it: its ISO code, or `unknown`.
pub fn country_key(c: Option<CountryCode>) -> String {
    c.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

impl Digest {
    /// An empty digest keeping `keep`.
    pub fn keeping(keep: Keep) -> Self {
        Digest { keep, ..Digest::default() }
    }

    /// The digest of one report holding its flows (a test's), keeping
    /// everything.
    pub fn of(r: &AuditReport) -> Self {
        let mut d = Digest::default();
        d.add(r);
        d
    }

    /// Adds a part of the run.
    pub fn add(&mut self, part: &AuditReport) {
        self.add_part(part, false);
    }

    /// [`Self::add`] on two threads, for a caller with a core to spare
    /// (the audit once its capture is read): a second thread tallies the
    /// flows and the findings of some rules (the heaviest part of a
    /// finding's cost), this one the other rules' and everything else of
    /// the findings. Each thread touches its own fields and rules, so the
    /// digest is the one [`Self::add`] makes.
    pub fn add_on_two_threads(&mut self, part: &AuditReport) {
        self.add_part(part, true);
    }

    fn add_part(&mut self, part: &AuditReport, two_threads: bool) {
        let views: Vec<FindingView<'_>> = part.finding_views().collect();
        let mut flagged = vec![false; part.flows.len()];
        for v in views.iter().filter(|v| v.rule.severity >= RESTRICTED) {
            if let Some(f) = flagged.get_mut(v.finding.flow) {
                *f = true;
            }
        }
        let add_flows = |d: &mut Digest| {
            for (f, &flagged) in part.flows.iter().zip(&flagged) {
                d.add_flow(part, f, flagged);
            }
        };
        if !two_threads {
            add_flows(self);
            self.add_findings(part, &views);
            if self.keep.text {
                add_to_groups(&mut self.groups, &views, true);
            }
            return;
        }
        let mut flow_side = self.take_flow_side();
        let mut helper_groups = if self.keep.text {
            self.take_groups_for_helper(part.flows.len(), &views)
        } else {
            BTreeMap::new()
        };
        crate::parallel::both(
            || {
                add_flows(&mut flow_side);
                add_to_groups(&mut helper_groups, &views, false);
            },
            || {
                self.add_findings(part, &views);
                if self.keep.text {
                    add_to_groups(&mut self.groups, &views, false);
                }
            },
        );
        self.put_flow_side(flow_side);
        self.groups.append(&mut helper_groups);
    }

    /// Shares out the rules with findings in the part, those of most
    /// findings first, each to the thread with less work so far (a flow
    /// counts one, a finding one and a finding in a group three, about
    /// what they cost). The helper's groups are moved out and returned;
    /// this thread's are made here if new. Each side then adds to the
    /// groups it holds only, so no rule is tallied twice or missed.
    fn take_groups_for_helper(
        &mut self,
        flows: usize,
        views: &[FindingView<'_>],
    ) -> BTreeMap<RuleKey, RuleTally> {
        let mut found: BTreeMap<RuleKey, usize> = BTreeMap::new();
        for v in views {
            *found.entry(rule_key(v)).or_default() += 1;
        }
        let mut by_weight: Vec<(RuleKey, usize)> = found.into_iter().collect();
        by_weight.sort_by_key(|&(key, n)| (Reverse(n), key));
        let (mut helper, mut here) = (flows, views.len());
        let mut taken = BTreeMap::new();
        for (key, n) in by_weight {
            if helper <= here {
                helper += 3 * n;
                taken.insert(key, self.groups.remove(&key).unwrap_or_default());
            } else {
                here += 3 * n;
                self.groups.entry(key).or_default();
            }
        }
        taken
    }

    /// What [`Self::add_flow`] changes, moved into a digest of its own.
    fn take_flow_side(&mut self) -> Digest {
        Digest {
            keep: self.keep,
            flows: self.flows,
            bytes: self.bytes,
            by_protocol: std::mem::take(&mut self.by_protocol),
            aggregates: std::mem::take(&mut self.aggregates),
            provider_names: std::mem::take(&mut self.provider_names),
            remotes: std::mem::take(&mut self.remotes),
            remotes_forgotten: self.remotes_forgotten,
            ..Digest::default()
        }
    }

    fn put_flow_side(&mut self, side: Digest) {
        self.flows = side.flows;
        self.bytes = side.bytes;
        self.by_protocol = side.by_protocol;
        self.aggregates = side.aggregates;
        self.provider_names = side.provider_names;
        self.remotes = side.remotes;
        self.remotes_forgotten = side.remotes_forgotten;
    }

    /// The findings' tallies of a part but the groups: none of the fields
    /// `add_flow` changes.
    fn add_findings(&mut self, part: &AuditReport, views: &[FindingView<'_>]) {
        self.findings += views.len() as u64;
        for v in views {
            *self.by_severity.entry(v.rule.severity).or_default() += 1;
        }
        self.headline.add(views.iter());
        let packs = part.policy.packs.len();
        if self.regimes.len() < packs {
            self.regimes.resize_with(packs, HeadlineTally::default);
            self.splits.resize_with(packs, RegimeSplit::default);
        }
        for (pack, tally) in self.regimes.iter_mut().enumerate() {
            tally.add(views.iter().filter(|v| v.finding.matched.pack == pack));
        }
        if self.keep.html {
            self.add_html(views);
            for v in views {
                self.keep_if_severe(v);
            }
        }
    }

    /// What only the HTML report shows: each pack's split, the timeline.
    /// Each flow counts once in the timeline and once in each pack's split
    /// (`views` in flow order, as [`Self::add_findings`] has them).
    fn add_html(&mut self, views: &[FindingView<'_>]) {
        let mut packs = PerFlow::default();
        for v in views.iter().filter(|v| v.rule.severity >= RESTRICTED) {
            let pack = v.finding.matched.pack;
            let (new_flow, new_pack) = packs.see(v.finding.flow, pack);
            if new_flow {
                self.add_to_timeline(v.flow.start.as_nanos(), v.sides.sent.bytes);
            }
            if !new_pack {
                continue;
            }
            if let Some(split) = self.splits.get_mut(pack) {
                let bytes = v.sides.sent.bytes;
                *split.law.entry(v.intel.and_then(|i| i.jurisdiction)).or_default() += bytes;
                *split.hosted.entry(v.intel.and_then(|i| i.country)).or_default() += bytes;
                *split.hosts.entry(v.sides.local.ip).or_default() += bytes;
            }
        }
    }

    fn add_flow(&mut self, part: &AuditReport, f: &FlowRecord, flagged: bool) {
        self.flows += 1;
        self.bytes += f.total_bytes();
        match self.by_protocol.iter_mut().find(|(p, _)| *p == f.protocol) {
            Some((_, n)) => *n += 1,
            None => self.by_protocol.push((f.protocol, 1)),
        }
        let Some(remote) = f.remote() else { return };
        let intel = part.remote_intel.get(&remote.ip);
        let jurisdiction = intel.and_then(|i| i.jurisdiction);
        let country = intel.and_then(|i| i.country);
        let provider: ProviderKey = intel.map(|i| i.provider.clone());
        if let Some(i) = intel {
            if let (Some(id), Some(name)) = (&i.provider, &i.provider_name) {
                if !self.provider_names.contains_key(&**id) {
                    self.provider_names.insert(id.to_string(), name.to_string());
                }
            }
        }
        let a = &mut self.aggregates;
        a.all.add(f, flagged);
        a.by_jurisdiction.entry(jurisdiction).or_default().add(f, flagged);
        a.by_hosting_country.entry(country).or_default().add(f, flagged);
        a.by_provider.entry(provider).or_default().add(f, flagged);
        let sides = f.sides();
        a.by_local_host.entry(sides.local.ip).or_default().add(f, flagged);
        if !self.keep.text {
            return;
        }
        if self.remotes.len() >= TRACKED_REMOTES && !self.remotes.contains_key(&remote.ip) {
            self.forget_light_remotes();
        }
        let t = self.remotes.entry(remote.ip).or_default();
        t.flows += 1;
        t.bytes_out += sides.sent.bytes;
        t.bytes_in += sides.received.bytes;
        if t.intel.is_none() {
            t.intel = intel.cloned();
        }
    }

    /// Keeps the heavier half of the tracked remote endpoints.
    fn forget_light_remotes(&mut self) {
        // By bytes, then the higher address first: exactly half goes, even
        // when all are alike (a flood's SYNs).
        let weight = |ip: &IpAddr, t: &RemoteTotals| (t.bytes_out + t.bytes_in, Reverse(*ip));
        let mut order: Vec<(u64, Reverse<IpAddr>)> =
            self.remotes.iter().map(|(ip, t)| weight(ip, t)).collect();
        let half = order.len() / 2;
        if half == 0 {
            return;
        }
        let cut = *order.select_nth_unstable(half - 1).1;
        drop(order);
        let before = self.remotes.len();
        self.remotes.retain(|ip, t| weight(ip, t) > cut);
        self.remotes_forgotten += (before - self.remotes.len()) as u64;
    }

    fn add_to_timeline(&mut self, start: i64, bytes: u64) {
        *self.timeline.entry(start >> self.timeline_shift).or_default() += bytes;
        while self.timeline.len() > TIMELINE_POINTS {
            self.timeline_shift += 1;
            let mut merged = BTreeMap::new();
            for (at, b) in std::mem::take(&mut self.timeline) {
                *merged.entry(at >> 1).or_default() += b;
            }
            self.timeline = merged;
        }
    }

    fn keep_if_severe(&mut self, v: &FindingView<'_>) {
        let m = &v.finding.matched;
        let (start, frame, id) = v.flow.first_packet_order();
        let key = (Reverse(v.rule.severity), start, frame, id, m.pack, m.rule);
        if self.most_severe.len() >= MOST_SEVERE {
            // Full: a finding gets in only ahead of the last kept.
            match self.most_severe.last_key_value() {
                Some((last, _)) if key < *last => {
                    self.most_severe.pop_last();
                }
                _ => return,
            }
        }
        self.most_severe.insert(key, KeptFinding::of(v));
    }

    /// The most severe finding, if any.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.by_severity.keys().next_back().copied()
    }

    /// Bytes out of flagged flows per start time (nanoseconds), in order.
    pub fn timeline_points(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.timeline.iter().map(|(at, b)| (at << self.timeline_shift, *b))
    }
}

/// Adds the findings of `views` to their rules' groups in `groups`: every
/// rule's with `all`, else only those of the rules whose group it holds.
fn add_to_groups(groups: &mut BTreeMap<RuleKey, RuleTally>, views: &[FindingView<'_>], all: bool) {
    if !all && groups.is_empty() {
        return;
    }
    for v in views {
        let key = rule_key(v);
        let rule = if all { Some(groups.entry(key).or_default()) } else { groups.get_mut(&key) };
        if let Some(rule) = rule {
            add_to_group(rule, v);
        }
    }
}

/// The group a finding counts in.
fn rule_key(v: &FindingView<'_>) -> RuleKey {
    (Reverse(v.rule.severity), v.finding.matched.pack, v.finding.matched.rule)
}

/// One finding into its rule's group: its local host, and its endpoint
/// within the bound ([`ENDPOINTS_PER_RULE`]).
fn add_to_group(rule: &mut RuleTally, v: &FindingView<'_>) {
    let (local, remote) = (v.sides.local.ip, v.sides.remote.ip);
    let host = rule.hosts.entry(local).or_default();
    host.flows += 1;
    host.bytes_out += v.sides.sent.bytes;
    host.bytes_in += v.sides.received.bytes;
    if rule.endpoints.len() >= ENDPOINTS_PER_RULE && !rule.endpoints.contains_key(&(local, remote))
    {
        rule.forget_light_endpoints();
    }
    let first = || FirstSeen {
        order: v.flow.first_packet_order(),
        intel: v.intel.cloned(),
        name: v.shared_name().cloned(),
        vendor: v.vendor.cloned(),
        unknown: v.finding.matched.unknown.clone(),
        tunnels: v.flow.tunnels.clone(),
    };
    let e = match rule.endpoints.entry((local, remote)) {
        Entry::Occupied(e) => {
            let e = e.into_mut();
            if v.flow.first_packet_order() < e.first.order {
                e.first = first();
            }
            e
        }
        Entry::Vacant(e) => e.insert(EndpointTally {
            flows: 0,
            bytes_out: 0,
            bytes_in: 0,
            ports: LowestPorts::default(),
            first: first(),
        }),
    };
    e.flows += 1;
    e.bytes_out += v.sides.sent.bytes;
    e.bytes_in += v.sides.received.bytes;
    if let Some(port) = v.sides.remote.port {
        e.ports.add(port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::FrameRef;
    use crate::flow::{Direction, EndReason, Endpoint, SideStats};

    fn flow(n: u32) -> FlowRecord {
        let stats = SideStats { packets: 1, bytes: 40, payload_bytes: 0, tcp_flags: 0 };
        FlowRecord {
            id: u64::from(n) + 1,
            protocol: 6,
            source: Endpoint { ip: IpAddr::from((0x0100_0000 + n).to_be_bytes()), port: Some(1) },
            destination: Endpoint { ip: [10, 0, 0, 80].into(), port: Some(443) },
            source_stats: stats,
            destination_stats: SideStats::default(),
            start: Timestamp::from_parts(i64::from(n), 0),
            end: Timestamp::from_parts(i64::from(n), 0),
            first_frame: FrameRef { file: 0, frame: u64::from(n) + 1 },
            direction: Direction::Inbound,
            end_reason: EndReason::IdleTimeout,
            tunnels: Default::default(),
            carries: None,
        }
    }

    proptest::proptest! {
        /// The lowest distinct ports seen, in order, at most four.
        #[test]
        fn an_endpoint_keeps_its_lowest_ports(seen in proptest::collection::vec(0u16..12, 0..20)) {
            let mut kept = LowestPorts::default();
            for &p in &seen {
                kept.add(p);
            }
            let mut want = seen.clone();
            want.sort_unstable();
            want.dedup();
            want.truncate(PORTS_KEPT);
            proptest::prop_assert_eq!(kept.as_slice(), &want[..]);
        }
    }

    /// A flood's sources all weigh the same: the bound still keeps half of
    /// them (by address), not none; every flow is still counted.
    #[test]
    fn remote_endpoints_past_the_bound_lose_exactly_the_lighter_half() {
        let mut digest = Digest::default();
        let n = TRACKED_REMOTES as u32 + 1;
        for chunk in (0..n).collect::<Vec<_>>().chunks(8192) {
            let part = AuditReport {
                flows: chunk.iter().map(|&i| flow(i)).collect(),
                ..Default::default()
            };
            digest.add(&part);
        }
        assert_eq!(digest.flows, u64::from(n));
        assert_eq!(digest.remotes.len(), TRACKED_REMOTES / 2 + 1);
        assert_eq!(digest.remotes_forgotten, (TRACKED_REMOTES / 2) as u64);
        // Of equal weight, the lower addresses stay.
        assert!(digest.remotes.contains_key(&IpAddr::from(0x0100_0000u32.to_be_bytes())));
        assert_eq!(digest.aggregates.all.flows, u64::from(n));
    }
}
