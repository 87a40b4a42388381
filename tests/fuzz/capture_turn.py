#!/usr/bin/python3
"""Captures real TURN client messages as fuzz seeds (tests/fuzz/seeds/turn/): a UDP relay
between coturn's turnutils_uclient and a wisp TURN server records every datagram the client
sends (Allocate with EVEN-PORT, Refresh, CreatePermission, ChannelBind, Send, ChannelData).
Each is written twice, behind the two modes of `wisp::fuzzing::turn`: 0 as sent, 1 to be
re-signed with valid credentials by the target.

  capture_turn.py LISTEN_PORT WISP_TURN_PORT SECONDS   (then run uclient against LISTEN_PORT)
"""
import os, select, socket, sys, time

listen_port, server_port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "turn")
os.makedirs(out, exist_ok=True)
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(("127.0.0.1", listen_port))
upstream = {}  # client address -> socket towards wisp
seen = set()
end = time.time() + seconds
while time.time() < end:
    socks = [front] + list(upstream.values())
    ready, _, _ = select.select(socks, [], [], 0.2)
    for s in ready:
        data, addr = s.recvfrom(65535)
        if s is front:
            up = upstream.get(addr)
            if up is None:
                up = upstream[addr] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                up.connect(("127.0.0.1", server_port))
            up.send(data)
            # One seed per distinct message type (STUN method and class) or ChannelData.
            kind = data[:2] if data and data[0] < 4 else b"\x40"
            if len(seen) < 64 and (kind, len(data) // 64) not in seen:
                seen.add((kind, len(data) // 64))
                n = len(seen)
                for mode in (0, 1):
                    with open(os.path.join(out, f"uclient-{n:02d}-{mode}"), "wb") as f:
                        f.write(bytes([mode]) + data)
        else:
            client = [a for a, u in upstream.items() if u is s][0]
            front.sendto(data, client)
print(f"{len(seen)} TURN seeds in {out}", file=sys.stderr)
