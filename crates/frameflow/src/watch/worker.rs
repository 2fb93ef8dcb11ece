//! One input file, start to finish: read, recognise an earlier output, validate, filter,
//! encode, write durably, then dispose of the input.

use super::check::{Incomplete, complete_image};
use super::fsops::{self, MAX_VARIANTS};
use super::{Disposal, WatchConfig};
use crate::batch::{ImageJob, Refusal};
use crate::runtime::stats::Stats;
use crate::sink::atomic::{AtomicDir, Replace, WriteError};
use crate::sink::encode::{EncodeError, EncoderSet, ImageFormat};
use crate::sink::naming::{NameValues, TemplateError};
use crate::source::still::StillDecoder;
use crossbeam_channel::{Receiver, Sender, bounded};
use frameflow_filters::{FilterError, ImageBuf, Scratch};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Size and mtime of an input when it was read: a change means the writer is active.
pub type Sig = (u64, SystemTime);

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    /// Output durably in place, input disposed of.
    Written(PathBuf),
    /// An earlier run (killed before disposing of the input) had made the output.
    AlreadyDone(PathBuf),
    /// Gone before it could be opened.
    Vanished,
    /// Not (yet) a whole image; `busy` when a writer still has it open.
    Incomplete {
        reason: Incomplete,
        sig: Option<Sig>,
        busy: bool,
    },
    /// Unusable whatever happens next: goes to the failed directory.
    Unusable(InputProblem),
    /// The output could not be written, or the input could not be disposed of; the input
    /// stays where it is.
    Stuck(InputProblem),
    /// The file under this name was replaced while we worked: look at it again.
    Replaced,
}

/// Why the hot folder could not make an input's output (now, or at all).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputProblem {
    /// Not to be read at all.
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    #[error("no modification time: {0}")]
    NoMtime(#[source] io::Error),
    /// The output name it would get is no usable name.
    #[error("{0}")]
    Name(#[from] TemplateError),
    /// Given up on: it stayed incomplete.
    #[error("{0}")]
    Incomplete(#[from] Incomplete),
    #[error("{0}")]
    Filter(#[from] FilterError),
    #[error("{0}")]
    Encode(#[from] EncodeError),
    /// Writing the output or disposing of the input failed.
    #[error("{0}")]
    Step(#[from] StepError),
    /// The output is in place; disposing of the input failed.
    #[error("output {} written, but: {source}", written.display())]
    Disposal {
        written: PathBuf,
        #[source]
        source: StepError,
    },
}

/// A step that failed, with the file and the step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{}: {step}: {source}", path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Write { path: PathBuf, source: WriteError },
}

/// The compute half of one input: read, recognise an earlier output, check, decode,
/// filter, encode. One per worker thread; it keeps its buffers (file bytes, decoded
/// image, filter scratch, encoder output) and its libjpeg-turbo handles between inputs,
/// so a stream of same-sized images allocates nothing per image.
pub struct Worker<'a> {
    cfg: &'a WatchConfig,
    stats: &'a Stats,
    scratch: Scratch,
    encoders: EncoderSet,
    decoder: StillDecoder,
    data: Vec<u8>,
    img: ImageBuf,
    recycled: &'a Recycler,
}

/// What the worker hands on.
pub enum Step {
    /// Nothing to write: the outcome is final.
    Done(Outcome),
    /// An encoded output for a [`Writer`] to put durably in place.
    Write(Box<Pending>),
}

/// An encoded output waiting to be written, and what is needed to dispose of its input.
pub struct Pending {
    path: PathBuf,
    rel: PathBuf,
    meta: fs::Metadata,
    out_rel: String,
    first_free: u32,
    bytes: Vec<u8>,
    mtime: SystemTime,
    started: Instant,
}

/// Output byte buffers handed back by the writers for the workers to fill again.
pub struct Recycler {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl Recycler {
    pub fn new(capacity: usize) -> Recycler {
        let (tx, rx) = bounded(capacity.max(1));
        Recycler { tx, rx }
    }

    fn take(&self) -> Vec<u8> {
        self.rx.try_recv().unwrap_or_default()
    }

    fn give(&self, mut v: Vec<u8>) {
        v.clear();
        let _ = self.tx.try_send(v);
    }
}

/// The I/O half of one input: temp file, mark, fsync, rename, fsync of the directory,
/// then disposal of the input. Runs on its own threads, so that workers keep the cores
/// busy while outputs are synced.
pub struct Writer<'a> {
    cfg: &'a WatchConfig,
    stage: &'a AtomicDir,
    commit: &'a AtomicDir,
    stats: &'a Stats,
    recycled: &'a Recycler,
}

/// The output name (relative to the output directory) of input `rel`, checked after
/// rendering like every writer's (it stays inside the output directory); the reason
/// when it would not.
pub fn output_rel(
    job: &ImageJob,
    rel: &Path,
    format: ImageFormat,
) -> Result<String, TemplateError> {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let name = job.template.render_checked(&NameValues {
        index: 0,
        pts_ms: 0,
        time: "",
        stream: "watch",
        stem: &stem,
        ext: format.extension(),
    })?;
    Ok(match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => format!("{}/{name}", dir.to_string_lossy()),
        None => name,
    })
}

/// Where an earlier run put the output of an input with this mtime, if it did: the
/// name or one of its `-N` variants carrying the input's mtime. Otherwise the first
/// variant that is free.
pub enum Existing {
    Done(PathBuf),
    FirstFree(u32),
}

pub fn find_existing(out_dir: &Path, rel: &str, mtime: SystemTime) -> Existing {
    for k in 0..MAX_VARIANTS {
        let p = out_dir.join(fsops::variant(rel, k));
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() && fsops::is_output_of(&m, mtime) => return Existing::Done(p),
            Ok(_) => continue,
            Err(_) => return Existing::FirstFree(k),
        }
    }
    Existing::FirstFree(MAX_VARIANTS)
}

/// Reads the first bytes of a file (for the output format without reading it all).
pub fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut head = vec![0u8; 16];
    // Never blocks on a FIFO; never reads what is not a regular file.
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    Ok(head)
}

impl<'a> Worker<'a> {
    pub fn new(cfg: &'a WatchConfig, stats: &'a Stats, recycled: &'a Recycler) -> Self {
        Worker {
            cfg,
            stats,
            scratch: Scratch::default(),
            encoders: EncoderSet::new(cfg.job.quality),
            decoder: StillDecoder::with_limits(cfg.job.limits),
            data: Vec::new(),
            img: ImageBuf::default(),
            recycled,
        }
    }

    pub fn process(&mut self, rel: &Path) -> Step {
        let cfg = self.cfg;
        let path = cfg.dir.join(rel);
        let started = Instant::now();
        // Only regular files (a symlink only to one), at most --max-file-size, and only
        // once the first bytes say it is an image: a link to /dev/zero or a sparse
        // "huge.jpg" costs nothing.
        let meta = match crate::batch::read_input(&path, cfg.job.max_file_size, &mut self.data) {
            Ok(m) => m,
            Err(crate::batch::InputError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                return Step::Done(Outcome::Vanished);
            }
            Err(crate::batch::InputError::Io(e)) => {
                return Step::Done(Outcome::Stuck(InputProblem::Read(e)));
            }
            Err(crate::batch::InputError::Refused(reason)) => {
                return Step::Done(Outcome::Unusable(reason.into()));
            }
        };
        // Reopened for the busy check below (the read was from a file now closed).
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Step::Done(Outcome::Vanished),
            Err(e) => return Step::Done(Outcome::Stuck(InputProblem::Open(e))),
        };
        let mtime = match meta.modified() {
            Ok(t) => t,
            Err(e) => {
                return Step::Done(Outcome::Stuck(InputProblem::NoMtime(e)));
            }
        };
        let format = cfg.job.output_format(&self.data);
        let out_rel = match output_rel(&cfg.job, rel, format) {
            Ok(r) => r,
            Err(e) => return Step::Done(Outcome::Unusable(e.into())),
        };
        let first_free = match find_existing(&cfg.job.out_dir, &out_rel, mtime) {
            Existing::Done(out) => {
                return Step::Done(match dispose(cfg, &path, rel, &meta) {
                    Ok(true) => Outcome::AlreadyDone(out),
                    Ok(false) => Outcome::Replaced,
                    Err(e) => Outcome::Stuck(e.into()),
                });
            }
            Existing::FirstFree(k) => k,
        };
        if let Err(reason) = complete_image(&path, &self.data, &mut self.decoder, &mut self.img) {
            return Step::Done(Outcome::Incomplete {
                reason,
                sig: Some((meta.len(), mtime)),
                busy: fsops::open_for_writing_elsewhere(&file),
            });
        }
        drop(file);
        Stats::add(&self.stats.decoded, 1);
        let out = match self
            .cfg
            .job
            .chain
            .apply(self.img.as_ref(), &mut self.scratch)
            .map_err(InputProblem::from)
            .and_then(|out| {
                self.encoders
                    .encode(format, out)
                    .map_err(InputProblem::from)
            }) {
            Ok(b) => b,
            Err(problem) => return Step::Done(Outcome::Unusable(problem)),
        };
        let mut bytes = self.recycled.take();
        bytes.extend_from_slice(out);
        Step::Write(Box::new(Pending {
            path,
            rel: rel.to_path_buf(),
            meta,
            out_rel,
            first_free,
            bytes,
            mtime,
            started,
        }))
    }
}

impl<'a> Writer<'a> {
    pub fn new(
        cfg: &'a WatchConfig,
        stage: &'a AtomicDir,
        commit: &'a AtomicDir,
        stats: &'a Stats,
        recycled: &'a Recycler,
    ) -> Self {
        Writer {
            cfg,
            stage,
            commit,
            stats,
            recycled,
        }
    }

    /// Puts the output durably in place, then disposes of the input.
    pub fn finish(&self, p: Box<Pending>) -> Outcome {
        let res = self.write(&p.out_rel, p.first_free, &p.bytes, p.mtime);
        self.recycled.give(p.bytes);
        let written = match res {
            Ok(w) => w,
            Err(e) => return Outcome::Stuck(e.into()),
        };
        self.stats.written(p.started.elapsed());
        test_hook::after_commit();
        match dispose(self.cfg, &p.path, &p.rel, &p.meta) {
            Ok(true) => Outcome::Written(written),
            Ok(false) => Outcome::Replaced,
            Err(source) => Outcome::Stuck(InputProblem::Disposal { written, source }),
        }
    }

    /// Temp file, mark (mtime), fsync, rename without replacing, fsync of the directory.
    fn write(
        &self,
        out_rel: &str,
        first_free: u32,
        bytes: &[u8],
        mtime: SystemTime,
    ) -> Result<PathBuf, StepError> {
        let werr = |source| StepError::Write {
            path: self.cfg.job.out_dir.join(out_rel),
            source,
        };
        // The temp file is marked (mtime = the input's) and synced before it is closed.
        let mut temp = self
            .stage
            .write_temp_then(out_rel, bytes, |f| {
                fsops::mark_and_sync(f, mtime).map_err(|e| {
                    io::Error::new(e.kind(), format!("marking and syncing the output: {e}"))
                })
            })
            .map_err(werr)?;
        let mut k = first_free;
        loop {
            let (rel, replace) = if self.cfg.job.overwrite {
                (out_rel.to_string(), Replace::Allowed)
            } else {
                (fsops::variant(out_rel, k), Replace::Never)
            };
            match self.commit.commit_keep(temp, &rel, replace) {
                Ok(p) => return Ok(p),
                Err((t, WriteError::Exists { .. })) if k < MAX_VARIANTS => {
                    temp = t;
                    k += 1;
                }
                Err((t, e)) => {
                    self.commit.discard(t);
                    return Err(werr(e));
                }
            }
        }
    }
}

/// Deletes, moves or keeps the input; false when the name now holds another file.
fn dispose(
    cfg: &WatchConfig,
    path: &Path,
    rel: &Path,
    read: &fs::Metadata,
) -> Result<bool, StepError> {
    let ioerr = |step, source| StepError::Io {
        path: path.to_path_buf(),
        step,
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(now) if fsops::same_file(&now, read) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(ioerr("checking the input before disposal", e)),
    }
    match &cfg.disposal {
        Disposal::Keep => Ok(true),
        Disposal::Delete => match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(ioerr("deleting the input", e)),
        },
        Disposal::MoveTo(done) => fsops::move_into(path, done, &rel.to_string_lossy())
            .map(|_| true)
            .map_err(|e| ioerr("moving the input to the done directory", e)),
    }
}

/// A deterministic crash point for tests, in debug builds only (release builds compile
/// it to nothing): with `FRAMEFLOW_TEST_KILL_AFTER_COMMIT=N` in the environment, the
/// process kills itself (SIGKILL: no cleanup, no flush, exactly like `kill -9`) right
/// after its N-th output is durably in place (marked, synced, renamed, directory synced)
/// and before that output's input is disposed of: the one moment where a restart must
/// recognise the output by its mark instead of making a second one.
/// Used by `tests/watch.rs` (`kill_between_output_and_disposal`).
mod test_hook {
    #[cfg(debug_assertions)]
    pub fn after_commit() {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        static DONE: AtomicU64 = AtomicU64::new(0);
        let limit = LIMIT.get_or_init(|| {
            std::env::var("FRAMEFLOW_TEST_KILL_AFTER_COMMIT")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        if let Some(n) = *limit
            && DONE.fetch_add(1, Ordering::SeqCst) + 1 >= n
        {
            // SAFETY: kill(2) on our own pid; SIGKILL cannot be caught.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }

    #[cfg(not(debug_assertions))]
    #[inline(always)]
    pub fn after_commit() {}
}
