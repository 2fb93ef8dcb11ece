//! The strip-by-strip JPEG path (convert → filter → encode a few rows at a time) writes
//! exactly the bytes of the whole-image path: each JPEG of a run equals libjpeg-turbo's
//! encoding (the same `turbojpeg` settings frameflow uses) of the matching PNG of a
//! `--format png` run, which goes through whole RGB frames and Pillow-exact filters.
//! Covered: frame sizes that are and are not multiples of the 16-row strips and of
//! JPEG's 16×16 MCUs, odd sizes, 4:2:0 / 4:2:2 / 4:4:4 / full-range MJPEG input, 3×3
//! integer, f32 and 5×5 kernels, no filter, and a chain that cannot run by rows.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// A short clip of `testsrc2` at `w`×`h`, encoded with `codec` in `pix_fmt`.
fn make_clip(dir: &Path, name: &str, w: u32, h: u32, codec: &str, pix_fmt: &str) -> String {
    let mut codec_args = vec!["-c:v", codec, "-pix_fmt", pix_fmt];
    if codec == "libx264" {
        codec_args.extend(["-preset", "veryfast", "-bf", "2"]);
    }
    testsrc_clip(&dir.join(name), w, h, 0.4, &codec_args)
}

/// The RGB pixels of a PNG frameflow wrote.
fn png_pixels(path: &Path) -> (Vec<u8>, u32, u32) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{path:?}");
    buf.truncate(info.buffer_size());
    (buf, info.width, info.height)
}

fn check(clip: &str, chain: &str, dir: &Path) {
    let (png_dir, jpg_dir) = (dir.join("png"), dir.join("jpg"));
    for (out, format) in [(&png_dir, "png"), (&jpg_dir, "jpg")] {
        let mut args = vec!["run", "-i", clip, "-o"];
        let out = s(out);
        args.push(&out);
        args.extend(["--format", format, "-q"]);
        if !chain.is_empty() {
            args.extend(["-f", chain]);
        }
        frameflow(&args, Duration::from_secs(120)).assert_success();
    }
    let pngs = list_dir(&png_dir);
    let jpgs = list_dir(&jpg_dir);
    assert_eq!(
        pngs.len(),
        jpgs.len(),
        "{clip} {chain}: frame counts differ"
    );
    assert!(pngs.len() >= 8, "{clip}: only {} frames", pngs.len());
    let mut tj = turbojpeg::Compressor::new().unwrap();
    tj.set_quality(75).unwrap();
    tj.set_subsamp(turbojpeg::Subsamp::Sub2x2).unwrap();
    for (p, j) in pngs.iter().zip(&jpgs) {
        let (pixels, w, h) = png_pixels(&png_dir.join(p));
        let want = tj
            .compress_to_vec(turbojpeg::Image {
                pixels: pixels.as_slice(),
                width: w as usize,
                pitch: w as usize * 3,
                height: h as usize,
                format: turbojpeg::PixelFormat::RGB,
            })
            .unwrap();
        let got = std::fs::read(jpg_dir.join(j)).unwrap();
        assert!(
            got == want,
            "{clip} -f '{chain}': {j} differs from libjpeg-turbo's encoding of {p} ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn jpeg_files_equal_whole_image_encoding() {
    let tmp = tempdir();
    let cases: [(u32, u32, &str, &str, &str); 8] = [
        // 360 = 22 strips + 8 rows; 4:2:0, the 2018 job's filter.
        (640, 360, "libx264", "yuv420p", "emboss"),
        // Width not a multiple of 16 (chroma padding), ring kernel with odd scale.
        (854, 480, "libx264", "yuv420p", "smooth"),
        // Neither size a multiple of 16; DETAIL runs Pillow's f32 arithmetic.
        (322, 242, "libx264", "yuv420p", "detail"),
        // Odd sizes (lossless FFV1: H.264 4:2:0 needs even ones): converted whole.
        (321, 241, "ffv1", "yuv420p", "emboss"),
        // Full-range MJPEG (yuvj420p) and a 5×5 kernel (two rows of context).
        (640, 480, "mjpeg", "yuvj420p", "blur"),
        // 4:2:2, no filter.
        (352, 288, "libx264", "yuv422p", ""),
        // 4:4:4: libswscale's general scaler, converted whole.
        (352, 288, "libx264", "yuv444p", "emboss"),
        // A chain that cannot run by rows.
        (640, 360, "libx264", "yuv420p", "gaussian_blur=2"),
    ];
    for (i, (w, h, codec, fmt, chain)) in cases.into_iter().enumerate() {
        let ext = match codec {
            "mjpeg" => "avi",
            "ffv1" => "mkv",
            _ => "mp4",
        };
        let clip = make_clip(tmp.path(), &format!("c{i}.{ext}"), w, h, codec, fmt);
        let dir = tmp.path().join(format!("out{i}"));
        check(&clip, chain, &dir);
    }
}
