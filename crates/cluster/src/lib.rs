//! NATS JetStream transport for frameflow's distributed mode.
//!
//! This crate moves opaque bytes plus small typed metadata; it knows nothing about
//! video. A *job owner* publishes keyframe-aligned chunks with [`Cluster::publish_chunk`]
//! and reads what workers send back with [`Cluster::results`]; a *worker* takes chunks
//! with [`Cluster::next_chunk`], publishes one result per encoded frame and then
//! [`Chunk::complete`]s the chunk (which acknowledges it only once every result is
//! stored).
//!
//! Layout on the server (created idempotently by every [`Cluster::connect`]):
//! - stream [`CHUNK_STREAM`] (work queue, subjects `ff.chunk.<job>`) with ONE durable
//!   pull consumer [`WORKER_CONSUMER`] shared by all workers: explicit acks, `ack_wait`,
//!   `max_deliver`, `max_ack_pending` from [`Tunables`]; `Nats-Msg-Id` = `<job>.<chunk>`
//!   so a republished chunk is stored once;
//! - stream [`RESULT_STREAM`] (limits, subjects `ff.result.<job>`): frames, chunk-done and
//!   chunk-failed markers; the owner reads it with an ordered consumer and keeps one
//!   result per `(job, frame_no)`, counting the others ([`ResultStats::duplicates`]);
//! - stream [`FAILURE_STREAM`] capturing the server's `MAX_DELIVERIES` advisories for the
//!   worker consumer, so the owner learns of a chunk that exhausted its deliveries even
//!   if no worker lived to say so;
//! - object bucket [`OBJECT_BUCKET`] for payloads over the server's `max_payload`.
//!
//! The async API is the primary one; [`blocking`] wraps it for thread-based callers.
//! Design notes: `design/cluster.md`, section "Transport".

mod error;
mod url;
mod wire;

pub mod blocking;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    context::PublishErrorKind,
    object_store::{self, ObjectStore},
    publish::PublishAck,
    stream::{self, RetentionPolicy, StorageType},
};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use error::{Error, Place};
pub use url::{ClusterUrl, DEFAULT_PORT};

use wire::{Envelope, Kind};

/// Work-queue stream holding the chunks.
pub const CHUNK_STREAM: &str = "FF_CHUNKS";
/// Stream holding the workers' results.
pub const RESULT_STREAM: &str = "FF_RESULTS";
/// Stream capturing `MAX_DELIVERIES` advisories of the worker consumer.
pub const FAILURE_STREAM: &str = "FF_FAILURES";
/// The one durable pull consumer all workers share.
pub const WORKER_CONSUMER: &str = "ff_workers";
/// Object bucket for payloads larger than the server's `max_payload`.
pub const OBJECT_BUCKET: &str = "ff_payloads";
/// Longest accepted job id.
pub const MAX_JOB_ID_LEN: usize = 64;
/// Largest `meta` accepted; `meta` always travels inline.
pub const MAX_META_LEN: usize = 64 * 1024;

const HDR_JOB: &str = "Ff-Job";
const HDR_CHUNK: &str = "Ff-Chunk";
/// Room kept under `max_payload` for headers and the envelope.
const INLINE_HEADROOM: usize = 4096;

fn chunk_subject(job: &str) -> String {
    format!("ff.chunk.{job}")
}
fn result_subject(job: &str) -> String {
    format!("ff.result.{job}")
}
fn advisory_subject() -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{CHUNK_STREAM}.{WORKER_CONSUMER}")
}
fn chunk_object(job: &str, chunk_no: u64) -> String {
    format!("{job}/c{chunk_no}")
}

/// Where JetStream keeps the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// On disk: survives a server restart (the default).
    #[default]
    File,
    /// In memory: lost when the server restarts.
    Memory,
}

impl From<Storage> for StorageType {
    fn from(s: Storage) -> Self {
        match s {
            Storage::File => StorageType::File,
            Storage::Memory => StorageType::Memory,
        }
    }
}

/// Delivery and storage knobs. The stream and consumer settings are applied by whoever
/// creates them first; a later [`Cluster::connect`] with other values uses the existing
/// ones and logs a warning.
#[derive(Debug, Clone)]
pub struct Tunables {
    /// How long a delivered chunk may go without an ack or [`Chunk::progress`] before
    /// the server gives it to another worker (a killed worker's chunk comes back after
    /// this). Default 10 s.
    pub ack_wait: Duration,
    /// Chunks delivered and not yet acknowledged, over all workers. Default 64.
    pub max_ack_pending: i64,
    /// Deliveries of one chunk before it counts as failed. Default 3.
    pub max_deliver: i64,
    /// Stream storage. Default file.
    pub storage: Storage,
    /// Window in which a republished chunk (same job and number) is recognised and stored
    /// once. Default 10 min.
    pub duplicate_window: Duration,
    /// Age after which results, failure notes and objects left behind (a job owner that
    /// died before cleaning up) are dropped by the server. Default 24 h.
    pub retention: Duration,
    /// Time for one request to the server (stream API, publish ack). Default 5 s.
    pub request_timeout: Duration,
    /// Time a publish keeps retrying through disconnects (server restart) before it
    /// fails. Default 60 s.
    pub publish_timeout: Duration,
    /// Payloads larger than this go through the object bucket even when the server would
    /// take them inline; `None`: the server's `max_payload` less some headroom.
    pub max_inline: Option<usize>,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(10),
            max_ack_pending: 64,
            max_deliver: 3,
            storage: Storage::File,
            duplicate_window: Duration::from_secs(600),
            retention: Duration::from_secs(24 * 3600),
            request_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(60),
            max_inline: None,
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Time allowed for the first connection (TCP, TLS, auth). Default 5 s.
    pub timeout: Duration,
    /// Client name shown by the server's monitoring. Default `frameflow`.
    pub name: String,
    /// Delivery and storage knobs.
    pub tunables: Tunables,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            name: "frameflow".to_owned(),
            tunables: Tunables::default(),
        }
    }
}

/// What a worker receives with a chunk besides its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHeader {
    /// The job id.
    pub job: String,
    /// The chunk number within the job.
    pub chunk_no: u64,
    /// Opaque metadata from the job owner (stream parameters, frame numbering, …).
    pub meta: Vec<u8>,
}

/// What [`Cluster::publish_chunk`] got back from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Sequence of the chunk in [`CHUNK_STREAM`].
    pub stream_seq: u64,
    /// The server already had this chunk (same job and number, within the duplicate
    /// window) and did not store it again.
    pub duplicate: bool,
}

/// One encoded frame, as a worker published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultMsg {
    /// The job id.
    pub job: String,
    /// The chunk the frame came from.
    pub chunk_no: u64,
    /// The frame number (unique within the job).
    pub frame_no: u64,
    /// Which delivery of the chunk produced it (1 = first; more after a redelivery).
    pub delivery: u64,
    /// Opaque metadata from the worker.
    pub meta: Vec<u8>,
    /// The encoded frame.
    pub payload: Vec<u8>,
}

/// Why a chunk failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// It was delivered `max_deliver` times without being acknowledged (workers died,
    /// timed out or nak'ed it); reported by the server's advisory.
    MaxDeliveries {
        /// Deliveries made.
        deliveries: u64,
    },
    /// A worker declared it unprocessable ([`Chunk::fail`]).
    Worker {
        /// The worker's reason.
        reason: String,
        /// Which delivery it was.
        delivery: u64,
    },
}

/// What the job owner reads from [`ResultStream::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An encoded frame, first copy only.
    Frame(ResultMsg),
    /// A worker finished the chunk: all its frames came before this event.
    ChunkDone {
        /// The chunk number.
        chunk_no: u64,
        /// How many frames the worker published for it.
        frames: u64,
    },
    /// The chunk will not be processed.
    ChunkFailed {
        /// The chunk number.
        chunk_no: u64,
        /// Why.
        reason: FailReason,
    },
}

/// Counters of a [`ResultStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResultStats {
    /// Frames handed out (first copies).
    pub frames: u64,
    /// Frame results seen again (a chunk processed twice) and dropped.
    pub duplicates: u64,
    /// Chunk-done or chunk-failed notes seen again and dropped.
    pub duplicate_chunk_notes: u64,
    /// Chunks reported done.
    pub chunks_done: u64,
    /// Chunks reported failed.
    pub chunks_failed: u64,
}

/// A connection to the cluster, cheap to clone; both job owners and workers use it.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    chunks: stream::Stream,
    results: stream::Stream,
    failures: stream::Stream,
    consumer: PullConsumer,
    objects: ObjectStore,
    url: ClusterUrl,
    server: String,
    tunables: Tunables,
    inline_limit: usize,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.inner.server)
            .field("inline_limit", &self.inner.inline_limit)
            .finish_non_exhaustive()
    }
}

/// Checks that a job id can be a subject token and an object-name prefix.
pub fn validate_job_id(job: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidJobId {
            job: job.chars().take(MAX_JOB_ID_LEN + 8).collect(),
            reason,
        })
    };
    if job.is_empty() {
        return bad("empty");
    }
    if job.len() > MAX_JOB_ID_LEN {
        return bad("longer than 64 bytes");
    }
    if !job
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("only ASCII letters, digits, '-' and '_' are allowed");
    }
    Ok(())
}

fn map_connect_error(url: &ClusterUrl, e: &async_nats::ConnectError) -> Error {
    use async_nats::ConnectErrorKind as K;
    let server = url.to_string();
    let reason = url.scrub(&connect_reason(e));
    match e.kind() {
        K::AuthorizationViolation | K::Authentication => Error::Auth { server, reason },
        _ => Error::Unreachable { server, reason },
    }
}

fn connect_reason(e: &async_nats::ConnectError) -> String {
    use std::error::Error as _;
    let mut s = e.kind().to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    // std's io::Error reads "Connection refused (os error 111)": say it the usual way.
    s.replace("IO error: ", "").to_lowercase()
}

impl Cluster {
    /// Connects, checks JetStream, and ensures the streams, the worker consumer and the
    /// object bucket exist (idempotent: any number of owners and workers may call it).
    ///
    /// # Errors
    /// [`Error::Unreachable`] if no server answers within `opts.timeout` (one error,
    /// no retrying), [`Error::Auth`] for refused credentials, [`Error::CredsFile`],
    /// [`Error::NoJetStream`], [`Error::Setup`]. None of them contains the password or
    /// token.
    pub async fn connect(url: &ClusterUrl, opts: ConnectOptions) -> Result<Cluster, Error> {
        let server = url.to_string();
        let mut o = match url.creds_file() {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| Error::CredsFile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        o = match &url.auth {
            url::Auth::None => o,
            url::Auth::UserPass { user, pass } => o.user_and_password(user.clone(), pass.clone()),
            url::Auth::Token(t) => o.token(t.clone()),
        };
        if url.is_tls() {
            o = o.require_tls(true);
        }
        let events_url = url.clone();
        o = o
            .name(&opts.name)
            .connection_timeout(opts.timeout)
            .request_timeout(Some(opts.tunables.request_timeout))
            .event_callback(move |ev| {
                let text = events_url.scrub(&ev.to_string());
                let server = events_url.to_string();
                async move {
                    match ev {
                        async_nats::Event::Connected => info!(%server, "NATS connected"),
                        async_nats::Event::Disconnected => {
                            warn!(%server, "NATS disconnected; reconnecting");
                        }
                        _ => warn!(%server, event = %text, "NATS event"),
                    }
                }
            });
        let connecting = o.connect(url.server_addr());
        let client =
            match tokio::time::timeout(opts.timeout + Duration::from_secs(1), connecting).await {
                Err(_) => {
                    return Err(Error::Unreachable {
                        server,
                        reason: format!("no answer within {:?}", opts.timeout),
                    });
                }
                Ok(Err(e)) => return Err(map_connect_error(url, &e)),
                Ok(Ok(c)) => c,
            };
        let info = client.server_info();
        if !info.jetstream {
            return Err(Error::NoJetStream { server });
        }
        let t = opts.tunables.clone();
        let mut js = jetstream::new(client.clone());
        js.set_timeout(t.request_timeout);

        let setup = |what: &str, e: &dyn std::fmt::Display| Error::Setup {
            server: server.clone(),
            what: what.to_owned(),
            reason: url.scrub(&e.to_string()),
        };
        let chunks = js
            .get_or_create_stream(stream::Config {
                name: CHUNK_STREAM.to_owned(),
                subjects: vec!["ff.chunk.>".to_owned()],
                retention: RetentionPolicy::WorkQueue,
                storage: t.storage.into(),
                duplicate_window: t.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(&format!("stream {CHUNK_STREAM}"), &e))?;
        let results = js
            .get_or_create_stream(stream::Config {
                name: RESULT_STREAM.to_owned(),
                subjects: vec!["ff.result.>".to_owned()],
                retention: RetentionPolicy::Limits,
                storage: t.storage.into(),
                max_age: t.retention,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(&format!("stream {RESULT_STREAM}"), &e))?;
        let failures = js
            .get_or_create_stream(stream::Config {
                name: FAILURE_STREAM.to_owned(),
                subjects: vec![advisory_subject()],
                retention: RetentionPolicy::Limits,
                storage: t.storage.into(),
                max_age: t.retention,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(&format!("stream {FAILURE_STREAM}"), &e))?;
        let consumer: PullConsumer = chunks
            .get_or_create_consumer(
                WORKER_CONSUMER,
                pull::Config {
                    durable_name: Some(WORKER_CONSUMER.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: t.ack_wait,
                    max_deliver: t.max_deliver,
                    max_ack_pending: t.max_ack_pending,
                    filter_subject: "ff.chunk.>".to_owned(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| setup(&format!("consumer {WORKER_CONSUMER}"), &e))?;
        let have = &consumer.cached_info().config;
        if have.ack_wait != t.ack_wait
            || have.max_deliver != t.max_deliver
            || have.max_ack_pending != t.max_ack_pending
        {
            warn!(
                %server,
                ack_wait = ?have.ack_wait, max_deliver = have.max_deliver,
                max_ack_pending = have.max_ack_pending,
                "worker consumer exists with other settings; using the existing ones"
            );
        }
        let objects = match js.get_object_store(OBJECT_BUCKET).await {
            Ok(s) => s,
            Err(_) => {
                let created = js
                    .create_object_store(object_store::Config {
                        bucket: OBJECT_BUCKET.to_owned(),
                        storage: t.storage.into(),
                        max_age: t.retention,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(s) => s,
                    // Another process may have created it meanwhile.
                    Err(e) => js
                        .get_object_store(OBJECT_BUCKET)
                        .await
                        .map_err(|_| setup(&format!("object bucket {OBJECT_BUCKET}"), &e))?,
                }
            }
        };
        let server_limit = info.max_payload.saturating_sub(INLINE_HEADROOM);
        let inline_limit = t.max_inline.map_or(server_limit, |m| m.min(server_limit));
        info!(%server, max_payload = info.max_payload, inline_limit, "cluster transport ready");
        Ok(Cluster {
            inner: Arc::new(Inner {
                client,
                js,
                chunks,
                results,
                failures,
                consumer,
                objects,
                url: url.clone(),
                server,
                tunables: t,
                inline_limit,
            }),
        })
    }

    /// The redacted server URL.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The settings this connection was made with.
    pub fn tunables(&self) -> &Tunables {
        &self.inner.tunables
    }

    /// Payloads up to this size travel inline; larger ones through the object bucket.
    pub fn inline_limit(&self) -> usize {
        self.inner.inline_limit
    }

    fn transport(&self, op: &'static str, at: Place, e: &dyn std::fmt::Display) -> Error {
        Error::Transport {
            server: self.inner.server.clone(),
            op,
            at,
            reason: self.inner.url.scrub(&e.to_string()),
        }
    }

    fn malformed(&self, at: Place, reason: impl Into<String>) -> Error {
        Error::Malformed {
            server: self.inner.server.clone(),
            at,
            reason: reason.into(),
        }
    }

    /// Publishes to JetStream and waits for the stored-ack, retrying through disconnects
    /// (a server restart) until `publish_timeout`. Safe to retry: chunks carry a
    /// `Nats-Msg-Id`, results are deduplicated by the reader.
    async fn publish_acked(
        &self,
        op: &'static str,
        at: &Place,
        subject: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<PublishAck, Error> {
        let deadline = Instant::now() + self.inner.tunables.publish_timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = async {
                self.inner
                    .js
                    .publish_with_headers(subject.clone(), headers.clone(), body.clone())
                    .await?
                    .await
            };
            match attempt.await {
                Ok(ack) => return Ok(ack),
                Err(e) => {
                    let retry = matches!(
                        e.kind(),
                        PublishErrorKind::TimedOut
                            | PublishErrorKind::BrokenPipe
                            | PublishErrorKind::StreamNotFound
                            | PublishErrorKind::MaxAckPending
                    );
                    if !retry || Instant::now() + delay > deadline {
                        return Err(self.transport(op, at.clone(), &e));
                    }
                    debug!(server = %self.inner.server, %at, error = %e, "{op}: retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn put_object(&self, at: &Place, name: &str, payload: &[u8]) -> Result<(), Error> {
        let deadline = Instant::now() + self.inner.tunables.publish_timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let mut reader = payload;
            match self.inner.objects.put(name, &mut reader).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    if Instant::now() + delay > deadline {
                        return Err(self.transport("store payload object", at.clone(), &e));
                    }
                    debug!(server = %self.inner.server, %at, error = %e, "object put: retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Reads an object; `Ok(None)` if it does not exist.
    async fn get_object(
        &self,
        at: &Place,
        name: &str,
        size: u64,
    ) -> Result<Option<Vec<u8>>, Error> {
        let deadline = Instant::now() + self.inner.tunables.publish_timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = async {
                let mut obj = match self.inner.objects.get(name).await {
                    Ok(o) => o,
                    Err(e) if e.kind() == object_store::GetErrorKind::NotFound => {
                        return Ok(None);
                    }
                    Err(e) => return Err(e.to_string()),
                };
                let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                obj.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
                Ok(Some(buf))
            };
            match attempt.await {
                Ok(Some(buf)) if buf.len() as u64 != size => {
                    return Err(self.malformed(
                        at.clone(),
                        format!("object {name} is {} bytes, expected {size}", buf.len()),
                    ));
                }
                Ok(r) => return Ok(r),
                Err(e) => {
                    if Instant::now() + delay > deadline {
                        return Err(self.transport("fetch payload object", at.clone(), &e));
                    }
                    debug!(server = %self.inner.server, %at, error = %e, "object get: retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Deletes an object, ignoring one that is already gone.
    async fn delete_object(&self, at: &Place, name: &str) {
        match self.inner.objects.delete(name).await {
            Ok(()) => {}
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => {}
            Err(e) => {
                let e = self.inner.url.scrub(&e.to_string());
                warn!(server = %self.inner.server, %at, object = name, error = %e, "cannot delete payload object");
            }
        }
    }

    /// Job owner: publishes one chunk for the workers and waits until the server has
    /// stored it. `meta` (small, at most [`MAX_META_LEN`]) reaches the worker as
    /// [`ChunkHeader::meta`]. A payload over [`Cluster::inline_limit`] is stored in the
    /// object bucket first. Publishing the same `(job, chunk_no)` again within the
    /// duplicate window stores nothing new ([`Published::duplicate`]).
    ///
    /// # Errors
    /// [`Error::InvalidJobId`]; [`Error::Transport`] naming the job and chunk if the
    /// server did not confirm within `publish_timeout`.
    pub async fn publish_chunk(
        &self,
        job: &str,
        chunk_no: u64,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<Published, Error> {
        validate_job_id(job)?;
        let at = Place::chunk(job, chunk_no);
        if meta.len() > MAX_META_LEN {
            return Err(self.malformed(at, format!("meta of {} bytes is too large", meta.len())));
        }
        let mut env = Envelope::new(Kind::Chunk, job, chunk_no);
        env.meta_len = meta.len() as u64;
        env.size = payload.len() as u64;
        let inline = if meta.len() + payload.len() > self.inner.inline_limit {
            let name = chunk_object(job, chunk_no);
            // A republished chunk whose object is already there reuses it.
            let present = matches!(self.inner.objects.info(&name).await,
                Ok(i) if i.size as u64 == env.size);
            if !present {
                self.put_object(&at, &name, payload).await?;
            }
            env.object = Some(name);
            &[][..]
        } else {
            payload
        };
        let body = wire::encode(&env, meta, inline);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{job}.{chunk_no}").as_str());
        headers.insert(HDR_JOB, job);
        headers.insert(HDR_CHUNK, chunk_no.to_string().as_str());
        let ack = self
            .publish_acked(
                "publish chunk",
                &at,
                chunk_subject(job),
                headers,
                Bytes::from(body),
            )
            .await?;
        debug!(%at, seq = ack.sequence, duplicate = ack.duplicate, "chunk published");
        Ok(Published {
            stream_seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Job owner: the results of a job, from the beginning of the results stream.
    /// Each frame is handed out once, however often its chunk was processed.
    ///
    /// # Errors
    /// [`Error::InvalidJobId`]; [`Error::Transport`] if the consumers cannot be created.
    pub async fn results(&self, job: &str) -> Result<ResultStream, Error> {
        validate_job_id(job)?;
        let at = Place::job(job);
        let results = self
            .ordered(&self.inner.results, Some(result_subject(job)), 1, &at)
            .await?;
        let failures = self.ordered(&self.inner.failures, None, 1, &at).await?;
        let connects = self.connects();
        Ok(ResultStream {
            cluster: self.clone(),
            job: job.to_owned(),
            results,
            failures,
            results_seq: 0,
            failures_seq: 0,
            connects,
            seen_frames: HashSet::new(),
            finished: HashSet::new(),
            pending: None,
            stats: ResultStats::default(),
        })
    }

    fn connects(&self) -> u64 {
        self.inner
            .client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// An ordered consumer reading `stream` (optionally one subject) from `start_seq`.
    async fn ordered(
        &self,
        stream: &stream::Stream,
        filter: Option<String>,
        start_seq: u64,
        at: &Place,
    ) -> Result<pull::Ordered, Error> {
        let op = if filter.is_some() {
            "read results"
        } else {
            "read failure advisories"
        };
        stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.unwrap_or_default(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start_seq.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| self.transport(op, at.clone(), &e))?
            .messages()
            .await
            .map_err(|e| self.transport(op, at.clone(), &e))
    }

    /// Job owner: removes everything the job left on the server (chunks not taken,
    /// results, payload objects). Call it once the job's outputs are committed.
    ///
    /// # Errors
    /// [`Error::Transport`] naming the job.
    pub async fn cleanup(&self, job: &str) -> Result<(), Error> {
        validate_job_id(job)?;
        let at = Place::job(job);
        self.inner
            .chunks
            .purge()
            .filter(chunk_subject(job))
            .await
            .map_err(|e| self.transport("purge chunks", at.clone(), &e))?;
        self.inner
            .results
            .purge()
            .filter(result_subject(job))
            .await
            .map_err(|e| self.transport("purge results", at.clone(), &e))?;
        let prefix = format!("{job}/");
        let mut list = self
            .inner
            .objects
            .list()
            .await
            .map_err(|e| self.transport("list payload objects", at.clone(), &e))?;
        let mut names = Vec::new();
        while let Some(item) = list.next().await {
            let item = item.map_err(|e| self.transport("list payload objects", at.clone(), &e))?;
            if item.name.starts_with(&prefix) && !item.deleted {
                names.push(item.name);
            }
        }
        for name in names {
            self.delete_object(&at, &name).await;
        }
        info!(%at, "job cleaned up");
        Ok(())
    }

    /// Names of the payload objects currently stored (for tests and diagnostics).
    ///
    /// # Errors
    /// [`Error::Transport`].
    #[doc(hidden)]
    pub async fn stored_objects(&self) -> Result<Vec<String>, Error> {
        let at = Place::default();
        let mut list = self
            .inner
            .objects
            .list()
            .await
            .map_err(|e| self.transport("list payload objects", at.clone(), &e))?;
        let mut names = Vec::new();
        while let Some(item) = list.next().await {
            let item = item.map_err(|e| self.transport("list payload objects", at.clone(), &e))?;
            if !item.deleted {
                names.push(item.name);
            }
        }
        Ok(names)
    }

    /// Worker: waits up to `timeout` for a chunk. `Ok(None)`: none came.
    ///
    /// A message that is not a valid chunk, or whose payload object is gone (the chunk
    /// was already finished elsewhere, or the job cleaned up), is terminated with a
    /// warning and the wait goes on.
    ///
    /// # Errors
    /// [`Error::Transport`] if the server cannot be asked (e.g. while it restarts:
    /// [`Error::is_transient`]; call again).
    pub async fn next_chunk(&self, timeout: Duration) -> Result<Option<Chunk>, Error> {
        let deadline = Instant::now() + timeout;
        let pool = Place::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(10) {
                return Ok(None);
            }
            let fetch = async {
                let mut batch = self
                    .inner
                    .consumer
                    .fetch()
                    .max_messages(1)
                    .expires(left)
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                batch.next().await.transpose().map_err(|e| e.to_string())
            };
            let msg = match tokio::time::timeout(left + Duration::from_secs(5), fetch).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(self.transport("fetch chunk", pool, &e)),
                Ok(Ok(None)) => continue,
                Ok(Ok(Some(m))) => m,
            };
            if let Some(chunk) = self.open_chunk(msg).await? {
                return Ok(Some(chunk));
            }
        }
    }

    async fn open_chunk(&self, msg: jetstream::Message) -> Result<Option<Chunk>, Error> {
        let (delivered, stream_seq) = match msg.info() {
            Ok(i) => (u64::try_from(i.delivered).unwrap_or(0), i.stream_sequence),
            Err(e) => {
                warn!(server = %self.inner.server, error = %e, "chunk without JetStream metadata; ignored");
                return Ok(None);
            }
        };
        let decoded = match wire::decode(&msg.payload) {
            Ok(d) if d.env.kind == Kind::Chunk => d,
            Ok(_) | Err(_) => {
                warn!(server = %self.inner.server, seq = stream_seq, subject = %msg.subject,
                    "malformed chunk message; terminated");
                let _ = msg.ack_with(AckKind::Term).await;
                return Ok(None);
            }
        };
        let env = decoded.env;
        let at = Place::chunk(&env.job, env.chunk_no);
        let payload = match &env.object {
            None => decoded.inline.to_vec(),
            Some(name) => match self.get_object(&at, name, env.size).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    warn!(%at, object = %name, "chunk payload is gone (chunk already finished or job cleaned up); terminated");
                    let _ = msg.ack_with(AckKind::Term).await;
                    return Ok(None);
                }
                Err(e) => {
                    let _ = msg
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return Err(e);
                }
            },
        };
        debug!(%at, delivered, "chunk received");
        Ok(Some(Chunk {
            header: ChunkHeader {
                job: env.job,
                chunk_no: env.chunk_no,
                meta: decoded.meta.to_vec(),
            },
            payload,
            delivered,
            stream_seq,
            msg,
            cluster: self.clone(),
        }))
    }

    /// Worker: publishes one encoded frame of a chunk and waits until the server has
    /// stored it. A payload over [`Cluster::inline_limit`] goes through the object
    /// bucket (under a name unique to this call, so two workers on the same chunk never
    /// overwrite each other's). `delivery` is [`Chunk::delivered`] (0 if unknown).
    ///
    /// # Errors
    /// [`Error::InvalidJobId`], [`Error::Transport`] naming job, chunk and frame.
    pub async fn publish_result(
        &self,
        job: &str,
        chunk_no: u64,
        frame_no: u64,
        delivery: u64,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<(), Error> {
        validate_job_id(job)?;
        let at = Place::frame(job, chunk_no, frame_no);
        if meta.len() > MAX_META_LEN {
            return Err(self.malformed(at, format!("meta of {} bytes is too large", meta.len())));
        }
        let mut env = Envelope::new(Kind::Frame, job, chunk_no);
        env.frame_no = Some(frame_no);
        env.delivery = delivery;
        env.meta_len = meta.len() as u64;
        env.size = payload.len() as u64;
        let inline = if meta.len() + payload.len() > self.inner.inline_limit {
            let unique = self.inner.client.new_inbox();
            let unique = unique.rsplit('.').next().unwrap_or("x");
            let name = format!("{job}/r{chunk_no}.{frame_no}.{unique}");
            self.put_object(&at, &name, payload).await?;
            env.object = Some(name);
            &[][..]
        } else {
            payload
        };
        self.publish_note(&at, &env, meta, inline, "publish result")
            .await
    }

    async fn publish_note(
        &self,
        at: &Place,
        env: &Envelope,
        meta: &[u8],
        inline: &[u8],
        op: &'static str,
    ) -> Result<(), Error> {
        let body = wire::encode(env, meta, inline);
        let mut headers = HeaderMap::new();
        headers.insert(HDR_JOB, env.job.as_str());
        headers.insert(HDR_CHUNK, env.chunk_no.to_string().as_str());
        self.publish_acked(op, at, result_subject(&env.job), headers, Bytes::from(body))
            .await?;
        Ok(())
    }
}

/// A chunk taken by a worker. Finish it with [`Chunk::complete`] (or [`Chunk::ack`]),
/// give it back with [`Chunk::nak`], or give up with [`Chunk::fail`] / [`Chunk::term`].
/// Dropping it without any of these lets the server redeliver it after `ack_wait`.
pub struct Chunk {
    /// Job, chunk number and the owner's metadata.
    pub header: ChunkHeader,
    /// The chunk's bytes.
    pub payload: Vec<u8>,
    /// Which delivery this is (1 = first).
    pub delivered: u64,
    stream_seq: u64,
    msg: jetstream::Message,
    cluster: Cluster,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("job", &self.header.job)
            .field("chunk_no", &self.header.chunk_no)
            .field("payload_len", &self.payload.len())
            .field("delivered", &self.delivered)
            .field("stream_seq", &self.stream_seq)
            .finish_non_exhaustive()
    }
}

impl Chunk {
    fn at(&self) -> Place {
        Place::chunk(&self.header.job, self.header.chunk_no)
    }

    /// Whether this is the last delivery the consumer allows (`max_deliver`).
    pub fn is_last_delivery(&self) -> bool {
        let max = self.cluster.inner.consumer.cached_info().config.max_deliver;
        max > 0 && self.delivered >= u64::try_from(max).unwrap_or(u64::MAX)
    }

    /// Tells the server the chunk is still being worked on: its `ack_wait` starts again.
    /// Call it more often than `ack_wait` while a long chunk runs.
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub async fn progress(&self) -> Result<(), Error> {
        self.msg
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| self.cluster.transport("in-progress ack", self.at(), &e))
    }

    /// Publishes one encoded frame of this chunk (see [`Cluster::publish_result`]).
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub async fn publish_result(
        &self,
        frame_no: u64,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<(), Error> {
        self.cluster
            .publish_result(
                &self.header.job,
                self.header.chunk_no,
                frame_no,
                self.delivered,
                meta,
                payload,
            )
            .await
    }

    /// Publishes the chunk-done note (`frames` results were published) and then
    /// acknowledges the chunk, waiting for the server to confirm the ack. Call it only
    /// after every [`Chunk::publish_result`] returned: they have all been stored then.
    ///
    /// # Errors
    /// [`Error::Transport`]; the chunk is then redelivered after `ack_wait`, and its
    /// results are deduplicated by the owner.
    pub async fn complete(self, frames: u64) -> Result<(), Error> {
        let mut env = Envelope::new(Kind::Done, &self.header.job, self.header.chunk_no);
        env.delivery = self.delivered;
        env.frames = Some(frames);
        self.cluster
            .publish_note(&self.at(), &env, &[], &[], "publish chunk-done")
            .await?;
        self.ack().await
    }

    /// Acknowledges the chunk (confirmed by the server) without a chunk-done note.
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub async fn ack(self) -> Result<(), Error> {
        self.msg
            .double_ack()
            .await
            .map_err(|e| self.cluster.transport("ack", self.at(), &e))
    }

    /// Gives the chunk back for another delivery, after `delay` if given.
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub async fn nak(self, delay: Option<Duration>) -> Result<(), Error> {
        self.msg
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(|e| self.cluster.transport("nak", self.at(), &e))
    }

    /// Stops all further deliveries of the chunk, without any note to the owner.
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub async fn term(self) -> Result<(), Error> {
        self.msg
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| self.cluster.transport("term", self.at(), &e))
    }

    /// Declares the chunk unprocessable: publishes a chunk-failed note with `reason`
    /// for the owner, then terminates the chunk.
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub async fn fail(self, reason: &str) -> Result<(), Error> {
        let mut env = Envelope::new(Kind::Failed, &self.header.job, self.header.chunk_no);
        env.delivery = self.delivered;
        env.reason = Some(reason.to_owned());
        self.cluster
            .publish_note(&self.at(), &env, &[], &[], "publish chunk-failed")
            .await?;
        self.term().await
    }
}

/// The job owner's view of a job's results; see [`Cluster::results`].
pub struct ResultStream {
    cluster: Cluster,
    job: String,
    results: pull::Ordered,
    failures: pull::Ordered,
    /// Last stream sequences read, to resume after a reconnect.
    results_seq: u64,
    failures_seq: u64,
    /// The client's connect count when the consumers were made.
    connects: u64,
    seen_frames: HashSet<u64>,
    finished: HashSet<u64>,
    /// A result taken from the stream whose payload could not be fetched yet.
    pending: Option<jetstream::Message>,
    stats: ResultStats,
}

impl std::fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStream")
            .field("job", &self.job)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct MaxDeliveriesAdvisory {
    stream_seq: u64,
    #[serde(default)]
    deliveries: u64,
}

impl ResultStream {
    /// The counters so far.
    pub fn stats(&self) -> ResultStats {
        self.stats
    }

    /// The job this stream reads.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Waits up to `timeout` for the next event; `Ok(None)`: nothing new came.
    /// Duplicates are dropped (and counted) here, their payload objects deleted unread;
    /// a first copy's payload object is read and then deleted.
    ///
    /// # Errors
    /// [`Error::Transport`] (the event is kept and retried by the next call),
    /// [`Error::Malformed`] for a message that cannot be a result (skipped).
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(msg) = self.pending.take() {
                match self.handle_result(&msg).await {
                    Ok(Some(ev)) => return Ok(Some(ev)),
                    Ok(None) => {}
                    Err(e) => {
                        if e.is_transient() {
                            self.pending = Some(msg);
                        }
                        return Err(e);
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let at = Place::job(&self.job);
            self.resume_after_reconnect(&at).await?;
            tokio::select! {
                m = self.results.next() => match m {
                    Some(Ok(msg)) => {
                        if let Ok(i) = msg.info() {
                            self.results_seq = i.stream_sequence;
                        }
                        self.pending = Some(msg);
                    }
                    Some(Err(e)) => return Err(self.cluster.transport("read results", at, &e)),
                    None => return Err(self.cluster.transport("read results", at, &"stream closed")),
                },
                m = self.failures.next() => match m {
                    Some(Ok(msg)) => {
                        if let Ok(i) = msg.info() {
                            self.failures_seq = i.stream_sequence;
                        }
                        if let Some(ev) = self.handle_advisory(&msg).await {
                            return Ok(Some(ev));
                        }
                    }
                    Some(Err(e)) => return Err(self.cluster.transport("read failure advisories", at, &e)),
                    None => return Err(self.cluster.transport("read failure advisories", at, &"stream closed")),
                },
                // Wake up now and then to notice a reconnect.
                () = tokio::time::sleep(left.min(Duration::from_secs(1))) => {}
            }
        }
    }

    /// After the client reconnected (server restart), the server-side ephemeral
    /// consumers may be gone and the client's pull requests lost: the client would only
    /// notice after a request expiry. Recreate both from the last sequences read.
    async fn resume_after_reconnect(&mut self, at: &Place) -> Result<(), Error> {
        let connects = self.cluster.connects();
        if connects == self.connects {
            return Ok(());
        }
        let c = self.cluster.clone();
        let results = c
            .ordered(
                &c.inner.results,
                Some(result_subject(&self.job)),
                self.results_seq + 1,
                at,
            )
            .await?;
        let failures = c
            .ordered(&c.inner.failures, None, self.failures_seq + 1, at)
            .await?;
        self.results = results;
        self.failures = failures;
        self.connects = connects;
        info!(%at, from_seq = self.results_seq + 1, "result readers resumed after reconnect");
        Ok(())
    }

    /// Marks a chunk finished; false if it already was (a duplicate note).
    async fn finish(&mut self, chunk_no: u64) -> bool {
        if !self.finished.insert(chunk_no) {
            self.stats.duplicate_chunk_notes += 1;
            return false;
        }
        let at = Place::chunk(&self.job, chunk_no);
        self.cluster
            .delete_object(&at, &chunk_object(&self.job, chunk_no))
            .await;
        true
    }

    async fn handle_result(&mut self, msg: &jetstream::Message) -> Result<Option<Event>, Error> {
        let job_at = Place::job(&self.job);
        let d = wire::decode(&msg.payload).map_err(|e| self.cluster.malformed(job_at, e))?;
        let env = d.env;
        if env.job != self.job {
            return Ok(None);
        }
        match env.kind {
            Kind::Frame => {
                let at_chunk = Place::chunk(&self.job, env.chunk_no);
                let frame_no = env.frame_no.ok_or_else(|| {
                    self.cluster
                        .malformed(at_chunk, "frame result without frame number")
                })?;
                let at = Place::frame(&self.job, env.chunk_no, frame_no);
                if self.seen_frames.contains(&frame_no) {
                    self.stats.duplicates += 1;
                    debug!(%at, delivery = env.delivery, "duplicate frame result dropped");
                    if let Some(name) = &env.object {
                        self.cluster.delete_object(&at, name).await;
                    }
                    return Ok(None);
                }
                let payload = match &env.object {
                    None => d.inline.to_vec(),
                    Some(name) => match self.cluster.get_object(&at, name, env.size).await? {
                        Some(p) => p,
                        None => {
                            return Err(self
                                .cluster
                                .malformed(at, format!("payload object {name} is missing")));
                        }
                    },
                };
                if let Some(name) = &env.object {
                    self.cluster.delete_object(&at, name).await;
                }
                self.seen_frames.insert(frame_no);
                self.stats.frames += 1;
                Ok(Some(Event::Frame(ResultMsg {
                    job: env.job,
                    chunk_no: env.chunk_no,
                    frame_no,
                    delivery: env.delivery,
                    meta: d.meta.to_vec(),
                    payload,
                })))
            }
            Kind::Done => {
                if !self.finish(env.chunk_no).await {
                    return Ok(None);
                }
                self.stats.chunks_done += 1;
                Ok(Some(Event::ChunkDone {
                    chunk_no: env.chunk_no,
                    frames: env.frames.unwrap_or(0),
                }))
            }
            Kind::Failed => {
                if !self.finish(env.chunk_no).await {
                    return Ok(None);
                }
                self.stats.chunks_failed += 1;
                Ok(Some(Event::ChunkFailed {
                    chunk_no: env.chunk_no,
                    reason: FailReason::Worker {
                        reason: env.reason.unwrap_or_default(),
                        delivery: env.delivery,
                    },
                }))
            }
            Kind::Chunk => Ok(None),
        }
    }

    /// A `MAX_DELIVERIES` advisory names a stream sequence; the chunk message is still in
    /// the work queue (it was never acked), so its headers say which job and chunk.
    async fn handle_advisory(&mut self, msg: &jetstream::Message) -> Option<Event> {
        let adv: MaxDeliveriesAdvisory = match serde_json::from_slice(&msg.payload) {
            Ok(a) => a,
            Err(e) => {
                warn!(job = %self.job, error = %e, "unreadable max-deliveries advisory ignored");
                return None;
            }
        };
        let cluster = self.cluster.clone();
        let chunks = &cluster.inner.chunks;
        let raw = match chunks.get_raw_message(adv.stream_seq).await {
            Ok(m) => m,
            // Gone: purged by its job's cleanup, or acked after all.
            Err(_) => return None,
        };
        let job = raw.headers.get(HDR_JOB).map(|v| v.as_str().to_owned());
        if job.as_deref() != Some(self.job.as_str()) {
            return None;
        }
        let chunk_no: u64 = raw.headers.get(HDR_CHUNK)?.as_str().parse().ok()?;
        if !self.finish(chunk_no).await {
            return None;
        }
        // It will never be delivered again: take it out of the work queue.
        if let Err(e) = chunks.delete_message(adv.stream_seq).await {
            debug!(job = %self.job, chunk_no, error = %e, "cannot delete failed chunk message");
        }
        self.stats.chunks_failed += 1;
        warn!(job = %self.job, chunk_no, deliveries = adv.deliveries, "chunk reached max deliveries");
        Some(Event::ChunkFailed {
            chunk_no,
            reason: FailReason::MaxDeliveries {
                deliveries: adv.deliveries,
            },
        })
    }
}
