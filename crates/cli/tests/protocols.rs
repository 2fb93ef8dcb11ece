//! Every network protocol SPEC names, against a real server on 127.0.0.1 that the test
//! starts: RTMP (ffmpeg's `-listen 1` RTMP server, and Debian's nginx with
//! libnginx-mod-rtmp fed by an ffmpeg publisher), SRT (ffmpeg as listener), HLS (ffmpeg's
//! hls muxer writing a live playlist that deletes old segments, served by
//! `python3 -m http.server`), UDP and RTP MPEG-TS (ffmpeg sends, frameflow binds the port),
//! plain TCP (ffmpeg `?listen=1`) and stdin (ffmpeg's MPEG-TS piped in).
//!
//! Each protocol goes through the same table-driven shapes:
//! - `streams`: frames arrive — complete 320x240 JPEGs named frame000000.jpg…, as many as
//!   the stats say were written, no more than were sent, no temporary files, no reconnect;
//! - `down_at_start`: the server is absent when frameflow starts. With reconnect on
//!   (the default) frameflow keeps trying (state `starting`/`reconnecting` meanwhile) and
//!   picks the stream up once the server appears, counting the reconnect; with
//!   `--no-reconnect` it exits 1 with one line naming the input;
//! - `gone_mid_run`: the server is killed while frames flow. With reconnect on frameflow
//!   reconnects to its successor and numbering continues; with `--no-reconnect` it ends
//!   with the frames so far, all complete, no temporary files.
//!
//! UDP and RTP have no connection: "server absent" means nothing is sent to frameflow's
//! port yet. frameflow's open then waits `--timeout` for data and, with reconnect on,
//! tries again; the sender starts only after that first attempt has timed out, so the
//! retry path is what picks the stream up. "Server gone" means the sender stops: frameflow
//! sees a stall after `--timeout`. stdin has neither: it is read once, to its end (the
//! writer dying is its end). (ffmpeg's udp protocol binds the wildcard address for
//! `udp://127.0.0.1:P` unless told `localaddr=`; the tests use the URL as users write it,
//! and all their traffic goes to 127.0.0.1.)
//!
//! Runs end by `--max-frames`, by the end of the stream, or by SIGINT (a signal is a live
//! input's normal end: exit 0). Every wait is on a readiness condition (a port listening
//! or bound, a log line, a file, frameflow's own `--stats-json`, written every 2 s), with
//! a deadline; every process is killed on drop.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const FPS: u64 = 25;
/// Debian's nginx and its RTMP module (`dpkg -L libnginx-mod-rtmp`).
const NGINX: &str = "/usr/sbin/nginx";
const NGINX_RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    /// `ffmpeg … -f flv -listen 1 rtmp://127.0.0.1:P/live/s` (one client).
    RtmpListen,
    /// nginx-rtmp on 127.0.0.1:P, an ffmpeg publisher pushing `live/s` into it.
    RtmpNginx,
    /// `ffmpeg … -f mpegts 'srt://127.0.0.1:P?mode=listener'` (one client).
    Srt,
    /// ffmpeg's hls muxer into a directory, `python3 -m http.server` serving it.
    Hls,
    /// `ffmpeg … -f mpegts udp://127.0.0.1:P`: frameflow binds P.
    Udp,
    /// `ffmpeg … -f rtp_mpegts rtp://127.0.0.1:P`: frameflow binds P (and P+1, RTCP).
    Rtp,
    /// `ffmpeg … -f mpegts tcp://127.0.0.1:P?listen=1` (one client).
    Tcp,
    /// `ffmpeg … -f mpegts pipe:1 | frameflow run -i -`.
    Stdin,
}

impl Proto {
    fn url(self, port: u16) -> String {
        match self {
            Proto::RtmpListen | Proto::RtmpNginx => format!("rtmp://127.0.0.1:{port}/live/s"),
            Proto::Srt => format!("srt://127.0.0.1:{port}"),
            Proto::Hls => format!("http://127.0.0.1:{port}/live.m3u8"),
            Proto::Udp => format!("udp://127.0.0.1:{port}"),
            Proto::Rtp => format!("rtp://127.0.0.1:{port}"),
            Proto::Tcp => format!("tcp://127.0.0.1:{port}"),
            Proto::Stdin => "-".into(),
        }
    }

    /// frameflow binds the port and the sender needs nothing from it (UDP, RTP).
    fn connectionless(self) -> bool {
        matches!(self, Proto::Udp | Proto::Rtp)
    }

    /// `--timeout`: no packet for this long is a stall. HLS delivers a 1 s segment at a
    /// time, with a pause between playlist reloads, so it gets more slack.
    fn timeout_s(self) -> f64 {
        match self {
            Proto::Hls => 4.0,
            _ => 2.0,
        }
    }
}

/// What the producer encodes: testsrc2 at 320x240, 25 fps, H.264 with a keyframe every
/// second (a live join waits for one), or a sine tone only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    Video,
    AudioOnly,
}

/// `ffmpeg -re` producing `secs` seconds of `content` (without the output part).
fn producer(content: Content, secs: u64) -> Vec<String> {
    let mut a: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "warning", "-re"]
        .map(String::from)
        .to_vec();
    match content {
        Content::Video => {
            a.extend(lavfi("testsrc2", W, H, secs as f32));
            a.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-threads",
                    "1",
                    "-g",
                    "25",
                    "-bf",
                    "0",
                    "-pix_fmt",
                    "yuv420p",
                ]
                .map(String::from),
            );
        }
        Content::AudioOnly => {
            a.extend(
                [
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=440:sample_rate=44100",
                    "-t",
                    &secs.to_string(),
                    "-c:a",
                    "aac",
                    "-b:a",
                    "64k",
                ]
                .map(String::from),
            );
        }
    }
    a
}

/// Is a UDP socket bound to 127.0.0.1:port (or 0.0.0.0:port)? From /proc, like
/// `is_listening` for TCP, so the check sends nothing.
fn udp_bound(port: u16) -> bool {
    let want_lo = format!("0100007F:{port:04X}");
    let want_any = format!("00000000:{port:04X}");
    let Ok(udp) = fs::read_to_string("/proc/net/udp") else {
        return false;
    };
    udp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 1 && (f[1] == want_lo || f[1] == want_any)
    })
}

fn spawn_logged(program: &str, args: &[String], log: &Path, stdout: Stdio) -> Child {
    let logf = fs::File::create(log).expect("log file");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(logf)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} (scripts/install-deps.sh): {e}"))
}

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// One protocol's server (or sender) on 127.0.0.1:port, started and made ready; every
/// process of it is killed on drop.
struct Server {
    procs: Vec<KillOnDrop>,
    logs: Vec<PathBuf>,
    /// Stdin: the producer's MPEG-TS, for frameflow's stdin.
    pipe: Option<ChildStdout>,
}

impl Server {
    fn start(proto: Proto, port: u16, tmp: &Path, content: Content, secs: u64) -> Server {
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let dir = tmp.join(format!("server-{port}-{n}"));
        fs::create_dir_all(&dir).expect("server dir");
        let mut server = Server {
            procs: Vec::new(),
            logs: Vec::new(),
            pipe: None,
        };
        let url = proto.url(port);
        let ffmpeg_out = |server: &mut Server, out: &[&str], stdout: Stdio| {
            let mut args = producer(content, secs);
            args.extend(out.iter().map(|s| s.to_string()));
            let log = dir.join("ffmpeg.log");
            let mut child = spawn_logged("ffmpeg", &args, &log, stdout);
            server.pipe = child.stdout.take();
            server.procs.push(KillOnDrop(child));
            server.logs.push(log);
        };
        match proto {
            Proto::RtmpListen => {
                ffmpeg_out(
                    &mut server,
                    &["-f", "flv", "-listen", "1", &url],
                    Stdio::null(),
                );
                server.wait_ready("the RTMP listener", || is_listening(port));
            }
            Proto::RtmpNginx => {
                assert!(
                    Path::new(NGINX_RTMP_MODULE).exists(),
                    "{NGINX_RTMP_MODULE} missing: apt-get install nginx libnginx-mod-rtmp \
                     (scripts/install-deps.sh)"
                );
                let template =
                    fs::read_to_string(workspace_root().join("tests-support/nginx-rtmp.conf.in"))
                        .expect("tests-support/nginx-rtmp.conf.in");
                let conf = template
                    .replace("@MODULE@", NGINX_RTMP_MODULE)
                    .replace("@DIR@", &s(&dir))
                    .replace("@PORT@", &port.to_string());
                let conf_path = dir.join("nginx.conf");
                fs::write(&conf_path, conf).expect("nginx.conf");
                let error_log = dir.join("error.log");
                let args = [
                    "-p".to_string(),
                    s(&dir),
                    "-c".into(),
                    s(&conf_path),
                    "-e".into(),
                    s(&error_log),
                ];
                let stderr_log = dir.join("nginx.stderr");
                let nginx = spawn_logged(NGINX, &args, &stderr_log, Stdio::null());
                server.procs.push(KillOnDrop(nginx));
                server.logs.extend([stderr_log, error_log.clone()]);
                server.wait_ready("nginx listening", || is_listening(port));
                ffmpeg_out(&mut server, &["-f", "flv", &url], Stdio::null());
                // The stream exists for players once nginx has logged the publish.
                server.wait_ready("the publisher in nginx", || {
                    fs::read_to_string(&error_log).is_ok_and(|t| t.contains("publish: name='s'"))
                });
            }
            Proto::Srt => {
                let listener = format!("{url}?mode=listener");
                ffmpeg_out(&mut server, &["-f", "mpegts", &listener], Stdio::null());
                server.wait_ready("the SRT listener", || udp_bound(port));
            }
            Proto::Hls => {
                let seg = s(&dir.join("seg%03d.ts"));
                let playlist = dir.join("live.m3u8");
                let out = [
                    "-f",
                    "hls",
                    "-hls_time",
                    "1",
                    "-hls_list_size",
                    "3",
                    // temp_file: the playlist is replaced atomically, never served half-written.
                    "-hls_flags",
                    "delete_segments+temp_file",
                    "-hls_segment_filename",
                    &seg,
                    &s(&playlist),
                ];
                ffmpeg_out(&mut server, &out, Stdio::null());
                let args = [
                    "-m".to_string(),
                    "http.server".into(),
                    port.to_string(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                    "--directory".into(),
                    s(&dir),
                ];
                let log = tmp.join(format!("http-{port}-{n}.log"));
                let http = spawn_logged("python3", &args, &log, Stdio::null());
                server.procs.push(KillOnDrop(http));
                server.logs.push(log);
                server.wait_ready("the HTTP server and the first segment", || {
                    is_listening(port) && playlist.exists()
                });
            }
            Proto::Udp => {
                let to = format!("{url}?pkt_size=1316");
                ffmpeg_out(&mut server, &["-f", "mpegts", &to], Stdio::null());
            }
            Proto::Rtp => {
                ffmpeg_out(&mut server, &["-f", "rtp_mpegts", &url], Stdio::null());
            }
            Proto::Tcp => {
                let listen = format!("{url}?listen=1");
                ffmpeg_out(&mut server, &["-f", "mpegts", &listen], Stdio::null());
                server.wait_ready("the TCP listener", || is_listening(port));
            }
            Proto::Stdin => {
                ffmpeg_out(&mut server, &["-f", "mpegts", "pipe:1"], Stdio::piped());
            }
        }
        server
    }

    fn wait_ready(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            for p in &mut self.procs {
                if let Ok(Some(st)) = p.0.try_wait() {
                    panic!(
                        "{what}: a server process exited ({st}):\n{}",
                        self.log_text()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not ready after 20 s:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        self.logs
            .iter()
            .map(|l| {
                format!(
                    "--- {} ---\n{}",
                    l.display(),
                    fs::read_to_string(l).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// frameflow running in the background, stdout/stderr into files; killed on drop.
struct Bg {
    child: KillOnDrop,
    cmdline: String,
    stdout: PathBuf,
    stderr: PathBuf,
    out: PathBuf,
    stats: PathBuf,
    started: Instant,
}

impl Bg {
    /// `frameflow run -i URL -o TMP/frames --stats-json TMP/stats.json --timeout T EXTRA…`
    fn spawn(proto: Proto, port: u16, extra: &[&str], tmp: &Path, stdin: Stdio) -> Bg {
        let out = tmp.join("frames");
        let stats = tmp.join("stats.json");
        let mut cmd = Command::new(bin());
        cmd.args(["run", "-i", &proto.url(port), "-o"])
            .arg(&out)
            .arg("--stats-json")
            .arg(&stats)
            .args(["--timeout", &proto.timeout_s().to_string()])
            .args(extra);
        let line = cmdline(&cmd);
        let stdout = tmp.join("frameflow.stdout");
        let stderr = tmp.join("frameflow.stderr");
        let child = cmd
            .stdin(stdin)
            .stdout(fs::File::create(&stdout).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {line}: {e}"));
        Bg {
            child: KillOnDrop(child),
            cmdline: line,
            stdout,
            stderr,
            out,
            stats,
            started: Instant::now(),
        }
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stats(&self) -> Option<Value> {
        serde_json::from_str(&fs::read_to_string(&self.stats).ok()?).ok()
    }

    /// Final-named outputs written so far.
    fn files(&self) -> usize {
        list_dir(&self.out)
            .iter()
            .filter(|n| !n.starts_with('.'))
            .count()
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.0.try_wait(), Ok(None))
    }

    fn sigint(&self) {
        let pid = self.child.0.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid; it has not been reaped (we hold it).
        let rc = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(rc, 0, "kill -INT {pid}");
    }

    /// Waits until `cond` holds while frameflow keeps running; panics (with everything
    /// frameflow and the server said) when frameflow exits first or after `timeout`.
    fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        server: Option<&Server>,
        mut cond: impl FnMut(&Bg) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return;
            }
            let exited = self.exited();
            let late = Instant::now() >= deadline;
            // It may have got there just before it exited.
            if exited && cond(self) {
                return;
            }
            if exited || late {
                let why = if exited {
                    "frameflow exited"
                } else {
                    "deadline passed"
                };
                let server_log = server.map(Server::log_text).unwrap_or_default();
                panic!(
                    "{why} while waiting for {what} ({timeout:?})\n{}\n=== server ===\n{server_log}",
                    self.finish(Duration::from_secs(5)).describe()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for frameflow to exit (killing it past `timeout`) and collects its output.
    fn finish(&mut self, timeout: Duration) -> Captured {
        let (status, timed_out) = wait_deadline(&mut self.child.0, timeout);
        Captured {
            status,
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed: self.started.elapsed(),
            timed_out,
            cmdline: self.cmdline.clone(),
        }
    }
}

fn stats_str(v: &Value, key: &str) -> String {
    v["streams"][0][key].as_str().unwrap_or("").to_string()
}

fn stats_num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in the stats: {v}"))
}

/// Width and height from a JPEG's SOF marker, if the file is a complete JPEG (SOI …
/// EOI).
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() < 4 || b[..2] != [0xFF, 0xD8] || b[b.len() - 2..] != [0xFF, 0xD9] {
        return None;
    }
    let mut i = 2;
    while i + 9 < b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let h = u32::from(u16::from_be_bytes([b[i + 5], b[i + 6]]));
            let w = u32::from(u16::from_be_bytes([b[i + 7], b[i + 8]]));
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// What a finished run must have left: exit `code`; frame000000.jpg… with no gap, each
/// a complete 320x240 JPEG; no temporary files; more than zero and at most `sent` of
/// them; the final stats agreeing (written = files, no failed frames, decoded ≥
/// written). Returns the number of files and the stats document.
fn check_run(run: &Captured, code: i32, out: &Path, stats: &Path, sent: u64) -> (u64, Value) {
    run.assert_code(code);
    assert_no_temp_files(out);
    let names = list_dir(out);
    let n = names.len();
    assert!(n > 0, "no frames written\n{}", run.describe());
    assert_eq!(
        names,
        frame_names(0..n, "jpg"),
        "outputs numbered from 0 without gaps\n{}",
        run.describe()
    );
    for name in &names {
        let bytes = fs::read(out.join(name)).expect("read output");
        assert_eq!(
            jpeg_size(&bytes),
            Some((W, H)),
            "{name}: not a complete {W}x{H} JPEG\n{}",
            run.describe()
        );
    }
    let n = n as u64;
    assert!(
        n <= sent,
        "{n} frames written, only {sent} sent\n{}",
        run.describe()
    );
    let text = fs::read_to_string(stats)
        .unwrap_or_else(|e| panic!("--stats-json {}: {e}\n{}", stats.display(), run.describe()));
    let v: Value = serde_json::from_str(&text).expect("stats JSON");
    assert_eq!(stats_num(&v, "frames_written"), n, "stats vs files: {text}");
    assert_eq!(stats_num(&v, "frames_failed"), 0, "{text}");
    assert!(stats_num(&v, "frames_decoded") >= n, "{text}");
    (n, v)
}

/// frameflow's stdin for a run: the producer's pipe for `Proto::Stdin`, else nothing.
fn stdin_of(server: Option<&mut Server>) -> Stdio {
    match server.and_then(|s| s.pipe.take()) {
        Some(p) => Stdio::from(p),
        None => Stdio::null(),
    }
}

// ---------------------------------------------------------------------------------------
// The shapes
// ---------------------------------------------------------------------------------------

/// How a `streams` run ends.
#[derive(Clone, Copy)]
enum End {
    /// `--max-frames N`: exactly N files.
    MaxFrames(u64),
    /// SIGINT once N files exist: exit 0 (a live input's normal end).
    Sigint(usize),
    /// `--duration S` of stream time: about S × 25 files.
    Duration(u64),
    /// The stream's own end (stdin: all of it, from its first frame).
    Eof,
}

/// The server streams; frameflow reads it and writes frames.
fn streams(proto: Proto, end: End) {
    let tmp = tempdir();
    let port = free_port();
    let secs = match end {
        End::Eof => 3,
        _ => 8,
    };
    let sent = secs * FPS;
    let extra: Vec<String> = match end {
        End::MaxFrames(n) => vec!["--max-frames".into(), n.to_string()],
        End::Duration(s) => vec!["--duration".into(), s.to_string()],
        _ => Vec::new(),
    };
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    // A receiver that binds its port starts first, then the sender (as in the field);
    // everything else needs its server up first.
    let (mut run, server) = if proto.connectionless() {
        let mut run = Bg::spawn(proto, port, &extra, tmp.path(), Stdio::null());
        run.wait_until(
            "frameflow to bind its port",
            Duration::from_secs(20),
            None,
            |_| udp_bound(port),
        );
        (
            run,
            Server::start(proto, port, tmp.path(), Content::Video, secs),
        )
    } else {
        let mut server = Server::start(proto, port, tmp.path(), Content::Video, secs);
        let stdin = stdin_of(Some(&mut server));
        (Bg::spawn(proto, port, &extra, tmp.path(), stdin), server)
    };
    if let End::Sigint(n) = end {
        run.wait_until(
            &format!("{n} frames"),
            Duration::from_secs(30),
            Some(&server),
            |r| r.files() >= n,
        );
        run.sigint();
    }
    let cap = run.finish(Duration::from_secs(30));
    let (n, v) = check_run(&cap, 0, &run.out, &run.stats, sent);
    let ctx = || format!("{}\n=== server ===\n{}", cap.describe(), server.log_text());
    assert_eq!(stats_num(&v, "reconnects"), 0, "{}", ctx());
    match end {
        End::MaxFrames(want) => assert_eq!(n, want, "{}", ctx()),
        End::Sigint(want) => assert!(n >= want as u64, "{}", ctx()),
        End::Duration(s) => {
            // Stream time from the first frame: S × 25 frames, give or take the frame on
            // either edge, each written or dropped by the overload policy.
            let got = n + stats_num(&v, "frames_dropped");
            assert!(got + 1 >= s * FPS && got <= s * FPS + 1, "{got}\n{}", ctx());
        }
        End::Eof => {
            // From the first byte of the stream: every frame sent is decoded, and each is
            // written or dropped by the (live) overload policy, counted.
            assert_eq!(stats_num(&v, "frames_decoded"), sent, "{}", ctx());
            assert_eq!(
                n + stats_num(&v, "frames_dropped"),
                sent,
                "written + dropped = sent\n{}",
                ctx()
            );
        }
    }
}

/// The server is absent when frameflow starts; with reconnect on (the default) it keeps
/// trying and takes the stream once the server is up.
fn down_at_start(proto: Proto) {
    let tmp = tempdir();
    let port = free_port();
    let mut run = Bg::spawn(
        proto,
        port,
        &["--max-frames", "20"],
        tmp.path(),
        Stdio::null(),
    );
    // frameflow has reported a failed attempt (a line naming the input: refused, or for
    // UDP/RTP no data within --timeout, so the sender that starts below is picked up by a
    // retry, not by the first open) and its first stats (written after 2 s) show it
    // still trying.
    let named = format!("127.0.0.1:{port}");
    run.wait_until(
        "a failed attempt reported, and the first stats",
        Duration::from_secs(20),
        None,
        |r| {
            r.stderr_text().contains(&named)
                && r.stats().is_some_and(|v| stats_str(&v, "state") != "ended")
        },
    );
    let v = run.stats().expect("stats");
    let state = stats_str(&v, "state");
    assert!(
        ["starting", "connecting", "reconnecting"].contains(&state.as_str()),
        "state {state:?} while the server is absent: {v}"
    );
    assert_eq!(stats_num(&v, "frames_written"), 0, "{v}");

    let server = Server::start(proto, port, tmp.path(), Content::Video, 8);
    // Backoff after ~2 s of failures: the next attempt comes within a few seconds.
    let cap = run.finish(Duration::from_secs(20));
    let ctx = || format!("{}\n=== server ===\n{}", cap.describe(), server.log_text());
    let (n, v) = check_run(&cap, 0, &run.out, &run.stats, 8 * FPS);
    assert_eq!(n, 20, "{}", ctx());
    assert!(
        stats_num(&v, "reconnects") >= 1,
        "the attempt that got the stream is a reconnect\n{}",
        ctx()
    );
}

/// The server is absent and reconnect is off: exit 1, one line naming the input, no
/// output.
fn down_at_start_no_reconnect(proto: Proto) {
    let tmp = tempdir();
    let port = free_port();
    let mut run = Bg::spawn(proto, port, &["--no-reconnect"], tmp.path(), Stdio::null());
    let cap = run.finish(Duration::from_secs(20));
    cap.assert_code(1);
    let lines: Vec<&str> = cap
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line\n{}", cap.describe());
    assert!(
        lines[0].contains(&format!("127.0.0.1:{port}")),
        "the line names the input\n{}",
        cap.describe()
    );
    assert!(
        list_dir(&run.out).is_empty(),
        "no output\n{}",
        cap.describe()
    );
    eprintln!("{proto:?} absent, --no-reconnect: {}", lines[0]);
}

/// The server is killed while frames flow. With reconnect on, frameflow reconnects to
/// the next server on the same port and numbering continues; with `--no-reconnect` it
/// ends with the frames it had, complete, and no temporary files.
fn gone_mid_run(proto: Proto, reconnect: bool) {
    let tmp = tempdir();
    let port = free_port();
    let extra: &[&str] = if reconnect { &[] } else { &["--no-reconnect"] };
    let (mut run, server_a) = if proto.connectionless() {
        let mut run = Bg::spawn(proto, port, extra, tmp.path(), Stdio::null());
        run.wait_until(
            "frameflow to bind its port",
            Duration::from_secs(20),
            None,
            |_| udp_bound(port),
        );
        (
            run,
            Server::start(proto, port, tmp.path(), Content::Video, 8),
        )
    } else {
        let mut server = Server::start(proto, port, tmp.path(), Content::Video, 8);
        let stdin = stdin_of(Some(&mut server));
        (Bg::spawn(proto, port, extra, tmp.path(), stdin), server)
    };
    run.wait_until("5 frames", Duration::from_secs(30), Some(&server_a), |r| {
        r.files() >= 5
    });
    let log_a = server_a.log_text();
    drop(server_a); // SIGKILL: no goodbye to the client
    let mut sent = 8 * FPS;

    if !reconnect {
        let cap = run.finish(Duration::from_secs(30));
        // The end of the stream (exit 0) or the lost connection (exit 1, one line
        // naming the input): either way, not a crash and not a hang.
        let code = cap.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "ends with 0 or 1\n{}\n=== server ===\n{log_a}",
            cap.describe()
        );
        if code == Some(1) {
            assert_stderr_names(&cap, &format!("127.0.0.1:{port}"));
        }
        eprintln!(
            "{proto:?} without reconnect, server killed: exit {code:?}, last line: {}",
            cap.stderr.lines().last().unwrap_or("")
        );
        check_run(&cap, code.unwrap_or(-1), &run.out, &run.stats, sent);
        return;
    }

    // frameflow notices (a closed connection, or a stall after --timeout) and retries.
    run.wait_until("state reconnecting", Duration::from_secs(30), None, |r| {
        r.stats()
            .is_some_and(|v| stats_str(&v, "state") == "reconnecting")
    });
    let before = run.files();
    let server_b = Server::start(proto, port, tmp.path(), Content::Video, 8);
    sent += 8 * FPS;
    run.wait_until(
        "10 frames from the second server",
        Duration::from_secs(20),
        Some(&server_b),
        |r| r.files() >= before + 10,
    );
    run.sigint();
    let cap = run.finish(Duration::from_secs(15));
    let ctx = || {
        format!(
            "{}\n=== server ===\n{}",
            cap.describe(),
            server_b.log_text()
        )
    };
    let (_, v) = check_run(&cap, 0, &run.out, &run.stats, sent);
    assert!(stats_num(&v, "reconnects") >= 1, "{}", ctx());
    assert!(
        cap.stderr.contains("reconnect"),
        "the reconnect is logged\n{}",
        ctx()
    );
}

// ---------------------------------------------------------------------------------------
// The table: protocol × shape
// ---------------------------------------------------------------------------------------

macro_rules! protocol_tests {
    ($($name:ident: $proto:expr, $end:expr;)*) => {
        $(
            mod $name {
                use super::*;

                #[test]
                fn streams_frames() {
                    streams($proto, $end);
                }

                #[test]
                fn down_at_start_is_retried_until_the_server_appears() {
                    down_at_start($proto);
                }

                #[test]
                fn down_at_start_without_reconnect_exits_1_naming_the_input() {
                    down_at_start_no_reconnect($proto);
                }

                #[test]
                fn gone_mid_run_reconnects_and_numbering_continues() {
                    gone_mid_run($proto, true);
                }

                #[test]
                fn gone_mid_run_without_reconnect_keeps_the_frames_so_far() {
                    gone_mid_run($proto, false);
                }
            }
        )*
    };
}

protocol_tests! {
    rtmp_nginx: Proto::RtmpNginx, End::Sigint(20);
    srt: Proto::Srt, End::MaxFrames(30);
    hls: Proto::Hls, End::Sigint(20);
    udp: Proto::Udp, End::Duration(2);
    rtp: Proto::Rtp, End::MaxFrames(30);
    tcp: Proto::Tcp, End::MaxFrames(30);
}

/// ffmpeg's own RTMP server: one client, the stream from its first frame. (The failure
/// sides of RTMP run against nginx, a server that outlives its clients.)
#[test]
fn rtmp_ffmpeg_listen_streams_frames() {
    streams(Proto::RtmpListen, End::MaxFrames(30));
}

/// stdin to its end: every frame of the pipe.
#[test]
fn stdin_streams_every_frame_to_its_end() {
    streams(Proto::Stdin, End::Eof);
}

/// The writer into stdin dies mid-stream: that is the end of the input; the frames so
/// far stay, complete (stdin is not reopened, so there is no reconnect to test).
#[test]
fn stdin_writer_killed_mid_stream_keeps_the_frames_so_far() {
    gone_mid_run(Proto::Stdin, false);
}

/// An audio-only RTMP stream (published into nginx): no crash, exit 1, one line naming
/// the input and saying there is no video stream. `--no-reconnect`: whether a stream
/// without video is worth retrying is not what this test is about.
#[test]
fn rtmp_audio_only_is_a_clear_error_not_a_crash() {
    let tmp = tempdir();
    let port = free_port();
    let server = Server::start(Proto::RtmpNginx, port, tmp.path(), Content::AudioOnly, 20);
    let mut run = Bg::spawn(
        Proto::RtmpNginx,
        port,
        &["--no-reconnect"],
        tmp.path(),
        Stdio::null(),
    );
    let cap = run.finish(Duration::from_secs(30));
    let ctx = || format!("{}\n=== server ===\n{}", cap.describe(), server.log_text());
    assert_eq!(cap.code(), Some(1), "exit 1, not a crash\n{}", ctx());
    let lines: Vec<&str> = cap
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line\n{}", ctx());
    assert!(
        lines[0].contains(&format!("127.0.0.1:{port}")) && lines[0].contains("no video"),
        "the line names the input and the reason\n{}",
        ctx()
    );
    assert!(list_dir(&run.out).is_empty(), "no output\n{}", ctx());
}

/// `frameflow probe` on an nginx-rtmp stream: the H.264 stream, its size and rate.
#[test]
fn probe_an_nginx_rtmp_stream() {
    let tmp = tempdir();
    let port = free_port();
    let server = Server::start(Proto::RtmpNginx, port, tmp.path(), Content::Video, 20);
    let url = Proto::RtmpNginx.url(port);
    let cap = frameflow(["probe", &url], Duration::from_secs(30));
    let ctx = || format!("{}\n=== server ===\n{}", cap.describe(), server.log_text());
    assert_eq!(cap.code(), Some(0), "{}", ctx());
    let video: Vec<&str> = cap
        .stdout
        .lines()
        .filter(|l| l.contains(" video "))
        .collect();
    assert_eq!(video.len(), 1, "one video stream\n{}", ctx());
    assert!(
        video[0].contains("h264") && video[0].contains(&format!("{W}x{H}")),
        "{}",
        ctx()
    );
    assert!(video[0].contains("25 fps"), "{}", ctx());
}
