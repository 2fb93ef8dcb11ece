//! Per-stream counters and the frame-latency histogram, and their JSON form
//! (`--stats-json`, later `/api/status`).

use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a frame was dropped on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// `--overload drop-oldest` discarded a queued frame.
    DropOldest,
    /// `--overload drop-newest` discarded the incoming frame.
    DropNewest,
    /// `--every`, `--fps`, `--start` did not select it.
    Sampling,
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

/// Live counters of one stream, shared by the decoder, the workers and the committer.
#[derive(Debug)]
pub struct Stats {
    pub label: String,
    pub input: String,
    started: Instant,
    pub decoded: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
    pub decode_errors: AtomicU64,
    pub reconnects: AtomicU64,
    dropped_oldest: AtomicU64,
    dropped_newest: AtomicU64,
    dropped_sampling: AtomicU64,
    latency: Mutex<Histogram>,
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
            decode_errors: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            dropped_oldest: AtomicU64::new(0),
            dropped_newest: AtomicU64::new(0),
            dropped_sampling: AtomicU64::new(0),
            latency: Mutex::new(Histogram::default()),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason) {
        let c = match reason {
            DropReason::DropOldest => &self.dropped_oldest,
            DropReason::DropNewest => &self.dropped_newest,
            DropReason::Sampling => &self.dropped_sampling,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one written frame and its decoded → renamed latency.
    pub fn written(&self, latency: Duration) {
        self.written.fetch_add(1, Ordering::Relaxed);
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
            sampling: get(&self.dropped_sampling),
        };
        StreamStats {
            stream: self.label.clone(),
            input: self.input.clone(),
            frames_decoded: get(&self.decoded),
            frames_written: written,
            frames_dropped: dropped.drop_oldest + dropped.drop_newest + dropped.sampling,
            dropped,
            frames_failed: get(&self.failed),
            decode_errors: get(&self.decode_errors),
            reconnects: get(&self.reconnects),
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
    pub sampling: u64,
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
    pub frames_dropped: u64,
    pub dropped: DroppedStats,
    pub frames_failed: u64,
    pub decode_errors: u64,
    pub reconnects: u64,
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
        std::fs::create_dir_all(dir)?;
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
        s.dropped(DropReason::Sampling);
        let r = Report::new(vec![s.snapshot(), s.snapshot()]);
        assert_eq!(
            (r.frames_decoded, r.frames_written, r.frames_dropped),
            (10, 2, 4)
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.json");
        r.write(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["streams"][0]["dropped"]["drop_oldest"], 1);
    }
}
