"""The service as it runs: real gunicorn workers, real HTTP, embedded or external Redis."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
from gunicorn.ctl.client import ControlClient

from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    redis_server = RedisServer(tmp_path_factory.mktemp("gunicorn-redis")).start()
    # The largest budget: these tests count decisions, and a worker that is not
    # scheduled for half the budget (gevent fires the read's time-out when it
    # runs again) answers from the fail mode, an "allow" that Redis did not
    # count. With the 1 s default a full-suite run on this loaded machine got
    # 29 allows of 200; stopping the workers (SIGSTOP) for 1.5 s mid-burst,
    # Redis running, makes 21: 20 from Redis and one degraded.
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn"), workers=4, redis_url=redis_server.url,
                        extra_env={"RISK_REDIS_BUDGET_MS": "5000"})
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()
        redis_server.kill()


def post(url: str, body: dict[str, object]) -> requests.Response:
    return requests.post(f"{url}/v1/decisions", json=body, headers=ISSUER, timeout=10)


def test_200_concurrent_shares_of_one_device_admit_exactly_20(server: Gunicorn) -> None:
    bodies = [{"event_id": f"burst-{i}", "device_id": "burst-dev", "user_id": f"u{i % 5}", "coupon_id": "c"}
              for i in range(200)]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda b: post(server.url, b), bodies))
    assert all(a.status_code == 200 for a in answers)
    assert not any(a.json()["degraded"] for a in answers)  # (else the count below means nothing)
    decisions = Counter(a.json()["decision"] for a in answers)
    assert decisions == {"allow": 20, "challenge": 180}


def test_concurrent_replays_through_workers_count_once(server: Gunicorn) -> None:
    body = {"event_id": "replayed", "device_id": "replay-dev", "user_id": "u", "coupon_id": "c"}
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: post(server.url, body), range(48)))
    assert len({a.json()["decision_id"] for a in answers}) == 1
    ratelimit = {a.headers["RateLimit"] for a in answers}
    assert ratelimit == {'"device_velocity";r=19;t=300'}


def test_metrics_add_up_every_worker(server: Gunicorn) -> None:
    for i in range(40):
        post(server.url, {"event_id": f"m-{i}", "device_id": f"metrics-{i}", "user_id": "u", "coupon_id": "c"})
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    allowed = [line for line in text.splitlines()
               if line.startswith('risk_decisions_total{decision="allow",degraded="false"}')]
    assert allowed and float(allowed[0].split()[-1]) >= 40


def test_logs_are_json_lines(server: Gunicorn) -> None:
    post(server.url, {"event_id": "log-1", "device_id": "d", "user_id": "u", "coupon_id": "c"})
    lines = [line for line in server.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(r["logger"] == "riskservice.access" and r["path"] == "/v1/decisions" for r in records)
    assert any(r["logger"] == "gunicorn.error" for r in records)


def test_every_worker_warms_up_before_it_serves(server: Gunicorn) -> None:
    # gunicorn's post_worker_init (config/gunicorn.conf.py): connections, scripts and clock before serving.
    records = [json.loads(line) for line in server.logs().splitlines() if line.strip()]
    warmed = [r["msg"] for r in records if r["logger"] == "gunicorn.error" and "warmed up" in r["msg"]]
    assert len(warmed) >= 4 and not any("not reached" in msg for msg in warmed)


def test_the_control_socket_is_the_instances_own(server: Gunicorn) -> None:
    """gunicornc reaches this instance through a socket in its data directory,
    not the per-user default that another instance would take over."""
    with ControlClient(str(server.data_dir / "gunicorn.ctl"), timeout=10) as control:
        workers = control.send_command("show", ["workers"])
    assert len(workers["workers"]) == 4, workers


def test_chunked_bodies_are_read_whole_and_held_to_the_size_limit(server: Gunicorn) -> None:
    # requests sends a generator's body chunked, without Content-Length.
    share = json.dumps({"event_id": "chunked-1", "device_id": "chunked-dev", "user_id": "u", "coupon_id": "c"})

    def chunks(text: str, size: int) -> Iterator[bytes]:
        data = text.encode()
        yield from (data[i:i + size] for i in range(0, len(data), size))

    headers = {**ISSUER, "Content-Type": "application/json"}
    resp = requests.post(f"{server.url}/v1/decisions", data=chunks(share, 7), headers=headers, timeout=10)
    assert resp.status_code == 200 and resp.json()["decision"] == "allow", resp.text
    huge = '{"event_id": "' + "x" * 70_000 + '"}'
    resp = requests.post(f"{server.url}/v1/decisions", data=chunks(huge, 8192), headers=headers, timeout=10)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"


def redis_processes(data_dir: Path) -> list[psutil.Process]:
    # redis-server rewrites its command line, but it works in its --dir.
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        if "redis-server" in (proc.info["name"] or "") and proc.info["cwd"] == str(data_dir.resolve() / "redis"):
            found.append(proc)
    return found


def test_embedded_redis_serves_all_workers_and_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = Gunicorn(data_dir, workers=3).start()
    try:
        assert len(redis_processes(data_dir)) == 1
        for i in range(20):
            body = {"event_id": f"p-{i}", "device_id": "persist-dev", "user_id": "u", "coupon_id": "c"}
            assert post(first.url, body).json()["decision"] == "allow"
    finally:
        first.stop()
    assert redis_processes(data_dir) == []  # stopped with the service
    second = Gunicorn(data_dir, workers=3).start()
    try:
        assert len(redis_processes(data_dir)) == 1
        body = {"event_id": "p-after", "device_id": "persist-dev", "user_id": "u", "coupon_id": "c"}
        resp = post(second.url, body).json()
        assert resp["decision"] == "challenge", resp  # the 20 shares before the restart still count
        replay = post(second.url, {"event_id": "p-3", "device_id": "persist-dev", "user_id": "u", "coupon_id": "c"})
        assert replay.headers.get("Idempotent-Replayed") == "true"
    finally:
        second.stop()
    assert redis_processes(data_dir) == []


def test_a_reloaded_service_still_stops_its_embedded_redis(tmp_path: Path) -> None:
    # A reload (SIGHUP, the documented way to reload the policy) runs the
    # gunicorn config again: what the master started must still be stopped.
    data_dir = tmp_path / "var"
    server = Gunicorn(data_dir, workers=2).start()
    try:
        (redis_before,) = redis_processes(data_dir)
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "Hang up" not in server.logs() or not requests.get(f"{server.url}/readyz", timeout=5).ok:
            assert time.monotonic() < deadline, server.logs()[-3000:]
            time.sleep(0.1)  # ok-sleep: a real gunicorn master reloading its workers
        body = {"event_id": "reload-1", "device_id": "reload-dev", "user_id": "u", "coupon_id": "c"}
        assert post(server.url, body).json()["decision"] == "allow"
        assert [p.pid for p in redis_processes(data_dir)] == [redis_before.pid]
    finally:
        server.stop()
    assert redis_processes(data_dir) == []
    # Every line is JSON: the master no longer imports redis-py (and ssl) before
    # the gevent workers monkey-patch, so no plain-text MonkeyPatchWarning.
    for line in server.logs().splitlines():
        if line.strip():
            json.loads(line)


def test_an_embedded_redis_that_exits_is_started_again(tmp_path: Path) -> None:
    # The embedded Redis stopped under the running service (here: SIGTERM, as
    # an operator's mistake would): the master starts it again on the same
    # address from its append-only file, and answers stop being degraded on
    # their own, with every share counted before the stop.
    data_dir = tmp_path / "var"
    server = Gunicorn(data_dir, workers=2).start()
    try:
        for i in range(20):
            body = {"event_id": f"r-{i}", "device_id": "restart-dev", "user_id": "u", "coupon_id": "c"}
            assert post(server.url, body).json()["decision"] == "allow"
        (first,) = redis_processes(data_dir)
        first.terminate()
        first.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            again = redis_processes(data_dir)
            if again and requests.get(f"{server.url}/readyz", timeout=5).status_code == 200:
                break
            time.sleep(0.1)  # ok-sleep: a real redis-server being started again by the master
        else:
            pytest.fail("the embedded redis was not started again within 30 s")
        assert [p.pid for p in again] != [first.pid]
        deadline = time.monotonic() + 10
        while True:  # (a worker's breaker may still be open for a moment)
            resp = post(server.url, {"event_id": "r-after", "device_id": "restart-dev", "user_id": "u",
                                     "coupon_id": "c"}).json()
            if not resp.get("degraded") or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # ok-sleep: a real worker's breaker closing on its own
        assert resp["decision"] == "challenge" and not resp.get("degraded"), resp
    finally:
        server.stop()
    assert redis_processes(data_dir) == []


def test_policy_file_changes_reach_every_worker_and_a_bad_one_is_refused(tmp_path: Path,
                                                                         redis_server: RedisServer) -> None:
    import time

    policy = tmp_path / "policy.yaml"
    original = Path("config/policy.yaml").read_text()
    policy.write_text(original)
    server = Gunicorn(tmp_path / "svc", workers=2, redis_url=redis_server.url,
                      extra_env={"RISK_POLICY_FILE": str(policy), "RISK_POLICY_POLL_S": "0.2"}).start()
    try:
        before = requests.get(f"{server.url}/readyz", timeout=5).json()["policy_version"]
        policy.write_text(original.replace("fan_out: {limit: 10", "fan_out: {limit: 3"))

        def versions() -> set[str]:
            # Several requests, so that both workers answer (under load one worker can take a dozen
            # requests in a row: hence 24, and two samples in a row without the old version below).
            return {requests.get(f"{server.url}/readyz", timeout=5).json()["policy_version"] for _ in range(24)}

        deadline = time.monotonic() + 15
        while before in versions() or before in versions():
            assert time.monotonic() < deadline, "a worker kept the old policy"
            time.sleep(0.1)  # ok-sleep: waiting for real worker processes to poll the file
        after = versions()
        assert before not in after and len(after) == 1
        # A user of its own: other tests of the session Redis fill user "u" to its daily cap.
        body = {"event_id": "fan-1", "device_id": "d-fan", "user_id": "u-fan", "coupon_id": "c", "recipient_count": 4}
        assert post(server.url, body).json()["decision"] == "challenge"
        policy.write_text("rules: [")
        deadline = time.monotonic() + 15
        while requests.get(f"{server.url}/readyz", timeout=5).json()["policy_error"] is None:
            assert time.monotonic() < deadline, "the bad file was not noticed"
            time.sleep(0.1)  # ok-sleep: as above
        assert versions() == after  # still serving the last good policy
    finally:
        server.stop()


def test_a_redis_of_the_wrong_kind_stops_the_start_with_one_json_line_saying_why(tmp_path: Path) -> None:
    single = RedisServer(tmp_path / "redis").start()
    gunicorn = Gunicorn(tmp_path / "svc", workers=1, redis_url=single.url, extra_env={"RISK_REDIS_CLUSTER": "1"})
    try:
        with pytest.raises(RuntimeError, match="gunicorn exited"):
            gunicorn.start()
        lines = [line for line in gunicorn.logs().splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # (every line JSON: no traceback, no raw text)
        why = [r for r in records if r["msg"].startswith("cannot start: RISK_REDIS_CLUSTER=1")]
        assert len(why) == 1 and why[0]["level"] == "critical"
        assert not any("Traceback" in line for line in lines)
    finally:
        gunicorn.stop()
        single.kill()
