//! Names from the traffic itself: DNS answers, TLS ClientHello SNI, HTTP
//! Host. The parsers work on bytes already in hand and never panic;
//! [`inspector`] feeds them from the first packets of each flow.

pub mod dns;
pub mod http;
pub mod inspector;
pub mod quic;

pub use inspector::{DnsMap, DnsNames, DnsResponse, FlowNames, NameInspector, NameSource};
pub mod tls;

/// A server name as flows, findings and vendors share it: lower case, one
/// allocation (a report keeps a copy for each rule's endpoint it lists).
pub(crate) fn shared_name(name: &str) -> std::sync::Arc<str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        name.to_ascii_lowercase().into()
    } else {
        name.into()
    }
}

/// What a parser made of the bytes it was given so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// Found (or found that there is nothing to find: `None`).
    Done(T),
    /// The message is incomplete: more bytes of the stream are needed.
    NeedMore,
    /// Not this protocol.
    NotThis,
}
