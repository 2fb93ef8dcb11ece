#!/usr/bin/env python3
"""Hot-folder speed: `frameflow watch --once` against the 2018 design's converter.

Usage: python3 bench/watch.py [--count N] [--size WxH] [--runs R] [--set noisy|natural|both]
                              [--photo PATH] [--binary PATH]

Makes two sets of N JPEG frames and times, on identical files, in the same run:
  - the 2018 converter: one Python process, for each file Image.open -> filter(EMBOSS) ->
    save(quality=75), as the pyinotify script did;
  - frameflow: `frameflow watch DIR -f emboss -o OUT --once --keep-input`.

The sets:
  - noisy:   ffmpeg testsrc2 with strong film-grain noise (noise=alls=12), mjpeg -q:v 3:
             about 630 KB per 1080p frame, the worst case for JPEG decoding.
  - natural: a slow zoom and pan over a photograph from a Debian package (mate-backgrounds'
             Dune.jpg, the most detailed one there; --photo to choose another) with mild
             sensor noise (noise=alls=3, temporal), saved at JPEG quality 85, 4:2:0 (GStreamer
             jpegenc's default quality, libjpeg's standard tables): about 300 KB per frame.

Each run times both systems on both sets (order alternated between runs; the machine may
be shared, so compare ratios within a run). Prints per set: images/s and CPU ms per image
of each (median over runs), and the ratio of images/s per run and its median (issue 4's
target: >= 10x). Checks that both wrote N files and that a few outputs decode to the same
pixels. Builds the release binary first (--binary: time another build, e.g. an older one).
"""

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PHOTO = "/usr/share/backgrounds/mate/nature/Dune.jpg"

CONVERTER = (
    "import os, sys\n"
    "from PIL import Image, ImageFilter\n"
    "src, out = sys.argv[1], sys.argv[2]\n"
    "for name in sorted(os.listdir(src)):\n"
    "    im = Image.open(os.path.join(src, name))\n"
    "    im.filter(ImageFilter.EMBOSS).save(os.path.join(out, name), quality=75)\n"
)

# Raw RGB frames on stdin -> JPEG quality 85 (jpegenc's default), one file per frame.
SAVE_Q85 = (
    "import sys\n"
    "from PIL import Image\n"
    "w, h, pattern = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
    "n = 0\n"
    "while True:\n"
    "    b = sys.stdin.buffer.read(w * h * 3)\n"
    "    if len(b) < w * h * 3:\n"
    "        break\n"
    "    n += 1\n"
    "    Image.frombytes('RGB', (w, h), b).save(pattern % n, quality=85)\n"
)

SAME_PIXELS = (
    "import sys\n"
    "from PIL import Image\n"
    "a, b = sys.argv[1], sys.argv[2]\n"
    "for name in sys.argv[3:]:\n"
    "    x, y = Image.open(a + '/' + name), Image.open(b + '/' + name)\n"
    "    if x.size != y.size or x.mode != y.mode or x.tobytes() != y.tobytes():\n"
    "        sys.exit('pixels differ: ' + name)\n"
)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd):
    cpu0, t0 = children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0, children_cpu() - cpu0


def make_noisy(dest, count, size):
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25",
         "-vf", "noise=alls=12:allf=t", "-frames:v", str(count), "-q:v", "3",
         os.path.join(dest, "frame%05d.jpg")],
        check=True,
    )


def find_photo(wanted):
    if wanted and os.path.isfile(wanted):
        return wanted
    found = sorted(glob.glob("/usr/share/backgrounds/**/*.jpg", recursive=True))
    return found[0] if found else None


def make_natural(dest, count, size, photo):
    w, h = (int(v) for v in size.split("x"))
    # Scale the photo to cover 1.5x the frame, then zoom in slowly while panning right.
    vf = (
        f"scale={w * 3 // 2}:{h * 3 // 2}:force_original_aspect_ratio=increase,"
        f"zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)+on*2':y='ih/2-(ih/zoom/2)'"
        f":d={count}:s={size}:fps=25,noise=alls=3:allf=t,format=rgb24"
    )
    gen = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", photo, "-vf", vf, "-frames:v", str(count),
         "-f", "rawvideo", "-"],
        stdout=subprocess.PIPE,
    )
    subprocess.run([sys.executable, "-c", SAVE_Q85, str(w), str(h), os.path.join(dest, "frame%05d.jpg")],
                   stdin=gen.stdout, check=True)
    gen.stdout.close()
    if gen.wait() != 0:
        sys.exit("ffmpeg failed making the natural set")


def run_once(binary, work, src, n, pillow_first):
    a, b = os.path.join(work, "a"), os.path.join(work, "b")
    pillow_out, ff_out = os.path.join(work, "pillow-out"), os.path.join(work, "ff-out")
    for d in (a, b, pillow_out, ff_out):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, a)
    shutil.copytree(src, b)
    os.makedirs(pillow_out)
    steps = [
        ("pillow", [sys.executable, "-c", CONVERTER, a, pillow_out]),
        ("ff", [binary, "-q", "watch", b, "-f", "emboss", "-o", ff_out, "--once", "--keep-input"]),
    ]
    if not pillow_first:
        steps.reverse()
    res = {name: timed(cmd) for name, cmd in steps}
    n_pillow, n_ff = len(os.listdir(pillow_out)), len(os.listdir(ff_out))
    if n_pillow != n or n_ff != n:
        sys.exit(f"output counts differ: {n} inputs, Pillow {n_pillow}, frameflow {n_ff}")
    names = sorted(os.listdir(src))
    sample = [names[0], names[len(names) // 2], names[-1]]
    subprocess.run([sys.executable, "-c", SAME_PIXELS, pillow_out, ff_out] + sample, check=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--set", choices=["noisy", "natural", "both"], default="both")
    ap.add_argument("--photo", default=DEFAULT_PHOTO)
    ap.add_argument("--binary", help="time this frameflow binary instead of building target/release")
    args = ap.parse_args()

    if args.binary:
        binary = os.path.abspath(args.binary)
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "frameflow"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "frameflow")
    work = tempfile.mkdtemp(prefix="ff-bench-watch-")
    try:
        sets = []
        if args.set in ("noisy", "both"):
            d = os.path.join(work, "set-noisy")
            os.makedirs(d)
            make_noisy(d, args.count, args.size)
            sets.append(("noisy", d, "testsrc2 + noise=alls=12, mjpeg -q:v 3"))
        if args.set in ("natural", "both"):
            photo = find_photo(args.photo)
            if photo is None:
                print("natural set skipped: no photo (apt install mate-backgrounds, or --photo PATH)")
            else:
                d = os.path.join(work, "set-natural")
                os.makedirs(d)
                make_natural(d, args.count, args.size, photo)
                sets.append(("natural", d, f"{os.path.basename(photo)} zoom/pan + noise=alls=3, q85"))

        load0 = os.getloadavg()[0]
        results = {name: [] for name, _, _ in sets}
        for r in range(args.runs):
            for name, d, _ in sets:
                results[name].append(run_once(binary, os.path.join(work, "run"), d, len(os.listdir(d)), r % 2 == 0))

        print(f"{args.count} JPEGs {args.size}, EMBOSS, JPEG q75, {os.cpu_count()} cores, "
              f"{args.runs} run(s), medians; load average before {load0:.1f}, after "
              f"{os.getloadavg()[0]:.1f} (above ~0.5 the machine is shared: wall-clock ratios "
              f"then understate what 2 free cores give; the CPU ratio does not depend on it)")
        for name, d, desc in sets:
            n = len(os.listdir(d))
            kb = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)) / n / 1024
            runs = results[name]
            print(f"\n[{name}] {desc}, {kb:.0f} KB per input")
            print(f"{'system':<34}{'images/s':>10}{'wall s':>9}{'CPU ms/img':>12}")
            for key, label in (("pillow", "2018 converter (Pillow, 1 proc)"), ("ff", "frameflow watch --once")):
                wall = statistics.median(r[key][0] for r in runs)
                cpu = statistics.median(r[key][1] for r in runs)
                print(f"{label:<34}{n / wall:>10.1f}{wall:>9.2f}{cpu / n * 1000:>12.1f}")
            ratios = [r["pillow"][0] / r["ff"][0] for r in runs]
            med = statistics.median(ratios)
            cpu_ratio = statistics.median(r["pillow"][1] / r["ff"][1] for r in runs)
            print(f"ratio per run: {' '.join(f'{x:.1f}x' for x in ratios)}; median {med:.1f}x "
                  f"(target >= 10x: {'PASS' if med >= 10 else 'MISS'})")
            print(f"CPU per image, Pillow / frameflow: {cpu_ratio:.1f}x (images/s ratio on "
                  f"{os.cpu_count()} idle cores is at most about {os.cpu_count()}x this)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
