//! Image containers: a borrowed view ([`ImageRef`]) and an owned packed buffer
//! ([`ImageBuf`]), both 8 bits per channel, channels interleaved.

use crate::FilterError;
use std::fmt;

/// Pixel layout of an 8-bit image, named as in Pillow.
///
/// More modes may be added, so a `match` on it outside this crate needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// One channel, grey levels (Pillow `"L"`).
    L,
    /// Three interleaved channels R, G, B (Pillow `"RGB"`).
    Rgb,
    /// Four interleaved channels R, G, B, A, not premultiplied (Pillow `"RGBA"`).
    Rgba,
}

impl Mode {
    /// Number of bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            Mode::L => 1,
            Mode::Rgb => 3,
            Mode::Rgba => 4,
        }
    }

    /// Pillow's name for the mode: `"L"`, `"RGB"` or `"RGBA"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::L => "L",
            Mode::Rgb => "RGB",
            Mode::Rgba => "RGBA",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of bytes needed for `height` rows of `row_bytes` with the given stride
/// (the last row need not be padded). `None` on overflow.
fn needed_len(row_bytes: usize, height: u32, stride: usize) -> Option<usize> {
    if height == 0 {
        return Some(0);
    }
    stride
        .checked_mul(height as usize - 1)?
        .checked_add(row_bytes)
}

/// A borrowed 8-bit image. Rows start every `stride` bytes; only the first
/// `width * channels` bytes of each row are pixels (rows may be padded).
///
/// Built with [`ImageRef::new`] (which checks the geometry against the data) or
/// [`ImageBuf::as_ref`]; read with [`data`](ImageRef::data), [`width`](ImageRef::width),
/// [`height`](ImageRef::height), [`stride`](ImageRef::stride) and
/// [`mode`](ImageRef::mode).
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// Pixel bytes, row after row.
    pub(crate) data: &'a [u8],
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
    /// Distance in bytes between the starts of two consecutive rows.
    pub(crate) stride: usize,
    /// Channel layout.
    pub(crate) mode: Mode,
}

impl<'a> ImageRef<'a> {
    /// Creates a view, checking that `data` holds `height` rows of `stride` bytes
    /// (the last one may stop after its pixels) and that `stride >= width * channels`.
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
        mode: Mode,
    ) -> Result<Self, FilterError> {
        let img = ImageRef {
            data,
            width,
            height,
            stride,
            mode,
        };
        img.validate()?;
        Ok(img)
    }

    /// Checks the invariants that [`ImageRef::new`] checks. Every view this crate hands
    /// out satisfies them; this is kept for callers that want to assert it.
    pub fn validate(&self) -> Result<(), FilterError> {
        let err = |reason: String| FilterError::InvalidImage {
            width: self.width,
            height: self.height,
            mode: self.mode,
            reason,
        };
        let row = (self.width as usize)
            .checked_mul(self.mode.channels())
            .ok_or_else(|| err("row size overflows".into()))?;
        if self.stride < row {
            return Err(err(format!(
                "stride {} is less than the {row} bytes of a row",
                self.stride
            )));
        }
        let need = needed_len(row, self.height, self.stride)
            .ok_or_else(|| err("image size overflows".into()))?;
        if self.data.len() < need {
            return Err(err(format!(
                "{} bytes of data, need {need} (stride {})",
                self.data.len(),
                self.stride
            )));
        }
        Ok(())
    }

    /// The pixel bytes, row after row (`stride` apart; the last row may stop after its
    /// pixels).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Distance in bytes between the starts of two consecutive rows.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Channel layout.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Number of pixel bytes in a row (`width * channels`).
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.mode.channels()
    }

    /// The pixel bytes of row `y` (`width * channels` bytes, no padding).
    ///
    /// # Panics
    /// If `y >= height` or the view is inconsistent (see [`ImageRef::validate`]).
    pub fn row(&self, y: u32) -> &'a [u8] {
        assert!(y < self.height, "row {y} out of {} rows", self.height);
        let start = y as usize * self.stride;
        &self.data[start..start + self.row_bytes()]
    }

    /// Whether rows are contiguous (no padding), so [`data`](ImageRef::data) can be used
    /// as one slice.
    pub fn is_packed(&self) -> bool {
        self.stride == self.row_bytes() || self.height <= 1
    }
}

/// An owned, packed 8-bit image (`stride == width * channels`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuf {
    data: Vec<u8>,
    width: u32,
    height: u32,
    mode: Mode,
}

impl Default for ImageBuf {
    /// An empty 0×0 L image (allocates nothing).
    fn default() -> Self {
        ImageBuf {
            data: Vec::new(),
            width: 0,
            height: 0,
            mode: Mode::L,
        }
    }
}

impl ImageBuf {
    /// A black (all zero) image.
    pub fn new(width: u32, height: u32, mode: Mode) -> Self {
        let mut buf = ImageBuf::default();
        buf.reshape(width, height, mode);
        buf
    }

    /// Wraps packed pixel bytes; `data.len()` must be exactly `width * height * channels`.
    pub fn from_vec(
        width: u32,
        height: u32,
        mode: Mode,
        data: Vec<u8>,
    ) -> Result<Self, FilterError> {
        let need = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(mode.channels()));
        if need != Some(data.len()) {
            return Err(FilterError::InvalidImage {
                width,
                height,
                mode,
                reason: format!(
                    "{} bytes of data, need exactly width*height*channels = {}",
                    data.len(),
                    need.map_or_else(|| "overflow".to_string(), |n| n.to_string())
                ),
            });
        }
        Ok(ImageBuf {
            data,
            width,
            height,
            mode,
        })
    }

    /// Changes the geometry. The buffer keeps its capacity, so this allocates only when
    /// the new image is larger than any it held before. Pixel contents afterwards are
    /// unspecified (stale bytes are kept, new bytes are zero).
    ///
    /// # Panics
    /// If `width * height * channels` overflows `usize`.
    pub fn reshape(&mut self, width: u32, height: u32, mode: Mode) {
        let len = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(mode.channels()))
            .expect("image size overflows usize");
        self.data.resize(len, 0);
        self.width = width;
        self.height = height;
        self.mode = mode;
    }

    /// A borrowed view of the whole image.
    pub fn as_ref(&self) -> ImageRef<'_> {
        ImageRef {
            data: &self.data,
            width: self.width,
            height: self.height,
            stride: self.stride(),
            mode: self.mode,
        }
    }

    /// The packed pixel bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The packed pixel bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Consumes the buffer, returning its bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Channel layout.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Bytes per row (`width * channels`; rows are packed).
    pub fn stride(&self) -> usize {
        self.width as usize * self.mode.channels()
    }

    /// Copies `src` (any stride) into this buffer, reshaping it.
    pub fn copy_from(&mut self, src: ImageRef<'_>) {
        self.reshape(src.width, src.height, src.mode);
        let rb = src.row_bytes();
        if rb == 0 {
            return;
        }
        if src.is_packed() {
            let n = self.data.len();
            self.data.copy_from_slice(&src.data[..n]);
        } else {
            for (y, out) in self.data.chunks_exact_mut(rb).enumerate() {
                out.copy_from_slice(src.row(y as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_and_channels() {
        assert_eq!(Mode::L.channels(), 1);
        assert_eq!(Mode::Rgb.channels(), 3);
        assert_eq!(Mode::Rgba.channels(), 4);
        assert_eq!(Mode::Rgba.name(), "RGBA");
        assert_eq!(Mode::Rgb.to_string(), "RGB");
    }

    #[test]
    fn imageref_validates_lengths() {
        let data = [0u8; 20];
        // 3x2 RGB with stride 10: needs 10 + 9 = 19 bytes.
        let r = ImageRef::new(&data, 3, 2, 10, Mode::Rgb).unwrap();
        assert_eq!(r.row(1), &data[10..19]);
        assert!(ImageRef::new(&data[..18], 3, 2, 10, Mode::Rgb).is_err());
        let e = ImageRef::new(&data, 4, 2, 10, Mode::Rgb).unwrap_err();
        assert!(e.to_string().contains("stride 10"), "{e}");
        assert!(ImageRef::new(&data, u32::MAX, u32::MAX, usize::MAX, Mode::Rgba).is_err());
    }

    #[test]
    fn reshape_reuses_capacity() {
        let mut b = ImageBuf::new(8, 8, Mode::Rgba);
        let ptr = b.data().as_ptr();
        b.reshape(4, 4, Mode::Rgb);
        assert_eq!(b.data().len(), 48);
        b.reshape(8, 8, Mode::Rgba);
        assert_eq!(b.data().as_ptr(), ptr);
        assert_eq!(b.stride(), 32);
    }

    #[test]
    fn from_vec_checks_len() {
        assert!(ImageBuf::from_vec(2, 2, Mode::L, vec![0; 4]).is_ok());
        assert!(ImageBuf::from_vec(2, 2, Mode::L, vec![0; 5]).is_err());
    }

    #[test]
    fn copy_from_padded() {
        let data: Vec<u8> = (0..12).collect();
        let src = ImageRef::new(&data, 2, 2, 6, Mode::L).unwrap();
        let mut b = ImageBuf::default();
        b.copy_from(src);
        assert_eq!(b.data(), &[0, 1, 6, 7]);
    }
}
