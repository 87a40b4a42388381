#!/usr/bin/env bash
# Real-client interop in the lab (shared/DESIGN.md): publishers x players through wisp, each
# cell decoding frames on the player, inside a private network namespace with no route out.
# GStreamer whipsink -> whepsrc: VP8+Opus; VP9+Opus; H264 from x264 + Opus to a viewer that
# accepts only High profile; H264 Constrained Baseline + Opus. aiortc -> whepsrc (VP8+Opus),
# whipsink -> aiortc (VP8+Opus), aiortc -> aiortc.
#
# usage: tests/interop/gst_lab.sh <path to wisp binary> <GST_PLUGIN_PATH> [aiortc python]
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
AIORTC=${3:-}

if [ "${WISP_IN_LAB:-}" != 1 ]; then
  exec unshare -n env WISP_IN_LAB=1 bash "$0" "$@"
fi

ip link set lo up
ip link add lab0 type veth peer name lab1
ip addr add 198.18.0.1/24 dev lab0
ip addr add 198.18.0.2/24 dev lab1
ip link set lab0 up
ip link set lab1 up

LOG=$(mktemp -d)
"$WISP" --listen 127.0.0.1:18080 --public-ip 198.18.0.1 --allow-remote 198.18.0.0/24 \
  --ice-ports 40000-40100 >"$LOG/wisp.log" 2>&1 &
WISP_PID=$!
cleanup() { kill -INT "$WISP_PID" 2>/dev/null || true; wait "$WISP_PID" 2>/dev/null || true; }
trap cleanup EXIT
# Wait for the server's listening line (bounded).
for _ in $(seq 1 100); do
  grep -q "wisp is running" "$LOG/wisp.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "wisp is running" "$LOG/wisp.log" || { cat "$LOG/wisp.log"; exit 1; }

AUDIO='audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! whip.sink_1'
fail=0
run_case() {
  if [ -n "${CASES:-}" ] && [[ " $CASES " != *" $1 "* ]]; then return; fi
  local name=$1 video=$2 caps=$3
  local room="lab-$name"
  echo "== $name"
  gst-launch-1.0 -q videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
    ! $video ! whip.sink_0 $AUDIO \
    whipsink name=whip whip-endpoint=http://127.0.0.1:18080/whip/$room >"$LOG/pub-$name.log" 2>&1 &
  local pub=$!
  local args=(--frames 30 --timeout 60)
  [ -n "$caps" ] && args+=(--video-caps "$caps")
  if /usr/bin/python3 "$HERE/whep_play.py" "http://127.0.0.1:18080/whep/$room" "${args[@]}"; then
    echo "ok   $name: whepsrc decoded frames published by whipsink"
  else
    echo "FAIL $name"; fail=1
    tail -20 "$LOG/pub-$name.log"
  fi
  kill -INT "$pub" 2>/dev/null || true
  wait "$pub" 2>/dev/null || true
}

run_case vp9 "vp9enc deadline=1 keyframe-max-dist=30 ! rtpvp9pay pt=98 ! application/x-rtp,media=video,encoding-name=VP9,payload=98,clock-rate=90000" ""
run_case vp8 "vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000" ""
# GStreamer 1.22's webrtcbin makes x264enc fall back to Constrained Baseline under whipsink even
# when High is asked for; the case still checks that a viewer accepting only High gets it.
run_case h264-to-high-viewer "x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast ! video/x-h264,profile=high ! rtph264pay pt=102 config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000" \
  "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)640028"
run_case h264-cb "x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast ! video/x-h264,profile=constrained-baseline ! rtph264pay pt=102 config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000" \
  "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)42e01f"

# aiortc cells: as publisher (VP8+Opus) to whepsrc and to aiortc, and as player of whipsink.
cell() { # name publisher-command player-command
  if [ -n "${CASES:-}" ] && [[ " $CASES " != *" $1 "* ]]; then return; fi
  echo "== $1"
  bash -c "$2" >"$LOG/pub-$1.log" 2>&1 &
  local pub=$!
  if bash -c "$3"; then echo "ok   $1: the player decoded frames"; else echo "FAIL $1"; fail=1; tail -20 "$LOG/pub-$1.log"; fi
  kill -INT "$pub" 2>/dev/null || true
  wait "$pub" 2>/dev/null || true
}
if [ -n "$AIORTC" ]; then
  W=http://127.0.0.1:18080
  GSTPUB="gst-launch-1.0 -q videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! whip.sink_0 $AUDIO whipsink name=whip whip-endpoint=$W/whip/lab-gst-aio"
  cell aiortc-to-whepsrc "$AIORTC $HERE/aiortc_client.py publish $W/whip/lab-aio-gst" \
    "/usr/bin/python3 $HERE/whep_play.py $W/whep/lab-aio-gst --frames 30 --timeout 60"
  cell whipsink-to-aiortc "$GSTPUB" "$AIORTC $HERE/aiortc_client.py play $W/whep/lab-gst-aio --frames 30 --timeout 60"
  cell aiortc-to-aiortc "$AIORTC $HERE/aiortc_client.py publish $W/whip/lab-aio-aio" \
    "$AIORTC $HERE/aiortc_client.py play $W/whep/lab-aio-aio --frames 30 --timeout 60"
else
  echo "SKIP (loudly): aiortc cells, no aiortc python given"
fi

# Chromium cells (Debian's chromium via playwright-core; the page publishes, /watch plays).
CELL="node $HERE/../browser/cell.mjs"
W=http://127.0.0.1:18080
GSTH264="gst-launch-1.0 -q videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast ! video/x-h264,profile=constrained-baseline ! rtph264pay pt=102 config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000 ! whip.sink_0 $AUDIO whipsink name=whip whip-endpoint=$W/whip/lab-gsth-chr"
GSTVP8="gst-launch-1.0 -q videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! whip.sink_0 $AUDIO whipsink name=whip whip-endpoint=$W/whip/lab-gst-chr"
cell whipsink-vp8-to-chromium "$GSTVP8" "$CELL play $W lab-gst-chr 30"
cell whipsink-h264-to-chromium "$GSTH264" "$CELL play $W lab-gsth-chr 30"
cell chromium-vp8-to-whepsrc "$CELL publish $W lab-chr-gst vp8" \
  "/usr/bin/python3 $HERE/whep_play.py $W/whep/lab-chr-gst --frames 30 --timeout 60"
cell chromium-h264-to-whepsrc "$CELL publish $W lab-chrh-gst h264" \
  "/usr/bin/python3 $HERE/whep_play.py $W/whep/lab-chrh-gst --frames 30 --timeout 60 --video-caps 'application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)42e01f'"
cell chromium-vp9-to-whepsrc "$CELL publish $W lab-chr9-gst vp9" \
  "/usr/bin/python3 $HERE/whep_play.py $W/whep/lab-chr9-gst --frames 30 --timeout 60"
cell chromium-av1-to-chromium "$CELL publish $W lab-chra-chr av1" "$CELL play $W lab-chra-chr 30"
if [ -n "$AIORTC" ]; then
  cell aiortc-to-chromium "$AIORTC $HERE/aiortc_client.py publish $W/whip/lab-aio-chr" "$CELL play $W lab-aio-chr 30"
  cell chromium-vp8-to-aiortc "$CELL publish $W lab-chr-aio vp8" \
    "$AIORTC $HERE/aiortc_client.py play $W/whep/lab-chr-aio --frames 30 --timeout 60"
fi

if [ "$fail" != 0 ]; then
  echo "--- wisp log"; tail -40 "$LOG/wisp.log"
  exit 1
fi
