"""Any device id a decision accepts can be reviewed, blocked and audited: API, console and CLI, over real HTTP.

Ids go in the query of the ``/v1/review/device`` routes (and the console's
``/console/device``), percent-encoded by the client; the path routes keep
serving ids that make a plain path segment.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import ANALYST, ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import ROOT, Gunicorn

pytestmark = pytest.mark.serving

UGLY = [
    "a/b", "farm//", "/lead", "50%", "100%2F", "what?x=1&y=2", "#frag", "a#b", "..", ".", "a+b c", "back\\slash",
    "设备-📱-07", "é" * 128, "x" * 128, "<script>alert(1)</script>", "'; DROP TABLE", "  spaced  ",
]
_events = itertools.count()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gunicorn, RedisServer]]:
    redis_server = RedisServer(tmp_path_factory.mktemp("ugly-redis")).start()
    gunicorn = Gunicorn(tmp_path_factory.mktemp("ugly-gunicorn"), workers=2, redis_url=redis_server.url)
    try:
        yield gunicorn.start(), redis_server
    finally:
        gunicorn.stop()
        redis_server.kill()


def decide(url: str, device: str, **fields: Any) -> requests.Response:
    body = {"event_id": f"ugly-{next(_events)}", "device_id": device, "user_id": "u-1", "coupon_id": "c", **fields}
    return requests.post(f"{url}/v1/decisions", json=body, headers=ISSUER, timeout=10)


@pytest.mark.parametrize("device", UGLY)
def test_an_ugly_id_goes_through_review_block_and_audit(served: tuple[Gunicorn, RedisServer], device: str) -> None:
    url = served[0].url
    for _ in range(2):  # two blocked shares: 4 refusal points, into the queue
        assert decide(url, device, text="转发抽奖").json()["decision"] == "block"
    q = {"device_id": device}

    dossier = requests.get(f"{url}/v1/review/device", params=q, headers=ANALYST, timeout=10)
    assert dossier.status_code == 200, dossier.text
    assert dossier.json()["device_id"] == device
    assert dossier.json()["in_queue"] is True and len(dossier.json()["decisions"]) == 2
    graph = requests.get(f"{url}/v1/review/device/graph", params={**q, "hops": 2}, headers=ANALYST, timeout=10)
    assert graph.status_code == 200 and graph.json()["device_id"] == device
    page = requests.get(f"{url}/console/device", params=q, headers=ANALYST, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'data-device="' in page.text

    blocked = requests.post(f"{url}/v1/review/device/actions", params=q, headers=ANALYST, timeout=10,
                            json={"action": "block", "reason": "farm"})
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["device_id"] == device and blocked.json()["audit"]["entity"] == f"device:{device}"
    next_share = decide(url, device)
    assert [r["code"] for r in next_share.json()["reasons"]] == ["device_blocklist"]

    trail = requests.get(f"{url}/v1/audit", params={"entity": f"device:{device}"}, headers=ANALYST, timeout=10)
    assert trail.status_code == 200, trail.text
    assert [(e["action"], e["entity"]) for e in trail.json()["entries"]] == [("block", f"device:{device}")]
    history = requests.get(f"{url}/v1/review/device", params=q, headers=ANALYST, timeout=10).json()["history"]
    assert [e["seq"] for e in history] == [blocked.json()["audit"]["seq"]]
    resolved = requests.get(f"{url}/v1/review/devices", params={"status": "blocked", "limit": 200},
                            headers=ANALYST, timeout=10).json()
    assert device in [d["device_id"] for d in resolved["devices"]]

    unblocked = requests.post(f"{url}/v1/review/device/actions", params=q, headers=ANALYST, timeout=10,
                              json={"action": "unblock", "reason": "checked"})
    assert unblocked.status_code == 200 and unblocked.json()["blocked"] is False
    assert decide(url, device).json()["decision"] == "allow"


@pytest.mark.parametrize("device", ["x" * 129, "é" * 256, "a\nb", "   ", ""])
def test_an_id_a_decision_refuses_is_refused_by_review_too(served: tuple[Gunicorn, RedisServer],
                                                           device: str) -> None:
    url = served[0].url
    refused = decide(url, device)
    assert refused.status_code == 422 and "device_id" in refused.json()["error"]["fields"]
    for path in ("/v1/review/device", "/v1/review/device/graph", "/console/device"):
        resp = requests.get(f"{url}{path}", params={"device_id": device}, headers=ANALYST, timeout=10)
        assert resp.status_code == 400, (path, resp.text)
        assert resp.json()["error"]["code"] == "invalid_parameter"
        assert list(resp.json()["error"]["fields"]) == ["device_id"]


def test_the_command_line_bans_an_ugly_id_and_audits_it(served: tuple[Gunicorn, RedisServer]) -> None:
    server, redis_server = served
    env = {**os.environ, "REDIS_URL": redis_server.url}
    for device in ("cli/a//b", "cli%2F?#", "设备-📱"):
        out = subprocess.run([sys.executable, "-m", "riskservice", "ban", "device", device, "--reason", "farm",
                              "--actor", "me"],
                             check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert [r["code"] for r in decide(server.url, device).json()["reasons"]] == ["device_blocklist"]
        dossier = requests.get(f"{server.url}/v1/review/device", params={"device_id": device}, headers=ANALYST,
                               timeout=10)
        assert dossier.json()["status"] == "blocked" and dossier.json()["ban"]["reason"] == "farm"
        out = subprocess.run([sys.executable, "-m", "riskservice", "unban", "device", device, "--actor", "ops"],
                             check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and decide(server.url, device).json()["decision"] == "allow"
        trail = requests.get(f"{server.url}/v1/audit", params={"entity": f"device:{device}"}, headers=ANALYST,
                             timeout=10).json()["entries"]
        assert [(e["action"], e["actor"], e["reason"]) for e in trail] == [
            ("unblock", "cli:ops", "lifted from the command line"), ("block", "cli:me", "farm")]
    assert requests.get(f"{server.url}/v1/audit/verify", headers=ANALYST, timeout=10).json()["ok"] is True


def test_plain_ids_still_work_on_the_path_routes(served: tuple[Gunicorn, RedisServer]) -> None:
    url = served[0].url
    decide(url, "plain-dev-1")
    assert requests.get(f"{url}/v1/review/devices/plain-dev-1", headers=ANALYST, timeout=10).status_code == 200
    assert requests.get(f"{url}/console/devices/plain-dev-1", headers=ANALYST, timeout=30).status_code == 200
