#!/usr/bin/python3
"""peer.py: the peers of bench/search on the vectors bench_search dumped.

Exact search with NumPy (matrix @ q, argpartition, sort of the top 10) and with
FAISS's IndexFlatIP, one query at a time; FAISS's HNSW (IndexHNSWFlat, inner
product, the same M / efConstruction as src/vindex) for build time, memory,
latency and recall@10 against the C exact top 10. Prints each next to
vindex's numbers (DIR/vindex.json) as ratios: peer time / vindex time (above 1:
vindex is faster). Runs single-threaded when run.sh sets OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS to 1 (the default; vindex is single-threaded).

    peer.py DIR [--ef 50,100,200,400] [--no-hnsw] [--m 16] [--efc 200]
"""
import argparse
import json
import os
import time

import numpy as np
import faiss


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576.0


def lat(fn, qs):
    t = []
    out = []
    for q in qs:
        t0 = time.perf_counter()
        out.append(fn(q))
        t.append((time.perf_counter() - t0) * 1000.0)
    t = np.array(t)
    return float(np.percentile(t, 50)), float(np.percentile(t, 99)), out


def recall(found, truth):
    hit = 0
    for f, t in zip(found, truth):
        hit += len(set(int(x) for x in f) & set(int(x) for x in t))
    return hit / (10.0 * len(truth))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--ef", default="50,100,200,400")
    ap.add_argument("--no-hnsw", action="store_true")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    a = ap.parse_args()
    me = json.load(open(os.path.join(a.dir, "vindex.json")))
    n, d = me["n"], me["dim"]
    x = np.fromfile(os.path.join(a.dir, "vecs.f32"), dtype=np.float32).reshape(n, d)
    qs = np.fromfile(os.path.join(a.dir, "queries.f32"), dtype=np.float32).reshape(-1, d)
    truth = np.fromfile(os.path.join(a.dir, "exact_ids.i64"), dtype=np.int64).reshape(-1, 10)
    ex = me["exact"]
    print(f"n {n} dim {d}: {me['clusters']} clusters, {len(qs)} queries, k 10; "
          f"threads OMP={os.environ.get('OMP_NUM_THREADS', '-')} "
          f"OPENBLAS={os.environ.get('OPENBLAS_NUM_THREADS', '-')}")
    print(f"  vindex exact      build {ex['build_s']:8.2f} s  mem {ex['mem_mb']:7.0f} MB  "
          f"p50 {ex['p50_ms']:8.3f} ms  p99 {ex['p99_ms']:8.3f} ms")

    def numpy_search(q):
        s = x @ q
        top = np.argpartition(-s, 10)[:10]
        return top[np.argsort(-s[top])]

    p50, p99, found = lat(numpy_search, qs)
    print(f"  numpy exact                                   p50 {p50:8.3f} ms  p99 {p99:8.3f} ms"
          f"  recall {recall(found, truth):.3f}  ratio p50 {p50 / ex['p50_ms']:.2f}x"
          f" p99 {p99 / ex['p99_ms']:.2f}x")

    m0, t0 = rss_mb(), time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    fb, fm = time.perf_counter() - t0, rss_mb() - m0
    p50, p99, found = lat(lambda q: flat.search(q.reshape(1, -1), 10)[1][0], qs)
    print(f"  faiss IndexFlatIP build {fb:8.2f} s  mem {fm:7.0f} MB  p50 {p50:8.3f} ms  "
          f"p99 {p99:8.3f} ms  recall {recall(found, truth):.3f}  ratio p50 "
          f"{p50 / ex['p50_ms']:.2f}x p99 {p99 / ex['p99_ms']:.2f}x")
    del flat

    mine = {r["ef"]: r for r in me["approx"]}
    for r in me["approx"]:
        print(f"  vindex hnsw ef {r['ef']:4d} build {r['build_s']:8.2f} s  mem {r['mem_mb']:7.0f} MB"
              f"  p50 {r['p50_ms']:8.3f} ms  p99 {r['p99_ms']:8.3f} ms  recall {r['recall']:.3f}")
    if a.no_hnsw or not me["approx"]:
        return
    m0, t0 = rss_mb(), time.perf_counter()
    h = faiss.IndexHNSWFlat(d, a.m, faiss.METRIC_INNER_PRODUCT)
    h.hnsw.efConstruction = a.efc
    h.add(x)
    hb, hm = time.perf_counter() - t0, rss_mb() - m0
    for ef in [int(e) for e in a.ef.split(",")]:
        h.hnsw.efSearch = ef
        p50, p99, found = lat(lambda q: h.search(q.reshape(1, -1), 10)[1][0], qs)
        line = (f"  faiss hnsw ef {ef:4d}  build {hb:8.2f} s  mem {hm:7.0f} MB  p50 {p50:8.3f} ms  "
                f"p99 {p99:8.3f} ms  recall {recall(found, truth):.3f}")
        if ef in mine:
            r = mine[ef]
            line += (f"  ratio build {hb / r['build_s']:.2f}x p50 {p50 / r['p50_ms']:.2f}x"
                     f" p99 {p99 / r['p99_ms']:.2f}x")
        print(line)


if __name__ == "__main__":
    main()
