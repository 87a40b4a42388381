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
# A speech-like signal (noise bursts at syllable rate, about -12 dBFS) and silence, 48 kHz mono.
python3 - "$TMP" <<'PY'
import math, random, struct, sys, wave
d = sys.argv[1]
random.seed(7)
def write(name, fn, seconds=30, rate=48000):
    with wave.open(f"{d}/{name}", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(fn(i / rate))) for i in range(seconds * rate)))
def speech(t):
    env = 1.0 if (t * 4) % 1.0 < 0.7 else 0.05
    return env * 8000 * (0.6 * math.sin(2 * math.pi * 180 * t) + 0.4 * random.uniform(-1, 1))
write("speech.wav", speech)
write("silence.wav", lambda t: 0)
PY

lab_wisp "$TMP/wisp.log" 18590 44200-44300
PID=$WISP_PID
trap 'kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
mkdir -p "$ROOT/target/pages"
if ! timeout 240 node "$HERE/pages.mjs" http://127.0.0.1:18590 "$TMP/speech.wav" "$TMP/silence.wav" "$ROOT/target/pages"; then
  echo "--- wisp log (wisp's own lines, warnings, errors)"
  grep -a 'wisp::\|WARN\|ERROR' "$TMP/wisp.log" | grep -v pingAllCandidates | tail -40
  exit 1
fi
