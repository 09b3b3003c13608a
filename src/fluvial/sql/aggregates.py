"""Aggregate functions: COUNT, SUM, AVG, MIN, MAX over a group's rows, ksqlDB's null rules.

A state is JSON-safe (numbers, Decimals, lists) so it can live in a store as the internal
serde writes it. Each function adds a value, and where a table feeds the aggregation also
subtracts one (a row leaving the group); MIN and MAX cannot subtract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fluvial.sql import types as t
from fluvial.sql.types import SqlType


@dataclass(frozen=True)
class Aggregate:
    name: str
    result_type: SqlType
    initial: Callable[[], Any]
    add: Callable[[Any, Any], Any]  # (state, non-null value) -> state
    result: Callable[[Any], Any]
    subtract: Callable[[Any, Any], Any] | None  # (state, non-null value) -> state
    merge: Callable[[Any, Any], Any]  # two sessions' states -> one
    counts_nulls: bool = False  # COUNT(*) sees every row


def _identity(state: Any) -> Any:
    return state


def _adder(type_: SqlType) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]:
    if type_.name == "INTEGER":
        return (lambda a, b: t.wrap_int(a + b)), (lambda a, b: t.wrap_int(a - b))
    if type_.name == "BIGINT":
        return (lambda a, b: t.wrap_long(a + b)), (lambda a, b: t.wrap_long(a - b))
    if type_.name == "DECIMAL":
        return (lambda a, b: Decimal(a) + Decimal(b)), (lambda a, b: Decimal(a) - Decimal(b))
    return (lambda a, b: float(a) + float(b)), (lambda a, b: float(a) - float(b))


def _zero(type_: SqlType) -> Any:
    return {"DOUBLE": 0.0, "DECIMAL": Decimal(0)}.get(type_.name, 0)


def make(name: str, arg_type: SqlType | None) -> Aggregate:
    """The aggregate ``name`` over an argument of ``arg_type`` (None: ``COUNT(*)``);
    ValueError if the type does not fit."""
    if name == "COUNT":
        def one(n, _v):
            return (n + 1)
        return Aggregate("COUNT", t.BIGINT, lambda: 0, one, _identity,
                         lambda n, _v: n - 1, lambda a, b: a + b,
                         counts_nulls=arg_type is None)
    assert arg_type is not None
    if name in ("SUM", "AVG") and not arg_type.numeric:
        raise ValueError(f"{name} takes a number, not {arg_type}")
    if name == "SUM":
        add, sub = _adder(arg_type)
        zero = _zero(arg_type)
        finish: Callable[[Any], Any] = _identity
        if arg_type.name == "DECIMAL":
            def finish(s):
                return (t.quantize(Decimal(s), arg_type))
        return Aggregate("SUM", arg_type, lambda: zero, add, finish, sub, add)
    if name == "AVG":
        add, sub = _adder(arg_type)
        zero = _zero(arg_type)
        result_type = arg_type if arg_type.name == "DECIMAL" else t.DOUBLE
        return Aggregate(
            "AVG", result_type, lambda: [zero, 0],
            lambda s, v: [add(s[0], v), s[1] + 1],
            _average(arg_type),
            lambda s, v: [sub(s[0], v), s[1] - 1],
            lambda a, b: [add(a[0], b[0]), a[1] + b[1]])
    if name in ("MIN", "MAX"):
        if arg_type.name == "BYTES":
            raise ValueError(f"{name} takes a number, string or boolean, not {arg_type}")
        pick = min if name == "MIN" else max

        def keep(state: Any, v: Any) -> Any:
            return v if state is None else pick(state, v)
        return Aggregate(name, arg_type, lambda: None, keep, _identity, None,
                         lambda a, b: b if a is None else a if b is None else pick(a, b))
    raise ValueError(f"unknown aggregate function {name}")


def _average(arg_type: SqlType) -> Callable[[Any], Any]:
    if arg_type.name == "DECIMAL":
        def decimal_average(state: Any) -> Any:
            total, count = state
            if count == 0:
                return None
            return t.quantize(Decimal(total) / count, arg_type)
        return decimal_average

    def average(state: Any) -> float:
        total, count = state
        return 0.0 if count == 0 else float(total) / count
    return average
