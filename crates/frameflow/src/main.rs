//! The `frameflow-engine` binary (run through the `frameflow` launcher, which blocks
//! SIGINT/SIGTERM until this program has its handlers): argument parsing, logging, signals
//! and exit codes. Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 a file or
//! batch job stopped by a signal before its end.

mod cli;
mod status;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};
use cli::{ApplyArgs, Cli, Command, ImageArgs, ProbeArgs, RunArgs, WatchArgs};
use frameflow::batch::ImageJob;
use frameflow::filters::{Chain, Mode, ParamDefault, describe_filters};
use frameflow::pipeline::{self, Control, Overload, RunConfig, Sampling};
use frameflow::sink::atomic;
use frameflow::sink::encode::{EncodeOptions, ImageFormat};
use frameflow::sink::naming::Template;
use frameflow::source::{self, InputSpec, OpenOptions};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// An error at the edge, with the exit code it maps to.
enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Runtime(e.into())
    }
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

/// Writes a line to stderr, ignoring failure: a closed stderr (`frameflow … 2>&1 | head`)
/// must not turn into a panic (exit 101).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Exit code of a file or batch job stopped by a signal before its end (128 + SIGINT,
/// as shells report a Ctrl-C).
const EXIT_INTERRUPTED: u8 = 130;

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
        print_version();
        return ExitCode::SUCCESS;
    }
    let Some(command) = &cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    init_logging(&cli);
    let env = Env {
        control,
        temp_dirs,
        cli: &cli,
    };
    let res = match command {
        Command::Run(a) => cmd_run(a, &env, &matches),
        Command::Probe(a) => cmd_probe(a),
        Command::Apply(a) => cmd_apply(a, &env),
        Command::Watch(a) => cmd_watch(a, &env),
        Command::Filters => cmd_filters(),
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

/// An error and its causes on one line. The convention: a library error's message
/// already says its cause (`output directory x: Permission denied`), and the edge adds
/// each further cause of the chain (anyhow contexts, `#[source]`s) only if the text so
/// far does not already say it, so no cause is printed twice.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// What every command gets from `main`: the stop/abort flags the signal handler sets,
/// the directories whose temporary files a second signal removes, and the options.
struct Env<'a> {
    control: Control,
    temp_dirs: TempDirs,
    cli: &'a Cli,
}

/// Directories whose temporary files are ours to remove on an abort.
type TempDirs = std::sync::Arc<std::sync::Mutex<Vec<std::path::PathBuf>>>;

impl Env<'_> {
    /// Registers directories a second signal cleans of our temporary files.
    fn clean_on_abort(&self, dirs: impl IntoIterator<Item = std::path::PathBuf>) {
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

/// `--version`: ours, and the libraries that decide the pixels.
fn print_version() {
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    // SAFETY: plain version queries without arguments.
    let (avformat, avcodec, avutil, swscale) = unsafe {
        (
            ffmpeg_next::ffi::avformat_version(),
            ffmpeg_next::ffi::avcodec_version(),
            ffmpeg_next::ffi::avutil_version(),
            ffmpeg_next::ffi::swscale_version(),
        )
    };
    // SAFETY: av_version_info returns a static NUL-terminated string (or NULL).
    let ffmpeg = unsafe {
        let p = ffmpeg_next::ffi::av_version_info();
        if p.is_null() {
            "unknown".to_string()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    println!("frameflow {}", env!("CARGO_PKG_VERSION"));
    println!(
        "FFmpeg {ffmpeg} (libavformat {}, libavcodec {}, libavutil {}, libswscale {})",
        v(avformat),
        v(avcodec),
        v(avutil),
        v(swscale)
    );
    println!(
        "libjpeg-turbo {} (built in)",
        env!("FRAMEFLOW_LIBJPEG_TURBO_VERSION")
    );
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
        (true, _) => ("error", ffmpeg_next::ffi::AV_LOG_QUIET),
        (false, 0) => ("warn", ffmpeg_next::ffi::AV_LOG_QUIET),
        (false, 1) => ("info", ffmpeg_next::ffi::AV_LOG_ERROR),
        (false, _) => ("debug", ffmpeg_next::ffi::AV_LOG_WARNING),
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
    source::init_ffmpeg(av);
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
static STUCK_EXIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(EXIT_INTERRUPTED);

/// After a stop: if some thread stays inside a blocking libavformat call that no
/// interrupt reaches (a FIFO nobody writes, a silent stdin) for [`STUCK_IO_GRACE`], the
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

/// The image format: --format, else the template's literal extension, else JPEG.
fn pick_format(args: &RunArgs, template: &Template) -> Result<ImageFormat, Failure> {
    Ok(format_choice(args.format.as_deref(), template)?.unwrap_or(ImageFormat::Jpeg))
}

/// --format and the template's extension, checked against each other.
fn format_choice(flag: Option<&str>, template: &Template) -> Result<Option<ImageFormat>, Failure> {
    let from_flag = flag
        .map(|f| {
            f.parse::<ImageFormat>()
                .map_err(|e| usage(anyhow::anyhow!("--format: {e}")))
        })
        .transpose()?;
    let from_name = match template.literal_extension() {
        None => None,
        Some(ext) => Some(ImageFormat::from_extension(ext).ok_or_else(|| {
            usage(anyhow::anyhow!(
                "--name '{template}': cannot tell the image format from '.{ext}' (use jpg, png, webp, bmp or ppm, or {{ext}})"
            ))
        })?),
    };
    match (from_flag, from_name) {
        (Some(f), Some(n)) if f != n => Err(usage(anyhow::anyhow!(
            "--format {f} disagrees with the extension of --name '{template}'"
        ))),
        (Some(f), _) | (None, Some(f)) => Ok(Some(f)),
        (None, None) => Ok(None),
    }
}

/// Parses `-f CHAIN`; a bad chain is a usage error naming the step.
fn parse_chain(text: &str) -> Result<Chain, Failure> {
    Chain::parse(text).map_err(|e| usage(anyhow::anyhow!("-f '{text}': {e}")))
}

/// `--workers N`, or the number of cores.
fn worker_count(flag: Option<u64>) -> usize {
    flag.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get()),
        |n| n as usize,
    )
}

/// The job of `apply` or `watch`: their shared options with `-o`, `--name` and
/// `--overwrite`. The first usage error found is reported, checking in this order:
/// `-f`, `--name` (parsed, then `check_name`), `--format`.
fn image_job(
    image: &ImageArgs,
    out: &std::path::Path,
    name: &str,
    overwrite: bool,
    check_name: fn(&Template) -> Result<(), String>,
) -> Result<ImageJob, Failure> {
    let chain = parse_chain(&image.chain)?;
    let template = Template::parse(name).map_err(usage)?;
    check_name(&template).map_err(|e| usage(anyhow::anyhow!(e)))?;
    let format = format_choice(image.format.as_deref(), &template)?;
    Ok(ImageJob {
        chain,
        out_dir: out.to_path_buf(),
        template,
        format,
        quality: image.quality,
        workers: worker_count(image.workers),
        overwrite,
        limits: frameflow::source::still::StillLimits {
            max_pixels: image.max_pixels,
        },
        max_file_size: image.max_file_size,
    })
}

fn cmd_apply(args: &ApplyArgs, env: &Env<'_>) -> Result<ExitCode, Failure> {
    use frameflow::batch::apply;
    let cli = env.cli;
    let job = image_job(&args.image, &args.out, &args.name, args.overwrite, |_| {
        Ok(())
    })?;
    job.template
        .check_unique_files(args.files.len())
        .map_err(usage)?;
    let control = &env.control;
    env.clean_on_abort([job.out_dir.clone()]);
    let bar = (!cli.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| status::files_bar(args.files.len() as u64));
    let report = apply(&job, &args.files, &control.stop, &|_, res| {
        if let Err(e) = res {
            match &bar {
                Some(b) => b.println(format!("frameflow: error: {e}")),
                None => say!("frameflow: error: {e}"),
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let stopped = control.stop.load(Ordering::Relaxed);
    let done = report.written.len() + report.failed.len();
    if !cli.quiet {
        say!(
            "frameflow: wrote {} file(s) to {}, {} failed",
            report.written.len(),
            job.out_dir.display(),
            report.failed.len()
        );
    }
    Ok(if stopped && done < args.files.len() {
        say!(
            "frameflow: interrupted after {done} of {} file(s)",
            args.files.len()
        );
        ExitCode::from(EXIT_INTERRUPTED)
    } else if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_watch(args: &WatchArgs, env: &Env<'_>) -> Result<ExitCode, Failure> {
    let cli = env.cli;
    use frameflow::watch::{self, Disposal, WatchConfig, WatchError};
    let job = image_job(
        &args.image,
        &args.out,
        &args.name,
        args.overwrite,
        watch::check_template,
    )?;
    let disposal = match (&args.done, args.keep_input) {
        (Some(d), _) => Disposal::MoveTo(d.clone()),
        (None, true) => Disposal::Keep,
        (None, false) => Disposal::Delete,
    };
    let cfg = WatchConfig {
        dir: args.dir.clone(),
        job,
        failed_dir: args
            .failed
            .clone()
            .unwrap_or_else(|| args.dir.join("failed")),
        disposal,
        once: args.once,
        recursive: args.recursive,
        stats_json: args.stats_json.clone(),
    };
    let control = &env.control;
    env.clean_on_abort([cfg.job.out_dir.clone()]);
    let terminal = !cli.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // --once: a bar over the backlog; a hot folder: a live status line.
    let bar = terminal.then(|| {
        if args.once {
            status::files_bar(0)
        } else {
            status::watch_line(&cfg.dir, &cfg.job.out_dir)
        }
    });
    if !args.once && !cli.quiet {
        tracing::info!(
            "watching {} → {} (Ctrl-C to stop)",
            cfg.dir.display(),
            cfg.job.out_dir.display()
        );
    }
    let res = watch::watch(&cfg, control, &|done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = match res {
        Ok(s) => s,
        Err(e @ WatchError::Config(_)) => return Err(usage(e)),
        Err(e) => return Err(Failure::Runtime(e.into())),
    };
    if !cli.quiet {
        let again = if summary.already_done > 0 {
            format!(" ({} finished from an earlier run)", summary.already_done)
        } else {
            String::new()
        };
        say!(
            "frameflow: wrote {} file(s) to {}{again}, {} failed; {:.1} s",
            summary.written,
            cfg.job.out_dir.display(),
            summary.failed,
            summary.report.elapsed_s,
        );
    }
    Ok(if args.once && summary.failed > 0 && !summary.stopped {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `run`'s options as one stream's configuration. Checks everything that can be checked
/// without touching the input or the output.
fn run_config(args: &RunArgs) -> Result<RunConfig, Failure> {
    let input = args
        .input
        .as_deref()
        .ok_or_else(|| usage(anyhow::anyhow!("no input: give -i SRC")))?;
    let input = InputSpec::parse(input).map_err(usage)?;
    let chain = parse_chain(&args.chain)?;
    let template = Template::parse(&args.name).map_err(usage)?;
    template.check_unique(args.max_frames).map_err(usage)?;
    let format = pick_format(args, &template)?;
    let out_mode = chain
        .output_mode(Mode::Rgb)
        .map_err(|e| usage(anyhow::anyhow!("-f '{}': {e}", args.chain)))?;
    if !format.supports(out_mode) {
        return Err(usage(anyhow::anyhow!(
            "-f '{}' produces {} images, which {format} cannot store",
            args.chain,
            out_mode.name()
        )));
    }
    let overload = args.overload.unwrap_or(if input.is_live() {
        Overload::DropOldest
    } else {
        Overload::Block
    });
    let label = args.label.clone().unwrap_or_else(|| input.default_label());
    template
        .check_fields(&label, &input.default_label())
        .map_err(usage)?;
    if let Some(raw) = &args.raw_dir
        && same_dir(raw, &args.out)
    {
        return Err(usage(anyhow::anyhow!(
            "--raw-dir {} is the output directory: give it a directory of its own",
            raw.display()
        )));
    }
    Ok(RunConfig {
        open: OpenOptions {
            timeout: args.timeout,
            rtsp_transport: args.rtsp_transport,
            keyframes_only: args.keyframes_only,
            max_pixels: args.max_pixels,
            // Sampling leaves the workers mostly idle: decoding is the job then.
            decode_share: if args.keyframes_only || args.fps.is_some() || args.every.is_some() {
                source::DecodeShare::All
            } else if input.is_live() {
                source::DecodeShare::Half
            } else {
                source::DecodeShare::Files
            },
        },
        chain,
        out_dir: args.out.clone(),
        template,
        encode: EncodeOptions {
            format,
            quality: args.quality,
        },
        workers: worker_count(args.workers),
        queue: args.queue as usize,
        overload,
        sampling: Sampling {
            fps: args.fps,
            every: args.every,
            start: args.start,
            duration: args.duration,
            max_frames: args.max_frames,
        },
        overwrite: args.overwrite,
        label,
        reconnect: frameflow::supervisor::ReconnectPolicy {
            enabled: !args.no_reconnect,
            max_attempts: args.reconnect_max,
        },
        raw_dir: args.raw_dir.clone(),
        keep_last: args.keep_last.map(|n| n as usize),
        input,
    })
}

/// Whether two paths name the same directory, compared as canonical paths: `o`,
/// `./o/.` and a symlink to `o` are one directory, whether or not it exists yet.
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    canonical(a) == canonical(b)
}

/// `p` made absolute, its longest existing prefix resolved (symlinks, `..`), the rest
/// appended lexically.
fn canonical(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let abs = std::env::current_dir().map_or_else(|_| p.to_path_buf(), |cwd| cwd.join(p));
    // `components` already drops the `.` in `a/./b` and `o/.`.
    let comps: Vec<Component<'_>> = abs.components().collect();
    for split in (0..=comps.len()).rev() {
        let prefix: std::path::PathBuf = comps[..split].iter().collect();
        if let Ok(mut c) = prefix.canonicalize() {
            for comp in &comps[split..] {
                match comp {
                    Component::CurDir => {}
                    Component::ParentDir => {
                        c.pop();
                    }
                    other => c.push(other),
                }
            }
            return c;
        }
    }
    abs
}

/// One stream to run, with the filter text the web page shows.
struct Planned {
    cfg: RunConfig,
    filter: String,
}

/// The process-wide settings of a `run`: from the command line, or from `--config`.
struct RunPlan {
    streams: Vec<Planned>,
    serve: Option<String>,
    serve_opts: frameflow::serve::ServeOptions,
    stats_json: Option<std::path::PathBuf>,
}

/// `--serve-auth` and `--serve-max-clients` as server options.
fn serve_options(
    auth: Option<&str>,
    max_clients: Option<u64>,
) -> Result<frameflow::serve::ServeOptions, frameflow::serve::ServeError> {
    Ok(frameflow::serve::ServeOptions {
        auth: auth.map(frameflow::serve::BasicAuth::parse).transpose()?,
        max_clients: max_clients.map_or(frameflow::serve::DEFAULT_MAX_CLIENTS, |n| n as usize),
        ..Default::default()
    })
}

fn plan_run(args: &RunArgs, matches: &clap::ArgMatches) -> Result<RunPlan, Failure> {
    let Some(path) = &args.config else {
        return Ok(RunPlan {
            streams: vec![Planned {
                cfg: run_config(args)?,
                filter: args.chain.clone(),
            }],
            serve: args.serve.clone(),
            serve_opts: serve_options(args.serve_auth.as_deref(), args.serve_max_clients)
                .map_err(usage)?,
            stats_json: args.stats_json.clone(),
        });
    };
    // With --config, stream options live in the file.
    if let Some(run) = matches.subcommand_matches("run") {
        let cmd = Cli::command();
        let run_cmd = cmd.find_subcommand("run");
        let is_option = |id: &str| {
            run_cmd.is_some_and(|c| c.get_arguments().any(|a| a.get_id().as_str() == id))
        };
        for id in run.ids() {
            let id = id.as_str();
            if is_option(id)
                && run.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
                && !cli::PROCESS_OPTIONS.contains(&id)
                && !["quiet", "verbose"].contains(&id)
            {
                let long = run_cmd
                    .and_then(|c| c.get_arguments().find(|a| a.get_id().as_str() == id))
                    .and_then(|a| a.get_long())
                    .unwrap_or(id);
                return Err(usage(anyhow::anyhow!(
                    "--config {}: --{long} belongs in the file ([defaults] or a [[stream]]), not on the command line",
                    path.display(),
                )));
            }
        }
    }
    let file = frameflow::config::ConfigFile::load(path).map_err(|e| match e {
        e @ frameflow::config::ConfigError::Read { .. } => Failure::Runtime(e.into()),
        e => usage(e),
    })?;
    let mut streams = Vec::with_capacity(file.streams.len());
    for entry in &file.streams {
        let settings = file.merged(entry);
        if !settings.iter().any(|s| s.key == "input") {
            return Err(usage(file.stream_error(entry, "missing key 'input'")));
        }
        // The command-line words of each setting, checked against run's options.
        let words = settings
            .iter()
            .map(|s| Ok((s, setting_words(&file, s)?)))
            .collect::<Result<Vec<_>, Failure>>()?;
        let args = stream_args(&file, entry, &words)?;
        let cfg = run_config(&args).map_err(|f| match f {
            // Name the key at fault when one alone is enough to fail.
            Failure::Usage(e) => usage(blame_key(&file, entry, &words, e)),
            other => other,
        })?;
        streams.push(Planned {
            filter: args.chain.clone(),
            cfg,
        });
    }
    for (i, a) in streams.iter().enumerate() {
        for b in &streams[..i] {
            if a.cfg.label == b.cfg.label {
                return Err(usage(anyhow::anyhow!(
                    "{}: two streams are labelled '{}': give each its own label",
                    path.display(),
                    a.cfg.label
                )));
            }
            // No two streams share a directory, however it is spelled (`o`, `./o/.`, a
            // symlink to it): their numbering, rings and temporary files would collide.
            let dirs = |c: &RunConfig| {
                std::iter::once(("out", c.out_dir.clone()))
                    .chain(c.raw_dir.clone().map(|d| ("raw_dir", d)))
                    .collect::<Vec<_>>()
            };
            for (ka, da) in dirs(&a.cfg) {
                for (kb, db) in dirs(&b.cfg) {
                    if same_dir(&da, &db) {
                        return Err(usage(anyhow::anyhow!(
                            "{}: streams '{}' ({kb} = {}) and '{}' ({ka} = {}) would write into the same directory: give each stream its own",
                            path.display(),
                            b.cfg.label,
                            db.display(),
                            a.cfg.label,
                            da.display(),
                        )));
                    }
                }
            }
        }
    }
    let text = |s: &frameflow::config::Setting| match &s.value {
        frameflow::config::Value::Text(t) => Ok(t.clone()),
        frameflow::config::Value::Flag(_) => Err(usage(file.key_error(s, "expected a string"))),
    };
    let serve = match (&args.serve, &file.serve) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(s)) => {
            let t = text(s)?;
            frameflow::serve::parse_addr(&t)
                .map_err(|e| usage(file.key_error(s, e.to_string())))?;
            Some(t)
        }
        (None, None) => None,
    };
    let stats_json = match (&args.stats_json, &file.stats_json) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(s)) => Some(std::path::PathBuf::from(text(s)?)),
        (None, None) => None,
    };
    let auth = match (&args.serve_auth, &file.serve_auth) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(s)) => Some(text(s)?),
        (None, None) => None,
    };
    let max_clients = match (args.serve_max_clients, &file.serve_max_clients) {
        (Some(n), _) => Some(n),
        (None, Some(s)) => Some(
            text(s)?
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=65536).contains(n))
                .ok_or_else(|| {
                    usage(file.key_error(s, "expected a number of connections, 1..65536"))
                })?,
        ),
        (None, None) => None,
    };
    let serve_opts = serve_options(auth.as_deref(), max_clients).map_err(|e| {
        usage(match &file.serve_auth {
            Some(s) => anyhow::Error::from(file.key_error(s, e.to_string())),
            None => e.into(),
        })
    })?;
    Ok(RunPlan {
        streams,
        serve,
        serve_opts,
        stats_json,
    })
}

/// The command-line words a setting stands for, checked against `run`'s options.
fn setting_words(
    file: &frameflow::config::ConfigFile,
    s: &frameflow::config::Setting,
) -> Result<Vec<String>, Failure> {
    use clap::CommandFactory;
    use frameflow::config::Value;
    let cmd = cli::StreamArgs::command();
    let long = |name: &str| {
        cmd.get_arguments()
            .find(|a| a.get_long().map(|l| l.replace('-', "_")).as_deref() == Some(name))
            .cloned()
    };
    let arg = long(&s.key).filter(|_| !cli::PROCESS_OPTIONS.contains(&s.key.as_str()));
    let Some(arg) = arg else {
        let msg = if cli::PROCESS_OPTIONS.contains(&s.key.as_str()) {
            "belongs at the top of the file, not in a stream".to_string()
        } else {
            let known: Vec<String> = cmd
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(|l| l.replace('-', "_"))
                .filter(|l| !cli::PROCESS_OPTIONS.contains(&l.as_str()) && l != "help")
                .collect();
            format!("not a run option (known: {})", known.join(", "))
        };
        return Err(usage(file.key_error(s, msg)));
    };
    let flag = format!("--{}", arg.get_long().unwrap_or_default());
    let takes_value = arg.get_action().takes_values();
    Ok(match (&s.value, takes_value) {
        (Value::Text(t), true) => vec![format!("{flag}={t}")],
        (Value::Flag(true), false) => vec![flag],
        // `reconnect = false` is --no-reconnect; other switches are simply off.
        (Value::Flag(false), false) => match long(&format!("no_{}", s.key)) {
            Some(no) => vec![format!("--{}", no.get_long().unwrap_or_default())],
            None => vec![],
        },
        (Value::Flag(_), true) => {
            return Err(usage(file.key_error(s, "expected a value, not true/false")));
        }
        (Value::Text(_), false) => {
            return Err(usage(file.key_error(s, "expected true or false")));
        }
    })
}

/// Parses one `[[stream]]`'s settings with `run`'s option definitions.
fn stream_args(
    file: &frameflow::config::ConfigFile,
    entry: &frameflow::config::StreamEntry,
    words: &[(&frameflow::config::Setting, Vec<String>)],
) -> Result<RunArgs, Failure> {
    use clap::Parser as _;
    let argv = std::iter::once("[[stream]]".to_string())
        .chain(words.iter().flat_map(|(_, w)| w.iter().cloned()));
    match cli::StreamArgs::try_parse_from(argv) {
        Ok(a) => Ok(a.run),
        Err(e) => Err(usage(blame_key(
            file,
            entry,
            words,
            anyhow::anyhow!("{}", clap_message(&e)),
        ))),
    }
}

/// The first line of a clap error, without its `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("");
    first.trim_start_matches("error: ").to_string()
}

/// `err` as an error at the key that causes it on its own (tried one key at a time, with
/// the command-line words each setting stands for), or else at the `[[stream]]` header.
fn blame_key(
    file: &frameflow::config::ConfigFile,
    entry: &frameflow::config::StreamEntry,
    words: &[(&frameflow::config::Setting, Vec<String>)],
    err: anyhow::Error,
) -> anyhow::Error {
    use clap::Parser as _;
    for (s, w) in words {
        let mut argv = vec!["[[stream]]".to_string()];
        if s.key != "input" {
            argv.push("--input=probe.mp4".into());
        }
        argv.extend(w.iter().cloned());
        let alone = match cli::StreamArgs::try_parse_from(&argv) {
            Ok(a) => run_config(&a.run).err().map(|f| match f {
                Failure::Usage(e) | Failure::Runtime(e) => error_text(&e),
            }),
            Err(e) => Some(clap_message(&e)),
        };
        if let Some(msg) = alone {
            return file.key_error(s, msg).into();
        }
    }
    file.stream_error(entry, error_text(&err)).into()
}

fn cmd_run(args: &RunArgs, env: &Env<'_>, matches: &clap::ArgMatches) -> Result<ExitCode, Failure> {
    let cli = env.cli;
    use frameflow::pipeline::Taps;
    let plan = plan_run(args, matches)?;
    let serve_addr = plan
        .serve
        .as_deref()
        .map(frameflow::serve::parse_addr)
        .transpose()
        .map_err(usage)?;
    let taps: Vec<Taps> = plan
        .streams
        .iter()
        .map(|p| Taps::new(&p.cfg, serve_addr.is_some()))
        .collect();
    if let Some(addr) = serve_addr {
        let registry = frameflow::serve::Registry {
            streams: plan
                .streams
                .iter()
                .zip(&taps)
                .filter_map(|(p, t)| {
                    Some(frameflow::serve::StreamView {
                        label: p.cfg.label.clone(),
                        filter: p.filter.clone(),
                        stats: t.stats.clone(),
                        preview: t.preview.clone()?,
                    })
                })
                .collect(),
            ..Default::default()
        };
        let server =
            frameflow::serve::start(addr, std::sync::Arc::new(registry), plan.serve_opts.clone())?;
        if !cli.quiet {
            say!("frameflow: web preview on http://{}/", server.addr());
        }
    }
    if plan.streams.iter().all(|p| p.cfg.input.is_live()) {
        STUCK_EXIT.store(0, Ordering::SeqCst);
    }
    let control = &env.control;
    env.clean_on_abort(
        plan.streams
            .iter()
            .flat_map(|p| std::iter::once(p.cfg.out_dir.clone()).chain(p.cfg.raw_dir.clone())),
    );
    let status = status::Status::start(
        taps.iter().map(|t| t.stats.clone()).collect(),
        status::Display::pick(cli.quiet),
        plan.stats_json.clone(),
    );
    // One thread per stream (its decode thread), with the main thread's stack size.
    let results: Vec<Result<pipeline::RunOutcome, pipeline::PipelineError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = plan
                .streams
                .iter()
                .zip(&taps)
                .map(|(p, t)| {
                    std::thread::Builder::new()
                        .name("ff-stream".into())
                        .stack_size(8 << 20)
                        .spawn_scoped(scope, move || pipeline::run(&p.cfg, control, t))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    let h = h.map_err(pipeline::PipelineError::Thread)?;
                    h.join().unwrap_or_else(|_| {
                        Err(pipeline::PipelineError::Thread(std::io::Error::other(
                            "stream thread panicked",
                        )))
                    })
                })
                .collect()
        });
    status.finish();
    if let Some(path) = &plan.stats_json {
        let report = frameflow::pipeline::stats::Report::new(
            taps.iter().map(|t| t.stats.snapshot()).collect(),
        );
        report
            .write(path)
            .with_context(|| format!("writing --stats-json {}", path.display()))?;
    }
    let single = plan.streams.len() == 1;
    let mut failures = Vec::new();
    let mut interrupted = false;
    for (p, res) in plan.streams.iter().zip(results) {
        match stream_result(&p.cfg, res, cli.quiet, single) {
            Ok(i) => interrupted |= i,
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 if interrupted => Ok(ExitCode::from(EXIT_INTERRUPTED)),
        0 => Ok(ExitCode::SUCCESS),
        1 if single => Err(Failure::Runtime(failures.remove(0))),
        _ => {
            for e in &failures {
                say!("frameflow: error: {}", error_text(e));
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints a stream's summary and turns how it ended into an error, if it failed.
/// `Ok(true)`: a file input stopped by a signal before its end (a partial result).
fn stream_result(
    cfg: &RunConfig,
    res: Result<pipeline::RunOutcome, pipeline::PipelineError>,
    quiet: bool,
    single: bool,
) -> anyhow::Result<bool> {
    let prefix = if single {
        String::new()
    } else {
        format!("[{}] ", cfg.label)
    };
    let wrap = |e: anyhow::Error| {
        if single {
            e
        } else {
            e.context(format!("[{}]", cfg.label))
        }
    };
    let outcome = match res {
        Ok(o) => o,
        // The error names the directory and the reason; no need for its source chain.
        Err(e @ pipeline::PipelineError::Output(_)) => anyhow::bail!("{prefix}{e}"),
        Err(e) => return Err(wrap(e.into())),
    };
    let r = &outcome.report;
    if !quiet {
        let s = &r.streams[0];
        // The first output of this run still there (--keep-last may have deleted some).
        let first = (r.frames_written > 0 && cfg.template.has_index())
            .then(|| {
                let stem = cfg.input.default_label();
                cfg.template.first_present(
                    &cfg.out_dir,
                    &frameflow::sink::naming::NameValues {
                        index: outcome.first_index,
                        ext: cfg.encode.format.extension(),
                        stream: &cfg.label,
                        stem: &stem,
                        ..Default::default()
                    },
                )
            })
            .flatten();
        let names = first.map_or_else(String::new, |f| format!(" (first: {f})"));
        let lat = match (s.latency_ms.p50, s.latency_ms.p99) {
            (Some(a), Some(b)) => format!("; latency p50 {a:.1} ms, p99 {b:.1} ms"),
            _ => String::new(),
        };
        let skipped = if r.frames_skipped > 0 {
            format!(", skipped {}", r.frames_skipped)
        } else {
            String::new()
        };
        say!(
            "frameflow: {prefix}wrote {} frames to {}{names}; decoded {}, dropped {}{skipped}, failed {}; {:.1} s, {:.1} fps{lat}",
            r.frames_written,
            cfg.out_dir.display(),
            r.frames_decoded,
            r.frames_dropped,
            r.frames_failed,
            r.elapsed_s,
            r.fps,
        );
    }
    if let Some(e) = outcome.output_error {
        anyhow::bail!(
            "{prefix}{e}; stopped after writing {} frame(s), no partial file left",
            r.frames_written
        );
    }
    if let Some(e) = outcome.source_error {
        return Err(wrap(e.into()));
    }
    if outcome.damage.any() {
        let msg = format!(
            "{prefix}input '{}': damaged or truncated data: {}",
            cfg.input.raw, outcome.damage
        );
        // A live stream loses packets now and then; a damaged file is a failed job.
        if cfg.input.is_live() {
            tracing::warn!("{msg}");
        } else {
            anyhow::bail!(
                "{msg}; the {} decodable frame(s) were written",
                r.frames_written
            );
        }
    }
    // A file whose video stream gives no frame at all (a picture size its decoder
    // refuses, packets it cannot use) is a failed job, not "wrote 0 frames".
    if !cfg.input.is_live() && !outcome.stopped_early && r.frames_decoded == 0 {
        anyhow::bail!(
            "{prefix}input '{}': no frame could be decoded from its video stream ({})",
            cfg.input.raw,
            match &outcome.damage.last_error {
                Some(e) => format!("the decoder said: {e}"),
                None => "it has none".to_string(),
            }
        );
    }
    // A live input's frames lost to a full disk are counted and warned about; the run
    // itself went on as it should. Any other failed frame fails the run.
    let disk_full = r.streams.iter().map(|s| s.failed.disk_full).sum::<u64>();
    if r.frames_failed > disk_full {
        anyhow::bail!(
            "{prefix}input '{}': {} frame(s) failed (see above)",
            cfg.input.raw,
            r.frames_failed - disk_full
        );
    }
    if disk_full > 0 {
        say!(
            "frameflow: {prefix}input '{}': {disk_full} frame(s) not written: the disk was full",
            cfg.input.raw
        );
    }
    // A signal is a live input's normal end; a file stopped early is a partial result.
    let interrupted = outcome.stopped_early && !cfg.input.is_live();
    if interrupted {
        say!(
            "frameflow: {prefix}input '{}': interrupted after {} frame(s)",
            cfg.input.raw,
            r.frames_written
        );
    }
    Ok(interrupted)
}

fn cmd_probe(args: &ProbeArgs) -> Result<ExitCode, Failure> {
    let input = InputSpec::parse(&args.input).map_err(usage)?;
    let opts = OpenOptions {
        timeout: args.timeout,
        rtsp_transport: args.rtsp_transport,
        keyframes_only: false,
        decode_share: source::DecodeShare::All,
        max_pixels: u64::MAX,
    };
    let info = source::probe::probe(&input, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_filters() -> Result<ExitCode, Failure> {
    let mut out = String::new();
    out.push_str("Filters (chain them with commas: emboss,grayscale,resize=320x180):\n\n");
    for f in describe_filters() {
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| match p.default {
                ParamDefault::Required => p.name.to_string(),
                ParamDefault::Value(v) => format!("{}={v}", p.name),
                ParamDefault::Computed(v) => format!("{}=<{v}>", p.name),
            })
            .collect();
        let sig = if params.is_empty() {
            f.name.to_string()
        } else {
            format!("{}={}", f.name, params.join(":"))
        };
        out.push_str(&format!(
            "  {sig}\n      {}\n      Pillow: {}\n",
            f.help, f.pillow
        ));
        for p in f.params {
            out.push_str(&format!("      - {}: {}\n", p.name, p.help));
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
