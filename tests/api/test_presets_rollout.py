"""Platform presets, the external-channel whitelist and gray rollout."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from riskservice.app import create_app
from riskservice.limits.clock import ManualClock
from riskservice.policy.load import parse_policy
from riskservice.policy.rollout import enforced
from tests.api.helpers import codes, share
from tests.conftest import ADMIN, ISSUER, make_settings

DEFAULT = Path("config/policy.yaml").read_text()
MERCHANTS = """merchants:
  wx: {preset: wechat}
  wx-white:
    preset: wechat
    external_channel: {allowed_platforms: [qq, weibo]}
  ali: {preset: alipay}
  union: {preset: unionpay}
  union-10:
    preset: unionpay
    user_daily_cap: {limit: 10}
  gray:
    fan_out: {rollout: 10}
    device_velocity: {rollout: 30}
  gray-ban:
    device_blocklist: {rollout: 50}
"""


@pytest.fixture
def client(settings: Settings, tmp_path: Path, clock: ManualClock) -> FlaskClient:
    path = tmp_path / "presets.yaml"
    path.write_text(DEFAULT.replace("merchants: {}", MERCHANTS))
    return create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=path), clock=clock).test_client()


def test_each_preset_has_its_platform_values() -> None:
    policy = parse_policy(DEFAULT.replace("merchants: {}", MERCHANTS))
    wx, ali, union = (policy.for_merchant(m).rules for m in ("wx", "ali", "union"))
    assert (wx.user_daily_cap.enabled, wx.user_daily_cap.limit, wx.device_blocklist.enabled) == (True, 50, True)
    assert wx.external_channel.allowed_platforms == []
    assert not ali.user_daily_cap.enabled and not ali.device_daily_cap.enabled and not ali.device_velocity.enabled
    assert (ali.device_blocklist.enabled, ali.user_blocklist.enabled) == (False, True)
    assert ali.external_channel.allowed_platforms == ["*"]
    assert (union.user_daily_cap.limit, union.device_blocklist.enabled, union.user_blocklist.enabled) == (20, False,
                                                                                                         False)
    assert policy.for_merchant("union-10").rules.user_daily_cap.limit == 10
    assert policy.origins["union-10"]["user_daily_cap"] == {
        "enabled": "preset:unionpay", "limit": "merchant", "window_s": "default", "action": "default"}


def test_policy_endpoint_shows_where_values_came_from(client: FlaskClient) -> None:
    body = client.get("/v1/policy", headers=ADMIN).json
    assert body["merchants"]["union-10"]["user_daily_cap"]["limit"] == 10
    assert body["origins"]["union-10"]["user_daily_cap"]["limit"] == "merchant"
    assert body["origins"]["union"]["user_daily_cap"]["limit"] == "preset:unionpay"


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(Exception, match=r"merchants\.m1\.preset: unknown preset 'paypal'"):
        parse_policy(DEFAULT.replace("merchants: {}", "merchants:\n  m1: {preset: paypal}"))


def test_unionpay_caps_at_20_a_day_and_alipay_does_not_cap(client: FlaskClient, clock: ManualClock) -> None:
    for i in range(20):
        assert share(client, merchant_id="union", device_id=f"d{i}", user_id="payer").json["decision"] == "allow"
    assert codes(share(client, merchant_id="union", device_id="d99", user_id="payer")) == ["user_daily_cap"]
    for i in range(60):
        assert share(client, merchant_id="ali", device_id=f"a{i}", user_id="ali-user").json["decision"] == "allow"


def test_bans_per_preset(client: FlaskClient) -> None:
    store = client.application.extensions["risk"].store
    store.set_ban("device", "banned-dev", reason="farm", actor="a")
    store.set_ban("user", "banned-user", reason="fraud", actor="a")
    assert codes(share(client, merchant_id="wx", device_id="banned-dev")) == ["device_blocklist"]
    assert share(client, merchant_id="ali", device_id="banned-dev").json["decision"] == "allow"
    assert codes(share(client, merchant_id="ali", user_id="banned-user", device_id="x")) == ["user_blocklist"]
    assert share(client, merchant_id="union", user_id="banned-user", device_id="y").json["decision"] == "allow"


@pytest.mark.parametrize(
    ("merchant", "platform", "allowed"),
    [("wx", "qq", False), ("wx-white", "qq", True), ("wx-white", "WeiBo", True), ("wx-white", "douyin", False),
     ("wx-white", None, False), ("ali", "douyin", True), ("union", "qq", False), ("other", "qq", True)],
)
def test_external_channel_per_preset(client: FlaskClient, merchant: str, platform: str | None,
                                     allowed: bool) -> None:
    fields = {"channel": "external", "merchant_id": merchant}
    if platform:
        fields["platform"] = platform
    resp = share(client, **fields)
    if allowed:
        assert resp.json["decision"] == "allow"
    else:
        assert resp.json["decision"] == "block"
        assert codes(resp) == ["external_channel_not_allowed"]
    # Sharing inside the platform is never affected.
    assert share(client, channel="group", merchant_id=merchant).json["decision"] == "allow"


def test_rollout_split_is_stable_and_close_to_the_setting() -> None:
    devices = [f"device-{i}" for i in range(10_000)]
    for percent in (10, 30, 50):
        arm = [enforced("fan_out", d, percent) for d in devices]
        assert abs(sum(arm) / len(devices) * 100 - percent) <= 2
        assert arm == [enforced("fan_out", d, percent) for d in devices]
    # Raising the percentage only moves devices into the enforced arm.
    assert all(enforced("fan_out", d, 30) for d in devices if enforced("fan_out", d, 10))


def test_rollout_enforces_for_some_devices_and_shadows_for_the_rest(client: FlaskClient) -> None:
    results = {}
    for i in range(200):
        device = f"g{i}"
        resp = share(client, merchant_id="gray", device_id=device, user_id=f"user-{i}", recipient_count=15)
        results[device] = resp.json
        in_arm = enforced("fan_out", device, 10)
        assert (resp.json["decision"] == "challenge") == in_arm
        assert codes(resp, "shadow" if not in_arm else "reasons") == ["fan_out"]
    share_enforced = sum(r["decision"] == "challenge" for r in results.values()) / len(results)
    assert 0.03 < share_enforced < 0.2
    metrics = client.get("/metrics").data.decode()
    assert 'risk_rollout_evaluations_total{arm="enforced",rule="fan_out"}' in metrics
    assert 'risk_rollout_hits_total{arm="shadow",rule="fan_out"}' in metrics


def test_rollout_of_a_stateful_rule(client: FlaskClient) -> None:
    inside = next(f"v{i}" for i in range(1000) if enforced("device_velocity", f"v{i}", 30))
    outside = next(f"v{i}" for i in range(1000) if not enforced("device_velocity", f"v{i}", 30))
    for device, expected in ((inside, "challenge"), (outside, "allow")):
        for i in range(20):
            share(client, merchant_id="gray", device_id=device, user_id=f"u{i % 5}")
        resp = share(client, merchant_id="gray", device_id=device, user_id="u0")
        assert resp.json["decision"] == expected
        assert "device_velocity" in codes(resp, "reasons" if expected == "challenge" else "shadow")


def test_wechat_caps_users_at_50_and_an_override_caps_unionpay_at_10(client: FlaskClient) -> None:
    for i in range(50):
        assert share(client, merchant_id="wx", device_id=f"w{i}", user_id="wx-user").json["decision"] == "allow"
    assert codes(share(client, merchant_id="wx", device_id="w99", user_id="wx-user")) == ["user_daily_cap"]
    for i in range(10):
        assert share(client, merchant_id="union-10", device_id=f"n{i}", user_id="up").json["decision"] == "allow"
    resp = share(client, merchant_id="union-10", device_id="n99", user_id="up")
    assert codes(resp) == ["user_daily_cap"] and resp.json["reasons"][0]["limit"] == 10


def test_a_ban_holds_a_pass_only_where_its_rollout_enforces_it(client: FlaskClient, clock: ManualClock) -> None:
    """Under a gray rollout of device_blocklist a device outside the enforced
    half is not blocked by its ban, so the ban does not hold its pass either;
    one inside it is, and does (QA13 D2)."""
    outside = next(f"gb-{i}" for i in range(100) if not enforced("device_blocklist", f"gb-{i}", 50))
    inside = next(f"gb-{i}" for i in range(100) if enforced("device_blocklist", f"gb-{i}", 50))
    app = client.application
    for device, held in ((outside, None), (inside, "device_blocklist")):
        did = share(client, device_id=device, merchant_id="gray-ban", recipient_count=11).json["decision_id"]
        app.extensions["risk"].store.set_ban("device", device, reason="farm", actor="analyst-1")
        answer = client.post(f"/v1/challenges/{did}", json={"passed": True, "kind": "sms"},
                             headers=ISSUER).json
        assert (answer["counted"], answer["blocked_by"]) == (held is None, held), device
        decision = share(client, device_id=device, merchant_id="gray-ban").json["decision"]
        assert (decision == "block") == (held is not None), device
