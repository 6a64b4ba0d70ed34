"""What one review-queue update costs Redis, as a flat list and as a skip list.

Every refused share raises its device's priority in the review queue
(``ZADD GT``). Redis keeps a sorted set of up to ``zset-max-ziplist-entries``
members (128 by default) as one flat list that each update scans; the
service recommends 16 (docs/operations.md, "Your own Redis"). This fills a
queue of ``--devices`` members and raises random members' scores, under
both settings in alternating rounds, and reports ``ZADD``'s microseconds
per call from ``INFO commandstats`` (inside Redis, no round trips).

    .venv/bin/python bench/queue_zadd.py [--devices 120] [--updates 60000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402


def measure(client: redis.Redis, entries: int, members: list[str], updates: int, rng: random.Random) -> float:
    """µs per ``ZADD GT`` under ``zset-max-ziplist-entries`` = ``entries``."""
    client.flushall()
    client.config_set("zset-max-ziplist-entries", entries)
    points = dict.fromkeys(members, 0)
    client.zadd("queue", points)
    client.config_resetstat()
    pipe = client.pipeline(transaction=False)
    for i in range(updates):
        member = members[rng.randrange(len(members))]
        points[member] += 1
        pipe.zadd("queue", {member: points[member]}, gt=True)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    return float(client.info("commandstats")["cmdstat_zadd"]["usec_per_call"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=120, help="members of the queue")
    parser.add_argument("--updates", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(1)
    members = [f"{rng.getrandbits(128):032x}" for _ in range(args.devices)]
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-zadd-"))).start()
    client = server.client()
    out: dict[int, list[float]] = {128: [], 16: []}
    try:
        for i in range(args.rounds):
            for entries in (128, 16) if i % 2 == 0 else (16, 128):
                out[entries].append(measure(client, entries, members, args.updates, rng))
        encoding = client.object("encoding", "queue")
    finally:
        client.close()
        server.stop()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; a queue of {args.devices} devices, "
          f"{args.updates} updates per round, {args.rounds} rounds (last encoding: {encoding!r})\n")
    print("| zset-max-ziplist-entries | µs per ZADD GT, median | rounds |\n|---|---|---|")
    for entries, values in out.items():
        print(f"| {entries} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
