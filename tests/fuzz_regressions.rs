//! Replays what the fuzzers found (`tests/fuzz-regressions/TARGET/*`) and
//! the fixtures through every fuzz target (`xborder::fuzz`): none may
//! panic. The fuzzing itself (`scripts/fuzz`) needs a nightly toolchain
//! and hours; this runs in the ordinary test suite.

use std::path::Path;

#[test]
fn inputs_the_fuzzers_found_no_longer_break_their_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for (name, target) in xborder::fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let started = std::time::Instant::now();
            target(&std::fs::read(&path).unwrap());
            // A guard against hangs (libFuzzer's -timeout found some), not
            // a measure of speed: a few kilobytes take microseconds.
            let took = started.elapsed();
            assert!(took < std::time::Duration::from_secs(5), "{}: {took:?}", path.display());
            replayed += 1;
        }
    }
    // Every directory there names a target.
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().into_string().unwrap();
            assert!(xborder::fuzz::TARGETS.iter().any(|(t, _)| *t == name), "no target {name}");
        }
    }
    println!("{replayed} inputs replayed");
}

#[test]
fn every_target_takes_the_fixtures_and_their_damaged_prefixes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let files = ["quickstart.pcap", "names.pcap", "formats/multi.pcapng.gz", "policy/overlay.toml"];
    for file in files {
        let bytes = std::fs::read(root.join(file)).unwrap();
        for (_, target) in xborder::fuzz::TARGETS {
            target(&bytes);
            for cut in [1, 7, 24, 100, bytes.len() / 2] {
                target(&bytes[..cut.min(bytes.len())]);
            }
        }
    }
}
