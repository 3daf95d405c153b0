//! Bidirectional flows: [`FlowKey`], [`FlowTable`], [`FlowRecord`].
//!
//! A flow is keyed on the protocol, the unordered pair of endpoints and
//! the tunnels around it (none for most flows); it
//! counts packets, IP bytes and payload bytes per direction, knows its
//! initiator (the SYN sender, else the sender of the first packet) and which
//! side is local. Finished flows leave the table as owned [`FlowRecord`]s.

mod fragments;
mod key;
mod local;
mod record;
mod table;
mod tunnels;

pub use fragments::FRAGMENT_TIMEOUT;
pub use key::{Endpoint, FlowKey, TunnelId, Way};
pub use local::{Direction, LocalNetworks, DEFAULT_LOCAL_NETWORKS};
pub use record::{protocol_has_ports, protocol_name, EndReason, FlowRecord, SideStats, Sides};
pub use table::{
    FlowTable, FlowTimeouts, Inspect, Observation, Place, SweepClock, INSPECTION_BUDGET,
};
pub use tunnels::MAX_TUNNELS;
