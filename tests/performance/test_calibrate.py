"""``calibrate``: thresholds proposed from labelled, exported share events, checked by the backtest.

The traffic is recorded through the real service under the default policy
(more than 20 shares from a device in 5 min is challenged):

- two fraud devices each make 30 shares 5 s apart: 20 allowed, 10 challenged;
- three legit devices each make a burst of 12 shares 5 s apart, then 28
  more, 40 min apart, over the rest of the day (40 shares each).

So device_velocity sees 1..20 and then 21 (x10) on each fraud device, and
1..12 then 1s on each legit one. Below a limit of 20, a limit of 11 refuses
19 fraud shares per fraud device and the 12th share of each legit burst:
38 fraud of 41 labelled refused, precision 0.927; a limit of 10 would add
3 legit shares for 2 fraud ones (0.870). The daily caps see the legit
devices' 40 shares a day above anything the fraud devices reach, so no
daily-cap limit refusing fraud keeps a precision of 0.9: they stay.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import redis
import yaml
from click.testing import CliRunner
from flask.testing import FlaskClient

from riskservice.__main__ import cli
from riskservice.calibration.run import calibrate
from riskservice.events import read_events
from riskservice.limits.clock import ManualClock
from riskservice.policy.load import load_policy
from tests.api.helpers import share
from tests.conftest import ANALYST
from tests.performance.helpers import label_user
from tests.redis_server import RedisServer

# The default policy without the real-time signals: these tests calibrate the
# count and graph rules, and every shop here shares one coupon 40 times, which
# the signals' coupon_repeat would refuse.
SIGNALS = ("device_rotation", "lockstep", "sink_feeder", "dead_recipients", "coupon_repeat")


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = yaml.safe_load(Path("config/policy.yaml").read_text())
    for name in SIGNALS:
        doc["rules"][name] = {**doc["rules"][name], "enabled": False}
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path
FRAUD, LEGIT = ("farm-1", "farm-2"), ("shop-1", "shop-2", "shop-3")


@pytest.fixture
def events(client: FlaskClient, clock: ManualClock, redis_client: redis.Redis, tmp_path: Path) -> Path:
    """The recorded traffic, labelled (shop-3 through its user's label), exported as JSON lines."""
    for device in FRAUD:
        for i in range(30):
            clock.advance(5)
            decision = share(client, device_id=device, user_id=f"{device}-u").json["decision"]
            assert decision == ("allow" if i < 20 else "challenge")
        clock.advance(600)
    for device in LEGIT:
        for i in range(40):
            clock.advance(5 if i < 12 else 2400)
            assert share(client, device_id=device, user_id=f"{device}-u").json["decision"] == "allow"
        clock.advance(600)
    for device, label in (("farm-1", "fraud"), ("farm-2", "fraud"), ("shop-1", "legit"), ("shop-2", "legit")):
        resp = client.post(f"/v1/review/devices/{device}/actions", headers=ANALYST,
                           json={"action": "label", "label": label, "reason": "reviewed"})
        assert resp.status_code == 200
    label_user(redis_client, "shop-3-u", "legit")
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in read_events(redis_client)))
    return path


def scratch(redis_server: RedisServer) -> str:
    return redis_server.url.rsplit("/", 1)[0] + "/1"


def by_rule(result: dict[str, object]) -> dict[str, dict[str, object]]:
    return {p["rule"]: p for p in result["proposals"]}  # type: ignore[attr-defined, index]


@pytest.mark.parametrize(("target", "limit", "flagged", "caught"), [(0.9, 11, 41, 38), (0.95, 12, 36, 36)])
def test_velocity_limit_moves_down_to_the_labelled_fraud(events: Path, tmp_path: Path, redis_server: RedisServer,
                                                         policy_file: Path,
                                                         target: float, limit: int, flagged: int,
                                                         caught: int) -> None:
    out = tmp_path / "candidate.yaml"
    result = calibrate(events, policy_file, out, target=target, redis_url=scratch(redis_server))
    assert (result["events"], result["labelled"], result["fraud"]) == (180, 180, 60)
    rules = by_rule(result)
    velocity = rules["device_velocity"]
    assert (velocity["current"], velocity["proposed"], velocity["direction"]) == (20, limit, "lower")
    assert velocity["at_current"] == {"flagged": 20, "fraud": 20, "legit": 0, "precision": 1.0}
    assert velocity["at_proposed"] == {"flagged": flagged, "fraud": caught, "legit": flagged - caught,
                                       "precision": round(caught / flagged, 4)}
    for kept in ("device_daily_cap", "user_daily_cap", "device_many_users", "fan_out"):
        assert rules[kept]["proposed"] == rules[kept]["current"] and rules[kept]["direction"] == "same"
    assert "no threshold reaches" in str(rules["device_daily_cap"]["note"])
    assert "graph_anomaly" not in rules  # no scores given

    # The candidate file loads, with only the velocity limit changed.
    candidate = load_policy(out).for_merchant(None).rules
    assert candidate.device_velocity.limit == limit
    assert candidate.model_dump(exclude={"device_velocity"}) == \
        load_policy(policy_file).for_merchant(None).rules.model_dump(exclude={"device_velocity"})

    # The exact replay: the candidate refuses 19 shares of each fraud device (was 10) and the
    # 12th share of each legit burst at a limit of 11.
    bt = result["backtest"]
    assert bt["current"]["fraud"] == {"shares": 60, "refused": 20, "blocked": 0}
    assert bt["current"]["legit"] == {"shares": 120, "refused": 0, "blocked": 0}
    legit = 3 if limit == 11 else 0
    assert bt["candidate"]["fraud"] == {"shares": 60, "refused": 2 * (30 - limit), "blocked": 0}
    assert bt["candidate"]["legit"] == {"shares": 120, "refused": legit, "blocked": 0}
    assert bt["candidate_changes"]["changed"] == 2 * (20 - limit) + legit


def test_graph_anomaly_threshold_from_scores(events: Path, tmp_path: Path, redis_server: RedisServer,
                                            policy_file: Path) -> None:
    scores = tmp_path / "scores.jsonl"
    anomaly = {"farm-1": 0.95, "farm-2": 0.72, "shop-1": 0.7, "shop-2": 0.3, "shop-3": 0.1}
    scores.write_bytes(b"".join(orjson.dumps({"node": d, "kind": "device", "anomaly": a, "kol": 0.0, "signals": []})
                                + b"\n" for d, a in anomaly.items()))
    result = calibrate(events, policy_file, tmp_path / "c.yaml", scores_file=scores, rules=("graph_anomaly",),
                       redis_url=scratch(redis_server))
    (graph,) = result["proposals"]
    # 0.72 takes farm-2 as well and stops short of shop-1 (0.7).
    assert (graph["rule"], graph["current"], graph["proposed"], graph["direction"]) == (
        "graph_anomaly", 0.8, 0.72, "lower")
    assert graph["at_current"] == {"flagged": 30, "fraud": 30, "legit": 0, "precision": 1.0}
    assert graph["at_proposed"] == {"flagged": 60, "fraud": 60, "legit": 0, "precision": 1.0}
    assert load_policy(tmp_path / "c.yaml").for_merchant(None).rules.graph_anomaly.threshold == 0.72
    # The replay reads the scores: farm-1 was challenged by the graph rule already, farm-2 is now.
    bt = result["backtest"]
    assert bt["current"]["fraud"]["refused"] == 30 + 10
    assert bt["candidate"]["fraud"]["refused"] == 60
    assert bt["candidate"]["legit"]["refused"] == 0


def test_cli_writes_the_candidate_and_reports(events: Path, tmp_path: Path, policy_file: Path) -> None:
    out = tmp_path / "proposed.yaml"
    result = CliRunner().invoke(cli, ["calibrate", "--input", str(events), "--policy", str(policy_file),
                                      "--output", str(out), "--rule", "device_velocity"],
                                env={"RISK_LOG_LEVEL": "WARNING"})
    assert result.exit_code == 0, result.output
    assert "device_velocity.limit: 20 -> 11 (lower)" in result.output
    assert "fraud: 20 -> 38 of 60" in result.output and "legit: 0 -> 3 of 120" in result.output
    assert out.read_text(encoding="utf-8").startswith("# Candidate policy proposed by")
    as_json = CliRunner().invoke(cli, ["calibrate", "--input", str(events), "--policy", str(policy_file),
                                       "--output", str(out), "--target-precision", "0.95", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert by_rule(orjson.loads(as_json.output))["device_velocity"]["proposed"] == 12


def test_cli_refuses_a_bad_target(events: Path) -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--input", str(events), "--target-precision", "1.5"])
    assert result.exit_code == 2 and "--target-precision" in result.output
