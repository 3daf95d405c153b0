//! Names from the traffic itself: DNS answers, TLS ClientHello SNI, HTTP
//! Host. These are the parsers, each working on bytes already in hand and
//! never panicking; feeding them from flows (inspection budget, TCP
//! reassembly, the IP → names map) comes with issue 4's integration.

pub mod dns;
pub mod http;
pub mod tls;

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
