"""Charts of the real-time signals: per fraud kind, the share of fraud
refused by each account's n-th share, and how many shares an account gets
through before its first refusal.

Reads the curves ``bench/signals_quality.py --curves FILE`` saved (per kind,
per fraud account, whether each of its shares was refused, in time order)
and writes one SVG per kind into ``--output`` (``docs/signals/``).

    .venv/bin/python bench/signals_quality.py --seeds 1 2 3 --users 3000 10000 --curves /tmp/curves.json
    .venv/bin/python bench/signals_chart.py --curves /tmp/curves.json --output docs/signals
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import orjson

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TITLES = {"farm": "device farms", "star": "star sprayers", "dense": "camouflaged dense rings (claiming sinks)",
          "lockstep": "lockstep groups", "burst": "steady coupon pushers", "low_claim": "spammers nobody claims from",
          "slow_farm": "slow device farms", "ring": "device-rotating rings (claiming sinks)",
          "feeder": "hoarders' fresh feeders", "slow_lockstep": "ten-minute lockstep groups",
          "threshold_star": "sprayers just under the success-rate rule"}
MAX_SHARES = 40
FORMAT = "svg"


def before_first_refusal(flags: list[int]) -> int:
    """Shares an account got through before its first refusal (all of them if never refused).

    >>> before_first_refusal([0, 0, 1, 0]), before_first_refusal([0, 0])
    (2, 2)
    """
    return flags.index(1) if 1 in flags else len(flags)


def chart(kind: str, accounts: list[list[int]], output: Path) -> Path:
    xs, refused, live = [], [], []
    for n in range(MAX_SHARES):
        having = [a[n] for a in accounts if len(a) > n]
        if len(having) < 3:
            break
        xs.append(n + 1)
        refused.append(100 * sum(having) / len(having))
        live.append(len(having))
    free = sorted(before_first_refusal(a) for a in accounts)
    total = sum(len(a) for a in accounts)
    share = 100 * sum(sum(a) for a in accounts) / total if total else 0.0
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(xs, refused, marker="o", markersize=3, color="#b03030")
    ax.set_ylim(0, 102)
    ax.set_xlabel("the account's n-th share (time order)")
    ax.set_ylabel("refused (%)")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.bar(xs, live, color="#888888", alpha=0.25, width=0.8)
    twin.set_ylabel("accounts with an n-th share", color="#666666")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_title(f"{TITLES.get(kind, kind)}: {share:.0f} % of {total} shares refused\n"
                 f"{len(accounts)} accounts; median {free[len(free) // 2]} shares before the first refusal",
                 fontsize=10)
    fig.tight_layout()
    path = output / f"refused-{kind}.{FORMAT}"
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curves", type=Path, nargs="+", required=True, help="one or more files, merged")
    parser.add_argument("--output", type=Path, default=Path("docs/signals"))
    args = parser.parse_args()
    curves: dict[str, list[list[int]]] = {}
    for path in args.curves:
        for kind, accounts in orjson.loads(path.read_bytes()).items():
            curves.setdefault(kind, []).extend(accounts)
    args.output.mkdir(parents=True, exist_ok=True)
    for kind in sorted(curves):
        print(chart(kind, curves[kind], args.output))


if __name__ == "__main__":
    main()
