#!/usr/bin/env python3
"""End-to-end Pillow conformance through the binary: `frameflow apply --format png`.

Usage: conformance.py FRAMEFLOW_BIN WORKDIR

For every step and chain of ../pillow/gen_refs.py, on PNG inputs of awkward sizes in L,
RGB and RGBA, runs `frameflow apply -f CHAIN --format png` once over all inputs and
compares each output PNG with Pillow's result (bit for bit; resize within tolerance).
Where Pillow refuses a mode, frameflow must refuse that file (exit 1, a line naming it)
and write nothing for it. Prints one line per mismatch and a closing
'N passed, N failed' line; exits 1 on any failure.
"""

import os
import subprocess
import sys

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pillow"))
import gen_refs  # noqa: E402

SIZES = [(1, 1), (2, 3), (5, 5), (17, 13), (64, 48)]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: conformance.py FRAMEFLOW_BIN WORKDIR")
    binary, work = sys.argv[1], sys.argv[2]
    indir = os.path.join(work, "in")
    os.makedirs(indir, exist_ok=True)
    inputs = {}
    seed = 99
    for w, h in SIZES:
        for mode in gen_refs.MODES:
            seed += 1
            make = gen_refs.natural_image if seed % 2 else gen_refs.random_image
            im = make(mode, w, h, seed)
            path = os.path.join(indir, f"{mode}_{w}x{h}.png")
            im.save(path)
            inputs[path] = im
    passed = failed = 0
    for i, spec in enumerate(list(gen_refs.STEPS) + gen_refs.CHAINS):
        out = os.path.join(work, f"out{i:03}")
        proc = subprocess.run(
            [binary, "-q", "apply", "-f", spec, "--format", "png", "-o", out, *inputs],
            capture_output=True, text=True, timeout=300,
        )
        refused_any = False
        for path, src in inputs.items():
            stem = os.path.splitext(os.path.basename(path))[0]
            got_path = os.path.join(out, stem + ".png")
            try:
                ref, tol = gen_refs.run_chain(spec, src)
            except (OSError, ValueError):
                refused_any = True
                if os.path.exists(got_path) or stem not in proc.stderr:
                    failed += 1
                    print(f"FAIL {spec} on {stem}: Pillow refuses, frameflow did not (stderr: {proc.stderr.strip()!r})")
                else:
                    passed += 1
                continue
            if not os.path.exists(got_path):
                failed += 1
                print(f"FAIL {spec} on {stem}: no output (exit {proc.returncode}, stderr: {proc.stderr.strip()!r})")
                continue
            got = Image.open(got_path)
            got.load()
            if (got.mode, got.size) != (ref.mode, ref.size):
                failed += 1
                print(f"FAIL {spec} on {stem}: got {got.mode} {got.size}, Pillow {ref.mode} {ref.size}")
                continue
            a, b = got.tobytes(), ref.tobytes()
            worst = max((abs(x - y) for x, y in zip(a, b)), default=0)
            if worst > tol:
                failed += 1
                first = next(j for j, (x, y) in enumerate(zip(a, b)) if abs(x - y) > tol)
                print(f"FAIL {spec} on {stem}: byte {first} is {a[first]}, Pillow {b[first]} (max diff {worst})")
            else:
                passed += 1
        want_rc = 1 if refused_any else 0
        if proc.returncode != want_rc:
            failed += 1
            print(f"FAIL {spec}: exit {proc.returncode}, expected {want_rc} (stderr: {proc.stderr.strip()!r})")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
