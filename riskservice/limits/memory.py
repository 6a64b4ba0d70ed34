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

from riskservice.limits.contract import RULES, DecideArgs, Plan
from riskservice.limits.keys import DecisionKeys
from riskservice.limits.records import DecisionRecord, Status
from riskservice.limits.sliding import combine, in_window, judge, record

COUNT_RULES = RULES[:4]


class MemoryStore:
    """Reference store: logs, user sets, bans and event records in dicts.

    It covers idempotency, the count windows (rules 1-4 of
    :data:`riskservice.limits.contract.RULES`), bans and the combination of
    findings. It leaves out what needs other stored evidence: the success
    rate, travel, graph scores, the allowlist, refusal counts and the review
    queue, the share-event stream and the deadline; tests cover those on
    Redis directly.
    """

    def __init__(self) -> None:
        self.logs: dict[str, list[int]] = {}
        self.users: dict[str, dict[str, int]] = {}
        self.bans: dict[str, dict[str, Any]] = {}
        self.events: dict[str, tuple[str, DecisionRecord]] = {}

    def decide(self, keys: DecisionKeys, args: DecideArgs) -> DecisionRecord:
        if args.now == "":
            raise ValueError("the memory store needs an explicit clock")
        now_ms, user_id = int(args.now), args.user_id
        if keys.event in self.events:
            fp, rec = self.events[keys.event]
            status: Status = "replay" if fp == args.fingerprint else "conflict"
            return dataclasses.replace(rec, status=status)
        plan = Plan.unpack(args.plan)
        fired: list[list[Any]] = list(orjson.loads(args.static_findings)) if args.static_findings else []
        dlog = self.logs.get(keys.device_state, [])
        ulog = self.logs.get(keys.user_log, [])
        seen = self.users.get(keys.device_state, {})
        present = False
        counts: dict[str, tuple[int, int, int]] = {}
        for i, code in enumerate(RULES):
            r = plan.rules[code]
            shadow = int(args.arms[i]) if args.arms else int(r.shadow)
            limit, win = int(r.limit), r.window_ms
            if not r.enabled or code not in COUNT_RULES:
                continue
            if code == "device_many_users":
                others = sorted(t for u, t in seen.items() if now_ms - t < win and u != user_id)
                present = user_id in seen and now_ms - seen[user_id] < win
                count, retry = judge(others, now_ms, win, limit)
                over = not present and count >= limit
                oldest = others[0] if others else None
                count += int(present)
            else:
                log = sorted(in_window(ulog if code == "user_daily_cap" else dlog, now_ms, win))
                count, retry = judge(log, now_ms, win, limit)
                over = count >= limit
                oldest = log[0] if log else None
            if over:
                fired.append([code, r.severity, shadow, r.challenge, count + 1, limit, win / 1000, retry])
            counts[code] = (count, oldest + win - now_ms if oldest is not None else 0, win)
        for code, key in (("device_blocklist", keys.device_ban), ("user_blocklist", keys.user_ban),
                          ("ip_blocklist", keys.ip_ban)):
            r, ban = plan.rules[code], self.bans.get(key)
            if r.enabled and ban is not None and (not ban["until"] or ban["until"] > now_ms):
                shadow = int(args.arms[RULES.index(code)]) if args.arms else int(r.shadow)
                retry = ban["until"] - now_ms if ban["until"] else 0
                fired.append([code, r.severity, shadow, r.challenge, ban["reason"], None, None, retry])
        decision, challenge_kind = combine(fired)
        consumed = decision == 0
        if consumed:
            self.logs[keys.device_state] = record(dlog, now_ms, plan.device_log_cap, plan.device_log_keep_ms)
            self.logs[keys.user_log] = record(ulog, now_ms, plan.user_log_cap, plan.user_log_keep_ms)
            kept = {u: t for u, t in {**seen, user_id: now_ms}.items() if now_ms - t < plan.users_keep_ms}
            # Redis orders equal scores by member, so the cap drops the same user.
            newest = sorted(kept.items(), key=lambda ut: (ut[1], ut[0]))[-plan.users_cap:]
            self.users[keys.device_state] = dict(newest)
        windows = {}
        for code, (count, reset, win) in counts.items():
            grows = consumed and (code != "device_many_users" or not present)
            windows[code] = (count + 1, reset or win) if grows else (count, reset)
        rec = DecisionRecord("new", args.decision_id, now_ms, decision, challenge_kind, fired, windows,
                             args.policy_version, consumed)
        self.events[keys.event] = (args.fingerprint, rec)
        return rec

    def set_ban(self, key: str, reason: str, until_ms: int = 0) -> None:
        self.bans[key] = {"reason": reason, "until": until_ms}
