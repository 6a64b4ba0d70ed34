"""``cases.jsonl``: the cases of a run next to ``scores.jsonl``, one case per line, written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from graphs.events.jsonl import write_jsonl

__all__ = ["read_cases", "write_cases"]


def write_cases(cases: Iterable[Mapping[str, Any]], directory: str | os.PathLike[str]) -> str:
    """Write ``DIR/cases.jsonl`` (temporary file, then rename); return its path.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     read_cases(write_cases([{"kind": "farm", "members": []}], d))
    [{'kind': 'farm', 'members': []}]
    """
    return write_jsonl(cases, directory, "cases.jsonl")


def read_cases(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The cases of a ``cases.jsonl`` file, in file order (worst first)."""
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]
