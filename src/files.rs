//! Files read and written whole: rule packs, overlays, configuration and
//! databases read in (regular files only, each kind with a size limit, so
//! that `/dev/zero` or a FIFO named by mistake is an error, not a hang or
//! gigabytes of memory); reports and refreshed data written atomically.

use std::io::{self, Read};
use std::path::Path;

/// The most bytes read from one file of each kind.
pub const RULE_PACK_LIMIT: u64 = 64 << 20;
pub const OVERLAY_LIMIT: u64 = 64 << 20;
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// MaxMind-format databases (GeoIP2 City is ~70 MB, enterprise editions
/// a few hundred) and refreshed range files.
pub const DATABASE_LIMIT: u64 = 2 << 30;

/// Reads a regular file of at most `limit` bytes; `what` names its kind
/// (singular) in the error, which the caller prefixes with the path.
pub fn read_limited(path: &Path, what: &str, limit: u64) -> io::Result<Vec<u8>> {
    let meta = regular_file(path, what)?;
    let too_big = || {
        let size = if limit >= 1 << 20 {
            format!("{} MiB", limit >> 20)
        } else {
            format!("{limit} bytes")
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {size} limit for {what}s"),
        )
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read.
    std::fs::File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// The metadata of `path` if it is a regular file (symbolic links
/// followed); opening a FIFO to find out would block.
pub fn regular_file(path: &Path, what: &str) -> io::Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let kind = file_kind(&meta.file_type());
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({kind}): {what}s are read whole"),
        ));
    }
    Ok(meta)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_text_limited(path: &Path, what: &str, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, what, limit)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// What a file that is not a regular file is, in words.
pub fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a file"
    }
}

/// A report being written to `-o FILE`: into a temporary file beside it,
/// renamed over it by [`ReportFile::commit`], so that a run that fails
/// leaves the previous report whole (and a dropped, uncommitted one leaves
/// nothing). A path that exists and is not a regular file (`/dev/null`, a
/// FIFO, a terminal) is written directly: it cannot be replaced.
pub struct ReportFile {
    path: std::path::PathBuf,
    target: ReportTarget,
}

enum ReportTarget {
    Temporary(tempfile::NamedTempFile),
    Direct(std::fs::File),
}

impl ReportFile {
    pub fn create(path: &Path) -> io::Result<Self> {
        let target = match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                ReportTarget::Direct(std::fs::OpenOptions::new().write(true).open(path)?)
            }
            _ => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let name = path
                    .file_name()
                    .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
                ReportTarget::Temporary(
                    tempfile::Builder::new().prefix(&format!(".{name}.")).tempfile_in(dir)?,
                )
            }
        };
        Ok(Self { path: path.to_owned(), target })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the report is written.
    pub fn writer(&mut self) -> &mut std::fs::File {
        match &mut self.target {
            ReportTarget::Temporary(t) => t.as_file_mut(),
            ReportTarget::Direct(f) => f,
        }
    }

    /// The report is complete: it takes the path's place.
    pub fn commit(self) -> io::Result<()> {
        match self.target {
            ReportTarget::Temporary(t) => {
                // The temporary file is private (0600); the report gets the
                // mode of the one it replaces, else what the umask allows.
                use std::os::unix::fs::PermissionsExt;
                let mode = match std::fs::metadata(&self.path) {
                    Ok(m) => m.permissions().mode(),
                    Err(_) => 0o666 & !process_umask(),
                };
                t.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
                t.as_file().sync_all()?;
                t.persist(&self.path).map(|_| ()).map_err(|e| e.error)
            }
            ReportTarget::Direct(f) => f.sync_all().or(Ok(())),
        }
    }
}

/// The process's file mode creation mask (read by setting it and setting
/// it back: there is no other call).
fn process_umask() -> u32 {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over the target.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let err = read_limited(Path::new("/dev/zero"), "rule pack", RULE_PACK_LIMIT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a regular file (a character device): rule packs are read whole"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read_limited(dir.path(), "overlay", OVERLAY_LIMIT).unwrap_err();
        assert!(err.to_string().starts_with("not a regular file (a directory)"), "{err}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_limited(&fifo, "configuration file", CONFIG_LIMIT).unwrap_err();
        assert!(err.to_string().starts_with("not a regular file (a FIFO)"), "{err}");
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; 2048]).unwrap();
        let err = read_limited(&big, "configuration file", 1024).unwrap_err();
        assert_eq!(err.to_string(), "larger than the 1024 bytes limit for configuration files");
        assert_eq!(read_limited(&big, "x", 2048).unwrap().len(), 2048);
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        let err = read_text_limited(&big, "x", 10).unwrap_err();
        assert_eq!(err.to_string(), "not UTF-8 text (invalid byte at offset 0)");
    }

    #[test]
    fn a_report_replaces_the_old_one_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.txt");
        std::fs::write(&path, b"old").unwrap();
        let mut r = ReportFile::create(&path).unwrap();
        std::io::Write::write_all(r.writer(), b"half").unwrap();
        drop(r);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut r = ReportFile::create(&path).unwrap();
        std::io::Write::write_all(r.writer(), b"new").unwrap();
        r.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A device is written to, never replaced.
        let mut r = ReportFile::create(Path::new("/dev/null")).unwrap();
        std::io::Write::write_all(r.writer(), b"x").unwrap();
        r.commit().unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
