"""The export carries the labels of a share's device and user, with who gave them and when."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from riskservice.events import read_events
from riskservice.limits.clock import ManualClock
from tests.api.helpers import share
from tests.conftest import ANALYST
from tests.performance.helpers import label_user


def test_device_and_user_labels_flow_into_every_exported_share(client: FlaskClient, clock: ManualClock,
                                                                redis_client: redis.Redis) -> None:
    share(client, event_id="a", device_id="farm", user_id="acct-1")
    share(client, event_id="b", device_id="clean", user_id="acct-2")
    share(client, event_id="c", device_id="clean", user_id="acct-3")
    share(client, event_id="d", device_id="other", user_id="acct-4")
    resp = client.post("/v1/review/devices/farm/actions", headers=ANALYST,
                       json={"action": "label", "label": "fraud", "reason": "six accounts"})
    assert resp.status_code == 200
    labelled_at = clock.now_ms()
    label_user(redis_client, "acct-1", "legit")
    label_user(redis_client, "acct-2", "fraud")

    lines = {e["event_id"]: e for e in read_events(redis_client)}
    key_id = resp.json["audit"]["actor"]
    farm = {"label": "fraud", "by": key_id, "at": labelled_at}
    assert {k: lines["a"][k] for k in ("label", "label_source", "label_by", "label_at", "labels")} == {
        "label": "fraud", "label_source": "device", "label_by": key_id, "label_at": labelled_at,
        "labels": {"device": farm, "user": {"label": "legit", "by": "case-analyst", "at": 1234}}}
    # No device label: the user's label is the share's.
    assert (lines["b"]["label"], lines["b"]["label_source"], lines["b"]["label_by"]) == ("fraud", "user",
                                                                                       "case-analyst")
    assert lines["b"]["labels"]["device"] is None
    for unlabelled in ("c", "d"):
        assert (lines[unlabelled]["label"], lines[unlabelled]["label_source"]) == (None, None)
        assert lines[unlabelled]["labels"] == {"device": None, "user": None}
