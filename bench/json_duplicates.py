"""The cost of refusing duplicate JSON keys, per decision body, against orjson alone.

    .venv/bin/python bench/json_duplicates.py [--number 200000]

Three typical bodies: without colons in values (the fast check suffices),
with an ISO 8601 ``occurred_at`` and an IPv6 address (colons send it to the
duplicate-detecting parse), and the README's example body.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import timeit
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskservice.api.body import refuse_duplicate_keys

BODIES = {
    "plain (no colon in a value)": {
        "event_id": "share-0001", "device_id": "dev-42", "user_id": "u-7", "coupon_id": "cp-1",
        "merchant_id": "m-1", "channel": "group", "recipients": ["u-8", "u-9"], "ip": "203.0.113.5",
        "geo": {"lat": 31.23, "lon": 121.47}, "text": "邀请好友同步优惠", "occurred_at": 1763800000},
    "occurred_at ISO + IPv6 (slow path)": {
        "event_id": "share-0001", "device_id": "dev-42", "user_id": "u-7", "coupon_id": "cp-1",
        "merchant_id": "m-1", "channel": "group", "recipients": ["u-8", "u-9"], "ip": "2001:db8::1",
        "geo": {"lat": 31.23, "lon": 121.47}, "text": "邀请好友同步优惠",
        "occurred_at": "2026-11-22T10:00:00+08:00"},
    "minimal (4 ids)": {"event_id": "share-0001", "device_id": "dev-42", "user_id": "u-7", "coupon_id": "cp-1"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print("| body | bytes | orjson.loads µs | + duplicate check µs | added µs |")
    print("|---|---|---|---|---|")
    for name, body in BODIES.items():
        raw = orjson.dumps(body)
        alone = min(timeit.repeat(lambda raw=raw: orjson.loads(raw), number=args.number, repeat=3)) / args.number
        both = min(timeit.repeat(lambda raw=raw: refuse_duplicate_keys(raw, orjson.loads(raw)),
                                 number=args.number, repeat=3)) / args.number
        print(f"| {name} | {len(raw)} | {alone * 1e6:.2f} | {both * 1e6:.2f} | {(both - alone) * 1e6:.2f} |")


if __name__ == "__main__":
    main()
