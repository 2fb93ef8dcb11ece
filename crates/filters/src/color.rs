//! Per-pixel colour operations: `convert("L")` and `ImageOps.invert`.

use crate::simd::{self, Level};
use crate::{ImageBuf, ImageRef, Mode};

/// Pillow's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point,
/// `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`. Alpha is ignored; L is copied.
pub fn grayscale(src: ImageRef<'_>, dst: &mut ImageBuf) {
    if src.mode == Mode::L {
        dst.copy_from(src);
        return;
    }
    let c = src.mode.channels();
    let w = src.width as usize;
    dst.reshape(src.width, src.height, Mode::L);
    if w == 0 {
        return;
    }
    simd::run(
        Level::best(),
        #[inline(always)]
        || match c {
            3 => luma_rows::<3>(src, dst),
            _ => luma_rows::<4>(src, dst),
        },
    )
}

/// [`grayscale`] of `C`-byte pixels (a constant, so LLVM vectorises the loop).
#[inline(always)]
fn luma_rows<const C: usize>(src: ImageRef<'_>, dst: &mut ImageBuf) {
    let w = src.width as usize;
    for (y, out) in dst.data_mut().chunks_exact_mut(w).enumerate() {
        let row = src.row(y as u32);
        for (o, p) in out.iter_mut().zip(row.as_chunks::<C>().0) {
            let v = p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000;
            *o = (v >> 16) as u8;
        }
    }
}

/// Pillow's `ImageOps.invert` for L and RGB: `255 - v` on every byte.
/// (Pillow refuses RGBA; the caller checks the mode.)
pub fn invert(src: ImageRef<'_>, dst: &mut ImageBuf) {
    dst.reshape(src.width, src.height, src.mode);
    let rb = src.row_bytes();
    if rb == 0 {
        return;
    }
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        for (o, &p) in out.iter_mut().zip(src.row(y as u32)) {
            *o = 255 - p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grayscale_weights() {
        let src = ImageBuf::from_vec(
            3,
            1,
            Mode::Rgba,
            vec![255, 0, 0, 7, 0, 255, 0, 0, 10, 20, 30, 255],
        )
        .unwrap();
        let mut out = ImageBuf::default();
        grayscale(src.as_ref(), &mut out);
        assert_eq!(out.mode(), Mode::L);
        // 255*19595/65536 = 76.2 -> 76; 255*38470/65536 = 149.7 -> 150 (rounded)
        let third = ((10 * 19595 + 20 * 38470 + 30 * 7471 + 0x8000) >> 16) as u8;
        assert_eq!(out.data(), &[76, 150, third]);
    }

    #[test]
    fn invert_bytes() {
        let src = ImageBuf::from_vec(2, 1, Mode::L, vec![0, 200]).unwrap();
        let mut out = ImageBuf::default();
        invert(src.as_ref(), &mut out);
        assert_eq!(out.data(), &[255, 55]);
    }
}
