#!/usr/bin/env bash
# Cluster mode with real parts in the lab (shared/DESIGN.md): a real redis-server and three
# wisp nodes (A, B, C) in one private namespace, GStreamer whipsink and whepsrc as clients.
#  1. whipsink publishes to node C for a new room: it follows the 307 to the room's owner;
#     a plain curl POST to a non-owner answers 307 with the owner's URL, and libcurl set as
#     OBS sets it follows that to a 201;
#  2. whepsrc players on the two other nodes decode through the cascade (each node pulls the
#     room once), and the owner's room events count both players;
#  3. kill -9 of the owner: the publisher comes back (a new whipsink, retrying as OBS does,
#     to a surviving node) and both players decode again within 15 s, on the same sessions.
# usage: tests/interop/cluster_lab.sh <wisp binary> <GST_PLUGIN_PATH>
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
echo "logs: $LOG"
fail=0
# How many lines of node $1's log (colours removed) match $2. (No `grep -q` in a pipe: under
# pipefail its early exit fails the pipeline.)
logged() { sed 's/\x1b\[[0-9;]*m//g' "$LOG/wisp-$1.log" | grep -c "$2" || true; }
check() { # what ok
  if [ "$2" = 1 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
declare -A PID URL
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port 16379 --save "" --appendonly no >"$LOG/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do grep -q "Ready to accept connections" "$LOG/redis.log" && break; sleep 0.1; done

port=18090
ice=43000
for n in a b c; do
  URL[$n]=http://127.0.0.1:$port
  lab_wisp "$LOG/wisp-$n.log" $port $ice-$((ice + 99)) \
    --cluster-redis redis://127.0.0.1:16379 --node-url "${URL[$n]}" --node-id $n
  PID[$n]=$WISP_PID
  PIDS+=("$WISP_PID")
  port=$((port + 1))
  ice=$((ice + 100))
done
# Each node is in the directory once its first heartbeat ran.
for _ in $(seq 1 50); do
  [ "$(redis-cli -p 16379 scard wisp:nodes)" = 3 ] && break
  sleep 0.1
done
check "three nodes registered" "$([ "$(redis-cli -p 16379 scard wisp:nodes)" = 3 ] && echo 1)"

SRC='videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! whip.sink_0'
AUDIO='audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! whip.sink_1'
publish() { # node -> sets PUB
  gst-launch-1.0 -q $SRC $AUDIO whipsink name=whip whip-endpoint="${URL[$1]}/whip/show" \
    >>"$LOG/pub.log" 2>&1 &
  PUB=$!
  PIDS+=("$PUB")
}
owner() { redis-cli -p 16379 get wisp:room:show; }

echo "== 1: whipsink to node C follows the 307 to the owner"
publish c
/usr/bin/python3 "$HERE/wait_publisher.py" "${URL[c]}" show --timeout 30 >/dev/null \
  || check "the publisher's video flows" 0
O=$(owner)
check "the room has an owner ($O)" "$([ -n "$O" ] && echo 1)"
others=()
for n in a b c; do [ "$n" != "$O" ] && others+=("$n"); done
E1=${others[0]}
E2=${others[1]}
hdrs=$(curl -s -D - -o /dev/null -X POST -H 'content-type: application/sdp' \
  --data-binary @"$HERE/../../conformance/fixtures/whip-offer.sdp" "${URL[$E1]}/whip/show?name=x")
check "a WHIP POST to node $E1 answers 307 to the owner $O" \
  "$(echo "$hdrs" | grep -q '^HTTP/1.1 307' && echo "$hdrs" | grep -qi "^location: ${URL[$O]}/whip/show?name=x" && echo 1)"
# OBS's WHIP output (obs-webrtc whip-output.cpp) POSTs through libcurl with FOLLOWLOCATION
# and UNRESTRICTED_AUTH: curl's -L --location-trusted are those options.
obs=$(curl -s -L --location-trusted -D - -o /dev/null -H 'content-type: application/sdp' \
  -H 'authorization: Bearer x' --data-binary @"$HERE/../../conformance/fixtures/whip-offer.sdp" \
  "${URL[$E1]}/whip/show?name=obs-like")
check "libcurl as OBS sets it follows the 307 to a 201 on the owner" \
  "$(echo "$obs" | grep -q '^HTTP/1.1 201' && echo "$obs" | grep -qi "^location: ${URL[$O]}/" && echo 1)"
loc=$(echo "$obs" | grep -i '^location:' | tail -1 | tr -d '\r' | cut -d' ' -f2)
[ -n "$loc" ] && curl -s -o /dev/null -X DELETE "$loc"
check "the publisher lives on the owner" "$([ "$(logged "$O" "publisher joined room=show")" -ge 1 ] && echo 1)"

echo "== 1b: Chromium: the conference page on node $E1 joins a room owned by $O (its fetch follows the 307s)"
# The room is given to the owner first, so the page's WHIP and ?self= WHEP POSTs are redirected
# across origins (another port); the watch page on node $E2 plays it through the cascade.
redis-cli -p 16379 set wisp:room:page "$O" px 60000 >/dev/null
node "$HERE/../browser/cell.mjs" publish "${URL[$E1]}" page >"$LOG/page-pub.log" 2>&1 &
PAGE=$!
PIDS+=("$PAGE")
for _ in $(seq 1 300); do
  grep -q "chromium publishes" "$LOG/page-pub.log" && break
  kill -0 "$PAGE" 2>/dev/null || break
  sleep 0.1
done
check "the page on node $E1 publishes through the 307 ($(head -1 "$LOG/page-pub.log"))" \
  "$(grep -q "chromium publishes" "$LOG/page-pub.log" && [ "$(logged "$O" "publisher joined room=page")" -ge 1 ] && echo 1)"
rc=0
node "$HERE/../browser/cell.mjs" play "${URL[$E2]}" page 30 >"$LOG/page-play.log" 2>&1 || rc=$?
check "/watch on node $E2 plays it through the cascade ($(tail -1 "$LOG/page-play.log"))" \
  "$([ "$rc" = 0 ] && [ "$(logged "$E2" "mirror joined room=page")" -ge 1 ] && echo 1)"
kill -INT "$PAGE" 2>/dev/null || true
wait "$PAGE" 2>/dev/null || true

echo "== 2: whepsrc on nodes $E1 and $E2 decode through the cascade"
for n in "$E1" "$E2"; do
  /usr/bin/python3 "$HERE/whep_play.py" "${URL[$n]}/whep/show" --frames 30 --timeout 120 \
    --progress "$LOG/frames-$n" >"$LOG/play-$n.log" 2>&1 &
  PID[play-$n]=$!
  PIDS+=("$!")
done
frames() { cat "$LOG/frames-$1" 2>/dev/null || echo 0; }
for _ in $(seq 1 300); do
  [ "$(frames "$E1")" -ge 30 ] && [ "$(frames "$E2")" -ge 30 ] && break
  sleep 0.1
done
check "node $E1's player decodes ($(frames "$E1") frames)" "$([ "$(frames "$E1")" -ge 30 ] && echo 1)"
check "node $E2's player decodes ($(frames "$E2") frames)" "$([ "$(frames "$E2")" -ge 30 ] && echo 1)"
# The owner's WHEP sessions are the edges' upstreams: one per edge, however many players.
upstreams=$(curl -s "${URL[$O]}/api/rooms/show" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["viewers"]))')
check "the owner serves one upstream per edge ($upstreams for 2 edges)" "$([ "$upstreams" = 2 ] && echo 1)"
count=$(timeout 15 curl -sN "${URL[$O]}/rooms/show/events" 2>/dev/null \
  | grep --line-buffered -m1 '"viewercount":2' || true)
check "the owner's room events count both edges' players: $count" "$([ -n "$count" ] && echo 1)"

echo "== 3: kill -9 of the owner $O; the publisher comes back on a surviving node"
kill -9 "${PID[$O]}"
killed=$SECONDS
kill -9 "$PUB" 2>/dev/null || true
before1=$(frames "$E1")
before2=$(frames "$E2")
# A publisher that lost its server POSTs again (OBS does, every few seconds); a new whipsink
# each second stands in for it, to the first surviving node, until one stays up.
while [ $((SECONDS - killed)) -lt 15 ]; do
  publish "$E1"
  sleep 1
  joined=$(($(logged "$E1" "publisher joined room=show") + $(logged "$E2" "publisher joined room=show")))
  kill -0 "$PUB" 2>/dev/null && [ "$joined" -ge 1 ] && break
  kill -9 "$PUB" 2>/dev/null || true
done
echo "   the publisher is back after $((SECONDS - killed)) s (owner now: $(owner))"
for _ in $(seq 1 150); do
  [ "$(frames "$E1")" -ge $((before1 + 30)) ] && [ "$(frames "$E2")" -ge $((before2 + 30)) ] && break
  [ $((SECONDS - killed)) -ge 15 ] && break
  sleep 0.1
done
took=$((SECONDS - killed))
check "node $E1's player decodes again ($before1 -> $(frames "$E1") frames, ${took} s after the kill)" \
  "$([ "$(frames "$E1")" -ge $((before1 + 30)) ] && [ $took -le 15 ] && echo 1)"
check "node $E2's player decodes again ($before2 -> $(frames "$E2") frames, ${took} s after the kill)" \
  "$([ "$(frames "$E2")" -ge $((before2 + 30)) ] && [ $took -le 15 ] && echo 1)"
for n in "$E1" "$E2"; do kill -INT "${PID[play-$n]}" 2>/dev/null || true; done
for n in "$E1" "$E2"; do wait "${PID[play-$n]}" 2>/dev/null || true; done

if [ "$fail" != 0 ]; then
  # The most telling lines last: a CI excerpt keeps a section's head and tail. The owner's kill
  # floods the edges' logs with "lost its origin" retries, which say nothing new.
  for n in a b c; do echo "--- wisp $n"; tail -25 "$LOG/wisp-$n.log"; done
  for n in a b c; do
    echo "--- wisp $n: sessions, mirrors and cascades"
    sed 's/\x1b\[[0-9;]*m//g' "$LOG/wisp-$n.log" | grep -E "wisp::(sfu|cluster)" \
      | grep -v "lost its origin" | cut -c1-200 | tail -12 || true
  done
  for n in "$E1" "$E2"; do echo "--- player on $n"; tail -5 "$LOG/play-$n.log"; done
  echo "--- /watch on $E2"; tail -5 "$LOG/page-play.log"
  exit 1
fi
echo "cluster lab: all checks passed"
