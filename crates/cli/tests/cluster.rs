//! `run --cluster` and `frameflow worker` against a real nats-server (Debian's 2.9, JetStream
//! with file storage, started by the test on 127.0.0.1): the output directory equals a
//! local run's, whatever happens to the workers, the server or the job owner; bad
//! configuration is one clear line (SPEC "Cluster").

mod common;
#[path = "../../cluster/tests/support/mod.rs"]
mod nats;

use common::*;
use nats::NatsServer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

/// A `frameflow worker` process, killed on drop.
fn worker(url: &str, threads: u32, log: &Path) -> KillOnDrop {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(bin())
        .args([
            "worker",
            "--cluster",
            url,
            "--workers",
            &threads.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("frameflow worker");
    KillOnDrop(child)
}

/// `frameflow ARGS` in the background, its stderr kept (see [`finish`]).
fn owner(args: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("frameflow"),
    )
}

/// Waits for a background run: its exit status, whether it timed out, its stderr.
fn finish(p: &mut KillOnDrop) -> (Option<std::process::ExitStatus>, bool, String) {
    let (status, timed_out) = wait_deadline(&mut p.0, T);
    let mut err = String::new();
    if let Some(mut e) = p.0.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    (status, timed_out, err)
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
        })
        .unwrap_or_default()
}

/// `run ARGS -o local` and `run ARGS -o cluster --cluster URL`: the same names and
/// bytes.
fn assert_same_as_local(tmp: &Path, tag: &str, url: &str, args: &[&str]) -> Captured {
    let local = tmp.join(format!("local-{tag}"));
    let remote = tmp.join(format!("cluster-{tag}"));
    let mut a: Vec<String> = vec!["run".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    let mut l = a.clone();
    l.extend(["-o".into(), s(&local)]);
    frameflow(&l, T).assert_success();
    let mut r = a.clone();
    r.extend(["-o".into(), s(&remote), "--cluster".into(), url.into()]);
    let run = frameflow(&r, T);
    run.assert_success();
    let (want, got) = (files(&local), files(&remote));
    assert!(!want.is_empty(), "{tag}: the local run wrote nothing");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{tag}: {args:?}\n{}",
        run.describe()
    );
    for (name, bytes) in &want {
        assert!(
            bytes == &got[name],
            "{tag}: {name} differs\n{}",
            run.describe()
        );
    }
    assert_no_temp_files(&remote);
    run
}

fn clip(dir: &Path, name: &str, secs: f32, gop: u32) -> PathBuf {
    let out = dir.join(name);
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=640x360:rate=25:duration={secs}"),
        "-c:v",
        "libx264",
        "-g",
        &gop.to_string(),
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        &s(&out),
    ]);
    out
}

#[test]
fn the_pool_writes_what_a_local_run_writes() {
    let tmp = tempdir();
    let t = tmp.path();
    let server = NatsServer::start(&[]);
    let url = server.url();
    let h264 = clip(t, "clip.mp4", 4.0, 25);
    let mpeg = make_mpeg1_ps(t, "test1.mpg", 3.0);
    // One worker process, then four of one thread each.
    let one = worker(&url, 1, &t.join("w0.log"));
    let h = s(&h264);
    assert_same_as_local(t, "one", &url, &["-i", &h, "-f", "emboss"]);
    drop(one);
    let _four: Vec<KillOnDrop> = (1..=4)
        .map(|i| worker(&url, 1, &t.join(format!("w{i}.log"))))
        .collect();
    let m = s(&mpeg);
    for (tag, args) in [
        ("jpeg", vec!["-i", &h, "-f", "emboss"]),
        ("mpeg-ps", vec!["-i", &m, "-f", "emboss"]),
        (
            "png-pts",
            vec!["-i", &h, "-f", "emboss,grayscale", "--name", "f{pts}.png"],
        ),
        (
            "fps-start",
            vec!["-i", &h, "-f", "sharpen", "--fps", "3", "--start", "1.5"],
        ),
        (
            "every-max",
            vec!["-i", &h, "--every", "7", "--max-frames", "5"],
        ),
        (
            "duration",
            vec!["-i", &m, "-f", "blur", "--duration", "1.2"],
        ),
        ("keyframes", vec!["-i", &h, "--keyframes-only"]),
    ] {
        assert_same_as_local(t, tag, &url, &args);
    }
}

#[test]
fn killed_workers_lose_nothing() {
    let tmp = tempdir();
    let t = tmp.path();
    let server = NatsServer::start(&[]);
    let url = server.url();
    // 12 s at 25 fps in 1 s GOPs, through a slow chain: the run takes a while.
    let h264 = clip(t, "long.mp4", 12.0, 25);
    let h = s(&h264);
    let local = t.join("local");
    frameflow(
        ["run", "-i", &h, "-f", "gaussian_blur=6", "-o", &s(&local)],
        T,
    )
    .assert_success();
    let remote = t.join("cluster");
    let mut workers: Vec<KillOnDrop> = (0..2)
        .map(|i| worker(&url, 1, &t.join(format!("w{i}.log"))))
        .collect();
    let mut owner = owner(&[
        "run",
        "-i",
        &h,
        "-f",
        "gaussian_blur=6",
        "-o",
        &s(&remote),
        "--cluster",
        &url,
    ]);
    // SIGKILL a worker mid-chunk three times, each time starting a new one.
    let mut killed = 0;
    let started = Instant::now();
    let mut next = 2;
    while killed < 3 && started.elapsed() < T {
        std::thread::sleep(Duration::from_millis(700));
        if owner.0.try_wait().unwrap().is_some() {
            break;
        }
        let mut victim = workers.remove(0);
        let _ = victim.0.kill();
        let _ = victim.0.wait();
        killed += 1;
        workers.push(worker(&url, 1, &t.join(format!("w{next}.log"))));
        next += 1;
    }
    let (status, timed_out, err) = finish(&mut owner);
    assert!(!timed_out, "the job never finished\n{err}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    assert!(
        killed >= 1,
        "the run ended before a worker could be killed\n{err}"
    );
    let (want, got) = (files(&local), files(&remote));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{killed} worker(s) killed\n{err}"
    );
    for (name, bytes) in &want {
        assert!(bytes == &got[name], "{name} differs\n{err}");
    }
    assert_no_temp_files(&remote);
    eprintln!(
        "killed {killed} worker(s); the job took {:.1} s (a killed worker's chunk is redelivered after ack_wait, 10 s)",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn an_unreachable_server_is_one_line_and_exit_1() {
    let tmp = tempdir();
    let h = clip(tmp.path(), "c.mp4", 1.0, 25);
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let out = tmp.path().join("out");
    let run = frameflow(["run", "-i", &s(&h), "-o", &s(&out), "--cluster", &url], T);
    run.assert_code(1);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    assert!(
        lines[0].contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.describe()
    );
    assert!(run.elapsed < Duration::from_secs(30), "{}", run.describe());
    assert!(list_dir(&out).is_empty());
    let run = frameflow(["worker", "--cluster", &url], T);
    run.assert_code(1);
}

#[test]
fn a_password_server_takes_the_right_credentials_and_never_shows_them() {
    let tmp = tempdir();
    let t = tmp.path();
    let secret = "s3cr3t-Pa55";
    let server = NatsServer::start(&["--user", "ff", "--pass", secret]);
    let good = server.url_with(&format!("ff:{secret}"));
    let bad = server.url_with("ff:wrong-Pa55");
    let h = clip(t, "c.mp4", 2.0, 25);
    // The worker serves its counters: they count, and name no credentials.
    let port = free_port();
    let log = std::fs::File::create(t.join("w.log")).unwrap();
    let _w = KillOnDrop(
        Command::new(bin())
            .args(["worker", "--cluster", &good, "--workers", "2", "-v"])
            .args(["--serve", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let run = assert_same_as_local(t, "auth", &good, &["-i", &s(&h), "-f", "emboss", "-v"]);
    assert!(!run.stderr.contains(secret), "{}", run.describe());
    let status = http_get(port, "/api/status");
    let body = status.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {status}"));
    assert!(
        v["worker"]["chunks_done"].as_u64().unwrap_or(0) >= 2,
        "{status}"
    );
    assert_eq!(v["worker"]["frames_made"].as_u64(), Some(50), "{status}");
    let metrics = http_get(port, "/metrics");
    assert!(
        metrics.contains("frameflow_worker_frames_made_total 50"),
        "{metrics}"
    );
    for text in [&status, &metrics] {
        assert!(!text.contains(secret), "{text}");
    }
    let out = t.join("refused");
    let run = frameflow(["run", "-i", &s(&h), "-o", &s(&out), "--cluster", &bad], T);
    run.assert_code(1);
    assert!(!run.stderr.contains("wrong-Pa55"), "{}", run.describe());
    assert!(
        run.stderr.to_lowercase().contains("auth"),
        "names the cause\n{}",
        run.describe()
    );
    let log = std::fs::read_to_string(t.join("w.log")).unwrap_or_default();
    assert!(!log.contains(secret), "worker log: {log}");
}

#[test]
fn a_server_restart_mid_run_loses_nothing() {
    let tmp = tempdir();
    let t = tmp.path();
    let mut server = NatsServer::start(&[]);
    let url = server.url();
    let h = s(&clip(t, "long.mp4", 10.0, 25));
    let local = t.join("local");
    frameflow(
        [
            "run",
            "-i",
            &h,
            "-f",
            "gaussian_blur=12,gaussian_blur=12",
            "-o",
            &s(&local),
        ],
        T,
    )
    .assert_success();
    let _w: Vec<KillOnDrop> = (0..2)
        .map(|i| worker(&url, 1, &t.join(format!("w{i}.log"))))
        .collect();
    let remote = t.join("cluster");
    let mut owner = owner(&[
        "run",
        "-i",
        &h,
        "-f",
        "gaussian_blur=12, gaussian_blur=12",
        "-o",
        &s(&remote),
        "--cluster",
        &url,
    ]);
    // Restarted once the job is under way.
    let start = Instant::now();
    while list_dir(&remote)
        .iter()
        .filter(|n| n.ends_with(".jpg"))
        .count()
        < 10
    {
        assert!(start.elapsed() < T, "no frames written");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        owner.0.try_wait().unwrap().is_none(),
        "the job ended before the server restart"
    );
    server.restart();
    let (status, timed_out, err) = finish(&mut owner);
    assert!(!timed_out, "{err}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let (want, got) = (files(&local), files(&remote));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{err}"
    );
    for (name, bytes) in &want {
        assert!(bytes == &got[name], "{name} differs\n{err}");
    }
    assert_no_temp_files(&remote);
}

#[test]
fn a_restarted_job_owner_continues_gap_free() {
    let tmp = tempdir();
    let t = tmp.path();
    let server = NatsServer::start(&[]);
    let url = server.url();
    let h = s(&clip(t, "long.mp4", 8.0, 25));
    let _w = worker(&url, 2, &t.join("w.log"));
    let out = t.join("out");
    let mut owner = owner(&[
        "run",
        "-i",
        &h,
        "-f",
        "gaussian_blur=5",
        "-o",
        &s(&out),
        "--cluster",
        &url,
    ]);
    // Killed once some frames are written.
    let start = Instant::now();
    while list_dir(&out)
        .iter()
        .filter(|n| n.ends_with(".jpg"))
        .count()
        < 20
    {
        assert!(start.elapsed() < T, "no frames written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = owner.0.kill();
    let _ = owner.0.wait();
    let first = list_dir(&out)
        .iter()
        .filter(|n| n.ends_with(".jpg"))
        .count();
    // The temporary files of the killed owner are its own: the next run removes them.
    let run = frameflow(
        [
            "run",
            "-i",
            &h,
            "-f",
            "gaussian_blur=5",
            "-o",
            &s(&out),
            "--cluster",
            &url,
        ],
        T,
    );
    run.assert_success();
    let names: Vec<String> = list_dir(&out);
    assert_eq!(
        names,
        frame_names(0..first + 200, "jpg"),
        "{}",
        run.describe()
    );
    assert_no_temp_files(&out);
}

#[test]
fn with_no_worker_the_status_says_so_and_nothing_is_lost() {
    let tmp = tempdir();
    let t = tmp.path();
    let server = NatsServer::start(&[]);
    let url = server.url();
    let h = s(&clip(t, "c.mp4", 3.0, 25));
    let local = t.join("local");
    frameflow(["run", "-i", &h, "-f", "emboss", "-o", &s(&local)], T).assert_success();
    let remote = t.join("cluster");
    let stats = t.join("stats.json");
    let mut owner = owner(&[
        "run",
        "-i",
        &h,
        "-f",
        "emboss",
        "-o",
        &s(&remote),
        "--cluster",
        &url,
        "--stats-json",
        &s(&stats),
    ]);
    let start = Instant::now();
    loop {
        let state = std::fs::read_to_string(&stats)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["streams"][0]["state"].as_str().map(str::to_string));
        if state.as_deref() == Some("waiting_for_workers") {
            break;
        }
        assert!(start.elapsed() < T, "never said it waits: {state:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _w = worker(&url, 2, &t.join("w.log"));
    let (status, timed_out, err) = finish(&mut owner);
    assert!(
        !timed_out && status.and_then(|s| s.code()) == Some(0),
        "{err}"
    );
    assert!(err.contains("waiting for workers"), "{err}");
    assert_eq!(files(&local), files(&remote), "{err}");
}

/// A network namespace with a veth link to this one, removed on drop: a "machine" whose
/// network the test can cut.
struct Netns {
    name: String,
    host_if: String,
    pub host_ip: String,
    pub ns_ip: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn new() -> Netns {
        let id = std::process::id() % 10_000;
        let net = std::process::id() % 250 + 1;
        let n = Netns {
            name: format!("ff-part-{id}"),
            host_if: format!("ffh{id}"),
            host_ip: format!("10.231.{net}.1"),
            ns_ip: format!("10.231.{net}.2"),
        };
        let ns_if = format!("ffn{id}");
        let _ = Command::new("ip").args(["netns", "del", &n.name]).output();
        ip(&["netns", "add", &n.name]);
        ip(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &n.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", n.host_ip),
            "dev",
            &n.host_if,
        ]);
        ip(&["link", "set", &n.host_if, "up"]);
        let ns = |args: &[&str]| {
            let mut a = vec!["netns", "exec", n.name.as_str(), "ip"];
            a.extend_from_slice(args);
            ip(&a);
        };
        ns(&["addr", "add", &format!("{}/30", n.ns_ip), "dev", &ns_if]);
        ns(&["link", "set", &ns_if, "up"]);
        ns(&["link", "set", "lo", "up"]);
        n
    }

    /// Takes the link down (`false`) or up.
    fn link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]);
    }

    /// `frameflow worker` inside the namespace.
    fn worker(&self, url: &str, log: &Path) -> KillOnDrop {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(bin())
            .args(["worker", "--cluster", url, "--workers", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        KillOnDrop(child)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A worker on another "machine" is cut off the network for 20 s mid-chunk: its chunk
/// is redone elsewhere, the job completes with the local run's files, and what the late
/// worker sends once it is back is ignored.
#[test]
fn a_worker_cut_off_the_network_loses_nothing() {
    let tmp = tempdir();
    let t = tmp.path();
    let ns = Netns::new();
    let server = NatsServer::start_on(&ns.host_ip, &[]);
    let url = server.url();
    let h = s(&clip(t, "long.mp4", 12.0, 25));
    let chain = "gaussian_blur=12,gaussian_blur=12";
    let local = t.join("local");
    frameflow(["run", "-i", &h, "-f", chain, "-o", &s(&local)], T).assert_success();
    let far = ns.worker(&url, &t.join("far.log"));
    // Only the far worker at first, so it surely holds a chunk when the link goes down.
    let remote = t.join("cluster");
    let mut owner = owner(&[
        "run",
        "-i",
        &h,
        "-f",
        chain,
        "-o",
        &s(&remote),
        "-v",
        "--cluster",
        &url,
    ]);
    let start = Instant::now();
    while list_dir(&remote)
        .iter()
        .filter(|n| n.ends_with(".jpg"))
        .count()
        < 5
    {
        assert!(start.elapsed() < T, "the far worker wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    ns.link(false);
    let cut = Instant::now();
    let near = worker(&url, 2, &t.join("near.log"));
    std::thread::sleep(Duration::from_secs(20).saturating_sub(cut.elapsed()));
    ns.link(true);
    let (status, timed_out, err) = finish(&mut owner);
    drop((far, near));
    assert!(
        !timed_out && status.and_then(|s| s.code()) == Some(0),
        "{err}"
    );
    let (want, got) = (files(&local), files(&remote));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{err}"
    );
    for (name, bytes) in &want {
        assert!(bytes == &got[name], "{name} differs\n{err}");
    }
    assert_no_temp_files(&remote);
    eprintln!(
        "cut for 20 s; the job took {:.1} s after the cut",
        cut.elapsed().as_secs_f64()
    );
}

/// A chunk that kills every worker that takes it (a decoder crash on that data): after
/// `max_deliver` deliveries it counts as failed frames, the rest of the job is written,
/// and the run says so with exit 1, as a local run with failed frames does.
#[test]
fn a_chunk_that_kills_every_worker_ends_as_failed_frames_and_the_job_goes_on() {
    let tmp = tempdir();
    let t = tmp.path();
    let server = NatsServer::start(&[]);
    let url = server.url();
    let h = s(&clip(t, "c.mp4", 4.0, 25));
    let spawn = |i: usize| {
        let log = std::fs::File::create(t.join(format!("w{i}.log"))).unwrap();
        KillOnDrop(
            Command::new(bin())
                .args(["worker", "--cluster", &url, "--workers", "1"])
                .env("FRAMEFLOW_TEST_PANIC_IN_CHUNK", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let out = t.join("out");
    let mut owner = owner(&["run", "-i", &h, "-o", &s(&out), "--cluster", &url]);
    // Two workers at all times: a dead one is replaced.
    let mut workers: Vec<KillOnDrop> = (0..2).map(spawn).collect();
    let mut started = 2;
    let start = Instant::now();
    while owner.0.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < T, "the job never ended");
        for w in workers.iter_mut() {
            if w.0.try_wait().unwrap().is_some() {
                *w = spawn(started);
                started += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, err) = finish(&mut owner);
    let code = status.and_then(|s| s.code());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        started >= 5,
        "chunk 1 killed only {} worker(s)\n{err}",
        started - 2
    );
    assert!(err.contains("25 frame(s) failed"), "{err}");
    // Every other frame is there, numbered without a gap.
    assert_eq!(list_dir(&out), frame_names(0..75, "jpg"), "{err}");
    assert_no_temp_files(&out);
}

/// A live HTTP stream through the pool: every frame written, in order, with the latency
/// reported; a pool too slow for the stream drops whole chunks, every drop counted.
#[test]
fn a_live_stream_goes_through_the_pool_in_order_and_overload_drops_whole_chunks() {
    let tmp = tempdir();
    let t = tmp.path();
    let server = NatsServer::start(&[]);
    let url = server.url();
    let media = make_mpeg1_ps(t, "test1.mpg", 6.0);
    let n = ffprobe_count_frames(&media);
    let mut workers: Vec<KillOnDrop> = (0..2)
        .map(|i| worker(&url, 1, &t.join(format!("w{i}.log"))))
        .collect();
    let run_live = |tag: &str, chain: &str, overload: &str| {
        let out = t.join(tag);
        let stats = t.join(format!("{tag}.json"));
        let mut live = LiveServer::start(&media, "mpeg", "test1.mpg", t);
        let run = frameflow(
            [
                "run",
                "--no-reconnect",
                "-i",
                &live.url,
                "-f",
                chain,
                "-o",
                &s(&out),
                "--stats-json",
                &s(&stats),
                "--cluster",
                &url,
                "--overload",
                overload,
            ],
            T,
        );
        live.finish(Duration::from_secs(5));
        run.assert_success();
        assert_no_temp_files(&out);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        (out, v, run)
    };
    // `block`: every frame, whatever the machine's load (the pool is only waited for).
    let (out, v, run) = run_live("live", "emboss", "block");
    let written = list_dir(&out).len();
    assert_eq!(written, n, "{}", run.describe());
    assert_eq!(list_dir(&out), frame_names(0..n, "jpg"));
    let lat = &v["streams"][0]["latency_ms"];
    let (p50, p99) = (lat["p50"].as_f64().unwrap(), lat["p99"].as_f64().unwrap());
    eprintln!(
        "live through the pool: {n} frames, latency p50 {p50:.0} ms, p99 {p99:.0} ms (GOP 0.6 s)"
    );
    // One worker and a chain far too slow for it at 25 fps: whole chunks are dropped.
    drop(workers.pop());
    let (out, v, run) = run_live(
        "slow",
        "resize=3840x2160:lanczos,gaussian_blur=2,emboss,sharpen",
        "drop-oldest",
    );
    let written = list_dir(&out).len() as u64;
    let dropped = v["frames_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{v}\n{}", run.describe());
    assert!(written > 0, "{}", run.describe());
    assert_eq!(
        written + dropped + v["frames_failed"].as_u64().unwrap(),
        v["streams"][0]["frames_decoded"]
            .as_u64()
            .unwrap()
            .max(written + dropped),
        "{v}"
    );
    assert_eq!(list_dir(&out), frame_names(0..written as usize, "jpg"));
    eprintln!("slow pool: {written} written, {dropped} dropped (whole chunks)");
}

#[test]
fn a_token_server_takes_the_token_in_the_url() {
    let tmp = tempdir();
    let t = tmp.path();
    let token = "tok-9f8e7d";
    let server = NatsServer::start(&["--auth", token]);
    let h = clip(t, "c.mp4", 1.0, 25);
    let _w = worker(&server.url_with(token), 1, &t.join("w.log"));
    let run = assert_same_as_local(t, "token", &server.url_with(token), &["-i", &s(&h), "-v"]);
    assert!(!run.stderr.contains(token), "{}", run.describe());
    let out = t.join("refused");
    let run = frameflow(
        [
            "run",
            "-i",
            &s(&h),
            "-o",
            &s(&out),
            "--cluster",
            &server.url_with("tok-wrong"),
        ],
        T,
    );
    run.assert_code(1);
    assert!(!run.stderr.contains("tok-wrong"), "{}", run.describe());
}
