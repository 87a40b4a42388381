#!/usr/bin/env bash
# Operating wisp with a real publisher (GStreamer whipsink) in the lab (shared/DESIGN.md):
#  0. while its media flows, a live /metrics scrape passes `promtool check metrics` and counts
#     the publisher's packets;
# then SIGTERM drains:
#  1. the publisher stays: /readyz answers 503 + Retry-After, a new WHIP POST too, /healthz 200;
#     wisp ends the session at --drain-timeout and exits 0;
#  2. the publisher leaves during the drain (SIGINT: whipsink DELETEs): wisp exits 0 then,
#     long before its 60 s drain timeout;
#  3. a second SIGTERM exits at once.
# usage: tests/interop/drain_lab.sh <wisp binary> <GST_PLUGIN_PATH>
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
W=http://127.0.0.1:18082
fail=0
PUB='videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! whip.sink_0 whipsink name=whip'

start_wisp() { # drain-timeout
  lab_wisp "$LOG/wisp.log" 18082 42000-42100 --drain-timeout "$1"
}
publish() { # room
  gst-launch-1.0 -q $PUB whip-endpoint=$W/whip/$1 >"$LOG/pub.log" 2>&1 &
  GST_PID=$!
  /usr/bin/python3 "$HERE/wait_publisher.py" "$W" "$1" --timeout 60 >/dev/null
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# Waits (bounded) for wisp to exit; sets `code` to its exit code, or "running".
wait_exit() { # seconds
  code=running
  for _ in $(seq 1 $(($1 * 10))); do
    if ! kill -0 "$WISP_PID" 2>/dev/null; then
      code=0; wait "$WISP_PID" || code=$?
      return
    fi
    sleep 0.1
  done
}
check() { # what ok
  if [ "$2" = 1 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

echo "== 1: the publisher stays; wisp ends it at the drain timeout"
start_wisp 3
publish drain1
curl -s $W/metrics >"$LOG/metrics.txt"
check "a live scrape passes promtool check metrics" "$(promtool check metrics <"$LOG/metrics.txt" >/dev/null 2>&1 && echo 1)"
check "the scrape counts the publisher's video packets" "$(awk '$1 == "wisp_packets_in_total{kind=\"video\"}" && $2 > 0 { ok = 1 } END { if (ok) print 1 }' "$LOG/metrics.txt")"
check "the scrape counts one publisher session" "$(grep -qx 'wisp_sessions{kind="publisher"} 1' "$LOG/metrics.txt" && echo 1)"
kill -TERM "$WISP_PID"
for _ in $(seq 1 50); do grep -q "draining" "$LOG/wisp.log" && break; sleep 0.1; done
check "/healthz 200 while draining" "$([ "$(status $W/healthz)" = 200 ] && echo 1)"
hdrs=$(curl -s -D - -o /dev/null $W/readyz)
check "/readyz 503 with Retry-After while draining" "$(echo "$hdrs" | grep -q '^HTTP/1.1 503' && echo "$hdrs" | grep -qi '^retry-after:' && echo 1)"
check "a new WHIP POST is refused with 503" "$([ "$(status -X POST -H 'content-type: application/sdp' --data-binary @"$HERE/../../conformance/fixtures/whip-offer.sdp" $W/whip/other)" = 503 ] && echo 1)"
wait_exit 20
check "wisp exits 0 after the drain timeout with the publisher still there (exit: $code)" "$([ "$code" = 0 ] && echo 1)"
kill -INT "$GST_PID" 2>/dev/null || true; wait "$GST_PID" 2>/dev/null || true

echo "== 2: the publisher leaves during the drain; wisp exits then"
start_wisp 60
publish drain2
kill -TERM "$WISP_PID"
for _ in $(seq 1 50); do grep -q "draining" "$LOG/wisp.log" && break; sleep 0.1; done
kill -INT "$GST_PID"; wait "$GST_PID" 2>/dev/null || true
wait_exit 20
check "wisp exits 0 once its last session ended, not at its 60 s timeout (exit: $code)" "$([ "$code" = 0 ] && echo 1)"

echo "== 3: a second SIGTERM exits at once"
start_wisp 60
publish drain3
kill -TERM "$WISP_PID"
for _ in $(seq 1 50); do grep -q "draining" "$LOG/wisp.log" && break; sleep 0.1; done
kill -TERM "$WISP_PID"
wait_exit 20
check "wisp exits at the second SIGTERM (exit: $code)" "$([ "$code" = 0 ] && echo 1)"
kill -INT "$GST_PID" 2>/dev/null || true; wait "$GST_PID" 2>/dev/null || true

if [ "$fail" != 0 ]; then tail -30 "$LOG/wisp.log"; exit 1; fi
