#!/usr/bin/env bash
# The admin API against its OpenAPI document (src/http/openapi.json), with schemathesis (PyPI)
# as the contract tester, while real media flows: in the lab (shared/DESIGN.md) a GStreamer
# whipsink publishes into room "demo" and whepsrc plays it, so GET /api/rooms/{room} answers
# with participants, tracks, legs and their statistics, not only 404s. schemathesis checks every
# response against the document (status codes, content types, schemas with no extra fields,
# 401 without the token, 405 + Allow for other methods, 404 after a DELETE), then follows the
# document's links (list → room → kick, close) statefully.
# usage: tests/interop/api_contract.sh <wisp binary> <GST_PLUGIN_PATH> <schemathesis binary>
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
ST=$(realpath "$3")
HERE=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
W=http://127.0.0.1:18086
lab_wisp "$LOG/wisp.log" 18086 43200-43300 --token contract-secret --record-dir "$LOG/rec"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  kill -INT "$WISP_PID" 2>/dev/null || true; wait 2>/dev/null || true
}
trap cleanup EXIT

gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 \
  ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! whip.sink_0 \
  audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 \
  ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! whip.sink_1 \
  whipsink name=whip whip-endpoint=$W/whip/demo auth-token=contract-secret >"$LOG/pub.log" 2>&1 &
pids+=($!)
/usr/bin/python3 "$HERE/wait_publisher.py" $W demo --timeout 60 --token contract-secret
/usr/bin/python3 "$HERE/whep_play.py" $W/whep/demo --frames 100000 --timeout 120 --token contract-secret \
  >"$LOG/play.log" 2>&1 &
pids+=($!)
# The player is in the room (bounded wait on the API itself).
for _ in $(seq 1 100); do
  curl -s -H 'Authorization: Bearer contract-secret' $W/api/rooms | grep -q '"viewers":1' && break
  sleep 0.1
done
curl -s -H 'Authorization: Bearer contract-secret' $W/api/rooms/demo | head -c 600; echo

# Reads first, while everyone is there; then everything, DELETEs included. (schemathesis keeps
# a cache in its working directory: keep it out of the tree.)
cd "$LOG"
"$ST" run "$W/api/openapi.json" -H "Authorization: Bearer contract-secret" --checks all \
  --include-method GET --max-examples 40 -w 1 --phases examples,coverage,fuzzing \
  --suppress-health-check too_slow
"$ST" run "$W/api/openapi.json" -H "Authorization: Bearer contract-secret" --checks all \
  --max-examples 40 -w 1 --suppress-health-check too_slow
grep -E "kicked|closed by|publisher left|viewer left" "$LOG/wisp.log" | sed "s/^/     /" | cut -c1-200 || true
echo "ok   the admin API matches its OpenAPI document (schemathesis, all checks)"
