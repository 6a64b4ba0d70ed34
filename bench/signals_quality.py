"""What the real-time rules refuse on simulated workloads with planted fraud.

For each seed and size, simulates a workload (``graphs.workload``), replays
it through ``run_backtest`` with the default policy and no batch scores, with
and without the real-time signals, and reports the share of shares refused
(challenged or blocked by the candidate) by the sharer's true kind; organic
is the false-refusal rate (all rules, and those where a signal is among the
reasons). ``--curves FILE`` also saves, per fraud kind, the
refused share of each ring's n-th share (for the charts of
``bench/signals_chart.py``).

    .venv/bin/python bench/signals_quality.py --seeds 1 2 3 --users 3000 10000 [--profiles default hard mixed]

Organic look-alikes (the ``hard`` and ``mixed`` profiles' flash-sale
sharers, group admins, family phones and chat pushers) are reported apart as
``organic:<kind>``, and counted in ``organic`` too.

``--compare BEFORE AFTER`` reads two saved outputs of this script (the same
workloads, e.g. one run on an older commit) and prints the before -> after
tables: fraud refused per kind, organic refused per look-alike.
``--summary OUTPUT...`` pools saved outputs (run with ``--codes``) into one
table per kind over every workload, and the refusals by reason and kind.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs.workload.simulate import simulate  # noqa: E402
from riskservice.backtest import run_backtest  # noqa: E402
from riskservice.limits.contract import SIGNAL_FIELDS  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402

SIGNALS = {*SIGNAL_FIELDS, "sink_recipient", "fresh_burst", "ring_block", "device_pool"}


def refusals(events: list[dict[str, Any]], truth: list[dict[str, Any]], *, signals: bool,
             policy_file: Path) -> tuple[dict[str, tuple[int, int]], dict[str, list[list[int]]], Counter[str]]:
    """(kind -> (refused, shares)), per kind the refused flags of each fraud
    entity's shares in time order, and the reasons of refusals by kind (every
    refusal, whether or not the recording refused it too)."""
    kind_of = {r["node"]: r["fraud_kind"] or "organic" for r in truth if r["kind"] == "user"}
    lookalike = {r["node"]: r["organic_kind"] for r in truth if r["kind"] == "user" and r.get("organic_kind")}
    policy = load_policy(policy_file)
    result = run_backtest(events, policy, examples=len(events) + 1, signals=signals)
    changed = {ex["event_id"]: ex for ex in result.examples}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_user: dict[str, list[int]] = defaultdict(list)
    codes: Counter[str] = Counter()
    for ev in events:
        kind = kind_of.get(ev["user_id"], "organic")
        ex = changed.get(ev["event_id"])
        decision = ex["candidate"] if ex else ev["decision"]
        refused = int(decision != "allow")
        counts[kind][0] += refused
        counts[kind][1] += 1
        if ev["user_id"] in lookalike:
            counts[f"organic:{lookalike[ev['user_id']]}"][0] += refused
            counts[f"organic:{lookalike[ev['user_id']]}"][1] += 1
        if kind != "organic":
            by_user[ev["user_id"]].append(refused)
        if refused:
            # every refusal's reasons (also those the recording already had)
            reasons = result.refused_by.get(ev["decision_id"], [])
            codes.update(f"{kind}:{c}" for c in reasons)
            if kind == "organic" and set(reasons) & SIGNALS:
                counts["organic by signals"][0] += 1
            if kind == "organic" and set(reasons) == {"fan_out"}:
                # the customer's fan-out rule alone (an SMS code for a share
                # to more than 10 people), no signal among the reasons
                codes["organic:fan_out_alone"] += 1
    curves: dict[str, list[list[int]]] = defaultdict(list)
    for user, flags in by_user.items():
        curves[kind_of[user]].append(flags)
    counts["organic by signals"][1] = counts["organic"][1]
    return {k: (v[0], v[1]) for k, v in counts.items()}, dict(curves), codes


def pct(v: tuple[int, int]) -> str:
    return f"{100 * v[0] / v[1]:.1f} % ({v[0]}/{v[1]})" if v[1] else "-"


def row(label: str, counts: dict[str, tuple[int, int]]) -> str:
    fraud = [v for k, v in counts.items() if not k.startswith("organic")]
    total = sum(r for r, _ in fraud), sum(n for _, n in fraud)
    kinds = ["farm", "star", "dense", "lockstep", "burst", "low_claim"]
    line = f"| {label} | {pct(total)} | " + " | ".join(pct(counts.get(k, (0, 0))) for k in kinds) + \
        f" | {pct(counts.get('organic', (0, 0)))} | {pct(counts.get('organic by signals', (0, 0)))} |"
    # Kinds outside the table's columns (the hard profiles' kinds, the look-alikes) on a line of their own.
    others = sorted(k for k in counts if k not in kinds and k not in ("organic", "organic by signals"))
    if others:
        line += "\n    " + ", ".join(f"{k} {pct(counts[k])}" for k in others)
    return line


FRAUD_KINDS = ["farm", "star", "dense", "lockstep", "burst", "low_claim", "slow_farm", "ring", "feeder",
               "slow_lockstep", "threshold_star"]
LOOKALIKES = ["group_admin", "flash_sale", "family_device", "chat_pusher"]


def parse_output(path: Path) -> dict[tuple[str, int, int], dict[str, str]]:
    """The rows of a saved output: (profile, users, seed) -> kind -> "p % (n/m)"."""
    rows: dict[tuple[str, int, int], dict[str, str]] = {}
    key = None
    for line in path.read_text().splitlines():
        m = re.match(r"\| (\w+), (\d+) users, seed (\d+), with signals \| (.*)", line)
        if m:
            cells = [c.strip() for c in m.group(4).split("|")]
            key = (m.group(1), int(m.group(2)), int(m.group(3)))
            kinds = ["all", "farm", "star", "dense", "lockstep", "burst", "low_claim", "organic", "by_signal"]
            rows[key] = dict(zip(kinds, cells, strict=False))
        elif key and line.startswith("    ") and " % (" in line:
            for part in line.strip().split(", "):
                hit = re.match(r"([\w:]+) (\d+\.\d % \(\d+/\d+\))", part)
                if hit:
                    rows[key][hit.group(1).removeprefix("organic:")] = hit.group(2)
    return rows


def compare(before: Path, after: Path) -> str:
    """Markdown tables, before -> after, of the workloads in ``after``."""
    b, a = parse_output(before), parse_output(after)

    def cell(key: tuple[str, int, int], kind: str, counts: bool = False) -> str:
        new, old = a[key].get(kind, "-"), b.get(key, {}).get(kind, "-")
        if new == "-":
            return "-"
        text = f"{old.split(' %')[0]} → **{new.split(' %')[0]}**"
        return text + (f" ({new.split('(')[1]}" if counts else "")

    lines = ["| workload | all fraud | " + " | ".join(FRAUD_KINDS) + " |", "|---" * (len(FRAUD_KINDS) + 2) + "|"]
    for key in a:
        lines.append(f"| {key[0]}, {key[1]}, seed {key[2]} | "
                     + " | ".join(cell(key, k) for k in ["all", *FRAUD_KINDS]) + " |")
    lines += ["", "| workload | organic | organic, by a signal | " + " | ".join(LOOKALIKES) + " |",
              "|---" * (len(LOOKALIKES) + 3) + "|"]
    for key in a:
        lines.append(f"| {key[0]}, {key[1]}, seed {key[2]} | "
                     + " | ".join(cell(key, k, counts=True) for k in ["organic", "by_signal", *LOOKALIKES]) + " |")
    return "\n".join(lines)


def _counts(cell: str) -> tuple[int, int] | None:
    hit = re.search(r"\((\d+)/(\d+)\)", cell)
    return (int(hit.group(1)), int(hit.group(2))) if hit else None


def summary(paths: list[Path]) -> str:
    """Markdown tables pooling the workloads of saved outputs (run with
    ``--codes``): per kind the shares refused over all workloads, the median
    and lowest workload, and how many workloads reach 60 % (fraud) or stay at
    1 % or under (organic); then refusals by reason and kind."""
    rows: dict[tuple[str, int, int], dict[str, str]] = {}
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for path in paths:
        rows.update(parse_output(path))
        for line in path.read_text().splitlines():
            if line.startswith("    ") and " % (" not in line:
                for part in line.strip().split(", "):
                    hit = re.match(r"([\w]+):(\w+) (\d+)$", part)
                    if hit:
                        codes[hit.group(2)][hit.group(1)] += int(hit.group(3))

    def pooled(kinds: list[str], goal: float, at_most: bool) -> list[str]:
        lines = []
        for kind in kinds:
            cells = [c for c in (_counts(r.get(kind, "-")) for r in rows.values()) if c and c[1]]
            if not cells:
                continue
            rates = sorted(100 * r / n for r, n in cells)
            met = sum(rate <= goal if at_most else rate >= goal for rate in rates)
            worst = rates[-1] if at_most else rates[0]
            total = sum(r for r, _ in cells), sum(n for _, n in cells)
            lines.append(f"| {kind} | {pct(total)} | {rates[len(rates) // 2]:.1f} % | {worst:.1f} % "
                         f"| {met} of {len(rates)} |")
        return lines

    out = [f"{len(rows)} workloads: " + ", ".join(sorted({f"{p} {u}" for p, u, _ in rows})) + "; seeds "
           + " ".join(str(s) for s in sorted({s for _, _, s in rows})), "",
           "| kind | refused, all workloads | median workload | lowest | workloads at 60 % or more |",
           "|---|---|---|---|---|", *pooled(["all", *FRAUD_KINDS], 60.0, at_most=False), "",
           "| organic | refused, all workloads | median workload | highest | workloads at 1 % or under |",
           "|---|---|---|---|---|", *pooled(["organic", "by_signal", *LOOKALIKES], 1.0, at_most=True)]
    kinds = [k for k in [*FRAUD_KINDS, "organic"] if any(k in c for c in codes.values())]
    out += ["", "| reason | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for code in sorted(codes, key=lambda c: -sum(codes[c].values())):
        out.append(f"| `{code}` | " + " | ".join(str(codes[code].get(k, 0) or "") for k in kinds) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--profiles", nargs="+", default=["default"], choices=["default", "hard", "mixed"])
    parser.add_argument("--users", type=int, nargs="+", default=[3000])
    parser.add_argument("--policy", type=Path, default=ROOT / "config" / "policy.yaml")
    parser.add_argument("--without", action="store_true", help="also replay without the signals (before)")
    parser.add_argument("--curves", type=Path, help="save refusal curves per kind (JSON)")
    parser.add_argument("--codes", action="store_true", help="print refusal reasons by kind")
    parser.add_argument("--fan-out-challenges", action=argparse.BooleanOptionalAction, default=True,
                        help="record the workload as the live fan-out rule left it: shares to more than 10 "
                             "people asked for an SMS code, passed or not (graphs.workload.export)")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                        help="print before -> after tables of two saved outputs, and nothing else")
    parser.add_argument("--summary", type=Path, nargs="+", metavar="OUTPUT",
                        help="pool saved outputs (run with --codes) into per-kind tables, and nothing else")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return
    if args.compare:
        print(compare(*args.compare))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| workload | all fraud | farm | star | dense | lockstep | burst | low_claim | organic "
          "| organic, by a signal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    all_curves: dict[str, list[list[int]]] = defaultdict(list)
    for profile, users, seed in [(p, u, s) for p in args.profiles for u in args.users for s in args.seeds]:
        if True:
            events, truth = simulate(users, seed, profile=profile, fan_out_challenges=args.fan_out_challenges)
            modes = [False, True] if args.without else [True]
            for signals in modes:
                started = time.perf_counter()
                counts, curves, codes = refusals(events, truth, signals=signals, policy_file=args.policy)
                label = f"{profile}, {users} users, seed {seed}, {'with' if signals else 'without'} signals"
                print(row(label, counts) + f" <!-- {time.perf_counter() - started:.0f} s -->", flush=True)
                if signals:
                    for kind, flags in curves.items():
                        all_curves[kind] += flags
                if args.codes:
                    print("    " + ", ".join(f"{k} {n}" for k, n in sorted(codes.items())))
    if args.curves:
        args.curves.write_bytes(orjson.dumps(all_curves))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
