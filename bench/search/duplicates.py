"""duplicates.py VECTORS.jsonl: duplicate recall and precision at several thresholds.

Reads `visiond embed` output for the files duplicates.sh made: orig/oNNN.png (an
original), copies/oNNN.TRANSFORM.EXT (a copy of it), fm/LABEL/*.png (distinct images).
Groups them as GET /duplicates does (docs/search.md). a pair (a, b) when b is among the
64 nearest of a and their cosine distance 1 - a.b is <= D; groups are the connected
components. Recall of a transform: the share of its copies put in the group of their
original. Pair precision: of all pairs of items sharing a group, the share that are
copies of one photo; precision among photos: the same without the Fashion-MNIST images (a
library of real photos, none of them look-alike catalogue shots). Prints a Markdown table."""
import json
import os
import sys

import numpy as np

NEAREST = 64
THRESHOLDS = [0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15]


def load(path):
    names, vecs = [], []
    for line in open(path):
        r = json.loads(line)
        if "vector" not in r:
            print("skipped %s: %s" % (r.get("path"), r.get("error")), file=sys.stderr)
            continue
        names.append(r["path"])
        vecs.append(r["vector"])
    v = np.asarray(vecs, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return names, v


def identity(path):
    """(photo key, transform): transform "orig" for originals, None for distractors."""
    base = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(path))
    if parent == "orig":
        return base.split(".")[0], "orig"
    if parent == "copies":
        parts = base.split(".")
        return parts[0], parts[1]
    return path, None


def groups(sim, d):
    n = sim.shape[0]
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    k = min(NEAREST, n - 1)
    near = np.argpartition(-sim, k, axis=1)[:, : k + 1]
    for a in range(n):
        for b in near[a]:
            if b != a and 1.0 - sim[a, b] <= d:
                ra, rb = find(a), find(int(b))
                if ra != rb:
                    parent[ra] = rb
    return [find(i) for i in range(n)]


def main():
    names, v = load(sys.argv[1])
    ids = [identity(p) for p in names]
    sim = v @ v.T
    np.fill_diagonal(sim, -2.0)
    orig_of = {key: i for i, (key, t) in enumerate(ids) if t == "orig"}
    transforms = sorted({t for _, t in ids if t not in (None, "orig")},
                        key=lambda t: ["half", "q60", "crop5", "crop10", "flip", "rot3"].index(t)
                        if t in ["half", "q60", "crop5", "crop10", "flip", "rot3"] else 99)
    n_orig = len(orig_of)
    n_fm = sum(1 for _, t in ids if t is None)
    print("%d originals, %d copies, %d distinct Fashion-MNIST images (mobilenet_v2, dim %d)\n"
          % (n_orig, len(ids) - n_orig - n_fm, n_fm, v.shape[1]))
    # the distance of each copy to its original, for the record
    dist = {t: [] for t in transforms}
    for i, (key, t) in enumerate(ids):
        if t in dist:
            dist[t].append(1.0 - sim[i, orig_of[key]])
    print("| transform | median distance to its original | max |")
    print("|---|---|---|")
    for t in transforms:
        print("| %s | %.4f | %.4f |" % (t, float(np.median(dist[t])), float(np.max(dist[t]))))
    print()
    print("| max_distance | " + " | ".join("recall %s" % t for t in transforms)
          + " | recall (resize, q60, crops) | pair precision | false pairs | precision among photos | groups |")
    print("|---" * (len(transforms) + 6) + "|")
    for d in THRESHOLDS:
        g = groups(sim, d)
        rec = {}
        for t in transforms:
            items = [i for i, (_, tt) in enumerate(ids) if tt == t]
            rec[t] = sum(g[i] == g[orig_of[ids[i][0]]] for i in items) / len(items)
        light = [i for i, (_, tt) in enumerate(ids) if tt in ("half", "q60", "crop5", "crop10")]
        rlight = sum(g[i] == g[orig_of[ids[i][0]]] for i in light) / max(1, len(light))
        members = {}
        for i, r in enumerate(g):
            members.setdefault(r, []).append(i)
        true_pairs = false_pairs = ngroups = 0
        for m in members.values():
            if len(m) < 2:
                continue
            ngroups += 1
            for x in range(len(m)):
                for y in range(x + 1, len(m)):
                    a, b = ids[m[x]], ids[m[y]]
                    if a[1] is not None and b[1] is not None and a[0] == b[0]:
                        true_pairs += 1
                    else:
                        false_pairs += 1
        prec = true_pairs / max(1, true_pairs + false_pairs)
        photo_false = sum(1 for m in members.values() if len(m) > 1
                          for x in range(len(m)) for y in range(x + 1, len(m))
                          if ids[m[x]][1] is not None and ids[m[y]][1] is not None
                          and ids[m[x]][0] != ids[m[y]][0])
        photo_prec = true_pairs / max(1, true_pairs + photo_false)
        print("| %g | " % d + " | ".join("%.2f" % rec[t] for t in transforms)
              + " | %.2f | %.3f | %d | %.3f | %d |" % (rlight, prec, false_pairs, photo_prec, ngroups))


main()
