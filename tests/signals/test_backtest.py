"""The backtest replays the signals in event time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from riskservice.backtest import run_backtest
from riskservice.policy.load import load_policy
from tests.redis_server import RedisServer

T0 = 1_760_000_000.0


def recorded(i: int, user: str, coupon: str, ts: float, claimed: int | None = 0) -> dict[str, Any]:
    return {"event_id": f"e{i}", "decision_id": f"x{i}", "device_id": f"dev-{user}", "user_id": user,
            "coupon_id": coupon, "recipients": [f"r{i}"], "ts": ts, "decision": "allow", "reasons": [],
            "shadow": [], "delivered": None if claimed is None else 1, "opened": None if claimed is None else 1,
            "claimed": claimed}


def test_signal_refusals_appear_in_the_backtest_with_their_events(redis_server: RedisServer,
                                                                  redis_client: redis.Redis, tmp_path: Path) -> None:
    # One account pushing one coupon every two hours, and an ordinary account.
    events = [recorded(i, "pusher", "cp-1", T0 + i * 7200) for i in range(6)]
    events += [recorded(10 + i, "friend", f"cp-{i}", T0 + i * 7200 + 1) for i in range(3)]
    policy = load_policy(Path("config/policy.yaml"))
    result = run_backtest(events, policy, examples=100, redis_url=redis_server.url)
    # The fifth and sixth shares meet coupon_repeat (4 and 5 earlier sittings of cp-1, threshold 4).
    assert [(ex["event_id"], ex["candidate"], ex["candidate_reasons"]) for ex in result.examples] == [
        ("e4", "challenge", ["coupon_repeat"]), ("e5", "challenge", ["coupon_repeat"])]
    assert (result.changed, dict(result.rule_added)) == (2, {"coupon_repeat": 2})
    # Without the signals the recording stands.
    assert run_backtest(events, policy, examples=100, redis_url=redis_server.url, signals=False).changed == 0
