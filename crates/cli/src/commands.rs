//! The commands: each turns its resolved settings into a library call and prints the
//! outcome (`run`, `apply`, `watch`, `probe`, `filters`, `--version`).

use crate::failure::{Failure, error_text, usage};
use crate::flags::{ApplyArgs, ProbeArgs, RunArgs, WatchArgs, WorkerArgs};
use crate::plan::{image_job, plan_run};
use crate::{EXIT_INTERRUPTED, Env, STUCK_EXIT, status};
use anyhow::Context as _;
use frameflow::filters::{ParamDefault, describe_filters};
use frameflow::pipeline::{self, RunConfig};
use frameflow::source::{self, InputSpec, OpenOptions};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// `--version`: ours, and the libraries that decide the pixels.
pub fn print_version() {
    let v = source::library_versions();
    println!("frameflow {}", env!("CARGO_PKG_VERSION"));
    println!(
        "FFmpeg {} (libavformat {}, libavcodec {}, libavutil {}, libswscale {})",
        v.ffmpeg, v.avformat, v.avcodec, v.avutil, v.swscale
    );
    println!(
        "libjpeg-turbo {} (built in)",
        frameflow::sink::LIBJPEG_TURBO_VERSION
    );
}

pub fn cmd_apply(args: &ApplyArgs, env: &Env<'_>) -> Result<ExitCode, Failure> {
    use frameflow::batch::apply;
    let cli = env.cli;
    let job = image_job(
        &args.image,
        &args.out,
        &args.name,
        args.overwrite.overwrite,
        |_| Ok(()),
    )?;
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

pub fn cmd_watch(args: &WatchArgs, env: &Env<'_>) -> Result<ExitCode, Failure> {
    let cli = env.cli;
    use frameflow::watch::{self, Disposal, WatchConfig, WatchError};
    let job = image_job(
        &args.image,
        &args.out,
        &args.name,
        args.overwrite.overwrite,
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
        stats_json: args.stats.stats_json.clone(),
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

pub fn cmd_run(
    args: &RunArgs,
    env: &Env<'_>,
    matches: &clap::ArgMatches,
) -> Result<ExitCode, Failure> {
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
    // With --cluster: one connection for every stream's job; an unreachable server is
    // one clear error before anything starts.
    let pool = match &plan.cluster {
        Some((url, creds)) => {
            let url = crate::cluster::cluster_url(url, creds.as_deref())?;
            Some(crate::cluster::connect(&url, "frameflow run")?)
        }
        None => None,
    };
    let pool = &pool;
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
                        .spawn_scoped(scope, move || match &pool {
                            Some(c) => crate::cluster::run_stream(c, &p.cfg, control, t),
                            None => pipeline::run(&p.cfg, control, t),
                        })
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
        let report = frameflow::runtime::stats::Report::new(
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

pub fn cmd_probe(args: &ProbeArgs) -> Result<ExitCode, Failure> {
    let input = InputSpec::parse(&args.input).map_err(usage)?;
    let opts = OpenOptions {
        timeout: args.net.timeout,
        rtsp_transport: args.net.rtsp_transport.0,
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

pub fn cmd_filters() -> Result<ExitCode, Failure> {
    let mut out = String::new();
    out.push_str("Filters (chain them with commas: emboss,grayscale,resize=320x180):\n\n");
    for f in describe_filters() {
        let params: Vec<String> = f
            .params()
            .iter()
            .map(|p| match p.default() {
                ParamDefault::Required => p.name().to_string(),
                ParamDefault::Value(v) => format!("{}={v}", p.name()),
                ParamDefault::Computed(v) => format!("{}=<{v}>", p.name()),
                // A kind of default this version does not know: show its text, if any.
                _ => match p.default_text() {
                    Some(v) => format!("{}=<{v}>", p.name()),
                    None => p.name().to_string(),
                },
            })
            .collect();
        let sig = if params.is_empty() {
            f.name().to_string()
        } else {
            format!("{}={}", f.name(), params.join(":"))
        };
        out.push_str(&format!(
            "  {sig}\n      {}\n      Pillow: {}\n",
            f.help(),
            f.pillow()
        ));
        for p in f.params() {
            out.push_str(&format!("      - {}: {}\n", p.name(), p.help()));
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub fn cmd_worker(args: &WorkerArgs, env: &Env<'_>) -> Result<ExitCode, Failure> {
    let Some(url) = &args.cluster.cluster else {
        return Err(usage(anyhow::anyhow!(
            "worker: give the pool's server with --cluster nats://HOST:PORT"
        )));
    };
    let url = crate::cluster::cluster_url(url, args.cluster.nats_creds.as_deref())?;
    let pool = crate::cluster::connect(&url, "frameflow worker")?;
    let threads = crate::plan::worker_count(args.threads.workers);
    if !env.cli.quiet {
        say!(
            "frameflow: worker with {threads} thread(s) on {} (Ctrl-C to stop)",
            pool.server()
        );
    }
    let stats = std::sync::Arc::new(frameflow::runtime::stats::WorkerStats::default());
    if let Some(addr) = &args.web.serve {
        let addr = frameflow::serve::parse_addr(addr).map_err(usage)?;
        let opts =
            crate::plan::serve_options(args.web.serve_auth.as_deref(), args.web.serve_max_clients)
                .map_err(usage)?;
        let registry = frameflow::serve::Registry {
            worker: Some(stats.clone()),
            ..Default::default()
        };
        let server = frameflow::serve::start(addr, std::sync::Arc::new(registry), opts)?;
        if !env.cli.quiet {
            say!(
                "frameflow: worker status on http://{}/api/status",
                server.addr()
            );
        }
    }
    crate::cluster::run_worker(&pool, threads, &env.control, &stats);
    if !env.cli.quiet {
        let s = stats.snapshot();
        say!(
            "frameflow: worker done: {} chunk(s), {} frame(s) made, {} failed, {} redelivered chunk(s); busy {:.1} s",
            s.chunks_done,
            s.frames_made,
            s.frames_failed,
            s.chunks_redelivered,
            s.busy_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
