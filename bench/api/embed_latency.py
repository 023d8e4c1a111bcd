"""embed_latency.py: p50/p99 latency of single-image POST /embeddings with C concurrent
clients. Every request names a different image, so each one goes through decoding and
the model server (the cache is keyed by the image's bytes); a second pass over the same
images measures the cached answer.

  embed_latency.py API_URL MODEL CONCURRENCY PATH...
"""
import concurrent.futures
import json
import sys
import time
import urllib.request


def post(url, model, path):
    body = json.dumps({"model": model, "paths": [path]}).encode()
    req = urllib.request.Request(url + "/embeddings", data=body,
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        d = json.load(r)
    ms = (time.perf_counter() - t0) * 1e3
    e = d["embeddings"][0]
    if "error" in e:
        raise SystemExit(f"embed_latency: {path}: {e['error']}")
    return ms


def run(url, model, conc, paths):
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        lat = sorted(ex.map(lambda p: post(url, model, p), paths))
    wall = time.perf_counter() - t0
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    return pick(0.50), pick(0.99), len(lat) / wall


def main():
    url, model, conc, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    p50, p99, rps = run(url, model, conc, paths)
    c50, c99, crps = run(url, model, conc, paths)
    print(f"{conc:>3} clients  {len(paths)} images  computed: p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
          f"  {rps:6.1f} images/s   cached: p50 {c50:6.1f} ms  p99 {c99:6.1f} ms  {crps:7.1f} req/s")


if __name__ == "__main__":
    main()
