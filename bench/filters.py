#!/usr/bin/env python3
"""Times every frameflow filter step against Pillow on the same 1920x1080 RGB frame.

    python3 bench/filters.py [--runs N] [--no-build] [STEP ...]

Makes one seeded, natural-looking frame (smooth gradients, filled shapes, mild noise),
then for each step times Pillow in-process and frameflow through
`crates/filters/examples/bench.rs` (built here with `cargo build --release`), step after
step in the same run, and prints the median times, the ratio Pillow/frameflow and the
target from issue 3. Both sides run on one core. Exit status is 0 even on a MISS: this
is a measurement, not a test.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W, H = 1920, 1080
R = Image.Resampling
T = Image.Transpose

KERNEL3 = ["emboss", "contour", "detail", "edge_enhance", "edge_enhance_more",
           "find_edges", "sharpen", "smooth"]

# (frameflow chain, Pillow call, minimum ratio or None)
STEPS = (
    [(k, (lambda im, k=k: im.filter(getattr(ImageFilter, k.upper()))), 20.0) for k in KERNEL3]
    + [
        ("blur", lambda im: im.filter(ImageFilter.BLUR), None),
        ("smooth_more", lambda im: im.filter(ImageFilter.SMOOTH_MORE), None),
        ("gaussian_blur=2", lambda im: im.filter(ImageFilter.GaussianBlur(2)), 2.0),
        ("box_blur=2", lambda im: im.filter(ImageFilter.BoxBlur(2)), None),
        ("unsharp_mask", lambda im: im.filter(ImageFilter.UnsharpMask(2, 150, 3)), None),
        ("median=3", lambda im: im.filter(ImageFilter.MedianFilter(3)), 5.0),
        ("min=3", lambda im: im.filter(ImageFilter.MinFilter(3)), None),
        ("max=3", lambda im: im.filter(ImageFilter.MaxFilter(3)), None),
        ("mode=3", lambda im: im.filter(ImageFilter.ModeFilter(3)), None),
        ("grayscale", lambda im: im.convert("L"), None),
        ("invert", lambda im: ImageOps.invert(im), None),
    ]
    + [
        (f"resize=640x360:{m}", (lambda im, m=m: im.resize((640, 360), getattr(R, m.upper()))), 1.0)
        for m in ["nearest", "bilinear", "bicubic", "lanczos"]
    ]
    + [
        ("crop=640:360", lambda im: im.crop((640, 360, 1280, 720)), None),
        ("rotate=90", lambda im: im.transpose(T.ROTATE_90), None),
        ("flip=h", lambda im: im.transpose(T.FLIP_LEFT_RIGHT), None),
    ]
)


def make_frame(seed=2018):
    """A deterministic 'natural' frame: gradients, shapes, soft edges, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    r = 40 + 170 * x / W + 20 * np.sin(y / 97.0)
    g = 60 + 140 * y / H + 25 * np.cos(x / 131.0)
    b = 120 + 80 * np.sin((x + y) / 400.0)
    base = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
    im = Image.fromarray(base)
    d = ImageDraw.Draw(im)
    for _ in range(60):
        x0, y0 = int(rng.integers(-200, W)), int(rng.integers(-200, H))
        sw, sh = int(rng.integers(20, 400)), int(rng.integers(20, 300))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        box = (x0, y0, x0 + sw, y0 + sh)
        if kind == 0:
            d.ellipse(box, fill=col)
        elif kind == 1:
            d.rectangle(box, fill=col)
        else:
            d.line(box, fill=col, width=int(rng.integers(1, 12)))
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    a = np.asarray(im).astype(np.int16)
    a += rng.normal(0, 3.0, a.shape).round().astype(np.int16)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def time_pillow(fn, im, runs):
    fn(im)  # warm-up
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(im)
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def time_frameflow(exe, raw, chain, runs):
    out = subprocess.run(
        [exe, "--raw", raw, "--size", f"{W}x{H}", "--runs", str(runs), chain],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()
    name, med, _best = out[-1].split("\t")
    assert name == chain, out
    return float(med)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=9, help="timed runs per step (median)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("steps", nargs="*", help="only these steps (chain text or prefix)")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "frameflow-filters", "--example", "bench"],
            cwd=ROOT, check=True,
        )
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target_dir, "release", "examples", "bench")

    im = make_frame()
    im.load()
    steps = [s for s in STEPS if not args.steps or any(s[0].startswith(p) for p in args.steps)]
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "frame.rgb")
        with open(raw, "wb") as f:
            f.write(im.tobytes())
        print(f"frame {W}x{H} RGB, Pillow {Image.__version__}, median of {args.runs} runs, one core")
        hdr = f"{'step':<26} {'Pillow ms':>10} {'frameflow ms':>13} {'ratio':>8} {'target':>7}  result"
        print(hdr)
        print("-" * len(hdr))
        misses = 0
        for chain, fn, target in steps:
            # Slow Pillow steps (mode, median) get fewer runs.
            pil = time_pillow(fn, im, 1)
            runs = args.runs if pil < 100 else max(3, args.runs // 3)
            pil = time_pillow(fn, im, runs)
            ff = time_frameflow(exe, raw, chain, args.runs)
            ratio = pil / ff if ff > 0 else float("inf")
            if target is None:
                tgt, res = "-", ""
            else:
                tgt = f">={target:g}x"
                res = "PASS" if ratio >= target else "MISS"
                misses += res == "MISS"
            print(f"{chain:<26} {pil:>10.2f} {ff:>13.3f} {ratio:>7.1f}x {tgt:>7}  {res}", flush=True)
        print(f"{misses} target(s) missed")


if __name__ == "__main__":
    sys.exit(main())
