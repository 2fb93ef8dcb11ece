//! Colour: with an empty chain (no `-f`) and PNG output, every frame is byte-identical to
//! `ffmpeg -i SRC -pix_fmt rgb24 -f rawvideo`: the stream's colour matrix and range are
//! honoured (BT.709 and BT.601, limited and full range, and MJPEG's yuvj420p).

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// H.264 4:2:0 whose pixels were made with `matrix`/`range` and whose stream is tagged so.
fn make_tagged(dir: &Path, name: &str, matrix: &str, range: &str) -> std::path::PathBuf {
    let (scale_matrix, tag) = match matrix {
        "bt709" => ("bt709", "bt709"),
        "bt601" => ("bt601", "smpte170m"),
        other => panic!("matrix {other}"),
    };
    let (scale_range, tag_range) = match range {
        "tv" => ("tv", "tv"),
        "pc" => ("pc", "pc"),
        other => panic!("range {other}"),
    };
    let out = dir.join(name);
    // smptebars: saturated primaries, where a wrong matrix or range shows at once.
    let mut args = lavfi("smptebars", W, H, 1.0);
    args.extend([
        "-vf".to_string(),
        format!("scale=out_color_matrix={scale_matrix}:out_range={scale_range},format=yuv420p"),
    ]);
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "2",
            "-colorspace",
            tag,
            "-color_primaries",
            tag,
            "-color_trc",
            tag,
            "-color_range",
            tag_range,
        ]
        .map(String::from),
    );
    args.push(s(&out));
    ffmpeg(args);
    out
}

fn identity_is_byte_exact(media: &Path, tmp: &Path) {
    let (raw, n) = reference_rgb(media, tmp, W, H);
    let out = tmp.join("out");
    let run = frameflow(
        ["run", "-i", &s(media), "-o", &s(&out), "--format", "png"],
        Duration::from_secs(120),
    );
    run.assert_code(0);
    let mut check = Check::new(&raw, W, H, &out);
    check.count = Some(n);
    eprintln!("{}", check.run(&run));
}

#[test]
fn bt709_limited_range_is_byte_identical_to_ffmpeg() {
    let tmp = tempdir();
    let m = make_tagged(tmp.path(), "bt709-tv.mp4", "bt709", "tv");
    identity_is_byte_exact(&m, tmp.path());
}

#[test]
fn bt709_full_range_is_byte_identical_to_ffmpeg() {
    let tmp = tempdir();
    let m = make_tagged(tmp.path(), "bt709-pc.mp4", "bt709", "pc");
    identity_is_byte_exact(&m, tmp.path());
}

#[test]
fn bt601_limited_range_is_byte_identical_to_ffmpeg() {
    let tmp = tempdir();
    let m = make_tagged(tmp.path(), "bt601-tv.mp4", "bt601", "tv");
    identity_is_byte_exact(&m, tmp.path());
}

#[test]
fn bt601_full_range_is_byte_identical_to_ffmpeg() {
    let tmp = tempdir();
    let m = make_tagged(tmp.path(), "bt601-pc.mp4", "bt601", "pc");
    identity_is_byte_exact(&m, tmp.path());
}

#[test]
fn bt709_in_mpegts_is_byte_identical_to_ffmpeg() {
    // The tags travel in the H.264 VUI only (no container colour box).
    let tmp = tempdir();
    let mp4 = make_tagged(tmp.path(), "bt709.mp4", "bt709", "tv");
    let ts = tmp.path().join("bt709.ts");
    ffmpeg([
        "-i".to_string(),
        s(&mp4),
        "-c".into(),
        "copy".into(),
        "-f".into(),
        "mpegts".into(),
        s(&ts),
    ]);
    identity_is_byte_exact(&ts, tmp.path());
}

#[test]
fn mjpeg_yuvj420p_full_range_is_byte_identical_to_ffmpeg() {
    let tmp = tempdir();
    let media = tmp.path().join("cam.avi");
    let mut args = lavfi("testsrc2", W, H, 1.0);
    args.extend(["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"].map(String::from));
    args.push(s(&media));
    ffmpeg(args);
    identity_is_byte_exact(&media, tmp.path());
}

#[test]
fn untagged_mpeg1_is_byte_identical_to_ffmpeg() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 1.0);
    identity_is_byte_exact(&media, tmp.path());
}
