//! Live streams over HTTP, the 2018 scenario: the ffmpeg CLI serves a file in real time
//! (`-re … -c copy -f mpeg|mpegts -listen 1 http://127.0.0.1:PORT/…`, as ffserver did),
//! frameflow reads it with `-f emboss`, and every frame must arrive, in order, equal to
//! Pillow's `ImageFilter.EMBOSS` of the same frame decoded by `ffmpeg -pix_fmt rgb24`.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const CLIP_SECS: f32 = 3.0;
/// A 3 s live stream plus connection set-up; far more than needed, never a hang.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

struct Live {
    ext: &'static str,
    /// JPEG: within a tolerance of Pillow's own q75 JPEG; PNG: bit-exact.
    max_mae: Option<f32>,
    /// Stop after this many frames instead of at the end of the stream.
    stop_at_count: bool,
}

fn live_emboss(media: &Path, mux: &str, url_path: &str, opts: Live, tmp: &Path) {
    let (raw, n) = reference_rgb(media, tmp, W, H);
    assert!(n >= 50, "test clip too short: {n} frames");
    let out = tmp.join("frames");
    let stats = tmp.join("stats.json");

    let mut server = LiveServer::start(media, mux, url_path, tmp);
    // The server serves one client and exits: the run ends with the stream.
    let mut args = vec![
        "run".to_string(),
        "--no-reconnect".into(),
        "-i".into(),
        server.url.clone(),
        "-f".into(),
        "emboss".into(),
        "-o".into(),
        s(&out),
        "--format".into(),
        opts.ext.into(),
        "--stats-json".into(),
        s(&stats),
    ];
    if opts.stop_at_count {
        args.extend(["--max-frames".into(), n.to_string()]);
    }
    let run = frameflow(&args, RUN_DEADLINE);
    server.finish(Duration::from_secs(5));
    assert!(
        !run.timed_out,
        "frameflow did not finish after the live stream ended (server log: {})\n{}",
        server.log_text(),
        run.describe()
    );
    run.assert_code(0);

    // Every frame, in order, named frame000000.EXT…, each equal to Pillow's EMBOSS.
    let mut check = Check::new(&raw, W, H, &out);
    check.ext = opts.ext;
    check.filter = "emboss";
    check.max_mae = opts.max_mae;
    check.vs_pillow_jpeg = opts.max_mae.is_some();
    check.count = Some(n);
    let report = check.run(&run);
    eprintln!("{report}");

    let files = list_dir(&out).len() as u64;
    let (decoded, written) = stats_counts(&stats, &run);
    assert_eq!(
        (decoded, written),
        (files, files),
        "stats decoded/written vs {files} files\n{}",
        run.describe()
    );
}

#[test]
fn live_mpeg1_program_stream_emboss_png_bit_exact() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", CLIP_SECS);
    live_emboss(
        &media,
        "mpeg",
        "test1.mpg",
        Live {
            ext: "png",
            max_mae: None,
            stop_at_count: false,
        },
        tmp.path(),
    );
}

#[test]
fn live_mpeg1_program_stream_emboss_jpeg() {
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", CLIP_SECS);
    live_emboss(
        &media,
        "mpeg",
        "test1.mpg",
        Live {
            ext: "jpg",
            max_mae: Some(JPEG_MAX_MAE),
            stop_at_count: true,
        },
        tmp.path(),
    );
}

#[test]
fn live_h264_mpegts_emboss_png_bit_exact() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "live.ts", "mpegts", CLIP_SECS);
    live_emboss(
        &media,
        "mpegts",
        "live.ts",
        Live {
            ext: "png",
            max_mae: None,
            stop_at_count: false,
        },
        tmp.path(),
    );
}

#[test]
fn live_h264_mpegts_emboss_jpeg() {
    let tmp = tempdir();
    let media = make_h264(tmp.path(), "live.ts", "mpegts", CLIP_SECS);
    live_emboss(
        &media,
        "mpegts",
        "live.ts",
        Live {
            ext: "jpg",
            max_mae: Some(JPEG_MAX_MAE),
            stop_at_count: true,
        },
        tmp.path(),
    );
}

/// Is this final-named output complete? PNG: ends with the IEND chunk; JPEG: ends with
/// the EOI marker.
fn complete_image(name: &str, bytes: &[u8]) -> bool {
    if name.ends_with(".png") {
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.ends_with(b"IEND\xae\x42\x60\x82")
    } else if name.ends_with(".jpg") {
        bytes.starts_with(&[0xff, 0xd8]) && bytes.ends_with(&[0xff, 0xd9])
    } else {
        !bytes.is_empty()
    }
}

/// Watches `dir` until `stop`, checking every file the moment it is visible under a final
/// (non-dot) name: it must already be complete. Returns (files checked, incomplete ones).
fn watch_outputs(
    dir: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut seen = std::collections::HashSet::new();
        let mut bad = Vec::new();
        loop {
            let last = stop.load(Ordering::SeqCst);
            for name in list_dir(&dir) {
                if name.starts_with('.') || seen.contains(&name) {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(dir.join(&name)) {
                    if !complete_image(&name, &bytes) {
                        bad.push(format!("{name} ({} bytes)", bytes.len()));
                    }
                    seen.insert(name);
                }
            }
            if last {
                return (seen.len(), bad);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

#[test]
fn live_outputs_are_complete_whenever_visible() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", CLIP_SECS);
    let (_, n) = reference_rgb(&media, tmp.path(), W, H);
    let out = tmp.path().join("frames");
    std::fs::create_dir_all(&out).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_outputs(out.clone(), stop.clone());

    let server = LiveServer::start(&media, "mpeg", "test1.mpg", tmp.path());
    let run = frameflow(
        [
            "run",
            "--no-reconnect",
            "-i",
            &server.url,
            "-f",
            "emboss",
            "-o",
            &s(&out),
            "--format",
            "png",
        ],
        RUN_DEADLINE,
    );
    stop.store(true, Ordering::SeqCst);
    let (checked, bad) = watcher.join().unwrap();
    run.assert_code(0);
    assert!(
        bad.is_empty(),
        "outputs visible under their final name before they were complete: {bad:?}\n{}",
        run.describe()
    );
    assert_eq!(checked, n, "{}", run.describe());
    assert_no_temp_files(&out);
}

/// SIGTERM mid-stream: stop reading, finish the frames in flight, write stats, exit 0
/// within 5 s, and leave only complete outputs, numbered without gaps.
#[test]
fn sigterm_mid_stream_exits_0_quickly_leaving_only_complete_frames() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let tmp = tempdir();
    let media = make_mpeg1_ps(tmp.path(), "test1.mpg", 10.0);
    let (raw, _) = reference_rgb(&media, tmp.path(), W, H);
    let out = tmp.path().join("frames");
    let stats = tmp.path().join("stats.json");
    let server = LiveServer::start(&media, "mpeg", "test1.mpg", tmp.path());
    let mut child = Command::new(bin())
        .args([
            "run",
            "--no-reconnect",
            "-i",
            &server.url,
            "-f",
            "emboss",
            "--format",
            "png",
        ])
        .arg("-o")
        .arg(&out)
        .arg("--stats-json")
        .arg(&stats)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start frameflow");
    // Let it write some frames (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(30);
    while list_dir(&out)
        .iter()
        .filter(|n| !n.starts_with('.'))
        .count()
        < 20
    {
        assert!(Instant::now() < deadline, "no frames written within 30 s");
        if let Ok(Some(st)) = child.try_wait() {
            panic!("frameflow exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (status, timed_out) = wait_deadline(&mut child, Duration::from_secs(20));
    let took = t0.elapsed();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(!timed_out, "frameflow ignored SIGTERM for 20 s\n{err}");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM\n{err}"
    );
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM to exit took {took:?}\n{err}"
    );
    assert_no_temp_files(&out);
    let files = list_dir(&out);
    assert!(
        files.len() < 250,
        "it read the whole stream instead of stopping"
    );
    let ctx = Captured {
        status,
        stdout: String::new(),
        stderr: err,
        elapsed: took,
        timed_out,
        cmdline: "frameflow run … (SIGTERM)".into(),
    };
    // Every output complete and correct, numbered 0..k without gaps.
    let mut check = Check::new(&raw, W, H, &out);
    check.filter = "emboss";
    check.count = Some(files.len());
    check.run(&ctx);
    let (_, written) = stats_counts(&stats, &ctx);
    assert_eq!(written as usize, files.len(), "stats written after SIGTERM");
}
