//! A small writer for JSON objects with fixed keys, for the record formats
//! that are written once per flow or finding. Keys are static ASCII and are
//! written as they are; string values from the traffic or the user go
//! through serde_json's escaping. Measured on 100,000 flow records it is
//! several times faster than serialising derived structs, whose keys are
//! escaped one character at a time.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::time::Timestamp;

/// An open JSON object; `end` closes it.
pub struct JsonObject<'a> {
    buf: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    /// Starts an object at the end of `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        Self { buf, empty: true }
    }

    /// An object whose `{` is in `buf` already (copied there with no
    /// field after it): fields added go after it, and `end` closes it.
    pub fn opened(buf: &'a mut Vec<u8>) -> Self {
        Self { buf, empty: true }
    }

    /// Where the next field goes: the length of the buffer.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    // This and the simple field methods below (object, u64, i64, keyword,
    // string, raw, timestamp, end) are marked for inlining into the
    // renderers, where the key is a literal: it is then copied as a
    // constant, not by a call to memcpy (3% of the instructions writing
    // `jsonl --flows` records). The others gained nothing from it.
    #[inline]
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// A nested object under `key`.
    #[inline]
    pub fn object(&mut self, key: &str) -> JsonObject<'_> {
        self.key(key);
        JsonObject::new(self.buf)
    }

    #[inline]
    pub fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        self.buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    #[inline]
    pub fn i64(&mut self, key: &str, value: i64) {
        self.key(key);
        self.buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A string that is known to need no escaping (keywords, numbers).
    #[inline]
    pub fn keyword(&mut self, key: &str, value: &str) {
        debug_assert!(!value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
        self.key(key);
        self.buf.push(b'"');
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(b'"');
    }

    /// Any string, escaped.
    #[inline]
    pub fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        escape_into(self.buf, value);
    }

    /// A value that is already valid JSON (e.g. a string escaped once and
    /// reused for every record).
    #[inline]
    pub fn raw(&mut self, key: &str, json: &[u8]) {
        self.key(key);
        self.buf.extend_from_slice(json);
    }

    #[inline]
    pub fn timestamp(&mut self, key: &str, ts: Timestamp) {
        self.key(key);
        self.buf.push(b'"');
        self.buf.extend_from_slice(&ts.rfc3339());
        self.buf.push(b'"');
    }

    pub fn ip(&mut self, key: &str, ip: IpAddr) {
        match ip {
            // Written octet by octet: `Display` goes through the formatting
            // machinery, a few percent of writing the records.
            IpAddr::V4(v4) => {
                self.key(key);
                self.buf.push(b'"');
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b'.');
                    }
                    self.buf.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                }
                self.buf.push(b'"');
            }
            IpAddr::V6(_) => self.displayed(key, ip),
        }
    }

    /// A network, `ADDRESS/LENGTH`.
    pub fn net(&mut self, key: &str, net: IpNet) {
        self.displayed(key, net);
    }

    /// A value whose `Display` needs no escaping, written in place.
    fn displayed(&mut self, key: &str, value: impl std::fmt::Display) {
        use std::io::Write;
        self.key(key);
        self.buf.push(b'"');
        // Writing to a Vec cannot fail.
        let _ = write!(self.buf, "{value}");
        self.buf.push(b'"');
    }

    /// An array of strings, escaped.
    pub fn strings<'k>(&mut self, key: &str, values: impl Iterator<Item = &'k str>) {
        self.key(key);
        self.buf.push(b'[');
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            escape_into(self.buf, v);
        }
        self.buf.push(b']');
    }

    /// An array of keywords.
    pub fn keywords<'k>(&mut self, key: &str, values: impl Iterator<Item = &'k str>) {
        self.key(key);
        self.buf.push(b'[');
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.push(b'"');
            self.buf.extend_from_slice(v.as_bytes());
            self.buf.push(b'"');
        }
        self.buf.push(b']');
    }

    /// An array of objects, each written by `write`.
    pub fn objects<T>(&mut self, key: &str, items: &[T], write: impl Fn(&mut JsonObject<'_>, &T)) {
        self.key(key);
        self.buf.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            let mut o = JsonObject::new(self.buf);
            write(&mut o, item);
            o.end();
        }
        self.buf.push(b']');
    }

    /// Fields already written as JSON (`"a":1,"b":2`), e.g. cached ones.
    pub fn raw_fields(&mut self, fields: &[u8]) {
        if fields.is_empty() {
            return;
        }
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.extend_from_slice(fields);
    }

    /// Closes the object.
    #[inline]
    pub fn end(self) {
        self.buf.push(b'}');
    }
}

/// Appends `value` as a JSON string.
pub fn escape_into(buf: &mut Vec<u8>, value: &str) {
    // Serialising a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_addresses_as_display_does() {
        for ip in
            ["0.0.0.0", "192.0.2.1", "203.0.113.255", "10.20.0.9", "2001:db8::1", "::ffff:1.2.3.4"]
        {
            let ip: IpAddr = ip.parse().unwrap();
            let mut buf = Vec::new();
            let mut o = JsonObject::new(&mut buf);
            o.ip("ip", ip);
            o.end();
            assert_eq!(String::from_utf8(buf).unwrap(), format!("{{\"ip\":\"{ip}\"}}"));
        }
    }

    #[test]
    fn writes_nested_objects_that_parse_back() {
        let mut buf = Vec::new();
        let mut o = JsonObject::new(&mut buf);
        o.u64("n", 7);
        o.string("s", "a\"b\\c\n");
        let mut inner = o.object("inner");
        inner.timestamp("t", Timestamp(1));
        inner.ip("ip", "2001:db8::1".parse().unwrap());
        inner.keywords("k", ["SYN", "ACK"].into_iter());
        inner.end();
        o.i64("neg", -3);
        o.end();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"n": 7, "s": "a\"b\\c\n", "inner": {"t": "1970-01-01T00:00:00.000000001Z",
                "ip": "2001:db8::1", "k": ["SYN", "ACK"]}, "neg": -3})
        );
    }
}
