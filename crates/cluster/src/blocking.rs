//! Blocking wrappers for thread-based callers (the frameflow pipeline).
//!
//! A [`Cluster`] owns a small multi-threaded tokio runtime (shared by its clones, its
//! chunks and result streams); every call blocks the calling thread until done. Any
//! number of threads may call at once. Do not call these from inside an async context
//! (tokio forbids blocking there), and drop the last handle outside one too.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::{ClusterUrl, ConnectOptions, Error, Event, Published, ResultStats, Tunables};

/// Blocking handle on a [`crate::Cluster`], with its own runtime.
#[derive(Clone, Debug)]
pub struct Cluster {
    // Fields drop in order: the async handle before the runtime it runs on.
    inner: crate::Cluster,
    rt: Arc<Runtime>,
}

fn runtime() -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("frameflow-nats")
        .enable_all()
        .build()
        .map_err(|e| Error::Setup {
            server: String::new(),
            what: "tokio runtime".to_owned(),
            reason: e.to_string(),
        })
}

impl Cluster {
    /// See [`crate::Cluster::connect`].
    ///
    /// # Errors
    /// As [`crate::Cluster::connect`].
    pub fn connect(url: &ClusterUrl, opts: ConnectOptions) -> Result<Self, Error> {
        let rt = Arc::new(runtime()?);
        let inner = rt.block_on(crate::Cluster::connect(url, opts))?;
        Ok(Self { rt, inner })
    }

    /// The async handle (to use on [`Cluster::runtime`]).
    pub fn as_async(&self) -> &crate::Cluster {
        &self.inner
    }

    /// The runtime the calls run on.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The redacted server URL.
    pub fn server(&self) -> &str {
        self.inner.server()
    }

    /// The settings this connection was made with.
    pub fn tunables(&self) -> &Tunables {
        self.inner.tunables()
    }

    /// Payloads up to this size travel inline.
    pub fn inline_limit(&self) -> usize {
        self.inner.inline_limit()
    }

    /// See [`crate::Cluster::publish_chunk`].
    ///
    /// # Errors
    /// As there.
    pub fn publish_chunk(
        &self,
        job: &str,
        chunk_no: u64,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<Published, Error> {
        self.rt
            .block_on(self.inner.publish_chunk(job, chunk_no, meta, payload))
    }

    /// See [`crate::Cluster::results`].
    ///
    /// # Errors
    /// As there.
    pub fn results(&self, job: &str) -> Result<ResultStream, Error> {
        let inner = self.rt.block_on(self.inner.results(job))?;
        Ok(ResultStream {
            rt: self.rt.clone(),
            inner,
        })
    }

    /// See [`crate::Cluster::cleanup`].
    ///
    /// # Errors
    /// As there.
    pub fn cleanup(&self, job: &str) -> Result<(), Error> {
        self.rt.block_on(self.inner.cleanup(job))
    }

    /// Names of the payload objects currently stored.
    ///
    /// # Errors
    /// As [`crate::Cluster::cleanup`].
    #[doc(hidden)]
    pub fn stored_objects(&self) -> Result<Vec<String>, Error> {
        self.rt.block_on(self.inner.stored_objects())
    }

    /// See [`crate::Cluster::next_chunk`].
    ///
    /// # Errors
    /// As there.
    pub fn next_chunk(&self, timeout: Duration) -> Result<Option<Chunk>, Error> {
        let inner = self.rt.block_on(self.inner.next_chunk(timeout))?;
        Ok(inner.map(|inner| Chunk {
            rt: self.rt.clone(),
            inner,
        }))
    }

    /// See [`crate::Cluster::publish_result`].
    ///
    /// # Errors
    /// As there.
    pub fn publish_result(
        &self,
        job: &str,
        chunk_no: u64,
        frame_no: u64,
        delivery: u64,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<(), Error> {
        self.rt.block_on(
            self.inner
                .publish_result(job, chunk_no, frame_no, delivery, meta, payload),
        )
    }
}

/// Blocking [`crate::Chunk`].
#[derive(Debug)]
pub struct Chunk {
    inner: crate::Chunk,
    rt: Arc<Runtime>,
}

impl std::ops::Deref for Chunk {
    type Target = crate::Chunk;
    fn deref(&self) -> &crate::Chunk {
        &self.inner
    }
}

impl Chunk {
    /// See [`crate::Chunk::progress`].
    ///
    /// # Errors
    /// As there.
    pub fn progress(&self) -> Result<(), Error> {
        self.rt.block_on(self.inner.progress())
    }

    /// See [`crate::Chunk::publish_result`].
    ///
    /// # Errors
    /// As there.
    pub fn publish_result(&self, frame_no: u64, meta: &[u8], payload: &[u8]) -> Result<(), Error> {
        self.rt
            .block_on(self.inner.publish_result(frame_no, meta, payload))
    }

    /// See [`crate::Chunk::complete`].
    ///
    /// # Errors
    /// As there.
    pub fn complete(self, frames: u64) -> Result<(), Error> {
        self.rt.block_on(self.inner.complete(frames))
    }

    /// See [`crate::Chunk::ack`].
    ///
    /// # Errors
    /// As there.
    pub fn ack(self) -> Result<(), Error> {
        self.rt.block_on(self.inner.ack())
    }

    /// See [`crate::Chunk::nak`].
    ///
    /// # Errors
    /// As there.
    pub fn nak(self, delay: Option<Duration>) -> Result<(), Error> {
        self.rt.block_on(self.inner.nak(delay))
    }

    /// See [`crate::Chunk::term`].
    ///
    /// # Errors
    /// As there.
    pub fn term(self) -> Result<(), Error> {
        self.rt.block_on(self.inner.term())
    }

    /// See [`crate::Chunk::fail`].
    ///
    /// # Errors
    /// As there.
    pub fn fail(self, reason: &str) -> Result<(), Error> {
        self.rt.block_on(self.inner.fail(reason))
    }
}

/// Blocking [`crate::ResultStream`].
#[derive(Debug)]
pub struct ResultStream {
    inner: crate::ResultStream,
    rt: Arc<Runtime>,
}

impl ResultStream {
    /// See [`crate::ResultStream::next`].
    ///
    /// # Errors
    /// As there.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        self.rt.block_on(self.inner.next(timeout))
    }

    /// The counters so far.
    pub fn stats(&self) -> ResultStats {
        self.inner.stats()
    }
}
