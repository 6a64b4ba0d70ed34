"""Turn a simulated :class:`graphs.workload.world.World` into exported events and truth rows.

Ids are opaque (a permutation of the internal indices), so nothing in a
name hints at a label, and events come sorted by time, as the service's
export would give them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.workload.world import World

__all__ = ["export"]


def _truth_row(name: str, kind: str, i: int, kinds: dict[str, dict[int, str]], secondary: float) -> dict[str, Any]:
    fraud_kind = kinds[kind].get(i)
    # a fraud label wins: fraud may take over an account that looked organic
    organic_kind = None if fraud_kind else kinds.get(f"organic_{kind}", {}).get(i)
    return {"node": name, "kind": kind, "fraud": fraud_kind is not None, "fraud_kind": fraud_kind,
            "organic_kind": organic_kind, "secondary": secondary}


# Recording under the customer's fan-out rule: shares to more than this many
# people were asked for an SMS code, which real sharers pass this often.
FAN_OUT_LIMIT = 10
SMS_PASS = 0.95


def export(world: World, secondary: NDArray[np.float64], kinds: dict[str, dict[int, str]], *,
           fan_out_challenges: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events (decision + outcome dicts) and truth rows of every node that appears.

    ``fan_out_challenges``: record the log as the live service would have,
    under the customer's fan-out rule: a share allowed to more than 10 people
    was asked for an SMS code; the sharer passed (``challenge_passed``, a
    minute later) with probability 0.95 and the share then happened (its
    outcome reported ten minutes later), else nothing was shared. A replay
    then sees those shares pass their challenges, as it would on a real
    export.
    """
    rng = world.rng
    sh = world.shares
    sharer, device = sh.column("sharer").astype(np.int64), sh.column("device").astype(np.int64)
    coupon, decision = sh.column("coupon").astype(np.int64), sh.column("decision").astype(np.int64)
    ts, claimed = sh.column("ts"), sh.column("claimed").astype(np.int64)
    n_rec, listed = sh.column("n_rec").astype(np.int64), sh.column("listed").astype(bool)
    rec_flat = sh.column("rec_flat").astype(np.int64)
    rec_ptr = np.concatenate(([0], np.cumsum(np.where(listed, n_rec, 0))))
    # opaque ids: nothing in a name may hint at the label
    uname = np.array([f"u{x:07x}" for x in rng.permutation(world.n_users) * 7 + 3], dtype=object)
    dname = np.array([f"d{x:07x}" for x in rng.permutation(world.n_devices) * 5 + 1], dtype=object)
    cname = [f"c{x:05d}" for x in range(world.n_coupons)]
    decisions = ("allow", "challenge", "block")
    channels = ("chat", "group", "moments")
    order = np.argsort(ts, kind="stable")
    # drawn after the names, so that without the option nothing else changes
    passes = rng.random(order.size) < SMS_PASS if fan_out_challenges else np.zeros(0, bool)
    events: list[dict[str, Any]] = []
    for j, i in enumerate(order.tolist()):
        ev: dict[str, Any] = {
            "event_id": f"e{j}", "decision_id": f"x{j}",
            "device_id": dname[device[i]] if device[i] >= 0 else None,
            "user_id": uname[sharer[i]], "coupon_id": cname[coupon[i]],
            "merchant_id": f"m{coupon[i] % 17}", "ip": f"10.{sharer[i] % 250}.{device[i] % 250}.7",
            "geo": None, "text": "好券分享", "ts": round(float(ts[i]), 3),
            "decision": decisions[decision[i]],
        }
        if listed[i]:
            ev["channel"] = "chat" if n_rec[i] == 1 else "group"
            ev["recipients"] = uname[rec_flat[rec_ptr[i]:rec_ptr[i + 1]]].tolist()
        else:
            ev["channel"] = channels[2]
            ev["recipient_count"] = int(n_rec[i])
        if decision[i] == 0 and fan_out_challenges and n_rec[i] > FAN_OUT_LIMIT:
            ev.update(decision="challenge", challenge_passed=bool(passes[j]), challenge_ts=round(float(ts[i]) + 60, 3))
            if passes[j]:
                report = [round(float(ts[i]) + 600, 3), int(n_rec[i]), int(min(n_rec[i], claimed[i] * 2 + 1)),
                          int(claimed[i])]
                ev.update(delivered=report[1], opened=report[2], claimed=report[3], outcome_history=[report])
            else:
                ev.update(delivered=None, opened=None, claimed=None)
        elif decision[i] == 0:
            ev.update(delivered=int(n_rec[i]), opened=int(min(n_rec[i], claimed[i] * 2 + 1)),
                      claimed=int(claimed[i]))
        else:
            ev.update(delivered=None, opened=None, claimed=None)
        events.append(ev)
    seen_u = np.zeros(world.n_users, bool)
    seen_u[sharer] = True
    seen_u[rec_flat] = True
    seen_d = np.zeros(world.n_devices, bool)
    seen_d[device[device >= 0]] = True
    sec = np.zeros(world.n_users)
    sec[: secondary.size] = secondary
    truth = [_truth_row(uname[u], "user", int(u), kinds, float(sec[u])) for u in np.flatnonzero(seen_u)]
    truth += [_truth_row(dname[d], "device", int(d), kinds, 0.0) for d in np.flatnonzero(seen_d)]
    return events, truth
