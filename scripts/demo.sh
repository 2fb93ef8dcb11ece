#!/usr/bin/env bash
# The 2018 scenario, end to end, on an embedded default:
#   a live MPEG-1 video in an MPEG program stream, served over HTTP by the ffmpeg CLI (the
#   way ffserver served test1.mpg), read by frameflow, each frame run through Pillow's
#   EMBOSS and written atomically as a JPEG.
#
# Usage: scripts/demo.sh [SECONDS]
#   env: FRAMEFLOW=path/to/binary  OUT=demo-out  INPUT=clip.mp4  SIZE=640x480  RATE=25  PORT=…
#   CLUSTER=1 (make cluster-demo): the same stream through a pool: a local nats-server
#   (JetStream, file storage in $OUT/nats) and two `frameflow worker`s; prints the pool's
#   counters from the workers' /api/status.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${1:-10}
OUT=${OUT:-demo-out}
BIN=${FRAMEFLOW:-target/release/frameflow}
SIZE=${SIZE:-640x480}
RATE=${RATE:-25}

if [ ! -x "$BIN" ]; then
  echo "demo: $BIN not found; run 'make demo' (or 'cargo build --release') first" >&2
  exit 1
fi
command -v ffmpeg >/dev/null || { echo "demo: the ffmpeg CLI is missing (scripts/install-deps.sh)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
    || echo $(( 20000 + RANDOM % 20000 ))
}

# Is anything LISTENing on 127.0.0.1:$1? (reads /proc so that it does not use up the
# server's one client, which a test connection would)
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  grep -qE "^ *[0-9]+: (0100007F|00000000):$hex 00000000:0000 0A" /proc/net/tcp 2>/dev/null
}

PORT=${PORT:-$(free_port)}
URL="http://127.0.0.1:$PORT/test1.mpg"
rm -rf "$OUT"
mkdir -p "$OUT"
SERVER_LOG="$OUT/server.log"

SERVER_PID=
POOL_PIDS=()
cleanup() {
  for pid in "${POOL_PIDS[@]}" "$SERVER_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A live source like ffserver's: real-time (-re) MPEG-1 video in MPEG-PS, over HTTP.
# It runs a little longer than frameflow reads, so frameflow's --duration ends the run.
# INPUT=clip.mp4 serves your own clip (re-encoded to MPEG-1) instead of lavfi's testsrc2.
if [ -n "${INPUT:-}" ]; then
  src=(-i "$INPUT")
  echo "demo: serving $INPUT as a live MPEG-1/MPEG-PS stream at $URL"
else
  src=(-f lavfi -i "testsrc2=size=$SIZE:rate=$RATE")
  echo "demo: serving a live MPEG-1/MPEG-PS stream at $URL ($SIZE, $RATE fps)"
fi
ffmpeg -nostdin -hide_banner -loglevel error -re "${src[@]}" -t $((DURATION + 5)) \
  -map 0:v:0 -c:v mpeg1video -q:v 4 -f mpeg -listen 1 "$URL" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 100); do
  listening "$PORT" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "demo: the ffmpeg server died:" >&2; cat "$SERVER_LOG" >&2; exit 1; }
  sleep 0.1
done

POOL=()
WORKER_PORTS=()
if [ "${CLUSTER:-}" = 1 ]; then
  command -v nats-server >/dev/null || { echo "demo: nats-server is missing (scripts/install-deps.sh)" >&2; exit 1; }
  NATS_PORT=$(free_port)
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$OUT/nats" >"$OUT/nats.log" 2>&1 &
  POOL_PIDS+=($!)
  for _ in $(seq 1 100); do listening "$NATS_PORT" && break; sleep 0.1; done
  NATS="nats://127.0.0.1:$NATS_PORT"
  for i in 1 2; do
    wp=$(free_port)
    WORKER_PORTS+=("$wp")
    "$BIN" worker --cluster "$NATS" --workers 1 --serve "$wp" >"$OUT/worker$i.log" 2>&1 &
    POOL_PIDS+=($!)
  done
  echo "demo: a pool on $NATS: 2 workers (status on 127.0.0.1:${WORKER_PORTS[*]})"
  POOL=(--cluster "$NATS")
fi

echo "demo: frameflow run -i $URL -f emboss -o $OUT/frames --duration $DURATION ${POOL[*]}"
set +e
"$BIN" run -i "$URL" -f emboss -o "$OUT/frames" --duration "$DURATION" --stats-json "$OUT/stats.json" "${POOL[@]}"
rc=$?
set -e

echo
shopt -s nullglob
frames=("$OUT"/frames/*)
echo "demo: frameflow exited with $rc"
echo "demo: ${#frames[@]} frames in $(cd "$OUT/frames" 2>/dev/null && pwd || echo "$OUT/frames")"
if [ "${#frames[@]}" -gt 0 ]; then
  echo "demo:   first: ${frames[0]}"
  echo "demo:   last:  ${frames[${#frames[@]}-1]}"
fi
if [ -f "$OUT/stats.json" ]; then
  echo "demo: stats ($OUT/stats.json):"
  python3 -m json.tool "$OUT/stats.json" 2>/dev/null || cat "$OUT/stats.json"
fi
for i in "${!WORKER_PORTS[@]}"; do
  echo "demo: worker $((i + 1)) (http://127.0.0.1:${WORKER_PORTS[$i]}/api/status):"
  python3 - "${WORKER_PORTS[$i]}" <<'PY' || true
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/status", timeout=5) as r:
    print(json.dumps(json.load(r).get("worker"), indent=2))
PY
done
exit "$rc"
