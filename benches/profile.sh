#!/usr/bin/env bash
# Where the server's CPU goes under the e2e bench: records the running server with perf (DWARF
# call graphs, 5 s inside the bench's measuring window), counts its system calls and context
# switches over the same 5 s, and groups the samples by owner and by phase of the packet path
# (benches/profile.py).
#
#   cargo build --release && cargo bench --bench e2e --no-run
#   bash benches/profile.sh [--viewers 100] [--paced] [--bin target/release/wisp]
#
# Needs perf (Debian: linux-perf) and root or perf_event_paranoid <= 1. Loopback only; the
# bench stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
viewers=100 paced="" bin=target/release/wisp
while [ $# -gt 0 ]; do
  case "$1" in
    --viewers) viewers=$2; shift 2 ;;
    --paced) paced=--paced; shift ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
bench=$(ls -t target/release/deps/e2e-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
[ -x "$bench" ] || { echo "profile.sh: run 'cargo bench --bench e2e --no-run' first" >&2; exit 2; }
out=$(mktemp -d /tmp/wisp-profile.XXXXXX)
port=18380 # the bench's server port (benches/e2e.rs)

WISP_BIN=$bin "$bench" --viewers "$viewers" $paced --seconds 25 --bench > "$out/bench.txt" 2>&1 &
bpid=$!
pid=""
for _ in $(seq 1 300); do
  pid=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "profile.sh: the bench's server did not start" >&2; kill "$bpid"; exit 1; }
# The viewers join within the first seconds; 12 s in, the window is well under way.
sleep 12
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
perf stat -x, -o "$out/stat.csv" -p "$pid" \
  -e context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto \
  -e syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex -- sleep 5 &
spid=$!
perf record -q -e cpu-clock -F 3999 --call-graph dwarf,16384 -o "$out/perf.data" -p "$pid" -- sleep 5 \
  > "$out/record.log" 2>&1
wait "$spid"
t1=$(ticks)
wait "$bpid" || true
grep -E "^floor|^\| *$viewers \|" "$out/bench.txt" || { cat "$out/bench.txt"; exit 1; }
ppcs=$(awk -F'|' -v n="$viewers" '$2+0 == n {gsub(/ /, "", $5); print $5; exit}' "$out/bench.txt")
us=$(awk -v p="$ppcs" 'BEGIN {printf "%.3f", 1e6 / p}')
cpu=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 100 / 5}')
echo
echo "server CPU per packet-viewer over the bench's window: $us µs ($ppcs per CPU-second);"
echo "over the 5 s capture the server used $cpu cores (perf's DWARF unwinding included)"
echo "per second over the capture:"
awk -F, 'NF > 3 && $1 ~ /^[0-9]/ {printf "  %-34s %8.0f\n", $3, $1 / 5}' "$out/stat.csv"
perf script --no-inline -i "$out/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null |
  python3 benches/profile.py --us-per-pv "$us"
echo
echo "perf data and the bench's output: $out"
