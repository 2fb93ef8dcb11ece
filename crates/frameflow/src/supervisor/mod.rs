//! The supervisor's policies: when to reconnect a live input and how long to wait.
//!
//! Time is injected through [`Clock`], so the backoff and retry logic is tested without
//! sleeping (moonfire-nvr style). The pipeline drives these; they hold no I/O.

pub use crate::runtime::clock::{Clock, SystemClock};
use std::time::Duration;

/// Whether and how often a live input is reopened after it ends, fails or stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub enabled: bool,
    /// Give up after this many consecutive failed attempts (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            max_attempts: None,
        }
    }
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s over consecutive attempts
/// that deliver no frame; back to 0.5 s as soon as a connection delivers one (a server
/// that drops every 30 s and comes back at once is reconnected at once, every time).
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    attempt: u32,
    rng: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Backoff::with_seed(seed)
    }
}

impl Backoff {
    pub fn with_seed(seed: u64) -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// Consecutive attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The wait before the next attempt: the base delay for this attempt, ±20 % jitter
    /// (never above `max`).
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.8 + 0.4 * r).min(self.max)
    }

    /// Called when a connection (or an attempt to open one) ended: one that delivered a
    /// frame resets the backoff, and `--reconnect-max` counts from there.
    pub fn connection_ended(&mut self, delivered_frames: bool) {
        if delivered_frames {
            self.attempt = 0;
        }
    }
}

/// Why a connection ended, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The run's limits (`--max-frames`, `--duration`) reached.
    Finished,
    /// Stop requested (a signal).
    Stopped,
    /// The input ended (the server closed the stream).
    EndOfStream,
    /// A read error or a stall.
    Failed,
}

/// The supervisor's decision after a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// End the run.
    Finish,
    /// Reopen the input after this delay.
    Reconnect(Duration),
    /// End the run: the attempts are used up.
    GiveUp,
}

/// Decides what to do when a connection (or a reconnect attempt) ended.
pub fn decide(
    policy: &ReconnectPolicy,
    live: bool,
    cause: EndCause,
    backoff: &mut Backoff,
) -> Decision {
    if matches!(cause, EndCause::Finished | EndCause::Stopped) || !live || !policy.enabled {
        return Decision::Finish;
    }
    if policy.max_attempts.is_some_and(|m| backoff.attempts() >= m) {
        return Decision::GiveUp;
    }
    Decision::Reconnect(backoff.next_delay())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SimulatedClock;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::with_seed(42);
        let delays: Vec<f64> = (0..10).map(|_| b.next_delay().as_secs_f64()).collect();
        let bases = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0];
        for (d, base) in delays.iter().zip(bases) {
            assert!(
                *d >= base * 0.8 - 1e-9 && *d <= (base * 1.2).min(30.0) + 1e-9,
                "{delays:?}"
            );
        }
        assert!(delays.iter().all(|d| *d <= 30.0));
        // jitter: not all equal to the base
        assert!(delays.iter().zip(bases).any(|(d, b)| (d - b).abs() > 1e-6));
    }

    #[test]
    fn a_connection_that_delivered_frames_resets_the_backoff() {
        let mut b = Backoff::with_seed(7);
        for _ in 0..5 {
            b.next_delay();
        }
        b.connection_ended(false);
        assert_eq!(
            b.attempts(),
            5,
            "an attempt that delivered nothing keeps growing"
        );
        b.connection_ended(true);
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() <= Duration::from_millis(600));
    }

    #[test]
    fn a_flapping_server_is_retried_at_the_initial_delay_each_time() {
        // Killed every 30 s, back after 2 s: each outage costs one or two short waits,
        // never the 4.4 → 7.6 → 13.6 → 30 s growth across sessions that worked.
        let mut b = Backoff::with_seed(9);
        let policy = ReconnectPolicy {
            enabled: true,
            max_attempts: Some(3),
        };
        for _session in 0..10 {
            b.connection_ended(true);
            let Decision::Reconnect(d) = decide(&policy, true, EndCause::Failed, &mut b) else {
                panic!("gave up after a working session");
            };
            assert!(d <= Duration::from_millis(600), "{d:?}");
            b.connection_ended(false);
            let Decision::Reconnect(d) = decide(&policy, true, EndCause::Failed, &mut b) else {
                panic!("gave up");
            };
            assert!(d <= Duration::from_millis(1200), "{d:?}");
        }
    }

    #[test]
    fn decisions_follow_the_policy() {
        let mut b = Backoff::with_seed(1);
        let on = ReconnectPolicy::default();
        let off = ReconnectPolicy {
            enabled: false,
            max_attempts: None,
        };
        assert_eq!(
            decide(&on, true, EndCause::Finished, &mut b),
            Decision::Finish
        );
        assert_eq!(
            decide(&on, true, EndCause::Stopped, &mut b),
            Decision::Finish
        );
        assert_eq!(
            decide(&on, false, EndCause::Failed, &mut b),
            Decision::Finish
        );
        assert_eq!(
            decide(&off, true, EndCause::Failed, &mut b),
            Decision::Finish
        );
        assert!(matches!(
            decide(&on, true, EndCause::EndOfStream, &mut b),
            Decision::Reconnect(_)
        ));
        let max2 = ReconnectPolicy {
            enabled: true,
            max_attempts: Some(2),
        };
        let mut b = Backoff::with_seed(1);
        assert!(matches!(
            decide(&max2, true, EndCause::Failed, &mut b),
            Decision::Reconnect(_)
        ));
        assert!(matches!(
            decide(&max2, true, EndCause::Failed, &mut b),
            Decision::Reconnect(_)
        ));
        assert_eq!(
            decide(&max2, true, EndCause::Failed, &mut b),
            Decision::GiveUp
        );
    }

    #[test]
    fn a_retry_loop_on_the_fake_clock_waits_the_backoff_without_sleeping() {
        let clock = SimulatedClock::default();
        let start = clock.now();
        let stop = AtomicBool::new(false);
        let mut b = Backoff::with_seed(3);
        let policy = ReconnectPolicy {
            enabled: true,
            max_attempts: Some(6),
        };
        let mut attempts = 0;
        while let Decision::Reconnect(d) = decide(&policy, true, EndCause::Failed, &mut b) {
            assert!(clock.sleep(d, &stop));
            attempts += 1;
        }
        assert_eq!(attempts, 6);
        let waited = clock.now() - start;
        // 0.5+1+2+4+8+16 = 31.5 s, ±20 %
        assert!(
            waited.as_secs_f64() > 25.0 && waited.as_secs_f64() < 38.0,
            "{waited:?}"
        );
        stop.store(true, Ordering::Relaxed);
        assert!(!clock.sleep(Duration::from_secs(1), &stop));
    }
}
