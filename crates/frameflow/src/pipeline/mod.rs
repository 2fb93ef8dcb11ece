//! The `run` pipeline: one decode thread → a bounded queue → N workers (convert, filter,
//! encode, write a temporary file) → an in-order committer that names and renames.
//!
//! Invariants:
//! - Frames in memory are bounded by the slot pool (`queue + workers + 1` slots).
//! - Output names are assigned at commit time, in decode order, with no gaps: which
//!   worker finishes first changes nothing on disk.
//! - A file appears under its final name only when complete (see [`crate::sink::atomic`]).

mod fused;

use crate::frames::{ConvertError, Converter, Picture};
use crate::frames::{Frame, FrameBuf, Slot, SlotPool};
use crate::runtime::stats::{DropReason, Report, SkipReason, Stats, StreamState};
use crate::runtime::{Control, utc_timestamp};
use crate::sink::atomic::{AtomicDir, Replace, TempFile, WriteError};
use crate::sink::encode::{EncodeError, EncodeOptions, Encoder, ImageFormat};
use crate::sink::naming::{NameValues, Template};
use crate::sink::preview::{Feed, Preview, PreviewEncoder};
use crate::source::{Damage, InputSpec, OpenOptions, Source, SourceError};
use crate::supervisor::{self, Backoff, EndCause, ReconnectPolicy, SystemClock};
use crossbeam_channel::{Receiver, Sender};
use frameflow_filters::{Chain, FilterError, Mode, Scratch};
use fused::{Fused, FusedError};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What to do when frames arrive faster than the workers write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// Wait: the decoder (and so the input) is slowed down. Default for files.
    Block,
    /// Discard the oldest queued frame. Default for live inputs.
    DropOldest,
    /// Discard the incoming frame.
    DropNewest,
}

named_choices!(Overload {
    Block = "block": "Wait: the decoder (and so the input) is slowed down. Default for files",
    DropOldest = "drop-oldest": "Discard the oldest queued frame. Default for live inputs",
    DropNewest = "drop-newest": "Discard the incoming frame",
});

/// Frame selection.
#[derive(Debug, Clone, Default)]
pub struct Sampling {
    /// One frame per 1/fps s of stream time.
    pub fps: Option<f64>,
    /// Every Nth decoded frame.
    pub every: Option<u64>,
    /// Skip frames before this stream time (s, from the first frame).
    pub start: Option<f64>,
    /// Stop after this much stream time (s, from `start`).
    pub duration: Option<f64>,
    /// Stop after writing this many frames.
    pub max_frames: Option<u64>,
}

/// Everything `frameflow run` needs for one stream.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub input: InputSpec,
    pub open: OpenOptions,
    pub chain: Chain,
    pub out_dir: PathBuf,
    pub template: Template,
    pub encode: EncodeOptions,
    pub workers: usize,
    pub queue: usize,
    pub overload: Overload,
    pub sampling: Sampling,
    pub overwrite: bool,
    pub label: String,
    /// Reopening live inputs after they end, fail or stall.
    pub reconnect: ReconnectPolicy,
    /// Also keep the unfiltered frames here (same names, same format, atomically).
    pub raw_dir: Option<PathBuf>,
    /// Keep only the newest N outputs of the template in the directory, earlier runs'
    /// included (a ring, like multifilesink's max-files); the raw twin of an output goes
    /// with it.
    pub keep_last: Option<usize>,
}

/// Failures that stop a run before or while it starts.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Output(#[from] WriteError),
    /// The directory for unfiltered frames is unusable.
    #[error("raw-frame directory {}: {reason}", path.display())]
    RawDir { path: PathBuf, reason: String },
    #[error("{0}")]
    Encoder(#[from] EncodeError),
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report,
    /// A source failure that ended the run early (frames before it were written).
    pub source_error: Option<SourceError>,
    /// The first index this run used.
    pub first_index: u64,
    /// Damaged data met in the input (frames were still written where decodable).
    pub damage: Damage,
    /// An output failure that stopped the run (disk full, directory not writable):
    /// frames before it were written, nothing partial is left.
    pub output_error: Option<WriteError>,
    /// The run was stopped (`Control::stop`: a signal) before its input ended or its
    /// limits (`--max-frames`, `--duration`) were reached.
    pub stopped_early: bool,
}

/// What a run shares with observers while it runs: its live counters (status lines,
/// `--stats-json`, `/api/status`, `/metrics`) and, with `--serve`, its preview tap.
#[derive(Debug, Clone)]
pub struct Taps {
    pub stats: Arc<Stats>,
    pub preview: Option<Arc<Preview>>,
}

impl Taps {
    /// Counters for `cfg`'s stream, and a preview tap if `preview`.
    pub fn new(cfg: &RunConfig, preview: bool) -> Taps {
        Taps {
            stats: Arc::new(Stats::new(&cfg.label, &cfg.input.raw)),
            preview: preview.then(|| Arc::new(Preview::default())),
        }
    }
}

struct Pending {
    temp: TempFile,
    /// The unfiltered frame, with `--raw-dir`.
    raw: Option<TempFile>,
    seq: u64,
    pts_ms: i64,
    decoded_at: Instant,
}

/// Names and renames finished frames strictly in `seq` order.
struct Committer {
    next_seq: u64,
    next_index: u64,
    pending: BTreeMap<u64, Option<Pending>>,
    /// With `--keep-last N`: the final paths of the last N outputs in the directories
    /// (earlier runs' first), oldest first.
    kept: VecDeque<Vec<PathBuf>>,
    /// The name the template rendered for the previous commit, and which
    /// [`variant`](crate::sink::naming::variant) of it was used: the next frame with the
    /// same name starts at the next variant.
    last: Option<(String, u32)>,
}

impl Committer {
    /// `--keep-last`: the ring starts with the outputs earlier runs left in the output
    /// and raw directories (a filtered frame and its raw twin as one entry), oldest first
    /// as [`Template::existing_outputs`] orders them, so the directories never hold more
    /// than N outputs once this run commits.
    fn earlier_outputs(cfg: &RunConfig) -> VecDeque<Vec<PathBuf>> {
        let Some(n) = cfg.keep_last else {
            return VecDeque::new();
        };
        let stem = cfg.input.default_label();
        let known = crate::sink::naming::Known {
            ext: cfg.encode.format.extension(),
            stream: Some(&cfg.label),
            stem: Some(&stem),
        };
        let dirs: Vec<&std::path::Path> = std::iter::once(&cfg.out_dir)
            .chain(cfg.raw_dir.as_ref())
            .map(PathBuf::as_path)
            .collect();
        let mut kept: VecDeque<Vec<PathBuf>> = cfg
            .template
            .existing_outputs(&dirs, &known)
            .into_iter()
            .map(|e| e.paths)
            .collect();
        kept.reserve(n.saturating_add(1).min(4096));
        kept
    }
}

struct Shared<'a> {
    cfg: &'a RunConfig,
    dir: AtomicDir,
    raw_dir: Option<AtomicDir>,
    stats: Arc<Stats>,
    preview: Option<Arc<Preview>>,
    commit: Mutex<Committer>,
    control: Control,
    error_lines: AtomicU64,
    /// The first output failure that makes going on pointless; it stops the run.
    output_error: Mutex<Option<WriteError>>,
    /// Set once a live input's decoder has fallen behind the stream's clock: from then on
    /// the workers run at a lower priority than the decoder (see [`LIVE_WORKER_NICE`]).
    workers_yield: AtomicBool,
    /// A live input's output is full right now (frames fail until a write succeeds).
    disk_full: AtomicBool,
}

impl Shared<'_> {
    /// Hands over the result for `seq` (None = skipped) and commits everything that is
    /// now in order.
    fn finish(&self, seq: u64, item: Option<Pending>) {
        let mut c = match self.commit.lock() {
            Ok(c) => c,
            Err(_) => {
                // A panic while committing left the committer's state unknown: nothing
                // more can be named safely. Stop the run, loudly, leaving no partial file.
                if let Some(p) = item {
                    self.discard(p);
                    Stats::add(&self.stats.failed, 1);
                }
                if !self.control.stop.swap(true, Ordering::SeqCst) {
                    tracing::error!(
                        "input '{}': internal error: the output committer failed; stopping (frames already renamed are complete)",
                        self.cfg.input.raw
                    );
                }
                return;
            }
        };
        c.pending.insert(seq, item);
        loop {
            let next = c.next_seq;
            let Some(item) = c.pending.remove(&next) else {
                break;
            };
            c.next_seq += 1;
            let Some(p) = item else { continue };
            if self.control.abort.load(Ordering::Relaxed) {
                self.discard(p);
                continue;
            }
            self.commit_one(&mut c, p);
        }
    }

    fn commit_one(&self, c: &mut Committer, p: Pending) {
        test_hook::panic_at("FRAMEFLOW_TEST_PANIC_IN_COMMIT", c.next_seq);
        let cfg = self.cfg;
        let replace = if cfg.overwrite {
            Replace::Allowed
        } else {
            Replace::Never
        };
        let time = utc_timestamp(SystemTime::now());
        let stem = cfg.input.default_label();
        let Pending {
            mut temp,
            mut raw,
            seq,
            pts_ms,
            decoded_at,
        } = p;
        let context = self.context(seq, pts_ms);
        let has_index = cfg.template.has_index();
        // Every frame gets a name of its own. With {index}, a name already taken moves the
        // counter on (another writer got there first). Without it ({pts}, {time}), a name
        // already taken — or the one the previous frame got, which --overwrite would
        // replace — becomes its next variant: `-1`, `-2`, … before the extension.
        let mut k = 0;
        for _attempt in 0..1000 {
            let base = match cfg.template.render_checked(&NameValues {
                index: c.next_index,
                pts_ms,
                time: &time,
                stream: &cfg.label,
                stem: &stem,
                ext: cfg.encode.format.extension(),
            }) {
                Ok(name) => name,
                Err(e) => {
                    self.dir.discard(temp);
                    self.discard_raw(raw);
                    self.fail(context.failed(e));
                    return;
                }
            };
            if !has_index
                && k == 0
                && let Some((prev, pk)) = &c.last
                && *prev == base
            {
                k = pk.saturating_add(1);
            }
            let rel = crate::sink::naming::variant(&base, k);
            let next = |c: &mut Committer, k: &mut u32| {
                if has_index {
                    c.next_index += 1;
                } else {
                    *k += 1;
                }
            };
            // The raw frame takes the same name: skip a name already taken there too.
            if let (Some(rd), Some(_)) = (&self.raw_dir, &raw)
                && replace == Replace::Never
                && rd.root().join(&rel).exists()
            {
                next(c, &mut k);
                continue;
            }
            match self.dir.commit_keep(temp, &rel, replace) {
                Ok(path) => {
                    c.next_index += 1;
                    c.last = Some((base, k));
                    self.stats.written(decoded_at.elapsed());
                    if self.disk_full.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            "input '{}': space again in {}: writing resumed ({} frame(s) failed for a full disk so far)",
                            cfg.input.raw,
                            cfg.out_dir.display(),
                            self.stats.failed_disk_full.load(Ordering::Relaxed)
                        );
                    }
                    let mut paths = vec![path];
                    if let (Some(rd), Some(r)) = (&self.raw_dir, raw.take()) {
                        match rd.commit(r, &rel, replace) {
                            Ok(rp) => paths.push(rp),
                            Err(e) => self.write_failed(e, context.clone().raw()),
                        }
                    }
                    self.keep_last(c, paths);
                    return;
                }
                Err((t, WriteError::Exists { .. })) => {
                    next(c, &mut k);
                    temp = t;
                }
                Err((t, e)) => {
                    self.dir.discard(t);
                    self.discard_raw(raw);
                    self.write_failed(e, context);
                    return;
                }
            }
        }
        self.dir.discard(temp);
        self.discard_raw(raw);
        self.fail(context.failed(FrameError::NoFreeName));
    }

    /// `--keep-last N`: remembers this commit's files and deletes those of the output N
    /// outputs ago — earlier runs' outputs of the same template included (the ring is
    /// seeded with them), so the directory holds at most N. A file this commit replaced
    /// (`--overwrite`) leaves its old place in the ring, or the ring would delete it.
    fn keep_last(&self, c: &mut Committer, paths: Vec<PathBuf>) {
        let Some(n) = self.cfg.keep_last else { return };
        if self.cfg.overwrite {
            c.kept.retain(|old| !old.iter().any(|p| paths.contains(p)));
        }
        c.kept.push_back(paths);
        while c.kept.len() > n {
            let Some(old) = c.kept.pop_front() else { break };
            for path in old {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(
                        "{}: cannot remove {}: {e}",
                        crate::setting::Setting::KeepLast,
                        path.display()
                    ),
                }
            }
        }
    }

    /// Removes the temporary files of a frame that will not be committed.
    fn discard(&self, p: Pending) {
        self.dir.discard(p.temp);
        self.discard_raw(p.raw);
    }

    fn discard_raw(&self, raw: Option<TempFile>) {
        if let (Some(rd), Some(r)) = (&self.raw_dir, raw) {
            rd.discard(r);
        }
    }

    /// A write or rename failed. A failure of the directory itself (disk full, read-only,
    /// no permission) stops the run with one error; anything else fails just this frame.
    /// A full disk under a live input fails frames (counted `disk_full`) until space
    /// returns: a camera is not stopped for it.
    fn write_failed(&self, e: WriteError, context: FrameContext) {
        Stats::add(&self.stats.failed, 1);
        if self.cfg.input.is_live() && is_disk_full(&e) {
            Stats::add(&self.stats.failed_disk_full, 1);
            if !self.disk_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "input '{}': {e}: frames are counted as failed (disk_full) until space returns",
                    self.cfg.input.raw
                );
            }
            return;
        }
        let Some(fatal) = fatal_output_error(&e) else {
            self.log_failure(&context.failed(e));
            return;
        };
        if let Ok(mut slot) = self.output_error.lock()
            && slot.is_none()
        {
            *slot = Some(fatal);
            self.control.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Counts a failed frame and logs it.
    fn fail(&self, f: FrameFailure) {
        Stats::add(&self.stats.failed, 1);
        self.log_failure(&f);
    }

    /// Logs a failed frame: the first 10, then every 100th.
    fn log_failure(&self, f: &FrameFailure) {
        let n = self.error_lines.fetch_add(1, Ordering::Relaxed);
        if n < 10 || n.is_multiple_of(100) {
            let c = &f.context;
            tracing::error!(label = %c.label, seq = c.seq, pts_ms = c.pts_ms, "{f}");
        }
    }

    /// The context of frame `seq` of this stream.
    fn context(&self, seq: u64, pts_ms: i64) -> FrameContext {
        FrameContext {
            input: self.cfg.input.raw.clone(),
            label: self.cfg.label.clone(),
            seq,
            pts_ms,
            raw: false,
        }
    }
}

/// Where a frame came from, carried as a value in its errors (retina's `PacketContext`):
/// enough to find it again in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameContext {
    /// The input, as given (secrets redacted).
    pub input: String,
    /// The stream's label.
    pub label: String,
    /// The frame's sequence number among the frames handed to the workers (0-based).
    pub seq: u64,
    /// Its presentation time, ms.
    pub pts_ms: i64,
    /// The `--raw-dir` twin of the frame, not the filtered output.
    pub raw: bool,
}

impl FrameContext {
    /// The same frame's unfiltered twin.
    fn raw(mut self) -> FrameContext {
        self.raw = true;
        self
    }

    /// This frame failed with `error`.
    fn failed(self, error: impl Into<FrameError>) -> FrameFailure {
        FrameFailure {
            context: self,
            error: error.into(),
        }
    }
}

impl std::fmt::Display for FrameContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.raw { "raw frame" } else { "frame" };
        write!(
            f,
            "input '{}': {what} {} at {} ms",
            self.input, self.seq, self.pts_ms
        )
    }
}

/// One frame that failed, and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {error}")]
pub struct FrameFailure {
    pub context: FrameContext,
    #[source]
    pub error: FrameError,
}

/// Why one frame failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("filter: {0}")]
    Filter(#[from] FilterError),
    #[error("{0}")]
    Encode(#[from] EncodeError),
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("converting to RGB: {0}")]
    Convert(#[from] ConvertError),
    #[error("{0}")]
    Fused(#[from] FusedError),
    #[error("internal error (panic: {0})")]
    Panic(String),
    /// The template rendered a name that is no usable file name for this frame.
    #[error("{0}")]
    Name(#[from] crate::sink::naming::TemplateError),
    #[error("no free output name after 1000 attempts")]
    NoFreeName,
    /// It failed on a cluster worker, for this reason.
    #[error("{0}")]
    Remote(String),
}

/// Whether `e` is the output running out of space (or of quota).
fn is_disk_full(e: &WriteError) -> bool {
    use std::io::ErrorKind as K;
    let source = match e {
        WriteError::Write { source, .. }
        | WriteError::Rename { source, .. }
        | WriteError::Dir { source, .. } => source,
        WriteError::Exists { .. } => return false,
    };
    matches!(source.kind(), K::StorageFull | K::QuotaExceeded)
}

/// The directory-level failure behind `e`, if it is one (no space, quota, read-only
/// filesystem, no permission, directory gone): every further frame would fail the same
/// way. Returned as an error naming the directory.
fn fatal_output_error(e: &WriteError) -> Option<WriteError> {
    use std::io::ErrorKind as K;
    let (path, source) = match e {
        WriteError::Write { path, source } => (path, source),
        WriteError::Rename { to, source, .. } => (to, source),
        WriteError::Dir { .. } | WriteError::Exists { .. } => return None,
    };
    let fatal = matches!(
        source.kind(),
        K::StorageFull
            | K::QuotaExceeded
            | K::ReadOnlyFilesystem
            | K::PermissionDenied
            | K::NotFound
    );
    fatal.then(|| WriteError::Dir {
        path: path.parent().unwrap_or(path).to_path_buf(),
        source: std::io::Error::new(source.kind(), source.to_string()),
    })
}

/// Opens an output directory (creating it) and checks that a file can be written there,
/// so an unusable directory is one clear error before any frame is decoded for it.
fn open_output(path: &std::path::Path) -> Result<AtomicDir, WriteError> {
    let dir_error = |source: std::io::Error| WriteError::Dir {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() && !path.is_dir() {
        return Err(dir_error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "exists and is not a directory",
        )));
    }
    if let Err(e) = crate::sink::atomic::create_dirs(path) {
        return Err(dir_error(std::io::Error::new(
            e.kind(),
            format!("cannot create it: {e}"),
        )));
    }
    let dir = AtomicDir::open(path, false)?;
    match dir.write_temp("probe", b"") {
        Ok(t) => dir.discard(t),
        Err(WriteError::Write { source, .. }) => {
            return Err(dir_error(std::io::Error::new(
                source.kind(),
                format!("cannot write there: {source}"),
            )));
        }
        Err(e) => return Err(e),
    }
    Ok(dir)
}

/// Runs one stream to its end (or until `control.stop`), counting into `taps`.
pub fn run(cfg: &RunConfig, control: &Control, taps: &Taps) -> Result<RunOutcome, PipelineError> {
    let res = run_inner(cfg, control, taps);
    taps.stats.set_state(StreamState::Ended);
    res
}

fn run_inner(cfg: &RunConfig, control: &Control, taps: &Taps) -> Result<RunOutcome, PipelineError> {
    // Check the encoder can be built, and open the input, before touching the output.
    drop(Encoder::new(cfg.encode)?);
    taps.stats.set_state(StreamState::Starting);
    // A live network input that cannot be opened yet (a camera that is down, a stream not
    // yet published) is retried with the reconnect backoff, like one that was lost.
    let (mut source, first_error) = match Source::open(&cfg.input, &cfg.open, control.stop.clone())
    {
        Ok(s) => (Some(s), None),
        Err(_) if control.stop.load(Ordering::Relaxed) => {
            // Stopped while opening: a normal end for a live input, an interrupted job
            // for a file.
            return Ok(RunOutcome::empty(&taps.stats, true));
        }
        Err(e) if retries_open(cfg, &e) => (None, Some(e)),
        Err(e) => return Err(e.into()),
    };
    if source.is_some() {
        taps.stats.set_state(StreamState::Running);
    }
    let (dir, raw_dir, first_index) = open_outputs(cfg)?;
    let info = source.as_ref().map(|s| s.info().clone());
    if let Some(info) = &info {
        tracing::info!(
            input = %cfg.input.raw, format = %info.format, codec = %info.codec,
            width = info.width, height = info.height, pix_fmt = %info.pix_fmt,
            "opened input"
        );
    }
    if let Some(info) = &info {
        expect_frames(cfg, info, &taps.stats);
    }

    let workers = cfg.workers.max(1);
    let queue = cfg.queue.max(1);
    let pool = SlotPool::new(queue + workers + 1);
    let (tx, rx) = crossbeam_channel::bounded::<Frame>(queue + workers + 1);
    let shared = Shared::new(cfg, control, taps, dir, raw_dir, first_index);
    let mut damage = Damage::default();
    let source_error = std::thread::scope(
        |scope| -> Result<supervisor::Ended<SourceError>, PipelineError> {
            let mut handles = Vec::with_capacity(workers);
            for i in 0..workers {
                let rx = rx.clone();
                let pool = pool.clone();
                let shared = &shared;
                let h = std::thread::Builder::new()
                    .name(format!("ff-worker-{i}"))
                    .spawn_scoped(scope, move || worker(shared, rx, pool))
                    .map_err(PipelineError::Thread)?;
                handles.push(h);
            }
            let mut decoder = Decoder {
                shared: &shared,
                source: &mut source,
                pool: &pool,
                tx: &tx,
                rx: &rx,
                damage: &mut damage,
                state: DecodeState {
                    select: Selector::new(&cfg.sampling),
                    ..DecodeState::default()
                },
            };
            let res = supervisor::supervise(
                &mut decoder,
                first_error.map_or(Ok(()), Err),
                &cfg.reconnect,
                cfg.input.kind == crate::source::InputKind::Network,
                &SystemClock,
                &mut Backoff::default(),
                &control.stop,
            );
            drop(tx);
            for h in handles {
                let _ = h.join();
            }
            Ok(res)
        },
    )?;
    if let Some(source) = &source {
        damage.add(source.damage());
    }
    Ok(shared.outcome(first_index, damage, source_error))
}

/// Opens the output (and raw) directory and finds where numbering continues: after the
/// highest index already in either (or 0 with `--overwrite`).
fn open_outputs(cfg: &RunConfig) -> Result<(AtomicDir, Option<AtomicDir>, u64), PipelineError> {
    let dir = open_output(&cfg.out_dir)?;
    let raw_dir = cfg
        .raw_dir
        .as_deref()
        .map(|p| {
            open_output(p).map_err(|e| match e {
                WriteError::Dir { path, source } => PipelineError::RawDir {
                    path,
                    reason: source.to_string(),
                },
                other => PipelineError::Output(other),
            })
        })
        .transpose()?;
    let ext = cfg.encode.format.extension();
    let first_index = if cfg.overwrite {
        0
    } else {
        std::iter::once(&cfg.out_dir)
            .chain(cfg.raw_dir.as_ref())
            .filter_map(|d| cfg.template.highest_existing_index(d, ext))
            .max()
            .map_or(0, |i| i + 1)
    };
    Ok((dir, raw_dir, first_index))
}

/// A file input's expected frame count (for progress), from its duration and rate.
fn expect_frames(cfg: &RunConfig, info: &crate::source::StreamInfo, stats: &Stats) {
    if !cfg.input.is_live()
        && let (Some(d), Some(r)) = (info.duration, info.frame_rate)
        && d.is_finite()
        && r.is_finite()
    {
        let total = (d * r).round().max(0.0) as u64;
        let s = &cfg.sampling;
        let skipped = s.start.map_or(0.0, |st| st * r).round() as u64;
        let mut expected = total.saturating_sub(skipped);
        if let Some(dur) = s.duration {
            expected = expected.min((dur * r).round() as u64);
        }
        stats.expected_frames.store(expected, Ordering::Relaxed);
    }
}

impl<'a> Shared<'a> {
    fn new(
        cfg: &'a RunConfig,
        control: &Control,
        taps: &Taps,
        dir: AtomicDir,
        raw_dir: Option<AtomicDir>,
        first_index: u64,
    ) -> Shared<'a> {
        Shared {
            cfg,
            dir,
            raw_dir,
            stats: taps.stats.clone(),
            preview: taps.preview.clone(),
            commit: Mutex::new(Committer {
                next_seq: 0,
                next_index: first_index,
                pending: BTreeMap::new(),
                kept: Committer::earlier_outputs(cfg),
                last: None,
            }),
            control: control.clone(),
            error_lines: AtomicU64::new(0),
            output_error: Mutex::new(None),
            workers_yield: AtomicBool::new(false),
            disk_full: AtomicBool::new(false),
        }
    }

    /// How the run ended, once nothing more is committed.
    fn outcome(
        self,
        first_index: u64,
        damage: Damage,
        ended: supervisor::Ended<SourceError>,
    ) -> RunOutcome {
        let cfg = self.cfg;
        let stats = self.stats.clone();
        Stats::add(
            &stats.decode_errors,
            damage.decode_errors + damage.corrupt_frames,
        );
        if self.commit.is_poisoned() {
            // Frames the failed committer held were never renamed: their temporary files go.
            for d in std::iter::once(&cfg.out_dir).chain(cfg.raw_dir.as_ref()) {
                crate::sink::atomic::remove_own_temps(d);
            }
        }
        let report = Report::new(vec![stats.snapshot()]);
        let output_error = self
            .output_error
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let supervisor::Ended { error, stopped } = ended;
        RunOutcome {
            report,
            // Stopping for an output failure is not the input's fault.
            source_error: error.filter(|_| output_error.is_none()),
            first_index,
            damage,
            stopped_early: stopped && output_error.is_none(),
            output_error,
        }
    }
}

/// The committing half of a run, for frames filtered and encoded elsewhere (the
/// cluster's workers): outputs handed over in any order are named and renamed in `seq`
/// order, exactly as a local run's workers' are — same names, same atomic renames,
/// `--keep-last`, `--raw-dir`, numbering continuation.
pub struct Committing<'s, 'a> {
    shared: &'s Shared<'a>,
    /// A name of the right extension for temporary files.
    provisional: String,
}

impl std::fmt::Debug for Committing<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committing")
            .field("input", &self.shared.cfg.input.raw)
            .finish()
    }
}

impl Committing<'_, '_> {
    /// The run's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The stop flag (a signal, or a fatal output error).
    pub fn stop(&self) -> &AtomicBool {
        &self.shared.control.stop
    }

    /// Frame `seq` (at `pts_ms`), encoded: `filtered` is its output, `raw` its unfiltered
    /// twin for `--raw-dir`. Written to temporary files now, renamed in `seq` order. Its
    /// latency counts from `since` (when its data arrived).
    pub fn deliver(
        &self,
        seq: u64,
        pts_ms: i64,
        filtered: &[u8],
        raw: Option<&[u8]>,
        since: Instant,
    ) {
        let shared = self.shared;
        let context = shared.context(seq, pts_ms);
        let raw = match (&shared.raw_dir, raw) {
            (Some(rd), Some(bytes)) => match rd.write_temp(&self.provisional, bytes) {
                Ok(t) => Some(t),
                Err(e) => {
                    shared.write_failed(e, context.clone().raw());
                    None
                }
            },
            _ => None,
        };
        match shared.dir.write_temp(&self.provisional, filtered) {
            Ok(temp) => shared.finish(
                seq,
                Some(Pending {
                    temp,
                    raw,
                    seq,
                    pts_ms,
                    decoded_at: since,
                }),
            ),
            Err(e) => {
                shared.discard_raw(raw);
                shared.write_failed(e, context);
                shared.finish(seq, None);
            }
        }
    }

    /// Frame `seq` failed where it was made: counted and logged as a failed frame.
    pub fn failed(&self, seq: u64, pts_ms: i64, why: String) {
        let shared = self.shared;
        shared.fail(shared.context(seq, pts_ms).failed(FrameError::Remote(why)));
        shared.finish(seq, None);
    }

    /// Frame `seq` was dropped on purpose (`--overload`): counted as a drop.
    pub fn dropped(&self, seq: u64, reason: DropReason) {
        self.shared.stats.dropped(reason);
        self.shared.finish(seq, None);
    }
}

/// How a run whose frames were made elsewhere ended, as its body reports it.
#[derive(Debug, Default)]
pub struct RemoteEnd {
    /// The input failure that ended it, if any.
    pub error: Option<SourceError>,
    /// Ended by the stop flag before the input ended or the limits were reached.
    pub stopped: bool,
}

/// Runs one stream whose frames are decoded, filtered and encoded elsewhere: opens the
/// outputs as [`run`] does, then `body` hands the finished frames to the
/// [`Committing`] it gets (in any order; every `seq` from 0 up to the last it used must
/// be delivered, failed or dropped).
pub fn run_remote(
    cfg: &RunConfig,
    control: &Control,
    taps: &Taps,
    body: impl FnOnce(&Committing<'_, '_>) -> RemoteEnd,
) -> Result<RunOutcome, PipelineError> {
    drop(Encoder::new(cfg.encode)?);
    taps.stats.set_state(StreamState::Starting);
    let (dir, raw_dir, first_index) = open_outputs(cfg)?;
    let shared = Shared::new(cfg, control, taps, dir, raw_dir, first_index);
    let provisional = provisional_name(cfg);
    let end = body(&Committing {
        shared: &shared,
        provisional,
    });
    taps.stats.set_state(StreamState::Ended);
    let ended = supervisor::Ended {
        error: end.error,
        stopped: end.stopped,
    };
    Ok(shared.outcome(first_index, Damage::default(), ended))
}

/// A name of the right extension for a stream's temporary files (the real name is given
/// at commit time).
fn provisional_name(cfg: &RunConfig) -> String {
    cfg.template.render(&NameValues {
        index: 0,
        pts_ms: 0,
        time: "t",
        stream: &cfg.label,
        stem: "s",
        ext: cfg.encode.format.extension(),
    })
}

impl RunOutcome {
    /// A run that ended before its input was ever opened.
    fn empty(stats: &Stats, stopped_early: bool) -> RunOutcome {
        RunOutcome {
            report: Report::new(vec![stats.snapshot()]),
            source_error: None,
            first_index: 0,
            damage: Damage::default(),
            output_error: None,
            stopped_early,
        }
    }
}

/// Whether a failure to open `cfg`'s input is retried (reconnect on, a live network
/// input) rather than ending the run. Only what no retry can mend ends it: an input
/// spelled wrong (`SpecError`), a protocol or demuxer this FFmpeg lacks.
fn retries_open(cfg: &RunConfig, e: &SourceError) -> bool {
    let network = cfg.input.kind == crate::source::InputKind::Network;
    network && cfg.reconnect.enabled && e.is_transient()
}

/// What the decoder carries from one connection to the next.
#[derive(Debug, Default)]
struct DecodeState {
    /// Frames accepted so far (the next frame's `seq`).
    seq: u64,
    /// Which frames `--start`, `--duration`, `--every` and `--fps` select.
    select: Selector,
    /// Frames decoded on the current connection.
    decoded_here: u64,
    /// First pts of the current connection.
    first_pts: Option<i64>,
    /// Stream time (ms) at which the current connection started.
    pts_offset: f64,
    /// Stream time (ms) of the last frame.
    last_rel_ms: f64,
    /// `--start` on a file: where the seek to the keyframe before it stands.
    seek: StartSeek,
    /// Live inputs: (wall time, stream time in ms) of the frame that was most on time on
    /// this connection; the live lag is measured from it.
    edge: Option<(Instant, f64)>,
}

/// Seeking for `--start` on a file: decode the first frame (it fixes stream time 0, as
/// without seeking), jump to the keyframe at or before the start, decode on from there.
/// If the jump lands after the start (an index that lies), go back to the beginning and
/// decode everything: the frames written are the same either way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum StartSeek {
    /// Not tried yet.
    #[default]
    Pending,
    /// Jumped; the next frame tells whether the jump was early enough.
    Jumped,
    /// Done (or not wanted, or the input cannot seek).
    Settled,
}

/// Which frames the sampling settings select, decided one frame at a time in
/// presentation order from its stream time (ms since the first frame). The decode loop
/// and the cluster's chunker both decide with it, so they select the same frames.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    start_ms: f64,
    end_ms: Option<f64>,
    every: Option<u64>,
    fps: Option<f64>,
    /// Frames at or after the start considered by `every` (selected or not).
    considered: u64,
    next_fps_ms: Option<f64>,
}

impl Selector {
    pub fn new(s: &Sampling) -> Selector {
        let start_ms = s.start.unwrap_or(0.0) * 1000.0;
        Selector {
            start_ms,
            end_ms: s.duration.map(|d| start_ms + d * 1000.0),
            every: s.every,
            fps: s.fps,
            considered: 0,
            next_fps_ms: None,
        }
    }

    /// Whether a frame at `rel_ms` is past the end of the selection (`--duration`):
    /// nothing from here on is selected.
    pub fn past_end(&self, rel_ms: f64) -> bool {
        self.end_ms.is_some_and(|end| rel_ms >= end)
    }

    /// Selects the next frame (at `rel_ms`, not past the end) or says why not.
    pub fn pick(&mut self, rel_ms: f64) -> Option<SkipReason> {
        if rel_ms < self.start_ms {
            return Some(SkipReason::Start);
        }
        self.considered += 1;
        if let Some(n) = self.every
            && !(self.considered - 1).is_multiple_of(n.max(1))
        {
            return Some(SkipReason::Every);
        }
        if let Some(fps) = self.fps {
            let step = 1000.0 / fps;
            let next = *self.next_fps_ms.get_or_insert(rel_ms);
            if rel_ms + 1e-6 < next {
                return Some(SkipReason::Fps);
            }
            // Next tick after this frame, on the grid anchored at the first selected one.
            let ticks = ((rel_ms - next) / step).floor() + 1.0;
            self.next_fps_ms = Some(next + ticks * step);
        }
        None
    }
}

/// Below this, `--start` just decodes from the beginning (a seek is not worth it).
const SEEK_MIN_MS: f64 = 1000.0;

impl DecodeState {
    /// A new connection: its timestamps start over; stream time continues.
    fn reconnected(&mut self, gap_ms: f64) {
        self.first_pts = None;
        self.pts_offset = self.last_rel_ms + gap_ms;
        self.edge = None;
        self.decoded_here = 0;
    }
}

/// Runs the decoder over one connection; returns why it ended. Frames are selected
/// (`--start`, `--every`, `--fps`; counted as skipped otherwise) and queued under the
/// overload policy (counted as dropped when it discards them).
fn decode_loop(
    shared: &Shared<'_>,
    source: &mut Source,
    pool: &SlotPool,
    tx: &Sender<Frame>,
    rx: &Receiver<Frame>,
    state: &mut DecodeState,
) -> (EndCause, Option<SourceError>) {
    let cfg = shared.cfg;
    let stats = &shared.stats;
    let s = &cfg.sampling;
    let stop = &shared.control.stop;
    let live = cfg.input.is_live();
    let start_ms = s.start.unwrap_or(0.0) * 1000.0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return (EndCause::Stopped, None);
        }
        if s.max_frames.is_some_and(|m| state.seq >= m) {
            return (EndCause::Finished, None);
        }
        let next = source.next_frame();
        let skipped = source.take_skipped_packets();
        if skipped > 0 {
            stats.skipped(SkipReason::Keyframes, skipped);
        }
        let meta = match next {
            Ok(Some(m)) => m,
            Ok(None) if stop.load(Ordering::Relaxed) => return (EndCause::Stopped, None),
            Ok(None) => return (EndCause::EndOfStream, None),
            Err(e) => return (EndCause::Failed, Some(e)),
        };
        state.decoded_here += 1;
        Stats::add(&stats.decoded, 1);
        // Stream time from the first frame, continued across reconnects.
        let first = *state.first_pts.get_or_insert(meta.pts_ms);
        let rel_ms = (meta.pts_ms - first) as f64 + state.pts_offset;
        state.last_rel_ms = rel_ms;
        if live {
            let now = Instant::now();
            let (t0, r0) = *state.edge.get_or_insert((now, rel_ms));
            let behind_ms = (now - t0).as_secs_f64() * 1000.0 - (rel_ms - r0);
            if behind_ms < 0.0 {
                // Earlier than ever: the stream's clock is anchored here from now on.
                state.edge = Some((now, rel_ms));
            }
            stats.live_lag(Duration::from_secs_f64(behind_ms.max(0.0) / 1000.0));
            // With `block` the decoder waits for the workers on purpose: its lag is the
            // policy's, not starvation, and the workers must not be slowed for it.
            if cfg.overload != Overload::Block
                && behind_ms > YIELD_AFTER_LAG_MS
                && !shared.workers_yield.swap(true, Ordering::Relaxed)
            {
                tracing::info!(
                    input = %cfg.input.raw,
                    "decoder {behind_ms:.0} ms behind the stream: workers yield to it from now on"
                );
            }
        }
        if state.select.past_end(rel_ms) {
            // Past the end of the selection: not part of this run.
            source.start_drain();
            return (EndCause::Finished, None);
        }
        match state.seek {
            StartSeek::Pending if !live && rel_ms + SEEK_MIN_MS < start_ms => {
                let target = first.saturating_add(start_ms as i64);
                state.seek = match source.seek_ms(target) {
                    Ok(true) => StartSeek::Jumped,
                    _ => StartSeek::Settled,
                };
                stats.skipped(SkipReason::Start, 1);
                continue;
            }
            StartSeek::Jumped if rel_ms > start_ms => {
                // Landed past the start: the frames between would be lost. Decode from
                // the beginning instead (the first frame again: not counted twice).
                tracing::debug!(input = %cfg.input.raw, "seek overshot to {rel_ms} ms: decoding from the start");
                state.seek = StartSeek::Settled;
                if !matches!(source.seek_ms(first), Ok(true)) {
                    return (
                        EndCause::Failed,
                        Some(SourceError::Read {
                            input: cfg.input.raw.clone(),
                            frames: state.decoded_here,
                            reason: format!(
                                "cannot seek back to the beginning after the seek to {} overshot",
                                crate::setting::Setting::Start
                            ),
                        }),
                    );
                }
                continue;
            }
            _ => state.seek = StartSeek::Settled,
        }
        if let Some(reason) = state.select.pick(rel_ms) {
            stats.skipped(reason, 1);
            continue;
        }
        // A live frame is due when its stream time has passed on the wall clock, counted
        // from the moment the stream was most on time (the live edge); a drop policy
        // drops only once it is DROP_GRACE late. Never from a later moment (such as the
        // last time a slot happened to be free): each such reset let the pipeline fall
        // another DROP_GRACE behind, seconds after a minute of a slow chain.
        let due = state.edge.map(|(t0, r0)| {
            t0 + Duration::from_secs_f64((rel_ms - r0).max(0.0) / 1000.0) + DROP_GRACE
        });
        let slot = acquire(shared, pool, rx, due);
        let Some(slot) = slot else { continue };
        let frame = Frame {
            seq: state.seq,
            pts_ms: meta.pts_ms,
            key: meta.key,
            decoded_at: Instant::now(),
            pic: source.take_picture(),
            slot,
        };
        state.seq += 1;
        if let Err(e) = tx.send(frame) {
            // All workers are gone (cannot happen while we hold the channel open).
            pool.put(e.into_inner().slot);
            return (EndCause::Finished, None);
        }
        stats.queue_depth.store(tx.len() as u64, Ordering::Relaxed);
    }
}

/// The decoder of one stream as the supervisor sees it: the source it (re)opens, and
/// what the decode loop carries from one connection to the next.
struct Decoder<'s, 'a> {
    shared: &'s Shared<'a>,
    source: &'s mut Option<Source>,
    pool: &'s SlotPool,
    tx: &'s Sender<Frame>,
    rx: &'s Receiver<Frame>,
    damage: &'s mut Damage,
    state: DecodeState,
}

impl supervisor::Supervised for Decoder<'_, '_> {
    type Error = SourceError;

    fn name(&self) -> &str {
        &self.shared.cfg.input.raw
    }

    fn connect(&mut self) -> Result<(), SourceError> {
        let cfg = self.shared.cfg;
        self.state.decoded_here = 0;
        // Close the old connection before opening the new one: an input frameflow listens
        // on (`udp://`, `rtp://`, `tcp://…?listen=1`, SRT listener) still holds its port
        // until then, and the reopen would fail with "Address already in use" for ever.
        if let Some(old) = self.source.take() {
            self.damage.add(old.damage());
            drop(old);
        }
        let s = Source::open(&cfg.input, &cfg.open, self.shared.control.stop.clone())?;
        *self.source = Some(s);
        Ok(())
    }

    fn is_transient(&self, e: &SourceError) -> bool {
        e.is_transient()
    }

    fn run(&mut self) -> supervisor::Session<SourceError> {
        let Some(source) = self.source.as_mut() else {
            return supervisor::Session {
                cause: EndCause::Finished,
                error: None,
                delivered: false,
            };
        };
        let (cause, error) = decode_loop(
            self.shared,
            source,
            self.pool,
            self.tx,
            self.rx,
            &mut self.state,
        );
        supervisor::Session {
            cause,
            error,
            delivered: self.state.decoded_here > 0,
        }
    }

    fn event(&mut self, event: supervisor::Event) {
        let stats = &self.shared.stats;
        match event {
            supervisor::Event::Waiting { reconnecting, .. } => stats.set_state(if reconnecting {
                StreamState::Reconnecting
            } else {
                StreamState::Connecting
            }),
            supervisor::Event::Connected { gap } => {
                Stats::add(&stats.reconnects, 1);
                stats.set_state(StreamState::Running);
                if let Some(gap) = gap {
                    self.state.reconnected(gap.as_secs_f64() * 1000.0);
                }
            }
        }
    }
}

/// How late a live frame may get before a drop policy discards frames. Bursts — such as
/// the frames a live input buffered while it was being probed — are absorbed rather than
/// dropped; a sink that stays slower than the stream has frames dropped, which keeps the
/// pipeline within this bound of the live edge.
pub const DROP_GRACE: Duration = Duration::from_millis(1000);

/// A free slot for the next frame, under the overload policy. `None` means the frame is
/// not to be handed over: dropped (counted here) or the run is stopping. `due` is when a live frame becomes overdue; `None` (files) means a
/// drop policy drops as soon as no slot is free.
fn acquire(
    shared: &Shared<'_>,
    pool: &SlotPool,
    rx: &Receiver<Frame>,
    due: Option<Instant>,
) -> Option<Slot> {
    let policy = shared.cfg.overload;
    let tick = Duration::from_millis(50);
    if let Some(b) = pool.try_get() {
        return Some(b);
    }
    loop {
        if shared.control.stop.load(Ordering::Relaxed) {
            return None;
        }
        let now = Instant::now();
        let overdue = due.is_none_or(|d| now >= d);
        if policy != Overload::Block && overdue {
            if policy == Overload::DropNewest {
                shared.stats.dropped(DropReason::DropNewest);
                return None;
            }
            if let Ok(old) = rx.try_recv() {
                shared.stats.dropped(DropReason::DropOldest);
                shared.finish(old.seq, None);
                return Some(old.slot);
            }
            // Every slot is inside a worker: wait for one to come back.
        }
        let wait = match due {
            Some(d) if policy != Overload::Block && !overdue => d
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), tick),
            _ => tick,
        };
        if let Some(b) = pool.get_timeout(wait) {
            return Some(b);
        }
    }
}

/// A worker's reusable state: converter, RGB buffer, filter scratch, encoders.
struct WorkerState {
    conv: Converter,
    /// The whole picture in RGB (plain path).
    rgb: FrameBuf,
    scratch: Scratch,
    encoder: Encoder,
    /// The strip-by-strip path, when the chain and format allow it.
    fused: Option<Fused>,
    preview_enc: PreviewEncoder,
    /// A name of the right extension for temporary files (the real name is given at
    /// commit time).
    provisional: String,
}

impl WorkerState {
    fn new(cfg: &RunConfig) -> Result<WorkerState, EncodeError> {
        WorkerState::with(&cfg.chain, cfg.encode, provisional_name(cfg))
    }

    fn with(
        chain: &Chain,
        encode: EncodeOptions,
        provisional: String,
    ) -> Result<WorkerState, EncodeError> {
        let encoder = Encoder::new(encode)?;
        let fused = match chain.row_filter() {
            Some(filter)
                if encode.format == ImageFormat::Jpeg
                    && chain.output_mode(Mode::Rgb).ok() == Some(Mode::Rgb) =>
            {
                Some(Fused::new(filter, encode.quality)?)
            }
            _ => None,
        };
        Ok(WorkerState {
            conv: Converter::default(),
            rgb: FrameBuf::default(),
            scratch: Scratch::default(),
            encoder,
            fused,
            preview_enc: PreviewEncoder::default(),
            provisional,
        })
    }
}

/// Filters and encodes frames decoded elsewhere than in a [`run`] (a cluster worker):
/// the same converter, strip-fused path, filter and encoder a local run's workers use,
/// so the bytes are the same.
pub struct Renderer {
    chain: Chain,
    chain_text: String,
    encode: EncodeOptions,
    st: WorkerState,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("encode", &self.encode)
            .finish()
    }
}

/// A frame's encoded outputs.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The filtered output.
    pub filtered: Vec<u8>,
    /// The unfiltered frame, encoded the same way (when asked for).
    pub raw: Option<Vec<u8>>,
}

impl Renderer {
    /// A renderer for the chain `chain_text` (as `-f` takes it) and `encode`.
    pub fn new(chain_text: &str, encode: EncodeOptions) -> Result<Renderer, FrameError> {
        let chain = Chain::parse(chain_text)
            .map_err(|e| FrameError::Remote(format!("-f '{chain_text}': {e}")))?;
        let st = WorkerState::with(&chain, encode, String::new())?;
        Ok(Renderer {
            chain,
            chain_text: chain_text.to_string(),
            encode,
            st,
        })
    }

    /// The filter chain and encoding this renderer applies.
    pub fn is_for(&self, chain: &str, encode: EncodeOptions) -> bool {
        self.chain_text == chain && self.encode == encode
    }

    /// Converts, filters and encodes `pic` (and encodes it unfiltered too with `raw`).
    pub fn render(&mut self, pic: &Picture, raw: bool) -> Result<Rendered, FrameError> {
        let st = &mut self.st;
        if let Some(fused) = st.fused.as_mut()
            && !raw
            && st.conv.strips_exact(pic)?
        {
            let bytes = fused.encode(pic, &mut st.conv)?;
            return Ok(Rendered {
                filtered: bytes.to_vec(),
                raw: None,
            });
        }
        st.conv.convert(pic, &mut st.rgb)?;
        let raw = if raw {
            Some(st.encoder.encode(st.rgb.image())?.to_vec())
        } else {
            None
        };
        let img = self.chain.apply(st.rgb.image(), &mut st.scratch)?;
        let filtered = st.encoder.encode(img)?.to_vec();
        Ok(Rendered { filtered, raw })
    }
}

/// How much lower (nice) a live input's workers run than its decode thread once the
/// decoder has fallen [`YIELD_AFTER_LAG_MS`] behind the stream. When the workers are the
/// slow side they would otherwise take the cores the decoder needs to keep up (with it
/// starved, drops come too late and the pipeline drifts seconds behind the live edge);
/// at this difference the scheduler gives the decoder (and libavcodec's threads, which it
/// starts) about 2.4 times a worker's share whenever it has work. Only then: a pipeline
/// that keeps up competes with other processes as before. One way: an unprivileged
/// process cannot raise a thread's priority again.
const LIVE_WORKER_NICE: libc::c_int = 4;

/// How far (ms) behind the stream's clock a live decoder may fall before the workers
/// yield to it. Well under `DROP_GRACE`, so drops still come in time.
const YIELD_AFTER_LAG_MS: f64 = 250.0;

fn worker(shared: &Shared<'_>, rx: Receiver<Frame>, pool: SlotPool) {
    let mut yielded = false;
    let mut st = match WorkerState::new(shared.cfg) {
        Ok(st) => st,
        Err(e) => {
            tracing::error!("cannot start encoder: {e}");
            // Still drain the queue so the decoder never blocks forever.
            for f in rx {
                pool.put(f.slot);
                shared.finish(f.seq, None);
            }
            return;
        }
    };
    for frame in rx.iter() {
        if !yielded && shared.workers_yield.load(Ordering::Relaxed) {
            crate::runtime::lower_this_thread(LIVE_WORKER_NICE);
            yielded = true;
        }
        shared
            .stats
            .queue_depth
            .store(rx.len() as u64, Ordering::Relaxed);
        let Frame {
            seq,
            pts_ms,
            decoded_at,
            pic,
            slot,
            ..
        } = frame;
        if shared.control.abort.load(Ordering::Relaxed) {
            drop(pic);
            pool.put(slot);
            shared.finish(seq, None);
            continue;
        }
        // A panic in a filter or an encoder fails this frame, not the run: the worker
        // starts over with fresh state (a half-used encoder is not to be trusted).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process(shared, &mut st, pic, seq, pts_ms)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            if let Ok(fresh) = WorkerState::new(shared.cfg) {
                st = fresh;
            }
            Err(FrameError::Panic(what))
        });
        pool.put(slot);
        match result {
            Ok((temp, raw)) => shared.finish(
                seq,
                Some(Pending {
                    temp,
                    raw,
                    seq,
                    pts_ms,
                    decoded_at,
                }),
            ),
            Err(FrameError::Write(e)) => {
                shared.write_failed(e, shared.context(seq, pts_ms));
                shared.finish(seq, None);
            }
            Err(e) => {
                shared.fail(shared.context(seq, pts_ms).failed(e));
                shared.finish(seq, None);
            }
        }
    }
}

/// Deterministic failure points for tests, in debug builds only (release builds compile
/// them to nothing): with `NAME=N` in the environment, the point named NAME panics when it
/// handles the frame of sequence number N. `FRAMEFLOW_TEST_PANIC_IN_WORKER` (a filter or
/// encoder that panics: that frame fails, the run goes on) and
/// `FRAMEFLOW_TEST_PANIC_IN_COMMIT` (the committer panics holding its lock: the run stops
/// with an error instead of silently committing nothing more). Used by
/// `tests/hardening.rs`. `FRAMEFLOW_TEST_PANIC_IN_CHUNK` (a cluster worker that dies on
/// chunk N, every time: `tests/cluster.rs`).
pub(crate) mod test_hook {
    #[cfg(debug_assertions)]
    pub fn panic_at(name: &str, seq: u64) {
        if std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()) == Some(seq) {
            panic!("{name}: test panic at frame {seq}");
        }
    }

    #[cfg(not(debug_assertions))]
    #[inline(always)]
    pub fn panic_at(_name: &str, _seq: u64) {}
}

/// Converts, filters, encodes and writes one frame to a temporary file (and its raw
/// twin with `--raw-dir`), feeding the preview on the way.
fn process(
    shared: &Shared<'_>,
    st: &mut WorkerState,
    pic: Picture,
    seq: u64,
    pts_ms: i64,
) -> Result<(TempFile, Option<TempFile>), FrameError> {
    test_hook::panic_at("FRAMEFLOW_TEST_PANIC_IN_WORKER", seq);
    let cfg = shared.cfg;
    let preview = shared.preview.as_deref();
    let raw_due = preview.is_some_and(|p| p.due(Feed::Raw));
    if let Some(fused) = st.fused.as_mut()
        && shared.raw_dir.is_none()
        && !raw_due
        && st.conv.strips_exact(&pic)?
    {
        let (width, height) = (pic.width(), pic.height());
        let bytes = fused.encode(&pic, &mut st.conv)?;
        drop(pic);
        if let Some(p) = preview
            && p.due(Feed::Processed)
        {
            p.publish_jpeg(Feed::Processed, bytes, width, height, seq, pts_ms);
        }
        return Ok((shared.dir.write_temp(&st.provisional, bytes)?, None));
    }
    st.conv.convert(&pic, &mut st.rgb)?;
    drop(pic);
    let WorkerState {
        rgb,
        scratch,
        encoder,
        preview_enc,
        provisional,
        ..
    } = st;
    // With --raw-dir, the unfiltered frame too, encoded the same way.
    let raw = match &shared.raw_dir {
        None => None,
        Some(rd) => {
            let bytes = encoder.encode(rgb.image())?;
            Some(rd.write_temp(provisional, bytes)?)
        }
    };
    if let Some(p) = preview
        && raw_due
    {
        preview_enc.publish_image(p, Feed::Raw, rgb.image(), seq, pts_ms);
    }
    let filtered = (|| -> Result<TempFile, FrameError> {
        let img = cfg.chain.apply(rgb.image(), scratch)?;
        let bytes = encoder.encode(img)?;
        if let Some(p) = preview
            && p.due(Feed::Processed)
        {
            if cfg.encode.format == ImageFormat::Jpeg {
                p.publish_jpeg(
                    Feed::Processed,
                    bytes,
                    img.width(),
                    img.height(),
                    seq,
                    pts_ms,
                );
            } else {
                preview_enc.publish_image(p, Feed::Processed, img, seq, pts_ms);
            }
        }
        Ok(shared.dir.write_temp(provisional, bytes)?)
    })();
    match filtered {
        Ok(temp) => Ok((temp, raw)),
        Err(e) => {
            shared.discard_raw(raw);
            Err(e)
        }
    }
}
