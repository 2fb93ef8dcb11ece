//! Frame selection on files: counts equal what the ffmpeg CLI selects with the matching
//! options (`-vf fps=R`, `-skip_frame nokey`, `-ss`), and every drop by sampling is counted.

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
        if args[0] == "--every" || args[0] == "--fps" {
            // decoded = written + dropped by sampling, every drop counted
            assert!(
                stats.contains(&format!("\"sampling\": {}", all - got)),
                "{args:?}: {stats}"
            );
        }
    }
}
