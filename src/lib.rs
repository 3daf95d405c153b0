//! xborder audits network traffic for flows to cloud endpoints in
//! restricted jurisdictions.
//!
//! The pipeline runs one way:
//!
//! ```text
//! capture ──packets──▶ decode ──IP packets──▶ flow ──flow records──▶ intel ──▶ policy ──findings──▶ report
//!                                      └──payload──▶ names ──────────┘
//! ```
//!
//! - [`capture`] reads pcap and pcapng files (optionally gzip-compressed);
//! - [`decode`] finds the outer IP packet, its ports, flags and lengths;
//! - [`flow`] builds bidirectional flows with trace-time timeouts;
//! - [`names`] learns names from DNS answers, TLS/QUIC SNI and HTTP Host;
//! - [`intel`] says where each remote endpoint is hosted, who runs it and
//!   under which jurisdiction;
//! - [`policy`] turns flows into findings with rule packs;
//! - [`report`] renders summaries, findings and flow records;
//! - [`pipeline`] wires the stages together for `xborder audit` (saved
//!   captures) and hands the run to its outputs (sinks); [`live`] runs
//!   its per-packet path for `xborder live` (an interface);
//! - [`clickhouse`] sends flow and finding records to a central store,
//!   spooling what it cannot deliver;
//! - [`files`] reads input files within limits and writes files whole
//!   (atomically); [`parallel`] runs two pieces of work at once; `fuzz`
//!   holds the fuzzers' entry points.

pub mod capture;
pub mod clickhouse;
pub mod decode;
pub mod files;
pub mod flow;
#[doc(hidden)]
pub mod fuzz;
pub mod intel;
pub mod last_few;
pub mod live;
pub mod names;
pub mod parallel;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod time;
pub mod units;
