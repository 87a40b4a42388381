#!/usr/bin/env bash
# Real-client interop in the lab (shared/DESIGN.md): every publisher x every player through
# wisp, inside a private network namespace with no route out. A cell either decodes frames on
# the player, or - where the player cannot decode the publisher's codec - checks that the
# player was told so in words (a WHEP 406 counter-offer whose reason the client prints, exit
# code 3, no media received).
#
# Publishers: whipsink (GStreamer) VP8, VP9, H.264 from x264 asked for High, H.264
# Constrained Baseline, all with Opus; aiortc VP8 + Opus; the Chromium conference page with
# VP8, H.264, VP9, AV1 (+ Opus). Players: whepsrc (decodebin), aiortc, Chromium /watch.
# Cell names are <publisher>-to-<player>; CASES="name1 name2" runs only those.
#
# usage: tests/interop/gst_lab.sh <path to wisp binary> <GST_PLUGIN_PATH> [aiortc python]
set -euo pipefail
WISP=$(realpath "$1")
export GST_PLUGIN_PATH=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
AIORTC=${3:-}

# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
lab_wisp "$LOG/wisp.log" 18080 40000-40100
cleanup() { kill -INT "$WISP_PID" 2>/dev/null || true; wait "$WISP_PID" 2>/dev/null || true; }
trap cleanup EXIT

W=http://127.0.0.1:18080
CELL="node $HERE/../browser/cell.mjs"
SRC='videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1'
AUDIO='audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! whip.sink_1'
H264PAY='rtph264pay pt=102 config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000'
declare -A ENC=(
  [vp8]='vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000'
  [vp9]='vp9enc deadline=1 keyframe-max-dist=30 ! rtpvp9pay pt=98 ! application/x-rtp,media=video,encoding-name=VP9,payload=98,clock-rate=90000'
  # GStreamer 1.22's webrtcbin makes x264enc fall back to Constrained Baseline under whipsink
  # even when High is asked for; the whepsrc cell still checks that a High-only viewer gets it.
  [h264high]="x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast ! video/x-h264,profile=high ! $H264PAY"
  [h264cb]="x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast ! video/x-h264,profile=constrained-baseline ! $H264PAY"
)
HIGH_ONLY='application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)640028'
CB_ONLY='application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)42e01f'

publisher_cmd() { # publisher room
  case $1 in
    whipsink-*) echo "gst-launch-1.0 -q $SRC ! ${ENC[${1#whipsink-}]} ! whip.sink_0 $AUDIO whipsink name=whip whip-endpoint=$W/whip/$2" ;;
    aiortc-vp8) echo "$AIORTC $HERE/aiortc_client.py publish $W/whip/$2" ;;
    chromium-*) echo "$CELL publish $W $2 ${1#chromium-}" ;;
  esac
}
player_cmd() { # player room publisher
  case $1 in
    whepsrc)
      # Without caps whep_play.py offers every codec this GStreamer can decode.
      local caps=
      case $3 in
        whipsink-h264high) caps=$HIGH_ONLY ;;
        whipsink-h264cb | chromium-h264) caps=$CB_ONLY ;;
      esac
      echo "/usr/bin/python3 $HERE/whep_play.py $W/whep/$2 --frames 30 --timeout 60${caps:+ --video-caps '$caps'}" ;;
    aiortc)
      local first=
      [[ $3 == *h264* ]] && first=" --first-picture"
      echo "$AIORTC $HERE/aiortc_client.py play $W/whep/$2 --frames 30 --timeout 60$first" ;;
    chromium) echo "$CELL play $W $2 30" ;;
  esac
}

fail=0
ran=0
stop() { kill -INT "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# A cell that decodes: `cell <publisher> <player>`.
# A cell that cannot: `cell <publisher> <player> <codec>`: the player must exit 3 having
# printed "told in words: The publisher sends <codec>...", with no media received. The player
# starts once the publisher's video flows, so its POST meets the publisher's codec.
cell() {
  local pub=$1 player=$2 words=${3:-}
  local name="$pub-to-$player" room="lab-$pub-$player"
  if [ -n "${CASES:-}" ] && [[ " $CASES " != *" $name "* ]]; then return; fi
  if [ -z "$AIORTC" ] && [[ "$pub $player" == *aiortc* ]]; then
    echo "SKIP (loudly) $name: no aiortc python given"; return
  fi
  echo "== $name"
  ran=$((ran + 1))
  local start=$SECONDS
  bash -c "$(publisher_cmd "$pub" "$room")" >"$LOG/pub-$name.log" 2>&1 &
  local p=$!
  local rc=0 out
  if [ -z "$words" ]; then
    if [[ "$pub" == *h264* ]]; then
      # H.264 cells join mid-GOP (x264 here sends a keyframe every 30 frames, 1 s): the player
      # starts half a second after the publisher's video flows and reports its join time; the
      # aiortc player must decode the cached keyframe picture first (--first-picture).
      if ! /usr/bin/python3 "$HERE/wait_publisher.py" "$W" "$room" --timeout 60; then
        echo "FAIL $name: the publisher never sent video"; fail=1; tail -20 "$LOG/pub-$name.log"
        stop "$p"; return
      fi
      sleep 0.5
    fi
    out=$(bash -c "$(player_cmd "$player" "$room" "$pub")" 2>&1) || rc=$?
    echo "$out" | sed 's/^/     /'
    if [ "$rc" = 0 ]; then
      echo "ok   $name: the player decoded frames ($((SECONDS - start)) s)"
    else
      echo "FAIL $name (exit $rc)"; fail=1; tail -20 "$LOG/pub-$name.log"
    fi
  else
    if ! /usr/bin/python3 "$HERE/wait_publisher.py" "$W" "$room" --timeout 60; then
      echo "FAIL $name: the publisher never sent video"; fail=1; tail -20 "$LOG/pub-$name.log"
      stop "$p"; return
    fi
    out=$(bash -c "$(player_cmd "$player" "$room" "$pub")" 2>&1) || rc=$?
    echo "$out" | sed 's/^/     /'
    local told
    told=$(echo "$out" | grep -m1 '^told in words: ' || true)
    if [ "$rc" = 3 ] && [[ "$told" == "told in words: The publisher sends $words"* ]]; then
      echo "ok   $name: ${told} ($((SECONDS - start)) s)"
    else
      echo "FAIL $name (exit $rc, expected 3 and words about $words)"; fail=1
      tail -20 "$LOG/pub-$name.log"
    fi
  fi
  stop "$p"
}

for pub in whipsink-vp8 whipsink-vp9 whipsink-h264high whipsink-h264cb aiortc-vp8 \
  chromium-vp8 chromium-h264 chromium-vp9 chromium-av1; do
  for player in whepsrc aiortc chromium; do
    case "$pub/$player" in
      # aiortc 1.x decodes VP8 and H.264 only.
      */aiortc) case $pub in *-vp9) cell "$pub" "$player" video/VP9 ;; *-av1) cell "$pub" "$player" video/AV1 ;; *) cell "$pub" "$player" ;; esac ;;
      # GStreamer 1.22 has no RTP AV1 depayloader (rtpav1depay is in 1.24).
      chromium-av1/whepsrc) cell "$pub" "$player" video/AV1 ;;
      *) cell "$pub" "$player" ;;
    esac
  done
done

echo "$ran cells, $SECONDS s"
if [ "$fail" != 0 ]; then
  echo "--- wisp log"; tail -40 "$LOG/wisp.log"
  exit 1
fi
