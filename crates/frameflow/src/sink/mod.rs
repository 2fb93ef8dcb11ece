//! Sinks: image encoders, output names and atomic file writes.

pub mod atomic;
pub mod encode;
pub mod naming;
pub mod preview;
pub mod rowjpeg;
