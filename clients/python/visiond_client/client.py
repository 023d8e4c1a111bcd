"""The visiond HTTP client (docs/api.md), standard library only."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import (Any, Callable, Iterable, Mapping, Optional, Sequence, Tuple, Union, cast)

from . import errors
from ._multipart import FileSource, Multipart
from .types import (Embeddings, Faces, Health, Job, JobList, Models, Predictions, Session,
                    SessionCreated)

Query = Mapping[str, Union[str, int, None]]
# Labelled uploads: {label: [file, ...]} or [(label, file), ...].
LabelledFiles = Union[Mapping[str, Iterable[FileSource]], Iterable[Tuple[str, FileSource]]]

JOB_ENDED = frozenset({"finished", "failed", "canceled"})
SESSION_ENDED = frozenset({"succeeded", "failed", "canceled"})


def _retry_after(headers: Any) -> Optional[float]:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _bool_field(v: bool) -> str:
    return "true" if v else "false"


class Client:
    """A client of one visiond API server.

    Args:
        url: the API's base URL, e.g. ``http://127.0.0.1:8080``.
        token: the bearer token (``--token-file`` on the server), if it has one.
        timeout: seconds each HTTP request may take (a synchronous predict or
            embed of many images can take a while).

    Every method raises :class:`visiond_client.errors.APIError` (a subclass
    chosen by the API's error code) for an error answer and
    :class:`visiond_client.errors.TransportError` when the server cannot be
    reached. Answers are the API's JSON, typed by :mod:`visiond_client.types`.
    """

    def __init__(self, url: str = "http://127.0.0.1:8080", token: Optional[str] = None,
                 timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # ---- plumbing -----------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *,
                query: Optional[Query] = None, multipart: Optional[Multipart] = None,
                accept: Sequence[int] = ()) -> Any:
        """Sends one request and returns the decoded JSON answer.

        ``body`` is sent as JSON (``application/json``) unless it is None;
        ``multipart`` as ``multipart/form-data``. A status >= 400 raises the
        error's exception unless it is in ``accept``.
        """
        url = self.url + path
        if query:
            q = {k: str(v) for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        headers = {"Accept": "application/json"}
        data: Any = None
        if multipart is not None:
            data = multipart
            headers["Content-Type"] = multipart.content_type
            headers["Content-Length"] = str(len(multipart))
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return self._decode(resp.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            decoded = self._decode(raw, strict=False)
            if e.code in accept:
                return decoded
            raise errors.from_response(e.code, decoded, _retry_after(e.headers)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise errors.TransportError(f"{method} {url}: {reason}") from e

    @staticmethod
    def _decode(raw: bytes, strict: bool = True) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            if strict:
                raise errors.TransportError("the answer is not JSON: %r" % raw[:200]) from None
            return None

    @staticmethod
    def _seg(id: str) -> str:
        return urllib.parse.quote(id, safe="")

    # ---- operations ---------------------------------------------------------------
    def health(self) -> Health:
        """``GET /healthz``: ``status`` ``ok``, ``degraded`` (no model server) or
        ``unavailable`` (the queue does not answer: a 503 that is returned, not raised)."""
        return cast(Health, self.request("GET", "/healthz", accept=(503,)))

    def models(self) -> Models:
        """``GET /models``: the model server's models (503 without one)."""
        return cast(Models, self.request("GET", "/models"))

    # ---- jobs ---------------------------------------------------------------------
    def enqueue(self, type: str, payload: Optional[Mapping[str, Any]] = None, *,
                priority: Optional[int] = None, max_retries: Optional[int] = None,
                timeout_ms: Optional[int] = None, delay_ms: Optional[int] = None,
                retry_base_ms: Optional[int] = None, retry_max_ms: Optional[int] = None,
                result_ttl_ms: Optional[int] = None, id: Optional[str] = None,
                any_type: bool = False) -> Job:
        """``POST /jobs``: enqueues a job of ``type`` (``embed``, ``train_session``...)
        with ``payload``; the other fields as in docs/api.md. Returns the job."""
        body: dict[str, Any] = {"type": type}
        if payload is not None:
            body["payload"] = dict(payload)
        opts = {"priority": priority, "max_retries": max_retries, "timeout_ms": timeout_ms,
                "delay_ms": delay_ms, "retry_base_ms": retry_base_ms,
                "retry_max_ms": retry_max_ms, "result_ttl_ms": result_ttl_ms, "id": id}
        body.update({k: v for k, v in opts.items() if v is not None})
        if any_type:
            body["any_type"] = True
        return cast(Job, self.request("POST", "/jobs", body))

    def job(self, id: str) -> Job:
        """``GET /jobs/{id}``."""
        return cast(Job, self.request("GET", "/jobs/" + self._seg(id)))

    def jobs(self, state: Optional[str] = None, type: Optional[str] = None,
             limit: Optional[int] = None, offset: Optional[int] = None) -> JobList:
        """``GET /jobs``: newest first; ``state`` a state name or ``all``."""
        return cast(JobList, self.request(
            "GET", "/jobs", query={"state": state, "type": type, "limit": limit,
                                   "offset": offset}))

    def cancel_job(self, id: str) -> Job:
        """``DELETE /jobs/{id}``: cancels a queued, scheduled or started job
        (409 :class:`~visiond_client.errors.InvalidState` once it has ended)."""
        return cast(Job, self.request("DELETE", "/jobs/" + self._seg(id)))

    def requeue_job(self, id: str) -> Job:
        """``POST /jobs/{id}/requeue``: a failed or canceled job back to queued."""
        return cast(Job, self.request("POST", "/jobs/%s/requeue" % self._seg(id)))

    def wait_job(self, id: str, timeout: Optional[float] = None, poll: float = 0.5,
                 on_progress: Optional[Callable[[Job], None]] = None,
                 check: bool = False) -> Job:
        """Polls ``GET /jobs/{id}`` until the job is finished, failed or canceled.

        ``on_progress(job)`` is called with the first answer and whenever the
        state or progress changes. Raises :class:`~visiond_client.errors.WaitTimeout`
        after ``timeout`` seconds, and with ``check`` :class:`~visiond_client.errors.JobFailed`
        when the job did not finish.
        """
        job = cast(Job, self._wait(lambda: self.job(id), JOB_ENDED, timeout, poll,
                                   on_progress, "job " + id))
        if check and job["state"] != "finished":
            raise errors.JobFailed(job)
        return job

    def _wait(self, get: Callable[[], Any], ended: frozenset[str], timeout: Optional[float],
              poll: float, on_progress: Optional[Callable[[Any], None]], what: str) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = None
        while True:
            obj = get()
            key = (obj.get("state"), json.dumps(obj.get("progress"), sort_keys=True))
            if on_progress is not None and key != seen:
                on_progress(obj)
            seen = key
            if obj.get("state") in ended:
                return obj
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.WaitTimeout(f"{what} still {obj.get('state')} after {timeout} s")
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    # ---- training sessions --------------------------------------------------------
    def create_session(self, name: str, *, folder: Optional[str] = None,
                       examples: Optional[Iterable[Tuple[str, str]]] = None,
                       kind: Optional[str] = None, model: Optional[str] = None,
                       crop: Optional[bool] = None) -> SessionCreated:
        """``POST /training/sessions`` from paths on the server: either ``folder``
        (one sub-folder per label) or ``examples``, ``(path, label)`` pairs. Both
        must lie under the server's media roots. Returns ``{"id", "job_id", "state",
        "examples"}``; the training runs as a job: see :meth:`wait_session`."""
        body: dict[str, Any] = {"name": name}
        if folder is not None:
            body["folder"] = folder
        if examples is not None:
            body["examples"] = [{"path": p, "label": lbl} for p, lbl in examples]
        for k, v in (("kind", kind), ("model", model), ("crop", crop)):
            if v is not None:
                body[k] = v
        return cast(SessionCreated, self.request("POST", "/training/sessions", body))

    def create_session_upload(self, name: str, files: LabelledFiles, *,
                              kind: Optional[str] = None, model: Optional[str] = None,
                              crop: Optional[bool] = None) -> SessionCreated:
        """``POST /training/sessions`` with the examples uploaded from this machine.

        ``files`` maps each label to its files (``{"cat": ["a.jpg", ...]}``) or is
        a sequence of ``(label, file)``; a file is a path here or ``(file name, bytes)``.
        The server keeps the uploads until the session is deleted.
        """
        pairs: list[Tuple[str, FileSource]] = []
        if isinstance(files, Mapping):
            for label, srcs in files.items():
                pairs.extend((label, s) for s in srcs)
        else:
            pairs.extend(files)
        fields = [("name", name)]
        for k, v in (("kind", kind), ("model", model)):
            if v is not None:
                fields.append((k, v))
        if crop is not None:
            fields.append(("crop", _bool_field(crop)))
        return cast(SessionCreated, self.request("POST", "/training/sessions",
                                                 multipart=Multipart(fields, pairs)))

    def session(self, id: str) -> Session:
        """``GET /training/sessions/{id}``."""
        return cast(Session, self.request("GET", "/training/sessions/" + self._seg(id)))

    def sessions(self, limit: Optional[int] = None) -> list[Session]:
        """``GET /training/sessions``: newest first (with ``error_count``, not ``errors``)."""
        ans = self.request("GET", "/training/sessions", query={"limit": limit})
        return cast("list[Session]", ans["sessions"])

    def delete_session(self, id: str) -> dict[str, Any]:
        """``DELETE /training/sessions/{id}``: cancels it if it runs, then deletes it."""
        return cast("dict[str, Any]",
                    self.request("DELETE", "/training/sessions/" + self._seg(id)))

    def wait_session(self, id: str, timeout: Optional[float] = None, poll: float = 0.5,
                     on_progress: Optional[Callable[[Session], None]] = None,
                     check: bool = False) -> Session:
        """Polls the session until it succeeded, failed or was canceled.

        ``on_progress(session)`` is called with the first answer and whenever its
        state or ``progress`` (examples embedded out of total) changes. Raises
        :class:`~visiond_client.errors.WaitTimeout` after ``timeout`` seconds, and
        with ``check`` :class:`~visiond_client.errors.TrainingFailed` unless it succeeded.
        """
        s = cast(Session, self._wait(lambda: self.session(id), SESSION_ENDED, timeout, poll,
                                     on_progress, "session " + id))
        if check and s.get("state") != "succeeded":
            raise errors.TrainingFailed(s)
        return s

    def predict(self, session_id: str, paths: Sequence[str]) -> Predictions:
        """``POST /training/sessions/{id}/predict`` on paths on the server (at most 256)."""
        return cast(Predictions, self.request(
            "POST", "/training/sessions/%s/predict" % self._seg(session_id),
            {"paths": list(paths)}))

    def predict_upload(self, session_id: str, files: Sequence[FileSource]) -> Predictions:
        """Predicts uploaded images; each prediction's ``path`` is the file's name."""
        return cast(Predictions, self.request(
            "POST", "/training/sessions/%s/predict" % self._seg(session_id),
            multipart=Multipart([], [("image", f) for f in files])))

    # ---- embeddings and faces -----------------------------------------------------
    def embed(self, paths: Sequence[str], *, model: Optional[str] = None,
              mode: Optional[str] = None, vectors: Optional[bool] = None) -> Embeddings:
        """``POST /embeddings`` of paths on the server (``mode`` ``image`` or ``face``;
        ``vectors=False`` only fills the cache)."""
        body: dict[str, Any] = {"paths": list(paths)}
        for k, v in (("model", model), ("mode", mode), ("vectors", vectors)):
            if v is not None:
                body[k] = v
        return cast(Embeddings, self.request("POST", "/embeddings", body))

    def embed_upload(self, files: Sequence[FileSource], *, model: Optional[str] = None,
                     mode: Optional[str] = None, vectors: Optional[bool] = None) -> Embeddings:
        """``POST /embeddings`` of uploaded images."""
        fields = [(k, v) for k, v in (("model", model), ("mode", mode)) if v is not None]
        if vectors is not None:
            fields.append(("vectors", _bool_field(vectors)))
        return cast(Embeddings, self.request(
            "POST", "/embeddings", multipart=Multipart(fields, [("image", f) for f in files])))

    def faces(self, path: str, *, embed: bool = False) -> Faces:
        """``POST /faces``: the faces in one image on the server (``embed``: with vectors)."""
        return cast(Faces, self.request("POST", "/faces", {"path": path, "embed": embed}))

    def faces_upload(self, file: FileSource, *, embed: bool = False) -> Faces:
        """``POST /faces`` of one uploaded image."""
        return cast(Faces, self.request(
            "POST", "/faces", multipart=Multipart([("embed", _bool_field(embed))],
                                                  [("image", file)])))


def from_env() -> Client:
    """A client from ``$VISIOND_URL`` (default ``http://127.0.0.1:8080``) and
    ``$VISIOND_TOKEN``."""
    return Client(os.environ.get("VISIOND_URL", "http://127.0.0.1:8080"),
                  os.environ.get("VISIOND_TOKEN") or None)
