//! Command-line definitions: every flag once, with its help text.

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use frameflow::pipeline::Overload;
use frameflow::source::RtspTransport;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "frameflow",
    disable_version_flag = true,
    arg_required_else_help = true,
    about = "Live video → processed still frames: decode, Pillow-exact filters, atomic image files",
    long_about = "frameflow reads a video stream or file with the FFmpeg libraries, runs every \
selected frame through a chain of image filters whose results are bit-identical to Pillow's, \
and writes each result atomically as an image file.",
    after_help = "Examples:\n  frameflow run -i http://127.0.0.1:8090/test1.mpg -f emboss -o frames\n  \
frameflow run -i clip.mp4 -f emboss,grayscale --format png -o out\n  frameflow probe clip.mp4\n  frameflow filters"
)]
pub struct Cli {
    /// Only errors on stderr: no summary, no warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr (-v: progress info, -vv: debug, also FFmpeg's own log).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print the version and the FFmpeg and libjpeg-turbo libraries it runs on.
    #[arg(short = 'V', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream or file → frames → filters → image files.
    #[command(after_help = "Examples:\n  \
# the 2018 job: a live MPEG-PS stream over HTTP, embossed, as JPEG files\n  \
frameflow run -i http://127.0.0.1:8090/test1.mpg -f emboss -o frames\n  \
# every frame of a file, lossless, numbered after what is already in out/\n  \
frameflow run -i clip.mp4 -f emboss --format png -o out\n  \
# an RTSP camera, 10 s, named by stream time\n  \
frameflow run -i rtsp://127.0.0.1:8554/cam -f sharpen --duration 10 --name '{pts:09}.jpg'\n  \
# live preview, status and Prometheus metrics on http://127.0.0.1:8080/\n  \
frameflow run -i rtsp://127.0.0.1:8554/cam -f emboss --serve 8080\n  \
# several streams from a TOML file ([[stream]] tables), one web page for all\n  \
frameflow run --config cams.toml --serve 8080\n  \
# a synthetic source\n  \
frameflow run -i lavfi:testsrc2=size=1280x720:rate=30 -f emboss --max-frames 100\n  \
# a V4L2 camera\n  \
frameflow run -i v4l2:/dev/video0 -f grayscale -o cam")]
    Run(Box<RunArgs>),
    /// Print the streams of an input: codec, size, frame rate, duration, colour tags.
    #[command(
        after_help = "Examples:\n  frameflow probe clip.mp4\n  frameflow probe --json rtsp://127.0.0.1:8554/cam"
    )]
    Probe(ProbeArgs),
    /// Filter image files once (JPEG, PNG, BMP, PPM, WebP in; L/RGB/RGBA kept).
    #[command(
        after_help = "Examples:\n  frameflow apply -f emboss -o out photos/*.jpg\n  \
frameflow apply -f gaussian_blur=2,grayscale --format png -o out a.png b.webp"
    )]
    Apply(ApplyArgs),
    /// Hot folder: filter every complete image that appears in DIR, exactly once.
    #[command(after_help = "Examples:\n  \
# GStreamer's multifilesink (or ffmpeg -f image2) writes into in/, frameflow embosses\n  \
frameflow watch in -f emboss -o out\n  \
# process what is there now, keep the inputs, exit\n  \
frameflow watch in -f grayscale -o out --once --keep-input\n  \
# move processed inputs instead of deleting them\n  \
frameflow watch in -f sharpen -o out --done in-done --failed in-failed")]
    Watch(WatchArgs),
    /// Join a pool of workers on a NATS JetStream server: take chunks of any
    /// `run --cluster` job, decode, filter and encode them, hand the outputs back.
    #[command(
        after_help = "Examples:\n  frameflow worker --cluster nats://127.0.0.1:4222\n  \
frameflow worker --cluster nats://user:pass@10.0.0.5:4222 --workers 4"
    )]
    Worker(WorkerArgs),
    /// List every filter with its parameters, defaults and the Pillow call it matches.
    #[command(after_help = "Examples:\n  frameflow filters")]
    Filters,
}

/// `run`: the process-wide options, then one stream's.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").args(["input", "config"]).required(true)))]
pub struct RunArgs {
    #[command(flatten)]
    pub process: ProcessArgs,
    #[command(flatten)]
    pub stream: StreamOptions,
}

/// `run` options that belong to the whole process, not to one `[[stream]]` (in a
/// `--config` file they go at its top). [`process_options`] lists them from here.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Run the streams of a TOML file, each with its own input, filter, output and
    /// supervisor, in one process ([[stream]] tables; keys are these options' long names).
    // This doc comment is `--help` text (clap), not Markdown: `[[stream]]` is TOML.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub web: ServeArgs,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `--serve` and its options (`run`, `worker`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve a web page with live previews and stats, /stream.mjpeg, /latest.jpg,
    /// /api/status and /metrics (Prometheus) on ADDR: a port (binds 127.0.0.1) or HOST:PORT.
    /// A `worker` serves /api/status and /metrics with its pool counters.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// Require HTTP basic auth on every --serve endpoint: USER:PASS, or @FILE whose first
    /// line holds it (keeps the password out of `ps`).
    #[arg(long, value_name = "USER:PASS|@FILE")]
    pub serve_auth: Option<String>,
    /// Connections --serve holds at once; more are answered 503. Requests whose headers
    /// take longer than 10 s are closed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub serve_max_clients: Option<u64>,
}

/// The NATS JetStream server of a worker pool (`run --cluster`, `worker`).
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Spread decoding, filtering and encoding over the `frameflow worker`s of the NATS
    /// JetStream server at URL: nats://HOST:PORT, nats://USER:PASS@HOST:PORT or
    /// nats://TOKEN@HOST:PORT. `run` then only reads the input and writes the outputs,
    /// exactly as it would locally.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// A NATS credentials file (JWT and NKey seed) for --cluster.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub nats_creds: Option<PathBuf>,
}

/// `worker`: join a pool.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub web: ServeArgs,
    #[command(flatten)]
    pub threads: WorkersArg,
}

/// One stream's options: `run`'s command line without `--config`, or one `[[stream]]`.
#[derive(Debug, Args)]
pub struct StreamOptions {
    /// Input: a path, http(s)://, rtsp://, rtmp://, srt://, udp://, tcp://, an HLS playlist,
    /// lavfi:<graph>, v4l2:<device>, or - for stdin.
    // This doc comment is `--help` text (clap), not HTML: `<graph>` is a placeholder.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(short, long, value_name = "SRC")]
    pub input: Option<String>,
    #[command(flatten)]
    pub filter: FilterArg,
    /// Output directory (created if missing).
    #[arg(short, long = "out", value_name = "DIR", default_value = "./frames")]
    pub out: PathBuf,
    /// Output name template: {index} {index:06} {pts} {time} {stream} {stem} {ext}
    /// (ffmpeg's %d / %06d = {index}, %% = %).
    ///
    /// Each frame needs a name of its own: the template must have {index}, {pts} or
    /// {time} unless --max-frames 1. Without {index}, a name already in -o (or, with
    /// --overwrite, the previous frame's) gets -1, -2, … before its extension, the
    /// first free one: two frames in one millisecond of {time} are
    /// 20261124T101530.123Z.jpg and 20261124T101530.123Z-1.jpg. A name that would leave
    /// -o (e.g. '..{stream}' with an empty --label) is refused at start.
    #[arg(long, value_name = "TEMPLATE", default_value = "frame{index:06}.{ext}")]
    pub name: String,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// One frame per 1/R s of stream time.
    #[arg(long, value_name = "R", value_parser = positive_f64)]
    pub fps: Option<f64>,
    /// Every Nth decoded frame.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub every: Option<u64>,
    /// Skip non-key packets before decoding.
    #[arg(long)]
    pub keyframes_only: bool,
    /// Skip the first S seconds of stream time.
    #[arg(long, value_name = "S", value_parser = non_negative_f64)]
    pub start: Option<f64>,
    /// Stop after S seconds of stream time.
    #[arg(long, value_name = "S", value_parser = positive_f64)]
    pub duration: Option<f64>,
    /// Stop after writing N frames.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Frames in flight between the decoder and the workers.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub queue: u64,
    /// When the workers fall behind: block, drop-oldest or drop-newest
    /// (default: block for files, drop-oldest for live inputs). Every drop is counted.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub overload: Option<OverloadArg>,
    /// Reopen a network input after it ends, fails or stalls (the default), with backoff
    /// 0.5 s doubling to 30 s.
    #[arg(long, overrides_with = "no_reconnect")]
    pub reconnect: bool,
    /// Do not reopen a network input: end the run when it ends or fails.
    #[arg(long, overrides_with = "reconnect")]
    pub no_reconnect: bool,
    /// Give up after N consecutive failed reconnect attempts (default: never).
    #[arg(long, value_name = "N")]
    pub reconnect_max: Option<u32>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
    /// Label of the stream, for {stream} and the stats (default: from the input name).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Also keep the unfiltered frames in DIR (same names and format, written atomically).
    #[arg(long, value_name = "DIR")]
    pub raw_dir: Option<PathBuf>,
    #[command(flatten)]
    pub limits: PixelLimit,
    /// Keep only the newest N outputs of this template in the directory, earlier runs'
    /// included, deleting older ones as new ones are written (a ring, like multifilesink's
    /// max-files; --raw-dir frames go with them).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keep_last: Option<u64>,
}

/// `-f`: the filter chain (`run`, `apply`, `watch`).
#[derive(Debug, Args)]
pub struct FilterArg {
    /// Filter chain, e.g. emboss or emboss,grayscale (see `frameflow filters`). Empty: no
    /// filter (for image files, a format conversion).
    #[arg(short = 'f', long = "filter", value_name = "CHAIN", default_value = "")]
    pub chain: String,
}

/// How outputs are encoded and how many threads do it (`run`, `apply`, `watch`).
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Image format: jpg, png, webp, bmp, ppm (default: the template's extension, else
    /// jpg for `run` and the input's own format for `apply` and `watch`).
    #[arg(long, value_name = "FMT")]
    pub format: Option<String>,
    /// JPEG/WebP quality, 1..100 (JPEG: 4:2:0, as Pillow saves).
    #[arg(long, value_name = "Q", default_value_t = 75, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    #[command(flatten)]
    pub threads: WorkersArg,
}

/// `--workers` (`run`, `apply`, `watch`, `worker`).
#[derive(Debug, Args)]
pub struct WorkersArg {
    /// Worker threads (decode + filter + encode + write). Default: number of cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: Option<u64>,
}

/// Reaching a network input (`run`, `probe`).
#[derive(Debug, Args)]
pub struct NetArgs {
    /// No data for S seconds = stalled (network inputs; also bounds connecting, and how
    /// long `probe` waits).
    #[arg(long, value_name = "S", default_value = "10", value_parser = seconds)]
    pub timeout: Duration,
    /// RTSP transport.
    #[arg(long, value_enum, default_value = "tcp")]
    pub rtsp_transport: RtspTransportArg,
}

/// `--overwrite` (`run`, `apply`, `watch`).
#[derive(Debug, Args)]
pub struct OverwriteArg {
    /// Replace existing outputs of the same name. `run` then numbers from 0 (default:
    /// continue after the highest index); `apply` refuses to replace by default, `watch`
    /// adds -1, -2, … to the name.
    #[arg(long)]
    pub overwrite: bool,
}

/// `--stats-json` (`run`, `watch`).
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Write the run's statistics as JSON to PATH (updated every 2 s and at the end).
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
}

/// `--max-pixels` (`run`, `apply`, `watch`).
#[derive(Debug, Args)]
pub struct PixelLimit {
    /// Refuse frames or images of more than N pixels (width × height), from the header,
    /// before any buffer of that size exists. Default: Pillow's decompression-bomb limit.
    #[arg(long, value_name = "N", default_value_t = frameflow::source::DEFAULT_MAX_PIXELS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pixels: u64,
}

/// A library policy enum as a clap value: its choices, names and help come from the
/// library's own `ALL` / `name()` / `about()`, so they are written once.
macro_rules! value_enum {
    ($(#[$doc:meta])* $wrapper:ident($ty:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $wrapper(pub $ty);

        impl clap::ValueEnum for $wrapper {
            fn value_variants<'a>() -> &'a [Self] {
                static ALL: std::sync::LazyLock<Vec<$wrapper>> =
                    std::sync::LazyLock::new(|| <$ty>::ALL.iter().map(|&v| $wrapper(v)).collect());
                &ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let v = clap::builder::PossibleValue::new(self.0.name());
                Some(match self.0.about() {
                    "" => v,
                    about => v.help(about),
                })
            }
        }
    };
}

value_enum!(
    /// `--overload`.
    OverloadArg(Overload)
);
value_enum!(
    /// `--rtsp-transport`.
    RtspTransportArg(RtspTransport)
);

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Input, as for `run -i`.
    #[arg(value_name = "SRC")]
    pub input: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a number > 0, got '{s}'")),
    }
}

/// The longest time a duration option accepts (about 31 years).
const MAX_SECONDS: f64 = 1e9;

/// A number of seconds > 0 and at most [`MAX_SECONDS`].
fn seconds(s: &str) -> Result<Duration, String> {
    let v = positive_f64(s)?;
    if v > MAX_SECONDS {
        return Err(format!("'{s}' s is too long (at most {MAX_SECONDS:e} s)"));
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("'{s}': {e}"))
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a number >= 0, got '{s}'")),
    }
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output directory (created if missing).
    #[arg(short, long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Output name template: {stem} {ext} {index} {time} (%d / %06d = {index}); with
    /// several files it needs {stem} or {index}.
    #[arg(long, value_name = "TEMPLATE", default_value = "{stem}.{ext}")]
    pub name: String,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
    /// Image files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The directory to watch (the hot folder).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output directory (created if missing; must not be DIR itself).
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Output name template: {stem} {ext} and text (one fixed name per input).
    #[arg(long, value_name = "TEMPLATE", default_value = "{stem}.{ext}")]
    pub name: String,
    /// Where unusable inputs go (default: DIR/failed).
    #[arg(long, value_name = "DIR")]
    pub failed: Option<PathBuf>,
    /// Move processed inputs here instead of deleting them.
    #[arg(long, value_name = "DIR", conflicts_with = "keep_input")]
    pub done: Option<PathBuf>,
    /// Leave processed inputs in DIR (a restart recognises them by their outputs).
    #[arg(long)]
    pub keep_input: bool,
    /// Process what is in DIR now, then exit (exit code 1 if any file failed).
    #[arg(long)]
    pub once: bool,
    /// Also watch subdirectories (outputs keep the subdirectory).
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub overwrite: OverwriteArg,
}

/// The filter and encoder options `apply` and `watch` share.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub filter: FilterArg,
    #[command(flatten)]
    pub encode: EncodeArgs,
    #[command(flatten)]
    pub limits: PixelLimit,
    /// Refuse input files larger than SIZE (bytes, or with k, M, G: 500M) before reading
    /// them. Only regular files are read (a symlink only if it leads to one).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = size_bytes)]
    pub max_file_size: u64,
}

/// A size in bytes: `1048576`, `64k`, `500M`, `1G` (powers of 1024; `KiB`-style and
/// `B` suffixes too).
fn size_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a size such as 500M or 1G, got '{s}'"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("unknown size unit in '{s}' (use k, M, G or T)")),
    };
    let v = n * mult as f64;
    if !(v.is_finite() && v >= 1.0 && v <= u64::MAX as f64) {
        return Err(format!("'{s}' is not a usable size"));
    }
    Ok(v as u64)
}

/// One `[[stream]]` of a `--config` file, parsed by `run`'s own option definitions.
#[derive(Debug, Parser)]
#[command(name = "[[stream]]")]
pub struct StreamArgs {
    #[command(flatten)]
    pub stream: StreamOptions,
}

/// How the command line spells each library [`Setting`](frameflow::Setting): the flag
/// whose id is the setting's key, found in the definitions (`-o/--out` when it has a
/// short form, else `--max-file-size`).
pub fn setting_spelling() -> Vec<(frameflow::Setting, String)> {
    let cli = Cli::command();
    let args: Vec<clap::Arg> = cli
        .get_subcommands()
        .flat_map(|c| c.get_arguments().cloned().collect::<Vec<_>>())
        .collect();
    frameflow::Setting::ALL
        .iter()
        .filter_map(|&s| {
            let arg = args.iter().find(|a| a.get_id().as_str() == s.key())?;
            let long = arg.get_long()?;
            Some((
                s,
                match arg.get_short() {
                    Some(c) => format!("-{c}/--{long}"),
                    None => format!("--{long}"),
                },
            ))
        })
        .collect()
}

/// The ids (long names with `_`) of `run`'s process-wide options, from [`ProcessArgs`].
pub fn process_options() -> Vec<String> {
    use clap::Args as _;
    ProcessArgs::augment_args(clap::Command::new("process"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_stream_is_parsed_by_the_same_definitions() {
        StreamArgs::command().debug_assert();
    }

    #[test]
    fn process_options_come_from_their_definitions() {
        assert_eq!(
            process_options(),
            [
                "config",
                "serve",
                "serve_auth",
                "serve_max_clients",
                "stats_json",
                "cluster",
                "nats_creds"
            ]
        );
        // And none of them is a stream option.
        let stream = StreamArgs::command();
        for id in process_options() {
            assert!(
                stream.get_arguments().all(|a| a.get_id() != id.as_str()),
                "{id}"
            );
        }
    }

    #[test]
    fn library_choices_are_the_flag_values() {
        let cli = Cli::try_parse_from([
            "frameflow",
            "run",
            "-i",
            "x.mp4",
            "--overload",
            "drop-newest",
            "--rtsp-transport",
            "udp",
        ])
        .unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.stream.overload, Some(OverloadArg(Overload::DropNewest)));
        assert_eq!(
            run.stream.net.rtsp_transport,
            RtspTransportArg(RtspTransport::Udp)
        );
        assert!(
            Cli::try_parse_from(["frameflow", "run", "-i", "x", "--overload", "drop"]).is_err()
        );
    }

    #[test]
    fn run_needs_an_input_or_a_config_but_not_both() {
        assert!(Cli::try_parse_from(["frameflow", "run"]).is_err());
        assert!(
            Cli::try_parse_from(["frameflow", "run", "-i", "a", "--config", "c.toml"]).is_err()
        );
        assert!(Cli::try_parse_from(["frameflow", "run", "--config", "c.toml"]).is_ok());
    }

    #[test]
    fn every_library_setting_is_a_flag() {
        let spelled = setting_spelling();
        for s in frameflow::Setting::ALL {
            assert!(spelled.iter().any(|(k, _)| k == s), "{s:?} has no flag");
        }
        let get = |s| {
            spelled
                .iter()
                .find(|(k, _)| *k == s)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get(frameflow::Setting::MaxFileSize),
            Some("--max-file-size")
        );
        assert_eq!(get(frameflow::Setting::Out), Some("-o/--out"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("1G"), Ok(1 << 30));
        assert_eq!(size_bytes("500M"), Ok(500 << 20));
        assert_eq!(size_bytes("64k"), Ok(64 << 10));
        assert_eq!(size_bytes("1.5KiB"), Ok(1536));
        assert_eq!(size_bytes("123"), Ok(123));
        assert!(size_bytes("0").is_err());
        assert!(size_bytes("12Q").is_err());
        assert!(size_bytes("-1").is_err());
    }

    #[test]
    fn seconds_refuse_what_a_duration_cannot_hold() {
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert!(seconds("1e30").is_err());
        assert!(seconds("0").is_err());
        assert!(seconds("nan").is_err());
        assert!(seconds("inf").is_err());
    }
}
