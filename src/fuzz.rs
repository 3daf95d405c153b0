//! Entry points for coverage-guided fuzzing (`fuzz/`, cargo-fuzz) and for
//! the regression tests that replay what the fuzzers found
//! (`tests/fuzz_regressions.rs`): each takes arbitrary bytes, runs one
//! parser of untrusted input over them as the pipeline would, and must
//! neither panic nor hang. They return nothing: a fuzzer only needs them
//! to run.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::capture::{open_stream, InputSpec, LinkType, Opened};
use crate::decode::{decode, Decoded};
use crate::intel::{Overlay, ProviderCatalogue, VendorCatalogue};
use crate::names::{dns, http, quic, tls};
use crate::policy::{Catalogues, RulePack};

/// A target: it takes any bytes.
pub type Target = fn(&[u8]);

/// The targets, by name (the file names under `fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("capture", capture),
    ("decode", decode_frame),
    ("dns", dns_response),
    ("tls", tls_client_hello),
    ("quic", quic_initial),
    ("http", http_request),
    ("rules", rule_pack),
    ("overlay", overlay),
];

/// A capture file (pcap, pcapng, either gzip-compressed), every packet
/// read and decoded.
pub fn capture(data: &[u8]) {
    let input = InputSpec { path: PathBuf::from("fuzz.pcap"), from_directory: false };
    let Ok(Opened::Reader(mut reader)) = open_stream(Box::new(Cursor::new(data.to_vec())), &input)
    else {
        return;
    };
    // Bounded: a file of a few kilobytes holds at most a few thousand.
    for _ in 0..100_000 {
        match reader.next_packet() {
            Ok(Some(p)) => {
                let _ = decode(p.link_type, p.data, p.wire_len);
            }
            _ => break,
        }
    }
}

/// One frame: its link type in the first two bytes (big-endian).
/// Its tunnels removed as the flow stage does, into a flow table.
pub fn decode_frame(data: &[u8]) {
    use crate::decode::{AnomalyCounter, Decapsulation, FrameRef};
    use crate::flow::{FlowTable, FlowTimeouts, LocalNetworks};
    let Some((lt, frame)) = data.split_first_chunk::<2>() else { return };
    let wire_len = frame.len() as u32;
    if let Decoded::Ip(ip, _) = decode(LinkType(u16::from_be_bytes(*lt)), frame, wire_len) {
        let mut table = FlowTable::new(FlowTimeouts::default(), LocalNetworks::default());
        let mut anomalies = AnomalyCounter::default();
        let (ts, at) = (crate::time::Timestamp(0), FrameRef { file: 0, frame: 1 });
        let decap = Decapsulation::default();
        crate::pipeline::observe_packet(
            ip,
            &decap,
            &mut table,
            ts,
            at,
            &mut anomalies,
            &mut |_, _, p| {
                std::hint::black_box(p);
            },
        );
        std::hint::black_box(table.finish(&mut anomalies));
    }
}

pub fn dns_response(data: &[u8]) {
    if let Ok(r) = dns::parse_response(data) {
        let _ = r.names_by_address();
    }
}

pub fn tls_client_hello(data: &[u8]) {
    let _ = tls::client_hello_sni(data);
}

pub fn quic_initial(data: &[u8]) {
    let pieces = quic::initial_crypto(data);
    let _ = quic::crypto_sni(&quic::assemble_kept(&pieces));
}

pub fn http_request(data: &[u8]) {
    let _ = http::request_host(data);
}

/// A rule pack, checked against the shipped catalogues.
pub fn rule_pack(data: &[u8]) {
    use std::sync::OnceLock;
    static CATALOGUES: OnceLock<(ProviderCatalogue, VendorCatalogue)> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (providers, vendors) = CATALOGUES.get_or_init(|| {
        let sources = crate::intel::IntelSources::default();
        (sources.catalogue().unwrap_or_default(), sources.vendors().unwrap_or_default())
    });
    let catalogues = Catalogues { providers, vendors };
    let _ = RulePack::parse(text, Path::new("fuzz.toml"), catalogues);
}

/// An overlay file, parsed and built.
pub fn overlay(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = Overlay::parse(text, Path::new("fuzz.toml")) {
        let networks = parsed.networks;
        let file: std::sync::Arc<str> = std::sync::Arc::from("fuzz.toml");
        let _ = Overlay::build(networks.into_iter().map(|n| (n, file.clone())).collect(), |_| None);
    }
}
