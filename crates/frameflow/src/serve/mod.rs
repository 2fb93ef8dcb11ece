//! `--serve ADDR`: a small web server beside the pipeline — the preview page, an MJPEG
//! stream and snapshots of every stream, its status as JSON, and Prometheus metrics.
//!
//! It runs on its own threads (a one-thread tokio runtime, plus tokio's blocking pool for
//! resizing previews, at a lower priority than the pipeline) and only ever reads what the
//! pipeline publishes: the counters in [`Stats`] and the newest JPEG in each [`Preview`]
//! slot. Nothing here can make a worker wait; a viewer that reads slowly, or not at all,
//! just gets fewer frames. Viewers share each frame (reference-counted bytes, never a
//! copy per viewer) and each width is scaled once per frame, whatever the number of
//! viewers. A request's headers must arrive within [`HEADER_TIMEOUT`], at most
//! `max_clients` connections are held (more get 503), and with [`BasicAuth`] every
//! endpoint asks for HTTP basic auth.
//!
//! | path | content |
//! |---|---|
//! | `/` | the page: processed and raw previews of every stream, stats that update |
//! | `/stream.mjpeg` | `multipart/x-mixed-replace` JPEGs; `?stream=`, `?raw=1`, `?fps=`, `?width=` |
//! | `/latest.jpg` | the newest frame; `?stream=`, `?raw=1`, `?width=` |
//! | `/api/status` | the `--stats-json` document, with each stream's preview viewers |
//! | `/metrics` | Prometheus text format, labelled by stream |

mod metrics;
mod scale;

use crate::runtime::stats::{Report, Stats};
use crate::setting::Setting;
use crate::sink::preview::{Feed, Preview, PreviewFrame};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// One stream as the web server sees it.
#[derive(Debug, Clone)]
pub struct StreamView {
    pub label: String,
    /// The filter chain, as given.
    pub filter: String,
    pub stats: Arc<Stats>,
    pub preview: Arc<Preview>,
}

/// Everything the server shows.
#[derive(Debug, Default)]
pub struct Registry {
    pub streams: Vec<StreamView>,
    /// A cluster worker's counters (`frameflow worker --serve`).
    pub worker: Option<Arc<crate::runtime::stats::WorkerStats>>,
    /// Scaled previews, shared by every viewer asking for the same width.
    pub scaled: ScaleCache,
}

/// The newest scaled JPEG per (stream, feed, width): a width is scaled once per frame
/// however many viewers ask for it. Bounded: past `SCALE_CACHE_MAX` entries it starts
/// over.
#[derive(Debug, Default)]
pub struct ScaleCache {
    entries: tokio::sync::Mutex<std::collections::HashMap<ScaleKey, (u64, Bytes)>>,
    /// Scalings done so far (shown as `preview_scales` in `/api/status`).
    done: std::sync::atomic::AtomicU64,
}

/// (stream label, raw feed, width).
type ScaleKey = (String, bool, u32);

/// Distinct (stream, feed, width) entries kept before the cache starts over.
const SCALE_CACHE_MAX: usize = 64;

impl Registry {
    fn find(&self, label: Option<&str>) -> Option<&StreamView> {
        match label {
            None | Some("") => self.streams.first(),
            Some(l) => self.streams.iter().find(|s| s.label == l),
        }
    }

    /// The `--stats-json` document of every stream, with the preview's viewers added.
    pub fn status(&self) -> serde_json::Value {
        let report = Report::new(self.streams.iter().map(|s| s.stats.snapshot()).collect());
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            if let Some(w) = &self.worker {
                obj.insert(
                    "worker".into(),
                    serde_json::to_value(w.snapshot()).unwrap_or_default(),
                );
            }
            obj.insert(
                "preview_scales".into(),
                self.scaled
                    .done
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .into(),
            );
        }
        if let Some(list) = v.get_mut("streams").and_then(|s| s.as_array_mut()) {
            for (entry, s) in list.iter_mut().zip(&self.streams) {
                if let Some(obj) = entry.as_object_mut() {
                    obj.insert("filter".into(), s.filter.clone().into());
                    obj.insert(
                        "viewers".into(),
                        serde_json::json!({
                            "processed": s.preview.viewers(Feed::Processed),
                            "raw": s.preview.viewers(Feed::Raw),
                        }),
                    );
                    obj.insert(
                        "preview_frames".into(),
                        serde_json::json!({
                            "processed": s.preview.published(Feed::Processed),
                            "raw": s.preview.published(Feed::Raw),
                        }),
                    );
                    let size = s
                        .preview
                        .latest(Feed::Processed)
                        .map(|f| serde_json::json!([f.width, f.height]));
                    obj.insert("preview_size".into(), size.unwrap_or_default());
                }
            }
        }
        v
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{} '{addr}': expected PORT, HOST:PORT or [IPv6]:PORT", Setting::Serve)]
    BadAddress { addr: String },
    #[error("{} {addr}: cannot listen: {source}", Setting::Serve)]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{}: cannot start the web server thread: {source}", Setting::Serve)]
    Thread { source: std::io::Error },
    #[error("serve auth: expected USER:PASS (or @FILE holding it), got {0}")]
    BadAuth(String),
    #[error("serve auth: cannot read {}: {source}", path.display())]
    AuthFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// How the server guards itself.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTP basic auth on every endpoint.
    pub auth: Option<BasicAuth>,
    /// Connections held at once; more are answered 503 and closed.
    pub max_clients: usize,
    /// A request's headers must arrive within this, or the connection is closed.
    pub header_timeout: Duration,
}

/// Connections held at once unless told otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 256;

/// How long a client may take to send a request's headers (as nginx's
/// `client_header_timeout`); an idle or half-open connection is closed then.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            auth: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// HTTP basic auth credentials. Only the encoded form is kept; comparison takes the same
/// time whatever the bytes.
#[derive(Clone)]
pub struct BasicAuth {
    /// base64(`USER:PASS`), as it follows `Basic ` in an Authorization header.
    token: Vec<u8>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth(***)")
    }
}

impl BasicAuth {
    /// `USER:PASS`, or `@FILE` whose first line is `USER:PASS`.
    pub fn parse(text: &str) -> Result<BasicAuth, ServeError> {
        let value = match text.strip_prefix('@') {
            Some(path) => {
                let path = std::path::PathBuf::from(path);
                let t = std::fs::read_to_string(&path)
                    .map_err(|source| ServeError::AuthFile { path, source })?;
                t.lines().next().unwrap_or("").trim_end().to_string()
            }
            None => text.to_string(),
        };
        match value.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => Ok(BasicAuth {
                token: base64(value.as_bytes()).into_bytes(),
            }),
            // Never echo what may be a password.
            _ => Err(ServeError::BadAuth(if text.starts_with('@') {
                format!("the contents of {text}")
            } else {
                "something else".into()
            })),
        }
    }

    /// Whether an `Authorization` header carries these credentials.
    fn accepts(&self, header: Option<&HeaderValue>) -> bool {
        let Some(v) = header.map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some(split) = v.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, rest) = v.split_at(split);
        let given = rest.trim_ascii();
        scheme.eq_ignore_ascii_case(b"basic") && constant_time_eq(given, &self.token)
    }
}

/// Equal contents, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in b.iter().enumerate() {
        diff |= x ^ a.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses `--serve`: a bare port binds 127.0.0.1; `HOST:PORT` binds where it says.
pub fn parse_addr(text: &str) -> Result<SocketAddr, ServeError> {
    let t = text.trim();
    let bad = || ServeError::BadAddress {
        addr: text.to_string(),
    };
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = t.strip_prefix(':') {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some((host, port)) = t.rsplit_once(':')
        && host == "localhost"
    {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(bad())
}

/// A running server. It lives until the process ends.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
}

impl Server {
    /// The address it listens on (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` now (so a busy port is an error before any frame is read) and serves
/// `registry` from a thread of its own.
pub fn start(
    addr: SocketAddr,
    registry: Arc<Registry>,
    opts: ServeOptions,
) -> Result<Server, ServeError> {
    let bind_err = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    if !local.ip().is_loopback() && opts.auth.is_none() {
        tracing::warn!(
            "{} {local}: reachable from other machines and no auth asked for: anyone who can reach it sees the camera images ({} USER:PASS)",
            Setting::Serve,
            Setting::ServeAuth
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .thread_name("ff-serve")
        .max_blocking_threads(2)
        // The scalers run below the pipeline: viewers get fewer frames, the pipeline never
        // slows for them.
        .on_thread_start(|| {
            if std::thread::current().name() == Some("ff-serve-scale") {
                crate::runtime::lower_this_thread(10);
            }
        })
        .thread_name_fn(|| "ff-serve-scale".into())
        .build()
        .map_err(|source| ServeError::Thread { source })?;
    std::thread::Builder::new()
        .name("ff-serve".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("{} {local}: {e}", Setting::Serve);
                        return;
                    }
                };
                accept_loop(listener, router(registry, opts.auth.clone()), &opts).await;
            });
        })
        .map_err(|source| ServeError::Thread { source })?;
    Ok(Server { addr: local })
}

/// Counts a held connection while it lives.
struct Held(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Accepts connections for ever: each served by hyper with a header-read timeout, at
/// most `max_clients` at once (past that: 503 and close).
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, opts: &ServeOptions) {
    use std::sync::atomic::Ordering;
    let held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut warned_full = false;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, or the like: back off instead of spinning.
                tracing::warn!("{}: accept: {e}", Setting::Serve);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if held.load(Ordering::Relaxed) >= opts.max_clients {
            if !warned_full {
                tracing::warn!(
                    "{}: {} connections held (the limit): answering 503 to more",
                    Setting::Serve,
                    opts.max_clients
                );
                warned_full = true;
            }
            tokio::spawn(refuse(stream));
            continue;
        }
        warned_full = false;
        held.fetch_add(1, Ordering::Relaxed);
        let guard = Held(held.clone());
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let timeout = opts.header_timeout;
        tokio::spawn(async move {
            let _guard = guard;
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
        // Let the connections' tasks run (and ended ones be counted out) between accepts.
        tokio::task::yield_now().await;
    }
}

/// Answers 503 to a connection over the limit, without reading its request.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt as _;
    let body = "too many connections\n";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

type AppState = Arc<Registry>;

fn router(registry: AppState, auth: Option<BasicAuth>) -> Router {
    let app = Router::new()
        .route("/", get(page))
        .route("/stream.mjpeg", get(mjpeg))
        .route("/latest.jpg", get(latest))
        .route("/api/status", get(status))
        .route("/metrics", get(prometheus))
        .with_state(registry);
    match auth {
        Some(auth) => app.layer(axum::middleware::from_fn_with_state(
            Arc::new(auth),
            require_auth,
        )),
        None => app,
    }
}

/// Every endpoint, with `--serve-auth`: the credentials, or 401 asking for them.
async fn require_auth(
    State(auth): State<Arc<BasicAuth>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if auth.accepts(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"frameflow\"")],
        "authentication required\n",
    )
        .into_response()
}

const PAGE: &str = include_str!("page.html");

async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

async fn status(State(reg): State<AppState>) -> Response {
    let body = serde_json::to_vec_pretty(&reg.status()).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn prometheus(State(reg): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&reg),
    )
        .into_response()
}

/// The lowest `?fps=` a viewer may ask for (one frame a minute).
const MIN_VIEWER_FPS: f64 = 1.0 / 60.0;

/// `?stream=&raw=1&fps=&width=`.
#[derive(Debug, serde::Deserialize)]
struct PreviewQuery {
    stream: Option<String>,
    raw: Option<String>,
    fps: Option<f64>,
    width: Option<u32>,
}

/// A request that cannot be served: status and a one-line reason.
struct Reject(StatusCode, String);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

fn bad_request(msg: &str) -> Reject {
    Reject(StatusCode::BAD_REQUEST, msg.to_string())
}

impl PreviewQuery {
    fn feed(&self) -> Result<Feed, Reject> {
        match self.raw.as_deref() {
            None | Some("0" | "false" | "no") => Ok(Feed::Processed),
            Some("" | "1" | "true" | "yes") => Ok(Feed::Raw),
            Some(other) => Err(bad_request(&format!("raw: expected 1 or 0, got '{other}'"))),
        }
    }

    fn width(&self) -> Result<Option<u32>, Reject> {
        match self.width {
            Some(0) => Err(bad_request("width: must be > 0")),
            Some(w) if w > 16384 => Err(bad_request("width: must be <= 16384")),
            w => Ok(w),
        }
    }

    fn interval(&self) -> Result<Option<Duration>, Reject> {
        match self.fps {
            None => Ok(None),
            // At least one frame a minute: 1/f of a tiny f does not fit a Duration.
            Some(f) if (MIN_VIEWER_FPS..=1000.0).contains(&f) => {
                Ok(Some(Duration::from_secs_f64(1.0 / f)))
            }
            Some(f) => Err(bad_request(&format!(
                "fps: must be between {MIN_VIEWER_FPS} and 1000, got {f}"
            ))),
        }
    }

    fn stream<'a>(&self, reg: &'a Registry) -> Result<&'a StreamView, Reject> {
        reg.find(self.stream.as_deref()).ok_or_else(|| {
            let known: Vec<&str> = reg.streams.iter().map(|s| s.label.as_str()).collect();
            Reject(
                StatusCode::NOT_FOUND,
                format!(
                    "no stream '{}' (streams: {})",
                    self.stream.as_deref().unwrap_or(""),
                    known.join(", ")
                ),
            )
        })
    }
}

/// How long a viewer's request keeps the pipeline publishing every frame.
const DEMAND: Duration = Duration::from_secs(2);

async fn latest(State(reg): State<AppState>, Query(q): Query<PreviewQuery>) -> Response {
    let (view, feed, width) = match (q.stream(&reg), q.feed(), q.width()) {
        (Ok(v), Ok(f), Ok(w)) => (v, f, w),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r.into_response(),
    };
    view.preview.want(feed, DEMAND);
    let mut frame = view.preview.latest(feed);
    if frame.is_none() {
        // Raw frames are encoded on demand: wait briefly for the next one.
        let mut rx = view.preview.subscribe(feed);
        let _ = tokio::time::timeout(Duration::from_secs(3), rx.changed()).await;
        frame = view.preview.latest(feed);
    }
    let Some(frame) = frame else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "no frame yet\n",
        )
            .into_response();
    };
    let jpeg = match sized(&reg, &view.label, feed, &frame, width).await {
        Ok(j) => j,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let mut resp = (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&frame.seq.to_string()) {
        resp.headers_mut().insert("x-frameflow-seq", v);
    }
    resp
}

/// The frame's JPEG, scaled down to `width` if it is wider (off the async thread, once
/// per frame and width: every viewer of that width shares the result).
async fn sized(
    reg: &Registry,
    label: &str,
    feed: Feed,
    frame: &Arc<PreviewFrame>,
    width: Option<u32>,
) -> Result<Bytes, String> {
    let w = match width {
        Some(w) if w < frame.width => w,
        _ => return Ok(frame.jpeg.clone()),
    };
    let key = (label.to_string(), feed == Feed::Raw, w);
    // Held while scaling: a second viewer of this width waits and takes the result.
    let mut cache = reg.scaled.entries.lock().await;
    if let Some((seq, jpeg)) = cache.get(&key)
        && *seq == frame.seq
    {
        return Ok(jpeg.clone());
    }
    let f = frame.clone();
    let jpeg = tokio::task::spawn_blocking(move || scale::to_width(&f.jpeg, w))
        .await
        .map_err(|e| format!("preview scaler: {e}"))??;
    reg.scaled
        .done
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if cache.len() >= SCALE_CACHE_MAX {
        cache.clear();
    }
    cache.insert(key, (frame.seq, jpeg.clone()));
    Ok(jpeg)
}

const BOUNDARY: &str = "frameflow-frame";

async fn mjpeg(State(reg): State<AppState>, Query(q): Query<PreviewQuery>) -> Response {
    let (view, feed, width, interval) = match (q.stream(&reg), q.feed(), q.width(), q.interval()) {
        (Ok(v), Ok(f), Ok(w), Ok(i)) => (v, f, w, i),
        (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => {
            return r.into_response();
        }
    };
    let preview = view.preview.clone();
    let mut rx = preview.subscribe(feed);
    rx.mark_changed(); // the newest frame goes out at once
    let viewer = Viewer {
        guard: preview.viewer(feed),
        registry: reg.clone(),
        label: view.label.clone(),
        preview,
        rx,
        feed,
        width,
        interval,
        last_seq: None,
        last_sent: None,
    };
    // Each part goes out as three chunks: its head, the frame's own (shared) bytes and the
    // closing CRLF, so a viewer never holds a copy of a frame.
    let body = futures_util::stream::unfold(viewer, |mut v| async move {
        let part = v.next_part().await?;
        Some((part, v))
    })
    .flat_map(|chunks| {
        futures_util::stream::iter(
            chunks
                .into_iter()
                .map(Ok::<Bytes, std::convert::Infallible>),
        )
    });
    (
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// One `/stream.mjpeg` client.
struct Viewer {
    #[allow(dead_code)] // counts the viewer while it lives
    guard: crate::sink::preview::ViewerGuard,
    registry: AppState,
    label: String,
    preview: Arc<Preview>,
    rx: tokio::sync::watch::Receiver<crate::sink::preview::Slot>,
    feed: Feed,
    width: Option<u32>,
    interval: Option<Duration>,
    last_seq: Option<u64>,
    last_sent: Option<tokio::time::Instant>,
}

impl Viewer {
    /// Waits for the next frame this viewer should get and returns it as one multipart
    /// part (head, frame, CRLF); `None` ends the response (the stream is gone). Only
    /// called when the client has taken the previous part, so a stuck client stops
    /// renewing its demand.
    async fn next_part(&mut self) -> Option<[Bytes; 3]> {
        if let (Some(i), Some(t)) = (self.interval, self.last_sent) {
            tokio::time::sleep_until(t + i).await;
        }
        loop {
            self.preview.want(self.feed, DEMAND);
            match tokio::time::timeout(Duration::from_secs(1), self.rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => continue, // renew the demand
            }
            let Some(frame) = self.rx.borrow_and_update().clone() else {
                continue;
            };
            if self.last_seq == Some(frame.seq) {
                continue;
            }
            let jpeg = match sized(&self.registry, &self.label, self.feed, &frame, self.width).await
            {
                Ok(j) => j,
                Err(e) => {
                    tracing::debug!("preview: {e}");
                    continue;
                }
            };
            self.last_seq = Some(frame.seq);
            self.last_sent = Some(tokio::time::Instant::now());
            let head = format!(
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Frameflow-Seq: {}\r\n\r\n",
                jpeg.len(),
                frame.seq
            );
            return Some([Bytes::from(head), jpeg, Bytes::from_static(b"\r\n")]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = |s: &str| {
            parse_addr(s)
                .map(|a| a.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(a("8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(a(":9000").unwrap(), "127.0.0.1:9000");
        assert_eq!(a("0.0.0.0:80").unwrap(), "0.0.0.0:80");
        assert_eq!(a("[::1]:81").unwrap(), "[::1]:81");
        assert_eq!(a("localhost:82").unwrap(), "127.0.0.1:82");
        assert!(a("web:80").unwrap_err().contains("expected PORT"));
        assert!(a("70000").is_err());
    }

    #[test]
    fn viewer_rates_that_fit_no_duration_are_refused_not_panicked_on() {
        let q = |fps: f64| PreviewQuery {
            stream: None,
            raw: None,
            fps: Some(fps),
            width: None,
        };
        for bad in [1e-300, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, 5e-324] {
            let r = q(bad).interval();
            assert!(
                matches!(r, Err(Reject(StatusCode::BAD_REQUEST, _))),
                "{bad}"
            );
        }
        assert_eq!(
            q(5.0).interval().ok().flatten(),
            Some(Duration::from_millis(200))
        );
    }
}
