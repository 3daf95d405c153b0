//! The server name (SNI, RFC 6066) of a TLS ClientHello at the start of a
//! client's TCP stream. The ClientHello may span several TLS records (and
//! so several TCP segments): the parser asks for more bytes until the
//! handshake message is complete, and gives up past [`MAX_HELLO`] bytes.

use std::borrow::Cow;
use std::sync::Arc;

use super::Parsed;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;

/// Larger ClientHellos (post-quantum key shares reach ~2 KB, padding more)
/// are not reassembled further.
pub const MAX_HELLO: usize = 16 * 1024;

/// The handshake bytes carried by the TLS records at the start of
/// `stream`, with whether the records continue past the bytes in hand.
/// Borrowed from `stream` while they are one record's (a ClientHello
/// mostly is): copied only to join records.
fn handshake_bytes(stream: &[u8], need: usize) -> Parsed<Cow<'_, [u8]>> {
    let mut out = Cow::Borrowed(&[][..]);
    let mut at = 0;
    while out.len() < need {
        let Some(h) = stream.get(at..at + 5) else { return Parsed::NeedMore };
        if h[0] != CONTENT_HANDSHAKE || h[1] != 3 {
            return if at == 0 { Parsed::NotThis } else { Parsed::Done(out) };
        }
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let Some(body) = stream.get(at + 5..at + 5 + len) else {
            // Use the part in hand when it already holds what is needed.
            join(&mut out, &stream[at + 5..]);
            return if out.len() >= need { Parsed::Done(out) } else { Parsed::NeedMore };
        };
        join(&mut out, body);
        at += 5 + len;
    }
    Parsed::Done(out)
}

/// `out` followed by `more`: `more` itself when `out` is empty.
fn join<'a>(out: &mut Cow<'a, [u8]>, more: &'a [u8]) {
    if out.is_empty() {
        *out = Cow::Borrowed(more);
    } else {
        out.to_mut().extend_from_slice(more);
    }
}

/// The SNI of the ClientHello at the start of `stream`: `Done(None)` for a
/// ClientHello without one.
pub fn client_hello_sni(stream: &[u8]) -> Parsed<Option<Arc<str>>> {
    // First the handshake header, to learn the message length.
    let head = match handshake_bytes(stream, 4) {
        Parsed::Done(h) if h.len() >= 4 => h,
        Parsed::Done(_) => return Parsed::NotThis,
        Parsed::NeedMore => return Parsed::NeedMore,
        Parsed::NotThis => return Parsed::NotThis,
    };
    if head[0] != HANDSHAKE_CLIENT_HELLO {
        return Parsed::NotThis;
    }
    let len = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
    if len > MAX_HELLO {
        return Parsed::Done(None);
    }
    let hello = match handshake_bytes(stream, 4 + len) {
        Parsed::Done(h) if h.len() >= 4 + len => h,
        Parsed::Done(_) => return Parsed::Done(None),
        other => return other.map_none(),
    };
    Parsed::Done(sni_of(&hello[4..4 + len]))
}

impl<T> Parsed<T> {
    fn map_none<U>(self) -> Parsed<U> {
        match self {
            Parsed::NeedMore => Parsed::NeedMore,
            Parsed::NotThis | Parsed::Done(_) => Parsed::NotThis,
        }
    }
}

/// The SNI in a ClientHello body (after the handshake header).
pub fn sni_of(body: &[u8]) -> Option<Arc<str>> {
    // Version (2) and random (32), then three length-prefixed vectors.
    let mut at = 34;
    let session = usize::from(*body.get(at)?);
    at += 1 + session;
    let suites = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    at += 2 + suites;
    let compression = usize::from(*body.get(at)?);
    at += 1 + compression;
    let ext_len = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    at += 2;
    let exts = body.get(at..at + ext_len)?;
    let mut e = 0;
    while e + 4 <= exts.len() {
        let ty = u16::from_be_bytes([exts[e], exts[e + 1]]);
        let len = usize::from(u16::from_be_bytes([exts[e + 2], exts[e + 3]]));
        let data = exts.get(e + 4..e + 4 + len)?;
        if ty == EXT_SERVER_NAME {
            // server_name_list: length, then (type, length, name) entries.
            let mut n = 2;
            while n + 3 <= data.len() {
                let kind = data[n];
                let name_len = usize::from(u16::from_be_bytes([data[n + 1], data[n + 2]]));
                let name = data.get(n + 3..n + 3 + name_len)?;
                if kind == 0 {
                    return std::str::from_utf8(name).ok().map(super::shared_name);
                }
                n += 3 + name_len;
            }
            return None;
        }
        e += 4 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ClientHello for `name` in one TLS record.
    pub(crate) fn client_hello(name: &str) -> Vec<u8> {
        let mut sni = vec![0, 0];
        let list_len = (name.len() + 3) as u16;
        sni.extend_from_slice(&(list_len + 2).to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name.as_bytes());
        let mut ext = vec![0x00, 0x0a, 0, 4, 0, 2, 0, 0x1d]; // supported_groups first
        ext.extend_from_slice(&sni);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn sni_from_one_record() {
        let hello = client_hello("OSS-cn-hangzhou.aliyuncs.com");
        assert_eq!(
            client_hello_sni(&hello),
            Parsed::Done(Some("oss-cn-hangzhou.aliyuncs.com".into()))
        );
    }

    #[test]
    fn a_hello_split_over_two_segments_asks_for_more() {
        let hello = client_hello("example.com");
        assert_eq!(client_hello_sni(&hello[..40]), Parsed::NeedMore);
        assert_eq!(client_hello_sni(&hello[..3]), Parsed::NeedMore);
        assert_eq!(client_hello_sni(&hello), Parsed::Done(Some("example.com".into())));
    }

    #[test]
    fn a_hello_split_over_two_records() {
        let one = client_hello("split.example");
        let hs = &one[5..];
        let (a, b) = hs.split_at(30);
        let mut two = vec![22, 3, 1];
        two.extend_from_slice(&(a.len() as u16).to_be_bytes());
        two.extend_from_slice(a);
        two.extend_from_slice(&[22, 3, 1]);
        two.extend_from_slice(&(b.len() as u16).to_be_bytes());
        two.extend_from_slice(b);
        assert_eq!(client_hello_sni(&two[..40]), Parsed::NeedMore);
        assert_eq!(client_hello_sni(&two), Parsed::Done(Some("split.example".into())));
    }

    #[test]
    fn other_traffic_is_not_tls() {
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n"), Parsed::NotThis);
        let mut server_hello = client_hello("x");
        server_hello[5] = 2;
        assert_eq!(client_hello_sni(&server_hello), Parsed::NotThis);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(mut m in proptest::collection::vec(any::<u8>(), 0..400), tls in any::<bool>()) {
            if tls && m.len() > 6 {
                m[0] = 22;
                m[1] = 3;
                m[5] = 1;
            }
            let _ = client_hello_sni(&m);
            let _ = sni_of(&m);
        }
    }
}
