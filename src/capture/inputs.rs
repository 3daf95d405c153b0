//! Turning what the user named (files, directories, `-`) into open readers.

use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

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

/// Expands directories (recursively, entries in name order) into the files
/// below them; files and `-` are kept as given, in the order given.
///
/// A directory that cannot be read is an error for that directory only.
pub fn expand_inputs(paths: &[PathBuf]) -> (Vec<InputSpec>, Vec<CaptureError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut inputs, &mut errors);
        } else {
            inputs.push(InputSpec { path: path.clone(), from_directory: false });
        }
    }
    (inputs, errors)
}

fn walk(dir: &Path, inputs: &mut Vec<InputSpec>, errors: &mut Vec<CaptureError>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(CaptureError::Open { path: dir.to_owned(), source });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, inputs, errors);
        } else {
            inputs.push(InputSpec { path, from_directory: true });
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
    let path = input.path.clone();
    let raw: Box<dyn Read + Send> = if input.is_stdin() {
        Box::new(io::stdin())
    } else {
        match File::open(&path) {
            Ok(f) => Box::new(f),
            Err(source) => return Err(CaptureError::Open { path, source }),
        }
    };
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

fn is_empty(path: &Path) -> bool {
    fs::metadata(path).map(|m| m.len() == 0).unwrap_or(false)
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
