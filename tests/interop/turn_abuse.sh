#!/usr/bin/env bash
# TURN abuse with coturn's own test client (turnutils_uclient, Debian's coturn package) as the
# independent client and load, against wisp's embedded TURN server, in a private namespace:
#  1. an allocation flood on one credential: the quota (--turn-quota 10) holds;
#  2. data to peers that were never permitted (-I): none of it is relayed;
#  3. coturn's negative tests (-N) and DOS mode (-O: allocate and vanish, 5 rounds of 50);
#  4. after all of it: STUN Binding and /healthz still answer, live allocations never passed
#     the quotas, and wisp's RSS and open file descriptors stay bounded (printed).
# usage: tests/interop/turn_abuse.sh <wisp binary>
set -euo pipefail
WISP=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lab.sh
. "$HERE/../lab.sh" "$0" "$@"

LOG=$(mktemp -d)
W=http://127.0.0.1:18083
SECRET=abuse-secret
QUOTA=10
fail=0
check() { # what ok
  if [ "$2" = 1 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
metric() { curl -s $W/metrics | awk -v n="$1" '$1 == n { print $2 }'; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$WISP_PID/status"; }
fds() { ls "/proc/$WISP_PID/fd" | wc -l; }
# uclient USER [flags...]: coturn's client with TURN REST credentials for room `abuse`.
uclient() {
  local user=$1
  shift
  timeout 60 turnutils_uclient -W "$SECRET" -u "abuse:$user" -p 13478 "$@" 127.0.0.1 \
    >"$LOG/uclient-$user.log" 2>&1 || true
}
# The most allocations seen live, sampled while a load runs in the background (bounded).
peak=0
sample_while() { # pid
  while kill -0 "$1" 2>/dev/null; do
    local n
    n=$(metric wisp_turn_allocations)
    [ "${n:-0}" -gt "$peak" ] && peak=$n
    sleep 0.1
  done
}

lab_wisp "$LOG/wisp.log" 18083 43000-43100 --turn-listen 127.0.0.1:13478 \
  --turn-secret "$SECRET" --turn-relay-ports 46000-46999 --turn-quota $QUOTA
trap 'kill -INT $WISP_PID 2>/dev/null; wait $WISP_PID 2>/dev/null || true' EXIT
rss0=$(rss_kb); fds0=$(fds)

echo "== 1: allocation flood on one credential (40 clients)"
uclient flood -y -s -c -I -n 20 -m 40 &
sample_while $!
# The client stops at its first refusal and leaves its allocations to expire: what it got is
# still live.
held=$(metric wisp_turn_allocations)
check "the quota held: $held live allocations (1..$QUOTA)" "$([ "$held" -ge 1 ] && [ "$held" -le $QUOTA ] && [ "$peak" -le $QUOTA ] && echo 1)"
check "the client was refused with 486" "$(grep -q 'error 486' "$LOG/uclient-flood.log" && echo 1)"

echo "== 2: data to peers never permitted"
uclient unpermitted -y -s -c -I -n 100 -m 4
check "every message lost (none relayed)" "$(grep -q 'Total lost packets 400 (100' "$LOG/uclient-unpermitted.log" && echo 1)"

echo "== 3: coturn's negative tests, then DOS mode (allocate and vanish)"
uclient negative -N -y -s -c -I -n 5 -m 2
peak=0
for round in 1 2 3 4 5; do
  uclient "dos$round" -O -y -s -c -I -n 5 -m 50 &
  sample_while $!
done
# Eight credentials so far (flood, unpermitted, negative, dos1-5), each held to the quota;
# allocations of earlier steps live on (DOS mode never releases its own).
check "DOS mode: live allocations within the quotas (peak $peak; at most $((QUOTA * 8)) for 8 credentials)" \
  "$([ "$peak" -le $((QUOTA * 8)) ] && echo 1)"

echo "== 4: the server afterwards"
check "STUN Binding still answers" "$(timeout 10 turnutils_stunclient -p 13478 127.0.0.1 2>&1 | grep -q 'reflexive addr' && echo 1)"
check "/healthz 200" "$([ "$(curl -s -o /dev/null -w '%{http_code}' $W/healthz)" = 200 ] && echo 1)"
rss1=$(rss_kb); fds1=$(fds); alloc=$(metric wisp_turn_allocations)
echo "     RSS ${rss0} -> ${rss1} KiB, open fds ${fds0} -> ${fds1}, live allocations ${alloc}"
# Each live allocation holds one relay socket; nothing else may grow with the abuse.
check "RSS grew less than 32 MiB" "$([ $((rss1 - rss0)) -lt 32768 ] && echo 1)"
check "open fds beyond the live allocations' sockets: under 16 more" "$([ $((fds1 - fds0 - alloc)) -lt 16 ] && echo 1)"
check "wisp never panicked" "$(grep -q 'panicked' "$LOG/wisp.log" && echo 0 || echo 1)"
if [ $fail != 0 ]; then
  echo "--- wisp log"; tail -20 "$LOG/wisp.log"
  for f in "$LOG"/uclient-*.log; do echo "--- $f"; tail -5 "$f"; done
fi
exit $fail
