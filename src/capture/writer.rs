//! Writing pcapng: one section, interfaces described as they first appear,
//! enhanced packet blocks with nanosecond timestamps and a comment each.
//! Used for evidence (`audit --evidence`, `live --evidence-dir`).

use std::collections::HashMap;
use std::io::{self, Write};

use super::LinkType;
use crate::time::Timestamp;

const SECTION_HEADER: u32 = 0x0a0d_0d0a;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;

/// A pcapng file being written.
pub struct PcapngWriter<W: Write> {
    pub out: W,
    /// The caller's key of an interface → its number in the file.
    interfaces: HashMap<(u32, u32, u16), u32>,
    block: Vec<u8>,
    /// Bytes written so far.
    pub written: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Section length: not given.
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        let user_appl = concat!("xborder ", env!("CARGO_PKG_VERSION"));
        push_option(&mut body, 4, user_appl.as_bytes());
        push_option(&mut body, 0, &[]);
        let mut block = Vec::new();
        write_block(&mut block, SECTION_HEADER, &body);
        out.write_all(&block)?;
        Ok(Self { out, interfaces: HashMap::new(), block: Vec::new(), written: block.len() as u64 })
    }

    /// The file's interface for the caller's `key`, described first (with
    /// `link_type`, nanosecond timestamps and `description`) if new.
    pub fn interface(
        &mut self,
        key: (u32, u32, u16),
        link_type: LinkType,
        description: impl FnOnce() -> String,
    ) -> io::Result<u32> {
        if let Some(&id) = self.interfaces.get(&key) {
            return Ok(id);
        }
        let id = self.interfaces.len() as u32;
        let mut body = Vec::new();
        body.extend_from_slice(&link_type.0.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Snapshot length: no limit.
        body.extend_from_slice(&0u32.to_le_bytes());
        push_option(&mut body, 9, &[9]);
        push_option(&mut body, 3, description().as_bytes());
        push_option(&mut body, 0, &[]);
        self.block.clear();
        write_block(&mut self.block, INTERFACE_DESCRIPTION, &body);
        self.out.write_all(&self.block)?;
        self.written += self.block.len() as u64;
        self.interfaces.insert(key, id);
        Ok(id)
    }

    /// One packet on `interface` (from [`Self::interface`]).
    pub fn packet(
        &mut self,
        interface: u32,
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
        comment: &str,
    ) -> io::Result<()> {
        // Nanoseconds since the epoch (if_tsresol 9); before 1970 is 0.
        let ns = u64::try_from(ts.as_nanos()).unwrap_or(0);
        let mut body = Vec::with_capacity(data.len() + comment.len() + 40);
        body.extend_from_slice(&interface.to_le_bytes());
        body.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ns as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&wire_len.to_le_bytes());
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        push_option(&mut body, 1, comment.as_bytes());
        push_option(&mut body, 0, &[]);
        self.block.clear();
        write_block(&mut self.block, ENHANCED_PACKET, &body);
        self.written += self.block.len() as u64;
        self.out.write_all(&self.block)
    }
}

/// An option: code, length, value padded to 4 bytes. Values longer than
/// an option can hold are cut (a comment never is in practice).
fn push_option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX) - 3)];
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().next_multiple_of(4), 0);
}

/// A block: type, total length, body (a multiple of 4 bytes), length.
fn write_block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
    let len = (12 + body.len()) as u32;
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
}
