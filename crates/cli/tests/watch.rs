//! `frameflow watch`: the hot folder, against real producers (GStreamer's multifilesink,
//! ffmpeg's image2 muxer, chunked and rename-based writers), bad files, and SIGKILL.
//! Every wait has a deadline.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A `frameflow watch` running in the background, stderr to a file.
struct Watcher {
    child: Child,
    log: PathBuf,
}

impl Watcher {
    fn start(args: &[&std::ffi::OsStr], log: &Path) -> Watcher {
        let err = fs::File::create(log).expect("log file");
        let child = Command::new(bin())
            .arg("watch")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start frameflow watch");
        Watcher {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM, then the exit code (within 10 s).
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal(libc::SIGTERM);
        let (status, timed_out) = wait_deadline(&mut self.child, Duration::from_secs(10));
        assert!(!timed_out, "watch did not stop on SIGTERM:\n{}", self.log());
        (status.and_then(|s| s.code()), self.log())
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Non-hidden regular files of `dir`.
fn files(dir: &Path) -> Vec<String> {
    list_dir(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.') && dir.join(n).is_file())
        .collect()
}

/// Waits until `dir` holds `n` files (or the deadline passes); returns what is there.
fn wait_for_files(dir: &Path, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let f = files(dir);
        if f.len() >= n || Instant::now() >= deadline {
            return f;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Still images made by ffmpeg: `pattern` like `img%03d.png`, `n` frames of testsrc2.
fn make_images(dir: &Path, pattern: &str, n: usize, w: u32, h: u32) {
    fs::create_dir_all(dir).unwrap();
    let out = dir.join(pattern);
    let mut args = lavfi("testsrc2", w, h, n as f32 / 25.0);
    args.extend(["-frames:v".into(), n.to_string()]);
    if pattern.ends_with(".jpg") {
        args.extend(["-q:v".into(), "3".into()]);
    }
    args.push(out.to_string_lossy().into_owned());
    ffmpeg(args);
}

/// Each output must equal Pillow's EMBOSS of the input of the same stem (PNG, exact),
/// and be readable.
fn check_emboss_png(inputs: &Path, outputs: &Path) {
    let script = r#"
import os, sys
import numpy as np
from PIL import Image, ImageFilter
ind, outd = sys.argv[1], sys.argv[2]
n = 0
for name in sorted(os.listdir(outd)):
    if name.startswith('.'):
        continue
    src = Image.open(os.path.join(ind, name)).convert('RGB').filter(ImageFilter.EMBOSS)
    got = Image.open(os.path.join(outd, name))
    if got.mode != 'RGB' or not np.array_equal(np.asarray(got), np.asarray(src)):
        print('FAIL: ' + name + ' differs from Pillow EMBOSS'); sys.exit(1)
    n += 1
print('ok', n)
"#;
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).arg(inputs).arg(outputs);
    let c = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(c.code() == Some(0), "Pillow check: {}", c.describe());
}

/// Every file of `dir` is a complete image Pillow can load.
fn check_images_load(dir: &Path) -> usize {
    let script = r#"
import os, sys
from PIL import Image
d = sys.argv[1]; n = 0
for name in sorted(os.listdir(d)):
    p = os.path.join(d, name)
    if not os.path.isfile(p):
        continue
    with Image.open(p) as im:
        im.load()
    n += 1
print(n)
"#;
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).arg(dir);
    let c = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(c.code() == Some(0), "images load: {}", c.describe());
    c.stdout.trim().parse().unwrap_or(0)
}

#[test]
fn once_processes_backlog_and_fails_bad_files() {
    let t = tempdir();
    let (inp, out, keep) = (
        t.path().join("in"),
        t.path().join("out"),
        t.path().join("keep"),
    );
    make_images(&keep, "img%03d.png", 8, 96, 64);
    fs::create_dir_all(&inp).unwrap();
    for n in files(&keep) {
        fs::copy(keep.join(&n), inp.join(&n)).unwrap();
    }
    fs::write(inp.join("empty.jpg"), b"").unwrap();
    fs::write(inp.join("notes.jpg"), b"this is not an image at all").unwrap();
    let png = fs::read(keep.join("img001.png")).unwrap();
    fs::write(inp.join("trunc.png"), &png[..png.len() / 2]).unwrap();
    let jpg_head = [0xFFu8, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0];
    fs::write(inp.join("trunc.jpg"), jpg_head).unwrap();
    // Temporary names are not inputs.
    fs::write(inp.join("img009.png.A1b2C3"), &png).unwrap();
    fs::write(inp.join(".hidden.png"), &png).unwrap();
    fs::write(inp.join("x.png.part"), &png).unwrap();
    let stats = t.path().join("stats.json");
    let run = frameflow(
        [
            os("watch"),
            inp.as_os_str(),
            os("-f"),
            os("emboss"),
            os("-o"),
            out.as_os_str(),
            os("--once"),
            os("--stats-json"),
            stats.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    run.assert_code(1);
    assert_eq!(files(&out), files(&keep), "{}", run.describe());
    assert_no_temp_files(&out);
    check_emboss_png(&keep, &out);
    let mut failed = files(&inp.join("failed"));
    failed.sort();
    assert_eq!(
        failed,
        ["empty.jpg", "notes.jpg", "trunc.jpg", "trunc.png"],
        "{}",
        run.describe()
    );
    for name in ["empty.jpg", "notes.jpg", "trunc.jpg", "trunc.png"] {
        assert_eq!(
            run.stderr.lines().filter(|l| l.contains(name)).count(),
            1,
            "one line for {name}:\n{}",
            run.describe()
        );
    }
    assert_eq!(
        files(&inp),
        [".hidden.png", "img009.png.A1b2C3", "x.png.part"]
            .iter()
            .filter(|n| !n.starts_with('.'))
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        "processed inputs are deleted, temporaries left alone"
    );
    let (decoded, written) = stats_counts(&stats, &run);
    assert_eq!((decoded, written), (8, 8));
}

#[test]
fn keep_input_is_not_processed_twice() {
    let t = tempdir();
    let (inp, out) = (t.path().join("in"), t.path().join("out"));
    make_images(&inp, "k%02d.jpg", 5, 64, 48);
    let args = [
        os("watch"),
        inp.as_os_str(),
        os("-f"),
        os("grayscale"),
        os("-o"),
        out.as_os_str(),
        os("--once"),
        os("--keep-input"),
    ];
    let first = frameflow(args, Duration::from_secs(60));
    first.assert_success();
    assert_eq!(files(&out).len(), 5, "{}", first.describe());
    let second = frameflow(args, Duration::from_secs(60));
    second.assert_success();
    assert!(
        second.stderr.contains("wrote 0 file(s)"),
        "{}",
        second.describe()
    );
    assert_eq!(files(&out).len(), 5, "{}", second.describe());
    assert_eq!(files(&inp).len(), 5);
}

#[test]
fn chunked_and_renaming_writers() {
    let t = tempdir();
    let (inp, out, src) = (
        t.path().join("in"),
        t.path().join("out"),
        t.path().join("src"),
    );
    make_images(&src, "c%02d.png", 2, 96, 64);
    make_images(&src, "j%02d.jpg", 2, 96, 64);
    fs::create_dir_all(&inp).unwrap();
    let w = Watcher::start(
        &[
            inp.as_os_str(),
            os("-f"),
            os("emboss"),
            os("-o"),
            out.as_os_str(),
            os("--done"),
            t.path().join("done").as_os_str(),
        ],
        &t.path().join("watch.log"),
    );
    thread::sleep(Duration::from_millis(300));
    // Chunked: three open/append/close rounds, 0.4 s apart.
    for name in ["c01.png", "j01.jpg"] {
        let data = fs::read(src.join(name)).unwrap();
        let third = data.len() / 3;
        for (i, part) in [&data[..third], &data[third..2 * third], &data[2 * third..]]
            .iter()
            .enumerate()
        {
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(inp.join(name))
                .unwrap();
            f.write_all(part).unwrap();
            drop(f);
            if i < 2 {
                thread::sleep(Duration::from_millis(400));
            }
        }
    }
    // multifilesink style: NAME.XXXXXX, then rename to NAME.
    for name in ["c02.png", "j02.jpg"] {
        let temp = inp.join(format!("{name}.Q7x2Za"));
        fs::write(&temp, fs::read(src.join(name)).unwrap()).unwrap();
        fs::rename(&temp, inp.join(name)).unwrap();
    }
    let got = wait_for_files(&out, 4, Duration::from_secs(20));
    let (code, log) = w.stop();
    assert_eq!(got, ["c01.png", "c02.png", "j01.jpg", "j02.jpg"], "{log}");
    assert_eq!(code, Some(0), "{log}");
    assert!(files(&inp).is_empty(), "inputs left: {:?}", files(&inp));
    assert!(files(&inp.join("failed")).is_empty(), "{log}");
    assert_eq!(files(&t.path().join("done")).len(), 4);
    assert_no_temp_files(&out);
    let pngs = t.path().join("pngs");
    fs::create_dir_all(&pngs).unwrap();
    for n in ["c01.png", "c02.png"] {
        fs::copy(out.join(n), pngs.join(n)).unwrap();
    }
    check_emboss_png(&src, &pngs);
    assert_eq!(check_images_load(&out), 4);
}

#[test]
fn gstreamer_multifilesink_feeds_watch() {
    let t = tempdir();
    let (inp, out) = (t.path().join("in"), t.path().join("out"));
    fs::create_dir_all(&inp).unwrap();
    let w = Watcher::start(
        &[
            inp.as_os_str(),
            os("-f"),
            os("emboss"),
            os("-o"),
            out.as_os_str(),
        ],
        &t.path().join("watch.log"),
    );
    thread::sleep(Duration::from_millis(300));
    let mut gst = Command::new("gst-launch-1.0");
    gst.args([
        "-q",
        "videotestsrc",
        "num-buffers=60",
        "!",
        "video/x-raw,width=320,height=240",
        "!",
        "jpegenc",
        "!",
        "multifilesink",
    ])
    .arg(format!("location={}/frame%05d.jpg", inp.display()));
    run_with_timeout(&mut gst, Duration::from_secs(60)).assert_success();
    let got = wait_for_files(&out, 60, Duration::from_secs(30));
    let (code, log) = w.stop();
    let want: Vec<String> = (0..60).map(|i| format!("frame{i:05}.jpg")).collect();
    assert_eq!(got, want, "{log}");
    assert_eq!(code, Some(0));
    assert!(files(&inp).is_empty(), "inputs left: {:?}", files(&inp));
    assert!(files(&inp.join("failed")).is_empty(), "{log}");
    assert_no_temp_files(&out);
    assert_eq!(check_images_load(&out), 60);
}

#[test]
fn ffmpeg_image2_with_and_without_atomic_writing() {
    for atomic in [false, true] {
        let t = tempdir();
        let (inp, out) = (t.path().join("in"), t.path().join("out"));
        fs::create_dir_all(&inp).unwrap();
        let w = Watcher::start(
            &[
                inp.as_os_str(),
                os("-f"),
                os("sharpen"),
                os("-o"),
                out.as_os_str(),
            ],
            &t.path().join("watch.log"),
        );
        thread::sleep(Duration::from_millis(300));
        let mut args = lavfi("testsrc2", W, H, 2.0);
        args.extend(["-f".into(), "image2".into()]);
        if atomic {
            args.extend(["-atomic_writing".into(), "1".into()]);
        }
        args.push(inp.join("img%04d.jpg").to_string_lossy().into_owned());
        ffmpeg(args);
        let got = wait_for_files(&out, 50, Duration::from_secs(30));
        let (code, log) = w.stop();
        assert_eq!(got.len(), 50, "atomic={atomic}: {got:?}\n{log}");
        assert_eq!(code, Some(0));
        assert!(
            files(&inp).is_empty(),
            "atomic={atomic}: left {:?}",
            files(&inp)
        );
        assert!(files(&inp.join("failed")).is_empty(), "{log}");
        assert_no_temp_files(&out);
        assert_eq!(check_images_load(&out), 50);
    }
}

#[test]
fn sigkill_and_restart_during_a_backlog() {
    const N: usize = 300;
    let t = tempdir();
    let (inp, out, src) = (
        t.path().join("in"),
        t.path().join("out"),
        t.path().join("src"),
    );
    make_images(&src, "b%04d.jpg", N, W, H);
    fs::create_dir_all(&inp).unwrap();
    for n in files(&src) {
        fs::copy(src.join(&n), inp.join(&n)).unwrap();
    }
    let args = [
        inp.as_os_str(),
        os("-f"),
        os("emboss"),
        os("-o"),
        out.as_os_str(),
        os("--workers"),
        os("2"),
    ];
    for round in 0..6u64 {
        let w = Watcher::start(&args, &t.path().join(format!("kill{round}.log")));
        thread::sleep(Duration::from_millis(100 + 50 * round));
        w.kill();
        eprintln!("after kill {round}: {} input(s) left", files(&inp).len());
    }
    let mut once: Vec<&std::ffi::OsStr> = vec![os("watch")];
    once.extend(args);
    once.push(os("--once"));
    let fin = frameflow(once, Duration::from_secs(60));
    fin.assert_success();
    let want: Vec<String> = files(&src);
    assert_eq!(
        files(&out),
        want,
        "exactly one output per input\n{}",
        fin.describe()
    );
    assert_no_temp_files(&out);
    assert!(files(&inp).is_empty(), "unprocessed: {:?}", files(&inp));
    assert!(files(&inp.join("failed")).is_empty(), "{}", fin.describe());
    assert_eq!(check_images_load(&out), N);
}

/// Relative paths of the non-hidden regular files under `dir`, recursively, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(sub) = stack.pop() {
        for name in list_dir(&dir.join(&sub)) {
            if name.starts_with('.') {
                continue;
            }
            let rel = sub.join(&name);
            let abs = dir.join(&rel);
            if abs.is_dir() {
                stack.push(rel);
            } else if abs.is_file() {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn recursive_keeps_subdirectories() {
    let t = tempdir();
    let (inp, out, src) = (
        t.path().join("in"),
        t.path().join("out"),
        t.path().join("src"),
    );
    make_images(&src, "r%02d.png", 4, 96, 64);
    let layout = [
        ("r01.png", "top.png"),
        ("r02.png", "cam1/a.png"),
        ("r03.png", "cam2/sub/b.png"),
        ("r04.png", "cam2/sub/c.png"),
    ];
    for (from, to) in layout {
        let dest = inp.join(to);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(src.join(from), &dest).unwrap();
    }
    // Not inputs: hidden directories, and (non-recursive run) anything below DIR.
    fs::create_dir_all(inp.join(".hidden")).unwrap();
    fs::copy(src.join("r01.png"), inp.join(".hidden/h.png")).unwrap();
    // A bad file: its failed/ copy lives inside DIR and must not be taken as an input.
    fs::create_dir_all(inp.join("cam1")).unwrap();
    fs::write(inp.join("cam1/bad.png"), b"not a png").unwrap();

    let base = |recursive: bool| {
        let mut a = vec![
            os("watch"),
            inp.as_os_str(),
            os("-f"),
            os("emboss"),
            os("-o"),
            out.as_os_str(),
            os("--once"),
        ];
        if recursive {
            a.push(os("--recursive"));
        }
        a
    };

    // Without --recursive only the top level is looked at.
    let flat = frameflow(base(false), Duration::from_secs(60));
    flat.assert_success();
    assert_eq!(tree(&out), ["top.png"], "{}", flat.describe());
    assert!(inp.join("cam1/a.png").exists() && inp.join("cam2/sub/c.png").exists());

    let rec = frameflow(base(true), Duration::from_secs(60));
    rec.assert_code(1); // cam1/bad.png failed
    assert_eq!(
        tree(&out),
        ["cam1/a.png", "cam2/sub/b.png", "cam2/sub/c.png", "top.png"],
        "outputs keep their subdirectory\n{}",
        rec.describe()
    );
    assert_eq!(
        tree(&inp),
        [".hidden/h.png", "failed/cam1/bad.png"]
            .iter()
            .filter(|p| !p.starts_with('.'))
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        "inputs deleted, the bad one moved to failed/ under its subdirectory\n{}",
        rec.describe()
    );
    assert!(
        inp.join(".hidden/h.png").exists(),
        "hidden directories are not inputs"
    );
    for d in [&out, &out.join("cam1"), &out.join("cam2/sub")] {
        assert_no_temp_files(d);
    }
    // Pixels: each output is Pillow's EMBOSS of its input.
    let (ins, outs) = (t.path().join("cmp-in"), t.path().join("cmp-out"));
    fs::create_dir_all(&ins).unwrap();
    fs::create_dir_all(&outs).unwrap();
    for (from, to) in layout {
        let flat_name = to.replace('/', "_");
        fs::copy(src.join(from), ins.join(&flat_name)).unwrap();
        fs::copy(out.join(to), outs.join(&flat_name)).unwrap();
    }
    check_emboss_png(&ins, &outs);

    // A second run finds nothing to do: failed/ (inside DIR) is not rescanned.
    let again = frameflow(base(true), Duration::from_secs(60));
    again.assert_success();
    assert!(
        again.stderr.contains("wrote 0 file(s)"),
        "{}",
        again.describe()
    );
    assert!(inp.join("failed/cam1/bad.png").exists());

    // Live: a subdirectory made while watching, a file renamed into it.
    let w = Watcher::start(
        &[
            inp.as_os_str(),
            os("-f"),
            os("emboss"),
            os("-o"),
            out.as_os_str(),
            os("--recursive"),
        ],
        &t.path().join("watch.log"),
    );
    thread::sleep(Duration::from_millis(300));
    let deep = inp.join("new/deep");
    fs::create_dir_all(&deep).unwrap();
    thread::sleep(Duration::from_millis(200));
    let temp = deep.join("late.png.Q7x2Za");
    fs::copy(src.join("r02.png"), &temp).unwrap();
    fs::rename(&temp, deep.join("late.png")).unwrap();
    // And one in a directory that existed before the watcher started.
    fs::copy(src.join("r03.png"), inp.join("cam1/late2.png")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(out.join("new/deep/late.png").exists() && out.join("cam1/late2.png").exists())
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(50));
    }
    let (code, log) = w.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        out.join("new/deep/late.png").is_file(),
        "{log}\n{:?}",
        tree(&out)
    );
    assert!(
        out.join("cam1/late2.png").is_file(),
        "{log}\n{:?}",
        tree(&out)
    );
    assert!(!deep.join("late.png").exists() && !inp.join("cam1/late2.png").exists());
    assert_no_temp_files(&out.join("new/deep"));
}

/// The crash point the exactly-once guarantee hinges on: the output is durably in place
/// but its input not yet deleted / moved / marked done. A debug-build-only hook
/// (`FRAMEFLOW_TEST_KILL_AFTER_COMMIT=N`, see `watch/worker.rs`) SIGKILLs the process
/// right there, after the N-th output; the restart must dispose of that input without a
/// second output, for every disposal mode.
#[test]
fn kill_between_output_and_disposal() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the crash hook exists in debug builds only");
        return;
    }
    const N: usize = 6;
    const KILL_AT: usize = 3;
    let t = tempdir();
    let src = t.path().join("src");
    make_images(&src, "k%02d.jpg", N, 96, 64);
    let names = files(&src);
    for mode in ["delete", "done", "keep"] {
        let root = t.path().join(mode);
        let (inp, out, done) = (root.join("in"), root.join("out"), root.join("done"));
        fs::create_dir_all(&inp).unwrap();
        for n in &names {
            fs::copy(src.join(n), inp.join(n)).unwrap();
        }
        let mut args = vec![
            os("watch"),
            inp.as_os_str(),
            os("-f"),
            os("emboss"),
            os("-o"),
            out.as_os_str(),
            os("--once"),
            os("--workers"),
            os("1"),
        ];
        match mode {
            "done" => args.extend([os("--done"), done.as_os_str()]),
            "keep" => args.push(os("--keep-input")),
            _ => {}
        }
        let mut cmd = Command::new(bin());
        cmd.args(&args)
            .env("FRAMEFLOW_TEST_KILL_AFTER_COMMIT", KILL_AT.to_string());
        let crashed = run_with_timeout(&mut cmd, Duration::from_secs(60));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            crashed.status.and_then(|s| s.signal()),
            Some(libc::SIGKILL),
            "{mode}: the hook kills the process\n{}",
            crashed.describe()
        );
        let outs = files(&out);
        assert!(
            outs.len() >= KILL_AT && outs.iter().all(|o| names.contains(o)),
            "{mode}: outputs at the crash {outs:?}"
        );
        if mode != "keep" {
            // At least the KILL_AT-th input is still there although its output is.
            let both: Vec<_> = outs.iter().filter(|o| inp.join(o).exists()).collect();
            assert!(
                !both.is_empty(),
                "{mode}: no input left with its output: {outs:?}, inputs {:?}",
                files(&inp)
            );
        }
        let mut restart = Command::new(bin());
        restart.args(&args);
        let fin = run_with_timeout(&mut restart, Duration::from_secs(60));
        fin.assert_success();
        assert_eq!(
            files(&out),
            names,
            "{mode}: exactly one output per input, no -1 variants\n{}",
            fin.describe()
        );
        assert_no_temp_files(&out);
        match mode {
            "delete" => assert!(files(&inp).is_empty(), "{:?}", files(&inp)),
            "done" => {
                assert!(files(&inp).is_empty(), "{:?}", files(&inp));
                assert_eq!(files(&done), names, "{}", fin.describe());
            }
            _ => assert_eq!(files(&inp), names),
        }
        if mode != "keep" {
            assert!(
                fin.stderr.contains("finished from an earlier run"),
                "{mode}: the restart recognised the output made before the kill\n{}",
                fin.describe()
            );
        }
        assert_eq!(check_images_load(&out), N);
        // And nothing more to do afterwards.
        let mut third = Command::new(bin());
        third.args(&args);
        let again = run_with_timeout(&mut third, Duration::from_secs(60));
        again.assert_success();
        assert!(
            again.stderr.contains("wrote 0 file(s)"),
            "{}",
            again.describe()
        );
        assert_eq!(files(&out), names);
    }
}
