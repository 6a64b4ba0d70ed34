"""/console: the shell, its assets and the server-rendered fragments."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from riskservice.graph_store import write_back
from tests.conftest import ANALYST, ISSUER
from tests.review.helpers import act, flag


def test_the_shell_needs_no_key_and_allows_only_its_own_script(client: FlaskClient) -> None:
    resp = client.get("/console")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = resp.data.decode()
    assert '<label for="key">Analyst key</label>' in page and "/console/assets/console.js" in page
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "<script>" not in page  # nothing inline: the policy would refuse it
    js = client.get("/console/assets/console.js")
    assert js.status_code == 200 and js.mimetype == "text/javascript" and b"sessionStorage" in js.data
    assert client.get("/console/assets/console.css").mimetype == "text/css"
    assert client.get("/console/assets/secrets.txt").status_code == 404


def test_fragments_need_an_analyst_key(client: FlaskClient) -> None:
    flag(client, "dev-1")
    assert client.get("/console/queue").status_code == 401
    assert client.get("/console/queue", headers=ISSUER).status_code == 403
    assert client.get("/console/devices/dev-1", headers=ISSUER).status_code == 403
    assert client.get("/console/devices/unknown", headers=ANALYST).status_code == 404


def test_queue_fragment_links_each_device(client: FlaskClient) -> None:
    flag(client, "dev-q", challenges=1)
    html = client.get("/console/queue", headers=ANALYST).data.decode()
    assert 'href="#device=dev-q"' in html and "sensitive_copy ×2" in html and "fan_out ×1" in html
    assert client.get("/console/queue?status=blocked", headers=ANALYST).data.decode().count("queue-item") == 0


def test_device_fragment_draws_the_neighbourhood_and_lists_actions(client: FlaskClient,
                                                                   redis_client: redis.Redis) -> None:
    flag(client, "dev-p", user="u1")
    write_back(redis_client, [{"node": "dev-p", "kind": "device", "kol": 0.0, "anomaly": 0.9, "signals": []},
                              {"node": "u1", "kind": "user", "kol": 0.5, "anomaly": 0.1, "signals": []}],
               [("device", "dev-p", {"users": [["u1", 2.0], ["u2", 1.0]]})])
    act(client, "dev-p", "block", reason="farm <confirmed>")
    html = client.get("/console/devices/dev-p?hops=2", headers=ANALYST).data.decode()
    assert '<svg viewBox="0 0 560 560"' in html
    # The device is the square in the centre, red for its 0.9 anomaly.
    assert '<rect x="266.0" y="266.0" width="28" height="28" rx="3" fill="#d84e34">' in html
    assert html.count("<title>user ") == 2 and "<title>device dev-p" in html
    assert "farm &lt;confirmed&gt;" in html and "farm <confirmed>" not in html
    assert 'id="audit-entries"' in html and 'value="unblock"' in html


def test_device_ids_are_escaped(client: FlaskClient) -> None:
    evil = "<img src=x onerror=alert(1)>"
    act(client, evil, "flag", reason="odd id")
    html = client.get(f"/console/devices/{evil}", headers=ANALYST).data.decode()
    assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    queue_html = client.get("/console/queue", headers=ANALYST).data.decode()
    assert evil not in queue_html


def test_queue_fragment_refuses_an_unknown_status(client: FlaskClient) -> None:
    resp = client.get("/console/queue", query_string={"status": "pending"}, headers=ANALYST)
    assert resp.status_code == 400 and "status" in resp.json["error"]["fields"]
