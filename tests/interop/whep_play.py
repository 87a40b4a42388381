#!/usr/bin/python3
"""Plays a WHEP stream with GStreamer's whepsrc and decodes it.

Exits 0 once --frames video frames and some audio buffers were decoded, 1 on error or
after --timeout seconds. Prints what it decoded. Used by gst_lab.sh inside the lab namespace.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("--frames", type=int, default=30)
ap.add_argument("--timeout", type=int, default=60)
ap.add_argument("--video-caps", default=None)
args = ap.parse_args()

Gst.init(None)
pipe = Gst.Pipeline.new("player")
src = Gst.ElementFactory.make("whepsrc", "src")
if src is None:
    print("whepsrc not found (GST_PLUGIN_PATH?)")
    sys.exit(1)
src.set_property("whep-endpoint", args.url)
if args.video_caps:
    src.set_property("video-caps", Gst.Caps.from_string(args.video_caps))
pipe.add(src)
counts = {"video": 0, "audio": 0}
loop = GLib.MainLoop()
result = {"ok": False}


def on_decoded_pad(_dbin, pad):
    caps = pad.get_current_caps() or pad.query_caps(None)
    name = caps.get_structure(0).get_name()
    kind = "video" if name.startswith("video/") else "audio"
    sink = Gst.ElementFactory.make("fakesink", None)
    sink.set_property("signal-handoffs", True)
    sink.set_property("sync", False)

    def handoff(_s, _buf, _pad):
        counts[kind] += 1
        if counts["video"] >= args.frames and counts["audio"] > 0 and not result["ok"]:
            result["ok"] = True
            GLib.idle_add(loop.quit)

    sink.connect("handoff", handoff)
    pipe.add(sink)
    sink.sync_state_with_parent()
    pad.link(sink.get_static_pad("sink"))


def on_src_pad(_src, pad):
    dbin = Gst.ElementFactory.make("decodebin", None)
    dbin.connect("pad-added", on_decoded_pad)
    pipe.add(dbin)
    dbin.sync_state_with_parent()
    pad.link(dbin.get_static_pad("sink"))


src.connect("pad-added", on_src_pad)


def on_message(_bus, msg):
    if msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        print(f"error: {err.message} ({dbg})")
        loop.quit()


bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
GLib.timeout_add_seconds(args.timeout, loop.quit)
pipe.set_state(Gst.State.PLAYING)
loop.run()
# Going to NULL makes whepsrc DELETE its session.
pipe.set_state(Gst.State.NULL)
print(f"decoded video frames: {counts['video']}, audio buffers: {counts['audio']}")
sys.exit(0 if result["ok"] else 1)
