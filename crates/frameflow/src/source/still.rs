//! Still images as inputs (`apply`, and later `watch`): JPEG, PNG, BMP, PPM/PGM and WebP,
//! decoded the way Pillow opens them, into L, RGB or RGBA.
//!
//! JPEG goes through libjpeg-turbo with its default (accurate) IDCT and fancy upsampling,
//! as Pillow's does, and WebP through libwebp, so filtered outputs match Pillow's own.
//!
//! Decompression bombs are refused from the header: every decoder reads the image's
//! dimensions first and returns [`StillError::TooManyPixels`] when `width × height` is over
//! [`StillLimits::max_pixels`] (by default Pillow's `MAX_IMAGE_PIXELS`), before any buffer
//! of the image's size is allocated.

use frameflow_filters::{ImageBuf, Mode};
use std::path::Path;

/// Pillow's `Image.MAX_IMAGE_PIXELS`: the default of `--max-pixels`, for still images
/// and video frames alike (`source::DEFAULT_MAX_PIXELS` is this one; this module stays
/// self-contained for the fuzz targets, which compile it alone).
pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;

/// Limits applied to every decoded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StillLimits {
    /// Largest `width × height` accepted (`--max-pixels`).
    pub max_pixels: u64,
}

impl Default for StillLimits {
    fn default() -> Self {
        StillLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl StillLimits {
    /// Refuses a `width × height` image over the pixel limit.
    pub fn check(&self, path: &Path, width: u64, height: u64) -> Result<(), StillError> {
        let pixels = width.saturating_mul(height);
        if pixels > self.max_pixels {
            return Err(StillError::TooManyPixels {
                path: path.to_path_buf(),
                width,
                height,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// Why an image file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StillError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: empty file", path.display())]
    Empty { path: std::path::PathBuf },
    #[error("{}: not an image frameflow reads (JPEG, PNG, BMP, PPM/PGM, WebP)", path.display())]
    UnknownFormat { path: std::path::PathBuf },
    #[error("{}: {format} decoder: {reason}", path.display())]
    Decode {
        path: std::path::PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error(
        "{}: image is {width}x{height} = {} pixels, over the limit of {limit} ({})",
        path.display(),
        width.saturating_mul(*height),
        crate::setting::Setting::MaxPixels
    )]
    TooManyPixels {
        path: std::path::PathBuf,
        width: u64,
        height: u64,
        limit: u64,
    },
    #[error("{}: image is {width}x{height}: it has no pixels", path.display())]
    NoPixels {
        path: std::path::PathBuf,
        width: u64,
        height: u64,
    },
    #[error("{}: image mode {mode} is not supported (frameflow filters L, RGB and RGBA)", path.display())]
    Mode {
        path: std::path::PathBuf,
        mode: String,
    },
}

/// The container format, from the file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StillFormat {
    Jpeg,
    Png,
    Bmp,
    Pnm,
    Webp,
}

impl StillFormat {
    pub fn sniff(head: &[u8]) -> Option<StillFormat> {
        Some(match head {
            [0xFF, 0xD8, 0xFF, ..] => StillFormat::Jpeg,
            [0x89, b'P', b'N', b'G', ..] => StillFormat::Png,
            [b'B', b'M', ..] => StillFormat::Bmp,
            [b'P', b'1'..=b'6', ..] => StillFormat::Pnm,
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => StillFormat::Webp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            StillFormat::Jpeg => "JPEG",
            StillFormat::Png => "PNG",
            StillFormat::Bmp => "BMP",
            StillFormat::Pnm => "PPM",
            StillFormat::Webp => "WebP",
        }
    }
}

/// The checks on the dimensions a header declares, before anything is decoded: an image
/// with no pixels (a PPM or BMP may say 0 wide) and one over the pixel limit are refused.
fn header_ok(path: &Path, limits: StillLimits, width: u64, height: u64) -> Result<(), StillError> {
    if width == 0 || height == 0 {
        return Err(StillError::NoPixels {
            path: path.to_path_buf(),
            width,
            height,
        });
    }
    limits.check(path, width, height)
}

/// Reads and decodes `path`, refusing images over `limits`.
pub fn read_image(path: &Path, limits: StillLimits) -> Result<ImageBuf, StillError> {
    let data = std::fs::read(path).map_err(|source| StillError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(path, &data, limits)
}

/// Decodes an image held in memory, refusing images over `limits`; `path` is only used
/// in messages.
pub fn decode_image(path: &Path, data: &[u8], limits: StillLimits) -> Result<ImageBuf, StillError> {
    let mut out = ImageBuf::default();
    StillDecoder::with_limits(limits).decode_into(path, data, &mut out)?;
    Ok(out)
}

/// A decoder for one thread that decodes image after image into the caller's buffer: a
/// JPEG is decompressed straight into `out`, which keeps its capacity, so a stream of
/// same-sized JPEGs allocates no pixel buffer per image (the libjpeg-turbo handle is new
/// for each image: one keeps the tables of the image before).
/// Pixels are exactly those of [`decode_image`] (same library, same settings).
#[derive(Default)]
pub struct StillDecoder {
    jpeg: Option<turbojpeg::Decompressor>,
    limits: StillLimits,
}

impl StillDecoder {
    /// A decoder with the default limits ([`DEFAULT_MAX_PIXELS`]).
    pub fn new() -> StillDecoder {
        StillDecoder::default()
    }

    /// A decoder that refuses images over `limits`.
    pub fn with_limits(limits: StillLimits) -> StillDecoder {
        StillDecoder { jpeg: None, limits }
    }

    /// The limits this decoder applies.
    pub fn limits(&self) -> StillLimits {
        self.limits
    }

    /// Decodes `data` into `out` (reshaped to the image). On error `out`'s contents are
    /// unspecified. `path` is only used in messages.
    pub fn decode_into(
        &mut self,
        path: &Path,
        data: &[u8],
        out: &mut ImageBuf,
    ) -> Result<(), StillError> {
        if data.is_empty() {
            return Err(StillError::Empty {
                path: path.to_path_buf(),
            });
        }
        let format = StillFormat::sniff(data).ok_or_else(|| StillError::UnknownFormat {
            path: path.to_path_buf(),
        })?;
        if format == StillFormat::Jpeg {
            let res = self.decode_jpeg(path, data, out);
            if res.is_err() {
                // A fresh handle for the next image: nothing of a failed one is kept.
                self.jpeg = None;
            }
            return res;
        }
        *out = decode_other(path, data, format, self.limits)?;
        Ok(())
    }

    fn decode_jpeg(
        &mut self,
        path: &Path,
        data: &[u8],
        out: &mut ImageBuf,
    ) -> Result<(), StillError> {
        let err = |reason: String| StillError::Decode {
            path: path.to_path_buf(),
            format: StillFormat::Jpeg.name(),
            reason,
        };
        // A fresh handle per image: libjpeg keeps Huffman and quantisation tables from one
        // image to the next in a handle, so a damaged or abbreviated JPEG would decode
        // with the previous image's tables and its pixels would depend on what came
        // before (found by the `still` fuzz target). A handle costs microseconds.
        let d = self
            .jpeg
            .insert(turbojpeg::Decompressor::new().map_err(|e| err(e.to_string()))?);
        let header = d.read_header(data).map_err(|e| err(e.to_string()))?;
        header_ok(path, self.limits, header.width as u64, header.height as u64)?;
        let (mode, pf) = match header.colorspace {
            turbojpeg::Colorspace::Gray => (Mode::L, turbojpeg::PixelFormat::GRAY),
            turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => {
                return Err(StillError::Mode {
                    path: path.to_path_buf(),
                    mode: "CMYK".into(),
                });
            }
            _ => (Mode::Rgb, turbojpeg::PixelFormat::RGB),
        };
        let (w, h) = (header.width, header.height);
        let (Ok(w32), Ok(h32)) = (u32::try_from(w), u32::try_from(h)) else {
            return Err(err(format!("image of {w}x{h} is too large")));
        };
        if w.checked_mul(h)
            .and_then(|n| n.checked_mul(mode.channels()))
            .is_none()
        {
            return Err(err(format!("image of {w}x{h} is too large")));
        }
        out.reshape(w32, h32, mode);
        let pitch = out.stride();
        d.decompress(
            data,
            turbojpeg::Image {
                pixels: out.data_mut(),
                width: w,
                pitch,
                height: h,
                format: pf,
            },
        )
        .map_err(|e| err(e.to_string()))
    }
}

/// PNG, WebP, BMP and PPM: decoded into a new buffer.
fn decode_other(
    path: &Path,
    data: &[u8],
    format: StillFormat,
    limits: StillLimits,
) -> Result<ImageBuf, StillError> {
    let err = |reason: String| StillError::Decode {
        path: path.to_path_buf(),
        format: format.name(),
        reason,
    };
    let mode_err = |mode: &str| StillError::Mode {
        path: path.to_path_buf(),
        mode: mode.to_string(),
    };
    let build = |w: u32, h: u32, mode: Mode, pixels: Vec<u8>| {
        ImageBuf::from_vec(w, h, mode, pixels).map_err(|e| err(e.to_string()))
    };
    match format {
        StillFormat::Jpeg => {
            let mut out = ImageBuf::default();
            StillDecoder::with_limits(limits).decode_jpeg(path, data, &mut out)?;
            Ok(out)
        }
        StillFormat::Png => {
            let mut dec = png::Decoder::new(std::io::Cursor::new(data));
            dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
            // IHDR first: nothing is sized from the header before the limit check.
            let ihdr = dec.read_header_info().map_err(|e| err(e.to_string()))?;
            header_ok(path, limits, ihdr.width.into(), ihdr.height.into())?;
            let mut reader = dec.read_info().map_err(|e| err(e.to_string()))?;
            let src_color = reader.info().color_type;
            if src_color == png::ColorType::Indexed {
                // Pillow opens these as mode P and refuses to filter them.
                return Err(mode_err("P (palette)"));
            }
            let mut pixels = vec![0u8; reader.output_buffer_size()];
            let info = reader
                .next_frame(&mut pixels)
                .map_err(|e| err(e.to_string()))?;
            pixels.truncate(info.buffer_size());
            let mode = match info.color_type {
                png::ColorType::Grayscale => Mode::L,
                png::ColorType::Rgb => Mode::Rgb,
                png::ColorType::Rgba => Mode::Rgba,
                png::ColorType::GrayscaleAlpha => return Err(mode_err("LA")),
                png::ColorType::Indexed => return Err(mode_err("P (palette)")),
            };
            build(info.width, info.height, mode, pixels)
        }
        StillFormat::Webp => {
            let features = webp::BitstreamFeatures::new(data)
                .ok_or_else(|| err("invalid or truncated WebP header".into()))?;
            header_ok(
                path,
                limits,
                features.width().into(),
                features.height().into(),
            )?;
            let img = webp::Decoder::new(data)
                .decode()
                .ok_or_else(|| err("invalid, truncated or animated WebP".into()))?;
            let mode = if img.is_alpha() {
                Mode::Rgba
            } else {
                Mode::Rgb
            };
            build(img.width(), img.height(), mode, img.to_vec())
        }
        StillFormat::Bmp | StillFormat::Pnm => {
            // The header is read by the decoder's constructor; the pixels only by
            // `from_decoder`, after the limit check.
            let cursor = std::io::Cursor::new(data);
            let img = if format == StillFormat::Bmp {
                let dec =
                    image::codecs::bmp::BmpDecoder::new(cursor).map_err(|e| err(e.to_string()))?;
                image_decode(path, dec, limits)
            } else {
                let dec =
                    image::codecs::pnm::PnmDecoder::new(cursor).map_err(|e| err(e.to_string()))?;
                image_decode(path, dec, limits)
            }
            .map_err(|e| match e {
                ImageDecodeError::Limit(e) => e,
                ImageDecodeError::Image(e) => err(e.to_string()),
            })?;
            let (w, h) = (img.width(), img.height());
            match img {
                image::DynamicImage::ImageLuma8(b) => build(w, h, Mode::L, b.into_raw()),
                image::DynamicImage::ImageRgb8(b) => build(w, h, Mode::Rgb, b.into_raw()),
                image::DynamicImage::ImageRgba8(b) => build(w, h, Mode::Rgba, b.into_raw()),
                other => Err(mode_err(&format!("{:?}", other.color()))),
            }
        }
    }
}

enum ImageDecodeError {
    Limit(StillError),
    Image(image::ImageError),
}

/// Checks the dimensions an `image` decoder read from the header, then decodes.
fn image_decode(
    path: &Path,
    mut dec: impl image::ImageDecoder,
    limits: StillLimits,
) -> Result<image::DynamicImage, ImageDecodeError> {
    let (w, h) = dec.dimensions();
    header_ok(path, limits, w.into(), h.into()).map_err(ImageDecodeError::Limit)?;
    // The `image` crate's own allocation cap, as `load_from_memory` applies it.
    dec.set_limits(image::Limits::default())
        .map_err(ImageDecodeError::Image)?;
    image::DynamicImage::from_decoder(dec).map_err(ImageDecodeError::Image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_formats() {
        assert_eq!(
            StillFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(StillFormat::Jpeg)
        );
        assert_eq!(StillFormat::sniff(b"\x89PNG\r\n"), Some(StillFormat::Png));
        assert_eq!(
            StillFormat::sniff(b"P6\n1 1\n255\n"),
            Some(StillFormat::Pnm)
        );
        assert_eq!(
            StillFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(StillFormat::Webp)
        );
        assert_eq!(StillFormat::sniff(b"hello"), None);
    }

    #[test]
    fn refuses_empty_and_garbage() {
        let p = Path::new("x.jpg");
        assert!(matches!(
            decode_image(p, b"", StillLimits::default()),
            Err(StillError::Empty { .. })
        ));
        assert!(matches!(
            decode_image(p, b"hello", StillLimits::default()),
            Err(StillError::UnknownFormat { .. })
        ));
        assert!(matches!(
            decode_image(p, &[0xFF, 0xD8, 0xFF, 0xE0, 0, 1], StillLimits::default()),
            Err(StillError::Decode { .. })
        ));
    }

    #[test]
    fn a_reused_decoder_gives_each_jpeg_its_own_pixels() {
        // A damaged JPEG that decoded with the tables of the JPEG before it.
        let odd = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fuzz/corpus/still/seed-regress-reused-tables.jpg"),
        )
        .unwrap();
        let p = Path::new("x.jpg");
        let fresh = decode_image(p, &odd, StillLimits::default());
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/still");
        for before in [
            "seed-ffmpeg.jpg",
            "seed-gray.jpg",
            "seed-progressive.jpg",
            "seed-rgb.jpg",
        ] {
            let mut dec = StillDecoder::new();
            let mut out = ImageBuf::default();
            let first = std::fs::read(seeds.join(before)).unwrap();
            let _ = dec.decode_into(p, &first, &mut out);
            let reused = dec.decode_into(p, &odd, &mut out);
            match (&fresh, reused) {
                (Ok(img), Ok(())) => assert_eq!(img, &out, "after {before}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!(
                    "after {before}: fresh {:?} vs reused {b:?}",
                    a.as_ref().map(|_| ())
                ),
            }
        }
    }

    fn jpeg(w: usize, h: usize, seed: u8) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h * 3)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(85).unwrap();
        c.compress_to_vec(turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        })
        .unwrap()
    }

    #[test]
    fn reused_decoder_gives_the_same_pixels() {
        let p = Path::new("x.jpg");
        let (a, b) = (jpeg(37, 21, 1), jpeg(16, 40, 9));
        let mut d = StillDecoder::new();
        let mut out = ImageBuf::default();
        for data in [&a, &b, &a] {
            d.decode_into(p, data, &mut out).unwrap();
            assert_eq!(out, decode_image(p, data, StillLimits::default()).unwrap());
        }
        // A failed image leaves the decoder usable.
        assert!(d.decode_into(p, &a[..20], &mut out).is_err());
        d.decode_into(p, &b, &mut out).unwrap();
        assert_eq!(out, decode_image(p, &b, StillLimits::default()).unwrap());
    }

    #[test]
    fn ppm_round_trip() {
        let img = decode_image(
            Path::new("a.ppm"),
            b"P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06",
            StillLimits::default(),
        )
        .unwrap();
        assert_eq!((img.width(), img.height(), img.mode()), (2, 1, Mode::Rgb));
        assert_eq!(img.data(), &[1, 2, 3, 4, 5, 6]);
    }

    /// CRC-32 (ISO-HDLC), for hand-made PNG chunks.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// A PNG whose IHDR says `w`x`h` RGB, with a token IDAT: valid up to the pixels.
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        // zlib stream of a few zero bytes.
        png_chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A real JPEG whose SOF0 is patched to say `w`x`h`.
    fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
        let mut data = jpeg(16, 16, 3);
        let sof = data
            .windows(2)
            .position(|m| m == [0xFF, 0xC0])
            .expect("baseline JPEG has SOF0");
        data[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        data[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        data
    }

    fn bmp_header(w: i32, h: i32) -> Vec<u8> {
        let mut out = b"BM".to_vec();
        out.extend_from_slice(&(14u32 + 40 + 64).to_le_bytes()); // file size
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
        out.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER
        out.extend_from_slice(&w.to_le_bytes());
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // planes
        out.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
        out.extend_from_slice(&[0; 24]); // BI_RGB, sizes, resolution, colours
        out.extend_from_slice(&[0x55; 64]);
        out
    }

    /// A lossless WebP whose VP8L header says `w`x`h` (each 1..=16384).
    fn webp_header(w: u32, h: u32) -> Vec<u8> {
        let bits: u32 = (w - 1) | ((h - 1) << 14); // alpha hint 0, version 0
        let mut vp8l = vec![0x2F];
        vp8l.extend_from_slice(&bits.to_le_bytes());
        vp8l.extend_from_slice(&[0; 16]);
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(4 + 8 + vp8l.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WEBPVP8L");
        out.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
        out.extend_from_slice(&vp8l);
        out
    }

    fn assert_refused(name: &str, data: &[u8], w: u64, h: u64) {
        let path = Path::new(name);
        let start = std::time::Instant::now();
        for res in [
            decode_image(path, data, StillLimits::default()).map(|_| ()),
            StillDecoder::new().decode_into(path, data, &mut ImageBuf::default()),
        ] {
            match res {
                Err(StillError::TooManyPixels {
                    width,
                    height,
                    limit,
                    ..
                }) => assert_eq!((width, height, limit), (w, h, DEFAULT_MAX_PIXELS), "{name}"),
                other => panic!("{name}: expected TooManyPixels, got {other:?}"),
            }
        }
        // Refused from the header: no pixel was decoded (nor a buffer of them filled).
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{name}"
        );
    }

    #[test]
    fn bombs_are_refused_from_the_header() {
        assert_refused("bomb.png", &png_header(20_000, 20_000), 20_000, 20_000);
        assert_refused(
            "bomb.png",
            &png_header(u32::MAX >> 1, 2),
            (u32::MAX >> 1).into(),
            2,
        );
        assert_refused("bomb.jpg", &jpeg_header(60_000, 60_000), 60_000, 60_000);
        assert_refused("bomb.bmp", &bmp_header(20_000, 20_000), 20_000, 20_000);
        // Top-down BMP: negative height.
        assert_refused("bomb.bmp", &bmp_header(20_000, -20_000), 20_000, 20_000);
        assert_refused(
            "bomb.ppm",
            b"P6\n20000 20000\n255\n\x01\x02\x03",
            20_000,
            20_000,
        );
        assert_refused("bomb.pgm", b"P5 100000 100000 255\n\x01", 100_000, 100_000);
        assert_refused("bomb.webp", &webp_header(16_384, 16_384), 16_384, 16_384);
    }

    #[test]
    fn the_refusal_says_why() {
        // As the `frameflow` command spells the setting (the library alone says
        // `max_pixels`).
        crate::setting::spell_settings(vec![(
            crate::setting::Setting::MaxPixels,
            "--max-pixels".into(),
        )]);
        let e = decode_image(
            Path::new("in/big.ppm"),
            b"P6\n20000 20000\n255\n",
            StillLimits::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "in/big.ppm: image is 20000x20000 = 400000000 pixels, over the limit of 178956970 \
             (--max-pixels)"
        );
    }

    /// A 7x5 image in every format: accepted at a limit of 35 pixels, refused at 34.
    #[test]
    fn the_limit_is_inclusive_for_every_format() {
        let (w, h) = (7u32, 5u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7) as u8).collect();
        let mut png_data = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_data, w, h);
            enc.set_color(png::ColorType::Rgb);
            let mut wr = enc.write_header().unwrap();
            wr.write_image_data(&rgb).unwrap();
        }
        let mut bmp = Vec::new();
        image::codecs::bmp::BmpEncoder::new(&mut bmp)
            .encode(&rgb, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        ppm.extend_from_slice(&rgb);
        let webp_data = webp::Encoder::from_rgb(&rgb, w, h)
            .encode_lossless()
            .to_vec();
        let files = [
            ("a.jpg", jpeg(w as usize, h as usize, 5)),
            ("a.png", png_data),
            ("a.bmp", bmp),
            ("a.ppm", ppm),
            ("a.webp", webp_data),
        ];
        for (name, data) in &files {
            let p = Path::new(name);
            let img = decode_image(p, data, StillLimits { max_pixels: 35 })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((img.width(), img.height()), (w, h), "{name}");
            let mut d = StillDecoder::with_limits(StillLimits { max_pixels: 34 });
            assert!(
                matches!(
                    d.decode_into(p, data, &mut ImageBuf::default()),
                    Err(StillError::TooManyPixels {
                        width: 7,
                        height: 5,
                        limit: 34,
                        ..
                    })
                ),
                "{name}"
            );
        }
    }

    /// Found by fuzzing (fuzz/corpus/still/seed-regress-zero-width.ppm): a PPM header
    /// saying `000 20000` decoded to a 0x20000 image with no pixels.
    #[test]
    fn images_without_pixels_are_refused() {
        for (name, data) in [
            ("zero.ppm", &b"P6\n000 20000\n255\n\x01\x02\x03"[..]),
            ("zero.pgm", b"P5 3 0 255\n"),
            ("zero.bmp", &bmp_header(0, 5)),
            ("zero.bmp", &bmp_header(5, 0)),
        ] {
            match decode_image(Path::new(name), data, StillLimits::default()) {
                Err(StillError::NoPixels { width, height, .. }) => {
                    assert_eq!(width.min(height), 0, "{name}")
                }
                // The decoder may refuse it itself first; it must not succeed.
                Err(StillError::Decode { .. }) => {}
                other => panic!("{name}: expected NoPixels, got {other:?}"),
            }
        }
        let e = decode_image(
            Path::new("z.ppm"),
            b"P6\n000 20000\n255\n",
            StillLimits::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "z.ppm: image is 0x20000: it has no pixels");
    }
}
