//! Which names are inputs, and whether an input file is complete.

use crate::source::still::{self, StillDecoder, StillFormat};
use frameflow_filters::ImageBuf;
use std::path::{Path, PathBuf};

/// Why a file in the hot folder is not (yet) a whole image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Incomplete {
    #[error("empty file")]
    Empty,
    #[error("not an image frameflow reads (JPEG, PNG, BMP, PPM/PGM, WebP)")]
    UnknownFormat,
    /// Its container says more is to come: `what` names the missing part.
    #[error("{what}: incomplete")]
    Truncated { what: &'static str },
    /// The decoder refused it.
    #[error("{format} decoder: {reason}")]
    Decode {
        format: &'static str,
        reason: String,
    },
    /// Decoding failed otherwise (too many pixels, …): the decoder's error, without the
    /// path the hot folder's line already names.
    #[error("{}", without_path(path, source))]
    Still {
        path: PathBuf,
        #[source]
        source: still::StillError,
    },
}

fn without_path(path: &Path, e: &still::StillError) -> String {
    let s = e.to_string();
    let prefix = format!("{}: ", path.display());
    s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
}

/// True for names a producer uses while a file is still being written, and for hidden
/// files: dotfiles (ours are `.ff-*.tmp`), `*.tmp`, `*.part`, and GLib's
/// `g_file_set_contents` temporaries `NAME.XXXXXX` (six random letters or digits after a
/// final dot), which GStreamer's multifilesink renames to `NAME` when complete.
pub fn is_ignored_name(name: &str) -> bool {
    if name.starts_with('.') || name.is_empty() {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".tmp") || lower.ends_with(".part") || lower.ends_with('~') {
        return true;
    }
    match name.rsplit_once('.') {
        Some((base, suffix)) => {
            !base.is_empty()
                && suffix.len() == 6
                && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// Checks that `data` is a whole image file, strictly: a JPEG must end with its EOI
/// marker (FF D9, trailing zero padding allowed), a PNG must hold its IEND chunk, a WebP
/// or BMP must be as long as its header says; and the image must decode. The image is
/// decoded into `out` (the bytes already read: the file is read once, decoded once).
pub fn complete_image(
    path: &Path,
    data: &[u8],
    decoder: &mut StillDecoder,
    out: &mut ImageBuf,
) -> Result<(), Incomplete> {
    if data.is_empty() {
        return Err(Incomplete::Empty);
    }
    let Some(format) = StillFormat::sniff(data) else {
        return Err(Incomplete::UnknownFormat);
    };
    match format {
        StillFormat::Jpeg => {
            let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end < 4 || data[end - 2..end] != [0xFF, 0xD9] {
                return Err(Incomplete::Truncated {
                    what: "JPEG without its end marker (FF D9)",
                });
            }
        }
        StillFormat::Png => {
            const IEND: &[u8] = b"\0\0\0\0IEND";
            if !data.windows(IEND.len()).rev().any(|w| w == IEND) {
                return Err(Incomplete::Truncated {
                    what: "PNG without its IEND chunk",
                });
            }
        }
        StillFormat::Webp => {
            let riff = data
                .get(4..8)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(u32::MAX as u64, |b| u32::from_le_bytes(b) as u64);
            if riff + 8 > data.len() as u64 {
                return Err(Incomplete::Truncated {
                    what: "WebP shorter than its RIFF header says",
                });
            }
        }
        StillFormat::Bmp => {
            let size = data
                .get(2..6)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, |b| u32::from_le_bytes(b) as u64);
            if size > data.len() as u64 {
                return Err(Incomplete::Truncated {
                    what: "BMP shorter than its header says",
                });
            }
        }
        StillFormat::Pnm => {}
    }
    decoder.decode_into(path, data, out).map_err(|e| match e {
        still::StillError::Decode { format, reason, .. } => Incomplete::Decode { format, reason },
        other => Incomplete::Still {
            path: path.to_path_buf(),
            source: other,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names() {
        for n in [
            "frame.jpg.A1b2C3",
            "00001.jpg.K7Q2ZP",
            "frame00001.abcdef",
            ".hidden.jpg",
            ".ff-12-0-a.jpg.tmp",
            "x.tmp",
            "x.JPG.part",
            "x.jpg~",
        ] {
            assert!(is_ignored_name(n), "{n}");
        }
        for n in [
            "frame.jpg",
            "00001.jpg",
            "a.png",
            "b.jpeg",
            "c.webp",
            "noext",
            "a.b.c.jpg",
        ] {
            assert!(!is_ignored_name(n), "{n}");
        }
    }

    fn complete_image(path: &Path, data: &[u8]) -> Result<(), String> {
        super::complete_image(
            path,
            data,
            &mut StillDecoder::new(),
            &mut ImageBuf::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn incomplete_files() {
        let p = Path::new("x");
        assert!(complete_image(p, b"").unwrap_err().contains("empty"));
        assert!(
            complete_image(p, b"hello world")
                .unwrap_err()
                .contains("not an image")
        );
        let jpeg_head = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        assert!(complete_image(p, &jpeg_head).unwrap_err().contains("FF D9"));
        let png_head = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(complete_image(p, png_head).unwrap_err().contains("IEND"));
    }
}
