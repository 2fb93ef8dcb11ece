//! Output names: a template must give each frame its own name (`{index}`, ffmpeg's `%06d`,
//! `{pts}` or `{time}`, made unique with `-1`, `-2`, …), `--keep-last` keeps N outputs
//! across runs, and a rendered name never leaves `-o`.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);
const FRAMES: usize = 10;

/// A 10-frame 160×120 clip (rawvideo: nothing to decode but the frames).
fn clip(dir: &Path) -> String {
    let args = ["-c:v", "rawvideo", "-pix_fmt", "yuv420p"];
    testsrc_clip(&dir.join("clip.nut"), 160, 120, FRAMES as f32 / 25.0, &args)
}

fn run_args(media: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["run", "-i", media, "-o", &s(out)]
        .iter()
        .map(|x| x.to_string())
        .collect();
    v.extend(extra.iter().map(|x| x.to_string()));
    v
}

#[test]
fn a_name_without_a_per_frame_field_is_a_usage_error() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let out = tmp.path().join("out");
    for name in ["x.jpg", "{stream}.jpg", "x%%d.jpg"] {
        let run = frameflow(run_args(&media, &out, &["--name", name]), DEADLINE);
        run.assert_code(2);
        for field in ["{index}", "{pts}", "{time}"] {
            assert!(
                run.stderr.contains(field),
                "the error must name {field}\n{}",
                run.describe()
            );
        }
        assert!(list_dir(&out).is_empty(), "{}", run.describe());
    }
    // One frame needs no per-frame field.
    let run = frameflow(
        run_args(&media, &out, &["--name", "x.jpg", "--max-frames", "1"]),
        DEADLINE,
    );
    run.assert_code(0);
    assert_eq!(list_dir(&out), ["x.jpg"], "{}", run.describe());
}

#[test]
fn apply_on_several_files_needs_stem_or_index() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let a = tmp.path().join("a.png");
    let b = tmp.path().join("b.png");
    for f in [&a, &b] {
        ffmpeg(["-i", &media, "-frames:v", "1", &s(f)]);
    }
    let out = tmp.path().join("out");
    let apply = |name: &str, files: &[&Path]| {
        let mut args = vec!["apply".to_string(), "-o".into(), s(&out)];
        args.extend(["--name".to_string(), name.to_string()]);
        args.extend(files.iter().map(|f| s(f)));
        frameflow(args, DEADLINE)
    };
    let run = apply("same.png", &[&a, &b]);
    run.assert_code(2);
    assert!(run.stderr.contains("{stem}"), "{}", run.describe());
    assert!(list_dir(&out).is_empty(), "{}", run.describe());
    let run = apply("same.png", &[&a]);
    run.assert_code(0);
    assert_eq!(list_dir(&out), ["same.png"], "{}", run.describe());
}

#[test]
fn ffmpeg_percent_d_numbers_frames() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let out = tmp.path().join("out");
    let run = frameflow(run_args(&media, &out, &["--name", "img%06d.jpg"]), DEADLINE);
    run.assert_code(0);
    let want: Vec<String> = (0..FRAMES).map(|i| format!("img{i:06}.jpg")).collect();
    assert_eq!(list_dir(&out), want, "{}", run.describe());
}

#[test]
fn time_only_names_are_all_written_and_unique() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let out = tmp.path().join("out");
    // Ten small frames take a few milliseconds: several share a {time}.
    let run = frameflow(run_args(&media, &out, &["--name", "{time}.jpg"]), DEADLINE);
    run.assert_code(0);
    let names = list_dir(&out);
    assert_eq!(names.len(), FRAMES, "{}", run.describe());
    assert!(
        run.stderr.contains(&format!("wrote {FRAMES} frames")) && run.stderr.contains("failed 0"),
        "{}",
        run.describe()
    );
    for n in &names {
        let stem = n.strip_suffix(".jpg").unwrap_or_else(|| panic!("{n}"));
        let (time, k) = match stem.split_once("Z-") {
            Some((t, k)) => (t, Some(k)),
            None => (
                stem.strip_suffix('Z').unwrap_or_else(|| panic!("{n}")),
                None,
            ),
        };
        assert_eq!(time.len(), 19, "{n}");
        if let Some(k) = k {
            assert!(k.parse::<u32>().is_ok_and(|k| k >= 1), "{n}");
        }
    }
    // A second run adds ten more, never replacing one.
    let again = frameflow(run_args(&media, &out, &["--name", "{time}.jpg"]), DEADLINE);
    again.assert_code(0);
    assert_eq!(list_dir(&out).len(), 2 * FRAMES, "{}", again.describe());
}

#[test]
fn a_taken_name_without_index_gets_the_next_variant() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let out = tmp.path().join("out");
    let pts: Vec<u64> = (0..FRAMES as u64).map(|i| i * 40).collect();
    for round in 0..3 {
        let run = frameflow(run_args(&media, &out, &["--name", "{pts}.jpg"]), DEADLINE);
        run.assert_code(0);
        let mut want: Vec<String> = pts
            .iter()
            .flat_map(|p| {
                (0..=round).map(move |k| match k {
                    0 => format!("{p}.jpg"),
                    k => format!("{p}-{k}.jpg"),
                })
            })
            .collect();
        want.sort();
        assert_eq!(list_dir(&out), want, "round {round}\n{}", run.describe());
    }
}

#[test]
fn keep_last_counts_earlier_runs_and_raw_twins() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let out = tmp.path().join("out");
    let raw = tmp.path().join("raw");
    let args = run_args(
        &media,
        &out,
        &["--keep-last", "5", "--raw-dir", &s(&raw), "--workers", "2"],
    );
    let first = frameflow(&args, DEADLINE);
    first.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(5..10, "jpg"),
        "{}",
        first.describe()
    );
    let second = frameflow(&args, DEADLINE);
    second.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(15..20, "jpg"),
        "the second run must trim the first run's outputs too\n{}",
        second.describe()
    );
    assert_eq!(list_dir(&raw), list_dir(&out), "{}", second.describe());
    // The summary names a file that is there, not frame000010.jpg (deleted).
    assert!(
        second.stderr.contains("(first: frame000015.jpg)"),
        "{}",
        second.describe()
    );
}

#[test]
fn empty_label_cannot_render_a_name_outside_out() {
    let tmp = tempdir();
    let media = clip(tmp.path());
    let top = tmp.path().join("top");
    let out = top.join("a").join("out");
    std::fs::create_dir_all(&out).unwrap();
    let run = frameflow(
        run_args(
            &media,
            &out,
            &[
                "--label",
                "",
                "--name",
                "..{stream}/..{stream}/x{index}.jpg",
            ],
        ),
        DEADLINE,
    );
    run.assert_code(2);
    assert!(run.stderr.contains("'..' is refused"), "{}", run.describe());
    assert_eq!(list_dir(&top), ["a"], "{}", run.describe());
    assert_eq!(list_dir(&top.join("a")), ["out"], "{}", run.describe());
    assert!(list_dir(&out).is_empty(), "{}", run.describe());
    assert!(
        !tmp.path().join("x0.jpg").exists() && !top.join("x0.jpg").exists(),
        "{}",
        run.describe()
    );
}
