#!/usr/bin/env bash
# Headless Chromium on the operator page (/admin) while three people confer, inside a private
# network namespace with no route out (shared/DESIGN.md's lab).
# usage: tests/browser/admin_lab.sh <path to wisp binary>; saves target/admin.png
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

TMP=$(mktemp -d)
lab_wisp "$TMP/wisp.log" 18600 44500-44600 --token admin-secret
PID=$WISP_PID
trap 'kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
mkdir -p "$ROOT/target"
if ! timeout 300 node "$HERE/admin.mjs" http://127.0.0.1:18600 "$ROOT/target/admin.png"; then
  echo "--- wisp log"; tail -30 "$TMP/wisp.log"
  exit 1
fi
