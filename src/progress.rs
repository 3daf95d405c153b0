//! The progress line of a long audit, on standard error: bytes read of the
//! inputs' total, packets per second and flows so far. Only on a terminal,
//! never under CI or with `-q`, and only once the run has gone on for a
//! second (a short audit prints nothing). Wall-clock time here paces the
//! display only; the audit's own times are the packets'.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use xborder::pipeline::AuditProgress;

/// How long a run goes before the line appears.
const DELAY: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(200);

/// The display; dropping it clears the line (the report, or an error,
/// follows).
pub struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts the display if a person is watching standard error.
    pub fn start(progress: &Arc<AuditProgress>, quiet: bool) -> Option<Self> {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if quiet || ci || !std::io::stderr().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (p, done) = (progress.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || show(&p, &done))
            .ok()?;
        Some(Self { stop, thread: Some(thread) })
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn show(p: &AuditProgress, stop: &AtomicBool) {
    let start = Instant::now();
    while start.elapsed() < DELAY {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(TICK / 4);
    }
    let total = p.total_bytes.load(Ordering::Relaxed);
    let length = (total > 0).then_some(total);
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr())
        .with_elapsed(start.elapsed());
    let template = if total > 0 {
        "{bar:30} {bytes}/{total_bytes} {msg} ({elapsed}, about {eta} left)"
    } else {
        "{spinner} {bytes} {msg} ({elapsed})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    while !stop.load(Ordering::Relaxed) {
        let packets = p.packets.load(Ordering::Relaxed);
        let rate = packets as f64 / start.elapsed().as_secs_f64().max(0.001);
        let read = p.read_bytes.load(Ordering::Relaxed);
        bar.set_position(if total > 0 { read.min(total) } else { read });
        bar.set_message(format!(
            "{} packets ({:.0}k/s), {} flows",
            packets,
            rate / 1000.0,
            p.flows.load(Ordering::Relaxed)
        ));
        std::thread::sleep(TICK);
    }
    bar.finish_and_clear();
}
