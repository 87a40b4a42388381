#!/usr/bin/python3
"""Plays a WHEP stream with GStreamer's whepsrc and decodes it.

Exits 0 once --frames video frames and some audio buffers were decoded, 1 on error or
after --timeout seconds, 3 when the server said in words that it cannot serve this player
(a WHEP 406 counter-offer: whepsrc reports its body, whose SDP `i=` line carries the reason;
printed as "told in words: ..."). Prints what it decoded. Used by gst_lab.sh inside the lab
namespace.

Without --video-caps the offer lists only the video codecs this GStreamer can depayload and
decode (whepsrc's own default also offers AV1 and H.265, which 1.22 may not be able to
depayload or decode: a player must not offer what it cannot play).
"""
import argparse
import os
import re
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("--frames", type=int, default=30)
ap.add_argument("--timeout", type=int, default=60)
ap.add_argument("--video-caps", default=None)
ap.add_argument("--token", default=None, help="sent as Authorization: Bearer (auth-token)")
ap.add_argument("--progress", default=None,
                help="keep playing until --timeout or SIGINT, writing the count of decoded "
                     "video frames to this file four times a second")
args = ap.parse_args()

Gst.init(None)
pipe = Gst.Pipeline.new("player")
src = Gst.ElementFactory.make("whepsrc", "src")
if src is None:
    print("whepsrc not found (GST_PLUGIN_PATH?)")
    sys.exit(1)
src.set_property("whep-endpoint", args.url)
if args.token:
    src.set_property("auth-token", args.token)


def playable_video_caps():
    """whepsrc's default video codecs, less those without an RTP depayloader and a decoder."""
    depayloaders = Gst.ElementFactory.list_get_elements(
        Gst.ELEMENT_FACTORY_TYPE_DEPAYLOADER, Gst.Rank.MARGINAL)
    decoders = Gst.ElementFactory.list_get_elements(
        Gst.ELEMENT_FACTORY_TYPE_DECODER, Gst.Rank.MARGINAL)
    caps = Gst.Caps.new_empty()
    kept = []
    for pt, name, raw in [(101, "VP8", "video/x-vp8"), (102, "VP9", "video/x-vp9"),
                          (103, "H264", "video/x-h264"), (104, "H265", "video/x-h265"),
                          (105, "AV1", "video/x-av1")]:
        rtp = Gst.Caps.from_string(
            f"application/x-rtp,media=video,payload={pt},encoding-name={name},clock-rate=90000")
        if (Gst.ElementFactory.list_filter(depayloaders, rtp, Gst.PadDirection.SINK, False)
                and Gst.ElementFactory.list_filter(
                    decoders, Gst.Caps.from_string(raw), Gst.PadDirection.SINK, False)):
            caps.append(rtp)
            kept.append(name)
    print(f"offering video: {' '.join(kept)}")
    return caps


src.set_property("video-caps", Gst.Caps.from_string(args.video_caps) if args.video_caps
                 else playable_video_caps())
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
            if not args.progress:
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
        # whepsrc puts "Unexpected response: 406 - <body, ASCII-escaped>" in the debug text;
        # wisp's counter-offer says why in its session information line (i=).
        m = re.search(r"Unexpected response: 406 - .*?\\r\\ni=(.*?)\\r\\n", f"{err.message} {dbg}")
        if m:
            result["told"] = m.group(1)
        else:
            print(f"error: {err.message} ({dbg})")
        loop.quit()


bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
GLib.timeout_add_seconds(args.timeout, loop.quit)
if args.progress:
    def write_progress():
        with open(args.progress + ".tmp", "w") as f:
            f.write(f"{counts['video']}\n")
        os.replace(args.progress + ".tmp", args.progress)
        return True
    GLib.timeout_add(250, write_progress)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2, lambda: loop.quit() or False)
pipe.set_state(Gst.State.PLAYING)
loop.run()
# Going to NULL makes whepsrc DELETE its session.
pipe.set_state(Gst.State.NULL)
print(f"decoded video frames: {counts['video']}, audio buffers: {counts['audio']}")
if "told" in result:
    print(f"told in words: {result['told']}")
    sys.exit(3 if counts == {"video": 0, "audio": 0} else 1)
sys.exit(0 if result["ok"] else 1)
