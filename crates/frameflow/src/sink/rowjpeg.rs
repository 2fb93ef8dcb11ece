//! A JPEG encoder fed one packed-RGB24 row at a time, byte-identical to what
//! [`Encoder`](super::encode::Encoder) writes through TurboJPEG (4:2:0, quality Q, RGB).
//!
//! Why: TurboJPEG converts a whole RGB frame to YCbCr after it has been written, reading
//! the frame back from memory. Here the caller hands over each row as it produces it, the
//! row is converted and downsampled while it is still in L1, and libjpeg-turbo gets the
//! planes in raw-data mode (`jpeg_write_raw_data`, one iMCU row of 16 luma rows at a
//! time) through the small C shim `csrc/rowjpeg.c`.
//!
//! Exactness: the conversion reproduces libjpeg-turbo's compression path from RGB input
//! bit for bit: jccolor.c's fixed-point RGB→YCbCr, jcsample.c's `h2v2_downsample` (the
//! 1,2,1,2… rounding bias), and the edge padding of jcsample.c and jcprepct.c (the last
//! column repeated out to whole blocks before downsampling, the last row repeated when
//! the height is odd, and the last iMCU row filled with copies of each component's last
//! row). The tests compare the files with TurboJPEG's.
//!
//! Speed: the per-pixel loops are plain safe integer Rust that LLVM vectorises (the
//! conversion in 16-bit lanes), compiled for AVX-512 or AVX2 when the CPU has it
//! (`Level`); with AVX-512 VBMI and VNNI (Ice Lake, Zen 4 and later) the RGB→YCbCr step
//! is hand-written with intrinsics instead, twice as fast again (about 0.2 ms for a
//! 1080p frame including the downsampling, against 0.4 ms). Integer arithmetic makes
//! every level give the same bytes; the tests compare them with each other and with a
//! per-pixel reference.
//!
//! One encoder per worker, reused for every frame: once its buffers have grown it
//! allocates nothing per frame on the Rust side (libjpeg allocates its per-image state
//! from its own pools, as it does under TurboJPEG).

use super::encode::EncodeError;
use std::ffi::{CStr, c_char, c_int};
use std::ptr::NonNull;

/// libjpeg's limit on either dimension (`JPEG_MAX_DIMENSION`).
const MAX_DIMENSION: u32 = 65500;

/// Luma rows per iMCU row (4:2:0: 2 × 8); chroma rows are half as many.
const IMCU_ROWS: usize = 16;

mod ffi {
    use std::ffi::{c_char, c_int};

    /// `struct rowjpeg` of csrc/rowjpeg.c (opaque).
    #[repr(C)]
    pub struct RowJpegC {
        _private: [u8; 0],
    }

    unsafe extern "C" {
        pub fn rowjpeg_new(msg: *mut c_char, msg_len: usize) -> *mut RowJpegC;
        pub fn rowjpeg_free(rj: *mut RowJpegC);
        pub fn rowjpeg_message(rj: *const RowJpegC) -> *const c_char;
        pub fn rowjpeg_begin(
            rj: *mut RowJpegC,
            width: u32,
            height: u32,
            quality: c_int,
            buf: *mut u8,
            buf_len: usize,
        ) -> c_int;
        #[allow(clippy::too_many_arguments)]
        pub fn rowjpeg_write(
            rj: *mut RowJpegC,
            y: *const u8,
            y_width: usize,
            y_stride: usize,
            cb: *const u8,
            cr: *const u8,
            c_width: usize,
            c_stride: usize,
        ) -> c_int;
        pub fn rowjpeg_finish(rj: *mut RowJpegC, written: *mut usize) -> c_int;
        pub fn rowjpeg_abort(rj: *mut RowJpegC);
    }
}

/// Where the encoder is in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No frame: `begin` next.
    Idle,
    /// Between `begin` and `finish`.
    Rows,
}

/// The sizes of the frame being encoded.
#[derive(Debug, Clone, Copy, Default)]
struct Geometry {
    width: usize,
    height: usize,
    /// Luma samples per row libjpeg reads: whole 8-sample blocks.
    y_cols: usize,
    /// Chroma samples per row libjpeg reads: whole 8-sample blocks of the half-width plane.
    c_cols: usize,
}

/// A row-fed 4:2:0 JPEG encoder. One per worker; reuse it for every frame.
pub struct RowJpeg {
    handle: NonNull<ffi::RowJpegC>,
    quality: u8,
    level: Level,
    state: State,
    geo: Geometry,
    /// Rows pushed in this frame.
    next_row: usize,
    /// One iMCU row of luma: 16 rows of `y_cols`.
    y_plane: Vec<u8>,
    /// One iMCU row of each chroma component: 8 rows of `c_cols`.
    cb_plane: Vec<u8>,
    cr_plane: Vec<u8>,
    /// The current row's full-resolution chroma, padded to `2 * c_cols`.
    cb_full: Vec<u8>,
    cr_full: Vec<u8>,
    /// The even row's horizontal pair sums, waiting for the odd row below it.
    cb_sum: Vec<u16>,
    cr_sum: Vec<u16>,
    /// The JPEG: TurboJPEG's worst-case size, kept between frames.
    out: Vec<u8>,
}

// SAFETY: the C handle is owned by this value alone (created in `new`, freed in `Drop`)
// and only used through `&mut self`; libjpeg keeps no thread-affine state in it.
unsafe impl Send for RowJpeg {}

impl Drop for RowJpeg {
    fn drop(&mut self) {
        // SAFETY: the handle came from `rowjpeg_new` and is freed exactly once, here.
        unsafe { ffi::rowjpeg_free(self.handle.as_ptr()) };
    }
}

impl RowJpeg {
    /// An encoder writing at `quality` (clamped to 1..=100, as `Encoder` does).
    pub fn new(quality: u8) -> Result<RowJpeg, EncodeError> {
        let mut msg: [c_char; 200] = [0; 200];
        // SAFETY: `msg` is writable for its length; the shim NUL-terminates what it writes.
        let raw = unsafe { ffi::rowjpeg_new(msg.as_mut_ptr(), msg.len()) };
        let Some(handle) = NonNull::new(raw) else {
            // SAFETY: `msg` is NUL-terminated: zero-filled, and snprintf terminates.
            let reason = unsafe { CStr::from_ptr(msg.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            return Err(rows_error("new", reason));
        };
        Ok(RowJpeg {
            handle,
            quality: quality.clamp(1, 100),
            level: Level::best(),
            state: State::Idle,
            geo: Geometry::default(),
            next_row: 0,
            y_plane: Vec::new(),
            cb_plane: Vec::new(),
            cr_plane: Vec::new(),
            cb_full: Vec::new(),
            cr_full: Vec::new(),
            cb_sum: Vec::new(),
            cr_sum: Vec::new(),
            out: Vec::new(),
        })
    }

    /// Starts a `width` × `height` frame (abandoning any frame in progress). Then push
    /// exactly `height` rows and call [`finish`](Self::finish).
    pub fn begin(&mut self, width: u32, height: u32) -> Result<(), EncodeError> {
        if self.state != State::Idle {
            self.abort();
        }
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(rows_error(
                "begin",
                format!("a {width}x{height} image (each side must be 1..={MAX_DIMENSION})"),
            ));
        }
        let (w, h) = (width as usize, height as usize);
        let geo = Geometry {
            width: w,
            height: h,
            y_cols: w.div_ceil(8) * 8,
            c_cols: w.div_ceil(16) * 8,
        };
        grow(&mut self.y_plane, IMCU_ROWS * geo.y_cols, 0);
        grow(&mut self.cb_plane, IMCU_ROWS / 2 * geo.c_cols, 0);
        grow(&mut self.cr_plane, IMCU_ROWS / 2 * geo.c_cols, 0);
        grow(&mut self.cb_full, 2 * geo.c_cols, 0);
        grow(&mut self.cr_full, 2 * geo.c_cols, 0);
        grow(&mut self.cb_sum, geo.c_cols, 0);
        grow(&mut self.cr_sum, geo.c_cols, 0);
        // tj3JPEGBufSize for 4:2:0: whole 16x16 MCUs, 3 bytes a pixel, plus 2048. With both
        // sides at most 65500 this is below 2^34: no overflow on 64-bit targets.
        let need = w.div_ceil(16) * 16 * h.div_ceil(16) * 16 * 3 + 2048;
        if self.out.len() < need {
            // Zeroed by the allocator (fresh pages, faulted in only where written): the
            // worst-case bound is several times the usual JPEG.
            self.out = vec![0; need];
        }
        // SAFETY: the handle is live; `out` stays allocated and unmoved until the frame
        // ends (it is only replaced here, before the shim gets its new address), and the
        // shim writes at most `out.len()` bytes into it.
        let rc = unsafe {
            ffi::rowjpeg_begin(
                self.handle.as_ptr(),
                width,
                height,
                c_int::from(self.quality),
                self.out.as_mut_ptr(),
                self.out.len(),
            )
        };
        if rc != 0 {
            return Err(self.c_error("begin"));
        }
        self.geo = geo;
        self.next_row = 0;
        self.state = State::Rows;
        Ok(())
    }

    /// Adds the next row, top to bottom: `width * 3` bytes of packed RGB. An error
    /// abandons the frame.
    pub fn push_row(&mut self, rgb: &[u8]) -> Result<(), EncodeError> {
        if self.state != State::Rows {
            return Err(rows_error("push_row", "no frame begun".to_string()));
        }
        let geo = self.geo;
        if self.next_row >= geo.height {
            self.abort();
            return Err(rows_error(
                "push_row",
                format!("a row past the image's {} rows", geo.height),
            ));
        }
        if rgb.len() != geo.width * 3 {
            self.abort();
            return Err(rows_error(
                "push_row",
                format!(
                    "a row of {} bytes, expected {} ({} RGB pixels)",
                    rgb.len(),
                    geo.width * 3,
                    geo.width
                ),
            ));
        }
        let row = self.next_row;
        self.convert(row, rgb);
        self.next_row += 1;
        if self.next_row == geo.height {
            // The bottom: an odd height repeats the last row within its row pair
            // (jcprepct.c's colour-buffer expand_bottom_edge), then each component's last
            // row fills out the iMCU row (expand_bottom_edge on the downsampled output).
            if row.is_multiple_of(2) {
                self.convert(row + 1, rgb);
            }
            let y_rows = (row | 1) % IMCU_ROWS + 1;
            pad_rows(&mut self.y_plane, geo.y_cols, y_rows, IMCU_ROWS);
            pad_rows(&mut self.cb_plane, geo.c_cols, y_rows / 2, IMCU_ROWS / 2);
            pad_rows(&mut self.cr_plane, geo.c_cols, y_rows / 2, IMCU_ROWS / 2);
            self.write_imcu_row()?;
        } else if self.next_row.is_multiple_of(IMCU_ROWS) {
            self.write_imcu_row()?;
        }
        Ok(())
    }

    /// Ends the frame and returns the JPEG file's bytes (valid until the next `begin`).
    pub fn finish(&mut self) -> Result<&[u8], EncodeError> {
        if self.state != State::Rows {
            return Err(rows_error("finish", "no frame begun".to_string()));
        }
        if self.next_row != self.geo.height {
            let (got, want) = (self.next_row, self.geo.height);
            self.abort();
            return Err(rows_error(
                "finish",
                format!("only {got} of the image's {want} rows were pushed"),
            ));
        }
        self.state = State::Idle;
        let mut written = 0usize;
        // SAFETY: the handle is live and `written` is a valid place for the length.
        let rc = unsafe { ffi::rowjpeg_finish(self.handle.as_ptr(), &mut written) };
        if rc != 0 {
            return Err(self.c_error("finish"));
        }
        self.out.get(..written).ok_or_else(|| {
            rows_error(
                "finish",
                format!(
                    "libjpeg reports {written} bytes in a {}-byte buffer",
                    self.out.len()
                ),
            )
        })
    }

    /// Converts input row `row` (`row` = height for the repeated last row of an odd
    /// height) into the iMCU buffers: luma at once, chroma when the row pair is complete.
    fn convert(&mut self, row: usize, rgb: &[u8]) {
        let geo = self.geo;
        let slot = row % IMCU_ROWS;
        let c_slot = slot / 2;
        let out = RowOut {
            width: geo.width,
            odd: row % 2 == 1,
            y: &mut self.y_plane[slot * geo.y_cols..][..geo.y_cols],
            cb_full: &mut self.cb_full[..2 * geo.c_cols],
            cr_full: &mut self.cr_full[..2 * geo.c_cols],
            cb_sum: &mut self.cb_sum[..geo.c_cols],
            cr_sum: &mut self.cr_sum[..geo.c_cols],
            cb_row: &mut self.cb_plane[c_slot * geo.c_cols..][..geo.c_cols],
            cr_row: &mut self.cr_plane[c_slot * geo.c_cols..][..geo.c_cols],
        };
        convert_row(self.level, rgb, out);
    }

    /// Hands the iMCU row in the buffers to libjpeg.
    fn write_imcu_row(&mut self) -> Result<(), EncodeError> {
        let geo = self.geo;
        if self.y_plane.len() < IMCU_ROWS * geo.y_cols
            || self.cb_plane.len() < IMCU_ROWS / 2 * geo.c_cols
            || self.cr_plane.len() < IMCU_ROWS / 2 * geo.c_cols
        {
            // `begin` grew them: cannot happen, but the C side must never read past them.
            self.abort();
            return Err(rows_error("push_row", "iMCU buffers too small".to_string()));
        }
        // SAFETY: the handle is live; the shim reads 16 rows of `y_cols` bytes from
        // `y_plane` and 8 rows of `c_cols` bytes from each chroma plane, all in bounds
        // (checked just above), and keeps no pointer to them after returning.
        let rc = unsafe {
            ffi::rowjpeg_write(
                self.handle.as_ptr(),
                self.y_plane.as_ptr(),
                geo.y_cols,
                geo.y_cols,
                self.cb_plane.as_ptr(),
                self.cr_plane.as_ptr(),
                geo.c_cols,
                geo.c_cols,
            )
        };
        if rc != 0 {
            self.state = State::Idle;
            return Err(self.c_error("push_row"));
        }
        Ok(())
    }

    /// Abandons the frame in progress.
    fn abort(&mut self) {
        // SAFETY: the handle is live; aborting is valid in any state.
        unsafe { ffi::rowjpeg_abort(self.handle.as_ptr()) };
        self.state = State::Idle;
    }

    /// The shim's message for a failed call (the shim has already reset itself).
    fn c_error(&mut self, step: &'static str) -> EncodeError {
        self.state = State::Idle;
        // SAFETY: the handle is live; the message is a NUL-terminated buffer inside it,
        // copied out before the handle is used again.
        let reason = unsafe { CStr::from_ptr(ffi::rowjpeg_message(self.handle.as_ptr())) }
            .to_string_lossy()
            .into_owned();
        rows_error(step, reason)
    }
}

fn rows_error(step: &'static str, reason: String) -> EncodeError {
    EncodeError::JpegRows { step, reason }
}

/// Grows `v` to at least `len` elements (never shrinks it: no reallocation once grown).
fn grow<T: Clone>(v: &mut Vec<T>, len: usize, fill: T) {
    if v.len() < len {
        v.resize(len, fill);
    }
}

/// Copies row `filled - 1` of a plane of `cols`-wide rows into rows `filled..rows`.
fn pad_rows(plane: &mut [u8], cols: usize, filled: usize, rows: usize) {
    let (done, rest) = plane[..rows * cols].split_at_mut(filled * cols);
    let last = &done[(filled - 1) * cols..];
    for row in rest.chunks_exact_mut(cols) {
        row.copy_from_slice(last);
    }
}

/// Where one input row's conversion goes (slices of the encoder's buffers).
struct RowOut<'a> {
    /// Pixels in the row.
    width: usize,
    /// Whether this is the second (odd) row of a row pair.
    odd: bool,
    /// The luma row, `y_cols` long.
    y: &'a mut [u8],
    /// Full-resolution chroma of this row, `2 * c_cols` long (scratch).
    cb_full: &'a mut [u8],
    cr_full: &'a mut [u8],
    /// The even row's pair sums, `c_cols` long: written by it, read by the odd row.
    cb_sum: &'a mut [u16],
    cr_sum: &'a mut [u16],
    /// The downsampled chroma rows, `c_cols` long: written by the odd row.
    cb_row: &'a mut [u8],
    cr_row: &'a mut [u8],
}

/// Converts one row at `level`: RGB→YCbCr, right-edge padding, and the half of the 2×2
/// downsampling that this row of its pair does.
fn convert_row(level: Level, rgb: &[u8], out: RowOut<'_>) {
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512Vbmi if x86::has_avx512_vbmi() => {
            // SAFETY: the CPU has every feature `convert_avx512_vbmi` enables (checked).
            unsafe { x86::convert_avx512_vbmi(rgb, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 | Level::Avx512Vbmi if x86::has_avx512() => {
            // SAFETY: the CPU has every feature `convert_avx512` enables (checked).
            unsafe { x86::convert_avx512(rgb, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 | Level::Avx512 | Level::Avx512Vbmi if x86::has_avx2() => {
            // SAFETY: the CPU has AVX2 (checked).
            unsafe { x86::convert_avx2(rgb, out) }
        }
        _ => convert_with(
            rgb,
            out,
            #[expect(
                clippy::redundant_closure,
                reason = "a closure is inlined, see convert_with"
            )]
            #[inline(always)]
            |rgb, y, cb, cr| rgb_to_ycc(rgb, y, cb, cr),
        ),
    }
}

/// [`convert_row`]'s body, with `ycc` converting the row's pixels. Inlined into each
/// level's compiled copy, `ycc` too: pass an `#[inline(always)]` closure (a function item
/// would be called through an `FnOnce` shim compiled without the level's features).
#[inline(always)]
fn convert_with(
    rgb: &[u8],
    out: RowOut<'_>,
    ycc: impl FnOnce(&[u8], &mut [u8], &mut [u8], &mut [u8]),
) {
    let w = out.width;
    ycc(
        &rgb[..w * 3],
        &mut out.y[..w],
        &mut out.cb_full[..w],
        &mut out.cr_full[..w],
    );
    pad_right(out.y, w);
    pad_right(out.cb_full, w);
    pad_right(out.cr_full, w);
    if out.odd {
        downsample(out.cb_full, out.cb_sum, out.cb_row);
        downsample(out.cr_full, out.cr_sum, out.cr_row);
    } else {
        pair_sums(out.cb_full, out.cb_sum);
        pair_sums(out.cr_full, out.cr_sum);
    }
}

// jccolor.c / jccolext.c's fixed-point RGB→YCbCr (SCALEBITS 16), per pixel:
//   Y  = ( FIX(0.29900)R + FIX(0.58700)G + FIX(0.11400)B + ONE_HALF) >> 16
//   Cb = (-FIX(0.16874)R - FIX(0.33126)G + FIX(0.5)B + CBCR_OFFSET + ONE_HALF - 1) >> 16
//   Cr = ( FIX(0.5)R - FIX(0.41869)G - FIX(0.08131)B + CBCR_OFFSET + ONE_HALF - 1) >> 16
// with FIX(x) = round(x * 65536), ONE_HALF = 1 << 15, CBCR_OFFSET = 128 << 16.
const FIX_0_29900: i32 = 19595;
const FIX_0_58700: i32 = 38470;
const FIX_0_11400: i32 = 7471;
const FIX_0_16874: i32 = 11059;
const FIX_0_33126: i32 = 21709;
const FIX_0_50000: i32 = 32768;
const FIX_0_41869: i32 = 27439;
const FIX_0_08131: i32 = 5329;
const ONE_HALF: i32 = 1 << 15;
const CBCR_OFFSET: i32 = 128 << 16;

/// Cb's sum with its negative terms taken of 255 − R and 255 − G, which leaves this
/// constant: `S = FIX(0.16874)(255 − R) + FIX(0.33126)(255 − G) + FIX(0.5)B + CB_ADD`.
const CB_ADD: i32 = CBCR_OFFSET + ONE_HALF - 1 - 255 * (FIX_0_16874 + FIX_0_33126);
/// Likewise for Cr: `S = FIX(0.5)R + FIX(0.41869)(255 − G) + FIX(0.08131)(255 − B) + CR_ADD`.
const CR_ADD: i32 = CBCR_OFFSET + ONE_HALF - 1 - 255 * (FIX_0_41869 + FIX_0_08131);

/// The high byte of a constant below 2^16, for [`rgb_to_ycc`]'s split.
const fn hi(c: i32) -> u16 {
    (c >> 8) as u16
}

/// The low byte.
const fn lo(c: i32) -> u16 {
    (c & 0xff) as u16
}

/// Whether these constants (each in 0..2^16) give split sums that fit in 16 bits with
/// every channel at 255 (their maximum: all terms are non-negative): `h`, `l`, and `h`
/// plus the carry `l >> 8` ≤ 255.
const fn fits(coefs: [i32; 3], add: i32) -> bool {
    let mut h = hi(add) as u32 + 255;
    let mut l = lo(add) as u32;
    let mut i = 0;
    while i < 3 {
        if coefs[i] < 0 || coefs[i] >= 1 << 16 {
            return false;
        }
        h += hi(coefs[i]) as u32 * 255;
        l += lo(coefs[i]) as u32 * 255;
        i += 1;
    }
    h < 1 << 16 && l < 1 << 16
}

const _: () = {
    let y = [FIX_0_29900, FIX_0_58700, FIX_0_11400];
    let cb = [FIX_0_16874, FIX_0_33126, FIX_0_50000];
    let cr = [FIX_0_50000, FIX_0_41869, FIX_0_08131];
    assert!(fits(y, ONE_HALF) && fits(cb, CB_ADD) && fits(cr, CR_ADD));
    assert!(CB_ADD >= 0 && CB_ADD < 1 << 16 && CR_ADD >= 0 && CR_ADD < 1 << 16);
};

/// One row of packed RGB to Y, Cb and Cr at full resolution (`y.len()` pixels), exactly
/// as jccolext.c, in 16-bit lanes (twice as many per vector as 32-bit ones).
///
/// Each sum `S` above is below 2^24 and, written with only non-negative terms (see
/// [`CB_ADD`]), splits as `S = 256·h + l` where `h` takes the high bytes of the constants
/// and `l` the low ones; then `S >> 16 = (h + (l >> 8)) >> 8` exactly, and `h`, `l` and
/// `h + (l >> 8)` all fit in 16 bits (asserted at compile time above).
#[inline(always)]
fn rgb_to_ycc(rgb: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
    let n = y.len();
    let (rgb, cb, cr) = (&rgb[..n * 3], &mut cb[..n], &mut cr[..n]);
    for (((p, y), cb), cr) in rgb.chunks_exact(3).zip(y).zip(cb).zip(cr) {
        let (r, g, b) = (u16::from(p[0]), u16::from(p[1]), u16::from(p[2]));
        let (r_, g_, b_) = (255 - r, 255 - g, 255 - b);
        let h = hi(FIX_0_29900) * r + hi(FIX_0_58700) * g + hi(FIX_0_11400) * b + hi(ONE_HALF);
        let l = lo(FIX_0_29900) * r + lo(FIX_0_58700) * g + lo(FIX_0_11400) * b + lo(ONE_HALF);
        *y = ((h + (l >> 8)) >> 8) as u8;
        let h = hi(FIX_0_16874) * r_ + hi(FIX_0_33126) * g_ + hi(FIX_0_50000) * b + hi(CB_ADD);
        let l = lo(FIX_0_16874) * r_ + lo(FIX_0_33126) * g_ + lo(FIX_0_50000) * b + lo(CB_ADD);
        *cb = ((h + (l >> 8)) >> 8) as u8;
        let h = hi(FIX_0_50000) * r + hi(FIX_0_41869) * g_ + hi(FIX_0_08131) * b_ + hi(CR_ADD);
        let l = lo(FIX_0_50000) * r + lo(FIX_0_41869) * g_ + lo(FIX_0_08131) * b_ + lo(CR_ADD);
        *cr = ((h + (l >> 8)) >> 8) as u8;
    }
}

/// Repeats sample `filled - 1` to the end of the row (jcsample.c's expand_right_edge).
#[inline(always)]
fn pad_right(row: &mut [u8], filled: usize) {
    let last = row[filled - 1];
    row[filled..].fill(last);
}

/// Horizontal pair sums of an even row (`sums.len()` pairs of `full`).
#[inline(always)]
fn pair_sums(full: &[u8], sums: &mut [u16]) {
    for (s, p) in sums.iter_mut().zip(full.chunks_exact(2)) {
        *s = u16::from(p[0]) + u16::from(p[1]);
    }
}

/// jcsample.c's h2v2_downsample of the even row (as its pair `sums`) and the odd row
/// `full`: `(a + b + c + d + bias) >> 2`, the bias 1, 2, 1, 2… along the row.
#[inline(always)]
fn downsample(full: &[u8], sums: &[u16], out: &mut [u8]) {
    for (i, ((o, s), p)) in out
        .iter_mut()
        .zip(sums)
        .zip(full.chunks_exact(2))
        .enumerate()
    {
        let bias = 1 + (i as u16 & 1);
        *o = ((s + u16::from(p[0]) + u16::from(p[1]) + bias) >> 2) as u8;
    }
}

/// An instruction-set level for the conversion loops (as in the filters crate's `simd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Level {
    /// The x86-64 baseline (SSE2), or any other architecture.
    Base,
    /// AVX2 (x86-64 only).
    Avx2,
    /// AVX-512 F and BW (x86-64 only).
    Avx512,
    /// AVX-512 F, BW, VBMI and VNNI (x86-64 only: Ice Lake, Zen 4 and later): the RGB
    /// conversion is hand-written with byte permutes and 16-bit dot products.
    Avx512Vbmi,
}

impl Level {
    /// The best level this CPU supports (detection is cached by the standard library).
    fn best() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_avx512_vbmi() {
                return Level::Avx512Vbmi;
            }
            if x86::has_avx512() {
                return Level::Avx512;
            }
            if x86::has_avx2() {
                return Level::Avx2;
            }
        }
        Level::Base
    }

    /// Every level this CPU supports (tests compare them).
    #[cfg(test)]
    fn all() -> Vec<Level> {
        let all = [Level::Base, Level::Avx2, Level::Avx512, Level::Avx512Vbmi];
        let best = Level::best();
        let n = all.iter().position(|&l| l == best).map_or(1, |i| i + 1);
        all[..n].to_vec()
    }
}

/// The x86-64 levels: the shared loops compiled with wider vectors, and the hand-written
/// AVX-512 VBMI conversion.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        CBCR_OFFSET, FIX_0_08131, FIX_0_11400, FIX_0_16874, FIX_0_29900, FIX_0_33126, FIX_0_41869,
        FIX_0_50000, FIX_0_58700, ONE_HALF, RowOut, convert_with, rgb_to_ycc,
    };
    use std::arch::is_x86_feature_detected as has;
    use std::arch::x86_64::*;

    /// Whether the CPU has what [`convert_avx2`] enables (detection is cached by std).
    pub(super) fn has_avx2() -> bool {
        has!("avx2")
    }

    /// Whether the CPU has what [`convert_avx512`] enables.
    pub(super) fn has_avx512() -> bool {
        has!("avx512f") && has!("avx512bw")
    }

    /// Whether the CPU has what [`convert_avx512_vbmi`] enables.
    pub(super) fn has_avx512_vbmi() -> bool {
        has_avx512() && has!("avx512vbmi") && has!("avx512vnni")
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn convert_avx2(rgb: &[u8], out: RowOut<'_>) {
        convert_with(
            rgb,
            out,
            #[expect(
                clippy::redundant_closure,
                reason = "a closure is inlined, see convert_with"
            )]
            #[inline(always)]
            |rgb, y, cb, cr| rgb_to_ycc(rgb, y, cb, cr),
        )
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn convert_avx512(rgb: &[u8], out: RowOut<'_>) {
        convert_with(
            rgb,
            out,
            #[expect(
                clippy::redundant_closure,
                reason = "a closure is inlined, see convert_with"
            )]
            #[inline(always)]
            |rgb, y, cb, cr| rgb_to_ycc(rgb, y, cb, cr),
        )
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    pub(super) fn convert_avx512_vbmi(rgb: &[u8], out: RowOut<'_>) {
        convert_with(
            rgb,
            out,
            #[inline(always)]
            |rgb, y, cb, cr| rgb_to_ycc_vbmi(rgb, y, cb, cr),
        )
    }

    /// `vpermt2b` indices gathering, for the 16 pixels at byte `offset` of a 128-byte
    /// window, the 16-bit pairs (R, G) (`first` = 0) or (G, B) (`first` = 1), each byte
    /// zero-extended (the odd bytes are zeroed by the mask).
    const fn pair_index(offset: usize, first: usize) -> [u8; 64] {
        let mut v = [0u8; 64];
        let mut i = 0;
        while i < 16 {
            v[4 * i] = (offset + 3 * i + first) as u8;
            v[4 * i + 2] = (offset + 3 * i + first + 1) as u8;
            i += 1;
        }
        v
    }

    /// `vpermt2b` indices taking byte 2 (bits 16..24) of each 32-bit lane of two vectors.
    const fn byte2_index() -> [u8; 64] {
        let mut v = [0u8; 64];
        let mut i = 0;
        while i < 64 {
            v[i] = ((i % 32) * 4 + 2) as u8;
            i += 1;
        }
        v
    }

    /// 64 pixels are 192 bytes, loaded as three vectors L0, L1, L2; the four groups of
    /// 16 pixels start at bytes 0 and 48 of the window L0:L1 and 32 and 80 of L1:L2.
    static PAIR_INDEX: [[u8; 64]; 8] = [
        pair_index(0, 0),
        pair_index(0, 1),
        pair_index(48, 0),
        pair_index(48, 1),
        pair_index(32, 0),
        pair_index(32, 1),
        pair_index(80, 0),
        pair_index(80, 1),
    ];
    static BYTE2_INDEX: [u8; 64] = byte2_index();

    /// A 32-bit lane holding the 16-bit pair (`lo`, `hi`): `vpdpwssd` coefficients.
    const fn pair(lo: i32, hi: i32) -> i32 {
        assert!(lo >= i16::MIN as i32 && lo <= i16::MAX as i32);
        assert!(hi >= i16::MIN as i32 && hi <= i16::MAX as i32);
        ((hi as u16 as u32) << 16 | lo as u16 as u32) as i32
    }

    const _: () = assert!(FIX_0_58700 % 2 == 0 && FIX_0_50000 % 2 == 0);
    // Y: FIX(0.29900)R + FIX(0.58700)G + FIX(0.11400)B, G's taken half with R and half
    // with B (38470 does not fit an i16).
    const Y_RG: i32 = pair(FIX_0_29900, FIX_0_58700 / 2);
    const Y_GB: i32 = pair(FIX_0_58700 / 2, FIX_0_11400);
    // Cb: −FIX(0.16874)R − FIX(0.33126)G + (FIX(0.5) / 2)·2B.
    const CB_RG: i32 = pair(-FIX_0_16874, -FIX_0_33126);
    const CB_GB2: i32 = pair(0, FIX_0_50000 / 2);
    // Cr: (FIX(0.5) / 2)·2R − FIX(0.41869)G − FIX(0.08131)B.
    const CR_GB: i32 = pair(-FIX_0_41869, -FIX_0_08131);
    const CR_RG2: i32 = pair(FIX_0_50000 / 2, 0);

    /// [`rgb_to_ycc`](super::rgb_to_ycc) with AVX-512 VBMI and VNNI, 64 pixels a step:
    /// `vpermt2b` gathers (R, G) and (G, B) as 16-bit pairs, and `vpdpwssd` adds their
    /// products with jccolext.c's constants to 32-bit sums (the 32768 of Cb's B and Cr's
    /// R does not fit an i16: it is 16384 times the doubled B or R). The same sums as
    /// jccolext.c, so the same bytes; the result of each is its byte 2.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    fn rgb_to_ycc_vbmi(rgb: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
        let n = y.len();
        let (rgb, cb, cr) = (&rgb[..n * 3], &mut cb[..n], &mut cr[..n]);
        let k = Kernel::new();
        let mut rgb_chunks = rgb.chunks_exact(192);
        let mut y_chunks = y.chunks_exact_mut(64);
        let mut cb_chunks = cb.chunks_exact_mut(64);
        let mut cr_chunks = cr.chunks_exact_mut(64);
        for (((src, y), cb), cr) in (&mut rgb_chunks)
            .zip(&mut y_chunks)
            .zip(&mut cb_chunks)
            .zip(&mut cr_chunks)
        {
            k.step(src, y, cb, cr);
        }
        // The last pixels (fewer than 64) through zero-padded copies.
        let rest = rgb_chunks.remainder();
        if !rest.is_empty() {
            let m = rest.len() / 3;
            let mut src = [0u8; 192];
            src[..rest.len()].copy_from_slice(rest);
            let (mut ty, mut tcb, mut tcr) = ([0u8; 64], [0u8; 64], [0u8; 64]);
            k.step(&src, &mut ty, &mut tcb, &mut tcr);
            y_chunks.into_remainder()[..m].copy_from_slice(&ty[..m]);
            cb_chunks.into_remainder()[..m].copy_from_slice(&tcb[..m]);
            cr_chunks.into_remainder()[..m].copy_from_slice(&tcr[..m]);
        }
    }

    /// The constant vectors of [`rgb_to_ycc_vbmi`].
    struct Kernel {
        pair_index: [__m512i; 8],
        byte2_index: __m512i,
        y_rg: __m512i,
        y_gb: __m512i,
        cb_rg: __m512i,
        cb_gb2: __m512i,
        cr_gb: __m512i,
        cr_rg2: __m512i,
        y_add: __m512i,
        c_add: __m512i,
    }

    impl Kernel {
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
        fn new() -> Kernel {
            let load = |v: &[u8; 64]| {
                // SAFETY: `v` is 64 readable bytes (an unaligned load).
                unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
            };
            Kernel {
                pair_index: PAIR_INDEX.each_ref().map(load),
                byte2_index: load(&BYTE2_INDEX),
                y_rg: _mm512_set1_epi32(Y_RG),
                y_gb: _mm512_set1_epi32(Y_GB),
                cb_rg: _mm512_set1_epi32(CB_RG),
                cb_gb2: _mm512_set1_epi32(CB_GB2),
                cr_gb: _mm512_set1_epi32(CR_GB),
                cr_rg2: _mm512_set1_epi32(CR_RG2),
                y_add: _mm512_set1_epi32(ONE_HALF),
                c_add: _mm512_set1_epi32(CBCR_OFFSET + ONE_HALF - 1),
            }
        }

        /// 64 pixels: 192 bytes of RGB to 64 bytes each of Y, Cb and Cr.
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
        fn step(&self, src: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
            let (src, y, cb, cr) = (&src[..192], &mut y[..64], &mut cb[..64], &mut cr[..64]);
            // SAFETY: `src` is 192 readable bytes: three unaligned 64-byte loads.
            let l = unsafe {
                [
                    _mm512_loadu_si512(src.as_ptr().cast()),
                    _mm512_loadu_si512(src.as_ptr().add(64).cast()),
                    _mm512_loadu_si512(src.as_ptr().add(128).cast()),
                ]
            };
            const EVEN_BYTES: __mmask64 = 0x5555_5555_5555_5555;
            let zero = _mm512_setzero_si512();
            let (mut ys, mut cbs, mut crs) = ([zero; 4], [zero; 4], [zero; 4]);
            for q in 0..4 {
                let (a, b) = if q < 2 { (l[0], l[1]) } else { (l[1], l[2]) };
                let rg = _mm512_maskz_permutex2var_epi8(EVEN_BYTES, a, self.pair_index[2 * q], b);
                let gb =
                    _mm512_maskz_permutex2var_epi8(EVEN_BYTES, a, self.pair_index[2 * q + 1], b);
                let (rg2, gb2) = (_mm512_add_epi16(rg, rg), _mm512_add_epi16(gb, gb));
                let dp = _mm512_dpwssd_epi32;
                ys[q] = dp(dp(self.y_add, rg, self.y_rg), gb, self.y_gb);
                cbs[q] = dp(dp(self.c_add, rg, self.cb_rg), gb2, self.cb_gb2);
                crs[q] = dp(dp(self.c_add, gb, self.cr_gb), rg2, self.cr_rg2);
            }
            let bytes = |v: [__m512i; 4]| {
                let lo = _mm512_permutex2var_epi8(v[0], self.byte2_index, v[1]);
                let hi = _mm512_permutex2var_epi8(v[2], self.byte2_index, v[3]);
                _mm512_inserti64x4::<1>(lo, _mm512_castsi512_si256(hi))
            };
            // SAFETY: each destination is 64 writable bytes: unaligned 64-byte stores.
            unsafe {
                _mm512_storeu_si512(y.as_mut_ptr().cast(), bytes(ys));
                _mm512_storeu_si512(cb.as_mut_ptr().cast(), bytes(cbs));
                _mm512_storeu_si512(cr.as_mut_ptr().cast(), bytes(crs));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::encode::{EncodeOptions, Encoder, ImageFormat};
    use frameflow_filters::{ImageRef, Mode};

    /// A deterministic xorshift generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn noise(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed | 1);
        (0..w * h * 3).map(|_| rng.next() as u8).collect()
    }

    fn gradient(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        let s = seed as usize;
        for y in 0..h {
            for x in 0..w {
                v.push(((x * 255) / w.max(2) + s) as u8);
                v.push(((y * 255) / h.max(2)) as u8);
                v.push(((x + y) * 128 / (w + h) + 64 + (x * y + s) % 7) as u8);
            }
        }
        v
    }

    fn turbojpeg(rgb: &[u8], w: usize, h: usize, quality: u8) -> Vec<u8> {
        let mut enc = Encoder::new(EncodeOptions {
            format: ImageFormat::Jpeg,
            quality,
        })
        .unwrap();
        let img = ImageRef::new(rgb, w as u32, h as u32, w * 3, Mode::Rgb).unwrap();
        enc.encode(img).unwrap().to_vec()
    }

    fn rows(enc: &mut RowJpeg, rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
        enc.begin(w as u32, h as u32).unwrap();
        for row in rgb.chunks_exact(w * 3) {
            enc.push_row(row).unwrap();
        }
        enc.finish().unwrap().to_vec()
    }

    const SIZES: [(usize, usize); 11] = [
        (1, 1),
        (2, 2),
        (7, 3),
        (15, 17),
        (16, 16),
        (17, 16),
        (31, 33),
        (33, 7),
        (64, 48),
        (100, 75),
        (1288, 8),
    ];

    #[test]
    fn identical_to_turbojpeg() {
        for quality in [75u8, 1, 50, 90, 100] {
            let mut enc = RowJpeg::new(quality).unwrap();
            for (i, &(w, h)) in SIZES.iter().enumerate() {
                for (kind, rgb) in [
                    ("noise", noise(w, h, i as u64 * 7919 + u64::from(quality))),
                    ("gradient", gradient(w, h, i as u64)),
                ] {
                    let want = turbojpeg(&rgb, w, h, quality);
                    // Twice: reusing the encoder must not change a byte.
                    for pass in 0..2 {
                        let got = rows(&mut enc, &rgb, w, h);
                        assert!(
                            got == want,
                            "{w}x{h} {kind} q{quality} pass {pass}: {} bytes vs TurboJPEG's {}",
                            got.len(),
                            want.len()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn identical_to_turbojpeg_large() {
        let mut enc = RowJpeg::new(75).unwrap();
        for (i, (w, h)) in [(1280usize, 720usize), (1920, 1080), (64, 48)]
            .into_iter()
            .enumerate()
        {
            let rgb = if i == 1 {
                noise(w, h, 42)
            } else {
                gradient(w, h, 3)
            };
            let want = turbojpeg(&rgb, w, h, 75);
            assert!(rows(&mut enc, &rgb, w, h) == want, "{w}x{h} differs");
        }
        let mut enc = RowJpeg::new(90).unwrap();
        let (w, h) = (1280, 720);
        let rgb = noise(w, h, 9);
        assert!(rows(&mut enc, &rgb, w, h) == turbojpeg(&rgb, w, h, 90));
    }

    #[test]
    fn levels_agree_on_frames() {
        let (w, h) = (301, 37);
        let rgb = noise(w, h, 5);
        let mut want = None;
        for level in Level::all() {
            let mut enc = RowJpeg::new(80).unwrap();
            enc.level = level;
            let got = rows(&mut enc, &rgb, w, h);
            assert!(*want.get_or_insert_with(|| got.clone()) == got, "{level:?}");
        }
    }

    /// jccolext.c, written out per pixel.
    fn reference(r: i32, g: i32, b: i32) -> [u8; 3] {
        let y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
        let cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16;
        let cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16;
        [y as u8, cb as u8, cr as u8]
    }

    /// Y, Cb and Cr of `rgb` at full resolution, converted at `level`.
    fn ycc_at(level: Level, rgb: &[u8]) -> [Vec<u8>; 3] {
        let w = rgb.len() / 3;
        let c_cols = w.div_ceil(16) * 8;
        let (mut y, mut cb, mut cr) = (
            vec![0; w.div_ceil(8) * 8],
            vec![0; 2 * c_cols],
            vec![0; 2 * c_cols],
        );
        let (mut cb_sum, mut cr_sum) = (vec![0; c_cols], vec![0; c_cols]);
        let (mut cb_row, mut cr_row) = (vec![0; c_cols], vec![0; c_cols]);
        let out = RowOut {
            width: w,
            odd: false,
            y: &mut y,
            cb_full: &mut cb,
            cr_full: &mut cr,
            cb_sum: &mut cb_sum,
            cr_sum: &mut cr_sum,
            cb_row: &mut cb_row,
            cr_row: &mut cr_row,
        };
        convert_row(level, rgb, out);
        [y[..w].to_vec(), cb[..w].to_vec(), cr[..w].to_vec()]
    }

    /// Checks the conversion of `count` triples from `first` (R·2^16 + G·2^8 + B) at
    /// every level against [`reference`], in rows of 4096 pixels.
    fn check_conversion(first: u32, count: u32, stride: u32) {
        let triples: Vec<u32> = (0..count)
            .map(|i| first.wrapping_add(i.wrapping_mul(stride)) & 0xff_ffff)
            .collect();
        for level in Level::all() {
            for chunk in triples.chunks(4096) {
                let rgb: Vec<u8> = chunk
                    .iter()
                    .flat_map(|&t| [(t >> 16) as u8, (t >> 8) as u8, t as u8])
                    .collect();
                let [y, cb, cr] = ycc_at(level, &rgb);
                for (i, p) in rgb.chunks_exact(3).enumerate() {
                    let want = reference(p[0].into(), p[1].into(), p[2].into());
                    assert_eq!([y[i], cb[i], cr[i]], want, "{p:?} at {level:?}");
                }
            }
        }
    }

    #[test]
    fn conversion_matches_scalar_reference_at_every_level() {
        // The corners and edges of the cube, then 2^20 triples spread over all of it
        // (an odd stride: 2^20 distinct triples).
        let mut corners = Vec::new();
        for r in [0u32, 1, 127, 128, 254, 255] {
            for g in [0u32, 1, 127, 128, 254, 255] {
                for b in 0..256u32 {
                    corners.push(r << 16 | g << 8 | b);
                }
            }
        }
        for level in Level::all() {
            let rgb: Vec<u8> = corners
                .iter()
                .flat_map(|&t| [(t >> 16) as u8, (t >> 8) as u8, t as u8])
                .collect();
            let [y, cb, cr] = ycc_at(level, &rgb);
            for (i, p) in rgb.chunks_exact(3).enumerate() {
                let want = reference(p[0].into(), p[1].into(), p[2].into());
                assert_eq!([y[i], cb[i], cr[i]], want, "{p:?} at {level:?}");
            }
        }
        check_conversion(12345, 1 << 20, 16411);
    }

    /// All 2^24 triples (slow in the debug build: `cargo test --release ... -- --ignored`).
    #[test]
    #[ignore]
    fn conversion_matches_scalar_reference_exhaustively() {
        check_conversion(0, 1 << 24, 1);
    }

    #[test]
    fn constants_are_libjpegs() {
        let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
        assert_eq!(FIX_0_29900, fix(0.29900));
        assert_eq!(FIX_0_58700, fix(0.58700));
        assert_eq!(FIX_0_11400, fix(0.11400));
        assert_eq!(FIX_0_16874, fix(0.16874));
        assert_eq!(FIX_0_33126, fix(0.33126));
        assert_eq!(FIX_0_50000, fix(0.5));
        assert_eq!(FIX_0_41869, fix(0.41869));
        assert_eq!(FIX_0_08131, fix(0.08131));
    }

    #[test]
    fn misuse_is_an_error() {
        let mut enc = RowJpeg::new(75).unwrap();
        let row = [0u8; 4 * 3];
        // Before begin.
        assert!(enc.push_row(&row).is_err());
        assert!(enc.finish().is_err());
        // Empty and oversized images.
        assert!(enc.begin(0, 4).is_err());
        assert!(enc.begin(4, 0).is_err());
        assert!(enc.begin(65501, 4).is_err());
        // Wrong row length abandons the frame.
        enc.begin(4, 2).unwrap();
        assert!(enc.push_row(&row[..9]).is_err());
        assert!(enc.push_row(&row).is_err(), "the frame was abandoned");
        // Finish before all rows.
        enc.begin(4, 2).unwrap();
        enc.push_row(&row).unwrap();
        assert!(matches!(
            enc.finish(),
            Err(EncodeError::JpegRows { step: "finish", .. })
        ));
        assert!(enc.finish().is_err());
        // A row past the end.
        enc.begin(4, 2).unwrap();
        enc.push_row(&row).unwrap();
        enc.push_row(&row).unwrap();
        assert!(enc.push_row(&row).is_err());
        assert!(enc.finish().is_err());
        // Begin while a frame is open starts over; the encoder still works afterwards.
        enc.begin(4, 2).unwrap();
        enc.push_row(&row).unwrap();
        let rgb = gradient(4, 2, 0);
        assert!(rows(&mut enc, &rgb, 4, 2) == turbojpeg(&rgb, 4, 2, 75));
        assert!(enc.finish().is_err(), "finish twice");
    }

    #[test]
    fn shim_reports_libjpeg_errors_and_recovers() {
        fn message(rj: *mut ffi::RowJpegC) -> String {
            // SAFETY: a live handle; its message is NUL-terminated.
            unsafe { CStr::from_ptr(ffi::rowjpeg_message(rj)) }
                .to_string_lossy()
                .into_owned()
        }
        let mut enc = RowJpeg::new(75).unwrap();
        let rj = enc.handle.as_ptr();
        let y = [128u8; 16 * 16];
        let c = [128u8; 8 * 8];
        let write = || {
            // SAFETY: a live handle; 16 rows of 16 and 8 rows of 8 samples, in bounds.
            unsafe { ffi::rowjpeg_write(rj, y.as_ptr(), 16, 16, c.as_ptr(), c.as_ptr(), 8, 8) }
        };
        // Writing before any image: libjpeg's "improper call" error, through longjmp.
        assert_eq!(write(), -1);
        assert!(!message(rj).is_empty());
        // A 100-byte buffer: the headers do not fit.
        let mut small = [0u8; 100];
        // SAFETY: a live handle and a writable 100-byte buffer, used only until the abort.
        let begun = unsafe { ffi::rowjpeg_begin(rj, 16, 16, 75, small.as_mut_ptr(), small.len()) };
        assert_eq!(begun, 0);
        assert_eq!(write(), -1);
        assert!(message(rj).contains("does not fit"), "{}", message(rj));
        // Too many rows: libjpeg's warning fails the write.
        let mut big = vec![0u8; 4096];
        // SAFETY: as above, with a 4096-byte buffer.
        let begun = unsafe { ffi::rowjpeg_begin(rj, 16, 16, 75, big.as_mut_ptr(), big.len()) };
        assert_eq!(begun, 0);
        assert_eq!(write(), 0);
        assert_eq!(write(), -1);
        // Rows narrower than the image's blocks are refused before libjpeg reads them.
        // SAFETY: as above.
        let begun = unsafe { ffi::rowjpeg_begin(rj, 32, 16, 75, big.as_mut_ptr(), big.len()) };
        assert_eq!(begun, 0);
        assert_eq!(write(), -1);
        assert!(message(rj).contains("narrower"), "{}", message(rj));
        // And the handle still encodes a frame exactly.
        let rgb = noise(16, 16, 3);
        assert!(rows(&mut enc, &rgb, 16, 16) == turbojpeg(&rgb, 16, 16, 75));
    }

    #[test]
    fn is_send() {
        fn send<T: Send>() {}
        send::<RowJpeg>();
    }

    #[test]
    fn worst_case_size_is_tj3_jpeg_buf_size() {
        for (w, h) in [(1usize, 1usize), (17, 33), (1920, 1080), (65500, 3)] {
            let mut enc = RowJpeg::new(75).unwrap();
            enc.begin(w as u32, h as u32).unwrap();
            let want = turbojpeg::compressed_buf_len(w, h, turbojpeg::Subsamp::Sub2x2).unwrap();
            assert_eq!(enc.out.len(), want, "{w}x{h}");
        }
    }
    /// Timings for a 1920x1080 frame: `cargo test --release -p frameflow --lib
    /// rowjpeg::tests::bench -- --ignored --nocapture`, with `ROWJPEG_BENCH_RGB` naming a
    /// raw rgb24 1920x1080 frame (`ffmpeg -i clip.mp4 -frames:v 1 -f rawvideo -pix_fmt
    /// rgb24 frame.rgb`); without it a synthetic frame is used.
    #[test]
    #[ignore]
    fn bench_1080p() {
        use std::time::Instant;
        let (w, h) = (1920usize, 1080usize);
        let (rgb, what) = match std::env::var_os("ROWJPEG_BENCH_RGB") {
            Some(path) => (
                std::fs::read(&path).unwrap(),
                path.to_string_lossy().into_owned(),
            ),
            None => {
                let mut v = gradient(w, h, 0);
                for (a, b) in v.iter_mut().zip(noise(w, h, 1)) {
                    *a = a.wrapping_add(b & 7);
                }
                (v, "synthetic gradient + noise".to_string())
            }
        };
        assert_eq!(rgb.len(), w * h * 3, "{what} is not 1920x1080 rgb24");
        let frames = 101;
        let median = |f: &mut dyn FnMut()| {
            f();
            let mut t: Vec<f64> = (0..frames)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        };
        let mut tj = Encoder::new(EncodeOptions {
            format: ImageFormat::Jpeg,
            quality: 75,
        })
        .unwrap();
        let img = ImageRef::new(&rgb, w as u32, h as u32, w * 3, Mode::Rgb).unwrap();
        let want = tj.encode(img).unwrap().to_vec();
        let mut enc = RowJpeg::new(75).unwrap();
        assert!(rows(&mut enc, &rgb, w, h) == want, "not identical");
        let a = median(&mut || {
            std::hint::black_box(tj.encode(img).unwrap().len());
        });
        let b = median(&mut || {
            enc.begin(w as u32, h as u32).unwrap();
            for row in rgb.chunks_exact(w * 3) {
                enc.push_row(row).unwrap();
            }
            std::hint::black_box(enc.finish().unwrap().len());
        });
        let convert_only = |enc: &mut RowJpeg, same_row: bool| {
            enc.begin(w as u32, h as u32).unwrap();
            for (i, row) in rgb.chunks_exact(w * 3).enumerate() {
                let row = if same_row { &rgb[..w * 3] } else { row };
                enc.convert(i, std::hint::black_box(row));
            }
            enc.abort();
        };
        let c = median(&mut || convert_only(&mut enc, false));
        let c_l1 = median(&mut || convert_only(&mut enc, true));
        println!(
            "{what}, {} JPEG bytes, level {:?}, medians of {frames} frames:",
            want.len(),
            enc.level
        );
        println!("  (a) TurboJPEG compress_to_slice:              {a:.3} ms");
        println!("  (b) RowJpeg, rows from the frame:              {b:.3} ms");
        println!("  (c) conversion + downsampling only:            {c:.3} ms");
        println!("  (c') the same, one row repeated (in L1):       {c_l1:.3} ms");
        for level in Level::all() {
            enc.level = level;
            let t = median(&mut || convert_only(&mut enc, true));
            println!("      {level:?}: {t:.3} ms (in L1)");
        }
    }
}
