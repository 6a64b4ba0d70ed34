"""Each rule at and just past its threshold, over HTTP and a real Redis, with the clock injected."""

from __future__ import annotations

from flask.testing import FlaskClient

from riskservice.limits.clock import ManualClock
from tests.api.helpers import codes, share


def test_device_velocity_admits_20_in_5_minutes_then_challenges(client: FlaskClient, clock: ManualClock) -> None:
    for i in range(20):
        resp = share(client, user_id=f"u{i % 5}")
        assert resp.json["decision"] == "allow", i
        clock.advance(1)
    resp = share(client, user_id="u0")
    assert resp.json["decision"] == "challenge"
    assert resp.json["challenge"] == "captcha"
    (reason,) = resp.json["reasons"]
    assert reason["code"] == "device_velocity"
    assert (reason["observed"], reason["limit"], reason["window_s"]) == (21, 20, 300)
    # The oldest share (t=0) leaves the window at t=300; now is t=20.
    assert reason["retry_after_s"] == 280


def test_velocity_window_slides_not_resets(client: FlaskClient, clock: ManualClock) -> None:
    assert share(client, user_id="u0").json["decision"] == "allow"
    clock.advance(1)
    for i in range(19):
        assert share(client, user_id=f"u{i % 5}").json["decision"] == "allow"
    clock.advance(298.999)
    assert codes(share(client, user_id="u0")) == ["device_velocity"]
    clock.advance(0.001)  # the first share is exactly 300 s old now
    assert share(client, user_id="u0").json["decision"] == "allow"
    assert codes(share(client, user_id="u0")) == ["device_velocity"]


def test_no_edge_burst_across_a_window_boundary(client: FlaskClient, clock: ManualClock) -> None:
    """A fixed window would admit 20 at 4:59 and 20 more at 5:01; a sliding one does not."""
    clock.advance(299)
    for i in range(20):
        assert share(client, user_id=f"u{i % 5}").json["decision"] == "allow"
    clock.advance(2)
    assert codes(share(client, user_id="u0")) == ["device_velocity"]


def test_device_daily_cap_blocks_the_51st(client: FlaskClient, clock: ManualClock) -> None:
    for i in range(50):
        resp = share(client, user_id=f"u{i % 5}")
        assert resp.json["decision"] == "allow", i
        clock.advance(301 / 20)  # stay under the velocity limit
    resp = share(client, user_id="u0")
    assert resp.json["decision"] == "block"
    assert codes(resp) == ["device_daily_cap"]
    assert resp.json["reasons"][0]["observed"] == 51


def test_user_daily_cap_counts_across_devices(client: FlaskClient, clock: ManualClock) -> None:
    for i in range(50):
        assert share(client, device_id=f"dev-{i}", user_id="heavy").json["decision"] == "allow"
    resp = share(client, device_id="dev-new", user_id="heavy")
    assert resp.json["decision"] == "block"
    assert codes(resp) == ["user_daily_cap"]
    clock.advance(86_400)
    assert share(client, device_id="dev-new", user_id="heavy").json["decision"] == "allow"


def test_fan_out_of_10_allowed_11_needs_sms(client: FlaskClient) -> None:
    assert share(client, recipients=[f"r{i}" for i in range(10)]).json["decision"] == "allow"
    resp = share(client, recipient_count=11)
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "sms")
    assert resp.json["reasons"][0]["observed"] == 11


def test_fan_out_counts_distinct_recipients(client: FlaskClient) -> None:
    assert share(client, recipients=["r1"] * 11).json["decision"] == "allow"


def test_sensitive_copy_is_found_through_disguise(client: FlaskClient) -> None:
    disguised = ["转发得现金", "快来 转 发 得·现金 啦", "转-发-抽-奖", "ＭＡＸ 最高优惠", "集赞\u200b送礼"]
    for text in disguised:
        resp = share(client, text=text)
        assert resp.json["decision"] == "block", text
        assert codes(resp) == ["sensitive_copy"]
    assert share(client, text="邀请好友同步优惠").json["decision"] == "allow"


def test_sixth_user_on_a_device_is_challenged(client: FlaskClient, clock: ManualClock) -> None:
    for i in range(5):
        assert share(client, user_id=f"acct-{i}").json["decision"] == "allow"
    resp = share(client, user_id="acct-5")
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "captcha")
    assert codes(resp) == ["device_many_users"]
    assert resp.json["reasons"][0]["observed"] == 6
    # A user already seen on the device is not new.
    assert share(client, user_id="acct-2").json["decision"] == "allow"
    clock.advance(86_400)
    assert share(client, user_id="acct-5").json["decision"] == "allow"


def test_blocked_and_challenged_attempts_consume_no_quota(client: FlaskClient) -> None:
    for _ in range(30):
        assert share(client, text="转发抽奖").json["decision"] == "block"
    for i in range(20):
        assert share(client, user_id=f"u{i % 5}").json["decision"] == "allow"


def test_block_outranks_challenge(client: FlaskClient) -> None:
    resp = share(client, recipient_count=50, text="转发得现金")
    assert resp.json["decision"] == "block"
    assert resp.json["challenge"] is None
    assert codes(resp) == ["sensitive_copy", "fan_out"]


def test_bans_block_device_user_and_ip(client: FlaskClient, app: object) -> None:
    store = app.extensions["risk"].store  # type: ignore[attr-defined]
    store.set_ban("device", "farm-1", reason="device farm", actor="analyst-1")
    store.set_ban("user", "bad-user", reason="fraud ring", actor="analyst-1")
    store.set_ban("ip", "10.9.8.7", reason="proxy", actor="analyst-1")
    resp = share(client, device_id="farm-1")
    assert resp.json["decision"] == "block"
    assert resp.json["reasons"][0]["message"] == "device is blocklisted: device farm"
    assert codes(share(client, user_id="bad-user")) == ["user_blocklist"]
    assert codes(share(client, ip="10.9.8.7")) == ["ip_blocklist"]
    assert store.clear_ban("device", "farm-1")
    assert share(client, device_id="farm-1").json["decision"] == "allow"


def test_an_ip_ban_blocks_every_spelling_of_its_address(client: FlaskClient, app: object) -> None:
    # Bans and decisions use one spelling (limits.keys.canonical_ip): upper
    # case or expanded IPv6, and IPv4 inside IPv6 (::ffff:a.b.c.d), match.
    store = app.extensions["risk"].store  # type: ignore[attr-defined]
    store.set_ban("ip", "2001:DB8::1", reason="proxy", actor="analyst-1")
    store.set_ban("ip", "198.51.100.7", reason="proxy", actor="analyst-1")
    for ip in ("2001:DB8::1", "2001:db8::1", "2001:db8:0:0:0:0:0:1", "198.51.100.7", "::ffff:198.51.100.7"):
        assert codes(share(client, ip=ip)) == ["ip_blocklist"], ip
    assert share(client, ip="2001:db8::2").json["decision"] == "allow"
    assert store.get_ban("ip", "2001:db8:0::1")["reason"] == "proxy"
    assert store.clear_ban("ip", "::FFFF:198.51.100.7")
    assert share(client, ip="198.51.100.7").json["decision"] == "allow"


def test_a_ban_with_an_end_lifts_itself(client: FlaskClient, app: object, clock: ManualClock) -> None:
    store = app.extensions["risk"].store  # type: ignore[attr-defined]
    store.set_ban("device", "cool", reason="cool-down", actor="rule", until_ms=clock.now_ms() + 3_600_000)
    resp = share(client, device_id="cool")
    assert resp.json["reasons"][0]["retry_after_s"] == 3600
    clock.advance(3600)
    assert share(client, device_id="cool").json["decision"] == "allow"


def test_ratelimit_headers_report_the_velocity_window(client: FlaskClient, clock: ManualClock) -> None:
    resp = share(client)
    assert resp.headers["RateLimit-Policy"] == '"device_velocity";q=20;w=300'
    assert resp.headers["RateLimit"] == '"device_velocity";r=19;t=300'
    clock.advance(100)
    resp = share(client)
    assert resp.headers["RateLimit"] == '"device_velocity";r=18;t=200'
