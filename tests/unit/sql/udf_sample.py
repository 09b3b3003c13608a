"""Python functions the UDF tests load as a module (``--udf-module tests.unit.sql.udf_sample``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import fluvial.sql
from fluvial.sql import types


@fluvial.sql.udf(description="The value times the factor.")
def scale(value: int, factor: float) -> float:
    return value * factor


@fluvial.sql.udf(name="SCALE")
def scale_text(value: str, times: int) -> str:
    """The text repeated."""
    return value * times


@fluvial.sql.udf()
def initials(name: str | None) -> str:
    """A name's initials; '?' for NULL (the parameter is Optional, so NULL reaches it)."""
    return "".join(p[0] for p in name.split()) if name else "?"


@fluvial.sql.udf(returns=types.decimal(10, 2))
def with_tax(amount: Decimal) -> Decimal:
    return amount * Decimal("1.2")


@fluvial.sql.udf()
def checked_ratio(a: int, b: int) -> float:
    """a / b, raising on a zero b (so the record goes to the error policy)."""
    if b == 0:
        raise ValueError("b must not be zero")
    return a / b


@fluvial.sql.udf()
def join_all(*parts: str) -> str:
    return "-".join(parts)


@fluvial.sql.udtf(description="One row per word.")
def words(text: str) -> list[str]:
    return text.split()


@fluvial.sql.udtf()
def positions(text: str) -> list[int]:
    return list(range(len(text.split())))


@fluvial.sql.udaf(description="The spread of the values: max - min.")
class Spread:
    def initialize(self) -> list[Any]:
        return [None, None]

    def aggregate(self, value: float, aggregate: list[Any]) -> list[Any]:
        low, high = aggregate
        return [value if low is None else min(low, value),
                value if high is None else max(high, value)]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        lows = [x for x in (a[0], b[0]) if x is not None]
        highs = [x for x in (a[1], b[1]) if x is not None]
        return [min(lows, default=None), max(highs, default=None)]

    def map(self, aggregate: list[Any]) -> float | None:
        low, high = aggregate
        return None if low is None else high - low


@fluvial.sql.udaf()
class Total:
    """A sum that can take rows back (undo), so it aggregates tables too."""

    def initialize(self) -> int:
        return 0

    def aggregate(self, value: int, aggregate: int) -> int:
        return aggregate + value

    def undo(self, value: int, aggregate: int) -> int:
        return aggregate - value

    def merge(self, a: int, b: int) -> int:
        return a + b

    def map(self, aggregate: int) -> int:
        return aggregate
