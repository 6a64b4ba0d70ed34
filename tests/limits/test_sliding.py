from __future__ import annotations

from riskservice.limits.sliding import combine, in_window, judge, record


def test_entry_counts_until_exactly_window_old() -> None:
    assert in_window([0, 1, 2], now_ms=300_000, window_ms=300_000) == [1, 2]


def test_judge_below_limit_has_no_retry() -> None:
    assert judge([1, 2], now_ms=10, window_ms=100, limit=3) == (2, 0)


def test_retry_is_when_enough_entries_leave() -> None:
    # 4 in window, limit 3: two must leave; the second oldest leaves at 20 + 100.
    assert judge([10, 20, 30, 40], now_ms=50, window_ms=100, limit=3) == (4, 70)


def test_record_caps_and_trims() -> None:
    assert record([1, 2, 3], now_ms=10, cap=3, keep_ms=9) == [2, 3, 10]
    assert record([1, 2, 3], now_ms=10, cap=2, keep_ms=100) == [3, 10]


def test_record_keeps_sorted_when_clock_steps_back() -> None:
    assert record([5, 9], now_ms=7, cap=10, keep_ms=100) == [5, 7, 9]


def test_combine_orders_severity_and_ignores_shadow() -> None:
    assert combine([]) == (0, "")
    assert combine([["a", 1, 0, "captcha"]]) == (1, "captcha")
    assert combine([["a", 1, 0, "captcha"], ["b", 1, 0, "sms"]]) == (1, "sms")
    assert combine([["a", 1, 0, "sms"], ["b", 2, 0, ""]]) == (2, "")
    assert combine([["a", 2, 1, ""], ["b", 1, 0, "captcha"]]) == (1, "captcha")


def test_no_span_ever_holds_more_than_limit() -> None:
    """Offer a share every 7 ms for 10 s; admitted ones never exceed 20 in any 300 ms."""
    log: list[int] = []
    admitted = []
    for now in range(0, 10_000, 7):
        count, _ = judge(log, now, 300, 20)
        if count < 20:
            log = record(log, now, cap=20, keep_ms=300)
            admitted.append(now)
    for i in range(len(admitted) - 20):
        assert admitted[i + 20] - admitted[i] >= 300
