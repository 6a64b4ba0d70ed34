"""The console's case fragments (Flask test client): the list next to the device queue, and a case page."""

from __future__ import annotations

import re

import redis
from flask.testing import FlaskClient

from riskservice.graph_store import write_back
from tests.cases.helpers import case
from tests.conftest import ANALYST


def test_case_list_and_page_fragments(client: FlaskClient, redis_client: redis.Redis) -> None:
    write_back(redis_client, [], cases=[case(["acct-1", "acct-2", "a<b>\"'"], ["phone-1"], score=6.5,
                                            summary="3 accounts on 1 device sharing coupon cp_12")])
    listing = client.get("/console/cases", headers=ANALYST)
    assert listing.status_code == 200 and listing.mimetype == "text/html"
    html = listing.get_data(as_text=True)
    assert 'data-case="c1"' in html and "3 accounts on 1 device sharing coupon cp_12" in html
    page = client.get("/console/cases/c1", headers=ANALYST).get_data(as_text=True)
    # Every member drawn (three users, one device), every member listed, escaped.
    assert len(re.findall(r'<g class="node[ "]', page)) == 4 and len(re.findall(r'<circle [^>]*fill=', page)) == 3
    assert "a&lt;b&gt;&#34;&#39;" in page and "a<b>" not in page
    # The member list the form sends back, escaped into an attribute.
    members = re.search(r'data-members="([^"]*)"', page)
    assert members is not None and "&#34;node&#34;: &#34;phone-1&#34;" in members.group(1)
    assert client.get("/console/cases/c9", headers=ANALYST).status_code == 404
    assert client.get("/console/cases").status_code == 401
