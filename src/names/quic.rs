//! The server name of a QUIC connection, from the client's Initial
//! packets (QUIC v1, RFC 9000/9001, and v2, RFC 9369): their protection
//! uses keys derived from the client's Destination Connection ID and a
//! published salt, so a passive observer can remove it and read the
//! ClientHello in the CRYPTO frames.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

// ring, not the RustCrypto crates: its AES-GCM and HKDF are three to five
// times faster, and QUIC Initials are most of the names stage's work.
use ring::aead::{self, quic::HeaderProtectionKey, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};

use crate::last_few::LastFew;

const V1: u32 = 0x0000_0001;
const V2: u32 = 0x6b33_43cf;
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// A piece of the CRYPTO stream: its offset and bytes.
pub type CryptoPiece = (u64, Vec<u8>);

/// CRYPTO stream bytes kept per connection at most.
pub const MAX_CRYPTO: usize = 16 * 1024;

/// Client Initial keys of one version and connection ID.
struct Keys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// An HKDF output length.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(secret: &Prk, label: &[u8], out: &mut [u8]) -> bool {
    const PREFIX: &[u8] = b"tls13 ";
    let (Ok(len), Ok(full)) = (u16::try_from(out.len()), u8::try_from(PREFIX.len() + label.len()))
    else {
        return false;
    };
    let (len, full) = (len.to_be_bytes(), [full]);
    // The last byte is the empty context's length, 0.
    let info: [&[u8]; 5] = [&len, &full, PREFIX, label, &[0]];
    secret.expand(&info, Len(out.len())).and_then(|okm| okm.fill(out)).is_ok()
}

fn client_keys(version: u32, dcid: &[u8]) -> Option<Keys> {
    // The salts' HMAC keys, made once (two of the fourteen SHA-256 blocks
    // a connection's keys cost).
    static SALTS: LazyLock<[Salt; 2]> =
        LazyLock::new(|| [Salt::new(HKDF_SHA256, &SALT_V1), Salt::new(HKDF_SHA256, &SALT_V2)]);
    let (salt, key, iv, hp): (_, &[u8], &[u8], &[u8]) = match version {
        V1 => (&SALTS[0], b"quic key", b"quic iv", b"quic hp"),
        V2 => (&SALTS[1], b"quicv2 key", b"quicv2 iv", b"quicv2 hp"),
        _ => return None,
    };
    let initial = salt.extract(dcid);
    let mut client = [0u8; 32];
    if !expand_label(&initial, b"client in", &mut client) {
        return None;
    }
    let client = Prk::new_less_safe(HKDF_SHA256, &client);
    let mut keys = Keys { key: [0; 16], iv: [0; 12], hp: [0; 16] };
    let ok = expand_label(&client, key, &mut keys.key)
        && expand_label(&client, iv, &mut keys.iv)
        && expand_label(&client, hp, &mut keys.hp);
    ok.then_some(keys)
}

/// A QUIC variable-length integer at `*at`.
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*at..*at + len)?;
    let mut v = u64::from(first & 0x3f);
    for byte in &bytes[1..] {
        v = (v << 8) | u64::from(*byte);
    }
    *at += len;
    Some(v)
}

/// Whether a UDP payload starts with a QUIC v1/v2 long header.
pub fn looks_like_quic(payload: &[u8]) -> bool {
    payload.len() >= 7
        && payload[0] & 0xc0 == 0xc0
        && matches!(u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]), V1 | V2)
}

/// The client Initial packets of one UDP datagram (which may coalesce
/// several QUIC packets), opened: their CRYPTO frames. Kept and reused, so
/// that opening a datagram allocates nothing once the buffers have grown
/// (a 1,200-byte buffer per Initial made the allocator consolidate), but
/// a new connection's opener (`OPENERS_KEPT` are kept).
#[derive(Default)]
pub struct OpenedInitials {
    /// The packets' plaintexts, one after the other.
    plain: Vec<u8>,
    /// A packet's header, unprotected (the AEAD's associated data).
    header: Vec<u8>,
    /// CRYPTO frames: stream offset and where their bytes are in `plain`.
    frames: Vec<(u64, Range<usize>)>,
    /// The protection of the connections opened last.
    openers: LastFew<Opener, OPENERS_KEPT>,
}

/// Connections whose Initial protection is kept, ready to use: a client's
/// ClientHello often spans two Initial datagrams (Chrome's, with a
/// post-quantum key share), and deriving the keys (twelve SHA-256 blocks)
/// and building their AES key schedules is most of opening a packet.
const OPENERS_KEPT: usize = 4;

/// One connection's client Initial protection: the keys derived from its
/// version and Destination Connection ID, made into AES contexts.
struct Opener {
    version: u32,
    dcid: Vec<u8>,
    iv: [u8; 12],
    hp: HeaderProtectionKey,
    key: LessSafeKey,
}

impl Opener {
    fn new(version: u32, dcid: &[u8]) -> Option<Self> {
        let keys = client_keys(version, dcid)?;
        Some(Opener {
            version,
            dcid: dcid.to_vec(),
            iv: keys.iv,
            hp: HeaderProtectionKey::new(&aead::quic::AES_128, &keys.hp).ok()?,
            key: LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &keys.key).ok()?),
        })
    }
}

/// The opener of `version` and `dcid` among `kept`, made (and kept, in
/// place of the oldest) if it is not there.
fn opener<'k>(
    kept: &'k mut LastFew<Opener, OPENERS_KEPT>,
    version: u32,
    dcid: &[u8],
) -> Option<&'k Opener> {
    match kept.position(|o| o.version == version && o.dcid == dcid) {
        Some(at) => kept.get(at),
        None => kept.keep(Opener::new(version, dcid)?),
    }
}

impl OpenedInitials {
    /// Opens the Initial packets at the start of `datagram`, replacing
    /// what was opened before.
    pub fn open(&mut self, datagram: &[u8]) {
        self.plain.clear();
        self.frames.clear();
        let mut rest = datagram;
        while looks_like_quic(rest) {
            let Some(consumed) = self.open_initial(rest) else { break };
            rest = &rest[consumed..];
        }
    }

    /// The CRYPTO frames, in the order of the datagram: `(offset, data)`.
    pub fn pieces(&self) -> impl Iterator<Item = (u64, &[u8])> + Clone {
        self.frames.iter().filter_map(|(offset, at)| Some((*offset, self.plain.get(at.clone())?)))
    }

    /// [`Self::pieces`], copied to be kept.
    pub fn to_pieces(&self) -> Vec<CryptoPiece> {
        self.pieces().map(|(offset, data)| (offset, data.to_vec())).collect()
    }

    /// Removes the protection of the Initial packet at the start of
    /// `packet`, adding its CRYPTO frames; returns the packet's length.
    fn open_initial(&mut self, packet: &[u8]) -> Option<usize> {
        let version = u32::from_be_bytes([packet[1], packet[2], packet[3], packet[4]]);
        let packet_type = (packet[0] >> 4) & 0x03;
        let initial = match version {
            V1 => packet_type == 0,
            V2 => packet_type == 1,
            _ => false,
        };
        let mut at = 5;
        let dcid_len = usize::from(*packet.get(at)?);
        let dcid = packet.get(at + 1..at + 1 + dcid_len)?;
        at += 1 + dcid_len;
        let scid_len = usize::from(*packet.get(at)?);
        at += 1 + scid_len;
        if initial {
            let token_len = varint(packet, &mut at)? as usize;
            at += token_len;
        }
        let length = varint(packet, &mut at)? as usize;
        let pn_offset = at;
        let end = pn_offset.checked_add(length)?;
        if end > packet.len() || length < 20 {
            return None;
        }
        if !initial {
            // Another packet type coalesced with the Initial: skip it.
            return Some(end);
        }
        let opener = opener(&mut self.openers, version, dcid)?;
        // Header protection: AES-ECB of the 16 bytes after the first 4 of
        // the packet number.
        let sample = packet.get(pn_offset + 4..pn_offset + 20)?;
        let mask = opener.hp.new_mask(sample).ok()?;
        let first = packet[0] ^ (mask[0] & 0x0f);
        let pn_len = usize::from(first & 0x03) + 1;
        let header = &mut self.header;
        header.clear();
        header.extend_from_slice(&packet[..pn_offset + pn_len]);
        header[0] = first;
        let mut pn: u64 = 0;
        for i in 0..pn_len {
            header[pn_offset + i] ^= mask[1 + i];
            pn = (pn << 8) | u64::from(header[pn_offset + i]);
        }
        let mut nonce = opener.iv;
        for (i, b) in pn.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        // The ciphertext and its 16-byte tag.
        let sealed = &packet[pn_offset + pn_len..end];
        if sealed.len() < aead::AES_128_GCM.tag_len() {
            return None;
        }
        let start = self.plain.len();
        self.plain.extend_from_slice(sealed);
        let nonce = Nonce::assume_unique_for_key(nonce);
        match opener.key.open_in_place(nonce, Aad::from(&header[..]), &mut self.plain[start..]) {
            Ok(plain) => {
                let len = plain.len();
                self.plain.truncate(start + len);
            }
            Err(_) => {
                self.plain.truncate(start);
                return None;
            }
        }
        crypto_frames(&self.plain[start..], |offset, at| {
            self.frames.push((offset, start + at.start..start + at.end));
        });
        Some(end)
    }
}

/// The CRYPTO frames of the client Initial packets in one UDP datagram:
/// `(offset, data)` pieces ([`OpenedInitials`], for a caller that keeps
/// them).
pub fn initial_crypto(datagram: &[u8]) -> Vec<CryptoPiece> {
    let mut opened = OpenedInitials::default();
    opened.open(datagram);
    opened.to_pieces()
}

/// How many bytes at the start of `b` are zero.
fn zero_run(b: &[u8]) -> usize {
    let whole = b.chunks_exact(16).take_while(|c| c.iter().all(|&x| x == 0)).count() * 16;
    whole + b[whole..].iter().position(|&x| x != 0).unwrap_or(b.len() - whole)
}

/// CRYPTO frames of a decrypted Initial payload, each as its stream offset
/// and its place in `plain`; stops at a frame type that cannot appear in
/// an Initial.
fn crypto_frames(plain: &[u8], mut frame: impl FnMut(u64, Range<usize>)) {
    let mut at = 0;
    while at < plain.len() {
        // A client pads its Initials to 1,200 bytes with PADDING frames,
        // one zero byte each: skip a run of them at once, 16 bytes at a
        // time (byte by byte it was a tenth of opening an Initial).
        if plain[at] == 0 {
            at += zero_run(&plain[at..]);
            continue;
        }
        let Some(ty) = varint(plain, &mut at) else { break };
        match ty {
            // PADDING not in its one-byte form (RFC 9000 lets a receiver
            // take it), PING.
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges (, ECN).
                let mut ok = (0..2).all(|_| varint(plain, &mut at).is_some());
                let count = varint(plain, &mut at).unwrap_or(0);
                ok &= varint(plain, &mut at).is_some();
                for _ in 0..count.min(256) {
                    ok &= varint(plain, &mut at).is_some() && varint(plain, &mut at).is_some();
                }
                if ty == 0x03 {
                    ok &= (0..3).all(|_| varint(plain, &mut at).is_some());
                }
                if !ok {
                    break;
                }
            }
            0x06 => {
                let (Some(offset), Some(len)) = (varint(plain, &mut at), varint(plain, &mut at))
                else {
                    break;
                };
                let Some(end) = at.checked_add(len as usize).filter(|&end| end <= plain.len())
                else {
                    break;
                };
                frame(offset, at..end);
                at = end;
            }
            0x1c => break, // CONNECTION_CLOSE ends what we read
            _ => break,
        }
    }
}

/// Contiguous CRYPTO bytes from offset 0, from pieces in any order (the
/// first that covers a byte gives it): the one piece itself when it holds
/// all there is.
pub fn assemble<'a>(pieces: impl Iterator<Item = (u64, &'a [u8])> + Clone) -> Cow<'a, [u8]> {
    let covering =
        |next: u64| pieces.clone().find(|&(off, d)| off <= next && next < off + d.len() as u64);
    let Some((0, whole)) = covering(0) else {
        return Cow::Borrowed(&[]);
    };
    if whole.len() >= MAX_CRYPTO || covering(whole.len() as u64).is_none() {
        return Cow::Borrowed(whole);
    }
    let mut out: Vec<u8> = whole.to_vec();
    loop {
        let next = out.len() as u64;
        let Some((off, data)) = covering(next) else {
            return Cow::Owned(out);
        };
        out.extend_from_slice(&data[(next - off) as usize..]);
        if out.len() >= MAX_CRYPTO {
            return Cow::Owned(out);
        }
    }
}

/// [`assemble`] of pieces kept.
pub fn assemble_kept(pieces: &[CryptoPiece]) -> Cow<'_, [u8]> {
    assemble(pieces.iter().map(|(off, d)| (*off, &d[..])))
}

/// The SNI of a ClientHello carried in a CRYPTO stream (handshake
/// messages, no TLS record layer): `Err(true)` when more bytes are needed.
pub fn crypto_sni(stream: &[u8]) -> Result<Option<Arc<str>>, bool> {
    let Some(h) = stream.get(..4) else { return Err(true) };
    if h[0] != 1 {
        return Ok(None);
    }
    let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    match stream.get(4..4 + len) {
        Some(body) => Ok(super::tls::sni_of(body)),
        None if len > MAX_CRYPTO => Ok(None),
        None => Err(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the bytes, the run is the zeros before the first other
        /// byte.
        #[test]
        fn a_zero_run_ends_at_the_first_other_byte(
            zeros in 0usize..70,
            rest in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut b = vec![0u8; zeros];
            b.extend(&rest);
            let want = b.iter().position(|&x| x != 0).unwrap_or(b.len());
            prop_assert_eq!(zero_run(&b), want);
        }
    }

    /// PADDING in one-byte runs and in a longer varint form, PING, then
    /// CRYPTO: the CRYPTO frame is still found.
    #[test]
    fn crypto_frames_get_past_padding_in_any_form() {
        let plain = [0, 0, 0, 0x40, 0x00, 0x01, 0x06, 0x00, 0x03, b'a', b'b', b'c', 0, 0];
        let mut frames = Vec::new();
        crypto_frames(&plain, |offset, at| frames.push((offset, at)));
        assert_eq!(frames, vec![(0, 9..12)]);
    }

    /// RFC 9001 Appendix A.2: the client Initial for example.com.
    const RFC9001_A2: &[u8] = include_bytes!("testdata/rfc9001-a2-client-initial.bin");

    #[test]
    fn rfc9001_appendix_a_keys() {
        let k = client_keys(V1, &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]).unwrap();
        assert_eq!(
            k.key,
            [
                0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1,
                0xa2, 0x2d
            ]
        );
        assert_eq!(k.iv, [0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c]);
        assert_eq!(
            k.hp,
            [
                0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10, 0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad,
                0xed, 0xd2
            ]
        );
    }

    #[test]
    fn rfc9369_appendix_a_v2_keys() {
        let k = client_keys(V2, &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]).unwrap();
        assert_eq!(
            k.key,
            [
                0x8b, 0x1a, 0x0b, 0xc1, 0x21, 0x28, 0x42, 0x90, 0xa2, 0x9e, 0x09, 0x71, 0xb5, 0xcd,
                0x04, 0x5d
            ]
        );
        assert_eq!(k.iv, [0x91, 0xf7, 0x3e, 0x23, 0x51, 0xd8, 0xfa, 0x91, 0x66, 0x0e, 0x90, 0x9f]);
        assert_eq!(
            k.hp,
            [
                0x45, 0xb9, 0x5e, 0x15, 0x23, 0x5d, 0x6f, 0x45, 0xa6, 0xb1, 0x9c, 0xbc, 0xb0, 0x29,
                0x4b, 0xa9
            ]
        );
    }

    #[test]
    fn rfc9001_appendix_a2_client_initial_names_example_com() {
        assert!(looks_like_quic(RFC9001_A2));
        let pieces = initial_crypto(RFC9001_A2);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].0, 0);
        assert_eq!(crypto_sni(&assemble_kept(&pieces)), Ok(Some("example.com".into())));
    }

    #[test]
    fn kept_openers_open_as_new_ones_do() {
        let mut opened = OpenedInitials::default();
        opened.open(RFC9001_A2);
        let first = opened.to_pieces();
        assert_eq!(first.len(), 1);
        // The same connection again: its kept opener.
        opened.open(RFC9001_A2);
        assert_eq!(opened.to_pieces(), first);
        assert_eq!(opened.openers.len(), 1);
        // More connections than are kept, then the first again: opened
        // anew (another DCID's Initial fails its AEAD tag, so is opened to
        // nothing, but its opener is kept).
        for n in 0..OPENERS_KEPT as u8 {
            let mut other = RFC9001_A2.to_vec();
            other[6] ^= n + 1;
            opened.open(&other);
            assert!(opened.to_pieces().is_empty());
        }
        assert_eq!(opened.openers.len(), OPENERS_KEPT);
        assert!(opened.openers.iter().all(|o| o.dcid != RFC9001_A2[6..14]));
        opened.open(RFC9001_A2);
        assert_eq!(opened.to_pieces(), first);
    }

    #[test]
    fn damaged_packets_give_nothing() {
        let mut bad = RFC9001_A2.to_vec();
        bad[500] ^= 1;
        assert!(initial_crypto(&bad).is_empty(), "the AEAD tag fails");
        assert!(initial_crypto(&RFC9001_A2[..100]).is_empty());
        assert_eq!(crypto_sni(&[1, 0]), Err(true));
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(mut d in proptest::collection::vec(any::<u8>(), 0..1300)) {
            if d.len() > 8 {
                d[0] |= 0xc0;
                d[1..5].copy_from_slice(&V1.to_be_bytes());
            }
            let pieces = initial_crypto(&d);
            let _ = crypto_sni(&assemble_kept(&pieces));
            crypto_frames(&d, |_, at| assert!(at.end <= d.len()));
        }
    }
}
