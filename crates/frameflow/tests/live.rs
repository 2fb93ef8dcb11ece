//! Live streams over HTTP, the 2018 scenario: the ffmpeg CLI serves a file in real time
//! (`-re … -c copy -f mpeg|mpegts -listen 1 http://127.0.0.1:PORT/…`, as ffserver did),
//! frameflow reads it with `-f emboss`, and every frame must arrive, in order, equal to
//! Pillow's `ImageFilter.EMBOSS` of the same frame decoded by `ffmpeg -pix_fmt rgb24`.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const CLIP_SECS: f32 = 3.0;
/// A 3 s live stream plus connection set-up; far more than needed, never a hang.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

struct Live {
    ext: &'static str,
    /// JPEG: within a tolerance of Pillow's own q75 JPEG; PNG: bit-exact.
    max_mae: Option<f32>,
    /// Stop after this many frames instead of at the end of the stream.
    stop_at_count: bool,
}

fn live_emboss(media: &Path, mux: &str, url_path: &str, opts: Live, tmp: &Path) {
    let (raw, n) = reference_rgb(media, tmp, W, H);
    assert!(n >= 50, "test clip too short: {n} frames");
    let out = tmp.join("frames");
    let stats = tmp.join("stats.json");

    let mut server = LiveServer::start(media, mux, url_path, tmp);
    let mut args = vec![
        "run".to_string(),
        "-i".into(),
        server.url.clone(),
        "-f".into(),
        "emboss".into(),
        "-o".into(),
        s(&out),
        "--format".into(),
        opts.ext.into(),
        "--stats-json".into(),
        s(&stats),
    ];
    if opts.stop_at_count {
        args.extend(["--max-frames".into(), n.to_string()]);
    }
    let run = frameflow(&args, RUN_DEADLINE);
    server.finish(Duration::from_secs(5));
    assert!(
        !run.timed_out,
        "frameflow did not finish after the live stream ended (server log: {})\n{}",
        server.log_text(),
        run.describe()
    );
    run.assert_code(0);

    // Every frame, in order, named frame000000.EXT…, each equal to Pillow's EMBOSS.
    let mut check = Check::new(&raw, W, H, &out);
    check.ext = opts.ext;
    check.filter = "emboss";
    check.max_mae = opts.max_mae;
    check.vs_pillow_jpeg = opts.max_mae.is_some();
    check.count = Some(n);
    let report = check.run(&run);
    eprintln!("{report}");

    let files = list_dir(&out).len() as u64;
    let (decoded, written) = stats_counts(&stats, &run);
    assert_eq!(
        (decoded, written),
        (files, files),
        "stats decoded/written vs {files} files\n{}",
        run.describe()
    );
}

#[test]
fn live_mpeg1_program_stream_emboss_png_bit_exact() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", CLIP_SECS);
    live_emboss(
        &media,
        "mpeg",
        "test1.mpg",
        Live {
            ext: "png",
            max_mae: None,
            stop_at_count: false,
        },
        tmp.path(),
    );
}

#[test]
fn live_mpeg1_program_stream_emboss_jpeg() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", CLIP_SECS);
    live_emboss(
        &media,
        "mpeg",
        "test1.mpg",
        Live {
            ext: "jpg",
            max_mae: Some(JPEG_MAX_MAE),
            stop_at_count: true,
        },
        tmp.path(),
    );
}

#[test]
fn live_h264_mpegts_emboss_png_bit_exact() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "live.ts", "mpegts", CLIP_SECS);
    live_emboss(
        &media,
        "mpegts",
        "live.ts",
        Live {
            ext: "png",
            max_mae: None,
            stop_at_count: false,
        },
        tmp.path(),
    );
}

#[test]
fn live_h264_mpegts_emboss_jpeg() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "live.ts", "mpegts", CLIP_SECS);
    live_emboss(
        &media,
        "mpegts",
        "live.ts",
        Live {
            ext: "jpg",
            max_mae: Some(JPEG_MAX_MAE),
            stop_at_count: true,
        },
        tmp.path(),
    );
}
