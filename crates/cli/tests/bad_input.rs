//! Bad input (SPEC "Bad input"): one clear line naming the input and the reason, the exit
//! code SPEC gives (1 runtime failure, 2 usage error), and no partial or temporary file
//! left behind.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

fn assert_no_panic(run: &Captured) {
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "frameflow panicked\n{}",
        run.describe()
    );
}

/// Some stderr line names `needle` and gives a reason (more than just the name).
fn assert_clear_line(run: &Captured, needle: &str) {
    let lines = lines_naming(&run.stderr, needle);
    assert!(
        lines.iter().any(|l| l.trim().len() > needle.len() + 8),
        "stderr has no line naming {needle:?} with a reason\n{}",
        run.describe()
    );
}

fn assert_reason(run: &Captured, needle: &str, reasons: &[&str]) {
    let lines = lines_naming(&run.stderr, needle);
    assert!(
        lines.iter().any(|l| {
            let l = l.to_lowercase();
            reasons.iter().any(|r| l.contains(r))
        }),
        "no stderr line names {needle:?} with a reason like {reasons:?}\n{}",
        run.describe()
    );
}

fn run_into(out: &Path, extra: &[&str]) -> Captured {
    let mut args = vec!["run".to_string(), "-o".into(), s(out)];
    args.extend(extra.iter().map(|a| a.to_string()));
    frameflow(&args, DEADLINE)
}

#[test]
fn missing_file_exits_1_naming_the_input() {
    let tmp = tempdir();
    let input = tmp.path().join("no-such-clip.mp4");
    let out = tmp.path().join("out");
    let run = run_into(&out, &["-i", &s(&input), "-f", "emboss"]);
    assert_no_panic(&run);
    run.assert_code(1);
    assert_clear_line(&run, "no-such-clip.mp4");
    assert_reason(
        &run,
        "no-such-clip.mp4",
        &[
            "no such file",
            "not found",
            "does not exist",
            "cannot open",
            "can't open",
        ],
    );
    assert_dir_empty(&out, &run);
}

/// A text file. (libavformat's `tty` demuxer would render a `.txt` file as ANSI art —
/// `ffprobe notes.txt` shows a 640x400 "ansi" video — but for frameflow's users a text
/// file is not a video.)
#[test]
fn a_text_file_is_not_video_exits_1() {
    let tmp = tempdir();
    let input = tmp.path().join("notes.txt");
    std::fs::write(
        &input,
        "This is not a video.\nJust some notes about the camera on the robot.\n".repeat(50),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let run = run_into(&out, &["-i", &s(&input), "-f", "emboss"]);
    assert_no_panic(&run);
    run.assert_code(1);
    assert_clear_line(&run, "notes.txt");
    assert_dir_empty(&out, &run);
}

#[test]
fn garbage_with_a_video_extension_exits_1() {
    let tmp = tempdir();
    let input = tmp.path().join("garbage.mp4");
    let mut bytes = b"not a video at all; ".repeat(100);
    // Some deterministic noise after the text.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x as u8);
    }
    std::fs::write(&input, bytes).unwrap();
    let out = tmp.path().join("out");
    let run = run_into(&out, &["-i", &s(&input), "-f", "emboss"]);
    assert_no_panic(&run);
    run.assert_code(1);
    assert_clear_line(&run, "garbage.mp4");
    assert_dir_empty(&out, &run);
}

#[test]
fn an_audio_only_file_has_no_video_stream_exits_1() {
    let tmp = tempdir();
    let input = tmp.path().join("tone.wav");
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        &s(&input),
    ]);
    let out = tmp.path().join("out");
    let run = run_into(&out, &["-i", &s(&input)]);
    assert_no_panic(&run);
    run.assert_code(1);
    assert_clear_line(&run, "tone.wav");
    assert_dir_empty(&out, &run);
}

/// A file cut short still yields every frame before the cut (as many as the ffmpeg CLI
/// decodes from it), names the input in a line about the error, and leaves only
/// complete, final-named outputs.
fn truncated(media: &Path, cut_name: &str, tmp: &Path, must_name_input: bool) {
    let data = std::fs::read(media).unwrap();
    let cut = tmp.join(cut_name);
    std::fs::write(&cut, &data[..data.len() * 6 / 10 + 77]).unwrap();
    let (_, before_cut) = reference_rgb(&cut, tmp, W, H);
    let full = ffprobe_count_frames(media);
    assert!(before_cut > 0 && before_cut < full);

    let out = tmp.join("out");
    let run = run_into(&out, &["-i", &s(&cut), "-f", "emboss", "--format", "png"]);
    assert_no_panic(&run);
    assert!(
        !run.timed_out && matches!(run.code(), Some(0) | Some(1)),
        "a truncated file: exit 0 (partial success) or 1\n{}",
        run.describe()
    );
    if run.code() == Some(1) || must_name_input {
        assert_clear_line(&run, cut_name);
    }
    assert_no_temp_files(&out);
    assert_eq!(
        list_dir(&out),
        frame_names(0..before_cut, "png"),
        "the frames before the cut ({before_cut}, as the ffmpeg CLI decodes them)\n{}",
        run.describe()
    );
    // Each is a complete, readable PNG.
    let mut cmd = std::process::Command::new(python());
    cmd.arg(framecheck_script()).arg("images").arg(&out);
    run_with_timeout(&mut cmd, Duration::from_secs(60)).assert_success();
}

#[test]
fn truncated_mp4_yields_the_frames_before_the_cut_and_logs_the_error() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.mp4", "mp4", 2.0);
    // The MP4 demuxer reports the cut ("partial file"): frameflow must say so.
    truncated(&media, "cut-clip.mp4", tmp.path(), true);
}

#[test]
fn truncated_mpegts_yields_the_frames_before_the_cut() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "clip.ts", "mpegts", 2.0);
    truncated(&media, "cut-clip.ts", tmp.path(), false);
}

#[test]
fn unknown_filter_exits_2_naming_the_step() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 0.5);
    let out = tmp.path().join("out");
    let run = run_into(&out, &["-i", &s(&media), "-f", "emboss,glorbify=3"]);
    assert_no_panic(&run);
    run.assert_code(2);
    assert_clear_line(&run, "glorbify");
    assert_dir_empty(&out, &run);
}

#[test]
fn template_with_dotdot_is_refused_with_exit_2() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 0.5);
    let out = tmp.path().join("out");
    let before = list_dir(tmp.path());
    let run = run_into(
        &out,
        &["-i", &s(&media), "--name", "../escaped-{index:06}.{ext}"],
    );
    assert_no_panic(&run);
    run.assert_code(2);
    assert_clear_line(&run, "..");
    assert_dir_empty(&out, &run);
    let after: Vec<String> = list_dir(tmp.path())
        .into_iter()
        .filter(|n| n != "out")
        .collect();
    assert_eq!(
        after,
        before,
        "something escaped the output dir\n{}",
        run.describe()
    );

    let run = run_into(
        &out,
        &["-i", &s(&media), "--name", "sub/../../x{index}.{ext}"],
    );
    assert_no_panic(&run);
    run.assert_code(2);
    assert_dir_empty(&out, &run);
}

#[test]
fn absolute_template_is_refused_with_exit_2() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 0.5);
    let out = tmp.path().join("out");
    let abs = tmp.path().join("abs-{index}.{ext}");
    let run = run_into(&out, &["-i", &s(&media), "--name", &s(&abs)]);
    assert_no_panic(&run);
    run.assert_code(2);
    assert_dir_empty(&out, &run);
    assert!(
        !list_dir(tmp.path()).iter().any(|n| n.starts_with("abs-")),
        "{}",
        run.describe()
    );
}

/// With `--no-reconnect` an unreachable URL is one clear error at once. (With reconnect
/// on, the default, it is retried with backoff: see `hardening.rs`.)
#[test]
fn unreachable_url_exits_1_within_seconds() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let url = "http://127.0.0.1:1/x";
    let run = run_into(&out, &["-i", url, "-f", "emboss", "--no-reconnect"]);
    assert_no_panic(&run);
    assert!(
        !run.timed_out,
        "frameflow kept trying an unreachable URL for {DEADLINE:?}\n{}",
        run.describe()
    );
    run.assert_code(1);
    assert!(
        run.elapsed < Duration::from_secs(15),
        "an unreachable URL should fail within a few seconds, took {:.1?}\n{}",
        run.elapsed,
        run.describe()
    );
    assert_clear_line(&run, "127.0.0.1:1");
    assert_reason(
        &run,
        "127.0.0.1:1",
        &[
            "refused",
            "connect",
            "unreachable",
            "cannot open",
            "can't open",
        ],
    );
    assert_dir_empty(&out, &run);
}

#[test]
fn stale_temporary_files_are_removed_at_start() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 0.5);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // What a killed run leaves: its dot-named temporaries (`.ff-PID-N-NAME.tmp`; this PID
    // is above any pid_max, so its owner is surely dead).
    std::fs::write(
        out.join(".ff-2147483632-0-frame000000.png.tmp"),
        b"half a frame",
    )
    .unwrap();
    let run = run_into(
        &out,
        &["-i", &s(&media), "--format", "png", "--max-frames", "3"],
    );
    run.assert_code(0);
    assert_no_temp_files(&out);
    assert_eq!(
        list_dir(&out),
        frame_names(0..3, "png"),
        "{}",
        run.describe()
    );
}
