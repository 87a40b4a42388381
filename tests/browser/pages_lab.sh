#!/usr/bin/env bash
# The pages people use (issue #19) in headless Chromium, inside a private network namespace
# with no route out (shared/DESIGN.md's lab): pre-join, grid and speaker views, mute state,
# chat, screen share, pin, /watch, /publish, axe-core on every page, phone-sized touch
# targets. Screenshots go to target/pages/*.png.
# usage: tests/browser/pages_lab.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

TMP=$(mktemp -d)
python3 "$HERE/wavs.py" "$TMP" # speech.wav and silence.wav, the fake microphones

lab_wisp "$TMP/wisp.log" 18590 44200-44300
PID=$WISP_PID
trap 'kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
mkdir -p "$ROOT/target/pages"
# Bounded: about 3 minutes on an idle 2-core machine, slower on a busy CI runner (a 240 s bound
# once ended a passing run there mid-step, seen only as "Target ... has been closed").
LIMIT=600
started=$SECONDS
rc=0
timeout "$LIMIT" node "$HERE/pages.mjs" http://127.0.0.1:18590 "$TMP/speech.wav" "$TMP/silence.wav" "$ROOT/target/pages" || rc=$?
echo "     (pages.mjs ran $((SECONDS - started)) s)"
if [ "$rc" != 0 ]; then
  [ "$rc" = 124 ] && echo "FAIL pages.mjs did not finish within $LIMIT s (stopped by timeout)"
  echo "--- wisp log (wisp's own lines, warnings, errors)"
  grep -a 'wisp::\|WARN\|ERROR' "$TMP/wisp.log" | grep -v pingAllCandidates | tail -40
  exit 1
fi
