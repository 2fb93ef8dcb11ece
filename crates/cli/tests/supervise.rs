//! Live supervision against real servers on 127.0.0.1: a server that goes away and comes
//! back, and a server that accepts, sends a little and then stalls.

mod common;

use common::{H, KillOnDrop, LiveServer, W, ffmpeg, free_port, lavfi, list_dir, s, stats_u64};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// MPEG-1 in an MPEG program stream, no B-frames, 320x240 at 25 fps.
fn make_clip(path: &Path, secs: f32) {
    let mut args = lavfi("testsrc2", W, H, secs);
    args.extend(["-c:v", "mpeg1video", "-q:v", "4", "-f", "mpeg"].map(String::from));
    args.push(s(path));
    ffmpeg(args);
}

#[test]
fn server_restarted_mid_stream_frames_continue_and_the_reconnect_is_counted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = tmp.path().join("clip.mpg");
    make_clip(&clip, 2.0); // 50 frames per connection
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/cam.mpg");
    // Two one-client servers in a row, with a gap: the stream ends, the port refuses
    // connections for a while, then a new stream starts.
    let script = format!(
        "ffmpeg -nostdin -v error -re -i '{c}' -c copy -f mpeg -listen 1 {url}; sleep 1; \
         ffmpeg -nostdin -v error -re -i '{c}' -c copy -f mpeg -listen 1 {url}",
        c = clip.display()
    );
    let _server = KillOnDrop(
        Command::new("bash")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server"),
    );
    std::thread::sleep(Duration::from_millis(400));
    let out = tmp.path().join("frames");
    let stats = tmp.path().join("stats.json");
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args([
            "run",
            "-i",
            &url,
            "-f",
            "emboss",
            "--max-frames",
            "90",
            "-o",
        ])
        .arg(&out)
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .expect("frameflow");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "{stderr}");
    assert!(
        stderr.contains("reconnect"),
        "the reconnect is logged with its cause: {stderr}"
    );
    let names = list_dir(&out);
    let expected: Vec<String> = (0..90).map(|i| format!("frame{i:06}.jpg")).collect();
    assert_eq!(
        names, expected,
        "numbering continues across the reconnect, no gaps: {stderr}"
    );
    assert!(stats_u64(&stats, "reconnects") >= 1, "{stderr}");
    assert_eq!(stats_u64(&stats, "frames_written"), 90);
}

#[test]
fn a_stalled_server_is_detected_after_timeout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = tmp.path().join("clip.mpg");
    make_clip(&clip, 4.0);
    let data = std::fs::read(&clip).expect("clip");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts, answers with the first ~40 % of the stream, then sends nothing more
    // while keeping the connection open.
    let server = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..3 {
            let Ok((mut c, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: video/mpeg\r\n\r\n");
            let _ = c.write_all(&data[..data.len() * 2 / 5]);
            conns.push(c); // keep it open: a stall, not an end
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let out = tmp.path().join("frames");
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args([
            "run",
            "-i",
            &format!("http://127.0.0.1:{port}/x.mpg"),
            "--timeout",
            "1",
            "--reconnect-max",
            "1",
            "-o",
        ])
        .arg(&out)
        .output()
        .expect("frameflow");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}: {stderr}");
    assert!(stderr.contains("stalled"), "{stderr}");
    assert!(
        stderr.contains("reconnecting"),
        "one reconnect after the stall: {stderr}"
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "gave up after --reconnect-max: {stderr}"
    );
    assert!(
        !list_dir(&out).is_empty(),
        "the frames before the stall were written"
    );
    assert!(
        list_dir(&out).iter().all(|n| !n.starts_with('.')),
        "no temporary files"
    );
    drop(server);
}

#[test]
fn no_reconnect_ends_with_the_stream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = tmp.path().join("clip.mpg");
    make_clip(&clip, 1.0);
    let server = LiveServer::start(&clip, "mpeg", "cam.mpg", tmp.path());
    let url = server.url.clone();
    let out = tmp.path().join("frames");
    let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args(["run", "--no-reconnect", "-i", &url, "-o"])
        .arg(&out)
        .output()
        .expect("frameflow");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(list_dir(&out).len(), 25);
}

#[test]
fn a_server_that_never_answers_fails_within_the_timeout() {
    // Accepts connections and reads the request, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(4).flatten() {
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("frames");
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args(["run", "--no-reconnect", "--timeout", "2", "-i"])
        .arg(format!("http://127.0.0.1:{port}/cam.mpg"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("frameflow");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(8), "took {took:?}: {stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "names the input: {stderr}"
    );
    assert!(stderr.contains("no answer within 2.0 s"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "one line: {stderr}"
    );
    assert!(
        !out.exists() || list_dir(&out).is_empty(),
        "nothing written"
    );
}

/// A sink slower than the live stream (one worker running a heavy chain, ~5-10 frames/s
/// against a 25 frames/s stream): every frame is either written or dropped by the policy
/// and counted; with `block`, nothing is dropped.
#[test]
fn slow_sink_under_each_overload_policy_counts_every_frame() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = tmp.path().join("clip.mpg");
    make_clip(&clip, 4.0); // 100 frames at 25 fps
    for policy in ["drop-oldest", "drop-newest", "block"] {
        let server = LiveServer::start(&clip, "mpeg", "cam.mpg", tmp.path());
        let url = server.url.clone();
        let out = tmp.path().join(format!("out-{policy}"));
        let stats = tmp.path().join(format!("{policy}.json"));
        let mut args = vec![
            "run",
            "--no-reconnect",
            "-i",
            &url,
            "-f",
            "mode=25,mode=25,gaussian_blur=20",
            "--workers",
            "1",
            "--queue",
            "2",
            "--overload",
            policy,
        ];
        if policy == "block" {
            args.extend(["--max-frames", "15"]);
        }
        let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
            .args(&args)
            .arg("-o")
            .arg(&out)
            .arg("--stats-json")
            .arg(&stats)
            .output()
            .expect("frameflow");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{policy}: {stderr}");
        let decoded = stats_u64(&stats, "frames_decoded");
        let written = stats_u64(&stats, "frames_written");
        let oldest = stats_u64(&stats, "drop_oldest");
        let newest = stats_u64(&stats, "drop_newest");
        assert_eq!(list_dir(&out).len() as u64, written, "{policy}");
        assert_eq!(
            decoded,
            written + oldest + newest,
            "{policy}: decoded = written + dropped"
        );
        match policy {
            "drop-oldest" => assert!(oldest > 0 && newest == 0, "{policy}: {oldest}/{newest}"),
            "drop-newest" => assert!(newest > 0 && oldest == 0, "{policy}: {oldest}/{newest}"),
            _ => assert_eq!((written, oldest + newest), (15, 0), "{policy}"),
        }
    }
}
