# The lab (shared/DESIGN.md): a private network namespace with no route out, holding a veth pair
# 198.18.0.1 <-> 198.18.0.2 that real clients (libnice, aioice, Chromium) can use for ICE.
# Sourced at the top of a lab script, after `set -euo pipefail` and with WISP set:
#   . "$(dirname "$0")/../lab.sh" "$0" "$@"
# The first time it re-executes the script inside a fresh namespace; inside, it brings the pair up.

if [ "${WISP_IN_LAB:-}" != 1 ]; then
  exec unshare -n env WISP_IN_LAB=1 bash "$@"
fi
ip link set lo up
ip link add lab0 type veth peer name lab1
ip addr add 198.18.0.1/24 dev lab0
ip addr add 198.18.0.2/24 dev lab1
ip link set lab0 up
ip link set lab1 up

# lab_wisp LOG PORT ICE-PORTS [more wisp args]: starts $WISP on http://127.0.0.1:PORT announcing
# the lab address, waits (bounded) for its start line, sets WISP_PID.
lab_wisp() {
  local log=$1 port=$2 ice=$3
  shift 3
  "$WISP" --listen "127.0.0.1:$port" --public-ip 198.18.0.1 --allow-remote 198.18.0.0/24 \
    --ice-ports "$ice" "$@" >"$log" 2>&1 &
  WISP_PID=$!
  for _ in $(seq 1 100); do
    grep -q "wisp is running" "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$log"
  return 1
}

# lab_default_route: opt-in, for Firefox. Firefox's ICE gathers host candidates only from the
# interface of its default route while a page holds no real camera/microphone grant (every WHEP
# player; with fake devices and the prompt disabled, its publishers too). A fresh namespace
# has no default route, so Firefox offers no candidate at all and its ICE fails.
# This adds a default route over the lab's veth, `default via 198.18.0.1 dev lab1`, whose
# source address is lab1's 198.18.0.2 (so Firefox offers 198.18.0.2, which wisp's
# --allow-remote 198.18.0.0/24 accepts, distinct from wisp's own 198.18.0.1). A route out
# must not become a way out: an nftables table drops every packet this namespace would send
# to anything but the lab (198.18.0.0/24) and loopback, counting them. The namespace has no
# link to the outside anyway; the drop makes that explicit whatever a client tries (DNS,
# telemetry, a STUN server). Labs that do not call this are unchanged.
lab_default_route() {
  ip route add default via 198.18.0.1 dev lab1
  nft -f - <<'NFT'
table inet lab_egress {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr { 198.18.0.0/24, 127.0.0.0/8 } accept
    ip6 daddr ::1 accept
    counter drop
  }
}
NFT
}

# lab_egress_dropped: how many packets lab_default_route's table dropped (0 when it was not set).
lab_egress_dropped() {
  nft list chain inet lab_egress output 2>/dev/null | grep -o 'packets [0-9]*' | awk '{s+=$2} END {print s+0}'
}
