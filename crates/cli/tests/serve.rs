//! `--serve` and `--config`: every web endpoint against a live run, a stuck viewer while
//! frames are written at full rate, and a two-stream config against two live inputs.
//! Everything talks to 127.0.0.1 only.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `frameflow run --serve 0 ...` in the background, with its stderr collected and the
/// address it printed.
struct Served {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    /// `frameflow run -i URL -f emboss -o OUT --no-reconnect --serve 0 EXTRA...`.
    fn live(url: &str, out: &Path, extra: &[&str]) -> Served {
        let mut args: Vec<String> = ["run", "-i", url, "-f", "emboss", "-o"]
            .map(String::from)
            .to_vec();
        args.push(s(out));
        args.extend(["--no-reconnect", "--serve", "0"].map(String::from));
        args.extend(extra.iter().map(|a| a.to_string()));
        Served::start(&args)
    }

    fn start(args: &[String]) -> Served {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start frameflow");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("web preview on http://").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('/').to_string());
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no 'web preview on' line from frameflow {args:?}:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Served {
            child,
            addr,
            stderr,
            reader: Some(reader),
        }
    }

    /// Waits for the run to end; returns its exit code and stderr.
    fn wait(mut self, timeout: Duration) -> (Option<i32>, String) {
        let (status, timed_out) = wait_deadline(&mut self.child, timeout);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let err = self.stderr.lock().unwrap().clone();
        assert!(
            !timed_out,
            "frameflow did not finish in {timeout:?}:\n{err}"
        );
        (status.and_then(|s| s.code()), err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET with `Connection: close`: status, lower-cased headers, body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

/// The data of the complete chunks at the start of a chunked body (stops at the first
/// incomplete one).
fn dechunk_complete(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let Ok(size) = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16) else {
            return out;
        };
        if size == 0 || b.len() < eol + 2 + size + 2 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn status_json(addr: SocketAddr) -> serde_json::Value {
    let (code, h, body) = get(addr, "/api/status");
    assert_eq!(code, 200);
    assert!(header(&h, "content-type").starts_with("application/json"));
    serde_json::from_slice(&body).expect("status JSON")
}

/// (width, height) from a baseline/progressive JPEG's SOF marker, checking SOI and EOI.
fn jpeg_size(j: &[u8]) -> (u32, u32) {
    assert!(j.len() > 4 && j[..2] == [0xFF, 0xD8], "no SOI");
    assert_eq!(&j[j.len() - 2..], &[0xFF, 0xD9], "no EOI");
    let mut i = 2;
    while i + 9 < j.len() {
        assert_eq!(j[i], 0xFF, "bad marker at {i}");
        let m = j[i + 1];
        let len = usize::from(j[i + 2]) << 8 | usize::from(j[i + 3]);
        if (0xC0..=0xC2).contains(&m) {
            let h = u32::from(j[i + 5]) << 8 | u32::from(j[i + 6]);
            let w = u32::from(j[i + 7]) << 8 | u32::from(j[i + 8]);
            return (w, h);
        }
        i += 2 + len;
    }
    panic!("no SOF marker");
}

/// Reads parts of a `multipart/x-mixed-replace` response: (seq, jpeg) pairs, until `n`
/// parts or `timeout`.
fn mjpeg_parts(
    addr: SocketAddr,
    path: &str,
    n: usize,
    timeout: Duration,
) -> (String, Vec<(u64, Vec<u8>)>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut content_type = String::new();
    let mut parts = Vec::new();
    let mut body_start = None;
    while Instant::now() < deadline && parts.len() < n {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(_) => continue,
        }
        if body_start.is_none()
            && let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&buf[..p]).to_string();
            content_type = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-type:")
                        .map(|v| v.trim().to_string())
                })
                .unwrap_or_default();
            body_start = Some(p + 4);
        }
        let Some(start) = body_start else { continue };
        // The body is chunked (a part may span chunks: its head, the frame's shared
        // bytes, the closing CRLF): undo the framing of the complete chunks, then find
        // the parts by their own headers.
        parts = parse_parts(&dechunk_complete(&buf[start..]));
    }
    parts.truncate(n);
    (content_type, parts)
}

fn parse_parts(body: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let needle = b"--frameflow-frame\r\n";
    let mut i = 0;
    while let Some(p) = body[i..].windows(needle.len()).position(|w| w == needle) {
        let h0 = i + p + needle.len();
        let Some(he) = body[h0..].windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&body[h0..h0 + he]).to_string();
        let field = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let len: usize = field("content-length").parse().expect("part length");
        let seq: u64 = field("x-frameflow-seq").parse().expect("part seq");
        let data0 = h0 + he + 4;
        if body.len() < data0 + len {
            break;
        }
        out.push((seq, body[data0..data0 + len].to_vec()));
        i = data0 + len;
    }
    out
}

/// A live H.264 stream of `secs` seconds at WxH, 30 fps, served over HTTP (MPEG-TS).
fn live_clip(dir: &Path, name: &str, w: u32, h: u32, secs: u32) -> std::path::PathBuf {
    let clip = dir.join(name);
    ffmpeg([
        "-f".to_string(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={w}x{h}:rate=30"),
        "-t".into(),
        secs.to_string(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "ultrafast".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-g".into(),
        "30".into(),
        "-f".into(),
        "mpegts".into(),
        s(&clip),
    ]);
    clip
}

#[test]
fn every_endpoint_answers_during_a_live_run() {
    let dir = tempdir();
    let clip = live_clip(dir.path(), "cam.ts", 320, 240, 8);
    let server = LiveServer::start(&clip, "mpegts", "cam.ts", dir.path());
    let out = dir.path().join("out");
    let run = Served::live(&server.url, &out, &["--label", "cam"]);
    let addr = run.addr;
    assert!(
        addr.ip().is_loopback(),
        "a bare port binds 127.0.0.1: {addr}"
    );

    // The page: one HTML document wired to the stream and the status API.
    let (code, h, body) = get(addr, "/");
    assert_eq!(code, 200);
    assert!(header(&h, "content-type").starts_with("text/html"));
    let page = String::from_utf8_lossy(&body);
    for needle in ["/stream.mjpeg", "raw=1", "/api/status", "\"img\""] {
        assert!(page.contains(needle), "page lacks {needle}");
    }

    // Status counts up while the stream runs.
    let wait_written = |min: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = status_json(addr);
            let w = v["streams"][0]["frames_written"].as_u64().unwrap_or(0);
            if w >= min {
                return v;
            }
            assert!(Instant::now() < deadline, "written stuck at {w}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = wait_written(5);
    assert_eq!(first["streams"][0]["stream"], "cam");
    assert_eq!(first["streams"][0]["state"], "running");
    assert_eq!(first["streams"][0]["filter"], "emboss");
    for key in [
        "frames_decoded",
        "frames_dropped",
        "frames_failed",
        "reconnects",
        "elapsed_s",
        "fps",
        "queue_depth",
    ] {
        assert!(first["streams"][0][key].is_number(), "{key} in {first}");
    }
    let later = wait_written(first["streams"][0]["frames_written"].as_u64().unwrap() + 10);
    assert!(later["streams"][0]["latency_ms"]["p99"].is_number());

    // Snapshots: processed at the stream's size, raw on demand, scaled with ?width.
    let (code, h, jpeg) = get(addr, "/latest.jpg");
    assert_eq!(code, 200);
    assert_eq!(header(&h, "content-type"), "image/jpeg");
    assert_eq!(jpeg_size(&jpeg), (320, 240));
    let (code, _, raw) = get(addr, "/latest.jpg?raw=1&width=160");
    assert_eq!(code, 200);
    assert_eq!(jpeg_size(&raw), (160, 120));

    // The MJPEG stream: JPEG parts in decode order, limited by ?fps.
    let (ct, parts) = mjpeg_parts(addr, "/stream.mjpeg?fps=10", 4, Duration::from_secs(10));
    assert!(
        ct.starts_with("multipart/x-mixed-replace; boundary=frameflow-frame"),
        "{ct}"
    );
    assert!(parts.len() >= 3, "only {} parts", parts.len());
    for w in parts.windows(2) {
        assert!(
            w[1].0 > w[0].0,
            "parts out of order: {} then {}",
            w[0].0,
            w[1].0
        );
    }
    for (_, j) in &parts {
        assert_eq!(jpeg_size(j), (320, 240));
    }
    let (_, raw_parts) = mjpeg_parts(
        addr,
        "/stream.mjpeg?raw=1&width=100",
        2,
        Duration::from_secs(10),
    );
    assert!(!raw_parts.is_empty(), "no raw MJPEG parts");
    assert_eq!(jpeg_size(&raw_parts[0].1), (100, 75));

    // Prometheus text, labelled by stream.
    let (code, h, body) = get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(header(&h, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&body);
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .map(|v| v.trim().parse::<f64>().expect(l))
            })
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert!(value("frameflow_frames_decoded_total{stream=\"cam\"}") > 0.0);
    assert!(value("frameflow_frames_written_total{stream=\"cam\"}") > 0.0);
    assert_eq!(value("frameflow_frames_failed_total{stream=\"cam\"}"), 0.0);
    assert_eq!(value("frameflow_reconnects_total{stream=\"cam\"}"), 0.0);
    value("frameflow_frames_dropped_total{stream=\"cam\",reason=\"drop_oldest\"}");
    value("frameflow_queue_depth{stream=\"cam\"}");
    let count = value("frameflow_frame_latency_seconds_count{stream=\"cam\"}");
    assert_eq!(
        value("frameflow_frame_latency_seconds_bucket{stream=\"cam\",le=\"+Inf\"}"),
        count
    );
    assert!(text.contains("# TYPE frameflow_frame_latency_seconds histogram"));

    // Bad requests are told apart.
    assert_eq!(get(addr, "/stream.mjpeg?stream=nope").0, 404);
    assert_eq!(get(addr, "/latest.jpg?width=0").0, 400);
    assert_eq!(get(addr, "/stream.mjpeg?fps=-1").0, 400);
    assert_eq!(get(addr, "/nothing-here").0, 404);

    let (code, err) = run.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    let written = list_dir(&out).len();
    assert!(written >= 150, "only {written} frames written:\n{err}");
}

#[test]
fn a_stuck_viewer_never_slows_the_pipeline() {
    let dir = tempdir();
    // 720p at 30 fps: ~100 kB per preview frame, so a viewer that never reads fills its
    // socket buffers within a couple of seconds and then stays stuck.
    let clip = live_clip(dir.path(), "cam.ts", 1280, 720, 12);
    let server = LiveServer::start(&clip, "mpegts", "cam.ts", dir.path());
    let out = dir.path().join("out");
    let stats = dir.path().join("stats.json");
    // `block`: every frame is written whatever the machine's load, so the counts below
    // are exact; a pipeline that waited for a viewer would never finish.
    let run = Served::live(
        &server.url,
        &out,
        &["--overload", "block", "--stats-json", &s(&stats)],
    );
    let addr = run.addr;
    // Stuck viewers: connect, ask for every frame of both feeds, never read.
    let mut stuck = Vec::new();
    for path in [
        "/stream.mjpeg",
        "/stream.mjpeg?raw=1",
        "/stream.mjpeg?raw=1",
    ] {
        let mut s = TcpStream::connect(addr).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        stuck.push(s);
    }
    // The server keeps answering, frames keep being written, and once the stuck viewers'
    // buffers are full their demand lapses: raw frames stop being encoded for them.
    let sample = || {
        let v = status_json(addr);
        let st = v["streams"][0].clone();
        let (code, _, m) = get(addr, "/metrics");
        assert_eq!(code, 200);
        assert!(
            String::from_utf8_lossy(&m)
                .contains("frameflow_preview_viewers{stream=\"cam\",feed=\"raw\"} 2")
        );
        (
            st["frames_written"].as_u64().unwrap_or(0),
            st["preview_frames"]["raw"].as_u64().unwrap_or(0),
            st["state"].as_str().unwrap_or("").to_string(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut history: Vec<(Instant, u64, u64)> = Vec::new();
    let proven = loop {
        let (written, raw, state) = sample();
        assert_ne!(
            state, "ended",
            "the stream ended before the viewers were stuck: {history:?}"
        );
        let now = Instant::now();
        history.push((now, written, raw));
        // Over the last 2 s: frames written, no raw frame encoded.
        if let Some(&(_, w0, r0)) = history
            .iter()
            .rev()
            .find(|(t, ..)| now.duration_since(*t) >= Duration::from_secs(2))
            && written > w0 + 20
            && raw == r0
            && raw > 0
        {
            break (w0, written, raw);
        }
        assert!(
            Instant::now() < deadline,
            "raw frames still encoded for stuck viewers: {history:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (code, err) = run.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    drop(stuck);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let st = &v["streams"][0];
    assert_eq!(st["frames_failed"], 0, "{v}");
    assert_eq!(st["frames_decoded"], 360, "{v}");
    assert_eq!(st["frames_written"], 360, "{v}; stuck from {proven:?}");
    assert_eq!(list_dir(&out).len(), 360);
}

#[test]
fn a_two_stream_config_runs_both_live_inputs_in_one_process() {
    let dir = tempdir();
    let clip_a = live_clip(dir.path(), "a.ts", 320, 240, 6);
    let clip_b = make_mpeg1_ps(dir.path(), "b.mpg", 6.0);
    let a = LiveServer::start(&clip_a, "mpegts", "a.ts", dir.path());
    let b = LiveServer::start(&clip_b, "mpeg", "b.mpg", dir.path());
    let config = dir.path().join("cams.toml");
    let stats = dir.path().join("stats.json");
    std::fs::write(
        &config,
        format!(
            r#"# two live cameras, one process
serve = "0"
stats_json = "{stats}"

[defaults]
filter = "emboss"
reconnect = false

[[stream]]
label = "front"
input = "{a}"
out = "{out_a}"

[[stream]]
label = "back"
input = "{b}"
out = "{out_b}"
filter = "grayscale"
format = "png"
"#,
            stats = s(&stats),
            a = a.url,
            b = b.url,
            out_a = s(&dir.path().join("front")),
            out_b = s(&dir.path().join("back")),
        ),
    )
    .unwrap();
    let run = Served::start(&["run".into(), "--config".into(), s(&config)]);
    let addr = run.addr;
    let deadline = Instant::now() + Duration::from_secs(20);
    let both = loop {
        let v = status_json(addr);
        let ok = v["streams"].as_array().is_some_and(|s| {
            s.len() == 2
                && s.iter()
                    .all(|x| x["frames_written"].as_u64().unwrap_or(0) > 5)
        });
        if ok {
            break v;
        }
        assert!(Instant::now() < deadline, "both streams should write: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let labels: Vec<&str> = both["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["front", "back"]);
    let (_, _, m) = get(addr, "/metrics");
    let m = String::from_utf8_lossy(&m);
    assert!(m.contains("frameflow_frames_written_total{stream=\"front\"}"));
    assert!(m.contains("frameflow_frames_written_total{stream=\"back\"}"));
    let (code, _, j) = get(addr, "/latest.jpg?stream=back");
    assert_eq!(code, 200);
    assert_eq!(jpeg_size(&j), (W, H));
    let (code, err) = run.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("[front] wrote") && err.contains("[back] wrote"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    for (i, (label, ext)) in [("front", "jpg"), ("back", "png")].into_iter().enumerate() {
        let st = &v["streams"][i];
        assert_eq!(st["stream"], label);
        let files = list_dir(&dir.path().join(label));
        assert_eq!(
            files.len() as u64,
            st["frames_written"].as_u64().unwrap(),
            "{label}"
        );
        assert!(files.len() >= 100, "{label}: {} files", files.len());
        assert!(files.iter().all(|f| f.ends_with(ext)), "{label}: {files:?}");
    }
}

#[test]
fn config_errors_name_the_file_line_and_key() {
    let dir = tempdir();
    let config = dir.path().join("bad.toml");
    let cases: [(&str, &str); 5] = [
        (
            "[[stream]]\ninput = \"a.mp4\"\nquality = 300\n",
            ":3: key 'quality'",
        ),
        (
            "[[stream]]\ninput = \"a.mp4\"\n\n[[stream]]\ninput = \"b.mp4\"\nfilter = \"embos\"\n",
            ":6: key 'filter': -f 'embos': unknown filter 'embos' (did you mean 'emboss'?)",
        ),
        (
            "[[stream]]\ninput = \"a.mp4\"\ncolour = \"red\"\n",
            ":3: key 'colour': not a run option",
        ),
        (
            "[[stream]]\nlabel = \"x\"\n",
            ":1: [[stream]] #1: missing key 'input'",
        ),
        (
            "serve = \"nowhere\"\n[[stream]]\ninput = \"a.mp4\"\n",
            ":1: key 'serve'",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&config, text).unwrap();
        let r = frameflow(["run", "--config", &s(&config)], Duration::from_secs(20));
        r.assert_code(2);
        let line = format!("{}{want}", s(&config));
        assert!(r.stderr.contains(&line), "want '{line}' in:\n{}", r.stderr);
    }
    // Stream options go in the file, not beside --config.
    std::fs::write(&config, "[[stream]]\ninput = \"a.mp4\"\n").unwrap();
    let r = frameflow(
        ["run", "--config", &s(&config), "-f", "emboss"],
        Duration::from_secs(20),
    );
    r.assert_code(2);
    assert!(
        r.stderr.contains("--filter belongs in the file"),
        "{}",
        r.stderr
    );
    let r = frameflow(
        ["run", "--serve", "127.0.0.1:nope", "-i", "a.mp4"],
        Duration::from_secs(20),
    );
    r.assert_code(2);
}

/// Headless Chromium (Debian's, driven through chromedriver) loads the page of a
/// two-stream run: every preview shows frames and the stats count up. The screenshot is
/// kept as a test artifact: target/test-artifacts/preview.png.
#[test]
fn the_page_shows_live_previews_in_chromium() {
    let dir = tempdir();
    let clip_a = live_clip(dir.path(), "a.ts", 640, 360, 40);
    let clip_b = dir.path().join("b.ts");
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "mandelbrot=size=640x360:rate=30",
        "-t",
        "40",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "30",
        "-f",
        "mpegts",
        &s(&clip_b),
    ]);
    let a = LiveServer::start(&clip_a, "mpegts", "a.ts", dir.path());
    let b = LiveServer::start(&clip_b, "mpegts", "b.ts", dir.path());
    let config = dir.path().join("cams.toml");
    std::fs::write(
        &config,
        format!(
            "serve = \"0\"\n[defaults]\nreconnect = false\n\n\
             [[stream]]\nlabel = \"yard\"\ninput = \"{}\"\nout = \"{}\"\nfilter = \"emboss\"\n\n\
             [[stream]]\nlabel = \"gate\"\ninput = \"{}\"\nout = \"{}\"\nfilter = \"find_edges\"\n",
            a.url,
            s(&dir.path().join("yard")),
            b.url,
            s(&dir.path().join("gate")),
        ),
    )
    .unwrap();
    let run = Served::start(&["run".into(), "--config".into(), s(&config)]);
    let artifacts = workspace_root().join("target/test-artifacts");
    let shot = artifacts.join("preview.png");
    let _ = std::fs::remove_file(&shot);
    let check = workspace_root().join("tests-support/browser/preview_check.py");
    let mut cmd = Command::new(python());
    cmd.arg(&check)
        .arg(format!("http://{}/", run.addr))
        .arg(&shot);
    let r = run_with_timeout(&mut cmd, Duration::from_secs(120));
    assert!(
        r.code() == Some(0),
        "browser check failed: {}\n{}",
        r.describe(),
        run.stderr.lock().unwrap()
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let seen: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("check's JSON line");
    let cards = seen["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 2, "{seen}");
    for c in cards {
        assert_eq!(c["processed"], 640, "{seen}");
        assert_eq!(c["raw"], 640, "{seen}");
    }
    eprintln!("screenshot: {}", shot.display());
}

/// Without a terminal, `run` logs a status line every 10 s (fps, written, dropped,
/// reconnects, queue, latency); `-q` turns it off.
#[test]
fn status_lines_every_ten_seconds_without_a_terminal() {
    let dir = tempdir();
    let clip = live_clip(dir.path(), "cam.ts", 320, 240, 12);
    let loud = LiveServer::start(&clip, "mpegts", "cam.ts", dir.path());
    let quiet = LiveServer::start(&clip, "mpegts", "cam.ts", dir.path());
    let run = |url: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "-i",
            url,
            "-f",
            "emboss",
            "--no-reconnect",
            "--label",
            "cam",
            "-o",
        ];
        let out = s(&dir.path().join(out));
        args.push(&out);
        args.extend_from_slice(extra);
        frameflow(args, Duration::from_secs(60))
    };
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| run(&loud.url, "a", &[]));
        let b = sc.spawn(|| run(&quiet.url, "b", &["-q"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.assert_success();
    b.assert_success();
    let lines: Vec<&str> = a
        .stderr
        .lines()
        .filter(|l| l.starts_with("frameflow: cam: running"))
        .collect();
    assert_eq!(lines.len(), 1, "one status line in 12 s:\n{}", a.stderr);
    for part in [
        "fps, written ",
        ", dropped 0",
        ", reconnects 0",
        ", queue ",
        "latency p50 ",
    ] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
    assert_eq!(b.stderr.trim(), "", "-q prints nothing on success");
}

/// On a terminal (a pty from util-linux's `script`), a file input gets a progress bar
/// with frames out of the expected total and an ETA.
#[test]
fn a_progress_bar_on_a_terminal() {
    let dir = tempdir();
    let clip = dir.path().join("clip.mp4");
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=30",
        "-t",
        "20",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        &s(&clip),
    ]);
    let out = dir.path().join("out");
    let inner = format!(
        "{} run -i {} -f emboss -o {} --workers 1",
        s(&bin()),
        s(&clip),
        s(&out)
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"])
        .env("TERM", "xterm");
    let r = run_with_timeout(&mut cmd, Duration::from_secs(120));
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let screen = r.stdout.replace('\r', "\n");
    assert!(
        screen.contains("/600 frames"),
        "no progress bar in:\n{screen}"
    );
    assert!(screen.contains("eta"), "no ETA in:\n{screen}");
    assert_eq!(list_dir(&out).len(), 600);
}
