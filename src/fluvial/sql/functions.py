"""Scalar functions: each a return-type rule over argument types and an implementation.

Null handling is ksqlDB's: a function of ``strict`` kind returns NULL when any argument is
NULL (most of them); the others (COALESCE, IFNULL, CONCAT, ...) see the NULLs themselves.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
)
from fractions import Fraction
from typing import Any

from fluvial.sql import types as t
from fluvial.sql.types import SqlType

TypeRule = Callable[[Sequence[SqlType]], SqlType]


class FunctionTypeError(ValueError):
    """The arguments' types do not fit the function; the caller adds where."""


@dataclass(frozen=True)
class ScalarFunction:
    name: str
    min_args: int
    max_args: int | None  # None: any number
    returns: TypeRule
    #: ``impl(arg_types, result_type) -> fn(*values)``: built once per call site
    impl: Callable[[Sequence[SqlType], SqlType], Callable[..., Any]]
    strict: bool = True
    description: str = ""


REGISTRY: dict[str, ScalarFunction] = {}


def register(name: str, min_args: int, max_args: int | None, returns: TypeRule,
             impl: Callable[[Sequence[SqlType], SqlType], Callable[..., Any]],
             strict: bool = True, description: str = "") -> None:
    REGISTRY[name] = ScalarFunction(name, min_args, max_args, returns, impl, strict,
                                    description)


def _fixed(result: SqlType, *accepted: str) -> TypeRule:
    def rule(args: Sequence[SqlType]) -> SqlType:
        for a in args:
            if a != t.NULL and accepted and a.name not in accepted:
                raise FunctionTypeError(f"takes {' or '.join(accepted)}, not {a}")
        return result
    return rule


def _same_as_first(*accepted: str) -> TypeRule:
    def rule(args: Sequence[SqlType]) -> SqlType:
        if args[0] != t.NULL and args[0].name not in accepted:
            raise FunctionTypeError(f"takes {' or '.join(accepted)}, not {args[0]}")
        return args[0]
    return rule


def _plain(fn: Callable[..., Any]) -> Callable[[Sequence[SqlType], SqlType],
                                               Callable[..., Any]]:
    return lambda _args, _result: fn


NUMBERS = ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL")


# -- strings ----------------------------------------------------------------------------

def _substring(s: str, pos: int, length: int | None = None) -> str:
    """1-based; a negative position counts from the end, as ksqlDB's SUBSTRING."""
    start = pos - 1 if pos > 0 else 0 if pos == 0 else max(len(s) + pos, 0)
    if length is None:
        return s[start:]
    return s[start:start + max(length, 0)]


def _concat(*parts: str | None) -> str:
    return "".join(p for p in parts if p is not None)


def _pad(left: bool) -> Callable[[str, int, str], str | None]:
    def pad(s: str, length: int, padding: str) -> str | None:
        if length < 0 or (not padding and length > len(s)):
            return None
        if length <= len(s):
            return s[:length]
        fill = (padding * length)[:length - len(s)]
        return fill + s if left else s + fill
    return pad


def _instr(s: str, sub: str) -> int:
    return s.find(sub) + 1


def _split(s: str, delimiter: str) -> list[str]:
    """ksqlDB's SPLIT: the parts between literal delimiters, empty ones kept; an empty
    delimiter splits into characters."""
    if delimiter:
        return s.split(delimiter)
    return list(s) or [""]


_STRING = ("STRING",)
register("UCASE", 1, 1, _fixed(t.STRING, *_STRING), _plain(str.upper))
register("LCASE", 1, 1, _fixed(t.STRING, *_STRING), _plain(str.lower))
register("LEN", 1, 1, _fixed(t.INTEGER, *_STRING), _plain(len))
register("TRIM", 1, 1, _fixed(t.STRING, *_STRING), _plain(str.strip))
register("LTRIM", 1, 1, _fixed(t.STRING, *_STRING), _plain(str.lstrip))
register("RTRIM", 1, 1, _fixed(t.STRING, *_STRING), _plain(str.rstrip))
register("SUBSTRING", 2, 3, lambda a: _check_substring(a), _plain(_substring))
register("CONCAT", 1, None, _fixed(t.STRING, *_STRING), _plain(_concat), strict=False)
register("REPLACE", 3, 3, _fixed(t.STRING, *_STRING), _plain(str.replace))
register("INSTR", 2, 2, _fixed(t.INTEGER, *_STRING), _plain(_instr))
register("SPLIT", 2, 2, _fixed(t.array(t.STRING), *_STRING), _plain(_split),
         description="The parts of a string between a literal delimiter, as an ARRAY.")
register("LPAD", 3, 3, lambda a: _check_pad(a), _plain(_pad(True)))
register("RPAD", 3, 3, lambda a: _check_pad(a), _plain(_pad(False)))


def _check_substring(args: Sequence[SqlType]) -> SqlType:
    _fixed(t.STRING, *_STRING)(args[:1])
    _fixed(t.STRING, "INTEGER", "BIGINT")(args[1:])
    return t.STRING


def _check_pad(args: Sequence[SqlType]) -> SqlType:
    _fixed(t.STRING, *_STRING)([args[0], args[2]])
    _fixed(t.STRING, "INTEGER", "BIGINT")(args[1:2])
    return t.STRING


# -- math -------------------------------------------------------------------------------

def _abs(types: Sequence[SqlType], result: SqlType) -> Callable[..., Any]:
    if result.name == "INTEGER":
        return lambda v: t.wrap_int(abs(v))
    if result.name == "BIGINT":
        return lambda v: t.wrap_long(abs(v))
    return abs


def _round_type(args: Sequence[SqlType]) -> SqlType:
    first = _same_as_first(*NUMBERS)(args)
    if len(args) == 2:
        _fixed(t.INTEGER, "INTEGER")(args[1:])
        return first
    if first.name == "DOUBLE":
        return t.BIGINT
    if first.name == "DECIMAL":
        return t.decimal(max(first.precision - first.scale, 1), 0)
    return first


_WIDE = Context(prec=100)  # for rounding: room for any DECIMAL or double's digits


@functools.lru_cache(maxsize=64)
def _unit(places: int) -> Decimal:
    """10 ** -places, what ``quantize`` rounds to."""
    return Decimal(1).scaleb(-places)


def _half_up(v: Decimal, places: int, ceiling_ties: bool = False) -> Decimal:
    """``v`` rounded to ``places`` digits after the point, ties away from zero (or, with
    ``ceiling_ties``, toward positive infinity)."""
    rounding = ROUND_HALF_DOWN if ceiling_ties and v < 0 else ROUND_HALF_UP
    return v.quantize(_unit(places), rounding=rounding, context=_WIDE)


def _round(types: Sequence[SqlType], result: SqlType) -> Callable[..., Any]:
    kind = types[0].name
    if len(types) == 1:
        if kind == "DOUBLE":
            return lambda v: math.floor(v + 0.5)  # Java's Math.round: half toward +infinity
        if kind == "DECIMAL":
            return lambda v: _half_up(v, 0)
        return lambda v: v
    if kind == "DOUBLE":  # Java's Math.round at a scale: ties toward positive infinity
        return lambda v, places: float(_half_up(Decimal(repr(v)), places, ceiling_ties=True))
    if kind == "DECIMAL":
        return lambda v, places: t.quantize(_half_up(v, places), result)
    return lambda v, places: v if places >= 0 else int(_half_up(Decimal(v), places))


def _floor_ceil_type(args: Sequence[SqlType]) -> SqlType:
    first = _same_as_first(*NUMBERS)(args)
    if first.name == "DECIMAL":
        return t.decimal(max(first.precision - first.scale + 1, 1), 0)
    return first


def _floor_ceil(up: bool) -> Callable[[Sequence[SqlType], SqlType], Callable[..., Any]]:
    def impl(types: Sequence[SqlType], result: SqlType) -> Callable[..., Any]:
        kind = types[0].name
        if kind == "DOUBLE":
            return (lambda v: float(math.ceil(v))) if up else (lambda v: float(math.floor(v)))
        if kind == "DECIMAL":
            mode = ROUND_CEILING if up else ROUND_FLOOR
            return lambda v: v.quantize(Decimal(1), rounding=mode)
        return lambda v: v
    return impl


def _double_fn(fn: Callable[[float], float]) -> Callable[[Sequence[SqlType], SqlType],
                                                          Callable[..., Any]]:
    def impl(types: Sequence[SqlType], result: SqlType) -> Callable[..., Any]:
        def run(v: Any) -> float | None:
            try:
                return fn(float(v))
            except ValueError:  # outside the domain: Java's Math answers NaN
                return math.nan
            except OverflowError:
                return math.inf
        return run
    return impl


def _sign(v: Any) -> int:
    return (v > 0) - (v < 0)


def _java_div(a: float, b: float) -> float:
    """``a / b`` as Java's doubles divide: by zero gives an infinity, or NaN for 0/0."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * \
            math.copysign(1, b)
    return a / b


def _log(base: Any, value: Any) -> float:
    """LOG(base, value): ln(value) / ln(base); NaN for a base <= 0 or 1, or a value < 0."""
    b, v = float(base), float(value)
    if b <= 0 or b == 1 or v < 0:
        return math.nan
    return _java_div(_ln(v), math.log(b))


def _power(base: Any, exponent: Any) -> float:
    try:
        return float(math.pow(float(base), float(exponent)))
    except ValueError:
        return math.nan
    except OverflowError:
        return math.inf


def _atan2(y: Any, x: Any) -> float:
    return math.atan2(float(y), float(x))


def _cbrt(v: float) -> float:
    """The cube root, correctly rounded as Java's Math.cbrt is in practice (exact for
    perfect cubes): the C library's may miss by an ulp, so its neighbours are weighed
    exactly."""
    r = math.cbrt(v)
    if r == 0 or not math.isfinite(r):
        return r
    target = Fraction(v)
    return min((r, math.nextafter(r, math.inf), math.nextafter(r, -math.inf)),
               key=lambda c: abs(Fraction(c) ** 3 - target))


_TRIG: dict[str, Callable[[float], float]] = {
    "ACOS": math.acos, "ASIN": math.asin, "ATAN": math.atan, "COS": math.cos,
    "SIN": math.sin, "TAN": math.tan, "COSH": math.cosh, "SINH": math.sinh,
    "TANH": math.tanh, "DEGREES": math.degrees, "RADIANS": math.radians,
    "CBRT": _cbrt, "COT": lambda v: _java_div(math.cos(v), math.sin(v)),
}
for _name, _fn in _TRIG.items():
    register(_name, 1, 1, _fixed(t.DOUBLE, *NUMBERS), _double_fn(_fn))
register("ATAN2", 2, 2, _fixed(t.DOUBLE, *NUMBERS), _plain(_atan2))
register("POWER", 2, 2, _fixed(t.DOUBLE, *NUMBERS), _plain(_power))
register("PI", 0, 0, _fixed(t.DOUBLE), _plain(lambda: math.pi))
register("LOG", 1, 2, _fixed(t.DOUBLE, *NUMBERS),  # one argument: the natural logarithm
         lambda args, _result: _double_fn(_ln)(args, _result) if len(args) == 1 else _log)
register("ABS", 1, 1, _same_as_first(*NUMBERS), _abs)
register("ROUND", 1, 2, _round_type, _round)
register("FLOOR", 1, 1, _floor_ceil_type, _floor_ceil(False))
register("CEIL", 1, 1, _floor_ceil_type, _floor_ceil(True))
register("SQRT", 1, 1, _fixed(t.DOUBLE, *NUMBERS), _double_fn(math.sqrt))
register("EXP", 1, 1, _fixed(t.DOUBLE, *NUMBERS), _double_fn(math.exp))
def _ln(v: float) -> float:
    if v == 0:
        return -math.inf
    return math.log(v) if v > 0 else math.nan


register("LN", 1, 1, _fixed(t.DOUBLE, *NUMBERS), _double_fn(_ln))
register("SIGN", 1, 1, _fixed(t.INTEGER, *NUMBERS), _plain(_sign))


# -- null handling ----------------------------------------------------------------------

def _common_type(args: Sequence[SqlType]) -> SqlType:
    """All arguments of one type (numbers widen), as COALESCE/IFNULL/NULLIF need."""
    known = [a for a in args if a != t.NULL]
    if not known:
        return t.NULL
    if all(a.numeric for a in known):
        result = known[0]
        for a in known[1:]:
            result = a if a == result else (
                t.decimal_result("+", result, a) if {a.name, result.name} <= {
                    "DECIMAL", "INTEGER", "BIGINT"} and "DECIMAL" in {a.name, result.name}
                else t.wider(result, a))
        return result
    first = known[0]
    for a in known[1:]:
        if a != first:
            raise FunctionTypeError(f"needs arguments of one type, got {first} and {a}")
    return first


def _coalesce(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _nullif(a: Any, b: Any) -> Any:
    return None if a is not None and a == b else a


register("COALESCE", 1, None, _common_type, _plain(_coalesce), strict=False)
register("IFNULL", 2, 2, _common_type, _plain(_coalesce), strict=False)
register("NULLIF", 2, 2, lambda a: _common_type(a[:1]) if a[1] == t.NULL else _common_type(a),
         _plain(_nullif), strict=False)
