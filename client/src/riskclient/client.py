"""``RiskClient``: the issuance service's side of the share-risk API."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypedDict, TypeVar, Unpack
from urllib.parse import quote

from riskclient.errors import TransportError
from riskclient.models import (
    CHALLENGES,
    VERDICTS,
    ChallengeKind,
    ChallengeReport,
    Decision,
    Outcome,
    Reason,
    RewardCheck,
    Verdict,
)
from riskclient.transport import Transport

log = logging.getLogger("riskclient")
# A library leaves output to the application's logging configuration.
log.addHandler(logging.NullHandler())
T = TypeVar("T")

Channel = Literal["chat", "group", "moments", "official_account", "mini_program", "qr", "external"]

# The reason code of an answer the client makes alone, by why it had to.
LOCAL_CODES = {"timeout": "client_timeout", "unavailable": "client_unavailable",
               "bad_response": "client_bad_response"}


class DecisionFields(TypedDict, total=False):
    """The optional fields of a decision request (``None`` values are left out)."""

    merchant_id: str | None
    channel: Channel | None
    platform: str | None
    recipients: Sequence[str] | None
    recipient_count: int | None
    ip: str | None
    geo: Mapping[str, float] | tuple[float, float] | None
    text: str | None
    occurred_at: datetime | str | float | None


class RiskClient:
    """A thread-safe client of the share-risk service; share one per process.

    Parameters
    ----------
    base_url : str
        The service, e.g. ``http://risk.internal:8000``.
    api_key : str
        A key with the role ``issuer``.
    timeout : float
        Deadline of one :meth:`decide` call in seconds (connect, send, wait
        and the retry), 0.1 by default.
    fail_mode : {"allow", "challenge", "block"}
        What :meth:`decide` answers when the service gives no answer in time.
    challenge_kind : {"captcha", "sms"}
        The challenge of fail mode ``challenge``.
    report_timeout : float
        Deadline of the reports and the reward check (off the share path), 1 s.
    pool_maxsize : int
        Keep-alive connections kept for reuse.
    clock : callable
        Monotonic seconds; injectable for tests.

    Examples
    --------
    >>> client = RiskClient("http://127.0.0.1:8000", "issuer-key-0123456789")
    >>> client.timeout, client.fail_mode
    (0.1, 'allow')
    """

    def __init__(self, base_url: str, api_key: str, timeout: float = 0.1, fail_mode: Verdict = "allow", *,
                 challenge_kind: ChallengeKind = "captcha", report_timeout: float = 1.0, pool_maxsize: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if fail_mode not in VERDICTS:
            raise ValueError(f"fail_mode must be one of {VERDICTS}, not {fail_mode!r}")
        if challenge_kind not in CHALLENGES:
            raise ValueError(f"challenge_kind must be one of {CHALLENGES}, not {challenge_kind!r}")
        if not timeout > 0 or not report_timeout > 0:
            raise ValueError("timeouts must be positive seconds")
        self.timeout = timeout
        self.fail_mode: Verdict = fail_mode
        self.challenge_kind: ChallengeKind = challenge_kind
        self.report_timeout = report_timeout
        self._transport = Transport(base_url, api_key, maxsize=pool_maxsize, clock=clock,
                                    user_agent="riskclient/0.1")

    def decide(self, event_id: str, device_id: str, user_id: str, coupon_id: str, *, timeout: float | None = None,
               **fields: Unpack[DecisionFields]) -> Decision:
        """Ask allow, challenge or block before a share; never raises for transport failures.

        Parameters
        ----------
        event_id : str
            The share's idempotency key: the retry (and any replay) counts once.
        device_id, user_id, coupon_id : str
            The sharer's device and account, and the coupon.
        timeout : float, optional
            This call's deadline instead of the client's.
        **fields
            Optional fields of the request: ``merchant_id``, ``channel``,
            ``platform``, ``recipients``, ``recipient_count``, ``ip``, ``geo``
            (``{"lat", "lon"}`` or a ``(lat, lon)`` pair), ``text``,
            ``occurred_at`` (an aware ``datetime``, ISO 8601 or epoch seconds).

        Returns
        -------
        Decision
            The service's answer, or, when it gave none in time, the fail
            mode with ``degraded`` and ``local`` true and a ``client_*`` reason.

        Raises
        ------
        InvalidRequest, AuthError, Conflict, ApiError
            The service refused the request (4xx).
        """
        body: dict[str, Any] = {"event_id": event_id, "device_id": device_id, "user_id": user_id,
                                "coupon_id": coupon_id}
        body.update(_optional(fields))
        try:
            answer = self._transport.post("/v1/decisions", body, self.timeout if timeout is None else timeout)
        except TransportError as exc:
            return self._local(exc)
        try:
            return Decision.from_answer(answer.data, answer.headers)
        except ValueError as exc:  # a 2xx whose body is not a decision
            return self._local(TransportError("bad_response", str(exc), answer.attempts))

    def _local(self, failure: TransportError) -> Decision:
        """The fail-mode answer, when the service gave none."""
        log.warning("risk service gave no answer, answering %s: %s", self.fail_mode, failure)
        challenge = self.challenge_kind if self.fail_mode == "challenge" else None
        reason = Reason(code=LOCAL_CODES[failure.kind], action=self.fail_mode, challenge=challenge,
                        message=f"the risk service gave no answer ({failure}); fail mode {self.fail_mode}",
                        observed=None, limit=None, window_s=None, retry_after_s=None)
        return Decision(decision=self.fail_mode, challenge=challenge, reasons=(reason,), degraded=True,
                        decision_id=None, local=True)

    def report_outcome(self, decision_id: str, delivered: int, opened: int, claimed: int, *,
                       timeout: float | None = None) -> Outcome:
        """Report what became of an allowed share, in counts of recipients (idempotent; counts only grow).

        Raises
        ------
        InvalidRequest, AuthError, NotFound, Conflict
            The service refused the report (4xx).
        TransportError
            No answer in time; the report may or may not be recorded, and
            sending it again later is safe.
        """
        body = {"decision_id": decision_id, "delivered": delivered, "opened": opened, "claimed": claimed}
        return self._report("/v1/outcomes", body, Outcome.from_json, timeout)

    def report_challenge(self, decision_id: str, passed: bool, kind: ChallengeKind, *,
                         timeout: float | None = None) -> ChallengeReport:
        """Report the result of a challenge; a pass counts the share as an allowed one (idempotent).

        Raises
        ------
        InvalidRequest, AuthError, NotFound, Conflict
            The service refused the report (4xx); ``kind`` other than the one
            asked for is an ``InvalidRequest`` naming ``kind``.
        TransportError
            No answer in time; sending the same result again later is safe.
        """
        path = "/v1/challenges/" + quote(decision_id, safe="")
        return self._report(path, {"passed": passed, "kind": kind}, ChallengeReport.from_json, timeout)

    def check_reward(self, event_id: str, user_id: str, device_id: str, amount_cents: int, reason: str, *,
                     timeout: float | None = None) -> RewardCheck:
        """Check a share reward before paying it (``event_id`` is the idempotency key).

        Raises
        ------
        InvalidRequest, AuthError, Conflict
            The service refused the check (4xx).
        TransportError
            No answer in time; do not pay yet, check again with the same ``event_id``.
        """
        body = {"event_id": event_id, "user_id": user_id, "device_id": device_id, "amount_cents": amount_cents,
                "reason": reason}
        return self._report("/v1/rewards/check", body, RewardCheck.from_json, timeout)

    def _report(self, path: str, body: Mapping[str, Any], parse: Callable[[Any], T],
                   timeout: float | None) -> T:
        answer = self._transport.post(path, body, self.report_timeout if timeout is None else timeout)
        try:
            return parse(answer.data)
        except ValueError as exc:
            raise TransportError("bad_response", str(exc), answer.attempts) from None

    def close(self) -> None:
        """Close the pooled connections (the client stays usable; it reconnects)."""
        self._transport.close()

    def __enter__(self) -> RiskClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _optional(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The optional fields as the service expects them, ``None`` left out."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        out[key] = _wire(key, value)
    return out


def _wire(key: str, value: Any) -> Any:
    """One optional field in its JSON form."""
    if key == "geo" and isinstance(value, tuple):
        return {"lat": value[0], "lon": value[1]}
    if key == "recipients":
        return list(value)
    if key == "occurred_at" and isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("occurred_at must be an aware datetime (with a time zone)")
        return value.isoformat()
    return value
