"""Cases in Redis: written with the score version, ids kept across write-backs, rolled back with the scores."""

from __future__ import annotations

import redis

from riskservice.cases import store
from riskservice.graph_store import current_version, rollback, write_back
from tests.cases.helpers import case


def _ids(client: redis.Redis) -> dict[str, list[str]]:
    page, _ = store.list_open(client, current_version(client), 100, None)
    return {c["case_id"]: sorted(m["node"] for m in c["members"]) for c in page}


def test_ids_stay_when_members_mostly_stay(redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[case([f"a{i}" for i in range(10)], ["pa"], score=6.0),
                                        case(["b1", "b2", "b3"], score=3.0)])
    first = _ids(redis_client)
    assert sorted(first) == ["c1", "c2"]
    farm_id = next(k for k, v in first.items() if "a0" in v)
    # Next night: the farm lost two accounts and gained three (Jaccard 8/13 >= 0.5); the pair is gone;
    # a new group appears.
    write_back(redis_client, [], cases=[case([f"a{i}" for i in range(2, 13)], ["pa"], score=7.0),
                                        case(["n1", "n2"], score=2.0)])
    second = _ids(redis_client)
    assert second[farm_id] == sorted(["pa", *(f"a{i}" for i in range(2, 13))])
    assert sorted(second) == sorted([farm_id, "c3"])
    card = store.card(redis_client, current_version(redis_client), farm_id)
    assert card is not None and card["opened_version"] == 1 and card["version"] == 2


def test_a_group_that_changed_too_much_is_a_new_case(redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[case(["a1", "a2", "a3", "a4"])])
    write_back(redis_client, [], cases=[case(["a1", "x2", "x3", "x4"])])  # Jaccard 1/7
    assert list(_ids(redis_client)) == ["c2"]


def test_a_rollback_of_the_scores_rolls_the_cases_back(redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[case(["a1", "a2"], score=2.0)])
    write_back(redis_client, [], cases=[case(["a1", "a2", "a3"], score=3.0), case(["z1", "z2"], score=1.0)])
    assert sorted(_ids(redis_client)) == ["c1", "c2"]
    rollback(redis_client)
    assert _ids(redis_client) == {"c1": ["a1", "a2"]}
    # A third version drops the first one's cases with its scores.
    write_back(redis_client, [], cases=[case(["a1", "a2"])])
    write_back(redis_client, [], cases=[case(["a1", "a2"])])
    assert not redis_client.exists(*store.version_keys(1))


def test_open_cases_page_worst_first_with_a_cursor(redis_client: redis.Redis) -> None:
    # Equal scores too: the cursor carries the id, so none is lost or repeated between pages.
    cases = [case([f"u{i}a", f"u{i}b"], score=float(i // 3)) for i in range(25)]
    write_back(redis_client, [], cases=cases)
    version = current_version(redis_client)
    seen, after = [], None
    while True:
        page, after = store.list_open(redis_client, version, 4, after)
        seen += [(c["score"], c["case_id"]) for c in page]
        if after is None:
            break
    assert len(seen) == 25 and len(set(seen)) == 25
    assert seen == sorted(seen, key=lambda s: (-s[0], _neg(s[1])))


def _neg(case_id: str) -> tuple[int, ...]:
    # Redis orders equal scores by member, descending in a reverse range: compare the bytes.
    return tuple(-b for b in case_id.encode())
