//! Geometry: `Image.crop` and `Image.transpose`.

use crate::{ImageBuf, ImageRef};

/// Source columns per band of the 90° / 270° rotations.
const ROT_BAND: usize = 32;

/// A lossless rotation or mirror, as Pillow's `Image.Transpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transpose {
    /// `FLIP_LEFT_RIGHT`.
    FlipH,
    /// `FLIP_TOP_BOTTOM`.
    FlipV,
    /// `ROTATE_90`: 90° counter-clockwise.
    Rotate90,
    /// `ROTATE_180`.
    Rotate180,
    /// `ROTATE_270`: 90° clockwise.
    Rotate270,
}

/// Pillow's `crop((x, y, x + w, y + h))`: the box may extend past the image, and the
/// outside is filled with zero bytes (transparent black for RGBA).
pub fn crop(src: ImageRef<'_>, dst: &mut ImageBuf, w: u32, h: u32, x: i64, y: i64) {
    let c = src.mode.channels();
    dst.reshape(w, h, src.mode);
    let out_rb = w as usize * c;
    if out_rb == 0 {
        return;
    }
    // Overlap of [x, x+w) with [0, width), in destination coordinates.
    let x0 = x.clamp(0, src.width as i64);
    let x1 = (x + w as i64).clamp(0, src.width as i64);
    for (j, out) in dst.data_mut().chunks_exact_mut(out_rb).enumerate() {
        let sy = y + j as i64;
        if sy < 0 || sy >= src.height as i64 || x1 <= x0 {
            out.fill(0);
            continue;
        }
        let row = src.row(sy as u32);
        let (d0, d1) = (((x0 - x) as usize) * c, ((x1 - x) as usize) * c);
        out[..d0].fill(0);
        out[d0..d1].copy_from_slice(&row[x0 as usize * c..x1 as usize * c]);
        out[d1..].fill(0);
    }
}

/// Pillow's `Image.transpose`.
pub fn transpose(src: ImageRef<'_>, dst: &mut ImageBuf, t: Transpose) {
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    let (ow, oh) = match t {
        Transpose::Rotate90 | Transpose::Rotate270 => (h, w),
        _ => (w, h),
    };
    dst.reshape(ow as u32, oh as u32, src.mode);
    let out_rb = ow * c;
    if out_rb == 0 {
        return;
    }
    match c {
        1 => transpose_px::<1>(src, dst, t),
        3 => transpose_px::<3>(src, dst, t),
        _ => transpose_px::<4>(src, dst, t),
    }
}

/// [`transpose`] of `C`-byte pixels (a constant: pixels move as `[u8; C]` values, not
/// through `memcpy` calls).
fn transpose_px<const C: usize>(src: ImageRef<'_>, dst: &mut ImageBuf, t: Transpose) {
    let (w, h) = (src.width as usize, src.height as usize);
    let out_rb = dst.width() as usize * C;
    if matches!(t, Transpose::Rotate90 | Transpose::Rotate270) {
        // Output row j is source column w-1-j (90) or j (270). In bands of ROT_BAND
        // source columns, each source row is read once per band (cache friendly).
        let out = dst.data_mut().as_chunks_mut::<C>().0;
        let rot90 = t == Transpose::Rotate90;
        for x0 in (0..w).step_by(ROT_BAND) {
            let x1 = (x0 + ROT_BAND).min(w);
            for i in 0..h {
                let sy = if rot90 { i } else { h - 1 - i };
                let row = &src.row(sy as u32).as_chunks::<C>().0[x0..x1];
                if rot90 {
                    for (sx, &p) in (x0..x1).zip(row) {
                        out[(w - 1 - sx) * h + i] = p;
                    }
                } else {
                    for (sx, &p) in (x0..x1).zip(row) {
                        out[sx * h + i] = p;
                    }
                }
            }
        }
        return;
    }
    for (j, out) in dst.data_mut().chunks_exact_mut(out_rb).enumerate() {
        let out = out.as_chunks_mut::<C>().0;
        match t {
            Transpose::FlipV => out
                .as_flattened_mut()
                .copy_from_slice(src.row((h - 1 - j) as u32)),
            Transpose::FlipH | Transpose::Rotate180 => {
                let sy = if t == Transpose::FlipH { j } else { h - 1 - j };
                let row = src.row(sy as u32).as_chunks::<C>().0;
                for (o, p) in out.iter_mut().zip(row.iter().rev()) {
                    *o = *p;
                }
            }
            // Handled above: out(i, j) = in(w-1-j, i) (90), in(j, h-1-i) (270).
            Transpose::Rotate90 | Transpose::Rotate270 => unreachable!(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    fn img() -> ImageBuf {
        // 3x2 L: 1 2 3 / 4 5 6
        ImageBuf::from_vec(3, 2, Mode::L, vec![1, 2, 3, 4, 5, 6]).unwrap()
    }

    #[test]
    fn transposes() {
        let mut out = ImageBuf::default();
        let cases = [
            (Transpose::FlipH, (3, 2), vec![3, 2, 1, 6, 5, 4]),
            (Transpose::FlipV, (3, 2), vec![4, 5, 6, 1, 2, 3]),
            (Transpose::Rotate180, (3, 2), vec![6, 5, 4, 3, 2, 1]),
            (Transpose::Rotate90, (2, 3), vec![3, 6, 2, 5, 1, 4]),
            (Transpose::Rotate270, (2, 3), vec![4, 1, 5, 2, 6, 3]),
        ];
        for (t, (w, h), want) in cases {
            transpose(img().as_ref(), &mut out, t);
            assert_eq!((out.width(), out.height()), (w, h), "{t:?}");
            assert_eq!(out.data(), &want[..], "{t:?}");
        }
    }

    #[test]
    fn rotations_of_wide_multichannel_images() {
        for mode in [Mode::L, Mode::Rgb, Mode::Rgba] {
            let (w, h, c) = (70usize, 5usize, mode.channels());
            let data: Vec<u8> = (0..w * h * c).map(|i| (i * 31 % 251) as u8).collect();
            let src = ImageBuf::from_vec(w as u32, h as u32, mode, data.clone()).unwrap();
            let px = |x: usize, y: usize| &data[(y * w + x) * c..][..c];
            let mut out = ImageBuf::default();
            for t in [Transpose::Rotate90, Transpose::Rotate270] {
                transpose(src.as_ref(), &mut out, t);
                assert_eq!((out.width(), out.height()), (h as u32, w as u32));
                for j in 0..w {
                    for i in 0..h {
                        let want = match t {
                            Transpose::Rotate90 => px(w - 1 - j, i),
                            _ => px(j, h - 1 - i),
                        };
                        assert_eq!(&out.data()[(j * h + i) * c..][..c], want, "{t:?} {mode}");
                    }
                }
            }
        }
    }

    #[test]
    fn crop_pads_with_zero() {
        let mut out = ImageBuf::default();
        crop(img().as_ref(), &mut out, 3, 3, -1, 1);
        assert_eq!(out.data(), &[0, 4, 5, 0, 0, 0, 0, 0, 0]);
        crop(img().as_ref(), &mut out, 2, 1, 5, 0);
        assert_eq!(out.data(), &[0, 0]);
        crop(img().as_ref(), &mut out, 2, 2, 1, 0);
        assert_eq!(out.data(), &[2, 3, 5, 6]);
    }
}
