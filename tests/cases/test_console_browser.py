"""The case page end to end: real gunicorn, real Redis, headless Debian Chromium driven by playwright.

An analyst opens /console, switches the queue to cases, opens the worst case
by keyboard, sees its members, evidence and subgraph, blocks every member
with a reason, and sees the case resolved; the decision path then blocks a
member account's next share. A screenshot is left in test-output/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from riskservice.graph_store import write_back
from tests.browser import OUTPUT, console_page
from tests.cases.helpers import case
from tests.conftest import ISSUER
from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import Gunicorn

pytestmark = pytest.mark.serving

REASON = "farm: 12 accounts on two phones"
USERS = [f"acct-{i}" for i in range(12)]


@pytest.fixture
def server(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Gunicorn]:
    gunicorn = Gunicorn(tmp_path / "var", workers=2, redis_url=redis_server.url)
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()


def decide(url: str, event_id: str, user: str, device: str) -> dict[str, object]:
    body = {"event_id": event_id, "device_id": device, "user_id": user, "coupon_id": "cp_12"}
    resp = requests.post(f"{url}/v1/decisions", json=body, headers=ISSUER, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_block_a_case_from_the_console(chromium: Path, server: Gunicorn, redis_client: redis.Redis,
                                       tmp_path: Path) -> None:
    write_back(redis_client, [], cases=[
        case(USERS, ["phone-a", "phone-b"], score=7.5,
             summary="12 accounts on 2 devices sharing coupon cp_12 to 40 recipients within 6 days"),
        case(["p1", "p2"], score=1.5, kind="linked", summary="2 accounts linked by shares")])
    with console_page(chromium, tmp_path / "chromium-profile", server.url, height=1300) as (page, problems):

        # Cases sit next to devices in the queue pane.
        page.click("#tab-cases")
        item = page.locator('a.case-item[data-case="c1"]')
        item.wait_for()
        assert "12 accounts on 2 devices sharing coupon cp_12" in item.inner_text()
        item.focus()
        page.keyboard.press("Space")
        page.locator("#case-title", has_text="c1").wait_for()
        assert page.evaluate("document.activeElement.id") == "case-title"
        assert page.locator("#case-members tbody tr").count() == 14
        assert page.locator("#case-evidence tbody tr").count() == 12
        assert page.locator("svg.graph g.node").count() == 14

        page.fill("#case-reason", REASON)
        page.click('#case-form button[value="block"]')
        page.locator("#case-status", has_text="resolved").wait_for()
        assert REASON in page.inner_text("#case-resolution")
        assert "Done: block case c1 (14 members" in page.inner_text("#status")
        page.screenshot(path=str(OUTPUT / "console-case-blocked.png"), full_page=True)
        # The open list now holds only the other case.
        page.locator('a.case-item[data-case="c1"]').wait_for(state="detached")
        assert page.locator("a.case-item").count() == 1
    assert problems == []
    answer = decide(server.url, "after-case-block", "acct-3", "a-fresh-phone")
    assert answer["decision"] == "block"
    assert answer["reasons"][0]["code"] == "user_blocklist"  # type: ignore[index]
    assert decide(server.url, "other-case", "p1", "p-phone")["decision"] == "allow"
