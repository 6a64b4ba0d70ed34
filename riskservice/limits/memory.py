"""An in-process store with the same semantics as the Redis script.

It is the executable reference of ``lua/decide.lua``'s count windows and bans,
built from the plain algorithm in :mod:`riskservice.limits.sliding`: the tests
replay random traffic through both and require identical answers. It keeps no
expiry timers and is for one process only, so the service itself never uses
it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from riskservice.limits.keys import DecisionKeys
from riskservice.limits.records import DecisionRecord, Status
from riskservice.limits.sliding import combine, in_window, judge, record

SOURCE_DEVICE_LOG, SOURCE_USER_LOG, SOURCE_DEVICE_USERS = 1, 2, 3


class MemoryStore:
    """Reference store: logs, user sets, bans and event records in dicts."""

    def __init__(self) -> None:
        self.logs: dict[str, list[int]] = {}
        self.users: dict[str, dict[str, int]] = {}
        self.bans: dict[str, dict[str, Any]] = {}
        self.events: dict[str, tuple[str, DecisionRecord]] = {}

    def decide(
        self,
        keys: DecisionKeys,
        *,
        user_id: str,
        plan: bytes,
        findings: bytes,
        fingerprint: str,
        decision_id: str,
        now_ms: int | None,
        ttl_ms: int,
        **_: object,
    ) -> DecisionRecord:
        if now_ms is None:
            raise ValueError("the memory store needs an explicit clock")
        if keys.event in self.events:
            fp, rec = self.events[keys.event]
            status: Status = "replay" if fp == fingerprint else "conflict"
            return dataclasses.replace(rec, status=status)
        p = orjson.loads(plan)
        fired: list[list[Any]] = list(orjson.loads(findings))
        dlog = self.logs.get(keys.device_state, [])
        ulog = self.logs.get(keys.user_log, [])
        seen = self.users.get(keys.device_state, {})
        present = False
        counts: dict[str, tuple[int, int, int, int]] = {}
        for code, source, limit, win, sev, shadow, challenge, _extra in p["w"]:
            if source > SOURCE_DEVICE_USERS:
                continue  # success rate and travel: judged on Redis only (tests/limits/test_lifecycle.py)
            if source == SOURCE_DEVICE_USERS:
                others = sorted(t for u, t in seen.items() if now_ms - t < win and u != user_id)
                present = user_id in seen and now_ms - seen[user_id] < win
                count, retry = judge(others, now_ms, win, limit)
                over = not present and count >= limit
                oldest = others[0] if others else None
                count += int(present)
            else:
                log = sorted(in_window(dlog if source == SOURCE_DEVICE_LOG else ulog, now_ms, win))
                count, retry = judge(log, now_ms, win, limit)
                over = count >= limit
                oldest = log[0] if log else None
            if over:
                fired.append([code, sev, shadow, challenge, count + 1, limit, win / 1000, retry])
            reset = oldest + win - now_ms if oldest is not None else 0
            counts[code] = (count, reset, source, win)
        ban_keys = {3: keys.device_ban, 5: keys.user_ban, 6: keys.ip_ban}
        for code, key_index, sev, shadow, challenge in p["b"]:
            ban = self.bans.get(ban_keys[key_index])
            if ban is not None and (not ban["until"] or ban["until"] > now_ms):
                retry = ban["until"] - now_ms if ban["until"] else 0
                fired.append([code, sev, shadow, challenge, ban["reason"], None, None, retry])
        decision, challenge_kind = combine(fired)
        consumed = decision == 0
        if consumed:
            self.logs[keys.device_state] = record(dlog, now_ms, p["dcap"], p["dkeep"])
            self.logs[keys.user_log] = record(ulog, now_ms, p["ucap"], p["ukeep"])
            kept = {u: t for u, t in {**seen, user_id: now_ms}.items() if now_ms - t < p["skeep"]}
            # Redis orders equal scores by member, so the cap drops the same user.
            newest = sorted(kept.items(), key=lambda ut: (ut[1], ut[0]))[-p["scap"]:]
            self.users[keys.device_state] = dict(newest)
        windows = {}
        for code, (count, reset, source, win) in counts.items():
            grows = consumed and (source != SOURCE_DEVICE_USERS or not present)
            windows[code] = (count + 1, reset or win) if grows else (count, reset)
        rec = DecisionRecord("new", decision_id, now_ms, decision, challenge_kind, fired, windows, p["pv"], consumed)
        self.events[keys.event] = (fingerprint, rec)
        return rec

    def set_ban(self, key: str, reason: str, until_ms: int = 0) -> None:
        self.bans[key] = {"reason": reason, "until": until_ms}
