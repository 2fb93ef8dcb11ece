//! The still-image decoders of `watch` and `apply` (`decode_image` and a reused
//! `StillDecoder::decode_into`) on arbitrary bytes: JPEG, PNG, WebP, BMP, PPM.
//!
//! Invariants: nothing panics; a decoded image is within the pixel limit and its buffer
//! matches its size and mode; both entry points agree; and no decode of a small input
//! makes the Rust heap grow by more than the limit allows (`PEAK_BUDGET`). The C
//! decoders' (libjpeg-turbo, libwebp) own mallocs are bounded by libFuzzer's
//! `-rss_limit_mb` / `-malloc_limit_mb`, which scripts/fuzz.sh sets.
#![no_main]

use frameflow_fuzz::filters::ImageBuf;
use frameflow_fuzz::source::still::{StillDecoder, StillError, StillLimits, decode_image};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Small, so that header-declared sizes over it are common in the corpus.
const MAX_PIXELS: u64 = 1 << 20;
/// Live-heap growth allowed during one decode: the image (4 bytes a pixel) twice
/// (decoder buffer and its copy), png's own 64 MiB cap on metadata (ICC, text, palette)
/// and 8 MiB of working buffers.
const PEAK_BUDGET: usize = 2 * 4 * MAX_PIXELS as usize + (64 << 20) + (8 << 20);

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

thread_local! {
    /// Reused across inputs, as a `watch` worker reuses its decoder and buffer.
    static REUSED: RefCell<(StillDecoder, ImageBuf)> = RefCell::new((
        StillDecoder::with_limits(StillLimits { max_pixels: MAX_PIXELS }),
        ImageBuf::default(),
    ));
}

fn check_image(img: &ImageBuf, data: &[u8]) {
    let (w, h) = (u64::from(img.width()), u64::from(img.height()));
    assert!(w * h <= MAX_PIXELS, "{w}x{h} decoded over the limit");
    assert!(
        w > 0 && h > 0,
        "empty {w}x{h} image decoded from {} bytes",
        data.len()
    );
    assert_eq!(
        img.data().len(),
        (w * h) as usize * img.mode().channels(),
        "buffer does not match {w}x{h} {}",
        img.mode()
    );
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.img");
    let limits = StillLimits {
        max_pixels: MAX_PIXELS,
    };

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let fresh = decode_image(path, data, limits);
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        grew <= PEAK_BUDGET,
        "decoding {} bytes grew the heap by {grew} bytes (budget {PEAK_BUDGET}): {:?}",
        data.len(),
        fresh.as_ref().map(|i| (i.width(), i.height(), i.mode()))
    );
    if let Ok(img) = &fresh {
        check_image(img, data);
    }
    if let Err(StillError::TooManyPixels { width, height, .. }) = &fresh {
        assert!(width * height > MAX_PIXELS);
    }

    REUSED.with(|r| {
        let (dec, out) = &mut *r.borrow_mut();
        let reused = dec.decode_into(path, data, out);
        match (&fresh, reused) {
            (Ok(img), Ok(())) => {
                check_image(out, data);
                assert_eq!(img, out, "reused decoder gave other pixels");
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "decode_image and a reused StillDecoder disagree: {:?} vs {:?}",
                a.as_ref().map(|_| ()),
                b
            ),
        }
    });
});
