#!/usr/bin/env bash
# Scoped tokens with real clients in the lab (shared/DESIGN.md). wisp runs with --jwt-secret and
# --jwt-issuer; every token comes from `wisp token` with the same flags.
#  1. GStreamer whipsink publishes with a publish token for room "tok" (auth-token); the room's
#     roster shows the token's name; whepsrc plays with a subscribe token and decodes frames;
#  2. whepsrc with a subscribe token for another room is refused (403) and decodes nothing;
#     whipsink with a subscribe token is refused and no second publisher appears;
#  3. Chromium: /watch/tok#token=<subscribe token> decodes frames; the conference page opened
#     from an invite link /?room=tok2&autojoin#token=<publish token named "Zoë Page"> joins
#     under that name (the fragment is never sent to the server);
#  4. publisher reconnect: whipsink with a named token is killed (-9, no DELETE) and started
#     again with the same token; it takes over its participant: the whepsrc player that was
#     watching keeps its session and its slot and gets the new session's video, and the room
#     never says the publisher left or joined.
# usage: tests/interop/auth_lab.sh <wisp binary> <GST_PLUGIN_PATH>
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
W=http://127.0.0.1:18084
JWT=(--jwt-secret lab-secret-0123456789 --jwt-issuer wisp-lab)
fail=0
check() { # what ok
  if [ "$2" = 1 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
token() { "$WISP" "${JWT[@]}" token "$@"; }

lab_wisp "$LOG/wisp.log" 18084 43000-43100 "${JWT[@]}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  kill -INT "$WISP_PID" 2>/dev/null || true; wait 2>/dev/null || true
}
trap cleanup EXIT

PUB=$(token --room tok --role publish --name "gst publisher" --ttl 10m)
SUB=$(token --room tok --role subscribe --ttl 10m)
OTHER=$(token --room elsewhere --role subscribe --ttl 10m)
VP8='videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! whip.sink_0 audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! whip.sink_1 whipsink name=whip'

echo "== 1: whipsink with a publish token, whepsrc with a subscribe token"
gst-launch-1.0 -q $VP8 whip-endpoint=$W/whip/tok auth-token="$PUB" >"$LOG/pub.log" 2>&1 &
pids+=($!)
seen=$(/usr/bin/python3 "$HERE/wait_publisher.py" $W tok --timeout 60 --token "$SUB" || true)
echo "     $seen"
check "whipsink publishes with its token, under the token's name" "$([[ "$seen" == *"(roster: gst publisher)"* ]] && echo 1)"
out=$(/usr/bin/python3 "$HERE/whep_play.py" $W/whep/tok --frames 30 --timeout 60 --token "$SUB" 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/     /'
check "whepsrc with a subscribe token decodes frames" "$([ "$rc" = 0 ] && echo 1)"

echo "== 2: the wrong room or role is refused"
out=$(/usr/bin/python3 "$HERE/whep_play.py" $W/whep/tok --frames 1 --timeout 20 --token "$OTHER" 2>&1) && rc=0 || rc=$?
echo "$out" | tail -2 | sed 's/^/     /'
check "whepsrc with another room's token gets 403 and no frames" "$([ "$rc" != 0 ] && [[ "$out" == *403* ]] && [[ "$out" == *"decoded video frames: 0"* ]] && echo 1)"
timeout 30 gst-launch-1.0 -q $VP8 whip-endpoint=$W/whip/tok auth-token="$SUB" >"$LOG/pub2.log" 2>&1 && rc=0 || rc=$?
check "whipsink with a subscribe token is refused (exit $rc)" "$([ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q 403 "$LOG/pub2.log" && echo 1)"
sessions=$(curl -s -H "Authorization: Bearer $(token --room '*' --role admin)" $W/metrics | awk '$1 == "wisp_sessions{kind=\"publisher\"}" { print $2 }')
check "still one publisher session (found ${sessions:-none})" "$([ "$sessions" = 1 ] && echo 1)"

echo "== 3: Chromium with tokens in the URL fragment"
out=$(TOKEN="$SUB" node "$HERE/../browser/cell.mjs" play $W tok 30 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/     /'
check "/watch/tok#token=… decodes frames" "$([ "$rc" = 0 ] && echo 1)"
INVITE=$(token --room tok2 --role publish --name "Zoë Page" --ttl 10m)
TOKEN="$INVITE" node "$HERE/../browser/cell.mjs" publish $W tok2 >"$LOG/page.log" 2>&1 &
pids+=($!)
seen=$(/usr/bin/python3 "$HERE/wait_publisher.py" $W tok2 --timeout 60 --token "$(token --room tok2 --role subscribe)" || true)
echo "     $seen"
check "the page joins from an invite link under the token's name" "$([[ "$seen" == *"(roster: Zoë Page)"* ]] && echo 1)"
check "no token appears in wisp's log" "$(! grep -qF -e "$PUB" -e "$SUB" -e "$INVITE" "$LOG/wisp.log" && echo 1)"

echo "== 4: whipsink killed and restarted with the same named token keeps its place"
CAM=$(token --room rc --role publish --name cam1 --ttl 10m)
ADMIN=$(token --room '*' --role admin --ttl 10m)
gst-launch-1.0 -q $VP8 whip-endpoint=$W/whip/rc auth-token="$CAM" >"$LOG/cam1.log" 2>&1 &
CAM_PID=$!
pids+=($CAM_PID)
/usr/bin/python3 "$HERE/wait_publisher.py" $W rc --timeout 60 --token "$ADMIN" >/dev/null
/usr/bin/python3 "$HERE/whep_play.py" $W/whep/rc --frames 1000000 --timeout 120 --token "$ADMIN" \
  >"$LOG/rc-play.log" 2>&1 &
PLAYER=$!
pids+=($PLAYER)
curl -s -N -H "Authorization: Bearer $ADMIN" $W/rooms/rc/events >"$LOG/rc-events.log" 2>&1 &
pids+=($!)
# The player's video slot, from the admin API: "<participant> <publisher session> <packets>".
slot() {
  curl -s -H "Authorization: Bearer $ADMIN" $W/api/rooms/rc | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
pub = {p["id"]: p["session"] for p in d["participants"]}
for v in d["viewers"]:
    for s in v["slots"]:
        if s["kind"] == "video" and s["shows"] and s["stats"]:
            print(s["shows"], pub.get(s["shows"]), s["stats"]["packets"], v["session"]); sys.exit()
print("- - 0 -")'
}
before=(- - 0 -)
for _ in $(seq 1 200); do
  read -r -a before <<<"$(slot)"
  [ "${before[2]}" -gt 50 ] && break
  sleep 0.1
done
echo "     before: participant ${before[0]}, publisher session ${before[1]}, ${before[2]} packets to the player"
kill -9 "$CAM_PID"
gst-launch-1.0 -q $VP8 whip-endpoint=$W/whip/rc auth-token="$CAM" >"$LOG/cam1b.log" 2>&1 &
pids+=($!)
after=(- - 0 -)
for _ in $(seq 1 300); do
  read -r -a after <<<"$(slot)"
  [ "${after[1]}" != "${before[1]}" ] && [ "${after[2]}" -gt $((before[2] + 100)) ] && break
  sleep 0.1
done
echo "     after:  participant ${after[0]}, publisher session ${after[1]}, ${after[2]} packets to the player"
check "the restarted publisher took over its participant (same id, new session)" "$([ "${after[0]}" = "${before[0]}" ] && [ "${after[1]}" != "${before[1]}" ] && echo 1)"
check "the player kept its session and slot and gets the new session's video" "$([ "${after[3]}" = "${before[3]}" ] && [ "${after[2]}" -gt $((before[2] + 100)) ] && kill -0 "$PLAYER" 2>/dev/null && echo 1)"
check "the room never said the publisher left or joined" "$(! grep -qE '^event: (left|joined)' "$LOG/rc-events.log" && grep -q '^event: roster' "$LOG/rc-events.log" && echo 1)"
grep -E "came back|taken over" "$LOG/wisp.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/     /' | cut -c1-160

if [ "$fail" != 0 ]; then
  echo "--- wisp log"; tail -30 "$LOG/wisp.log"
  echo "--- page"; tail -10 "$LOG/page.log"
  exit 1
fi
