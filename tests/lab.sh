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
