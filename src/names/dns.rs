//! DNS messages (RFC 1035): the question and the A, AAAA and CNAME answers,
//! with compression pointers followed only backwards, at most
//! [`MAX_JUMPS`] times, and names bounded to 255 bytes, so that crafted
//! messages cannot loop or read out of bounds.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;

/// Most compression pointers followed for one name.
pub const MAX_JUMPS: usize = 16;
/// Longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// What an answer record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rdata {
    Address(IpAddr),
    Cname(Arc<str>),
}

/// One answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Arc<str>,
    pub ttl: u32,
    pub data: Rdata,
}

/// A DNS response: its first question and the A, AAAA and CNAME records
/// of all its sections (glue records in the additional section name
/// addresses too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub query: Option<Arc<str>>,
    pub answers: Vec<Record>,
}

/// Why a message could not be read (whatever was read before is kept by
/// [`parse_response`] where it can be).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    Truncated,
    BadLabel,
    PointerLoop,
    NameTooLong,
    NotAResponse,
}

fn u16_at(m: &[u8], at: usize) -> Result<u16, DnsError> {
    m.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or(DnsError::Truncated)
}

/// Reads the name at `at` into `name` (emptied first; lower case, no
/// trailing dot); returns the offset after it in the original position.
/// `name` is the caller's, used again for the next name: a name costs an
/// allocation only when it is kept.
pub fn read_name(m: &[u8], mut at: usize, name: &mut String) -> Result<usize, DnsError> {
    name.clear();
    let mut end = None;
    let mut jumps = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *m.get(at).ok_or(DnsError::Truncated)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok(end.unwrap_or(at + 1));
            }
            0x00 => {
                let label = m.get(at + 1..at + 1 + len).ok_or(DnsError::Truncated)?;
                wire_len += len + 1;
                if wire_len > MAX_NAME {
                    return Err(DnsError::NameTooLong);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    // Keep names printable; anything else is escaped.
                    if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                        name.push(b.to_ascii_lowercase() as char);
                    } else {
                        // Writing to a String cannot fail.
                        let _ = write!(name, "\\{b:03}");
                    }
                }
                at += 1 + len;
            }
            0xc0 => {
                let target = (u16_at(m, at)? & 0x3fff) as usize;
                jumps += 1;
                // Only backwards, and not forever.
                if jumps > MAX_JUMPS || target >= at {
                    return Err(DnsError::PointerLoop);
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

/// Parses a response (QR set). Records after a damaged one are dropped;
/// those before it are kept.
pub fn parse_response(m: &[u8]) -> Result<Response, DnsError> {
    let flags = u16_at(m, 2)?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::NotAResponse);
    }
    let qd = u16_at(m, 4)?;
    let records = u32::from(u16_at(m, 6)?) + u32::from(u16_at(m, 8)?) + u32::from(u16_at(m, 10)?);
    let mut at = 12;
    let mut response = Response::default();
    let (mut name, mut target) = (String::with_capacity(64), String::with_capacity(64));
    for i in 0..qd {
        let next = read_name(m, at, &mut name)?;
        if i == 0 {
            response.query = Some(Arc::from(name.as_str()));
        }
        at = next + 4;
    }
    for _ in 0..records {
        let Ok(next) = read_name(m, at, &mut name) else { break };
        let (Ok(rtype), Ok(rdlen)) = (u16_at(m, next), u16_at(m, next + 8)) else { break };
        let ttl = match m.get(next + 4..next + 8) {
            Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            None => break,
        };
        let rdata_at = next + 10;
        let Some(rdata) = m.get(rdata_at..rdata_at + rdlen as usize) else { break };
        let data = match (rtype, rdata.len()) {
            (TYPE_A, 4) => Some(Rdata::Address(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            )))),
            (TYPE_AAAA, 16) => {
                let b: [u8; 16] = rdata.try_into().unwrap_or_default();
                Some(Rdata::Address(IpAddr::V6(Ipv6Addr::from(b))))
            }
            (TYPE_CNAME, _) => read_name(m, rdata_at, &mut target)
                .ok()
                .map(|_| Rdata::Cname(Arc::from(target.as_str()))),
            _ => None,
        };
        if let Some(data) = data {
            response.answers.push(Record { name: Arc::from(name.as_str()), ttl, data });
        }
        at = rdata_at + rdlen as usize;
    }
    Ok(response)
}

impl Response {
    /// Each answered address with the names that lead to it: the owner of
    /// the address record and every name of the CNAME chain above it, up
    /// to the queried name.
    pub fn names_by_address(&self) -> Vec<(IpAddr, Vec<Arc<str>>, u32)> {
        // CNAME target → the first name aliasing it, built once: walking
        // the chain by scanning every answer for every hop of every
        // address is cubic in the answers (hundreds fit in one response).
        // Hashed with ahash, as the other per-packet maps are.
        let mut alias_of: HashMap<&str, &Arc<str>, ahash::RandomState> = HashMap::default();
        for a in &self.answers {
            if let Rdata::Cname(target) = &a.data {
                alias_of.entry(&**target).or_insert(&a.name);
            }
        }
        let mut out = Vec::new();
        for r in &self.answers {
            let Rdata::Address(ip) = r.data else { continue };
            let mut names = vec![r.name.clone()];
            let mut current = &*r.name;
            // Walk the CNAME chain backwards, at most MAX_CNAME_CHAIN
            // hops, never through a name twice (a loop).
            for _ in 0..MAX_CNAME_CHAIN {
                let Some(&parent) = alias_of.get(current) else { break };
                if names.iter().any(|n| n == parent) {
                    break;
                }
                names.push(Arc::clone(parent));
                current = parent;
            }
            names.reverse();
            out.push((ip, names, r.ttl));
        }
        out
    }
}

/// CNAME hops followed from an address back to the name asked for (a
/// resolver follows about as many).
const MAX_CNAME_CHAIN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A response for www.example.com: CNAME to edge.example.net (by a
    /// compression pointer), which has an A and an AAAA record.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00"); // at 12
        m.extend_from_slice(&[0, 1, 0, 1]);
        // CNAME: name = pointer to 12, target = edge + pointer to "example"? use a new name.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 18]);
        let edge_at = m.len();
        m.extend_from_slice(b"\x04edge\x07example\x03net\x00");
        m.extend_from_slice(&[0xc0, edge_at as u8, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 7]);
        m.extend_from_slice(&[0xc0, edge_at as u8, 0, 28, 0, 1, 0, 0, 0, 30, 0, 16]);
        m.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        m
    }

    #[test]
    fn answers_with_cname_chains() {
        let r = parse_response(&response()).unwrap();
        assert_eq!(r.query.as_deref(), Some("www.example.com"));
        assert_eq!(r.answers.len(), 3);
        let by_ip = r.names_by_address();
        assert_eq!(by_ip[0].0, "192.0.2.7".parse::<IpAddr>().unwrap());
        let names: Vec<&str> = by_ip[0].1.iter().map(|n| &**n).collect();
        assert_eq!(names, ["www.example.com", "edge.example.net"]);
        assert_eq!(by_ip[0].2, 30);
        assert_eq!(by_ip[1].0, "2001:db8::7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        // A pointer to itself.
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert_eq!(parse_response(&m), Err(DnsError::PointerLoop));
        // Two labels pointing at each other through a forward pointer.
        m[12..14].copy_from_slice(&[0xc0, 14]);
        assert_eq!(read_name(&m, 12, &mut String::new()), Err(DnsError::PointerLoop));
        assert_eq!(read_name(b"\x05ab", 0, &mut String::new()), Err(DnsError::Truncated));
        assert_eq!(read_name(b"\x80", 0, &mut String::new()), Err(DnsError::BadLabel));
        let long: Vec<u8> = std::iter::repeat_n(
            b"\x3faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            5,
        )
        .flatten()
        .chain([0])
        .collect();
        assert_eq!(read_name(&long, 0, &mut String::new()), Err(DnsError::NameTooLong));
    }

    #[test]
    fn truncated_answers_keep_what_came_before() {
        let full = response();
        let cut = &full[..full.len() - 10];
        let r = parse_response(cut).unwrap();
        assert_eq!(r.answers.len(), 2, "the AAAA record is cut");
        let query = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_response(&query), Err(DnsError::NotAResponse));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(m in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(r) = parse_response(&m) {
                let _ = r.names_by_address();
            }
            let _ = read_name(&m, 0, &mut String::new());
        }

        #[test]
        fn mutated_responses_never_panic(i in 0usize..120, b in any::<u8>()) {
            let mut m = response();
            let at = i % m.len();
            m[at] = b;
            if let Ok(r) = parse_response(&m) {
                let _ = r.names_by_address();
            }
        }
    }
}
