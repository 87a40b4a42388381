#!/usr/bin/env python3
"""A/V sync of a recording whose source flashes white and beeps at once, every second.

Finds each flash onset (a frame's mean luma jumping above mid-grey, via ffmpeg's signalstats)
and each beep onset (a 10 ms window's RMS rising above -30 dBFS, via astats), pairs every
flash with the nearest beep, and prints the offsets. Exit 0 when there are at least
`--min-pairs` pairs and every |offset| is under `--max-ms`; 1 otherwise.

usage: avsync.py FILE [--max-ms 100] [--min-pairs 4]
"""
import argparse
import re
import subprocess
import sys


def ffmpeg_meta(args, key):
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", *args, "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120).stderr
    t, rows = None, []
    for line in out.splitlines():
        m = re.search(r"pts_time:([0-9.]+)", line)
        if m:
            t = float(m.group(1))
        m = re.search(re.escape(key) + r"=(-?[0-9.]+|-inf)", line)
        if m and t is not None:
            v = float("-inf") if m.group(1) == "-inf" else float(m.group(1))
            rows.append((t, v))
    return rows


def onsets(rows, threshold, min_gap=0.5):
    # An onset is a rise seen: a stream whose first sample is already above the threshold
    # began mid-flash or mid-beep, and its first time is where the file starts, not the onset.
    found, prev = [], None
    for t, v in rows:
        if v > threshold and prev is not None and prev <= threshold:
            if not found or t - found[-1] >= min_gap:
                found.append(t)
        prev = v
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--max-ms", type=float, default=100.0)
    ap.add_argument("--min-pairs", type=int, default=4)
    a = ap.parse_args()
    flashes = onsets(ffmpeg_meta(["-i", a.file, "-an", "-vf",
                                  "signalstats,metadata=print:key=lavfi.signalstats.YAVG"],
                                 "lavfi.signalstats.YAVG"), 128)
    beeps = onsets(ffmpeg_meta(["-i", a.file, "-vn", "-af",
                                "asetnsamples=480,astats=metadata=1:reset=1,"
                                "ametadata=print:key=lavfi.astats.Overall.RMS_level"],
                               "lavfi.astats.Overall.RMS_level"), -30)
    pairs = []
    for f in flashes:
        if beeps:
            b = min(beeps, key=lambda x: abs(x - f))
            if abs(b - f) < 0.5:
                pairs.append((f, b - f))
    offsets = ", ".join(f"{d * 1000:+.0f}" for _, d in pairs)
    print(f"{len(flashes)} flashes, {len(beeps)} beeps, audio minus video per pair (ms): {offsets}")
    worst = max((abs(d) for _, d in pairs), default=None)
    if len(pairs) < a.min_pairs or worst is None or worst * 1000 >= a.max_ms:
        print(f"FAIL: {len(pairs)} pairs, worst {worst}")
        sys.exit(1)
    print(f"in sync: worst {worst * 1000:.0f} ms over {len(pairs)} pairs")


if __name__ == "__main__":
    main()
