//! Decoded frames, the slots that bound how many are in flight, and the RGB buffers
//! workers convert them into.
//!
//! The pool holds a fixed number of slots, created up front; a slot goes decoder →
//! queue → worker → back to the pool with its frame's picture (which libavcodec's own
//! frame pool then reuses). The number of frames in memory is therefore fixed by
//! design, whatever the stream does. Each worker keeps its own RGB buffers, so no frame
//! allocates once they have grown to the stream's size.

pub mod convert;

pub use convert::{ConvertError, Converter, Picture};
use crossbeam_channel::{Receiver, Sender};
use frameflow_filters::{ImageRef, Mode};
use std::time::{Duration, Instant};

/// Row alignment of the RGB buffers: the same as FFmpeg's frame pools, so libswscale
/// takes the same (SIMD) paths as the ffmpeg CLI and may write whole vectors per row.
pub const ROW_ALIGN: usize = 64;
/// Slack after the last row for converters that write a few bytes past the row end.
const TAIL_PAD: usize = 64;

/// A packed-RGB24 picture with aligned rows.
#[derive(Debug, Default)]
pub struct FrameBuf {
    data: Vec<u8>,
    width: u32,
    height: u32,
    stride: usize,
}

impl FrameBuf {
    /// Sets the geometry, growing the storage only if it is too small.
    pub fn reshape(&mut self, width: u32, height: u32) {
        let stride = (width as usize * 3).div_ceil(ROW_ALIGN) * ROW_ALIGN;
        let need = stride * height as usize + TAIL_PAD;
        if self.data.len() < need {
            self.data.resize(need, 0);
        }
        self.width = width;
        self.height = height;
        self.stride = stride;
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Bytes currently reserved (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// The whole storage, for a converter to write into (`stride * height` + padding).
    pub fn storage_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The picture as a filter input.
    pub fn image(&self) -> ImageRef<'_> {
        let len = if self.height == 0 {
            0
        } else {
            self.stride * (self.height as usize - 1) + self.width as usize * 3
        };
        // `reshape` keeps `stride >= width * 3` and `data.len() >= stride * height`.
        ImageRef::new(
            &self.data[..len],
            self.width,
            self.height,
            self.stride,
            Mode::Rgb,
        )
        .expect("FrameBuf geometry is consistent by construction")
    }
}

/// One decoded frame on its way through the pipeline.
#[derive(Debug)]
pub struct Frame {
    /// Position among the frames the decoder accepted (0-based, no gaps). Outputs are
    /// committed in this order.
    pub seq: u64,
    /// Presentation time in milliseconds of stream time.
    pub pts_ms: i64,
    /// Whether the frame was a keyframe.
    pub key: bool,
    /// When it left the decoder (latency is measured from here to the rename).
    pub decoded_at: Instant,
    /// The decoded picture, still in the decoder's pixel format: the worker that takes
    /// the frame converts it (so the decode thread only decodes).
    pub pic: Picture,
    /// The frame's place in the pipeline, given back to the [`SlotPool`] when done.
    pub slot: Slot,
}

/// The right to hold one decoded frame in memory. Not `Clone`: a slot is either in
/// its [`SlotPool`] or with exactly one frame.
#[derive(Debug)]
pub struct Slot(());

/// A fixed number of [`Slot`]s: decoded frames in flight (queued or in a worker) never
/// exceed it, whatever the stream does. The decoder takes a slot before it hands a
/// frame over; the worker gives it back when the frame's file is written.
#[derive(Clone)]
pub struct SlotPool {
    tx: Sender<Slot>,
    rx: Receiver<Slot>,
}

impl SlotPool {
    /// A pool of `n` (≥ 1) slots.
    pub fn new(n: usize) -> SlotPool {
        let n = n.max(1);
        let (tx, rx) = crossbeam_channel::bounded(n);
        for _ in 0..n {
            // Cannot fail: the channel has room for exactly n.
            let _ = tx.try_send(Slot(()));
        }
        SlotPool { tx, rx }
    }

    /// A free slot, if one is available now.
    pub fn try_get(&self) -> Option<Slot> {
        self.rx.try_recv().ok()
    }

    /// Waits up to `timeout` for a free slot.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Slot> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Returns a slot to the pool.
    pub fn put(&self, slot: Slot) {
        let _ = self.tx.try_send(slot);
    }

    /// Slots currently free.
    pub fn available(&self) -> usize {
        self.rx.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_reuses_storage() {
        let mut b = FrameBuf::default();
        b.reshape(1920, 1080);
        assert_eq!(b.stride(), 5760);
        let cap = b.capacity();
        b.reshape(33, 7);
        assert_eq!(b.stride(), 128);
        assert_eq!(b.capacity(), cap, "shrinking must not reallocate");
        let img = b.image();
        assert_eq!(img.data().len(), 128 * 6 + 99);
    }

    #[test]
    fn pool_is_bounded() {
        let p = SlotPool::new(2);
        let a = p.try_get().unwrap();
        let b = p.try_get().unwrap();
        assert!(p.try_get().is_none());
        assert!(p.get_timeout(Duration::from_millis(1)).is_none());
        p.put(a);
        p.put(b);
        p.put(Slot(())); // an extra slot is dropped, not queued
        assert_eq!(p.available(), 2);
    }
}
