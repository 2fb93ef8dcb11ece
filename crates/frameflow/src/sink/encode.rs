//! Image encoders. One `Encoder` per worker thread: it keeps its output buffer, its
//! packing scratch and its libjpeg-turbo handle between frames, so encoding allocates
//! nothing per frame once the buffers have grown (WebP aside: libwebp owns its memory).

use frameflow_filters::{ImageBuf, ImageRef, Mode};
use std::collections::HashMap;
use std::str::FromStr;

/// The output formats `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Bmp,
    Ppm,
}

impl ImageFormat {
    /// The extension `{ext}` expands to.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Ppm => "ppm",
        }
    }

    /// The format a file extension implies, if it is one of ours.
    pub fn from_extension(ext: &str) -> Option<ImageFormat> {
        ext.parse().ok()
    }

    /// Whether this format can store `mode` as it is (Pillow's save rules).
    pub fn supports(self, mode: Mode) -> bool {
        match self {
            ImageFormat::Jpeg | ImageFormat::Ppm => matches!(mode, Mode::L | Mode::Rgb),
            ImageFormat::Png | ImageFormat::Webp | ImageFormat::Bmp => true,
        }
    }
}

impl FromStr for ImageFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => ImageFormat::Jpeg,
            "png" => ImageFormat::Png,
            "webp" => ImageFormat::Webp,
            "bmp" => ImageFormat::Bmp,
            "ppm" | "pgm" | "pnm" => ImageFormat::Ppm,
            other => {
                return Err(format!(
                    "unknown image format '{other}' (expected jpg, png, webp, bmp or ppm)"
                ));
            }
        })
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "{format} cannot store mode {mode} (Pillow refuses it too); add a grayscale step or choose png"
    )]
    UnsupportedMode {
        format: ImageFormat,
        mode: &'static str,
    },
    #[error("JPEG encoder (libjpeg-turbo): {0}")]
    Jpeg(#[from] turbojpeg::Error),
    #[error("JPEG row encoder ({step}): {reason}")]
    JpegRows { step: &'static str, reason: String },
    #[error("PNG encoder: {0}")]
    Png(#[from] png::EncodingError),
    #[error("WebP encoder: {0}")]
    Webp(String),
    #[error("image of {width}x{height} is too large for {format}")]
    TooLarge {
        format: ImageFormat,
        width: u32,
        height: u32,
    },
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    pub format: ImageFormat,
    /// 1..=100, JPEG and WebP.
    pub quality: u8,
}

/// A reusable encoder for one worker.
pub struct Encoder {
    opts: EncodeOptions,
    jpeg: Option<turbojpeg::Compressor>,
    jpeg_subsamp: Option<turbojpeg::Subsamp>,
    out: Vec<u8>,
    packed: Vec<u8>,
}

impl Encoder {
    pub fn new(opts: EncodeOptions) -> Result<Encoder, EncodeError> {
        let jpeg = if opts.format == ImageFormat::Jpeg {
            let mut c = turbojpeg::Compressor::new()?;
            c.set_quality(i32::from(opts.quality.clamp(1, 100)))?;
            Some(c)
        } else {
            None
        };
        Ok(Encoder {
            opts,
            jpeg,
            jpeg_subsamp: None,
            out: Vec::new(),
            packed: Vec::new(),
        })
    }

    pub fn options(&self) -> EncodeOptions {
        self.opts
    }

    /// Encodes `img` and returns the file's bytes (valid until the next call).
    pub fn encode(&mut self, img: ImageRef<'_>) -> Result<&[u8], EncodeError> {
        let format = self.opts.format;
        if !format.supports(img.mode()) {
            return Err(EncodeError::UnsupportedMode {
                format,
                mode: img.mode().name(),
            });
        }
        if format == ImageFormat::Jpeg {
            let n = self.encode_jpeg(img)?;
            return Ok(&self.out[..n]);
        }
        self.out.clear();
        match format {
            ImageFormat::Jpeg => {}
            ImageFormat::Png => self.encode_png(img)?,
            ImageFormat::Webp => self.encode_webp(img)?,
            ImageFormat::Bmp => encode_bmp(img, &mut self.out)?,
            ImageFormat::Ppm => encode_ppm(img, &mut self.out),
        }
        Ok(&self.out)
    }

    /// Encodes into `self.out`, which keeps its length (libjpeg-turbo's worst case) between
    /// frames so that it is not zeroed again each time; returns the JPEG's length.
    fn encode_jpeg(&mut self, img: ImageRef<'_>) -> Result<usize, EncodeError> {
        let Some(c) = self.jpeg.as_mut() else {
            // Constructed for another format: cannot happen through `new`, but stay total.
            return Err(EncodeError::Jpeg(turbojpeg::Error::Null));
        };
        // Pillow saves RGB as 4:2:0 at quality 75, L as grayscale.
        let (pf, subsamp) = match img.mode() {
            Mode::L => (turbojpeg::PixelFormat::GRAY, turbojpeg::Subsamp::Gray),
            _ => (turbojpeg::PixelFormat::RGB, turbojpeg::Subsamp::Sub2x2),
        };
        if self.jpeg_subsamp != Some(subsamp) {
            c.set_subsamp(subsamp)?;
            self.jpeg_subsamp = Some(subsamp);
        }
        let (w, h) = (img.width() as usize, img.height() as usize);
        let need = c.buf_len(w, h)?;
        if self.out.len() < need {
            // Zeroed by the allocator (fresh pages, faulted in only where written): the
            // worst-case bound is several times the usual JPEG.
            self.out = vec![0; need];
        }
        let n = c.compress_to_slice(
            turbojpeg::Image {
                pixels: img.data(),
                width: w,
                pitch: img.stride(),
                height: h,
                format: pf,
            },
            &mut self.out,
        )?;
        Ok(n)
    }

    fn encode_png(&mut self, img: ImageRef<'_>) -> Result<(), EncodeError> {
        let data = pack(img, &mut self.packed);
        let color = match img.mode() {
            Mode::L => png::ColorType::Grayscale,
            Mode::Rgb => png::ColorType::Rgb,
            Mode::Rgba => png::ColorType::Rgba,
            other => return Err(unsupported(ImageFormat::Png, other)),
        };
        let mut enc = png::Encoder::new(&mut self.out, img.width(), img.height());
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header()?;
        w.write_image_data(data)?;
        w.finish()?;
        Ok(())
    }

    fn encode_webp(&mut self, img: ImageRef<'_>) -> Result<(), EncodeError> {
        let (w, h) = (img.width(), img.height());
        let mem = match img.mode() {
            Mode::L => {
                // libwebp has no grayscale input: expand to RGB like Pillow does.
                self.packed.clear();
                for y in 0..h {
                    for &v in img.row(y) {
                        self.packed.extend_from_slice(&[v, v, v]);
                    }
                }
                webp::Encoder::from_rgb(&self.packed, w, h).encode(f32::from(self.opts.quality))
            }
            Mode::Rgb => {
                let data = pack(img, &mut self.packed);
                webp::Encoder::from_rgb(data, w, h).encode(f32::from(self.opts.quality))
            }
            Mode::Rgba => {
                let data = pack(img, &mut self.packed);
                webp::Encoder::from_rgba(data, w, h).encode(f32::from(self.opts.quality))
            }
            other => return Err(unsupported(ImageFormat::Webp, other)),
        };
        if mem.is_empty() {
            return Err(EncodeError::Webp(format!(
                "libwebp could not encode a {w}x{h} image"
            )));
        }
        self.out.extend_from_slice(&mem);
        Ok(())
    }
}

/// One encoder per output format, created on first use and kept (one set per worker),
/// for commands whose output format follows each input (`apply`, `watch`).
pub struct EncoderSet {
    quality: u8,
    encoders: HashMap<ImageFormat, Encoder>,
    rgb: ImageBuf,
}

impl EncoderSet {
    pub fn new(quality: u8) -> EncoderSet {
        EncoderSet {
            quality,
            encoders: HashMap::new(),
            rgb: ImageBuf::default(),
        }
    }

    /// Encodes `img` as `format`. An RGBA image goes to a format without alpha (JPEG, PPM)
    /// as RGB, its alpha dropped (`convert("RGB")`); other modes are kept.
    pub fn encode(&mut self, format: ImageFormat, img: ImageRef<'_>) -> Result<&[u8], EncodeError> {
        let img = if img.mode() == Mode::Rgba && !format.supports(Mode::Rgba) {
            strip_alpha(img, &mut self.rgb);
            self.rgb.as_ref()
        } else {
            img
        };
        let enc = match self.encoders.entry(format) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Encoder::new(EncodeOptions {
                    format,
                    quality: self.quality,
                })?)
            }
        };
        enc.encode(img)
    }
}

/// Drops the alpha band of an RGBA image (`convert("RGB")`).
pub fn strip_alpha(img: ImageRef<'_>, out: &mut ImageBuf) {
    out.reshape(img.width(), img.height(), Mode::Rgb);
    let row_out = img.width() as usize * 3;
    if row_out == 0 {
        return;
    }
    for (y, dst) in out.data_mut().chunks_exact_mut(row_out).enumerate() {
        for (d, s) in dst
            .chunks_exact_mut(3)
            .zip(img.row(y as u32).chunks_exact(4))
        {
            d.copy_from_slice(&s[..3]);
        }
    }
}

/// The error for a mode this encoder has no layout for (`Mode` is non-exhaustive: a
/// mode added to `frameflow-filters` is refused here until an encoder handles it).
fn unsupported(format: ImageFormat, mode: Mode) -> EncodeError {
    EncodeError::UnsupportedMode {
        format,
        mode: mode.name(),
    }
}

/// Returns the image's bytes without row padding, copying into `scratch` only when needed.
fn pack<'a>(img: ImageRef<'a>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let row = img.width() as usize * img.mode().channels();
    let total = row * img.height() as usize;
    if img.stride() == row {
        return &img.data()[..total];
    }
    scratch.clear();
    for y in 0..img.height() {
        scratch.extend_from_slice(img.row(y));
    }
    scratch
}

/// BMP as Pillow writes it: 8-bit with a grey palette for L, 24-bit BGR for RGB,
/// 32-bit BGRA for RGBA; rows bottom-up, padded to 4 bytes.
fn encode_bmp(img: ImageRef<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let bpp: usize = match img.mode() {
        Mode::L => 8,
        Mode::Rgb => 24,
        Mode::Rgba => 32,
        other => return Err(unsupported(ImageFormat::Bmp, other)),
    };
    let row = (w * bpp / 8).div_ceil(4) * 4;
    let palette = if img.mode() == Mode::L { 256 * 4 } else { 0 };
    let offset = 14 + 40 + palette;
    let size = row
        .checked_mul(h)
        .and_then(|s| s.checked_add(offset))
        .filter(|s| *s <= u32::MAX as usize && w <= i32::MAX as usize && h <= i32::MAX as usize)
        .ok_or(EncodeError::TooLarge {
            format: ImageFormat::Bmp,
            width: img.width(),
            height: img.height(),
        })?;
    out.reserve(size);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(offset as u32).to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(w as i32).to_le_bytes());
    out.extend_from_slice(&(h as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&(bpp as u16).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
    out.extend_from_slice(&((row * h) as u32).to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes()); // 72 dpi
    out.extend_from_slice(&2835u32.to_le_bytes());
    let colours: u32 = if img.mode() == Mode::L { 256 } else { 0 };
    out.extend_from_slice(&colours.to_le_bytes());
    out.extend_from_slice(&colours.to_le_bytes());
    if img.mode() == Mode::L {
        for i in 0..=255u8 {
            out.extend_from_slice(&[i, i, i, 0]);
        }
    }
    let pad = row - w * bpp / 8;
    for y in (0..img.height()).rev() {
        let src = img.row(y);
        match img.mode() {
            Mode::L => out.extend_from_slice(src),
            Mode::Rgb => {
                for px in src.chunks_exact(3) {
                    out.extend_from_slice(&[px[2], px[1], px[0]]);
                }
            }
            Mode::Rgba => {
                for px in src.chunks_exact(4) {
                    out.extend_from_slice(&[px[2], px[1], px[0], px[3]]);
                }
            }
            other => return Err(unsupported(ImageFormat::Bmp, other)),
        }
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    Ok(())
}

/// Binary PPM (P6) for RGB, PGM (P5) for L.
fn encode_ppm(img: ImageRef<'_>, out: &mut Vec<u8>) {
    let magic = if img.mode() == Mode::L { "P5" } else { "P6" };
    out.extend_from_slice(format!("{magic}\n{} {}\n255\n", img.width(), img.height()).as_bytes());
    for y in 0..img.height() {
        out.extend_from_slice(img.row(y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_image(w: u32, h: u32, stride: usize) -> Vec<u8> {
        let mut v = vec![0u8; stride * h as usize];
        for y in 0..h as usize {
            for x in 0..w as usize {
                let p = y * stride + x * 3;
                v[p] = (x * 40) as u8;
                v[p + 1] = (y * 50) as u8;
                v[p + 2] = 200;
            }
        }
        v
    }

    #[test]
    fn png_round_trips_padded_rows() {
        let (w, h, stride) = (5u32, 3u32, 32usize);
        let data = rgb_image(w, h, stride);
        let img = ImageRef::new(&data, w, h, stride, Mode::Rgb).unwrap();
        let mut enc = Encoder::new(EncodeOptions {
            format: ImageFormat::Png,
            quality: 75,
        })
        .unwrap();
        let bytes = enc.encode(img).unwrap().to_vec();
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (w, h));
        for y in 0..h {
            assert_eq!(
                &buf[y as usize * 15..][..15],
                img.row(y),
                "row {y} differs after a PNG round trip"
            );
        }
    }

    #[test]
    fn jpeg_has_markers_and_refuses_rgba() {
        let (w, h) = (16u32, 16u32);
        let data = rgb_image(w, h, 48);
        let img = ImageRef::new(&data, w, h, 48, Mode::Rgb).unwrap();
        let mut enc = Encoder::new(EncodeOptions {
            format: ImageFormat::Jpeg,
            quality: 75,
        })
        .unwrap();
        let bytes = enc.encode(img).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9]);
        let rgba = vec![0u8; 16 * 16 * 4];
        let img = ImageRef::new(&rgba, 16, 16, 64, Mode::Rgba).unwrap();
        assert!(matches!(
            enc.encode(img),
            Err(EncodeError::UnsupportedMode { .. })
        ));
    }

    #[test]
    fn bmp_and_ppm_headers() {
        let data = rgb_image(3, 2, 9);
        let img = ImageRef::new(&data, 3, 2, 9, Mode::Rgb).unwrap();
        let mut out = Vec::new();
        encode_bmp(img, &mut out).unwrap();
        assert_eq!(&out[..2], b"BM");
        assert_eq!(out.len(), 54 + 12 * 2);
        // bottom-up, BGR: first stored pixel is (0,1) = (0,50,200) → 200,50,0
        assert_eq!(&out[54..57], &[200, 50, 0]);
        let mut out = Vec::new();
        encode_ppm(img, &mut out);
        assert!(out.starts_with(b"P6\n3 2\n255\n"));
        assert_eq!(out.len(), 11 + 18);
    }

    #[test]
    fn encoder_set_drops_alpha_only_where_needed() {
        let rgba = [10u8, 20, 30, 40, 50, 60, 70, 80];
        let img = ImageRef::new(&rgba, 2, 1, 8, Mode::Rgba).unwrap();
        let mut set = EncoderSet::new(75);
        let ppm = set.encode(ImageFormat::Ppm, img).unwrap().to_vec();
        assert_eq!(&ppm[ppm.len() - 6..], &[10, 20, 30, 50, 60, 70]);
        let png = set.encode(ImageFormat::Png, img).unwrap();
        assert_eq!(png[25], 6, "PNG keeps RGBA (colour type 6)");
    }

    #[test]
    fn format_names() {
        assert_eq!("JPEG".parse::<ImageFormat>().unwrap(), ImageFormat::Jpeg);
        assert_eq!(ImageFormat::from_extension("png"), Some(ImageFormat::Png));
        assert!("gif".parse::<ImageFormat>().is_err());
    }
}
