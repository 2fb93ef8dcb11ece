//! `frameflow`: the command users run. It blocks SIGINT and SIGTERM, then executes the
//! real program, `frameflow-engine`, installed beside it.
//!
//! Why: the engine links the FFmpeg libraries (over 200 shared objects with libavdevice's
//! dependencies), and the dynamic loader spends tens of milliseconds on them before the
//! engine's first instruction runs. A signal in that window would kill the process with
//! the default action (exit 143) instead of the clean stop SPEC promises. This launcher
//! links only libc, so its own window is a fraction of a millisecond. A blocked signal
//! stays pending across `execve`; the engine installs its handlers first thing and then
//! unblocks, and the pending signal is handled like any other.
//!
//! `FRAMEFLOW_ENGINE` names another engine binary (tests, packaging).

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

fn main() {
    block_stop_signals();
    let engine = match std::env::var_os("FRAMEFLOW_ENGINE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::current_exe() {
            Ok(me) => me.with_file_name("frameflow-engine"),
            Err(e) => fail(&format!("cannot find my own path: {e}")),
        },
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| OsString::from("frameflow"));
    // `exec` returns only on failure.
    let err = std::process::Command::new(&engine)
        .arg0(argv0)
        .args(args)
        .exec();
    fail(&format!(
        "cannot run {} (it belongs beside this binary): {err}",
        engine.display()
    ));
}

/// Blocks SIGINT and SIGTERM in this thread (the only one); the mask survives `execve`.
fn block_stop_signals() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the calls
    // only touch this process's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn fail(msg: &str) -> ! {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "frameflow: error: {msg}");
    std::process::exit(1);
}
