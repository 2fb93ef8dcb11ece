//! `Image.resize`, reproducing Pillow's Resample.c (convolution filters) and the
//! nearest-neighbour affine scaler of Geometry.c.
//!
//! - Convolution resampling: per output position, `f64` filter weights over the source
//!   window, normalised to sum 1, then rounded to 22-bit fixed point; a horizontal pass
//!   (only the source rows the vertical pass needs) then a vertical pass, each
//!   `clamp((2^21 + Σ p·k) >> 22, 0, 255)`. A pass is skipped when that dimension is
//!   unchanged.
//! - RGBA (non-nearest) is premultiplied (`RGBa`) first and unpremultiplied after, as
//!   `Image.resize` does.
//! - Nearest: source coordinate `floor((x + 0.5) · in/out)`, accumulated in `f64` as
//!   Pillow does.

use crate::simd::{self, Level};
use crate::{ImageBuf, ImageRef, Mode};

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Resampling filter of `resize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `Resampling.NEAREST`.
    Nearest,
    /// `Resampling.BILINEAR`.
    Bilinear,
    /// `Resampling.BICUBIC` (Pillow's default).
    Bicubic,
    /// `Resampling.LANCZOS`.
    Lanczos,
}

impl Method {
    /// Name used in chains.
    pub fn name(self) -> &'static str {
        match self {
            Method::Nearest => "nearest",
            Method::Bilinear => "bilinear",
            Method::Bicubic => "bicubic",
            Method::Lanczos => "lanczos",
        }
    }

    fn support(self) -> f64 {
        match self {
            Method::Nearest => 0.5,
            Method::Bilinear => 1.0,
            Method::Bicubic => 2.0,
            Method::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        fn sinc(x: f64) -> f64 {
            if x == 0.0 {
                1.0
            } else {
                let x = x * std::f64::consts::PI;
                x.sin() / x
            }
        }
        match self {
            Method::Nearest => f64::from(u8::from(x > -0.5 && x <= 0.5)),
            Method::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Method::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Method::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Fixed-point weights for one axis: output `i` reads `len[i]` inputs from `start[i]`
/// with weights `k[i * ksize..]`. Kept between calls: recomputed only when the sizes or
/// the method change.
#[derive(Debug, Default, Clone)]
pub(crate) struct Coeffs {
    /// `(in_size, out_size, method)` the weights are for.
    key: Option<(u32, u32, Method)>,
    ksize: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    k: Vec<i32>,
    /// Working row of `f64` weights.
    w: Vec<f64>,
}

impl Coeffs {
    /// Where and how big the buffers are (tests check reuse).
    #[cfg(test)]
    fn fingerprint(&self) -> Vec<(usize, usize)> {
        vec![
            (self.start.as_ptr() as usize, self.start.capacity()),
            (self.len.as_ptr() as usize, self.len.capacity()),
            (self.k.as_ptr() as usize, self.k.capacity()),
            (self.w.as_ptr() as usize, self.w.capacity()),
        ]
    }

    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `0..in_size`.
    fn update(&mut self, in_size: u32, out_size: u32, m: Method) {
        if self.key == Some((in_size, out_size, m)) {
            return;
        }
        let scale = in_size as f32 as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = m.support() * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let n = out_size as usize;
        self.ksize = ksize;
        self.start.clear();
        self.len.clear();
        self.k.clear();
        self.k.resize(n * ksize, 0);
        self.w.clear();
        self.w.resize(ksize, 0.0);
        let w = &mut self.w;
        for xx in 0..n {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let len = (xmax - xmin).max(0) as usize;
            let mut total = 0.0;
            for (x, wx) in w.iter_mut().enumerate().take(len) {
                *wx = m.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
                total += *wx;
            }
            let k = &mut self.k[xx * ksize..][..ksize];
            for (kx, &wx) in k.iter_mut().zip(w.iter()).take(len) {
                let v = if total != 0.0 { wx / total } else { wx };
                let f = v * (1 << PRECISION_BITS) as f64;
                *kx = if v < 0.0 {
                    (f - 0.5) as i32
                } else {
                    (f + 0.5) as i32
                };
            }
            self.start.push(xmin as usize);
            self.len.push(len);
        }
        self.key = Some((in_size, out_size, m));
    }
}

/// Reusable working buffers of [`resize`]; they grow to the largest sizes seen and are
/// then reused without allocating.
#[derive(Debug, Default, Clone)]
pub(crate) struct ResizeBufs {
    /// Premultiplied RGBA source.
    pre: ImageBuf,
    /// Output of the horizontal pass.
    tmp: ImageBuf,
    hc: Coeffs,
    vc: Coeffs,
    /// Accumulators of one output row of the vertical pass.
    acc: Vec<i32>,
    /// Nearest: source column of each output column, and source row of each output row
    /// (`u32::MAX`: outside the source).
    xs: Vec<u32>,
    ys: Vec<u32>,
    /// Nearest, RGB: source byte offset of each output column.
    xo: Vec<u32>,
}

#[inline(always)]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

impl ResizeBufs {
    /// Where and how big the buffers are (tests check reuse).
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> Vec<(usize, usize)> {
        let mut f = self.hc.fingerprint();
        f.extend(self.vc.fingerprint());
        for v in [&self.pre, &self.tmp] {
            f.push((v.data().as_ptr() as usize, v.data().len()));
        }
        f.push((self.acc.as_ptr() as usize, self.acc.capacity()));
        for v in [&self.xs, &self.ys, &self.xo] {
            f.push((v.as_ptr() as usize, v.capacity()));
        }
        f
    }
}

/// `Image.resize((w, h), method)` for L, RGB and RGBA.
pub fn resize(
    src: ImageRef<'_>,
    dst: &mut ImageBuf,
    w: u32,
    h: u32,
    m: Method,
    bufs: &mut ResizeBufs,
) {
    if (w, h) == (src.width, src.height) || src.width == 0 || src.height == 0 {
        // Pillow returns a copy for the same size; an empty source has nothing to sample.
        if (w, h) == (src.width, src.height) {
            dst.copy_from(src);
        } else {
            dst.reshape(w, h, src.mode);
            dst.data_mut().fill(0);
        }
        return;
    }
    if m == Method::Nearest {
        return nearest(src, dst, w, h, bufs);
    }
    simd::run(
        Level::best(),
        #[inline(always)]
        || {
            if src.mode == Mode::Rgba {
                let mut pre = std::mem::take(&mut bufs.pre);
                premultiply(src, &mut pre);
                convolve(pre.as_ref(), dst, w, h, m, bufs);
                unpremultiply(dst.data_mut());
                bufs.pre = pre;
            } else {
                convolve(src, dst, w, h, m, bufs);
            }
        },
    )
}

/// Pillow's `rgbA2rgba`: `c * a / 255` rounded as `MULDIV255`.
fn premultiply(src: ImageRef<'_>, dst: &mut ImageBuf) {
    dst.reshape(src.width, src.height, src.mode);
    let rb = src.row_bytes();
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        for (o, p) in out
            .chunks_exact_mut(4)
            .zip(src.row(y as u32).chunks_exact(4))
        {
            let a = p[3] as u32;
            for i in 0..3 {
                let t = p[i] as u32 * a + 128;
                o[i] = (((t >> 8) + t) >> 8) as u8;
            }
            o[3] = p[3];
        }
    }
}

/// Pillow's `rgba2rgbA`: `min(255, 255 * c / a)` unless alpha is 0 or 255.
fn unpremultiply(data: &mut [u8]) {
    for p in data.chunks_exact_mut(4) {
        let a = p[3] as u32;
        if a != 0 && a != 255 {
            for v in &mut p[..3] {
                *v = (255 * *v as u32 / a).min(255) as u8;
            }
        }
    }
}

#[inline(always)]
fn convolve(
    src: ImageRef<'_>,
    dst: &mut ImageBuf,
    w: u32,
    h: u32,
    m: Method,
    bufs: &mut ResizeBufs,
) {
    let c = src.mode.channels();
    let need_h = w != src.width;
    let need_v = h != src.height;
    let ResizeBufs {
        tmp, hc, vc, acc, ..
    } = bufs;
    if need_v {
        vc.update(src.height, h, m);
    }
    // Source rows the vertical pass reads.
    let (first, last) = if need_v {
        (
            vc.start[0],
            vc.start[h as usize - 1] + vc.len[h as usize - 1],
        )
    } else {
        (0, src.height as usize)
    };
    let half = 1i32 << (PRECISION_BITS - 1);
    let horizontal_out: &mut ImageBuf = if need_v { &mut *tmp } else { &mut *dst };
    let mid: ImageRef<'_> = if need_h {
        hc.update(src.width, w, m);
        horizontal_out.reshape(w, (last - first) as u32, src.mode);
        let orb = w as usize * c;
        for (yy, out) in horizontal_out.data_mut().chunks_exact_mut(orb).enumerate() {
            let row = src.row((yy + first) as u32);
            match c {
                1 => horizontal::<1>(row, out, hc),
                3 => horizontal::<3>(row, out, hc),
                _ => horizontal::<4>(row, out, hc),
            }
        }
        if !need_v {
            return;
        }
        tmp.as_ref()
    } else {
        src
    };
    // Row offset of `mid` relative to the source rows.
    let base = if need_h { first } else { 0 };
    dst.reshape(w, h, src.mode);
    let orb = w as usize * c;
    acc.clear();
    acc.resize(orb, 0);
    for (yy, out) in dst.data_mut().chunks_exact_mut(orb).enumerate() {
        acc.fill(half);
        let k = &vc.k[yy * vc.ksize..][..vc.len[yy]];
        for (i, &ky) in k.iter().enumerate() {
            let row = mid.row((vc.start[yy] + i - base) as u32);
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add((p as i32).wrapping_mul(ky));
            }
        }
        for (o, &a) in out.iter_mut().zip(acc.iter()) {
            *o = clip8(a);
        }
    }
}

/// One row of the horizontal pass, all `C` channels of an output pixel at once.
#[inline(always)]
fn horizontal<const C: usize>(row: &[u8], out: &mut [u8], hc: &Coeffs) {
    let half = 1i32 << (PRECISION_BITS - 1);
    for (xx, o) in out.chunks_exact_mut(C).enumerate() {
        let len = hc.len[xx];
        let k = &hc.k[xx * hc.ksize..][..len];
        let inp = &row[hc.start[xx] * C..][..len * C];
        let mut ss = [half; C];
        for (&kx, p) in k.iter().zip(inp.chunks_exact(C)) {
            for ch in 0..C {
                ss[ch] = ss[ch].wrapping_add((p[ch] as i32).wrapping_mul(kx));
            }
        }
        for ch in 0..C {
            o[ch] = clip8(ss[ch]);
        }
    }
}

/// Nearest neighbour as Pillow's `ImagingScaleAffine`: the source position of every
/// output column and row is computed once (into reusable tables), then whole pixels are
/// copied; an output row from the same source row as the previous one is a row copy.
fn nearest(src: ImageRef<'_>, dst: &mut ImageBuf, w: u32, h: u32, bufs: &mut ResizeBufs) {
    const OUTSIDE: u32 = u32::MAX;
    let c = src.mode.channels();
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let table = |t: &mut Vec<u32>, n: u32, size: u32| {
        let a = size as f32 as f64 / n as f64;
        let mut o = a * 0.5;
        t.clear();
        t.extend((0..n).map(|_| {
            let i = coord(o);
            o += a;
            if (0..size as i64).contains(&i) {
                i as u32
            } else {
                OUTSIDE
            }
        }));
    };
    let ResizeBufs { xs, ys, xo, .. } = bufs;
    table(xs, w, src.width);
    table(ys, h, src.height);
    dst.reshape(w, h, src.mode);
    let orb = w as usize * c;
    // Columns outside the source (upscaling edge cases only) stay zero.
    let all_x = !xs.contains(&OUTSIDE);
    // RGB rows whose byte offsets fit in u32 take the fast path.
    let fast3 = c == 3 && all_x && src.row_bytes() < (u32::MAX - 4) as usize;
    if fast3 {
        xo.clear();
        xo.extend(xs.iter().map(|&x| x * 3));
    }
    let data = dst.data_mut();
    for (y, &sy) in ys.iter().enumerate() {
        let (done, rest) = data.split_at_mut(y * orb);
        let out = &mut rest[..orb];
        if sy == OUTSIDE {
            out.fill(0);
            continue;
        }
        if y > 0 && ys[y - 1] == sy {
            out.copy_from_slice(&done[(y - 1) * orb..]);
            continue;
        }
        if !all_x {
            out.fill(0);
        }
        let row = src.row(sy);
        match c {
            3 if fast3 => nearest_row3(row, out, xo),
            1 => nearest_row::<1>(row, out, xs),
            3 => nearest_row::<3>(row, out, xs),
            _ => nearest_row::<4>(row, out, xs),
        }
    }
}

/// One output row; columns whose offset is outside `row` are left as they are.
fn nearest_row<const C: usize>(row: &[u8], out: &mut [u8], xs: &[u32]) {
    let (out, _) = out.as_chunks_mut::<C>();
    let (pixels, _) = row.as_chunks::<C>();
    for (o, &sx) in out.iter_mut().zip(xs) {
        if let Some(p) = pixels.get(sx as usize) {
            *o = *p;
        }
    }
}

/// One RGB output row from the byte offsets `xo`, every one inside `row`. Pixels whose
/// source has a byte to spare are read as 4 bytes and written 4 output pixels (12 bytes)
/// at a time, each write overlapping the next pixel's first byte before that is
/// written; the rest are 3-byte copies.
fn nearest_row3(row: &[u8], out: &mut [u8], xo: &[u32]) {
    let n = xo.len().min(out.len() / 3);
    let wide = xo[..n].partition_point(|&o| o as usize + 4 <= row.len()) / 4 * 4;
    let get = |o: u32| -> [u8; 4] {
        let o = o as usize;
        row[o..o + 4].try_into().unwrap_or_default()
    };
    let (blocks, _) = out[..wide * 3].as_chunks_mut::<12>();
    let (xblocks, _) = xo[..wide].as_chunks::<4>();
    for (o, x) in blocks.iter_mut().zip(xblocks) {
        let (a, b, c, d) = (get(x[0]), get(x[1]), get(x[2]), get(x[3]));
        o[0..4].copy_from_slice(&a);
        o[3..7].copy_from_slice(&b);
        o[6..10].copy_from_slice(&c);
        o[9..12].copy_from_slice(&d[..3]);
    }
    for (j, &o) in xo[..n].iter().enumerate().skip(wide) {
        let o = o as usize;
        out[3 * j..3 * j + 3].copy_from_slice(&row[o..o + 3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_uniform() {
        let src = ImageBuf::from_vec(7, 5, Mode::Rgb, vec![90; 7 * 5 * 3]).unwrap();
        let mut out = ImageBuf::default();
        for m in [
            Method::Nearest,
            Method::Bilinear,
            Method::Bicubic,
            Method::Lanczos,
        ] {
            resize(src.as_ref(), &mut out, 13, 3, m, &mut ResizeBufs::default());
            assert_eq!((out.width(), out.height()), (13, 3));
            assert!(out.data().iter().all(|&v| v == 90), "{m:?}");
        }
    }

    #[test]
    fn nearest_doubles_pixels() {
        let src = ImageBuf::from_vec(2, 1, Mode::L, vec![10, 20]).unwrap();
        let mut out = ImageBuf::default();
        resize(
            src.as_ref(),
            &mut out,
            4,
            2,
            Method::Nearest,
            &mut ResizeBufs::default(),
        );
        assert_eq!(out.data(), &[10, 10, 20, 20, 10, 10, 20, 20]);
    }

    #[test]
    fn nearest_matches_per_pixel_formula() {
        let mut bufs = ResizeBufs::default();
        for mode in [Mode::L, Mode::Rgb, Mode::Rgba] {
            let c = mode.channels();
            for (iw, ih, ow, oh) in [
                (1920, 4, 640, 3),
                (7, 5, 13, 11),
                (13, 3, 5, 7),
                (1, 1, 9, 2),
                (33, 2, 32, 2),
                (5, 5, 4, 4),
                (2, 3, 1, 1),
            ] {
                let data: Vec<u8> = (0..iw * ih * c).map(|i| (i * 31 % 253) as u8).collect();
                let src = ImageBuf::from_vec(iw as u32, ih as u32, mode, data).unwrap();
                let mut out = ImageBuf::default();
                resize(
                    src.as_ref(),
                    &mut out,
                    ow as u32,
                    oh as u32,
                    Method::Nearest,
                    &mut bufs,
                );
                // Pillow: floor((i + 0.5) * in / out), the f64 sum accumulated.
                let pos = |n: usize, size: usize| {
                    let a = size as f32 as f64 / n as f64;
                    let mut o = a * 0.5;
                    (0..n)
                        .map(|_| {
                            let i = o as usize;
                            o += a;
                            i
                        })
                        .collect::<Vec<_>>()
                };
                let (xs, ys) = (pos(ow, iw), pos(oh, ih));
                for (y, &sy) in ys.iter().enumerate() {
                    for (x, &sx) in xs.iter().enumerate() {
                        let o = (y * ow + x) * c;
                        let i = (sy * iw + sx) * c;
                        assert_eq!(
                            out.data()[o..o + c],
                            src.data()[i..i + c],
                            "{mode} {iw}x{ih}->{ow}x{oh} at {x},{y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn premultiply_roundtrip_rules() {
        let src = ImageBuf::from_vec(1, 1, Mode::Rgba, vec![200, 100, 0, 128]).unwrap();
        let mut pre = ImageBuf::default();
        premultiply(src.as_ref(), &mut pre);
        assert_eq!(pre.data(), &[100, 50, 0, 128]);
        let mut d = pre.data().to_vec();
        unpremultiply(&mut d);
        assert_eq!(d, [199, 99, 0, 128]);
    }
}
