//! Bidirectional flows: [`FlowKey`], [`FlowTable`], [`FlowRecord`].
//!
//! A flow is keyed on the protocol and the unordered pair of endpoints; it
//! counts packets, IP bytes and payload bytes per direction, knows its
//! initiator (the SYN sender, else the sender of the first packet) and which
//! side is local. Finished flows leave the table as owned [`FlowRecord`]s.

mod fragments;
mod key;
mod local;
mod record;
mod table;

pub use fragments::FRAGMENT_TIMEOUT;
pub use key::{Endpoint, FlowKey, Way};
pub use local::{Direction, LocalNetworks, DEFAULT_LOCAL_NETWORKS};
pub use record::{protocol_has_ports, protocol_name, EndReason, FlowRecord, SideStats, Sides};
pub use table::{FlowTable, FlowTimeouts, Inspect, Observation, INSPECTION_BUDGET};
