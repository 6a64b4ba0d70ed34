"""Shadow mode and merchant overrides, through the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from riskservice.app import create_app
from riskservice.limits.clock import ManualClock
from tests.api.helpers import codes, share
from tests.conftest import make_settings

DEFAULT = Path("config/policy.yaml").read_text()

POLICY = DEFAULT.replace("merchants: {}", """merchants:
  strict:
    device_velocity: {limit: 2}
    fan_out: {limit: 3, action: block, challenge: null}
  watching:
    sensitive_copy: {shadow: true}
    device_velocity: {shadow: true}
  relaxed:
    device_many_users: {enabled: false}
""")


@pytest.fixture
def client(settings: Settings, tmp_path: Path, clock: ManualClock) -> FlaskClient:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    app = create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=policy), clock=clock)
    return app.test_client()


def test_merchant_override_tightens_a_limit(client: FlaskClient) -> None:
    assert share(client, merchant_id="strict").json["decision"] == "allow"
    assert share(client, merchant_id="strict").json["decision"] == "allow"
    resp = share(client, merchant_id="strict")
    assert codes(resp) == ["device_velocity"]
    assert resp.json["reasons"][0]["limit"] == 2


def test_merchant_override_changes_the_action(client: FlaskClient) -> None:
    resp = share(client, merchant_id="strict", recipient_count=4)
    assert (resp.json["decision"], codes(resp)) == ("block", ["fan_out"])
    # Other merchants keep the default.
    assert share(client, merchant_id="other", recipient_count=4).json["decision"] == "allow"


def test_shadow_rules_are_reported_but_not_enforced(client: FlaskClient) -> None:
    resp = share(client, merchant_id="watching", text="转发得现金")
    assert resp.json["decision"] == "allow"
    assert resp.json["reasons"] == []
    assert [r["code"] for r in resp.json["shadow"]] == ["sensitive_copy"]


def test_a_shadowed_window_consumes_quota_like_an_allow(client: FlaskClient) -> None:
    for _ in range(25):
        resp = share(client, merchant_id="watching")
        assert resp.json["decision"] == "allow"
    assert codes(resp, "shadow") == ["device_velocity"]
    assert resp.json["shadow"][0]["observed"] == 25


def test_disabled_rule_does_not_run(client: FlaskClient) -> None:
    for i in range(8):
        assert share(client, merchant_id="relaxed", user_id=f"acct-{i}").json["decision"] == "allow"


def test_policy_version_is_reported(client: FlaskClient) -> None:
    version = share(client).json["policy_version"]
    assert version.startswith("default@") and len(version) == len("default@") + 12
