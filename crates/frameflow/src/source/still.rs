//! Still images as inputs (`apply`, and later `watch`): JPEG, PNG, BMP, PPM/PGM and WebP,
//! decoded the way Pillow opens them, into L, RGB or RGBA.
//!
//! JPEG goes through libjpeg-turbo with its default (accurate) IDCT and fancy upsampling,
//! as Pillow's does, and WebP through libwebp, so filtered outputs match Pillow's own.

use frameflow_filters::{ImageBuf, Mode};
use std::path::Path;

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

/// Reads and decodes `path`.
pub fn read_image(path: &Path) -> Result<ImageBuf, StillError> {
    let data = std::fs::read(path).map_err(|source| StillError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(path, &data)
}

/// Decodes an image held in memory; `path` is only used in messages.
pub fn decode_image(path: &Path, data: &[u8]) -> Result<ImageBuf, StillError> {
    let mut out = ImageBuf::default();
    StillDecoder::new().decode_into(path, data, &mut out)?;
    Ok(out)
}

/// A decoder for one thread that decodes image after image into the caller's buffer: it
/// keeps its libjpeg-turbo handle, and a JPEG is decompressed straight into `out`, which
/// keeps its capacity, so a stream of same-sized JPEGs allocates nothing per image.
/// Pixels are exactly those of [`decode_image`] (same library, same settings).
#[derive(Default)]
pub struct StillDecoder {
    jpeg: Option<turbojpeg::Decompressor>,
}

impl StillDecoder {
    pub fn new() -> StillDecoder {
        StillDecoder::default()
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
        *out = decode_other(path, data, format)?;
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
        let d = match &mut self.jpeg {
            Some(d) => d,
            slot @ None => {
                slot.insert(turbojpeg::Decompressor::new().map_err(|e| err(e.to_string()))?)
            }
        };
        let header = d.read_header(data).map_err(|e| err(e.to_string()))?;
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
fn decode_other(path: &Path, data: &[u8], format: StillFormat) -> Result<ImageBuf, StillError> {
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
            StillDecoder::new().decode_jpeg(path, data, &mut out)?;
            Ok(out)
        }
        StillFormat::Png => {
            let mut dec = png::Decoder::new(std::io::Cursor::new(data));
            dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
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
            let fmt = if format == StillFormat::Bmp {
                image::ImageFormat::Bmp
            } else {
                image::ImageFormat::Pnm
            };
            let img =
                image::load_from_memory_with_format(data, fmt).map_err(|e| err(e.to_string()))?;
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
            decode_image(p, b""),
            Err(StillError::Empty { .. })
        ));
        assert!(matches!(
            decode_image(p, b"hello"),
            Err(StillError::UnknownFormat { .. })
        ));
        assert!(matches!(
            decode_image(p, &[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]),
            Err(StillError::Decode { .. })
        ));
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
            assert_eq!(out, decode_image(p, data).unwrap());
        }
        // A failed image leaves the decoder usable.
        assert!(d.decode_into(p, &a[..20], &mut out).is_err());
        d.decode_into(p, &b, &mut out).unwrap();
        assert_eq!(out, decode_image(p, &b).unwrap());
    }

    #[test]
    fn ppm_round_trip() {
        let img = decode_image(
            Path::new("a.ppm"),
            b"P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06",
        )
        .unwrap();
        assert_eq!((img.width(), img.height(), img.mode()), (2, 1, Mode::Rgb));
        assert_eq!(img.data(), &[1, 2, 3, 4, 5, 6]);
    }
}
