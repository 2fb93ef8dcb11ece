//! Rank filters (median, min, max) and the mode filter, per band, as Pillow's
//! RankFilter.c and ModeFilter.c define them.
//!
//! - Rank: Pillow pads the image by `size / 2` replicated edge pixels, then takes the
//!   `rank`-th smallest value of each `size`×`size` window. The value is independent of
//!   the selection algorithm, so sliding histograms are used (min/max: separable passes).
//! - Mode: the most frequent value in the window of half-width `size / 2`, counting only
//!   pixels inside the image; ties go to the smallest value; if the most frequent value
//!   occurs at most twice, the original pixel is kept.

use crate::{ImageBuf, ImageRef};

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
pub fn rank_filter(src: ImageRef<'_>, dst: &mut ImageBuf, size: u32, rank: u32) {
    let last_rank = size * size - 1;
    if rank == 0 || rank == last_rank {
        return min_max(src, dst, size, rank == last_rank);
    }
    dst.reshape(src.width, src.height, src.mode);
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    if w == 0 || h == 0 {
        return;
    }
    let m = (size / 2) as isize;
    let cx = |x: isize| x.clamp(0, w as isize - 1) as usize;
    let cy = |y: isize| y.clamp(0, h as isize - 1) as u32;
    let mut hists: Vec<Histogram> = (0..c).map(|_| Histogram::new()).collect();
    let rb = w * c;
    let mut rows: Vec<&[u8]> = Vec::with_capacity(size as usize);
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        rows.clear();
        rows.extend((-m..=m).map(|dy| src.row(cy(y as isize + dy))));
        for hist in hists.iter_mut() {
            hist.clear();
        }
        for row in &rows {
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
                for row in &rows {
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

/// Min (`max == false`) or max filter: separable, exact.
fn min_max(src: ImageRef<'_>, dst: &mut ImageBuf, size: u32, max: bool) {
    dst.reshape(src.width, src.height, src.mode);
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.mode.channels();
    if w == 0 || h == 0 {
        return;
    }
    let m = (size / 2) as isize;
    let pick = |a: u8, b: u8| if max { a.max(b) } else { a.min(b) };
    let rb = w * c;
    let mut col = vec![0u8; rb];
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
        for x in 0..w {
            for ch in 0..c {
                let mut v = col[x * c + ch];
                for dx in 1..=m {
                    let l = (x as isize - dx).max(0) as usize;
                    let r = (x + dx as usize).min(w - 1);
                    v = pick(v, pick(col[l * c + ch], col[r * c + ch]));
                }
                out[x * c + ch] = v;
            }
        }
    }
}

/// Pillow's `ModeFilter(size)`, per band.
pub fn mode_filter(src: ImageRef<'_>, dst: &mut ImageBuf, size: u32) {
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
    let mut rows: Vec<&[u8]> = Vec::with_capacity(2 * half + 1);
    for (y, out) in dst.data_mut().chunks_exact_mut(rb).enumerate() {
        rows.clear();
        rows.extend(y_range(y).map(|yy| src.row(yy as u32)));
        let centre = src.row(y as u32);
        for ch in 0..c {
            hist.fill(0);
            // Columns x-half ..= x+half inside the image; start with the window of x = 0.
            for xx in 0..(half + 1).min(w) {
                for row in &rows {
                    hist[row[xx * c + ch] as usize] += 1;
                }
            }
            let (mut best_v, mut best_n, mut dirty) = (0usize, 0u32, true);
            for x in 0..w {
                if x > 0 {
                    if x > half {
                        let old = (x - half - 1) * c + ch;
                        for row in &rows {
                            let v = row[old] as usize;
                            hist[v] -= 1;
                            dirty |= v == best_v;
                        }
                    }
                    if x + half < w {
                        let new = (x + half) * c + ch;
                        for row in &rows {
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
        rank_filter(src.as_ref(), &mut out, 3, 4);
        assert_eq!(out.data()[4], 5);
        rank_filter(src.as_ref(), &mut out, 3, 0);
        assert_eq!(out.data()[4], 1);
        rank_filter(src.as_ref(), &mut out, 3, 8);
        assert_eq!(out.data()[4], 9);
        // Corner (0,0) window with replicated edges: 9,9,1,9,9,1,2,2,7 -> max 9, min 1.
        assert_eq!(out.data()[0], 9);
    }

    #[test]
    fn median_agrees_with_sorting() {
        let data: Vec<u8> = (0..(11 * 7)).map(|i| ((i * 97 + 13) % 256) as u8).collect();
        let src = img(11, 7, data.clone());
        let mut out = ImageBuf::default();
        rank_filter(src.as_ref(), &mut out, 5, 12);
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
    fn mode_keeps_original_unless_more_than_twice() {
        let src = img(3, 3, vec![5, 5, 1, 2, 9, 3, 4, 6, 7]);
        let mut out = ImageBuf::default();
        mode_filter(src.as_ref(), &mut out, 3);
        assert_eq!(out, src);
        let src = img(3, 3, vec![5, 5, 5, 2, 9, 3, 4, 6, 7]);
        mode_filter(src.as_ref(), &mut out, 3);
        // Centre sees three 5s; corners see at most two.
        assert_eq!(out.data()[4], 5);
        assert_eq!(out.data()[0], 5);
        assert_eq!(out.data()[8], 7);
    }
}
