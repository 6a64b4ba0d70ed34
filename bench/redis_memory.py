"""Redis bytes per active device under the default policy, at its limits.

Drives N devices to every limit of the default policy (50 admitted shares in
24 h, 20 of them in the last 5 minutes, 5 users), with the injected clock,
then asks Redis ``MEMORY USAGE`` for each device's window state and its
users' logs. Idempotency records are per event, not per device, and are
reported apart.

Then what each decision leaves behind, for as long as it is kept: realistic
requests (ip, geo, share copy, 1-4 recipients, as bench/redis_cpu.py sends)
on fresh devices, and ``MEMORY USAGE`` of the record (a decision's id names
it: no other key is kept per decision) and of the share-event stream per entry (``SAMPLES 0``:
every node counted); and what that makes at a steady rate of decisions with
the default retention (records 4 days, events 30 days).

    .venv/bin/python bench/redis_memory.py [--devices 200] [--decisions 20000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis_cpu import Traffic  # noqa: E402  (bench/ is this script's folder)

from riskservice.decisions.engine import DecisionEngine  # noqa: E402
from riskservice.decisions.request import validate_decision_request  # noqa: E402
from riskservice.limits.client import connect  # noqa: E402
from riskservice.limits.clock import ManualClock  # noqa: E402
from riskservice.limits.keys import EVENTS, decision_keys  # noqa: E402
from riskservice.limits.store import RedisStore  # noqa: E402
from riskservice.policy.load import load_policy  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

DAY_S = 86_400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    server = RedisServer(work).start()
    try:
        client = connect(server.url, 2000)
        policy = load_policy(ROOT / "config" / "policy.yaml")
        clock = ManualClock()
        engine = DecisionEngine(RedisStore(client), lambda: policy, clock=clock)
        # Realistic ids: WeChat-style openids (28 chars) and device ids (32 hex).
        devices = [f"{i:032x}" for i in range(args.devices)]
        users = {d: [f"oX{d[-8:]}{u}{'a' * 17}" for u in range(5)] for d in devices}
        decisions = 0
        # 30 shares spread over the day, then 20 in the last 5 minutes: every
        # window is at its limit (50/24 h, 20/5 min, 5 users) for every device.
        for step in range(50):
            clock.advance(2800 if step < 30 else 400 if step == 30 else 10)
            for d in devices:
                body = {"event_id": f"{d}-{step}", "device_id": d, "user_id": users[d][step % 5],
                        "coupon_id": "cp-1"}
                decision = engine.decide(validate_decision_request(body), body)
                assert decision.decision == "allow", decision
                decisions += 1
        per_device = []
        for d in devices:
            keys = decision_keys("x", d, users[d][0], None)
            size = client.memory_usage(keys.device_state) or 0
            per_device.append(size)
        user_logs = [client.memory_usage(decision_keys("x", d, u, None).user_log) or 0
                     for d in devices for u in users[d]]
        events = [client.memory_usage(k) or 0 for k in client.scan_iter(match="risk:*:ev:*", count=1000)]
        print(f"{args.devices} devices at the default policy's limits ({decisions} admitted shares)\n")
        print("| what | bytes (median) | max |")
        print("|---|---|---|")
        print(f"| device window state (log of 50 + 5 users) | {statistics.median(per_device):.0f} "
              f"| {max(per_device)} |")
        print(f"| one user's daily log (10 shares each here) | {statistics.median(user_logs):.0f} | {max(user_logs)} |")
        print(f"| decision record, per event (kept 4 days) | {statistics.median(events):.0f} | {max(events)} |")
        per_decision(client, engine, clock, args.decisions)
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)

def per_decision(client: Any, engine: DecisionEngine, clock: ManualClock, decisions: int) -> None:
    """What one realistic decision leaves in Redis, and the memory a steady rate needs."""
    client.flushall()
    traffic = Traffic(max(decisions // 4, 1))
    answers: Counter[str] = Counter()
    for i in range(decisions):
        clock.advance(0.01)
        d = traffic.devices[i % len(traffic.devices)]
        body = traffic.share(d, traffic.users[d][i % len(traffic.users[d])])
        answers[engine.decide(validate_decision_request(body), body).decision] += 1
    records = [client.memory_usage(k) or 0 for k in client.scan_iter(match="risk:*:ev:*", count=1000)]
    stream = (client.memory_usage(EVENTS, samples=0) or 0) / max(client.xlen(EVENTS), 1)
    record = statistics.median(records)
    print(f"\n{decisions} realistic decisions on fresh devices ({dict(answers)}): what each leaves\n")
    print("| what | bytes (median) | kept |\n|---|---|---|")
    print(f"| decision record | {record:.0f} | 4 days (`RISK_DECISION_TTL_S`) |")
    print(f"| share-event stream, per entry | {stream:.0f} | 30 days (`RISK_EVENT_RETENTION_DAYS`) |")
    kept = record * 4 * DAY_S + stream * 30 * DAY_S
    print("\n| decisions/s, steady | records (4 days) | events (30 days) | in all |\n|---|---|---|---|")
    for rate in (1_000, 10_000, 100_000):
        rp, ev = rate * record * 4 * DAY_S, rate * stream * 30 * DAY_S
        print(f"| {rate:,} | {rp / 1e12:.2f} TB | {ev / 1e12:.2f} TB | {(rp + ev) / 1e12:.2f} TB |")
    print(f"\n(bytes kept per decision/s of steady traffic: {kept / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
