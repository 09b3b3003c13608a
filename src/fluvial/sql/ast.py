"""The syntax tree the parser builds: statements and expressions, with source positions.

Positions (``pos``: line, column) are left out of equality, so two spellings of the same
expression (a GROUP BY item and its SELECT twin) compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Pos = tuple[int, int]


# -- expressions ----------------------------------------------------------------------

@dataclass(frozen=True)
class Expr:
    pass


@dataclass(frozen=True)
class Literal(Expr):
    value: bool | int | Decimal | float | str | None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class ColumnRef(Expr):
    name: str
    source: str | None = None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Arithmetic(Expr):
    op: str
    left: Expr
    right: Expr
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    operand: Expr
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Comparison(Expr):
    op: str
    left: Expr
    right: Expr
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Logical(Expr):
    """AND / OR of two or more operands."""

    op: str
    operands: tuple[Expr, ...]
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Between(Expr):
    value: Expr
    low: Expr
    high: Expr
    negated: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class InList(Expr):
    value: Expr
    items: tuple[Expr, ...]
    negated: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Like(Expr):
    value: Expr
    pattern: Expr
    negated: bool
    escape: str | None = None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class IsNull(Expr):
    value: Expr
    negated: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class IsDistinct(Expr):
    left: Expr
    right: Expr
    negated: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class FunctionCall(Expr):
    name: str
    args: tuple[Expr, ...]
    star: bool = False  # COUNT(*)
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class TimeRound(Expr):
    """``CEIL(time TO unit)`` or ``FLOOR(time TO unit)`` (Calcite's, for the talk's query)."""

    function: str  # CEIL | FLOOR
    operand: Expr
    unit: str
    unit_ms: int
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Case(Expr):
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class TypeName:
    name: str
    params: tuple[int, ...] = ()
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Cast(Expr):
    operand: Expr
    target: TypeName
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


# -- queries --------------------------------------------------------------------------

@dataclass(frozen=True)
class SelectItem:
    """``expr [AS alias]``; ``expr is None`` for ``*`` (or ``source.*``)."""

    expr: Expr | None
    alias: str | None = None
    star_source: str | None = None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class WindowSpec:
    kind: str  # TUMBLING | HOPPING | SESSION
    size_ms: int
    advance_ms: int | None = None
    retention_ms: int | None = None
    grace_ms: int | None = None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class JoinWithin:
    """``WITHIN n UNIT`` (before = after = n) or ``WITHIN (before, after)``."""

    before_ms: int
    after_ms: int
    grace_ms: int | None = None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Join:
    """``[kind] JOIN source [alias] [WITHIN ...] ON condition``."""

    kind: str  # INNER | LEFT | RIGHT | FULL
    source: str
    alias: str | None
    within: JoinWithin | None
    on: Expr
    pos: Pos = field(default=(0, 0), compare=False, repr=False)
    source_pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Query:
    items: tuple[SelectItem, ...]
    source: str
    source_alias: str | None
    window: WindowSpec | None
    where: Expr | None
    group_by: tuple[Expr, ...]
    partition_by: tuple[Expr, ...]
    having: Expr | None
    emit: str | None
    limit: int | None
    pos: Pos = field(default=(0, 0), compare=False, repr=False)
    source_pos: Pos = field(default=(0, 0), compare=False, repr=False)
    joins: tuple[Join, ...] = ()


# -- statements -----------------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    pass


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: TypeName
    constraint: str | None  # KEY | PRIMARY KEY | HEADERS
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Property:
    name: str
    value: Any
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class CreateSource(Statement):
    kind: str  # STREAM | TABLE
    name: str
    columns: tuple[ColumnDef, ...]
    properties: tuple[Property, ...]
    or_replace: bool
    if_not_exists: bool
    read_only: bool = False  # CREATE SOURCE STREAM|TABLE: no INSERT, no DELETE TOPIC
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class CreateAs(Statement):
    kind: str
    name: str
    properties: tuple[Property, ...]
    query: Query
    or_replace: bool
    if_not_exists: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class InsertValues(Statement):
    target: str
    columns: tuple[str, ...]
    values: tuple[Expr, ...]
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class InsertSelect(Statement):
    target: str
    query: Query
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Drop(Statement):
    kind: str
    name: str
    if_exists: bool
    delete_topic: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class DescribeFunction(Statement):
    name: str
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Show(Statement):
    what: str  # STREAMS | TABLES | QUERIES | FUNCTIONS
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Describe(Statement):
    name: str
    extended: bool
    pos: Pos = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Terminate(Statement):
    query_id: str  # ALL: every persistent query
    pos: Pos = field(default=(0, 0), compare=False, repr=False)
