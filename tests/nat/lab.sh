#!/usr/bin/env bash
# A real NAT: headless Chromium in its own network namespace behind a masquerading router that
# drops every UDP packet towards the server, so the only ways in are wisp's TURN over TCP and
# (phase 1b) its ICE-TCP port.
#
#   client ns 10.9.0.2 ── router ns (masquerade, UDP dropped) 198.18.0.254 ── server ns 198.18.0.1 (wisp)
#
# Namespaces are created with unshare and destroyed when this script exits; nothing leaves the
# machine (no namespace has a route out). Needs root, iproute2 and nftables; without them the
# test says so and skips loudly. usage: tests/nat/lab.sh <path to wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
skip() { echo "SKIP (loudly): NAT lab test cannot run here: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v nft >/dev/null || skip "nft (nftables) is not installed"
if [ "${WISP_IN_LAB:-}" != 1 ]; then
  exec unshare -n env WISP_IN_LAB=1 bash "$0" "$@"
fi

PIDS=()
cleanup() {
  [ -n "${WISP_PID:-}" ] && { kill -INT "$WISP_PID" 2>/dev/null; wait "$WISP_PID" 2>/dev/null || true; }
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# A namespace is a sleeping process's network; it goes away with the process.
unshare -n sleep 3600 >/dev/null 2>&1 &
ROUTER=$!
unshare -n sleep 3600 >/dev/null 2>&1 &
CLIENT=$!
PIDS=("$ROUTER" "$CLIENT")
in_router() { nsenter -t "$ROUTER" -n "$@"; }
in_client() { nsenter -t "$CLIENT" -n "$@"; }

ip link set lo up
ip link add s0 type veth peer name r0
ip link set r0 netns "$ROUTER"
ip addr add 198.18.0.1/24 dev s0
ip link set s0 up
in_router ip link set lo up
in_router ip addr add 198.18.0.254/24 dev r0
in_router ip link set r0 up
in_router ip link add r1 type veth peer name c1
in_router ip link set c1 netns "$CLIENT"
in_router ip addr add 10.9.0.1/24 dev r1
in_router ip link set r1 up
in_client ip link set lo up
in_client ip addr add 10.9.0.2/24 dev c1
in_client ip link set c1 up
in_client ip route add default via 10.9.0.1
in_router sysctl -q -w net.ipv4.ip_forward=1
in_router nft -f - <<'NFT'
table ip lab {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "r1" meta l4proto udp counter drop
  }
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "r0" masquerade
  }
}
NFT

TMP=$(mktemp -d)
# start_wisp LOG PORT ARGS...: wisp on the server side at 198.18.0.1:PORT, log in $TMP/LOG.log;
# returns once it runs.
start_wisp() {
  local log="$TMP/$1.log" port=$2; shift 2
  WISP_LOG=${WISP_LOG:-info} "$WISP" --listen "198.18.0.1:$port" --public-ip 198.18.0.1 \
    --allow-remote 198.18.0.0/24 "$@" >"$log" 2>&1 &
  WISP_PID=$!
  for _ in $(seq 1 100); do grep -q "wisp is running" "$log" && break; sleep 0.1; done
  grep -q "wisp is running" "$log" || { cat "$log"; exit 1; }
}
start_wisp wisp 18590 --ice-ports 44200-44299 --turn-listen 198.18.0.1:3478 --turn-relay-ports 44300-44399

# The client really has no UDP path: a datagram to the server's TURN port is dropped.
if in_client python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
# A STUN Binding request: the server answers it on UDP unless the router drops it.
s.sendto(bytes.fromhex("000100002112a442") + bytes(12), ("198.18.0.1", 3478))
try:
    s.recvfrom(2048); raise SystemExit(0)
except socket.timeout:
    raise SystemExit(1)
PY
then echo "FAIL the router lets UDP through; the test would prove nothing"; exit 1; fi
echo "ok   the client's UDP to the server is dropped by the router"

if ! in_client node "$ROOT/tests/browser/relay.mjs" http://198.18.0.1:18590; then
  echo "--- wisp log (all of it in target/nat-wisp.log)"; cp "$TMP/wisp.log" "$ROOT/target/nat-wisp.log"; tail -30 "$TMP/wisp.log"
  exit 1
fi
echo "ok   router dropped $(in_router nft list chain ip lab forward | grep -o 'packets [0-9]*' | head -1) UDP packets from the client"

# Phase 1b: UDP still dropped, and no TURN: wisp's ICE-TCP port (RFC 6544) is the only way in,
# for both pages' publisher and viewer legs, and ICE restarts move to new TCP connections.
kill -INT "$WISP_PID"; wait "$WISP_PID" 2>/dev/null || true
start_wisp wisp1b 18593 --ice-ports 44700-44799 --ice-tcp-port 44445
if ! in_client node "$ROOT/tests/browser/relay.mjs" http://198.18.0.1:18593 ice-tcp:44445; then
  echo "--- wisp log (ICE-TCP)"; tail -30 "$TMP/wisp1b.log"
  exit 1
fi

# Phase 2: UDP allowed through the NAT; wisp in single-port mode, no TURN. Both pages must
# reach the one ICE port through the masquerade.
kill -INT "$WISP_PID"; wait "$WISP_PID" 2>/dev/null || true
in_router nft flush chain ip lab forward
start_wisp wisp2 18591 --ice-udp-port 44444
if ! in_client node "$ROOT/tests/browser/relay.mjs" http://198.18.0.1:18591 single-port:44444; then
  echo "--- wisp log (single port)"; tail -30 "$TMP/wisp2.log"
  exit 1
fi

# Phase 3: the self-test page (/test) tells a person in words what works from their network.
# wisp offers TURN over UDP and TCP (no TLS). First UDP passes the NAT and the page must say
# everything works (no secure context here, so it runs on its test picture); then the router
# drops UDP again and the page must say so, and that TURN over TCP works (fake camera).
kill -INT "$WISP_PID"; wait "$WISP_PID" 2>/dev/null || true
start_wisp wisp3 18592 --ice-ports 44500-44599 --turn-listen 198.18.0.1:3478 --turn-relay-ports 44600-44699
mkdir -p "$ROOT/target"
SELFTEST_T0=$(date +%s%N)
selftest() {
  if ! in_client node "$ROOT/tests/browser/selftest.mjs" http://198.18.0.1:18592/test "$@"; then
    echo "--- wisp log (self-test)"; tail -30 "$TMP/wisp3.log"
    exit 1
  fi
}
selftest open "$ROOT/target/selftest-open.png"
in_router nft add rule ip lab forward iifname "r1" meta l4proto udp counter drop
selftest blocked "$ROOT/target/selftest.png" --secure
echo "ok   the self-test step took $(( ($(date +%s%N) - SELFTEST_T0) / 1000000 )) ms (screenshots: target/selftest.png, target/selftest-open.png)"
