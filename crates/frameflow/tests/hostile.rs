//! Hostile input and careless use: what an attacker or a mistake must not get. Secrets in
//! input URLs never shown; more to come (see the "Hostile input" issue).

mod common;

use common::{KillOnDrop, s};
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + T;
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot connect: {e}"),
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

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
