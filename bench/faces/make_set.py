"""make_set.py DETECT.jsonl OUTDIR: cuts each detected face (score > 0.7, box side >= 48 px)
out of its photo with a margin (a square of 2x the box side around its centre, clipped to the
photo) and writes OUTDIR/fNN_a.png for the cut-out (a = orig) and six altered copies.
Prints the set as JSON: [{"file", "face": NN, "aug": a}]. Uses the vips command line."""
import json
import os
import subprocess
import sys

AUGS = {
    "orig": None,
    "mirror": ["flip", "{i}", "{o}", "horizontal"],
    "rot12": ["similarity", "{i}", "{o}", "--angle", "12"],
    "half": ["resize", "{i}", "{o}", "0.5"],
    "dark": ["linear", "{i}", "{o}", "0.6", "10", "--uchar"],
    "jpeg20": ["copy", "{i}", "{t}[Q=20]"],
    "blur": ["gaussblur", "{i}", "{o}", "1.5"],
}


def vips(*args):
    subprocess.run(["vips", *args], check=True)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    items, n = [], 0
    for line in open(src):
        r = json.loads(line)
        for f in r.get("faces", []):
            x, y, w, h = f["box"]
            if f["score"] < 0.7 or min(w, h) < 48:
                continue
            side = 2 * max(w, h)
            cx, cy = x + w / 2, y + h / 2
            x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
            x1, y1 = min(r["width"], int(cx + side / 2)), min(r["height"], int(cy + side / 2))
            base = os.path.join(out, "f%02d_orig.png" % n)
            vips("crop", r["path"], base, str(x0), str(y0), str(x1 - x0), str(y1 - y0))
            for a, cmd in AUGS.items():
                o = os.path.join(out, "f%02d_%s.png" % (n, a))
                if cmd:
                    t = o[:-4] + ".jpg"
                    vips(*[c.format(i=base, o=o, t=t) for c in cmd])
                    if a == "jpeg20":
                        vips("copy", t, o)
                        os.remove(t)
                items.append({"file": o, "face": n, "aug": a})
            n += 1
    json.dump(items, sys.stdout)


main()
