from __future__ import annotations

import numpy as np

from graphs.events.jsonl import read_events
from graphs.features.cascade import propagation_by_user
from graphs.features.nodes import node_features
from graphs.scorers.kol import kol_scores
from graphs.scorers.rows import score_events
from tests.graphs.helpers import HOUR, share


def viral_world() -> list[dict]:
    """'kol' seeds two coupons whose cascades run three levels deep; 'loud' shares a lot to nobody who reshares."""
    ev = []
    for c in range(2):
        ev.append(share("kol", f"k{c}", 0, [f"a{c}{i}" for i in range(5)], claimed=2))
        for i in range(5):
            ev.append(share(f"a{c}{i}", f"k{c}", HOUR, [f"b{c}{i}{j}" for j in range(3)], claimed=1))
            for j in range(3):
                ev.append(share(f"b{c}{i}{j}", f"k{c}", 2 * HOUR, [f"z{c}{i}{j}"], claimed=1))
    ev += [share("loud", f"l{k}", k * HOUR, [f"q{k}{i}" for i in range(5)], claimed=1) for k in range(12)]
    return ev


def test_realised_propagation_beats_raw_activity() -> None:
    t = read_events(viral_world())
    prop = propagation_by_user(t)
    k = kol_scores(t, node_features(t), prop)
    users = t.users.tolist()
    order = [users[i] for i in np.argsort(-k.user)]
    assert order[0] == "kol"
    # kol: 2 coupons x (5 + 15 later shares, 5 + 15 claims)
    assert prop.secondary[users.index("kol")] == 80.0
    assert k.user[users.index("kol")] > k.user[users.index("loud")]


def test_kol_signals_are_readable_and_anomaly_discounts() -> None:
    t = read_events(viral_world())
    f = node_features(t)
    prop = propagation_by_user(t)
    clean = kol_scores(t, f, prop)
    doubt = np.zeros(t.n_users)
    doubt[t.users.tolist().index("kol")] = 0.5
    half = kol_scores(t, f, prop, doubt)
    i = t.users.tolist().index("kol")
    assert half.user[i] == clean.user[i] * 0.5
    rows = {r["node"]: r for r in score_events(viral_world())}
    sig = {s["name"]: s for s in rows["kol"]["signals"]}
    assert sig["secondary_propagation"]["detail"] == "40 later shares and 40 claims descend from its shares"
    assert sig["secondary_propagation"]["score"] == 1.0
