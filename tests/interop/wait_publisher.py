#!/usr/bin/python3
"""Waits until a room has a publisher whose video flows, from the room's event stream.

  wait_publisher.py <base-url> <room> [--timeout 60] [--token T]

Exits 0 on the first roster or tracks event showing a participant with video, 1 after
--timeout seconds. The interop cells that expect a player to be told in words use it, so the
player's POST meets the publisher's codec (a 406 counter-offer) rather than an empty room.
"""
import argparse
import json
import socket
import sys
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("room")
ap.add_argument("--timeout", type=float, default=60)
ap.add_argument("--token", default=None, help="sent as Authorization: Bearer")
a = ap.parse_args()

deadline = time.monotonic() + a.timeout
names = {}  # participant id -> name, from the roster and joined events


def has_video(event):
    if event.get("type") == "roster":
        return any(p.get("video") for p in event.get("participants", []))
    return event.get("type") == "tracks" and event.get("video") is True


try:
    req = urllib.request.Request(f"{a.base}/rooms/{a.room}/events")
    if a.token:
        req.add_header("Authorization", f"Bearer {a.token}")
    with urllib.request.urlopen(req, timeout=a.timeout) as r:
        for raw in r:
            line = raw.decode(errors="replace").strip()
            event = json.loads(line[5:]) if line.startswith("data:") else {}
            for p in event.get("participants", []) + [event.get("participant") or {}]:
                if "id" in p:
                    names[p["id"]] = p.get("name", "?")
            if has_video(event):
                print(f"{a.room}: a publisher sends video (roster: {', '.join(names.values())})")
                sys.exit(0)
            if time.monotonic() > deadline:
                break
except (OSError, socket.timeout) as e:
    print(f"{a.room}: {e}", file=sys.stderr)
print(f"{a.room}: no publisher with video within {a.timeout:.0f} s", file=sys.stderr)
sys.exit(1)
