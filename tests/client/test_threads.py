"""One client shared by many threads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from riskclient import RiskClient

from tests.client.conftest import RELAXED_S, unique
from tests.client.proxy import Proxy
from tests.conftest import ISSUER_KEY

pytestmark = pytest.mark.serving


def test_many_threads_share_one_client_and_each_gets_its_own_answer(risk: RiskClient) -> None:
    device = unique("dev")
    events = [unique("ev") for _ in range(200)]

    def decide(i: int) -> tuple[str, str, str | None]:
        d = risk.decide(events[i], device, f"u{i % 5}", "cp")
        assert not d.degraded and not d.replayed
        return events[i], d.decision, d.decision_id

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(decide, range(200)))
    assert Counter(decision for _, decision, _ in answers) == {"allow": 20, "challenge": 180}
    assert len({decision_id for _, _, decision_id in answers}) == 200
    # Each thread got the answer to its own request: replaying every event
    # (again from many threads) returns the decision id that thread saw.
    with ThreadPoolExecutor(32) as pool:
        replays = list(pool.map(lambda i: risk.decide(events[i], device, f"u{i % 5}", "cp"), range(200)))
    assert [(r.decision, r.decision_id, r.replayed) for r in replays] == [(d, i, True) for _, d, i in answers]


def test_threads_reuse_a_bounded_set_of_connections(proxy: Callable[[list[str]], Proxy]) -> None:
    counting = proxy([])
    with RiskClient(counting.url, ISSUER_KEY, timeout=RELAXED_S, pool_maxsize=8) as client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: client.decide(unique("ev"), unique("dev"), "u", "cp"), range(160)))
    assert {a.degraded for a in answers} == {False}
    assert counting.accepted <= 8
