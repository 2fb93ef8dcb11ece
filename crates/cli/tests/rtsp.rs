//! RTSP against a real server on 127.0.0.1: gst-rtsp-server through Debian's Python
//! GObject bindings (`tests-support/rtsp_server.py`, run with `/usr/bin/python3`).
//! `--rtsp-transport tcp` (interleaved in the RTSP connection) and `udp` (separate RTP
//! ports) each give the asked-for number of complete frames and exit 0; the server's log
//! of SETUP requests shows which transport was really used.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The system Python that has `gi` and GstRtspServer (not a pyenv one).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// `tests-support/rtsp_server.py` on a free port; killed on drop.
struct RtspServer {
    child: Option<Child>,
    url: String,
    log: PathBuf,
}

impl RtspServer {
    fn start(codec: &str, logdir: &Path) -> RtspServer {
        let port = free_port();
        let log = logdir.join(format!("rtsp-server-{port}.log"));
        let logf = std::fs::File::create(&log).expect("server log");
        let errf = logf.try_clone().expect("server log");
        let child = Command::new(SYSTEM_PYTHON)
            .arg(workspace_root().join("tests-support/rtsp_server.py"))
            .args([
                "--port",
                &port.to_string(),
                "--path",
                "/cam",
                "--codec",
                codec,
            ])
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(errf)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {SYSTEM_PYTHON} (scripts/install-deps.sh installs it): {e}")
            });
        let mut server = RtspServer {
            child: Some(child),
            url: format!("rtsp://127.0.0.1:{port}/cam"),
            log,
        };
        server.wait_ready(Duration::from_secs(20));
        server
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log_text().contains("READY ") {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(s)) = c.try_wait()
            {
                panic!(
                    "RTSP server exited ({s}) before it was ready (needs python3-gi and \
                     gir1.2-gst-rtsp-server-1.0: scripts/install-deps.sh):\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "RTSP server not ready at {} after {timeout:?}:\n{}",
                self.url,
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The Transport headers of the SETUP requests the server received.
    fn transports(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.strip_prefix("SETUP Transport: "))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `frameflow run -i rtsp://… --rtsp-transport TRANSPORT --max-frames 30`: exit 0, exactly
/// frame000000..29.jpg, each a complete 320x240 JPEG, no temporary files, and the server
/// saw a SETUP with the asked-for lower transport.
fn thirty_frames(codec: &str, transport: &str) {
    let tmp = tempdir();
    let server = RtspServer::start(codec, tmp.path());
    let out = tmp.path().join("out");
    let run = frameflow(
        [
            "run",
            "-i",
            &server.url,
            "--rtsp-transport",
            transport,
            "--max-frames",
            "30",
            "--timeout",
            "10",
            "-o",
            &s(&out),
        ],
        Duration::from_secs(60),
    );
    run.assert_code(0);
    assert_eq!(
        list_dir(&out),
        frame_names(0..30, "jpg"),
        "{}\n--- server ---\n{}",
        run.describe(),
        server.log_text()
    );
    assert_no_temp_files(&out);

    let mut cmd = Command::new(python());
    cmd.arg(framecheck_script()).arg("images").arg(&out);
    let c = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(c.code() == Some(0), "images load: {}", c.describe());
    let lines: Vec<&str> = c.stdout.lines().collect();
    assert_eq!(lines.len(), 30, "{}", c.stdout);
    for l in lines {
        assert!(l.ends_with(&format!("JPEG RGB {W}x{H}")), "{l}");
    }

    let setups = server.transports();
    let want = match transport {
        "tcp" => "RTP/AVP/TCP",
        _ => "RTP/AVP/UDP",
    };
    assert!(
        !setups.is_empty() && setups.iter().all(|t| t.starts_with(want)),
        "expected SETUP with {want}, server saw {setups:?}\n{}",
        server.log_text()
    );
}

#[test]
fn rtsp_mjpeg_over_tcp() {
    thirty_frames("jpeg", "tcp");
}

#[test]
fn rtsp_mjpeg_over_udp() {
    thirty_frames("jpeg", "udp");
}

#[test]
fn rtsp_h264_over_tcp() {
    thirty_frames("h264", "tcp");
}

#[test]
fn rtsp_h264_over_udp() {
    thirty_frames("h264", "udp");
}
