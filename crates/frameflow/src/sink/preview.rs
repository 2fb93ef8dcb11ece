//! The preview tap: the newest processed and raw frame of a stream as JPEG, for the web
//! preview (`/stream.mjpeg`, `/latest.jpg`).
//!
//! Invariants:
//! - Publishing never blocks and never waits for a viewer: a frame replaces the previous
//!   one in a `watch` slot, so a slow or stuck viewer only gets fewer frames.
//! - Memory is bounded: one frame per feed in the slot, plus the one each viewer is
//!   sending at that moment.
//! - Work is driven by demand: while no viewer has asked recently, raw frames are not
//!   encoded at all and processed frames are published at most [`IDLE_INTERVAL`] apart
//!   (enough for `/latest.jpg`). A viewer that stops reading stops renewing its demand.

use crate::sink::encode::{EncodeOptions, Encoder, ImageFormat, strip_alpha};
use bytes::Bytes;
use frameflow_filters::{ImageBuf, ImageRef, Mode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Without viewers, processed frames are published at most this often.
pub const IDLE_INTERVAL: Duration = Duration::from_millis(200);
/// With viewers, at most this often (40/s): a preview of a 200 fps file run needs no
/// more, and encoding previews must not eat into the frame path's CPU.
pub const VIEWER_INTERVAL: Duration = Duration::from_millis(25);

/// Which picture of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// After the filter chain (what is written to the output directory).
    Processed,
    /// The decoded frame before any filter.
    Raw,
}

/// One published frame.
#[derive(Debug)]
pub struct PreviewFrame {
    pub jpeg: Bytes,
    pub width: u32,
    pub height: u32,
    /// The frame's position in decode order (newer frames have larger numbers).
    pub seq: u64,
    pub pts_ms: i64,
}

pub type Slot = Option<Arc<PreviewFrame>>;

#[derive(Debug)]
struct FeedState {
    tx: watch::Sender<Slot>,
    /// Until when (ms since `epoch`) viewers want every frame.
    wanted_until_ms: AtomicU64,
    /// When (ms since `epoch` + 1; 0 = never) the last frame was published.
    last_publish_ms: AtomicU64,
    viewers: AtomicU64,
    /// Frames put in the slot so far.
    published: AtomicU64,
}

impl FeedState {
    fn new() -> FeedState {
        FeedState {
            tx: watch::Sender::new(None),
            wanted_until_ms: AtomicU64::new(0),
            last_publish_ms: AtomicU64::new(0),
            viewers: AtomicU64::new(0),
            published: AtomicU64::new(0),
        }
    }
}

/// The preview slots of one stream, shared by its workers and the web server.
#[derive(Debug)]
pub struct Preview {
    epoch: Instant,
    processed: FeedState,
    raw: FeedState,
}

impl Default for Preview {
    fn default() -> Self {
        Preview {
            epoch: Instant::now(),
            processed: FeedState::new(),
            raw: FeedState::new(),
        }
    }
}

impl Preview {
    fn feed(&self, feed: Feed) -> &FeedState {
        match feed {
            Feed::Processed => &self.processed,
            Feed::Raw => &self.raw,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a worker should publish this feed's picture of the frame it holds.
    pub fn due(&self, feed: Feed) -> bool {
        let f = self.feed(feed);
        let now = self.now_ms();
        let since_last = match f.last_publish_ms.load(Ordering::Relaxed) {
            0 => u64::MAX,
            last => now.saturating_sub(last - 1),
        };
        let interval = if now < f.wanted_until_ms.load(Ordering::Relaxed) {
            VIEWER_INTERVAL
        } else if feed == Feed::Processed {
            IDLE_INTERVAL
        } else {
            return false;
        };
        since_last >= interval.as_millis() as u64
    }

    /// A viewer wants every frame of `feed` for the next `for_how_long`.
    pub fn want(&self, feed: Feed, for_how_long: Duration) {
        let until = self.now_ms() + u64::try_from(for_how_long.as_millis()).unwrap_or(0);
        self.feed(feed)
            .wanted_until_ms
            .fetch_max(until, Ordering::Relaxed);
    }

    /// Publishes a copy of `jpeg`, a `width`×`height` JPEG file's bytes (an output file
    /// when the output is JPEG, or a preview encoding).
    pub fn publish_jpeg(
        &self,
        feed: Feed,
        jpeg: &[u8],
        width: u32,
        height: u32,
        seq: u64,
        pts_ms: i64,
    ) {
        self.publish(
            feed,
            PreviewFrame {
                jpeg: Bytes::copy_from_slice(jpeg),
                width,
                height,
                seq,
                pts_ms,
            },
        );
    }

    /// Puts a frame in the slot unless a newer one is already there.
    pub fn publish(&self, feed: Feed, frame: PreviewFrame) {
        let f = self.feed(feed);
        f.last_publish_ms
            .store(self.now_ms() + 1, Ordering::Relaxed);
        f.published.fetch_add(1, Ordering::Relaxed);
        let frame = Arc::new(frame);
        f.tx.send_if_modified(|slot| {
            if slot.as_ref().is_some_and(|old| old.seq >= frame.seq) {
                return false;
            }
            *slot = Some(frame);
            true
        });
    }

    /// The newest frame of `feed`, if any.
    pub fn latest(&self, feed: Feed) -> Slot {
        self.feed(feed).tx.borrow().clone()
    }

    /// A receiver that wakes when `feed` gets a new frame.
    pub fn subscribe(&self, feed: Feed) -> watch::Receiver<Slot> {
        self.feed(feed).tx.subscribe()
    }

    /// Counts a viewer of `feed` for as long as the guard lives.
    pub fn viewer(self: &Arc<Self>, feed: Feed) -> ViewerGuard {
        self.feed(feed).viewers.fetch_add(1, Ordering::Relaxed);
        ViewerGuard {
            preview: self.clone(),
            feed,
        }
    }

    /// Frames of `feed` published so far (encoded for the preview, or copied from the
    /// output when it is a JPEG).
    pub fn published(&self, feed: Feed) -> u64 {
        self.feed(feed).published.load(Ordering::Relaxed)
    }

    /// Viewers of `feed` connected now.
    pub fn viewers(&self, feed: Feed) -> u64 {
        self.feed(feed).viewers.load(Ordering::Relaxed)
    }
}

/// See [`Preview::viewer`].
#[derive(Debug)]
pub struct ViewerGuard {
    preview: Arc<Preview>,
    feed: Feed,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.preview
            .feed(self.feed)
            .viewers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker's side of the tap: encodes pictures to JPEG for the preview when the output
/// format is not JPEG already (or for raw frames), with its own reusable encoder.
#[derive(Default)]
pub struct PreviewEncoder {
    jpeg: Option<Encoder>,
    rgb: ImageBuf,
}

/// The quality of preview JPEGs that are not output files.
pub const PREVIEW_QUALITY: u8 = 75;

impl PreviewEncoder {
    /// Encodes `img` and publishes it. A preview failure never fails the frame: it is
    /// logged at debug level and the frame goes on.
    pub fn publish_image(
        &mut self,
        preview: &Preview,
        feed: Feed,
        img: ImageRef<'_>,
        seq: u64,
        pts_ms: i64,
    ) {
        if self.jpeg.is_none() {
            match Encoder::new(EncodeOptions {
                format: ImageFormat::Jpeg,
                quality: PREVIEW_QUALITY,
            }) {
                Ok(e) => self.jpeg = Some(e),
                Err(e) => {
                    tracing::debug!("preview encoder: {e}");
                    return;
                }
            }
        }
        let Some(enc) = self.jpeg.as_mut() else {
            return;
        };
        let img = if img.mode() == Mode::Rgba {
            strip_alpha(img, &mut self.rgb);
            self.rgb.as_ref()
        } else {
            img
        };
        match enc.encode(img) {
            Ok(bytes) => preview.publish_jpeg(feed, bytes, img.width(), img.height(), seq, pts_ms),
            Err(e) => tracing::debug!("preview: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> PreviewFrame {
        PreviewFrame {
            jpeg: Bytes::from_static(b"x"),
            width: 1,
            height: 1,
            seq,
            pts_ms: 0,
        }
    }

    #[test]
    fn newer_frames_win_and_raw_needs_demand() {
        let p = Arc::new(Preview::default());
        assert!(
            p.due(Feed::Processed),
            "first processed frame is always due"
        );
        assert!(!p.due(Feed::Raw), "raw frames only on demand");
        p.publish(Feed::Processed, frame(5));
        p.publish(Feed::Processed, frame(3)); // a slower worker's older frame
        assert_eq!(p.latest(Feed::Processed).map(|f| f.seq), Some(5));
        assert!(!p.due(Feed::Processed), "idle: rate-limited");
        p.want(Feed::Raw, Duration::from_secs(2));
        assert!(p.due(Feed::Raw));
        {
            let _v = p.viewer(Feed::Raw);
            assert_eq!(p.viewers(Feed::Raw), 1);
        }
        assert_eq!(p.viewers(Feed::Raw), 0);
    }

    #[test]
    fn subscribers_see_only_the_newest() {
        let p = Preview::default();
        let mut rx = p.subscribe(Feed::Processed);
        for s in 0..100 {
            p.publish(Feed::Processed, frame(s));
        }
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(rx.borrow_and_update().as_ref().map(|f| f.seq), Some(99));
    }

    #[test]
    fn encoder_publishes_rgba_as_rgb_jpeg() {
        let p = Preview::default();
        let img = ImageBuf::new(8, 6, Mode::Rgba);
        PreviewEncoder::default().publish_image(&p, Feed::Processed, img.as_ref(), 1, 40);
        let f = p.latest(Feed::Processed).expect("published");
        assert_eq!((f.width, f.height, f.pts_ms), (8, 6, 40));
        assert_eq!(&f.jpeg[..2], &[0xFF, 0xD8]);
    }
}
