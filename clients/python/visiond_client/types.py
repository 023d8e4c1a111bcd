"""The JSON shapes of visiond's API (docs/api.md), as TypedDicts.

Answers are returned as the decoded JSON (plain dicts and lists), typed with
these for editors and type checkers; fields the server adds later are kept.
"""

from __future__ import annotations

from typing import Any, Optional, TypedDict, Union

JSON = Union[dict, list, str, int, float, bool, None]


class Progress(TypedDict):
    """Work done out of total (examples for a training session)."""

    done: int
    total: int


class Job(TypedDict):
    """A job (``GET /jobs/{id}``; docs/queue.md has its life)."""

    id: str
    type: str
    state: str  # queued, scheduled, started, finished, failed, canceled
    priority: int
    attempts: int
    max_retries: int
    timeout_ms: int
    retry_base_ms: int
    retry_max_ms: int
    result_ttl_ms: int
    created_ms: int
    run_at_ms: int
    started_ms: Optional[int]
    ended_ms: Optional[int]
    lease_until_ms: Optional[int]
    worker: Optional[str]
    progress: Progress
    payload: dict[str, Any]
    result: Any
    error: Optional[str]
    cancel_requested: bool


class JobList(TypedDict):
    """``GET /jobs``: newest first."""

    jobs: list[Job]
    count: int
    limit: int
    offset: int


class SessionCreated(TypedDict):
    """``POST /training/sessions`` (202)."""

    id: str
    job_id: str
    state: str
    examples: int


class ExampleError(TypedDict):
    """An example a session could not use."""

    path: str
    error: str


class Session(TypedDict, total=False):
    """A training session (``GET /training/sessions/{id}``); the list shows
    ``error_count`` instead of ``errors``. ``metrics`` is documented in docs/training.md."""

    id: str
    name: str
    kind: str  # image or face
    model: str
    state: str  # queued, running, succeeded, failed, canceled
    progress: Progress
    errors: list[ExampleError]
    error_count: int
    metrics: Optional[dict[str, Any]]
    options: dict[str, Any]
    threshold: float
    message: Optional[str]
    job_id: str
    created_ms: int
    updated_ms: int


class Prediction(TypedDict, total=False):
    """One image's prediction: ``label``/``score``/``scores``, or ``error``."""

    path: str
    label: str
    score: float
    scores: dict[str, float]
    error: str


class Predictions(TypedDict):
    """``POST /training/sessions/{id}/predict``."""

    session_id: str
    predictions: list[Prediction]


class Embedding(TypedDict, total=False):
    """One image's embedding, or its ``error`` and ``code``."""

    path: str
    sha256: str
    cached: bool
    vector: list[float]
    error: str
    code: str


class Embeddings(TypedDict):
    """``POST /embeddings``."""

    model: str
    dim: int
    embeddings: list[Embedding]
    computed: int
    cached: int
    failed: int


class Face(TypedDict, total=False):
    """A face: box (x, y, width, height in pixels), score, six keypoints, optional vector."""

    box: list[float]
    score: float
    keypoints: list[list[float]]
    vector: list[float]


class Faces(TypedDict):
    """``POST /faces``."""

    faces: list[Face]
    sha256: str
    cached: bool


class Model(TypedDict, total=False):
    """A model the model server serves (docs/models.md)."""

    name: str
    task: str
    onnx: str
    metadata: str
    input_shape: list[int]
    layout: str
    outputs: list[str]
    l2_normalize: bool
    max_batch: int
    max_delay_us: int
    preload: bool
    state: str
    dim: int
    stats: dict[str, Any]


class Models(TypedDict):
    """``GET /models``: the models and the metadata files that could not be read."""

    models: list[Model]
    invalid: list[dict[str, str]]


class Health(TypedDict, total=False):
    """``GET /healthz``: status ok or degraded (200), unavailable (503)."""

    status: str
    uptime_ms: int
    queue: dict[str, Any]
    model_server: dict[str, Any]
