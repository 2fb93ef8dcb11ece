#!/usr/bin/env bash
# Soak: a live HTTP stream for N minutes through `frameflow run`, with the server killed
# every 30 s and back 2 s later, and /stream.mjpeg viewers coming and going. Samples the
# frameflow process's RSS and open file descriptors every 10 s; at the end prints the
# samples and frames written against frames the server sent.
#
#   bench/soak.sh                 # 10 minutes, release build
#   bench/soak.sh --minutes 2     # shorter
#   bench/soak.sh --readme        # also write the result into README.md (between markers)
#
# Everything runs on 127.0.0.1; every process it starts is ended on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=10
README=0
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --readme) README=1; shift ;;
    *) echo "usage: $0 [--minutes N] [--readme]" >&2; exit 2 ;;
  esac
done

BIN=${FRAMEFLOW_BIN:-target/release/frameflow}
[ -x "$BIN" ] || cargo build --release -q
WORK=$(mktemp -d /tmp/frameflow-soak.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
  [ -n "${FF:-}" ] && kill -INT "$FF" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
SERVE=$(free_port)
URL="http://127.0.0.1:$PORT/live.ts"

# 60 s of 640x480 at 25 fps, a keyframe every second, looped by the server.
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=640x480:rate=25 -t 60 \
  -c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p -f mpegts "$WORK/clip.ts"

SESSIONS=0
start_server() {
  SESSIONS=$((SESSIONS + 1))
  ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i "$WORK/clip.ts" -c copy \
    -f mpegts -progress "$WORK/progress-$SESSIONS.txt" -listen 1 "$URL" &
  SERVER=$!
}

start_server
"$BIN" -q run -i "$URL" -f emboss -o "$WORK/out" --keep-last 200 \
  --serve "$SERVE" --stats-json "$WORK/stats.json" &
FF=$!
# frameflow runs as `frameflow-engine` under the launcher's pid (exec keeps it).

stat() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["streams"][0][sys.argv[2]])' "$WORK/stats.json" "$1" 2>/dev/null || echo 0; }

END=$(( $(date +%s) + MINUTES * 60 ))
NEXT_FLAP=$(( $(date +%s) + 30 ))
SAMPLES="$WORK/samples.txt"
: > "$SAMPLES"
T0=$(date +%s)
i=0
while [ "$(date +%s)" -lt "$END" ]; do
  now=$(date +%s)
  if [ "$now" -ge "$NEXT_FLAP" ]; then
    kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true
    sleep 2
    start_server
    NEXT_FLAP=$(( $(date +%s) + 30 ))
  fi
  # Viewers come and go: every 10 s, 5 of them for 5 s, one of them at ?width=320.
  if [ $((i % 10)) -eq 0 ]; then
    for v in 1 2 3 4 5; do
      q=""; [ "$v" -eq 1 ] && q="?width=320"
      curl -s --max-time 5 "http://127.0.0.1:$SERVE/stream.mjpeg$q" > /dev/null &
      PIDS+=($!)
    done
  fi
  if [ $((i % 10)) -eq 0 ]; then
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$FF/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$FF/fd" 2>/dev/null | wc -l)
    echo "$(( now - T0 )) $((rss / 1024)) $fds $(stat frames_written) $(stat reconnects)" >> "$SAMPLES"
  fi
  i=$((i + 1))
  sleep 1
done

kill -INT "$FF"; wait "$FF" || true
FF=
kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true
SERVER=

sent=0
for f in "$WORK"/progress-*.txt; do
  n=$(grep '^frame=' "$f" | tail -1 | cut -d= -f2)
  sent=$((sent + ${n:-0}))
done
written=$(stat frames_written)
dropped=$(stat frames_dropped)
reconnects=$(stat reconnects)

REPORT="$WORK/report.md"
{
  echo "### Soak: $MINUTES min, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) cores"
  echo
  echo "Live 640x480 25 fps H.264 over HTTP (\`ffmpeg -re … -listen 1\`), killed every 30 s and back after 2 s ($SESSIONS server sessions); \`-f emboss --keep-last 200\`; 5 \`/stream.mjpeg\` viewers for 5 s every 10 s."
  echo
  echo "| t (s) | RSS MiB | open fds | frames written | reconnects |"
  echo "|---:|---:|---:|---:|---:|"
  awk '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$SAMPLES"
  echo
  echo "Frames sent by the server: $sent; written: $written; dropped: $dropped; reconnects: $reconnects."
} > "$REPORT"
cat "$REPORT"

if [ "$README" -eq 1 ]; then
  python3 - "$REPORT" <<'PY'
import re, sys
report = open(sys.argv[1]).read().strip()
text = open("README.md").read()
start, end = "<!-- bench/soak.sh results: start -->", "<!-- bench/soak.sh results: end -->"
block = f"{start}\n{report}\n{end}"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
else:
    text = text.replace("## Layout", block + "\n\n## Layout", 1)
open("README.md", "w").write(text)
PY
fi
