"""Geofence per merchant and impossible travel."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config.settings import Settings
from riskservice.app import create_app
from riskservice.limits.clock import ManualClock
from riskservice.limits.geo import haversine_km
from riskservice.limits.keys import record_key
from tests.api.helpers import codes, share
from tests.conftest import ISSUER, make_settings
from tests.limits.test_records import previous_layout

# People's Square, Shanghai, and a store fence of 3 km around it (WeChat's card-coupon guide).
SHANGHAI = {"lat": 31.2304, "lon": 121.4737}
BEIJING = {"lat": 39.9042, "lon": 116.4074}  # about 1070 km from Shanghai
POLICY = Path("config/policy.yaml").read_text().replace("merchants: {}", """merchants:
  fenced:
    geofence: {areas: [{lat: 31.2304, lon: 121.4737, radius_km: 3, name: store-1}]}
""")


@pytest.fixture
def client(settings: Settings, tmp_path: Path, clock: ManualClock) -> FlaskClient:
    path = tmp_path / "geo.yaml"
    path.write_text(POLICY)
    return create_app(make_settings(settings.redis_url or "", tmp_path, policy_file=path), clock=clock).test_client()


def test_inside_the_fence_is_allowed(client: FlaskClient) -> None:
    assert share(client, merchant_id="fenced", geo=SHANGHAI).json["decision"] == "allow"
    near = {"lat": SHANGHAI["lat"] + 0.02, "lon": SHANGHAI["lon"]}  # 2.2 km north
    assert share(client, merchant_id="fenced", geo=near, device_id="d2").json["decision"] == "allow"


def test_outside_the_fence_is_challenged(client: FlaskClient) -> None:
    far = {"lat": SHANGHAI["lat"] + 0.05, "lon": SHANGHAI["lon"]}  # 5.6 km north
    resp = share(client, merchant_id="fenced", geo=far)
    assert (resp.json["decision"], resp.json["challenge"]) == ("challenge", "captcha")
    (reason,) = resp.json["reasons"]
    assert reason["code"] == "geofence" and reason["limit"] == 3
    assert reason["observed"] == pytest.approx(5.6, abs=0.1)
    assert "store-1" in reason["message"]


def test_missing_geo_and_unfenced_merchants_pass(client: FlaskClient) -> None:
    assert share(client, merchant_id="fenced").json["decision"] == "allow"
    assert share(client, merchant_id="open", geo={"lat": -33.9, "lon": 151.2}, device_id="d3").json[
        "decision"] == "allow"


def test_impossible_travel(client: FlaskClient, clock: ManualClock) -> None:
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"
    clock.advance(3600)
    beijing = {"lat": 39.9042, "lon": 116.4074}  # about 1070 km in an hour
    resp = share(client, geo=beijing)
    assert codes(resp) == ["impossible_travel"]
    reason = resp.json["reasons"][0]
    assert reason["observed"] == round(haversine_km(**_pair(SHANGHAI, beijing)))
    assert reason["limit"] == 500


def test_a_refused_attempt_does_not_move_the_device(client: FlaskClient, clock: ManualClock) -> None:
    # Shanghai, then Beijing an hour later: challenged. Retrying from Beijing
    # with a new event id is judged against Shanghai again (the last share
    # counted), not against the refused attempt: still challenged.
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"
    clock.advance(3600)
    beijing = {"lat": 39.9042, "lon": 116.4074}
    assert codes(share(client, geo=beijing)) == ["impossible_travel"]
    clock.advance(60)
    assert codes(share(client, geo=beijing)) == ["impossible_travel"]
    # Back in Shanghai: no travel from where the device last shared.
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"
    # Three hours after that share (360 km/h), Beijing is plausible and counted;
    # from then on the device is in Beijing.
    clock.advance(3 * 3600)
    assert share(client, geo=beijing).json["decision"] == "allow"
    clock.advance(60)
    assert share(client, geo=beijing).json["decision"] == "allow"


def test_plausible_travel_passes(client: FlaskClient, clock: ManualClock) -> None:
    share(client, geo=SHANGHAI)
    clock.advance(3 * 3600)
    beijing = {"lat": 39.9042, "lon": 116.4074}  # about 360 km/h: a fast train
    assert share(client, geo=beijing).json["decision"] == "allow"


def test_travel_across_the_antimeridian_is_short(client: FlaskClient, clock: ManualClock) -> None:
    share(client, geo={"lat": -16.5, "lon": 179.95}, device_id="fiji")
    clock.advance(600)
    # 11 km east, across 180°: 64 km/h, not half the planet.
    assert share(client, geo={"lat": -16.5, "lon": -179.95}, device_id="fiji").json["decision"] == "allow"
    clock.advance(60)
    resp = share(client, geo={"lat": -16.5, "lon": 178.0}, device_id="fiji")  # 208 km in a minute
    assert codes(resp) == ["impossible_travel"]


def test_location_noise_is_not_travel(client: FlaskClient, clock: ManualClock) -> None:
    share(client, geo=SHANGHAI)
    clock.advance(0.001)
    jitter = {"lat": SHANGHAI["lat"] + 0.005, "lon": SHANGHAI["lon"]}  # 560 m
    assert share(client, geo=jitter).json["decision"] == "allow"


def challenge(client: FlaskClient, decision_id: str, passed: bool) -> TestResponse:
    return client.post(f"/v1/challenges/{decision_id}", json={"passed": passed, "kind": "captcha"}, headers=ISSUER)


def flown_to_beijing(client: FlaskClient, clock: ManualClock) -> str:
    """Shanghai, then Beijing 10 minutes later (about 6400 km/h): challenged. The challenge's decision id."""
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"
    clock.advance(600)
    resp = share(client, geo=BEIJING)
    assert (resp.json["decision"], codes(resp)) == ("challenge", ["impossible_travel"])
    return str(resp.json["decision_id"])


def test_a_passed_challenge_moves_the_device(client: FlaskClient, clock: ManualClock) -> None:
    # A real traveller flew; the challenge proved it was them: the share counts,
    # and the device is in Beijing from the share's time on.
    decision_id = flown_to_beijing(client, clock)
    clock.advance(60)
    assert challenge(client, decision_id, passed=True).json["counted"] is True
    clock.advance(300)
    assert share(client, geo=BEIJING).json["decision"] == "allow"
    # ... and Shanghai is now the far place.
    clock.advance(60)
    assert codes(share(client, geo=SHANGHAI)) == ["impossible_travel"]


def test_a_failed_challenge_does_not_move_the_device(client: FlaskClient, clock: ManualClock) -> None:
    decision_id = flown_to_beijing(client, clock)
    clock.advance(60)
    assert challenge(client, decision_id, passed=False).json["counted"] is False
    clock.advance(300)
    assert codes(share(client, geo=BEIJING)) == ["impossible_travel"]
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"


def test_a_late_pass_does_not_move_the_device_back_in_time(client: FlaskClient, clock: ManualClock) -> None:
    # The Beijing share is passed only after a later share from Shanghai counted:
    # the device stays where its latest counted share was.
    decision_id = flown_to_beijing(client, clock)
    clock.advance(600)
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"
    clock.advance(60)
    assert challenge(client, decision_id, passed=True).json["counted"] is True
    clock.advance(60)
    assert share(client, geo=SHANGHAI).json["decision"] == "allow"
    assert codes(share(client, geo=BEIJING)) == ["impossible_travel"]


def test_a_record_of_the_previous_layout_is_passed_and_failed(client: FlaskClient, clock: ManualClock,
                                                             redis_client: redis.Redis) -> None:
    # Records written before challenged shares kept their position: a result is
    # recorded as before, and a pass counts the share without moving the device.
    def as_before(decision_id: str) -> None:
        key = record_key(decision_id)
        assert key is not None
        redis_client.set(key, previous_layout(redis_client.get(key)), keepttl=True)  # type: ignore[arg-type]

    passed = flown_to_beijing(client, clock)
    as_before(passed)
    assert challenge(client, passed, passed=True).json == {
        "decision_id": passed, "passed": True, "counted": True, "blocked_by": None, "cooldown": False,
        "replayed": False}
    clock.advance(300)
    retry = share(client, geo=BEIJING)
    assert codes(retry) == ["impossible_travel"]
    as_before(retry.json["decision_id"])
    assert challenge(client, retry.json["decision_id"], passed=False).json["counted"] is False
    assert challenge(client, passed, passed=True).json["replayed"] is True


def _pair(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {"lat1": a["lat"], "lon1": a["lon"], "lat2": b["lat"], "lon2": b["lon"]}
