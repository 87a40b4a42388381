#!/usr/bin/env python3
"""Where wisp's CPU goes, from `perf script -F comm,tid,ip,sym,dso` on stdin (one stack per
sample, leaf first, inlined frames left out, as `benches/profile.sh` writes it).

Prints two tables: self time by owner (whose code the sampled instruction is in), and
inclusive time by phase of the packet path (which part of wisp the sample was working for).
With --us-per-pv (server CPU per packet-viewer, from the bench's packets per CPU-second,
measured without perf attached) each row is also given in microseconds per packet-viewer.
"""
import argparse
import collections
import re
import sys


def stacks(lines):
    cur = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                yield cur
                cur = []
            continue
        if line[0] in " \t":
            # "<ip> <sym+off> (<dso>)"
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if not m:
                continue
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            cur.append((sym, m.group(2)))
    if cur:
        yield cur


def owner(sym, dso):
    if "kernel" in dso or dso.startswith("[k"):
        return "kernel"
    if "vdso" in dso:
        return "vdso (clock)"
    if re.search(r"mem(cpy|move|set)", sym):
        return GENERIC
    if "libc" in dso:
        return "libc"
    if re.search(r"ring_core|ring::|rtc_srtp|rtc_crypto", sym):
        return "SRTP (ring, rtc-srtp)"
    if re.match(r"_?mi_|mi_", sym):
        return "allocator (mimalloc)"
    if "tokio::" in sym or "mio::" in sym:
        return "tokio, mio"
    if "wisp::" in sym:
        return "wisp"
    if re.search(r"rtc_(ice|dtls|rtp|rtcp|interceptor|shared|sctp|stun)", sym):
        return "rtc lower layers (ICE, DTLS, RTP, RTCP)"
    if "webrtc::" in sym or "rtc::" in sym:
        return "webrtc-rs peer connection (publisher)"
    if re.search(r"hashbrown|bytes::|alloc::|core::|std::|arc_swap|futures_util|memcpy|memmove", sym):
        return GENERIC
    return "other"


GENERIC = "generic"


def owner_of(stack):
    """The leaf's owner; generic library code (collections, `bytes`, futures' combinators,
    memcpy) is counted for the first caller up the stack that is not generic."""
    for sym, dso in stack:
        o = owner(sym, dso)
        if o != GENERIC:
            return o
    return "other"


# The phases, tried in order against the whole stack (any frame matching).
PHASES = [
    ("viewer driver: kernel send, GSO runs (sendmsg)", ["Driver::flush", "sys::socket::sendmsg"]),
    ("viewer driver: kernel send, single datagrams (sendto)", ["Driver::flush", "sendto"]),
    ("viewer driver: rest of flush", ["Driver::flush"]),
    ("viewer driver: rewrite, TWCC number, SRTP seal", ["OwnLeg::send"]),
    ("viewer driver: RTCP and STUN read", ["Driver::read"]),
    ("viewer driver: waiting (queue pop, socket poll, timers)", ["Driver::run"]),
    ("fan-out: rewrite and queue to each viewer", ["TrackInput as wisp::rtc::track::RtpSink>::on_rtp"]),
    ("publisher leg (webrtc-rs peer connection)", ["webrtc::peer_connection"]),
    ("room core (planner)", ["wisp::sfu::room::"]),
    ("runtime: workers parking and waking", ["park_internal", "Context::park"]),
]


def phase(stack):
    names = [s for s, _ in stack]
    for label, needles in PHASES:
        if all(any(n in f for f in names) for n in needles):
            return label
    return "other"


def table(title, counts, total, us_per):
    print(f"\n{title}\n")
    per = " | µs per packet-viewer" if us_per else ""
    print(f"| share | what{per} |")
    print("|---:|---|" + ("---:|" if us_per else ""))
    for k, v in counts.most_common():
        row = f"| {100 * v / total:5.1f} % | {k}"
        if us_per:
            row += f" | {us_per * v / total:.2f}"
        print(row + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--us-per-pv", type=float, default=0.0)
    a = ap.parse_args()
    owners = collections.Counter()
    phases = collections.Counter()
    total = 0
    for st in stacks(sys.stdin):
        total += 1
        owners[owner_of(st)] += 1
        phases[phase(st)] += 1
    if total == 0:
        sys.exit("no samples in the perf script output")
    us_per = a.us_per_pv
    print(f"{total} samples" + (f"; {us_per:.2f} µs of server CPU per packet-viewer" if us_per else ""))
    table("Self time by owner", owners, total, us_per)
    table("Inclusive time by phase", phases, total, us_per)


if __name__ == "__main__":
    main()
