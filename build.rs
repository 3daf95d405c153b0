//! Prepares the built-in intelligence data for `include_bytes!`:
//!
//! - inflates `geoip/asn.xbasn.gz` (committed compressed: 3.3 MB instead
//!   of 10 MB) into `$OUT_DIR/asn.xbasn`, which the binary embeds as is so
//!   that loading it needs no inflating;
//! - computes the SHA-256 of the three address sources (the AS table as
//!   inflated, `country.mmdb`, `provider-ranges.csv.gz`) into
//!   `$OUT_DIR/source_digests.rs`: the address layers merged from them at
//!   first use are cached in the data directory under these digests, and a
//!   cache of other sources is never used (`src/intel/store.rs`).
//!
//! Nothing else is derived here: the merge itself needs the library.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    if let Err(message) = run() {
        // Cargo shows this line and fails the build.
        eprintln!("build.rs: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let geoip = Path::new("geoip");
    for file in ["asn.xbasn.gz", "country.mmdb", "provider-ranges.csv.gz"] {
        println!("cargo:rerun-if-changed=geoip/{file}");
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));

    let compressed = read(&geoip.join("asn.xbasn.gz"))?;
    let mut asn = Vec::with_capacity(compressed.len() * 4);
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut asn)
        .map_err(|e| format!("geoip/asn.xbasn.gz: {e}"))?;
    write_if_changed(&out.join("asn.xbasn"), &asn)?;

    let country = read(&geoip.join("country.mmdb"))?;
    let ranges = read(&geoip.join("provider-ranges.csv.gz"))?;
    let mut digests =
        String::from("// Written by build.rs: SHA-256 of the built-in address sources.\n");
    for (name, bytes) in [("ASN", &asn), ("COUNTRY", &country), ("RANGES", &ranges)] {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        digests.push_str(&format!("pub const {name}_SHA256: [u8; 32] = {digest:?};\n"));
    }
    write_if_changed(&out.join("source_digests.rs"), digests.as_bytes())
}

/// Leaves an unchanged file alone, so that its consumers are not rebuilt.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
