//! Frame selection on files: counts equal what the ffmpeg CLI selects with the matching
//! options (`-vf fps=R`, `-skip_frame nokey`, `-ss`), and every frame sampling leaves out
//! is counted as *skipped* (by reason), never as dropped.

mod common;

use std::path::Path;
use std::process::Command;

fn ffmpeg_count(pre: &[&str], input: &Path, post: &[&str]) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(pre)
        .arg("-i")
        .arg(input)
        .args(post)
        .args(["-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
        .expect("ffmpeg reports a frame count")
}

fn frameflow_count(input: &Path, args: &[&str], out: &Path) -> (usize, String) {
    let stats = out.with_extension("json");
    let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args(["-q", "run", "-i"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--stats-json")
        .arg(&stats)
        .args(args)
        .output()
        .expect("frameflow runs");
    assert!(
        run.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let n = std::fs::read_dir(out).map(|d| d.count()).unwrap_or(0);
    (n, std::fs::read_to_string(&stats).unwrap_or_default())
}

#[test]
fn sampling_counts_match_the_ffmpeg_cli() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = tmp.path().join("clip.mp4");
    let mut args = common::lavfi("testsrc2", 160, 120, 4.0);
    args.extend(["-c:v", "libx264", "-g", "10", "-bf", "2"].map(String::from));
    args.push(common::s(&clip));
    common::ffmpeg(args);
    let all = ffmpeg_count(&[], &clip, &[]);
    assert_eq!(all, 100);
    let cases: Vec<(Vec<&str>, usize)> = vec![
        (vec!["--every", "5"], all / 5),
        (
            vec!["--fps", "5"],
            ffmpeg_count(&[], &clip, &["-vf", "fps=5"]),
        ),
        (
            vec!["--fps", "1"],
            ffmpeg_count(&[], &clip, &["-vf", "fps=1"]),
        ),
        (
            vec!["--keyframes-only"],
            ffmpeg_count(&["-skip_frame", "nokey"], &clip, &[]),
        ),
        (
            vec!["--start", "1"],
            ffmpeg_count(&["-ss", "1"], &clip, &[]),
        ),
        (
            vec!["--start", "1", "--duration", "2"],
            ffmpeg_count(&["-ss", "1"], &clip, &["-t", "2"]),
        ),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let (got, stats) = frameflow_count(&clip, args, &out);
        assert_eq!(got, *want, "{args:?}");
        assert!(
            stats.contains(&format!("\"frames_written\": {got}")),
            "{args:?}: {stats}"
        );
        let v: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
        let st = &v["streams"][0];
        assert_eq!(
            st["frames_dropped"], 0,
            "{args:?}: sampling is not a drop: {stats}"
        );
        assert_eq!(st["dropped"].get("sampling"), None, "{stats}");
        let reason = match args[0] {
            "--every" => Some("every"),
            "--fps" => Some("fps"),
            "--keyframes-only" => Some("keyframes"),
            _ => None,
        };
        if let Some(reason) = reason {
            // every frame of the clip is written or skipped for this reason
            assert_eq!(
                st["skipped"][reason].as_u64(),
                Some((all - got) as u64),
                "{args:?}: {stats}"
            );
            assert_eq!(st["frames_skipped"].as_u64(), Some((all - got) as u64));
        }
    }
}

/// `--start S` seeks to the keyframe at or before S instead of decoding from 0, and
/// writes the very frames it wrote without seeking: the first frame with pts ≥ S, as the
/// ffmpeg CLI's accurate `-ss S` gives, byte for byte.
#[test]
fn start_seeks_to_the_keyframe_before_it_and_writes_the_same_frames() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = tmp.path().join("long.mp4");
    // 20 s at 25 fps, a keyframe every 25 frames (1 s), B-frames.
    let mut args = common::lavfi("testsrc2", 160, 120, 20.0);
    args.extend(["-c:v", "libx264", "-g", "25", "-bf", "2"].map(String::from));
    args.push(common::s(&clip));
    common::ffmpeg(args);
    let start = "14.5";
    let want = ffmpeg_count(&["-ss", start], &clip, &[]);
    assert_eq!(want, 137, "frames at or after 14.5 s of 500");
    let out = tmp.path().join("seek");
    let (got, stats) = frameflow_count(&clip, &["--start", start, "--format", "png"], &out);
    assert_eq!(got, want);
    let v: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    let decoded = v["streams"][0]["frames_decoded"].as_u64().expect("decoded");
    // The first frame (it fixes stream time 0), then from the keyframe at 14 s: 1 + 150.
    // Decoding from 0 would be 500.
    assert!(decoded <= 1 + 150 + 2, "decoded {decoded} frames: {stats}");
    assert_eq!(
        v["streams"][0]["frames_skipped"].as_u64(),
        Some(decoded - got as u64)
    );
    // The same pixels as the ffmpeg CLI's accurate seek, first and last.
    let refs = tmp.path().join("ref");
    std::fs::create_dir_all(&refs).expect("mkdir");
    common::ffmpeg(
        [
            "-ss",
            start,
            "-i",
            &common::s(&clip),
            "-pix_fmt",
            "rgb24",
            &common::s(&refs.join("%06d.png")),
        ]
        .map(String::from)
        .to_vec(),
    );
    for (ours, theirs) in [
        ("frame000000.png", "000001.png"),
        ("frame000136.png", "000137.png"),
    ] {
        let diff = Command::new(common::python())
            .arg("-c")
            .arg(
                "import sys; from PIL import Image; \
                 a=Image.open(sys.argv[1]).convert('RGB'); b=Image.open(sys.argv[2]).convert('RGB'); \
                 print('same' if a.tobytes()==b.tobytes() else 'differ')",
            )
            .arg(out.join(ours))
            .arg(refs.join(theirs))
            .output()
            .expect("python runs");
        assert_eq!(
            String::from_utf8_lossy(&diff.stdout).trim(),
            "same",
            "{ours} vs ffmpeg's {theirs}: {}",
            String::from_utf8_lossy(&diff.stderr)
        );
    }
}
