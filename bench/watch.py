#!/usr/bin/env python3
"""Hot-folder speed: `frameflow watch --once` against the 2018 design's converter.

Usage: python3 bench/watch.py [--count N] [--size WxH]

Makes N JPEG frames with the ffmpeg CLI (a moving test pattern with film-grain noise,
quality like multifilesink's jpegenc), puts a copy in two folders, then in one run:
  - the 2018 converter: one Python process, for each file Image.open → filter(EMBOSS) →
    save(quality=75), as the pyinotify script did;
  - frameflow: `frameflow watch DIR -f emboss -o OUT --once --keep-input`.
Prints images/s, CPU seconds and the ratio (issue 4's target: >= 10x). Both produce the
same number of outputs, checked. Builds the release binary first.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "frameflow"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "frameflow")
    work = tempfile.mkdtemp(prefix="ff-bench-watch-")
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=25",
             "-vf", "noise=alls=12:allf=t", "-frames:v", str(args.count), "-q:v", "3",
             os.path.join(src, "frame%05d.jpg")],
            check=True,
        )
        a, b = os.path.join(work, "a"), os.path.join(work, "b")
        shutil.copytree(src, a)
        shutil.copytree(src, b)
        n = len(os.listdir(src))

        # The 2018 converter, in a child process so its CPU time is measured like ours.
        pillow_out = os.path.join(work, "pillow-out")
        os.makedirs(pillow_out)
        script = (
            "import os, sys\n"
            "from PIL import Image, ImageFilter\n"
            "src, out = sys.argv[1], sys.argv[2]\n"
            "for name in sorted(os.listdir(src)):\n"
            "    im = Image.open(os.path.join(src, name))\n"
            "    im.filter(ImageFilter.EMBOSS).save(os.path.join(out, name), quality=75)\n"
        )
        cpu0, t0 = children_cpu(), time.perf_counter()
        subprocess.run([sys.executable, "-c", script, a, pillow_out], check=True)
        pillow_s, pillow_cpu = time.perf_counter() - t0, children_cpu() - cpu0

        ff_out = os.path.join(work, "ff-out")
        cpu0, t0 = children_cpu(), time.perf_counter()
        subprocess.run([binary, "-q", "watch", b, "-f", "emboss", "-o", ff_out, "--once", "--keep-input"], check=True)
        ff_s, ff_cpu = time.perf_counter() - t0, children_cpu() - cpu0

        n_pillow, n_ff = len(os.listdir(pillow_out)), len(os.listdir(ff_out))
        if n_pillow != n or n_ff != n:
            sys.exit(f"output counts differ: {n} inputs, Pillow {n_pillow}, frameflow {n_ff}")
        print(f"{n} JPEGs {args.size}, EMBOSS, JPEG q75, {os.cpu_count()} cores")
        print(f"{'system':<34}{'images/s':>10}{'wall s':>9}{'CPU s':>8}")
        print(f"{'2018 converter (Pillow, 1 proc)':<34}{n / pillow_s:>10.1f}{pillow_s:>9.2f}{pillow_cpu:>8.2f}")
        print(f"{'frameflow watch --once':<34}{n / ff_s:>10.1f}{ff_s:>9.2f}{ff_cpu:>8.2f}")
        ratio = pillow_s / ff_s
        print(f"ratio: {ratio:.1f}x images/s (target >= 10x: {'PASS' if ratio >= 10 else 'MISS'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
