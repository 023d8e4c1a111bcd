#!/usr/bin/python3
"""immich_client.py: a client of Immich's machine-learning service, written from Immich's
server (server/src/repositories/machine-learning.repository.ts), standard library only.

Immich's server checks the service with GET /ping and sends each prediction as
`fetch(new URL('/predict', url), {method: 'POST', body: formData})` where formData holds
`entries` (JSON.stringify of the request) and then `image` (new Blob([file bytes]), so file
name "blob", type application/octet-stream) or `text`. The body is built here byte for byte
as Node's fetch (undici) serialises a FormData: boundary "----formdata-undici-0" + 11 digits,
each part "--BOUNDARY\\r\\nContent-Disposition: form-data; name=\\"NAME\\"" (+ "; filename=...
\\r\\nContent-Type: ..." for a blob), a blank line, the value, CRLF; "--BOUNDARY--\\r\\n" at the
end; names escaped (\\n %0A, \\r %0D, \\" %22), line breaks of text values made CRLF. The
headers are Node's (no token: Immich sends none).

    immich_client.py URL ping
    immich_client.py URL predict-faces MODEL MIN_SCORE IMAGE       (detection + recognition)
    immich_client.py URL predict-clip MODEL IMAGE                  (clip visual)
    immich_client.py URL predict-text MODEL TEXT                   (clip textual)
    immich_client.py URL raw ENTRIES_JSON [image=FILE | text=TEXT]...
prints the answer's body; exits 0 for a 2xx, 1 otherwise (raw prints "STATUS BODY" and exits
0). With $VD_OPENAPI_DIR set, each response is also recorded there for tests/lib/openapi_check.py
(the format of tests/lib/common.sh's vd_openapi_record).
"""
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request


def _escape(name):
    return name.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


def form_data(fields):
    """fields: (name, value) in order; value str (a text field) or bytes (a Blob, file name
    "blob"). Returns (content type, body) as undici's FormData serialisation makes them."""
    boundary = "----formdata-undici-0" + str(random.randrange(10 ** 11)).zfill(11)
    out = []
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_escape(name)}"'
        if isinstance(value, bytes):
            out.append((head + '; filename="blob"\r\nContent-Type: application/octet-stream\r\n\r\n')
                       .encode() + value + b"\r\n")
        else:
            text = re.sub(r"\r\n|\r|\n", "\r\n", value)
            out.append((head + "\r\n\r\n" + text + "\r\n").encode())
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


def _record(method, path, status, reason, headers, body):
    d = os.environ.get("VD_OPENAPI_DIR")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    name = f"{d}/{time.time_ns()}-{os.getpid()}-{random.randrange(1 << 30)}"
    with open(name + ".req", "w") as f:
        f.write(f"{method} {path}\n")
    with open(name + ".hdr", "w") as f:
        f.write(f"HTTP/1.1 {status} {reason}\r\n")
        for k, v in headers:
            f.write(f"{k}: {v}\r\n")
        f.write("\r\n")
    with open(name + ".body", "wb") as f:
        f.write(body)


def request(base, method, path, fields=None):
    """Returns (status, body bytes)."""
    headers = {"accept": "*/*", "accept-language": "*", "sec-fetch-mode": "cors",
               "user-agent": "node", "accept-encoding": "gzip, deflate"}
    data = None
    if fields is not None:
        ctype, data = form_data(fields)
        headers["content-type"] = ctype
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, reason, hdrs, body = r.status, r.reason, r.getheaders(), r.read()
    except urllib.error.HTTPError as e:
        status, reason, hdrs, body = e.code, e.reason, e.headers.items(), e.read()
    _record(method, path, status, reason, hdrs, body)
    return status, body


def entries_faces(model, min_score):
    return {"facial-recognition": {"detection": {"modelName": model, "options": {"minScore": min_score}},
                                   "recognition": {"modelName": model}}}


def entries_clip_visual(model):
    return {"clip": {"visual": {"modelName": model}}}


def entries_clip_text(model, language=None):
    options = {} if language is None else {"language": language}
    return {"clip": {"textual": {"modelName": model, "options": options}}}


def predict(base, entries, image=None, text=None):
    """Immich's getFormData: entries first, then the image blob or the text."""
    fields = [("entries", json.dumps(entries, separators=(",", ":")))]
    if image is not None:
        fields.append(("image", image))
    elif text is not None:
        fields.append(("text", text))
    return request(base, "POST", "/predict", fields)


def main(argv):
    base, cmd, args = argv[1], argv[2], argv[3:]
    if cmd == "ping":
        status, body = request(base, "GET", "/ping")
    elif cmd == "predict-faces":
        status, body = predict(base, entries_faces(args[0], float(args[1])),
                               image=open(args[2], "rb").read())
    elif cmd == "predict-clip":
        status, body = predict(base, entries_clip_visual(args[0]), image=open(args[1], "rb").read())
    elif cmd == "predict-text":
        status, body = predict(base, entries_clip_text(args[0]), text=args[1])
    elif cmd == "raw":
        fields = [("entries", args[0])]
        for a in args[1:]:
            k, v = a.split("=", 1)
            fields.append((k, open(v, "rb").read() if k == "image" else v))
        status, body = request(base, "POST", "/predict", fields)
        sys.stdout.write(f"{status} {body.decode(errors='replace')}\n")
        return 0
    else:
        sys.exit(f"unknown command {cmd}")
    sys.stdout.write(body.decode(errors="replace") + ("\n" if cmd != "ping" else ""))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
