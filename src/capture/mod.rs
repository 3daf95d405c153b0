//! Packet sources: capture files (pcap, pcapng, either gzip-compressed).
//!
//! A reader yields [`Packet`]s — timestamp, link type, captured bytes, on-wire
//! length and 1-based frame number — and parses nothing beyond the record
//! framing. Formats are recognised by their magic number, never by the file
//! name. A damaged file yields every packet before the damage and then one
//! [`CaptureError`] that names the file and the byte offset.

mod block_reader;
mod error;
mod inputs;
mod pcap;
mod pcapng;

pub use block_reader::BlockReader;
pub use error::CaptureError;
pub use inputs::{expand_inputs, open_capture, InputSpec, Opened, Skipped};

use crate::time::Timestamp;

/// A link-layer header type (the `LINKTYPE_*` values of the pcap and pcapng
/// specifications).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    pub const RAW_OPENBSD: LinkType = LinkType(12);
    pub const RAW_BSDOS: LinkType = LinkType(14);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const PPP_ETHER: LinkType = LinkType(51);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured packet, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Trace time of the packet.
    pub timestamp: Timestamp,
    /// Link-layer type of the interface that captured it.
    pub link_type: LinkType,
    /// The captured bytes (possibly cut by the snapshot length).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub wire_len: u32,
    /// 1-based number of the packet record in its file, as Wireshark numbers
    /// frames.
    pub frame: u64,
}

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    Pcap,
    Pcapng,
}

/// Reads packets from one capture of either format.
pub enum CaptureReader {
    Pcap(pcap::PcapReader),
    Pcapng(pcapng::PcapngReader),
}

impl CaptureReader {
    /// The next packet, `Ok(None)` at a clean end of the file.
    ///
    /// After an error the reader stays at the damaged place; callers stop
    /// reading this file.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        match self {
            CaptureReader::Pcap(r) => r.next_packet(),
            CaptureReader::Pcapng(r) => r.next_packet(),
        }
    }

    /// Which container the file uses.
    pub fn format(&self) -> CaptureFormat {
        match self {
            CaptureReader::Pcap(_) => CaptureFormat::Pcap,
            CaptureReader::Pcapng(_) => CaptureFormat::Pcapng,
        }
    }
}
