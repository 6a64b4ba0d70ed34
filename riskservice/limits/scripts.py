"""The Lua scripts of ``lua/``, each built at load time from the pieces of
``common.lua`` it uses.

Redis 6.2 runs a script's whole text on every ``EVALSHA``: every function and
table of a prelude is built again by every call, used or not. ``common.lua``
is therefore cut into pieces (each begins with a ``-- @piece`` line), and a
script gets a piece only when its text, or a piece it already has, names
something the piece defines (``local function f`` or ``local A, B =``).
The pieces keep their order in ``common.lua``, so a piece always follows
those it uses.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from importlib import resources

__all__ = ["CHALLENGE", "DECIDE", "OUTCOME", "RECONCILE", "REWARD", "Script", "assemble", "pieces"]

_PIECE = re.compile(r"^-- @piece\b.*$", re.M)
_DEFINES = re.compile(r"^local (?:function (\w+)|([\w, ]+?)\s*=)", re.M)
_COMMENT = re.compile(r"--[^\n]*")
_NAME = re.compile(r"[A-Za-z_]\w*")


def _lua(name: str) -> str:
    return resources.files("riskservice.limits").joinpath("lua", f"{name}.lua").read_text()


def pieces(common: str) -> list[tuple[str, set[str]]]:
    """The pieces of ``common`` in order, each with the names it defines
    (the text before the first piece is comments only, and left out)."""
    starts = [m.start() for m in _PIECE.finditer(common)] + [len(common)]
    out = []
    for begin, end in itertools.pairwise(starts):
        text = common[begin:end]
        defined: set[str] = set()
        for function, names in _DEFINES.findall(text):
            defined |= {function} if function else {n.strip() for n in names.split(",")}
        out.append((text, defined))
    return out


def _names(text: str) -> set[str]:
    return set(_NAME.findall(_COMMENT.sub("", text)))


def assemble(script: str, common: str) -> str:
    """``script`` preceded by the pieces of ``common`` it needs.

    >>> common = "-- @piece\\nlocal A = 1\\n-- @piece\\nlocal function f() return A end\\n-- @piece\\nlocal B = 2\\n"
    >>> assemble("return f()", common)
    '-- @piece\\nlocal A = 1\\n-- @piece\\nlocal function f() return A end\\n\\nreturn f()'
    """
    parts = pieces(common)
    wanted = _names(script)
    taken = [False] * len(parts)
    grew = True
    while grew:
        grew = False
        for i, (text, defined) in enumerate(parts):
            if not taken[i] and defined & wanted:
                taken[i], grew = True, True
                wanted |= _names(text)
    return "".join(text for (text, _), take in zip(parts, taken, strict=True) if take) + "\n" + script


class Script:
    """A Lua script of ``lua/`` with the pieces of ``common.lua`` it uses, and its SHA1."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = assemble(_lua(name), _lua("common"))
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


DECIDE, OUTCOME, CHALLENGE, REWARD = Script("decide"), Script("outcome"), Script("challenge"), Script("reward")
RECONCILE = Script("reconcile")
