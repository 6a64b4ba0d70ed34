"""/console/performance: a chart per rule that fired, its precision with the interval, the quiet rules listed."""

from __future__ import annotations

import re

import redis
from flask.testing import FlaskClient

from riskservice.console.charts import hits_chart, precision_scale
from tests.conftest import ANALYST, ISSUER
from tests.performance.helpers import label_device, label_user, traffic


def test_fragment_draws_a_chart_per_rule_that_fired(client: FlaskClient, redis_client: redis.Redis) -> None:
    traffic(client)
    label_device(client, "dev-f1", "fraud")
    label_device(client, "dev-l1", "legit")
    label_user(redis_client, "uu", "fraud")
    resp = client.get("/console/performance", headers=ANALYST)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    html = resp.data.decode()
    assert re.findall(r'data-rule="([a-z_]+)"', html) == ["fan_out", "sensitive_copy"]
    copy = html[html.index('data-rule="sensitive_copy"'):]
    assert '<strong class="hits-enforced">7</strong>' in copy
    assert "7</strong> refusals (7 block, 0 challenge)" in copy
    assert '<td class="precision-value">83 %</td>' in copy  # 5 fraud of 6 labelled hits
    assert "6 <span class=\"meta\">(3 labels)</span>" in copy
    assert '<span class="meta interval-text">31–98 %</span>' in copy  # Wilson, 5/6 over 3 labels
    assert copy.count('class="bar bar-enforced"') == 1  # all 7 in the last hour's bucket
    fan = html[html.index('data-rule="fan_out"'):html.index('data-rule="sensitive_copy"')]
    assert "shadow" in fan and '<strong class="hits-shadow">2</strong>' in fan
    assert '<td class="precision-value">50 %</td>' in fan
    quiet = html[html.index("No hits:"):]
    assert "<code>device_velocity</code>" in quiet and "<code>sensitive_copy</code>" not in quiet


def test_fragment_needs_an_analyst_and_valid_times(client: FlaskClient) -> None:
    assert client.get("/console/performance").status_code == 401
    assert client.get("/console/performance", headers=ISSUER).status_code == 403
    bad = client.get("/console/performance?since=soon", headers=ANALYST)
    assert bad.status_code == 400 and "since" in bad.json["error"]["fields"]
    empty = client.get("/console/performance?since=1", headers=ANALYST).data.decode()
    assert "No rule fired in this window." in empty


def test_chart_geometry() -> None:
    chart = hits_chart({"enforced": [4, 0, 1], "shadow": [0, 2, 1]}, [0, 10, 20], 3_600_000)
    plot = chart["base"] - chart["ceiling"]
    assert chart["top"] == 4
    assert [(b["mode"], b["height"]) for b in chart["bars"]] == [
        ("enforced", plot), ("shadow", plot / 2), ("enforced", plot / 4), ("shadow", plot / 4)]
    # Stacked: the shadow bar of the third bucket sits on its enforced bar.
    third = [b for b in chart["bars"] if b["x"] == chart["bars"][-1]["x"]]
    assert third[1]["y"] + third[1]["height"] == third[0]["y"]
    assert precision_scale({"precision": None, "interval": None}) is None
    assert precision_scale({"precision": 1.0, "interval": [0.4385, 1.0]}) == {
        "width": 240, "x": 240.0, "low": 105.2, "high": 240.0}
