//! The durable spool: batches ClickHouse did not take, kept on disk until
//! `xborder clickhouse flush` delivers them.
//!
//! Contract:
//! - A batch is one segment file, `NNNNNNNNNNNNNNNNNNNN-TABLE.jsonl` (a
//!   sequence number, then the table), written whole to a temporary file,
//!   fsync'd, renamed into place and the directory fsync'd: a crash leaves
//!   a segment whole or absent, never half. Segments are never changed.
//! - Order: by sequence number, which is the time of spooling in
//!   nanoseconds (unique within a process by increment), so a flush
//!   delivers in the order the records were spooled.
//! - Bound: a batch that would take the spool past `max_bytes` is not
//!   spooled: its records are dropped and counted (the older records
//!   already spooled are not worth less than the new ones).

use std::io::Write;
use std::path::{Path, PathBuf};

/// A spool directory.
#[derive(Clone, Debug)]
pub struct Spool {
    pub dir: PathBuf,
    pub max_bytes: u64,
    last: u128,
    /// Bytes in the spool, once counted (then kept up to date by `put`).
    used: Option<u64>,
}

/// One spooled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub table: String,
    pub bytes: u64,
}

impl Spool {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes, last: 0, used: None }
    }

    /// Spools `body` (JSON lines) for `table`; `Ok(false)` when the bound
    /// leaves no room.
    pub fn put(&mut self, table: &str, body: &[u8]) -> std::io::Result<bool> {
        std::fs::create_dir_all(&self.dir)?;
        let used = match self.used {
            Some(u) => u,
            None => self.segments()?.iter().map(|s| s.bytes).sum(),
        };
        if used + body.len() as u64 > self.max_bytes {
            self.used = Some(used);
            return Ok(false);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.last = now.max(self.last + 1);
        let path = self.dir.join(format!("{:020}-{table}.jsonl", self.last));
        let mut tmp = tempfile::Builder::new().prefix(".spool.").tempfile_in(&self.dir)?;
        tmp.write_all(body)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.used = Some(used + body.len() as u64);
        Ok(true)
    }

    /// Forgets the bytes counted (segments were removed): the next `put`
    /// counts them again.
    pub fn recount(&mut self) {
        self.used = None;
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> std::io::Result<Vec<Segment>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut segments = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(table) = segment_table(&name) else { continue };
            let bytes = entry.metadata()?.len();
            segments.push(Segment { path: entry.path(), table: table.to_owned(), bytes });
        }
        segments.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(segments)
    }
}

/// The table of a segment's file name, if it is one.
fn segment_table(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".jsonl")?;
    let (seq, table) = stem.split_once('-')?;
    (seq.len() == 20 && seq.bytes().all(|b| b.is_ascii_digit()) && !table.is_empty())
        .then_some(table)
}

/// Records in a spooled body (one per line).
pub fn records(body: &[u8]) -> u64 {
    body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64
}

/// Where the spool goes by default: `spool/` in the data directory.
pub fn default_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("spool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_their_order_and_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path().join("s"), 100);
        assert!(spool.segments().unwrap().is_empty());
        assert!(spool.put("flows", b"{\"a\":1}\n{\"a\":2}\n").unwrap());
        assert!(spool.put("findings", b"{\"b\":1}\n").unwrap());
        assert!(!spool.put("flows", &[b'x'; 90]).unwrap(), "past the bound");
        std::fs::write(dir.path().join("s/notes.txt"), "not a segment").unwrap();
        let s = spool.segments().unwrap();
        assert_eq!(s.iter().map(|s| s.table.as_str()).collect::<Vec<_>>(), ["flows", "findings"]);
        assert_eq!(records(&std::fs::read(&s[0].path).unwrap()), 2);
    }
}
