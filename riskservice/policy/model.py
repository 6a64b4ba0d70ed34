"""The policy file's schema: rules, their thresholds and actions.

A policy has default ``rules`` and per-merchant overrides under
``merchants``; an override is merged onto the defaults and validated whole,
so every merchant's effective rules are complete and valid.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskservice.decisions.request import Channel
from riskservice.signals.catalog import FLOORS

Action = Literal["challenge", "block"]
ChallengeKind = Literal["captcha", "sms"]
BROADCASTS: tuple[Channel, ...] = ("moments", "official_account")

MAX_WINDOW_S = 30 * 86_400


class Rule(BaseModel):
    """What every rule has: whether it runs, whether it is enforced, what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    enabled: bool = True
    # Evaluated and reported under ``shadow`` in the decision, never enforced.
    shadow: bool = False
    action: Action
    challenge: ChallengeKind | None = None
    # Gray rollout (as WeChat's card-coupon guide rolls out features): enforced for this percentage of devices, in
    # shadow for the rest; the split is a stable hash of rule and device.
    rollout: int = Field(100, ge=0, le=100)

    @model_validator(mode="after")
    def _challenge_matches_action(self) -> Rule:
        if self.action == "challenge" and self.challenge is None:
            raise ValueError("challenge: required when action is challenge (captcha or sms)")
        if self.action == "block" and self.challenge is not None:
            raise ValueError("challenge: only allowed when action is challenge")
        return self

    @property
    def severity(self) -> int:
        """Block 2 > challenge 1 (allow is 0)."""
        return 2 if self.action == "block" else 1


class CountRule(Rule):
    """Fires on the share that would take a count above ``limit``."""

    limit: int = Field(ge=1, le=1_000_000)


class WindowRule(CountRule):
    """A count over a sliding window of ``window_s`` seconds."""

    window_s: int = Field(ge=1, le=MAX_WINDOW_S)


class WindowLimitRule(WindowRule):
    """A share-count window kept as a log: its limit is bounded so memory is."""

    limit: int = Field(ge=1, le=10_000)


class FanOutRule(CountRule):
    """More than ``limit`` recipients in one share (WeChat's coupon-sharing guide: more than 10 -> SMS).

    ``waiver``: a sharer the signal consumer has seen pass ``waiver_shares``
    (1 by default) fan-out shares whose recipients claimed as real people do
    (some, not all) is not asked again; the finding is reported in shadow instead
    (``riskservice/signals/waiver.py``). Shares on ``broadcast_channels``
    are not judged.
    """

    waiver: bool = True
    waiver_shares: int = Field(1, ge=1, le=1000)
    #: Broadcast channels: a timeline post or an official-account article is
    #: not *sent to* its audience (``recipient_count`` is who may see it), so
    #: "one share to more than 10 people" does not apply. Set ``[]`` to ask
    #: for SMS on every such post too.
    broadcast_channels: list[Channel] = Field(default_factory=lambda: list(BROADCASTS))

    def applies_to(self, channel: str | None) -> bool:
        """Whether a share on ``channel`` is judged (no channel: it is)."""
        return channel is None or channel not in self.broadcast_channels


class TextRule(Rule):
    """Blocks share copy that contains one of ``terms`` after normalisation."""

    terms: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _terms_not_blank(self) -> TextRule:
        from riskservice.decisions.text import normalise

        for i, term in enumerate(self.terms):
            if not normalise(term):
                raise ValueError(f"terms.{i}: is empty after normalisation")
        return self


class SuccessRateRule(Rule):
    """Fires when too few of a device's recent shares are claimed (WeChat's coupon-sharing guide)."""

    # Shares with an outcome needed before the rate is judged.
    min_samples: int = Field(ge=1, le=10_000)
    # A rate below this fires (0.15: fewer than 15 % succeeded).
    threshold: float = Field(gt=0, le=1)
    window_s: int = Field(ge=60, le=MAX_WINDOW_S)


class Area(BaseModel):
    """A circle where a merchant's coupons may be shared (WeChat's card-coupon guide: 3 km fences)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(gt=0, le=20_000)
    name: str | None = Field(None, max_length=64)


class GeofenceRule(Rule):
    """Fires for a share located outside all of the merchant's areas (none: off)."""

    areas: list[Area] = Field(default_factory=list, max_length=1000)


class TravelRule(Rule):
    """Fires when a device's consecutive shares imply an impossible speed."""

    max_speed_kmh: float = Field(gt=0, le=100_000)
    # Moves shorter than this are location noise, whatever the time between.
    min_distance_km: float = Field(ge=0, le=1000)


class ChallengeFailureRule(Rule):
    """Repeated failed challenges put the device in a cool-down."""

    limit: int = Field(ge=1, le=1000)
    window_s: int = Field(ge=1, le=MAX_WINDOW_S)
    cooldown_s: int = Field(ge=1, le=MAX_WINDOW_S)


class ExternalChannelRule(Rule):
    """Sharing to another platform (channel external) only where the merchant allows it
    (WeChat's coupon-sharing guide)."""

    # Platforms shares may go to ("*": any); empty: none.
    allowed_platforms: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(default_factory=list)


class GraphRule(Rule):
    """Fires when the batch job's anomaly score of the device or sharer reaches ``threshold``."""

    threshold: float = Field(gt=0, le=1)


class SignalRule(Rule):
    """A real-time signal (``riskservice.signals``): fires when the value the
    signal consumer observed for the device or sharer reaches ``threshold``.

    The consumer publishes a value only from the signal's floor up
    (``riskservice.signals.catalog.FLOORS``), so a threshold below it is
    refused (checked with the rule's name, in :class:`Rules`).
    """

    threshold: int = Field(ge=1, le=1_000_000)
    # The signal's window, as the consumer counts it (reported in reasons).
    window_s: int = Field(ge=1, le=MAX_WINDOW_S)



def _signal(threshold: int, window_s: int, shadow: bool = False) -> SignalRule:
    return SignalRule(action="challenge", challenge="captcha", threshold=threshold, window_s=window_s, shadow=shadow)


class Rules(BaseModel):
    """The complete rule set one decision is judged by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_blocklist: Rule
    user_blocklist: Rule
    ip_blocklist: Rule
    device_velocity: WindowLimitRule
    device_daily_cap: WindowLimitRule
    user_daily_cap: WindowLimitRule
    device_many_users: WindowRule
    fan_out: FanOutRule
    sensitive_copy: TextRule
    low_success_rate: SuccessRateRule
    geofence: GeofenceRule
    impossible_travel: TravelRule
    challenge_failures: ChallengeFailureRule
    graph_anomaly: GraphRule
    external_channel: ExternalChannelRule
    # Real-time signals (issue 10): on by default, so policy files written
    # before them get them too.
    device_rotation: SignalRule = Field(default_factory=lambda: _signal(5, 30 * 86_400))
    lockstep: SignalRule = Field(default_factory=lambda: _signal(3, 30 * 86_400))
    sink_feeder: SignalRule = Field(default_factory=lambda: _signal(2, 30 * 86_400))
    dead_recipients: SignalRule = Field(default_factory=lambda: _signal(3, 30 * 86_400))
    coupon_repeat: SignalRule = Field(default_factory=lambda: _signal(4, 3 * 86_400))
    # A share naming a sink (or by a fresh account that fed one): judged from
    # the consumer's board in the worker's memory, with the stateless rules.
    sink_recipient: SignalRule = Field(default_factory=lambda: _signal(3, 30 * 86_400))
    # A fresh account that shared in a burst of fresh accounts on one coupon
    # (a lockstep group's first burst), from the same board.
    fresh_burst: SignalRule = Field(default_factory=lambda: _signal(5, 30 * 86_400))
    # A share naming a ring sink, or by a member of a ring's block (sharers
    # feeding the same heavy-claiming recipients), from the same board.
    ring_block: SignalRule = Field(default_factory=lambda: _signal(3, 30 * 86_400))
    # A share from a device, or by an account, of a pool of devices that
    # accounts rotate over (two or more shared), from the same board.
    device_pool: SignalRule = Field(default_factory=lambda: _signal(6, 30 * 86_400))


    @model_validator(mode="after")
    def _signal_thresholds_not_below_floors(self) -> Rules:
        for name, floor in FLOORS.items():
            if getattr(self, name).threshold < floor:
                raise ValueError(f"{name}.threshold: must be at least {floor}, the smallest value the signal "
                                 "consumer publishes")
        return self


class Review(BaseModel):
    """When a device enters the analysts' review queue."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Refusal points (a block 2, a challenge 1) that queue a device.
    min_points: int = Field(3, ge=1, le=1_000_000)
    # A batch anomaly score from which the device is queued at write-back.
    anomaly_threshold: float = Field(0.8, gt=0, le=1)


class KolTier(BaseModel):
    """A reward bonus for users who reach many people (WeChat's coupon-sharing guide: 500+ followers, 5 % extra)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=32)
    # Distinct recipients reached in the share graph, more than this.
    min_recipients: int = Field(ge=0)
    bonus_pct: float = Field(ge=0, le=100)


class Rewards(BaseModel):
    """Share-reward checks (``POST /v1/rewards/check``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # WeChat's coupon-sharing guide: at most 500 yuan of rewards per user in any 24 h.
    daily_cap_cents: int = Field(50_000, ge=1)
    window_s: int = Field(86_400, ge=60, le=MAX_WINDOW_S)
    # Users (or devices) at or above this batch anomaly score are challenged.
    anomaly_threshold: float = Field(0.8, gt=0, le=1)
    kol_tiers: list[KolTier] = Field(default_factory=list)


class PolicyFile(BaseModel):
    """The file as written: defaults plus raw per-merchant overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("default", min_length=1, max_length=64)
    rules: Rules
    review: Review = Field(default_factory=Review)
    rewards: Rewards = Field(default_factory=Rewards)
    # Extra presets, or overrides of the shipped ones (config/presets.yaml).
    presets: dict[str, dict[str, dict[str, object]]] = Field(default_factory=dict)
    # Per merchant: an optional ``preset`` name, then rule overrides.
    merchants: dict[str, dict[str, object]] = Field(default_factory=dict)
