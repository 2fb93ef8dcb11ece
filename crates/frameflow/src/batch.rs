//! `frameflow apply`: filter image files once, in parallel, writing atomically.

use crate::runtime::utc_timestamp;
use crate::sink::atomic::{AtomicDir, Replace, WriteError};
use crate::sink::encode::{EncodeError, EncoderSet, ImageFormat};
use crate::sink::naming::{NameValues, Template};
use crate::source::still::{self, StillError, StillFormat};
use frameflow_filters::{Chain, FilterError, Scratch};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

/// What to make of image files: the filter chain, the output directory and names, the
/// encoding, the threads. The settings of one [`apply`] run; the hot folder (`watch`)
/// holds one in its configuration.
#[derive(Debug, Clone)]
pub struct ImageJob {
    pub chain: Chain,
    pub out_dir: PathBuf,
    /// Output names, relative to `out_dir` (`watch` keeps an input's subdirectory).
    pub template: Template,
    /// Output format; `None` = the template's extension, else the input's own format.
    pub format: Option<ImageFormat>,
    /// JPEG/WebP quality, 1..100.
    pub quality: u8,
    /// Worker threads (0 is taken as 1).
    pub workers: usize,
    /// Replace an existing output of the same name. Otherwise `apply` fails that input
    /// and `watch` writes the first free `-1`, `-2`, ... variant of the name.
    pub overwrite: bool,
    /// Images of more pixels are refused from their header.
    pub limits: still::StillLimits,
    /// Inputs larger than this (bytes) are refused before they are read.
    pub max_file_size: u64,
}

/// The default `--max-file-size`: 1 GiB, far above any real image, far below what would
/// hurt to read into memory.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// Why an input file is not read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a regular file (a device, a FIFO, a directory, a symlink to one of those).
    #[error("{kind}: only regular files are read")]
    NotRegular { kind: &'static str },
    /// Larger than the file-size limit.
    #[error(
        "{size} bytes, over the limit of {limit} bytes ({})",
        crate::setting::Setting::MaxFileSize
    )]
    TooLarge { size: u64, limit: u64 },
    /// Its first bytes are no image format frameflow reads.
    #[error("not an image (its first bytes are no JPEG, PNG, WebP, BMP or PPM)")]
    NotAnImage,
}

/// Why an input file is not read at all: not a regular file (a device, a FIFO, a
/// directory, a symlink to one of those), or larger than `max_file_size`. Checked on the
/// open file, so what is checked is what is read.
pub fn check_input_file(meta: &std::fs::Metadata, max_file_size: u64) -> Result<(), Refusal> {
    use std::os::unix::fs::FileTypeExt as _;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Refusal::NotRegular { kind });
    }
    if meta.len() > max_file_size {
        return Err(Refusal::TooLarge {
            size: meta.len(),
            limit: max_file_size,
        });
    }
    Ok(())
}

/// Opens `path` for reading without blocking (a FIFO swapped in after a check must not
/// hang the reader), checks it with [`check_input_file`] and reads at most
/// `max_file_size` bytes of it into `buf` (cleared first) — after its first bytes say it
/// is an image format we read.
pub fn read_input(
    path: &Path,
    max_file_size: u64,
    buf: &mut Vec<u8>,
) -> Result<std::fs::Metadata, InputError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(InputError::Io)?;
    let meta = file.metadata().map_err(InputError::Io)?;
    check_input_file(&meta, max_file_size).map_err(InputError::Refused)?;
    buf.clear();
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]).map_err(InputError::Io)? {
            0 => break,
            n => got += n,
        }
    }
    if got == head.len() && still::StillFormat::sniff(&head).is_none() {
        return Err(InputError::Refused(Refusal::NotAnImage));
    }
    buf.extend_from_slice(&head[..got]);
    file.take(max_file_size.saturating_sub(got as u64))
        .read_to_end(buf)
        .map_err(InputError::Io)?;
    Ok(meta)
}

/// Why [`read_input`] read nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading failed (it may vanish, or be readable later).
    #[error("{0}")]
    Io(std::io::Error),
    /// Not to be read at all, whatever happens next.
    #[error("{0}")]
    Refused(Refusal),
}

impl ImageJob {
    /// The format of the output of an input whose first bytes are `head`
    /// (see [`output_format`]).
    pub fn output_format(&self, head: &[u8]) -> ImageFormat {
        output_format(self.format, &self.template, head)
    }
}

/// Why one file failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Read(#[from] StillError),
    /// Not read at all: not a regular file, too large, not an image format.
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: Refusal },
    /// The output name it would get is no usable name.
    #[error("{}: {source}", path.display())]
    Name {
        path: PathBuf,
        source: crate::sink::naming::TemplateError,
    },
    #[error("{}: {source}", path.display())]
    Filter { path: PathBuf, source: FilterError },
    #[error("{}: {source}", path.display())]
    Encode { path: PathBuf, source: EncodeError },
    #[error("{}: {source}", path.display())]
    Write { path: PathBuf, source: WriteError },
}

/// The format of an image file's output: `--format`, else the template's literal
/// extension, else the input's own format (sniffed from its first bytes; JPEG when it is
/// not one we write). `apply` and `watch` both decide this way.
pub fn output_format(flag: Option<ImageFormat>, template: &Template, head: &[u8]) -> ImageFormat {
    flag.or_else(|| {
        template
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

/// What happened to each file.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub written: Vec<PathBuf>,
    pub failed: Vec<ApplyError>,
}

/// Filters `files` into `job.out_dir`. `on_done` is called after each file (progress).
pub fn apply(
    job: &ImageJob,
    files: &[PathBuf],
    stop: &AtomicBool,
    on_done: &(dyn Fn(&Path, Result<&Path, &ApplyError>) + Sync),
) -> Result<ApplyReport, WriteError> {
    let dir = AtomicDir::open(&job.out_dir, false)?;
    let next = AtomicUsize::new(0);
    let report = Mutex::new(ApplyReport::default());
    let workers = job.workers.clamp(1, files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut w = Worker::new(job);
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let res = w.one(&dir, i as u64, path);
                    on_done(path, res.as_deref());
                    if let Ok(mut r) = report.lock() {
                        match res {
                            Ok(p) => r.written.push(p),
                            Err(e) => r.failed.push(e),
                        }
                    }
                }
            });
        }
    });
    Ok(report.into_inner().unwrap_or_default())
}

struct Worker<'a> {
    job: &'a ImageJob,
    scratch: Scratch,
    encoders: EncoderSet,
}

impl<'a> Worker<'a> {
    fn new(job: &'a ImageJob) -> Self {
        Worker {
            job,
            scratch: Scratch::default(),
            encoders: EncoderSet::new(job.quality),
        }
    }

    fn one(&mut self, dir: &AtomicDir, index: u64, path: &Path) -> Result<PathBuf, ApplyError> {
        let job = self.job;
        let mut data = Vec::new();
        read_input(path, job.max_file_size, &mut data).map_err(|e| match e {
            InputError::Io(source) => ApplyError::Read(StillError::Read {
                path: path.to_path_buf(),
                source,
            }),
            InputError::Refused(reason) => ApplyError::Refused {
                path: path.to_path_buf(),
                reason,
            },
        })?;
        let img = still::decode_image(path, &data, job.limits)?;
        let format = job.output_format(&data);
        let out = self
            .job
            .chain
            .apply(img.as_ref(), &mut self.scratch)
            .map_err(|source| ApplyError::Filter {
                path: path.to_path_buf(),
                source,
            })?;
        // Keeps the mode where the format can hold it; drops alpha where it cannot.
        let bytes = self
            .encoders
            .encode(format, out)
            .map_err(|source| ApplyError::Encode {
                path: path.to_path_buf(),
                source,
            })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let time = utc_timestamp(SystemTime::now());
        // Checked after rendering, as every writer's names are: it stays inside `-o`.
        let rel = job
            .template
            .render_checked(&NameValues {
                index,
                pts_ms: 0,
                time: &time,
                stream: "apply",
                stem: &stem,
                ext: format.extension(),
            })
            .map_err(|source| ApplyError::Name {
                path: path.to_path_buf(),
                source,
            })?;
        let write_err = |source| ApplyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let temp = dir.write_temp(&rel, bytes).map_err(write_err)?;
        let replace = if job.overwrite {
            Replace::Allowed
        } else {
            Replace::Never
        };
        dir.commit(temp, &rel, replace).map_err(write_err)
    }
}
