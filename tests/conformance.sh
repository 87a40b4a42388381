#!/usr/bin/env bash
# Runs conformance/run against a wisp started on loopback (with a bearer token, so the auth
# cases run too). usage: tests/conformance.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
cd "$(dirname "$0")/.."
LOG=$(mktemp)
PORT=18180
TOKEN=conformance-token
"$WISP" --listen 127.0.0.1:$PORT --token $TOKEN --public-ip 127.0.0.1 \
  --allow-remote 127.0.0.0/8 --ice-ports 41000-41399 >"$LOG" 2>&1 &
PID=$!
trap 'kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "wisp is running" "$LOG" && break; sleep 0.1; done
grep -q "wisp is running" "$LOG" || { cat "$LOG"; exit 1; }
conformance/run --whip http://127.0.0.1:$PORT/whip/conformance \
  --whep http://127.0.0.1:$PORT/whep/conformance --token $TOKEN | tee target/conformance.txt
