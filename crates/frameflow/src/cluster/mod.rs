//! `run --cluster` and `worker`: decoding, filtering and encoding spread over worker
//! machines, with the job owner committing the results as a local run would.
//!
//! This module holds the parts that do not depend on how chunks travel: the messages
//! ([`wire`]), the job owner's demuxing, chunking, picking and committing ([`owner`]),
//! and the worker's decoding and rendering ([`worker`]). The transport is a [`Pool`]:
//! NATS JetStream in production (the `frameflow-cluster` crate), an in-process loopback
//! in the tests. design/cluster.md states the guarantees and how they are kept.

pub mod owner;
pub mod wire;
pub mod worker;

use std::time::Duration;

/// A failure of the pool's transport.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PoolError(pub String);

/// The worker pool, as the job owner sees it: chunks go in, results come out.
pub trait Pool {
    /// Sends chunk `chunk` (a [`wire::encode_chunk`] message) to the pool. Sending the
    /// same chunk twice must not make it be done twice (the transport deduplicates).
    fn publish(&mut self, chunk: u64, msg: Vec<u8>) -> Result<(), PoolError>;
    /// The next result message, waiting at most `wait`; `None` if none came.
    fn next_result(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, PoolError>;
    /// Chunks the pool gave up on since the last call (every delivery failed).
    fn take_failed(&mut self) -> Vec<u64>;
}

/// A pool in this process: `workers` threads, each a [`worker::ChunkWorker`], over
/// channels. For tests of the owner and the workers without a network, and for a
/// cluster run with no server at all.
#[derive(Debug)]
pub struct LocalPool {
    chunks: Option<crossbeam_channel::Sender<Vec<u8>>>,
    results: crossbeam_channel::Receiver<Vec<u8>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LocalPool {
    pub fn new(workers: usize, scratch: std::path::PathBuf) -> LocalPool {
        let (ctx, crx) = crossbeam_channel::bounded::<Vec<u8>>(workers * 2);
        let (rtx, rrx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..workers.max(1))
            .map(|_| {
                let (crx, rtx, stop) = (crx.clone(), rtx.clone(), stop.clone());
                let scratch = scratch.clone();
                std::thread::spawn(move || {
                    let mut w = worker::ChunkWorker::new(scratch);
                    for msg in crx {
                        let _ = w.process(&msg, &stop, &mut |_, r| rtx.send(r).is_ok());
                    }
                })
            })
            .collect();
        LocalPool {
            chunks: Some(ctx),
            results: rrx,
            threads,
        }
    }
}

impl Pool for LocalPool {
    fn publish(&mut self, _chunk: u64, msg: Vec<u8>) -> Result<(), PoolError> {
        let tx = self
            .chunks
            .as_ref()
            .ok_or_else(|| PoolError("pool closed".into()))?;
        tx.send(msg)
            .map_err(|_| PoolError("every worker is gone".into()))
    }

    fn next_result(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, PoolError> {
        match self.results.recv_timeout(wait) {
            Ok(m) => Ok(Some(m)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(PoolError("every worker is gone".into()))
            }
        }
    }

    fn take_failed(&mut self) -> Vec<u64> {
        Vec::new()
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        self.chunks = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
