"""Reading share events: the exported decision log to columnar arrays.

``table`` holds :class:`EventTable` and the decision codes; ``jsonl`` reads
JSON lines (a file or dicts) into it.
"""

from __future__ import annotations

__all__ = ["jsonl", "table"]
