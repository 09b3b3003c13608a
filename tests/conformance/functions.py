"""The named functions a conformance case may use, as in the Java oracle's Functions.java.

Same names, same results: values are ints (serde "long", Java's Long) or str (serde
"string"). Integer division and remainder truncate toward zero as Java's do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _rem(a: int, b: int) -> int:
    """Java's ``%``: the sign of the dividend."""
    return a - b * _div(a, b)


def _div(a: int, b: int) -> int:
    """Java's ``/`` on longs: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _m3(v: int) -> str:
    return f"m{_rem(v, 3)}"


PREDICATES: dict[str, Callable[[Any, Any], bool]] = {
    "value_even": lambda k, v: v is not None and _rem(v, 2) == 0,
    "value_small": lambda k, v: v is not None and v < 50,
    "key_a_or_b": lambda k, v: k in ("a", "b"),
    "value_short": lambda k, v: v is not None and len(v) <= 3,
}

VALUE_MAPPERS: dict[str, Callable[[Any], Any]] = {
    "double": lambda v: None if v is None else v * 2,
    "half": lambda v: None if v is None else _div(v, 2),
    "null_if_odd": lambda v: None if v is None or _rem(v, 2) != 0 else v,
    "length": lambda v: None if v is None else len(v),
    "upper": lambda v: None if v is None else v.upper(),
    "str": lambda v: None if v is None else str(v),
}

KEY_SELECTORS: dict[str, Callable[[Any, Any], Any]] = {
    "mod3": lambda k, v: None if v is None else _m3(v),
    "first_char": lambda k, v: None if not v else v[0],
    "key_upper": lambda k, v: None if k is None else k.upper(),
}

#: ``map`` on streams and ``group_by`` on tables: a new key and value
PAIR_MAPPERS: dict[str, Callable[[Any, Any], tuple[Any, Any]]] = {
    "mod3": lambda k, v: (None if v is None else _m3(v), v),
    "mod3_null_big": lambda k, v: (_m3(v), None if v >= 50 else v),
    "null_key_odd": lambda k, v: (None if _rem(v, 2) == 1 else _m3(v), v),
    "first_char_len": lambda k, v: (v[0] if v else None, len(v)),
}

FLAT_VALUE_MAPPERS: dict[str, Callable[[Any], list[Any]]] = {
    "pair_if_even": lambda v: [] if v is None or _rem(v, 2) != 0 else [v, v + 1],
}

FLAT_MAPPERS: dict[str, Callable[[Any, Any], list[tuple[Any, Any]]]] = {
    "fan": lambda k, v: [] if v is None else [(k, v), (f"f{_rem(v, 2)}", v)],
}

REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    "sum": lambda a, b: a + b,
    "minus": lambda a, b: a - b,
    "max": max,
    "concat": lambda a, b: f"{a}|{b}",
}

INITIALIZERS: dict[str, Callable[[], Any]] = {
    "zero": lambda: 0,
    "empty": lambda: "",
}

AGGREGATORS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "sum": lambda k, v, agg: agg + v,
    "minus": lambda k, v, agg: agg - v,
    "add_len": lambda k, v, agg: agg + len(v),
    "sub_len": lambda k, v, agg: agg - len(v),
    "append": lambda k, v, agg: agg + v,
}

#: session merges: ``merger(key, aggregate1, aggregate2)``
MERGERS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "sum": lambda k, a, b: a + b,
    "concat": lambda k, a, b: f"{a}|{b}",
}


# -- joins -------------------------------------------------------------------------------

#: ``joiner(value, other_value)``; a left/outer join passes None for a missing side
JOINERS: dict[str, Callable[[Any, Any], Any]] = {
    "plus": lambda a, b: (-1 if a is None else a) * 1000 + (-1 if b is None else b),
}

#: a global table's key from a stream record: ``key_mapper(key, value)``
JOIN_KEY_MAPPERS: dict[str, Callable[[Any, Any], Any]] = {
    "key": lambda k, v: k,
    "value_letter": lambda k, v: None if v is None or _rem(v, 5) == 4 else "abcd"[_rem(v, 5)],
}

#: a foreign-key join's foreign key from a left value: a letter a-d, None for 4 mod 5
FOREIGN_KEYS: dict[str, Callable[[Any], Any]] = {
    "value_letter": lambda v: None if _rem(v, 5) == 4 else "abcd"[_rem(v, 5)],
}

#: a stream's new key within the tables' key space (a-d), for a join after a rekey
JOIN_KEY_SELECTORS: dict[str, Callable[[Any, Any], Any]] = {
    "next_letter": lambda k, v: None if k is None else {"a": "b", "b": "c", "c": "d",
                                                         "d": "a"}[k],
}


def named(functions: dict[str, Any], name: str, kind: str) -> Any:
    try:
        return functions[name]
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; known: {sorted(functions)}") from None
