//! Pure-Rust image filters whose output is bit-identical to Pillow's.
//!
//! A [`Chain`] is parsed from text such as `emboss,gaussian_blur=2` and applied to
//! 8-bit L, RGB or RGBA images ([`ImageRef`]), writing into reusable [`Scratch`]
//! buffers. [`describe_filters`] lists every filter for `frameflow filters`.
//!
//! Every step reproduces Pillow 11.3's arithmetic exactly (checked byte for byte against
//! Pillow by `tests/pillow.rs`): the ten `ImageFilter` kernels and `kernel=` (see
//! [`kernel`]), `grayscale`, `invert`, `gaussian_blur`, `box_blur`, `unsharp_mask`,
//! `median`/`min`/`max`/`mode`, `resize`, `crop`, `rotate` and `flip`. Steps that Pillow
//! refuses for a mode (only `invert` on RGBA) are refused with
//! [`FilterError::UnsupportedMode`], which [`Chain::output_mode`] reports before any
//! pixel is touched.
//!
//! ```
//! use frameflow_filters::{Chain, ImageRef, Mode, Scratch};
//! let chain = Chain::parse("emboss,grayscale").unwrap();
//! let pixels = vec![100u8; 4 * 4 * 3];
//! let src = ImageRef::new(&pixels, 4, 4, 12, Mode::Rgb).unwrap();
//! let mut scratch = Scratch::default();
//! let out = chain.apply(src, &mut scratch).unwrap();
//! assert_eq!(out.mode(), Mode::L);
//! assert_eq!(out.row(1), &[100, 128, 128, 100]);
//! ```

mod blur;
mod chain;
mod color;
mod error;
mod geometry;
mod image;
pub mod kernel;
mod rank;
mod resample;
mod simd;

/// The usage example of README.md, compiled and run as a doctest so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use chain::{Chain, FilterInfo, ParamDefault, ParamInfo, RowFilter, Scratch, describe_filters};
pub use error::{ChainError, FilterError};
pub use image::{ImageBuf, ImageRef, Mode};
