"""``score --write-back`` stores the run's cases with its scores; the next run keeps their ids."""

from __future__ import annotations

from pathlib import Path

import orjson
import redis
from click.testing import CliRunner
from flask.testing import FlaskClient

from graphs.cases.files import read_cases
from riskservice.__main__ import cli
from tests.cases.helpers import farm, organic, star
from tests.conftest import ANALYST
from tests.redis_server import RedisServer


def _score(events_file: Path, out: Path, url: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["score", "--input", str(events_file), "--output", str(out), "--write-back",
                                      "--no-report"], env={"REDIS_URL": url})
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)  # type: ignore[no-any-return]


def test_score_writes_back_cases_and_keeps_their_ids(client: FlaskClient, redis_server: RedisServer,
                                                     redis_client: redis.Redis, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in farm() + star() + organic()))
    summary = _score(events, tmp_path / "run1", redis_server.url)
    assert summary["cases"] == 2 and "cases" in summary["timings_s"]  # type: ignore[operator]
    on_file = read_cases(tmp_path / "run1" / "cases.jsonl")
    listed = client.get("/v1/review/cases", headers=ANALYST).json["cases"]
    assert [(c["kind"], c["summary"]) for c in listed] == [(c["kind"], c["summary"]) for c in on_file]
    ids = {c["kind"]: c["case_id"] for c in listed}
    # The same events again, plus one more farm account: same ids, updated members.
    events.write_bytes(events.read_bytes() + orjson.dumps({"user_id": "fu99", "device_id": "fphone0",
                                                           "coupon_id": "cp_12", "ts": 9_000.0,
                                                           "recipients": ["fr99"]}) + b"\n")
    _score(events, tmp_path / "run2", redis_server.url)
    again = client.get("/v1/review/cases", headers=ANALYST).json["cases"]
    assert {c["kind"]: c["case_id"] for c in again} == ids
    farm_case = client.get(f"/v1/review/cases/{ids['farm']}", headers=ANALYST).json
    assert "fu99" in {m["node"] for m in farm_case["members"]} and farm_case["opened_version"] == 1
    assert farm_case["version"] == 2


def test_ban_refuses_what_no_decision_can_match(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    # A ban of an id no decision can carry (blank, control characters, longer
    # than the API's 128) or of no ip address would be written and match
    # nothing: refused with the reason, nothing written, nothing audited.
    env = {"REDIS_URL": redis_server.url}
    before = set(redis_client.keys("*"))
    for kind, entity, reason in (("device", "", "r"), ("device", " ", "r"), ("user", "a\x07b", "r"),
                                 ("device", "d" * 129, "r"), ("ip", "999.1.1.1", "r"), ("device", "d1", "  ")):
        result = CliRunner().invoke(cli, ["ban", kind, entity, "--reason", reason], env=env)
        assert result.exit_code == 2, (kind, entity, result.output)
        assert "Invalid value" in result.output and "Traceback" not in result.output
    assert set(redis_client.keys("*")) == before
    # An ip in any spelling is banned (and lifted) in the decisions' spelling.
    result = CliRunner().invoke(cli, ["ban", "ip", "2001:DB8::1", "--reason", "proxy"], env=env)
    assert result.exit_code == 0 and result.output == "banned ip 2001:db8::1\n"
    assert redis_client.exists("risk:{ip:2001%3Adb8%3A%3A1}:ban")
    result = CliRunner().invoke(cli, ["unban", "ip", "2001:db8:0::1"], env=env)
    assert result.output == "unbanned ip 2001:db8::1\n"


def test_a_device_banned_from_the_command_line_is_blocked_everywhere_analysts_look(
        client: FlaskClient, redis_server: RedisServer) -> None:
    # Through the review actions: the blocked list, the dossier and the audit agree.
    env = {"REDIS_URL": redis_server.url}
    result = CliRunner().invoke(cli, ["ban", "device", "cli-phone", "--reason", "farm", "--actor", "ops"], env=env)
    assert result.exit_code == 0, result.output
    listed = client.get("/v1/review/devices?status=blocked", headers=ANALYST).json["devices"]
    assert [d["device_id"] for d in listed] == ["cli-phone"]
    dossier = client.get("/v1/review/devices/cli-phone", headers=ANALYST).json
    assert dossier["status"] == "blocked" and dossier["ban"]["reason"] == "farm"
    assert [(h["actor"], h["action"]) for h in dossier["history"]] == [("cli:ops", "block")]
    result = CliRunner().invoke(cli, ["unban", "device", "cli-phone", "--actor", "ops"], env=env)
    assert result.output == "unbanned device cli-phone\n"
    assert client.get("/v1/review/devices?status=blocked", headers=ANALYST).json["devices"] == []
    assert client.get("/v1/review/devices/cli-phone", headers=ANALYST).json["status"] == "open"
    again = CliRunner().invoke(cli, ["unban", "device", "cli-phone"], env=env)
    assert again.exit_code == 0 and again.output == "device cli-phone was not banned\n"
