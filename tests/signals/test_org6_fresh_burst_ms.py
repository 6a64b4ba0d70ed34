"""How long a fresh burst's flag stands (SignalConfig.fresh_burst_ms)."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.catalog import DAY_MS, SignalConfig
from riskservice.signals.engine import SignalEngine
from riskservice.signals.share import Share

T0 = 1_760_000_000_000
DAY3 = 3 * DAY_MS


def burst(engine: SignalEngine) -> None:
    """After two days of history, four fresh accounts share one coupon a minute apart."""
    engine.share(Share("x0", T0, "old", "dev-old", "c0", ("x",), True))
    for i in range(4):
        engine.share(Share(f"x{i + 1}", T0 + DAY3 + i * 60_000, f"m{i}", f"dev-m{i}", "launch", (f"f{i}",), True))


# (flags published at the burst: fresh_burst_next_share, which holds them to
# the member's next share, is tested in test_fresh14_next_share.py)
AT_BURST = replace(SignalConfig(), fresh_burst_next_share=False)


def test_the_flag_stands_a_month_by_default() -> None:
    engine = SignalEngine(AT_BURST)
    burst(engine)
    assert engine.board.get("g", "m0", T0 + DAY3 + 180_000) == (4, T0 + DAY3 + 180_000 + 30 * DAY_MS)


def test_it_can_end_when_the_accounts_are_no_longer_fresh() -> None:
    engine = SignalEngine(replace(AT_BURST, fresh_burst_ms=SignalConfig().fresh_ms))
    burst(engine)
    end = T0 + DAY3 + 180_000 + DAY3
    assert engine.board.get("g", "m0", T0 + DAY3 + 180_000) == (4, end)
    assert engine.board.get("g", "m0", end) is None
