//! Decoded picture → packed RGB24, byte-identical to `ffmpeg -i SRC -pix_fmt rgb24`.
//!
//! ffmpeg-next's scaler ignores the stream's colour tags (a BT.709 red comes out 230,0,0
//! instead of 251,0,0). The CLI's `scale` filter instead passes the frame's matrix and
//! range to `sws_setColorspaceDetails`; this module does the same, with the CLI's scaler
//! flags, so the same libswscale code path runs and the bytes match.

use super::FrameBuf;
use ffmpeg_next::ffi;
use std::ptr;

/// A decoded picture in the decoder's own pixel format: libavcodec's frame, moved out
/// of the decoder (no pixels copied), on its way to the worker that converts it.
/// Dropping it hands the frame's buffers back to libavcodec's pool.
pub struct Picture {
    frame: ffmpeg_next::frame::Video,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("width", &self.width())
            .field("height", &self.height())
            .finish()
    }
}

impl Picture {
    pub(crate) fn new(frame: ffmpeg_next::frame::Video) -> Picture {
        Picture { frame }
    }

    pub fn width(&self) -> u32 {
        self.frame.width()
    }

    pub fn height(&self) -> u32 {
        self.frame.height()
    }
}

/// Rows per call when converting in strips ([`Converter::convert_rows`]): a multiple of
/// every vertical chroma subsampling libswscale's direct converters handle.
pub const STRIP_ROWS: u32 = 16;

/// Why a frame could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("libswscale cannot convert {format} {width}x{height} to rgb24")]
    Unsupported {
        format: String,
        width: i32,
        height: i32,
    },
    #[error("libswscale failed on a {width}x{height} frame")]
    Failed { width: i32, height: i32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    width: i32,
    height: i32,
    format: i32,
    colorspace: i32,
    range: i32,
}

/// A cached libswscale context, rebuilt when the frame geometry or colour tags change.
pub struct Converter {
    ctx: *mut ffi::SwsContext,
    key: Option<Key>,
    /// Whether strips of this geometry convert exactly like the whole frame: `None`
    /// until checked on the first frame (see [`Converter::strips_exact`]).
    strips: Option<bool>,
}

// SAFETY: the SwsContext is owned exclusively by this value and only used through &mut.
unsafe impl Send for Converter {}

impl Default for Converter {
    fn default() -> Self {
        Converter {
            ctx: ptr::null_mut(),
            key: None,
            strips: None,
        }
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: ctx came from sws_getContext and is freed once.
            unsafe { ffi::sws_freeContext(self.ctx) };
        }
    }
}

/// The matrix the CLI's `scale` filter picks for a frame (`parse_yuv_type` with "auto"):
/// the frame's own, or BT.601 when it is unspecified or not a YUV matrix libswscale knows.
fn matrix_for(colorspace: i32) -> i32 {
    if !(1..=10).contains(&colorspace) || colorspace == 8 {
        ffi::AVColorSpace::AVCOL_SPC_BT470BG as i32
    } else {
        colorspace
    }
}

/// Pixel formats libswscale converts to RGB24 with its direct (row-pair) YUV converter.
fn direct_format(format: i32) -> bool {
    use ffi::AVPixelFormat as F;
    [
        F::AV_PIX_FMT_YUV420P,
        F::AV_PIX_FMT_YUVJ420P,
        F::AV_PIX_FMT_YUV422P,
        F::AV_PIX_FMT_YUVJ422P,
    ]
    .iter()
    .any(|&f| f as i32 == format)
}

fn pix_fmt_name(format: i32) -> String {
    // SAFETY: av_get_pix_fmt_name accepts any value and returns a static string or NULL.
    unsafe {
        let p = ffi::av_get_pix_fmt_name(std::mem::transmute::<i32, ffi::AVPixelFormat>(format));
        if p.is_null() {
            format!("pixel format {format}")
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

impl Converter {
    /// Converts `pic` into `dst` (reshaped to the picture's size).
    pub fn convert(&mut self, pic: &Picture, dst: &mut FrameBuf) -> Result<(), ConvertError> {
        let f = self.prepare(pic)?;
        dst.reshape(f.width as u32, f.height as u32);
        // SAFETY: `dst` was just reshaped to the picture's size.
        unsafe { self.scale_rows(f, 0, f.height as u32, dst, 0) }
    }

    /// Converts image rows `y0 .. y0 + n` of `pic` into rows `at .. at + n` of `dst`,
    /// which must already be `pic`'s width and at least `at + n` rows high. `y0` must be
    /// a multiple of [`STRIP_ROWS`], and the result equals the same rows of
    /// [`Converter::convert`] only where [`Converter::strips_exact`] says so.
    pub fn convert_rows(
        &mut self,
        pic: &Picture,
        y0: u32,
        n: u32,
        dst: &mut FrameBuf,
        at: u32,
    ) -> Result<(), ConvertError> {
        let f = self.prepare(pic)?;
        let (w, h) = (f.width as u32, f.height as u32);
        if dst.width() != w
            || dst.height() < at.saturating_add(n)
            || !y0.is_multiple_of(STRIP_ROWS)
            || y0.checked_add(n).is_none_or(|end| end > h)
        {
            return Err(ConvertError::Failed {
                width: f.width,
                height: f.height,
            });
        }
        // SAFETY: checked just above: the rows exist in the picture and in `dst`.
        unsafe { self.scale_rows(f, y0, n, dst, at) }
    }

    /// Whether converting `pic` in strips of [`STRIP_ROWS`] gives exactly the bytes of
    /// converting it whole. Only libswscale's direct YUV → RGB converters (planar 4:2:0
    /// and 4:2:2, used with the CLI's flags) convert each row pair on its own; even for
    /// those it is checked, on the first picture of each geometry, by doing both and
    /// comparing.
    pub fn strips_exact(&mut self, pic: &Picture) -> Result<bool, ConvertError> {
        self.prepare(pic)?;
        if let Some(ok) = self.strips {
            return Ok(ok);
        }
        let ok = direct_format(self.key.map_or(-1, |k| k.format))
            && pic.height().is_multiple_of(2)
            && self.compare_strips(pic)?;
        if !ok {
            tracing::debug!(
                width = pic.width(),
                height = pic.height(),
                "pictures are converted whole (strips would not be exact)"
            );
        }
        self.strips = Some(ok);
        Ok(ok)
    }

    fn compare_strips(&mut self, pic: &Picture) -> Result<bool, ConvertError> {
        // Once per geometry: two whole-frame buffers, freed when the check is done.
        let (mut whole, mut strips) = (FrameBuf::default(), FrameBuf::default());
        self.convert(pic, &mut whole)?;
        strips.reshape(pic.width(), pic.height());
        let h = pic.height();
        let mut y = 0;
        while y < h {
            let n = STRIP_ROWS.min(h - y);
            self.convert_rows(pic, y, n, &mut strips, y)?;
            y += n;
        }
        Ok(whole.image().data() == strips.image().data())
    }

    /// Checks the picture and (re)builds the context for its geometry and colour tags.
    fn prepare<'p>(&mut self, pic: &'p Picture) -> Result<&'p ffi::AVFrame, ConvertError> {
        // SAFETY: the picture wraps a valid AVFrame holding a decoded picture.
        let f = unsafe { &*pic.frame.as_ptr() };
        let key = Key {
            width: f.width,
            height: f.height,
            format: f.format,
            colorspace: f.colorspace as i32,
            range: f.color_range as i32,
        };
        if f.width <= 0 || f.height <= 0 || f.data[0].is_null() {
            return Err(ConvertError::Failed {
                width: f.width,
                height: f.height,
            });
        }
        if self.key != Some(key) || self.ctx.is_null() {
            self.rebuild(key)?;
            self.strips = None;
        }
        Ok(f)
    }

    /// Runs libswscale on picture rows `y0 .. y0 + n` into `dst` rows `at ..`.
    ///
    /// # Safety
    /// `f` is the prepared picture, `y0 + n <= f.height`, `y0` is a multiple of
    /// [`STRIP_ROWS`] (or 0 with `n == f.height`), and `dst` has `f.width` columns and
    /// at least `at + n` rows.
    unsafe fn scale_rows(
        &mut self,
        f: &ffi::AVFrame,
        y0: u32,
        n: u32,
        dst: &mut FrameBuf,
        at: u32,
    ) -> Result<(), ConvertError> {
        let stride = dst.stride();
        let out = dst.storage_mut()[at as usize * stride..].as_mut_ptr();
        let dst_planes: [*mut u8; 4] = [out, ptr::null_mut(), ptr::null_mut(), ptr::null_mut()];
        let dst_strides: [i32; 4] = [stride as i32, 0, 0, 0];
        // Each call is a whole "frame" to libswscale starting at its row 0: the source
        // planes start at row y0 (chroma planes at y0 >> log2_chroma_h), the output at
        // `out`. Only strips_exact-checked geometries use y0 > 0.
        let mut src: [*const u8; 8] = [ptr::null(); 8];
        // SAFETY: the descriptor of a pixel format libswscale accepted is valid.
        let chroma_shift = unsafe {
            let d =
                ffi::av_pix_fmt_desc_get(std::mem::transmute::<i32, ffi::AVPixelFormat>(f.format));
            if d.is_null() {
                0
            } else {
                u32::from((*d).log2_chroma_h)
            }
        };
        for (p, s) in src.iter_mut().enumerate() {
            if f.data[p].is_null() {
                continue;
            }
            let rows = if p == 1 || p == 2 {
                y0 >> chroma_shift
            } else {
                y0
            };
            // SAFETY: row `rows` of plane p exists (y0 < height); linesize may be negative.
            *s = unsafe { f.data[p].offset(rows as isize * f.linesize[p] as isize) };
        }
        // SAFETY: source planes/linesizes describe rows y0.. of the decoded picture; the
        // destination holds n rows from `out` plus tail padding (FrameBuf::reshape).
        let rows = unsafe {
            ffi::sws_scale(
                self.ctx,
                src.as_ptr(),
                f.linesize.as_ptr(),
                0,
                n as i32,
                dst_planes.as_ptr(),
                dst_strides.as_ptr(),
            )
        };
        if rows != n as i32 {
            return Err(ConvertError::Failed {
                width: f.width,
                height: f.height,
            });
        }
        Ok(())
    }

    fn rebuild(&mut self, key: Key) -> Result<(), ConvertError> {
        if !self.ctx.is_null() {
            // SAFETY: freeing our own context before replacing it.
            unsafe { ffi::sws_freeContext(self.ctx) };
            self.ctx = ptr::null_mut();
            self.key = None;
        }
        let unsupported = || ConvertError::Unsupported {
            format: pix_fmt_name(key.format),
            width: key.width,
            height: key.height,
        };
        // SAFETY: plain FFI calls with valid arguments; results are checked.
        unsafe {
            let src_fmt: ffi::AVPixelFormat =
                std::mem::transmute::<i32, ffi::AVPixelFormat>(key.format);
            if ffi::sws_isSupportedInput(src_fmt) == 0 {
                return Err(unsupported());
            }
            // The CLI's scale filter runs with flags=bicubic.
            let ctx = ffi::sws_getContext(
                key.width,
                key.height,
                src_fmt,
                key.width,
                key.height,
                ffi::AVPixelFormat::AV_PIX_FMT_RGB24,
                ffi::SWS_BICUBIC,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null(),
            );
            if ctx.is_null() {
                return Err(unsupported());
            }
            // Mirror vf_scale: start from the context's details, then take the frame's
            // matrix (input and output table alike) and, when tagged, its range.
            let mut inv_table: *mut i32 = ptr::null_mut();
            let mut table: *mut i32 = ptr::null_mut();
            let (mut in_full, mut out_full, mut brightness, mut contrast, mut saturation) =
                (0, 0, 0, 0, 0);
            ffi::sws_getColorspaceDetails(
                ctx,
                &mut inv_table,
                &mut in_full,
                &mut table,
                &mut out_full,
                &mut brightness,
                &mut contrast,
                &mut saturation,
            );
            let coeffs = ffi::sws_getCoefficients(matrix_for(key.colorspace));
            if key.range != ffi::AVColorRange::AVCOL_RANGE_UNSPECIFIED as i32 {
                in_full = i32::from(key.range == ffi::AVColorRange::AVCOL_RANGE_JPEG as i32);
            }
            ffi::sws_setColorspaceDetails(
                ctx, coeffs, in_full, coeffs, out_full, brightness, contrast, saturation,
            );
            self.ctx = ctx;
        }
        self.key = Some(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn unknown_matrices_fall_back_to_bt601() {
        assert_eq!(matrix_for(1), 1); // BT.709
        assert_eq!(matrix_for(9), 9); // BT.2020 NCL
        assert_eq!(matrix_for(2), 2); // unspecified: libswscale's own default
        for cs in [0, 8, 11, 14, -1] {
            assert_eq!(matrix_for(cs), 5, "colorspace {cs}");
        }
    }
}
