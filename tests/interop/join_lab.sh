#!/usr/bin/env bash
# Join time in the lab (shared/DESIGN.md): a publisher sends with a keyframe every 4 s (or, for
# Chromium, only when asked), and ten viewers join one after another at different points of
# the group of pictures. Each prints how long after its WHEP POST it decoded its first video
# frame; the table is printed per publisher.
#
# Publishers: GStreamer x264 (sliced threads, config-interval=-1) through whipsink that IGNORES
# keyframe requests (like OBS), in both rtph264pay aggregate modes; the Chromium conference
# page with H.264, VP8, VP9, AV1. Players: aiortc for H.264 and VP8, run with --first-picture:
# a join fails unless the first frame it decodes is the first picture it received (the cached
# keyframe picture; a broken cache makes it wait for a later keyframe). Chromium /watch for VP9
# and AV1 (aiortc has neither): those joins must decode. Times are reported, never asserted
# (tests do not assert on wall-clock speed; the first-picture rule is what must hold).
#
# usage: tests/interop/join_lab.sh <wisp binary> <GST_PLUGIN_PATH> <aiortc python> [joins]
#   CASES="x264-stapa chromium-vp9" runs only those publishers.
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
AIORTC=$3
JOINS=${4:-10}
HERE=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
echo "logs in $LOG"
lab_wisp "$LOG/wisp.log" 18081 41000-41100
cleanup() { kill -INT "$WISP_PID" 2>/dev/null || true; wait "$WISP_PID" 2>/dev/null || true; }
trap cleanup EXIT

W=http://127.0.0.1:18081
fail=0
stop() { kill -INT "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

publisher_cmd() { # publisher room
  case $1 in
    x264-stapa) echo "/usr/bin/python3 $HERE/whip_x264.py $W/whip/$2 --aggregate zero-latency" ;;
    x264-single-nal) echo "/usr/bin/python3 $HERE/whip_x264.py $W/whip/$2 --aggregate none" ;;
    chromium-*) echo "node $HERE/../browser/cell.mjs publish $W $2 ${1#chromium-}" ;;
  esac
}
player_cmd() { # publisher room
  case $1 in
    chromium-vp9 | chromium-av1) echo "node $HERE/../browser/cell.mjs play $W $2 1" ;;
    *) echo "$AIORTC $HERE/aiortc_client.py play $W/whep/$2 --frames 1 --timeout 30 --first-picture" ;;
  esac
}

for pub in x264-stapa x264-single-nal chromium-h264 chromium-vp8 chromium-vp9 chromium-av1; do
  if [ -n "${CASES:-}" ] && [[ " $CASES " != *" $pub "* ]]; then continue; fi
  room="join-$pub"
  echo "== $pub: $JOINS joins"
  bash -c "$(publisher_cmd "$pub" "$room")" >"$LOG/pub-$pub.log" 2>&1 &
  p=$!
  if ! /usr/bin/python3 "$HERE/wait_publisher.py" "$W" "$room" --timeout 60; then
    echo "FAIL $pub: the publisher never sent video"; fail=1; tail -20 "$LOG/pub-$pub.log"
    stop "$p"; continue
  fi
  started=$(date +%s.%N)
  row_at="| join, s after video began |"
  row_ff="| first frame, s after POST |"
  row_up="| connected, s after POST |"
  for k in $(seq 1 "$JOINS"); do
    # Spread the joins over the group of pictures: a varying pause (0 .. 0.9 s) between
    # joins, on top of each player's own start-up time.
    sleep "0.$(( (k * 37) % 10 ))"
    at=$(awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }')
    rc=0
    out=$(bash -c "$(player_cmd "$pub" "$room")" 2>&1) || rc=$?
    ff=$(echo "$out" | sed -n 's/^first video frame \([0-9.]*\) s after the POST.*/\1/p' | head -1)
    up=$(echo "$out" | sed -n 's/.*(connected after \([0-9.?]*\) s).*/\1/p' | head -1)
    if [ "$rc" != 0 ]; then
      echo "FAIL $pub join $k at $at s (exit $rc):"; echo "$out" | sed 's/^/     /'; fail=1
      ff="${ff:-none} ✗"
    fi
    row_at+=" $at |"
    row_ff+=" ${ff:-?} |"
    row_up+=" ${up:--} |"
  done
  stop "$p"
  echo "$row_at"
  echo "$row_ff"
  echo "$row_up"
  grep -h "keyframe requests ignored" "$LOG/pub-$pub.log" || true
done

if [ "$fail" != 0 ]; then
  echo "--- wisp log"; tail -40 "$LOG/wisp.log"
  exit 1
fi
