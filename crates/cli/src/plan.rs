//! Run planning: the parsed flags (and a `--config` file's settings) resolved into what
//! the library runs — one [`RunConfig`] per stream, the web server's options — with
//! every check that needs neither the input nor the output: templates, formats,
//! duplicate labels and directories. ripgrep's split is the model: [`crate::flags`]
//! holds the raw flags, this module the resolved settings.

use crate::failure::{Failure, error_text, usage};
use crate::flags::{self, ImageArgs, RunArgs, StreamOptions};
use clap::{CommandFactory as _, Parser as _};
use frameflow::batch::ImageJob;
use frameflow::filters::{Chain, Mode};
use frameflow::pipeline::{Overload, RunConfig, Sampling};
use frameflow::sink::encode::{EncodeOptions, ImageFormat};
use frameflow::sink::naming::Template;
use frameflow::source::{self, InputSpec, OpenOptions};

/// The image format: --format, else the template's literal extension, else JPEG.
fn pick_format(args: &StreamOptions, template: &Template) -> Result<ImageFormat, Failure> {
    Ok(format_choice(args.encode.format.as_deref(), template)?.unwrap_or(ImageFormat::Jpeg))
}

/// --format and the template's extension, checked against each other.
pub fn format_choice(
    flag: Option<&str>,
    template: &Template,
) -> Result<Option<ImageFormat>, Failure> {
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
pub fn parse_chain(text: &str) -> Result<Chain, Failure> {
    Chain::parse(text).map_err(|e| usage(anyhow::anyhow!("-f '{text}': {e}")))
}

/// `--workers N`, or the number of cores.
pub fn worker_count(flag: Option<u64>) -> usize {
    flag.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get()),
        |n| n as usize,
    )
}

/// The job of `apply` or `watch`: their shared options with `-o`, `--name` and
/// `--overwrite`. The first usage error found is reported, checking in this order:
/// `-f`, `--name` (parsed, then `check_name`), `--format`.
pub fn image_job(
    image: &ImageArgs,
    out: &std::path::Path,
    name: &str,
    overwrite: bool,
    check_name: fn(&Template) -> Result<(), String>,
) -> Result<ImageJob, Failure> {
    let chain = parse_chain(&image.filter.chain)?;
    let template = Template::parse(name).map_err(usage)?;
    check_name(&template).map_err(|e| usage(anyhow::anyhow!(e)))?;
    let format = format_choice(image.encode.format.as_deref(), &template)?;
    Ok(ImageJob {
        chain,
        out_dir: out.to_path_buf(),
        template,
        format,
        quality: image.encode.quality,
        workers: worker_count(image.encode.threads.workers),
        overwrite,
        limits: frameflow::source::still::StillLimits {
            max_pixels: image.limits.max_pixels,
        },
        max_file_size: image.max_file_size,
    })
}

/// `run`'s options as one stream's configuration. Checks everything that can be checked
/// without touching the input or the output.
pub fn run_config(args: &StreamOptions) -> Result<RunConfig, Failure> {
    let input = args
        .input
        .as_deref()
        .ok_or_else(|| usage(anyhow::anyhow!("no input: give -i SRC")))?;
    let input = InputSpec::parse(input).map_err(usage)?;
    let chain = parse_chain(&args.filter.chain)?;
    let template = Template::parse(&args.name).map_err(usage)?;
    template.check_unique(args.max_frames).map_err(usage)?;
    let format = pick_format(args, &template)?;
    let out_mode = chain
        .output_mode(Mode::Rgb)
        .map_err(|e| usage(anyhow::anyhow!("-f '{}': {e}", args.filter.chain)))?;
    if !format.supports(out_mode) {
        return Err(usage(anyhow::anyhow!(
            "-f '{}' produces {} images, which {format} cannot store",
            args.filter.chain,
            out_mode.name()
        )));
    }
    let overload = args.overload.map(|o| o.0).unwrap_or(if input.is_live() {
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
            timeout: args.net.timeout,
            rtsp_transport: args.net.rtsp_transport.0,
            keyframes_only: args.keyframes_only,
            max_pixels: args.limits.max_pixels,
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
            quality: args.encode.quality,
        },
        workers: worker_count(args.encode.threads.workers),
        queue: args.queue as usize,
        overload,
        sampling: Sampling {
            fps: args.fps,
            every: args.every,
            start: args.start,
            duration: args.duration,
            max_frames: args.max_frames,
        },
        overwrite: args.overwrite.overwrite,
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
pub struct Planned {
    pub cfg: RunConfig,
    pub filter: String,
}

/// The process-wide settings of a `run`: from the command line, or from `--config`.
pub struct RunPlan {
    pub streams: Vec<Planned>,
    pub serve: Option<String>,
    pub serve_opts: frameflow::serve::ServeOptions,
    pub stats_json: Option<std::path::PathBuf>,
    /// `--cluster` and `--nats-creds`.
    pub cluster: Option<(String, Option<std::path::PathBuf>)>,
}

/// `--serve-auth` and `--serve-max-clients` as server options.
pub fn serve_options(
    auth: Option<&str>,
    max_clients: Option<u64>,
) -> Result<frameflow::serve::ServeOptions, frameflow::serve::ServeError> {
    Ok(frameflow::serve::ServeOptions {
        auth: auth.map(frameflow::serve::BasicAuth::parse).transpose()?,
        max_clients: max_clients.map_or(frameflow::serve::DEFAULT_MAX_CLIENTS, |n| n as usize),
        ..Default::default()
    })
}

pub fn plan_run(args: &RunArgs, matches: &clap::ArgMatches) -> Result<RunPlan, Failure> {
    let process_options = flags::process_options();
    let (stream, args) = (&args.stream, &args.process);
    let Some(path) = &args.config else {
        return Ok(RunPlan {
            streams: vec![Planned {
                cfg: run_config(stream)?,
                filter: stream.filter.chain.clone(),
            }],
            serve: args.web.serve.clone(),
            serve_opts: serve_options(args.web.serve_auth.as_deref(), args.web.serve_max_clients)
                .map_err(usage)?,
            stats_json: args.stats.stats_json.clone(),
            cluster: args
                .cluster
                .cluster
                .clone()
                .map(|c| (c, args.cluster.nats_creds.clone())),
        });
    };
    // With --config, stream options live in the file.
    if let Some(run) = matches.subcommand_matches("run") {
        let cmd = flags::Cli::command();
        let run_cmd = cmd.find_subcommand("run");
        let is_option = |id: &str| {
            run_cmd.is_some_and(|c| c.get_arguments().any(|a| a.get_id().as_str() == id))
        };
        for id in run.ids() {
            let id = id.as_str();
            if is_option(id)
                && run.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
                && !process_options.iter().any(|p| p == id)
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
            filter: args.filter.chain.clone(),
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
    let serve = match (&args.web.serve, &file.serve) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(s)) => {
            let t = text(s)?;
            frameflow::serve::parse_addr(&t)
                .map_err(|e| usage(file.key_error(s, e.to_string())))?;
            Some(t)
        }
        (None, None) => None,
    };
    let stats_json = match (&args.stats.stats_json, &file.stats_json) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(s)) => Some(std::path::PathBuf::from(text(s)?)),
        (None, None) => None,
    };
    let auth = match (&args.web.serve_auth, &file.serve_auth) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(s)) => Some(text(s)?),
        (None, None) => None,
    };
    let max_clients = match (args.web.serve_max_clients, &file.serve_max_clients) {
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
    let cluster = match (&args.cluster.cluster, &file.cluster) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(s)) => Some(text(s)?),
        (None, None) => None,
    };
    let creds = match (&args.cluster.nats_creds, &file.nats_creds) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(s)) => Some(std::path::PathBuf::from(text(s)?)),
        (None, None) => None,
    };
    Ok(RunPlan {
        streams,
        serve,
        serve_opts,
        stats_json,
        cluster: cluster.map(|c| (c, creds)),
    })
}

/// The command-line words a setting stands for, checked against `run`'s options.
fn setting_words(
    file: &frameflow::config::ConfigFile,
    s: &frameflow::config::Setting,
) -> Result<Vec<String>, Failure> {
    use frameflow::config::Value;
    let cmd = flags::StreamArgs::command();
    let process = flags::process_options();
    let is_process = |key: &str| process.iter().any(|p| p == key);
    let long = |name: &str| {
        cmd.get_arguments()
            .find(|a| a.get_long().map(|l| l.replace('-', "_")).as_deref() == Some(name))
            .cloned()
    };
    let arg = long(&s.key).filter(|_| !is_process(&s.key));
    let Some(arg) = arg else {
        let msg = if is_process(&s.key) {
            "belongs at the top of the file, not in a stream".to_string()
        } else {
            let known: Vec<String> = cmd
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(|l| l.replace('-', "_"))
                .filter(|l| !is_process(l) && l != "help")
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
) -> Result<StreamOptions, Failure> {
    let argv = std::iter::once("[[stream]]".to_string())
        .chain(words.iter().flat_map(|(_, w)| w.iter().cloned()));
    match flags::StreamArgs::try_parse_from(argv) {
        Ok(a) => Ok(a.stream),
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
    for (s, w) in words {
        let mut argv = vec!["[[stream]]".to_string()];
        if s.key != "input" {
            argv.push("--input=probe.mp4".into());
        }
        argv.extend(w.iter().cloned());
        let alone = match flags::StreamArgs::try_parse_from(&argv) {
            Ok(a) => run_config(&a.stream).err().map(|f| match f {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches as _;

    /// `frameflow ARGS…` parsed and planned, as `main` does.
    fn plan(args: &[&str]) -> Result<RunPlan, String> {
        let matches = flags::Cli::command()
            .try_get_matches_from(std::iter::once("frameflow").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        let cli = flags::Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        let Some(flags::Command::Run(run)) = cli.command else {
            return Err("not run".into());
        };
        plan_run(&run, &matches).map_err(|f| match f {
            Failure::Usage(e) => format!("usage: {}", error_text(&e)),
            Failure::Runtime(e) => format!("runtime: {}", error_text(&e)),
        })
    }

    fn config(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cams.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.to_string_lossy().into_owned();
        (dir, p)
    }

    #[test]
    fn flags_become_one_streams_settings() {
        let p = plan(&[
            "run",
            "-i",
            "rtsp://127.0.0.1:8554/cam",
            "-f",
            "emboss",
            "--fps",
            "2",
            "--quality",
            "90",
            "--workers",
            "3",
            "--rtsp-transport",
            "udp",
            "--no-reconnect",
        ])
        .unwrap();
        assert_eq!(p.streams.len(), 1);
        let c = &p.streams[0].cfg;
        assert_eq!(p.streams[0].filter, "emboss");
        assert_eq!(c.encode.format, ImageFormat::Jpeg);
        assert_eq!(c.encode.quality, 90);
        assert_eq!(c.workers, 3);
        assert_eq!(c.sampling.fps, Some(2.0));
        assert_eq!(c.open.rtsp_transport, source::RtspTransport::Udp);
        // A live input drops the oldest frame by default; sampling decodes with every core.
        assert_eq!(c.overload, Overload::DropOldest);
        assert_eq!(c.open.decode_share, source::DecodeShare::All);
        assert!(!c.reconnect.enabled);
        assert_eq!(c.label, "cam");
    }

    #[test]
    fn files_block_and_formats_follow_the_template() {
        let p = plan(&["run", "-i", "clip.mp4", "--name", "f{index}.png"]).unwrap();
        let c = &p.streams[0].cfg;
        assert_eq!(c.overload, Overload::Block);
        assert_eq!(c.encode.format, ImageFormat::Png);
        let e = plan(&[
            "run",
            "-i",
            "clip.mp4",
            "--name",
            "f{index}.png",
            "--format",
            "jpg",
        ])
        .err()
        .unwrap();
        assert!(e.starts_with("usage: --format jpg disagrees"), "{e}");
        let e = plan(&["run", "-i", "clip.mp4", "--name", "f{index}.xyz"])
            .err()
            .unwrap();
        assert!(
            e.contains("cannot tell the image format from '.xyz'"),
            "{e}"
        );
    }

    #[test]
    fn usage_errors_name_the_flag() {
        for (args, want) in [
            (
                &["run", "-i", "clip.mp4", "-f", "glorbify"][..],
                "-f 'glorbify'",
            ),
            (
                &["run", "-i", "clip.mp4", "--name", "frame.jpg"][..],
                "every frame would get the same name",
            ),
            (
                &["run", "-i", "clip.mp4", "--raw-dir", "./frames/."][..],
                "--raw-dir",
            ),
        ] {
            let e = plan(args).err().unwrap_or_default();
            assert!(
                e.starts_with("usage: ") && e.contains(want),
                "{args:?}: {e}"
            );
        }
    }

    #[test]
    fn a_config_gives_each_stream_its_settings_over_the_defaults() {
        let (_d, path) = config(
            "serve = \"8080\"\n[defaults]\nfilter = \"emboss\"\nworkers = 2\n\
             [[stream]]\nlabel = \"a\"\ninput = \"a.mp4\"\nout = \"oa\"\n\
             [[stream]]\nlabel = \"b\"\ninput = \"b.mp4\"\nout = \"ob\"\nfilter = \"sharpen\"\n",
        );
        let p = plan(&["run", "--config", &path]).unwrap();
        assert_eq!(p.serve.as_deref(), Some("8080"));
        let got: Vec<(&str, &str, usize)> = p
            .streams
            .iter()
            .map(|s| (s.cfg.label.as_str(), s.filter.as_str(), s.cfg.workers))
            .collect();
        assert_eq!(got, [("a", "emboss", 2), ("b", "sharpen", 2)]);
    }

    #[test]
    fn config_mistakes_are_usage_errors_at_their_key() {
        let cases = [
            // a process-wide option inside a stream
            (
                "[[stream]]\ninput = \"a.mp4\"\nserve = \"8080\"\n",
                "belongs at the top of the file",
            ),
            // an unknown key
            (
                "[[stream]]\ninput = \"a.mp4\"\nfliter = \"emboss\"\n",
                "not a run option",
            ),
            // a switch given a value, a value given a switch
            (
                "[[stream]]\ninput = \"a.mp4\"\nquality = true\n",
                "expected a value",
            ),
            (
                "[[stream]]\ninput = \"a.mp4\"\noverwrite = \"yes\"\n",
                "expected true or false",
            ),
            // a bad value: the key that causes it is named
            (
                "[[stream]]\ninput = \"a.mp4\"\nquality = \"500\"\n",
                "quality",
            ),
            ("[[stream]]\nout = \"o\"\n", "missing key 'input'"),
            // two streams, one label; two streams, one directory however spelled
            (
                "[[stream]]\ninput = \"a.mp4\"\nlabel = \"x\"\nout = \"o1\"\n\
                 [[stream]]\ninput = \"b.mp4\"\nlabel = \"x\"\nout = \"o2\"\n",
                "two streams are labelled 'x'",
            ),
            (
                "[[stream]]\ninput = \"a.mp4\"\nout = \"o\"\n\
                 [[stream]]\ninput = \"b.mp4\"\nout = \"./o/.\"\n",
                "would write into the same directory",
            ),
        ];
        for (text, want) in cases {
            let (_d, path) = config(text);
            let e = plan(&["run", "--config", &path]).err().unwrap_or_default();
            assert!(
                e.starts_with("usage: ") && e.contains(want),
                "{text:?}: {e}"
            );
            assert!(e.contains("cams.toml"), "names the file: {e}");
        }
    }

    #[test]
    fn a_config_names_the_cluster_for_every_stream() {
        let (_d, path) = config(
            "cluster = \"nats://127.0.0.1:4222\"\nnats_creds = \"pool.creds\"\n\
             [[stream]]\ninput = \"a.mp4\"\nout = \"oa\"\n",
        );
        let p = plan(&["run", "--config", &path]).unwrap();
        assert_eq!(
            p.cluster,
            Some((
                "nats://127.0.0.1:4222".to_string(),
                Some(std::path::PathBuf::from("pool.creds"))
            ))
        );
        let (_d, path) = config("[[stream]]\ninput = \"a.mp4\"\ncluster = \"nats://x:1\"\n");
        let e = plan(&["run", "--config", &path]).err().unwrap_or_default();
        assert!(e.contains("belongs at the top of the file"), "{e}");
    }

    #[test]
    fn stream_flags_beside_a_config_are_refused() {
        let (_d, path) = config("[[stream]]\ninput = \"a.mp4\"\n");
        let e = plan(&["run", "--config", &path, "--quality", "50"])
            .err()
            .unwrap();
        assert!(e.contains("--quality belongs in the file"), "{e}");
        // Process-wide options may be given on the command line.
        assert!(plan(&["run", "--config", &path, "--serve", "8081"]).is_ok());
    }

    #[test]
    fn directories_are_compared_as_canonical_paths() {
        let d = tempfile::tempdir().unwrap();
        let o = d.path().join("o");
        std::fs::create_dir(&o).unwrap();
        std::os::unix::fs::symlink(&o, d.path().join("link")).unwrap();
        assert!(same_dir(&o, &d.path().join("o/.")));
        assert!(same_dir(&o, &d.path().join("link")));
        assert!(same_dir(&d.path().join("new/x/.."), &d.path().join("new")));
        assert!(!same_dir(&o, &d.path().join("p")));
    }
}
