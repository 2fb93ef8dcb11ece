#!/usr/bin/env python3
"""End-to-end speed of `frameflow run` against its peers (issue 7).

Usage: python3 bench/pipeline.py [--runs N] [--sizes 1080p,720p] [--readme] [...]

Makes its own test clips with the ffmpeg CLI: a slow pan and zoom over a photograph that a
Debian package ships (mate-backgrounds' nature/TwoWings.jpg, a dandelion seed head in front
of blurred flowers), with mild temporal noise, encoded with libx264 (yuv420p, BT.709
limited range, crf 23, 2 s GOP), 600 frames at 30 fps, 1080p and 720p. The clips are
cached (`--cache-dir`, default ~/.cache/frameflow-bench).

Then, on the same clip, in one run, each tool decodes every frame, applies Pillow's EMBOSS
and writes JPEG files at quality 75:
  - frameflow: `frameflow run -i CLIP -f emboss -o OUT --format jpg --quality 75 -q`
    (default settings: the defaults are meant to be the fast ones);
  - the ffmpeg CLI: `convolution` with EMBOSS's kernel on the RGB planes
    (FACTS: EMBOSS = clamp(128.5 + p(x,y) - p(x-1,y+1)), i.e. matrix 0 0 0 / 0 1 0 / -1 0 0,
    rdiv 1, bias 128; the filter adds 0.5 and truncates), mjpeg with -q:v 3, whose luma
    quantiser table is libjpeg's quality-75 table (8 6 6 7 6 5|7 8 7|8 ... in zigzag order),
    written by the image2 muxer;
  - an OpenCV script (opencv-python-headless; pip-installed if missing): VideoCapture →
    filter2D with the same kernel and delta 128 (BGR in and out: EMBOSS is per channel,
    so no cvtColor is needed) → imwrite with IMWRITE_JPEG_QUALITY 75.
Checked once by hand: on the same RGB input, both peers' interior pixels are identical to
Pillow's EMBOSS (only the 1-pixel border differs: Pillow copies it). Their RGB differs
slightly from frameflow's, which honours the BT.709 tag as `ffmpeg -pix_fmt rgb24` does.
It checks that all wrote 600 files, and prints frames/s, CPU seconds (user+sys of the
child) and peak RSS (ru_maxrss of the child, from os.wait4), the medians over --runs runs
(tools interleaved), and frameflow's ratio to each peer and to the fastest one.

It also times the sampling modes against their ffmpeg equivalents on the 1080p clip
(`--keyframes-only` vs `-skip_frame nokey ... -vsync 0`, `--fps 1` vs `-vf fps=1,...`),
and the frame latency at live 1080p30: the clip is served in real time by
`ffmpeg -re -i CLIP -c copy -f mpegts -listen 1 http://127.0.0.1:PORT/live.ts`, frameflow
reads it with `--no-reconnect --stats-json`, and `streams[0].latency_ms.p99` is reported.

Targets (issue 7): 1080p >= 1.6x the fastest peer, 720p >= 1.8x, peak RSS at 1080p
<= 150 MiB, live 1080p30 latency p99 <= 30 ms.

The machine may be shared: compare the ratios of one run, not absolute numbers across
runs. `--readme` also writes the markdown table to bench/RESULTS.md and into README.md
(between its `bench/pipeline.py results` markers).
"""

import argparse
import datetime
import hashlib
import itertools
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "frameflow"
FRAMES = 600
RATE = 30
SIZES = {"1080p": (1920, 1080), "720p": (1280, 720)}
TARGETS = {"1080p": 1.6, "720p": 1.8}
RSS_TARGET_MIB = 150
LATENCY_TARGET_MS = 30.0

# The photograph: shipped by Debian's mate-backgrounds (no dependencies, ~46 MB).
PHOTO_PACKAGE = "mate-backgrounds"
PHOTOS = [
    "/usr/share/backgrounds/mate/nature/TwoWings.jpg",
    "/usr/share/backgrounds/mate/nature/LadyBird.jpg",
    "/usr/share/backgrounds/mate/nature/Garden.jpg",
]

EMBOSS_MATRIX = "0 0 0 0 1 0 -1 0 0"
# ffmpeg's mjpeg at -q:v 3 writes libjpeg's quality-75 luma table (measured: DQT
# 8 6 6 7 6 7 8 8 vs libjpeg q75 8 6 6 7 6 5 8 7); -q:v 2 is quality ~85.
FFMPEG_QSCALE = 3
JPEG_QUALITY = 75

OPENCV_SCRIPT = r"""
import os, sys
import cv2
import numpy as np
clip, out, quality = sys.argv[1], sys.argv[2], int(sys.argv[3])
# EMBOSS: dst = 128 + p(x,y) - p(x-1,y+1) (filter2D correlates: row 2 = y+1, col 0 = x-1).
kernel = np.array([[0, 0, 0], [0, 1, 0], [-1, 0, 0]], dtype=np.float32)
params = [cv2.IMWRITE_JPEG_QUALITY, quality]
cap = cv2.VideoCapture(clip)
if not cap.isOpened():
    sys.exit(f"OpenCV cannot open {clip}")
n = 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    emb = cv2.filter2D(frame, -1, kernel, delta=128, borderType=cv2.BORDER_REPLICATE)
    if not cv2.imwrite(os.path.join(out, "%06d.jpg" % n), emb, params):
        sys.exit("imwrite failed")
    n += 1
"""


def log(msg):
    print(f"pipeline.py: {msg}", file=sys.stderr, flush=True)


# ---- environment ---------------------------------------------------------------------


def pip_install(*pkgs):
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    stdlib = sysconfig.get_path("stdlib")
    if stdlib and os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED")):
        args.append("--break-system-packages")
    log(" ".join(args + list(pkgs)))
    subprocess.run(args + list(pkgs), check=True)


def ensure_opencv():
    """OpenCV's version, pip-installing opencv-python-headless if needed; None if it
    cannot be had (the OpenCV peer is then left out, and the report says so)."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        try:
            pip_install("opencv-python-headless")
        except subprocess.CalledProcessError as e:
            log(f"cannot install opencv-python-headless ({e}): the OpenCV peer is left out")
            return None
    out = subprocess.run([sys.executable, "-c", "import cv2; print(cv2.__version__)"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def find_photo(allow_install):
    for p in PHOTOS:
        if os.path.isfile(p):
            return p
    if allow_install and shutil.which("apt-get") and os.geteuid() == 0:
        log(f"no photograph found: apt-get install {PHOTO_PACKAGE}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "install", "-y", "-q", "--no-install-recommends", PHOTO_PACKAGE],
                    ["sh", "-c", f"apt-get update -q && apt-get install -y -q --no-install-recommends {PHOTO_PACKAGE}"]):
            if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode == 0:
                break
        for p in PHOTOS:
            if os.path.isfile(p):
                return p
    return None


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "arch": platform.machine(),
        "cpu": model,
        "cores": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def cores_available(seconds=1.0):
    """How many cores this process tree can get right now: one spinning child per core for
    `seconds`; the CPU time they got, divided by the wall time. On a shared machine this is
    below the core count, and multi-threaded tools lose most of their edge."""
    spin = f"import time\nt = time.time()\nwhile time.time() - t < {seconds}: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)]
    t0 = time.perf_counter()
    cpu = 0.0
    for p in procs:
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += ru.ru_utime + ru.ru_stime
    return cpu / max(time.perf_counter() - t0, seconds)


# ---- clips -----------------------------------------------------------------------------


def clip_command(photo, size, out):
    w, h = SIZES[size]
    last = FRAMES - 1
    if photo:
        # Upscale so a zoom of 1.35x still has source detail, then pan left to right
        # while zooming in, with a slow vertical sway.
        src = ["-i", photo]
        vf = (
            "[0:v]scale=3840:2400,setsar=1,"
            f"zoompan=z='1.0+0.35*on/{last}':x='(iw-iw/zoom)*(0.2+0.6*on/{last})':"
            f"y='(ih-ih/zoom)*(0.5+0.2*sin(on/90))':d={FRAMES}:s={w}x{h}:fps={RATE},"
        )
    else:
        # Stated fallback: no photograph available. A zoom into the Mandelbrot set
        # (smooth gradients and fine detail), not a test pattern.
        src = ["-f", "lavfi", "-i", f"mandelbrot=size={w}x{h}:rate={RATE}"]
        vf = "[0:v]"
    vf += "noise=alls=4:allf=t,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
    return (["ffmpeg", "-nostdin", "-v", "error", "-y"] + src +
            ["-filter_complex", vf, "-frames:v", str(FRAMES), "-c:v", "libx264", "-preset", "medium",
             "-crf", "23", "-g", str(2 * RATE), "-colorspace", "bt709", "-color_primaries", "bt709",
             "-color_trc", "bt709", "-color_range", "tv", out])


def make_clip(cache, photo, size):
    probe_cmd = clip_command(photo, size, "OUT")
    key = hashlib.sha256(json.dumps(probe_cmd).encode()).hexdigest()[:12]
    path = cache / f"clip-{size}-{key}.mp4"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".tmp-{os.getpid()}-{path.name}"
    log(f"making the {size} clip ({FRAMES} frames, libx264; cached in {cache}) ...")
    t0 = time.perf_counter()
    subprocess.run(clip_command(photo, size, str(tmp)), check=True)
    os.replace(tmp, path)
    log(f"  {path.name}: {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.0f} s")
    return path


# ---- timing ----------------------------------------------------------------------------


class Result:
    def __init__(self, wall, cpu, rss_kib, count, code, err):
        self.wall, self.cpu, self.rss_kib, self.count, self.code, self.err = wall, cpu, rss_kib, count, code, err

    @property
    def rss_mib(self):
        return self.rss_kib / 1024


_RUNS = itertools.count()


def fresh_dir(work):
    """A new, empty output directory for one timed run. Outputs are kept until the whole
    benchmark ends: deleting them between runs would make the next tool pay for it, since
    ext4 without a journal (as here) skips every inode freed in the last minute when it
    allocates one, which grows with the benchmark's own deletions."""
    d = work / f"out-{next(_RUNS):03d}"
    d.mkdir(parents=True)
    return d


def run_timed(cmd, out_dir, timeout=600, env=None):
    """Runs `cmd` (which writes JPEGs into the empty out_dir) and measures it with wait4."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        msg = err.read().decode(errors="replace").strip()
    count = sum(1 for n in os.listdir(out_dir) if n.endswith(".jpg"))
    return Result(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, count, p.returncode, msg)


def ffmpeg_emboss_vf():
    m = EMBOSS_MATRIX
    conv = ":".join([f"{i}m='{m}'" for i in range(3)] + [f"{i}rdiv=1:{i}bias=128" for i in range(3)])
    # EMBOSS runs on the RGB planes, as Pillow does; mjpeg takes full-range 4:2:0.
    return f"format=gbrp,convolution={conv},format=yuvj420p"


def tools(clip, out, opencv_script, ff_extra):
    jpg = str(out / "%06d.jpg")
    return {
        "frameflow": [str(BINARY), "run", "-i", str(clip), "-f", "emboss", "-o", str(out),
                      "--format", "jpg", "--quality", str(JPEG_QUALITY), "-q"] + ff_extra,
        "ffmpeg": ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip), "-vf", ffmpeg_emboss_vf(),
                   "-q:v", str(FFMPEG_QSCALE), "-f", "image2", jpg],
        "opencv": [sys.executable, str(opencv_script), str(clip), str(out), str(JPEG_QUALITY)],
    }


def median_result(rs):
    return Result(
        statistics.median(r.wall for r in rs),
        statistics.median(r.cpu for r in rs),
        max(r.rss_kib for r in rs),
        min(r.count for r in rs),
        max((r.code for r in rs), key=abs),
        "; ".join(r.err for r in rs if r.err),
    )


def bench_size(size, clip, work, opencv_script, runs, ff_extra, which):
    results = {}
    for i in range(runs):
        for name in tools(clip, work, opencv_script, ff_extra):
            if name not in which:
                continue
            out = fresh_dir(work)
            r = run_timed(tools(clip, out, opencv_script, ff_extra)[name], out)
            log(f"{size} run {i + 1}/{runs} {name:<9} {FRAMES / r.wall:7.1f} fps  {r.cpu:6.2f} CPU s  "
                f"{r.rss_mib:6.1f} MiB  {r.count} files" + (f"  exit {r.code}: {r.err[:200]}" if r.code else ""))
            results.setdefault(name, []).append(r)
    return {k: median_result(v) for k, v in results.items()}


def bench_sampling(clip, work, runs, ff_extra):
    vf = ffmpeg_emboss_vf()

    def modes(out):
        jpg = str(out / "%06d.jpg")
        base_ff = [str(BINARY), "run", "-i", str(clip), "-f", "emboss", "-o", str(out), "--format", "jpg",
                   "--quality", str(JPEG_QUALITY), "-q"] + ff_extra
        return {
            "keyframes": (
                base_ff + ["--keyframes-only"],
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-skip_frame", "nokey", "-i", str(clip), "-vf", vf,
                 "-vsync", "0", "-q:v", str(FFMPEG_QSCALE), "-f", "image2", jpg],
            ),
            "fps=1": (
                base_ff + ["--fps", "1"],
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip), "-vf", f"fps=1,{vf}",
                 "-q:v", str(FFMPEG_QSCALE), "-f", "image2", jpg],
            ),
        }
    res = {}
    for mode in modes(work):
        a, b = [], []
        for i in range(runs):
            out = fresh_dir(work)
            a.append(run_timed(modes(out)[mode][0], out))
            out = fresh_dir(work)
            b.append(run_timed(modes(out)[mode][1], out))
            log(f"sampling {mode} run {i + 1}/{runs}: frameflow {a[-1].wall:.2f} s ({a[-1].count} files), "
                f"ffmpeg {b[-1].wall:.2f} s ({b[-1].count} files)")
        res[mode] = (median_result(a), median_result(b))
    return res


def listening(port):
    """Whether something listens on 127.0.0.1:port (read from /proc: a test connection
    would use up the server's only client)."""
    want = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].rsplit(":", 1)[1] == want and parts[3] == "0A":
                        return True
        except (OSError, StopIteration):
            continue
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_live(clip, work, ff_extra):
    port = free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    server = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-re", "-i", str(clip), "-c", "copy", "-f", "mpegts",
         "-listen", "1", url], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not listening(port):
            if server.poll() is not None or time.monotonic() - t0 > 10:
                return None, "the ffmpeg server did not start"
            time.sleep(0.02)
        stats_path = work / "live-stats.json"
        live_out = fresh_dir(work)
        cmd = [str(BINARY), "run", "-i", url, "-f", "emboss", "-o", str(live_out), "--format", "jpg",
               "--quality", str(JPEG_QUALITY), "-q", "--no-reconnect", "--stats-json", str(stats_path)] + ff_extra
        r = run_timed(cmd, live_out, timeout=FRAMES / RATE + 60)
        try:
            report = json.loads(stats_path.read_text())
        except (OSError, ValueError) as e:
            return None, f"no stats JSON ({e}); frameflow exit {r.code}: {r.err[:300]}"
        return (r, report["streams"][0]), None
    finally:
        server.kill()
        server.wait()


# ---- report ----------------------------------------------------------------------------


def fmt_ratio(x):
    return f"{x:.2f}×"


def report(m, photo, cv_version, runs, sizes, sampling, live, ff_extra, avail):
    lines = []
    src = (f"pan and zoom over `{photo}` (Debian package {PHOTO_PACKAGE})" if photo
           else "FALLBACK (no photograph found): a zoom into lavfi's mandelbrot source")
    ffv = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    lines.append(f"### Results: {m['date']}, {m['arch']}, {m['cpu']}, {m['cores']} cores")
    lines.append("")
    lines.append(f"Clips: {src}, temporal noise (alls=4), libx264 crf 23 yuv420p BT.709, GOP 60, "
                 f"{FRAMES} frames at {RATE} fps. Job: decode → EMBOSS → JPEG quality 75, one file per frame. "
                 f"Medians of {runs} run(s), tools interleaved; peak RSS is the largest of the runs. "
                 f"{ffv.split(' Copyright')[0]}; OpenCV {cv_version}."
                 + (f" frameflow extra options: `{' '.join(ff_extra)}`." if ff_extra else "")
                 + f" Cores available to the benchmark (spin test): {avail[0]:.2f} before, {avail[1]:.2f} after"
                 f" (load average {avail[2]} → {avail[3]}).")
    lines.append("")
    lines.append("| clip | system | frames/s | CPU s | peak RSS MiB | files | frameflow ÷ system, "
                 "wall | frameflow ÷ system, CPU |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for size, res in sizes.items():
        ff = res.get("frameflow")
        for name, r in res.items():
            peer = ff and name != "frameflow"
            ratio = fmt_ratio(r.wall / ff.wall) if peer else ""
            cratio = fmt_ratio(r.cpu / ff.cpu) if peer else ""
            lines.append(f"| {size} | {name} | {FRAMES / r.wall:.1f} | {r.cpu:.2f} | {r.rss_mib:.0f} | "
                         f"{r.count} | {ratio} | {cratio} |")
        peers = {k: v for k, v in res.items() if k != "frameflow"}
        if ff and peers:
            best = min(peers, key=lambda k: peers[k].wall)
            x = peers[best].wall / ff.wall
            t = TARGETS.get(size)
            ok = "met" if t and x >= t else "MISSED"
            verdicts.append(f"- {size}: frameflow is **{fmt_ratio(x)}** as fast as the fastest peer ({best})"
                            + (f"; target ≥ {t}×: {ok}" if t else "")
                            + f"; by CPU time, {fmt_ratio(peers[best].cpu / ff.cpu)}")
        if ff and size == "1080p":
            ok = "met" if ff.rss_mib <= RSS_TARGET_MIB else "MISSED"
            verdicts.append(f"- 1080p peak RSS: **{ff.rss_mib:.0f} MiB**; target ≤ {RSS_TARGET_MIB} MiB: {ok}")
    bad = [f"{size} {name}: {r.count} files" for size, res in sizes.items() for name, r in res.items()
           if r.count != FRAMES]
    if bad:
        verdicts.append("- **frame counts differ from 600**: " + ", ".join(bad))
    if sampling:
        lines.append("")
        lines.append("Sampling modes (1080p clip; frames/s = clip frames / wall time):")
        lines.append("")
        lines.append("| mode | frameflow | ffmpeg | frameflow files | ffmpeg files | frameflow ÷ ffmpeg |")
        lines.append("|---|---|---|---:|---:|---:|")
        for mode, (a, b) in sampling.items():
            names = {"keyframes": "`--keyframes-only` vs `-skip_frame nokey … -vsync 0`",
                     "fps=1": "`--fps 1` vs `-vf fps=1,…`"}
            lines.append(f"| {names[mode]} | {FRAMES / a.wall:.0f} fps, {a.cpu:.2f} CPU s, {a.rss_mib:.0f} MiB | "
                         f"{FRAMES / b.wall:.0f} fps, {b.cpu:.2f} CPU s, {b.rss_mib:.0f} MiB | {a.count} | {b.count} | "
                         f"{fmt_ratio(b.wall / a.wall)} |")
    if live is not None:
        lines.append("")
        data, err = live
        if err:
            lines.append(f"Live 1080p30 over HTTP (MPEG-TS): failed: {err}")
            verdicts.append("- live latency: not measured")
        else:
            r, st = data
            lat = st.get("latency_ms", {})
            p99 = lat.get("p99")
            dropped = st.get("dropped", {})
            lines.append(f"Live 1080p30 over HTTP (MPEG-TS, `ffmpeg -re … -listen 1`): {st.get('frames_written')} frames "
                         f"written, dropped {json.dumps(dropped)}, latency (decoded → renamed) "
                         f"p50 {lat.get('p50')} ms, p99 {p99} ms, max {lat.get('max')} ms; "
                         f"{r.cpu:.2f} CPU s, peak RSS {r.rss_mib:.0f} MiB.")
            ok = "met" if p99 is not None and p99 <= LATENCY_TARGET_MS else "MISSED"
            verdicts.append(f"- live 1080p30 latency p99: **{p99} ms**; target ≤ {LATENCY_TARGET_MS:.0f} ms: {ok}")
    lines.append("")
    lines.append("Targets:")
    lines.append("")
    lines.extend(verdicts)
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per tool and size (medians reported)")
    ap.add_argument("--sizes", default="1080p,720p", help="comma-separated: 1080p,720p")
    ap.add_argument("--tools", default="frameflow,ffmpeg,opencv")
    ap.add_argument("--no-sampling", action="store_true", help="skip the sampling-mode comparison")
    ap.add_argument("--no-live", action="store_true", help="skip the live latency measurement")
    ap.add_argument("--no-build", action="store_true", help="use target/release/frameflow as it is")
    ap.add_argument("--frameflow-args", default="", help="extra options for frameflow (for experiments)")
    ap.add_argument("--cache-dir", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "frameflow-bench"))
    ap.add_argument("--work-dir", default=None, help="where outputs are written (default: a temp dir)")
    ap.add_argument("--readme", action="store_true", help="also write the table to bench/RESULTS.md and README.md")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"unknown size {s} (expected {', '.join(SIZES)})")
    which = {t.strip() for t in args.tools.split(",")}
    ff_extra = shlex.split(args.frameflow_args)

    if not args.no_build:
        log("cargo build --release -p frameflow")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "frameflow"], cwd=ROOT, check=True)
    if not BINARY.exists():
        sys.exit(f"{BINARY} is missing: build it first")
    cv_version = ensure_opencv() if "opencv" in which else "not run"
    if cv_version is None:
        which.discard("opencv")
        cv_version = "not available (not run)"
    photo = find_photo(allow_install=True)
    if not photo:
        log("WARNING: no photograph found (apt-get install mate-backgrounds): "
            "falling back to lavfi's mandelbrot source")
    cache = Path(args.cache_dir)
    clips = {s: make_clip(cache, photo, s) for s in sorted(set(sizes) | ({"1080p"} if not (args.no_sampling and args.no_live) else set()))}

    load0 = open("/proc/loadavg").read().split()[0]
    avail0 = cores_available()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ff-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(OPENCV_SCRIPT)
        opencv_script = Path(f.name)
    try:
        results = {s: bench_size(s, clips[s], work, opencv_script, args.runs, ff_extra, which) for s in sizes}
        sampling = None if args.no_sampling else bench_sampling(clips["1080p"], work, args.runs, ff_extra)
        live = None
        if not args.no_live:
            log("live 1080p30 latency (runs for the clip's 20 s) ...")
            live = bench_live(clips["1080p"], work, ff_extra)
    finally:
        opencv_script.unlink(missing_ok=True)
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    avail = (avail0, cores_available(), load0, open("/proc/loadavg").read().split()[0])
    text = report(machine(), photo, cv_version, args.runs, results, sampling, live, ff_extra, avail)
    print(text)
    if args.readme:
        (ROOT / "bench" / "RESULTS.md").write_text(
            "# `frameflow run` against its peers (bench/pipeline.py)\n\n" + text)
        readme = ROOT / "README.md"
        body = readme.read_text()
        start, end = "<!-- bench/pipeline.py results: start -->", "<!-- bench/pipeline.py results: end -->"
        if start in body and end in body:
            head, rest = body.split(start, 1)
            _, tail = rest.split(end, 1)
            readme.write_text(head + start + "\n" + text.strip() + "\n" + end + tail)
            log("wrote bench/RESULTS.md and the results section of README.md")
        else:
            log("wrote bench/RESULTS.md (README.md has no results markers)")
    bad = any(r.count != FRAMES or r.code != 0 for res in results.values() for r in res.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
