//! Run-time pieces every front end shares (`run`, `watch`, `apply`, `--serve`): the stop
//! and abort flags, the live counters and their reports, time.

pub mod clock;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

pub use clock::{Clock, SimulatedClock, SystemClock};

/// A name that is none of a setting's choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{got}' is not one of {}", known.join(", "))]
pub struct UnknownChoice {
    pub got: String,
    pub known: Vec<&'static str>,
}

/// Signals shared with the signal handler: `stop` = finish in-flight frames and end;
/// `abort` = drop everything now.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub stop: Arc<AtomicBool>,
    pub abort: Arc<AtomicBool>,
}

/// Lowers this thread's priority by `by` nice levels (Linux: nice is per thread).
pub fn lower_this_thread(by: libc::c_int) {
    // SAFETY: gettid has no preconditions; getpriority/setpriority only read and set
    // the nice value of this thread.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if *libc::__errno_location() == 0 {
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (now + by).min(19));
        }
    }
}

/// `20261124T101530.123Z` for `{time}`.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_515_330_123);
        assert_eq!(utc_timestamp(t), "20261124T101530.123Z");
        assert_eq!(
            utc_timestamp(SystemTime::UNIX_EPOCH),
            "19700101T000000.000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_timestamp(leap), "20000229T000000.000Z");
    }
}
