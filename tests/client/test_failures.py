"""Deadline, retry and fail mode against a real service that is stopped, paused or misbehaving."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from riskclient import Decision, InvalidRequest, NotFound, Reason, RiskClient, TransportError

from tests.client.conftest import RELAXED_S, unique
from tests.client.proxy import Proxy
from tests.conftest import ISSUER_KEY
from tests.redis_server import free_port
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving

DEADLINE_S = 0.2
# What a call may overrun its deadline by: thread scheduling on a loaded
# 2-core machine, not network waits (those are bounded by the deadline).
SLACK_S = 0.1


def timed_decide(client: RiskClient, device: str) -> tuple[Decision, float]:
    start = time.monotonic()
    decision = client.decide(unique("ev"), device, "u", "cp")
    return decision, time.monotonic() - start


def local_answer(fail_mode: str, code: str) -> tuple[str, str | None, str, str, bool, bool, None]:
    """The parts of a fail-mode answer a test can know in advance."""
    return (fail_mode, "captcha" if fail_mode == "challenge" else None, code, fail_mode, True, True, None)


def parts(d: Decision) -> tuple[str, str | None, str, str, bool, bool, str | None]:
    (reason,) = d.reasons
    return (d.decision, d.challenge, reason.code, reason.action, d.degraded, d.local, d.decision_id)


def test_a_stopped_service_gets_each_fail_mode_within_the_deadline(own_service: Gunicorn) -> None:
    clients = {mode: RiskClient(own_service.url, ISSUER_KEY, timeout=DEADLINE_S, fail_mode=mode)
               for mode in ("allow", "challenge", "block")}
    try:
        for client in clients.values():  # a kept-alive connection to the running service
            assert client.decide(unique("ev"), unique("dev"), "u", "cp", timeout=RELAXED_S).degraded is False
        own_service.stop()
        for mode, client in clients.items():
            decision, elapsed = timed_decide(client, unique("dev"))
            assert parts(decision) == local_answer(mode, "client_unavailable")
            assert elapsed < DEADLINE_S + SLACK_S
        with pytest.raises(TransportError) as caught:
            clients["allow"].report_outcome("any-decision", 1, 1, 1, timeout=DEADLINE_S)
        assert (caught.value.kind, caught.value.attempts) == ("unavailable", 2)
    finally:
        for client in clients.values():
            client.close()


def gunicorn_processes(server: Gunicorn) -> list[psutil.Process]:
    assert server.process is not None
    master = psutil.Process(server.process.pid)
    return [master, *master.children(recursive=True)]


def test_a_paused_service_gets_the_fail_mode_within_the_deadline(own_service: Gunicorn) -> None:
    warm = RiskClient(own_service.url, ISSUER_KEY, timeout=DEADLINE_S, fail_mode="challenge", challenge_kind="sms")
    fresh = RiskClient(own_service.url, ISSUER_KEY, timeout=DEADLINE_S, fail_mode="block")
    processes = gunicorn_processes(own_service)
    try:
        assert warm.decide(unique("ev"), unique("dev"), "u", "cp", timeout=RELAXED_S).degraded is False
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        # The kernel still accepts connections into the listen backlog: only
        # the deadline ends these calls.
        decision, elapsed = timed_decide(warm, unique("dev"))
        assert parts(decision) == ("challenge", "sms", "client_timeout", "challenge", True, True, None)
        assert elapsed < DEADLINE_S + SLACK_S
        decision, elapsed = timed_decide(fresh, unique("dev"))
        assert parts(decision) == local_answer("block", "client_timeout")
        assert elapsed < DEADLINE_S + SLACK_S
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)
    assert warm.decide(unique("ev"), unique("dev"), "u", "cp", timeout=RELAXED_S).degraded is False
    warm.close()
    fresh.close()


def through(proxy: Proxy, **kwargs: object) -> RiskClient:
    return RiskClient(proxy.url, ISSUER_KEY, timeout=RELAXED_S, **kwargs)  # type: ignore[arg-type]


def test_an_answer_lost_on_the_way_is_retried_and_counted_once(proxy: Callable[[list[str]], Proxy]) -> None:
    lossy = proxy(["reset_after_forward"])
    device = unique("dev")
    with through(lossy) as client:
        first = client.decide(unique("ev"), device, "u", "cp")
        assert lossy.steps == ["reset_after_forward", "forward"]
        # The service counted the first attempt; the retry is its replay.
        assert (first.decision, first.degraded, first.replayed) == ("allow", False, True)
        assert first.rate_limit is not None and first.rate_limit.remaining == 19
        second = client.decide(unique("ev"), device, "u", "cp")
        assert (second.replayed, second.rate_limit and second.rate_limit.remaining) == (False, 18)


@pytest.mark.parametrize("failure", ["close", "503"])
def test_a_refused_first_attempt_is_retried(proxy: Callable[[list[str]], Proxy], failure: str) -> None:
    flaky = proxy([failure])
    with through(flaky) as client:
        decision = client.decide(unique("ev"), unique("dev"), "u", "cp")
    assert flaky.steps == [failure, "forward"]
    assert (decision.decision, decision.degraded, decision.replayed) == ("allow", False, False)
    assert decision.rate_limit is not None and decision.rate_limit.remaining == 19


def test_two_failed_attempts_give_the_fail_mode_and_reports_raise(proxy: Callable[[list[str]], Proxy]) -> None:
    down = proxy(["503", "close", "503", "503"])
    with through(down, fail_mode="block") as client:
        decision = client.decide(unique("ev"), unique("dev"), "u", "cp")
        assert parts(decision) == local_answer("block", "client_unavailable")
        with pytest.raises(TransportError) as caught:
            client.check_reward(unique("rw"), "u", "d", 100, "r")
    assert down.steps == ["503", "close", "503", "503"]
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("unavailable", 2, 503)


def test_an_answer_that_is_not_json_gives_the_fail_mode_without_retry(proxy: Callable[[list[str]], Proxy]) -> None:
    broken = proxy(["garbage"])
    with through(broken, fail_mode="challenge") as client:
        decision = client.decide(unique("ev"), unique("dev"), "u", "cp")
    assert broken.steps == ["garbage"]
    assert parts(decision) == local_answer("challenge", "client_bad_response")
    assert decision.reasons[0] == Reason(code="client_bad_response", action="challenge", challenge="captcha",
                                         message=decision.reasons[0].message, observed=None, limit=None,
                                         window_s=None, retry_after_s=None)


def test_a_4xx_is_not_retried(proxy: Callable[[list[str]], Proxy]) -> None:
    counting = proxy([])
    with through(counting) as client, pytest.raises(InvalidRequest) as caught:
        client.decide(unique("ev"), unique("dev"), "u", "cp", recipient_count=-1)
    assert set(caught.value.fields) == {"recipient_count"}
    assert counting.steps == ["forward"]


def test_a_4xx_without_the_error_shape_is_still_a_typed_error(proxy: Callable[[list[str]], Proxy]) -> None:
    wrong_path = proxy(["404"])
    with through(wrong_path) as client, pytest.raises(NotFound) as caught:
        client.decide(unique("ev"), unique("dev"), "u", "cp")
    assert (caught.value.status, caught.value.code, caught.value.fields) == (404, "http_404", {})
    assert wrong_path.steps == ["404"]


def test_connections_are_kept_alive(proxy: Callable[[list[str]], Proxy]) -> None:
    counting = proxy([])
    with through(counting) as client:
        answers = [client.decide(unique("ev"), unique("dev"), "u", "cp") for _ in range(30)]
    assert {a.degraded for a in answers} == {False}
    assert counting.accepted == 1


def test_the_service_own_degraded_answer_is_not_local(tmp_path: Path) -> None:
    # Redis unreachable: the service answers decisions itself (its fail mode
    # challenge) and refuses reports with a 503, which the client retries once.
    no_redis = f"redis://127.0.0.1:{free_port()}/0"
    server = Gunicorn(tmp_path / "svc", workers=1, redis_url=no_redis, ready_path="/healthz",
                      extra_env={"RISK_FAIL_MODE": "challenge", "RISK_REDIS_BUDGET_MS": "50"}).start()
    try:
        with RiskClient(server.url, ISSUER_KEY, timeout=RELAXED_S, fail_mode="block") as client:
            decision = client.decide(unique("ev"), unique("dev"), "u", "cp")
            (reason,) = decision.reasons
            assert (decision.decision, decision.challenge, decision.degraded, decision.local) == (
                "challenge", "captcha", True, False)
            assert (reason.code, reason.action, reason.challenge) == ("redis_unavailable", "challenge", "captcha")
            assert decision.decision_id is not None and len(decision.decision_id) > 32  # the service named it
            with pytest.raises(TransportError) as caught:
                client.report_outcome(decision.decision_id, 1, 1, 1)
    finally:
        server.stop()
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("unavailable", 2, 503)
