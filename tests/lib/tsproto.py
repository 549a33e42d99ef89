#!/usr/bin/env python3
# tests/lib/tsproto.py SOCKET lock|unlock PASSFILE - speak tokensign's own
# protocol (docs/PROTOCOL.md) for tests that must lock the agent before the
# client commands for it exist: HELLO (100) then LOCK (105) / UNLOCK (106)
# with the passphrase read from PASSFILE (never argv).  Exit 0 on SUCCESS.
import socket
import struct
import sys


def frame(t, body=b""):
    return struct.pack(">IB", len(body) + 1, t) + body


def sstr(b):
    return struct.pack(">I", len(b)) + b


def recv(s):
    hdr = b""
    while len(hdr) < 4:
        c = s.recv(4 - len(hdr))
        if not c:
            raise SystemExit("agent closed")
        hdr += c
    (n,) = struct.unpack(">I", hdr)
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            raise SystemExit("agent closed")
        body += c
    return body


sock, op, passfile = sys.argv[1:4]
pw = open(passfile, "rb").read().strip()
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.sendall(frame(100, struct.pack(">I", 1) + sstr(b"tsproto.py")))
if recv(s)[0] != 120:
    raise SystemExit("HELLO refused")
s.sendall(frame(105 if op == "lock" else 106, sstr(pw)))
r = recv(s)
sys.exit(0 if r[0] == 121 else 1)
