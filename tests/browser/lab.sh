#!/usr/bin/env bash
# Headless Chromium on the conference page, inside a private network namespace with no route
# out (shared/DESIGN.md's lab). usage: tests/browser/lab.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

TMP=$(mktemp -d)
python3 "$HERE/wavs.py" "$TMP" # speech.wav and silence.wav, the fake microphones

lab_wisp "$TMP/wisp.log" 18580 44000-44100
PID=$WISP_PID
trap 'kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
mkdir -p "$ROOT/target"
if ! node "$HERE/room.mjs" http://127.0.0.1:18580 "$TMP/speech.wav" "$TMP/silence.wav" "$ROOT/target/browser-room.png"; then
  echo "--- wisp log"; tail -30 "$TMP/wisp.log"
  exit 1
fi
# The page's own recovery from a real network failure (recover.mjs): all UDP in this namespace
# dropped for 10 s; for 25 s with the ICE restarts refused (the fresh POST that resumes the
# participant); and for 35 s (ICE fails, the page's ICE restart of its simulcast publisher is
# refused and its fresh POST resumes it); then restored, on the same wisp. After the 10 s
# outage both pages show video within the issue's 5 s (0.3-1.8 s measured, README "Network
# dropouts").
if ! node "$HERE/recover.mjs" http://127.0.0.1:18580 short,refused,long; then
  echo "--- wisp log (wisp's own lines, warnings, errors)"
  grep -a 'wisp::\|WARN\|ERROR' "$TMP/wisp.log" | grep -v pingAllCandidates | tail -40
  exit 1
fi
