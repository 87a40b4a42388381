#!/usr/bin/env bash
# Send-side bandwidth estimation with real Chromium on a real shaped link (bwe.mjs):
#
#   wisp + publisher Chromium (198.18.0.1, this namespace) ── veth, shaped by tc ── viewer Chromium (198.18.0.2)
#
# Namespaces come from unshare and go away with this script; none has a route out.
# usage: tests/browser/bwe_lab.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP (loudly): bandwidth lab cannot run here: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v tc >/dev/null || skip "tc (iproute2) is not installed"
if [ "${WISP_IN_LAB:-}" != 1 ]; then
  exec unshare -n env WISP_IN_LAB=1 bash "$0" "$@"
fi
unshare -n sleep 3600 >/dev/null 2>&1 &
VIEWER=$!
TMP=$(mktemp -d)
cleanup() {
  [ -n "${WISP_PID:-}" ] && { kill -INT "$WISP_PID" 2>/dev/null; wait "$WISP_PID" 2>/dev/null || true; }
  kill "$VIEWER" 2>/dev/null || true
}
trap cleanup EXIT
ip link set lo up
ip link add s0 type veth peer name v0
ip link set v0 netns "$VIEWER"
ip addr add 198.18.0.1/24 dev s0
ip link set s0 up
nsenter -t "$VIEWER" -n ip link set lo up
nsenter -t "$VIEWER" -n ip addr add 198.18.0.2/24 dev v0
nsenter -t "$VIEWER" -n ip link set v0 up

WISP_LOG=${WISP_LOG:-info} "$WISP" --listen 198.18.0.1:18600 --public-ip 198.18.0.1 \
  --allow-remote 198.18.0.0/24 --ice-ports 44400-44499 >"$TMP/wisp.log" 2>&1 &
WISP_PID=$!
for _ in $(seq 1 100); do grep -q "wisp is running" "$TMP/wisp.log" && break; sleep 0.1; done
grep -q "wisp is running" "$TMP/wisp.log" || { cat "$TMP/wisp.log"; exit 1; }

# The viewer's Chromium runs in the viewer's namespace (Playwright talks to it over a pipe).
cat >"$TMP/chromium-viewer" <<SH
#!/bin/sh
exec nsenter -t $VIEWER -n /usr/bin/chromium "\$@"
SH
chmod +x "$TMP/chromium-viewer"
if ! node "$HERE/bwe.mjs" http://198.18.0.1:18600 http://198.18.0.1:18600 "$TMP/chromium-viewer" s0; then
  echo "--- wisp log"; grep -a 'wisp::\|WARN\|ERROR' "$TMP/wisp.log" | tail -30
  exit 1
fi
