//! Rank filters (median, min, max) and the mode filter, per band, as Pillow's
//! RankFilter.c and ModeFilter.c define them.
//!
//! - Rank: Pillow pads the image by `size / 2` replicated edge pixels, then takes the
//!   `rank`-th smallest value of each `size`×`size` window. The value is independent of
//!   the selection algorithm, so sliding histograms are used (min/max: separable passes).
//! - Mode: the most frequent value in the window of half-width `size / 2`, counting only
//!   pixels inside the image; ties go to the smallest value; if the most frequent value
//!   occurs at most twice, the original pixel is kept.

use crate::simd::{self, Level};
use crate::{ImageBuf, ImageRef};

/// Reusable buffers of the rank and mode filters.
#[derive(Debug, Default, Clone)]
pub(crate) struct RankBufs {
    /// Byte offsets in the source of the rows of the current window.
    rows: Vec<usize>,
    /// One row of vertical extremes ([`min_max`]).
    col: Vec<u8>,
}

impl RankBufs {
    /// Where and how big the buffers are (tests check reuse).
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> Vec<(usize, usize)> {
        vec![
            (self.rows.as_ptr() as usize, self.rows.capacity()),
            (self.col.as_ptr() as usize, self.col.capacity()),
        ]
    }
}

/// A 256-bin histogram with 16 coarse bins for fast order statistics.
struct Histogram {
    fine: [u32; 256],
    coarse: [u32; 16],
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            fine: [0; 256],
            coarse: [0; 16],
        }
    }

    fn clear(&mut self) {
        self.fine.fill(0);
        self.coarse.fill(0);
    }

    #[inline]
    fn add(&mut self, v: u8) {
        self.fine[v as usize] += 1;
        self.coarse[v as usize >> 4] += 1;
    }

    #[inline]
    fn remove(&mut self, v: u8) {
        self.fine[v as usize] -= 1;
        self.coarse[v as usize >> 4] -= 1;
    }

    /// The `k`-th smallest value (0-based); `k` must be below the count.
    fn kth(&self, mut k: u32) -> u8 {
        let mut bin = 0;
        while bin < 15 && k >= self.coarse[bin] {
            k -= self.coarse[bin];
            bin += 1;
        }
        let mut v = bin * 16;
        while v < 255 && k >= self.fine[v] {
            k -= self.fine[v];
            v += 1;
        }
        v as u8
    }
}

/// `rank`-th smallest value of each `size`×`size` window (edges replicated), per band.
/// `size` is odd and `rank < size * size`.
pub(crate) fn rank_filter(
    src: ImageRef<'_>,
    dst: &mut ImageBuf,
    size: u32,
    rank: u32,
    bufs: &mut RankBufs,
) {
    let last_rank = size * size - 1;
    if size == 3 && rank == 4 {
        return simd::run(
            Level::best(),
            #[inline(always)]
            || median3(src, dst),
        );
    }
    if rank == 0 || rank == last_rank {
        let col = &mut bufs.col;
        return simd::run(
            Level::best(),
            #[inline(always)]
            || match rank == last_rank {
                true => min_max::<true>(src, dst, size, col),
                false => min_max::<false>(src, dst, size, col),
            },
        );
    }
    dst.reshape(src.width, src.height, src.mode);
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    if w == 0 || h == 0 {
        return;
    }
    let m = (size / 2) as isize;
    let cx = |x: isize| x.clamp(0, w as isize - 1) as usize;
    let cy = |y: isize| y.clamp(0, h as isize - 1) as usize;
    // One histogram per band (at most 4), on the stack.
    let mut hists = [(); 4].map(|_| Histogram::new());
    let hists = &mut hists[..c];
    let rb = w * c;
    let rows = &mut bufs.rows;
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        rows.clear();
        rows.extend((-m..=m).map(|dy| cy(y as isize + dy) * src.stride));
        let row = |&off: &usize| &src.data[off..off + rb];
        for hist in hists.iter_mut() {
            hist.clear();
        }
        for row in rows.iter().map(row) {
            for dx in -m..=m {
                let px = cx(dx) * c;
                for (ch, hist) in hists.iter_mut().enumerate() {
                    hist.add(row[px + ch]);
                }
            }
        }
        for x in 0..w {
            if x > 0 {
                let (old, new) = (cx(x as isize - m - 1) * c, cx(x as isize + m) * c);
                for row in rows.iter().map(row) {
                    for (ch, hist) in hists.iter_mut().enumerate() {
                        hist.remove(row[old + ch]);
                        hist.add(row[new + ch]);
                    }
                }
            }
            for (ch, hist) in hists.iter().enumerate() {
                out[x * c + ch] = hist.kth(rank);
            }
        }
    }
}

/// Output bytes per chunk of [`median3`] (sorted columns live on the stack).
const MED_CHUNK: usize = 1024;

/// Median of three.
#[inline(always)]
fn med3(a: u8, b: u8, c: u8) -> u8 {
    a.min(b).max(a.max(b).min(c))
}

/// 3×3 median with replicated edges. Each column of three is sorted into `lo ≤ mid ≤ hi`
/// (shared by the three windows that contain it); the median of the 3×3 window is then
/// `med3(max of the lows, med3 of the mids, min of the highs)`, an exact identity. Every
/// step is a byte-wise `min`/`max` on whole rows, which LLVM vectorises (16, 32 or 64
/// bytes wide, see `crate::simd`).
#[inline(always)]
fn median3(src: ImageRef<'_>, dst: &mut ImageBuf) {
    dst.reshape(src.width, src.height, src.mode);
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    let rb = w * c;
    if rb == 0 || h == 0 {
        return;
    }
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        let r0 = src.row(y.saturating_sub(1) as u32);
        let r1 = src.row(y as u32);
        let r2 = src.row((y + 1).min(h - 1) as u32);
        let mut start = 0usize;
        for out in out.chunks_mut(MED_CHUNK) {
            let len = out.len();
            // Sorted columns for bytes start - c .. start + len + c; index k is byte
            // start - c + k. Bytes outside the row take the edge pixel's.
            let mut lo = [0u8; MED_CHUNK + 8];
            let mut mid = [0u8; MED_CHUNK + 8];
            let mut hi = [0u8; MED_CHUNK + 8];
            let n = len + 2 * c;
            let (lo, mid, hi) = (&mut lo[..n], &mut mid[..n], &mut hi[..n]);
            let b0 = start.saturating_sub(c);
            let b1 = (start + len + c).min(rb);
            let k0 = b0 + c - start;
            let m = b1 - b0;
            let (a, b, d) = (&r0[b0..b1], &r1[b0..b1], &r2[b0..b1]);
            for ((((l, md), hg), (&a, &b)), &d) in lo[k0..k0 + m]
                .iter_mut()
                .zip(&mut mid[k0..k0 + m])
                .zip(&mut hi[k0..k0 + m])
                .zip(a.iter().zip(b))
                .zip(d)
            {
                let (x, z) = (a.min(b), a.max(b));
                *l = x.min(d);
                *hg = z.max(d);
                *md = x.max(z.min(d));
            }
            if start == 0 {
                // Left edge: byte -c + i is byte i of pixel 0 (at index c + i).
                for col in [&mut *lo, &mut *mid, &mut *hi] {
                    col.copy_within(c..2 * c, 0);
                }
            }
            if start + len == rb {
                // Right edge: byte rb + i is byte rb - c + i (index n - 2c + i).
                for col in [&mut *lo, &mut *mid, &mut *hi] {
                    col.copy_within(n - 2 * c..n - c, n - c);
                }
            }
            let (l0, l1, l2) = (&lo[..len], &lo[c..c + len], &lo[2 * c..2 * c + len]);
            let (m0, m1, m2) = (&mid[..len], &mid[c..c + len], &mid[2 * c..2 * c + len]);
            let (h0, h1, h2) = (&hi[..len], &hi[c..c + len], &hi[2 * c..2 * c + len]);
            for j in 0..len {
                let a = l0[j].max(l1[j]).max(l2[j]);
                let b = med3(m0[j], m1[j], m2[j]);
                let d = h0[j].min(h1[j]).min(h2[j]);
                out[j] = med3(a, b, d);
            }
            start += len;
        }
    }
}

/// Min (`MAX == false`) or max filter: separable, exact, whole rows at a time.
#[inline(always)]
fn min_max<const MAX: bool>(src: ImageRef<'_>, dst: &mut ImageBuf, size: u32, col: &mut Vec<u8>) {
    dst.reshape(src.width, src.height, src.mode);
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    if w == 0 || h == 0 {
        return;
    }
    let m = (size / 2) as isize;
    let pick = |a: u8, b: u8| if MAX { a.max(b) } else { a.min(b) };
    let rb = w * c;
    col.clear();
    col.resize(rb, 0);
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        // Vertical extreme over the clamped rows, then horizontal over clamped columns.
        col.copy_from_slice(src.row(y as u32));
        for dy in 1..=m {
            for yy in [y as isize - dy, y as isize + dy] {
                let row = src.row(yy.clamp(0, h as isize - 1) as u32);
                for (a, &b) in col.iter_mut().zip(row) {
                    *a = pick(*a, b);
                }
            }
        }
        // Clamped columns only repeat an edge pixel that is already in the window, so
        // the extreme over x-m..=x+m clamped is the extreme over its part inside the row.
        out.copy_from_slice(col);
        for dx in 1..=m as usize {
            let d = dx * c;
            if d >= rb {
                break;
            }
            for (o, &v) in out[d..].iter_mut().zip(&col[..rb - d]) {
                *o = pick(*o, v);
            }
            for (o, &v) in out[..rb - d].iter_mut().zip(&col[d..]) {
                *o = pick(*o, v);
            }
        }
    }
}

/// Pillow's `ModeFilter(size)`, per band.
pub(crate) fn mode_filter(src: ImageRef<'_>, dst: &mut ImageBuf, size: u32, bufs: &mut RankBufs) {
    dst.reshape(src.width, src.height, src.mode);
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    if w == 0 || h == 0 {
        return;
    }
    let half = (size / 2) as usize;
    let y_range = |y: usize| y.saturating_sub(half)..(y + half + 1).min(h);
    let rb = w * c;
    let mut hist = [0u32; 256];
    let rows = &mut bufs.rows;
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        rows.clear();
        rows.extend(y_range(y).map(|yy| yy * src.stride));
        let row = |&off: &usize| &src.data[off..off + rb];
        let centre = src.row(y as u32);
        for ch in 0..c {
            hist.fill(0);
            // Columns x-half ..= x+half inside the image; start with the window of x = 0.
            for xx in 0..(half + 1).min(w) {
                for row in rows.iter().map(row) {
                    hist[row[xx * c + ch] as usize] += 1;
                }
            }
            let (mut best_v, mut best_n, mut dirty) = (0usize, 0u32, true);
            for x in 0..w {
                if x > 0 {
                    if x > half {
                        let old = (x - half - 1) * c + ch;
                        for row in rows.iter().map(row) {
                            let v = row[old] as usize;
                            hist[v] -= 1;
                            dirty |= v == best_v;
                        }
                    }
                    if x + half < w {
                        let new = (x + half) * c + ch;
                        for row in rows.iter().map(row) {
                            let v = row[new] as usize;
                            hist[v] += 1;
                            if !dirty && (hist[v] > best_n || hist[v] == best_n && v < best_v) {
                                best_v = v;
                                best_n = hist[v];
                            }
                        }
                    }
                }
                if dirty {
                    (best_v, best_n) = (0, hist[0]);
                    for (v, &n) in hist.iter().enumerate().skip(1) {
                        if n > best_n {
                            (best_v, best_n) = (v, n);
                        }
                    }
                    dirty = false;
                }
                let i = x * c + ch;
                out[i] = if best_n > 2 { best_v as u8 } else { centre[i] };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    fn img(w: u32, h: u32, data: Vec<u8>) -> ImageBuf {
        ImageBuf::from_vec(w, h, Mode::L, data).unwrap()
    }

    #[test]
    fn median_min_max_3x3() {
        let src = img(3, 3, vec![9, 1, 8, 2, 7, 3, 6, 4, 5]);
        let mut out = ImageBuf::default();
        rank_filter(src.as_ref(), &mut out, 3, 4, &mut RankBufs::default());
        assert_eq!(out.data()[4], 5);
        rank_filter(src.as_ref(), &mut out, 3, 0, &mut RankBufs::default());
        assert_eq!(out.data()[4], 1);
        rank_filter(src.as_ref(), &mut out, 3, 8, &mut RankBufs::default());
        assert_eq!(out.data()[4], 9);
        // Corner (0,0) window with replicated edges: 9,9,1,9,9,1,2,2,7 -> max 9, min 1.
        assert_eq!(out.data()[0], 9);
    }

    #[test]
    fn median_agrees_with_sorting() {
        let data: Vec<u8> = (0..(11 * 7)).map(|i| ((i * 97 + 13) % 256) as u8).collect();
        let src = img(11, 7, data.clone());
        let mut out = ImageBuf::default();
        rank_filter(src.as_ref(), &mut out, 5, 12, &mut RankBufs::default());
        for y in 0..7i32 {
            for x in 0..11i32 {
                let mut win = Vec::new();
                for dy in -2..=2 {
                    for dx in -2..=2 {
                        let (xx, yy) = ((x + dx).clamp(0, 10), (y + dy).clamp(0, 6));
                        win.push(data[(yy * 11 + xx) as usize]);
                    }
                }
                win.sort_unstable();
                assert_eq!(out.data()[(y * 11 + x) as usize], win[12], "{x},{y}");
            }
        }
    }

    #[test]
    fn median3_agrees_with_sorting() {
        for (w, h, mode) in [
            (1, 1, Mode::L),
            (2, 3, Mode::Rgb),
            (1, 4, Mode::Rgba),
            (700, 3, Mode::Rgb),
            (37, 9, Mode::Rgba),
            (1030, 2, Mode::L),
        ] {
            let c = mode.channels();
            let data: Vec<u8> = (0..w * h * c)
                .map(|i| ((i * 7919 + i / 3 * 31) % 251) as u8)
                .collect();
            let src = ImageBuf::from_vec(w as u32, h as u32, mode, data.clone()).unwrap();
            let mut out = ImageBuf::default();
            rank_filter(src.as_ref(), &mut out, 3, 4, &mut RankBufs::default());
            for y in 0..h as isize {
                for x in 0..w as isize {
                    for ch in 0..c {
                        let mut win = Vec::new();
                        for dy in -1..=1 {
                            for dx in -1..=1 {
                                let (xx, yy) = (
                                    (x + dx).clamp(0, w as isize - 1),
                                    (y + dy).clamp(0, h as isize - 1),
                                );
                                win.push(data[(yy as usize * w + xx as usize) * c + ch]);
                            }
                        }
                        win.sort_unstable();
                        assert_eq!(
                            out.data()[(y as usize * w + x as usize) * c + ch],
                            win[4],
                            "{w}x{h} {mode} {x},{y},{ch}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn min_max_agree_with_sorting() {
        for (w, h, mode, size) in [
            (1, 1, Mode::L, 3),
            (2, 3, Mode::Rgb, 5),
            (37, 9, Mode::Rgba, 3),
            (41, 6, Mode::Rgb, 7),
            (300, 4, Mode::L, 5),
        ] {
            let c = mode.channels();
            let data: Vec<u8> = (0..w * h * c)
                .map(|i| ((i * 7919 + i / 5 * 131) % 253) as u8)
                .collect();
            let src = ImageBuf::from_vec(w as u32, h as u32, mode, data.clone()).unwrap();
            let m = size as isize / 2;
            for rank in [0, size * size - 1] {
                let mut out = ImageBuf::default();
                rank_filter(src.as_ref(), &mut out, size, rank, &mut RankBufs::default());
                for y in 0..h as isize {
                    for x in 0..w as isize {
                        for ch in 0..c {
                            let mut win = Vec::new();
                            for dy in -m..=m {
                                for dx in -m..=m {
                                    let xx = (x + dx).clamp(0, w as isize - 1) as usize;
                                    let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                                    win.push(data[(yy * w + xx) * c + ch]);
                                }
                            }
                            win.sort_unstable();
                            assert_eq!(
                                out.data()[(y as usize * w + x as usize) * c + ch],
                                win[rank as usize],
                                "{w}x{h} {mode} size {size} rank {rank} at {x},{y},{ch}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mode_keeps_original_unless_more_than_twice() {
        let src = img(3, 3, vec![5, 5, 1, 2, 9, 3, 4, 6, 7]);
        let mut out = ImageBuf::default();
        mode_filter(src.as_ref(), &mut out, 3, &mut RankBufs::default());
        assert_eq!(out, src);
        let src = img(3, 3, vec![5, 5, 5, 2, 9, 3, 4, 6, 7]);
        mode_filter(src.as_ref(), &mut out, 3, &mut RankBufs::default());
        // Centre sees three 5s; corners see at most two.
        assert_eq!(out.data()[4], 5);
        assert_eq!(out.data()[0], 5);
        assert_eq!(out.data()[8], 7);
    }
}
