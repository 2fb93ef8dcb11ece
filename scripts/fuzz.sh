#!/usr/bin/env bash
# Fuzz smoke: build the cargo-fuzz targets in fuzz/ and run each for FUZZ_SECONDS.
# Exits non-zero if any target finds a crash (a panic, a sanitizer report, an input over
# the memory limits or a timeout); the reproducer is left in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS=30          seconds per target (default 30)
#   FUZZ_TARGETS="chain ..." targets to run (default: all of them)
#   FUZZ_SANITIZER=address   address (default) or none (faster build and run, no ASan)
#   FUZZ_TARGET_DIR=DIR      build there instead of fuzz/target (e.g. a cache kept
#                            between CI runs: the cold build is most of the time)
#
# Only stable Rust is available: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz
# passes (sanitizer, coverage instrumentation).
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.1
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_TARGETS=${FUZZ_TARGETS:-chain template config still filters}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Release with debug assertions and overflow checks; 16 codegen units build much faster
# than cargo-fuzz's default of 1 for little loss of speed.
build_flags=(-O -a --codegen-units 16 -s "$FUZZ_SANITIZER")
if [[ -n ${FUZZ_TARGET_DIR:-} ]]; then
    mkdir -p "$FUZZ_TARGET_DIR"
    build_flags+=(--target-dir "$(cd "$FUZZ_TARGET_DIR" && pwd)")
fi

start=$(date +%s)
(cd fuzz && cargo fuzz build "${build_flags[@]}")
echo "fuzz.sh: build took $(($(date +%s) - start)) s" >&2

# libFuzzer writes what it discovers into the first corpus directory: a work directory
# under fuzz/target (kept between runs, so later runs start warmer), never the seeds in
# fuzz/corpus/.
failed=()
for t in $FUZZ_TARGETS; do
    work="fuzz/target/corpus-work/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    t0=$(date +%s)
    echo "fuzz.sh: $t for ${FUZZ_SECONDS}s" >&2
    if (cd fuzz && cargo fuzz run "${build_flags[@]}" "$t" "target/corpus-work/$t" "corpus/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=1536 -malloc_limit_mb=512 \
        -print_final_stats=1 2>"target/fuzz-$t.log"); then
        grep -E '^(Done|stat::number_of_executed_units)' "fuzz/target/fuzz-$t.log" >&2 || true
        echo "fuzz.sh: $t ok ($(($(date +%s) - t0)) s)" >&2
    else
        tail -n 60 "fuzz/target/fuzz-$t.log" >&2
        echo "fuzz.sh: $t FAILED; reproducer in fuzz/artifacts/$t/, log fuzz/target/fuzz-$t.log" >&2
        failed+=("$t")
    fi
done

echo "fuzz.sh: total $(($(date +%s) - start)) s" >&2
if ((${#failed[@]})); then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran clean" >&2
