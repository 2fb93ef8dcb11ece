//! One input file, start to finish: read, recognise an earlier output, validate, filter,
//! encode, write durably, then dispose of the input.

use super::check::complete_image;
use super::fsops::{self, MAX_VARIANTS};
use super::{Disposal, WatchConfig};
use crate::pipeline::stats::Stats;
use crate::sink::atomic::{AtomicDir, Replace, WriteError};
use crate::sink::encode::{EncoderSet, ImageFormat};
use crate::sink::naming::NameValues;
use crate::source::still::StillFormat;
use frameflow_filters::{ImageRef, Scratch};
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
        reason: String,
        sig: Option<Sig>,
        busy: bool,
    },
    /// Unusable whatever happens next: goes to the failed directory.
    Unusable(String),
    /// The output could not be written, or the input could not be disposed of; the input
    /// stays where it is.
    Stuck(String),
    /// The file under this name was replaced while we worked: look at it again.
    Replaced,
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

pub struct Worker<'a> {
    cfg: &'a WatchConfig,
    stage: &'a AtomicDir,
    commit: &'a AtomicDir,
    stats: &'a Stats,
    scratch: Scratch,
    encoders: EncoderSet,
}

/// The output format for an input whose first bytes are `head`.
pub fn output_format(cfg: &WatchConfig, head: &[u8]) -> ImageFormat {
    cfg.format
        .or_else(|| {
            cfg.template
                .literal_extension()
                .and_then(ImageFormat::from_extension)
        })
        .unwrap_or(match StillFormat::sniff(head) {
            Some(StillFormat::Png) => ImageFormat::Png,
            Some(StillFormat::Bmp) => ImageFormat::Bmp,
            Some(StillFormat::Pnm) => ImageFormat::Ppm,
            Some(StillFormat::Webp) => ImageFormat::Webp,
            _ => ImageFormat::Jpeg,
        })
}

/// The output name (relative to the output directory) of input `rel`.
pub fn output_rel(cfg: &WatchConfig, rel: &Path, format: ImageFormat) -> String {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let name = cfg.template.render(&NameValues {
        index: 0,
        pts_ms: 0,
        time: "",
        stream: "watch",
        stem: &stem,
        ext: format.extension(),
    });
    match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => format!("{}/{name}", dir.to_string_lossy()),
        None => name,
    }
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
    let mut head = vec![0u8; 16];
    let mut f = fs::File::open(path)?;
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
    pub fn new(
        cfg: &'a WatchConfig,
        stage: &'a AtomicDir,
        commit: &'a AtomicDir,
        stats: &'a Stats,
    ) -> Self {
        Worker {
            cfg,
            stage,
            commit,
            stats,
            scratch: Scratch::default(),
            encoders: EncoderSet::new(cfg.quality),
        }
    }

    pub fn process(&mut self, rel: &Path) -> Outcome {
        let cfg = self.cfg;
        let path = cfg.dir.join(rel);
        let started = Instant::now();
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Vanished,
            Err(e) => return Outcome::Stuck(format!("cannot open: {e}")),
        };
        let mut data = Vec::new();
        let read = file.read_to_end(&mut data).and_then(|_| file.metadata());
        let meta = match read {
            Ok(m) => m,
            Err(e) => return Outcome::Stuck(format!("cannot read: {e}")),
        };
        if !meta.is_file() {
            return Outcome::Vanished;
        }
        let mtime = match meta.modified() {
            Ok(t) => t,
            Err(e) => return Outcome::Stuck(format!("no modification time: {e}")),
        };
        let format = output_format(cfg, &data);
        let out_rel = output_rel(cfg, rel, format);
        let first_free = match find_existing(&cfg.out_dir, &out_rel, mtime) {
            Existing::Done(out) => {
                return match self.dispose(&path, rel, &meta) {
                    Ok(true) => Outcome::AlreadyDone(out),
                    Ok(false) => Outcome::Replaced,
                    Err(e) => Outcome::Stuck(e.to_string()),
                };
            }
            Existing::FirstFree(k) => k,
        };
        let img = match complete_image(&path, &data) {
            Ok(img) => img,
            Err(reason) => {
                return Outcome::Incomplete {
                    reason,
                    sig: Some((meta.len(), mtime)),
                    busy: fsops::open_for_writing_elsewhere(&file),
                };
            }
        };
        drop(file);
        Stats::add(&self.stats.decoded, 1);
        let bytes = match self.filter_encode(img.as_ref(), format) {
            Ok(b) => b,
            Err(reason) => return Outcome::Unusable(reason),
        };
        let written = match self.write(&out_rel, first_free, bytes, mtime) {
            Ok(p) => p,
            Err(e) => return Outcome::Stuck(e.to_string()),
        };
        self.stats.written(started.elapsed());
        match self.dispose(&path, rel, &meta) {
            Ok(true) => Outcome::Written(written),
            Ok(false) => Outcome::Replaced,
            Err(e) => Outcome::Stuck(format!("output {} written, but: {e}", written.display())),
        }
    }

    fn filter_encode(&mut self, img: ImageRef<'_>, format: ImageFormat) -> Result<Vec<u8>, String> {
        let cfg = self.cfg;
        let out = cfg
            .chain
            .apply(img, &mut self.scratch)
            .map_err(|e| e.to_string())?;
        self.encoders
            .encode(format, out)
            .map(<[u8]>::to_vec)
            .map_err(|e| e.to_string())
    }

    /// Temp file, mark (mtime), fsync, rename without replacing, fsync of the directory.
    fn write(
        &self,
        out_rel: &str,
        first_free: u32,
        bytes: Vec<u8>,
        mtime: SystemTime,
    ) -> Result<PathBuf, StepError> {
        let werr = |source| StepError::Write {
            path: self.cfg.out_dir.join(out_rel),
            source,
        };
        let mut temp = self.stage.write_temp(out_rel, &bytes).map_err(werr)?;
        if let Err(source) = fsops::mark_and_sync(temp.path(), mtime) {
            let path = temp.path().to_path_buf();
            self.stage.discard(temp);
            return Err(StepError::Io {
                path,
                step: "marking and syncing the output",
                source,
            });
        }
        let mut k = first_free;
        loop {
            let (rel, replace) = if self.cfg.overwrite {
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

    /// Deletes, moves or keeps the input; false when the name now holds another file.
    fn dispose(&self, path: &Path, rel: &Path, read: &fs::Metadata) -> Result<bool, StepError> {
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
        match &self.cfg.disposal {
            Disposal::Keep => Ok(true),
            Disposal::Delete => match fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(ioerr("deleting the input", e)),
            },
            Disposal::MoveTo(done) => fsops::move_into(path, done, &rel.to_string_lossy())
                .map(|_| true)
                .map_err(|e| ioerr("moving the input to --done", e)),
        }
    }
}
