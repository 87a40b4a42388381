#!/usr/bin/env bash
# Recording and LL-HLS with real tools in the lab (shared/DESIGN.md):
#  1. whipsink publishes H.264 + Opus made by ffmpeg (a white flash and a beep together every
#     second) for ~10 s into a recorded room, then stops: ffprobe finds both streams, ffmpeg
#     decodes it with no error, the tracks were aligned by the publisher's RTCP sender reports
#     and the flashes and beeps agree within 100 ms; a live source
#     published ~10 s gives a file whose duration is within 0.5 s of the publish time;
#  2. kill -9 of wisp mid-recording: the file decodes with no error up to its last fragment;
#  3. a VP8 publisher gives a WebM that decodes, with its duration;
#  4. HTTP: the room's listing, a byte range (206 + Content-Range), a range past the end
#     (416), a name outside the directory (404); Chromium's <video> plays a recording from
#     /recordings/… and seeks to its middle;
#  5. LL-HLS of a live H.264 broadcast: ffmpeg decodes >= 5 s of /hls/{room}/index.m3u8;
#     the playlist has parts, a preload hint and blocking reload, which waits for the next
#     part; parts are immutable in caches; Chromium with hls.js on /watch/{room}?hls=1
#     decodes frames and reports the publish-to-screen latency; a VP8 room is refused in words.
#
# usage: tests/interop/record_lab.sh <path to wisp binary> <GST_PLUGIN_PATH>
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)

# The source is made before the lab (ffmpeg needs nothing from outside, but keep the lab lean).
LOG=$(mktemp -d)
REC="$LOG/rec"
if [ "${WISP_IN_LAB:-}" != 1 ]; then
  ffmpeg -v error -y -f lavfi -i "color=black:s=320x240:r=30,drawbox=c=white:t=fill:enable='lt(mod(t\,1)\,0.1)'" \
    -f lavfi -i "sine=f=1000:r=48000,volume=enable='gte(mod(t\,1)\,0.1)':volume=0" -t 30 \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -bf 0 -pix_fmt yuv420p -profile:v baseline \
    -c:a libopus -b:a 64k -ac 2 /tmp/wisp-avsync-src.mkv
fi

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

W=http://127.0.0.1:18085
start_wisp() { lab_wisp "$LOG/wisp$1.log" 18085 43400-43500 --record-dir "$REC"; }
start_wisp 1
pids=()
# A publisher runs under `timeout`, so its pid is timeout's: a SIGKILL to timeout cannot be
# passed on, and orphaned the gst-launch under it (found still running, and spending CPU
# through the later labs, 40 minutes after a full run's record lab). Kill the children first.
kill_all() {
  for p in "$@"; do
    pkill -9 -P "$p" 2>/dev/null || true
    kill -9 "$p" 2>/dev/null || true
  done
}
cleanup() {
  kill_all "${pids[@]}"
  kill -INT "$WISP_PID" 2>/dev/null || true; wait "$WISP_PID" 2>/dev/null || true
}
trap cleanup EXIT
fail=0
check() { # what ok
  if [ "$2" = 1 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
newest() { ls -t "$REC/$1"/*."$2" 2>/dev/null | head -1; }
probe() { ffprobe -v error -show_entries "$2" -of default=nw=1:nk=1 "$1"; }

AUDIO_PAY='rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000'
H264_PAY='rtph264pay pt=102 config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000'
SRC='videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1'
SINE='audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc'
X264='x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast'
VP8='vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000'

echo "== 1: H.264 + Opus for ~10 s, recorded"
# clocksync paces the file as a live source would send it.
timeout -s INT -k 5 11 gst-launch-1.0 -q filesrc location=/tmp/wisp-avsync-src.mkv ! matroskademux name=d \
  d.video_0 ! queue ! clocksync ! h264parse ! $H264_PAY ! whip.sink_0 \
  d.audio_0 ! queue ! clocksync ! opusparse ! $AUDIO_PAY ! whip.sink_1 \
  whipsink name=whip whip-endpoint=$W/whip/rec >"$LOG/pub1.log" 2>&1 || true
for _ in $(seq 1 100); do grep -q "recording ended" "$LOG/wisp1.log" && break; sleep 0.1; done
F=$(newest rec mp4)
check "a file named <room>/<name>-<UTC start>.mp4 ($F)" "$([[ "$F" =~ /rec/guest-[0-9]{8}T[0-9]{6}Z\.mp4$ ]] && echo 1)"
streams=$(probe "$F" stream=codec_name | sort | tr '\n' ' ')
check "ffprobe finds H.264 and Opus ($streams)" "$([ "$streams" = "h264 opus " ] && echo 1)"
dur=$(probe "$F" format=duration)
errs=$(ffmpeg -v error -i "$F" -f null - 2>&1 | head -5)
check "ffmpeg decodes it with no error${errs:+: $errs}" "$([ -z "$errs" ] && echo 1)"
check "audio and video were put on the publisher's clock by its RTCP sender reports" \
  "$(grep -q "aligned by the publisher's sender reports.*/rec/rec/" "$LOG/wisp1.log" && echo 1)"
out=$(python3 "$HERE/avsync.py" "$F" --max-ms 100 --min-pairs 5 2>&1) && ok=1 || ok=0
echo "$out" | sed 's/^/     /'
check "audio and video agree within 100 ms" "$ok"

echo "== 1b: a live H.264 + Opus source for ~10 s: the file's duration is the publish time"
# Publish time: the publisher's own run (GStreamer's live sources capture from its start, and
# what they capture before ICE connects is sent, late, at once), from its start to its exit;
# its teardown after the SIGINT at 11 s still sends what the pipeline holds (a file of 11.5 s
# was seen). When the teardown hangs until the KILL (seen once on a busy runner), it sends no
# more media: the publish time is then the 11 s to the SIGINT. The wait for the server's end
# of the recording is not publish time.
t0=$(date +%s.%N)
rc=0
timeout -s INT -k 5 11 gst-launch-1.0 -q $SRC ! $X264 ! $H264_PAY ! whip.sink_0 $SINE ! $AUDIO_PAY ! whip.sink_1 \
  whipsink name=whip whip-endpoint=$W/whip/live10 >"$LOG/pub1b.log" 2>&1 || rc=$?
t1=$(date +%s.%N)
[ "$rc" = 137 ] && echo "     the publisher did not exit on SIGINT and was killed 5 s later"
for _ in $(seq 1 400); do [ "$(grep -c "recording ended" "$LOG/wisp1.log")" = 2 ] && break; sleep 0.1; done
check "the server ended the live recording" "$([ "$(grep -c "recording ended" "$LOG/wisp1.log")" = 2 ] && echo 1)"
F=$(newest live10 mp4)
dur=$(probe "$F" format=duration)
pubtime=$(echo "$t1 - $t0" | bc -l)
[ "$rc" = 137 ] && pubtime=11
echo "     publisher ran $(echo "$t1 - $t0" | bc -l | cut -c1-5) s (exit $rc); streams' durations: $(probe "$F" stream=codec_name,duration | paste -sd' ')"
check "its duration ${dur} s is within 0.5 s of the publish time ${pubtime} s" \
  "$(echo "d = $dur - $pubtime; if (d < 0) d = -d; d < 0.5" | bc -l)"

echo "== 2: kill -9 of wisp mid-recording"
timeout -s INT -k 5 30 gst-launch-1.0 -q $SRC ! $X264 ! $H264_PAY ! whip.sink_0 $SINE ! $AUDIO_PAY ! whip.sink_1 \
  whipsink name=whip whip-endpoint=$W/whip/crash >"$LOG/pub2.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do grep -q "recording to.*crash" "$LOG/wisp1.log" && break; sleep 0.1; done
sleep 5
kill -9 "$WISP_PID"; wait "$WISP_PID" 2>/dev/null || true
kill_all "${pids[@]}"; pids=()
F=$(newest crash mp4)
errs=$(ffmpeg -v error -i "$F" -f null - 2>&1 | head -5)
dur=$(probe "$F" format=duration)
check "the killed recording ($dur s) decodes with no error${errs:+: $errs}" \
  "$([ -z "$errs" ] && echo "$dur > 4" | bc -l)"
start_wisp 2

echo "== 3: VP8 + Opus to WebM"
rc=0
timeout -s INT -k 5 7 gst-launch-1.0 -q $SRC ! $VP8 ! whip.sink_0 $SINE ! $AUDIO_PAY ! whip.sink_1 \
  whipsink name=whip whip-endpoint=$W/whip/vp8 >"$LOG/pub3.log" 2>&1 || rc=$?
for _ in $(seq 1 100); do grep -q "recording ended" "$LOG/wisp2.log" && break; sleep 0.1; done
F=$(newest vp8 webm)
streams=$(probe "$F" stream=codec_name | sort | tr '\n' ' ')
dur=$(probe "$F" format=duration)
# A publisher killed after a hung teardown sent no DELETE: its session (and the recording) is
# still open for the reconnect grace, and a WebM's duration is written when it ends. Its
# length so far is then its last packet's time (seen once in a full run: "N/A s").
if [ "$dur" = N/A ]; then
  [ "$rc" = 137 ] && echo "     the publisher did not exit on SIGINT and was killed 5 s later; the recording is still open"
  dur=$(ffprobe -v error -show_entries packet=pts_time -of csv=p=0 "$F" | sort -g | tail -1)
fi
errs=$(ffmpeg -v error -i "$F" -f null - 2>&1 | head -5)
check "a WebM of VP8 and Opus ($streams, $dur s) that decodes${errs:+: $errs}" \
  "$([ "$streams" = "opus vp8 " ] && [ -z "$errs" ] && echo "$dur > 4" | bc -l)"

echo "== 4: HTTP"
list=$(curl -s "$W/api/rooms/rec/recordings")
url=$(echo "$list" | python3 -c 'import json,sys; print(json.load(sys.stdin)["recordings"][0]["url"])')
check "the room's listing names the file ($url)" "$([[ "$url" == /recordings/rec/guest-*.mp4 ]] && echo 1)"
h=$(curl -s -D - -o "$LOG/range.bin" -r 100-199 "$W$url" | tr -d '\r')
check "a byte range is 206 with Content-Range and 100 bytes" \
  "$(echo "$h" | grep -q '^HTTP/1.1 206' && echo "$h" | grep -q '^content-range: bytes 100-199/' && [ "$(stat -c %s "$LOG/range.bin")" = 100 ] && echo 1)"
code=$(curl -s -o /dev/null -w '%{http_code}' -r 999999999- "$W$url")
check "a range past the end is 416 ($code)" "$([ "$code" = 416 ] && echo 1)"
code=$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$W/recordings/rec/..%2F..%2Fetc%2Fpasswd")
check "a name outside the recordings is 404 ($code)" "$([ "$code" = 404 ] && echo 1)"
out=$(node "$HERE/../browser/media.mjs" file "$W" "$url" 2>&1) && ok=1 || ok=0
echo "$out" | sed 's/^/     /'
check "Chromium's <video> plays the recording and seeks" "$ok"

echo "== 5: LL-HLS"
gst-launch-1.0 -q $SRC ! $X264 ! $H264_PAY ! whip.sink_0 $SINE ! $AUDIO_PAY ! whip.sink_1 \
  whipsink name=whip whip-endpoint=$W/whip/live >"$LOG/pub5.log" 2>&1 &
pids+=($!)
/usr/bin/python3 "$HERE/wait_publisher.py" "$W" live --timeout 60
n=$(timeout 60 ffmpeg -v error -i "$W/hls/live/index.m3u8" -t 6 -map 0:v -f framecrc - 2>"$LOG/ff-hls.err" | grep -c '^0,' || true)
check "ffmpeg decodes $n video frames (>= 150: 5 s) from /hls/live/index.m3u8$(head -c 300 "$LOG/ff-hls.err")" \
  "$([ "$n" -ge 150 ] && echo 1)"
pl=$(curl -s "$W/hls/live/index.m3u8")
check "the playlist is LL-HLS (parts, preload hint, blocking reload)" \
  "$(echo "$pl" | grep -q '^#EXT-X-PART:DURATION=' && echo "$pl" | grep -q '^#EXT-X-PRELOAD-HINT:TYPE=PART' && echo "$pl" | grep -q 'CAN-BLOCK-RELOAD=YES' && echo 1)"
# The hinted part: the next one. A blocking reload for it waits until it exists.
hint=$(echo "$pl" | sed -nE 's/^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/\1/p')
msn=$(echo "$hint" | sed -E 's/^[0-9a-f]+-([0-9]+)\.([0-9]+)\.m4s$/\1/'); part=$(echo "$hint" | sed -E 's/^[0-9a-f]+-([0-9]+)\.([0-9]+)\.m4s$/\2/')
t=$(curl -s -o "$LOG/pl-block.txt" -w '%{time_total}' "$W/hls/live/index.m3u8?_HLS_msn=$msn&_HLS_part=$part")
check "a blocking reload for part $msn.$part waited ${t} s and lists it" \
  "$(grep -q "URI=\"$hint\"" "$LOG/pl-block.txt" && ! grep -q "PRELOAD-HINT.*$hint" "$LOG/pl-block.txt" && echo 1)"
h=$(curl -s -D - -o "$LOG/part.bin" "$W/hls/live/$hint" | tr -d '\r')
check "the part is served ($(stat -c %s "$LOG/part.bin") bytes), immutable in caches" \
  "$(echo "$h" | grep -qi '^cache-control: public, max-age=31536000, immutable' && [ "$(stat -c %s "$LOG/part.bin")" -gt 100 ] && echo 1)"
out=$(node "$HERE/../browser/media.mjs" hls "$W" live 60 2>&1) && ok=1 || ok=0
echo "$out" | sed 's/^/     /'
check "Chromium with hls.js on /watch/live?hls=1 decodes frames" "$ok"
gst-launch-1.0 -q $SRC ! $VP8 ! whip.sink_0 whipsink name=whip whip-endpoint=$W/whip/vp8live >"$LOG/pub6.log" 2>&1 &
pids+=($!)
/usr/bin/python3 "$HERE/wait_publisher.py" "$W" vp8live --timeout 60
body=$(curl -s -w ' %{http_code}' "$W/hls/vp8live/index.m3u8")
check "a VP8 room over HLS is refused in words ($body)" "$([[ "$body" == *"VP8"*"H.264"*" 422" ]] && echo 1)"

if [ "$fail" != 0 ]; then
  echo "--- wisp logs"; tail -n 30 "$LOG"/wisp*.log
fi
exit $fail
