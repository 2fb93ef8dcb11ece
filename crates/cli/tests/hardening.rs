//! Field hardening: signals from the first instruction on, no panic on user input, a
//! camera that is down at start, exit codes of interrupted jobs, and messages that say
//! what happened once. Everything against the real binary and real servers on 127.0.0.1.

mod common;

use common::{KillOnDrop, frameflow, s};
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, sig) };
}

fn clip(dir: &Path, name: &str, secs: f32) -> std::path::PathBuf {
    let p = dir.join(name);
    common::testsrc_clip(&p, 320, 240, secs, &["-c:v", "libx264", "-g", "25"]);
    p
}

/// SIGTERM at 0–30 ms after start, for every command: a clean stop (0 for a hot folder,
/// 130 for a file job cut short, 0 or 130 for a batch that may have finished), never the
/// default action's 143, and no temporary file left.
#[test]
fn a_signal_during_start_up_is_a_clean_stop_for_every_command() {
    let tmp = common::tempdir();
    let video = clip(tmp.path(), "long.mp4", 20.0);
    let hot = tmp.path().join("hot");
    std::fs::create_dir_all(&hot).expect("mkdir");
    let img = tmp.path().join("a.png");
    common::ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48",
            "-frames:v",
            "1",
            &s(&img),
        ]
        .map(String::from)
        .to_vec(),
    );
    let cfg = tmp.path().join("cams.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[stream]]\nlabel = \"a\"\ninput = \"{}\"\nout = \"{}\"\n",
            s(&video),
            s(&tmp.path().join("cfg-out"))
        ),
    )
    .expect("config");
    let out = tmp.path().join("out");
    let cases: Vec<(&str, Vec<String>, &[i32])> = vec![
        (
            "watch",
            vec!["watch".into(), s(&hot), "-o".into(), s(&out.join("w"))],
            &[0],
        ),
        (
            "run file",
            vec![
                "run".into(),
                "-i".into(),
                s(&video),
                "-o".into(),
                s(&out.join("r")),
            ],
            &[130],
        ),
        (
            "run --config",
            vec!["run".into(), "--config".into(), s(&cfg)],
            &[130],
        ),
        (
            "apply",
            vec![
                "apply".into(),
                "--overwrite".into(),
                "-o".into(),
                s(&out.join("a")),
                s(&img),
            ],
            &[0, 130],
        ),
    ];
    for (what, args, codes) in &cases {
        for delay_ms in [0u64, 1, 3, 10, 30] {
            let mut child = Command::new(common::bin())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start frameflow");
            // The one window left is the launcher's own start (libc only, well under a
            // millisecond on an idle machine, longer on a loaded one): wait until it has
            // blocked the signals, then count the delay from there.
            wait_signals_held(child.id());
            thread::sleep(Duration::from_millis(delay_ms));
            signal(child.id(), libc::SIGTERM);
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let (status, timed_out) = common::wait_deadline(&mut child, Duration::from_secs(10));
            assert!(!timed_out, "{what} at {delay_ms} ms: no exit within 10 s");
            let code = status.and_then(|s| s.code());
            assert!(
                code.is_some_and(|c| codes.contains(&c)),
                "{what}, SIGTERM at {delay_ms} ms: exit {status:?}, want {codes:?}\n{err}"
            );
        }
    }
    for d in ["w", "r", "a"] {
        if out.join(d).exists() {
            common::assert_no_temp_files(&out.join(d));
        }
    }
}

/// Spins until process `pid` blocks SIGTERM (the launcher) or handles it (the engine).
fn wait_signals_held(pid: u32) {
    let term = 1u64 << (libc::SIGTERM - 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let held = |line: &str, key: &str| {
        line.strip_prefix(key)
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|m| m & term != 0)
    };
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status
            .lines()
            .any(|l| held(l, "SigBlk:") || held(l, "SigCgt:"))
        {
            return;
        }
        std::hint::spin_loop();
    }
    panic!("process {pid} never blocked or caught SIGTERM");
}

/// `frameflow run … 2>&1 | head`: once the reader is gone, writes to stderr fail; the run
/// still ends normally (was: a panic, exit 101).
#[test]
fn a_closed_stderr_is_not_a_panic() {
    let tmp = common::tempdir();
    let video = clip(tmp.path(), "c.mp4", 2.0);
    let mut child = Command::new(common::bin())
        .args([
            "-v",
            "run",
            "-i",
            &s(&video),
            "-o",
            &s(&tmp.path().join("o")),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    drop(child.stderr.take());
    let (status, timed_out) = common::wait_deadline(&mut child, T);
    assert!(!timed_out);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert_eq!(common::list_dir(&tmp.path().join("o")).len(), 50);
}

/// A file job stopped by a signal before its end exits 130 and says how far it got; the
/// frames written are a complete prefix.
#[test]
fn an_interrupted_file_job_exits_130_and_says_so() {
    let tmp = common::tempdir();
    let video = clip(tmp.path(), "slow.mp4", 20.0);
    let out = tmp.path().join("o");
    let mut child = KillOnDrop(
        Command::new(common::bin())
            .args(["run", "-i", &s(&video), "-f", "median=7,emboss"])
            .args(["--workers", "1", "-o", &s(&out)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start"),
    );
    let deadline = Instant::now() + T;
    while common::list_dir(&out).len() < 3 {
        assert!(Instant::now() < deadline, "no output");
        thread::sleep(Duration::from_millis(20));
    }
    signal(child.0.id(), libc::SIGINT);
    let mut err = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let (status, _) = common::wait_deadline(&mut child.0, Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{err}");
    let n = common::list_dir(&out).len();
    assert!(n < 500, "the job was not cut short: {n}");
    assert!(
        err.contains(&format!("interrupted after {n} frame(s)")),
        "{err}"
    );
    assert_eq!(common::list_dir(&out), common::frame_names(0..n, "jpg"));
}

/// Polls a `--stats-json` file until `pred` holds for its first stream.
fn wait_stats(path: &Path, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + T;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && pred(&v["streams"][0])
        {
            return;
        }
        assert!(Instant::now() < deadline, "stats never showed {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A camera that is down when the run starts: with reconnect on (the default) the open is
/// retried with backoff (state `connecting`, logged) until the server appears; then frames
/// flow and a signal ends the run normally. With `--no-reconnect` it is one clear error.
#[test]
fn a_camera_down_at_start_is_retried_until_it_appears() {
    let tmp = common::tempdir();
    let video = common::make_mpeg1_ps(tmp.path(), "cam.mpg", 30.0);
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/cam.mpg");
    let stats = tmp.path().join("stats.json");
    let out = tmp.path().join("o");

    let refused = frameflow(
        [
            "run",
            "-i",
            &url,
            "--no-reconnect",
            "-o",
            &s(&tmp.path().join("n")),
        ],
        T,
    );
    refused.assert_code(1);
    common::assert_stderr_names(&refused, &url);
    assert!(
        refused.stderr.contains("Connection refused"),
        "{}",
        refused.describe()
    );

    let mut run = KillOnDrop(
        Command::new(common::bin())
            .args([
                "run",
                "-i",
                &url,
                "-o",
                &s(&out),
                "--stats-json",
                &s(&stats),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start frameflow"),
    );
    wait_stats(&stats, "state connecting", |st| st["state"] == "connecting");
    assert!(
        run.0.try_wait().expect("wait").is_none(),
        "gave up at start"
    );
    let _server = KillOnDrop(
        Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-re", "-i", &s(&video)])
            .args(["-c", "copy", "-f", "mpeg", "-listen", "1", &url])
            .stdin(Stdio::null())
            .spawn()
            .expect("start ffmpeg"),
    );
    wait_stats(&stats, "frames written", |st| {
        st["frames_written"].as_u64().unwrap_or(0) >= 10 && st["state"] == "running"
    });
    signal(run.0.id(), libc::SIGINT);
    let mut err = String::new();
    if let Some(mut e) = run.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let (status, _) = common::wait_deadline(&mut run.0, Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    assert!(
        err.contains("cannot open: Connection refused; retrying in"),
        "{err}"
    );
    assert!(common::stats_u64(&stats, "reconnects") >= 1);
    common::assert_no_temp_files(&out);
}

/// `/stream.mjpeg?fps=1e-300` (1/fps does not fit a duration) is a 400, not a panic in
/// the handler; the server keeps answering.
#[test]
fn absurd_viewer_rates_get_400() {
    let tmp = common::tempdir();
    let port = common::free_port();
    let mut run = KillOnDrop(
        Command::new(common::bin())
            .args(["-q", "run", "-i", "lavfi:testsrc2=size=160x120:rate=25"])
            .args(["--duration", "30", "-o", &s(&tmp.path().join("o"))])
            .args(["--serve", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start"),
    );
    let get = |path: &str| common::http_get(port, path);

    for fps in ["1e-300", "5e-324", "0", "-1", "1e300", "nan"] {
        let reply = get(&format!("/stream.mjpeg?fps={fps}"));
        assert!(reply.starts_with("HTTP/1.1 400"), "fps={fps}: {reply}");
    }
    assert!(get("/api/status").starts_with("HTTP/1.1 200"));
    signal(run.0.id(), libc::SIGINT);
    let (status, _) = common::wait_deadline(&mut run.0, Duration::from_secs(5));
    assert!(status.is_some());
}

/// Usage errors and failures say what happened, once, in frameflow's words.
#[test]
fn messages_say_it_once_and_in_our_words() {
    let tmp = common::tempdir();
    let missing = tmp.path().join("nope.toml");
    let video = clip(tmp.path(), "x.mp4", 1.0);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["run".into(), "--config".into(), s(&missing)],
            1,
            "No such file or directory",
        ),
        (
            vec![
                "watch".into(),
                s(&tmp.path().join("nodir")),
                "-o".into(),
                "o".into(),
            ],
            1,
            "No such file or directory",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                "http://no-such-host.invalid/x.ts".into(),
                "--no-reconnect".into(),
            ],
            1,
            "cannot resolve host 'no-such-host.invalid'",
        ),
        (
            vec!["run".into(), "-i".into(), "x.mp4".into(), "-y".into()],
            2,
            "'-y' is ffmpeg's spelling; frameflow's is --overwrite",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                "x.mp4".into(),
                "-ss".into(),
                "3".into(),
            ],
            2,
            "frameflow's is --start S",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                "x.mp4".into(),
                "-t".into(),
                "3".into(),
            ],
            2,
            "frameflow's is --duration S",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                "x.mp4".into(),
                "-r".into(),
                "3".into(),
            ],
            2,
            "frameflow's is --fps R",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                "x.mp4".into(),
                "-loglevel".into(),
                "debug".into(),
            ],
            2,
            "frameflow's is -v/-vv",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                "x.mp4".into(),
                "--timeout".into(),
                "1e30".into(),
            ],
            2,
            "too long",
        ),
        (
            vec!["run".into(), "-i".into(), "rtsp://".into()],
            2,
            "no host in the URL",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                s(&video),
                "--max-pixels".into(),
                "76799".into(),
                "-o".into(),
                s(&tmp.path().join("mp")),
            ],
            1,
            "frames of 320x240 = 76800 pixels are over the limit of 76799 pixels",
        ),
        (
            vec![
                "run".into(),
                "-i".into(),
                s(&video),
                "--raw-dir".into(),
                "/proc/frameflow-raw".into(),
            ],
            1,
            "raw-frame directory",
        ),
    ];
    for (args, code, needle) in cases {
        let r = frameflow(&args, T);
        r.assert_code(code);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.describe());
        for line in r.stderr.lines() {
            // no cause printed twice on one line
            if let Some(i) = line.find("(os error") {
                assert!(!line[i + 1..].contains("(os error"), "{line}");
            }
        }
    }
    // RUST_LOG is honoured (FRAMEFLOW_LOG first, then RUST_LOG, then -q/-v).
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "-i", &s(&video), "--max-frames", "2"])
        .arg("-o")
        .arg(tmp.path().join("rl"))
        .env("RUST_LOG", "frameflow=info")
        .env_remove("FRAMEFLOW_LOG");
    let r = common::run_with_timeout(&mut cmd, T);
    r.assert_success();
    assert!(r.stderr.contains("opened input"), "{}", r.describe());
    let v = frameflow(["--version"], T);
    v.assert_success();
    assert!(
        v.stdout.contains("FFmpeg 5.1") || v.stdout.contains("FFmpeg "),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("libavcodec 59."), "{}", v.stdout);
    assert!(v.stdout.contains("libjpeg-turbo 3."), "{}", v.stdout);
}

/// `watch` on a terminal shows a live status line (it printed nothing before), and a
/// signal ends it normally.
#[test]
fn watch_on_a_terminal_shows_a_live_status_line() {
    let tmp = common::tempdir();
    let hot = tmp.path().join("in");
    std::fs::create_dir_all(&hot).expect("mkdir");
    common::ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48",
            "-frames:v",
            "1",
            &s(&hot.join("a.png")),
        ]
        .map(String::from)
        .to_vec(),
    );
    let out = tmp.path().join("out");
    // `timeout -s INT` sends the signal inside the pseudo-terminal session.
    let inner = format!(
        "timeout --preserve-status -s INT 3 {} watch {} -o {}",
        s(&common::bin()),
        s(&hot),
        s(&out)
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"])
        .env("TERM", "xterm");
    let r = common::run_with_timeout(&mut cmd, T);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let screen = r.stdout.replace('\r', "\n");
    assert!(screen.contains("watching"), "no status line in:\n{screen}");
    assert!(screen.contains("1 image(s) done"), "no count in:\n{screen}");
    assert_eq!(common::list_dir(&out), ["a.png"]);
}

/// An MP4 on stdin whose index comes last cannot be read from a pipe: the error says why
/// and what to do.
#[test]
fn a_stdin_mp4_with_its_index_at_the_end_gets_a_hint() {
    let tmp = common::tempdir();
    let mp4 = tmp.path().join("late-index.mp4");
    // Large enough that the media data outgrows what the demuxer can hold in its buffer.
    common::testsrc_clip(
        &mp4,
        1280,
        720,
        10.0,
        &["-c:v", "libx264", "-preset", "ultrafast", "-crf", "10"],
    );
    let stdin = std::fs::File::open(&mp4).expect("open clip");
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "-i", "-", "-o", &s(&tmp.path().join("o"))]);
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let (status, _) = common::wait_deadline(&mut child, T);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(err.contains("not streamable"), "{err}");
    assert!(err.contains("-movflags +faststart"), "{err}");
}

/// A panic in a worker fails that frame only; a panic in the committer (its lock is then
/// poisoned) stops the run with an error. Neither hangs, neither leaves a temporary file.
/// (Debug-build failure points: `FRAMEFLOW_TEST_PANIC_IN_*`.)
#[test]
fn panics_in_a_worker_or_the_committer_fail_cleanly() {
    if !cfg!(debug_assertions) || std::env::var_os("FRAMEFLOW_TEST_BIN").is_some() {
        eprintln!("NOTE: the failure points exist in debug builds only: not run");
        return;
    }
    let tmp = common::tempdir();
    let video = clip(tmp.path(), "p.mp4", 2.0);
    let out = tmp.path().join("w");
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "-i", &s(&video), "-o", &s(&out)])
        .env("FRAMEFLOW_TEST_PANIC_IN_WORKER", "7");
    let r = common::run_with_timeout(&mut cmd, T);
    r.assert_code(1);
    assert!(r.stderr.contains("1 frame(s) failed"), "{}", r.describe());
    assert_eq!(
        common::list_dir(&out).len(),
        49,
        "every other frame written"
    );
    common::assert_no_temp_files(&out);

    let out = tmp.path().join("c");
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "-i", &s(&video), "-o", &s(&out)])
        .env("FRAMEFLOW_TEST_PANIC_IN_COMMIT", "10");
    let r = common::run_with_timeout(&mut cmd, T);
    assert!(!r.timed_out, "{}", r.describe());
    r.assert_code(1);
    assert!(
        r.stderr.contains("the output committer failed"),
        "{}",
        r.describe()
    );
    let n = common::list_dir(&out).len();
    assert_eq!(common::list_dir(&out), common::frame_names(0..n, "jpg"));
    assert!(n <= 10, "nothing committed after the committer failed: {n}");
    common::assert_no_temp_files(&out);
}
