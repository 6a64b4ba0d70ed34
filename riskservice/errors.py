"""One error hierarchy, one JSON error shape.

Every error a client can cause is an :class:`ApiError` and leaves as
``{"error": {"code", "message", "fields"}}`` with its 4xx status. Storage
failures are a :class:`StorageError`, which the decision path turns into a
degraded answer rather than a 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RiskServiceError(Exception):
    """Base of every error raised by this package."""


class PolicyError(RiskServiceError):
    """The policy file is missing or invalid; the message names the place."""


class StorageError(RiskServiceError):
    """Redis could not be reached or answered in time."""


class ApiError(RiskServiceError):
    """An error answered to the client with a 4xx status."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    def to_dict(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class InvalidJson(ApiError):
    status = 400
    code = "invalid_json"


class InvalidParameter(ApiError):
    """A query parameter (or path id) that is malformed, foreign, repeated or unknown; ``fields`` names it."""

    status = 400
    code = "invalid_parameter"


class ValidationFailed(ApiError):
    status = 422
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    # The caller whose key lacks the role (auth.authorize sets it), for the access log.
    principal: Any = None


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class Unavailable(ApiError):
    """Redis is unreachable for a call that cannot be answered without it."""

    status = 503
    code = "unavailable"


class NotSupported(ApiError):
    """The deployment cannot do this (e.g. a multi-slot transaction on Redis Cluster)."""

    status = 501
    code = "not_supported"
