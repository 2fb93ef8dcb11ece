//! Time, injectable: the real loops (reconnects, the hot folder's retries) take a
//! [`Clock`], so their tests run on simulated time without sleeping (moonfire-nvr's
//! `Clocks` / `SimulatedClocks`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Time, injectable.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    /// Waits `d`, or less if `stop` is set; returns false when stopped.
    fn sleep(&self, d: Duration, stop: &AtomicBool) -> bool;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration, stop: &AtomicBool) -> bool {
        let end = Instant::now() + d;
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
}

/// A clock on simulated time: it advances only when slept on or [`advance`d]
/// (SimulatedClock::advance), so the real retry loops run in tests without sleeping.
/// Every sleep is recorded.
///
/// [`advance`d]: SimulatedClock::advance
#[derive(Debug)]
pub struct SimulatedClock {
    now: std::sync::Mutex<Instant>,
    slept: std::sync::Mutex<Vec<Duration>>,
}

impl Default for SimulatedClock {
    fn default() -> Self {
        SimulatedClock {
            now: std::sync::Mutex::new(Instant::now()),
            slept: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl SimulatedClock {
    /// Moves simulated time on by `d` (time spent working, not sleeping).
    pub fn advance(&self, d: Duration) {
        if let Ok(mut now) = self.now.lock() {
            *now += d;
        }
    }

    /// The sleeps so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.slept.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> Instant {
        self.now.lock().map_or_else(|e| *e.into_inner(), |n| *n)
    }

    fn sleep(&self, d: Duration, stop: &AtomicBool) -> bool {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        self.advance(d);
        if let Ok(mut s) = self.slept.lock() {
            s.push(d);
        }
        true
    }
}
