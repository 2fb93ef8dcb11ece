//! Sources: anything libavformat opens, decoded with libavcodec and converted to RGB.
//!
//! The four settings the ffmpeg CLI makes and the library does not (FACTS.md) live here:
//! decoder threads (`thread_count`, by input kind and bitrate), short probing for live inputs, I/O
//! timeouts (both `rw_timeout` and an interrupt-callback deadline, so nothing blocks
//! forever), and the colour matrix and range (see [`frames::convert`](crate::frames::convert)). Read errors are reported,
//! never mistaken for the end of the stream.

pub mod packets;
pub mod probe;
pub mod spec;
pub mod still;

pub use spec::{InputKind, InputSpec, SpecError};

pub use crate::frames::{ConvertError, Picture};
use ff::ffi;
use ffmpeg_next as ff;
use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What went wrong with an input, and at which step.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("input '{input}': cannot open: {reason}")]
    Open {
        input: String,
        reason: String,
        /// No retry can mend it (this FFmpeg lacks the protocol or demuxer, the input is
        /// a directory, …), as opposed to a server that is down or not answering yet.
        permanent: bool,
    },
    #[error("input '{input}': no video stream (streams: {streams})")]
    NoVideo { input: String, streams: String },
    /// The cluster that decodes this input's frames failed (the job owner's side).
    #[error("input '{input}': cluster: {reason}")]
    Cluster { input: String, reason: String },
    #[error("input '{input}': cannot start the {codec} decoder: {reason}")]
    Decoder {
        input: String,
        codec: String,
        reason: String,
    },
    #[error("input '{input}': read error after {frames} frames: {reason}")]
    Read {
        input: String,
        frames: u64,
        reason: String,
    },
    #[error("input '{input}': stalled: no data for {secs:.1} s (after {frames} frames)")]
    Stalled {
        input: String,
        secs: f64,
        frames: u64,
    },
    #[error(
        "input '{input}': frames of {width}x{height} = {} pixels are over the limit of {limit} pixels (a decompression bomb?)",
        u64::from(*width) * u64::from(*height)
    )]
    TooManyPixels {
        input: String,
        width: u32,
        height: u32,
        limit: u64,
    },
    #[error("input '{input}': frame {frame}: {source}")]
    Convert {
        input: String,
        frame: u64,
        source: ConvertError,
    },
}

impl SourceError {
    /// Whether trying again later may succeed: a server down, refusing, not answering or
    /// lost. An input without video, a codec this FFmpeg cannot decode or a protocol it
    /// lacks stays that way.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Open { permanent, .. } => !permanent,
            SourceError::Read { .. }
            | SourceError::Stalled { .. }
            | SourceError::Cluster { .. } => true,
            SourceError::Spec(_)
            | SourceError::NoVideo { .. }
            | SourceError::Decoder { .. }
            | SourceError::TooManyPixels { .. }
            | SourceError::Convert { .. } => false,
        }
    }
}

/// How to open an input.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// No data for this long = stalled (also bounds connecting).
    pub timeout: Duration,
    /// `tcp` or `udp` for RTSP.
    pub rtsp_transport: RtspTransport,
    /// Decode only keyframes (non-key packets are discarded before decoding).
    pub keyframes_only: bool,
    /// How much of the machine decoding gets (see [`DecodeShare`]).
    pub decode_share: DecodeShare,
    /// Frames larger than this many pixels are refused: from the stream's header at
    /// open, and by libavcodec (`max_pixels`) before it allocates a frame mid-stream.
    pub max_pixels: u64,
}

/// Pillow's decompression-bomb threshold (`Image.MAX_IMAGE_PIXELS`): the default limit
/// for video frames and still images.
pub use still::DEFAULT_MAX_PIXELS;

/// How many threads libavcodec decodes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeShare {
    /// Live inputs: half the cores (at least one). A live stream's rate is far below what
    /// one thread decodes, and each extra frame thread delays every frame by one more
    /// frame interval.
    #[default]
    Half,
    /// Files: whatever keeps the decoder from being the bottleneck. Half the cores when
    /// the stream's bitrate says its frames decode quickly (below
    /// [`LIGHT_BITS_PER_PIXEL`]: the workers are then the slower side and extra frame
    /// threads only cost), else cores + 1 frame threads (libavcodec's own "auto").
    Files,
    /// Sampling and `probe`, where decoding is most of the work: every core.
    All,
}

/// Below this many bits per pixel a stream's frames decode faster than the workers
/// filter and encode them, and one decode thread per two cores keeps up (see
/// `decoder_threads`).
pub const LIGHT_BITS_PER_PIXEL: f64 = 0.035;

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            timeout: Duration::from_secs(10),
            rtsp_transport: RtspTransport::Tcp,
            keyframes_only: false,
            decode_share: DecodeShare::Half,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspTransport {
    Tcp,
    Udp,
}

named_choices!(RtspTransport {
    Tcp = "tcp": "",
    Udp = "udp": "",
});

/// How much of FFmpeg's own log reaches stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfmpegLog {
    Quiet,
    Errors,
    Warnings,
}

/// [`init_ffmpeg`] with FFmpeg's log at `level`.
pub fn init_ffmpeg_log(level: FfmpegLog) {
    init_ffmpeg(match level {
        FfmpegLog::Quiet => ffi::AV_LOG_QUIET,
        FfmpegLog::Errors => ffi::AV_LOG_ERROR,
        FfmpegLog::Warnings => ffi::AV_LOG_WARNING,
    });
}

/// The FFmpeg libraries this process runs on, as they report themselves.
#[derive(Debug, Clone)]
pub struct LibraryVersions {
    /// FFmpeg's release (`5.1.9-0+deb12u1`).
    pub ffmpeg: String,
    pub avformat: String,
    pub avcodec: String,
    pub avutil: String,
    pub swscale: String,
}

/// The versions of the FFmpeg libraries loaded (for `--version`).
pub fn library_versions() -> LibraryVersions {
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    // SAFETY: plain version queries without arguments.
    let (avformat, avcodec, avutil, swscale) = unsafe {
        (
            ffi::avformat_version(),
            ffi::avcodec_version(),
            ffi::avutil_version(),
            ffi::swscale_version(),
        )
    };
    // SAFETY: av_version_info returns a static NUL-terminated string (or NULL).
    let ffmpeg = unsafe {
        let p = ffi::av_version_info();
        if p.is_null() {
            "unknown".to_string()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    LibraryVersions {
        ffmpeg,
        avformat: v(avformat),
        avcodec: v(avcodec),
        avutil: v(avutil),
        swscale: v(swscale),
    }
}

/// Initialises FFmpeg once: devices (lavfi, v4l2) registered, library logging quieted
/// to `level` (an `AV_LOG_*` value).
pub fn init_ffmpeg(level: c_int) {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = ff::init();
        // SAFETY: plain FFI calls without preconditions.
        unsafe { ffi::avdevice_register_all() };
    });
    // SAFETY: sets a global integer.
    unsafe { ffi::av_log_set_level(level) };
}

/// How many threads are inside a blocking libavformat call (open, probe, read) right now.
/// The interrupt callback ends a network call within milliseconds of a stop; a FIFO or a
/// silent stdin blocks in the kernel where no callback is asked. The signal handler
/// looks here to tell a run that is finishing its frames from one stuck in such a call.
pub static IN_BLOCKING_IO: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts this thread in [`IN_BLOCKING_IO`] while it lives.
struct BlockingIo;

impl BlockingIo {
    fn enter() -> BlockingIo {
        IN_BLOCKING_IO.fetch_add(1, Ordering::SeqCst);
        BlockingIo
    }
}

impl Drop for BlockingIo {
    fn drop(&mut self) {
        IN_BLOCKING_IO.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Shared between the reader and FFmpeg's interrupt callback.
#[derive(Debug)]
struct Interrupt {
    epoch: Instant,
    /// Milliseconds since `epoch` after which blocking I/O is abandoned; 0 = none.
    deadline_ms: AtomicU64,
    timed_out: AtomicBool,
    stop: Arc<AtomicBool>,
}

impl Interrupt {
    fn arm(&self, d: Option<Duration>) {
        self.timed_out.store(false, Ordering::Relaxed);
        let v = d.map_or(0, |d| (self.epoch.elapsed() + d).as_millis().max(1) as u64);
        self.deadline_ms.store(v, Ordering::Relaxed);
    }
}

extern "C" fn interrupt_cb(opaque: *mut c_void) -> c_int {
    // SAFETY: opaque points to the boxed Interrupt owned by a `Demuxer` (or, while
    // `open_input` runs, by its local box), which closes the format context in its own
    // `Drop` before the box is freed: the callback can never see freed memory.
    let it = unsafe { &*(opaque as *const Interrupt) };
    if it.stop.load(Ordering::Relaxed) {
        return 1;
    }
    let d = it.deadline_ms.load(Ordering::Relaxed);
    if d != 0 && it.epoch.elapsed().as_millis() as u64 > d {
        it.timed_out.store(true, Ordering::Relaxed);
        return 1;
    }
    0
}

/// An open format context and the interrupt state its callback points to, owned
/// together. The format context calls [`interrupt_cb`] until it is closed, including from
/// inside `avformat_close_input` (RTMP and other protocols send their goodbye there), so
/// the interrupt state must outlive it. `Drop` closes the context first, explicitly, and
/// only then do the fields (the interrupt box) go: the order cannot be got wrong by a
/// caller or by reordering fields or bindings.
pub(crate) struct Demuxer {
    input: std::mem::ManuallyDrop<ff::format::context::Input>,
    interrupt: Box<Interrupt>,
}

impl Demuxer {
    pub(crate) fn input(&self) -> &ff::format::context::Input {
        &self.input
    }

    fn input_mut(&mut self) -> &mut ff::format::context::Input {
        &mut self.input
    }

    fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }
}

impl Drop for Demuxer {
    fn drop(&mut self) {
        // SAFETY: `input` is dropped exactly once, here, and never used afterwards; the
        // interrupt box it points to is a field, dropped only after this function returns.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.input) };
    }
}

/// Facts about the opened video stream.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
    /// Average frame rate, if known.
    pub frame_rate: Option<f64>,
    /// Container duration in seconds, if known.
    pub duration: Option<f64>,
    pub format: String,
}

/// An open input with its video decoder.
pub struct Source {
    decoder: ff::decoder::Video,
    /// The format context with its interrupt state (see [`Demuxer`] for the drop order).
    demux: Demuxer,
    frame: ff::frame::Video,
    packet: ff::Packet,
    stream_index: usize,
    time_base: ff::Rational,
    spec: InputSpec,
    opts: OpenOptions,
    info: StreamInfo,
    frames_out: u64,
    damage: Damage,
    draining: bool,
    done: bool,
    /// Video packets discarded before decoding (`--keyframes-only`) since last asked.
    skipped_packets: u64,
}

/// Damaged data met while reading an input. Frames the decoder could conceal are still
/// delivered (so counts match `ffprobe -count_frames`); this records that they were hurt.
#[derive(Debug, Clone, Default)]
pub struct Damage {
    /// Packets the demuxer flagged as corrupt (e.g. cut off by truncation).
    pub corrupt_packets: u64,
    /// Frames the decoder flagged as corrupt (errors concealed).
    pub corrupt_frames: u64,
    /// Packets the decoder rejected.
    pub decode_errors: u64,
    /// The decoder's last complaint.
    pub last_error: Option<String>,
}

impl Damage {
    /// Adds another connection's damage to this one.
    pub fn add(&mut self, other: &Damage) {
        self.corrupt_packets += other.corrupt_packets;
        self.corrupt_frames += other.corrupt_frames;
        self.decode_errors += other.decode_errors;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
    }

    pub fn any(&self) -> bool {
        self.corrupt_packets + self.corrupt_frames + self.decode_errors > 0
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} corrupt packet(s), {} corrupt frame(s), {} undecodable packet(s)",
            self.corrupt_packets, self.corrupt_frames, self.decode_errors
        )?;
        if let Some(e) = &self.last_error {
            write!(f, " (last: {e})")?;
        }
        Ok(())
    }
}

/// A decoded frame's metadata (the picture stays inside the [`Source`] until converted).
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta {
    /// Presentation time in ms of stream time (best effort; derived from the frame
    /// count when the stream has none).
    pub pts_ms: i64,
    pub key: bool,
    pub width: u32,
    pub height: u32,
}

fn err_string(e: ff::Error) -> String {
    e.to_string()
}

impl Source {
    /// Opens `spec` and its best video stream. `stop` aborts blocking I/O when set.
    pub fn open(
        spec: &InputSpec,
        opts: &OpenOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<Source, SourceError> {
        let demux = open_input(spec, opts, stop)?;
        let VideoStream {
            index: stream_index,
            time_base,
            params,
            frame_rate,
            duration: duration_s,
            bit_rate,
            width,
            height,
        } = best_video_stream(&demux, spec, opts)?;
        let input = demux.input();
        let bits_per_pixel = match frame_rate {
            Some(r) if bit_rate > 0 && width > 0 && height > 0 => {
                Some(bit_rate as f64 / (f64::from(width) * f64::from(height) * r))
            }
            _ => None,
        };
        let format_name = input.format().name().to_string();

        let mut ctx = ff::codec::context::Context::from_parameters(params).map_err(|e| {
            SourceError::Decoder {
                input: spec.raw.clone(),
                codec: "video".into(),
                reason: err_string(e),
            }
        })?;
        let codec_name = ctx.id().name().to_string();
        // SAFETY: setting plain fields on an unopened codec context.
        unsafe {
            let raw = ctx.as_mut_ptr();
            // See decoder_threads; the codec's default threading type (frame and/or
            // slice; ffmpeg-next's setter can only express one type).
            (*raw).thread_count = decoder_threads(opts.decode_share, bits_per_pixel);
            (*raw).pkt_timebase = time_base.into();
            // A frame that grows past the limit mid-stream is refused before allocation.
            (*raw).max_pixels = i64::try_from(opts.max_pixels).unwrap_or(i64::MAX);
            if opts.keyframes_only {
                (*raw).skip_frame = ffi::AVDiscard::AVDISCARD_NONKEY;
            }
        }
        let decoder = ctx.decoder().video().map_err(|e| SourceError::Decoder {
            input: spec.raw.clone(),
            codec: codec_name.clone(),
            reason: err_string(e),
        })?;
        let info = StreamInfo {
            codec: codec_name,
            width: decoder.width(),
            height: decoder.height(),
            pix_fmt: format!("{:?}", decoder.format()).to_lowercase(),
            frame_rate,
            duration: duration_s,
            format: format_name,
        };
        Ok(Source {
            decoder,
            demux,
            frame: ff::frame::Video::empty(),
            packet: ff::Packet::empty(),
            stream_index,
            time_base,
            spec: spec.clone(),
            opts: opts.clone(),
            info,
            frames_out: 0,
            damage: Damage::default(),
            draining: false,
            done: false,
            skipped_packets: 0,
        })
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    pub fn spec(&self) -> &InputSpec {
        &self.spec
    }

    /// Damaged data seen so far (corrupt packets and frames, rejected packets).
    pub fn damage(&self) -> &Damage {
        &self.damage
    }

    /// Decodes the next frame. `Ok(None)` at the end of the input.
    pub fn next_frame(&mut self) -> Result<Option<FrameMeta>, SourceError> {
        let mut drain_errors = 0;
        loop {
            if self.done {
                return Ok(None);
            }
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {
                    let meta = self.meta();
                    // SAFETY: reading plain fields of the decoded frame.
                    let (flags, errs) = unsafe {
                        (
                            (*self.frame.as_ptr()).flags,
                            (*self.frame.as_ptr()).decode_error_flags,
                        )
                    };
                    let corrupt = flags & ffi::AV_FRAME_FLAG_CORRUPT != 0 || errs != 0;
                    if corrupt && self.demux.interrupt().stop.load(Ordering::Relaxed) {
                        // A stop cut the last read short: this frame was decoded from
                        // partial data. It is not damage in the input. End here, so the
                        // outputs stay a gap-free prefix of the stream.
                        self.done = true;
                        return Ok(None);
                    }
                    if corrupt {
                        self.damage.corrupt_frames += 1;
                        tracing::debug!(input = %self.spec.raw, frame = self.frames_out, "corrupt frame (concealed)");
                    }
                    self.frames_out += 1;
                    return Ok(Some(meta));
                }
                Err(ff::Error::Eof) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => {}
                Err(e) => {
                    self.note_decode_error(&e);
                    if self.draining {
                        // A damaged frame while flushing: later ones may still be fine.
                        drain_errors += 1;
                        if drain_errors > 64 {
                            self.done = true;
                            return Ok(None);
                        }
                        continue;
                    }
                }
            }
            if self.draining {
                self.done = true;
                return Ok(None);
            }
            self.read_and_send()?;
        }
    }

    fn read_and_send(&mut self) -> Result<(), SourceError> {
        loop {
            let got = read_video_packet(
                &mut self.demux,
                &mut self.packet,
                self.stream_index,
                &self.spec,
                &self.opts,
                self.frames_out,
            );
            match got {
                Ok(true) => {}
                Ok(false) => {
                    // The end, or a stop: let the decoder hand out what it holds.
                    self.start_drain();
                    return Ok(());
                }
                Err(SourceError::Read {
                    input,
                    frames,
                    mut reason,
                }) => {
                    if let Some(hint) = self.read_hint() {
                        reason.push_str(hint);
                    }
                    return Err(SourceError::Read {
                        input,
                        frames,
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
            if self.opts.keyframes_only && !self.packet.is_key() {
                self.skipped_packets += 1;
                continue;
            }
            if self.packet.is_corrupt() {
                self.damage.corrupt_packets += 1;
                tracing::debug!(input = %self.spec.raw, pts = ?self.packet.pts(), "corrupt packet");
            }
            match self.decoder.send_packet(&self.packet) {
                Ok(()) => return Ok(()),
                Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(()),
                Err(e) => self.note_decode_error(&e),
            }
        }
    }

    /// Video packets discarded unread by `--keyframes-only` since the last call.
    pub fn take_skipped_packets(&mut self) -> u64 {
        std::mem::take(&mut self.skipped_packets)
    }

    /// Seeks to the keyframe at or before `pts_ms` (stream time, the units of
    /// [`FrameMeta::pts_ms`]) and empties the decoder, so the next frame decoded is that
    /// keyframe's or a later one. `Ok(false)`: the input cannot seek; nothing changed.
    pub fn seek_ms(&mut self, pts_ms: i64) -> Result<bool, SourceError> {
        let tb = self.time_base;
        if tb.numerator() <= 0 || tb.denominator() <= 0 {
            return Ok(false);
        }
        let ts =
            i128::from(pts_ms) * i128::from(tb.denominator()) / (1000 * i128::from(tb.numerator()));
        let ts = i64::try_from(ts).unwrap_or(i64::MAX);
        let index = c_int::try_from(self.stream_index).unwrap_or(0);
        // SAFETY: the format context is open and owned by `self.demux`; the stream index
        // is the video stream's.
        let rc = unsafe {
            ffi::av_seek_frame(
                self.demux.input_mut().as_mut_ptr(),
                index,
                ts,
                ffi::AVSEEK_FLAG_BACKWARD as c_int,
            )
        };
        if rc < 0 {
            tracing::debug!(input = %self.spec.raw, "cannot seek: {}", av_error_string(rc));
            return Ok(false);
        }
        // SAFETY: the decoder is open; flushing drops the frames it holds.
        unsafe { ffi::avcodec_flush_buffers(self.decoder.as_mut_ptr()) };
        self.draining = false;
        self.done = false;
        Ok(true)
    }

    /// What to tell a user whose read failed at once in a way that has a known cause.
    fn read_hint(&self) -> Option<&'static str> {
        // An MP4/MOV from a pipe whose index (moov) comes after the media data: the demuxer
        // reads past all of it to find the index, then cannot seek back.
        (self.spec.kind == InputKind::Stdin
            && self.frames_out == 0
            && self.info.format.contains("mp4"))
        .then_some(
            " (an MP4/MOV whose index is at its end is not streamable: give the file itself \
             as -i, or remux it with `ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4`)",
        )
    }

    /// Stops reading and lets the decoder hand out the frames it still holds.
    pub fn start_drain(&mut self) {
        if !self.draining {
            self.draining = true;
            let _ = self.decoder.send_eof();
        }
    }

    fn note_decode_error(&mut self, e: &ff::Error) {
        self.damage.decode_errors += 1;
        let msg = err_string(*e);
        tracing::debug!(input = %self.spec.raw, after_frames = self.frames_out, "decoder rejected data: {msg}");
        self.damage.last_error = Some(msg);
    }

    fn meta(&self) -> FrameMeta {
        let ts = self.frame.timestamp().or(self.frame.pts());
        let pts_ms = match ts {
            Some(t) if self.time_base.denominator() != 0 => packets::ts_to_ms(t, self.time_base),
            _ => match self.info.frame_rate {
                Some(r) if r > 0.0 => (self.frames_out as f64 * 1000.0 / r) as i64,
                _ => self.frames_out as i64,
            },
        };
        FrameMeta {
            pts_ms,
            key: self.frame.is_key(),
            width: self.frame.width(),
            height: self.frame.height(),
        }
    }

    /// Takes the picture of the frame last returned by [`Source::next_frame`] (the
    /// decoder's frame itself, no copy); the next frame is decoded into a fresh one.
    pub fn take_picture(&mut self) -> Picture {
        Picture::new(std::mem::replace(
            &mut self.frame,
            ff::frame::Video::empty(),
        ))
    }
}

/// Decoder threads for `share`; `bits_per_pixel` is the stream's bitrate over its pixel
/// rate, if known. Measured on 2 cores (1080p H.264 → emboss → JPEG, 600 frames,
/// interleaved runs; the workers convert, filter and encode, the decode thread only
/// decodes), 1 thread against 3: at 0.024 bits per pixel (1.5 Mbit/s) 1.82–2.01 s
/// against 1.93–2.14 s; at 0.05 (3 Mbit/s) 2.55–2.86 s against 2.54–2.61 s; at 0.13
/// (8 Mbit/s) 3.49–3.55 s against 3.09–3.20 s; at 2.7 (170 Mbit/s) 27.3 s against 15.3 s.
/// Decoding time grows with the bits; the workers' time does not.
fn decoder_threads(share: DecodeShare, bits_per_pixel: Option<f64>) -> c_int {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let light = bits_per_pixel.is_some_and(|b| b < LIGHT_BITS_PER_PIXEL);
    let n = match share {
        DecodeShare::Half => cores / 2,
        DecodeShare::Files if light => cores / 2,
        DecodeShare::Files => cores + 1,
        DecodeShare::All => cores,
    };
    n.clamp(1, 16) as c_int
}

/// The input's best video stream and the facts a reader needs about it.
pub(crate) struct VideoStream {
    pub(crate) index: usize,
    pub(crate) time_base: ff::Rational,
    pub(crate) params: ff::codec::Parameters,
    /// Average frame rate, if known.
    pub(crate) frame_rate: Option<f64>,
    /// Container duration in seconds, if known.
    pub(crate) duration: Option<f64>,
    pub(crate) bit_rate: i64,
    pub(crate) width: c_int,
    pub(crate) height: c_int,
}

/// Picks the best video stream of an open input (none: `NoVideo`, listing what there
/// is) and refuses it if its frames are larger than `--max-pixels`, from the header,
/// before any buffer of that size exists.
fn best_video_stream(
    demux: &Demuxer,
    spec: &InputSpec,
    opts: &OpenOptions,
) -> Result<VideoStream, SourceError> {
    let input = demux.input();
    let Some(stream) = input.streams().best(ff::media::Type::Video) else {
        let streams = input
            .streams()
            .map(|s| format!("{:?} {:?}", s.parameters().medium(), s.parameters().id()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SourceError::NoVideo {
            input: spec.raw.clone(),
            streams: if streams.is_empty() {
                "none".into()
            } else {
                streams
            },
        });
    };
    let afr = stream.avg_frame_rate();
    let frame_rate = (afr.denominator() != 0 && afr.numerator() > 0).then(|| f64::from(afr));
    let dur = input.duration();
    let duration = (dur > 0).then(|| dur as f64 / f64::from(ffi::AV_TIME_BASE));
    let params = stream.parameters();
    // SAFETY: reading plain fields of the stream's codec parameters.
    let (bit_rate, width, height) = unsafe {
        let p = &*params.as_ptr();
        (p.bit_rate, p.width, p.height)
    };
    if let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height))
        && u64::from(w) * u64::from(h) > opts.max_pixels
    {
        return Err(SourceError::TooManyPixels {
            input: spec.raw.clone(),
            width: w,
            height: h,
            limit: opts.max_pixels,
        });
    }
    Ok(VideoStream {
        index: stream.index(),
        time_base: stream.time_base(),
        params,
        frame_rate,
        duration,
        bit_rate,
        width,
        height,
    })
}

/// Reads the next packet of stream `index` into `packet`, with a live input's stall
/// deadline armed. `Ok(true)`: a packet; `Ok(false)`: the end of the input, or a stop cut
/// the read short. `frames`: how far the input got, for the error.
fn read_video_packet(
    demux: &mut Demuxer,
    packet: &mut ff::Packet,
    index: usize,
    spec: &InputSpec,
    opts: &OpenOptions,
    frames: u64,
) -> Result<bool, SourceError> {
    loop {
        if spec.is_live() {
            demux.interrupt().arm(Some(opts.timeout));
        }
        // av_read_frame overwrites the packet without releasing what it held (a decoder
        // takes its own reference in send_packet): unreference it first, or every
        // packet's data leaks (≈ the input's bitrate, forever, on a live input).
        // SAFETY: the packet is ours and valid; unref leaves it blank and reusable.
        unsafe { ffi::av_packet_unref(ff::packet::Mut::as_mut_ptr(packet)) };
        let res = {
            let _io = BlockingIo::enter();
            packet.read(demux.input_mut())
        };
        let timed_out = demux.interrupt().timed_out.load(Ordering::Relaxed);
        demux.interrupt().arm(None);
        match res {
            Ok(()) if packet.stream() != index => continue,
            Ok(()) => return Ok(true),
            Err(ff::Error::Eof) => return Ok(false),
            // Shutdown requested: end cleanly, keeping what was read.
            Err(_) if demux.interrupt().stop.load(Ordering::Relaxed) => return Ok(false),
            Err(e) => {
                let rw_timeout =
                    matches!(e, ff::Error::Other { errno } if errno == libc::ETIMEDOUT);
                // Only our interrupt callback makes a read give up with AVERROR_EXIT, and
                // with no stop asked that is its deadline (seen on udp:// and srt://, whose
                // reads run on threads of their own).
                let deadline = matches!(e, ff::Error::Exit);
                if timed_out || rw_timeout || deadline {
                    return Err(SourceError::Stalled {
                        input: spec.raw.clone(),
                        secs: opts.timeout.as_secs_f64(),
                        frames,
                    });
                }
                return Err(SourceError::Read {
                    input: spec.raw.clone(),
                    frames,
                    reason: err_string(e),
                });
            }
        }
    }
}

/// Opens the container (with the timeouts and probing settings) without a decoder.
fn open_input(
    spec: &InputSpec,
    opts: &OpenOptions,
    stop: Arc<AtomicBool>,
) -> Result<Demuxer, SourceError> {
    let input_name = spec.raw.clone();
    let open_err = |reason: String| SourceError::Open {
        input: input_name.clone(),
        reason,
        permanent: true,
    };
    // A failure of libavformat's open: permanent only when this FFmpeg lacks something.
    let av_err = |rc: c_int, interrupt: &Interrupt| SourceError::Open {
        input: input_name.clone(),
        reason: open_reason(spec, rc, interrupt, opts.timeout),
        permanent: [
            ffi::AVERROR_PROTOCOL_NOT_FOUND,
            ffi::AVERROR_DEMUXER_NOT_FOUND,
            ffi::AVERROR_OPTION_NOT_FOUND,
        ]
        .contains(&rc),
    };
    if spec.kind == InputKind::File && !spec.url.contains("://") {
        let p = std::path::Path::new(&spec.url);
        match std::fs::metadata(p) {
            Err(e) => return Err(open_err(e.to_string())),
            Ok(m) if m.is_dir() => return Err(open_err("is a directory".into())),
            Ok(_) => {}
        }
    }
    let interrupt = Box::new(Interrupt {
        epoch: Instant::now(),
        deadline_ms: AtomicU64::new(0),
        timed_out: AtomicBool::new(false),
        stop,
    });
    let mut dict = ff::Dictionary::new();
    let us = opts.timeout.as_micros().to_string();
    if spec.kind == InputKind::Network {
        dict.set("rw_timeout", &us);
        if spec.is_rtsp() {
            dict.set(
                "rtsp_transport",
                match opts.rtsp_transport {
                    RtspTransport::Tcp => "tcp",
                    RtspTransport::Udp => "udp",
                },
            );
            dict.set("timeout", &us);
        }
    }
    if spec.is_live() {
        // Probe briefly: the defaults block ~5 s on a live MPEG-PS stream.
        dict.set("analyzeduration", "100000");
        dict.set("probesize", "500000");
    }
    let url =
        CString::new(spec.url.as_str()).map_err(|_| open_err("contains a NUL byte".into()))?;
    let open_deadline = match spec.kind {
        InputKind::Network => Some(opts.timeout),
        _ => None,
    };
    interrupt.arm(open_deadline);

    let fmt = match spec.format {
        Some(name) => {
            let cname = CString::new(name).map_err(|_| open_err("bad format".into()))?;
            // SAFETY: a lookup by a NUL-terminated name; returns a static or NULL.
            let f = unsafe { ffi::av_find_input_format(cname.as_ptr()) };
            if f.is_null() {
                return Err(open_err(format!("this FFmpeg has no '{name}' input")));
            }
            f
        }
        None => ptr::null(),
    };
    // SAFETY: standard avformat_open_input sequence; every pointer is checked and the
    // context is either wrapped (and owned by `Input`) or closed on error. The interrupt
    // box outlives the context on every path: it is a local until the `Demuxer` below
    // owns both.
    let input = unsafe {
        let mut ctx = ffi::avformat_alloc_context();
        if ctx.is_null() {
            return Err(open_err("out of memory".into()));
        }
        (*ctx).interrupt_callback = ffi::AVIOInterruptCB {
            callback: Some(interrupt_cb),
            opaque: &*interrupt as *const Interrupt as *mut c_void,
        };
        let mut raw_opts = dict.disown();
        let _io = BlockingIo::enter();
        let rc = ffi::avformat_open_input(&mut ctx, url.as_ptr(), fmt as _, &mut raw_opts);
        ff::Dictionary::own(raw_opts);
        if rc < 0 {
            // avformat_open_input frees the context on failure.
            return Err(av_err(rc, &interrupt));
        }
        let rc = ffi::avformat_find_stream_info(ctx, ptr::null_mut());
        if rc < 0 {
            ffi::avformat_close_input(&mut ctx);
            return Err(av_err(rc, &interrupt));
        }
        ff::format::context::Input::wrap(ctx)
    };
    // From here on the pair has one owner; every return below drops it in order.
    let demux = Demuxer {
        input: std::mem::ManuallyDrop::new(input),
        interrupt,
    };
    demux.interrupt().arm(None);
    // libavformat reads any text file as "ANSI art" video; nobody means that.
    if spec.format.is_none() && demux.input().format().name() == "tty" {
        return Err(open_err("not a video file (it is text)".into()));
    }
    Ok(demux)
}

fn open_reason(spec: &InputSpec, rc: c_int, it: &Interrupt, timeout: Duration) -> String {
    if it.stop.load(Ordering::Relaxed) {
        return "interrupted".into();
    }
    if it.timed_out.load(Ordering::Relaxed) {
        return format!("no answer within {:.1} s", timeout.as_secs_f64());
    }
    // libavformat says only "Input/output error" when a host name does not resolve (the
    // reason goes to its log): find out, and say so.
    if spec.kind == InputKind::Network
        && let Some((host, port)) = spec::host_port(&spec.url)
        && host.parse::<std::net::IpAddr>().is_err()
        && std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port.unwrap_or(0))).is_err()
    {
        return format!("cannot resolve host '{host}'");
    }
    av_error_string(rc)
}

/// FFmpeg's text for an error code.
pub fn av_error_string(rc: c_int) -> String {
    let mut buf = [0 as std::os::raw::c_char; 256];
    // SAFETY: av_strerror writes at most buf.len() bytes, NUL-terminated.
    unsafe {
        ffi::av_strerror(rc, buf.as_mut_ptr(), buf.len());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::convert::STRIP_ROWS;
    use crate::frames::{Converter, FrameBuf};

    /// The first picture of a lavfi source in `pix_fmt`.
    fn picture(size: &str, pix_fmt: &str) -> Picture {
        init_ffmpeg(ffmpeg_next::ffi::AV_LOG_QUIET);
        // testsrc2 rounds its size to even numbers: scale to odd ones.
        let (w, h) = size.split_once('x').unwrap();
        let spec = InputSpec::parse(&format!(
            "lavfi:testsrc2=size=640x360:rate=25,scale={w}:{h},format={pix_fmt}"
        ))
        .unwrap();
        let mut src = Source::open(
            &spec,
            &OpenOptions::default(),
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        src.next_frame().unwrap().unwrap();
        src.take_picture()
    }

    #[test]
    fn strips_are_exact_for_direct_yuv_and_refused_otherwise() {
        let mut conv = Converter::default();
        for (size, fmt, want) in [
            ("640x360", "yuv420p", true),
            ("854x480", "yuv420p", true),
            ("352x288", "yuv422p", true),
            ("320x240", "yuvj420p", true),
            ("321x240", "yuv420p", true),
            ("320x241", "yuv420p", false),
            ("352x288", "yuv444p", false),
            ("352x288", "rgb24", false),
        ] {
            let pic = picture(size, fmt);
            assert_eq!(conv.strips_exact(&pic).unwrap(), want, "{size} {fmt}");
            // Strips of an exact geometry give the whole conversion's rows.
            if want {
                let mut whole = FrameBuf::default();
                conv.convert(&pic, &mut whole).unwrap();
                let mut rows = FrameBuf::default();
                rows.reshape(pic.width(), STRIP_ROWS);
                conv.convert_rows(&pic, STRIP_ROWS, STRIP_ROWS, &mut rows, 0)
                    .unwrap();
                let rb = pic.width() as usize * 3;
                for y in 0..STRIP_ROWS as usize {
                    let want_row =
                        &whole.image().data()[(y + STRIP_ROWS as usize) * whole.stride()..][..rb];
                    assert_eq!(
                        &rows.image().data()[y * rows.stride()..][..rb],
                        want_row,
                        "{size} {fmt} row {y}"
                    );
                }
            }
        }
        // Rows out of range, or not on a strip boundary, are refused.
        let pic = picture("64x48", "yuv420p");
        let mut rows = FrameBuf::default();
        rows.reshape(64, STRIP_ROWS);
        assert!(conv.convert_rows(&pic, 40, 16, &mut rows, 0).is_err());
        assert!(conv.convert_rows(&pic, 8, 8, &mut rows, 0).is_err());
        assert!(conv.convert_rows(&pic, 16, 16, &mut rows, 1).is_err());
    }

    #[test]
    fn decoder_threads_follow_input_kind_and_bitrate() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as c_int;
        let half = (cores / 2).max(1);
        assert_eq!(decoder_threads(DecodeShare::Half, Some(1.0)), half);
        assert_eq!(decoder_threads(DecodeShare::All, None), cores.min(16));
        // 1080p30 at 1.5 Mbit/s: light, the workers are the slower side.
        let light = 1.5e6 / (1920.0 * 1080.0 * 30.0);
        assert_eq!(decoder_threads(DecodeShare::Files, Some(light)), half);
        // 8 Mbit/s, or unknown: decode with every core and one more.
        let heavy = 8e6 / (1920.0 * 1080.0 * 30.0);
        assert_eq!(
            decoder_threads(DecodeShare::Files, Some(heavy)),
            (cores + 1).min(16)
        );
        assert_eq!(
            decoder_threads(DecodeShare::Files, None),
            (cores + 1).min(16)
        );
    }
}
