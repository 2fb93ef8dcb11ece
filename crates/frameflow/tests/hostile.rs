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
