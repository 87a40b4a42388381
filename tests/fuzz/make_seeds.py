#!/usr/bin/python3
"""Writes the generated part of the fuzz seed corpora (tests/fuzz/seeds/): RTP from the real
captures in tests/fixtures/rtp (Chromium and x264 H.264, cut into runs of 24 packets, behind
the codec byte of `wisp::fuzzing::rtp`), RTCP as browsers send it (receiver reports, PLI, FIR,
REMB, NACK, transport-wide feedback, SDES, BYE), and request bodies. The offer and sdpfrag
seeds are the conformance fixtures; the TURN seeds were captured off coturn's turnutils_uclient
(tests/fuzz/capture_turn.py). Deterministic: rerunning writes the same files."""
import os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEEDS = os.path.join(HERE, "seeds")


def write(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    with open(os.path.join(SEEDS, target, name), "wb") as f:
        f.write(data)


def rtp_seeds():
    fixtures = os.path.join(ROOT, "tests", "fixtures", "rtp")
    for name in sorted(os.listdir(fixtures)):
        data = open(os.path.join(fixtures, name), "rb").read()
        packets, i = [], 0
        while i + 2 <= len(data):
            n = struct.unpack(">H", data[i:i + 2])[0]
            packets.append(data[i:i + 2 + n])
            i += 2 + n
        for k in range(0, min(len(packets), 24 * 4), 24):
            # 2: H.264 in wisp::fuzzing::rtp's codec choice.
            write("rtp", f"{name[:-4]}-{k // 24}", bytes([2]) + b"".join(packets[k:k + 24]))


def rtcp(pt, count, body):
    length = (4 + len(body)) // 4 - 1
    return struct.pack(">BBH", 0x80 | count, pt, length) + body


def rtcp_seeds():
    media, sender = 0x11223344, 0x55667788
    rr = rtcp(201, 1, struct.pack(">I", sender) + struct.pack(">IIIIII", media, (12 << 24) | 300, 0x00010203, 45, 0x12345678, 6553))
    sr = rtcp(200, 0, struct.pack(">IIIIII", sender, 0xe1234567, 0x89abcdef, 90000, 100, 120000))
    pli = rtcp(206, 1, struct.pack(">II", sender, media))
    fir = rtcp(206, 4, struct.pack(">IIIB3x", sender, 0, media, 7))
    remb = rtcp(206, 15, struct.pack(">II", sender, 0) + b"REMB" + struct.pack(">BBH", 1, (3 << 2) | 0x0, 0x4240) + struct.pack(">I", media))
    nack = rtcp(205, 1, struct.pack(">IIHH", sender, media, 1000, 0b1010000000000101))
    twcc = rtcp(205, 15, struct.pack(">IIHHIB", sender, media, 10, 4, 0x000123, 1) + bytes([0x20, 0x04, 0x10, 0x14, 0x18, 0x1c, 0, 0]))
    sdes = rtcp(202, 1, struct.pack(">I", sender) + bytes([1, 4]) + b"wisp" + bytes([0, 0]))
    bye = rtcp(203, 1, struct.pack(">I", sender))
    prefix = struct.pack(">I", media)
    for name, pkts in [("rr", [rr]), ("sr-rr", [sr, rr]), ("rr-pli", [rr, pli]), ("rr-fir", [rr, fir]),
                       ("rr-remb", [rr, remb]), ("rr-nack", [rr, nack]), ("twcc", [twcc]),
                       ("rr-sdes-bye", [rr, sdes, bye])]:
        write("rtcp", name, prefix + b"".join(pkts))


def jwt(claims):
    """HS256 with the fuzz target's secret, so the fuzzer starts from tokens that verify."""
    import base64, hashlib, hmac, json
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(b"fuzz-secret-0123456789", f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def body_seeds():
    for name, text in [
        ("layer-rid", '{"mediaId":"1","rid":"h"}'),
        ("layer-height", '{"mediaId":1,"maxHeight":360}'),
        ("layer-empty", ''),
        ("events", '["active","layers","viewercount","reconnect"]'),
        ("jwt", jwt({"room": "demo", "role": "publish", "exp": 4102444800, "name": "alice"})),
        ("jwt-expired", jwt({"room": "*", "role": "admin", "exp": 1000})),
        ("turn-user", "4102444800:demo:x"),
        ("ttl", "1h30m"),
    ]:
        write("bodies", name, text.encode())


rtp_seeds()
rtcp_seeds()
body_seeds()
print("seeds written under", SEEDS, file=sys.stderr)
