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

/// One input that is no usable video: how to make it, and what stderr must say.
struct NoVideo {
    /// The input's file name (it is made in a fresh temporary directory).
    name: &'static str,
    make: fn(&Path),
    extra: &'static [&'static str],
    /// Words of which the line naming the input must have one (none: any reason).
    reasons: &'static [&'static str],
}

/// Every input that is no usable video exits 1 with a line naming it and a reason, and
/// leaves the output directory empty.
#[test]
fn inputs_that_are_no_video_exit_1_naming_the_input() {
    let cases = [
        // A missing file.
        NoVideo {
            name: "no-such-clip.mp4",
            make: |_| {},
            extra: &["-f", "emboss"],
            reasons: &[
                "no such file",
                "not found",
                "does not exist",
                "cannot open",
                "can't open",
            ],
        },
        // A text file. (libavformat's `tty` demuxer would render a `.txt` file as ANSI
        // art — `ffprobe notes.txt` shows a 640x400 "ansi" video — but for frameflow's
        // users a text file is not a video.)
        NoVideo {
            name: "notes.txt",
            make: |p| {
                std::fs::write(
                    p,
                    "This is not a video.\nJust some notes about the camera on the robot.\n"
                        .repeat(50),
                )
                .unwrap();
            },
            extra: &["-f", "emboss"],
            reasons: &[],
        },
        // Garbage with a video extension.
        NoVideo {
            name: "garbage.mp4",
            make: |p| {
                let mut bytes = b"not a video at all; ".repeat(100);
                // Some deterministic noise after the text.
                let mut x: u32 = 0x1234_5678;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    bytes.push(x as u8);
                }
                std::fs::write(p, bytes).unwrap();
            },
            extra: &["-f", "emboss"],
            reasons: &[],
        },
        // An audio-only file has no video stream.
        NoVideo {
            name: "tone.wav",
            make: |p| ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=1", &s(p)]),
            extra: &[],
            reasons: &[],
        },
    ];
    for case in cases {
        let tmp = tempdir();
        let input = tmp.path().join(case.name);
        (case.make)(&input);
        let out = tmp.path().join("out");
        let mut args = vec!["-i".to_string(), s(&input)];
        args.extend(case.extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_into(&out, &args);
        assert_no_panic(&run);
        run.assert_code(1);
        assert_clear_line(&run, case.name);
        if !case.reasons.is_empty() {
            assert_reason(&run, case.name, case.reasons);
        }
        assert_dir_empty(&out, &run);
    }
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
