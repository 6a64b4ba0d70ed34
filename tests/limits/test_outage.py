"""The outage log: local windows, a bounded list, taken and restored in order."""

from __future__ import annotations

from riskservice.limits.keys import decision_keys
from riskservice.limits.outage import OutageLog
from riskservice.policy.load import load_policy
from tests.limits.args import decide_args

PLAN = load_policy("config/policy.yaml").default.plan


def allow(log: OutageLog, i: int, now: int, device: str = "d1") -> int:
    keys = decision_keys(f"e{i}", device, "u1", None)
    args = decide_args(now=now, decision_id=f"id{i}", user_id="u1", device_id=device, plan=PLAN)
    return log.judge(keys, args).decision


def test_local_windows_refuse_past_the_limit_and_remember_only_allowed_shares() -> None:
    log = OutageLog()
    decisions = [allow(log, i, 1_000 + i) for i in range(22)]
    assert decisions == [0] * 20 + [1] * 2  # device velocity: 20 in 5 minutes
    assert log.pending() == 20


def test_taken_shares_come_back_in_order_when_they_cannot_be_written() -> None:
    log = OutageLog()
    for i in range(5):
        allow(log, i, 1_000 + i)
    first = log.take(2)
    assert [s.args.decision_id for s in first] == ["id0", "id1"]
    log.restore(first)
    assert [s.args.decision_id for s in log.take(10)] == ["id0", "id1", "id2", "id3", "id4"]


def test_the_windows_are_forgotten_once_everything_is_written() -> None:
    log = OutageLog()
    for i in range(20):
        allow(log, i, 1_000 + i)
    assert allow(log, 20, 1_020) == 1
    log.written(log.take(20))
    assert allow(log, 21, 1_021) == 0  # Redis holds the 20 now; the next outage starts afresh


def test_a_full_log_counts_what_it_drops() -> None:
    log = OutageLog(capacity=3)
    for i in range(5):
        allow(log, i, 1_000 + i, device=f"d{i}")
    assert (log.pending(), log.dropped) == (3, 2)
