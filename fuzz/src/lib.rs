//! The frameflow modules under fuzz, compiled from their own source files.
//!
//! Each is self-contained (it uses only std, external crates and `setting`), so it builds here
//! without the rest of the `frameflow` crate; the paths mirror the crate's
//! (`frameflow::source::still` is `frameflow_fuzz::source::still`). If one of them
//! comes to use another frameflow module, depend on `frameflow` in fuzz/Cargo.toml
//! instead and use `frameflow::` paths in the targets (a much longer cold build).
#![allow(dead_code)]

pub use frameflow_filters as filters;

#[path = "../../crates/frameflow/src/setting.rs"]
pub mod setting;
pub use setting::Setting;

#[path = "../../crates/frameflow/src/config.rs"]
pub mod config;
#[path = "../../crates/frameflow/src/sink/naming.rs"]
#[doc(hidden)]
pub mod naming_rs;
#[path = "../../crates/frameflow/src/source/still.rs"]
#[doc(hidden)]
pub mod still_rs;

pub mod source {
    pub use super::still_rs as still;
}

pub mod sink {
    pub use super::naming_rs as naming;
}
