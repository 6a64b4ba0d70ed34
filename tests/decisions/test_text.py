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
