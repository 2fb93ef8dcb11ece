//! Packets without decoding: the cluster's job owner reads an input's video packets
//! ([`PacketReader`]) and packs runs of them into self-describing NUT files
//! ([`pack_chunk`]) that a worker opens like any other input. NUT keeps the stream's
//! own time base and codec parameters (extradata included), so the worker's decoder sees
//! exactly what a local run's decoder sees, and its timestamps are the same.

use super::{
    Demuxer, InputSpec, OpenOptions, SourceError, StreamInfo, best_video_stream, err_string,
    open_input, read_video_packet,
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
        let v = best_video_stream(&demux, spec, opts)?;
        let input = demux.input();
        let info = StreamInfo {
            codec: v.params.id().name().to_string(),
            width: u32::try_from(v.width).unwrap_or(0),
            height: u32::try_from(v.height).unwrap_or(0),
            pix_fmt: String::new(),
            frame_rate: v.frame_rate,
            duration: v.duration,
            format: input.format().name().to_string(),
        };
        let (stream_index, time_base, params) = (v.index, v.time_base, v.params);
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

    /// `ts` (in the stream's time base) in ms, as [`super::Source`] computes a frame's.
    pub fn ts_ms(&self, ts: i64) -> i64 {
        ts_to_ms(ts, self.time_base)
    }

    /// The next video packet; `Ok(None)` at the end of the input (or at a stop).
    pub fn next_packet(&mut self) -> Result<Option<RawPacket>, SourceError> {
        let got = read_video_packet(
            &mut self.demux,
            &mut self.packet,
            self.stream_index,
            &self.spec,
            &self.opts,
            self.packets_read,
        )?;
        if !got {
            return Ok(None);
        }
        self.packets_read += 1;
        Ok(Some(RawPacket {
            data: self.packet.data().map(<[u8]>::to_vec).unwrap_or_default(),
            pts: self.packet.pts(),
            dts: self.packet.dts(),
            duration: self.packet.duration(),
            key: self.packet.is_key(),
            corrupt: self.packet.is_corrupt(),
        }))
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

/// `ts` in `tb` units, in ms (rounded toward zero): how a decoded frame's time is
/// computed, and the job owner's packet times with it.
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
