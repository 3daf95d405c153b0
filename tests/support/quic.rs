//! A QUIC v1 client Initial (RFC 9000 §17.2.2, protected as RFC 9001 §5
//! says) carrying a ClientHello: what a browser's first datagram to a QUIC
//! server looks like, for fixtures of the names stage.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// RFC 9001 §5.2.
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(secret: &Hkdf<Sha256>, label: &str, out: &mut [u8]) {
    let full = format!("tls13 {label}");
    let mut info = (out.len() as u16).to_be_bytes().to_vec();
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    secret.expand(&info, out).unwrap();
}

/// A 1200-byte client Initial datagram (packet number 0) to connection
/// `dcid` whose CRYPTO frame holds `client_hello`, a TLS handshake message
/// (without the TLS record header).
pub fn client_initial(dcid: &[u8], client_hello: &[u8]) -> Vec<u8> {
    client_initial_piece(dcid, 0, 0, client_hello)
}

/// A 1200-byte client Initial datagram, packet number `pn`, whose CRYPTO
/// frame holds the bytes at `offset` of the client's handshake stream
/// (a ClientHello too large for one Initial spans several).
pub fn client_initial_piece(dcid: &[u8], pn: u8, offset: u8, crypto: &[u8]) -> Vec<u8> {
    let (_, initial) = Hkdf::<Sha256>::extract(Some(&SALT_V1), dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, "client in", &mut secret);
    let client = Hkdf::<Sha256>::from_prk(&secret).unwrap();
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, "quic key", &mut key);
    expand_label(&client, "quic iv", &mut iv);
    expand_label(&client, "quic hp", &mut hp);

    // CRYPTO frame (2-byte length varint), then PADDING.
    let mut plain = vec![0x06, offset & 0x3f, 0x40 | (crypto.len() >> 8) as u8];
    plain.push(crypto.len() as u8);
    plain.extend_from_slice(crypto);
    let pn_len = 4;
    let mut header = vec![0xc0 | (pn_len as u8 - 1), 0, 0, 0, 1, dcid.len() as u8];
    header.extend_from_slice(dcid);
    header.extend_from_slice(&[0, 0]); // no source connection ID, no token
    let fixed = header.len() + 2 + pn_len + 16;
    plain.resize(1200 - fixed, 0);
    let length = pn_len + plain.len() + 16;
    header.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
    let pn_offset = header.len();
    header.extend_from_slice(&[0, 0, 0, pn]);
    let mut nonce = iv;
    nonce[11] ^= pn;

    let tag = Aes128Gcm::new(&key.into())
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &header, &mut plain)
        .unwrap();
    let mut packet = header;
    packet.extend_from_slice(&plain);
    packet.extend_from_slice(&tag);
    // Header protection: a mask from the 16 bytes after the first 4 of
    // the packet number.
    let mut mask = aes::Block::clone_from_slice(&packet[pn_offset + 4..pn_offset + 20]);
    Aes128::new(&hp.into()).encrypt_block(&mut mask);
    packet[0] ^= mask[0] & 0x0f;
    for i in 0..pn_len {
        packet[pn_offset + i] ^= mask[1 + i];
    }
    packet
}
