//! Disk-side options of `run`: `--keep-last N` (a ring of the newest outputs),
//! `--raw-dir DIR` (the unfiltered frames too, byte-identical to `ffmpeg -pix_fmt rgb24`
//! as PNG), and an unusable output directory or a full disk: one clear error line naming
//! the directory, exit 1, no partial files.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// H.264 with exactly 40 frames (1.6 s at 25 fps).
fn clip40(dir: &Path) -> std::path::PathBuf {
    let clip = make_h264(dir, "clip40.mp4", "mp4", 1.6);
    assert_eq!(ffprobe_count_frames(&clip), 40);
    clip
}

/// Every file in `dir` is a complete, readable image.
fn assert_images_load(dir: &Path, ctx: &Captured) -> usize {
    let mut cmd = Command::new(python());
    cmd.arg(framecheck_script()).arg("images").arg(dir);
    let c = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(
        c.code() == Some(0),
        "images load: {}\n=== the frameflow run ===\n{}",
        c.describe(),
        ctx.describe()
    );
    c.stdout.lines().count()
}

/// Exactly one `error` line on stderr, and it names `dir`.
fn assert_one_error_naming(run: &Captured, dir: &str) {
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.to_lowercase().contains("error"))
        .collect();
    assert!(
        errors.len() == 1 && errors[0].contains(dir),
        "expected one error line naming {dir}, got {errors:?}\n{}",
        run.describe()
    );
}

#[test]
fn keep_last_keeps_the_newest_outputs() {
    let tmp = tempdir();
    let clip = clip40(tmp.path());
    let out = tmp.path().join("out");
    let run = frameflow(
        [
            "run",
            "-i",
            &s(&clip),
            "-f",
            "emboss",
            "-o",
            &s(&out),
            "--keep-last",
            "5",
        ],
        T,
    );
    run.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(35..40, "jpg"),
        "{}",
        run.describe()
    );
    assert_eq!(assert_images_load(&out, &run), 5);
}

#[test]
fn keep_last_ring_includes_earlier_runs_outputs() {
    let tmp = tempdir();
    let clip = clip40(tmp.path());
    let out = tmp.path().join("out");
    let raw = tmp.path().join("raw");
    let mut args: Vec<String> = ["run", "-i", &s(&clip), "-o", &s(&out)]
        .map(String::from)
        .into();
    args.extend(["--raw-dir", &s(&raw), "--max-frames", "3"].map(String::from));
    frameflow(&args, T).assert_code(0);
    assert_eq!(list_dir(&out), frame_names(0..3, "jpg"));
    // A second run numbers on and keeps the newest 2 outputs of the directory, the first
    // run's included, in both directories.
    args.extend(["--keep-last", "2"].map(String::from));
    let run = frameflow(&args, T);
    run.assert_code(0);
    let want = frame_names(4..6, "jpg");
    assert_eq!(list_dir(&out), want, "{}", run.describe());
    assert_eq!(list_dir(&raw), want, "{}", run.describe());
}

#[test]
fn raw_dir_keeps_the_unfiltered_frames() {
    let tmp = tempdir();
    let clip = make_h264(tmp.path(), "clip.mp4", "mp4", 1.0);
    let (rgb, n) = reference_rgb(&clip, tmp.path(), W, H);
    let out = tmp.path().join("out");
    let raw = tmp.path().join("raw");
    let run = frameflow(
        [
            "run",
            "-i",
            &s(&clip),
            "-f",
            "emboss",
            "--format",
            "png",
            "-o",
            &s(&out),
            "--raw-dir",
            &s(&raw),
        ],
        T,
    );
    run.assert_code(0);
    // Raw: byte-identical to ffmpeg's rgb24 frames; filtered: Pillow's EMBOSS of them.
    let mut check = Check::new(&rgb, W, H, &raw);
    check.count = Some(n);
    eprintln!("raw: {}", check.run(&run));
    let mut check = Check::new(&rgb, W, H, &out);
    check.count = Some(n);
    check.filter = "emboss";
    eprintln!("filtered: {}", check.run(&run));
}

#[test]
fn raw_dir_must_not_be_the_output_directory() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let run = frameflow(
        [
            "run",
            "-i",
            "lavfi:testsrc2=size=320x240:rate=25",
            "--max-frames",
            "2",
            "-o",
            &s(&out),
            "--raw-dir",
            &s(&out),
        ],
        T,
    );
    run.assert_code(2);
    assert_stderr_names(&run, "--raw-dir");
    assert_dir_empty(&out, &run);
}

/// `-o DIR` (or `--raw-dir DIR`) that cannot be used: exit 1, one error line naming it,
/// nothing written anywhere.
fn unusable_output(flag: &str, dir: &str, tmp: &Path, clip: &Path) {
    let out = tmp.join("out");
    let mut args: Vec<String> = ["run", "-i", &s(clip), "--format", "png"]
        .map(String::from)
        .into();
    if flag == "-o" {
        args.extend(["-o".into(), dir.into()]);
    } else {
        args.extend(["-o".into(), s(&out), flag.into(), dir.into()]);
    }
    let run = frameflow(&args, Duration::from_secs(30));
    run.assert_code(1);
    assert_one_error_naming(&run, dir);
    assert!(
        !run.stderr.contains("frame at"),
        "failed before any frame: {}",
        run.describe()
    );
    assert!(list_dir(&out).iter().all(|n| !n.ends_with(".png")));
    assert_no_temp_files(&out);
}

#[test]
fn unwritable_output_directory_is_one_clear_error() {
    let tmp = tempdir();
    let clip = make_h264(tmp.path(), "clip.mp4", "mp4", 0.4);
    // /proc and /sys refuse new files even to root (chmod would not stop root).
    unusable_output("-o", "/proc/frameflow-x", tmp.path(), &clip);
    unusable_output("--raw-dir", "/proc/frameflow-x", tmp.path(), &clip);
    if Path::new("/sys/power").is_dir() {
        // Exists, but no file can be created in it.
        unusable_output("-o", "/sys/power", tmp.path(), &clip);
    }
    // A file where the directory should be.
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    unusable_output("-o", &s(&file), tmp.path(), &clip);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// A tiny tmpfs, unmounted on drop.
struct SmallFs {
    path: std::path::PathBuf,
}

impl SmallFs {
    fn mount(path: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(path).ok()?;
        let mut cmd = Command::new("mount");
        cmd.args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path);
        let c = run_with_timeout(&mut cmd, Duration::from_secs(10));
        (c.code() == Some(0)).then(|| SmallFs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let mut cmd = Command::new("umount");
        cmd.arg("-l").arg(&self.path);
        let _ = run_with_timeout(&mut cmd, Duration::from_secs(10));
    }
}

#[test]
fn full_disk_stops_with_one_clear_error_and_no_partial_file() {
    let tmp = tempdir();
    let clip = clip40(tmp.path());
    let Some(fs) = SmallFs::mount(&tmp.path().join("small"), "200k") else {
        eprintln!("NOTE: cannot mount a tmpfs here (not root?): full-disk case not run");
        return;
    };
    let out = fs.path.join("out");
    // 40 PNG frames of ~40 kB each cannot fit in 200 kB.
    let run = frameflow(
        ["run", "-i", &s(&clip), "--format", "png", "-o", &s(&out)],
        T,
    );
    run.assert_code(1);
    assert_one_error_naming(&run, &s(&out));
    assert_stderr_names(&run, "No space left");
    assert_no_temp_files(&out);
    let names = list_dir(&out);
    assert!(!names.is_empty() && names.len() < 40, "{names:?}");
    assert_eq!(names, frame_names(0..names.len(), "png"));
    assert_eq!(assert_images_load(&out, &run), names.len());
}

/// A live run on a full disk goes on: the frames it cannot write are counted as failed
/// (`disk_full`, one warning per change), no partial file is left, and writing resumes by
/// itself when space returns. A signal then ends it normally.
#[test]
fn a_live_run_on_a_full_disk_counts_failures_and_resumes_when_space_returns() {
    use std::io::Read as _;
    let tmp = tempdir();
    let Some(fs) = SmallFs::mount(&tmp.path().join("small"), "300k") else {
        eprintln!("NOTE: cannot mount a tmpfs here (not root?): full-disk case not run");
        return;
    };
    let clip = make_h264(tmp.path(), "cam.ts", "mpegts", 60.0);
    let server = LiveServer::start(&clip, "mpegts", "live.ts", tmp.path());
    let out = fs.path.join("out");
    let stats = tmp.path().join("stats.json");
    let mut run = KillOnDrop(
        Command::new(bin())
            .args(["run", "-i", &server.url, "--format", "png", "-o", &s(&out)])
            .args(["--stats-json", &s(&stats)])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start"),
    );
    let stat = |k: &str| {
        std::fs::read_to_string(&stats)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v["streams"][0][k]
                    .as_u64()
                    .or_else(|| v["streams"][0]["failed"][k].as_u64())
            })
            .unwrap_or(0)
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + T;
        while !f() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("frames failing for a full disk", &|| stat("disk_full") >= 3);
    assert!(run.0.try_wait().expect("wait").is_none(), "the run stopped");
    // Space returns.
    for name in list_dir(&out) {
        let _ = std::fs::remove_file(out.join(name));
    }
    let written_then = stat("frames_written");
    wait("writing resumed", &|| {
        stat("frames_written") >= written_then + 3 && !list_dir(&out).is_empty()
    });
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let mut err = String::new();
    if let Some(mut e) = run.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let (status, _) = wait_deadline(&mut run.0, Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    assert!(err.contains("until space returns"), "{err}");
    assert!(err.contains("writing resumed"), "{err}");
    assert_no_temp_files(&out);
    assert!(stat("frames_failed") >= stat("disk_full"));
}
