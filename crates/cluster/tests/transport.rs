//! The transport against a real nats-server (Debian's 2.9.10 in CI), loopback only.
//! Timeouts are generous and only keep a broken run from hanging.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frameflow_cluster::{ClusterUrl, ConnectOptions, Error, Event, FailReason, Tunables, blocking};
use support::{NatsServer, connect_url, init_tracing, quick};

const LONG: Duration = Duration::from_secs(30);

/// Reads events until `done(chunks finished)` or the (generous) deadline.
fn collect(
    results: &mut blocking::ResultStream,
    chunks: usize,
) -> (BTreeMap<u64, Vec<u8>>, Vec<Event>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut frames = BTreeMap::new();
    let mut notes = Vec::new();
    while notes.len() < chunks {
        assert!(
            Instant::now() < deadline,
            "results did not arrive: {notes:?}"
        );
        match results.next(Duration::from_secs(2)) {
            Ok(Some(Event::Frame(f))) => {
                assert!(
                    frames.insert(f.frame_no, f.payload).is_none(),
                    "frame twice"
                );
            }
            Ok(Some(ev)) => notes.push(ev),
            Ok(None) => {}
            Err(e) if e.is_transient() => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("results: {e}"),
        }
    }
    (frames, notes)
}

fn frame_payload(chunk: u64, frame: u64) -> Vec<u8> {
    format!("chunk {chunk} frame {frame}").into_bytes()
}

/// A worker that processes chunks: 3 frames each, numbered chunk*10+i.
fn process(chunk: blocking::Chunk) {
    let c = chunk.header.chunk_no;
    for i in 0..3 {
        chunk
            .publish_result(c * 10 + i, b"m", &frame_payload(c, i))
            .expect("publish result");
    }
    chunk.complete(3).expect("complete");
}

#[test]
fn round_trip_publish_consume_ack() {
    init_tracing();
    let srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    let worker = srv.connect(quick());
    let p = owner
        .publish_chunk("job1", 0, b"meta0", b"payload0")
        .unwrap();
    assert!(!p.duplicate);
    let mut results = owner.results("job1").unwrap();

    let chunk = worker.next_chunk(LONG).unwrap().expect("a chunk");
    assert_eq!(chunk.header.job, "job1");
    assert_eq!(chunk.header.chunk_no, 0);
    assert_eq!(chunk.header.meta, b"meta0");
    assert_eq!(chunk.payload, b"payload0");
    assert_eq!(chunk.delivered, 1);
    chunk.progress().unwrap();
    process(chunk);

    let (frames, notes) = collect(&mut results, 1);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[&1], frame_payload(0, 1));
    assert_eq!(
        notes,
        vec![Event::ChunkDone {
            chunk_no: 0,
            frames: 3
        }]
    );
    assert_eq!(results.stats().duplicates, 0);
    // Acked: nothing more for the workers.
    assert!(worker.next_chunk(Duration::from_secs(1)).unwrap().is_none());
    owner.cleanup("job1").unwrap();
    // A second connect (another owner or worker) finds everything in place.
    let _again = srv.connect(quick());
}

#[test]
fn two_workers_share_the_work() {
    init_tracing();
    let srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    const N: u64 = 30;
    let mut results = owner.results("share").unwrap();
    for c in 0..N {
        owner
            .publish_chunk("share", c, &[], &c.to_be_bytes())
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let taken: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let handles: Vec<_> = (0..2)
        .map(|w| {
            let worker = srv.connect(quick());
            let stop = stop.clone();
            let taken = taken.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(chunk) = worker.next_chunk(Duration::from_millis(500)).unwrap() {
                        taken.lock().unwrap().push((w, chunk.header.chunk_no));
                        std::thread::sleep(Duration::from_millis(30));
                        process(chunk);
                    }
                }
            })
        })
        .collect();
    let (frames, notes) = collect(&mut results, N as usize);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(frames.len(), 3 * N as usize);
    let taken = taken.lock().unwrap();
    let chunks: Vec<u64> = taken.iter().map(|t| t.1).collect();
    let unique: BTreeSet<u64> = chunks.iter().copied().collect();
    assert_eq!(
        chunks.len(),
        N as usize,
        "each chunk processed once: {taken:?}"
    );
    assert_eq!(unique.len(), N as usize);
    for w in 0..2 {
        assert!(
            taken.iter().any(|t| t.0 == w),
            "worker {w} got nothing: {taken:?}"
        );
    }
    assert!(
        notes
            .iter()
            .all(|n| matches!(n, Event::ChunkDone { frames: 3, .. }))
    );
    assert_eq!(results.stats().duplicates, 0);
}

#[test]
fn killed_worker_chunk_is_redelivered_and_written_once() {
    init_tracing();
    let srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    owner.publish_chunk("kill", 7, &[], b"data").unwrap();
    let mut results = owner.results("kill").unwrap();
    {
        // Takes the chunk, stores two of its three results, then "dies": the connection
        // goes away with no ack, as with SIGKILL.
        let doomed = srv.connect(quick());
        let chunk = doomed.next_chunk(LONG).unwrap().expect("a chunk");
        chunk.publish_result(70, b"", &frame_payload(7, 0)).unwrap();
        chunk.publish_result(71, b"", &frame_payload(7, 1)).unwrap();
        drop(chunk);
        drop(doomed);
    }
    let survivor = srv.connect(quick());
    let chunk = survivor.next_chunk(LONG).unwrap().expect("redelivered");
    assert_eq!(chunk.header.chunk_no, 7);
    assert_eq!(chunk.delivered, 2);
    process(chunk);
    let (frames, notes) = collect(&mut results, 1);
    assert_eq!(frames.keys().copied().collect::<Vec<_>>(), vec![70, 71, 72]);
    assert_eq!(
        notes,
        vec![Event::ChunkDone {
            chunk_no: 7,
            frames: 3
        }]
    );
    assert_eq!(results.stats().duplicates, 2, "{:?}", results.stats());
    assert_eq!(results.stats().frames, 3);
}

#[test]
fn max_deliver_reports_the_chunk_failed() {
    init_tracing();
    let srv = NatsServer::start(&[]);
    let t = Tunables {
        ack_wait: Duration::from_secs(1),
        max_deliver: 2,
        ..Tunables::default()
    };
    let owner = srv.connect(t.clone());
    owner.publish_chunk("maxd", 3, &[], b"poison").unwrap();
    owner.publish_chunk("maxd", 4, &[], b"bad").unwrap();
    let mut results = owner.results("maxd").unwrap();
    // A worker that never acks chunk 3 (it crashes on it every time) and declares
    // chunk 4 unprocessable.
    let stop = Arc::new(AtomicBool::new(false));
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let worker = {
        let w = srv.connect(t);
        let stop = stop.clone();
        let deliveries = deliveries.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(chunk) = w.next_chunk(Duration::from_millis(500)).unwrap() {
                    deliveries.lock().unwrap().push((
                        chunk.header.chunk_no,
                        chunk.delivered,
                        chunk.is_last_delivery(),
                    ));
                    if chunk.header.chunk_no == 4 {
                        chunk.fail("corrupt data").unwrap();
                    }
                }
            }
        })
    };
    let (_, notes) = collect(&mut results, 2);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    assert!(
        notes.contains(&Event::ChunkFailed {
            chunk_no: 3,
            reason: FailReason::MaxDeliveries { deliveries: 2 }
        }),
        "{notes:?}"
    );
    assert!(
        notes.contains(&Event::ChunkFailed {
            chunk_no: 4,
            reason: FailReason::Worker {
                reason: "corrupt data".into(),
                delivery: 1
            }
        }),
        "{notes:?}"
    );
    // The worker sees deliveries 1 and 2 of chunk 3, the second flagged as the last.
    // (A delivery can also be made into a pull request that expired on the client side
    // at that very moment: the server counts it, the worker never sees it.)
    let d = deliveries.lock().unwrap();
    let seen: Vec<_> = d.iter().filter(|x| x.0 == 3).cloned().collect();
    assert!(
        !seen.is_empty() && [(3, 1, false), (3, 2, true)].starts_with(&seen)
            || seen == [(3, 2, true)],
        "{seen:?}"
    );
    assert_eq!(results.stats().chunks_failed, 2);
}

#[test]
fn large_payloads_go_through_the_object_store() {
    init_tracing();
    let srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    let worker = srv.connect(quick());
    assert!(owner.inline_limit() < 1024 * 1024);
    let big: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    owner.publish_chunk("big", 0, b"m", &big).unwrap();
    let mut results = owner.results("big").unwrap();
    let chunk = worker.next_chunk(LONG).unwrap().expect("a chunk");
    assert!(chunk.payload == big, "chunk payload differs");
    let result: Vec<u8> = big.iter().rev().copied().collect();
    chunk.publish_result(0, b"png", &result).unwrap();
    chunk.publish_result(1, b"small", b"tiny").unwrap();
    chunk.complete(2).unwrap();
    let deadline = Instant::now() + LONG;
    let mut got = Vec::new();
    while got.len() < 3 {
        assert!(Instant::now() < deadline);
        if let Some(ev) = results.next(Duration::from_secs(2)).unwrap() {
            got.push(ev);
        }
    }
    match &got[0] {
        Event::Frame(f) => {
            assert_eq!(f.meta, b"png");
            assert!(f.payload == result, "result payload differs");
        }
        other => panic!("{other:?}"),
    }
    // The result object was deleted once read, the chunk object once the chunk was done.
    assert_eq!(owner.stored_objects().unwrap(), Vec::<String>::new());
    owner.cleanup("big").unwrap();
}

#[test]
fn republished_chunk_is_stored_once() {
    init_tracing();
    let srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    let a = owner.publish_chunk("dup", 5, &[], b"x").unwrap();
    let b = owner.publish_chunk("dup", 5, &[], b"x").unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.stream_seq, b.stream_seq);
    let worker = srv.connect(quick());
    let chunk = worker.next_chunk(LONG).unwrap().expect("a chunk");
    chunk.ack().unwrap();
    assert!(worker.next_chunk(Duration::from_secs(1)).unwrap().is_none());
    // After the ack (work queue: message removed) a republish is still recognised.
    assert!(owner.publish_chunk("dup", 5, &[], b"x").unwrap().duplicate);
    assert!(worker.next_chunk(Duration::from_secs(1)).unwrap().is_none());
}

/// A worker thread that processes chunks until told to stop, riding out errors while
/// the server is away.
fn worker_thread(worker: blocking::Cluster, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut processed = 0;
        while !stop.load(Ordering::Relaxed) {
            match worker.next_chunk(Duration::from_millis(500)) {
                Ok(Some(chunk)) => {
                    process(chunk);
                    processed += 1;
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => std::thread::sleep(Duration::from_millis(200)),
                Err(e) => panic!("{e}"),
            }
        }
        processed
    })
}

#[test]
fn server_restart_loses_nothing() {
    init_tracing();
    let mut srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    const N: u64 = 10;
    let mut results = owner.results("restart").unwrap();
    for c in 0..N {
        owner.publish_chunk("restart", c, &[], b"d").unwrap();
    }
    // Some chunks are done, and seen done by the owner, before the restart.
    let early = srv.connect(quick());
    for _ in 0..4 {
        process(early.next_chunk(LONG).unwrap().expect("a chunk"));
    }
    let (first, _) = collect(&mut results, 4);
    assert_eq!(first.len(), 12);
    // SIGKILL, not a clean shutdown: the server may forget acks it had not yet written
    // (those chunks come again; their results are deduplicated) but nothing stored is lost.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = worker_thread(srv.connect(quick()), stop.clone());
    srv.restart();
    // Published after the restart: still arrives.
    owner.publish_chunk("restart", N, &[], b"d").unwrap();
    let (rest, notes) = collect(&mut results, N as usize + 1 - 4);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    assert_eq!(first.len() + rest.len(), 3 * (N as usize + 1));
    assert!(
        notes.iter().all(|n| matches!(n, Event::ChunkDone { .. })),
        "{notes:?}"
    );
    let stats = results.stats();
    assert_eq!(stats.frames, 3 * (N + 1), "{stats:?}");
    assert_eq!(stats.chunks_done, N + 1, "{stats:?}");
    assert_eq!(stats.chunks_failed, 0, "{stats:?}");
}

fn assert_clean(e: &Error, secrets: &[&str]) {
    let text = format!("{e} / {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "secret {s:?} leaked: {text}");
    }
}

fn try_connect(url: &str) -> Result<blocking::Cluster, Error> {
    blocking::Cluster::connect(
        &ClusterUrl::parse(url).unwrap(),
        ConnectOptions {
            timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        },
    )
}

#[test]
fn user_password_auth() {
    init_tracing();
    let srv = NatsServer::start(&["--user", "ffuser", "--pass", "Sup3rSecretPw"]);
    let ok = connect_url(&srv.url_with("ffuser:Sup3rSecretPw"), quick());
    ok.publish_chunk("auth", 0, &[], b"x").unwrap();
    assert!(!format!("{ok:?}").contains("Sup3rSecretPw"));
    let url = ClusterUrl::parse(&srv.url_with("ffuser:Sup3rSecretPw")).unwrap();
    assert!(!format!("{url} {url:?}").contains("Sup3rSecretPw"));

    let e = try_connect(&srv.url_with("ffuser:WrongPassw0rd")).unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert!(e.to_string().contains("refused the credentials"), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("nats://***@127.0.0.1:{}", srv.port)),
        "{e}"
    );
    assert_clean(&e, &["WrongPassw0rd", "Sup3rSecretPw"]);

    let e = try_connect(&srv.url()).unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
}

#[test]
fn token_auth() {
    init_tracing();
    let srv = NatsServer::start(&["--auth", "T0kenValue123"]);
    let ok = connect_url(&srv.url_with("T0kenValue123"), quick());
    ok.publish_chunk("tok", 0, &[], b"x").unwrap();
    let e = try_connect(&srv.url_with("NotTheT0ken")).unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert_clean(&e, &["NotTheT0ken", "T0kenValue123"]);
}

#[test]
fn unreachable_server_is_one_clear_error() {
    init_tracing();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://u:Hidd3nPw@127.0.0.1:{port}");
    let t0 = Instant::now();
    let e = try_connect(&url).unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach NATS at nats://***@127.0.0.1:{port}: "
        )),
        "{msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
    assert_clean(&e, &["Hidd3nPw"]);
}

#[test]
fn missing_creds_file_is_named() {
    let url = ClusterUrl::parse("nats://127.0.0.1:1")
        .unwrap()
        .with_creds_file("/nonexistent/ff.creds");
    let e = blocking::Cluster::connect(&url, ConnectOptions::default()).unwrap_err();
    assert!(matches!(e, Error::CredsFile { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/ff.creds"), "{e}");
}

#[test]
fn bad_job_ids_are_refused() {
    let srv = NatsServer::start(&[]);
    let owner = srv.connect(quick());
    for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
        let e = owner.publish_chunk(bad, 0, &[], b"").unwrap_err();
        assert!(matches!(e, Error::InvalidJobId { .. }), "{bad:?}: {e:?}");
    }
}
