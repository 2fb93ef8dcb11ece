//! Sinks: image encoders, output names and atomic file writes.

pub mod atomic;
pub mod encode;
pub mod naming;
pub mod preview;
pub mod rowjpeg;

/// The version of the libjpeg-turbo built into frameflow (JPEG encoding and decoding).
pub const LIBJPEG_TURBO_VERSION: &str = env!("FRAMEFLOW_LIBJPEG_TURBO_VERSION");
