"""Redis key names.

Every key of one device carries the hash tag ``{d:<device>}`` so that, on
Redis Cluster, they share a slot and one script can touch them all. Ids are
percent-encoded so that no id can close a hash tag, add a separator or reach
another entity's key: ``a}:log`` becomes ``a%7D%3Alog``.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple
from urllib.parse import quote

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


def ip_tag(ip: str) -> str:
    return f"{PREFIX}:{{ip:{encode_id(ip)}}}"


EVENTS = f"{PREFIX}:events"
REVIEW_QUEUE = f"{PREFIX}:review:queue"
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
    pointer: str
    events: str = EVENTS
    graph: str = NO_GRAPH
    allowlist: str = ""
    flags: str = ""
    queue: str = REVIEW_QUEUE
    review: str = ""
    # Real-time signals (issue 10): the device's `:sig` hash ("" none).
    signals: str = ""


def decision_keys(event_id: str, device_id: str, user_id: str, ip: str | None,
                  decision_id: str = "", graph: str = NO_GRAPH) -> DecisionKeys:
    """The keys for one decision.

    The decision record lives in the device's slot, under its event id, so
    the replay check is part of the same atomic script; a digest keeps its
    name short. The pointer from the decision id to it is written only when
    the decision is new. ``graph``: the key of the current graph scores.
    """
    dev = device_tag(device_id)
    usr = user_tag(user_id)
    event = hashlib.blake2b(event_id.encode(), digest_size=12).hexdigest()
    return DecisionKeys(
        event=f"{dev}:ev:{event}",
        device_state=f"{dev}:state",
        device_ban=f"{dev}:ban",
        user_log=f"{usr}:log",
        user_ban=f"{usr}:ban",
        # No ip: a name no valid ip can encode to, so it never exists.
        ip_ban=f"{ip_tag(ip)}:ban" if ip else f"{PREFIX}:{{ip:}}:ban",
        device_outcomes=f"{dev}:outcomes",
        device_geo=f"{dev}:geo",
        pointer=pointer_key(decision_id),
        graph=graph,
        allowlist=f"{dev}:allow",
        flags=f"{dev}:flags",
        review=f"{dev}:review",
        signals=f"{dev}:sig",
    )


def pointer_key(decision_id: str) -> str:
    """Where a decision id points to its record (for outcomes and challenges)."""
    return f"{PREFIX}:{{dec:{encode_id(decision_id)}}}"


def device_prefix(record_key: str) -> str:
    """``risk:{d:<device>}`` of a decision record's key."""
    return record_key[: record_key.index("}:") + 1]


def signals_key(device_id: str) -> str:
    """The device's hash of real-time signal values (``riskservice.signals``).

    >>> signals_key("dev-1")
    'risk:{d:dev-1}:sig'
    """
    return f"{device_tag(device_id)}:sig"


def ban_key(kind: str, entity_id: str) -> str:
    """The ban hash of a device, user or ip."""
    tags = {"device": device_tag, "user": user_tag, "ip": ip_tag}
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


def cluster_decision_id(device_state_key: str, decision_id: str) -> str:
    """A decision id that names its device's slot (``<tag>-<id>``), so the
    pointer from it to the record can live in that slot.

    >>> cluster_decision_id("risk:{d:dev-1}:state", "abc").endswith("-abc")
    True
    """
    tag = shard_tag(device_state_key)
    return decision_id if decision_id.startswith(tag + "-") else f"{tag}-{decision_id}"


def cluster_pointer_key(decision_id: str) -> str:
    """Where a cluster decision id points to its record: in the slot its tag names."""
    tag = decision_id.split("-", 1)[0]
    return f"risk:{{{tag}}}:dec:{decision_id}"


def device_slot_keys(keys: DecisionKeys, decision_id: str, device_id: str = "", version: int | None = None
                     ) -> DecisionKeys:
    """The decision script's keys with every key in the device's slot: the
    user's keys are judged by reserve.lua and never touched here, the event
    stream and review queue are the shards of the device's slot, the graph
    scores the device's own key of the current version, the pointer is named
    by the cluster decision id."""
    device = device_prefix(keys.event)
    unused = f"{device}:unused"  # never read or written when the user side is judged elsewhere
    graph = graph_node_key("device", device_id, version) if version is not None else unused
    return keys._replace(user_log=unused, user_ban=unused, ip_ban=unused, graph=graph,
                         events=events_shard(keys.device_state),
                         queue=shard_of(REVIEW_QUEUE, keys.device_state),
                         pointer=cluster_pointer_key(decision_id))


def pending_key(user_log: str) -> str:
    """The user's reserved places (``reserve.lua``) beside its log: ``risk:{u:<user>}:pend``."""
    return user_log.removesuffix(":log") + ":pend"


def once_key(user_log: str, event: str) -> str:
    """Set by ``settle.lua`` when it counts a share for the user after the fact
    (a passed challenge, an outage share), so a retried write counts it once:
    ``risk:{u:<user>}:once:<event>``, 10 minutes."""
    return user_log.removesuffix(":log") + f":once:{event}"
