#!/usr/bin/python3
"""Captures real H.264 RTP packetizations as test fixtures (tests/fixtures/rtp/*.rtp).

A fixture file is the RTP packets as sent, each prefixed by its length as a big-endian u16.
The keyframe cache's tests replay them (tests/it/keyframe_cache.rs, src/media/gop.rs).

  capture_rtp.py gst OUT --aggregate zero-latency|none [--threads N] [--seconds S]
      GStreamer x264 (High profile, tune=zerolatency, so sliced threads: with --threads 4
      every picture is four slices) through rtph264pay config-interval=-1. aggregate-mode
      none packetizes as libdatachannel (OBS) does: each NAL unit alone or as FU-A, never
      STAP-A.
  capture_rtp.py whep URL OUT [--seconds S]
      Plays a WHEP endpoint with aiortc, offering H.264 only, and writes the RTP packets it
      receives (payloads untouched; used in the lab for Chromium's H.264: wisp, then
      `tests/browser/cell.mjs publish <base> <room> h264`, then this against /whep/<room>).
"""
import argparse
import struct
import sys


def write_packets(path, packets):
    with open(path, "wb") as f:
        for p in packets:
            f.write(struct.pack(">H", len(p)) + p)
    print(f"{path}: {len(packets)} packets, {sum(len(p) for p in packets)} bytes")


def capture_gst(args):
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    frames = int(args.seconds * 30)
    pipe = Gst.parse_launch(
        f"videotestsrc num-buffers={frames} pattern=ball ! "
        "video/x-raw,width=640,height=360,framerate=30/1 ! "
        f"x264enc tune=zerolatency threads={args.threads} key-int-max=30 speed-preset=ultrafast "
        "bitrate=800 ! video/x-h264,profile=high ! "
        f"rtph264pay pt=102 mtu=1200 config-interval=-1 aggregate-mode={args.aggregate} ! "
        "appsink name=sink sync=false emit-signals=false max-buffers=0")
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    packets = []
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            packets.append(bytes(info.data))
            buf.unmap(info)
    pipe.set_state(Gst.State.NULL)
    write_packets(args.out, packets)


def capture_whep(args):
    import asyncio
    import urllib.request
    from aiortc import RTCPeerConnection, RTCSessionDescription, RTCRtpReceiver
    from aiortc.rtcrtpsender import RTCRtpSender

    packets = []
    original = RTCRtpReceiver._handle_rtp_packet

    async def tap(self, packet, arrival_time_ms):
        if self._RTCRtpReceiver__kind == "video":
            header = struct.pack(">BBHII", 0x80, (0x80 if packet.marker else 0) | 102,
                                 packet.sequence_number, packet.timestamp, packet.ssrc)
            packets.append(header + packet.payload)
        return await original(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = tap

    async def run():
        pc = RTCPeerConnection()
        t = pc.addTransceiver("video", direction="recvonly")
        t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"])
        await pc.setLocalDescription(await pc.createOffer())
        req = urllib.request.Request(args.url, data=pc.localDescription.sdp.encode(),
                                     headers={"Content-Type": "application/sdp"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = r.read().decode()
            location = r.headers["Location"]
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.sleep(args.seconds)
        await pc.close()
        base = args.url.split("/whep/")[0]
        urllib.request.urlopen(urllib.request.Request(base + location, method="DELETE"))

    asyncio.run(run())
    if not packets:
        sys.exit("no video packets received")
    write_packets(args.out, packets)


ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
g = sub.add_parser("gst")
g.add_argument("out")
g.add_argument("--aggregate", default="zero-latency")
g.add_argument("--threads", type=int, default=4)
g.add_argument("--seconds", type=float, default=2.5)
w = sub.add_parser("whep")
w.add_argument("url")
w.add_argument("out")
w.add_argument("--seconds", type=float, default=6)
args = ap.parse_args()
capture_gst(args) if args.cmd == "gst" else capture_whep(args)
