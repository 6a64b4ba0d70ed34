"""Bulk actions racing on overlapping cases: one consistent state per member, every action audited."""

from __future__ import annotations

import threading
from typing import Any

import redis

from riskservice.graph_store import write_back
from riskservice.review import case_actions
from riskservice.review.case_actions import CaseActionRequest
from riskservice.review.verify import verify
from tests.cases.helpers import case
from tests.redis_server import RedisServer

SHARED_USERS, SHARED_DEVICE = ["s1", "s2"], "shared-phone"


def _state(client: redis.Redis, kind: str, node: str) -> tuple[bool, bool]:
    """(banned, allow-listed) as the decision path would read them."""
    tag = f"risk:{{{'d' if kind == 'device' else 'u'}:{node}}}"
    banned = bool(client.exists(f"{tag}:ban"))
    allowed = bool(client.exists(f"{tag}:allow")) if kind == "device" else (
        client.hget(f"{tag}:review", "status") == b"allowlisted")
    return banned, allowed


def _race(redis_server: RedisServer, now_ms: int) -> dict[str, Any]:
    """Block case c1 and allow-list case c2 at the same moment, from two threads with their own clients."""
    requests = {"c1": CaseActionRequest(action="block", reason="farm"),
                "c2": CaseActionRequest(action="allowlist", reason="known family")}
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(case_id: str) -> None:
        client = redis_server.client()
        try:
            start.wait()
            results[case_id] = case_actions.apply(client, case_id, requests[case_id], actor=f"analyst-{case_id}",
                                                  now_ms=now_ms)
        except Exception as exc:
            results[case_id] = exc
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_overlapping_bulk_actions_serialise(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    for round_ in range(6):
        redis_client.flushall()
        # Two cases of one version sharing two accounts and a phone (hand-made: the batch job's groups are
        # disjoint, but a case resolved on an older version can overlap a newer one the same way).
        write_back(redis_client, [], cases=[case(["a1", "a2", *SHARED_USERS], [SHARED_DEVICE, "pa"], score=5.0),
                                            case(["b1", *SHARED_USERS], [SHARED_DEVICE], score=4.0)])
        results = _race(redis_server, 1_700_000_000_000 + round_)
        assert all(isinstance(r, dict) for r in results.values()), results
        last = max(results.values(), key=lambda r: r["audit"]["seq"])
        # Every shared member carries the state of the action audited last, and only that state.
        want = (True, False) if last["action"] == "block" else (False, True)
        for kind, node in [("device", SHARED_DEVICE), *(("user", u) for u in SHARED_USERS)]:
            assert _state(redis_client, kind, node) == want, (round_, kind, node)
        # The members of only one case keep their own case's state.
        assert _state(redis_client, "user", "a1") == (True, False)
        assert _state(redis_client, "device", "pa") == (True, False)
        assert _state(redis_client, "user", "b1") == (False, True)
        # Both actions are in the trail, each listing its members, and the chain verifies.
        seqs = sorted(r["audit"]["seq"] for r in results.values())
        assert seqs == [1, 2]
        assert sorted(m["node"] for m in results["c1"]["audit"]["details"]["members"]) == [
            "a1", "a2", "pa", "s1", "s2", SHARED_DEVICE]
        assert verify(redis_client)["ok"] is True
