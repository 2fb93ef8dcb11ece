//! Runtime instruction-set dispatch for the hot loops.
//!
//! The loops are plain safe Rust written so that LLVM vectorises them. [`run`] calls one
//! (an `#[inline(always)]` closure over `#[inline(always)]` functions) inside a function
//! compiled with AVX-512 (F, BW) or AVX2 enabled when the CPU has it, so the same code
//! is vectorised 64 or 32 bytes wide instead of SSE2's 16. Only the width changes:
//! every operation is still done element by element with the same IEEE or integer
//! semantics (no fused multiply-add is enabled, and Rust never contracts `a * b + c`),
//! so results are identical on every level; the tests compare the levels.

/// An instruction-set level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Level {
    /// The x86-64 baseline (SSE2), or any other architecture.
    Base,
    /// AVX2 (x86-64 only).
    Avx2,
    /// AVX-512 F and BW (x86-64 only).
    Avx512,
}

impl Level {
    /// The best level this CPU supports (detection is cached by the standard library).
    pub(crate) fn best() -> Level {
        #[cfg(test)]
        if let Some(level) = FORCED.get() {
            return level;
        }
        Level::detect()
    }

    /// The best level this CPU supports.
    fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
        }
        Level::Base
    }

    /// Every level this CPU supports (tests compare them).
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Level> {
        match Level::detect() {
            Level::Base => vec![Level::Base],
            Level::Avx2 => vec![Level::Base, Level::Avx2],
            Level::Avx512 => vec![Level::Base, Level::Avx2, Level::Avx512],
        }
    }
}

#[cfg(test)]
thread_local! {
    /// The level [`Level::best`] reports on this thread ([`with_level`]).
    static FORCED: std::cell::Cell<Option<Level>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with [`Level::best`] reporting `level` on this thread (tests compare levels).
#[cfg(test)]
pub(crate) fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    FORCED.set(Some(level));
    let r = f();
    FORCED.set(None);
    r
}

/// Calls `f` compiled for `level`; `level` must be supported (see [`Level::best`]).
#[inline(always)]
pub(crate) fn run<R>(level: Level, f: impl FnOnce() -> R) -> R {
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => {
            assert!(std::arch::is_x86_feature_detected!("avx2"));
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { avx2(f) }
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => {
            assert!(
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            );
            // SAFETY: the CPU supports AVX-512 F and BW, checked just above.
            unsafe { avx512(f) }
        }
        _ => f(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
