"""The rules that need no stored state, and how every finding reads to people.

A *finding* is one rule that fired, as the Redis script stores it:
``[code, severity, shadow, challenge, observed, limit, window_s, retry_ms]``
and, for some rules, a ninth ``detail`` (the sample size of a rate, the
distance of a move, the area a share fell outside).
Stateless rules (fan-out, sensitive copy) are judged here, before the
script, and handed to it so that it can decide whether the share consumes
quota in the same atomic step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

from riskservice.decisions.request import DecisionRequest
from riskservice.decisions.text import TermMatcher
from riskservice.limits.geo import haversine_km
from riskservice.policy.model import FanOutRule, Rule, Rules, SignalRule
from riskservice.policy.rollout import enforced

Finding = list[Any]


class Flags(Protocol):
    """Flags of accounts other than the sharer (:class:`riskservice.signals.board_cache.BoardCache`)."""

    def strongest(self, kind: str, accounts: Any, now: int | None = None) -> tuple[str, int] | None: ...

MESSAGES = {
    "device_blocklist": "device is blocklisted",
    "user_blocklist": "user is blocklisted",
    "ip_blocklist": "ip address is blocklisted",
    "device_velocity": "device would make {observed} shares in {window}, above the limit of {limit}",
    "device_daily_cap": "device would make {observed} shares in {window}, above the limit of {limit}",
    "user_daily_cap": "user would make {observed} shares in {window}, above the limit of {limit}",
    "device_many_users": "{observed} distinct users on this device in {window}, above the limit of {limit}",
    "fan_out": "share to {observed} recipients, above the limit of {limit}",
    "sensitive_copy": "share text contains the sensitive term {observed}",
    "low_success_rate": "{observed:.0%} of the device's last {detail} shares with an outcome were claimed, "
                        "below {limit:.0%}",
    "impossible_travel": "device moved {detail} km since its last share, {observed} km/h, above {limit:g} km/h",
    "geofence": "share is {observed} km from the nearest allowed area ({detail}), outside its {limit:g} km",
    "challenge_failures": "device is cooling down after failed challenges",
    "external_channel_not_allowed": "sharing to platform {observed} is not allowed for this merchant",
    "graph_anomaly": "graph anomaly score {observed} of the device or sharer, at or above {limit}",
    "device_rotation": "{observed} distinct users on this device in {window}, at or above {limit}",
    "lockstep": "shared the same coupons in the same bursts as {observed} other accounts in {window}, "
                "at or above {limit}",
    "sink_feeder": "shares to {observed} recipients who receive from many sharers and claim nearly everything "
                   "in {window}, at or above {limit}",
    "dead_recipients": "{observed} recipients got repeated shares from this sharer and never claimed in {window}, "
                       "at or above {limit}",
    "coupon_repeat": "shared one coupon in {observed} sittings an hour or more apart in {window}, at or above {limit}",
    "sink_recipient": "{detail} receives from {observed} fresh accounts and claims nearly everything "
                      "(a sink) in {window}, at or above {limit}",
    "fresh_burst": "one of {observed} fresh accounts that shared the same coupon within 15 min "
                   "in {window}, at or above {limit}",
    "ring_block": "{detail} a ring of {observed} sharers feeding the same recipients (heavy claimers, "
                  "or a circle nobody else reaches) in {window}, at or above {limit}",
    "device_pool": "{detail} a pool of {observed} accounts rotating over shared devices in {window}, "
                   "at or above {limit}",
    "reward_daily_cap": "rewards would reach {observed} cents in {window}, above the cap of {limit}",
    "reward_graph_anomaly": "graph anomaly score {observed} of the user or device, at or above {limit}",
    "redis_unavailable": "risk state unavailable; answered by the configured fail mode",
}


def finding(rule: Rule, code: str, observed: object, limit: float | None = None, *, shadow: bool | None = None,
            ) -> Finding:
    shadowed = rule.shadow if shadow is None else shadow
    return [code, rule.severity, int(shadowed), rule.challenge or "", observed, limit, None, 0]


def in_shadow(rule: Rule, name: str, device_id: str) -> bool:
    """Shadow by setting, or by being outside the rule's gray rollout for this device."""
    return rule.shadow or not enforced(name, device_id, rule.rollout)


def geofence_finding(req: DecisionRequest, rules: Rules) -> Finding | None:
    """Outside every allowed area of the merchant (no areas, or no position: no finding)."""
    fence = rules.geofence
    if not fence.enabled or not fence.areas or req.geo is None:
        return None
    nearest, distance = None, math.inf
    for area in fence.areas:
        km = haversine_km(area.lat, area.lon, req.geo.lat, req.geo.lon)
        if km <= area.radius_km:
            return None
        if km - area.radius_km < distance:
            nearest, distance = area, km - area.radius_km
    assert nearest is not None
    km = round(haversine_km(nearest.lat, nearest.lon, req.geo.lat, req.geo.lon), 1)
    # 15 significant digits give back the centre as the policy writes it
    # (":g" keeps six: 121.4737 would read 121.474).
    name = nearest.name or f"{nearest.lat:.15g},{nearest.lon:.15g}"
    shadow = in_shadow(fence, "geofence", req.device_id)
    return [*finding(fence, "geofence", km, None, shadow=shadow)[:5], nearest.radius_km, None, 0, name]


def external_channel_finding(req: DecisionRequest, rules: Rules) -> Finding | None:
    """A share to another platform the merchant's policy does not allow."""
    rule = rules.external_channel
    if not rule.enabled or req.channel != "external":
        return None
    allowed = rule.allowed_platforms
    platform = (req.platform or "").casefold()
    if "*" in allowed or (platform and platform in {p.casefold() for p in allowed}):
        return None
    return finding(rule, "external_channel_not_allowed", platform or "(not named)",
                   shadow=in_shadow(rule, "external_channel", req.device_id))


def board_finding(req: DecisionRequest, rule: SignalRule, code: str, flags: Flags | None,
                  *looks: tuple[str, Iterable[str], str]) -> Finding | None:
    """The strongest of the board's flags that a share meets, if at the rule's threshold.

    Each of ``looks`` is (the board's kind, the ids of the share to look up,
    the reason's detail, which may name the flagged id as ``{id}``); the
    first look wins a tie.
    """
    if flags is None or not rule.enabled:
        return None
    best: tuple[int, str] | None = None
    for kind, ids, detail in looks:
        hit = flags.strongest(kind, ids)
        if hit is not None and (best is None or hit[1] > best[0]):
            best = (hit[1], detail.format(id=hit[0]))
    if best is None or best[0] < rule.threshold:
        return None
    value, detail = best
    head = finding(rule, code, value, rule.threshold, shadow=in_shadow(rule, code, req.device_id))[:6]
    return [*head, rule.window_s, 0, detail]


def sink_finding(req: DecisionRequest, rules: Rules, flags: Flags | None) -> Finding | None:
    """A share naming a sink, or by a fresh account that recently shared to one
    (the signal consumer's board, :mod:`riskservice.signals.recipients`)."""
    return board_finding(req, rules.sink_recipient, "sink_recipient", flags,
                         ("r", req.recipients or (), "recipient {id}"),
                         ("s", (req.user_id,), "a recipient this account shared to in the last days"))


def fresh_burst_finding(req: DecisionRequest, rules: Rules, flags: Flags | None) -> Finding | None:
    """A sharer that joined a burst of fresh accounts on one coupon
    (the signal consumer's board, :mod:`riskservice.signals.fresh_bursts`)."""
    rule = rules.fresh_burst
    hit = flags.strongest("g", (req.user_id,)) if flags is not None and rule.enabled else None
    if hit is None or hit[1] < rule.threshold:
        return None
    head = finding(rule, "fresh_burst", hit[1], rule.threshold,
                   shadow=in_shadow(rule, "fresh_burst", req.device_id))[:6]
    return [*head, rule.window_s, 0]


def ring_block_finding(req: DecisionRequest, rules: Rules, flags: Flags | None) -> Finding | None:
    """A share naming a ring sink, or by a member of a ring's block (the
    signal consumer's board, :mod:`riskservice.signals.blocks`)."""
    return board_finding(req, rules.ring_block, "ring_block", flags,
                         ("b", req.recipients or (), "recipient {id} is fed by"),
                         ("m", (req.user_id,), "this account is in"))


def device_pool_finding(req: DecisionRequest, rules: Rules, flags: Flags | None) -> Finding | None:
    """A share from a device, or by an account, of a pool of devices that
    accounts rotate over (the signal consumer's board, :mod:`riskservice.signals.pools`)."""
    return board_finding(req, rules.device_pool, "device_pool", flags,
                         ("p", (req.device_id,), "this device is in"), ("q", (req.user_id,), "this account is in"))


def fan_out_finding(req: DecisionRequest, fan: FanOutRule, flags: Flags | None) -> Finding:
    """The fan-out finding; in shadow when the sharer earned the waiver."""
    shadow = in_shadow(fan, "fan_out", req.device_id)
    earned = flags.strongest("w", (req.user_id,)) if fan.waiver and flags is not None and not shadow else None
    if earned is not None and earned[1] >= fan.waiver_shares:
        shares = "share" if earned[1] == 1 else "shares"
        detail = f" (waived: {earned[1]} earlier fan-out {shares} claimed as real people do)"
        return [*finding(fan, "fan_out", req.fan_out, fan.limit, shadow=True)[:8], detail]
    return finding(fan, "fan_out", req.fan_out, fan.limit, shadow=shadow)


def stateless_findings(req: DecisionRequest, rules: Rules, matcher: TermMatcher,
                       flags: Flags | None = None) -> list[Finding]:
    """Judge the rules that look only at the request (and at the in-memory
    board of flagged accounts, ``flags``)."""
    found: list[Finding] = []
    for extra in (geofence_finding(req, rules), external_channel_finding(req, rules),
                  sink_finding(req, rules, flags), fresh_burst_finding(req, rules, flags),
                  ring_block_finding(req, rules, flags), device_pool_finding(req, rules, flags)):
        if extra is not None:
            found.append(extra)
    fan = rules.fan_out
    if fan.enabled and req.fan_out > fan.limit and fan.applies_to(req.channel):
        found.append(fan_out_finding(req, fan, flags))
    copy = rules.sensitive_copy
    if copy.enabled and req.text:
        term = matcher.find(req.text)
        if term is not None:
            found.append(finding(copy, "sensitive_copy", term,
                                 shadow=in_shadow(copy, "sensitive_copy", req.device_id)))
    return found


def _window(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def reason(f: Finding) -> dict[str, Any]:
    """Render a finding as the API's reason object."""
    code, severity, _shadow, challenge, observed, limit, window_s, retry_ms = f[:8]
    detail = f[8] if len(f) > 8 else None
    if code.endswith("_blocklist") or code == "challenge_failures":
        message = MESSAGES[code] + (f": {observed}" if observed else "")
    else:
        message = (MESSAGES.get(code) or str(code)).format(
            observed=observed, limit=limit, window=_window(window_s) if window_s else "", detail=detail
        )
        if code == "fan_out" and detail:
            message += detail
    return {
        "code": code,
        "action": "block" if severity == 2 else "challenge",
        "challenge": challenge or None,
        "message": message,
        "observed": observed,
        "limit": limit,
        "window_s": int(window_s) if window_s else None,
        "retry_after_s": math.ceil(retry_ms / 1000) if retry_ms else None,
    }
