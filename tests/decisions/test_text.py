from __future__ import annotations

import pytest

from riskservice.decisions.text import TermMatcher, normalise

MATCHER = TermMatcher(["转发得现金", "转发抽奖", "集赞送礼", "最高优惠", "100%核保"])


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("转发得现金", "转发得现金"),
        ("转 发 得·现金", "转发得现金"),
        ("转\u3000发\t得\n现\u200b金", "转发得现金"),
        ("【转发】【抽奖】", "转发抽奖"),
        ("集-赞-送-礼", "集赞送礼"),
        ("本店最高优惠!", "最高优惠"),
        ("１００％核保", "100%核保"),
        # Traditional characters, all or some of them (an abuser's spelling)
        ("轉發得現金", "转发得现金"),
        ("转發得現金", "转发得现金"),
        ("转发得現金", "转发得现金"),
        ("轉 發·抽 獎", "转发抽奖"),
        ("本店最高優惠", "最高优惠"),
        ("集讚送禮", "集赞送礼"),
        ("ok", None),
        ("邀请好友同步优惠", None),
        ("", None),
    ],
)
def test_terms_found_through_disguise(text: str, term: str | None) -> None:
    assert MATCHER.find(text) == term


def test_normalise_folds_width_and_case() -> None:
    assert normalise("ＡＢＣ abc") == "abcabc"


def test_longest_term_is_reported() -> None:
    assert TermMatcher(["转发", "转发得现金"]).find("转发得现金") == "转发得现金"


def test_a_term_written_in_traditional_characters_matches_simplified_copy() -> None:
    assert TermMatcher(["轉發得現金"]).find("转发得现金") == "轉發得現金"


def test_simplified_text_and_other_scripts_are_unchanged() -> None:
    assert normalise("转发得现金 ok 123") == "转发得现金ok123"
    assert normalise("日本語のテキスト") == "日本语のテキスト"  # (a Han character in Japanese text folds too)


def test_rare_characters_cost_one_conversion_table_not_a_call_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text of ever-new characters (the cache of met characters full) must not
    call OpenCC per request: its mapping is built once, then looked up."""
    import opencc

    from riskservice.decisions import text

    calls = []
    real = opencc.OpenCC

    class Counting(real):  # type: ignore[misc, valid-type]
        def convert(self, s: str) -> str:
            calls.append(len(s))
            return str(super().convert(s))

    monkeypatch.setattr(opencc, "OpenCC", Counting)
    monkeypatch.setattr(text, "_TABLE", text._Dropped())
    text._simplified.cache_clear()
    try:
        rare = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000))  # more than the cache holds
        normalise(rare)
        built = len(calls)  # (the tables, built once: t2s and each variant table)
        assert 1 <= built <= 8
        for _ in range(3):
            normalise(rare)
        assert normalise("轉發") == "转发"
        assert len(calls) == built
    finally:
        text._simplified.cache_clear()


@pytest.mark.parametrize(
    ("term", "text"),
    [
        # Taiwan writes 轉帳 for the mainland's 转账 (t2s gives 转帐): either spelling catches the other.
        ("轉帳返利", "转账返利"),
        ("转账返利", "轉帳返利"),
        ("转账返利", "转帐返利"),
        # phrase-level t2s (瞭解 -> 了解), done one character at a time
        ("了解详情", "瞭解詳情"),
        # Japanese (Shinjitai) forms
        ("转发得现金", "転発得現金"),
        ("领钱", "領銭"),
        # Hong Kong forms
        ("保卫", "保衞"),
        # radicals shaped like whole characters are mapped, not dropped
        ("转发得民金", "轉發得⺠金"),
        ("免费送车马", "免费送⻋⻢"),
    ],
)
def test_regional_japanese_and_radical_spellings_match(term: str, text: str) -> None:
    assert TermMatcher([term]).find(text) == term


def test_mainland_characters_keep_their_form() -> None:
    """Japanese and regional folds only move characters GB 2312 does not hold:
    a Simplified text's own characters (芸, 概, 台) stay as written."""
    assert normalise("芸概台湾什么") == "芸概台湾什么"


def test_a_radical_alone_does_not_vanish() -> None:
    assert normalise("⻋") == "车"
    assert normalise("⺅") == ""  # (a component-only radical is still a symbol)


@pytest.mark.parametrize("invisible", ["\ufe0f", "\ufe00", "\U000e0100", "\u034f", "\u180b", "\u180e", "\u180f",
                                       "\u17b4", "\u17b5", "\u115f", "\u1160", "\u3164", "\uffa0", "\u00ad",
                                       "\u20dd", "\u0338"])
def test_invisible_or_decorating_characters_between_letters_are_dropped(invisible: str) -> None:
    """Variation selectors, the grapheme joiner, Mongolian and Khmer invisible
    signs, Hangul fillers and enclosing or overlaid marks render as the term
    (or as it, decorated): it must still match (QA13 D1)."""
    assert MATCHER.find(f"转{invisible}发得{invisible}现金") == "转发得现金"
