"""SQL types and the rules between them: widening for arithmetic, Java's number semantics.

Values are plain Python: BOOLEAN bool, INT/BIGINT int (wrapped to 32/64 bits as Java does),
DOUBLE float, DECIMAL ``decimal.Decimal`` (exact, quantized to the column's scale), STRING
str, BYTES bytes; SQL NULL is ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from fluvial.sql import ast
from fluvial.sql.errors import SqlAnalysisError, at


@dataclass(frozen=True)
class SqlType:
    name: str  # BOOLEAN INTEGER BIGINT DOUBLE DECIMAL STRING BYTES TIMESTAMP ARRAY MAP
    precision: int = 0
    scale: int = 0
    items: tuple[SqlType, ...] = ()  # ARRAY: (element,); MAP: (value,) (keys are STRING)

    def __str__(self) -> str:
        if self.name == "DECIMAL":
            return f"DECIMAL({self.precision}, {self.scale})"
        if self.name == "ARRAY":
            return f"ARRAY<{self.items[0]}>"
        if self.name == "MAP":
            return f"MAP<STRING, {self.items[0]}>"
        return self.name

    @property
    def numeric(self) -> bool:
        return self.name in _NUMERIC_RANK


BOOLEAN = SqlType("BOOLEAN")
INTEGER = SqlType("INTEGER")
BIGINT = SqlType("BIGINT")
DOUBLE = SqlType("DOUBLE")
STRING = SqlType("STRING")
BYTES = SqlType("BYTES")
NULL = SqlType("NULL")  # the type of a bare NULL literal: fits anywhere
TIMESTAMP = SqlType("TIMESTAMP")  # a ``datetime``; so far only between Python functions

_ALIASES = {"INT": INTEGER, "INTEGER": INTEGER, "BIGINT": BIGINT, "DOUBLE": DOUBLE,
            "BOOLEAN": BOOLEAN, "STRING": STRING, "VARCHAR": STRING, "BYTES": BYTES}
_NUMERIC_RANK = {"INTEGER": 0, "BIGINT": 1, "DECIMAL": 2, "DOUBLE": 3}
MAX_DECIMAL_PRECISION = 38


def decimal(precision: int, scale: int) -> SqlType:
    return SqlType("DECIMAL", precision, scale)


def from_name(t: ast.TypeName) -> SqlType:
    """The type a column definition or CAST names; DECIMAL needs (precision, scale)."""
    if t.name == "DECIMAL":
        if len(t.params) != 2:
            raise SqlAnalysisError(at(t.pos, "DECIMAL needs a precision and a scale, "
                                             "e.g. DECIMAL(10, 2)"))
        precision, scale = t.params
        if not 1 <= precision <= MAX_DECIMAL_PRECISION or not 0 <= scale <= precision:
            raise SqlAnalysisError(at(t.pos, f"DECIMAL({precision}, {scale}): the precision "
                                             f"must be 1 to 38 and the scale 0 to the precision"))
        return decimal(precision, scale)
    if t.params and t.name not in ("VARCHAR", "STRING"):
        raise SqlAnalysisError(at(t.pos, f"type {t.name} takes no parameters"))
    try:
        return _ALIASES[t.name]
    except KeyError:
        known = ", ".join(sorted({*_ALIASES, "DECIMAL"}))
        raise SqlAnalysisError(at(t.pos, f"unknown type {t.name}; types: {known}")) from None


def array(element: SqlType) -> SqlType:
    return SqlType("ARRAY", items=(element,))


def map_of(value: SqlType) -> SqlType:
    return SqlType("MAP", items=(value,))


def as_decimal(t: SqlType) -> SqlType:
    """An integer type as the decimal that holds all its values (ksqlDB's widening)."""
    if t.name == "INTEGER":
        return decimal(10, 0)
    if t.name == "BIGINT":
        return decimal(19, 0)
    return t


def wider(a: SqlType, b: SqlType) -> SqlType:
    """The type both numeric operands widen to (not for DECIMAL with DECIMAL: see
    ``decimal_result``)."""
    if a == NULL:
        return b
    if b == NULL:
        return a
    return a if _NUMERIC_RANK[a.name] >= _NUMERIC_RANK[b.name] else b


def decimal_result(op: str, a: SqlType, b: SqlType) -> SqlType:
    """ksqlDB's precision and scale of ``a op b`` for decimals (as SQL Server's rules)."""
    a, b = as_decimal(a), as_decimal(b)
    p1, s1, p2, s2 = a.precision, a.scale, b.precision, b.scale
    if op in "+-":
        scale = max(s1, s2)
        precision = max(p1 - s1, p2 - s2) + scale + 1
    elif op == "*":
        precision, scale = p1 + p2 + 1, s1 + s2
    elif op == "/":
        scale = max(6, s1 + p2 + 1)
        precision = p1 - s1 + s2 + scale
    else:  # %
        scale = max(s1, s2)
        precision = min(p1 - s1, p2 - s2) + scale
    return decimal(min(precision, MAX_DECIMAL_PRECISION), min(scale, MAX_DECIMAL_PRECISION))


# -- Java's number semantics ------------------------------------------------------------

def wrap_int(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def wrap_long(v: int) -> int:
    return (v + 2**63) % 2**64 - 2**63


def java_div(a: int, b: int) -> int:
    """Integer division truncating toward zero (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def java_mod(a: int, b: int) -> int:
    """Remainder with the dividend's sign."""
    return a - b * java_div(a, b)


def quantize(value: Decimal, t: SqlType) -> Decimal:
    """``value`` at ``t``'s scale, rounded half up; refused if it needs more digits than
    ``t``'s precision holds."""
    with localcontext() as ctx:
        ctx.prec = 100
        result = value.quantize(Decimal(1).scaleb(-t.scale), rounding=ROUND_HALF_UP)
    if result.adjusted() + 1 > t.precision - t.scale and result != 0:
        raise ValueError(f"{value} does not fit {t}")
    return result


def double_text(d: float) -> str:
    """A double as Java's ``Double.toString`` writes it (``1.0``, ``1.0E7``, ``NaN``)."""
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if math.copysign(1, d) < 0 else "0.0"
    if 1e-3 <= abs(d) < 1e7:
        text = repr(d)
        return text if "." in text or "e" in text else text + ".0"
    sign, digits, exponent = Decimal(repr(d)).normalize().as_tuple()
    text = "".join(map(str, digits))
    power = len(text) - 1 + int(exponent)
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def to_text(value: object) -> str:
    """A value as ksqlDB casts it to STRING."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return str(value)


def parse_decimal(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
