//! Memory stays bounded however long the input: peak RSS does not grow with the number
//! of frames read. (A reused AVPacket that was never unreferenced once leaked every
//! packet's data — a live camera's whole bitrate, for as long as it ran.)

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Runs frameflow to completion and returns its peak RSS in KiB (wait4's rusage).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also gives its rusage"
)]
fn peak_rss_kib(args: &[&str]) -> i64 {
    let child = Command::new(bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start frameflow");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and usage are valid places to write.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "frameflow {args:?} failed: status {status}"
    );
    usage.ru_maxrss
}

/// Uncompressed 640x480 video: every packet is a 450 KiB frame, so anything kept per
/// packet shows at once.
fn make_raw_clip(dir: &Path, frames: u32) -> String {
    let args = ["-c:v", "rawvideo", "-pix_fmt", "yuv420p"];
    testsrc_clip(&dir.join("raw.nut"), 640, 480, frames as f32 / 25.0, &args)
}

#[test]
fn peak_rss_does_not_grow_with_frames_read() {
    let tmp = tempdir();
    let clip = make_raw_clip(tmp.path(), 200);
    let run = |frames: &str, out: &str| {
        let out = s(&tmp.path().join(out));
        peak_rss_kib(&[
            "run",
            "-i",
            &clip,
            "-f",
            "emboss",
            "-o",
            &out,
            "-q",
            "--max-frames",
            frames,
        ])
    };
    let short = run("20", "short");
    let long = run("200", "long");
    // 180 more packets of 450 KiB would be 79 MiB if they were kept.
    assert!(
        long - short < 24 * 1024,
        "peak RSS grew from {short} KiB (20 frames) to {long} KiB (200 frames)"
    );
}
