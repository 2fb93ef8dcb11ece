//! Packets without decoding: the cluster's job owner reads an input's video packets
//! ([`PacketReader`]) and packs runs of them into self-describing NUT files
//! ([`pack_chunk`]) that a worker opens like any other input. NUT keeps the stream's
//! own time base and codec parameters (extradata included), so the worker's decoder sees
//! exactly what a local run's decoder sees, and its timestamps are the same.

use super::{
    BlockingIo, Demuxer, InputSpec, OpenOptions, SourceError, StreamInfo, err_string, open_input,
};
use ffmpeg_next as ff;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One video packet as read, with its timestamps in the stream's time base.
#[derive(Debug, Clone)]
pub struct RawPacket {
    pub data: Vec<u8>,
    pub pts: Option<i64>,
    pub dts: Option<i64>,
    pub duration: i64,
    pub key: bool,
    /// The demuxer flagged it corrupt.
    pub corrupt: bool,
}

/// The video packets of an input, read without decoding.
pub struct PacketReader {
    demux: Demuxer,
    stream_index: usize,
    time_base: ff::Rational,
    params: ff::codec::Parameters,
    packet: ff::Packet,
    spec: InputSpec,
    opts: OpenOptions,
    info: StreamInfo,
    packets_read: u64,
}

impl std::fmt::Debug for PacketReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketReader")
            .field("input", &self.spec.raw)
            .field("packets_read", &self.packets_read)
            .finish()
    }
}

impl PacketReader {
    /// Opens `spec` and picks its best video stream, as [`super::Source::open`] does.
    pub fn open(
        spec: &InputSpec,
        opts: &OpenOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<PacketReader, SourceError> {
        let demux = open_input(spec, opts, stop)?;
        let input = demux.input();
        let Some(stream) = input.streams().best(ff::media::Type::Video) else {
            return Err(SourceError::NoVideo {
                input: spec.raw.clone(),
                streams: "no video stream".into(),
            });
        };
        let params = stream.parameters();
        let afr = stream.avg_frame_rate();
        let frame_rate = (afr.denominator() != 0 && afr.numerator() > 0).then(|| f64::from(afr));
        let dur = input.duration();
        let duration = (dur > 0).then(|| dur as f64 / f64::from(ff::ffi::AV_TIME_BASE));
        // SAFETY: reading plain fields of the stream's codec parameters.
        let (width, height) = unsafe {
            let p = &*params.as_ptr();
            (p.width, p.height)
        };
        let (w, h) = (
            u32::try_from(width).unwrap_or(0),
            u32::try_from(height).unwrap_or(0),
        );
        if u64::from(w) * u64::from(h) > opts.max_pixels {
            return Err(SourceError::TooManyPixels {
                input: spec.raw.clone(),
                width: w,
                height: h,
                limit: opts.max_pixels,
            });
        }
        let info = StreamInfo {
            codec: params.id().name().to_string(),
            width: w,
            height: h,
            pix_fmt: String::new(),
            frame_rate,
            duration,
            format: input.format().name().to_string(),
        };
        let (stream_index, time_base) = (stream.index(), stream.time_base());
        Ok(PacketReader {
            demux,
            stream_index,
            time_base,
            params,
            packet: ff::Packet::empty(),
            spec: spec.clone(),
            opts: opts.clone(),
            info,
            packets_read: 0,
        })
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// The video stream's time base.
    pub fn time_base(&self) -> (i32, i32) {
        (self.time_base.numerator(), self.time_base.denominator())
    }

    /// `ts` (in the stream's time base) in ms, as [`super::Source`] computes a frame's.
    pub fn ts_ms(&self, ts: i64) -> i64 {
        ts_to_ms(ts, self.time_base)
    }

    /// The next video packet; `Ok(None)` at the end of the input.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket>, SourceError> {
        loop {
            if self.spec.is_live() {
                self.demux.interrupt().arm(Some(self.opts.timeout));
            }
            let res = {
                let _io = BlockingIo::enter();
                self.packet.read(self.demux.input_mut())
            };
            let timed_out = self.demux.interrupt().timed_out.load(Ordering::Relaxed);
            self.demux.interrupt().arm(None);
            match res {
                Ok(()) if self.packet.stream() != self.stream_index => continue,
                Ok(()) => {
                    self.packets_read += 1;
                    return Ok(Some(RawPacket {
                        data: self.packet.data().map(<[u8]>::to_vec).unwrap_or_default(),
                        pts: self.packet.pts(),
                        dts: self.packet.dts(),
                        duration: self.packet.duration(),
                        key: self.packet.is_key(),
                        corrupt: self.packet.is_corrupt(),
                    }));
                }
                Err(ff::Error::Eof) => return Ok(None),
                Err(_) if self.demux.interrupt().stop.load(Ordering::Relaxed) => return Ok(None),
                Err(e) => {
                    let deadline = matches!(e, ff::Error::Exit)
                        || matches!(e, ff::Error::Other { errno } if errno == libc::ETIMEDOUT);
                    if timed_out || deadline {
                        return Err(SourceError::Stalled {
                            input: self.spec.raw.clone(),
                            secs: self.opts.timeout.as_secs_f64(),
                            frames: self.packets_read,
                        });
                    }
                    return Err(SourceError::Read {
                        input: self.spec.raw.clone(),
                        frames: self.packets_read,
                        reason: err_string(e),
                    });
                }
            }
        }
    }

    /// Packs `packets` (of this input's video stream, in decode order) into a NUT file's
    /// bytes that [`super::Source::open`] reads back with the same codec parameters,
    /// time base and timestamps. `scratch` is a directory for the file while it is made.
    pub fn pack(
        &self,
        packets: &[RawPacket],
        scratch: &std::path::Path,
    ) -> Result<Vec<u8>, SourceError> {
        pack_chunk(&self.params, self.time_base, packets, scratch).map_err(|reason| {
            SourceError::Read {
                input: self.spec.raw.clone(),
                frames: self.packets_read,
                reason: format!("packing a chunk: {reason}"),
            }
        })
    }
}

/// `ts` in `tb` units, in ms (rounded toward zero, as local runs compute frame times).
pub(crate) fn ts_to_ms(ts: i64, tb: ff::Rational) -> i64 {
    if tb.denominator() == 0 {
        return ts;
    }
    (i128::from(ts) * 1000 * i128::from(tb.numerator()) / i128::from(tb.denominator())) as i64
}

/// A unique scratch file name in `dir`.
fn scratch_path(dir: &std::path::Path, ext: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".ff-chunk-{}-{n}.{ext}", std::process::id()))
}

/// Writes `packets` as a one-stream NUT file with `params` and time base `tb`, and
/// returns its bytes.
pub fn pack_chunk(
    params: &ff::codec::Parameters,
    tb: ff::Rational,
    packets: &[RawPacket],
    scratch: &std::path::Path,
) -> Result<Vec<u8>, String> {
    let path = scratch_path(scratch, "nut");
    let res = (|| -> Result<Vec<u8>, String> {
        let mut octx = ff::format::output_as(&path, "nut").map_err(err_string)?;
        {
            let mut ost = octx
                .add_stream(ff::encoder::find(ff::codec::Id::None))
                .map_err(err_string)?;
            ost.set_parameters(params.clone());
            ost.set_time_base(tb);
            // SAFETY: a plain field of the new stream's codec parameters: no codec tag
            // from the input's container (NUT chooses its own).
            unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
        }
        // SAFETY: a plain field of the open output context: keep the input's timestamps
        // as they are (negative dts included), so the worker's frames have the local
        // decoder's times.
        unsafe { (*octx.as_mut_ptr()).avoid_negative_ts = 0 };
        octx.write_header().map_err(err_string)?;
        let otb = octx.stream(0).map(|s| s.time_base()).unwrap_or(tb);
        for p in packets {
            let mut pkt = ff::Packet::copy(&p.data);
            pkt.set_pts(p.pts);
            pkt.set_dts(p.dts);
            pkt.set_duration(p.duration);
            if p.key {
                pkt.set_flags(ff::packet::Flags::KEY);
            }
            pkt.set_stream(0);
            pkt.rescale_ts(tb, otb);
            pkt.write(&mut octx).map_err(err_string)?;
        }
        octx.write_trailer().map_err(err_string)?;
        drop(octx);
        std::fs::read(&path).map_err(|e| e.to_string())
    })();
    let _ = std::fs::remove_file(&path);
    res
}

/// Writes a packed chunk to a scratch file in `dir` for [`super::Source::open`]; the
/// file is removed when the guard drops.
#[derive(Debug)]
pub struct ChunkFile {
    pub path: std::path::PathBuf,
}

impl ChunkFile {
    pub fn write(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<ChunkFile> {
        let path = scratch_path(dir, "nut");
        std::fs::write(&path, bytes)?;
        Ok(ChunkFile { path })
    }
}

impl Drop for ChunkFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
