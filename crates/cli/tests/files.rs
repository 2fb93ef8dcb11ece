//! File inputs: nothing lost (one output per decoded frame, in order), Pillow-exact
//! emboss, output numbering, `--stats-json` and `probe`.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

/// Output count equals `ffprobe -count_frames`, and (PNG, no filter) every output equals
/// the CLI's rgb24 decode of the same frame: in order, nothing lost.
fn all_frames_in_order(media: &Path, tmp: &Path) {
    let expected = ffprobe_count_frames(media);
    let (raw, n) = reference_rgb(media, tmp, W, H);
    assert_eq!(n, expected, "ffmpeg and ffprobe disagree on {media:?}");
    let out = tmp.join("out");
    let run = frameflow(
        ["run", "-i", &s(media), "-o", &s(&out), "--format", "png"],
        DEADLINE,
    );
    run.assert_code(0);
    let files = list_dir(&out);
    assert_eq!(
        files.len(),
        expected,
        "output count vs ffprobe -count_frames ({expected})\n{}",
        run.describe()
    );
    Check::new(&raw, W, H, &out).run(&run);
}

#[test]
fn h264_mp4_with_b_frames_yields_every_frame_in_order() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.mp4", "mp4", 2.0);
    all_frames_in_order(&media, tmp.path());
}

#[test]
fn mpeg1_program_stream_yields_every_frame_in_order() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 2.0);
    all_frames_in_order(&media, tmp.path());
}

#[test]
fn default_format_is_jpeg_and_count_matches_ffprobe() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.mp4", "mp4", 2.0);
    let expected = ffprobe_count_frames(&media);
    let out = tmp.path().join("out");
    let run = frameflow(
        ["run", "-i", &s(&media), "-f", "emboss", "-o", &s(&out)],
        DEADLINE,
    );
    run.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(0..expected, "jpg"),
        "default template frame{{index:06}}.{{ext}} with jpg\n{}",
        run.describe()
    );
    let (raw, _) = reference_rgb(&media, tmp.path(), W, H);
    // Quality 75, 4:2:0 by default, as Pillow saves.
    let mut check = Check::new(&raw, W, H, &out).jpeg(JPEG_MAX_MAE);
    check.filter = "emboss";
    eprintln!("{}", check.run(&run));
}

/// Emboss at an odd size (border rows/columns, no SIMD-friendly width), bit-exact with
/// Pillow. Odd sizes need a codec without chroma subsampling: PNG-in-MOV (rgb24) and
/// FFV1 4:4:4.
fn emboss_exact(media: &Path, w: u32, h: u32, tmp: &Path) {
    let (raw, n) = reference_rgb(media, tmp, w, h);
    let out = tmp.join("out");
    let run = frameflow(
        [
            "run",
            "-i",
            &s(media),
            "-f",
            "emboss",
            "-o",
            &s(&out),
            "--format",
            "png",
        ],
        DEADLINE,
    );
    run.assert_code(0);
    let mut check = Check::new(&raw, w, h, &out);
    check.filter = "emboss";
    check.count = Some(n);
    eprintln!("{}", check.run(&run));
}

#[test]
fn emboss_odd_size_rgb_is_bit_exact_with_pillow() {
    let tmp = tempdir();
    let media = tmp.path().join("odd.mov");
    let mut args = lavfi("mandelbrot", 333, 197, 0.6);
    args.extend(["-c:v", "png", "-pix_fmt", "rgb24"].map(String::from));
    args.push(s(&media));
    ffmpeg(args);
    emboss_exact(&media, 333, 197, tmp.path());
}

#[test]
fn emboss_odd_size_yuv444_is_bit_exact_with_pillow() {
    let tmp = tempdir();
    let media = tmp.path().join("odd.mkv");
    // (testsrc2 rounds sizes to even; testsrc does not)
    let mut args = lavfi("testsrc", 333, 197, 0.6);
    args.extend(["-c:v", "ffv1", "-pix_fmt", "yuv444p"].map(String::from));
    args.push(s(&media));
    ffmpeg(args);
    emboss_exact(&media, 333, 197, tmp.path());
}

#[test]
fn emboss_h264_is_bit_exact_with_pillow() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.mp4", "mp4", 1.0);
    emboss_exact(&media, W, H, tmp.path());
}

#[test]
fn numbering_continues_after_highest_existing_index() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 1.0);
    let (raw, _) = reference_rgb(&media, tmp.path(), W, H);
    let out = tmp.path().join("out");
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "run",
            "-i",
            &s(&media),
            "-o",
            &s(&out),
            "--format",
            "png",
            "--max-frames",
            "5",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };

    let first = frameflow(args(&[]), DEADLINE);
    first.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(0..5, "png"),
        "{}",
        first.describe()
    );

    let second = frameflow(args(&[]), DEADLINE);
    second.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(0..10, "png"),
        "a second run must continue at frame000005\n{}",
        second.describe()
    );
    // The second run's outputs are frames 0..5 of the input again, numbered 5..10.
    let mut check = Check::new(&raw, W, H, &out);
    check.start = 5;
    check.count = Some(5);
    check.allow_other = true;
    check.run(&second);

    // --overwrite restarts at 0 (and replaces what is there): emboss this time.
    let third = frameflow(args(&["--overwrite", "-f", "emboss"]), DEADLINE);
    third.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(0..10, "png"),
        "--overwrite must restart at frame000000\n{}",
        third.describe()
    );
    let mut check = Check::new(&raw, W, H, &out);
    check.filter = "emboss";
    check.count = Some(5);
    check.allow_other = true;
    check.run(&third);
}

#[test]
fn numbering_follows_a_custom_template() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 1.0);
    let out = tmp.path().join("out");
    let run_once = || {
        frameflow(
            [
                "run",
                "-i",
                &s(&media),
                "-o",
                &s(&out),
                "--name",
                "cam-{index:04}.{ext}",
                "--format",
                "png",
                "--max-frames",
                "3",
            ],
            DEADLINE,
        )
    };
    let a = run_once();
    a.assert_code(0);
    let b = run_once();
    b.assert_code(0);
    let want: Vec<String> = (0..6).map(|i| format!("cam-{i:04}.png")).collect();
    assert_eq!(list_dir(&out), want, "{}\n{}", a.describe(), b.describe());
}

#[test]
fn stats_json_counts_match_the_files_written() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 2.0);
    let out = tmp.path().join("out");
    let stats = tmp.path().join("stats.json");
    let run = frameflow(
        [
            "run",
            "-i",
            &s(&media),
            "-f",
            "emboss",
            "-o",
            &s(&out),
            "--stats-json",
            &s(&stats),
        ],
        DEADLINE,
    );
    run.assert_code(0);
    let files = list_dir(&out).len() as u64;
    assert_eq!(files as usize, ffprobe_count_frames(&media));
    let (decoded, written) = stats_counts(&stats, &run);
    assert_eq!(decoded, files, "stats: decoded\n{}", run.describe());
    assert_eq!(written, files, "stats: written\n{}", run.describe());
}

#[test]
fn max_frames_and_duration_limit_the_output() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.mp4", "mp4", 2.0);
    let out = tmp.path().join("a");
    let run = frameflow(
        ["run", "-i", &s(&media), "-o", &s(&out), "--max-frames", "7"],
        DEADLINE,
    );
    run.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(0..7, "jpg"),
        "{}",
        run.describe()
    );

    // 1 s of a 25 fps stream: 25 frames (pts 0 … 0.96 s).
    let out = tmp.path().join("b");
    let run = frameflow(
        ["run", "-i", &s(&media), "-o", &s(&out), "--duration", "1"],
        DEADLINE,
    );
    run.assert_code(0);
    let n = list_dir(&out).len();
    assert!(
        (24..=26).contains(&n),
        "--duration 1 at 25 fps wrote {n} frames\n{}",
        run.describe()
    );
}

#[test]
fn probe_prints_codec_size_and_frame_rate() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.mp4", "mp4", 1.0);
    let run = frameflow(["probe", &s(&media)], DEADLINE);
    run.assert_code(0);
    let text = format!("{}\n{}", run.stdout, run.stderr).to_lowercase();
    assert!(
        text.contains("h264"),
        "probe: no codec name\n{}",
        run.describe()
    );
    assert!(
        text.contains("320x240") || (text.contains("320") && text.contains("240")),
        "probe: no size\n{}",
        run.describe()
    );
    assert!(
        text.contains("25"),
        "probe: no frame rate\n{}",
        run.describe()
    );

    let mpg = make_mpeg1_ps(tmp.path(), "test1.mpg", 1.0);
    let run = frameflow(["probe", &s(&mpg)], DEADLINE);
    run.assert_code(0);
    let text = format!("{}\n{}", run.stdout, run.stderr).to_lowercase();
    assert!(
        text.contains("mpeg1video") || text.contains("mpeg-1") || text.contains("mpeg1"),
        "probe: no MPEG-1 codec name\n{}",
        run.describe()
    );
}

#[test]
fn help_exists_for_every_command() {
    for cmd in [&["--help"][..], &["run", "--help"], &["probe", "--help"]] {
        let run = frameflow(cmd, DEADLINE);
        run.assert_code(0);
        assert!(
            run.stdout.to_lowercase().contains("usage"),
            "{}",
            run.describe()
        );
    }
}
