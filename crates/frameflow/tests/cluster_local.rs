//! The cluster's owner and workers against a local run, in one process (the in-process
//! pool; tests/cluster.rs of frameflow-cli runs the same through a real nats-server):
//! the same file names and byte-identical files, for clips made by the ffmpeg CLI with
//! closed and open GOPs, with and without sampling, JPEG and PNG.

use frameflow::cluster::LocalPool;
use frameflow::cluster::owner::{OwnerOptions, run_owner};
use frameflow::filters::Chain;
use frameflow::pipeline::{self, Overload, RunConfig, Sampling, Taps};
use frameflow::runtime::Control;
use frameflow::sink::encode::{EncodeOptions, ImageFormat};
use frameflow::sink::naming::Template;
use frameflow::source::{DecodeShare, InputSpec, OpenOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(input: &Path, out: &Path, chain: &str, name: &str, sampling: Sampling) -> RunConfig {
    let template = Template::parse(name).unwrap();
    let format =
        ImageFormat::from_extension(template.literal_extension().unwrap_or("jpg")).unwrap();
    let input = InputSpec::parse(&input.to_string_lossy()).unwrap();
    RunConfig {
        label: input.default_label(),
        open: OpenOptions {
            decode_share: DecodeShare::Files,
            ..OpenOptions::default()
        },
        chain: Chain::parse(chain).unwrap(),
        out_dir: out.to_path_buf(),
        template,
        encode: EncodeOptions {
            format,
            quality: 75,
        },
        workers: 2,
        queue: 2,
        overload: Overload::Block,
        sampling,
        overwrite: false,
        reconnect: Default::default(),
        raw_dir: None,
        keep_last: None,
        input,
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Runs `cfg` locally into `local/` and through a pool of `workers` into `cluster/`,
/// and checks both hold the same files.
fn same_as_local(
    tmp: &Path,
    clip: &Path,
    chain: &str,
    name: &str,
    sampling: Sampling,
    workers: usize,
) {
    let what = format!(
        "{} -f {chain} --name {name} {sampling:?}, {workers} worker(s)",
        clip.display()
    );
    let local = tmp.join(format!("local-{workers}"));
    let cluster = tmp.join(format!("cluster-{workers}"));
    let _ = std::fs::remove_dir_all(&local);
    let _ = std::fs::remove_dir_all(&cluster);
    let control = Control::default();
    let cfg = config(clip, &local, chain, name, sampling.clone());
    let taps = Taps::new(&cfg, false);
    let outcome = pipeline::run(&cfg, &control, &taps).unwrap();
    assert!(outcome.report.frames_written > 0, "{what}");
    let cfg = config(clip, &cluster, chain, name, sampling);
    let taps = Taps::new(&cfg, false);
    let mut pool = LocalPool::new(workers, tmp.to_path_buf());
    let opts = OwnerOptions {
        job: "test".into(),
        max_in_flight: workers * 2,
        scratch: tmp.to_path_buf(),
        stop_grace: Duration::from_secs(5),
    };
    let remote = run_owner(&cfg, &control, &taps, &mut pool, &opts).unwrap();
    let (a, b) = (files(&local), files(&cluster));
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "{what}");
    for (n, bytes) in &a {
        assert!(bytes == &b[n], "{what}: {n} differs");
    }
    assert_eq!(
        remote.report.frames_written, outcome.report.frames_written,
        "{what}"
    );
    assert_eq!(remote.report.frames_failed, 0, "{what}");
}

#[test]
fn the_pool_writes_what_a_local_run_writes() {
    frameflow::source::init_ffmpeg(ffmpeg_next_quiet());
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // H.264 with B-frames, closed GOPs of 12; and open GOPs (leading B-frames).
    let closed = t.join("closed.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-c:v",
        "libx264",
        "-g",
        "12",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        &closed.to_string_lossy(),
    ]);
    let open = t.join("open.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-c:v",
        "libx264",
        "-g",
        "12",
        "-bf",
        "3",
        "-x264-params",
        "open-gop=1",
        "-pix_fmt",
        "yuv420p",
        &open.to_string_lossy(),
    ]);
    let mpeg1 = t.join("test1.mpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-c:v",
        "mpeg1video",
        "-g",
        "15",
        "-bf",
        "2",
        "-f",
        "mpeg",
        &mpeg1.to_string_lossy(),
    ]);
    for clip in [&closed, &open, &mpeg1] {
        for workers in [1, 2, 4] {
            same_as_local(
                t,
                clip,
                "emboss",
                "frame{index:06}.jpg",
                Sampling::default(),
                workers,
            );
        }
        same_as_local(
            t,
            clip,
            "emboss,grayscale",
            "f{pts}.png",
            Sampling::default(),
            2,
        );
        same_as_local(
            t,
            clip,
            "sharpen",
            "s{index}.jpg",
            Sampling {
                fps: Some(3.0),
                start: Some(0.5),
                ..Default::default()
            },
            2,
        );
        same_as_local(
            t,
            clip,
            "blur",
            "e{index}.jpg",
            Sampling {
                every: Some(7),
                duration: Some(2.0),
                ..Default::default()
            },
            2,
        );
        same_as_local(
            t,
            clip,
            "",
            "m{index}.jpg",
            Sampling {
                max_frames: Some(20),
                ..Default::default()
            },
            2,
        );
    }
}

fn ffmpeg_next_quiet() -> i32 {
    -8 // AV_LOG_QUIET
}
