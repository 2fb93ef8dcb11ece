//! Decoded picture → packed RGB24, byte-identical to `ffmpeg -i SRC -pix_fmt rgb24`.
//!
//! ffmpeg-next's scaler ignores the stream's colour tags (a BT.709 red comes out 230,0,0
//! instead of 251,0,0). The CLI's `scale` filter instead passes the frame's matrix and
//! range to `sws_setColorspaceDetails`; this module does the same, with the CLI's scaler
//! flags, so the same libswscale code path runs and the bytes match.

use crate::frames::FrameBuf;
use ffmpeg_next::ffi;
use std::ptr;

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
}

// SAFETY: the SwsContext is owned exclusively by this value and only used through &mut.
unsafe impl Send for Converter {}

impl Default for Converter {
    fn default() -> Self {
        Converter {
            ctx: ptr::null_mut(),
            key: None,
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
    /// Converts `frame` into `dst` (reshaped to the frame's size).
    pub fn convert(
        &mut self,
        frame: &ffmpeg_next::frame::Video,
        dst: &mut FrameBuf,
    ) -> Result<(), ConvertError> {
        // SAFETY: frame wraps a valid AVFrame holding a decoded picture.
        let f = unsafe { &*frame.as_ptr() };
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
        }
        dst.reshape(f.width as u32, f.height as u32);
        let stride = dst.stride() as i32;
        let out = dst.storage_mut().as_mut_ptr();
        let dst_planes: [*mut u8; 4] = [out, ptr::null_mut(), ptr::null_mut(), ptr::null_mut()];
        let dst_strides: [i32; 4] = [stride, 0, 0, 0];
        // SAFETY: the source planes/linesizes describe the decoded picture; the
        // destination holds stride*height bytes plus tail padding (FrameBuf::reshape).
        let rows = unsafe {
            ffi::sws_scale(
                self.ctx,
                f.data.as_ptr() as *const *const u8,
                f.linesize.as_ptr(),
                0,
                f.height,
                dst_planes.as_ptr(),
                dst_strides.as_ptr(),
            )
        };
        if rows != f.height {
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
    use super::matrix_for;

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
