"""demo_report.py: formats visiond's JSON answers for scripts/demo.sh (reads stdin).

  demo_report.py field KEY        prints one top-level field
  demo_report.py progress         prints "state done total" of a session
  demo_report.py metrics          a session's metrics as a table
  demo_report.py predictions      predict answers against the folder-name truth
  demo_report.py faces NAME       a POST /faces answer in one line
"""
import json
import os
import sys


def main():
    what = sys.argv[1]
    d = json.load(sys.stdin)
    if what == "field":
        print(d[sys.argv[2]])
    elif what == "progress":
        p = d.get("progress") or {}
        print(d["state"], p.get("done", 0), p.get("total", 0))
    elif what == "metrics":
        m = d["metrics"]
        print(f"algorithm {m.get('algorithm')}, C {m.get('C')}, "
              f"cv_accuracy {m['cv_accuracy']:.3f}, macro F1 {m.get('macro_f1', 0):.3f}")
        print(f"{'label':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
        for label, c in m["per_class"].items():
            print(f"{label:<12} {c['precision']:>9.2f} {c['recall']:>7.2f} "
                  f"{c['f1']:>6.2f} {c['support']:>7}")
        if d.get("errors"):
            print("examples left out:", d["errors"])
    elif what == "predictions":
        preds = d["predictions"]
        right = 0
        for p in preds:
            truth = os.path.basename(os.path.dirname(p["path"]))
            ok = p.get("label") == truth
            right += ok
            shown = os.path.join(truth, os.path.basename(p["path"]))
            answer = p.get("label", p.get("error"))
            print(f"  {'ok  ' if ok else 'MISS'} {shown:<28} -> {answer} ({p.get('score', 0):.2f})")
        print(f"{right}/{len(preds)} held-out images right")
    elif what == "faces":
        name = sys.argv[2]
        if "error" in d:
            print(f"  {name}: error {d['error']}")
            return
        boxes = ", ".join(f"[{f['box'][0]:.0f},{f['box'][1]:.0f} {f['box'][2]:.0f}x{f['box'][3]:.0f}"
                          f" {f['score']:.2f}]" for f in d["faces"])
        print(f"  {name}: {len(d['faces'])} faces {boxes}")


if __name__ == "__main__":
    main()
