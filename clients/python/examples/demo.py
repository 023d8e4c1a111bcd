"""scripts/demo.sh with the Python client: train on a folder, watch the progress, print
the metrics, predict held-out images, find faces. Run against `visiond up --media-root PHOTOS`:

    python3 examples/demo.py http://127.0.0.1:8080 PHOTOS/train PHOTOS/test PHOTOS/faces
"""

import os
import sys

from visiond_client import Client, SessionNotReady, TrainingFailed


def main(url: str, train: str, test: str, faces: str) -> None:
    c = Client(url)
    print(c.health()["status"], [m["name"] for m in c.models()["models"]])

    created = c.create_session("fashion", kind="image", model="mobilenet_v2", folder=train)
    show = lambda s: print(f"  {s['state']:<9} {s['progress']['done']}/{s['progress']['total']}")
    try:
        s = c.wait_session(created["id"], on_progress=show, check=True)
    except TrainingFailed as e:
        sys.exit(f"the session ended {e.session['state']}: {e.session['message']}")
    m = s["metrics"] or {}
    print(f"cv_accuracy {m['cv_accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}")

    held = sorted(os.path.join(d, f) for d, _, fs in os.walk(test) for f in fs)
    try:
        for p in c.predict(s["id"], held)["predictions"]:
            print(f"  {os.path.relpath(p['path'], test):<28} {p.get('label', p.get('error'))}")
    except SessionNotReady as e:  # every API error is an exception with .status and .code
        sys.exit(f"{e.status} {e.code}: {e.message}")

    for name in sorted(os.listdir(faces)):
        found = c.faces(os.path.join(faces, name))["faces"]
        print(f"  {name}: {len(found)} face(s)", [round(f["score"], 2) for f in found])


if __name__ == "__main__":
    main(*sys.argv[1:5])
