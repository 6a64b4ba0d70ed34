"""Analysts' labels (fraud or legit) of devices and users, read in bulk.

A device's label is set by the ``label`` action (:mod:`riskservice.review.actions`)
in its review hash, ``risk:{d:<device>}:review``, fields ``label``,
``label_by``, ``label_at`` and ``label_reason``. A user's label lives the same
way in ``risk:{u:<user>}:review``: a case-level label marks every member
device and user alike. A share is labelled by its device's label, else by
its user's: the device is what an analyst reviewed most closely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from riskservice.limits.keys import device_tag, user_tag

__all__ = ["Label", "read_labels", "review_key", "share_label"]

FIELDS = ("label", "label_by", "label_at")
VALUES = ("fraud", "legit")


@dataclass(frozen=True)
class Label:
    """One analyst's verdict on a device or user, and who gave it when."""

    kind: str  # "device" or "user"
    node: str
    label: str  # "fraud" or "legit"
    by: str | None
    at: int | None

    @property
    def fraud(self) -> bool:
        return self.label == "fraud"

    def to_dict(self) -> dict[str, Any]:
        """The label as the export writes it."""
        return {"label": self.label, "by": self.by, "at": self.at}


def review_key(kind: str, node: str) -> str:
    """The review hash holding the label of a device or a user.

    >>> review_key("user", "u:1")
    'risk:{u:u%3A1}:review'
    """
    return f"{(device_tag if kind == 'device' else user_tag)(node)}:review"


def read_labels(client: redis.Redis | redis.RedisCluster, kind: str, nodes: Iterable[str], *,
                batch: int = 1000) -> dict[str, Label]:
    """The labels of ``nodes`` (devices or users, by ``kind``) that have one; one round trip per ``batch``."""
    out: dict[str, Label] = {}
    pending = list(dict.fromkeys(nodes))
    for start in range(0, len(pending), batch):
        chunk = pending[start:start + batch]
        pipe = client.pipeline(transaction=False)
        for node in chunk:
            pipe.hmget(review_key(kind, node), *FIELDS)
        for node, raw in zip(chunk, pipe.execute(), strict=True):
            label, by, at = (None if v is None else cast(bytes, v).decode() for v in raw)
            if label in VALUES:
                out[node] = Label(kind, node, label, by, int(at) if at and at.isdigit() else None)
    return out


def share_label(device: Label | None, user: Label | None) -> Label | None:
    """The label a share carries: its device's, else its user's.

    >>> share_label(None, Label("user", "u", "legit", "k", 1)).kind
    'user'
    """
    return device if device is not None else user
