"""The client's errors: one hierarchy under :class:`RiskClientError`.

Two families:

- :class:`ApiError` and its subclasses: the service answered with a 4xx and
  its JSON error shape ``{"error": {"code", "message", "fields"}}``. Sending
  the same request again would get the same answer, so these are never
  retried and are raised by every method, ``decide`` included.
- :class:`TransportError`: the service did not answer usefully within the
  deadline (connection refused or reset, timeout, a 5xx, a body that is not
  the expected JSON). ``decide`` never raises it (it answers with the fail
  mode instead); the reports and the reward check do.
"""

from __future__ import annotations

from collections.abc import Mapping


class RiskClientError(Exception):
    """Base of every error raised by :mod:`riskclient`."""


class ApiError(RiskClientError):
    """The service refused the request with a 4xx.

    Attributes
    ----------
    status : int
        The HTTP status.
    code : str
        The service's error code (``invalid_request``, ``conflict``, ...).
    message : str
        The service's explanation.
    fields : dict of str to str
        The offending fields, by dotted path (``geo.lat``), with what is wrong.
    """

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


class InvalidRequest(ApiError):
    """400, 413, 415 or 422: the body is malformed, too large or a field is invalid (see ``fields``)."""


class AuthError(ApiError):
    """401 or 403: the API key is missing, unknown, or lacks the role."""


class NotFound(ApiError):
    """404: an unknown or expired ``decision_id``."""


class Conflict(ApiError):
    """409: conflicts with what the service recorded (same ``event_id``, other body; counts that shrink)."""


class TransportError(RiskClientError):
    """The service gave no usable answer within the deadline.

    Attributes
    ----------
    kind : str
        ``timeout`` (the deadline passed), ``unavailable`` (connection refused,
        reset or closed; a 5xx) or ``bad_response`` (a 2xx or 4xx body that is
        not the service's JSON).
    attempts : int
        How many attempts were sent.
    status : int or None
        The HTTP status of the last answer, if any.
    """

    def __init__(self, kind: str, message: str, attempts: int, status: int | None = None) -> None:
        super().__init__(f"{kind} after {attempts} attempt(s): {message}")
        self.kind = kind
        self.message = message
        self.attempts = attempts
        self.status = status


# Which ApiError a 4xx status becomes; any other 4xx is a plain ApiError.
ERROR_OF_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest, 413: InvalidRequest, 415: InvalidRequest, 422: InvalidRequest,
    401: AuthError, 403: AuthError,
    404: NotFound,
    409: Conflict,
}


def api_error(status: int, payload: object) -> ApiError:
    """Build the typed error of a 4xx answer from the service's JSON error shape.

    Parameters
    ----------
    status : int
        The HTTP status (400-499).
    payload : object
        The decoded JSON body; anything but the error shape still gives an
        error of the right class, with a generic code.

    Returns
    -------
    ApiError
        The subclass that matches ``status``.

    Examples
    --------
    >>> err = api_error(422, {"error": {"code": "invalid_request", "message": "bad",
    ...                                 "fields": {"geo.lat": "too large"}}})
    >>> type(err).__name__, err.fields
    ('InvalidRequest', {'geo.lat': 'too large'})
    """
    cls = ERROR_OF_STATUS.get(status, ApiError)
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return cls(status, f"http_{status}", "the service refused the request without its error shape")
    fields = error.get("fields")
    clean = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
    return cls(status, str(error.get("code", f"http_{status}")), str(error.get("message", "")), clean)
