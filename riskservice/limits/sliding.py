"""The sliding-window algorithm, apart from any storage.

A window rule "at most ``limit`` shares in any ``window`` ms" is judged on a
*log* of the times of admitted shares. An entry counts while ``now - t <
window``; a share is refused when ``limit`` entries already count. So no
half-open span of ``window`` ms ever holds more than ``limit`` admitted
shares (no fixed-window edge burst), and the answer is exact, not estimated.

Only admitted shares are logged and a log keeps at most the largest limit of
the policy, and nothing older than its longest window: its size is bounded by
the policy, not by traffic. These functions are the reference the Redis script
(``lua/decide.lua``) implements atomically; tests hold the two to the same
answers.
"""

from __future__ import annotations

from collections.abc import Sequence

BLOCK, CHALLENGE, ALLOW = 2, 1, 0
CHALLENGE_RANK = {"": 0, "captcha": 1, "sms": 2}


def in_window(log: Sequence[int], now_ms: int, window_ms: int) -> list[int]:
    """Entries of ``log`` still inside the window ending at ``now_ms``.

    >>> in_window([1_000, 5_000, 9_000], now_ms=10_000, window_ms=5_001)
    [5000, 9000]
    """
    return [t for t in log if now_ms - t < window_ms]


def judge(log: Sequence[int], now_ms: int, window_ms: int, limit: int) -> tuple[int, int]:
    """Count the log's entries in the window, and how long until one more fits.

    Returns
    -------
    count : int
        Admitted shares inside the window.
    retry_ms : int
        0 while ``count < limit``; else ms until enough entries age out.

    Examples
    --------
    Three shares count and the limit is two, so two must leave before one
    more fits: the second (at 2 000 ms) leaves at 7 000 ms, 3 500 ms from now.

    >>> judge([1_000, 2_000, 3_000], now_ms=3_500, window_ms=5_000, limit=2)
    (3, 3500)
    """
    inside = sorted(in_window(log, now_ms, window_ms))
    count = len(inside)
    if count < limit:
        return count, 0
    return count, inside[count - limit] + window_ms - now_ms


def record(log: Sequence[int], now_ms: int, cap: int, keep_ms: int) -> list[int]:
    """Append an admitted share and drop what no window can need any more.

    >>> record([1_000, 2_000, 3_000], now_ms=4_000, cap=3, keep_ms=2_500)
    [2000, 3000, 4000]
    """
    appended = sorted([*log, now_ms])[-cap:]
    return [t for t in appended if now_ms - t < keep_ms]


def combine(findings: Sequence[Sequence[object]]) -> tuple[int, str]:
    """Severity of a set of findings: block > challenge > allow.

    Each finding is ``(code, severity, shadow, challenge, ...)``; shadow
    findings are reported but never enforced. Among challenges, ``sms`` is
    stronger than ``captcha``.

    >>> combine([("a", 1, 0, "captcha"), ("b", 1, 0, "sms"), ("c", 2, 1, "")])
    (1, 'sms')
    """
    decision, challenge = ALLOW, ""
    for f in findings:
        severity, shadow, kind = int(f[1]), int(f[2]), str(f[3])  # type: ignore[call-overload]
        if shadow:
            continue
        if severity > decision:
            decision, challenge = severity, ""
        if severity == CHALLENGE == decision and CHALLENGE_RANK[kind] > CHALLENGE_RANK[challenge]:
            challenge = kind
    return decision, challenge
