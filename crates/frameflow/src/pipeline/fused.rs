//! The fused path of a worker: convert → filter → JPEG, a strip of rows at a time.
//!
//! The plain path converts a whole picture to RGB (6 MB at 1080p), filters it into
//! another whole image, and hands that to libjpeg-turbo, which converts it to YCbCr:
//! each stage streams the frame through memory. Here the worker converts
//! [`STRIP_ROWS`] rows at a time into a small window, filters each output row as soon
//! as the rows it needs are there, and feeds it straight to the row encoder while it is
//! still in L1. Every byte is the same as the plain path's: the converter's strips are
//! checked against whole-frame conversion ([`Converter::strips_exact`]), the row filter
//! is the kernel's own row code ([`RowFilter`]), and the row encoder is byte-identical
//! to the whole-image one ([`RowJpeg`]); the tests compare the files.
//!
//! Used when the output is JPEG and the chain is empty or one kernel (the 2018 job:
//! emboss → JPEG); anything else takes the plain path.

use crate::frames::FrameBuf;
use crate::frames::convert::STRIP_ROWS;
use crate::frames::{ConvertError, Converter, Picture};
use crate::sink::encode::EncodeError;
use crate::sink::rowjpeg::RowJpeg;
use frameflow_filters::RowFilter;

/// Why the fused path failed on a frame.
#[derive(Debug, thiserror::Error)]
pub enum FusedError {
    #[error("{0}")]
    Convert(#[from] ConvertError),
    #[error("{0}")]
    Encode(#[from] EncodeError),
}

/// One worker's fused converter-filter-encoder, its buffers kept between frames.
pub struct Fused {
    filter: RowFilter,
    /// Input rows `s - 2r .. s + STRIP_ROWS` of the strip starting at image row `s`
    /// (`r` = the filter's radius): the last `2r` rows of one strip move to the top
    /// for the next.
    window: FrameBuf,
    /// One filtered output row.
    row: Vec<u8>,
    jpeg: RowJpeg,
}

impl Fused {
    /// A fused path for `filter` writing JPEG at `quality`.
    pub fn new(filter: RowFilter, quality: u8) -> Result<Fused, EncodeError> {
        Ok(Fused {
            filter,
            window: FrameBuf::default(),
            row: Vec::new(),
            jpeg: RowJpeg::new(quality)?,
        })
    }

    /// Converts, filters and encodes `pic`, whose strips `conv` has found exact; returns
    /// the JPEG file's bytes (valid until the next call).
    pub fn encode(&mut self, pic: &Picture, conv: &mut Converter) -> Result<&[u8], FusedError> {
        let (w, h) = (pic.width(), pic.height());
        let r = self.filter.radius() as u32;
        let c = 3usize;
        let rb = w as usize * c;
        self.window.reshape(w, STRIP_ROWS + 2 * r);
        self.row.resize(rb, 0);
        self.jpeg.begin(w, h)?;
        let stride = self.window.stride();
        let hu = h as usize;
        // Output rows [next, ..) are still to be filtered.
        let mut next = 0usize;
        let mut s = 0u32;
        while s < h {
            let n = STRIP_ROWS.min(h - s);
            conv.convert_rows(pic, s, n, &mut self.window, 2 * r)?;
            // Output row y needs rows y - r ..= y + r: rows up to s + n - r - 1 are
            // ready (all of them at the end).
            let end = if s + n == h { hu } else { (s + n - r) as usize };
            let data = self.window.storage_mut();
            let ru = r as usize;
            for y in next..end {
                // Window row i holds image row s + i - 2r, so image row y - r + k is
                // window row y + r + k - s (y >= s - r). Rows outside the image are left
                // empty: the filter never reads them.
                let first = y + ru - s as usize;
                let mut window: [&[u8]; 5] = [&[]; 5];
                for (k, slot) in window.iter_mut().enumerate().take(2 * ru + 1) {
                    if (ru..hu + ru).contains(&(y + k)) {
                        *slot = &data[(first + k) * stride..][..rb];
                    }
                }
                if r == 0 {
                    self.jpeg.push_row(window[0])?;
                } else {
                    self.filter
                        .row(&window, y, w as usize, hu, c, &mut self.row);
                    self.jpeg.push_row(&self.row)?;
                }
            }
            next = end;
            // Keep the last 2r rows (image rows s + n - 2r ..) for the next strip.
            if r > 0 && s + n < h {
                let keep = 2 * r as usize;
                let from = n as usize;
                data.copy_within(from * stride..(from + keep) * stride, 0);
            }
            s += n;
        }
        Ok(self.jpeg.finish()?)
    }
}
