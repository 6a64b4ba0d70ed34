"""Matching share copy against sensitive terms despite disguise.

Abusers write ``转 发 得·现金`` or full-width ``ＶＩＰ`` to slip past a
plain substring match, so both the copy and the terms are normalised the same
way before matching: Unicode NFKC (full-width and compatibility forms to their
plain form), case folding, Traditional Chinese characters to their Simplified
form (``轉發得現金``, or one character of it, is ``转发得现金``: the customer's
terms are Simplified), and removal of everything that is not a letter, digit or
mark (spaces, punctuation, symbols, zero-width and control characters).

The Traditional-to-Simplified mapping is OpenCC's (``t2s``), applied one
character at a time: a term is matched letter by letter, so a phrase-level
choice between two Simplified readings would not help, and a character OpenCC
maps to several keeps its own form.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import opencc

# Unicode categories dropped by normalisation: separators (Z*), punctuation
# (P*), symbols (S*) and other (C*: controls, format such as zero-width
# joiners, unassigned).
_DROPPED = ("Z", "P", "S", "C")

# The characters "%" and "+" carry meaning in terms like "100%核保"; they are
# symbols, so they are kept rather than dropped.
_KEPT_SYMBOLS = frozenset("%+")


class _Dropped(dict[int, int | None]):
    """A :meth:`str.translate` table that deletes the dropped characters and
    keeps the others, filled in as characters are first met (at most
    :data:`_TABLE_SIZE` remembered): the whole text is then filtered in C
    rather than character by character in Python."""

    def __missing__(self, code: int) -> int | None:
        ch = chr(code)
        kept = code if ch in _KEPT_SYMBOLS or unicodedata.category(ch)[0] not in _DROPPED else None
        if kept is not None and code >= _HAN[0][0]:
            kept = _simplified().get(code, code)
        if len(self) < _TABLE_SIZE:
            self[code] = kept
        return kept


_TABLE_SIZE = 16384
_TABLE = _Dropped()
# The Han blocks of the Basic Multilingual Plane (Extension A, the unified
# ideographs, the compatibility ideographs), where OpenCC's single-character
# mappings are.
_HAN = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


@functools.cache
def _simplified() -> dict[int, int]:
    """Every Han character OpenCC's ``t2s`` maps to another single character.

    Built once, at first use (its dictionaries are files of the installed
    package: nothing is read at import), in one call of about 20 ms for the
    28 096 characters, each on a line of its own so that no phrase forms
    across them. A character met later costs a dict look-up, so text of rare
    characters cannot make every request call OpenCC again.
    """
    codes = [code for start, end in _HAN for code in range(start, end)]
    converted = opencc.OpenCC("t2s").convert("\n".join(map(chr, codes))).split("\n")
    if len(converted) != len(codes):  # (a newline inside a mapping: keep every character as it is)
        return {}
    return {code: ord(out) for code, out in zip(codes, converted, strict=True) if len(out) == 1 and ord(out) != code}


def normalise(text: str) -> str:
    """Normalise ``text`` for matching.

    >>> normalise("转 发 得·现金")
    '转发得现金'
    >>> normalise("ＦＲＥＥ Gift!")
    'freegift'
    >>> normalise("轉發·抽獎")
    '转发抽奖'
    """
    return unicodedata.normalize("NFKC", text).casefold().translate(_TABLE)


class TermMatcher:
    """Finds which of a fixed set of terms occurs in normalised text.

    Parameters
    ----------
    terms : iterable of str
        The sensitive terms, as written in the policy.

    Examples
    --------
    >>> TermMatcher(["转发得现金", "最高优惠"]).find("快来 转-发-得 现 金!")
    '转发得现金'
    """

    def __init__(self, terms: Iterable[str]) -> None:
        self._by_normal: dict[str, str] = {}
        for term in terms:
            self._by_normal.setdefault(normalise(term), term)
        # Longest first so the reported term is the most specific one.
        alternatives = sorted(self._by_normal, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(t) for t in alternatives)) if alternatives else None

    def find(self, text: str | None) -> str | None:
        """Return the first policy term found in ``text``, or None."""
        if not text or self._pattern is None:
            return None
        match = self._pattern.search(normalise(text))
        return self._by_normal[match.group(0)] if match else None
