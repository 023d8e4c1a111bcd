#!/usr/bin/env python3
"""infer_client.py: a model-server client written from docs/protocol.md alone (standard
library only), used by tests/integration/model_server.sh to check that the document is enough
for a client in another language.

  infer_client.py SOCKET health|models
  infer_client.py SOCKET infer MODEL N H W C VALUE   (n items filled with VALUE; prints JSON)
  infer_client.py SOCKET pipeline MODEL H W C         (3 requests sent before any answer is read)

SOCKET is a Unix socket path or tcp:HOST:PORT. With $VISIOND_MODEL_SECRET_FILE set, the client
first runs the handshake of docs/protocol.md ("Authentication") and checks the server's proof; it
exits 1 with "auth: ..." on stderr when either side refuses.
"""
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import sys

HDR = struct.Struct("<4sHHIIQ")  # magic, version, op, length, aux, id
OP_INFER, OP_MODELS, OP_HEALTH, OP_HELLO, OP_AUTH = 1, 2, 3, 6, 7
CONTEXT = b"visiond model-server auth v1 "


def frame(op, rid, timeout_ms, payload=b""):
    return HDR.pack(b"VDMS", 1, op, len(payload), timeout_ms, rid) + payload


def infer_payload(model, shape, value):
    name = model.encode()
    count = 1
    for d in shape:
        count *= d
    return (bytes([len(name)]) + name + bytes([1, len(shape), 0, 0]) +
            struct.pack("<%dI" % len(shape), *shape) + struct.pack("<f", value) * count)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("server closed the connection")
        buf += chunk
    return buf


def read_answer(s):
    magic, version, op, length, status, rid = HDR.unpack(read_exact(s, HDR.size))
    assert magic == b"VDMS" and version == 1, (magic, version)
    return op, status, rid, read_exact(s, length)


def parse_outputs(p):
    k = p[0]
    off = 4
    outs = []
    for _ in range(k):
        n = p[off]
        name = p[off + 1:off + 1 + n].decode()
        off += 1 + n
        dtype, rank = p[off], p[off + 1]
        assert dtype == 1
        off += 4
        dims = list(struct.unpack_from("<%dI" % rank, p, off))
        off += 4 * rank
        count = 1
        for d in dims:
            count *= d
        values = struct.unpack_from("<%df" % count, p, off)
        off += 4 * count
        outs.append({"name": name, "shape": dims, "min": min(values), "max": max(values)})
    assert off == len(p), "trailing bytes"
    return outs


def proof(key, snonce, cnonce, side):
    return hmac.new(key, snonce + cnonce + CONTEXT + side, hashlib.sha256).digest()


def authenticate(s, path):
    key = open(path, "rb").read().rstrip()  # trailing whitespace is not part of the secret
    cnonce = secrets.token_bytes(32)
    s.sendall(frame(OP_HELLO, 0, 0, cnonce))
    op, status, rid, p = read_answer(s)
    if status != 0:
        sys.exit("auth: the server does not authenticate: %s" % p.decode(errors="replace"))
    snonce, server_proof = p[:32], p[32:]
    if not hmac.compare_digest(server_proof, proof(key, snonce, cnonce, b"server")):
        sys.exit("auth: the server's proof is wrong (the secrets differ)")
    s.sendall(frame(OP_AUTH, 0, 0, proof(key, snonce, cnonce, b"client")))
    op, status, rid, p = read_answer(s)
    if status != 0:
        sys.exit("auth: refused (status %d): %s" % (status, p.decode(errors="replace")))


def connect(address):
    if address.startswith("tcp:"):
        host, port = address[4:].rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(address[5:] if address.startswith("unix:") else address)
    if os.environ.get("VISIOND_MODEL_SECRET_FILE"):
        authenticate(s, os.environ["VISIOND_MODEL_SECRET_FILE"])
    return s


def main():
    s = connect(sys.argv[1])
    cmd = sys.argv[2]
    if cmd in ("health", "models"):
        s.sendall(frame(OP_HEALTH if cmd == "health" else OP_MODELS, 1, 5000))
        op, status, rid, p = read_answer(s)
        assert status == 0 and rid == 1, (status, p)
        print(json.dumps(json.loads(p.decode())))
    elif cmd == "infer":
        model = sys.argv[3]
        shape = [int(x) for x in sys.argv[4:8]]
        value = float(sys.argv[8])
        s.sendall(frame(OP_INFER, 42, 30000, infer_payload(model, shape, value)))
        op, status, rid, p = read_answer(s)
        assert rid == 42 and op == OP_INFER
        if status:
            print(json.dumps({"status": status, "message": p.decode()}))
        else:
            print(json.dumps({"status": 0, "outputs": parse_outputs(p)}))
    elif cmd == "pipeline":
        model = sys.argv[3]
        shape = [1] + [int(x) for x in sys.argv[4:7]]
        data = b"".join(frame(OP_INFER, rid, 30000, infer_payload(model, shape, 0.0))
                        for rid in (101, 102, 103))
        s.sendall(data)
        ids = sorted(read_answer(s)[2] for _ in range(3))
        print(json.dumps({"ids": ids}))
    s.close()


if __name__ == "__main__":
    main()
