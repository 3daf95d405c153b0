//! The built-in address layers, merged once and cached in the data
//! directory instead of being committed and compiled into the binary.
//!
//! Contract:
//! - The cache file (`built-in-layers.xbl`) is the compiled form of
//!   [`AddressLayers::write`] followed by the CRC-32 of this build's name
//!   (version) and everything before it. It is used only when that seal
//!   holds (so another version's cache is not) and the three source
//!   digests its header records are those of the sources built into this
//!   binary (computed by `build.rs`): a cache of another build's data, a
//!   truncated or damaged one is never used, it is merged again and
//!   replaced.
//! - It is written (atomically: a temporary file, then a rename) by the
//!   first load that merges the built-in data; a data directory that
//!   cannot be written leaves every load merging (about 0.1 s), with the
//!   reason in [`LayersOrigin`] for `db info`, and is not an error: the
//!   answers are the same.
//! - A directory the user named (`--data-dir`, the configuration file,
//!   `$XBORDER_DATA_DIR`) is never created for the cache; the default one
//!   (`~/.local/share/xborder`) is, as `db update` would.
//! - The bytes of a cache read are kept for the life of the process (the
//!   segment tables are used in place) and read once: a later load (live
//!   mode's reload, or one naming another data directory) uses the same
//!   bytes, so memory does not grow; [`LayersOrigin::Cache`] names the
//!   file they were read from.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zerocopy::IntoBytes;

use super::layers::{AddressLayers, LayerSources, ALIGN};
use super::store::embedded;
use super::{ProviderCatalogue, ProviderRanges};
use crate::files::DATABASE_LIMIT;

/// The cache's name in the data directory.
pub const CACHE_FILE: &str = "built-in-layers.xbl";

/// Where the address layers of a load came from, for `db info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayersOrigin {
    /// Merged from the databases or ranges the user gave, at load.
    MergedAtLoad,
    /// The built-in data's cache, read from this file.
    Cache(PathBuf),
    /// The built-in data merged now and cached in this file.
    Cached(PathBuf),
    /// The built-in data merged now; it could not be cached, for this
    /// reason (every load merges it).
    NotCached(String),
}

/// The build a cache belongs to: another version may merge or lay out the
/// same sources differently, so its cache is not used.
const BUILD: &str = concat!("xborder ", env!("CARGO_PKG_VERSION"), " built-in-layers");

/// Bytes of the seal that ends a cache.
pub(super) const SEAL_LEN: usize = 4;

/// The seal that ends a cache: the CRC-32 of this build's name and the
/// body. It guards against damage and other builds' caches (whoever can
/// write the data directory can replace the data itself), so a checksum
/// does; SHA-256 took about 21 ms of every start over the 40 MB, CRC-32
/// (crc32fast, already built for flate2) about 4.
pub(super) fn sealed(body: &[u8]) -> [u8; SEAL_LEN] {
    let mut h = crc32fast::Hasher::new();
    h.update(BUILD.as_bytes());
    h.update(body);
    h.finalize().to_le_bytes()
}

/// Where the cache lives, and whether its directory may be created.
#[derive(Clone, Debug)]
pub struct CacheDir {
    pub dir: PathBuf,
    pub create: bool,
}

impl CacheDir {
    fn file(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }
}

/// The digests of the built-in sources, with the AS table's segment
/// counts.
pub fn built_in_sources(asn_segments: (u32, u32)) -> LayerSources {
    LayerSources {
        asn: embedded::ASN_SHA256,
        country: embedded::COUNTRY_SHA256,
        ranges: embedded::RANGES_SHA256,
        asn_segments,
    }
}

/// The cache this process read, once checked, and its bytes.
static READ: OnceLock<(PathBuf, &'static [u8])> = OnceLock::new();

/// The built-in layers and ranges from the cache, or why there are none
/// (no file, another build's, damaged): the caller merges and
/// [`write`]s.
pub fn read(
    cache: &CacheDir,
    catalogue: &ProviderCatalogue,
    two_cores: bool,
) -> Result<(AddressLayers, LayerSources, ProviderRanges, PathBuf), String> {
    let (path, bytes) = match READ.get() {
        Some(read) => read.clone(),
        None => {
            let path = cache.file();
            let bytes = read_checked(&path, two_cores)?;
            READ.get_or_init(|| (path, bytes)).clone()
        }
    };
    let (layers, sources, ranges) =
        AddressLayers::from_bytes(bytes, &path).map_err(|e| e.to_string())?;
    if built_in_sources(sources.asn_segments) != sources {
        return Err(format!("{}: compiled from other data than this build's", path.display()));
    }
    let ranges =
        ProviderRanges::from_compiled(ranges, &path, catalogue).map_err(|e| e.to_string())?;
    Ok((layers, sources, ranges, path))
}

/// The file's bytes without their digest, in memory aligned for the
/// segment tables and kept for the process; checked against the digest
/// and against this build's sources before they are kept. With
/// `two_cores`, each half is read and summed on its own core: most of
/// reading the 40 MB is faulting in fresh pages, which then goes twice as
/// fast (21 -> 12 ms here), and a small capture's audit waits for it.
pub(super) fn read_checked(path: &Path, two_cores: bool) -> Result<&'static [u8], String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    if !(SEAL_LEN as u64..=DATABASE_LIMIT).contains(&len) {
        return Err(format!("{}: {len} bytes is not a cache", path.display()));
    }
    let len = len as usize;
    let mut buffer = vec![0u128; len.div_ceil(ALIGN)];
    let seal = read_summed(&file, &mut buffer.as_mut_bytes()[..len], two_cores).map_err(fail)?;
    let bytes = &buffer.as_bytes()[..len];
    let (body, digest) = bytes.split_at(len - SEAL_LEN);
    if seal[..] != digest[..] {
        return Err(format!(
            "{}: damaged, or written by another xborder build (its digest does not match)",
            path.display()
        ));
    }
    // Another build's cache is never kept in memory.
    match LayerSources::of_header(body) {
        Some(s) if built_in_sources(s.asn_segments) == s => {
            Ok(&Vec::leak(buffer).as_bytes()[..len - SEAL_LEN])
        }
        Some(_) => Err(format!("{}: compiled from other data than this build's", path.display())),
        None => Err(format!("{}: not a compiled address-layers file", path.display())),
    }
}

/// Reads `file` into `bytes` (its whole length) and returns the seal of
/// all but its last [`SEAL_LEN`] bytes, as [`sealed`] makes it: the first
/// half on a thread of its own with `two_cores` (on this one if that
/// thread cannot start).
fn read_summed(file: &File, bytes: &mut [u8], two_cores: bool) -> std::io::Result<[u8; SEAL_LEN]> {
    let body_len = bytes.len() - SEAL_LEN;
    // A page boundary near the middle of the body.
    let mid = if two_cores { (body_len / 2) & !4095 } else { 0 };
    let read_sum = |part: &mut [u8], at: usize, summed: usize| {
        file.read_exact_at(part, at as u64)?;
        let mut sum = crc32fast::Hasher::new();
        sum.update(&part[..summed]);
        Ok::<_, std::io::Error>(sum)
    };
    let (first, second) = bytes.split_at_mut(mid);
    let (first_sum, second_sum) = std::thread::scope(|s| {
        let helper = if mid > 0 {
            std::thread::Builder::new().spawn_scoped(s, || read_sum(first, 0, mid)).ok()
        } else {
            None
        };
        let second_sum = read_sum(second, mid, body_len - mid);
        let stopped = || std::io::Error::other("the thread reading half of it stopped");
        let first_sum = helper.map(|t| t.join().unwrap_or_else(|_| Err(stopped())));
        (first_sum, second_sum)
    });
    let first_sum = match first_sum {
        Some(sum) => sum?,
        None => read_sum(first, 0, mid)?,
    };
    let mut seal = crc32fast::Hasher::new();
    seal.update(BUILD.as_bytes());
    seal.combine(&first_sum);
    seal.combine(&second_sum?);
    Ok(seal.finalize().to_le_bytes())
}

/// Writes the cache of the built-in layers just merged; returns its path.
pub fn write(
    cache: &CacheDir,
    layers: &AddressLayers,
    ranges: &ProviderRanges,
    sources: &LayerSources,
    catalogue: &ProviderCatalogue,
) -> Result<PathBuf, String> {
    let path = cache.file();
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if cache.create {
        std::fs::create_dir_all(&cache.dir).map_err(|e| format!("{}: {e}", cache.dir.display()))?;
    }
    // The temporary file first: a directory that cannot hold the cache
    // costs no serialising.
    let mut file = tempfile::Builder::new()
        .prefix(".built-in-layers.")
        .tempfile_in(&cache.dir)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let compiled_ranges =
        ranges.write_compiled(catalogue, Path::new(CACHE_FILE)).map_err(|e| e.to_string())?;
    let mut bytes = layers.write(sources, &compiled_ranges);
    let digest = sealed(&bytes);
    bytes.extend_from_slice(&digest);
    file.write_all(&bytes).and_then(|()| file.as_file().sync_all()).map_err(fail)?;
    file.persist(&path).map_err(|e| fail(e.error))?;
    Ok(path)
}
