//! Turning what the user named (files, directories, `-`) into open readers.

use std::collections::hash_map::{Entry, HashMap};
use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::pcap::{self, PcapReader};
use super::pcapng::{self, PcapngReader};
use super::{BlockReader, CaptureError, CaptureReader};

/// One capture to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// The file, or `-` for standard input.
    pub path: PathBuf,
    /// Found by walking a directory: a file that is not a capture is then
    /// skipped with a note instead of being an error.
    pub from_directory: bool,
}

impl InputSpec {
    /// Is this standard input?
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// A file passed over while walking a directory.
#[derive(Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What the paths the user named expand to.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Captures to read, in order.
    pub inputs: Vec<InputSpec>,
    /// Directories that could not be read (an error for each, alone).
    pub errors: Vec<CaptureError>,
    /// Paths passed over, with the reason: what a walk finds that is not a
    /// regular file (FIFOs, sockets, devices), a directory reached again
    /// through a symbolic link, a file already read under another name.
    pub skipped: Vec<Skipped>,
}

/// Expands directories (recursively, entries in name order) into the files
/// below them; files and `-` are kept as given, in the order given.
///
/// Each directory is walked once and each file read once (by device and
/// inode), so symbolic link loops end and a file named twice, or named and
/// inside a named directory, is read the first time only. A walk reads only
/// regular files: a FIFO found there would block the run. What is named on
/// the command line is read whatever it is (a FIFO or `/dev/fd/N` from a
/// shell's process substitution is a stream, like `-`).
pub fn expand_inputs(paths: &[PathBuf]) -> Expanded {
    let mut walk = Walk::default();
    for path in paths {
        if path.as_os_str() == "-" {
            walk.out.inputs.push(InputSpec { path: path.clone(), from_directory: false });
            continue;
        }
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => walk.directory(path, &m),
            Ok(m) => walk.file(path, &m, false),
            // Opening it says why, as for any file that cannot be read.
            Err(_) => walk.out.inputs.push(InputSpec { path: path.clone(), from_directory: false }),
        }
    }
    walk.out
}

#[derive(Default)]
struct Walk {
    out: Expanded,
    /// (device, inode) of each directory walked and file taken, with the
    /// path it was first seen under.
    seen: HashMap<(u64, u64), PathBuf>,
}

impl Walk {
    /// The path under which this file or directory was seen before, if it
    /// was; else it is marked seen now.
    fn seen_before(&mut self, path: &Path, m: &fs::Metadata) -> Option<PathBuf> {
        match self.seen.entry((m.dev(), m.ino())) {
            Entry::Vacant(v) => {
                v.insert(path.to_owned());
                None
            }
            Entry::Occupied(o) => Some(o.get().clone()),
        }
    }

    fn skip(&mut self, path: &Path, reason: String) {
        self.out.skipped.push(Skipped { path: path.to_owned(), reason });
    }

    fn file(&mut self, path: &Path, m: &fs::Metadata, from_directory: bool) {
        match self.seen_before(path, m) {
            None => self.out.inputs.push(InputSpec { path: path.to_owned(), from_directory }),
            Some(first) => {
                self.skip(path, format!("the same file as {}, read once", first.display()))
            }
        }
    }

    fn directory(&mut self, dir: &Path, m: &fs::Metadata) {
        if let Some(first) = self.seen_before(dir, m) {
            let reason = format!("the directory {} again (a symbolic link loop?)", first.display());
            return self.skip(dir, reason);
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(source) => {
                self.out.errors.push(CaptureError::Open { path: dir.to_owned(), source });
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            match fs::metadata(&path) {
                Ok(m) if m.is_dir() => self.directory(&path, &m),
                Ok(m) if m.is_file() => self.file(&path, &m, true),
                Ok(m) => {
                    let kind = crate::files::file_kind(&m.file_type());
                    self.skip(&path, format!("not a regular file ({kind})"));
                }
                // A dangling symbolic link, or no permission to look.
                Err(e) => self.skip(&path, e.to_string()),
            }
        }
    }
}

/// What opening an input gave.
pub enum Opened {
    Reader(CaptureReader),
    /// A file found in a directory that is not a capture.
    Skipped(Skipped),
}

/// Opens one input, recognising pcap, pcapng and gzip by magic number.
pub fn open_capture(input: &InputSpec) -> Result<Opened, CaptureError> {
    open_capture_counting(input, None)
}

/// [`open_capture`], adding the bytes read from the input (before any
/// decompression) to `read` as they are read, for a progress display.
pub fn open_capture_counting(
    input: &InputSpec,
    read: Option<Arc<AtomicU64>>,
) -> Result<Opened, CaptureError> {
    let path = input.path.clone();
    let raw: Box<dyn Read + Send> = if input.is_stdin() {
        Box::new(io::stdin())
    } else {
        match File::open(&path) {
            Ok(f) => Box::new(f),
            Err(source) => return Err(CaptureError::Open { path, source }),
        }
    };
    let raw = match read {
        Some(read) => Box::new(Counting { inner: raw, read }),
        None => raw,
    };
    open_stream(raw, input)
}

/// A reader that counts what it reads (capture readers read in large
/// blocks: one atomic add per block).
struct Counting {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// [`open_capture`] on a stream already open (`input` names it and says
/// whether a walk found it).
pub fn open_stream(raw: Box<dyn Read + Send>, input: &InputSpec) -> Result<Opened, CaptureError> {
    let path = input.path.clone();
    let (magic, raw) = peek_magic(raw).map_err(|source| read_error(&path, source))?;
    let (magic, stream): ([u8; 4], Box<dyn Read + Send>) = if magic[..2] == [0x1f, 0x8b] {
        let gz = Box::new(flate2::read::MultiGzDecoder::new(raw));
        peek_magic(gz).map_err(|source| read_error(&path, source))?
    } else {
        (magic, raw)
    };
    let src = BlockReader::new(stream);
    if pcapng::is_pcapng_magic(magic) {
        Ok(Opened::Reader(CaptureReader::Pcapng(PcapngReader::open(src, path)?)))
    } else if pcap::is_pcap_magic(magic) {
        Ok(Opened::Reader(CaptureReader::Pcap(PcapReader::open(src, path)?)))
    } else if input.from_directory {
        let reason = if magic == [0; 4] && is_empty(&path) {
            "empty file".to_owned()
        } else {
            "not a capture file (no pcap, pcapng or gzip magic number)".to_owned()
        };
        Ok(Opened::Skipped(Skipped { path, reason }))
    } else if magic == [0; 4] && is_empty(&path) {
        Err(CaptureError::Empty { path })
    } else {
        Err(CaptureError::NotACapture { path })
    }
}

/// A regular file of no bytes (a device such as /dev/zero reports size 0
/// too, and is not empty).
fn is_empty(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0)
}

fn read_error(path: &Path, source: io::Error) -> CaptureError {
    CaptureError::Read { path: path.to_owned(), offset: 0, source }
}

/// Reads up to four bytes and returns them with a reader that yields the
/// whole stream again, so that non-seekable inputs (stdin, gzip) work too.
fn peek_magic(mut r: Box<dyn Read + Send>) -> io::Result<([u8; 4], Box<dyn Read + Send>)> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = Cursor::new(magic[..got].to_vec());
    Ok((magic, Box::new(head.chain(r))))
}
