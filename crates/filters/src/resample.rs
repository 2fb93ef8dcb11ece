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
/// with weights `k[i * ksize..]`.
struct Coeffs {
    ksize: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    k: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `0..in_size`.
fn coeffs(in_size: u32, out_size: u32, m: Method) -> Coeffs {
    let scale = in_size as f32 as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = m.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let n = out_size as usize;
    let mut c = Coeffs {
        ksize,
        start: Vec::with_capacity(n),
        len: Vec::with_capacity(n),
        k: vec![0; n * ksize],
    };
    let mut w = vec![0f64; ksize];
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
        let k = &mut c.k[xx * ksize..][..ksize];
        for (kx, &wx) in k.iter_mut().zip(&w).take(len) {
            let v = if total != 0.0 { wx / total } else { wx };
            let f = v * (1 << PRECISION_BITS) as f64;
            *kx = if v < 0.0 {
                (f - 0.5) as i32
            } else {
                (f + 0.5) as i32
            };
        }
        c.start.push(xmin as usize);
        c.len.push(len);
    }
    c
}

#[inline(always)]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `Image.resize((w, h), method)` for L, RGB and RGBA.
pub fn resize(src: ImageRef<'_>, dst: &mut ImageBuf, w: u32, h: u32, m: Method) {
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
        return nearest(src, dst, w, h);
    }
    if src.mode == Mode::Rgba {
        let mut pre = ImageBuf::default();
        premultiply(src, &mut pre);
        convolve(pre.as_ref(), dst, w, h, m);
        unpremultiply(dst.data_mut());
    } else {
        convolve(src, dst, w, h, m);
    }
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

fn convolve(src: ImageRef<'_>, dst: &mut ImageBuf, w: u32, h: u32, m: Method) {
    let c = src.mode.channels();
    let need_h = w != src.width;
    let need_v = h != src.height;
    let vc = need_v.then(|| coeffs(src.height, h, m));
    // Source rows the vertical pass reads.
    let (first, last) = match &vc {
        Some(v) => (v.start[0], v.start[h as usize - 1] + v.len[h as usize - 1]),
        None => (0, src.height as usize),
    };
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut tmp = ImageBuf::default();
    let horizontal_out: &mut ImageBuf = if need_v { &mut tmp } else { &mut *dst };
    let mid: ImageRef<'_> = if need_h {
        let hc = coeffs(src.width, w, m);
        horizontal_out.reshape(w, (last - first) as u32, src.mode);
        let orb = w as usize * c;
        for (yy, out) in horizontal_out.data_mut().chunks_exact_mut(orb).enumerate() {
            let row = src.row((yy + first) as u32);
            match c {
                1 => horizontal::<1>(row, out, &hc),
                3 => horizontal::<3>(row, out, &hc),
                _ => horizontal::<4>(row, out, &hc),
            }
        }
        if !need_v {
            return;
        }
        tmp.as_ref()
    } else {
        src
    };
    let Some(vc) = vc else {
        return;
    };
    // Row offset of `mid` relative to the source rows.
    let base = if need_h { first } else { 0 };
    dst.reshape(w, h, src.mode);
    let orb = w as usize * c;
    let mut acc = vec![0i32; orb];
    for (yy, out) in dst.data_mut().chunks_exact_mut(orb).enumerate() {
        acc.fill(half);
        let k = &vc.k[yy * vc.ksize..][..vc.len[yy]];
        for (i, &ky) in k.iter().enumerate() {
            let row = mid.row((vc.start[yy] + i - base) as u32);
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add((p as i32).wrapping_mul(ky));
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

/// One row of the horizontal pass, all `C` channels of an output pixel at once.
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

/// Nearest neighbour as Pillow's `ImagingScaleAffine`.
fn nearest(src: ImageRef<'_>, dst: &mut ImageBuf, w: u32, h: u32) {
    let c = src.mode.channels();
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let table = |n: u32, size: u32| -> Vec<Option<usize>> {
        let a = size as f32 as f64 / n as f64;
        let mut o = a * 0.5;
        (0..n)
            .map(|_| {
                let i = coord(o);
                o += a;
                (0..size as i64).contains(&i).then_some(i as usize)
            })
            .collect()
    };
    let xs = table(w, src.width);
    let ys = table(h, src.height);
    dst.reshape(w, h, src.mode);
    let orb = w as usize * c;
    // Columns outside the source (upscaling edge cases only) stay zero.
    let all_x = xs.iter().all(Option::is_some);
    for (out, sy) in dst.data_mut().chunks_exact_mut(orb).zip(&ys) {
        let Some(sy) = *sy else {
            out.fill(0);
            continue;
        };
        if !all_x {
            out.fill(0);
        }
        let row = src.row(sy as u32);
        match c {
            1 => nearest_row::<1>(row, out, &xs),
            3 => nearest_row::<3>(row, out, &xs),
            _ => nearest_row::<4>(row, out, &xs),
        }
    }
}

fn nearest_row<const C: usize>(row: &[u8], out: &mut [u8], xs: &[Option<usize>]) {
    let (pixels, _) = row.as_chunks::<C>();
    let (out, _) = out.as_chunks_mut::<C>();
    for (o, sx) in out.iter_mut().zip(xs) {
        if let Some(p) = sx.and_then(|sx| pixels.get(sx)) {
            *o = *p;
        }
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
            resize(src.as_ref(), &mut out, 13, 3, m);
            assert_eq!((out.width(), out.height()), (13, 3));
            assert!(out.data().iter().all(|&v| v == 90), "{m:?}");
        }
    }

    #[test]
    fn nearest_doubles_pixels() {
        let src = ImageBuf::from_vec(2, 1, Mode::L, vec![10, 20]).unwrap();
        let mut out = ImageBuf::default();
        resize(src.as_ref(), &mut out, 4, 2, Method::Nearest);
        assert_eq!(out.data(), &[10, 10, 20, 20, 10, 10, 20, 20]);
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
