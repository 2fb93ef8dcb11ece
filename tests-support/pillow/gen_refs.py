#!/usr/bin/env python3
"""Reference outputs from Pillow for frameflow-filters' conformance test.

Usage: gen_refs.py OUTDIR

Writes deterministic (seeded) input images and Pillow's output for every filter step and
a few chains into OUTDIR, as raw packed 8-bit pixels, plus OUTDIR/manifest.tsv:

    # pillow <version>
    case  input  in_w  in_h  in_mode  chain  status  output  out_w  out_h  out_mode  tolerance

`status` is `ok` (compare `output` within `tolerance` per byte) or `refused` (Pillow
raised for this mode; frameflow must refuse the chain too). Fields are tab-separated.
Only the Python standard library and Pillow are needed.
"""

import math
import os
import random
import sys

import PIL
from PIL import Image, ImageFilter, ImageOps

SIZES = [(1, 1), (2, 3), (3, 3), (5, 5), (17, 13), (64, 48), (640, 480)]
MODES = ["L", "RGB", "RGBA"]


def random_image(mode, w, h, seed):
    rng = random.Random(seed)
    return Image.frombytes(mode, (w, h), rng.randbytes(w * h * len(mode)))


def natural_image(mode, w, h, seed):
    """A smooth gradient with a few waves, plus mild noise: like a camera frame."""
    rng = random.Random(seed)
    out = bytearray()
    for y in range(h):
        for x in range(w):
            u = x / max(w - 1, 1)
            v = y / max(h - 1, 1)
            base = [
                200 * u + 40 * math.sin(7 * v + 3 * u),
                180 * v + 50 * math.cos(5 * u),
                120 + 100 * math.sin(4 * (u + v)),
                255 * (0.5 + 0.5 * math.sin(3 * u - 2 * v)),  # alpha varies too
            ]
            for c in range(len(mode)):
                val = base[c] + rng.gauss(0, 6)
                out.append(max(0, min(255, int(val))))
    if mode == "L":
        return Image.frombytes("L", (w, h), bytes(out))
    return Image.frombytes(mode, (w, h), bytes(out))


def kern(size, weights, scale=None, offset=0):
    return lambda im: im.filter(ImageFilter.Kernel((size, size), weights, scale, offset))


def centered(im, w, h):
    x, y = (im.width - w) // 2, (im.height - h) // 2
    return (x, y, x + w, y + h)


# The contract allows resize to differ by 1 per channel; this implementation aims at 0.
RESIZE_TOL = int(os.environ.get("FRAMEFLOW_RESIZE_TOL", "1"))


def resize(w, h, method):
    return lambda im: im.resize((w, h), method)


def filt(f):
    return lambda im: im.filter(f)


# chain spec (frameflow syntax) -> (Pillow function, tolerance per byte)
STEPS = {
    "blur": (filt(ImageFilter.BLUR), 0),
    "contour": (filt(ImageFilter.CONTOUR), 0),
    "detail": (filt(ImageFilter.DETAIL), 0),
    "edge_enhance": (filt(ImageFilter.EDGE_ENHANCE), 0),
    "edge_enhance_more": (filt(ImageFilter.EDGE_ENHANCE_MORE), 0),
    "emboss": (filt(ImageFilter.EMBOSS), 0),
    "find_edges": (filt(ImageFilter.FIND_EDGES), 0),
    "sharpen": (filt(ImageFilter.SHARPEN), 0),
    "smooth": (filt(ImageFilter.SMOOTH), 0),
    "smooth_more": (filt(ImageFilter.SMOOTH_MORE), 0),
    "kernel=-1 0 0 0 1 0 0 0 0:offset=128": (kern(3, [-1, 0, 0, 0, 1, 0, 0, 0, 0], 1, 128), 0),
    "kernel=1 2 1 2 4 2 1 2 1": (kern(3, [1, 2, 1, 2, 4, 2, 1, 2, 1]), 0),
    "kernel=0.5 -1.25 0.3 2 1.7 -0.1 0 0 3:scale=3.3:offset=-7.25": (
        kern(3, [0.5, -1.25, 0.3, 2, 1.7, -0.1, 0, 0, 3], 3.3, -7.25),
        0,
    ),
    "kernel=1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25:offset=3": (
        kern(5, list(range(1, 26)), None, 3),
        0,
    ),
    "kernel=0 0 0 0 0 0 -3 0 2 0 0 0 1 0 0 0 -2 0 3 0 0 0 0 0 0:scale=0.7:offset=40": (
        kern(5, [0, 0, 0, 0, 0, 0, -3, 0, 2, 0, 0, 0, 1, 0, 0, 0, -2, 0, 3, 0, 0, 0, 0, 0, 0], 0.7, 40),
        0,
    ),
    "kernel=-1 -1 -1 -1 8 -1 -1 -1 -1:scale=1": (kern(3, [-1, -1, -1, -1, 8, -1, -1, -1, -1], 1, 0), 0),
    "grayscale": (lambda im: im.convert("L"), 0),
    "invert": (ImageOps.invert, 0),
    "gaussian_blur=2": (filt(ImageFilter.GaussianBlur(2)), 0),
    "gaussian_blur=0.6": (filt(ImageFilter.GaussianBlur(0.6)), 0),
    "gaussian_blur=7.3": (filt(ImageFilter.GaussianBlur(7.3)), 0),
    "gaussian_blur=0": (filt(ImageFilter.GaussianBlur(0)), 0),
    "box_blur=1": (filt(ImageFilter.BoxBlur(1)), 0),
    "box_blur=0.4": (filt(ImageFilter.BoxBlur(0.4)), 0),
    "box_blur=2.7": (filt(ImageFilter.BoxBlur(2.7)), 0),
    "box_blur=25": (filt(ImageFilter.BoxBlur(25)), 0),
    "unsharp_mask=2:150:3": (filt(ImageFilter.UnsharpMask(2, 150, 3)), 0),
    "unsharp_mask=0.8:300:0": (filt(ImageFilter.UnsharpMask(0.8, 300, 0)), 0),
    "unsharp_mask=5:80:10": (filt(ImageFilter.UnsharpMask(5, 80, 10)), 0),
    "median=3": (filt(ImageFilter.MedianFilter(3)), 0),
    "median=5": (filt(ImageFilter.MedianFilter(5)), 0),
    "min=3": (filt(ImageFilter.MinFilter(3)), 0),
    "max=3": (filt(ImageFilter.MaxFilter(3)), 0),
    "min=7": (filt(ImageFilter.MinFilter(7)), 0),
    "max=5": (filt(ImageFilter.MaxFilter(5)), 0),
    "mode=3": (filt(ImageFilter.ModeFilter(3)), 0),
    "mode=4": (filt(ImageFilter.ModeFilter(4)), 0),
    "mode=5": (filt(ImageFilter.ModeFilter(5)), 0),
    "mode=7": (filt(ImageFilter.ModeFilter(7)), 0),
    "crop=2:2:1:1": (lambda im: im.crop((1, 1, 3, 3)), 0),
    "crop=7:5:-2:-1": (lambda im: im.crop((-2, -1, 5, 4)), 0),
    "crop=3:3:15:10": (lambda im: im.crop((15, 10, 18, 13)), 0),
    # centered, as ffmpeg: ((in - out) // 2)
    "crop=10:8": (lambda im: im.crop(centered(im, 10, 8)), 0),
    "rotate=90": (lambda im: im.transpose(Image.Transpose.ROTATE_90), 0),
    "rotate=180": (lambda im: im.transpose(Image.Transpose.ROTATE_180), 0),
    "rotate=270": (lambda im: im.transpose(Image.Transpose.ROTATE_270), 0),
    "flip=h": (lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0),
    "flip=v": (lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM), 0),
    "resize=32x24:bicubic": (resize(32, 24, Image.Resampling.BICUBIC), RESIZE_TOL),
    "resize=7x5:bilinear": (resize(7, 5, Image.Resampling.BILINEAR), RESIZE_TOL),
    "resize=100x3:lanczos": (resize(100, 3, Image.Resampling.LANCZOS), RESIZE_TOL),
    "resize=17x40:lanczos": (resize(17, 40, Image.Resampling.LANCZOS), RESIZE_TOL),
    "resize=9x11:nearest": (resize(9, 11, Image.Resampling.NEAREST), 0),
    "resize=213x120:nearest": (resize(213, 120, Image.Resampling.NEAREST), 0),
    "resize=1x1:bicubic": (resize(1, 1, Image.Resampling.BICUBIC), RESIZE_TOL),
    "resize=64x13:bicubic": (resize(64, 13, Image.Resampling.BICUBIC), RESIZE_TOL),
}

CHAINS = [
    "emboss,grayscale",
    "grayscale,emboss,invert",
    "smooth,sharpen,find_edges",
    "emboss,invert",
    "gaussian_blur=2,emboss,grayscale",
    "unsharp_mask=2:150:3,box_blur=1",
    "grayscale,median=3,mode=5",
    "rotate=90,emboss,crop=10:8,flip=h",
    "resize=32x24:bicubic,sharpen,resize=64x13:bicubic",
]


def run_chain(spec, im):
    tol = 0
    for step in spec.split(","):
        fn, t = STEPS[step]
        im = fn(im)
        tol = max(tol, t)
    return im, tol


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_refs.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lines = [f"# pillow {PIL.__version__}"]
    seed = 1234
    for w, h in SIZES:
        for mode in MODES:
            for kind in ("random", "natural"):
                if (w, h) == (640, 480) and kind == "random" and mode != "L":
                    continue  # keep the data set small; random L covers it
                seed += 1
                make = random_image if kind == "random" else natural_image
                src = make(mode, w, h, seed)
                stem = f"{kind}_{mode}_{w}x{h}"
                in_name = f"{stem}.in.raw"
                with open(os.path.join(out, in_name), "wb") as f:
                    f.write(src.tobytes())
                for i, spec in enumerate(list(STEPS) + CHAINS):
                    case = f"{stem}#{spec}"
                    try:
                        res, tol = run_chain(spec, src)
                    except (OSError, ValueError) as e:
                        lines.append(
                            "\t".join([case, in_name, str(w), str(h), mode, spec, "refused", str(e), "0", "0", "-", "0"])
                        )
                        continue
                    out_name = f"{stem}.{i:03}.out.raw"
                    with open(os.path.join(out, out_name), "wb") as f:
                        f.write(res.tobytes())
                    lines.append(
                        "\t".join(
                            [
                                case, in_name, str(w), str(h), mode, spec, "ok", out_name,
                                str(res.width), str(res.height), res.mode, str(tol),
                            ]
                        )
                    )
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} cases written to {out}")


if __name__ == "__main__":
    main()
