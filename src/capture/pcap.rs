//! Classic libpcap files: both byte orders, microsecond and nanosecond
//! timestamps, and the "modified" (Kuznetzov) variant whose record headers
//! carry 8 extra bytes.

use std::path::PathBuf;

use super::{BlockReader, CaptureError, LinkType, Packet};
use crate::time::Timestamp;

const MAGIC_USEC: u32 = 0xa1b2_c3d4;
const MAGIC_NSEC: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
const FILE_HEADER_LEN: usize = 24;

/// Records larger than this are damage, not packets: libpcap refuses records
/// over 256 KiB unless the snapshot length says otherwise.
const MAX_RECORD_LEN: u32 = 256 * 1024;

/// Whatever a (possibly damaged) header claims, no record is believed to be
/// larger than this, so a bad length never makes us allocate gigabytes.
const RECORD_LEN_CEILING: u32 = 16 * 1024 * 1024;

/// Byte order of a file or pcapng section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(super) fn u16(self, b: &[u8], at: usize) -> u16 {
        let raw = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(raw),
            Endian::Big => u16::from_be_bytes(raw),
        }
    }

    pub(super) fn word(self, raw: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(raw),
            Endian::Big => u32::from_be_bytes(raw),
        }
    }

    pub(super) fn u32(self, b: &[u8], at: usize) -> u32 {
        self.word([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
}

/// Is `magic` (the first four bytes of a file) a classic pcap magic number?
pub(super) fn is_pcap_magic(magic: [u8; 4]) -> bool {
    let le = u32::from_le_bytes(magic);
    let be = u32::from_be_bytes(magic);
    [MAGIC_USEC, MAGIC_NSEC, MAGIC_MODIFIED].iter().any(|m| *m == le || *m == be)
}

/// Reader for one classic pcap file.
pub struct PcapReader {
    src: BlockReader,
    path: PathBuf,
    endian: Endian,
    nanos: bool,
    record_header_len: usize,
    link_type: LinkType,
    max_record_len: u32,
    frame: u64,
}

impl PcapReader {
    /// Reads the file header.
    pub(super) fn open(mut src: BlockReader, path: PathBuf) -> Result<Self, CaptureError> {
        let read_err = |source, offset| CaptureError::Read { path: path.clone(), offset, source };
        let available = src.fill(FILE_HEADER_LEN).map_err(|e| read_err(e, 0))?.len();
        let Some(h) = src.take(FILE_HEADER_LEN).map_err(|e| read_err(e, 0))? else {
            return Err(CaptureError::Truncated {
                path,
                what: "the pcap file header",
                offset: 0,
                needed: FILE_HEADER_LEN as u64,
                available: available as u64,
            });
        };
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let endian = if [MAGIC_USEC, MAGIC_NSEC, MAGIC_MODIFIED].contains(&magic) {
            Endian::Little
        } else {
            Endian::Big
        };
        let magic = endian.u32(h, 0);
        let (major, minor) = (endian.u16(h, 4), endian.u16(h, 6));
        let snaplen = endian.u32(h, 16);
        // The upper bits of the link-type field carry FCS information.
        let link_type = LinkType((endian.u32(h, 20) & 0xffff) as u16);
        if major != 2 {
            return Err(CaptureError::UnsupportedVersion {
                path,
                format: "pcap",
                major,
                minor,
                offset: 4,
            });
        }
        Ok(Self {
            src,
            path,
            endian,
            nanos: magic == MAGIC_NSEC,
            record_header_len: if magic == MAGIC_MODIFIED { 24 } else { 16 },
            link_type,
            max_record_len: snaplen.clamp(MAX_RECORD_LEN, RECORD_LEN_CEILING),
            frame: 0,
        })
    }

    /// The next packet record.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let offset = self.src.offset();
        let hlen = self.record_header_len;
        let header = self.src.fill(hlen).map_err(|source| CaptureError::Read {
            path: self.path.clone(),
            offset,
            source,
        })?;
        if header.is_empty() {
            return Ok(None);
        }
        if header.len() < hlen {
            return Err(CaptureError::Truncated {
                path: self.path.clone(),
                what: "a packet record header",
                offset,
                needed: hlen as u64,
                available: header.len() as u64,
            });
        }
        // The four fields every variant has, from a fixed-size copy (the
        // header is at least 16 bytes: the fallback is never taken).
        let fixed: [u8; 16] = header.first_chunk().copied().unwrap_or([0; 16]);
        let e = self.endian;
        let word = |at: usize| e.word([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
        let (secs, frac, caplen, wire_len) = (word(0), word(4), word(8), word(12));
        if caplen > self.max_record_len {
            return Err(CaptureError::Damaged {
                path: self.path.clone(),
                what: "packet record",
                offset,
                reason: format!(
                    "captured length {caplen} exceeds the largest plausible record ({})",
                    self.max_record_len
                ),
            });
        }
        let total = hlen + caplen as usize;
        let record = match self.src.take_or_count(total) {
            Ok(Ok(record)) => record,
            Ok(Err(available)) => {
                return Err(CaptureError::Truncated {
                    path: self.path.clone(),
                    what: "a packet record",
                    offset,
                    needed: total as u64,
                    available: available as u64,
                })
            }
            Err(source) => {
                return Err(CaptureError::Read { path: self.path.clone(), offset, source })
            }
        };
        self.frame += 1;
        let nanos = if self.nanos { i64::from(frac) } else { i64::from(frac) * 1000 };
        Ok(Some(Packet {
            timestamp: Timestamp::from_parts(i64::from(secs), nanos),
            link_type: self.link_type,
            interface: 0,
            data: &record[hlen..],
            wire_len: wire_len.max(caplen),
            frame: self.frame,
        }))
    }
}
