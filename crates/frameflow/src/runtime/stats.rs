//! Per-stream counters and the frame-latency histogram, and their JSON form
//! (`--stats-json`, `/api/status`) and Prometheus form (`/metrics`).

use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a frame was dropped on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// `--overload drop-oldest` discarded a queued frame.
    DropOldest,
    /// `--overload drop-newest` discarded the incoming frame.
    DropNewest,
}

/// Why a frame was *skipped*: not selected, on purpose. Skips are not drops: a drop
/// means the pipeline could not keep up, so that an alert on drops means something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Before `--start`.
    Start,
    /// Not the Nth frame of `--every N`.
    Every,
    /// Between the ticks of `--fps R`.
    Fps,
    /// A non-key packet discarded before decoding by `--keyframes-only`.
    Keyframes,
}

impl SkipReason {
    pub const ALL: [SkipReason; 4] = [
        SkipReason::Start,
        SkipReason::Every,
        SkipReason::Fps,
        SkipReason::Keyframes,
    ];

    /// The name used in `skipped` (JSON) and the `reason` label (metrics).
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::Start => "start",
            SkipReason::Every => "every",
            SkipReason::Fps => "fps",
            SkipReason::Keyframes => "keyframes",
        }
    }
}

/// Log-linear latency histogram in microseconds: exact below 64 µs, then 32 buckets per
/// power of two (≤ 3 % error). Fixed size: recording never allocates.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

const SUB: u64 = 32;
const LINEAR: u64 = 64;
const BUCKETS: usize = (LINEAR + (64 - 6) * SUB) as usize;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let e = 63 - u64::from(v.leading_zeros()); // >= 6
        let top = v >> (e - 5); // in [32, 64)
        (LINEAR + (e - 6) * SUB + (top - SUB)) as usize
    }

    /// Lower bound of a bucket.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < LINEAR {
            return i;
        }
        let e = (i - LINEAR) / SUB + 6;
        let top = (i - LINEAR) % SUB + SUB;
        top << (e - 5)
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = Self::index(us).min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) in microseconds, or `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return Some(self.max_us);
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = Self::value(i);
                let hi = Self::value(i + 1).max(lo + 1);
                return Some(((lo + hi) / 2).min(self.max_us));
            }
        }
        Some(self.max_us)
    }
}

/// Where a stream is in its life, for status lines and `/api/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Opening the input for the first time.
    Starting,
    /// A live input that could not be opened yet: waiting to retry, or retrying.
    Connecting,
    /// Decoding.
    Running,
    /// Waiting to reopen, or reopening, a live input.
    Reconnecting,
    /// `run --cluster`: chunks are out and no worker has answered for a while.
    WaitingForWorkers,
    /// Finished (end of input, stop, or failure).
    Ended,
}

impl StreamState {
    pub const ALL: [StreamState; 6] = [
        StreamState::Starting,
        StreamState::Connecting,
        StreamState::Running,
        StreamState::Reconnecting,
        StreamState::WaitingForWorkers,
        StreamState::Ended,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StreamState::Starting => "starting",
            StreamState::Connecting => "connecting",
            StreamState::Running => "running",
            StreamState::Reconnecting => "reconnecting",
            StreamState::WaitingForWorkers => "waiting_for_workers",
            StreamState::Ended => "ended",
        }
    }
}

/// Upper bounds (seconds) of the Prometheus latency histogram's buckets.
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// A Prometheus histogram of frame latency: fixed buckets, lock-free recording.
#[derive(Debug, Default)]
pub struct PromHistogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: [AtomicU64; LATENCY_BUCKETS_S.len() + 1],
    sum_us: AtomicU64,
}

impl PromHistogram {
    fn record(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS_S
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound (the last is +Inf = the total), and the sum in s.
    pub fn cumulative(&self) -> ([u64; LATENCY_BUCKETS_S.len() + 1], f64) {
        let mut out = [0u64; LATENCY_BUCKETS_S.len() + 1];
        let mut acc = 0;
        for (o, c) in out.iter_mut().zip(&self.counts) {
            acc += c.load(Ordering::Relaxed);
            *o = acc;
        }
        (out, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// Live counters of one stream, shared by the decoder, the workers and the committer.
#[derive(Debug)]
pub struct Stats {
    pub label: String,
    pub input: String,
    started: Instant,
    pub decoded: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
    /// Of `failed`: frames a live input could not write because the disk was full.
    pub failed_disk_full: AtomicU64,
    pub decode_errors: AtomicU64,
    pub reconnects: AtomicU64,
    dropped_oldest: AtomicU64,
    dropped_newest: AtomicU64,
    /// By [`SkipReason`], in the order of `SkipReason::ALL`.
    skipped: [AtomicU64; 4],
    /// Frames decoded and waiting for a worker (a gauge).
    pub queue_depth: AtomicU64,
    /// Live inputs: how far (ms) the decoder runs behind the stream's own clock, now and
    /// at most (see [`Stats::live_lag`]).
    live_lag_now_ms: AtomicU64,
    live_lag_max_ms: AtomicU64,
    /// Frames the input is expected to yield (file inputs with a known duration; 0 =
    /// unknown), for progress bars.
    pub expected_frames: AtomicU64,
    state: AtomicU8,
    latency: Mutex<Histogram>,
    latency_prom: PromHistogram,
}

impl Stats {
    pub fn new(label: &str, input: &str) -> Stats {
        Stats {
            label: label.to_string(),
            input: input.to_string(),
            started: Instant::now(),
            decoded: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_disk_full: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            dropped_oldest: AtomicU64::new(0),
            dropped_newest: AtomicU64::new(0),
            skipped: Default::default(),
            queue_depth: AtomicU64::new(0),
            live_lag_now_ms: AtomicU64::new(0),
            live_lag_max_ms: AtomicU64::new(0),
            expected_frames: AtomicU64::new(0),
            state: AtomicU8::new(0),
            latency: Mutex::new(Histogram::default()),
            latency_prom: PromHistogram::default(),
        }
    }

    pub fn set_state(&self, state: StreamState) {
        let i = StreamState::ALL
            .iter()
            .position(|&s| s == state)
            .unwrap_or(0);
        self.state.store(i as u8, Ordering::Relaxed);
    }

    pub fn state(&self) -> StreamState {
        StreamState::ALL
            .get(usize::from(self.state.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(StreamState::Starting)
    }

    /// The Prometheus latency histogram (decoded → output renamed).
    pub fn latency_histogram(&self) -> &PromHistogram {
        &self.latency_prom
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason) {
        let c = match reason {
            DropReason::DropOldest => &self.dropped_oldest,
            DropReason::DropNewest => &self.dropped_newest,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` frames skipped for `reason`.
    pub fn skipped(&self, reason: SkipReason, n: u64) {
        let i = SkipReason::ALL
            .iter()
            .position(|&r| r == reason)
            .unwrap_or(0);
        self.skipped[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Records how far behind the live edge the decoder is: the wall time since the
    /// stream was last on time, less the stream time since then.
    pub fn live_lag(&self, lag: Duration) {
        let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        self.live_lag_now_ms.store(ms, Ordering::Relaxed);
        self.live_lag_max_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Records one written frame and its decoded → renamed latency.
    pub fn written(&self, latency: Duration) {
        self.written.fetch_add(1, Ordering::Relaxed);
        self.latency_prom.record(latency);
        if let Ok(mut h) = self.latency.lock() {
            h.record(latency);
        }
    }

    pub fn snapshot(&self) -> StreamStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let written = get(&self.written);
        let (p50, p99, max) = match self.latency.lock() {
            Ok(h) => (
                h.quantile_us(0.5).map(us_to_ms),
                h.quantile_us(0.99).map(us_to_ms),
                (h.count() > 0).then(|| us_to_ms(h.max_us)),
            ),
            Err(_) => (None, None, None),
        };
        let dropped = DroppedStats {
            drop_oldest: get(&self.dropped_oldest),
            drop_newest: get(&self.dropped_newest),
        };
        let [start, every, fps, keyframes] = self.skipped.each_ref().map(get);
        let skipped = SkippedStats {
            start,
            every,
            fps,
            keyframes,
        };
        StreamStats {
            stream: self.label.clone(),
            input: self.input.clone(),
            frames_decoded: get(&self.decoded),
            frames_written: written,
            frames_dropped: dropped.drop_oldest + dropped.drop_newest,
            dropped,
            frames_skipped: start + every + fps + keyframes,
            skipped,
            frames_failed: get(&self.failed),
            failed: FailedStats {
                disk_full: get(&self.failed_disk_full),
            },
            decode_errors: get(&self.decode_errors),
            reconnects: get(&self.reconnects),
            queue_depth: get(&self.queue_depth),
            live_lag_ms: LiveLagStats {
                now: get(&self.live_lag_now_ms),
                max: get(&self.live_lag_max_ms),
            },
            state: self.state(),
            elapsed_s: round3(elapsed),
            fps: if elapsed > 0.0 {
                round3(written as f64 / elapsed)
            } else {
                0.0
            },
            latency_ms: LatencyStats { p50, p99, max },
        }
    }
}

fn us_to_ms(us: u64) -> f64 {
    round3(us as f64 / 1000.0)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct DroppedStats {
    pub drop_oldest: u64,
    pub drop_newest: u64,
}

/// Failed frames by reason (those not listed failed for reasons logged one by one).
#[derive(Debug, Clone, Serialize)]
pub struct FailedStats {
    /// A live input's output was full (the run goes on, and writes again when space
    /// returns).
    pub disk_full: u64,
}

/// Frames not selected, by [`SkipReason`].
#[derive(Debug, Clone, Serialize)]
pub struct SkippedStats {
    pub start: u64,
    pub every: u64,
    pub fps: u64,
    pub keyframes: u64,
}

impl SkippedStats {
    /// The count for `reason`.
    pub fn get(&self, reason: SkipReason) -> u64 {
        match reason {
            SkipReason::Start => self.start,
            SkipReason::Every => self.every,
            SkipReason::Fps => self.fps,
            SkipReason::Keyframes => self.keyframes,
        }
    }
}

/// How far (ms) a live input's decoder ran behind the stream's own clock: the wall time
/// since the stream was last on time less the stream time since then.
#[derive(Debug, Clone, Serialize)]
pub struct LiveLagStats {
    pub now: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyStats {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// One stream's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStats {
    pub stream: String,
    pub input: String,
    pub frames_decoded: u64,
    pub frames_written: u64,
    /// Dropped by the overload policy (the pipeline could not keep up).
    pub frames_dropped: u64,
    pub dropped: DroppedStats,
    /// Not selected by sampling (`--start`, `--every`, `--fps`, `--keyframes-only`).
    pub frames_skipped: u64,
    pub skipped: SkippedStats,
    pub frames_failed: u64,
    /// Of `frames_failed`, by reason.
    pub failed: FailedStats,
    pub decode_errors: u64,
    pub reconnects: u64,
    /// Frames decoded and waiting for a worker, now.
    pub queue_depth: u64,
    /// Live inputs: how far the decoder ran behind the stream's clock (0 for files).
    pub live_lag_ms: LiveLagStats,
    pub state: StreamState,
    pub elapsed_s: f64,
    pub fps: f64,
    pub latency_ms: LatencyStats,
}

/// The whole `--stats-json` document: totals, then each stream.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub frameflow: &'static str,
    pub frames_decoded: u64,
    pub frames_written: u64,
    pub frames_dropped: u64,
    pub frames_skipped: u64,
    pub frames_failed: u64,
    pub reconnects: u64,
    pub elapsed_s: f64,
    pub fps: f64,
    pub streams: Vec<StreamStats>,
}

impl Report {
    pub fn new(streams: Vec<StreamStats>) -> Report {
        let sum = |f: fn(&StreamStats) -> u64| streams.iter().map(f).sum::<u64>();
        let elapsed = streams.iter().map(|s| s.elapsed_s).fold(0.0, f64::max);
        let written = sum(|s| s.frames_written);
        Report {
            frameflow: env!("CARGO_PKG_VERSION"),
            frames_decoded: sum(|s| s.frames_decoded),
            frames_written: written,
            frames_dropped: sum(|s| s.frames_dropped),
            frames_skipped: sum(|s| s.frames_skipped),
            frames_failed: sum(|s| s.frames_failed),
            reconnects: sum(|s| s.reconnects),
            elapsed_s: elapsed,
            fps: if elapsed > 0.0 {
                round3(written as f64 / elapsed)
            } else {
                0.0
            },
            streams,
        }
    }

    /// Writes the report atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::sink::atomic::create_dirs(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".ff-{}-stats-{name}.tmp", std::process::id()));
        std::fs::write(&tmp, &json)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_us(0.5), None);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_us(0.5).unwrap() as f64 / 1000.0;
        let p99 = h.quantile_us(0.99).unwrap() as f64 / 1000.0;
        assert!((p50 - 50.0).abs() / 50.0 < 0.04, "p50 {p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.04, "p99 {p99}");
        assert_eq!(h.quantile_us(1.0), Some(100_000));
    }

    #[test]
    fn histogram_index_round_trips() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            123_456,
            1 << 40,
            u64::MAX,
        ] {
            let i = Histogram::index(v);
            assert!(i < BUCKETS, "{v}");
            assert!(Histogram::value(i) <= v, "{v}");
            if i + 1 < BUCKETS {
                assert!(Histogram::value(i + 1) > v, "{v}");
            }
        }
    }

    #[test]
    fn report_sums_streams() {
        let s = Stats::new("cam", "x.mp4");
        Stats::add(&s.decoded, 5);
        s.written(Duration::from_millis(3));
        s.dropped(DropReason::DropOldest);
        s.skipped(SkipReason::Fps, 3);
        s.skipped(SkipReason::Keyframes, 1);
        let r = Report::new(vec![s.snapshot(), s.snapshot()]);
        assert_eq!(
            (r.frames_decoded, r.frames_written, r.frames_dropped),
            (10, 2, 2),
            "skips are not drops"
        );
        assert_eq!(r.frames_skipped, 8);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.json");
        r.write(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["streams"][0]["dropped"]["drop_oldest"], 1);
        assert_eq!(v["streams"][0]["dropped"].get("sampling"), None);
        assert_eq!(v["streams"][0]["skipped"]["fps"], 3);
        assert_eq!(v["streams"][0]["frames_skipped"], 4);
        assert_eq!(v["streams"][0]["state"], "starting");
    }

    #[test]
    fn prometheus_buckets_are_cumulative() {
        let s = Stats::new("cam", "x.mp4");
        for ms in [0u64, 1, 3, 25, 40, 20_000] {
            s.written(Duration::from_millis(ms));
        }
        let (c, sum) = s.latency_histogram().cumulative();
        assert_eq!(c[0], 2, "<= 1 ms"); // 0 and 1 ms
        assert_eq!(c[2], 3, "<= 5 ms");
        assert_eq!(c[5], 4, "<= 30 ms");
        assert_eq!(c[6], 5, "<= 50 ms");
        assert_eq!(c[LATENCY_BUCKETS_S.len() - 1], 5, "<= 10 s");
        assert_eq!(c[LATENCY_BUCKETS_S.len()], 6, "+Inf");
        assert!((sum - 20.069).abs() < 1e-9, "{sum}");
        s.set_state(StreamState::Reconnecting);
        assert_eq!(s.state(), StreamState::Reconnecting);
    }
}

/// A cluster worker's counters (`frameflow worker --serve`: `/api/status`, `/metrics`).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Chunks finished (all their frames answered) and acknowledged.
    pub chunks_done: AtomicU64,
    /// Chunks being worked on right now.
    pub chunks_in_progress: AtomicU64,
    /// Chunks taken that an earlier delivery had not finished (a worker died or was cut
    /// off).
    pub chunks_redelivered: AtomicU64,
    /// Chunks handed back unfinished (results could not be published).
    pub chunks_returned: AtomicU64,
    /// Frames made and handed back.
    pub frames_made: AtomicU64,
    /// Picked frames that could not be made (sent back as failed).
    pub frames_failed: AtomicU64,
    /// Time spent working on chunks, µs (over all threads).
    pub busy_us: AtomicU64,
}

/// A worker's counters at one moment.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkerSnapshot {
    pub chunks_done: u64,
    pub chunks_in_progress: u64,
    pub chunks_redelivered: u64,
    pub chunks_returned: u64,
    pub frames_made: u64,
    pub frames_failed: u64,
    pub busy_s: f64,
}

impl WorkerStats {
    pub fn snapshot(&self) -> WorkerSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerSnapshot {
            chunks_done: get(&self.chunks_done),
            chunks_in_progress: get(&self.chunks_in_progress),
            chunks_redelivered: get(&self.chunks_redelivered),
            chunks_returned: get(&self.chunks_returned),
            frames_made: get(&self.frames_made),
            frames_failed: get(&self.frames_failed),
            busy_s: get(&self.busy_us) as f64 / 1e6,
        }
    }
}
