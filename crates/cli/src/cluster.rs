//! `run --cluster` and `worker`: the library's job owner and chunk worker
//! (`frameflow::cluster`) over NATS JetStream (`frameflow-cluster`).

use crate::failure::{Failure, usage};
use frameflow::cluster::owner::{OwnerOptions, run_owner};
use frameflow::cluster::worker::ChunkWorker;
use frameflow::cluster::{Pool, PoolError};
use frameflow::pipeline::{PipelineError, RunConfig, RunOutcome, Taps};
use frameflow::runtime::Control;
use frameflow::runtime::stats::WorkerStats;
use frameflow_cluster::blocking::{Cluster, ResultStream};
use frameflow_cluster::{ClusterUrl, ConnectOptions, Event};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `--cluster URL` (with `--nats-creds FILE`) as a server address, checked.
pub fn cluster_url(url: &str, creds: Option<&std::path::Path>) -> Result<ClusterUrl, Failure> {
    let u = ClusterUrl::parse(url).map_err(|e| usage(anyhow::anyhow!("--cluster: {e}")))?;
    Ok(match creds {
        Some(c) => u.with_creds_file(c),
        None => u,
    })
}

/// Connects, naming the server (never its secrets) in the error.
pub fn connect(url: &ClusterUrl, name: &str) -> Result<Cluster, Failure> {
    let opts = ConnectOptions {
        name: name.to_string(),
        ..ConnectOptions::default()
    };
    Cluster::connect(url, opts).map_err(|e| Failure::Runtime(e.into()))
}

/// Where chunk files are made: memory if the machine has a tmpfs for it.
fn scratch_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// The pool of workers behind a NATS server, as the job owner sees it.
struct NatsPool {
    cluster: Cluster,
    job: String,
    results: ResultStream,
    failed: Vec<u64>,
}

impl Pool for NatsPool {
    fn publish(&mut self, chunk: u64, msg: Vec<u8>) -> Result<(), PoolError> {
        self.cluster
            .publish_chunk(&self.job, chunk, &[], &msg)
            .map(|_| ())
            .map_err(|e| PoolError(e.to_string()))
    }

    fn next_result(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, PoolError> {
        // A zero wait still gives the stream a moment to hand over what has arrived.
        let deadline = Instant::now() + wait.max(Duration::from_millis(1));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.next(left) {
                Ok(Some(Event::Frame(r))) => return Ok(Some(r.payload)),
                Ok(Some(Event::ChunkDone { .. })) => {}
                Ok(Some(Event::ChunkFailed { chunk_no, reason })) => {
                    tracing::warn!("chunk {chunk_no} failed: {reason:?}");
                    self.failed.push(chunk_no);
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(PoolError(e.to_string())),
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    fn take_failed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.failed)
    }
}

/// A job id of its own for this run: results of an earlier run (an owner restarted) are
/// not taken for this one's.
fn job_id(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(32)
        .collect();
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{clean}_{}_{ms}", std::process::id())
}

/// Chunks (GOPs) of a live input in the pool at once, at most.
const LIVE_IN_FLIGHT: usize = 3;

/// Runs one stream through the pool behind `cluster`, committing as a local run does.
pub fn run_stream(
    cluster: &Cluster,
    cfg: &RunConfig,
    control: &Control,
    taps: &Taps,
) -> Result<RunOutcome, PipelineError> {
    let job = job_id(&cfg.label);
    let results = cluster.results(&job).map_err(cluster_error(cfg))?;
    let mut pool = NatsPool {
        cluster: cluster.clone(),
        job: job.clone(),
        results,
        failed: Vec::new(),
    };
    let opts = OwnerOptions {
        job: job.clone(),
        // A file keeps the pool busy; a live input keeps little in flight, so that a pool
        // that falls behind drops whole chunks (per --overload) instead of lagging.
        max_in_flight: if cfg.input.is_live() {
            LIVE_IN_FLIGHT
        } else {
            usize::try_from(cluster.tunables().max_ack_pending)
                .unwrap_or(64)
                .max(2)
        },
        scratch: scratch_dir(),
        stop_grace: Duration::from_secs(10),
    };
    tracing::info!(
        "input '{}': job {job} on {}",
        cfg.input.raw,
        cluster.server()
    );
    let res = run_owner(cfg, control, taps, &mut pool, &opts);
    let duplicates = pool.results.stats().duplicates;
    if duplicates > 0 {
        tracing::info!("job {job}: {duplicates} duplicate result(s) of redelivered chunks ignored");
    }
    if let Err(e) = cluster.cleanup(&job) {
        tracing::warn!("job {job}: cleaning up on the server: {e}");
    }
    res
}

fn cluster_error(cfg: &RunConfig) -> impl FnOnce(frameflow_cluster::Error) -> PipelineError + '_ {
    move |e| {
        PipelineError::Source(frameflow::source::SourceError::Cluster {
            input: cfg.input.raw.clone(),
            reason: e.to_string(),
        })
    }
}

/// `frameflow worker`: `threads` chunk workers taking chunks until a stop, counting into
/// `stats`.
pub fn run_worker(cluster: &Cluster, threads: usize, control: &Control, stats: &WorkerStats) {
    std::thread::scope(|scope| {
        for i in 0..threads.max(1) {
            let cluster = cluster.clone();
            let _ = std::thread::Builder::new()
                .name(format!("ff-worker-{i}"))
                .spawn_scoped(scope, move || worker_loop(&cluster, control, stats));
        }
    });
}

fn worker_loop(cluster: &Cluster, control: &Control, stats: &WorkerStats) {
    let mut worker = ChunkWorker::new(scratch_dir());
    while !control.stop.load(Ordering::Relaxed) {
        let chunk = match cluster.next_chunk(Duration::from_millis(500)) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("taking a chunk: {e}");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        if chunk.delivered > 1 {
            stats.chunks_redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        stats.chunks_in_progress.fetch_add(1, Ordering::Relaxed);
        let mut last_progress = Instant::now();
        let mut published = 0u64;
        let mut failed_publish = None;
        let res = worker.process(&chunk.payload, &control.abort, &mut |seq, msg| {
            if let Err(e) = chunk.publish_result(seq, &[], &msg) {
                failed_publish = Some(e);
                return false;
            }
            published += 1;
            if last_progress.elapsed() > Duration::from_secs(2) {
                let _ = chunk.progress();
                last_progress = Instant::now();
            }
            true
        });
        match res {
            Ok(done) if !done.interrupted => {
                stats.chunks_done.fetch_add(1, Ordering::Relaxed);
                stats.frames_made.fetch_add(done.made, Ordering::Relaxed);
                stats
                    .frames_failed
                    .fetch_add(done.failed, Ordering::Relaxed);
                if let Err(e) = chunk.complete(published) {
                    tracing::warn!("chunk {} of job {}: ack: {e}", done.chunk, done.job);
                }
            }
            Ok(done) => {
                // Not all results got out: the chunk goes back to the pool.
                if let Some(e) = failed_publish {
                    tracing::warn!(
                        "chunk {} of job {}: publishing results: {e}",
                        done.chunk,
                        done.job
                    );
                }
                stats.chunks_returned.fetch_add(1, Ordering::Relaxed);
                let _ = chunk.nak(Some(Duration::from_secs(1)));
            }
            Err(e) => {
                tracing::warn!("a chunk that is not one: {e}");
                let _ = chunk.fail(&e.to_string());
            }
        }
        stats.chunks_in_progress.fetch_sub(1, Ordering::Relaxed);
        stats
            .busy_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}
