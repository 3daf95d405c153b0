//! Live evidence (`live --evidence-dir DIR`): the packets of flagged flows
//! from their first packet on, in rotating pcapng files.
//!
//! Contract:
//! - Every packet of a flow is kept in a bounded buffer of its own until
//!   the flow's early alert decides ([`FLOW_BUFFER_PACKETS`] packets or
//!   [`FLOW_BUFFER_BYTES`] per flow, [`TOTAL_BUFFER_BYTES`] over all
//!   flows; what does not fit is dropped and counted). A flow with an
//!   alert (early or at its end) has its buffer written and every later
//!   packet written as it comes; a flow the early alert clears has its
//!   buffer dropped and is not kept (a finding it earns only at its end,
//!   such as a byte threshold, gets the packets still buffered: none).
//! - Files: `xborder-evidence-YYYYMMDDTHHMMSSZ-NNNN.pcapng`, a new one
//!   when the current one reaches an eighth of the bound (at least 1 MiB);
//!   when the files together (those of earlier runs in the directory
//!   included) pass `--evidence-max-bytes` (at least 2 MiB), the oldest
//!   are deleted and this run's packets in them counted as dropped. Each packet's comment
//!   names its flow's rules and remote endpoint; the alert names the file
//!   (`file.path`, ECS) that holds the flow's first packets.
//! - Written on the analysis thread through a buffer, flushed at every
//!   housekeeping tick (100 ms) and at the end: a disk slower than the
//!   traffic slows analysis, which the capture queue's drops then count.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::capture::{LinkType, PcapngWriter};
use crate::time::Timestamp;

/// Packets and bytes kept per undecided flow.
pub const FLOW_BUFFER_PACKETS: usize = 256;
pub const FLOW_BUFFER_BYTES: usize = 1024 * 1024;
/// Bytes kept over all undecided flows.
pub const TOTAL_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// The smallest file before rotation.
const MIN_FILE_BYTES: u64 = 1 << 20;

/// Where and how much.
#[derive(Clone, Debug)]
pub struct EvidenceSettings {
    pub dir: PathBuf,
    /// The files together stay under this.
    pub max_bytes: u64,
}

struct Held {
    ts: Timestamp,
    data: Vec<u8>,
    wire_len: u32,
    /// Written already, for another flow it is in (a tunnelled packet is
    /// buffered for its tunnel's flow and each flow inside).
    written: AtomicBool,
}

enum FlowEvidence {
    Buffering { packets: Vec<Arc<Held>>, bytes: usize },
    Flagged { comment: Arc<str>, file: Arc<Path> },
    Cleared,
}

struct OpenFile {
    path: Arc<Path>,
    writer: PcapngWriter<BufWriter<File>>,
    packets: u64,
}

/// The evidence of a live capture.
pub struct LiveEvidence {
    settings: EvidenceSettings,
    link_type: LinkType,
    flows: HashMap<u64, FlowEvidence>,
    buffered: usize,
    current: Option<OpenFile>,
    /// Closed files, oldest first, with their bytes and packets.
    closed: VecDeque<(Arc<Path>, u64, u64)>,
    sequence: u32,
    pub written: u64,
    pub dropped: u64,
}

impl LiveEvidence {
    /// Checks that the directory can take files (created if missing).
    pub fn open(settings: EvidenceSettings, link_type: LinkType) -> io::Result<Self> {
        if settings.max_bytes < 2 * MIN_FILE_BYTES {
            return Err(io::Error::other(format!(
                "--evidence-max-bytes {} is less than two files of {} bytes",
                settings.max_bytes, MIN_FILE_BYTES
            )));
        }
        std::fs::create_dir_all(&settings.dir)?;
        let probe = tempfile::tempfile_in(&settings.dir)?;
        drop(probe);
        // Files of earlier runs count against the bound too (oldest first:
        // their names sort by time).
        let mut earlier: Vec<(PathBuf, u64)> = std::fs::read_dir(&settings.dir)?
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("xborder-evidence-") && name.ends_with(".pcapng")
            })
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
            .collect();
        earlier.sort();
        let closed = earlier
            .into_iter()
            .map(|(path, bytes)| (Arc::from(path.as_path()), bytes, 0))
            .collect();
        Ok(Self {
            settings,
            link_type,
            flows: HashMap::new(),
            buffered: 0,
            current: None,
            closed,
            sequence: 0,
            written: 0,
            dropped: 0,
        })
    }

    /// A packet of the flows `ids`: one flow, or a tunnel's and those
    /// inside it, outermost first. It is written once: now, for the
    /// innermost of them that is flagged, or later, for the first of those
    /// still buffering it that gets flagged.
    pub fn packet(
        &mut self,
        ids: &[u64],
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
    ) -> io::Result<()> {
        let flagged = ids.iter().rev().find_map(|id| match self.flows.get(id) {
            Some(FlowEvidence::Flagged { comment, .. }) => Some(comment.clone()),
            _ => None,
        });
        if let Some(comment) = flagged {
            self.write(ts, data, wire_len, &comment)?;
            return Ok(());
        }
        let held =
            Arc::new(Held { ts, data: data.to_vec(), wire_len, written: AtomicBool::new(false) });
        for &id in ids {
            let state = self
                .flows
                .entry(id)
                .or_insert(FlowEvidence::Buffering { packets: Vec::new(), bytes: 0 });
            if let FlowEvidence::Buffering { packets, bytes } = state {
                if packets.len() >= FLOW_BUFFER_PACKETS
                    || *bytes + data.len() > FLOW_BUFFER_BYTES
                    || self.buffered + data.len() > TOTAL_BUFFER_BYTES
                {
                    self.dropped += 1;
                    continue;
                }
                *bytes += data.len();
                self.buffered += data.len();
                packets.push(held.clone());
            }
        }
        Ok(())
    }

    /// Flow `id` has an alert: its buffer is written, and its later
    /// packets will be. Returns the file holding its first packets.
    pub fn flagged(&mut self, id: u64, comment: &str) -> io::Result<Option<Arc<Path>>> {
        let state = self.flows.remove(&id);
        let packets = match state {
            Some(FlowEvidence::Flagged { comment, file }) => {
                self.flows.insert(id, FlowEvidence::Flagged { comment, file: file.clone() });
                return Ok(Some(file));
            }
            Some(FlowEvidence::Buffering { packets, bytes }) => {
                self.buffered -= bytes;
                packets
            }
            // Cleared early, or never seen: nothing kept to write.
            Some(FlowEvidence::Cleared) | None => Vec::new(),
        };
        let comment: Arc<str> = Arc::from(comment);
        // The file the first packet goes to (a rotation may come after it).
        let mut first = self.current_path()?;
        let mut n = 0;
        for p in &packets {
            if p.written.swap(true, Ordering::Relaxed) {
                continue;
            }
            let file = self.write(p.ts, &p.data, p.wire_len, &comment)?;
            if n == 0 {
                first = file;
            }
            n += 1;
        }
        self.flows.insert(id, FlowEvidence::Flagged { comment, file: first.clone() });
        Ok(Some(first))
    }

    /// Flow `id`'s early alert found nothing: it is not kept.
    pub fn cleared(&mut self, id: u64) {
        if let Some(FlowEvidence::Buffering { bytes, .. }) =
            self.flows.insert(id, FlowEvidence::Cleared)
        {
            self.buffered -= bytes;
        }
    }

    /// Flow `id` ended.
    pub fn ended(&mut self, id: u64) {
        if let Some(FlowEvidence::Buffering { bytes, .. }) = self.flows.remove(&id) {
            self.buffered -= bytes;
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(f) => f.writer.out.flush(),
            None => Ok(()),
        }
    }

    /// The file packets go to now (opened if none is).
    fn current_path(&mut self) -> io::Result<Arc<Path>> {
        if self.current.is_none() {
            self.sequence += 1;
            let stamp: String = String::from_utf8_lossy(&Timestamp::wall_clock().rfc3339()[..19])
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'T')
                .collect();
            let name = format!("xborder-evidence-{stamp}Z-{:04}.pcapng", self.sequence);
            let path: Arc<Path> = Arc::from(self.settings.dir.join(name));
            let writer = PcapngWriter::new(BufWriter::new(File::create(&path)?))?;
            self.current = Some(OpenFile { path, writer, packets: 0 });
        }
        Ok(self
            .current
            .as_ref()
            .map(|f| f.path.clone())
            .unwrap_or_else(|| Arc::from(Path::new(""))))
    }

    /// Writes one packet; rotates and keeps the bound. Returns the file it
    /// went to.
    fn write(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
        comment: &str,
    ) -> io::Result<Arc<Path>> {
        let path = self.current_path()?;
        let link_type = self.link_type;
        if let Some(f) = &mut self.current {
            let iface = f
                .writer
                .interface((0, 0, link_type.0), link_type, || "xborder live capture".into())?;
            f.writer.packet(iface, ts, data, wire_len, comment)?;
            f.packets += 1;
            self.written += 1;
            let limit = (self.settings.max_bytes / 8).max(MIN_FILE_BYTES);
            if f.writer.written >= limit {
                f.writer.out.flush()?;
                self.closed.push_back((f.path.clone(), f.writer.written, f.packets));
                self.current = None;
            }
        }
        let open = self.current.as_ref().map_or(0, |f| f.writer.written);
        let mut total: u64 = self.closed.iter().map(|(_, b, _)| b).sum::<u64>() + open;
        while total > self.settings.max_bytes {
            // (A file of an earlier run counts 0 packets here: this run's
            // statistics count this run's packets.)
            let Some((old, bytes, packets)) = self.closed.pop_front() else { break };
            let _ = std::fs::remove_file(&old);
            self.dropped += packets;
            total -= bytes;
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: i64) -> Timestamp {
        Timestamp::from_parts(1_700_000_000 + n, 0)
    }

    /// A tunnelled packet is in its tunnel's flow and the flow inside:
    /// written once whichever is flagged, and whenever.
    #[test]
    fn a_packet_of_two_flows_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let settings = EvidenceSettings { dir: dir.path().to_owned(), max_bytes: 3 << 20 };
        let mut ev = LiveEvidence::open(settings, LinkType(1)).unwrap();
        let packet = vec![0xabu8; 100];
        // Both buffering: kept once between them, written at the first flag.
        ev.packet(&[1, 2], ts(0), &packet, 100).unwrap();
        ev.flagged(2, "xborder: inner (high)").unwrap();
        assert_eq!(ev.written, 1);
        ev.flagged(1, "xborder: tunnel (high)").unwrap();
        assert_eq!(ev.written, 1, "not again for the tunnel");
        // Both flagged: once, now.
        ev.packet(&[1, 2], ts(1), &packet, 100).unwrap();
        assert_eq!(ev.written, 2);
        // The tunnel flagged, a new flow inside still buffering: written
        // now and not kept for the flow inside.
        ev.packet(&[1, 3], ts(2), &packet, 100).unwrap();
        assert_eq!(ev.written, 3);
        ev.flagged(3, "xborder: inner (high)").unwrap();
        assert_eq!(ev.written, 3);
    }

    /// Buffers wait for the decision; flagged flows are written, cleared
    /// ones dropped; files rotate at an eighth of the bound (at least
    /// 1 MiB) and the oldest go when the bound is passed, counted.
    #[test]
    fn buffers_decide_and_files_rotate_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let settings = EvidenceSettings { dir: dir.path().to_owned(), max_bytes: 3 << 20 };
        let mut ev = LiveEvidence::open(settings, LinkType(1)).unwrap();
        let packet = vec![0xabu8; 1000];
        ev.packet(&[1], ts(0), &packet, 1000).unwrap();
        ev.packet(&[2], ts(0), &packet, 1000).unwrap();
        assert_eq!((ev.written, ev.dropped), (0, 0));
        assert_eq!(ev.buffered, 2000);
        let file = ev.flagged(1, "xborder: r (high); remote 203.0.113.1:443").unwrap().unwrap();
        assert!(file.to_string_lossy().contains("xborder-evidence-"));
        ev.cleared(2);
        assert_eq!((ev.written, ev.buffered), (1, 0));
        ev.packet(&[2], ts(1), &packet, 1000).unwrap();
        assert_eq!(ev.written, 1, "a cleared flow is not kept");
        // A buffer holds at most FLOW_BUFFER_PACKETS.
        for _ in 0..FLOW_BUFFER_PACKETS + 5 {
            ev.packet(&[3], ts(1), &[1, 2, 3], 3).unwrap();
        }
        assert_eq!(ev.dropped, 5);
        ev.ended(3);
        assert_eq!(ev.buffered, 0);
        // 5,000 packets of ~1 KB to flow 1: about 5 MB through 1 MiB files
        // under a 3 MiB bound.
        for n in 0..5000 {
            ev.packet(&[1], ts(2 + n), &packet, 1000).unwrap();
        }
        ev.flush().unwrap();
        let files: Vec<u64> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .collect();
        let total: u64 = files.iter().sum();
        assert!(files.len() >= 3 && total <= 3 << 20, "{files:?}");
        assert_eq!(ev.written, 5001);
        // What was deleted is counted: the packets left in the files and
        // those dropped with the deleted ones are the packets written.
        let mut kept = 0;
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let spec = crate::capture::InputSpec { path: e.unwrap().path(), from_directory: false };
            let crate::capture::Opened::Reader(mut r) =
                crate::capture::open_capture(&spec).unwrap()
            else {
                panic!("not a capture");
            };
            while r.next_packet().unwrap().is_some() {
                kept += 1;
            }
        }
        assert_eq!(kept + (ev.dropped - 5), ev.written);
        assert!(ev.dropped > 5);
    }
}
