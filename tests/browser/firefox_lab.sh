#!/usr/bin/env bash
# Firefox ESR and Chromium together on wisp, inside the lab namespace (shared/DESIGN.md):
# Firefox publishes and Chromium plays, Chromium publishes and Firefox plays, and both join one
# conference room, Firefox coming through the pre-join screen; then the pages of issue #19 in
# Firefox (tests/browser/firefox_pages.mjs): mute state and chat across the two browsers, the
# layout switch, axe-core on /, the room, /watch and /publish, and phone size (390×844)
# (tests/browser/firefox.mjs). The namespace gets a default route over the
# lab's veth, which Firefox's ICE needs, and an nftables table that drops anything not addressed
# to the lab or loopback (tests/lab.sh lab_default_route).
# usage: tests/browser/firefox_lab.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"
command -v firefox-esr >/dev/null || { echo "firefox_lab: firefox-esr is not installed (tests/setup.sh)" >&2; exit 1; }
lab_default_route

TMP=$(mktemp -d)
lab_wisp "$TMP/wisp.log" 18610 44700-44800
PID=$WISP_PID
trap 'kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
# Bounded generously: a busy CI runner is far slower than an idle machine (see pages_lab.sh).
started=$SECONDS
rc=0
timeout 600 node "$HERE/firefox.mjs" http://127.0.0.1:18610 "$TMP" || rc=$?
echo "     (firefox.mjs ran $((SECONDS - started)) s)"
if [ "$rc" != 0 ]; then
  [ "$rc" = 124 ] && echo "FAIL firefox.mjs did not finish within 600 s (stopped by timeout)"
  echo "--- wisp log (wisp's own lines, warnings, errors)"
  grep -a 'wisp::\|WARN\|ERROR' "$TMP/wisp.log" | grep -v pingAllCandidates | tail -40
  echo "--- packets dropped on their way out of the lab: $(lab_egress_dropped)"
  exit 1
fi
echo "ok   packets dropped on their way out of the lab (Firefox's DNS, IPv6 neighbour discovery): $(lab_egress_dropped)"
