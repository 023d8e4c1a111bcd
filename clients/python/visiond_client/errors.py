"""Exceptions raised by the visiond client.

Every failure is a :class:`VisiondError`. An answer of the API that is an error
(``{"error": {"code": ..., "message": ...}}``, docs/api.md "Errors") is an
:class:`APIError` carrying the HTTP ``status``, the stable ``code`` and the
human ``message``. Its class is chosen by the code first (:data:`CODE_CLASSES`,
e.g. ``session_not_found`` -> :class:`SessionNotFound`), else by the status
(:data:`STATUS_CLASSES`, e.g. any other 404 -> :class:`NotFound`), so a program
can catch as broadly or as narrowly as it needs::

    try:
        client.session(sid)
    except SessionNotFound:
        ...
    except APIError as e:
        print(e.status, e.code, e.message)
"""

from __future__ import annotations

from typing import Any, Optional


class VisiondError(Exception):
    """Base of every exception this client raises."""


class TransportError(VisiondError):
    """The server could not be reached or its answer could not be read."""


class WaitTimeout(VisiondError):
    """A ``wait_*`` call gave up before the job or session ended."""


class APIError(VisiondError):
    """An error answered by the API.

    Attributes:
        status: the HTTP status (400-599).
        code: the API's stable error code (``"job_not_found"``...).
        message: the API's message, for people.
        retry_after: seconds from a ``Retry-After`` header (429, 503), else None.
        body: the decoded JSON body (or None when it was not JSON).
    """

    def __init__(self, status: int, code: str, message: str,
                 retry_after: Optional[float] = None, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.body = body


# ---- by status (docs/api.md, the table under "Errors") ---------------------------
class BadRequest(APIError):
    """400: invalid_request, invalid_json, invalid_type, empty_body, invalid_parameter, invalid_multipart."""


class Unauthorized(APIError):
    """401 unauthorized: no token or a wrong one."""


class NotFound(APIError):
    """404: not_found and the *_not_found codes."""


class MethodNotAllowed(APIError):
    """405 method_not_allowed."""


class BodyTooSlow(APIError):
    """408 body_too_slow."""


class Conflict(APIError):
    """409: invalid_state, job_exists, session_not_ready."""


class TooLarge(APIError):
    """413: body_too_large, too_many_parts, too_many_examples, too_many_paths, limit, media_too_large."""


class UnsupportedMediaType(APIError):
    """415 unsupported_media_type."""


class Unprocessable(APIError):
    """422: a well-formed request with a wrong value (missing_field, invalid_value, unknown_model...)."""


class TooManyRequests(APIError):
    """429: too_many_uploads, model_server_busy (see ``retry_after``)."""


class ServerError(APIError):
    """500: internal, nomem, io, model."""


class Unavailable(APIError):
    """503: backend_unavailable, model_server_unavailable, store_unavailable, busy (see ``retry_after``)."""


class StorageFull(APIError):
    """507 storage_full: the disk under the queue or the store is full; nothing was written."""


# ---- by code ---------------------------------------------------------------------
class JobNotFound(NotFound):
    """404 job_not_found."""


class SessionNotFound(NotFound):
    """404 session_not_found."""


class ModelNotFound(NotFound):
    """404 model_not_found."""


class PathNotFound(NotFound):
    """404 path_not_found: a path given to the server does not exist there."""


class InvalidState(Conflict):
    """409 invalid_state: e.g. cancelling a finished job."""


class JobExists(Conflict):
    """409 job_exists: a caller-chosen job id that is taken."""


class SessionNotReady(Conflict):
    """409 session_not_ready: predicting with a session that has not succeeded."""


class ValidationError(Unprocessable):
    """422 missing_field, invalid_value, unknown_field, invalid_payload: the body's fields are wrong."""


class PathRefused(Unprocessable):
    """422 path_*, no_media_roots: a path refused by the server's media-root check."""


class UnknownModel(Unprocessable):
    """422 unknown_model, model_kind_mismatch, model_task_mismatch."""


class UnknownJobType(Unprocessable):
    """422 unknown_job_type, test_job_type."""


class BadExamples(Unprocessable):
    """422 no_examples, one_label, empty_label, label_too_long, reserved_label, examples_and_folder, no_paths."""


class BadImage(Unprocessable):
    """422 bad_image, unsupported, unreadable, not_an_image."""


class ModelServerBusy(TooManyRequests):
    """429 model_server_busy."""


class TooManyUploads(TooManyRequests):
    """429 too_many_uploads."""


class ModelServerUnavailable(Unavailable):
    """503 model_server_unavailable."""


class BackendUnavailable(Unavailable):
    """503 backend_unavailable: the job queue failed or cannot be opened."""


class StoreUnavailable(Unavailable):
    """503 store_unavailable."""


class JobFailed(VisiondError):
    """``wait_job(check=True)``: the job ended failed or canceled (``job`` holds it)."""

    def __init__(self, job: Any) -> None:
        super().__init__(f"job {job.get('id')} ended {job.get('state')}: {job.get('error')}")
        self.job = job


class TrainingFailed(VisiondError):
    """``wait_session(check=True)``: the session ended failed or canceled (``session`` holds it)."""

    def __init__(self, session: Any) -> None:
        super().__init__(
            f"session {session.get('id')} ended {session.get('state')}: {session.get('message')}")
        self.session = session


STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed,
    408: BodyTooSlow, 409: Conflict, 413: TooLarge, 415: UnsupportedMediaType,
    422: Unprocessable, 429: TooManyRequests, 500: ServerError, 503: Unavailable,
    507: StorageFull,
}

CODE_CLASSES: dict[str, type[APIError]] = {
    "job_not_found": JobNotFound, "session_not_found": SessionNotFound,
    "model_not_found": ModelNotFound, "path_not_found": PathNotFound,
    "invalid_state": InvalidState, "job_exists": JobExists,
    "session_not_ready": SessionNotReady,
    "missing_field": ValidationError, "invalid_value": ValidationError,
    "unknown_field": ValidationError, "invalid_payload": ValidationError,
    "unknown_kind": ValidationError,
    "no_media_roots": PathRefused,
    "unknown_model": UnknownModel, "model_kind_mismatch": UnknownModel,
    "model_task_mismatch": UnknownModel,
    "unknown_job_type": UnknownJobType, "test_job_type": UnknownJobType,
    "no_examples": BadExamples, "one_label": BadExamples, "empty_label": BadExamples,
    "label_too_long": BadExamples, "reserved_label": BadExamples,
    "examples_and_folder": BadExamples, "no_paths": BadExamples,
    "bad_image": BadImage, "unsupported": BadImage, "unreadable": BadImage,
    "not_an_image": BadImage,
    "model_server_busy": ModelServerBusy, "too_many_uploads": TooManyUploads,
    "model_server_unavailable": ModelServerUnavailable,
    "backend_unavailable": BackendUnavailable, "store_unavailable": StoreUnavailable,
}


def error_class(status: int, code: str) -> type[APIError]:
    """The exception class for an error answer: by code, else by status, else APIError.

    A code's class is used only when its status agrees with the code's status class
    (``path_not_found`` is 404, the other ``path_*`` codes 422).
    """
    cls = CODE_CLASSES.get(code)
    if cls is None and code.startswith("path_") and status == 422:
        cls = PathRefused
    by_status = STATUS_CLASSES.get(status, APIError)
    if cls is not None and issubclass(cls, by_status):
        return cls
    return by_status


def from_response(status: int, body: Any, retry_after: Optional[float]) -> APIError:
    """Builds the exception for an HTTP error answer (body: decoded JSON or None)."""
    code, message = "http_%d" % status, "HTTP %d" % status
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code", code))
        message = str(body["error"].get("message", message))
    return error_class(status, code)(status, code, message, retry_after, body)


__all__ = [
    "APIError",
    "BackendUnavailable",
    "BadExamples",
    "BadImage",
    "BadRequest",
    "BodyTooSlow",
    "CODE_CLASSES",
    "Conflict",
    "InvalidState",
    "JobExists",
    "JobFailed",
    "JobNotFound",
    "MethodNotAllowed",
    "ModelNotFound",
    "ModelServerBusy",
    "ModelServerUnavailable",
    "NotFound",
    "PathNotFound",
    "PathRefused",
    "STATUS_CLASSES",
    "ServerError",
    "SessionNotFound",
    "SessionNotReady",
    "StorageFull",
    "StoreUnavailable",
    "TooLarge",
    "TooManyRequests",
    "TooManyUploads",
    "TrainingFailed",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnknownJobType",
    "UnknownModel",
    "Unprocessable",
    "UnsupportedMediaType",
    "ValidationError",
    "VisiondError",
    "WaitTimeout",
    "error_class",
    "from_response",
]
