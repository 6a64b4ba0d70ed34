"""How many of a dense ring's shares any signal built on the share graph could refuse.

A dense ring's members (``graphs.workload``'s ``dense`` kind) are new
accounts on new devices that nobody shares to. Until a member's own first
share to the ring, no edge, device, ip or coupon ties it to the ring, so its
cover shares before then look like any quiet account's; and a ring share
naming only members nobody named before has nothing earlier to meet. This
counts, per workload, the dense shares left when those two are taken out:
an upper bound for any real-time graph signal, to read beside
``bench/signals_quality.py``'s dense column (no replay, no signal involved).

    .venv/bin/python bench/dense_reach.py --seeds 301 302 303 304 305 306 --users 3000
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.workload.simulate import simulate


def reach(events: list[dict[str, Any]], truth: list[dict[str, Any]]) -> Counter[str]:
    """Dense shares (``shares``), cover shares before the sharer's own first ring share
    (``unlinked_cover``) and ring shares naming only members nobody named before (``fresh_ring``)."""
    dense = {r["node"] for r in truth if r["kind"] == "user" and r.get("fraud_kind") == "dense"}
    named: set[str] = set()
    ring_sharers: set[str] = set()
    counts: Counter[str] = Counter()
    for event in sorted(events, key=lambda e: e["ts"]):
        user, recipients = event["user_id"], event.get("recipients") or []
        if user not in dense:
            continue
        counts["shares"] += 1
        members = [r for r in recipients if r in dense]
        if not members and user not in ring_sharers:
            counts["unlinked_cover"] += 1
        if members and not any(r in named for r in members):
            counts["fresh_ring"] += 1
        if members:
            ring_sharers.add(user)
        named.update(members)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--profiles", nargs="+", default=["default", "mixed"])
    args = parser.parse_args()
    print("| workload | dense shares | cover before the member's first ring share | ring shares naming only "
          "new members | reachable at most |\n|---|---|---|---|---|")
    for seed in args.seeds:
        for profile in args.profiles:
            events, truth = simulate(args.users, seed, profile=profile, fan_out_challenges=True)
            c = reach(events, truth)
            if not c["shares"]:
                continue
            left = c["shares"] - c["unlinked_cover"] - c["fresh_ring"]
            print(f"| {profile}, {args.users}, seed {seed} | {c['shares']} | {c['unlinked_cover']} | "
                  f"{c['fresh_ring']} | {left / c['shares']:.1%} |")


if __name__ == "__main__":
    main()
