"""Tests of visiond_client against a live `visiond up` (tests/integration/python_client.sh).

Environment:
    VISIOND_URL     the API (http://127.0.0.1:PORT)
    VD_MEDIA        the server's media root, holding train/LABEL/*.png (Fashion-MNIST),
                    test/LABEL/*.png and faces/*.jpg
    VD_TEST_JOBS    "1" when the server runs the test job types (noop, sleep)
"""

from __future__ import annotations

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import visiond_client as vc  # noqa: E402
from visiond_client import errors  # noqa: E402

URL = os.environ.get("VISIOND_URL", "")
MEDIA = os.environ.get("VD_MEDIA", "")


def files_under(d: str) -> list[str]:
    out: list[str] = []
    for root, _, names in os.walk(d):
        out.extend(os.path.join(root, n) for n in names)
    return sorted(out)


@unittest.skipUnless(URL and MEDIA, "VISIOND_URL and VD_MEDIA must be set")
class ClientTest(unittest.TestCase):
    c: vc.Client
    trained: str  # a session that succeeded, trained from a folder
    final: vc.types.Session  # that session when it ended
    progress: list[tuple[str, int, int]]  # what wait_session's on_progress saw
    train: str
    test_images: list[str]
    labels: list[str]
    face: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.c = vc.Client(URL, timeout=120)
        cls.train = os.path.join(MEDIA, "train")
        cls.test_images = files_under(os.path.join(MEDIA, "test"))
        cls.labels = sorted(os.listdir(cls.train))
        cls.face = files_under(os.path.join(MEDIA, "faces"))[0]
        created = cls.c.create_session("py-folder", folder=cls.train)
        cls.progress = []
        cls.final = cls.c.wait_session(
            created["id"], timeout=600, poll=0.2, check=True,
            on_progress=lambda s: cls.progress.append(
                (s["state"], s["progress"]["done"], s["progress"]["total"])))
        cls.trained = created["id"]

    # ---- health and models ------------------------------------------------------
    def test_health(self) -> None:
        h = self.c.health()
        self.assertEqual(h["status"], "ok")
        self.assertTrue(h["queue"]["ok"])
        self.assertTrue(h["model_server"]["ok"])

    def test_models(self) -> None:
        names = {m["name"]: m for m in self.c.models()["models"]}
        self.assertIn("mobilenet_v2", names)
        self.assertEqual(names["faceres"]["task"], "face_embedding")

    # ---- training sessions ------------------------------------------------------
    def test_session_from_folder(self) -> None:
        s = self.final
        self.assertEqual(s["state"], "succeeded")
        self.assertEqual((s["metrics"] or {})["labels"], self.labels)
        # progress was reported, ended with every example done
        self.assertTrue(self.progress, "on_progress never called")
        self.assertEqual(self.progress[-1][0], "succeeded")
        self.assertEqual(self.progress[-1][1], self.progress[-1][2])
        self.assertEqual(self.c.session(self.trained)["id"], self.trained)

    def test_session_from_uploads_and_paths(self) -> None:
        by_label = {lbl: files_under(os.path.join(self.train, lbl)) for lbl in self.labels}
        up = self.c.create_session_upload("py-upload", by_label)
        self.assertEqual(up["state"], "queued")
        self.assertEqual(up["examples"], sum(len(v) for v in by_label.values()))
        pairs = [(p, lbl) for lbl, ps in by_label.items() for p in ps]
        ex = self.c.create_session("py-examples", examples=pairs, model="mobilenet_v2")
        for sid in (up["id"], ex["id"]):
            s = self.c.wait_session(sid, timeout=600, poll=0.2, check=True)
            self.assertEqual((s["metrics"] or {})["labels"], self.labels)
        listed = [s["id"] for s in self.c.sessions(limit=50)]
        self.assertIn(up["id"], listed)
        self.assertIn(ex["id"], listed)
        gone = self.c.delete_session(up["id"])
        self.assertTrue(gone["deleted"])
        with self.assertRaises(errors.SessionNotFound) as cm:
            self.c.session(up["id"])
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "session_not_found"))

    def test_predict(self) -> None:
        ans = self.c.predict(self.trained, self.test_images)
        preds = ans["predictions"]
        self.assertEqual(len(preds), len(self.test_images))
        for p in preds:
            self.assertIn(p["label"], self.labels)
            self.assertAlmostEqual(sum(p["scores"].values()), 1.0, places=3)
        right = sum(1 for p in preds if p["path"].split("/")[-2] == p["label"])
        self.assertGreater(right, len(preds) // 2, preds)
        up = self.c.predict_upload(self.trained, self.test_images[:2]
                                   + [("notes.txt", b"not an image")])
        self.assertEqual([p["path"] for p in up["predictions"]],
                         [os.path.basename(p) for p in self.test_images[:2]] + ["notes.txt"])
        self.assertIn("error", up["predictions"][2])

    def test_session_errors(self) -> None:
        with self.assertRaises(errors.PathRefused) as cm:
            self.c.create_session("x", folder="/usr/share")
        self.assertEqual((cm.exception.status, cm.exception.code),
                         (422, "path_outside_media_roots"))
        one = self.test_images[0]
        with self.assertRaises(errors.BadExamples) as cm2:
            self.c.create_session("x", examples=[(one, "a"), (self.test_images[1], "a")])
        self.assertEqual(cm2.exception.code, "one_label")
        with self.assertRaises(errors.UnknownModel) as cm3:
            self.c.create_session("x", folder=self.train, model="faceres")
        self.assertEqual(cm3.exception.code, "model_kind_mismatch")
        with self.assertRaises(errors.PathNotFound):
            self.c.predict(self.trained, [os.path.join(MEDIA, "nope.png")])
        with self.assertRaises(errors.SessionNotFound):
            self.c.predict("0123456789abcdef", [one])

    # ---- embeddings and faces ---------------------------------------------------
    def test_embeddings(self) -> None:
        paths = self.test_images[:3]
        e = self.c.embed(paths)
        self.assertEqual(e["model"], "mobilenet_v2")
        self.assertEqual(len(e["embeddings"]), 3)
        for emb in e["embeddings"]:
            self.assertEqual(len(emb["vector"]), e["dim"])
        again = self.c.embed(paths, vectors=False)
        self.assertEqual(again["cached"], 3)
        self.assertNotIn("vector", again["embeddings"][0])
        up = self.c.embed_upload([paths[0], ("junk.png", b"\x89PNG broken")])
        self.assertTrue(up["embeddings"][0]["cached"])  # same bytes as paths[0]
        self.assertEqual(up["embeddings"][1]["code"], "bad_image")
        self.assertEqual(up["failed"], 1)
        with self.assertRaises(errors.UnknownModel) as cm:
            self.c.embed(paths, model="blazeface_back")
        self.assertEqual((cm.exception.status, cm.exception.code), (422, "model_task_mismatch"))
        with self.assertRaises(errors.BadExamples) as cm2:
            self.c.embed([])
        self.assertEqual(cm2.exception.code, "no_paths")

    def test_faces(self) -> None:
        f = self.c.faces(self.face)
        self.assertGreaterEqual(len(f["faces"]), 1)
        self.assertEqual(len(f["faces"][0]["box"]), 4)
        self.assertEqual(len(f["faces"][0]["keypoints"]), 6)
        up = self.c.faces_upload(self.face, embed=True)
        self.assertEqual(up["sha256"], f["sha256"])
        self.assertEqual(len(up["faces"][0]["vector"]), 1024)
        with self.assertRaises(errors.PathRefused):
            self.c.faces("relative.jpg")

    # ---- jobs -------------------------------------------------------------------
    @unittest.skipUnless(os.environ.get("VD_TEST_JOBS") == "1", "no test job types")
    def test_jobs(self) -> None:
        seen: list[str] = []
        j = self.c.enqueue("noop", {"n": 1}, priority=5, max_retries=1)
        self.assertIn(j["state"], ("queued", "started", "finished"))
        done = self.c.wait_job(j["id"], timeout=120, poll=0.1, check=True,
                               on_progress=lambda job: seen.append(job["state"]))
        self.assertEqual(done["state"], "finished")
        self.assertEqual(seen[-1], "finished")
        self.assertEqual(self.c.job(j["id"])["priority"], 5)
        ids = [x["id"] for x in self.c.jobs(state="finished", type="noop", limit=10)["jobs"]]
        self.assertIn(j["id"], ids)

        later = self.c.enqueue("noop", delay_ms=600000, id="py-later")
        self.assertEqual(later["state"], "scheduled")
        with self.assertRaises(errors.WaitTimeout):
            self.c.wait_job("py-later", timeout=0.3, poll=0.1)
        with self.assertRaises(errors.JobExists) as ce:
            self.c.enqueue("noop", id="py-later")
        self.assertEqual((ce.exception.status, ce.exception.code), (409, "job_exists"))
        self.assertEqual(self.c.cancel_job("py-later")["state"], "canceled")
        with self.assertRaises(errors.InvalidState) as cm:
            self.c.cancel_job("py-later")
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "invalid_state"))
        with self.assertRaises(errors.JobFailed):
            self.c.wait_job("py-later", check=True)
        self.assertEqual(self.c.requeue_job("py-later")["state"], "queued")
        self.c.cancel_job("py-later")

        with self.assertRaises(errors.JobNotFound) as cn:
            self.c.job("no-such-job")
        self.assertEqual((cn.exception.status, cn.exception.code), (404, "job_not_found"))
        with self.assertRaises(errors.ValidationError) as cv:
            self.c.enqueue("noop", priority=10**9)
        self.assertEqual(cv.exception.code, "invalid_value")
        with self.assertRaises(errors.UnknownJobType):
            self.c.enqueue("no_such_type")
        with self.assertRaises(errors.BadRequest) as cb:
            self.c.jobs(state="bogus")
        self.assertEqual(cb.exception.code, "invalid_parameter")

    def test_embed_job(self) -> None:
        j = self.c.enqueue("embed", {"paths": self.test_images[:2]})
        done = self.c.wait_job(j["id"], timeout=300, poll=0.2, check=True)
        self.assertEqual(done["state"], "finished")
        with self.assertRaises(errors.ValidationError) as cm:
            self.c.enqueue("embed", {"paths": self.test_images[:1], "colour": 1})
        self.assertEqual(cm.exception.code, "invalid_payload")

    def test_from_env(self) -> None:
        old = os.environ.get("VISIOND_URL")
        try:
            os.environ["VISIOND_URL"] = URL + "/"
            c = vc.from_env()
            self.assertEqual(c.url, URL)
            self.assertEqual(c.health()["status"], "ok")
        finally:
            if old is not None:
                os.environ["VISIOND_URL"] = old

    @unittest.skipUnless(os.environ.get("VD_TOKEN_URL"), "no server with a token")
    def test_token(self) -> None:
        url, token = os.environ["VD_TOKEN_URL"], os.environ["VD_TOKEN"]
        with self.assertRaises(errors.Unauthorized) as cm:
            vc.Client(url).jobs()
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthorized"))
        with self.assertRaises(errors.Unauthorized):
            vc.Client(url, token="wrong").jobs()
        self.assertEqual(vc.Client(url, token=token).jobs(limit=1)["limit"], 1)
        self.assertIn(vc.Client(url).health()["status"], ("ok", "degraded"))  # public

    # ---- transport --------------------------------------------------------------
    def test_transport_error(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        with self.assertRaises(errors.TransportError):
            vc.Client(f"http://127.0.0.1:{port}", timeout=5).health()
        with self.assertRaises(errors.NotFound) as cm:
            self.c.request("GET", "/no/such/route")
        self.assertEqual(cm.exception.code, "not_found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
