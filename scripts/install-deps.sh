#!/usr/bin/env bash
# Install everything frameflow needs to build, test and run its demo.
#
# Idempotent and non-interactive: meant for a fresh Debian 12 (bookworm) machine as
# root (CI), and cheap to re-run (it only calls apt/pip/rustup when something is missing).
#
#   scripts/install-deps.sh            # install what is missing
#   FRAMEFLOW_SKIP_DEPS=1 make test    # skip this script entirely
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-deps: %s\n' "$*" >&2; }

# Build: bindgen (clang, libclang-dev) + pkg-config for ffmpeg-sys-next, the FFmpeg 5.1
# development libraries, cmake + nasm for libjpeg-turbo built by turbojpeg-sys, a C
# compiler for libwebp-sys. Test/demo: the ffmpeg/ffprobe CLIs and pip for Pillow; the
# RTSP test server (tests-support/rtsp_server.py, run with /usr/bin/python3) needs
# python3-gi and gir1.2-gst-rtsp-server-1.0 (which pulls in plugins-bad: openh264enc).
# The web preview's browser test drives Debian's chromium through chromium-driver.
# tests/protocols.rs runs Debian's nginx with libnginx-mod-rtmp as an RTMP server: its
# own foreground process, config and logs in a temp dir, 127.0.0.1 only. On a machine
# with systemd, apt also starts the stock nginx on port 80; the tests neither use nor
# need it (`systemctl disable --now nginx`). SRT, HLS, UDP/RTP and TCP come from the
# ffmpeg CLI (and python3's http.server for HLS), already listed. tests/hostile.rs has
# Debian's Prometheus server scrape /metrics through --serve-auth (its own foreground
# process and config in a temp dir, 127.0.0.1 only). crates/cluster's tests run Debian's
# nats-server (2.9, with -js and file storage in a temp dir, 127.0.0.1 only, own port);
# on a machine with systemd apt also starts the stock one on 4222, which they don't use.
# crates/cli/tests/cluster.rs also runs it, with `frameflow worker`s, and cuts one worker
# off in a network namespace of its own (iproute2's `ip netns`, veth; needs root).
APT_PACKAGES=(
  build-essential
  clang libclang-dev pkg-config
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavdevice-dev libavfilter-dev
  libturbojpeg0-dev
  ffmpeg
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  python3-gi gir1.2-gst-rtsp-server-1.0
  chromium chromium-driver
  nginx libnginx-mod-rtmp
  prometheus
  nats-server
  iproute2
  cmake nasm make
  python3 python3-pip
  ca-certificates curl
)
PILLOW_VERSION=11.3.0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
fi

# ---- apt ----------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing packages (${missing[*]}) and no apt-get: install them by hand"; exit 1
  fi
  log "apt-get install ${missing[*]}"
  apt_opts=(-q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
  for try in 1 2 3; do
    if "${SUDO[@]}" apt-get "${apt_opts[@]}" update \
      && "${SUDO[@]}" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
      break
    fi
    [ "$try" -lt 3 ] || { log "apt-get failed 3 times"; exit 1; }
    log "apt-get failed (try $try), retrying in 10 s"; sleep 10
  done
else
  log "apt packages: all present"
fi

# ---- Python: Pillow (the filter reference) and numpy for the tests -------------------
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then PY=/usr/bin/python3; fi
if "$PY" - "$PILLOW_VERSION" <<'PYEOF' >/dev/null 2>&1
import sys, PIL, numpy
sys.exit(0 if PIL.__version__ == sys.argv[1] else 1)
PYEOF
then
  log "python: Pillow $PILLOW_VERSION and numpy present ($("$PY" -c 'import sys; print(sys.executable)'))"
else
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    log "$PY has no pip; trying ensurepip"
    "$PY" -m ensurepip --upgrade >/dev/null 2>&1 || true
  fi
  pip_args=(install --quiet --disable-pip-version-check --no-input)
  # PEP 668: Debian's own python3 refuses pip installs unless told so.
  stdlib=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
  if [ -f "$stdlib/EXTERNALLY-MANAGED" ]; then pip_args+=(--break-system-packages); fi
  if [ "$(id -u)" -eq 0 ]; then export PIP_ROOT_USER_ACTION=ignore; fi
  log "$PY -m pip ${pip_args[*]} Pillow==$PILLOW_VERSION numpy"
  "$PY" -m pip "${pip_args[@]}" "Pillow==$PILLOW_VERSION" numpy
  # pyenv: refresh shims (harmless elsewhere)
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
fi

# ---- Rust ------------------------------------------------------------------------------
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v cargo >/dev/null 2>&1; then
  log "cargo missing: installing Rust with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --component rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
fi
# edition 2024 needs Rust >= 1.85; the workspace says 1.95.
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${rustc_minor:-0}" -lt 85 ]; then
  if command -v rustup >/dev/null 2>&1; then
    log "rustc $(rustc --version) too old: rustup update stable"
    rustup update stable
  else
    log "rustc $(rustc --version) is too old (need >= 1.85) and there is no rustup"; exit 1
  fi
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      log "rustup component add $c"
      rustup component add "$c" || log "could not add $c (lint will need it)"
    fi
  done
fi
log "ok: $(cargo --version), $(ffmpeg -version | head -n1 | cut -d' ' -f1-3), Pillow $("$PY" -c 'import PIL; print(PIL.__version__)')"
