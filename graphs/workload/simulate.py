"""Synthetic share workloads with ground truth, for tests and benchmarks.

Organic coupons spread as independent cascades whose reshare delays make a
coupon's shares decay (most of them in the first hours, tails of about three
days); planted fraud of every kind the anomaly score knows comes on top.
Every shape parameter is drawn from the seed, so two seeds give different
worlds; the scorer must not be tuned to any one of them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orjson

from graphs.workload.export import export
from graphs.workload.fraud import plant_fraud
from graphs.workload.organic import organic_cascades
from graphs.workload.profiles import PROFILES
from graphs.workload.world import make_world

__all__ = ["main", "simulate", "write_workload"]


def simulate(users: int, seed: int, profile: str = "default", *,
             fan_out_challenges: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Generate a share-event log and its ground truth.

    Parameters
    ----------
    users
        Number of organic users in the social graph (fraud accounts and fake
        sinks come on top, a few percent).
    seed
        Seed of everything, including the shape parameters.
    profile
        Which fraud and look-alikes to plant: ``default``, ``hard`` or
        ``mixed`` (see :mod:`graphs.workload.profiles`).
    fan_out_challenges
        Record the shares to more than 10 people as the live service's
        fan-out rule left them: asked for an SMS code, passed or not
        (:func:`graphs.workload.export.export`).

    Returns
    -------
    events, truth
        ``events``: decision/outcome dicts as the service exports them, sorted
        by ``ts``.  ``truth``: one dict per user and device appearing in the
        events: ``node``, ``kind``, ``fraud`` (bool), ``fraud_kind`` (str or
        None), ``organic_kind`` (the look-alike an organic node belongs to,
        or None) and ``secondary`` (true secondary propagation: later shares
        and claims descending from the node's organic shares).

    Examples
    --------
    >>> events, truth = simulate(300, seed=1)
    >>> {"ts", "decision", "claimed"} <= set(events[0]), truth[0]["kind"]
    (True, 'user')
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    rng = np.random.default_rng(seed)
    world = make_world(users, rng)
    secondary = organic_cascades(world)
    kinds = plant_fraud(world, PROFILES[profile])
    return export(world, secondary, kinds, fan_out_challenges=fan_out_challenges)


def write_workload(directory: str | os.PathLike[str], users: int, seed: int,
                   profile: str = "default") -> dict[str, Any]:
    """Simulate and write ``events.jsonl`` and ``truth.jsonl`` into ``directory``.

    Returns a small summary (counts, paths).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     s = write_workload(d, 200, seed=3)
    >>> s["users"] == 200 and s["events"] > 0
    True
    """
    events, truth = simulate(users, seed, profile)
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, rows in (("events", events), ("truth", truth)):
        path = os.path.join(directory, f"{name}.jsonl")
        with open(path, "wb") as fh:
            fh.write(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
        paths[name] = path
    n_fraud = sum(r["fraud"] for r in truth)
    return {"users": users, "seed": seed, "profile": profile, "events": len(events), "nodes": len(truth),
            "fraud_nodes": n_fraud, **{f"{k}_path": v for k, v in paths.items()}}


def main(argv: list[str] | None = None) -> int:
    """``python -m graphs.workload.simulate --users N --seed S [--profile P] --output DIR``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     main(["--users", "200", "--seed", "1", "--output", d])  # doctest: +ELLIPSIS
    {"users":200,"seed":1,"profile":"default",...}
    0
    """
    import argparse

    p = argparse.ArgumentParser(prog="simulate", description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", choices=sorted(PROFILES), default="default")
    p.add_argument("--output", required=True)
    a = p.parse_args(argv)
    s = write_workload(a.output, a.users, a.seed, a.profile)
    print(orjson.dumps(s).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
