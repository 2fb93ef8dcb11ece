//! `/metrics` in the Prometheus text exposition format (version 0.0.4), one series per
//! stream, labelled `stream="LABEL"`.

use super::{Registry, StreamView};
use crate::runtime::stats::StreamStats;
use crate::runtime::stats::{LATENCY_BUCKETS_S, SkipReason, StreamState};
use crate::sink::preview::Feed;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
    }
}

/// Renders every stream's counters.
pub fn render(reg: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    let mut f = Family { out: &mut out };
    let streams: Vec<(String, _)> = reg
        .streams
        .iter()
        .map(|s| (format!("stream=\"{}\"", escape(&s.label)), s))
        .collect();

    type Get = fn(&StreamStats) -> u64;
    let counters: [(&str, &str, Get); 5] = [
        (
            "frameflow_frames_decoded_total",
            "Frames decoded from the input.",
            |s| s.frames_decoded,
        ),
        (
            "frameflow_frames_written_total",
            "Frames written to the output directory (renamed into place).",
            |s| s.frames_written,
        ),
        (
            "frameflow_frames_failed_total",
            "Frames that failed in a filter, the encoder or the write.",
            |s| s.frames_failed,
        ),
        (
            "frameflow_decode_errors_total",
            "Damaged or undecodable packets and frames met in the input.",
            |s| s.decode_errors,
        ),
        (
            "frameflow_reconnects_total",
            "Times a live input was reopened.",
            |s| s.reconnects,
        ),
    ];
    let snaps: Vec<_> = streams
        .iter()
        .map(|(l, s)| (l.as_str(), s.stats.snapshot(), *s))
        .collect();
    for (name, help, get) in counters {
        f.head(name, "counter", help);
        for (labels, snap, _) in &snaps {
            f.sample(name, labels, get(snap));
        }
    }

    let name = "frameflow_frames_dropped_total";
    f.head(
        name,
        "counter",
        "Frames dropped because the pipeline fell behind, by overload policy.",
    );
    for (labels, snap, _) in &snaps {
        for (reason, n) in [
            ("drop_oldest", snap.dropped.drop_oldest),
            ("drop_newest", snap.dropped.drop_newest),
        ] {
            f.sample(name, &format!("{labels},reason=\"{reason}\""), n);
        }
    }

    let name = "frameflow_frames_failed_disk_full_total";
    f.head(
        name,
        "counter",
        "Of the failed frames: a live input's output was full (writing resumes with space).",
    );
    for (labels, snap, _) in &snaps {
        f.sample(name, labels, snap.failed.disk_full);
    }

    let name = "frameflow_frames_skipped_total";
    f.head(
        name,
        "counter",
        "Frames not selected on purpose, by reason: before the start, between every-Nth or fps ticks, non-key packets skipped.",
    );
    for (labels, snap, _) in &snaps {
        for reason in SkipReason::ALL {
            f.sample(
                name,
                &format!("{labels},reason=\"{}\"", reason.name()),
                snap.skipped.get(reason),
            );
        }
    }

    let name = "frameflow_stream_state";
    f.head(
        name,
        "gauge",
        "1 for the stream's current state (connecting, running, reconnecting, …), else 0.",
    );
    for (labels, snap, _) in &snaps {
        for state in StreamState::ALL {
            f.sample(
                name,
                &format!("{labels},state=\"{}\"", state.name()),
                u64::from(snap.state == state),
            );
        }
    }

    type Gauge = fn(&StreamStats, &StreamView) -> u64;
    let gauges: [(&str, &str, Gauge); 3] = [
        (
            "frameflow_queue_depth",
            "Decoded frames waiting for a worker.",
            |snap, _| snap.queue_depth,
        ),
        (
            "frameflow_stream_up",
            "1 while the stream is decoding, 0 while starting, reconnecting or ended.",
            |snap, _| u64::from(snap.state == StreamState::Running),
        ),
        (
            "frameflow_expected_frames",
            "Frames a file input is expected to yield (0 = unknown or live).",
            |_, s| s.stats.expected_frames.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, get) in gauges {
        f.head(name, "gauge", help);
        for (labels, snap, s) in &snaps {
            f.sample(name, labels, get(snap, s));
        }
    }

    let name = "frameflow_preview_viewers";
    f.head(name, "gauge", "Clients of /stream.mjpeg, by feed.");
    for (labels, _, s) in &snaps {
        for (feed, v) in [("processed", Feed::Processed), ("raw", Feed::Raw)] {
            f.sample(
                name,
                &format!("{labels},feed=\"{feed}\""),
                s.preview.viewers(v),
            );
        }
    }

    let name = "frameflow_frame_latency_seconds";
    f.head(
        name,
        "histogram",
        "Time from a frame leaving the decoder to its output file being renamed into place.",
    );
    for (labels, _, s) in &snaps {
        let (cum, sum) = s.stats.latency_histogram().cumulative();
        for (bound, c) in LATENCY_BUCKETS_S.iter().zip(cum.iter()) {
            f.sample(
                &format!("{name}_bucket"),
                &format!("{labels},le=\"{bound}\""),
                c,
            );
        }
        let total = cum[LATENCY_BUCKETS_S.len()];
        f.sample(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            total,
        );
        f.sample(&format!("{name}_sum"), labels, sum);
        f.sample(&format!("{name}_count"), labels, total);
    }
    if let Some(w) = &reg.worker {
        let w = w.snapshot();
        for (name, help, v) in [
            (
                "frameflow_worker_chunks_done_total",
                "Chunks finished and acknowledged.",
                w.chunks_done,
            ),
            (
                "frameflow_worker_chunks_redelivered_total",
                "Chunks taken again after an earlier delivery did not finish them.",
                w.chunks_redelivered,
            ),
            (
                "frameflow_worker_chunks_returned_total",
                "Chunks handed back unfinished.",
                w.chunks_returned,
            ),
            (
                "frameflow_worker_frames_made_total",
                "Frames made and handed back.",
                w.frames_made,
            ),
            (
                "frameflow_worker_frames_failed_total",
                "Picked frames that could not be made.",
                w.frames_failed,
            ),
        ] {
            f.head(name, "counter", help);
            let _ = writeln!(f.out, "{name} {v}");
        }
        f.head(
            "frameflow_worker_chunks_in_progress",
            "gauge",
            "Chunks being worked on.",
        );
        let _ = writeln!(
            f.out,
            "frameflow_worker_chunks_in_progress {}",
            w.chunks_in_progress
        );
        f.head(
            "frameflow_worker_busy_seconds_total",
            "counter",
            "Time spent working on chunks, over all threads.",
        );
        let _ = writeln!(f.out, "frameflow_worker_busy_seconds_total {}", w.busy_s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::stats::{DropReason, Stats};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn renders_labelled_series() {
        let stats = Arc::new(Stats::new("cam \"1\"", "x"));
        Stats::add(&stats.decoded, 7);
        stats.written(Duration::from_millis(12));
        stats.dropped(DropReason::DropOldest);
        let reg = Registry {
            streams: vec![StreamView {
                label: "cam \"1\"".into(),
                filter: "emboss".into(),
                stats,
                preview: Arc::default(),
            }],
            ..Default::default()
        };
        let text = render(&reg);
        assert!(text.contains("frameflow_frames_decoded_total{stream=\"cam \\\"1\\\"\"} 7"));
        assert!(text.contains("reason=\"drop_oldest\"} 1"));
        assert!(
            !text.contains("reason=\"sampling\""),
            "sampling is not a drop"
        );
        assert!(
            text.contains(
                "frameflow_frames_skipped_total{stream=\"cam \\\"1\\\"\",reason=\"fps\"} 0"
            )
        );
        assert!(text.contains("state=\"starting\"} 1"));
        assert!(text.contains(
            "frameflow_frame_latency_seconds_bucket{stream=\"cam \\\"1\\\"\",le=\"0.01\"} 0"
        ));
        assert!(text.contains("le=\"0.02\"} 1"));
        assert!(text.contains("frameflow_frame_latency_seconds_count{stream=\"cam \\\"1\\\"\"} 1"));
        // Every sample line is NAME{LABELS} VALUE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
