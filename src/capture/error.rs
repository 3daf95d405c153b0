use std::io;
use std::path::PathBuf;

/// Why a capture could not be read (further).
///
/// Every variant names the input; those about content name the byte offset
/// in the capture (for gzip files, in the decompressed data).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },

    #[error("{path}: read error at byte offset {offset}: {source}")]
    Read { path: PathBuf, offset: u64, source: io::Error },

    #[error("{path}: not a capture file (no pcap, pcapng or gzip magic number)")]
    NotACapture { path: PathBuf },

    #[error("{path}: empty file")]
    Empty { path: PathBuf },

    #[error("{path}: unsupported {format} version {major}.{minor} at byte offset {offset}")]
    UnsupportedVersion { path: PathBuf, format: &'static str, major: u16, minor: u16, offset: u64 },

    #[error(
        "{path}: file ends inside {what} at byte offset {offset} \
         ({needed} bytes needed, {available} present)"
    )]
    Truncated { path: PathBuf, what: &'static str, offset: u64, needed: u64, available: u64 },

    #[error("{path}: damaged {what} at byte offset {offset}: {reason}")]
    Damaged { path: PathBuf, what: &'static str, offset: u64, reason: String },
}

impl CaptureError {
    /// The input the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            CaptureError::Open { path, .. }
            | CaptureError::Read { path, .. }
            | CaptureError::NotACapture { path }
            | CaptureError::Empty { path }
            | CaptureError::UnsupportedVersion { path, .. }
            | CaptureError::Truncated { path, .. }
            | CaptureError::Damaged { path, .. } => path,
        }
    }
}
