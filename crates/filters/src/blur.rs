//! Box blur, Gaussian blur and unsharp mask, bit-exact with Pillow's BoxBlur.c and
//! UnsharpMask.c.
//!
//! Pillow's box blur runs `passes` horizontal line blurs, then `passes` vertical ones.
//! Each line blur with float radius `r` (integer part `ri`) computes, per output sample,
//! in wrapping `u32` arithmetic:
//!
//! ```text
//! ww   = (u32)(2^24 / (r*2 + 1))            (f32 division)
//! fw   = (2^24 - (2*ri + 1)*ww) / 2
//! acc  = Σ in[clamp(i)] for i in x-ri ..= x+ri        (edge pixels replicated)
//! bulk = acc*ww + (in[clamp(x-ri-1)] + in[clamp(x+ri+1)])*fw
//! out  = (bulk + 2^23) >> 24
//! ```
//!
//! The Gaussian blur is 3 box passes with the radius from Gwosdek et al. computed in
//! `f32` exactly as `_gaussian_blur_radius` does.

use crate::simd::{self, Level};
use crate::{ImageBuf, ImageRef};

/// Columns processed together by the vertical pass (accumulators on the stack).
const STRIP: usize = 256;

/// Fixed-point weights of one line-blur pass.
#[derive(Debug, Clone, Copy)]
struct LineParams {
    radius: usize,
    ww: u32,
    fw: u32,
}

impl LineParams {
    fn new(r: f32) -> Self {
        let radius = r as u32;
        let ww = (16_777_216.0f32 / (r * 2.0 + 1.0)) as u32;
        let fw = (1u32 << 24).wrapping_sub((radius * 2 + 1).wrapping_mul(ww)) / 2;
        LineParams {
            radius: radius as usize,
            ww,
            fw,
        }
    }

    #[inline(always)]
    fn save(&self, acc: u32, far: u32) -> u8 {
        let bulk = acc
            .wrapping_mul(self.ww)
            .wrapping_add(far.wrapping_mul(self.fw));
        (bulk.wrapping_add(1 << 23) >> 24) as u8
    }
}

/// Pillow's `_gaussian_blur_radius`: the box radius giving a Gaussian of standard
/// deviation `radius` after `passes` box blurs, in f32 as Pillow computes it.
fn gaussian_box_radius(radius: f32, passes: u32) -> f32 {
    let sigma2 = radius * radius / passes as f32;
    let big_l = (12.0f64 * sigma2 as f64 + 1.0).sqrt() as f32;
    let l = ((big_l as f64 - 1.0) / 2.0).floor() as f32;
    let mut a = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2);
    a /= 6.0 * (sigma2 - (l + 1.0) * (l + 1.0));
    l + a
}

/// Reusable buffers of the horizontal pass (one row each).
#[derive(Debug, Default, Clone)]
pub(crate) struct LineBufs {
    /// The row with `radius + 1` edge pixels replicated on each side.
    ext: Vec<u8>,
    /// Per-channel prefix sums of `ext`: `pre[j + c] = pre[j] + ext[j]`.
    pre: Vec<u32>,
}

impl LineBufs {
    /// Loads a row of `c`-byte pixels, padded for radius `r`.
    #[inline(always)]
    fn load(&mut self, inp: &[u8], c: usize, r: usize) {
        let ext = &mut self.ext;
        ext.clear();
        ext.reserve(inp.len() + 2 * (r + 1) * c);
        for _ in 0..=r {
            ext.extend_from_slice(&inp[..c]);
        }
        ext.extend_from_slice(inp);
        for _ in 0..=r {
            ext.extend_from_slice(&inp[inp.len() - c..]);
        }
    }

    /// Horizontal line blur of the loaded row into `out` (the row's length).
    ///
    /// With `ext` the row padded by `r + 1` replicated edge pixels, the window sum of pixel
    /// `x` is `pre[x + 2r + 2] - pre[x + 1]` (in pixels, per channel) and the far pixels are
    /// `ext[x]` and `ext[x + 2r + 2]`; only the prefix sum is sequential, the output loop
    /// is vectorised. Wrapping `u32` arithmetic gives exactly Pillow's sums.
    #[inline(always)]
    fn blur_into(&mut self, out: &mut [u8], c: usize, p: LineParams) {
        let r = p.radius;
        let ext = &self.ext;
        let len = ext.len();
        let pre = &mut self.pre;
        pre.clear();
        pre.resize(len + c, 0);
        match c {
            1 => prefix_sums::<1>(ext, pre),
            3 => prefix_sums::<3>(ext, pre),
            _ => prefix_sums::<4>(ext, pre),
        }
        let m = out.len();
        let span = (2 * r + 2) * c;
        let (hi_sum, lo_sum) = (&pre[span..span + m], &pre[c..c + m]);
        let (near, far) = (&ext[..m], &ext[span..span + m]);
        let out = &mut out[..m];
        for j in 0..m {
            out[j] = p.save(
                hi_sum[j].wrapping_sub(lo_sum[j]),
                near[j] as u32 + far[j] as u32,
            );
        }
    }
}

/// `pre[j + C] = pre[j] + ext[j]` with `pre[..C] = 0` (per-channel running sums).
#[inline(always)]
fn prefix_sums<const C: usize>(ext: &[u8], pre: &mut [u32]) {
    let mut acc = [0u32; C];
    for (d, v) in pre[C..].chunks_exact_mut(C).zip(ext.chunks_exact(C)) {
        for ch in 0..C {
            acc[ch] = acc[ch].wrapping_add(v[ch] as u32);
            d[ch] = acc[ch];
        }
    }
}

/// Vertical line blur of a strip: `h` rows of `sw` bytes, row `y` of the input at
/// `inp[y * in_stride..]`, of the output at `out[y * out_stride..]`.
#[inline(always)]
fn blur_strip(
    inp: &[u8],
    in_stride: usize,
    out: &mut [u8],
    out_stride: usize,
    sw: usize,
    h: usize,
    p: LineParams,
) {
    let last = h - 1;
    let r = p.radius;
    let row = |y: usize| &inp[y.min(last) * in_stride..][..sw];
    let mut acc = [0u32; STRIP];
    let acc = &mut acc[..sw];
    let inside = r.min(h);
    for (a, &v) in acc.iter_mut().zip(row(0)) {
        *a = (v as u32).wrapping_mul(r as u32 + 1);
    }
    for i in 0..inside {
        for (a, &v) in acc.iter_mut().zip(row(i)) {
            *a = a.wrapping_add(v as u32);
        }
    }
    for (a, &v) in acc.iter_mut().zip(row(last)) {
        *a = a.wrapping_add((v as u32).wrapping_mul((r - inside) as u32));
    }
    for y in 0..h {
        let sub = row(y.saturating_sub(r + 1));
        let add = row(y + r);
        let far = row(y + r + 1);
        let o = &mut out[y * out_stride..][..sw];
        for j in 0..sw {
            acc[j] = acc[j]
                .wrapping_add(add[j] as u32)
                .wrapping_sub(sub[j] as u32);
            o[j] = p.save(acc[j], sub[j] as u32 + far[j] as u32);
        }
    }
}

/// Reusable working buffers of the blurs: a padded row with its prefix sums, and a
/// column strip. They grow to the largest image seen and are then reused as they are.
#[derive(Debug, Default, Clone)]
pub(crate) struct BlurBufs {
    line: LineBufs,
    strip: Vec<u8>,
}

impl BlurBufs {
    /// Where and how big the buffers are (tests check reuse).
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> Vec<(usize, usize)> {
        vec![
            (self.line.ext.as_ptr() as usize, self.line.ext.capacity()),
            (self.line.pre.as_ptr() as usize, self.line.pre.capacity()),
            (self.strip.as_ptr() as usize, self.strip.capacity()),
        ]
    }
}

/// Pillow's `ImagingBoxBlur(radius, radius, passes)` (`ImageFilter.BoxBlur` is one pass).
pub fn box_blur(
    src: ImageRef<'_>,
    dst: &mut ImageBuf,
    radius: f32,
    passes: u32,
    bufs: &mut BlurBufs,
) {
    if radius == 0.0 || passes == 0 {
        dst.copy_from(src);
        return;
    }
    let p = LineParams::new(radius);
    simd::run(
        Level::best(),
        #[inline(always)]
        || box_blur_impl(src, dst, p, passes, bufs),
    )
}

/// [`box_blur`] with a radius that is not 0 and at least one pass.
#[inline(always)]
fn box_blur_impl(
    src: ImageRef<'_>,
    dst: &mut ImageBuf,
    p: LineParams,
    passes: u32,
    bufs: &mut BlurBufs,
) {
    let c = src.mode.channels();
    let rb = src.row_bytes();
    let h = src.height as usize;
    dst.reshape(src.width, src.height, src.mode);
    if rb == 0 || h == 0 {
        return;
    }
    // Horizontal passes, row by row.
    let BlurBufs { line, strip } = bufs;
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        line.load(src.row(y as u32), c, p.radius);
        line.blur_into(out, c, p);
        for _ in 1..passes {
            line.load(out, c, p.radius);
            line.blur_into(out, c, p);
        }
    }
    // Vertical passes, strip by strip.
    let strip_len = h * STRIP.min(rb);
    if strip.len() < strip_len {
        strip.resize(strip_len, 0);
    }
    let strip = &mut strip[..strip_len];
    let data = dst.data_mut();
    for j0 in (0..rb).step_by(STRIP) {
        let sw = STRIP.min(rb - j0);
        for _ in 0..passes {
            for (y, t) in strip.chunks_exact_mut(sw).enumerate().take(h) {
                t.copy_from_slice(&data[y * rb + j0..][..sw]);
            }
            blur_strip(strip, sw, &mut data[j0..], rb, sw, h, p);
        }
    }
}

/// `ImageFilter.GaussianBlur(radius)`: three box passes.
pub fn gaussian_blur(src: ImageRef<'_>, dst: &mut ImageBuf, radius: f32, bufs: &mut BlurBufs) {
    if radius == 0.0 {
        dst.copy_from(src);
        return;
    }
    box_blur(src, dst, gaussian_box_radius(radius, 3), 3, bufs);
}

/// `ImageFilter.UnsharpMask(radius, percent, threshold)`: Gaussian blur, then per byte
/// `in + (in - blur) * percent / 100` (C integer division) where `|in - blur| > threshold`.
pub fn unsharp_mask(
    src: ImageRef<'_>,
    dst: &mut ImageBuf,
    radius: f32,
    percent: i32,
    threshold: i32,
    bufs: &mut BlurBufs,
) {
    // Pillow calls the C Gaussian blur directly (no radius-0 shortcut); a zero box radius
    // copies, which gives the same result.
    box_blur(src, dst, gaussian_box_radius(radius, 3), 3, bufs);
    let rb = src.row_bytes();
    if rb == 0 {
        return;
    }
    // |diff| <= 255, so `diff * percent` fits in i32 (vectorised) for such percents.
    if percent.unsigned_abs() <= i32::MAX as u32 / 255 {
        simd::run(
            Level::best(),
            #[inline(always)]
            || sharpen_rows::<i32>(src, dst, percent, threshold),
        )
    } else {
        sharpen_rows::<i64>(src, dst, percent, threshold)
    }
}

/// The sharpening step of [`unsharp_mask`] (`dst` holds the blur), in `T` arithmetic.
#[inline(always)]
fn sharpen_rows<T>(src: ImageRef<'_>, dst: &mut ImageBuf, percent: i32, threshold: i32)
where
    T: From<i32> + TryInto<u8> + Ord + Copy,
    T: std::ops::Add<Output = T> + std::ops::Mul<Output = T> + std::ops::Div<Output = T>,
{
    let rb = src.row_bytes();
    let (percent, hundred) = (T::from(percent), T::from(100));
    let (zero, max) = (T::from(0), T::from(255));
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        for (o, &i) in out.iter_mut().zip(src.row(y as u32)) {
            let diff = i as i32 - *o as i32;
            let v = T::from(i as i32) + T::from(diff) * percent / hundred;
            // Always fits after the clamp.
            let v = v.clamp(zero, max).try_into().unwrap_or(0);
            *o = if diff.abs() > threshold { v } else { i };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    #[test]
    fn gaussian_radius_matches_pillow_formula() {
        // sigma^2 = 4/3 for radius 2: L = sqrt(17) = 4.123, l = 1,
        // a = 3 * (2 - 4) / (6 * (4/3 - 4)) = 0.375
        assert!((gaussian_box_radius(2.0, 3) - 1.375).abs() < 1e-6);
        assert_eq!(gaussian_box_radius(0.0, 3), 0.0);
    }

    #[test]
    fn uniform_image_stays_uniform() {
        let src = ImageBuf::from_vec(9, 7, Mode::Rgb, vec![77; 9 * 7 * 3]).unwrap();
        let mut out = ImageBuf::default();
        for r in [0.3f32, 1.0, 2.5, 40.0] {
            box_blur(src.as_ref(), &mut out, r, 1, &mut BlurBufs::default());
            assert_eq!(out, src, "box {r}");
            gaussian_blur(src.as_ref(), &mut out, r, &mut BlurBufs::default());
            assert_eq!(out, src, "gaussian {r}");
        }
    }

    #[test]
    fn box_blur_radius_one_is_3x3_mean_in_the_interior() {
        let data: Vec<u8> = (0..25).map(|i| (i * 10) as u8).collect();
        let src = ImageBuf::from_vec(5, 5, Mode::L, data).unwrap();
        let mut out = ImageBuf::default();
        box_blur(src.as_ref(), &mut out, 1.0, 1, &mut BlurBufs::default());
        // Linear ramp: the mean of a 3x3 window is the centre value.
        assert_eq!(out.data()[2 * 5 + 2], 120);
    }

    #[test]
    fn unsharp_threshold_keeps_small_differences() {
        let src = ImageBuf::from_vec(3, 1, Mode::L, vec![100, 101, 100]).unwrap();
        let mut out = ImageBuf::default();
        unsharp_mask(
            src.as_ref(),
            &mut out,
            2.0,
            150,
            3,
            &mut BlurBufs::default(),
        );
        assert_eq!(out, src);
    }
}
