//! Shared helpers for frameflow's integration tests.
//!
//! Everything runs against real things on 127.0.0.1: the `frameflow` binary, the ffmpeg
//! CLI (test media, live HTTP servers, reference decodes) and Pillow (the filter
//! reference, through `tests-support/framecheck.py`). Every child process is waited on
//! with a deadline, so a test fails instead of hanging.
#![allow(dead_code)]

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// JPEG outputs: mean absolute error (levels) allowed against Pillow's own JPEG of the
/// same filtered frame at quality 75, 4:2:0. Another quality (70/80) or 4:4:4 lands at
/// 2.5–7 here; the same libjpeg-turbo settings land near 0.
pub const JPEG_MAX_MAE: f32 = 1.0;

pub const W: u32 = 320;
pub const H: u32 = 240;

/// The binary under test: cargo's build of it, or `FRAMEFLOW_TEST_BIN` (to test an
/// installed binary with the same suite).
pub fn bin() -> PathBuf {
    match std::env::var_os("FRAMEFLOW_TEST_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_frameflow")),
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

pub fn framecheck_script() -> PathBuf {
    workspace_root().join("tests-support/framecheck.py")
}

/// The Python that has Pillow: `FRAMEFLOW_TEST_PYTHON`, else `python3` on PATH.
pub fn python() -> String {
    std::env::var("FRAMEFLOW_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("frameflow-it-")
        .tempdir()
        .expect("create temp dir")
}

// ---------------------------------------------------------------------------------------
// Running processes with deadlines
// ---------------------------------------------------------------------------------------

/// What a finished (or killed) child process left behind.
#[derive(Debug)]
pub struct Captured {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
    pub cmdline: String,
}

impl Captured {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// A printable account for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nexit: {}{}\nelapsed: {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            match self.status {
                Some(s) => format!("{s}"),
                None => "none".into(),
            },
            if self.timed_out {
                " (KILLED: deadline passed)"
            } else {
                ""
            },
            self.elapsed,
            tail(&self.stdout, 4000),
            tail(&self.stderr, 6000),
        )
    }

    pub fn assert_success(&self) {
        assert!(
            !self.timed_out && self.status.is_some_and(|s| s.success()),
            "command failed:\n{}",
            self.describe()
        );
    }

    pub fn assert_code(&self, code: i32) {
        assert!(
            !self.timed_out && self.code() == Some(code),
            "expected exit code {code}:\n{}",
            self.describe()
        );
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

pub fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push_str(&format!("'{a}'"));
        } else {
            s.push_str(&a);
        }
    }
    s
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` (stdin closed, stdout/stderr captured) and waits at most `timeout`; past
/// the deadline the child is killed and `timed_out` is set.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Captured {
    let line = cmdline(cmd);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {line}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let (status, timed_out) = wait_deadline(&mut child, timeout);
    let elapsed = start.elapsed();
    Captured {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
        timed_out,
        cmdline: line,
    }
}

/// Waits for `child` until `timeout`; kills it past the deadline.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return (Some(s), false),
            Ok(None) => {}
            Err(_) => return (None, false),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let s = child.wait().ok();
            return (s, true);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `frameflow ARGS...` with a deadline.
pub fn frameflow<I, S>(args: I, timeout: Duration) -> Captured
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin());
    cmd.args(args);
    run_with_timeout(&mut cmd, timeout)
}

/// The ffmpeg CLI (no stdin, errors only); panics with its output when it fails.
pub fn ffmpeg<I, S>(args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args);
    run_with_timeout(&mut cmd, Duration::from_secs(120)).assert_success();
}

/// `ffprobe -count_frames`: the number of frames libavcodec decodes from the first video
/// stream — what SPEC's "Files: nothing lost" promises as the output count.
pub fn ffprobe_count_frames(file: &Path) -> usize {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
    ])
    .arg(file);
    let c = run_with_timeout(&mut cmd, Duration::from_secs(120));
    c.assert_success();
    // MPEG-TS lists the stream once per program too: take the first value.
    c.stdout
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .parse()
        .unwrap_or_else(|e| panic!("ffprobe count {:?}: {e}\n{}", c.stdout, c.describe()))
}

/// The reference frames: `ffmpeg -i SRC -pix_fmt rgb24 -f rawvideo` (one output frame per
/// decoded frame). Returns the path of the raw file and the number of frames in it.
pub fn reference_rgb(src: &Path, dir: &Path, w: u32, h: u32) -> (PathBuf, usize) {
    let raw = dir.join(format!(
        "{}.rgb",
        src.file_name().unwrap().to_string_lossy()
    ));
    ffmpeg([
        OsStr::new("-i"),
        src.as_os_str(),
        OsStr::new("-map"),
        OsStr::new("0:v:0"),
        OsStr::new("-fps_mode"),
        OsStr::new("passthrough"),
        OsStr::new("-pix_fmt"),
        OsStr::new("rgb24"),
        OsStr::new("-f"),
        OsStr::new("rawvideo"),
        raw.as_os_str(),
    ]);
    let len = std::fs::metadata(&raw).expect("reference raw").len() as usize;
    let fsize = (w * h * 3) as usize;
    assert!(
        len > 0 && len.is_multiple_of(fsize),
        "reference {raw:?}: {len} bytes is not a whole number of {w}x{h} rgb24 frames"
    );
    (raw, len / fsize)
}

// ---------------------------------------------------------------------------------------
// Test media, made by the ffmpeg CLI
// ---------------------------------------------------------------------------------------

/// A lavfi test source of `secs` seconds at 25 fps.
pub fn lavfi(src: &str, w: u32, h: u32, secs: f32) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("{src}=size={w}x{h}:rate=25"),
        "-t".into(),
        format!("{secs}"),
    ]
}

/// A `secs`-second `testsrc2` clip at exactly `w`×`h` (testsrc2 itself rounds sizes to
/// even numbers, so it is scaled), encoded with `codec_args`, written to `out`.
pub fn testsrc_clip(out: &Path, w: u32, h: u32, secs: f32, codec_args: &[&str]) -> String {
    let mut args = lavfi("testsrc2", 640, 360, secs);
    args.extend(["-vf".to_string(), format!("scale={w}:{h}")]);
    args.extend(codec_args.iter().map(|a| a.to_string()));
    args.push(s(out));
    ffmpeg(&args);
    s(out)
}

/// MPEG-1 video (with B-frames) in an MPEG program stream, like ffserver's test1.mpg.
pub fn make_mpeg1_ps(dir: &Path, name: &str, secs: f32) -> PathBuf {
    let out = dir.join(name);
    let mut args = lavfi("testsrc2", W, H, secs);
    args.extend(
        [
            "-c:v",
            "mpeg1video",
            "-q:v",
            "4",
            "-bf",
            "2",
            "-g",
            "12",
            "-f",
            "mpeg",
        ]
        .map(String::from),
    );
    args.push(out.to_string_lossy().into_owned());
    ffmpeg(args);
    out
}

/// H.264 (x264, 3 B-frames, GOP 25) in MPEG-TS (`mpegts`) or MP4 (`mp4`).
pub fn make_h264(dir: &Path, name: &str, format: &str, secs: f32) -> PathBuf {
    let out = dir.join(name);
    let mut args = lavfi("testsrc2", W, H, secs);
    args.extend(
        [
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "3", "-g",
            "25", "-f", format,
        ]
        .map(String::from),
    );
    if format == "mp4" {
        args.extend(["-movflags", "+faststart"].map(String::from));
    }
    args.push(out.to_string_lossy().into_owned());
    ffmpeg(args);
    out
}

// ---------------------------------------------------------------------------------------
// Ports and live servers
// ---------------------------------------------------------------------------------------

static PORTS_GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free TCP port on 127.0.0.1, never the same twice in one test process.
pub fn free_port() -> u16 {
    let mut given = PORTS_GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if given.insert(port) {
            return port;
        }
    }
    panic!("no free port");
}

/// Is something LISTENing on 127.0.0.1:port (or 0.0.0.0:port)? Read from /proc so that
/// the check does not use up a `-listen 1` server's only client.
pub fn is_listening(port: u16) -> bool {
    let want_lo = format!("0100007F:{port:04X}");
    let want_any = format!("00000000:{port:04X}");
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    tcp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && (f[1] == want_lo || f[1] == want_any) && f[3] == "0A"
    })
}

/// A live HTTP stream served by the ffmpeg CLI the way ffserver did: `ffmpeg -re -i FILE
/// -c copy -f FORMAT -listen 1 http://127.0.0.1:PORT/PATH`. Serves one client, in real
/// time, from the first packet (ffmpeg opens the output — waits for the client — before
/// it starts reading). Killed on drop.
pub struct LiveServer {
    child: Option<Child>,
    pub url: String,
    pub port: u16,
    log: PathBuf,
}

impl LiveServer {
    pub fn start(file: &Path, format: &str, path: &str, logdir: &Path) -> LiveServer {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}/{path}");
        let log = logdir.join(format!("server-{port}.log"));
        let logf = std::fs::File::create(&log).expect("server log");
        let child = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "warning",
                "-re",
                "-i",
            ])
            .arg(file)
            .args(["-map", "0", "-c", "copy", "-f", format, "-listen", "1"])
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start ffmpeg server");
        let mut server = LiveServer {
            child: Some(child),
            url,
            port,
            log,
        };
        server.wait_listening(Duration::from_secs(20));
        server
    }

    fn wait_listening(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !is_listening(self.port) {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(s)) = c.try_wait()
            {
                panic!(
                    "ffmpeg server exited ({s}) before listening on {}:\n{}",
                    self.url,
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ffmpeg server not listening on {} after {timeout:?}:\n{}",
                self.url,
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the server to finish after it has sent everything.
    pub fn finish(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        wait_deadline(c, timeout).0
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output directories and reference checks
// ---------------------------------------------------------------------------------------

/// All entries of `dir` (sorted); empty when it does not exist.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// `frame000000.EXT` … for `range`.
pub fn frame_names(range: std::ops::Range<usize>, ext: &str) -> Vec<String> {
    range.map(|i| format!("frame{i:06}.{ext}")).collect()
}

/// No temporary (dot) files in `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    let temp: Vec<String> = list_dir(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(temp.is_empty(), "temporary files left in {dir:?}: {temp:?}");
}

/// The output directory holds nothing at all (or does not exist).
pub fn assert_dir_empty(dir: &Path, run: &Captured) {
    let entries = list_dir(dir);
    assert!(
        entries.is_empty(),
        "expected no output in {dir:?}, found {entries:?}\n{}",
        run.describe()
    );
}

/// The comparison options of `framecheck.py compare`.
pub struct Check<'a> {
    pub raw: &'a Path,
    pub w: u32,
    pub h: u32,
    pub dir: &'a Path,
    pub ext: &'a str,
    pub filter: &'a str,
    /// `None`: bit-exact; `Some(x)`: mean absolute error at most x.
    pub max_mae: Option<f32>,
    /// With `max_mae`: measure against Pillow's own JPEG (quality 75, 4:2:0) of the
    /// reference instead of the reference itself.
    pub vs_pillow_jpeg: bool,
    pub count: Option<usize>,
    pub start: usize,
    pub allow_other: bool,
}

impl<'a> Check<'a> {
    pub fn new(raw: &'a Path, w: u32, h: u32, dir: &'a Path) -> Self {
        Check {
            raw,
            w,
            h,
            dir,
            ext: "png",
            filter: "none",
            max_mae: None,
            vs_pillow_jpeg: false,
            count: None,
            start: 0,
            allow_other: false,
        }
    }

    /// JPEG output: each frame within `max_mae` (mean, levels) of Pillow's own q75 JPEG
    /// of the filtered reference frame.
    pub fn jpeg(mut self, max_mae: f32) -> Self {
        self.ext = "jpg";
        self.max_mae = Some(max_mae);
        self.vs_pillow_jpeg = true;
        self
    }

    /// Runs the Pillow comparison; panics with its report (and `ctx`) when it fails.
    pub fn run(&self, ctx: &Captured) -> String {
        let mut cmd = Command::new(python());
        cmd.arg(framecheck_script())
            .arg("compare")
            .arg("--raw")
            .arg(self.raw)
            .arg("--size")
            .arg(format!("{}x{}", self.w, self.h))
            .arg("--dir")
            .arg(self.dir)
            .args(["--ext", self.ext, "--filter", self.filter])
            .args(["--start", &self.start.to_string()]);
        match self.max_mae {
            None => {
                cmd.args(["--mode", "exact"]);
            }
            Some(m) => {
                let mode = if self.vs_pillow_jpeg { "jpeg" } else { "mae" };
                cmd.args(["--mode", mode, "--max-mae", &m.to_string()]);
            }
        }
        if let Some(n) = self.count {
            cmd.args(["--count", &n.to_string()]);
        }
        if self.allow_other {
            cmd.arg("--allow-other");
        }
        let c = run_with_timeout(&mut cmd, Duration::from_secs(300));
        assert!(
            !c.timed_out && c.code() == Some(0),
            "Pillow reference check failed:\n{}\n{}\n\n=== the frameflow run ===\n{}",
            c.stdout.trim(),
            c.stderr.trim(),
            ctx.describe()
        );
        c.stdout.trim().to_string()
    }
}

/// `(decoded, written)` from a `--stats-json` file.
pub fn stats_counts(path: &Path, ctx: &Captured) -> (u64, u64) {
    let mut cmd = Command::new(python());
    cmd.arg(framecheck_script()).arg("stats").arg(path);
    let c = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(
        c.code() == Some(0),
        "stats check failed: {}\n{}\n=== the frameflow run ===\n{}",
        c.stdout.trim(),
        c.stderr.trim(),
        ctx.describe()
    );
    let mut decoded = None;
    let mut written = None;
    for kv in c.stdout.split_whitespace() {
        if let Some(v) = kv.strip_prefix("decoded=") {
            decoded = v.parse().ok();
        } else if let Some(v) = kv.strip_prefix("written=") {
            written = v.parse().ok();
        }
    }
    (
        decoded.expect("decoded count"),
        written.expect("written count"),
    )
}

/// Lines of stderr that name `needle`.
pub fn lines_naming<'a>(stderr: &'a str, needle: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(needle)).collect()
}

/// Asserts stderr has at least one line naming `needle` (the input, the step, …).
pub fn assert_stderr_names(run: &Captured, needle: &str) {
    assert!(
        !lines_naming(&run.stderr, needle).is_empty(),
        "stderr has no line naming {needle:?}\n{}",
        run.describe()
    );
}

pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A number from a `--stats-json` file: the top-level `key`, else the first stream's, else
/// its `dropped` breakdown (`drop_oldest`, `drop_newest`, `sampling`).
pub fn stats_u64(path: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()));
    [
        &v[key],
        &v["streams"][0][key],
        &v["streams"][0]["dropped"][key],
    ]
    .into_iter()
    .find_map(|x| x.as_u64())
    .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Kills and reaps the child on drop, so a failing test never leaves a server behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:`port` with `headers` (each ending in CRLF) and
/// `Connection: close`: the whole reply, status line and headers included. Retries the
/// connection for a while (the server may still be starting).
pub fn http_request(port: u16, path: &str, headers: &str) -> String {
    use std::io::Write as _;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot connect to 127.0.0.1:{port}: {e}"),
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    // A server that answers before reading (a 503 over the connection cap) may have
    // closed already: the reply is what counts, not whether the request went out.
    let _ = write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    );
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// [`http_request`] without extra headers.
pub fn http_get(port: u16, path: &str) -> String {
    http_request(port, path, "")
}
