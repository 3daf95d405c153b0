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
mod writer;

pub use block_reader::BlockReader;
pub use error::CaptureError;
pub use inputs::{
    expand_inputs, open_capture, open_capture_counting, open_stream, Expanded, InputSpec, Opened,
    Skipped,
};
pub use writer::PcapngWriter;

use crate::time::Timestamp;

/// A link-layer header type (the `LINKTYPE_*` values of the pcap and pcapng
/// specifications).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    pub const FDDI: LinkType = LinkType(10);
    pub const RAW_OPENBSD: LinkType = LinkType(12);
    pub const RAW_BSDOS: LinkType = LinkType(14);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const PPP_ETHER: LinkType = LinkType(51);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPNET: LinkType = LinkType(226);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const IPOIB: LinkType = LinkType(242);
    pub const LINUX_SLL2: LinkType = LinkType(276);
    pub const ARCNET_BSD: LinkType = LinkType(7);
    pub const IEEE802_11: LinkType = LinkType(105);
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    pub const ARCNET_LINUX: LinkType = LinkType(129);
    pub const PPI: LinkType = LinkType(192);
}

/// One captured packet, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Trace time of the packet.
    pub timestamp: Timestamp,
    /// Link-layer type of the interface that captured it.
    pub link_type: LinkType,
    /// That interface, numbered across the file (pcapng: every section's
    /// interfaces after those of the sections before; pcap: 0).
    pub interface: u32,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn read_all(bytes: Vec<u8>, pcapng: bool) -> (u64, Option<CaptureError>) {
        let src = BlockReader::new(Box::new(Cursor::new(bytes)));
        let path = std::path::PathBuf::from("t");
        let reader = if pcapng {
            pcapng::PcapngReader::open(src, path).map(CaptureReader::Pcapng)
        } else {
            pcap::PcapReader::open(src, path).map(CaptureReader::Pcap)
        };
        let mut reader = match reader {
            Ok(r) => r,
            Err(e) => return (0, Some(e)),
        };
        let mut n = 0;
        loop {
            match reader.next_packet() {
                Ok(Some(_)) => n += 1,
                Ok(None) => return (n, None),
                Err(e) => return (n, Some(e)),
            }
        }
    }

    proptest! {
        #[test]
        fn pcap_reader_survives_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            bytes.extend_from_slice(&body);
            let _ = read_all(bytes, false);
        }

        #[test]
        fn pcapng_reader_survives_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
            bytes.extend_from_slice(&[0xff; 8]);
            bytes.extend_from_slice(&[28, 0, 0, 0]);
            bytes.extend_from_slice(&body);
            let _ = read_all(bytes, true);
        }
    }

    #[test]
    fn truncated_record_reports_offset_and_keeps_earlier_packets() {
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        for len in [4u32, 10] {
            bytes.extend_from_slice(&[0; 8]);
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&[0; 4]);
        }
        let (n, err) = read_all(bytes, false);
        assert_eq!(n, 1);
        assert_eq!(
            err.unwrap().to_string(),
            "t: file ends inside a packet record at byte offset 44 (26 bytes needed, 20 present)"
        );
    }
}
