#!/usr/bin/env python3
"""A WHIP publisher and a WHEP player built on aiortc, for the interop matrix.

  aiortc_client.py publish <whip-url> [--seconds 60]
      sends a moving test pattern (VP8) and a tone (Opus) until killed or the time is up;
      DELETEs its session on SIGINT/SIGTERM.
  aiortc_client.py play <whep-url> [--frames 30] [--timeout 60]
      receives audio and video and exits 0 once --frames video frames were decoded,
      1 on timeout or error, 3 when the server said in words that it cannot serve this
      player (a WHEP 406 counter-offer for a codec aiortc does not have: the reason is
      printed as "told in words: ...", the session DELETEd, no media received).
      It prints how long after its POST the first video frame was decoded, and whether that
      frame is the first picture it received (a late joiner served from the server's
      keyframe cache decodes the cached picture; a broken cache makes it wait for a later
      keyframe). --first-picture makes the latter a failure (exit 1).

Both send the complete offer (aiortc gathers before it returns from setLocalDescription).
"""
import argparse
import asyncio
import fractions
import math
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame


class Pattern(VideoStreamTrack):
    """A 320x240 frame whose colour bands move, so every frame differs."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        img = numpy.zeros((240, 320, 3), numpy.uint8)
        img[:, :, 0] = (numpy.arange(320) + self.n * 4) % 256
        img[:, :, 1] = (numpy.arange(240)[:, None] + self.n * 2) % 256
        self.n += 1
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(AudioStreamTrack):
    """A 440 Hz tone, 20 ms per frame."""

    def __init__(self):
        super().__init__()
        self.t = 0

    async def recv(self):
        await super().recv()  # paces at real time
        samples = 960
        t = (numpy.arange(samples) + self.t) / 48000
        self.t += samples
        pcm = (numpy.sin(2 * math.pi * 440 * t) * 8000).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.t
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def http(method, url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=20) as r:
        return r.status, dict(r.headers), r.read().decode()


class ToldInWords(Exception):
    """The server answered 406 with a counter-offer and its reason (X-Wisp-Reason)."""


async def exchange(pc, url):
    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()
    POSTED.append(time.monotonic())
    try:
        status, headers, answer = await loop.run_in_executor(
            None, http, "POST", url, pc.localDescription.sdp, "application/sdp")
    except urllib.error.HTTPError as e:
        if e.code != 406:
            raise SystemExit(f"POST {url}: {e.code} {e.read().decode(errors='replace')}")
        # WHEP draft-03 §4.2: a counter-offer. aiortc lacks the codec it offers (it would
        # answer with the m-line rejected), so give the session back and report the reason.
        reason = e.headers.get("X-Wisp-Reason") or "(406 without a reason)"
        location = e.headers.get("Location")
        if location:
            await loop.run_in_executor(None, http, "DELETE", urllib.parse.urljoin(url, location))
        raise ToldInWords(reason)
    if status != 201:
        raise SystemExit(f"POST {url}: {status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return urllib.parse.urljoin(url, headers.get("Location") or headers.get("location"))


async def publish(url, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver(Pattern(), direction="sendonly")
    pc.addTransceiver(Tone(), direction="sendonly")
    session = await exchange(pc, url)
    stop = asyncio.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(s, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    await asyncio.get_running_loop().run_in_executor(None, http, "DELETE", session)
    await pc.close()


# When the offer was POSTed.
POSTED = []
# The RTP timestamp of the first video picture this player received (see `play`).
FIRST_RECEIVED = []


# The video receiver; its timestamp mapper's origin is the RTP timestamp of the first frame
# aiortc handed to its decoder (decoded frames' pts count from it).
VIDEO_RECEIVER = []


def tap_first_video_timestamp():
    """Notes the first video RTP timestamp the receiver is handed (before decoding)."""
    original = RTCRtpReceiver._handle_rtp_packet

    async def tapped(self, packet, arrival_time_ms):
        if not FIRST_RECEIVED and self._RTCRtpReceiver__kind == "video" and packet.payload:
            FIRST_RECEIVED.append(packet.timestamp)
            VIDEO_RECEIVER.append(self)
        return await original(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = tapped


async def play(url, frames, timeout, first_picture):
    tap_first_video_timestamp()
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    done = asyncio.get_running_loop().create_future()
    counts = {"video": 0, "audio": 0}
    first = {}  # seconds after the POST and RTP timestamp of the first decoded video frame
    connected = []  # seconds after the POST when the connection came up

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected" and not connected and POSTED:
            connected.append(time.monotonic() - POSTED[0])

    dims = [0, 0]

    @pc.on("track")
    def on_track(track):
        async def pull():
            try:
                while True:
                    frame = await track.recv()
                    counts[track.kind] += 1
                    if track.kind == "video":
                        dims[:] = [frame.width, frame.height]
                        if not first:
                            first.update(after=time.monotonic() - POSTED[0], pts=frame.pts)
                    # Audio too: a RED publisher's audio reaches aiortc as plain Opus.
                    if counts["video"] >= frames and counts["audio"] > 0 and not done.done():
                        done.set_result(tuple(dims))
            except Exception:
                pass
        asyncio.ensure_future(pull())

    try:
        session = await exchange(pc, url)
    except ToldInWords as e:
        print(f"told in words: {e}")
        print(f"media received: {counts}")
        await pc.close()
        return 3 if counts == {"video": 0, "audio": 0} else 1
    try:
        w, h = await asyncio.wait_for(done, timeout)
        print(f"aiortc decoded {counts['video']} video frames ({w}x{h}) and {counts['audio']} audio frames")
        ok = True
        origin = VIDEO_RECEIVER[0]._RTCRtpReceiver__timestamp_mapper._origin
        decoded_ts = (origin + first["pts"]) % 2**32
        is_first = bool(FIRST_RECEIVED) and decoded_ts == FIRST_RECEIVED[0]
        up = f"{connected[0]:.2f}" if connected else "?"
        print(f"first video frame {first['after']:.2f} s after the POST (connected after {up} s); "
              f"{'it is' if is_first else 'NOT'} the first picture received")
        if first_picture and not is_first:
            ok = False
    except asyncio.TimeoutError:
        print(f"timeout: {counts}", file=sys.stderr)
        ok = False
    await asyncio.get_running_loop().run_in_executor(None, http, "DELETE", session)
    await pc.close()
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["publish", "play"])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--first-picture", action="store_true")
    a = ap.parse_args()
    if a.mode == "publish":
        asyncio.run(publish(a.url, a.seconds))
    else:
        sys.exit(asyncio.run(play(a.url, a.frames, a.timeout, a.first_picture)))


if __name__ == "__main__":
    main()
