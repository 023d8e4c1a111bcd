#!/usr/bin/env python3
"""faultnet.py: network clients for the fault tests (tests/fault/*.sh).

  faultnet.py health UNIX_SOCK                      one HEALTH request; prints the JSON; exit 0 if ok
  faultnet.py infer UNIX_SOCK MODEL H W C           one INFER [1,H,W,C]; prints the status name
  faultnet.py flood UNIX_SOCK MODEL H W C N CONNS   N INFER requests pipelined over CONNS
                                                    connections at once; prints {"status": count}
  faultnet.py hold-unix UNIX_SOCK N SECONDS         opens N connections, each sends half a frame
                                                    header, holds them SECONDS, prints how many opened
  faultnet.py hold-http PORT N SECONDS              N connections to 127.0.0.1:PORT, each sends a
                                                    request line and one header byte per second
Speaks docs/protocol.md: 24-byte little-endian header "VDMS", version 1, op, length, aux, id.
"""
import json
import socket
import struct
import sys
import time

STATUS = ["ok", "nomem", "invalid", "not_found", "state", "io", "db", "conn", "busy", "timeout",
          "protocol", "unsupported", "image", "limit", "model", "lease_lost", "canceled", "empty",
          "auth", "internal"]


def frame(op, rid, aux, payload):
    return b"VDMS" + struct.pack("<HHIIQ", 1, op, len(payload), aux, rid) + payload


def infer_payload(model, shape):
    n = 1
    for d in shape:
        n *= d
    name = model.encode()
    return (bytes([len(name)]) + name + bytes([1, len(shape), 0, 0]) +
            b"".join(struct.pack("<I", d) for d in shape) + struct.pack("<f", 0.25) * n)


def read_frame(s):
    hdr = b""
    while len(hdr) < 24:
        chunk = s.recv(24 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    magic, ver, op, length, aux, rid = struct.unpack("<4sHHIIQ", hdr)
    assert magic == b"VDMS", hdr
    body = b""
    while len(body) < length:
        chunk = s.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return op, aux, rid, body


def unix(path, timeout=60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def main():
    cmd = sys.argv[1]
    if cmd == "health":
        s = unix(sys.argv[2], 10)
        try:
            s.sendall(frame(3, 1, 0, b""))
        except OSError:
            pass  # a server that refuses the connection answers first, then closes
        try:
            r = read_frame(s)
        except OSError:
            r = None
        if r is None or r[1] != 0:
            print(r)
            return 1
        print(r[3].decode())
        return 0
    if cmd == "infer":
        path, model, h, w, c = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
        s = unix(path)
        s.sendall(frame(1, 1, 0, infer_payload(model, [1, h, w, c])))
        r = read_frame(s)
        print("closed" if r is None else STATUS[r[1]] if r[1] < len(STATUS) else r[1])
        if r is not None and r[1]:
            print(r[3].decode(errors="replace"), file=sys.stderr)
        return 0 if r is not None and r[1] == 0 else 1
    if cmd == "flood":
        path, model = sys.argv[2], sys.argv[3]
        h, w, c, n, conns = map(int, sys.argv[4:9])
        msg = infer_payload(model, [1, h, w, c])
        socks = [unix(path) for _ in range(conns)]
        sent = [0] * conns
        for i in range(n):  # all requests go out before any answer is read
            k = i % conns
            socks[k].sendall(frame(1, i + 1, 0, msg))
            sent[k] += 1
        counts = {}
        for k, s in enumerate(socks):
            for _ in range(sent[k]):
                r = read_frame(s)
                name = "closed" if r is None else STATUS[r[1]] if r[1] < len(STATUS) else str(r[1])
                counts[name] = counts.get(name, 0) + 1
                if r is None:
                    break
        print(json.dumps(counts, sort_keys=True))
        return 0
    if cmd in ("hold-unix", "hold-http"):
        n, secs = int(sys.argv[3]), float(sys.argv[4])
        socks = []
        for _ in range(n):
            try:
                if cmd == "hold-unix":
                    s = unix(sys.argv[2], 5)
                    s.sendall(b"VDMS\x01\x00\x03")  # 7 of 24 header bytes
                else:
                    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5)
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                socks.append(s)
            except OSError:
                break
        print(len(socks), flush=True)
        end = time.time() + secs
        while time.time() < end:
            time.sleep(1)
            for s in socks:
                try:
                    if cmd == "hold-http":
                        s.send(b"a")  # one header byte a second, never finished
                except OSError:
                    pass
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
