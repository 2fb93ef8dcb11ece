//! Hostile input and careless use: what an attacker or a mistake must not get. Secrets in
//! input URLs never shown; more to come (see the "Hostile input" issue).

mod common;

use common::{KillOnDrop, http_get, s};
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// Credentials in input URLs (user-info, `?token=`, `?passphrase=`, …) appear nowhere:
/// not in log lines, the summary, `--stats-json`, `/api/status`, the page or `/metrics`.
#[test]
fn secrets_in_input_urls_are_never_shown() {
    let tmp = common::tempdir();
    let dead = common::free_port();
    let serve = common::free_port();
    let secrets = ["S3cretPw", "T0kenValue", "Pass-Phrase-1", "K3yValue"];
    let url = format!(
        "http://admin:{}@127.0.0.1:{dead}/cam.ts?token={}&passphrase={}&api_key={}&x=1",
        secrets[0], secrets[1], secrets[2], secrets[3]
    );
    let stats = tmp.path().join("stats.json");
    let mut run = KillOnDrop(
        Command::new(common::bin())
            .args(["-vv", "run", "-i", &url, "-o", &s(&tmp.path().join("o"))])
            .args(["--stats-json", &s(&stats), "--serve", &serve.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start"),
    );
    let err_reader = {
        let mut e = run.0.stderr.take().expect("stderr");
        thread::spawn(move || {
            let mut t = String::new();
            let _ = e.read_to_string(&mut t);
            t
        })
    };
    // Retrying the dead camera: everything that shows the input is up.
    let deadline = Instant::now() + T;
    let status = loop {
        let st = http_get(serve, "/api/status");
        if st.contains("\"connecting\"") && stats.exists() {
            break st;
        }
        assert!(Instant::now() < deadline, "never connecting: {st}");
        thread::sleep(Duration::from_millis(100));
    };
    let page = http_get(serve, "/");
    let metrics = http_get(serve, "/metrics");
    assert!(status.contains("admin:***@127.0.0.1"), "{status}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let (code, _) = common::wait_deadline(&mut run.0, Duration::from_secs(10));
    let stderr = err_reader.join().unwrap_or_default();
    assert_eq!(code.and_then(|c| c.code()), Some(0), "{stderr}");
    assert!(
        stderr.contains("token=***"),
        "the input is named, redacted: {stderr}"
    );
    let stats_text = std::fs::read_to_string(&stats).expect("stats");
    for (what, text) in [
        ("stderr", &stderr),
        ("--stats-json", &stats_text),
        ("/api/status", &status),
        ("/", &page),
        ("/metrics", &metrics),
    ] {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
}

fn small_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("c.mp4");
    common::testsrc_clip(&p, 160, 120, 1.0, &["-c:v", "libx264"]);
    p
}

/// Two `--config` streams writing into one directory under different spellings (`o` and
/// `./o/.`, or one's `raw_dir` another's `out` through `..`) are refused at start with a
/// usage error naming both (they collided on names and temporary files and both failed).
#[test]
fn config_streams_never_share_a_directory_however_spelled() {
    let tmp = common::tempdir();
    let clip = small_clip(tmp.path());
    for (a, b) in [
        ("out = \"o\"", "out = \"./o/.\""),
        ("out = \"o\"", "out = \"p\"\nraw_dir = \"x/../o\""),
        ("out = \"o\"\nraw_dir = \"r\"", "out = \"r/\""),
    ] {
        let cfg = tmp.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[[stream]]\nlabel = \"yard\"\ninput = \"{c}\"\n{a}\nname = \"{{stream}}{{index}}.jpg\"\n\n\
                 [[stream]]\nlabel = \"gate\"\ninput = \"{c}\"\n{b}\nname = \"{{stream}}{{index}}.jpg\"\n",
                c = s(&clip)
            ),
        )
        .expect("config");
        let mut cmd = Command::new(common::bin());
        cmd.current_dir(tmp.path())
            .args(["run", "--config", "c.toml"]);
        let r = common::run_with_timeout(&mut cmd, T);
        r.assert_code(2);
        assert!(
            r.stderr.contains("'yard'") && r.stderr.contains("'gate'"),
            "{a} / {b}: {}",
            r.describe()
        );
        assert!(!tmp.path().join("o").exists(), "nothing written");
    }
}

/// Any name the filesystem takes (up to 255 bytes) can be written: the temporary name no
/// longer adds ~20 bytes to it. `-o newdir/.` is created however it is spelled.
#[test]
fn names_of_255_bytes_and_odd_directory_spellings_work() {
    let tmp = common::tempdir();
    let clip = small_clip(tmp.path());
    let name = format!("{}{{index:06}}.jpg", "a".repeat(245));
    let out = tmp.path().join("newdir/./deeper/.");
    let r = common::frameflow(
        [
            "run",
            "-i",
            &s(&clip),
            "--max-frames",
            "3",
            "--name",
            &name,
            "-o",
            &s(&out),
        ],
        T,
    );
    r.assert_success();
    let written = common::list_dir(&tmp.path().join("newdir/deeper"));
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(written.iter().all(|n| n.len() == 255), "{written:?}");
}

/// A request with optional basic-auth credentials.
fn http_get_auth(port: u16, path: &str, auth: Option<&str>) -> String {
    let header = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
    common::http_request(port, path, &header)
}

/// A live HTTP camera (the ffmpeg CLI, real time) and frameflow serving it.
fn served_camera(tmp: &std::path::Path, extra: &[&str]) -> (common::LiveServer, KillOnDrop, u16) {
    let clip = common::make_h264(tmp, "cam.ts", "mpegts", 60.0);
    serve_clip(tmp, &clip, extra)
}

/// frameflow serving `clip`, streamed live over HTTP by the ffmpeg CLI.
fn serve_clip(
    tmp: &std::path::Path,
    clip: &std::path::Path,
    extra: &[&str],
) -> (common::LiveServer, KillOnDrop, u16) {
    let server = common::LiveServer::start(clip, "mpegts", "live.ts", tmp);
    let port = common::free_port();
    let run = KillOnDrop(
        Command::new(common::bin())
            .args(["-q", "run", "-i", &server.url, "--label", "cam"])
            .args(["-o", &s(&tmp.join("o")), "--serve", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start frameflow"),
    );
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "--serve never listened");
        thread::sleep(Duration::from_millis(20));
    }
    (server, run, port)
}

/// `--serve-auth` guards every endpoint (401 with a Basic challenge without or with wrong
/// credentials), and a real Prometheus server scrapes `/metrics` through it.
#[test]
fn serve_auth_guards_every_endpoint_and_prometheus_scrapes_through_it() {
    let tmp = common::tempdir();
    let auth_file = tmp.path().join("auth.txt");
    std::fs::write(&auth_file, "viewer:s3cret-pw\n").expect("auth file");
    let (_server, mut run, port) = served_camera(
        tmp.path(),
        &["--serve-auth", &format!("@{}", s(&auth_file))],
    );
    // base64("viewer:s3cret-pw"), base64("viewer:wrong")
    let good = "dmlld2VyOnMzY3JldC1wdw==";
    let bad = "dmlld2VyOndyb25n";
    for path in [
        "/",
        "/api/status",
        "/metrics",
        "/latest.jpg",
        "/stream.mjpeg",
    ] {
        for auth in [None, Some(bad)] {
            let r = http_get_auth(port, path, auth);
            assert!(r.starts_with("HTTP/1.1 401"), "{path} {auth:?}: {r}");
            assert!(
                r.to_ascii_lowercase()
                    .contains("www-authenticate: basic realm=\"frameflow\""),
                "{r}"
            );
        }
    }
    for path in ["/", "/api/status", "/metrics"] {
        let r = http_get_auth(port, path, Some(good));
        assert!(r.starts_with("HTTP/1.1 200"), "{path}: {r}");
    }

    // Prometheus itself, scraping every second: with the password (up) and without (down).
    let prom_port = common::free_port();
    let pw = tmp.path().join("pw.txt");
    std::fs::write(&pw, "s3cret-pw").expect("password file");
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: frameflow\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n    \
             basic_auth: {{username: viewer, password_file: '{pw}'}}\n  \
             - job_name: nopassword\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
            pw = s(&pw)
        ),
    )
    .expect("prometheus config");
    let _prom = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", s(&config)))
            .arg(format!(
                "--storage.tsdb.path={}",
                s(&tmp.path().join("tsdb"))
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (Debian package prometheus)"),
    );
    let query = |q: &str| -> Option<f64> {
        let reply = http_get(prom_port, &format!("/api/v1/query?query={q}"));
        let body = reply.split("\r\n\r\n").nth(1)?;
        // chunked or not, the JSON is in there
        let start = body.find('{')?;
        let end = body.rfind('}')?;
        let v: serde_json::Value = serde_json::from_str(&body[start..=end]).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let deadline = Instant::now() + T;
    loop {
        let up = query("up%7Bjob%3D%22frameflow%22%7D");
        let down = query("up%7Bjob%3D%22nopassword%22%7D");
        let written = query("frameflow_frames_written_total%7Bstream%3D%22cam%22%7D");
        if up == Some(1.0) && down == Some(0.0) && written.is_some_and(|w| w > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus: up {up:?}, without password {down:?}, written {written:?}"
        );
        thread::sleep(Duration::from_millis(250));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let _ = common::wait_deadline(&mut run.0, Duration::from_secs(10));
}

/// Idle connections (a request that never comes) are closed after the header timeout,
/// at most `--serve-max-clients` are held (the next gets 503 at once), and frames keep
/// being written all along.
#[test]
fn idle_connections_are_capped_and_timed_out() {
    let tmp = common::tempdir();
    let (_server, mut run, port) = served_camera(tmp.path(), &["--serve-max-clients", "20"]);
    // One complete request first: the connection that found the server listening is
    // over and no longer counted.
    assert!(http_get(port, "/api/status").starts_with("HTTP/1.1 200"));
    thread::sleep(Duration::from_millis(200));
    let idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let r = http_get(port, "/api/status");
    assert!(r.starts_with("HTTP/1.1 503"), "over the cap: {r}");
    let written_before = common::list_dir(&tmp.path().join("o")).len();
    // Each idle connection is closed by the server within the 10 s header timeout.
    let start = Instant::now();
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut b = [0u8; 64];
        let n = c.read(&mut b).unwrap_or(0);
        // closed (0), or an error reply such as 408 before closing
        let _ = n;
    }
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "idle connections held {waited:?}"
    );
    let r = http_get(port, "/api/status");
    assert!(r.starts_with("HTTP/1.1 200"), "after they left: {r}");
    let written_after = common::list_dir(&tmp.path().join("o")).len();
    assert!(written_after > written_before, "frames kept being written");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let (status, _) = common::wait_deadline(&mut run.0, Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// A signal is seen while an input blocks in its open: a FIFO nobody writes, a silent
/// stdin, a UDP port nothing is sent to, a TCP listener nobody connects to. Each run ends
/// within a couple of seconds: 0 for the live ones (a signal is their normal end), 130
/// for the FIFO (a file job cut short), and no temporary file is left.
#[test]
fn a_signal_ends_a_run_blocked_in_its_open() {
    let tmp = common::tempdir();
    let fifo = tmp.path().join("f.fifo");
    let c = std::ffi::CString::new(s(&fifo)).expect("path");
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let udp = format!("udp://127.0.0.1:{}", common::free_port());
    let tcp = format!("tcp://127.0.0.1:{}?listen=1", common::free_port());
    for (input, code) in [(s(&fifo), 130), ("-".to_string(), 0), (udp, 0), (tcp, 0)] {
        let out = tmp.path().join("o");
        let mut child = KillOnDrop(
            Command::new(common::bin())
                .args(["run", "-i", &input, "-o", &s(&out)])
                // stdin: a pipe that stays open and silent
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start"),
        );
        thread::sleep(Duration::from_millis(700));
        assert!(
            child.0.try_wait().expect("wait").is_none(),
            "{input}: ended by itself"
        );
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
        let (status, timed_out) = common::wait_deadline(&mut child.0, Duration::from_secs(4));
        let mut err = String::new();
        if let Some(mut e) = child.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(
            !timed_out,
            "{input}: still running 4 s after SIGTERM\n{err}"
        );
        assert_eq!(status.and_then(|s| s.code()), Some(code), "{input}: {err}");
        if out.exists() {
            common::assert_no_temp_files(&out);
        }
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn status_json(port: u16) -> serde_json::Value {
    let reply = http_get(port, "/api/status");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    serde_json::from_str(&body[start..end]).unwrap_or_default()
}

/// Many viewers of one width cost one scaling per frame, not one per viewer, and no
/// frame is dropped or failed because of them.
#[test]
fn viewers_of_one_width_share_one_scaling_per_frame() {
    let tmp = common::tempdir();
    let (_server, mut run, port) = served_camera(tmp.path(), &[]);
    let viewers = 24;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = (0..viewers)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
                c.set_read_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                write!(c, "GET /stream.mjpeg?width=160 HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
                let mut got = 0usize;
                let mut buf = vec![0u8; 65536];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(n) = c.read(&mut buf) {
                        got += buf[..n].windows(2).filter(|w| w == &[0xFF, 0xD8]).count();
                    }
                }
                got
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(4));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let received: usize = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let st = status_json(port);
    let scales = st["preview_scales"].as_u64().expect("preview_scales");
    let published = st["streams"][0]["preview_frames"]["processed"]
        .as_u64()
        .expect("preview frames");
    assert!(received > viewers * 10, "viewers got {received} frames");
    assert!(
        scales <= published + 2,
        "{scales} scalings for {published} frames and {viewers} viewers ({received} sent)"
    );
    assert_eq!(st["streams"][0]["frames_dropped"], 0, "{st}");
    assert_eq!(st["streams"][0]["frames_failed"], 0, "{st}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let _ = common::wait_deadline(&mut run.0, Duration::from_secs(10));
}

/// Viewers that never read hold no frame copies of their own: memory stays bounded,
/// and they leave nothing behind. (With a copy of each part per viewer, as before, 400
/// stuck viewers of this 720p stream took RSS up by about 250 MB; sharing, about 35 MB.)
#[test]
fn stuck_viewers_cost_bounded_memory() {
    let tmp = common::tempdir();
    // 1280x720 with noise: previews of a few hundred kB each, as a real camera's.
    let clip = tmp.path().join("big.ts");
    common::ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
            "-t",
            "30",
            "-vf",
            "noise=alls=30:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-f",
            "mpegts",
            &s(&clip),
        ]
        .map(String::from)
        .to_vec(),
    );
    let (_server, mut run, port) = serve_clip(tmp.path(), &clip, &["--serve-max-clients", "1000"]);
    let pid = run.0.id();
    thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid);
    let stuck: Vec<std::net::TcpStream> = (0..400)
        .map(|i| {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            // A tiny receive window: the server's writes stall at once.
            let _ = write!(
                c,
                "GET /stream.mjpeg?raw={} HTTP/1.1\r\nHost: x\r\n\r\n",
                i % 2
            );
            c
        })
        .collect();
    thread::sleep(Duration::from_secs(5));
    let during = rss_kib(pid);
    drop(stuck);
    thread::sleep(Duration::from_secs(1));
    let st = status_json(port);
    assert!(
        during < before + 100 * 1024,
        "RSS {before} KiB → {during} KiB with 400 stuck viewers"
    );
    assert_eq!(st["streams"][0]["frames_failed"], 0, "{st}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let _ = common::wait_deadline(&mut run.0, Duration::from_secs(10));
}

/// What held before stays held: malformed requests get a 4xx, paths that try to climb
/// out get 404, never a file.
#[test]
fn malformed_requests_get_4xx_and_traversal_404() {
    let tmp = common::tempdir();
    let (_server, mut run, port) = served_camera(tmp.path(), &[]);
    let raw = |req: &[u8]| -> String {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = c.write_all(req);
        let mut buf = vec![0u8; 1024];
        let n = c.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    for req in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /latest.jpg?width=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /latest.jpg?stream=nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw(req);
        let code: u16 = r
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert!(
            (400..500).contains(&code) || r.is_empty(),
            "{:?}: {r}",
            String::from_utf8_lossy(req)
        );
        assert!(!r.contains("root:"), "{r}");
    }
    assert!(http_get(port, "/api/status").starts_with("HTTP/1.1 200"));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let _ = common::wait_deadline(&mut run.0, Duration::from_secs(10));
}

/// Runs `cmd` to its end (with a deadline) and returns its exit code, stderr and peak
/// resident memory in KiB (from wait4).
fn run_measured(cmd: &mut Command) -> (Option<i32>, String, u64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let reader = thread::spawn(move || {
        let mut t = String::new();
        let _ = err_pipe.read_to_string(&mut t);
        t
    });
    let pid = child.id() as i32;
    let deadline = Instant::now() + T;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let (mut status, mut usage) = (0i32, unsafe { std::mem::zeroed::<libc::rusage>() });
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(Instant::now() < deadline, "still running after {T:?}");
        thread::sleep(Duration::from_millis(20));
    }
    std::mem::forget(child); // reaped above
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (
        code,
        reader.join().unwrap_or_default(),
        usage.ru_maxrss as u64,
    )
}

/// Decompression bombs are refused from the header, before a buffer of that size
/// exists: `apply` fails the file with one line, `watch` moves it to `failed/`; memory
/// stays small (a 20000x20000 RGB image would be 1.2 GB).
#[test]
fn decompression_bombs_are_refused_from_their_header() {
    let tmp = common::tempdir();
    let seeds = common::workspace_root().join("fuzz/corpus/still");
    for bomb in ["seed-bomb.png", "seed-bomb.ppm"] {
        let mut cmd = Command::new(common::bin());
        cmd.args(["apply", "-f", "gaussian_blur=2", "-o"])
            .arg(tmp.path().join("a"))
            .arg(seeds.join(bomb));
        let (code, err, rss) = run_measured(&mut cmd);
        assert_eq!(code, Some(1), "{bomb}: {err}");
        assert!(err.contains("over the limit of 178956970"), "{bomb}: {err}");
        assert!(rss < 200 * 1024, "{bomb}: peak RSS {rss} KiB");
    }
    let hot = tmp.path().join("hot");
    std::fs::create_dir_all(&hot).expect("mkdir");
    std::fs::copy(seeds.join("seed-bomb.png"), hot.join("bomb.png")).expect("copy");
    let mut cmd = Command::new(common::bin());
    cmd.args(["watch", &s(&hot), "--once", "-o", &s(&tmp.path().join("w"))]);
    let (code, err, rss) = run_measured(&mut cmd);
    assert_eq!(code, Some(1), "{err}");
    assert!(hot.join("failed/bomb.png").exists(), "{err}");
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB");
    // A lower --max-pixels refuses an ordinary image the same way.
    let mut cmd = Command::new(common::bin());
    cmd.args(["apply", "--max-pixels", "10", "-o"])
        .arg(tmp.path().join("small"))
        .arg(seeds.join("seed-rgb.png"));
    let (code, err, _) = run_measured(&mut cmd);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("over the limit of 10 "), "{err}");
}

/// `watch` reads regular files only, at most `--max-file-size`, and only once the first
/// bytes say they are an image: a symlink to /dev/zero, a 3 GB sparse "huge.jpg", a FIFO
/// and an oversized file cost nothing and go to `failed/` (the FIFO is not even opened);
/// the real image next to them is processed.
#[test]
fn watch_reads_only_regular_image_files_within_the_size_limit() {
    let tmp = common::tempdir();
    let hot = tmp.path().join("hot");
    std::fs::create_dir_all(&hot).expect("mkdir");
    let seeds = common::workspace_root().join("fuzz/corpus/still");
    std::fs::copy(seeds.join("seed-rgb.png"), hot.join("ok.png")).expect("copy");
    std::os::unix::fs::symlink("/dev/zero", hot.join("zero.jpg")).expect("symlink");
    let huge = std::fs::File::create(hot.join("huge.jpg")).expect("create");
    huge.set_len(3 << 30).expect("sparse 3 GB");
    drop(huge);
    let fifo = std::ffi::CString::new(s(&hot.join("pipe.jpg"))).expect("path");
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // Small, but no image format: refused from its first bytes.
    std::fs::write(hot.join("zeros.jpg"), [0u8; 40]).expect("zeros");
    // Larger than the limit below, a real image all the same.
    std::fs::copy(seeds.join("seed-palette.png"), hot.join("big.png")).expect("copy");
    let limit = std::fs::metadata(seeds.join("seed-rgb.png"))
        .expect("meta")
        .len()
        + 10;
    let mut cmd = Command::new(common::bin());
    cmd.args([
        "watch",
        &s(&hot),
        "--once",
        "--max-file-size",
        &limit.to_string(),
    ])
    .args(["-o", &s(&tmp.path().join("out"))]);
    let start = Instant::now();
    let (code, err, rss) = run_measured(&mut cmd);
    assert_eq!(code, Some(1), "some inputs failed: {err}");
    assert!(start.elapsed() < Duration::from_secs(30), "{err}");
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB: {err}");
    assert_eq!(
        common::list_dir(&tmp.path().join("out")),
        ["ok.png"],
        "{err}"
    );
    let failed = common::list_dir(&hot.join("failed"));
    for name in ["zero.jpg", "huge.jpg", "big.png", "zeros.jpg"] {
        assert!(
            failed.contains(&name.to_string()),
            "{name} not in failed/ {failed:?}: {err}"
        );
    }
    assert!(err.contains("only regular files are read"), "{err}");
    assert!(err.contains("not an image"), "{err}");
    assert!(err.contains("--max-file-size"), "{err}");
}

/// A video whose stream gives no frame at all is a failed job (exit 1, one line saying
/// so), not "wrote 0 frames" and exit 0.
#[test]
fn a_video_that_yields_no_frame_is_a_failure() {
    let tmp = common::tempdir();
    let empty = tmp.path().join("empty.mp4");
    // Every packet dropped by the noise bitstream filter: a video stream with no frame.
    common::ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-bsf:v",
            "noise=amount=-1",
            &s(&empty),
        ]
        .map(String::from)
        .to_vec(),
    );
    let r = common::frameflow(
        ["run", "-i", &s(&empty), "-o", &s(&tmp.path().join("o"))],
        T,
    );
    r.assert_code(1);
    assert!(
        r.stderr.contains("no frame could be decoded"),
        "{}",
        r.describe()
    );
}

/// A template that an empty label would turn into `../..` is refused at start in a
/// `--config` stream too (usage error, nothing written anywhere), as on the command line
/// (`tests/names.rs`).
#[test]
fn a_config_label_cannot_make_names_escape() {
    let tmp = common::tempdir();
    let clip = small_clip(tmp.path());
    let base = tmp.path().join("a/b");
    std::fs::create_dir_all(&base).expect("mkdir");
    std::fs::write(
        base.join("c.toml"),
        format!(
            "[[stream]]\nlabel = \"\"\ninput = \"{}\"\nout = \"o\"\nname = \"..{{stream}}/..{{stream}}/x{{index}}.jpg\"\n",
            s(&clip)
        ),
    )
    .expect("config");
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(&base).args(["run", "--config", "c.toml"]);
    let r = common::run_with_timeout(&mut cmd, T);
    r.assert_code(2);
    assert!(r.stderr.contains("c.toml"), "{}", r.describe());
    for dir in [tmp.path().to_path_buf(), tmp.path().join("a"), base.clone()] {
        assert!(
            !common::list_dir(&dir).iter().any(|n| n.starts_with('x')),
            "{}: {:?}",
            dir.display(),
            common::list_dir(&dir)
        );
    }
}
