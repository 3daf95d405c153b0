//! pcapng files (draft-ietf-opsawg-pcapng): several sections of either byte
//! order, several interfaces of different link types, `if_tsresol` and
//! `if_tsoffset`, enhanced, simple and obsolete packet blocks. Unknown and
//! custom blocks are skipped.

use std::path::{Path, PathBuf};

use super::pcap::Endian;
use super::{BlockReader, CaptureError, LinkType, Packet};
use crate::time::Timestamp;

const SECTION_HEADER: u32 = 0x0a0d_0d0a;
const INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
const OBSOLETE_PACKET: u32 = 0x0000_0002;
const SIMPLE_PACKET: u32 = 0x0000_0003;
const ENHANCED_PACKET: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Larger blocks are damage; libpcap's limit is 16 MiB as well.
const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// Is `magic` the start of a pcapng section header block?
pub(super) fn is_pcapng_magic(magic: [u8; 4]) -> bool {
    u32::from_le_bytes(magic) == SECTION_HEADER
}

/// Timestamp resolution of an interface (`if_tsresol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsResolution {
    /// Units of 10^-n seconds.
    Decimal(u8),
    /// Units of 2^-n seconds.
    Binary(u8),
}

impl TsResolution {
    fn from_option(byte: u8) -> Self {
        if byte & 0x80 == 0 {
            TsResolution::Decimal(byte)
        } else {
            TsResolution::Binary(byte & 0x7f)
        }
    }

    fn to_nanos(self, units: u64) -> i128 {
        let units = i128::from(units);
        match self {
            TsResolution::Decimal(n) if n <= 9 => units * 10i128.pow(9 - u32::from(n)),
            TsResolution::Decimal(n) => units / 10i128.pow(u32::from(n.min(38)) - 9),
            TsResolution::Binary(n) => (units * 1_000_000_000) >> n.min(127),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    resolution: TsResolution,
    offset_secs: i64,
}

/// Nanoseconds per unit of each decimal resolution down to nanoseconds.
const DECIMAL_NANOS: [i64; 10] =
    [1_000_000_000, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

impl Interface {
    fn timestamp(&self, high: u32, low: u32) -> Timestamp {
        let units = (u64::from(high) << 32) | u64::from(low);
        // The usual resolutions (micro- and nanoseconds) in 64 bits, when
        // nothing overflows; the exact 128-bit path otherwise.
        if let TsResolution::Decimal(n) = self.resolution {
            let fast = DECIMAL_NANOS.get(usize::from(n)).and_then(|&per_unit| {
                let nanos = i64::try_from(units).ok()?.checked_mul(per_unit)?;
                nanos.checked_add(self.offset_secs.checked_mul(1_000_000_000)?)
            });
            if let Some(nanos) = fast {
                return Timestamp(nanos);
            }
        }
        self.exact_timestamp(units)
    }

    /// Any resolution and offset, clamped to what a timestamp holds.
    fn exact_timestamp(&self, units: u64) -> Timestamp {
        let nanos = self.resolution.to_nanos(units) + i128::from(self.offset_secs) * 1_000_000_000;
        Timestamp(nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

/// Reader for one pcapng file.
pub struct PcapngReader {
    src: BlockReader,
    path: PathBuf,
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Interfaces of the sections before this one.
    earlier_interfaces: u32,
    frame: u64,
    /// Timestamp of the previous packet: simple packet blocks carry none,
    /// and trace time must not jump back to 1970 for them.
    last_ts: Timestamp,
}

/// Type and length of the block at the current position.
struct BlockHeader {
    offset: u64,
    block_type: u32,
    len: usize,
}

impl PcapngReader {
    pub(super) fn open(src: BlockReader, path: PathBuf) -> Result<Self, CaptureError> {
        Ok(Self {
            src,
            path,
            endian: Endian::Little,
            interfaces: Vec::new(),
            earlier_interfaces: 0,
            frame: 0,
            last_ts: Timestamp::default(),
        })
    }

    /// The next packet, skipping non-packet blocks.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        loop {
            let Some(block) = self.block_header()? else {
                return Ok(None);
            };
            match block.block_type {
                ENHANCED_PACKET | SIMPLE_PACKET | OBSOLETE_PACKET => {
                    return self.packet_block(&block).map(Some);
                }
                _ => self.other_block(&block)?,
            }
        }
    }

    /// Reads the block type and length and makes the whole block available.
    fn block_header(&mut self) -> Result<Option<BlockHeader>, CaptureError> {
        let offset = self.src.offset();
        let head = self.src.fill(12).map_err(|e| read_error(&self.path, offset, e))?;
        if head.is_empty() {
            return Ok(None);
        }
        if head.len() < 12 {
            return Err(CaptureError::Truncated {
                path: self.path.clone(),
                what: "a pcapng block header",
                offset,
                needed: 12,
                available: head.len() as u64,
            });
        }
        let head: [u8; 12] = head[..12].try_into().unwrap_or_default();
        let head = &head[..];
        let block_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if block_type == SECTION_HEADER {
            // A new section may switch the byte order.
            self.endian = match u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
                BYTE_ORDER_MAGIC => Endian::Little,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
                m => {
                    return Err(damaged(
                        &self.path,
                        "section header block",
                        offset,
                        format!("byte-order magic {m:#010x} is neither 0x1a2b3c4d nor swapped"),
                    ))
                }
            };
        } else if offset == 0 {
            return Err(damaged(
                &self.path,
                "pcapng file",
                0,
                "it does not start with a section header block".into(),
            ));
        }
        let block_type = self.endian.u32(head, 0);
        let len = self.endian.u32(head, 4);
        if len < 12 || len % 4 != 0 || len > MAX_BLOCK_LEN {
            return Err(damaged(
                &self.path,
                "pcapng block",
                offset,
                format!("block length {len} is not a multiple of 4 between 12 and {MAX_BLOCK_LEN}"),
            ));
        }
        let len = len as usize;
        let block = self.src.fill(len).map_err(|e| read_error(&self.path, offset, e))?;
        let Some(block) = block.get(..len) else {
            return Err(CaptureError::Truncated {
                path: self.path.clone(),
                what: "a pcapng block",
                offset,
                needed: len as u64,
                available: block.len() as u64,
            });
        };
        let trailer = self.endian.u32(block, len - 4);
        if trailer as usize != len {
            return Err(damaged(
                &self.path,
                "pcapng block",
                offset,
                format!("trailing length {trailer} differs from leading length {len}"),
            ));
        }
        Ok(Some(BlockHeader { offset, block_type, len }))
    }

    fn other_block(&mut self, block: &BlockHeader) -> Result<(), CaptureError> {
        let endian = self.endian;
        let data = self.src.fill(block.len).map_err(|e| read_error(&self.path, block.offset, e))?;
        let body = &data[8..block.len - 4];
        match block.block_type {
            SECTION_HEADER => {
                if body.len() < 16 {
                    return Err(damaged(
                        &self.path,
                        "section header block",
                        block.offset,
                        format!("body of {} bytes is shorter than 16", body.len()),
                    ));
                }
                let (major, minor) = (endian.u16(body, 4), endian.u16(body, 6));
                if major != 1 {
                    return Err(CaptureError::UnsupportedVersion {
                        path: self.path.clone(),
                        format: "pcapng section",
                        major,
                        minor,
                        offset: block.offset + 12,
                    });
                }
                walk_options(endian, &body[16..], |_, _| {}).map_err(|at| {
                    bad_option(&self.path, "section header block", block.offset, 24, at)
                })?;
                self.earlier_interfaces =
                    self.earlier_interfaces.saturating_add(self.interfaces.len() as u32);
                self.interfaces.clear();
            }
            INTERFACE_DESCRIPTION => {
                if body.len() < 8 {
                    return Err(damaged(
                        &self.path,
                        "interface description block",
                        block.offset,
                        format!("body of {} bytes is shorter than 8", body.len()),
                    ));
                }
                let mut interface = Interface {
                    link_type: LinkType(endian.u16(body, 0)),
                    snaplen: endian.u32(body, 4),
                    resolution: TsResolution::Decimal(6),
                    offset_secs: 0,
                };
                walk_options(endian, &body[8..], |code, value| match (code, value.len()) {
                    (OPT_IF_TSRESOL, 1) => {
                        interface.resolution = TsResolution::from_option(value[0])
                    }
                    (OPT_IF_TSOFFSET, 8) => {
                        let raw: [u8; 8] = value.try_into().unwrap_or_default();
                        interface.offset_secs = match endian {
                            Endian::Little => i64::from_le_bytes(raw),
                            Endian::Big => i64::from_be_bytes(raw),
                        };
                    }
                    _ => {}
                })
                .map_err(|at| {
                    bad_option(&self.path, "interface description block", block.offset, 16, at)
                })?;
                self.interfaces.push(interface);
            }
            // Name resolution, statistics, decryption secrets, custom and
            // unknown blocks carry no packets.
            _ => {}
        }
        self.src.consume(block.len);
        Ok(())
    }

    fn packet_block(&mut self, block: &BlockHeader) -> Result<Packet<'_>, CaptureError> {
        let endian = self.endian;
        let offset = block.offset;
        let data = self.src.take(block.len).map_err(|e| CaptureError::Read {
            path: self.path.clone(),
            offset,
            source: e,
        })?;
        // block_header() made the whole block available.
        let data = data.unwrap_or_default();
        let body = &data[8..block.len - 4];
        let damaged = |reason: String| CaptureError::Damaged {
            path: self.path.clone(),
            what: "packet block",
            offset,
            reason,
        };
        let interface = |id: u32| {
            self.interfaces.get(id as usize).map(|iface| (id, iface)).ok_or_else(|| {
                damaged(format!(
                    "interface {id} is not described ({} interfaces in this section)",
                    self.interfaces.len()
                ))
            })
        };
        let ((id, iface), ts, caplen, wire_len, data_at) = match block.block_type {
            ENHANCED_PACKET | OBSOLETE_PACKET => {
                if body.len() < 20 {
                    return Err(damaged(format!(
                        "body of {} bytes is shorter than 20",
                        body.len()
                    )));
                }
                let id = if block.block_type == ENHANCED_PACKET {
                    endian.u32(body, 0)
                } else {
                    u32::from(endian.u16(body, 0))
                };
                let (id, iface) = interface(id)?;
                let ts = iface.timestamp(endian.u32(body, 4), endian.u32(body, 8));
                ((id, iface), ts, endian.u32(body, 12), endian.u32(body, 16), 20)
            }
            _ => {
                if body.len() < 4 {
                    return Err(damaged(format!("body of {} bytes is shorter than 4", body.len())));
                }
                let (id, iface) = interface(0)?;
                let wire_len = endian.u32(body, 0);
                let mut caplen = wire_len.min((body.len() - 4) as u32);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen);
                }
                // A simple packet block has no timestamp of its own.
                ((id, iface), self.last_ts, caplen, wire_len, 4)
            }
        };
        let Some(packet) = body.get(data_at..data_at + caplen as usize) else {
            return Err(damaged(format!(
                "captured length {caplen} runs past the end of the block"
            )));
        };
        self.frame += 1;
        self.last_ts = ts;
        Ok(Packet {
            timestamp: ts,
            link_type: iface.link_type,
            interface: self.earlier_interfaces.saturating_add(id),
            data: packet,
            wire_len: wire_len.max(caplen),
            frame: self.frame,
        })
    }
}

fn read_error(path: &Path, offset: u64, source: std::io::Error) -> CaptureError {
    CaptureError::Read { path: path.to_owned(), offset, source }
}

fn damaged(path: &Path, what: &'static str, offset: u64, reason: String) -> CaptureError {
    CaptureError::Damaged { path: path.to_owned(), what, offset, reason }
}

fn bad_option(path: &Path, what: &'static str, block: u64, start: u64, at: usize) -> CaptureError {
    damaged(path, what, block + start + at as u64, "option runs past the end of its block".into())
}

/// Calls `f(code, value)` for each option until the end-of-options marker or
/// the end of `options`; `Err(position)` when an option runs past the end.
fn walk_options(
    endian: Endian,
    options: &[u8],
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), usize> {
    let mut at = 0;
    while at + 4 <= options.len() {
        let code = endian.u16(options, at);
        let len = endian.u16(options, at + 2) as usize;
        if code == OPT_END {
            return Ok(());
        }
        let value = options.get(at + 4..at + 4 + len).ok_or(at)?;
        f(code, value);
        at += 4 + len.next_multiple_of(4);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The 64-bit path gives what the exact one does, whatever the
        /// resolution, offset and units.
        #[test]
        fn timestamps_in_64_bits_are_exact(
            // Microseconds from 1970 to 2262 (what fits 64 bits in
            // nanoseconds), and any.
            high in proptest::prop_oneof![3 => 0u32..0x0020_0000, 1 => proptest::prelude::any::<u32>()],
            low in proptest::prelude::any::<u32>(),
            // Decimal resolutions down to nanoseconds mostly, and any.
            resolution in proptest::prop_oneof![3 => 0u8..=9, 1 => proptest::prelude::any::<u8>()],
            offset_secs in proptest::prop_oneof![
                3 => -2_000_000_000i64..2_000_000_000,
                1 => proptest::prelude::any::<i64>()
            ],
        ) {
            let iface = Interface {
                link_type: LinkType(1),
                snaplen: 0,
                resolution: TsResolution::from_option(resolution),
                offset_secs,
            };
            let units = (u64::from(high) << 32) | u64::from(low);
            proptest::prop_assert_eq!(iface.timestamp(high, low), iface.exact_timestamp(units));
        }
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(TsResolution::Decimal(6).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(TsResolution::Decimal(9).to_nanos(7), 7);
        assert_eq!(TsResolution::Decimal(12).to_nanos(5_000), 5);
        assert_eq!(TsResolution::Binary(10).to_nanos(1024), 1_000_000_000);
        assert_eq!(TsResolution::from_option(0x8a), TsResolution::Binary(10));
    }

    #[test]
    fn options_past_the_end_are_reported() {
        let opts = [9, 0, 1, 0, 6, 0, 0, 0, 2, 0, 200, 0];
        let mut seen = Vec::new();
        let r = walk_options(Endian::Little, &opts, |c, v| seen.push((c, v.to_vec())));
        assert_eq!(r, Err(8));
        assert_eq!(seen, vec![(9, vec![6])]);
    }
}
