"""Matching share copy against sensitive terms despite disguise.

Abusers write ``转 发 得·现金`` or full-width ``ＶＩＰ`` to slip past a
plain substring match, so both the copy and the terms are normalised the same
way before matching: Unicode NFKC (full-width and compatibility forms to their
plain form), case folding, Traditional Chinese characters to their Simplified
form (``轉發得現金``, or one character of it, is ``转发得现金``: the customer's
terms are Simplified), and removal of everything that is not a letter, digit or
spacing mark (spaces, punctuation, symbols, zero-width and control
characters, variation selectors and other invisible or decorating marks).

Han characters are folded one at a time into one Simplified form, so that
every spelling of a term a reader takes for the same word matches it:

- Traditional to Simplified, by OpenCC's ``t2s`` (``轉`` is ``转``);
- regional and Japanese forms that no mainland (GB 2312) text uses, through
  OpenCC's Taiwan, Hong Kong and Japanese (Shinjitai) variant tables, then
  ``t2s`` (Japanese ``転発`` is ``转发``, Hong Kong ``衞`` is ``卫``);
- a few Simplified characters written for one another in share copy
  (:data:`_SIMPLIFIED_VARIANTS`: Taiwan's ``轉帳`` becomes ``转帐`` by ``t2s``
  while the mainland writes ``转账``);
- radicals that look like whole characters (``⻋`` for ``车``,
  :data:`_RADICALS`): Unicode gives most of them no decomposition, so NFKC
  keeps them, and as symbols they would otherwise be dropped, turning
  ``⻋`` into nothing rather than ``车``.

One character at a time: a term is matched letter by letter, so a
phrase-level choice between two Simplified readings would not help, and a
character OpenCC maps to several keeps its own form. Folding two characters
together only ever adds matches; both the copy and the terms are folded the
same way, so a term still matches its own spelling.
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
# Marks that draw nothing of their own or only decorate the character before
# them: nonspacing (Mn: variation selectors such as U+FE0F, the combining
# grapheme joiner, Mongolian and Khmer invisible signs, accents and overlays
# NFKC could not compose) and enclosing (Me: a circle drawn round 转). Between
# two Han characters each is invisible or cosmetic, so a term must match
# through them. (Spacing marks, Mc, are visible vowel signs: kept.)
_DROPPED_MARKS = ("Mn", "Me")
# Letters that are blank: the Hangul fillers, default-ignorable in Unicode
# yet of category Lo, which the categories above would keep.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")

# The characters "%" and "+" carry meaning in terms like "100%核保"; they are
# symbols, so they are kept rather than dropped.
_KEPT_SYMBOLS = frozenset("%+")


class _Dropped(dict[int, int | None]):
    """A :meth:`str.translate` table that deletes the dropped characters and
    keeps the others, filled in as characters are first met (at most
    :data:`_TABLE_SIZE` remembered): the whole text is then filtered in C
    rather than character by character in Python."""

    def __missing__(self, code: int) -> int | None:
        ch = _RADICALS.get(chr(code), chr(code))
        category = unicodedata.category(ch)
        kept = ord(ch) if ch in _KEPT_SYMBOLS or (
            category[0] not in _DROPPED and category not in _DROPPED_MARKS and ch not in _BLANK_LETTERS) else None
        if kept is not None and kept >= _HAN[0][0]:
            kept = _simplified().get(kept, kept)
        if len(self) < _TABLE_SIZE:
            self[code] = kept
        return kept


_TABLE_SIZE = 16384
_TABLE = _Dropped()
# The Han blocks of the Basic Multilingual Plane (Extension A, the unified
# ideographs, the compatibility ideographs), where OpenCC's single-character
# mappings are.
_HAN = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


# Simplified characters that share copy writes for one another, folded to the
# mainland form: ``帐`` (Taiwan's ``帳`` for an account: ``转帐``/``转账``),
# ``著`` (Taiwan's ``著`` for ``着``), ``瞭`` (``瞭解``/``了解``), ``乾``
# (``乾淨`` folds to ``乾净``, the mainland writes ``干净``). OpenCC keeps
# each, as each is also a word of its own.
_SIMPLIFIED_VARIANTS = {"帐": "账", "著": "着", "瞭": "了", "乾": "干"}

# Radicals (CJK Radicals Supplement) shaped like whole characters, mapped to
# them. The Kangxi radicals (U+2F00...) need no entry: NFKC maps them already.
_RADICALS = {
    "⺠": "民", "⻄": "西", "⻅": "见", "⻆": "角", "⻈": "讠", "⻉": "贝",
    "⻋": "车", "⻐": "钅", "⻑": "长", "⻓": "长", "⻔": "门", "⻗": "雨",
    "⻘": "青", "⻙": "韦", "⻚": "页", "⻛": "风", "⻜": "飞", "⻝": "食",
    "⻠": "饣", "⻡": "首", "⻢": "马", "⻣": "骨", "⻤": "鬼", "⻥": "鱼",
    "⻦": "鸟", "⻧": "卤", "⻨": "麦", "⻩": "黄", "⻪": "黾", "⻬": "齐",
    "⻮": "齿", "⻰": "龙", "⻳": "龟", "⺩": "王", "⺝": "月", "⺜": "日",
    "⺧": "牛", "⺶": "羊", "⺬": "示", "⺰": "纟", "⻁": "虎", "⻊": "足",
}


def _mainland(ch: str) -> bool:
    """Whether ``ch`` is one of GB 2312's characters (mainland text's set)."""
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def _simplified() -> dict[int, int]:
    """Every Han character folded to another single character (see the module).

    Built once, at first use (its dictionaries are files of the installed
    package: nothing is read at import), in one ``t2s`` call of about 20 ms
    for the 28 096 characters, each on a line of its own so that no phrase
    forms across them, and one call per variant table (about 5 ms each, and
    ``t2s`` on its output). A character met later costs a dict look-up, so
    text of rare characters cannot make every request call OpenCC again.
    """
    codes = [code for start, end in _HAN for code in range(start, end)]
    text = "\n".join(map(chr, codes))
    t2s = opencc.OpenCC("t2s")
    simplified = t2s.convert(text).split("\n")
    if len(simplified) != len(codes):  # (a newline inside a mapping: keep every character as it is)
        return {}
    folds = {code: out for code, out in zip(codes, simplified, strict=True) if len(out) == 1 and ord(out) != code}
    # Regional and Japanese forms: only characters mainland text never uses,
    # and only to one it does, so no character of a Simplified term moves.
    for config in ("tw2t", "hk2t", "jp2t"):
        converted = t2s.convert(opencc.OpenCC(config).convert(text)).split("\n")
        if len(converted) != len(codes):
            continue
        for code, out in zip(codes, converted, strict=True):
            if (code not in folds and len(out) == 1 and ord(out) != code
                    and not _mainland(chr(code)) and _mainland(out)):
                folds[code] = out
    for variant, mainland in _SIMPLIFIED_VARIANTS.items():
        folds[ord(variant)] = mainland
    for code, out in folds.items():  # (帳 -> 帐 -> 账: one step, the last form)
        folds[code] = _SIMPLIFIED_VARIANTS.get(out, out)
    return {code: ord(out) for code, out in folds.items()}


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
