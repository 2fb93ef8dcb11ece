//! What `run` shows while it runs: on a terminal, a progress bar per file input (frames,
//! fps, ETA) or a one-line live status per stream; elsewhere, a status line every 10 s.
//! It also rewrites `--stats-json` every 2 s. All of it reads the streams' counters from
//! a thread of its own, never from the frame path.

use frameflow::runtime::stats::{Report, Stats, StreamStats};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a status line is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How often `--stats-json` is rewritten while running.
const STATS_EVERY: Duration = Duration::from_secs(2);

/// The running status thread; [`Status::finish`] stops it (at once, not at its next
/// tick) and clears the bars.
pub struct Status {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Nothing (`-q`).
    Off,
    /// Bars and status lines redrawn in place (stderr is a terminal).
    Terminal,
    /// A plain line every 10 s (stderr is a pipe or a file).
    Log,
}

impl Display {
    pub fn pick(quiet: bool) -> Display {
        if quiet {
            Display::Off
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Display::Terminal
        } else {
            Display::Log
        }
    }
}

/// One line of live status: `cam: 29.9 fps, written 300, dropped 0, ...`.
pub fn status_line(s: &StreamStats, fps_now: f64) -> String {
    let lat = match (s.latency_ms.p50, s.latency_ms.p99) {
        (Some(a), Some(b)) => format!(", latency p50 {a:.1} ms p99 {b:.1} ms"),
        _ => String::new(),
    };
    format!(
        "{}: {} {fps_now:.1} fps, written {}, dropped {}, skipped {}, failed {}, reconnects {}, queue {}{lat}",
        s.stream,
        s.state.name(),
        s.frames_written,
        s.frames_dropped,
        s.frames_skipped,
        s.frames_failed,
        s.reconnects,
        s.queue_depth,
    )
}

/// Frames/s over the last interval, per stream.
struct Rate {
    last: Vec<(Instant, u64)>,
    fps: Vec<f64>,
}

impl Rate {
    fn new(n: usize) -> Rate {
        Rate {
            last: vec![(Instant::now(), 0); n],
            fps: vec![0.0; n],
        }
    }

    fn update(&mut self, i: usize, written: u64) -> f64 {
        let (t, w) = self.last[i];
        let dt = t.elapsed().as_secs_f64();
        if dt >= 1.0 {
            self.fps[i] = written.saturating_sub(w) as f64 / dt;
            self.last[i] = (Instant::now(), written);
        }
        self.fps[i]
    }
}

impl Status {
    pub fn start(
        streams: Vec<Arc<Stats>>,
        display: Display,
        stats_json: Option<PathBuf>,
    ) -> Status {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ff-status".into())
            .spawn(move || status_loop(&streams, display, stats_json.as_deref(), &stopped))
            .map_err(|e| tracing::warn!("no progress display: {e}"))
            .ok();
        Status {
            stop: Some(stop),
            thread,
        }
    }

    pub fn finish(mut self) {
        drop(self.stop.take()); // wakes the thread now
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn status_loop(
    streams: &[Arc<Stats>],
    display: Display,
    stats_json: Option<&std::path::Path>,
    stop: &mpsc::Receiver<()>,
) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    let mut bars: Vec<Option<ProgressBar>> = vec![None; streams.len()];
    let mut rate = Rate::new(streams.len());
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut last_stats = Instant::now();
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_millis(100)) {
        let snaps: Vec<StreamStats> = streams.iter().map(|s| s.snapshot()).collect();
        if let Some(path) = stats_json
            && last_stats.elapsed() >= STATS_EVERY
        {
            last_stats = Instant::now();
            if let Err(e) = Report::new(snaps.clone()).write(path) {
                tracing::warn!("--stats-json {}: {e}", path.display());
            }
        }
        let fps: Vec<f64> = snaps
            .iter()
            .enumerate()
            .map(|(i, s)| rate.update(i, s.frames_written))
            .collect();
        match display {
            Display::Off => {}
            Display::Log => {
                if last_log.elapsed() >= LOG_EVERY {
                    last_log = Instant::now();
                    for (s, f) in snaps.iter().zip(&fps) {
                        eprintln!("frameflow: {}", status_line(s, *f));
                    }
                }
            }
            Display::Terminal => {
                // Give the first status a moment: short runs finish without a flash.
                if started.elapsed() < Duration::from_millis(300) {
                    continue;
                }
                for (i, (s, stats)) in snaps.iter().zip(streams).enumerate() {
                    let expected = stats.expected_frames.load(Ordering::Relaxed);
                    let bar = bars[i].get_or_insert_with(|| multi.add(new_bar(expected)));
                    if expected > 0 {
                        bar.set_position(s.frames_decoded.min(expected));
                        bar.set_message(format!(
                            "{:.1} fps, written {}, dropped {}",
                            fps[i], s.frames_written, s.frames_dropped
                        ));
                    } else {
                        bar.set_message(status_line(s, fps[i]));
                        bar.tick();
                    }
                }
            }
        }
    }
    for b in bars.into_iter().flatten() {
        b.finish_and_clear();
    }
    let _ = multi.clear();
}

/// The progress bar of `apply` and `watch --once`: files done out of `len`.
pub fn files_bar(len: u64) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

/// `watch`'s live status line on a terminal: images done, their rate, time running.
/// Its position is the count of inputs handled (set through the progress callback).
pub fn watch_line(dir: &std::path::Path, out: &std::path::Path) -> ProgressBar {
    let b = ProgressBar::new_spinner();
    b.set_style(
        ProgressStyle::with_template(
            "{spinner} watching {prefix}: {pos} image(s) done, {per_sec}, for {elapsed} (Ctrl-C to stop)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    b.set_prefix(format!("{} → {}", dir.display(), out.display()));
    b.enable_steady_tick(std::time::Duration::from_millis(500));
    b
}

fn new_bar(expected: u64) -> ProgressBar {
    if expected > 0 {
        let b = ProgressBar::new(expected);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} frames, {msg}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_names_the_counters() {
        let s = Stats::new("cam", "x");
        Stats::add(&s.decoded, 3);
        s.written(Duration::from_millis(4));
        let line = status_line(&s.snapshot(), 29.94);
        assert!(line.starts_with("cam: starting 29.9 fps, written 1, dropped 0, skipped 0, failed 0, reconnects 0, queue 0, latency p50"), "{line}");
    }
}
