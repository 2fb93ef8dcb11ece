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

/// A policy as a small enum with the names settings give it (`drop-oldest`): `ALL`,
/// `name()`, a line of help per choice (`about()`), `FromStr` and `Display`. Front ends
/// build their own choosers (flags, config keys) from these, so the library needs no CLI
/// crate.
macro_rules! named_choices {
    ($ty:ident { $($variant:ident = $name:literal : $about:literal),+ $(,)? }) => {
        impl $ty {
            /// Every choice, in the order help lists them.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// The name settings give this choice.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
            /// One line of help for this choice (may be empty).
            pub fn about(self) -> &'static str {
                match self { $($ty::$variant => $about),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = crate::runtime::UnknownChoice;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| {
                    crate::runtime::UnknownChoice {
                        got: s.to_string(),
                        known: $ty::ALL.iter().map(|c| c.name()).collect(),
                    }
                })
            }
        }
    };
}

pub mod batch;
pub mod config;
pub mod frames;
pub mod pipeline;
pub mod runtime;
pub mod serve;
pub mod setting;
pub mod sink;
pub mod source;
pub mod supervisor;
pub mod watch;

pub use frameflow_filters as filters;
pub use setting::Setting;
