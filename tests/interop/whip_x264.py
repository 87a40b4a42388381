#!/usr/bin/python3
"""A GStreamer whipsink publisher of x264 H.264 and Opus that ignores keyframe requests, as OBS
does (its WebRTC stack, libdatachannel, cannot answer PLI).

  whip_x264.py <whip-url> [--aggregate zero-latency|none] [--gop 120] [--threads 4]

x264: High profile asked for, tune=zerolatency (sliced threads: --threads slices a picture),
a keyframe every --gop frames at 30 fps, rtph264pay config-interval=-1 (SPS/PPS before each
IDR slice) and the given aggregate-mode. Every upstream force-key-unit event (the PLI/FIR that
wisp may send) is dropped before it reaches the encoder and counted. Runs until SIGINT or
SIGTERM, then stops the pipeline, which makes whipsink DELETE its session.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("--aggregate", default="zero-latency")
ap.add_argument("--gop", type=int, default=120)
ap.add_argument("--threads", type=int, default=4)
a = ap.parse_args()

Gst.init(None)
pipe = Gst.parse_launch(
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! "
    f"x264enc name=enc tune=zerolatency threads={a.threads} key-int-max={a.gop} "
    "speed-preset=ultrafast bitrate=600 ! video/x-h264,profile=high ! "
    f"rtph264pay pt=102 config-interval=-1 aggregate-mode={a.aggregate} ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000 ! whip.sink_0 "
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! "
    "rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"
    f"clock-rate=48000 ! whip.sink_1 whipsink name=whip whip-endpoint={a.url}")
dropped = [0]


def drop_keyframe_requests(_pad, info):
    structure = info.get_event().get_structure()
    if structure is not None and structure.get_name() == "GstForceKeyUnit":
        dropped[0] += 1
        return Gst.PadProbeReturn.DROP
    return Gst.PadProbeReturn.OK


pipe.get_by_name("enc").get_static_pad("src").add_probe(
    Gst.PadProbeType.EVENT_UPSTREAM, drop_keyframe_requests)
loop = GLib.MainLoop()


def stop(*_):
    loop.quit()


def on_message(_bus, msg):
    if msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        print(f"error: {err.message} {dbg or ''}", file=sys.stderr)
        loop.quit()


bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
for s in (signal.SIGINT, signal.SIGTERM):
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, s, stop)
pipe.set_state(Gst.State.PLAYING)
loop.run()
pipe.set_state(Gst.State.NULL)
print(f"keyframe requests ignored: {dropped[0]}")
