"""Accounts taking turns on a pool of phones, against a family sharing one and a user with a tablet."""

from __future__ import annotations

from typing import Any

from graphs.scorers.rows import score_events
from tests.graphs.helpers import HOUR, background, share


def signal(row: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in row["signals"] if s["name"] == name), None)


def test_rotating_ring_is_caught_and_a_family_phone_is_not() -> None:
    events = background()
    # eight accounts, five phones, each account on three of them, sharing to ordinary users
    events += [share(f"ring{i}", f"bg{k}", (10 * i + k) * HOUR, [f"p{(5 * i + k) % 400}"],
                     device=f"pool{(2 * i + k) % 5}", claimed=1) for i in range(8) for k in range(3)]
    # a family of three on mum's phone; mum also uses a tablet
    events += [share(m, "bg1", 7 * HOUR + j, [f"aunt{j}"], device="family-phone", claimed=1)
               for j, m in enumerate(("mum", "dad", "kid"))]
    events += [share("mum", "bg2", 60 * HOUR, ["aunt9"], device="tablet", claimed=1)]
    rows = {(r["kind"], r["node"]): r for r in score_events(events)}
    for i in range(8):
        rot = signal(rows[("user", f"ring{i}")], "device_rotation")
        assert rot is not None and rot["score"] == 1.0
        assert rot["detail"] == "rotates 3 devices shared with 7 other accounts"
    # the pool's phones carry their accounts' rotation; the family's phone does not
    assert all(rows[("device", f"pool{j}")]["anomaly"] == 1.0 for j in range(5))
    for m in ("mum", "dad", "kid"):
        assert signal(rows[("user", m)], "device_rotation") is None
        assert rows[("user", m)]["anomaly"] < 0.1
    assert rows[("device", "family-phone")]["anomaly"] < 0.1
