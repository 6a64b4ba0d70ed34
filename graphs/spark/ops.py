"""The formulas' operations (:class:`graphs.signals.formulas.Ops`) on Spark columns."""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

__all__ = ["SPARK", "SparkOps", "col_or_lit"]


def col_or_lit(x: Any) -> Column:
    """A column as is, a Python number as a literal column."""
    return x if isinstance(x, Column) else F.lit(x)


class SparkOps:
    """Element-wise operations on DataFrame columns, matching :class:`~graphs.signals.formulas.NumpyOps`."""

    def clip(self, x: Any, lo: float, hi: float) -> Column:
        return F.least(F.greatest(col_or_lit(x), F.lit(lo)), F.lit(hi))

    def log1p(self, x: Any) -> Column:
        return F.log1p(col_or_lit(x))

    def maximum(self, a: Any, b: Any) -> Column:
        return F.greatest(col_or_lit(a), col_or_lit(b))

    def safe_div(self, a: Any, b: Any) -> Column:
        """``a / b`` where ``b > 0``, else 0."""
        return F.when(col_or_lit(b) > 0, col_or_lit(a) / col_or_lit(b)).otherwise(F.lit(0.0))

    def as_float(self, cond: Any) -> Column:
        return col_or_lit(cond).cast("double")

    def bit(self, x: Any, k: int) -> Column:
        return F.shiftright(col_or_lit(x), k).bitwiseAND(1)

    def xor(self, a: Any, b: Any) -> Column:
        return col_or_lit(a).bitwiseXOR(col_or_lit(b))


SPARK = SparkOps()
