//! xborder audits network traffic for flows to cloud endpoints in
//! restricted jurisdictions.
//!
//! The pipeline runs one way:
//!
//! ```text
//! capture ──packets──▶ decode ──IP packets──▶ flow ──flow records──▶ report
//! ```
//!
//! - [`capture`] reads pcap and pcapng files (optionally gzip-compressed);
//! - [`decode`] finds the outer IP packet, its ports, flags and lengths;
//! - [`flow`] builds bidirectional flows with trace-time timeouts;
//! - [`report`] renders the summary and the flow records;
//! - [`audit`] wires the stages together for `xborder audit`.

pub mod audit;
pub mod capture;
pub mod decode;
pub mod flow;
pub mod intel;
pub mod live;
pub mod names;
pub mod policy;
pub mod report;
pub mod time;
