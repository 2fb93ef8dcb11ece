//! The `frameflow-engine` binary (run through the `frameflow` launcher, which blocks
//! SIGINT/SIGTERM until this program has its handlers): argument parsing, logging, signals
//! and exit codes. Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 a file or
//! batch job stopped by a signal before its end.

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};
use failure::{Failure, error_text};
use flags::{Cli, Command};
use frameflow::runtime::Control;
use frameflow::sink::atomic;
use frameflow::source;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Writes a line to stderr, ignoring failure: a closed stderr (`frameflow … 2>&1 | head`)
/// must not turn into a panic (exit 101).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cluster;
mod commands;
mod failure;
mod flags;
mod plan;
mod status;

/// Exit code of a file or batch job stopped by a signal before its end (128 + SIGINT,
/// as shells report a Ctrl-C).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // First of all: SIGINT/SIGTERM ask for a clean stop from here on. The launcher kept
    // them blocked until now, so one that arrived while the libraries were loading is
    // pending and is handled as soon as they are unblocked.
    let control = Control::default();
    let temp_dirs = match install_signals(&control) {
        Ok(d) => d,
        Err(e) => {
            say!("frameflow: error: {}", error_text(&e));
            return ExitCode::from(1);
        }
    };
    raise_fd_limit();
    let parsed = Cli::command()
        .try_get_matches_from(std::env::args_os().map(ffmpeg_spelling_hint))
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if cli.version {
        commands::print_version();
        return ExitCode::SUCCESS;
    }
    let Some(command) = &cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    init_logging(&cli);
    frameflow::setting::spell_settings(flags::setting_spelling());
    let env = Env {
        control,
        temp_dirs,
        cli: &cli,
    };
    let res = match command {
        Command::Run(a) => commands::cmd_run(a, &env, &matches),
        Command::Probe(a) => commands::cmd_probe(a),
        Command::Apply(a) => commands::cmd_apply(a, &env),
        Command::Watch(a) => commands::cmd_watch(a, &env),
        Command::Worker(a) => commands::cmd_worker(a, &env),
        Command::Filters => commands::cmd_filters(),
    };
    match res {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            say!("frameflow: error: {}", error_text(&e));
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            say!("frameflow: error: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// What every command gets from `main`: the stop/abort flags the signal handler sets,
/// the directories whose temporary files a second signal removes, and the options.
pub(crate) struct Env<'a> {
    pub(crate) control: Control,
    temp_dirs: TempDirs,
    pub(crate) cli: &'a Cli,
}

/// Directories whose temporary files are ours to remove on an abort.
type TempDirs = std::sync::Arc<std::sync::Mutex<Vec<std::path::PathBuf>>>;

impl Env<'_> {
    /// Registers directories a second signal cleans of our temporary files.
    pub(crate) fn clean_on_abort(&self, dirs: impl IntoIterator<Item = std::path::PathBuf>) {
        if let Ok(mut d) = self.temp_dirs.lock() {
            d.extend(dirs);
        }
    }
}

/// Raises the soft limit on open files to the hard one: `--serve` viewers (capped by
/// `--serve-max-clients`), inputs and output files then never compete for the usual
/// 1024 descriptors.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// ffmpeg's spellings of options `run` names differently: answered with ours instead of
/// clap's bare "unexpected argument".
const FFMPEG_SPELLINGS: &[(&str, &str)] = &[
    ("-y", "--overwrite"),
    ("-ss", "--start S"),
    ("-t", "--duration S"),
    ("-r", "--fps R"),
    ("-vf", "-f CHAIN (see `frameflow filters`)"),
    ("-loglevel", "-v/-vv (more) or -q (less)"),
    ("-v", "-v/-vv (more) or -q (less)"),
    ("-frames:v", "--max-frames N"),
    ("-vframes", "--max-frames N"),
];

/// Checks one argument for an ffmpeg spelling and, if it is one, exits with a usage error
/// naming frameflow's. Everything else passes through unchanged.
fn ffmpeg_spelling_hint(arg: std::ffi::OsString) -> std::ffi::OsString {
    if let Some(a) = arg.to_str()
        && a != "-v"
        && let Some((_, ours)) = FFMPEG_SPELLINGS.iter().find(|(theirs, _)| *theirs == a)
    {
        say!("frameflow: error: '{a}' is ffmpeg's spelling; frameflow's is {ours}");
        say!("For more information, try '--help'.");
        std::process::exit(2);
    }
    arg
}

fn init_logging(cli: &Cli) {
    let (ours, av) = match (cli.quiet, cli.verbose) {
        (true, _) => ("error", source::FfmpegLog::Quiet),
        (false, 0) => ("warn", source::FfmpegLog::Quiet),
        (false, 1) => ("info", source::FfmpegLog::Errors),
        (false, _) => ("debug", source::FfmpegLog::Warnings),
    };
    // FRAMEFLOW_LOG, else RUST_LOG, else -q/-v.
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMEFLOW_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("frameflow={ours}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| QuietStderr)
        // Its own complaint about a failed write would go to stderr too, through a
        // macro that panics when stderr is gone.
        .log_internal_errors(false)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    source::init_ffmpeg_log(av);
}

/// Stderr for log lines, failures ignored: a log line that cannot be written is lost,
/// and the run goes on (`frameflow run … 2>&1 | head`).
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// What the process exits with when a stop finds it stuck in a blocking open or read:
/// 0 when every input is live (a signal is their normal end), 130 otherwise. Set by
/// `run` once it knows its inputs.
pub(crate) static STUCK_EXIT: std::sync::atomic::AtomicU8 =
    std::sync::atomic::AtomicU8::new(EXIT_INTERRUPTED);

/// After a stop: if some thread stays inside a blocking libavformat call that no
/// interrupt reaches (a FIFO nobody writes, a silent stdin) for `STUCK_IO_GRACE`, the
/// process ends itself — temporary files removed, nothing partial left.
fn watch_for_stuck_io(dirs: TempDirs) {
    const STUCK_IO_GRACE: Duration = Duration::from_secs(1);
    let _ = std::thread::Builder::new()
        .name("ff-stuck-io".into())
        .spawn(move || {
            let mut stuck_since: Option<std::time::Instant> = None;
            loop {
                std::thread::sleep(Duration::from_millis(50));
                if source::IN_BLOCKING_IO.load(Ordering::SeqCst) == 0 {
                    stuck_since = None;
                    continue;
                }
                let since = *stuck_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= STUCK_IO_GRACE {
                    let dirs = dirs.lock().map(|d| d.clone()).unwrap_or_default();
                    for dir in &dirs {
                        atomic::remove_own_temps(dir);
                    }
                    let code = STUCK_EXIT.load(Ordering::SeqCst);
                    say!("frameflow: stopped while waiting for input that does not come");
                    std::process::exit(i32::from(code));
                }
            }
        });
}

/// Installs SIGINT/SIGTERM handling, then unblocks both (the launcher blocked them): the
/// first signal asks for a clean stop, the second removes our temporary files from the
/// directories registered so far and exits at once.
fn install_signals(control: &Control) -> anyhow::Result<TempDirs> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let dirs = TempDirs::default();
    let control = control.clone();
    let out_dirs = dirs.clone();
    std::thread::Builder::new()
        .name("ff-signals".into())
        .spawn(move || {
            // Count signals here, not through `stop`: the pipeline also sets `stop` itself
            // (e.g. on a full disk), and a first Ctrl-C after that must not abort.
            let mut seen = 0u32;
            for sig in signals.forever() {
                seen += 1;
                control.stop.store(true, Ordering::SeqCst);
                if seen >= 2 {
                    control.abort.store(true, Ordering::SeqCst);
                    let dirs = out_dirs.lock().map(|d| d.clone()).unwrap_or_default();
                    for dir in &dirs {
                        atomic::remove_own_temps(dir);
                    }
                    say!("frameflow: aborted by second signal");
                    std::process::exit(128 + sig);
                }
                tracing::warn!("signal {sig}: finishing frames in flight (again to abort)");
                if seen == 1 {
                    watch_for_stuck_io(out_dirs.clone());
                }
            }
        })
        .context("starting the signal thread")?;
    // SAFETY: sigset_t is plain data set up by sigemptyset; only this thread's mask
    // changes (threads started later inherit it).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, SIGINT);
        libc::sigaddset(&mut set, SIGTERM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    Ok(dirs)
}
