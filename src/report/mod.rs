//! Reports. Reporters receive an owned [`AuditReport`] and render it; they
//! never see the flow table.
//!
//! - [`summary`]: the terminal summary of a run;
//! - [`flows`]: flow and finding records as JSON lines (schema in README.md);
//! - [`findings`]: the headline, aggregates and CSV of findings;
//! - [`text`]: the report for people; [`document`]: the same as one JSON
//!   document for machines; [`html`]: one self-contained page to hand on.

pub mod digest;
pub mod document;
pub mod findings;
pub mod flows;
pub mod html;
pub mod json;
pub mod summary;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::capture::{CaptureFormat, LinkType};
use crate::decode::AnomalyCounter;
use crate::flow::FlowRecord;
use crate::intel::{CountryCode, DatasetInfo, Intel, VendorMatch};
use crate::names::FlowNames;
use crate::policy::{Policy, RuleMatch};
use crate::time::Timestamp;

/// One input of the run.
#[derive(Clone, Debug)]
pub struct InputSummary {
    pub path: PathBuf,
    /// `None` when the file could not be opened as a capture.
    pub format: Option<CaptureFormat>,
    /// Packet records read (including those before an error).
    pub packets: u64,
    /// The error that stopped reading this input, as the user will read it.
    pub error: Option<String>,
}

/// Packet counts of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketTotals {
    /// Every packet record read.
    pub packets: u64,
    /// Packets that went into a flow.
    pub ip_packets: u64,
    /// Packets of a supported link type that carry no IP (ARP, LLDP, …).
    pub non_ip: u64,
    /// Packets too malformed to attribute to a flow.
    pub malformed: u64,
    /// Packets whose capture was cut by the snapshot length.
    pub cut_by_snaplen: u64,
    /// First and last packet timestamp.
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// The intelligence of each remote address. Hashed with ahash (randomly
/// keyed, like std's SipHash, and several times faster): the policy reads
/// it for every flow.
pub type RemoteIntel = HashMap<IpAddr, Arc<Intel>, ahash::RandomState>;

/// By flow id, hashed with ahash: every finding looks its flow's names
/// and vendor up, several times.
pub type ById<T> = HashMap<u64, T, ahash::RandomState>;

/// Everything an audit run found, owned and ready to render.
#[derive(Debug, Default)]
pub struct AuditReport {
    pub inputs: Vec<InputSummary>,
    /// Files passed over while walking directories, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    pub totals: PacketTotals,
    pub anomalies: AnomalyCounter,
    /// Packets per link type that is not supported.
    pub unsupported_link_types: BTreeMap<LinkType, u64>,
    /// Finished flows, in record order: in a part (of an audit or a live
    /// period) those of the part (see `pipeline`), in a finished run or
    /// period none (its [`Self::digest`] holds what the reports need).
    pub flows: Vec<FlowRecord>,
    /// The most flows alive at once.
    pub peak_live_flows: usize,
    /// Flows ended early because the table was full (`--max-flows`).
    pub evicted_flows: u64,
    /// What intelligence says about the remote endpoints of
    /// [`Self::flows`] (at least; in an audit's parts, the bounded cache)
    /// (empty when the run had none).
    pub remote_intel: RemoteIntel,
    /// Names the traffic gave each of [`Self::flows`], by flow id (flows
    /// without any are absent).
    pub names: ById<FlowNames>,
    /// The vendor each flow's names belong to, by flow id (flows without
    /// one, and every flow of a run without intelligence, are absent).
    pub vendors: ById<VendorMatch>,
    /// The rule packs the flows were checked against.
    pub policy: Policy,
    /// Rule matches of [`Self::flows`] in flow order (then pack and rule
    /// order).
    pub findings: Vec<Finding>,
    /// Counts, aggregates and bounded lists over every flow of the run,
    /// which the reports are made of.
    pub digest: digest::Digest,
    /// The intelligence datasets in use (empty when the run had none).
    pub provenance: Vec<DatasetInfo>,
    /// Set for the reports of `xborder live`.
    pub live: Option<LivePeriod>,
    /// The gateway or machine that saw the traffic (`--observer`; ECS
    /// `observer.name`), in every output when given.
    pub observer: Option<String>,
}

/// A rule that matched a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Index into [`AuditReport::flows`].
    pub flow: usize,
    pub matched: RuleMatch,
    /// The country the finding is about (see [`crate::policy::finding_country`]).
    pub country: Option<CountryCode>,
    /// Found on a live flow (live mode's early alert), not at its end.
    pub early: bool,
}

/// Counters of a live capture, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    /// Packets libpcap received (`ps_recv`).
    pub received: u64,
    /// Dropped by the kernel: no room in its buffer (`ps_drop`).
    pub kernel_dropped: u64,
    /// Dropped by the interface or its driver (`ps_ifdrop`).
    pub interface_dropped: u64,
    /// Dropped by xborder: its queue from capture to analysis was full.
    pub queue_dropped: u64,
    /// Flows alive now.
    pub live_flows: u64,
    /// Flows pushed out of the full table (`--max-flows`).
    pub evicted_flows: u64,
    /// Alerts written, and alerts dropped because output could not keep up.
    pub alerts: u64,
    pub alerts_dropped: u64,
    /// Packets of flagged flows written as evidence (`--evidence-dir`), and
    /// dropped (a flow's buffer full before its alert, or deleted with the
    /// oldest file to keep the bound).
    pub evidence_packets: u64,
    pub evidence_dropped: u64,
    /// Records to ClickHouse (`--clickhouse`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreStats>,
}

/// What live's records to ClickHouse became, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Taken by the server as they came.
    pub sent: u64,
    /// Spooled, the server unreachable or refusing.
    pub spooled: u64,
    /// Spooled and delivered later.
    pub retried: u64,
    /// Lost: the queue to the sender full, or the spool at its bound.
    pub dropped: u64,
}

/// What a report of `xborder live` covers.
#[derive(Clone, Debug)]
pub struct LivePeriod {
    pub interface: String,
    /// Wall-clock time the period started and ended.
    pub start: Timestamp,
    pub end: Timestamp,
    /// The report written at shutdown (every live flow ended into it).
    pub last: bool,
    pub stats: CaptureStats,
}

impl AuditReport {
    /// Did any input fail (fully or partly)?
    pub fn has_errors(&self) -> bool {
        self.inputs.iter().any(|i| i.error.is_some())
    }

    /// The path of input `index`, as shown in reports.
    pub fn input_path(&self, index: u32) -> &std::path::Path {
        self.inputs.get(index as usize).map_or(std::path::Path::new(""), |i| i.path.as_path())
    }
}
