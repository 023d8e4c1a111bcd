"""score.py SET.json SPEED.txt BATCH NAME=EMB.jsonl...: the table of bench/faces/run.sh.
Per image the face nearest the image centre is taken (the cut-out's own face)."""
import json
import sys

import numpy as np


def vectors(set_items, path):
    by_file = {}
    for line in open(path):
        r = json.loads(line)
        faces = r.get("faces") or []
        if not faces:
            continue
        w, h = r["width"], r["height"]

        def off(f):
            x, y, bw, bh = f["box"]
            return (x + bw / 2 - w / 2) ** 2 + (y + bh / 2 - h / 2) ** 2

        by_file[r["path"]] = np.array(min(faces, key=off)["vector"], dtype=np.float64)
    ids, augs, vs = [], [], []
    for it in set_items:
        v = by_file.get(it["file"])
        if v is not None:
            ids.append(it["face"])
            augs.append(it["aug"])
            vs.append(v / np.linalg.norm(v))
    return np.array(ids), augs, np.array(vs)


def tar_at_far(gen, imp, far):
    thr = np.quantile(imp, 1 - far) if len(imp) else 1.0
    return float(np.mean(gen > thr))


def main():
    set_items = json.load(open(sys.argv[1]))
    speed = dict(l.split() for l in open(sys.argv[2]))
    batch = int(sys.argv[3])
    nfaces = len({i["face"] for i in set_items})
    rows = []
    for arg in sys.argv[4:]:
        name, path = arg.split("=", 1)
        ids, augs, v = vectors(set_items, path)
        sim = v @ v.T
        iu = np.triu_indices(len(ids), 1)
        same = ids[iu[0]] == ids[iu[1]]
        gen, imp = sim[iu][same], sim[iu][~same]
        ts = np.unique(np.concatenate([gen, imp]))
        acc = max(0.5 * (np.mean(gen >= t) + np.mean(imp < t)) for t in ts)
        dprime = (gen.mean() - imp.mean()) / np.sqrt(0.5 * (gen.var() + imp.var()))
        # identification: each altered copy against a gallery of the original cut-outs
        orig = [k for k, a in enumerate(augs) if a == "orig"]
        probes = [k for k, a in enumerate(augs) if a != "orig"]
        g = v[orig]
        hits = sum(ids[orig][int(np.argmax(g @ v[k]))] == ids[k] for k in probes)
        ms = float(speed[name.split("@")[0]]) / batch
        rows.append((name, v.shape[1], len(ids), gen, imp, acc, tar_at_far(gen, imp, 0.01),
                     tar_at_far(gen, imp, 0.001), dprime, hits, len(probes), ms))
    print("%d faces x 7 images (a cut-out and 6 altered copies) = %d images"
          % (nfaces, len(set_items)))
    print()
    print("| embedder | dim | same: mean cos (min) | different: mean cos (max) | d' | "
          "best verification accuracy | TAR@FAR=1%% | TAR@FAR=0.1%% | rank-1 (copies vs "
          "cut-outs) | images embedded | CPU ms per face (batch %d, 1 thread) |" % batch)
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, dim, n, gen, imp, acc, t1, t01, dp, hits, np_, ms) in rows:
        print("| %s | %d | %.3f (%.3f) | %.3f (%.3f) | %.2f | %.1f%% | %.1f%% | %.1f%% | %d/%d | "
              "%d/%d | %.1f |" % (name, dim, gen.mean(), gen.min(), imp.mean(), imp.max(), dp,
                                   100 * acc, 100 * t1, 100 * t01, hits, np_, n, len(set_items),
                                   ms))


main()
