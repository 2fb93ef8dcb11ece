//! The supervisor: when to reconnect a live input, how long to wait, and the reconnect
//! loop itself ([`supervise`]).
//!
//! Time and the input are injected: the loop takes a [`Clock`] and drives anything that
//! is [`Supervised`] (the pipeline's decoder in production, a scripted input in the unit
//! tests below), so backoff, give-up, stalls and stops are tested on simulated time,
//! without sleeping and without a network (moonfire-nvr's `Clocks`/`SimulatedClocks`).

pub use crate::runtime::clock::{Clock, SystemClock};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// One input as the supervisor drives it: a connection is opened, run until it ends,
/// and opened again when the policy says so.
pub trait Supervised {
    type Error: std::fmt::Display;
    /// The input, as logs name it (secrets redacted).
    fn name(&self) -> &str;
    /// Closes the current connection, if any, then opens a new one. An input frameflow
    /// listens on (`udp://`, a `?listen=1` server) holds its port until it is closed.
    fn connect(&mut self) -> Result<(), Self::Error>;
    /// Whether an open that failed this way may work later (a camera that is down), as
    /// opposed to one no retry mends (a protocol this build lacks).
    fn is_transient(&self, e: &Self::Error) -> bool;
    /// Runs the open connection until it ends.
    fn run(&mut self) -> Session<Self::Error>;
    /// Something the status shows happened.
    fn event(&mut self, event: Event);
}

/// How one connection ended.
#[derive(Debug)]
pub struct Session<E> {
    pub cause: EndCause,
    /// The failure behind `EndCause::Failed` (`None` for a clean end).
    pub error: Option<E>,
    /// Whether it delivered any frame: one that did resets the backoff.
    pub delivered: bool,
}

impl<E> Session<E> {
    /// A connection that could not even be opened.
    pub fn open_failed(error: E) -> Session<E> {
        Session {
            cause: EndCause::Failed,
            error: Some(error),
            delivered: false,
        }
    }
}

/// What the supervisor tells its input, for the status (`/api/status`, metrics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// Waiting before the next attempt: `reconnecting` once a connection had worked,
    /// else still connecting for the first time.
    Waiting { reconnecting: bool, delay: Duration },
    /// A new connection is open. `gap`: the time since the last one ended, when there
    /// was one.
    Connected { gap: Option<Duration> },
}

/// How a supervised input ended.
#[derive(Debug)]
pub struct Ended<E> {
    /// The failure that ended it, if any.
    pub error: Option<E>,
    /// Ended by the stop flag before the input ended or the run's limits were reached.
    pub stopped: bool,
}

/// The reconnect loop. `first` is how the first connection went: `Ok` when it is open
/// (it is run here), or the error that opening it gave (retried here, as the policy
/// says, like a connection that was lost). Returns when the run is over: finished,
/// stopped, given up, or failed in a way no retry mends.
pub fn supervise<S: Supervised>(
    input: &mut S,
    first: Result<(), S::Error>,
    policy: &ReconnectPolicy,
    live: bool,
    clock: &dyn Clock,
    backoff: &mut Backoff,
    stop: &AtomicBool,
) -> Ended<S::Error> {
    let mut ever_connected = first.is_ok();
    let mut session = match first {
        Ok(()) => input.run(),
        Err(e) => Session::open_failed(e),
    };
    loop {
        let why = match &session.error {
            Some(e) => e.to_string(),
            None => format!("input '{}': end of stream", input.name()),
        };
        // Backoff grows over attempts that deliver nothing; a frame resets it.
        backoff.connection_ended(session.delivered);
        let delay = match decide(policy, live, session.cause, backoff) {
            Decision::Finish => {
                return Ended {
                    stopped: session.cause == EndCause::Stopped,
                    error: session.error,
                };
            }
            Decision::GiveUp => {
                tracing::error!("{why}; giving up after {} attempts", backoff.attempts());
                return Ended {
                    error: session.error,
                    stopped: false,
                };
            }
            Decision::Reconnect(d) => d,
        };
        let verb = if ever_connected {
            "reconnecting"
        } else {
            "retrying"
        };
        tracing::warn!(
            "{why}; {verb} in {:.1} s (attempt {})",
            delay.as_secs_f64(),
            backoff.attempts()
        );
        let gap_start = clock.now();
        input.event(Event::Waiting {
            reconnecting: ever_connected,
            delay,
        });
        if !clock.sleep(delay, stop) {
            return Ended {
                error: None,
                stopped: true,
            };
        }
        session = match input.connect() {
            Ok(()) => {
                tracing::warn!(
                    "input '{}': {}",
                    input.name(),
                    if ever_connected {
                        "reconnected"
                    } else {
                        "connected"
                    }
                );
                input.event(Event::Connected {
                    gap: ever_connected.then(|| clock.now() - gap_start),
                });
                ever_connected = true;
                input.run()
            }
            Err(_) if stop.load(Ordering::Relaxed) => {
                return Ended {
                    error: None,
                    stopped: true,
                };
            }
            Err(e) if !input.is_transient(&e) => {
                return Ended {
                    error: Some(e),
                    stopped: false,
                };
            }
            Err(e) => Session::open_failed(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SimulatedClock;
    use std::collections::VecDeque;
    use std::sync::Arc;

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

    /// A scripted input: each `connect` takes the next open result, each `run` the next
    /// session; the simulated clock moves on by a session's length while it runs.
    #[derive(Default)]
    struct Script {
        opens: VecDeque<Result<(), Fail>>,
        sessions: VecDeque<(Duration, Session<Fail>)>,
        clock: Arc<SimulatedClock>,
        events: Vec<Event>,
        connects: u32,
        /// Set the stop flag when the session of this index starts.
        stop_at_session: Option<(usize, Arc<AtomicBool>)>,
        ran: usize,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Fail {
        Refused,
        Stalled,
        NoSuchProtocol,
    }

    impl std::fmt::Display for Fail {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl Supervised for Script {
        type Error = Fail;
        fn name(&self) -> &str {
            "rtsp://cam"
        }
        fn connect(&mut self) -> Result<(), Fail> {
            self.connects += 1;
            self.opens.pop_front().unwrap_or(Err(Fail::Refused))
        }
        fn is_transient(&self, e: &Fail) -> bool {
            *e != Fail::NoSuchProtocol
        }
        fn run(&mut self) -> Session<Fail> {
            if let Some((n, stop)) = &self.stop_at_session
                && *n == self.ran
            {
                stop.store(true, Ordering::Relaxed);
            }
            self.ran += 1;
            let (len, s) = self.sessions.pop_front().unwrap_or((
                Duration::ZERO,
                Session {
                    cause: EndCause::EndOfStream,
                    error: None,
                    delivered: false,
                },
            ));
            self.clock.advance(len);
            s
        }
        fn event(&mut self, event: Event) {
            self.events.push(event);
        }
    }

    fn worked(len_s: u64, cause: EndCause, error: Option<Fail>) -> (Duration, Session<Fail>) {
        (
            Duration::from_secs(len_s),
            Session {
                cause,
                error,
                delivered: true,
            },
        )
    }

    fn run_script(
        script: &mut Script,
        first: Result<(), Fail>,
        policy: ReconnectPolicy,
        live: bool,
        stop: &AtomicBool,
    ) -> Ended<Fail> {
        let clock = script.clock.clone();
        supervise(
            script,
            first,
            &policy,
            live,
            &*clock,
            &mut Backoff::with_seed(11),
            stop,
        )
    }

    fn within(d: Duration, base_s: f64) -> bool {
        let s = d.as_secs_f64();
        s >= base_s * 0.8 - 1e-9 && s <= (base_s * 1.2).min(30.0) + 1e-9
    }

    #[test]
    fn a_camera_down_at_start_is_retried_with_growing_waits_until_it_comes() {
        let mut script = Script {
            opens: VecDeque::from([Err(Fail::Refused), Err(Fail::Refused), Ok(())]),
            sessions: VecDeque::from([worked(5, EndCause::Stopped, None)]),
            ..Default::default()
        };
        let stop = AtomicBool::new(false);
        let end = run_script(
            &mut script,
            Err(Fail::Refused),
            ReconnectPolicy::default(),
            true,
            &stop,
        );
        assert!(end.error.is_none() && end.stopped, "{end:?}");
        let slept = script.clock.slept();
        assert_eq!(slept.len(), 3, "{slept:?}");
        for (d, base) in slept.iter().zip([0.5, 1.0, 2.0]) {
            assert!(within(*d, base), "{slept:?}");
        }
        // Connecting, not reconnecting: no connection had worked yet; no gap counted.
        assert!(script.events.iter().all(|e| !matches!(
            e,
            Event::Waiting {
                reconnecting: true,
                ..
            }
        )));
        assert_eq!(script.events.last(), Some(&Event::Connected { gap: None }));
    }

    #[test]
    fn reconnect_max_gives_up_with_the_last_error() {
        let mut script = Script {
            sessions: VecDeque::from([worked(3, EndCause::Failed, Some(Fail::Stalled))]),
            ..Default::default()
        };
        let policy = ReconnectPolicy {
            enabled: true,
            max_attempts: Some(4),
        };
        let stop = AtomicBool::new(false);
        let end = run_script(&mut script, Ok(()), policy, true, &stop);
        assert_eq!(end.error, Some(Fail::Refused));
        assert!(!end.stopped);
        // A stall ends the first session; then 4 attempts, each refused, then give up.
        assert_eq!(script.connects, 4);
        let slept = script.clock.slept();
        for (d, base) in slept.iter().zip([0.5, 1.0, 2.0, 4.0]) {
            assert!(within(*d, base), "{slept:?}");
        }
        assert!(script.events.contains(&Event::Waiting {
            reconnecting: true,
            delay: slept[0]
        }));
    }

    #[test]
    fn a_stalled_connection_that_delivered_frames_is_reopened_at_the_initial_delay_each_time() {
        // Ten sessions that each worked for a while, then stalled: every reconnect waits
        // the initial delay, never a grown one, and --reconnect-max never runs out.
        let mut script = Script {
            opens: (0..10).map(|_| Ok(())).collect(),
            sessions: (0..10)
                .map(|_| worked(30, EndCause::Failed, Some(Fail::Stalled)))
                .chain([worked(1, EndCause::Finished, None)])
                .collect(),
            ..Default::default()
        };
        let policy = ReconnectPolicy {
            enabled: true,
            max_attempts: Some(2),
        };
        let stop = AtomicBool::new(false);
        let end = run_script(&mut script, Ok(()), policy, true, &stop);
        assert!(end.error.is_none() && !end.stopped, "{end:?}");
        let slept = script.clock.slept();
        assert_eq!(slept.len(), 10);
        assert!(slept.iter().all(|d| within(*d, 0.5)), "{slept:?}");
        // Each reconnect reports the gap since its connection was lost.
        let gaps: Vec<Duration> = script
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Connected { gap } => *gap,
                _ => None,
            })
            .collect();
        assert_eq!(gaps, slept);
    }

    #[test]
    fn what_no_retry_mends_ends_the_run_at_once() {
        let mut script = Script {
            opens: VecDeque::from([Err(Fail::NoSuchProtocol)]),
            sessions: VecDeque::from([worked(2, EndCause::EndOfStream, None)]),
            ..Default::default()
        };
        let stop = AtomicBool::new(false);
        let end = run_script(&mut script, Ok(()), ReconnectPolicy::default(), true, &stop);
        assert_eq!(end.error, Some(Fail::NoSuchProtocol));
        assert_eq!(script.connects, 1);
    }

    #[test]
    fn files_and_no_reconnect_end_with_their_input() {
        for (live, enabled) in [(false, true), (true, false)] {
            let mut script = Script {
                sessions: VecDeque::from([worked(2, EndCause::Failed, Some(Fail::Stalled))]),
                ..Default::default()
            };
            let policy = ReconnectPolicy {
                enabled,
                max_attempts: None,
            };
            let stop = AtomicBool::new(false);
            let end = run_script(&mut script, Ok(()), policy, live, &stop);
            assert_eq!(end.error, Some(Fail::Stalled));
            assert_eq!(script.connects, 0);
            assert!(script.clock.slept().is_empty());
        }
    }

    #[test]
    fn a_stop_ends_the_wait_and_the_run() {
        // Stopped while waiting to reconnect: no further attempt, a clean stop.
        let stop = Arc::new(AtomicBool::new(false));
        let mut script = Script {
            sessions: VecDeque::from([worked(2, EndCause::EndOfStream, None)]),
            stop_at_session: Some((0, stop.clone())),
            ..Default::default()
        };
        let end = run_script(&mut script, Ok(()), ReconnectPolicy::default(), true, &stop);
        assert!(end.stopped && end.error.is_none(), "{end:?}");
        assert_eq!(script.connects, 0);
    }

    #[test]
    fn the_real_loop_on_the_simulated_clock_waits_the_backoff_without_sleeping() {
        let mut script = Script::default();
        let clock = script.clock.clone();
        let start = clock.now();
        let stop = AtomicBool::new(false);
        let policy = ReconnectPolicy {
            enabled: true,
            max_attempts: Some(6),
        };
        let end = supervise(
            &mut script,
            Err(Fail::Refused),
            &policy,
            true,
            &*clock,
            &mut Backoff::with_seed(3),
            &stop,
        );
        let attempts = script.connects;
        assert_eq!(attempts, 6);
        assert_eq!(end.error, Some(Fail::Refused));
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
