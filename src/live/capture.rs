//! The capture thread: libpcap → batches of packets on a bounded queue. It
//! never waits: when the queue is full the batch is dropped and counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LiveError;
use crate::capture::LinkType;
use crate::time::Timestamp;

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// An interface name, or `any`.
    pub interface: String,
    /// A BPF filter (tcpdump syntax).
    pub bpf: Option<String>,
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel buffer size in bytes (libpcap's default when `None`).
    pub buffer_size: Option<u32>,
    /// Deliver each packet at once instead of in blocks (libpcap's
    /// immediate mode): a wake-up per packet.
    pub immediate: bool,
}

/// An open capture, ready to hand to [`super::run`] (open it before
/// dropping privileges).
pub struct LiveCapture {
    pub(super) cap: pcap::Capture<pcap::Active>,
    pub(super) interface: String,
    pub link_type: LinkType,
}

/// How long libpcap waits for packets before returning, so that the thread
/// sees a stop request.
const READ_TIMEOUT_MS: i32 = 100;

impl LiveCapture {
    pub fn open(o: &CaptureOptions) -> Result<Self, LiveError> {
        let err = |e: pcap::Error| LiveError::Capture {
            interface: o.interface.clone(),
            message: e.to_string(),
        };
        let mut inactive = pcap::Capture::from_device(o.interface.as_str())
            .map_err(err)?
            .promisc(o.promisc)
            .snaplen(i32::try_from(o.snaplen).unwrap_or(i32::MAX))
            .immediate_mode(o.immediate)
            .timeout(READ_TIMEOUT_MS);
        if let Some(size) = o.buffer_size {
            inactive = inactive.buffer_size(i32::try_from(size).unwrap_or(i32::MAX));
        }
        let mut cap = inactive.open().map_err(err)?;
        if let Some(filter) = &o.bpf {
            cap.filter(filter, true).map_err(|e| LiveError::Filter {
                filter: filter.clone(),
                message: e.to_string(),
            })?;
        }
        let link_type = LinkType(u16::try_from(cap.get_datalink().0).unwrap_or(u16::MAX));
        Ok(Self { cap, interface: o.interface.clone(), link_type })
    }
}

/// Packets captured together, handed over at once.
pub(super) struct Batch {
    pub data: Vec<u8>,
    /// (timestamp, captured length, length on the wire), in order.
    pub packets: Vec<(Timestamp, u32, u32)>,
}

impl Batch {
    fn new() -> Self {
        Self {
            data: Vec::with_capacity(BATCH_PACKETS * 128),
            packets: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    /// Each packet's bytes with its timestamp and wire length.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Timestamp, u32)> {
        let mut at = 0usize;
        self.packets.iter().map(move |&(ts, caplen, len)| {
            let end = (at + caplen as usize).min(self.data.len());
            let bytes = &self.data[at..end];
            at = end;
            (bytes, ts, len)
        })
    }
}

/// At most this many packets, or this long, per batch.
const BATCH_PACKETS: usize = 256;
const BATCH_AGE: Duration = Duration::from_millis(20);
/// How long the capture thread sleeps when no packet is ready.
const IDLE_WAIT: Duration = Duration::from_millis(2);

/// Counters the capture thread shares.
#[derive(Default)]
pub(super) struct CaptureCounters {
    pub received: AtomicU64,
    pub kernel_dropped: AtomicU64,
    pub interface_dropped: AtomicU64,
    pub queue_dropped: AtomicU64,
}

/// libpcap's counters are 32-bit and wrap; a gateway runs for months.
#[derive(Default)]
struct Wrapping {
    last: u32,
    total: u64,
}

impl Wrapping {
    fn update(&mut self, now: u32) -> u64 {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.total
    }
}

/// Reads until `stop` is set or the capture fails; returns the failure.
pub(super) fn capture_loop(
    capture: LiveCapture,
    queue: SyncSender<Batch>,
    stop: Arc<AtomicBool>,
    counters: Arc<CaptureCounters>,
) -> Option<String> {
    let mut batch = Batch::new();
    let mut started = Instant::now();
    let mut stats_at = Instant::now();
    let (mut recv, mut drop, mut ifdrop) =
        (Wrapping::default(), Wrapping::default(), Wrapping::default());
    let send = |batch: &mut Batch| -> bool {
        let full = std::mem::replace(batch, Batch::new());
        match queue.try_send(full) {
            Ok(()) => true,
            Err(TrySendError::Full(b)) => {
                counters.queue_dropped.fetch_add(b.packets.len() as u64, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    };
    // Non-blocking reads: when nothing is ready the partial batch goes out
    // at once. A blocking read can sit in poll() past its timeout while no
    // packet comes (Linux, TPACKET_V3), which left the last packets of a
    // quiet capture, and their flows' early alerts, waiting for the next
    // packet.
    let mut cap = match capture.cap.setnonblock() {
        Ok(cap) => cap,
        Err(e) => return Some(format!("{}: {e}", capture.interface)),
    };
    let failure = loop {
        if stop.load(Ordering::Relaxed) {
            break None;
        }
        match cap.next_packet() {
            Ok(p) => {
                if batch.packets.is_empty() {
                    started = Instant::now();
                }
                let ts = timestamp(p.header);
                batch.data.extend_from_slice(p.data);
                batch.packets.push((ts, p.data.len() as u32, p.header.len));
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing ready: hand over what there is, then wait a
                // little (the kernel's buffer holds what comes meanwhile:
                // 2 ms is 200 kB at 100 MB/s).
                if !batch.packets.is_empty() && !send(&mut batch) {
                    break None;
                }
                std::thread::sleep(IDLE_WAIT);
            }
            // pcap_breakloop() on a stop request ends the read with an error.
            Err(_) if stop.load(Ordering::Relaxed) => break None,
            Err(e) => break Some(format!("{}: {e}", capture.interface)),
        }
        if !batch.packets.is_empty()
            && (batch.packets.len() >= BATCH_PACKETS || started.elapsed() >= BATCH_AGE)
            && !send(&mut batch)
        {
            break None;
        }
        if stats_at.elapsed() >= Duration::from_millis(500) {
            stats_at = Instant::now();
            if let Ok(s) = cap.stats() {
                counters.received.store(recv.update(s.received), Ordering::Relaxed);
                counters.kernel_dropped.store(drop.update(s.dropped), Ordering::Relaxed);
                counters.interface_dropped.store(ifdrop.update(s.if_dropped), Ordering::Relaxed);
            }
        }
    };
    if !batch.packets.is_empty() {
        send(&mut batch);
    }
    // The last counts, for the final report.
    if let Ok(s) = cap.stats() {
        counters.received.store(recv.update(s.received), Ordering::Relaxed);
        counters.kernel_dropped.store(drop.update(s.dropped), Ordering::Relaxed);
        counters.interface_dropped.store(ifdrop.update(s.if_dropped), Ordering::Relaxed);
    }
    failure
}

// time_t and suseconds_t are 32-bit on some targets.
#[allow(clippy::useless_conversion)]
fn timestamp(h: &pcap::PacketHeader) -> Timestamp {
    Timestamp::from_parts(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_survive_the_32_bit_wrap() {
        let mut w = Wrapping::default();
        assert_eq!(w.update(4_000_000_000), 4_000_000_000);
        assert_eq!(w.update(5), 4_294_967_301);
    }

    #[test]
    fn batches_give_back_their_packets() {
        let mut b = Batch::new();
        for (i, len) in [3u32, 0, 5].iter().enumerate() {
            b.data.extend(std::iter::repeat_n(i as u8, *len as usize));
            b.packets.push((Timestamp::from_parts(i as i64, 0), *len, *len + 10));
        }
        let got: Vec<(Vec<u8>, u32)> = b.iter().map(|(d, _, l)| (d.to_vec(), l)).collect();
        assert_eq!(got, [(vec![0; 3], 13), (vec![], 10), (vec![2; 5], 15)]);
    }
}
