"""A rolled-back scoring run's marks leave the review queue; the restored run's come back."""

from __future__ import annotations

import redis
from click.testing import CliRunner

from riskservice.__main__ import cli
from riskservice.graph_store import current_version, version_key, write_back
from riskservice.limits.keys import REVIEW_QUEUE, device_tag
from riskservice.policy.model import Review
from riskservice.review.withdrawn import roll_back_scores
from tests.redis_server import RedisServer


def device(node: str, anomaly: float) -> dict[str, object]:
    return {"kind": "device", "node": node, "anomaly": anomaly, "kol": 0.0, "signals": []}


def test_a_rollback_ranks_the_withdrawn_runs_devices_by_what_is_left(redis_client: redis.Redis) -> None:
    first = write_back(redis_client, [device("kept", 0.9), device("both", 0.9), device("later", 0.1)],
                       queue_threshold=0.8)
    redis_client.hset(f"{device_tag('later')}:review", "status", "blocked")  # (an analyst's: no queue)
    # The bad run: "bad" and "pointed" are its false positives; "pointed" also earned refusal points
    # (one of them a graph_anomaly refusal under the bad scores); "both" scored in both runs.
    second = write_back(redis_client, [device("kept", 0.2), device("both", 1.0), device("bad", 0.95),
                                       device("pointed", 0.85), device("later", 0.9)], queue_threshold=0.8)
    redis_client.hset(f"{device_tag('pointed')}:flags", mapping={"_points": 5, "graph_anomaly": 2})

    assert roll_back_scores(redis_client, Review(min_points=3, anomaly_threshold=0.8)) == (first, second)

    queue = {m.decode(): s for m, s in redis_client.zrange(REVIEW_QUEUE, 0, -1, withscores=True)}
    assert queue == {"kept": 9.0, "both": 9.0, "pointed": 5.0}
    tagged = {d: {k.decode(): v.decode() for k, v in redis_client.hgetall(f"{device_tag(d)}:flags").items()}
              for d in ("bad", "pointed", "both", "later")}
    assert tagged["bad"] == {}
    assert tagged["pointed"] == {"_points": "5", "graph_anomaly": "1"}  # the refusal stays, the mark goes
    assert tagged["both"]["_anomaly"] == "0.9000"
    assert "_anomaly" not in tagged["later"]
    assert current_version(redis_client) == first
    assert not redis_client.exists(version_key(second, "rows"), version_key(second, "anomaly"))
    assert roll_back_scores(redis_client, Review()) is None


def test_the_cli_says_when_there_is_nothing_to_roll_back(redis_server: RedisServer,
                                                          redis_client: redis.Redis) -> None:
    result = CliRunner().invoke(cli, ["rollback-scores"], env={"REDIS_URL": redis_server.url})
    assert result.exit_code == 1 and "nothing rolled back" in result.output
    write_back(redis_client, [device("a", 0.9)], queue_threshold=0.8)
    write_back(redis_client, [device("b", 0.9)], queue_threshold=0.8)
    result = CliRunner().invoke(cli, ["rollback-scores"], env={"REDIS_URL": redis_server.url})
    assert result.exit_code == 0 and "rolled back to version 1" in result.output
    assert [m.decode() for m in redis_client.zrange(REVIEW_QUEUE, 0, -1)] == ["a"]
