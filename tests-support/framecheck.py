#!/usr/bin/env python3
"""Reference checks for frameflow's integration tests, with Pillow as the reference.

  framecheck.py compare --raw REF.rgb --size WxH --dir OUTDIR --ext png \
                        [--filter emboss|none] [--mode exact|mae] [--max-mae 3] \
                        [--count N] [--start 0]
      REF.rgb holds the frames decoded by `ffmpeg -i SRC -pix_fmt rgb24 -f rawvideo`.
      OUTDIR must hold exactly frame{i:06}.EXT for i in start..start+count (default: as
      many frames as REF.rgb holds), nothing else (no temporary dotfiles); output i must
      equal Pillow's FILTER of reference frame (i - start): bit-exact (exact) or with a
      mean absolute error of at most --max-mae (mae), or within --max-mae of Pillow's
      own JPEG (--quality, default 75) of the filtered frame (jpeg). --allow-other ignores
      other non-hidden files.
  framecheck.py stats FILE.json
      prints "decoded=N written=M" from frameflow's --stats-json file.
  framecheck.py images DIR
      prints "NAME FORMAT MODE WxH" for each file (each must be a readable image).

Exit status: 0 ok, 1 check failed (the reason is printed), 2 bad usage.
"""
import argparse
import io
import json
import os
import re
import sys

import numpy as np
from PIL import Image, ImageFilter

FILTERS = {
    "none": None,
    "emboss": ImageFilter.EMBOSS,
}
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP", "ppm": "PPM", "webp": "WEBP"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def load_reference(path, w, h, filt):
    data = open(path, "rb").read()
    fsize = w * h * 3
    if len(data) % fsize:
        fail(f"{path}: {len(data)} bytes is not a whole number of {w}x{h} rgb24 frames")
    out = []
    for i in range(len(data) // fsize):
        im = Image.frombytes("RGB", (w, h), data[i * fsize:(i + 1) * fsize])
        if filt is not None:
            im = im.filter(filt)
        out.append(np.asarray(im, dtype=np.int16))
    return out


def describe_diff(got, want):
    d = np.abs(got - want)
    bad = np.argwhere(d.max(axis=2) > 0) if d.ndim == 3 else np.argwhere(d > 0)
    y, x = bad[0][:2]
    return (f"{len(bad)} pixels differ, max |diff| {int(d.max())}, mean {d.mean():.3f}; "
            f"first at (x={x}, y={y}): got {got[y, x].tolist()} want {want[y, x].tolist()}")


def cmd_compare(a):
    w, h = (int(v) for v in a.size.lower().split("x"))
    refs = load_reference(a.raw, w, h, FILTERS[a.filter])
    count = a.count if a.count is not None else len(refs)
    if count > len(refs):
        fail(f"asked to check {count} frames but the reference has only {len(refs)}")
    entries = sorted(os.listdir(a.dir)) if os.path.isdir(a.dir) else []
    temp = [e for e in entries if e.startswith(".")]
    if temp:
        fail(f"temporary/hidden files left in {a.dir}: {temp[:5]}")
    want_names = [f"frame{i:06d}.{a.ext}" for i in range(a.start, a.start + count)]
    names = [e for e in entries if os.path.isfile(os.path.join(a.dir, e))]
    if a.allow_other:
        names = [e for e in names if e in set(want_names)]
    if names != want_names:
        extra = sorted(set(names) - set(want_names))
        missing = sorted(set(want_names) - set(names))
        fail(f"{a.dir}: {len(names)} files, expected {len(want_names)} "
             f"({want_names[0] if want_names else ''}..{want_names[-1] if want_names else ''}); "
             f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}), "
             f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''} ({len(extra)})")
    fmt = FORMATS[a.ext]
    worst = 0.0
    for i, name in enumerate(names):
        path = os.path.join(a.dir, name)
        try:
            with Image.open(path) as im:
                im.verify()
            im = Image.open(path)
            im.load()
        except Exception as e:  # noqa: BLE001 - any decode failure is a failed check
            fail(f"{name}: not a valid image: {e}")
        if im.format != fmt:
            fail(f"{name}: format {im.format}, expected {fmt}")
        if im.size != (w, h):
            fail(f"{name}: size {im.size[0]}x{im.size[1]}, expected {w}x{h}")
        if a.mode == "exact" and im.mode != "RGB":
            fail(f"{name}: mode {im.mode}, expected RGB")
        got = np.asarray(im.convert("RGB"), dtype=np.int16)
        want = refs[i]
        if a.mode == "exact":
            if not np.array_equal(got, want):
                # Say whether it is a neighbour's frame (order/offset problem) or just wrong.
                near = [j for j in range(max(0, i - 3), min(len(refs), i + 4))
                        if j != i and np.array_equal(got, refs[j])]
                hint = f"; it equals reference frame {near[0]} (order/offset?)" if near else ""
                fail(f"{name} (frame {i}) differs from Pillow {a.filter}: "
                     f"{describe_diff(got, want)}{hint}")
        elif a.mode == "jpeg":
            # The reference is Pillow's own JPEG of the filtered frame (quality
            # --quality, 4:2:0 as Pillow saves), decoded by Pillow: a libjpeg-turbo
            # encoder with the same settings lands within a fraction of a level.
            buf = io.BytesIO()
            Image.fromarray(want.astype(np.uint8), "RGB").save(buf, "JPEG", quality=a.quality)
            ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.int16)
            mae = float(np.abs(got - ref).mean())
            worst = max(worst, mae)
            if mae > a.max_mae:
                raw_mae = float(np.abs(got - want).mean())
                pil_mae = float(np.abs(ref - want).mean())
                fail(f"{name} (frame {i}): mean abs error {mae:.3f} vs Pillow's JPEG (q{a.quality}) "
                     f"of {a.filter} > {a.max_mae} (vs the unencoded reference: {raw_mae:.3f}; "
                     f"Pillow's own JPEG: {pil_mae:.3f})")
        else:
            mae = float(np.abs(got - want).mean())
            worst = max(worst, mae)
            if mae > a.max_mae:
                near = [(j, float(np.abs(got - refs[j]).mean()))
                        for j in range(max(0, i - 3), min(len(refs), i + 4)) if j != i]
                best = min(near, key=lambda t: t[1]) if near else None
                hint = (f"; closest is reference frame {best[0]} (mae {best[1]:.2f})"
                        if best and best[1] < mae else "")
                fail(f"{name} (frame {i}): mean abs error {mae:.3f} vs Pillow {a.filter} "
                     f"> {a.max_mae}{hint}")
    extra = f", worst mean abs error {worst:.3f}" if a.mode != "exact" else ""
    print(f"ok: {len(names)} {fmt} frames match Pillow {a.filter} ({a.mode}){extra}")


def find_counts(doc):
    """Find decoded/written frame counters: prefer the shallowest keys."""
    found = {}
    queue = [(doc, 0)]
    while queue:
        node, depth = queue.pop(0)
        if isinstance(node, dict):
            for k, v in node.items():
                key = k.lower()
                for want in ("decoded", "written"):
                    if want in found:
                        continue
                    if isinstance(v, int) and not isinstance(v, bool) and key in (
                            want, f"frames_{want}", f"{want}_frames", f"frames{want}"):
                        found[want] = v
                if isinstance(v, (dict, list)):
                    # {"frames": {"decoded": N}} style
                    queue.append((v, depth + 1))
        elif isinstance(node, list):
            for v in node:
                queue.append((v, depth + 1))
    return found


def cmd_stats(a):
    try:
        doc = json.load(open(a.file))
    except Exception as e:  # noqa: BLE001
        fail(f"{a.file}: not valid JSON: {e}")
    found = find_counts(doc)
    if "decoded" not in found or "written" not in found:
        fail(f"{a.file}: no decoded/written counters found in {json.dumps(doc)[:400]}")
    print(f"decoded={found['decoded']} written={found['written']}")


def cmd_images(a):
    for name in sorted(os.listdir(a.dir)):
        path = os.path.join(a.dir, name)
        try:
            with Image.open(path) as im:
                im.verify()
            im = Image.open(path)
            im.load()
        except Exception as e:  # noqa: BLE001
            fail(f"{name}: not a valid image: {e}")
        print(f"{name} {im.format} {im.mode} {im.size[0]}x{im.size[1]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--raw", required=True)
    c.add_argument("--size", required=True)
    c.add_argument("--dir", required=True)
    c.add_argument("--ext", default="png", choices=sorted(FORMATS))
    c.add_argument("--filter", default="none", choices=sorted(FILTERS))
    c.add_argument("--mode", default="exact", choices=["exact", "mae", "jpeg"])
    c.add_argument("--quality", type=int, default=75)
    c.add_argument("--max-mae", type=float, default=3.0)
    c.add_argument("--count", type=int)
    c.add_argument("--start", type=int, default=0)
    c.add_argument("--allow-other", action="store_true",
                   help="ignore other (non-hidden) files in DIR")
    s = sub.add_parser("stats")
    s.add_argument("file")
    i = sub.add_parser("images")
    i.add_argument("dir")
    a = p.parse_args()
    {"compare": cmd_compare, "stats": cmd_stats, "images": cmd_images}[a.cmd](a)


if __name__ == "__main__":
    main()
