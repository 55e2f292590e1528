"""The one exception tree of reward-kit, shared by the server and the SDK.

Every class carries the HTTP status and the wire ``code`` it maps to, so the server turns an
exception into ``{"error": {"code": ..., "message": ...}}`` and the SDK turns that body back
into the same class (:func:`error_from_response`).

    RewardKitError                      500 internal_error
    ├── ConfigurationError              500 configuration_error   (start-up problems)
    │   ├── LoadError                   500 load_error            (a target failed to load)
    │   └── MissingDependency           500 missing_dependency    (an extra is not installed)
    ├── RequestRejected                 4xx                        (the request was refused)
    │   ├── InvalidRequest              422 invalid_request
    │   │   └── MalformedJSON           400 invalid_json
    │   ├── FunctionRequired            400 function_required
    │   ├── AuthenticationError         401 unauthenticated
    │   ├── PermissionDenied            403 forbidden
    │   ├── UnknownFunction             404 unknown_function
    │   ├── UnknownEnvironment          404 unknown_environment
    │   ├── UnknownSession              404 unknown_session       (or another caller's)
    │   ├── SessionEnded                409 session_ended         (done, truncated or failed)
    │   ├── SessionGone                 410 session_gone          (closed or expired)
    │   ├── PayloadTooLarge             413 payload_too_large
    │   └── Overloaded                  429 overloaded
    ├── EvaluationError                 the reward function produced no result
    │   ├── FunctionError               500 function_error
    │   ├── WorkerCrashed               500 crashed
    │   └── EvaluationTimeout           504 timeout
    ├── EvaluatorUnavailable            503 unavailable
    ├── GenerationError                 502 generation_error      (rk run: a model endpoint failed)
    └── InvalidResponse                 502 invalid_response      (SDK: an unreadable answer)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "EvaluationError",
    "EvaluationTimeout",
    "EvaluatorUnavailable",
    "FunctionError",
    "FunctionRequired",
    "GenerationError",
    "InvalidRequest",
    "InvalidResponse",
    "LoadError",
    "MalformedJSON",
    "MissingDependency",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "RequestRejected",
    "RewardKitError",
    "SessionEnded",
    "SessionGone",
    "UnknownEnvironment",
    "UnknownFunction",
    "UnknownSession",
    "WorkerCrashed",
    "error_class_for_code",
    "error_from_response",
]

_BY_CODE: dict[str, type[RewardKitError]] = {}


class RewardKitError(Exception):
    """Base class of every error reward-kit raises on purpose.

    >>> err = UnknownFunction("no function 'x'; served: a, b")
    >>> err.status_code, err.code
    (404, 'unknown_function')
    """

    status_code: ClassVar[int] = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self._status_code = status_code
        self.retry_after = retry_after

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _BY_CODE.setdefault(cls.code, cls)

    @property
    def status(self) -> int:
        """The HTTP status of this instance (a class default unless the server said otherwise)."""
        return self._status_code if self._status_code is not None else self.status_code

    def to_payload(self) -> dict[str, Any]:
        """The JSON error body the server sends for this error."""
        return {"error": {"code": self.code, "message": self.message}}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments are lost by the default exception pickling, and errors cross
        # process boundaries (worker pool -> server).
        return (
            _rebuild,
            (type(self), self.message, self.code, self._status_code, self.retry_after),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


def _rebuild(
    cls: type[RewardKitError],
    message: str,
    code: str,
    status_code: int | None,
    retry_after: float | None,
) -> RewardKitError:
    return cls(message, code=code, status_code=status_code, retry_after=retry_after)


class ConfigurationError(RewardKitError):
    """The evaluator or CLI was configured in a way that cannot work."""

    code = "configuration_error"


class LoadError(ConfigurationError):
    """A reward target could not be imported or resolved."""

    code = "load_error"


class MissingDependency(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the pip command that adds it."""

    code = "missing_dependency"


class RequestRejected(RewardKitError):
    """The evaluator refused the request (a 4xx answer)."""

    status_code = 400
    code = "request_rejected"


class InvalidRequest(RequestRejected, ValueError):
    """The request body or an item does not have the expected shape."""

    status_code = 422
    code = "invalid_request"


class MalformedJSON(InvalidRequest):
    """The body is not valid JSON."""

    status_code = 400
    code = "invalid_json"


class FunctionRequired(RequestRejected):
    """Several functions are served and the request did not name one."""

    status_code = 400
    code = "function_required"


class AuthenticationError(RequestRejected):
    """No usable credential was presented."""

    status_code = 401
    code = "unauthenticated"


class PermissionDenied(RequestRejected):
    """A credential was presented but it is not accepted."""

    status_code = 403
    code = "forbidden"


class UnknownFunction(RequestRejected, LookupError):
    """The named reward function is not served."""

    status_code = 404
    code = "unknown_function"


class UnknownEnvironment(RequestRejected, LookupError):
    """The named environment is not served."""

    status_code = 404
    code = "unknown_environment"


class UnknownSession(RequestRejected, LookupError):
    """No such environment session for this caller (another caller's session is unknown too)."""

    status_code = 404
    code = "unknown_session"


class SessionEnded(RequestRejected):
    """The session is done, truncated or failed: it takes no more steps."""

    status_code = 409
    code = "session_ended"


class SessionGone(RequestRejected):
    """The session was closed or expired and its process is gone."""

    status_code = 410
    code = "session_gone"


class PayloadTooLarge(RequestRejected):
    """The body or the batch is over the server's limit."""

    status_code = 413
    code = "payload_too_large"


class Overloaded(RequestRejected):
    """The server cannot take the request now (every evaluation slot taken and no room or
    time to wait for one, or too many failed auth attempts); retry after ``retry_after``
    seconds."""

    status_code = 429
    code = "overloaded"


class EvaluationError(RewardKitError):
    """The reward function ran but produced no result."""

    code = "evaluation_error"


class FunctionError(EvaluationError):
    """The reward function raised, or returned something that is not a result."""

    code = "function_error"


class WorkerCrashed(EvaluationError):
    """The worker process died while evaluating (segfault, ``os._exit``, memory limit)."""

    code = "crashed"


class EvaluationTimeout(EvaluationError, TimeoutError):
    """The reward function ran past its deadline and was stopped."""

    status_code = 504
    code = "timeout"


class EvaluatorUnavailable(RewardKitError):
    """The evaluator could not be reached, or answered that it is unavailable."""

    status_code = 503
    code = "unavailable"


class GenerationError(RewardKitError):
    """rk run: a model endpoint did not produce a reply. ``kind`` is the generation status
    (``auth``, ``rate_limit``, ``context_length``... see ``GenerationStatus``)."""

    status_code = 502
    code = "generation_error"

    def __init__(self, message: str, *, kind: str = "server", **options: Any) -> None:
        super().__init__(message, **options)
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_generation, (self.message, self.kind, self.retry_after))


def _rebuild_generation(message: str, kind: str, retry_after: float | None) -> GenerationError:
    return GenerationError(message, kind=kind, retry_after=retry_after)


class InvalidResponse(RewardKitError):
    """The evaluator (or something in front of it) answered what no reward-kit server sends:
    a body that is not JSON, results missing or repeated. Raised by the SDK."""

    status_code = 502
    code = "invalid_response"


_BY_STATUS: dict[int, type[RewardKitError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    413: PayloadTooLarge,
    429: Overloaded,
}


def error_class_for_code(code: str) -> type[RewardKitError] | None:
    """The exception class registered for a wire ``code``, if any."""
    return _BY_CODE.get(code)


def error_from_response(status: int, payload: Any) -> RewardKitError:
    """Rebuild the exception the server raised from its status and JSON error body.

    Unknown codes still give a useful class: 401/403/429 -> their class, other 4xx ->
    :class:`RequestRejected`, 502/503/504 -> :class:`EvaluatorUnavailable`, anything else ->
    :class:`RewardKitError`. (Proxies and gateways answer without our body.)
    """
    code, message = "", f"HTTP {status}"
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        code = str(payload["error"].get("code", ""))
        message = str(payload["error"].get("message", message))
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        if 400 <= status < 500:
            cls = RequestRejected
        elif status in (502, 503, 504):
            cls = EvaluatorUnavailable
        else:
            cls = RewardKitError
    return cls(message, code=code or None, status_code=status)
