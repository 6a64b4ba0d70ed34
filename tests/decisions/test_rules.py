"""The stateless rules and how findings read, on a request alone (no store)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from riskservice.decisions.rules import Finding, reason, stateless_findings
from riskservice.limits.geo import haversine_km
from riskservice.policy.load import Policy
from tests.decisions.helpers import body, policy_with, request

DEFAULT = policy_with()

FENCED = policy_with(merchants="""
  fenced:
    geofence:
      areas:
        - {lat: 31.2304, lon: 121.4737, radius_km: 3, name: store-1}
        - {lat: 10, lon: 20, radius_km: 1}
  unnamed:
    geofence: {areas: [{lat: 31.2304, lon: 121.4737, radius_km: 3}]}
  dateline:
    geofence: {areas: [{lat: 0, lon: 179.9, radius_km: 15, name: fiji}]}
  some_platforms:
    external_channel: {allowed_platforms: [QQ, weibo]}
  no_platforms:
    external_channel: {allowed_platforms: []}
  watching:
    fan_out: {shadow: true}
  nobody:
    fan_out: {rollout: 0}
  switched_off:
    fan_out: {enabled: false}
    sensitive_copy: {enabled: false}
  every_post:
    fan_out: {broadcast_channels: []}
""")

KM_PER_DEGREE = 2 * math.pi * 6371.0088 / 360  # along a meridian, on the mean Earth radius


def findings(policy: Policy = DEFAULT, **fields: Any) -> list[Finding]:
    req = request(body(**fields))
    compiled = policy.for_merchant(req.merchant_id)
    return stateless_findings(req, compiled.rules, compiled.matcher)


# Fan-out


def test_fan_out_fires_above_its_limit() -> None:
    assert findings(recipients=[f"r{i}" for i in range(10)]) == []
    assert findings(recipient_count=11) == [["fan_out", 1, 0, "sms", 11, 10, None, 0]]


def test_fan_out_counts_distinct_recipients() -> None:
    assert findings(recipients=["r1"] * 11) == []
    assert findings(recipients=[f"r{i}" for i in range(11)]) == [["fan_out", 1, 0, "sms", 11, 10, None, 0]]


def test_fan_out_leaves_broadcasts_alone_unless_the_merchant_asks() -> None:
    # a timeline post or an article is seen by its audience, not sent to it
    assert findings(channel="moments", recipient_count=500) == []
    assert findings(channel="official_account", recipient_count=5000) == []
    assert findings(channel="group", recipient_count=11) == [["fan_out", 1, 0, "sms", 11, 10, None, 0]]
    assert findings(FENCED, merchant_id="every_post", channel="moments", recipient_count=500) == [
        ["fan_out", 1, 0, "sms", 500, 10, None, 0]]


def test_a_shadowed_or_unrolled_rule_fires_in_shadow_and_a_disabled_one_not_at_all() -> None:
    assert findings(FENCED, merchant_id="watching", recipient_count=11) == [["fan_out", 1, 1, "sms", 11, 10, None, 0]]
    assert findings(FENCED, merchant_id="nobody", recipient_count=11) == [["fan_out", 1, 1, "sms", 11, 10, None, 0]]
    assert findings(FENCED, merchant_id="switched_off", recipient_count=11, text="转发得现金") == []


# Sensitive copy


@pytest.mark.parametrize(("text", "term"), [
    ("转发得现金", "转发得现金"),
    ("快来 转 发 得·现金 啦", "转发得现金"),
    ("转-发-抽-奖", "转发抽奖"),
    ("集赞\u200b送礼", "集赞送礼"),  # a zero-width space
    ("ＭＡＸ 最高优惠", "最高优惠"),
    ("１００％核保", "100%核保"),  # full-width digits and percent sign
])
def test_sensitive_copy_is_found_through_disguise(text: str, term: str) -> None:
    # The finding names the term as the policy writes it, not the disguise.
    assert findings(text=text) == [["sensitive_copy", 2, 0, "", term, None, None, 0]]


@pytest.mark.parametrize("text", ["邀请好友同步优惠", "100核保", "转发 得 优惠", ""])
def test_innocent_copy_passes(text: str) -> None:
    assert findings(text=text) == []


def test_block_and_challenge_findings_are_both_reported() -> None:
    assert [f[0] for f in findings(recipient_count=50, text="转发得现金")] == ["fan_out", "sensitive_copy"]


# Geofence


def test_inside_any_area_passes() -> None:
    assert findings(FENCED, merchant_id="fenced", geo={"lat": 31.2304, "lon": 121.4737}) == []
    assert findings(FENCED, merchant_id="fenced", geo={"lat": 10.0, "lon": 20.0}) == []


def test_outside_every_area_names_the_nearest() -> None:
    # 0.05 degrees north of store-1: about 5.6 km from its centre.
    (found,) = findings(FENCED, merchant_id="fenced", geo={"lat": 31.2804, "lon": 121.4737})
    assert found == ["geofence", 1, 0, "captcha", round(0.05 * KM_PER_DEGREE, 1), 3, None, 0, "store-1"]
    assert found[4] == 5.6
    # An unnamed area is named by its centre.
    (found,) = findings(FENCED, merchant_id="fenced", geo={"lat": 10.1, "lon": 20.0})
    assert found == ["geofence", 1, 0, "captcha", round(0.1 * KM_PER_DEGREE, 1), 1, None, 0, "10,20"]


def test_an_unnamed_area_is_named_by_its_centre_as_written() -> None:
    # Six significant digits would name it "31.2304,121.474": a centre the
    # policy does not hold, and the same name for areas 10 m apart.
    (found,) = findings(FENCED, merchant_id="unnamed", geo={"lat": 31.2804, "lon": 121.4737})
    assert found[8] == "31.2304,121.4737"


def test_the_fence_is_measured_across_the_antimeridian() -> None:
    # 179.9 E to 179.98 W is 0.12 degrees of longitude on the equator (13.3 km), not 359.88.
    assert findings(FENCED, merchant_id="dateline", geo={"lat": 0.0, "lon": -179.98}) == []
    (found,) = findings(FENCED, merchant_id="dateline", geo={"lat": 0.0, "lon": -179.7})
    assert found == ["geofence", 1, 0, "captcha", round(0.4 * KM_PER_DEGREE, 1), 15, None, 0, "fiji"]
    assert found[4] == 44.5
    assert haversine_km(0, 179.9, 0, -179.98) == pytest.approx(0.12 * KM_PER_DEGREE)


def test_no_position_or_no_areas_means_no_geofence() -> None:
    assert findings(FENCED, merchant_id="fenced") == []
    assert findings(DEFAULT, geo={"lat": -33.9, "lon": 151.2}) == []


# External channel


@pytest.mark.parametrize(("merchant", "channel", "platform", "observed"), [
    (None, "external", "douyin", None),  # the shipped default allows every platform
    ("some_platforms", "external", "qq", None),  # platform names are matched without case
    ("some_platforms", "external", "WEIBO", None),
    ("some_platforms", "external", "Douyin", "douyin"),
    ("some_platforms", "external", None, "(not named)"),
    ("some_platforms", "chat", "douyin", None),  # only shares to other platforms are judged
    ("some_platforms", None, None, None),
    ("no_platforms", "external", "qq", "qq"),
])
def test_external_channel(merchant: str | None, channel: str | None, platform: str | None,
                          observed: str | None) -> None:
    fields = {k: v for k, v in (("merchant_id", merchant), ("channel", channel), ("platform", platform)) if v}
    expected = [] if observed is None else [["external_channel_not_allowed", 2, 0, "", observed, None, None, 0]]
    assert findings(FENCED, **fields) == expected


# Reasons


def test_a_window_finding_reads_with_its_window_and_retry() -> None:
    assert reason(["device_velocity", 1, 0, "captcha", 21, 20, 300.0, 279_001]) == {
        "code": "device_velocity", "action": "challenge", "challenge": "captcha",
        "message": "device would make 21 shares in 5 min, above the limit of 20",
        "observed": 21, "limit": 20, "window_s": 300, "retry_after_s": 280,  # rounded up
    }


@pytest.mark.parametrize(("window_s", "words"), [
    (86_400, "24 h"), (3600, "1 h"), (5400, "90 min"), (120, "2 min"), (90, "90 s"), (1, "1 s")])
def test_windows_read_in_the_largest_whole_unit(window_s: float, words: str) -> None:
    message = reason(["user_daily_cap", 2, 0, "", 51, 50, window_s, 0])["message"]
    assert message == f"user would make 51 shares in {words}, above the limit of 50"


def test_a_ban_reads_with_its_reason_if_any() -> None:
    assert reason(["ip_blocklist", 2, 0, "", "proxy", None, None, 0]) == {
        "code": "ip_blocklist", "action": "block", "challenge": None, "message": "ip address is blocklisted: proxy",
        "observed": "proxy", "limit": None, "window_s": None, "retry_after_s": None,
    }
    assert reason(["device_blocklist", 2, 0, "", "", None, None, 0])["message"] == "device is blocklisted"
    assert reason(["challenge_failures", 2, 0, "", None, None, None, 3_600_000])["message"] == (
        "device is cooling down after failed challenges")


@pytest.mark.parametrize(("f", "message"), [
    (["fan_out", 1, 0, "sms", 11, 10, None, 0], "share to 11 recipients, above the limit of 10"),
    (["sensitive_copy", 2, 0, "", "转发得现金", None, None, 0], "share text contains the sensitive term 转发得现金"),
    (["geofence", 1, 0, "captcha", 5.6, 3, None, 0, "store-1"],
     "share is 5.6 km from the nearest allowed area (store-1), outside its 3 km"),
    (["external_channel_not_allowed", 2, 0, "", "qq", None, None, 0],
     "sharing to platform qq is not allowed for this merchant"),
    (["low_success_rate", 1, 0, "captcha", 0.1, 0.15, 86_400, 0, 20],
     "10% of the device's last 20 shares with an outcome were claimed, below 15%"),
    (["impossible_travel", 1, 0, "captcha", 1200, 500.0, None, 0, 1066.4],
     "device moved 1066.4 km since its last share, 1200 km/h, above 500 km/h"),
    (["device_many_users", 1, 0, "captcha", 6, 5, 86_400, 0],
     "6 distinct users on this device in 24 h, above the limit of 5"),
    (["a_future_rule", 1, 0, "captcha", 1, 2, None, 0], "a_future_rule"),
])
def test_each_rule_has_a_message(f: Finding, message: str) -> None:
    assert reason(f)["message"] == message
