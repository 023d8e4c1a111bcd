#!/usr/bin/python3
"""openapi_check.py: checks recorded HTTP responses against the API's contract (api/openapi.json).

    openapi_check.py OPENAPI_JSON RECORD_DIR

RECORD_DIR holds what tests/lib/api.sh's `req` recorded, one response per name N (sorted):
N.req (one line: METHOD URL-PATH[?QUERY]), N.hdr (the response's status line and headers, as
curl -D writes them, possibly several blocks when curl followed a 100 Continue) and N.body.

Each response must match an operation of the document: the path is matched against the
document's path templates (literal segments before parameters), the status must be one the
operation lists (a path no operation has may only be answered as x-visiond-any-path says:
404, 405 with Allow, 401), the Content-Type one of that response's media types, every header
the response marks required must be there and every documented header must fit its schema,
and a JSON body must validate against its schema (JSON Schema 2020-12, python3-jsonschema),
where additionalProperties: false makes an undocumented field an error. Prints one line per
failure and a summary; exits 1 when any response failed, 0 otherwise.
"""
import json
import os
import re
import sys

import jsonschema
from jsonschema import Draft202012Validator

try:  # RefResolver is deprecated in jsonschema >= 4.18 but still works; Debian 12 has 4.10.
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonschema import RefResolver
except ImportError:  # pragma: no cover
    RefResolver = None


def load_doc(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def deref(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


class Contract:
    def __init__(self, doc):
        self.doc = doc
        self.resolver = RefResolver("", doc) if RefResolver else None
        self.validators = {}
        self.templates = []  # (specificity, regex, template)
        for tmpl in doc["paths"]:
            segs = tmpl.strip("/").split("/") if tmpl != "/" else []
            rx = "^/" + "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segs) + "$"
            literal = tuple(0 if s.startswith("{") else 1 for s in segs)
            self.templates.append((literal, re.compile(rx), tmpl))
        self.templates.sort(key=lambda t: t[0], reverse=True)

    def match(self, path):
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]  # one trailing slash is ignored (docs/api.md)
        for _, rx, tmpl in self.templates:
            if rx.match(path):
                return tmpl
        return None

    def validate(self, schema, value):
        key = id(schema)
        v = self.validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, resolver=self.resolver) if self.resolver else \
                Draft202012Validator(schema)
            self.validators[key] = v
        errors = sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))
        return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(body)", e.message[:300])
                for e in errors[:3]]


def parse_headers(text):
    """The last header block (after any 100 Continue): status, {lower-name: value}."""
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    if not blocks:
        return None, {}
    lines = blocks[-1].splitlines()
    m = re.match(r"HTTP/[0-9.]+ (\d{3})", lines[0])
    status = m.group(1) if m else None
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return status, hdrs


def media_matches(documented, actual):
    if documented.endswith("/*"):
        return actual.startswith(documented[:-1])
    return documented == actual


def check_one(c, method, target, status, hdrs, body):
    path = target.split("?", 1)[0]
    tmpl = c.match(path)
    item = c.doc["paths"].get(tmpl) if tmpl else None
    op = item.get(method.lower()) if item else None
    if method == "HEAD" and item and not op:
        op = item.get("get")
    where = "%s %s -> %s" % (method, tmpl or path, status)
    if op is None:
        responses = c.doc["x-visiond-any-path"]["responses"]
        if status == "405" and not item:
            return [where + ": 405 for a path the document does not have"]
        if status == "404" and item:
            return [where + ": 404 for a path the document has (expected 405)"]
    else:
        responses = op["responses"]
    resp = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
    if resp is None:
        return [where + ": status not documented for this operation (documented: %s)"
                % ", ".join(sorted(responses))]
    resp = deref(c.doc, resp)
    problems = []
    for name, h in (resp.get("headers") or {}).items():
        h = deref(c.doc, h)
        val = hdrs.get(name.lower())
        if val is None:
            if h.get("required"):
                problems.append(where + ": required header %s is missing" % name)
            continue
        for p in c.validate(h.get("schema", {}), val):
            problems.append(where + ": header %s: %s" % (name, p))
    content = resp.get("content")
    if not content:
        if body and method != "HEAD":
            problems.append(where + ": a body where the document has none (%d bytes)" % len(body))
        return problems
    if method == "HEAD":
        return problems
    ctype = hdrs.get("content-type", "").split(";")[0].strip().lower()
    media = [m for m in content if media_matches(m, ctype)]
    if not media:
        return problems + [where + ": Content-Type %r not documented (documented: %s)"
                           % (ctype, ", ".join(content))]
    schema = content[media[0]].get("schema")
    if ctype == "application/json" and schema is not None:
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return problems + [where + ": the body is not JSON: %s" % e]
        problems += [where + ": " + p for p in c.validate(schema, value)]
    return problems


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi_check.py OPENAPI_JSON RECORD_DIR")
    c = Contract(load_doc(sys.argv[1]))
    rec = sys.argv[2]
    nums = sorted(f[:-4] for f in os.listdir(rec) if f.endswith(".req"))
    failures, checked, skipped = [], 0, 0
    for n in nums:
        base = os.path.join(rec, n)
        try:
            with open(base + ".req", encoding="utf-8", errors="replace") as f:
                method, target = f.read().split(None, 1)
            with open(base + ".hdr", encoding="latin-1") as f:
                status, hdrs = parse_headers(f.read())
            body = open(base + ".body", "rb").read() if os.path.exists(base + ".body") else b""
        except (OSError, ValueError):
            skipped += 1
            continue
        if status is None:  # no answer at all (connection refused, reset, time-out)
            skipped += 1
            continue
        checked += 1
        failures += check_one(c, method.upper(), target.strip(), status, hdrs, body)
    for f in failures:
        print("openapi: FAIL " + f, file=sys.stderr)
    print("openapi: %d responses validated against %s, %d failed, %d without an answer"
          % (checked, os.path.basename(sys.argv[1]), len(failures), skipped), file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
