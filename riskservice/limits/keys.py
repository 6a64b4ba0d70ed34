"""Redis key names.

Every key of one device carries the hash tag ``{d:<device>}`` so that, on
Redis Cluster, they share a slot and one script can touch them all. Ids are
percent-encoded so that no id can close a hash tag, add a separator or reach
another entity's key: ``a}:log`` becomes ``a%7D%3Alog``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
from typing import NamedTuple
from urllib.parse import quote, unquote

from riskservice.limits.slots import key_slot, slot_tag

PREFIX = "risk"
_SAFE = re.compile(r"[A-Za-z0-9\-_.@~]*")


def encode_id(value: str) -> str:
    """Encode an id for use inside a key name (injective, no ``{}:`` left).

    >>> encode_id("dev-1")
    'dev-1'
    >>> encode_id("a}:{b")
    'a%7D%3A%7Bb'
    """
    # Most ids need no escaping; checking that first is several times faster.
    if _SAFE.fullmatch(value):
        return value
    return quote(value, safe="-_.@~")


def device_tag(device_id: str) -> str:
    return f"{PREFIX}:{{d:{encode_id(device_id)}}}"


def user_tag(user_id: str) -> str:
    return f"{PREFIX}:{{u:{encode_id(user_id)}}}"


# An IPv4 address already in the form ipaddress would write it (no leading
# zeros, each part at most 255): most requests carry one, and ipaddress
# parses in Python, which costs more than the rest of the validation.
_CANONICAL_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                             r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def canonical_ip(value: str) -> str:
    """The one spelling of an address that decisions and bans both use.

    IPv6 in its compressed lower-case form, and an IPv4-mapped IPv6 address
    (``::ffff:198.51.100.7``) as the IPv4 address it carries: a ban written
    in any spelling of an address must block every spelling a client sends.

    Raises
    ------
    ValueError
        When ``value`` is no IPv4 or IPv6 address.
    """
    if _CANONICAL_IPV4.fullmatch(value):
        return value
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(mapped or address)


def ip_tag(ip: str) -> str:
    return f"{PREFIX}:{{ip:{encode_id(ip)}}}"


EVENTS = f"{PREFIX}:events"
REVIEW_QUEUE = f"{PREFIX}:review:queue"
# Analysts' timed bans by their end (device -> until ms), for the review lists
# to catch up once one has ended (riskservice/review/ban_ends.py).
REVIEW_BAN_ENDS = f"{PREFIX}:review:ban_ends"
# The graph-score key of a decision when no scores were written yet.
NO_GRAPH = f"{PREFIX}:graph:none"


class DecisionKeys(NamedTuple):
    """The keys one decision script reads and writes, in the script's order."""

    event: str
    device_state: str
    device_ban: str
    user_log: str
    user_ban: str
    ip_ban: str
    device_outcomes: str
    device_geo: str
    events: str = EVENTS
    graph: str = NO_GRAPH
    allowlist: str = ""
    flags: str = ""
    queue: str = REVIEW_QUEUE
    review: str = ""
    # Real-time signals (issue 10): the device's `:sig` hash ("" none).
    signals: str = ""


def decision_keys(event_id: str, device_id: str, user_id: str, ip: str | None, *,
                  graph: str = NO_GRAPH) -> DecisionKeys:
    """The keys for one decision.

    The decision record lives in the device's slot, under a digest of its
    event id (:func:`event_digest`), so the replay check is part of the same
    atomic script. ``graph``: the key of the current graph scores.
    """
    dev = device_tag(device_id)
    usr = user_tag(user_id)
    return DecisionKeys(
        event=f"{dev}:ev:{event_digest(event_id)}",
        device_state=f"{dev}:state",
        device_ban=f"{dev}:ban",
        user_log=user_log_key(user_id),
        user_ban=f"{usr}:ban",
        # No ip: a name no valid ip can encode to, so it never exists.
        ip_ban=f"{ip_tag(ip)}:ban" if ip else f"{PREFIX}:{{ip:}}:ban",
        device_outcomes=f"{dev}:outcomes",
        device_geo=f"{dev}:geo",
        graph=graph,
        allowlist=f"{dev}:allow",
        flags=f"{dev}:flags",
        review=f"{dev}:review",
        signals=f"{dev}:sig",
    )


def event_digest(event_id: str) -> str:
    """The 24 hex digits that name an event's record (short key names hash faster).

    >>> event_digest("e1")
    '0a1fdf904e6fd7341e5207e9'
    """
    return hashlib.blake2b(event_id.encode(), digest_size=12).hexdigest()


# A decision id names its record, so that outcomes and challenges find it
# with no key of their own. In unpadded base64url (URL safe, as the id goes
# into /v1/challenges/<id>): 12 bytes drawn at random and the record's
# 12-byte event digest, 32 characters, then the device id. The record keeps
# the id, so one cannot be made up from a known event and device (96 random
# bits). A 128-character device id of 4-byte characters makes the longest:
# 32 + 683 characters.
_HEAD = 32  # characters: the random bytes and the digest
_NAMED = re.compile(r"[A-Za-z0-9_-]{33,}")
MAX_DECISION_ID_LENGTH = _HEAD + 683
_LEGACY, _LEGACY_CLUSTER = re.compile(r"[0-9a-f]{32}"), re.compile(r"s[0-9]+-[0-9a-f]{32}")
# The longest id of the previous release: a slot tag (up to "s16383-") and 32 hex digits.
_LOGGED_WHOLE = 39


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_decision_id(device_id: str, record_key: str) -> str:
    """A fresh id for the decision whose record is ``record_key`` (:func:`decision_keys`'s ``event``).

    >>> keys = decision_keys("e1", "dev-1", "u-1", None)
    >>> record_key(new_decision_id("dev-1", keys.event)) == keys.event
    True
    """
    return _b64(os.urandom(12) + bytes.fromhex(record_key[-24:])) + _b64(device_id.encode())


def record_key(decision_id: str) -> str | None:
    """The key of the record a decision id names; None when it names none
    (the record itself says whether the id is its own)."""
    if (len(decision_id) > MAX_DECISION_ID_LENGTH or not _NAMED.fullmatch(decision_id)
            or _LEGACY_CLUSTER.fullmatch(decision_id)):
        return None
    device = decision_id[_HEAD:]
    try:
        head = base64.urlsafe_b64decode(decision_id[:_HEAD])
        device_id = base64.urlsafe_b64decode(device + "=" * (-len(device) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return f"{device_tag(device_id)}:ev:{head[12:].hex()}"


def logged_id(decision_id: str) -> str:
    """The id a decision's share events carry: the first 32 characters of an
    id longer than any of the previous release (39), enough to join a
    decision's events (96 random bits) at no cost per event for its device id,
    which the decision's event holds in its request; older ids whole.

    >>> logged_id("FBwlNN7LOJdUdg_1Ch_fkE5v1zQeUgfpZGV2LTEyMw")
    'FBwlNN7LOJdUdg_1Ch_fkE5v1zQeUgfp'
    """
    return decision_id[:_HEAD] if len(decision_id) > _LOGGED_WHOLE else decision_id


def logged_decision_id(logged: str, device_id: str) -> str:
    """The decision id of a share event's ``id`` (:func:`logged_id`), given the device in its request.

    >>> logged_decision_id("FBwlNN7LOJdUdg_1Ch_fkE5v1zQeUgfp", "dev-123")
    'FBwlNN7LOJdUdg_1Ch_fkE5v1zQeUgfpZGV2LTEyMw'
    >>> logged_decision_id("84d49edffbee84011dad7d99b2c33ef7", "dev-123")  # the previous release's
    '84d49edffbee84011dad7d99b2c33ef7'
    """
    if len(logged) == _HEAD and not _LEGACY.fullmatch(logged):
        return logged + _b64(device_id.encode())
    return logged


def legacy_pointer_key(decision_id: str) -> str | None:
    """Where a decision id of the previous release pointed to its record: a
    key of its own, written beside each record. Read until the last of them
    expires (``RISK_DECISION_TTL_S`` after an upgrade; then remove this). Ids
    were 32 hex digits on one Redis, ``<slot tag>-<32 hex digits>`` on a
    cluster, whose pointer lived in the slot the tag names.

    >>> legacy_pointer_key("84d49edffbee84011dad7d99b2c33ef7")
    'risk:{dec:84d49edffbee84011dad7d99b2c33ef7}'
    >>> legacy_pointer_key("s7920-84d49edffbee84011dad7d99b2c33ef7")
    'risk:{s7920}:dec:s7920-84d49edffbee84011dad7d99b2c33ef7'
    """
    if _LEGACY.fullmatch(decision_id):
        return f"{PREFIX}:{{dec:{decision_id}}}"
    if _LEGACY_CLUSTER.fullmatch(decision_id):
        return f"{PREFIX}:{{{decision_id.split('-', 1)[0]}}}:dec:{decision_id}"
    return None


def user_log_key(user_id: str) -> str:
    """The user's log of counted shares: ``risk:{u:<user>}:log``."""
    return f"{user_tag(user_id)}:log"


def device_prefix(record_key: str) -> str:
    """``risk:{d:<device>}`` of a decision record's key."""
    return record_key[: record_key.index("}:") + 1]


def record_device(record_key: str) -> str:
    """The device id of a decision record's key (the inverse of :func:`encode_id`).

    >>> record_device(decision_keys("e", "a}:{b", "u", None).event)
    'a}:{b'
    """
    return unquote(device_prefix(record_key)[len(PREFIX) + 4:-1])


class ChallengeKeys(NamedTuple):
    """The keys challenge.lua reads and writes, in the script's order: the
    record's device slot, but for the user's log (on Redis Cluster a key of
    the device's slot that is never written: the caller records the share in
    the user's slot itself)."""

    record: str
    device_state: str
    user_log: str
    device_failures: str
    device_ban: str
    events: str
    device_geo: str


def challenge_keys(record_key: str, user_log: str, events: str) -> ChallengeKeys:
    """challenge.lua's keys for the decision record ``record_key``.

    >>> challenge_keys("risk:{d:d1}:ev:x", "risk:{u:u1}:log", "risk:events").device_geo
    'risk:{d:d1}:geo'
    """
    prefix = device_prefix(record_key)
    return ChallengeKeys(record_key, f"{prefix}:state", user_log, f"{prefix}:failures", f"{prefix}:ban", events,
                         f"{prefix}:geo")


def signals_key(device_id: str) -> str:
    """The device's hash of real-time signal values (``riskservice.signals``).

    >>> signals_key("dev-1")
    'risk:{d:dev-1}:sig'
    """
    return f"{device_tag(device_id)}:sig"


def ban_key(kind: str, entity_id: str) -> str:
    """The ban hash of a device, user or ip (an ip in its one spelling, :func:`canonical_ip`,
    the decisions' own: a ban of ``2001:DB8::1`` blocks ``2001:db8::1``)."""
    if kind == "ip":
        return f"{ip_tag(canonical_ip(entity_id))}:ban"
    tags = {"device": device_tag, "user": user_tag}
    return f"{tags[kind](entity_id)}:ban"


# Cases (groups of flagged users and devices): every case key carries the one
# hash tag ``{cases}``, so on Redis Cluster they share a slot and a case
# listing or a write-back of cases is one node's work.
CASES = f"{PREFIX}:{{cases}}"


def case_key(part: str, version: int | None = None) -> str:
    """A case key: per write-back version (``cards``, ``detail``, ``order``) or kept across versions
    (``state``, ``resolved``, ``sequence``).

    >>> case_key("cards", 7), case_key("state")
    ('risk:{cases}:v7:cards', 'risk:{cases}:state')
    """
    return f"{CASES}:{part}" if version is None else f"{CASES}:v{version}:{part}"


def user_review_key(user_id: str) -> str:
    """An analyst's verdict on a user (status, label), written by case actions."""
    return f"{user_tag(user_id)}:review"


# Redis Cluster ---------------------------------------------------------------
# On a cluster one script or transaction may only touch keys of one slot. Keys
# that many slots write (the share-event stream, the review queue and status
# lists) become one shard per slot, named with a hash tag that lands in that
# slot (limits/slots.py), and are merged on read. Keys written together but
# by no decision (the audit trail, the graph-score versions) share one tag.
# A single Redis keeps the names above.

AUDIT_TAG_PREFIX = f"{PREFIX}:{{audit}}"
GRAPH_TAG_PREFIX = f"{PREFIX}:{{graph}}"


def slot_shard(base: str, slot: int) -> str:
    """The shard of ``base`` (e.g. :data:`EVENTS`) that the keys of ``slot`` write.

    >>> slot_shard(EVENTS, 0)
    'risk:events:{s7920}'
    """
    return f"{base}:{{{slot_tag(slot)}}}"


def shard_of(base: str, key: str) -> str:
    """The shard of ``base`` in ``key``'s slot."""
    return slot_shard(base, key_slot(key))


def device_shard(base: str, device_id: str) -> str:
    """The shard of ``base`` that a device's scripts write (its own slot)."""
    return shard_of(base, device_tag(device_id))


def graph_node_key(kind: str, node: str, version: int) -> str:
    """One node's graph scores of one version, in the node's slot (Redis Cluster):
    a hash with the decision path's ``d:<id>`` / ``u:<id>`` field (what the
    scripts read), ``row`` and ``adj``."""
    tag = device_tag(node) if kind == "device" else user_tag(node)
    return f"{tag}:gs:{version}"


def shard_tag(key: str) -> str:
    """The hash tag of the per-slot shards (events, review queue) that ``key``'s slot writes."""
    return slot_tag(key_slot(key))


def events_shard(key: str) -> str:
    """The share-event stream shard of ``key``'s slot."""
    return shard_of(EVENTS, key)


def device_slot_keys(keys: DecisionKeys, device_id: str = "", version: int | None = None) -> DecisionKeys:
    """The decision script's keys with every key in the device's slot: the
    user's keys are judged by reserve.lua and never touched here, the event
    stream and review queue are the shards of the device's slot, the graph
    scores the device's own key of the current version."""
    device = device_prefix(keys.event)
    unused = f"{device}:unused"  # never read or written when the user side is judged elsewhere
    graph = graph_node_key("device", device_id, version) if version is not None else unused
    return keys._replace(user_log=unused, user_ban=unused, ip_ban=unused, graph=graph,
                         events=events_shard(keys.device_state),
                         queue=shard_of(REVIEW_QUEUE, keys.device_state))


def pending_key(user_log: str) -> str:
    """The user's reserved places (``reserve.lua``) beside its log: ``risk:{u:<user>}:pend``."""
    return user_log.removesuffix(":log") + ":pend"


def once_key(user_log: str, event: str) -> str:
    """Set by ``settle.lua`` when it counts a share for the user after the fact
    (a passed challenge, an outage share), so a retried write counts it once:
    ``risk:{u:<user>}:once:<event>``, 10 minutes."""
    return user_log.removesuffix(":log") + f":once:{event}"
