//! `frameflow probe`: the streams of an input, as libavformat sees them.

use super::{InputSpec, OpenOptions, SourceError, open_input};
use ff::ffi;
use ffmpeg_next as ff;
use serde::Serialize;
use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// One stream of a probed input.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStream {
    pub index: usize,
    pub kind: String,
    pub codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pix_fmt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_space: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_primaries: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_transfer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<i64>,
}

/// What `probe` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeInfo {
    pub input: String,
    pub format: String,
    pub format_long: String,
    pub duration: Option<f64>,
    pub bit_rate: Option<i64>,
    pub streams: Vec<ProbeStream>,
}

fn cstr(p: *const c_char) -> Option<String> {
    // SAFETY: FFmpeg's *_name functions return NULL or a static NUL-terminated string.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Opens `spec` and describes its streams.
pub fn probe(spec: &InputSpec, opts: &OpenOptions) -> Result<ProbeInfo, SourceError> {
    let demux = open_input(spec, opts, Arc::new(AtomicBool::new(false)))?;
    let input = demux.input();
    let dur = input.duration();
    let fmt = input.format();
    let mut streams = Vec::new();
    for s in input.streams() {
        // SAFETY: the stream and its codecpar belong to the open input.
        let par = unsafe { &*(*s.as_ptr()).codecpar };
        let kind = format!("{:?}", s.parameters().medium()).to_lowercase();
        let codec = s.parameters().id().name().to_string();
        let tb = s.time_base();
        let duration = (s.duration() > 0 && tb.denominator() != 0)
            .then(|| s.duration() as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator()));
        let mut ps = ProbeStream {
            index: s.index(),
            kind,
            codec,
            width: None,
            height: None,
            pix_fmt: None,
            frame_rate: None,
            color_space: None,
            color_range: None,
            color_primaries: None,
            color_transfer: None,
            sample_rate: None,
            duration,
            frames: (s.frames() > 0).then(|| s.frames()),
        };
        if par.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_VIDEO {
            ps.width = Some(par.width as u32);
            ps.height = Some(par.height as u32);
            // SAFETY: name lookups accept any enum value.
            unsafe {
                ps.pix_fmt = cstr(ffi::av_get_pix_fmt_name(std::mem::transmute::<
                    i32,
                    ffi::AVPixelFormat,
                >(par.format)));
                ps.color_space = cstr(ffi::av_color_space_name(par.color_space));
                ps.color_range = cstr(ffi::av_color_range_name(par.color_range));
                ps.color_primaries = cstr(ffi::av_color_primaries_name(par.color_primaries));
                ps.color_transfer = cstr(ffi::av_color_transfer_name(par.color_trc));
            }
            let r = s.avg_frame_rate();
            let r = if r.denominator() != 0 && r.numerator() > 0 {
                r
            } else {
                s.rate()
            };
            ps.frame_rate = (r.denominator() != 0 && r.numerator() > 0).then(|| f64::from(r));
        } else if par.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_AUDIO {
            ps.sample_rate = Some(par.sample_rate as u32);
        }
        streams.push(ps);
    }
    // SAFETY: the input context is open.
    let bit_rate = unsafe { (*input.as_ptr()).bit_rate };
    Ok(ProbeInfo {
        input: spec.raw.clone(),
        format: fmt.name().to_string(),
        format_long: fmt.description().to_string(),
        duration: (dur > 0).then(|| dur as f64 / f64::from(ffi::AV_TIME_BASE)),
        bit_rate: (bit_rate > 0).then_some(bit_rate),
        streams,
    })
}

impl std::fmt::Display for ProbeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "input: {}", self.input)?;
        write!(f, "format: {} ({})", self.format, self.format_long)?;
        match self.duration {
            Some(d) => write!(f, ", duration {d:.3} s")?,
            None => write!(f, ", duration unknown (live?)")?,
        }
        if let Some(b) = self.bit_rate {
            write!(f, ", {} kb/s", b / 1000)?;
        }
        writeln!(f)?;
        for s in &self.streams {
            write!(f, "stream #{}: {} {}", s.index, s.kind, s.codec)?;
            if let (Some(w), Some(h)) = (s.width, s.height) {
                write!(f, ", {w}x{h}")?;
            }
            if let Some(p) = &s.pix_fmt {
                write!(f, ", {p}")?;
            }
            if let Some(r) = s.frame_rate {
                write!(f, ", {} fps", (r * 1000.0).round() / 1000.0)?;
            }
            if s.kind == "video" {
                let tag = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
                write!(
                    f,
                    ", colour {} range {} primaries {} transfer {}",
                    tag(&s.color_space),
                    tag(&s.color_range),
                    tag(&s.color_primaries),
                    tag(&s.color_transfer)
                )?;
            }
            if let Some(sr) = s.sample_rate {
                write!(f, ", {sr} Hz")?;
            }
            if let Some(d) = s.duration {
                write!(f, ", {d:.3} s")?;
            }
            if let Some(n) = s.frames {
                write!(f, ", {n} frames")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
