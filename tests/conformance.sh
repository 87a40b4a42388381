#!/usr/bin/env bash
# Runs conformance/run against a wisp started on loopback (with a bearer token, so the auth
# cases run too) and its TURN server (so the ice-server Link cases run): once over HTTP, once
# over HTTPS with a test certificate (openssl).
# usage: tests/conformance.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
cd "$(dirname "$0")/.."
TOKEN=conformance-token
TMP=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill -INT $PID 2>/dev/null; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT

run() { # scheme port extra-wisp-args... ; then conformance args via CONF_ARGS
  local scheme=$1 port=$2; shift 2
  "$WISP" --listen 127.0.0.1:$port --token $TOKEN --public-ip 127.0.0.1 \
    --allow-remote 127.0.0.0/8 --ice-ports 41000-41399 --turn-listen 127.0.0.1:0 \
    --turn-relay-ports 41400-41499 "$@" >"$TMP/wisp-$scheme.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do grep -q "wisp is running" "$TMP/wisp-$scheme.log" && break; sleep 0.1; done
  grep -q "wisp is running" "$TMP/wisp-$scheme.log" || { cat "$TMP/wisp-$scheme.log"; exit 1; }
  echo "--- conformance over $scheme"
  conformance/run --whip $scheme://127.0.0.1:$port/whip/conformance \
    --whep $scheme://127.0.0.1:$port/whep/conformance --token $TOKEN "${CONF_ARGS[@]}" \
    | tee "target/conformance-$scheme.txt"
  local rc=${PIPESTATUS[0]}
  kill -INT $PID; wait $PID || true; PID=""
  return "$rc"
}

CONF_ARGS=()
run http 18180
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
CONF_ARGS=(--cacert "$TMP/cert.pem")
# Over HTTP, connections past --max-connections-per-ip (64) are answered 503 + Retry-After,
# which the load case accepts. Over TLS they are closed without an answer (an answer would
# cost a handshake), and the suite's 200 concurrent clients all come from one address: the
# cap is raised for that run.
run https 18181 --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" --max-connections-per-ip 256
