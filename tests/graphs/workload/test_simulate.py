from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from graphs.workload.simulate import main, simulate

KINDS = {"farm", "star", "sink", "dense", "lockstep", "burst", "low_claim"}


def test_seeded_and_varied() -> None:
    a, ta = simulate(1500, seed=4)
    b, tb = simulate(1500, seed=4)
    c, _ = simulate(1500, seed=5)
    assert a == b and ta == tb
    assert len(a) != len(c)


def test_truth_covers_every_node_and_every_kind() -> None:
    events, truth = simulate(2000, seed=2)
    users = {e["user_id"] for e in events} | {r for e in events for r in e.get("recipients", [])}
    devices = {e["device_id"] for e in events if e["device_id"]}
    assert {t["node"] for t in truth if t["kind"] == "user"} == users
    assert {t["node"] for t in truth if t["kind"] == "device"} == devices
    kinds = Counter(t["fraud_kind"] for t in truth if t["fraud"])
    assert set(kinds) == KINDS
    assert all(t["fraud"] == (t["fraud_kind"] is not None) for t in truth)
    assert all(e["ts"] <= f["ts"] for e, f in itertools.pairwise(events))


def test_organic_coupons_decay_and_kols_carry_propagation() -> None:
    events, truth = simulate(5000, seed=1)
    fraud = {t["node"] for t in truth if t["fraud"]}
    times = defaultdict(list)
    for e in events:
        if e["user_id"] not in fraud:
            times[e["coupon_id"]].append(e["ts"])
    first6 = [np.mean(np.array(ts) - min(ts) < 6 * 3600) for ts in times.values() if len(ts) >= 20]
    assert 0.45 <= float(np.median(first6)) <= 0.85  # organic: ~60 % in the first 6 h
    sec = np.sort([t["secondary"] for t in truth if t["kind"] == "user"])[::-1]
    assert sec[: len(sec) // 20].sum() >= 0.35 * sec.sum()  # KOLs drive 35 %+ of secondary propagation


def test_cli_writes_both_files(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--users", "300", "--seed", "9", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "events.jsonl").stat().st_size > 0 and (tmp_path / "truth.jsonl").stat().st_size > 0
    assert '"users":300' in capsys.readouterr().out
