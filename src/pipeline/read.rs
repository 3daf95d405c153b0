//! Saved captures, in order, through the per-packet path into parts of
//! finished flows with their names.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread;

use super::packets::{decode_frame, Counts, Frame};
use super::shard::{shard_of, LiveChange, Shard, ShardLast, ShardPart};
use super::PipelineError;
use crate::capture::{self, CaptureError, LinkType, Opened};
use crate::decode::{self, Decapsulation, Decoded, FrameRef, IpPacket};
use crate::flow::{FlowRecord, FlowTimeouts, LocalNetworks, SweepClock};
use crate::names::{DnsResponse, FlowNames};
use crate::report::{AuditReport, InputSummary};
use crate::time::Timestamp;

/// What an audit run needs.
#[derive(Clone, Debug, Default)]
pub struct AuditConfig {
    /// Files, directories and `-` (standard input), in the order given.
    pub paths: Vec<PathBuf>,
    pub timeouts: FlowTimeouts,
    pub local: LocalNetworks,
    /// Which tunnels are decoded, on which ports (`--tunnels`, `[tunnels]`).
    pub tunnels: Decapsulation,
    /// Skip the names stage (DNS, SNI, HTTP Host).
    pub no_names: bool,
    /// Most flows alive at once; beyond it the idlest ends early
    /// (`Evicted`, counted in [`AuditReport::evicted_flows`]). `None`: no
    /// bound.
    pub max_flows: Option<usize>,
    /// Counters a progress display reads while the run goes on.
    pub progress: Option<Arc<AuditProgress>>,
    /// Shards of the packets, each on its own thread when more than one
    /// (0 counts as 1).
    pub shards: usize,
}

/// How far an audit is, for a progress display on another thread. Updated
/// every few thousand packets; never read by the audit itself.
#[derive(Debug, Default)]
pub struct AuditProgress {
    /// Sizes of the input files (0 for standard input).
    pub total_bytes: AtomicU64,
    /// Bytes read from the inputs, before decompression.
    pub read_bytes: Arc<AtomicU64>,
    pub packets: AtomicU64,
    /// Flows finished so far.
    pub flows: AtomicU64,
}

/// How many packets make a period of the run, after which the shards hand
/// their parts on. Short enough that a flood's period (every packet a
/// flow) is 16,384 flows waiting to be sorted, not 65,536 (measured on a
/// 1M-packet flood at `--max-flows 100000`: 175 MiB against 236 MiB).
pub const HANDOVER_PACKETS: u64 = 1 << 14;

/// The most flows in a part: a sweep or an eviction that ends more at once
/// (a flood, where every packet is a flow) makes several parts.
pub const PART_FLOWS: usize = 8192;

/// Packets (and marks) a shard is sent at once, at most.
const BATCH_ITEMS: usize = 512;

/// Bytes of packets a shard is sent at once, about (a batch is sent once
/// it holds more; a frame of 16 MiB is a batch of its own). A spare batch
/// that grew past four times this is not kept.
const BATCH_BYTES: usize = 1 << 20;

/// Batches in flight to each shard thread.
const BATCHES_IN_FLIGHT: usize = 8;

/// What the reader tells the thread that finishes the run, in order.
pub(super) enum Handed {
    /// An input, in the order of the report's inputs (before any flow of
    /// it).
    Input(PathBuf),
    /// A period is over: every shard hands its part on
    /// ([`ShardOut::Flows`] then [`ShardOut::PartEnd`]).
    Part,
    /// The inputs are read: every shard hands on its last part and then
    /// its flows still alive.
    End,
}

/// What a shard hands on, in order: at each part its flows that ended,
/// in chunks of at most [`PART_FLOWS`], then the rest of the part; at the
/// end [`ShardOut::Last`], then its flows still alive in first-packet
/// order, in chunks; its channel closes after them.
pub(super) enum ShardOut {
    Flows(Vec<(FlowRecord, Option<FlowNames>)>),
    PartEnd { responses: Vec<DnsResponse>, changes: Vec<LiveChange> },
    Last(Box<ShardLast>),
}

/// A shard's part to its output; `false` when nothing takes it.
fn send_part(part: ShardPart, out: &SyncSender<ShardOut>) -> bool {
    let ShardPart { mut flows, responses, changes } = part;
    while flows.len() > PART_FLOWS {
        let rest = flows.split_off(PART_FLOWS);
        if out.send(ShardOut::Flows(std::mem::replace(&mut flows, rest))).is_err() {
            return false;
        }
    }
    (flows.is_empty() || out.send(ShardOut::Flows(flows)).is_ok())
        && out.send(ShardOut::PartEnd { responses, changes }).is_ok()
}

/// Reads every input, in order: the reader decodes each frame, counts it,
/// and hands its IP packet to the shard of its address pair
/// ([`shard_of`]); one shard, one per `shard_outs`, runs on this thread,
/// more each on their own. The shards keep the flow tables across
/// inputs: a flow that spans rotated capture files stays one flow. Every
/// [`HANDOVER_PACKETS`] packets the reader says so ([`Handed::Part`]),
/// then each shard hands its part to its `shard_outs` (in that order: the
/// other thread takes a part as it comes, and one may not fit in the
/// channel); at the end [`Handed::End`], then each shard's last part and
/// its flows still alive. The report returned holds the inputs, the counts and
/// the decoder's anomalies. `hand` returns `false` when nothing takes the
/// parts any more (the other thread stopped): reading stops.
///
/// Errors never stop the run: a damaged file keeps the packets before the
/// damage and its error is recorded in the report's inputs.
pub(super) fn read_inputs(
    config: &AuditConfig,
    shard_outs: Vec<SyncSender<ShardOut>>,
    hand: &mut dyn FnMut(Handed) -> bool,
) -> Result<AuditReport, PipelineError> {
    let mut report = AuditReport::default();
    let expanded = capture::expand_inputs(&config.paths);
    if let Some(p) = &config.progress {
        let sizes = expanded.inputs.iter().filter_map(|i| std::fs::metadata(&i.path).ok());
        p.total_bytes.store(sizes.map(|m| m.len()).sum(), Ordering::Relaxed);
    }
    let inputs = expanded.inputs;
    report.skipped.extend(expanded.skipped.into_iter().map(|s| (s.path, s.reason)));
    for err in expanded.errors {
        if !hand(Handed::Input(err.path().to_owned())) {
            return Ok(report);
        }
        report.inputs.push(InputSummary {
            path: err.path().to_owned(),
            format: None,
            packets: 0,
            error: Some(err.to_string()),
        });
    }
    thread::scope(|scope| {
        let lanes = Lanes::start(config, shard_outs, scope).map_err(PipelineError::Spawn)?;
        let mut reader = Reader {
            lanes,
            clock: SweepClock::default(),
            gone: false,
            hand,
            progress: config.progress.as_deref(),
        };
        for input in &inputs {
            if reader.gone {
                break;
            }
            let index = report.inputs.len() as u32;
            let mut summary =
                InputSummary { path: input.path.clone(), format: None, packets: 0, error: None };
            let counter = config.progress.as_ref().map(|p| p.read_bytes.clone());
            match capture::open_capture_counting(input, counter) {
                Ok(Opened::Skipped(skipped)) => {
                    report.skipped.push((skipped.path, skipped.reason));
                    continue;
                }
                Ok(Opened::Reader(mut capture)) => {
                    reader.gone |= !(reader.hand)(Handed::Input(input.path.clone()));
                    summary.format = Some(capture.format());
                    if let Err(err) = reader.read_capture(
                        &mut capture,
                        index,
                        &config.tunnels,
                        &mut report,
                        &mut summary,
                    ) {
                        summary.error = Some(err.to_string());
                    }
                }
                Err(err) => {
                    reader.gone |= !(reader.hand)(Handed::Input(input.path.clone()));
                    summary.error = Some(err.to_string());
                }
            }
            report.inputs.push(summary);
        }
        let end = !reader.gone && (reader.hand)(Handed::End);
        // A shard that panicked lost flows: the run is not whole.
        if !reader.lanes.close(end.then(|| reader.clock.latest())) {
            return Err(PipelineError::ShardThread);
        }
        Ok(())
    })?;
    Ok(report)
}

/// Where the reader's packets go: one shard on the reader's thread, or
/// several, each on its own, fed in batches.
enum Lanes<'scope> {
    Inline {
        shard: Box<Shard>,
        out: SyncSender<ShardOut>,
    },
    Threads {
        batches: Vec<Batch>,
        to: Vec<SyncSender<Batch>>,
        spare: Receiver<Batch>,
        threads: Vec<thread::ScopedJoinHandle<'scope, ()>>,
    },
}

/// Packets copied for a shard thread, with the reader's marks among them.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
}

enum Item {
    Packet {
        packet: u64,
        at: FrameRef,
        ts: Timestamp,
        link_type: LinkType,
        wire_len: u32,
        len: usize,
    },
    Sweep {
        packet: u64,
        ts: Timestamp,
    },
    Part,
    End {
        latest: Timestamp,
    },
}

impl<'scope> Lanes<'scope> {
    /// The shards of `config`'s audit, one per output (at least one).
    fn start<'env>(
        config: &'env AuditConfig,
        mut outs: Vec<SyncSender<ShardOut>>,
        scope: &'scope thread::Scope<'scope, 'env>,
    ) -> io::Result<Self> {
        let n = outs.len();
        if n <= 1 {
            let out = outs.pop().ok_or_else(|| io::Error::other("no shard"))?;
            return Ok(Lanes::Inline { shard: Box::new(Shard::new(config)), out });
        }
        let (give_back, spare) = mpsc::channel();
        let (mut to, mut threads) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, out) in outs.into_iter().enumerate() {
            let (send, batches) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
            let shard = Shard::new(config);
            let give_back = give_back.clone();
            let decap = &config.tunnels;
            let thread = thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn_scoped(scope, move || run_shard(shard, decap, batches, give_back, out))?;
            to.push(send);
            threads.push(thread);
        }
        let batches = (0..n).map(|_| Batch::default()).collect();
        Ok(Lanes::Threads { batches, to, spare, threads })
    }

    /// Returns `false` when the shard is gone.
    fn packet(
        &mut self,
        packet: u64,
        ip: IpPacket<'_>,
        frame: &Frame<'_>,
        decap: &Decapsulation,
    ) -> bool {
        match self {
            Lanes::Inline { shard, .. } => {
                shard.observe(packet, ip, decap, frame.ts, frame.at);
                true
            }
            Lanes::Threads { batches, to, spare, .. } => {
                let s = shard_of(&ip, batches.len());
                let batch = &mut batches[s];
                batch.items.push(Item::Packet {
                    packet,
                    at: frame.at,
                    ts: frame.ts,
                    link_type: frame.link_type,
                    wire_len: frame.wire_len,
                    len: frame.data.len(),
                });
                batch.bytes.extend_from_slice(frame.data);
                if batch.items.len() < BATCH_ITEMS && batch.bytes.len() < BATCH_BYTES {
                    return true;
                }
                let full = std::mem::replace(batch, spare.try_recv().unwrap_or_default());
                to[s].send(full).is_ok()
            }
        }
    }

    /// A mark for every shard; `flush`: sent now.
    fn mark(&mut self, item: impl Fn() -> Item, flush: bool) -> bool {
        let Lanes::Threads { batches, to, spare, .. } = self else { return true };
        let mut ok = true;
        for (batch, to) in batches.iter_mut().zip(to.iter()) {
            batch.items.push(item());
            if flush || batch.items.len() >= BATCH_ITEMS {
                let full = std::mem::replace(batch, spare.try_recv().unwrap_or_default());
                ok &= to.send(full).is_ok();
            }
        }
        ok
    }

    fn sweep(&mut self, packet: u64, ts: Timestamp) -> bool {
        if let Lanes::Inline { shard, .. } = self {
            shard.sweep(packet, ts);
            return true;
        }
        self.mark(|| Item::Sweep { packet, ts }, false)
    }

    fn part(&mut self) -> bool {
        if let Lanes::Inline { shard, out } = self {
            return send_part(shard.part(), out);
        }
        self.mark(|| Item::Part, true)
    }

    /// Every shard ends at the run's `latest` packet time and hands on the
    /// rest (`None`: nothing takes it any more), and its thread is joined.
    /// Returns `false` when a shard thread panicked.
    fn close(mut self, latest: Option<Timestamp>) -> bool {
        if let Some(latest) = latest {
            if let Lanes::Inline { shard, out } = self {
                finish_shard(*shard, latest, &out);
                return true;
            }
            self.mark(|| Item::End { latest }, true);
        }
        let mut joined = true;
        if let Lanes::Threads { to, threads, .. } = self {
            drop(to);
            for thread in threads {
                joined &= thread.join().is_ok();
            }
        }
        joined
    }
}

/// A shard thread: batches in, parts out, until the reader's end.
fn run_shard(
    mut shard: Shard,
    decap: &Decapsulation,
    batches: Receiver<Batch>,
    give_back: Sender<Batch>,
    out: SyncSender<ShardOut>,
) {
    for mut batch in batches {
        let Batch { items, bytes } = &mut batch;
        let mut offset = 0;
        for item in items.drain(..) {
            match item {
                Item::Packet { packet, at, ts, link_type, wire_len, len } => {
                    let data = &bytes[offset..offset + len];
                    offset += len;
                    // The reader decoded it as IP already, and counted
                    // what was wrong with it.
                    if let Decoded::Ip(ip, _) = decode::decode(link_type, data, wire_len) {
                        shard.observe(packet, ip, decap, ts, at);
                    }
                }
                Item::Sweep { packet, ts } => shard.sweep(packet, ts),
                Item::Part => {
                    if !send_part(shard.part(), &out) {
                        return;
                    }
                }
                Item::End { latest } => return finish_shard(shard, latest, &out),
            }
        }
        bytes.clear();
        if bytes.capacity() > 4 * BATCH_BYTES {
            *bytes = Vec::new();
        }
        let _ = give_back.send(batch);
    }
}

fn finish_shard(shard: Shard, latest: Timestamp, out: &SyncSender<ShardOut>) {
    shard.finish(
        latest,
        PART_FLOWS,
        |last| {
            let _ = out.send(ShardOut::Last(Box::new(last)));
        },
        |flows| {
            let _ = out.send(ShardOut::Flows(flows));
        },
    );
}

/// The reader's state across inputs.
struct Reader<'h, 'scope> {
    lanes: Lanes<'scope>,
    clock: SweepClock,
    /// Nothing takes the parts any more.
    gone: bool,
    hand: &'h mut dyn FnMut(Handed) -> bool,
    progress: Option<&'h AuditProgress>,
}

impl Reader<'_, '_> {
    /// The per-packet loop for one capture.
    fn read_capture(
        &mut self,
        capture: &mut capture::CaptureReader,
        file: u32,
        tunnels: &Decapsulation,
        report: &mut AuditReport,
        summary: &mut InputSummary,
    ) -> Result<(), CaptureError> {
        while let Some(packet) = capture.next_packet()? {
            summary.packets += 1;
            let number = report.totals.packets;
            if (number + 1) % HANDOVER_PACKETS == 0 {
                // The mark first: the other thread then takes the shards'
                // parts as they come (a part may not fit in the channel).
                self.gone |= !(self.hand)(Handed::Part) || !self.lanes.part();
                if self.gone {
                    return Ok(());
                }
                if let Some(p) = self.progress {
                    p.packets.store(number, Ordering::Relaxed);
                }
            }
            let frame = Frame {
                link_type: packet.link_type,
                data: packet.data,
                wire_len: packet.wire_len,
                ts: packet.timestamp,
                at: FrameRef { file, frame: packet.frame },
            };
            let mut counts = Counts {
                totals: &mut report.totals,
                anomalies: &mut report.anomalies,
                unsupported: &mut report.unsupported_link_types,
            };
            let Some(ip) = decode_frame(&frame, &mut counts) else { continue };
            if self.clock.tick(frame.ts) {
                self.gone |= !self.lanes.sweep(number, frame.ts);
            }
            self.gone |= !self.lanes.packet(number, ip, &frame, tunnels);
            if self.gone {
                return Ok(());
            }
        }
        Ok(())
    }
}
