"""An in-process store with the same semantics as the Redis script.

It is the executable reference of ``lua/decide.lua``'s judging: the count
windows (built from the plain algorithm in :mod:`riskservice.limits.sliding`),
the success rate, impossible travel, graph scores, real-time signals, bans
and the allowlist,
and how findings combine; and of ``lua/challenge.lua``'s results (a pass
counts the share and moves the device to its position unless a ban blocks
the device, failures cool the device down). The tests replay random traffic through both and
require identical answers. It keeps no
expiry timers and is for one process only, so the service itself never uses
it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeGuard

import orjson

from riskservice.limits.contract import FIRST_SIGNAL, RULES, DecideArgs, Plan, signal_field
from riskservice.limits.geo import haversine_km
from riskservice.limits.keys import DecisionKeys, device_prefix
from riskservice.limits.records import DecisionRecord, Status
from riskservice.limits.sliding import combine, in_window, judge, record

COUNT_RULES = RULES[:4]


class MemoryStore:
    """Reference store: logs, user sets, bans and event records in dicts.

    It covers every rule of :data:`riskservice.limits.contract.RULES`,
    idempotency, the allowlist and the combination of findings. It leaves out
    what has no effect on the answer: refusal counts and the review queue,
    the share-event stream, key expiry and the deadline (tests cover those on
    Redis directly); and the counting of shares allowed in an outage
    (reconcile.lua, tested through the service in tests/api/test_outage.py).
    Outcomes come in through :meth:`record_outcome`, graph scores through
    :attr:`scores`, the allowlist through :attr:`allowlisted`, challenge
    results through :meth:`challenge`.
    """

    def __init__(self) -> None:
        self.logs: dict[str, list[int]] = {}
        self.users: dict[str, dict[str, int]] = {}
        self.bans: dict[str, dict[str, Any]] = {}
        self.events: dict[str, tuple[str, DecisionRecord]] = {}
        # device state key -> [(share ms, success)], in the order reported
        self.outcomes: dict[str, list[tuple[int, int]]] = {}
        # device state key -> (ms, lat, lon) of its last share with a position
        self.positions: dict[str, tuple[int, float, float]] = {}
        # "d:<device>" / "u:<user>" -> (anomaly, kol), as the batch job writes them
        self.scores: dict[str, tuple[float, float]] = {}
        self.allowlisted: set[str] = set()  # allowlist keys
        # Real-time signals (issue 10): `:sig` hash key -> field -> "<observed>@<until ms>", as the consumer writes them
        self.signals: dict[str, dict[str, str]] = {}
        # record key -> the share's user and, for a challenged share, its position (what challenge.lua reads)
        self.shares: dict[str, tuple[str, tuple[float, float] | None]] = {}
        # record key -> its challenge result, "passed" / "failed"
        self.results: dict[str, str] = {}
        # record key -> the code of the ban that kept its pass from counting
        self.held: dict[str, str] = {}
        # device key prefix ("risk:{d:<device>}") -> times of its failed challenges (the `:failures` log)
        self.failures: dict[str, list[int]] = {}

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
        fired += self._evidence(keys, args, plan, now_ms)
        for code, key in (("device_blocklist", keys.device_ban), ("user_blocklist", keys.user_ban),
                          ("ip_blocklist", keys.ip_ban)):
            r, ban = plan.rules[code], self.bans.get(key)
            if r.enabled and _in_force(ban, now_ms):
                shadow = int(args.arms[RULES.index(code)]) if args.arms else int(r.shadow)
                retry = ban["until"] - now_ms if ban["until"] else 0
                if ban.get("code") == "challenge_failures":  # the cool-down, reported as its own rule
                    cd = plan.cooldown
                    fired.append(["challenge_failures", cd.severity, int(cd.shadow), cd.challenge, ban["reason"],
                                  None, None, retry])
                else:
                    fired.append([code, r.severity, shadow, r.challenge, ban["reason"], None, None, retry])
        if keys.allowlist in self.allowlisted:
            # Challenges are reported as shadow; blocks still apply.
            fired = [[f[0], f[1], 1 if f[1] == 1 else f[2], *f[3:]] for f in fired]
        decision, challenge_kind = combine(fired)
        consumed = decision == 0
        position = (float(args.lat), float(args.lon)) if args.lat != "" else None
        if consumed:
            if position is not None:  # (only a counted share moves the device, as decide.lua)
                self.positions[keys.device_state] = (now_ms, *position)
            self._admit(keys.device_state, keys.user_log, user_id, now_ms, plan)
        # A challenged share keeps its position for its challenge result.
        self.shares[keys.event] = (user_id, position if decision == 1 else None)
        windows = {}
        for code, (count, reset, win) in counts.items():
            grows = consumed and (code != "device_many_users" or not present)
            windows[code] = (count + 1, reset or win) if grows else (count, reset)
        rec = DecisionRecord("new", args.decision_id, now_ms, decision, challenge_kind, fired, windows,
                             args.policy_version, consumed)
        self.events[keys.event] = (args.fingerprint, rec)
        return rec

    def _admit(self, device_state: str, user_log: str, user_id: str, now_ms: int, plan: Plan) -> None:
        """Count an admitted share: the device's and the user's logs and the users seen (common.lua admit())."""
        self.logs[device_state] = record(self.logs.get(device_state, []), now_ms, plan.device_log_cap,
                                         plan.device_log_keep_ms)
        self.logs[user_log] = record(self.logs.get(user_log, []), now_ms, plan.user_log_cap, plan.user_log_keep_ms)
        seen = self.users.get(device_state, {})
        kept = {u: t for u, t in {**seen, user_id: now_ms}.items() if now_ms - t < plan.users_keep_ms}
        # Redis orders equal scores by member, so the cap drops the same user.
        newest = sorted(kept.items(), key=lambda ut: (ut[1], ut[0]))[-plan.users_cap:]
        self.users[device_state] = dict(newest)

    def challenge(self, record_key: str, user_log_key: str, *, passed: bool, kind: str, plan: bytes,
                  now_ms: int) -> tuple[str, bool]:
        """A challenge result on the decision recorded at ``record_key``, as ``lua/challenge.lua``.

        Returns
        -------
        status : str
            ``ok``, ``replay``, ``conflict``, ``not_found``, ``not_challenged`` or ``kind_mismatch``.
        cooled : bool
            Whether this failure put the device in its cool-down.
        """
        if record_key not in self.events:
            return "not_found", False
        fp, rec = self.events[record_key]
        if rec.decision != 1:
            return "not_challenged", False
        if rec.challenge != kind:
            return "kind_mismatch", False
        result = "passed" if passed else "failed"
        prefix = device_prefix(record_key)
        if record_key in self.results:
            if self.results[record_key] != result:
                return "conflict", False
            # a failure's replay says whether it started the cool-down still in place
            ban = self.bans.get(f"{prefix}:ban") or {}
            cooled = ban.get("code") == "challenge_failures" and ban.get("decision") == rec.decision_id
            return "replay", not passed and cooled
        self.results[record_key] = result
        device_state, compiled = f"{prefix}:state", Plan.unpack(plan)
        user_id, position = self.shares[record_key]
        held = _blocking_ban(self.bans.get(f"{prefix}:ban"), compiled, now_ms) if passed else None
        if held is not None:
            # recorded, not counted: the ban blocks the device's decisions
            self.held[record_key] = held
            return "ok", False
        if passed:
            self._admit(device_state, user_log_key, user_id, now_ms, compiled)
            last = self.positions.get(device_state)
            # At the share's time, and never back in time past a later counted share.
            if position is not None and (last is None or last[0] <= rec.ts_ms):
                self.positions[device_state] = (rec.ts_ms, *position)
            self.events[record_key] = (fp, dataclasses.replace(rec, consumed=True))
            return "ok", False
        return "ok", self._failed(prefix, now_ms, compiled, rec.decision_id)

    def _failed(self, prefix: str, now_ms: int, plan: Plan, decision_id: str) -> bool:
        """Log a failed challenge of the device; True when it puts the device in its cool-down."""
        limit, window = plan.failures_limit, plan.failures_window_ms
        fails = record(self.failures.get(prefix, []), now_ms, max(limit, 1), window)
        self.failures[prefix] = fails
        ban = self.bans.get(f"{prefix}:ban")
        # an analyst's ban in force is never replaced; an ended one's key lingers and does not count
        by_hand = _in_force(ban, now_ms) and ban.get("code") != "challenge_failures"
        if limit <= 0 or len(fails) < limit or by_hand:
            return False
        self.bans[f"{prefix}:ban"] = {"reason": f"{len(fails)} failed challenges in {window // 1000} s",
                                      "until": now_ms + plan.cooldown_ms, "code": "challenge_failures",
                                      "decision": decision_id}
        del self.failures[prefix]
        return True

    def _evidence(self, keys: DecisionKeys, args: DecideArgs, plan: Plan, now_ms: int) -> list[list[Any]]:
        """Findings of the success rate, impossible travel and graph anomaly rules."""
        fired: list[list[Any]] = []

        def shadow(code: str) -> int:
            return int(args.arms[RULES.index(code)]) if args.arms else int(plan.rules[code].shadow)

        def fire(code: str, observed: Any, limit: Any, window_s: Any, retry: int, *detail: Any) -> None:
            r = plan.rules[code]
            fired.append([code, r.severity, shadow(code), r.challenge, observed, limit, window_s, retry, *detail])

        rate = plan.rules["low_success_rate"]
        reported = self.outcomes.get(keys.device_state)
        if rate.enabled and reported is not None:
            inside = [ok for t, ok in reported if now_ms - t < rate.window_ms]
            if len(inside) >= rate.limit and sum(inside) < rate.extra * len(inside):
                fire("low_success_rate", _round(sum(inside) / len(inside), 3), _number(rate.extra),
                     _number(rate.window_ms / 1000), 0, len(inside))
        travel = plan.rules["impossible_travel"]
        if args.lat != "":
            lat, lon = float(args.lat), float(args.lon)
            last = self.positions.get(keys.device_state)
            if travel.enabled and last is not None:
                km = haversine_km(last[1], last[2], lat, lon)
                kmh = km / (max(now_ms - last[0], 1000) / 3_600_000)
                if km >= travel.extra and kmh > travel.limit:
                    fire("impossible_travel", _round(kmh, 0), _number(travel.limit), None, 0, _round(km, 1))
        device, user = self.scores.get(f"d:{args.device_id}"), self.scores.get(f"u:{args.user_id}")
        graph = plan.rules["graph_anomaly"]
        if device is not None or user is not None:
            anomaly = max((device or (0.0, 0.0))[0], (user or (0.0, 0.0))[0])
            if graph.enabled and anomaly >= graph.limit:
                fire("graph_anomaly", _number(anomaly), _number(graph.limit), None, 0)
        # --- BEGIN real-time signals (issue 10), as decide.lua ---
        if keys.signals:
            values = self.signals.get(keys.signals, {})
            first = len(fired)
            for code in RULES[FIRST_SIGNAL - 1:]:
                r, text = plan.rules[code], values.get(signal_field(code, args.user_id), "")
                observed, _, until = text.partition("@")
                if not until:
                    continue
                value = float(observed)
                if now_ms < int(until) and r.enabled and value >= r.limit:
                    window = _number(r.window_ms / 1000) if r.window_ms else None
                    fire(code, _number(value), _number(r.limit), window, 0)
            fired = _stronger_explanation(fired, first)
        # --- END real-time signals ---
        return fired

    def record_outcome(self, keys: DecisionKeys, share_ms: int, success: bool) -> None:
        """An outcome reported for the share decided at ``share_ms`` (``outcome.lua``)."""
        self.outcomes.setdefault(keys.device_state, []).append((share_ms, int(success)))

    def set_ban(self, key: str, reason: str, until_ms: int = 0) -> None:
        self.bans[key] = {"reason": reason, "until": until_ms}


def _stronger_explanation(fired: list[list[Any]], first: int) -> list[list[Any]]:
    """Signals (from ``first`` on) and the graph anomaly are one explanation:
    keep the graph finding or the signals of the same shadow flag, whichever
    is stronger (observed / limit; a tie keeps the graph's)."""
    graph = next((i for i, f in enumerate(fired[:first]) if f[0] == "graph_anomaly"), None)
    if graph is None:
        return fired
    shadow, strength = fired[graph][2], fired[graph][4] / fired[graph][5]
    signals = [f[4] / f[5] for f in fired[first:] if f[2] == shadow]
    if not signals:
        return fired
    best = max(signals)
    return [f for i, f in enumerate(fired)
            if not ((i == graph and best > strength) or (i >= first and f[2] == shadow and best <= strength))]


def _round(value: float, digits: int) -> float | int:
    """Half-up rounding as the script does (``math.floor(x * 10^d + 0.5) / 10^d``)."""
    scale = 10 ** digits
    return _number(math.floor(value * scale + 0.5) / scale)


def _number(value: float) -> float | int:
    """A number as it comes back from the script's JSON: whole numbers as ints."""
    return int(value) if float(value).is_integer() else value


def _blocking_ban(ban: dict[str, Any] | None, plan: Plan, now_ms: int) -> str | None:
    """The code of a device ban that blocks its decisions now (challenge.lua's
    blocking_ban()): in force, rule ``device_blocklist`` enabled, and the
    finding it makes (the cool-down's, or the rule's) a block not in shadow."""
    rule = plan.rules["device_blocklist"]
    if not rule.enabled or not _in_force(ban, now_ms):
        return None
    if ban.get("code") == "challenge_failures":
        cd = plan.cooldown
        return "challenge_failures" if cd.severity == 2 and not cd.shadow else None
    return "device_blocklist" if rule.severity == 2 and not rule.shadow else None


def _in_force(ban: dict[str, Any] | None, now_ms: int) -> TypeGuard[dict[str, Any]]:
    """A ban applies until its ``until`` (0: until lifted), as decide.lua judges it."""
    return ban is not None and (not ban["until"] or ban["until"] > now_ms)
