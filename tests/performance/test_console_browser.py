"""The rule performance page end to end: real gunicorn, real Redis, headless Debian Chromium.

An analyst signs in, follows the console's navigation to "Rule performance"
by keyboard, and reads a chart per rule with its precision; switching the
window reloads it, and the navigation leads back to the queue. A screenshot
is left in test-output/console-rule-performance.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.browser import OUTPUT, console_page
from tests.conftest import ANALYST, ISSUER
from tests.performance.helpers import BAD_COPY, MANY, POLICY
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving


@pytest.fixture
def server(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Gunicorn]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    gunicorn = Gunicorn(tmp_path / "var", workers=2, redis_url=redis_server.url,
                        extra_env={"RISK_POLICY_FILE": str(policy)})
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()


def seed(url: str) -> None:
    """Sensitive copy blocked 4 times (3 on a fraud device, 1 on a legit one); fan-out hit twice in shadow."""
    def decide(n: int, device: str, **fields: object) -> None:
        body = {"event_id": f"{device}-{n}", "device_id": device, "user_id": f"{device}-u", "coupon_id": "cp-1",
                **fields}
        assert requests.post(f"{url}/v1/decisions", json=body, headers=ISSUER, timeout=10).status_code == 200

    for n in range(3):
        decide(n, "farm-9", text=BAD_COPY)
    decide(0, "shop-9", text=BAD_COPY)
    decide(3, "farm-9", recipients=MANY)
    decide(1, "shop-9", recipients=MANY)
    for device, label in (("farm-9", "fraud"), ("shop-9", "legit")):
        resp = requests.post(f"{url}/v1/review/devices/{device}/actions", headers=ANALYST, timeout=10,
                             json={"action": "label", "label": label, "reason": "reviewed"})
        assert resp.status_code == 200


def test_rule_performance_page(chromium: Path, server: Gunicorn, tmp_path: Path) -> None:
    seed(server.url)
    with console_page(chromium, tmp_path / "chromium-profile", server.url, height=1000) as (page, problems):
        page.locator("#nav-performance").wait_for()
        assert page.get_attribute("#nav-queue", "aria-current") == "page"

        # To the page by keyboard, from the navigation.
        page.focus("#nav-performance")
        page.keyboard.press("Enter")
        copy = page.locator('section.rule-card[data-rule="sensitive_copy"]')
        copy.wait_for()
        assert page.evaluate("document.activeElement.id") == "performance-title"
        assert page.get_attribute("#nav-performance", "aria-current") == "page"
        assert page.locator("#app").is_hidden()
        assert page.locator("section.rule-card").count() == 2
        assert copy.locator(".hits-enforced").inner_text() == "4"
        assert copy.locator("tr.precision-enforced .precision-value").inner_text() == "75 %"
        assert copy.locator("svg.chart rect.bar-enforced").count() == 1
        fan = page.locator('section.rule-card[data-rule="fan_out"]')
        assert fan.locator(".badge").inner_text() == "shadow"
        assert fan.locator("tr.precision-shadow .precision-value").inner_text() == "50 %"
        assert fan.locator("svg.chart rect.bar-shadow").count() == 1
        page.screenshot(path=str(OUTPUT / "console-rule-performance.png"), full_page=True)

        # Another window reloads the page; the navigation leads back to the queue.
        page.select_option("#perf-window", "604800000")
        page.click("#perf-form button")
        page.locator("#performance-body .performance").wait_for()
        assert page.locator("section.rule-card").count() == 2
        page.click("#nav-queue")
        page.locator("#app").wait_for()
        assert page.locator("#performance").is_hidden()
    assert problems == []
