"""Hand-built share events for the graph tests."""

from __future__ import annotations

from typing import Any

HOUR = 3600.0
T0 = 1_750_000_000.0


def share(user: str, coupon: str, ts: float, recipients: list[str] | None = None, *,
          device: str | None = None, claimed: int | None = 0, decision: str = "allow",
          count: int | None = None, label: str | None = None) -> dict[str, Any]:
    """One decision line as the service exports it."""
    ev: dict[str, Any] = {"event_id": f"{user}-{coupon}-{ts}", "device_id": device or f"dev-{user}",
                          "user_id": user, "coupon_id": coupon, "merchant_id": "m1", "channel": "group",
                          "ip": None, "geo": None, "text": "", "ts": T0 + ts, "decision": decision,
                          "decision_id": f"x-{user}-{ts}"}
    if recipients is not None:
        ev["recipients"] = recipients
        n = len(recipients)
    else:
        ev["recipient_count"] = count or 0
        n = count or 0
    if decision == "allow":
        ev.update(delivered=n, opened=n, claimed=claimed)
    if label:
        ev["label"] = label
    return ev


def background(n_users: int = 60, coupons: int = 6, *, prefix: str = "o") -> list[dict[str, Any]]:
    """Ordinary users sharing a few coupons with decaying timing and normal claims.

    Each share reaches one other sharer and three of 400 friends who never
    share, so the background is open, as real circles are.
    """
    out = []
    for c in range(coupons):
        for k in range(0, n_users, 3):
            u = f"{prefix}{(k + c) % n_users}"
            friends = [f"{prefix}{(k + c + 1) % n_users}"] + [f"p{(7 * k + 13 * c + d) % 400}" for d in (0, 1, 2)]
            # front-loaded: most shares in the first hours of the coupon
            out.append(share(u, f"bg{c}", c * 50 * HOUR + (k % 7) * 0.7 * HOUR + k, friends, claimed=1))
    return out
