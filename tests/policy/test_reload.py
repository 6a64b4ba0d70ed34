"""The live policy: reload on change, refuse a bad file, survive a restart with one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from riskservice.app import create_app
from riskservice.errors import PolicyError
from riskservice.limits.clock import ManualClock
from riskservice.policy.holder import PolicyHolder
from riskservice.process import note_policy_at_start, start_policy_watch
from tests.api.helpers import share
from tests.conftest import ADMIN, ANALYST, make_settings

DEFAULT = Path("config/policy.yaml").read_text()


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # A new mtime even within the filesystem's timestamp granularity.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT)
    return path


@pytest.fixture
def client(settings: Settings, tmp_path: Path, policy_file: Path, clock: ManualClock) -> FlaskClient:
    app = create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=policy_file), clock=clock)
    # What a serving process adds around the app (riskservice.process.serve).
    start_policy_watch(app)
    note_policy_at_start(app)
    return app.test_client()


def holder(client: FlaskClient) -> PolicyHolder:
    return client.application.extensions["risk"].policies  # type: ignore[no-any-return]


def test_a_changed_file_is_picked_up(client: FlaskClient, policy_file: Path) -> None:
    before = share(client).json["policy_version"]
    assert holder(client).check() is False  # unchanged
    write(policy_file, DEFAULT.replace("fan_out: {limit: 10", "fan_out: {limit: 2"))
    assert holder(client).check() is True
    resp = share(client, recipient_count=3)
    assert resp.json["decision"] == "challenge"
    assert resp.json["policy_version"] != before


def test_a_bad_file_keeps_the_old_policy_and_says_why(client: FlaskClient, policy_file: Path) -> None:
    version = share(client).json["policy_version"]
    write(policy_file, DEFAULT.replace("limit: 20,", "limit: -3,"))
    assert holder(client).check() is False
    assert share(client).json["policy_version"] == version
    ready = client.get("/readyz").json
    assert ready["policy_version"] == version
    assert "rules.device_velocity.limit" in ready["policy_error"]
    assert "rules.device_velocity.limit" in client.get("/v1/policy", headers=ADMIN).json["error"]
    write(policy_file, DEFAULT)
    assert holder(client).check() is True
    assert client.get("/readyz").json["policy_error"] is None


def test_sighup_reloads(client: FlaskClient, policy_file: Path) -> None:
    policy_file.write_text(DEFAULT.replace("fan_out: {limit: 10", "fan_out: {limit: 1"))
    os.kill(os.getpid(), signal.SIGHUP)
    assert share(client, recipient_count=2).json["decision"] == "challenge"


def test_a_restart_with_a_bad_file_serves_the_last_good_policy(
        settings: Settings, tmp_path: Path, policy_file: Path, client: FlaskClient) -> None:
    good = share(client).json["policy_version"]
    policy_file.write_text("rules: [")
    restarted = create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=policy_file))
    assert restarted.extensions["risk"].policy.version == good
    assert "not valid YAML" in restarted.test_client().get("/readyz").json["policy_error"]


def test_a_first_start_with_a_bad_file_fails(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT.replace("action: block}\n  user_blocklist", "action: ban}\n  user_blocklist"))
    with pytest.raises(PolicyError, match=r"rules\.device_blocklist\.action"):
        create_app(make_settings(settings.redis_url or "", tmp_path / "fresh", policy_file=bad))


def test_policy_endpoint_shows_effective_merchant_rules(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(DEFAULT.replace("merchants: {}", "merchants:\n  m42:\n    device_velocity: {limit: 8}"))
    client = create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=path)).test_client()
    body = client.get("/v1/policy", headers=ADMIN).json
    assert body["rules"]["device_velocity"]["limit"] == 20
    assert body["merchants"]["m42"]["device_velocity"] == {**body["rules"]["device_velocity"], "limit": 8}
    assert client.get("/v1/policy", headers=ANALYST).status_code == 403


def test_policy_changes_reach_the_audit_trail(client: FlaskClient, policy_file: Path) -> None:
    start = share(client).json["policy_version"]
    write(policy_file, DEFAULT.replace("fan_out: {limit: 10", "fan_out: {limit: 4"))
    assert holder(client).check() is True
    new = holder(client).current.version
    entries = client.get("/v1/audit", query_string={"entity": "policy"}, headers=ANALYST).json["entries"]
    assert [(e["action"], e["details"]["to"]) for e in entries][:2] == [("policy_change", new),
                                                                         ("policy_change", start)]
    assert entries[0]["details"]["from"] == start
