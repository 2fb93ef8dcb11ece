//! Pillow's 3×3 / 5×5 convolution (`ImageFilter.Kernel`, `Image.filter`), bit-exact.
//!
//! Pillow's arithmetic (libImaging/Filter.c), which this module reproduces:
//! - each weight is divided by the scale in `f32`; the offset gets `+ 0.5` in `f32`;
//! - per output byte, `ss = offset + 0.5`, then for each kernel row `ss += rowsum`, where
//!   `rowsum = in[x-d]*k0 + in[x]*k1 + in[x+d]*k2` (5 taps for 5×5) is evaluated left to
//!   right in `f32`; kernel row 0 multiplies the image row *below* the pixel (rows are
//!   flipped, columns are not);
//! - the result is clamped to 0..=255 and truncated (`clip8`);
//! - the outer 1 (3×3) or 2 (5×5) rows and columns are copied unchanged, and an image
//!   smaller than the kernel is copied unchanged;
//! - every band is filtered, alpha included.
//!
//! Zero weights are skipped (exact: `t + 0.0 == t`). When every `weight / scale` and
//! `offset + 0.5` are multiples of `2^-k` and all partial sums stay below `2^24 · 2^-k`,
//! the `f32` arithmetic is exact, so an equivalent integer path is used (EMBOSS, BLUR,
//! SHARPEN, FIND_EDGES, CONTOUR, EDGE_ENHANCE, EDGE_ENHANCE_MORE, most user kernels).
//! SMOOTH (odd scale 13) has an exact integer form too (`Fast3::RingOdd`).
//!
//! Every other kernel runs Pillow's `f32` operations themselves, in Pillow's order, one
//! byte per vector lane (lanes are independent, and Rust never fuses `a * b + c`), so
//! the result is exact whatever the vector width; the loops are compiled for AVX-512 or
//! AVX2 when the CPU has them (`crate::simd`). DETAIL (scale 6) has no integer shortcut
//! keyed by `S = Σ w·p`: its exact value `(S + 3) / 6` is an integer for one sum in six,
//! and then Pillow's rounding errors send it to either side depending on the individual
//! pixels, not on `S` (checked on random pixels: every such `S` goes both ways).

use crate::simd::{self, Level};
use crate::{ImageBuf, ImageRef};
use std::fmt;

/// Bytes processed per inner chunk (accumulators live on the stack).
const CHUNK: usize = 512;

/// Output bytes per chunk of [`Fast3::Ring`] (column sums live on the stack).
const RING_CHUNK: usize = 1024;

/// A kernel could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// Not 9 or 25 weights.
    #[error("must be 9 (3x3) or 25 (5x5) numbers, got {0}")]
    WrongCount(usize),
    /// A weight, the scale or the offset is not a finite `f32`.
    #[error("must be finite numbers")]
    NotFinite,
    /// The scale is zero (explicitly given).
    #[error("scale must not be 0")]
    ZeroScale,
}

/// Exact integer form of a kernel: `out = clamp((off + Σ q·p) >> shift, 0, 255)`.
#[derive(Debug, Clone, PartialEq)]
struct Fixed {
    shift: u32,
    q: Vec<i32>,
    off: i32,
    /// Every partial sum fits in `i16` (and `shift < 16`).
    fits_i16: bool,
}

/// Specialised exact integer forms of a 3×3 [`Fixed`] kernel. Each computes one output
/// row in a single pass whose inner loop LLVM vectorises: the taps are slices of the
/// interleaved rows pre-cut to the output's length (±channels apart), so there is no
/// per-pixel branching and no bounds check in the loop.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fast3 {
    /// `clamp(k + p - q)` with `p`, `q` the taps weighted `+2^shift`, `-2^shift` and
    /// `k = off >> shift` (EMBOSS: `k = 128`), in saturating `u8` arithmetic.
    Diff { k: u8, plus: usize, minus: usize },
    /// `clamp((off + ring·box + (centre - ring)·p) >> shift)`, for kernels whose 8 outer
    /// weights are all `ring`: `box` is the 3×3 sum, computed separably. Wrapping `i16`
    /// arithmetic is exact because the result fits in `i16` (checked).
    Ring {
        centre: i16,
        ring: i16,
        off: i16,
        shift: u32,
    },
    /// A ring kernel with integer weights, integer offset and an odd integer scale `D`
    /// (SMOOTH: 1 1 1 1 5 1 1 1 1 / 13). With `S = Σ w·p`, Pillow's exact value is
    /// `V = (2S + (2·offset + 1)·D) / 2D`: an odd numerator over an even denominator, so
    /// `V` lies at least `1/2D` from any integer, and Pillow's f32 result stays far closer
    /// than that to `V` (checked when built): it truncates to `floor(V)`, which is
    /// `floor(n / D)` with `n = S + offset·D + (D - 1)/2`. Output: `n` clamped to
    /// `0..=lim` (`lim = 256·D - 1`), times `m`, high 16 bits (`m` checked exact).
    RingOdd {
        centre: i16,
        ring: i16,
        off: i16,
        lim: i16,
        m: u16,
    },
    /// `clamp((off + Σ q·p) >> shift)` where every partial sum fits in `i16`.
    I16 { q: [i16; 9], off: i16, shift: u32 },
}

impl Fast3 {
    /// The [`Fast3::RingOdd`] form of a 3×3 kernel, if it has one.
    fn ring_odd(weights: &[f64], scale: f64, offset: f64) -> Option<Fast3> {
        let int = |v: f64| v.fract() == 0.0 && v.abs() <= 4096.0;
        if weights.len() != 9 || !weights.iter().all(|&w| int(w)) || !int(offset) {
            return None;
        }
        if !int(scale) || !(3.0..=127.0).contains(&scale) || scale % 2.0 != 1.0 {
            return None;
        }
        let (centre, ring) = (weights[4], weights[0]);
        if !(0..9).all(|i| i == 4 || weights[i] == ring) {
            return None;
        }
        let d = scale as i64;
        let off = offset as i64 * d + (d - 1) / 2;
        let abs_w: f64 = weights.iter().map(|w| w.abs()).sum();
        // n fits in i16, so the wrapping i16 arithmetic of ring_row is exact.
        if off.abs() as f64 + 255.0 * abs_w > i16::MAX as f64 {
            return None;
        }
        // Largest magnitude of any value in Pillow's f32 sum: its error (a few dozen
        // roundings of 2^-24 relative) stays far below 1/2D when M·D < 2^16.
        let big_m = offset.abs() + 0.5 + 255.0 * abs_w / scale;
        if big_m * scale >= 65_536.0 {
            return None;
        }
        let lim = 256 * d - 1;
        let m = (65_536 + d - 1) / d;
        if !(0..=lim).all(|n| (n * m) >> 16 == n / d) {
            return None;
        }
        Some(Fast3::RingOdd {
            centre: centre as i16,
            ring: ring as i16,
            off: off as i16,
            lim: lim as i16,
            m: m as u16,
        })
    }

    fn new(f: &Fixed) -> Option<Fast3> {
        if f.q.len() != 9 {
            return None;
        }
        let m = 1i32 << f.shift;
        let nonzero: Vec<usize> = (0..9).filter(|&i| f.q[i] != 0).collect();
        if let [a, b] = nonzero[..] {
            let k = f.off >> f.shift;
            let (plus, minus) = if f.q[a] > 0 { (a, b) } else { (b, a) };
            if f.q[plus] == m && f.q[minus] == -m && (0..=255).contains(&k) {
                // (off + m·(p - q)) >> shift == k + p - q, as 0 <= off - k·m < m.
                return Some(Fast3::Diff {
                    k: k as u8,
                    plus,
                    minus,
                });
            }
        }
        let bound = f.off.unsigned_abs() + f.q.iter().map(|v| 255 * v.unsigned_abs()).sum::<u32>();
        if bound <= i16::MAX as u32 && f.shift < 16 {
            let mut q = [0i16; 9];
            for (d, &v) in q.iter_mut().zip(&f.q) {
                *d = v as i16;
            }
            if (0..9).all(|i| i == 4 || q[i] == q[0]) {
                return Some(Fast3::Ring {
                    centre: q[4],
                    ring: q[0],
                    off: f.off as i16,
                    shift: f.shift,
                });
            }
            return Some(Fast3::I16 {
                q,
                off: f.off as i16,
                shift: f.shift,
            });
        }
        None
    }

    /// One output row interior: `rows[kr]` is the image row kernel row `kr` multiplies,
    /// `out` the bytes `lo..lo + out.len()` of the output row.
    #[inline(always)]
    fn row(&self, rows: &[&[u8]], lo: usize, c: usize, out: &mut [u8]) {
        let n = out.len();
        // Tap t = 3·kr + kc reads rows[kr] at byte offset (kc - 1)·c.
        let tap = |t: usize| &rows[t / 3][lo + (t % 3) * c - c..][..n];
        match *self {
            Fast3::Diff { k, plus, minus } => {
                let (p, q) = (tap(plus), tap(minus));
                for ((o, &p), &q) in out.iter_mut().zip(p).zip(q) {
                    // One of the two saturating differences is zero.
                    *o = k
                        .saturating_add(p.saturating_sub(q))
                        .saturating_sub(q.saturating_sub(p));
                }
            }
            Fast3::Ring {
                centre,
                ring,
                off,
                shift,
            } => ring_row(rows, lo, c, out, centre, ring, off, |a| {
                (a >> shift).clamp(0, 255) as u8
            }),
            Fast3::RingOdd {
                centre,
                ring,
                off,
                lim,
                m,
            } => ring_row(rows, lo, c, out, centre, ring, off, |n| {
                // floor(n / D) for n in 0..=lim, as a 16-bit high multiply.
                ((n.clamp(0, lim) as u16 as u32 * m as u32) >> 16) as u8
            }),
            Fast3::I16 { q, off, shift } => {
                let (t0, t1, t2) = (tap(0), tap(1), tap(2));
                let (t3, t4, t5) = (tap(3), tap(4), tap(5));
                let (t6, t7, t8) = (tap(6), tap(7), tap(8));
                for j in 0..n {
                    let mut a = off;
                    a += q[0] * t0[j] as i16 + q[1] * t1[j] as i16 + q[2] * t2[j] as i16;
                    a += q[3] * t3[j] as i16 + q[4] * t4[j] as i16 + q[5] * t5[j] as i16;
                    a += q[6] * t6[j] as i16 + q[7] * t7[j] as i16 + q[8] * t8[j] as i16;
                    out[j] = (a >> shift).clamp(0, 255) as u8;
                }
            }
        }
    }
}

/// One output row of a ring kernel: `fin(off + ring·box + (centre - ring)·p)` in wrapping
/// `i16`, `box` being the 3×3 sum (column sums first, on the stack).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn ring_row(
    rows: &[&[u8]],
    lo: usize,
    c: usize,
    out: &mut [u8],
    centre: i16,
    ring: i16,
    off: i16,
    fin: impl Fn(i16) -> u8,
) {
    let inner = centre.wrapping_sub(ring);
    let (r0, r1, r2) = (rows[0], rows[1], rows[2]);
    let mut start = 0;
    for out in out.chunks_mut(RING_CHUNK) {
        let len = out.len();
        // Column sums of the three rows, from byte lo + start - c on.
        let mut vs = [0u16; RING_CHUNK + 8];
        let vs = &mut vs[..len + 2 * c];
        let base = lo + start - c;
        let (a, b, d) = (
            &r0[base..][..len + 2 * c],
            &r1[base..][..len + 2 * c],
            &r2[base..][..len + 2 * c],
        );
        for (((v, &a), &b), &d) in vs.iter_mut().zip(a).zip(b).zip(d) {
            *v = a as u16 + b as u16 + d as u16;
        }
        let (v0, v1, v2) = (&vs[..len], &vs[c..c + len], &vs[2 * c..2 * c + len]);
        let mid = &r1[lo + start..][..len];
        for j in 0..len {
            let boxsum = (v0[j] + v1[j] + v2[j]) as i16;
            let a = off
                .wrapping_add(ring.wrapping_mul(boxsum))
                .wrapping_add(inner.wrapping_mul(mid[j] as i16));
            out[j] = fin(a);
        }
        start += len;
    }
}

/// A 3×3 or 5×5 convolution kernel with Pillow's semantics.
#[derive(Clone, PartialEq)]
pub struct Kernel {
    size: usize,
    weights: Vec<f64>,
    scale: f64,
    scale_given: bool,
    offset: f64,
    /// `weight / scale` in f32, row-major as given.
    q: Vec<f32>,
    /// `offset + 0.5` in f32.
    off: f32,
    fixed: Option<Fixed>,
    /// A specialised exact form for 3×3 kernels (from `fixed` or [`Fast3::ring_odd`]).
    fast: Option<Fast3>,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("size", &self.size)
            .field("weights", &self.weights)
            .field("scale", &self.scale)
            .field("offset", &self.offset)
            .field("integer_path", &self.fixed.is_some())
            .finish()
    }
}

/// Names and `(size, scale, offset, weights)` of Pillow's built-in kernels
/// (`ImageFilter.BLUR` …), copied from ImageFilter.py.
const BUILTINS: &[(&str, usize, f64, f64, &[f64])] = &[
    (
        "blur",
        5,
        16.0,
        0.0,
        &[
            1., 1., 1., 1., 1., 1., 0., 0., 0., 1., 1., 0., 0., 0., 1., 1., 0., 0., 0., 1., 1., 1.,
            1., 1., 1.,
        ],
    ),
    (
        "contour",
        3,
        1.0,
        255.0,
        &[-1., -1., -1., -1., 8., -1., -1., -1., -1.],
    ),
    (
        "detail",
        3,
        6.0,
        0.0,
        &[0., -1., 0., -1., 10., -1., 0., -1., 0.],
    ),
    (
        "edge_enhance",
        3,
        2.0,
        0.0,
        &[-1., -1., -1., -1., 10., -1., -1., -1., -1.],
    ),
    (
        "edge_enhance_more",
        3,
        1.0,
        0.0,
        &[-1., -1., -1., -1., 9., -1., -1., -1., -1.],
    ),
    (
        "emboss",
        3,
        1.0,
        128.0,
        &[-1., 0., 0., 0., 1., 0., 0., 0., 0.],
    ),
    (
        "find_edges",
        3,
        1.0,
        0.0,
        &[-1., -1., -1., -1., 8., -1., -1., -1., -1.],
    ),
    (
        "sharpen",
        3,
        16.0,
        0.0,
        &[-2., -2., -2., -2., 32., -2., -2., -2., -2.],
    ),
    (
        "smooth",
        3,
        13.0,
        0.0,
        &[1., 1., 1., 1., 5., 1., 1., 1., 1.],
    ),
    (
        "smooth_more",
        5,
        100.0,
        0.0,
        &[
            1., 1., 1., 1., 1., 1., 5., 5., 5., 1., 1., 5., 44., 5., 1., 1., 5., 5., 5., 1., 1.,
            1., 1., 1., 1.,
        ],
    ),
];

/// Names of the built-in kernels, as used in filter chains (`ImageFilter.<NAME>` lowercased).
pub const BUILTIN_NAMES: [&str; 10] = [
    "blur",
    "contour",
    "detail",
    "edge_enhance",
    "edge_enhance_more",
    "emboss",
    "find_edges",
    "sharpen",
    "smooth",
    "smooth_more",
];

impl Kernel {
    /// Builds a kernel like `ImageFilter.Kernel((n, n), weights, scale, offset)`.
    ///
    /// `weights` are row-major, top row first, 9 or 25 of them. `scale` defaults to the
    /// sum of the weights, or 1 when that sum is 0 (Pillow itself would divide by zero
    /// and produce NaN-driven garbage; an explicit scale of 0 is refused).
    pub fn new(weights: &[f64], scale: Option<f64>, offset: f64) -> Result<Kernel, KernelError> {
        let size = match weights.len() {
            9 => 3,
            25 => 5,
            n => return Err(KernelError::WrongCount(n)),
        };
        let finite = |v: f64| v.is_finite() && (v as f32).is_finite();
        if !weights.iter().all(|&w| finite(w)) || !finite(offset) {
            return Err(KernelError::NotFinite);
        }
        let (scale_value, scale_given) = match scale {
            Some(s) if !finite(s) => return Err(KernelError::NotFinite),
            Some(s) if s as f32 == 0.0 => return Err(KernelError::ZeroScale),
            Some(s) => (s, true),
            None => {
                // Python's functools.reduce(a + b) over the weights, in f64.
                let sum = weights.iter().fold(0.0f64, |a, &b| a + b);
                (if sum as f32 == 0.0 { 1.0 } else { sum }, false)
            }
        };
        let s32 = scale_value as f32;
        let q: Vec<f32> = weights.iter().map(|&w| w as f32 / s32).collect();
        if !q.iter().all(|v| v.is_finite()) {
            return Err(KernelError::NotFinite);
        }
        // C: `offset += 0.5` on a float (double rounding through double is innocuous
        // for a single addition).
        let off = offset as f32 + 0.5f32;
        let fixed = Self::fixed_form(&q, off);
        let fast = match &fixed {
            _ if size != 3 => None,
            Some(f) => Fast3::new(f),
            None => Fast3::ring_odd(weights, scale_value, offset),
        };
        Ok(Kernel {
            size,
            weights: weights.to_vec(),
            scale: scale_value,
            scale_given,
            offset,
            q,
            off,
            fixed,
            fast,
        })
    }

    /// One of Pillow's built-in kernels by chain name (`"emboss"`, `"blur"`, …).
    pub fn builtin(name: &str) -> Option<Kernel> {
        let &(_, _size, scale, offset, weights) = BUILTINS.iter().find(|b| b.0 == name)?;
        // The built-in tables are valid by construction.
        Kernel::new(weights, Some(scale), offset).ok()
    }

    /// Finds an exact integer form of the f32 arithmetic, if one exists.
    fn fixed_form(q: &[f32], off: f32) -> Option<Fixed> {
        let bound: f64 =
            off.abs() as f64 + q.iter().map(|&v| 255.0 * (v as f64).abs()).sum::<f64>();
        (0..=20u32).find_map(|shift| {
            let m = (1u64 << shift) as f64;
            let is_int = |v: f32| (v as f64 * m).fract() == 0.0;
            if bound * m >= (1u32 << 24) as f64 || !is_int(off) || !q.iter().all(|&v| is_int(v)) {
                return None;
            }
            let q: Vec<i32> = q.iter().map(|&v| (v as f64 * m) as i32).collect();
            let off = (off as f64 * m) as i32;
            let bound = off.unsigned_abs() as u64
                + q.iter().map(|v| 255 * v.unsigned_abs() as u64).sum::<u64>();
            Some(Fixed {
                shift,
                fits_i16: bound <= i16::MAX as u64 && shift < 16,
                q,
                off,
            })
        })
    }

    /// Side length: 3 or 5.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The weights as given, row-major, top row first.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The effective scale (given, or the default).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Whether the scale was given explicitly (rather than defaulted).
    pub fn scale_given(&self) -> bool {
        self.scale_given
    }

    /// The offset added after scaling.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// Whether the exact integer path is used for this kernel.
    pub fn uses_integer_path(&self) -> bool {
        self.fixed.is_some()
    }

    /// Convolves `src` into `dst` (reshaped to the same size and mode).
    pub fn apply(&self, src: ImageRef<'_>, dst: &mut ImageBuf) {
        self.apply_in(src, dst, &mut KernelBufs::default());
    }

    /// Same as [`Kernel::apply`], with reusable working buffers.
    pub(crate) fn apply_in(&self, src: ImageRef<'_>, dst: &mut ImageBuf, bufs: &mut KernelBufs) {
        self.apply_with(src, dst, true, bufs);
    }

    /// Same as [`Kernel::apply`], choosing the path (tests compare both).
    fn apply_with(
        &self,
        src: ImageRef<'_>,
        dst: &mut ImageBuf,
        integer: bool,
        bufs: &mut KernelBufs,
    ) {
        self.apply_level(src, dst, integer, bufs, Level::best());
    }

    /// Same as [`Kernel::apply_with`], compiled for `level` (tests compare levels).
    fn apply_level(
        &self,
        src: ImageRef<'_>,
        dst: &mut ImageBuf,
        integer: bool,
        bufs: &mut KernelBufs,
        level: Level,
    ) {
        simd::run(
            level,
            #[inline(always)]
            || self.apply_impl(src, dst, integer, bufs),
        )
    }

    #[inline(always)]
    fn apply_impl(
        &self,
        src: ImageRef<'_>,
        dst: &mut ImageBuf,
        integer: bool,
        bufs: &mut KernelBufs,
    ) {
        let (w, h) = (src.width as usize, src.height as usize);
        let n = self.size;
        let r = n / 2;
        if w < n || h < n {
            dst.copy_from(src);
            return;
        }
        dst.reshape(src.width, src.height, src.mode);
        let c = src.mode.channels();
        let rb = w * c;
        // Interior bytes of a row: [r*c, (w-r)*c).
        let (lo, hi) = (r * c, (w - r) * c);
        let plan = FloatPlan::new(self);
        let (fast, fixed, fused) = self.byte_path(integer, &plan);
        let float = fast.is_none() && fixed.is_none() && !fused;
        if float {
            // One f32 copy of each source row, in a ring of `n` rows.
            if bufs.rows.len() != n * rb {
                bufs.rows.clear();
                bufs.rows.resize(n * rb, 0.0);
            }
            for y in 0..n - 1 {
                to_f32(&mut bufs.rows[(y % n) * rb..][..rb], src.row(y as u32));
            }
        }
        let out_rows = dst.data_mut().chunks_exact_mut(rb);
        for (y, out) in out_rows.enumerate() {
            let row = src.row(y as u32);
            if y < r || y >= h - r {
                out.copy_from_slice(row);
                continue;
            }
            // The outer r columns are copied unchanged.
            out[..lo].copy_from_slice(&row[..lo]);
            out[hi..].copy_from_slice(&row[hi..]);
            let out = &mut out[lo..hi];
            if float {
                let next = y + r;
                to_f32(
                    &mut bufs.rows[(next % n) * rb..][..rb],
                    src.row(next as u32),
                );
                // Kernel row kr multiplies image row y + r - kr.
                let mut rows: [&[f32]; 5] = [&[]; 5];
                for (kr, row) in rows.iter_mut().enumerate().take(n) {
                    *row = &bufs.rows[((y + r - kr) % n) * rb..][..rb];
                }
                plan.row(&rows[..n], lo, c, out);
                continue;
            }
            let mut rows: [&[u8]; 5] = [&[]; 5];
            for (kr, row) in rows.iter_mut().enumerate().take(n) {
                *row = src.row((y + r - kr) as u32);
            }
            byte_row(fast, fixed, fused, &plan, &rows[..n], lo, c, out);
        }
    }

    /// The path that computes a row from the 8-bit rows, if any: the integer forms
    /// (`integer` = allowed; tests turn them off), else the fused f32 form (3×3 with three
    /// nonzero rows). All `None`/`false`: only the f32 row ring is exact.
    fn byte_path(&self, integer: bool, plan: &FloatPlan) -> (Option<Fast3>, Option<&Fixed>, bool) {
        let fast = if integer { self.fast } else { None };
        let fixed = if integer { self.fixed.as_ref() } else { None };
        let fused = fast.is_none() && fixed.is_none() && self.size == 3 && plan.nrows == 3;
        (fast, fixed, fused)
    }

    /// This kernel as a [`RowKernel`], if its exact arithmetic reads the 8-bit rows
    /// directly (every built-in kernel and most user kernels). `None` for the kernels
    /// that need Pillow's f32 row ring (some non-integer 5×5 kernels).
    pub fn rows(&self) -> Option<RowKernel> {
        let plan = FloatPlan::new(self);
        let (fast, fixed, fused) = self.byte_path(true, &plan);
        (fast.is_some() || fixed.is_some() || fused).then(|| RowKernel {
            kernel: self.clone(),
            plan,
            fused,
        })
    }
}

/// One output row interior from the 8-bit rows (`rows[kr]` is the image row kernel row
/// `kr` multiplies), on the integer or fused-f32 path chosen by the caller.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn byte_row(
    fast: Option<Fast3>,
    fixed: Option<&Fixed>,
    fused: bool,
    plan: &FloatPlan,
    rows: &[&[u8]],
    lo: usize,
    c: usize,
    out: &mut [u8],
) {
    if fused {
        plan.row_fused3(rows, lo, c, out);
        return;
    }
    match (fast, fixed) {
        (Some(fast), _) => fast.row(rows, lo, c, out),
        (None, Some(f)) => f.row(rows.len(), rows, lo, c, out),
        (None, None) => unreachable!("the f32 ring path is handled by the caller"),
    }
}

/// A kernel applied one output row at a time, for callers that produce an image in
/// strips and never hold all of it (a video frame converted a few rows at a time and
/// encoded as the rows come). Every row is identical to the same row of
/// [`Kernel::apply`]'s output. Made by [`Kernel::rows`].
#[derive(Debug, Clone)]
pub struct RowKernel {
    kernel: Kernel,
    plan: FloatPlan,
    fused: bool,
}

impl RowKernel {
    /// Rows of context above and below an output row: 1 (3×3) or 2 (5×5).
    pub fn radius(&self) -> usize {
        self.kernel.size / 2
    }

    /// Computes output row `y` of a `width`×`height` image of `channels` bands into
    /// `out` (`width · channels` bytes). `window[k]` is input row `y + k - radius` for
    /// `k` in `0..=2·radius`, each at least `width · channels` bytes; on the rows the
    /// kernel copies unchanged (the outer `radius` rows, or every row of an image smaller
    /// than the kernel) only `window[radius]` is read, and the others may be empty.
    ///
    /// # Panics
    /// If `window` has fewer than `2·radius + 1` rows or a row it reads is too short.
    pub fn row(
        &self,
        window: &[&[u8]],
        y: usize,
        width: usize,
        height: usize,
        channels: usize,
        out: &mut [u8],
    ) {
        let (n, r, c) = (self.kernel.size, self.radius(), channels);
        let rb = width * c;
        let out = &mut out[..rb];
        let centre = &window[r][..rb];
        if width < n || height < n || y < r || y + r >= height {
            out.copy_from_slice(centre);
            return;
        }
        let (lo, hi) = (r * c, (width - r) * c);
        out[..lo].copy_from_slice(&centre[..lo]);
        out[hi..].copy_from_slice(&centre[hi..]);
        // Kernel row kr multiplies image row y + r - kr, i.e. window[2r - kr].
        let mut rows: [&[u8]; 5] = [&[]; 5];
        for (kr, row) in rows.iter_mut().enumerate().take(n) {
            *row = &window[2 * r - kr][..rb];
        }
        let k = &self.kernel;
        simd::run(
            Level::best(),
            #[inline(always)]
            || {
                byte_row(
                    k.fast,
                    k.fixed.as_ref(),
                    self.fused,
                    &self.plan,
                    &rows[..n],
                    lo,
                    c,
                    &mut out[lo..hi],
                )
            },
        );
    }
}

/// Reusable buffers of the f32 path: a ring of source rows converted to f32.
#[derive(Debug, Default, Clone)]
pub(crate) struct KernelBufs {
    rows: Vec<f32>,
}

impl KernelBufs {
    /// Where and how big the buffers are (tests check reuse).
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> Vec<(usize, usize)> {
        vec![(self.rows.as_ptr() as usize, self.rows.capacity())]
    }
}

/// `dst[i] = src[i] as f32` (lengths equal).
#[inline(always)]
fn to_f32(dst: &mut [f32], src: &[u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f32;
    }
}

/// Nonzero taps of one kernel row: byte offsets `kc` (0..size) and f32 weights.
#[derive(Debug, Clone, Copy, Default)]
struct RowTaps {
    kr: usize,
    count: usize,
    kc: [usize; 5],
    k: [f32; 5],
    /// All weights of the row, zeros included.
    full: [f32; 5],
}

/// The f32 evaluation plan of a kernel: the kernel rows with a nonzero weight, in
/// Pillow's order, each with its nonzero taps left to right.
///
/// Pillow computes, per output byte, `ss = off; ss += rowsum(kr)` for kr = 0, 1, …, where
/// `rowsum = p0*k0 + p1*k1 + …` left to right, then truncates `ss` clamped to 0..=255.
/// Zero weights contribute `p * 0.0 = ±0.0`, and adding a zero to a value leaves it
/// unchanged (up to the sign of a zero result, which truncation ignores), so skipping
/// them is exact; so is skipping an all-zero kernel row. Every other operation is done in
/// the same order, element-wise over a row, which LLVM vectorises across bytes without
/// changing any per-byte result.
#[derive(Debug, Clone, Copy)]
struct FloatPlan {
    off: f32,
    rows: [RowTaps; 5],
    nrows: usize,
}

/// Where one kernel row's pass sits in the per-byte expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `ss = off + rowsum`.
    First,
    /// `ss += rowsum`.
    Mid,
    /// `out = clip8(ss + rowsum)`.
    Last,
    /// `out = clip8(off + rowsum)` (a single nonzero kernel row).
    Only,
}

impl FloatPlan {
    fn new(k: &Kernel) -> FloatPlan {
        let n = k.size;
        let mut plan = FloatPlan {
            off: k.off,
            rows: [RowTaps::default(); 5],
            nrows: 0,
        };
        for kr in 0..n {
            let mut t = RowTaps {
                kr,
                ..RowTaps::default()
            };
            for kc in 0..n {
                let w = k.q[kr * n + kc];
                t.full[kc] = w;
                if w != 0.0 {
                    t.kc[t.count] = kc;
                    t.k[t.count] = w;
                    t.count += 1;
                }
            }
            if t.count > 0 {
                plan.rows[plan.nrows] = t;
                plan.nrows += 1;
            }
        }
        plan
    }

    /// One output row interior: `rows[kr]` is the f32 image row kernel row `kr`
    /// multiplies, `out` the bytes `lo..lo + out.len()` of the output row.
    #[inline(always)]
    fn row(&self, rows: &[&[f32]], lo: usize, c: usize, out: &mut [u8]) {
        let r = rows.len() / 2;
        if self.nrows == 0 {
            // `off + 0.0 + …`: the offset alone.
            out.fill(self.off as u8);
            return;
        }
        let mut start = 0;
        for out in out.chunks_mut(CHUNK) {
            let len = out.len();
            let mut ss = [0f32; CHUNK];
            let ss = &mut ss[..len];
            for (i, t) in self.rows[..self.nrows].iter().enumerate() {
                let stage = match (i == 0, i + 1 == self.nrows) {
                    (true, true) => Stage::Only,
                    (true, false) => Stage::First,
                    (false, false) => Stage::Mid,
                    (false, true) => Stage::Last,
                };
                let row = rows[t.kr];
                let tap = |i: usize| &row[lo + start + t.kc[i] * c - r * c..][..len];
                let k = t.k;
                match t.count {
                    1 => pass(stage, self.off, ss, out, [tap(0)], [k[0]]),
                    2 => pass(stage, self.off, ss, out, [tap(0), tap(1)], [k[0], k[1]]),
                    3 => pass(
                        stage,
                        self.off,
                        ss,
                        out,
                        [tap(0), tap(1), tap(2)],
                        [k[0], k[1], k[2]],
                    ),
                    4 => pass(
                        stage,
                        self.off,
                        ss,
                        out,
                        [tap(0), tap(1), tap(2), tap(3)],
                        [k[0], k[1], k[2], k[3]],
                    ),
                    _ => pass(
                        stage,
                        self.off,
                        ss,
                        out,
                        [tap(0), tap(1), tap(2), tap(3), tap(4)],
                        k,
                    ),
                }
            }
            start += len;
        }
    }
}

/// Pillow's `clip8`: 0 if `v <= 0`, 255 if `v >= 255`, else `v` truncated.
#[inline(always)]
fn clip8(v: f32) -> u8 {
    // Written as selects (a NaN, which Pillow's arithmetic cannot produce from finite
    // inputs anyway, becomes 0), so LLVM emits one `max` and one `min`.
    let v = if v > 0.0 { v } else { 0.0 };
    let v = if v < 255.0 { v } else { 255.0 };
    // SAFETY: 0 <= v <= 255, so its truncation is representable in i32. (The safe
    // saturating `as` conversion is not vectorised by LLVM; this is one `cvttps2dq`.)
    unsafe { v.to_int_unchecked::<i32>() as u8 }
}

impl FloatPlan {
    /// One output row interior of a 3×3 kernel with three nonzero rows, in a single
    /// loop straight from the 8-bit rows (`rows[kr]` is the image row kernel row `kr`
    /// multiplies): converting a byte to f32 is exact, and doing it in the loop beats
    /// reading a ring of converted rows. A kernel row with one nonzero weight is one
    /// product, any other row is Pillow's full three-term sum (its zero terms included,
    /// as Pillow computes them).
    #[inline(always)]
    fn row_fused3(&self, rows: &[&[u8]], lo: usize, c: usize, out: &mut [u8]) {
        let n = out.len();
        /// Taps (`N` = 1: the nonzero one, `N` = 3: all) of plan row `i`.
        #[inline(always)]
        fn taps<'a, const N: usize>(
            plan: &FloatPlan,
            rows: &[&'a [u8]],
            i: usize,
            lo: usize,
            c: usize,
            n: usize,
        ) -> ([&'a [u8]; N], [f32; N]) {
            let t = &plan.rows[i];
            let row = rows[t.kr];
            let kcs: [usize; N] = std::array::from_fn(|j| if N == 1 { t.kc[0] } else { j });
            let k = std::array::from_fn(|j| if N == 1 { t.k[0] } else { t.full[j] });
            (kcs.map(|kc| &row[lo + kc * c - c..][..n]), k)
        }
        macro_rules! fused {
            ($a:literal, $b:literal, $d:literal) => {{
                let (t0, k0) = taps::<$a>(self, rows, 0, lo, c, n);
                let (t1, k1) = taps::<$b>(self, rows, 1, lo, c, n);
                let (t2, k2) = taps::<$d>(self, rows, 2, lo, c, n);
                fused3(self.off, out, (t0, k0), (t1, k1), (t2, k2))
            }};
        }
        let one = |i: usize| self.rows[i].count == 1;
        match (one(0), one(1), one(2)) {
            (true, true, true) => fused!(1, 1, 1),
            (true, true, false) => fused!(1, 1, 3),
            (true, false, true) => fused!(1, 3, 1),
            (true, false, false) => fused!(1, 3, 3),
            (false, true, true) => fused!(3, 1, 1),
            (false, true, false) => fused!(3, 1, 3),
            (false, false, true) => fused!(3, 3, 1),
            (false, false, false) => fused!(3, 3, 3),
        }
    }
}

/// `Σ taps[t][j] * k[t]` in f32 (the taps, bytes or f32, convert exactly), left to right.
#[inline(always)]
fn rowsum<T: Copy + Into<f32>, const N: usize>(taps: &[&[T]; N], k: &[f32; N], j: usize) -> f32 {
    let mut s = taps[0][j].into() * k[0];
    for t in 1..N {
        s += taps[t][j].into() * k[t];
    }
    s
}

/// The 8-bit taps of one kernel row and their f32 weights.
type Taps<'a, const N: usize> = ([&'a [u8]; N], [f32; N]);

/// `out[j] = clip8(off + row0 + row1 + row2)`, each row sum left to right.
#[inline(always)]
fn fused3<const A: usize, const B: usize, const C: usize>(
    off: f32,
    out: &mut [u8],
    r0: Taps<'_, A>,
    r1: Taps<'_, B>,
    r2: Taps<'_, C>,
) {
    let len = out.len();
    let (t0, t1, t2) = (
        r0.0.map(|t| &t[..len]),
        r1.0.map(|t| &t[..len]),
        r2.0.map(|t| &t[..len]),
    );
    for (j, o) in out.iter_mut().enumerate() {
        let mut ss = off + rowsum(&t0, &r0.1, j);
        ss += rowsum(&t1, &r1.1, j);
        ss += rowsum(&t2, &r2.1, j);
        *o = clip8(ss);
    }
}

/// One kernel row's pass over a chunk: `rowsum = Σ taps[t][j] * k[t]` left to right,
/// combined into `ss` / `out` as `stage` says.
#[inline(always)]
fn pass<const N: usize>(
    stage: Stage,
    off: f32,
    ss: &mut [f32],
    out: &mut [u8],
    taps: [&[f32]; N],
    k: [f32; N],
) {
    let len = ss.len();
    let out = &mut out[..len];
    let taps = taps.map(|t| &t[..len]);
    let rowsum = |j: usize| rowsum(&taps, &k, j);
    match stage {
        Stage::First => {
            for (j, s) in ss.iter_mut().enumerate() {
                *s = off + rowsum(j);
            }
        }
        Stage::Mid => {
            for (j, s) in ss.iter_mut().enumerate() {
                *s += rowsum(j);
            }
        }
        Stage::Last => {
            for (j, (o, &s)) in out.iter_mut().zip(ss.iter()).enumerate() {
                *o = clip8(s + rowsum(j));
            }
        }
        Stage::Only => {
            for (j, o) in out.iter_mut().enumerate() {
                *o = clip8(off + rowsum(j));
            }
        }
    }
}

impl Fixed {
    /// One output row interior with the exact integer form (`i16` accumulators when
    /// every partial sum fits, `i32` otherwise).
    #[inline(always)]
    fn row(&self, n: usize, rows: &[&[u8]], lo: usize, c: usize, out: &mut [u8]) {
        if self.fits_i16 {
            self.row_acc::<i16>(n, rows, lo, c, out);
        } else {
            self.row_acc::<i32>(n, rows, lo, c, out);
        }
    }

    #[inline(always)]
    fn row_acc<A: Acc>(&self, n: usize, rows: &[&[u8]], lo: usize, c: usize, out: &mut [u8]) {
        let r = n / 2;
        let mut start = 0;
        let off = A::from_i32(self.off);
        for out in out.chunks_mut(CHUNK) {
            let len = out.len();
            let mut acc = [A::default(); CHUNK];
            let acc = &mut acc[..len];
            acc.fill(off);
            for (kr, row) in rows.iter().enumerate() {
                for kc in 0..n {
                    let k = self.q[kr * n + kc];
                    if k == 0 {
                        continue;
                    }
                    let k = A::from_i32(k);
                    let base = lo + start + kc * c - r * c;
                    let tap = &row[base..base + len];
                    for (a, &p) in acc.iter_mut().zip(tap) {
                        *a = a.mul_add_u8(p, k);
                    }
                }
            }
            let shift = self.shift;
            for (o, &a) in out.iter_mut().zip(acc.iter()) {
                *o = a.finish(shift);
            }
            start += len;
        }
    }
}

/// Accumulator type of [`Fixed::row_acc`].
trait Acc: Copy + Default {
    fn from_i32(v: i32) -> Self;
    fn mul_add_u8(self, p: u8, k: Self) -> Self;
    fn finish(self, shift: u32) -> u8;
}

impl Acc for i16 {
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as i16
    }
    #[inline(always)]
    fn mul_add_u8(self, p: u8, k: Self) -> Self {
        self.wrapping_add((p as i16).wrapping_mul(k))
    }
    #[inline(always)]
    fn finish(self, shift: u32) -> u8 {
        (self >> shift).clamp(0, 255) as u8
    }
}

impl Acc for i32 {
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v
    }
    #[inline(always)]
    fn mul_add_u8(self, p: u8, k: Self) -> Self {
        self + p as i32 * k
    }
    #[inline(always)]
    fn finish(self, shift: u32) -> u8 {
        (self >> shift).clamp(0, 255) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    fn lcg_image(w: u32, h: u32, mode: Mode, seed: u32) -> ImageBuf {
        let mut s = seed;
        let n = w as usize * h as usize * mode.channels();
        let data = (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect();
        ImageBuf::from_vec(w, h, mode, data).unwrap()
    }

    /// `k` row by row through [`RowKernel`], each window cut from `img`.
    fn apply_rows(k: &RowKernel, img: &ImageBuf) -> Vec<u8> {
        let (w, h, c) = (
            img.width() as usize,
            img.height() as usize,
            img.mode().channels(),
        );
        let r = k.radius();
        let mut out = vec![0u8; w * h * c];
        for (y, o) in out.chunks_exact_mut(w * c).enumerate() {
            // Rows outside the image are empty: they must never be read.
            let window: Vec<&[u8]> = (0..=2 * r)
                .map(|i| match (y + i).checked_sub(r) {
                    Some(yy) if yy < h => img.as_ref().row(yy as u32),
                    _ => &[][..],
                })
                .collect();
            k.row(&window, y, w, h, c, o);
        }
        out
    }

    #[test]
    fn rows_match_whole_image() {
        let mut kernels: Vec<Kernel> = BUILTIN_NAMES
            .iter()
            .map(|n| Kernel::builtin(n).unwrap())
            .collect();
        let w5: Vec<f64> = (0..25).map(|i| f64::from(i % 7) - 3.0).collect();
        kernels.push(Kernel::new(&w5, Some(4.0), 10.0).unwrap());
        kernels.push(
            Kernel::new(&[1.0, -2.0, 1.0, 0.5, 3.0, 0.5, 1.0, -2.0, 1.0], None, 7.0).unwrap(),
        );
        for k in &kernels {
            let Some(rk) = k.rows() else {
                assert!(k.size() == 5, "{k:?}: every 3x3 kernel runs by rows");
                continue;
            };
            for (w, h, mode) in [
                (1, 1, Mode::L),
                (2, 9, Mode::Rgb),
                (4, 4, Mode::Rgb),
                (17, 13, Mode::Rgb),
                (33, 8, Mode::Rgba),
                (6, 40, Mode::L),
            ] {
                let img = lcg_image(w, h, mode, w * 31 + h);
                let mut whole = ImageBuf::default();
                k.apply(img.as_ref(), &mut whole);
                assert_eq!(
                    apply_rows(&rk, &img),
                    whole.data(),
                    "{k:?} {w}x{h} {mode:?}"
                );
            }
        }
    }

    /// `k` applied to `img` on every instruction-set level (which must agree).
    fn apply_levels(k: &Kernel, img: &ImageBuf, out: &mut ImageBuf, integer: bool) {
        let mut bufs = KernelBufs::default();
        k.apply_level(img.as_ref(), out, integer, &mut bufs, Level::Base);
        for level in Level::all() {
            let mut other = ImageBuf::default();
            k.apply_level(img.as_ref(), &mut other, integer, &mut bufs, level);
            assert_eq!(&other, out, "{k:?} {level:?} integer={integer}");
        }
    }

    #[test]
    fn emboss_formula() {
        // EMBOSS = clamp(128.5 + p(x,y) - p(x-1,y+1)), truncated.
        let img = lcg_image(7, 6, Mode::L, 1);
        let k = Kernel::builtin("emboss").unwrap();
        assert!(k.uses_integer_path());
        let mut out = ImageBuf::default();
        k.apply(img.as_ref(), &mut out);
        let p = |x: usize, y: usize| img.data()[y * 7 + x] as f64;
        for y in 0..6 {
            for x in 0..7 {
                let got = out.data()[y * 7 + x];
                let want = if x == 0 || y == 0 || x == 6 || y == 5 {
                    p(x, y) as u8
                } else {
                    (128.5 + p(x, y) - p(x - 1, y + 1)).clamp(0.0, 255.0) as u8
                };
                assert_eq!(got, want, "at {x},{y}");
            }
        }
    }

    #[test]
    fn emboss_rgba_filters_alpha_and_handles_stride() {
        let img = lcg_image(5, 4, Mode::Rgba, 7);
        // Same image with 3 bytes of padding per row.
        let mut padded = Vec::new();
        for row in img.data().chunks(20) {
            padded.extend_from_slice(row);
            padded.extend_from_slice(&[9, 9, 9]);
        }
        let view = ImageRef::new(&padded, 5, 4, 23, Mode::Rgba).unwrap();
        let k = Kernel::builtin("emboss").unwrap();
        let (mut a, mut b) = (ImageBuf::default(), ImageBuf::default());
        k.apply(img.as_ref(), &mut a);
        k.apply(view, &mut b);
        assert_eq!(a, b);
        // Alpha of an interior pixel is filtered too.
        let p = |x: usize, y: usize| img.data()[(y * 5 + x) * 4 + 3] as f64;
        assert_eq!(
            a.data()[(5 + 1) * 4 + 3],
            (128.5 + p(1, 1) - p(0, 2)).clamp(0.0, 255.0) as u8
        );
    }

    #[test]
    fn small_images_are_copied() {
        let img = lcg_image(4, 9, Mode::Rgb, 3);
        let mut out = ImageBuf::default();
        Kernel::builtin("blur")
            .unwrap()
            .apply(img.as_ref(), &mut out);
        assert_eq!(out, img);
    }

    #[test]
    fn integer_path_matches_float_path() {
        for name in BUILTIN_NAMES {
            let k = Kernel::builtin(name).unwrap();
            for mode in [Mode::L, Mode::Rgb, Mode::Rgba] {
                let img = lcg_image(37, 11, mode, 11);
                let (mut a, mut b) = (ImageBuf::default(), ImageBuf::default());
                apply_levels(&k, &img, &mut a, true);
                apply_levels(&k, &img, &mut b, false);
                assert_eq!(a, b, "{name} {mode}");
            }
        }
        let expected_int = [
            "blur",
            "contour",
            "edge_enhance",
            "edge_enhance_more",
            "emboss",
            "find_edges",
            "sharpen",
        ];
        for name in BUILTIN_NAMES {
            assert_eq!(
                Kernel::builtin(name).unwrap().uses_integer_path(),
                expected_int.contains(&name),
                "{name}"
            );
        }
    }

    #[test]
    fn fast_paths_match_float_path() {
        // Ring kernels with odd scales and offsets, emboss-like differences, general ones.
        let mut kernels = Vec::new();
        for (centre, ring, scale, offset) in [
            (5., 1., Some(13.), 0.),
            (5., 1., Some(13.), -3.),
            (9., -1., Some(3.), 7.),
            (20., 2., Some(35.), 0.),
            (1., 1., Some(9.), 0.),
            (-4., 1., Some(5.), 100.),
            (7., -2., Some(127.), 5.),
        ] {
            let mut w = [ring; 9];
            w[4] = centre;
            kernels.push(Kernel::new(&w, scale, offset).unwrap());
        }
        for (w, offset) in [
            ([0., 0., 0., -1., 0., 0., 0., 0., 1.], 128.),
            ([0., 4., 0., 0., 0., 0., -4., 0., 0.], 10.),
            ([1., 2., 1., 0., 0., 0., -1., -2., -1.], 128.),
        ] {
            kernels.push(Kernel::new(&w, Some(1.), offset).unwrap());
        }
        // Larger scales may lack an exact 16-bit reciprocal; they are compared anyway.
        assert_eq!(kernels.iter().filter(|k| k.fast.is_some()).count(), 8);
        for k in &kernels {
            for mode in [Mode::L, Mode::Rgb, Mode::Rgba] {
                let img = lcg_image(1100, 5, mode, 5);
                let (mut a, mut b) = (ImageBuf::default(), ImageBuf::default());
                apply_levels(k, &img, &mut a, true);
                apply_levels(k, &img, &mut b, false);
                assert_eq!(a, b, "{k:?} {mode}");
            }
        }
    }

    /// Pillow's ImagingFilter3x3/5x5 per byte, every tap included, in its order.
    fn reference(k: &Kernel, img: &ImageBuf) -> ImageBuf {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (n, c) = (k.size, img.mode().channels());
        let r = n / 2;
        let mut out = img.clone();
        if w < n || h < n {
            return out;
        }
        let p = |x: usize, y: usize, ch: usize| img.data()[(y * w + x) * c + ch] as f32;
        for y in r..h - r {
            for x in r..w - r {
                for ch in 0..c {
                    let mut ss = k.off;
                    for kr in 0..n {
                        let yy = y + r - kr;
                        let mut rs = p(x - r, yy, ch) * k.q[kr * n];
                        for kc in 1..n {
                            rs += p(x + kc - r, yy, ch) * k.q[kr * n + kc];
                        }
                        ss += rs;
                    }
                    let v = if ss <= 0.0 {
                        0
                    } else if ss >= 255.0 {
                        255
                    } else {
                        ss as u8
                    };
                    out.data_mut()[(y * w + x) * c + ch] = v;
                }
            }
        }
        out
    }

    #[test]
    fn float_path_matches_scalar_reference() {
        let mut kernels: Vec<Kernel> = BUILTIN_NAMES
            .iter()
            .map(|n| Kernel::builtin(n).unwrap())
            .collect();
        let mut s = 99u32;
        let mut rnd = |m: u32| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) % m
        };
        for i in 0..40 {
            let size = if i % 3 == 0 { 25 } else { 9 };
            // Sparse kernels with awkward weights, scales and offsets.
            let w: Vec<f64> = (0..size)
                .map(|_| match rnd(4) {
                    0 => 0.0,
                    _ => rnd(41) as f64 / 4.0 - 5.0,
                })
                .collect();
            let scale = [None, Some(3.0), Some(7.0), Some(-6.0), Some(0.3)][i % 5];
            let offset = [0.0, 0.25, -3.0, 100.0, 7.7][(i / 5) % 5];
            kernels.push(Kernel::new(&w, scale, offset).unwrap());
        }
        kernels.push(Kernel::new(&[0.0; 9], Some(1.0), 17.3).unwrap());
        for k in &kernels {
            for (mode, w, h) in [(Mode::L, 601, 7), (Mode::Rgb, 37, 9), (Mode::Rgba, 5, 5)] {
                let img = lcg_image(w, h, mode, 3);
                let mut got = ImageBuf::default();
                let mut bufs = KernelBufs::default();
                let want = reference(k, &img);
                for level in Level::all() {
                    k.apply_level(img.as_ref(), &mut got, false, &mut bufs, level);
                    assert_eq!(got, want, "{k:?} {mode} {level:?}");
                    // The buffers are reused as is.
                    k.apply_level(img.as_ref(), &mut got, false, &mut bufs, level);
                    assert_eq!(got, want, "{k:?} {mode} {level:?} again");
                }
            }
        }
    }

    #[test]
    fn default_scale_and_errors() {
        let k = Kernel::new(&[1.0; 9], None, 0.0).unwrap();
        assert_eq!(k.scale(), 9.0);
        assert!(!k.scale_given());
        let k = Kernel::new(&[-1., -1., -1., -1., 8., -1., -1., -1., -1.], None, 0.0).unwrap();
        assert_eq!(k.scale(), 1.0);
        assert_eq!(
            Kernel::new(&[1.0; 8], None, 0.0),
            Err(KernelError::WrongCount(8))
        );
        assert_eq!(
            Kernel::new(&[1.0; 9], Some(0.0), 0.0),
            Err(KernelError::ZeroScale)
        );
        assert_eq!(
            Kernel::new(&[f64::NAN; 9], None, 0.0),
            Err(KernelError::NotFinite)
        );
        assert_eq!(
            Kernel::new(&[1e300; 9], Some(1.0), 0.0),
            Err(KernelError::NotFinite)
        );
    }
}
