"""The one error tree of llmops. Services raise these; adapters map them once (see ``llmops.app``).

LlmopsError
 ├── InvalidInputError (ValueError)     400  bad request body / parameter (``param`` names the field)
 │    ├── PayloadTooLargeError          413
 │    └── UnsupportedMediaTypeError     415  a Content-Type / Content-Encoding the route does not read
 ├── AuthenticationError                401  missing, unknown or revoked API key
 ├── PermissionDeniedError              403  valid key, not allowed (e.g. admin-only)
 ├── NotFoundError                      404  unknown id / model (``code`` says which)
 ├── ConflictError                      409
 ├── ConfigError                        500  invalid configuration (raised at start-up)
 ├── RateLimitedError                   429  (``retry_after`` seconds)
 │    └── BudgetExceededError           429  code ``budget_exceeded``, never retried by clients
 ├── UpstreamError                      502  an upstream deployment failed (``provider``, ``status_code``,
 │    │                                       ``attempts`` = what every deployment answered)
 │    └── UpstreamTimeoutError          504
 └── OverloadedError                    503  a bounded queue is full (``retry_after``)
      └── StorageUnavailableError       503  the database refused or lost the connection (``retry_after``)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LlmopsError(Exception):
    """Root of every error llmops raises on purpose."""

    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code


class InvalidInputError(LlmopsError, ValueError):
    status_code = 400
    error_type = "invalid_request_error"


class PayloadTooLargeError(InvalidInputError):
    status_code = 413
    default_code = "payload_too_large"


class UnsupportedMediaTypeError(InvalidInputError):
    status_code = 415
    default_code = "unsupported_media_type"


class AuthenticationError(LlmopsError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(LlmopsError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFoundError(LlmopsError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ConflictError(LlmopsError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class ConfigError(LlmopsError):
    status_code = 500
    error_type = "server_error"
    default_code = "config_error"


class RateLimitedError(LlmopsError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BudgetExceededError(RateLimitedError):
    """A hard budget refused the call. Not retryable: clients get ``x-should-retry: false``."""

    default_code = "budget_exceeded"
    error_type = "insufficient_quota"


class OverloadedError(LlmopsError):
    status_code = 503
    error_type = "server_error"
    default_code = "overloaded"

    def __init__(self, message: str, *, retry_after: float | None = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailableError(OverloadedError):
    """The database is unreachable, locked or out of space: nothing was stored, retrying later is safe."""

    default_code = "storage_unavailable"


@dataclass(frozen=True)
class Attempt:
    """One try of one deployment, recorded on failures and in traces."""

    deployment: str
    provider: str
    error: str
    status_code: int | None = None
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class UpstreamError(LlmopsError):
    status_code = 502
    error_type = "api_error"
    default_code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        attempts: list[Attempt] | None = None,
        code: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.provider = provider
        self.upstream_status = upstream_status
        if status_code is not None:
            self.status_code = status_code
        self.retry_after = retry_after
        self.attempts = attempts or []


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    default_code = "upstream_timeout"


def error_envelope(exc: LlmopsError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, body) of the one error envelope, shaped like OpenAI's on every surface:
    ``{"error": {"message", "type", "param", "code"}}``."""
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, round(retry_after)))
    if exc.code == "budget_exceeded" or (exc.status_code < 500 and not isinstance(exc, RateLimitedError)):
        headers["x-should-retry"] = "false"
    headers.update(getattr(exc, "headers", None) or {})  # e.g. x-ratelimit-* on a rate-limit refusal
    attempts = getattr(exc, "attempts", None)
    if attempts:
        headers["x-llmops-attempts"] = str(len(attempts))
    body = {"error": {"message": exc.message, "type": exc.error_type, "param": exc.param, "code": exc.code}}
    return exc.status_code, headers, body
