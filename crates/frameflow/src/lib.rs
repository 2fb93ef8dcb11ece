//! frameflow: live video → decoded frames → Pillow-exact filters → atomic image files.
//!
//! The stages, each in its own module:
//! - [`source`]: libavformat/libavcodec input, timeouts, exact colour conversion;
//! - [`frames`]: the decoded frame and the fixed pool of reusable buffers;
//! - filters: the pure-Rust [`frameflow_filters`] crate;
//! - [`sink`]: encoders, output name templates, atomic writes;
//! - [`pipeline`]: the decode thread, the bounded queue, the workers and the in-order
//!   committer, with the run's statistics;
//! - [`batch`]: `apply`, filtering image files once;
//! - [`watch`]: `watch`, the hot folder (every complete image exactly once).

pub mod batch;
pub mod config;
pub mod frames;
pub mod pipeline;
pub mod serve;
pub mod sink;
pub mod source;
pub mod supervisor;
pub mod watch;

pub use frameflow_filters as filters;
