"""Joins in SELECT: check ksqlDB's rules and rewrite a join query over one *joined source*.

The joined source is a virtual stream (or table, when both sides are tables) whose value
columns are every column of each side prefixed by its alias (``A_ID``, ``B_NAME``, ...,
``A_ROWTIME``) and whose key is the join key, so the ordinary planner (projection, WHERE,
GROUP BY) runs over it unchanged; the compiler builds it from the DSL's joins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from fluvial.sql import ast
from fluvial.sql import types as t
from fluvial.sql.catalog import ROWTIME, Column, DataSource, Schema
from fluvial.sql.errors import SqlAnalysisError, at
from fluvial.sql.expressions import (
    Evaluator,
    Row,
    Scope,
    compile_expr,
    map_columns,
    text,
    walk,
)

SYNTHETIC_KEY = "ROWKEY"


@dataclass(frozen=True)
class JoinSide:
    source: DataSource
    alias: str
    rekey: Evaluator | None  # the ON expression, where it is not the source's key column


@dataclass(frozen=True)
class JoinPlan:
    kind: str  # INNER | LEFT | FULL
    left: JoinSide
    right: JoinSide
    within: ast.JoinWithin | None  # stream-stream joins
    joiner: Callable[[Row | None, Row | None], Row]
    synthetic_key: bool  # FULL OUTER: the key is ROWKEY, the first non-null side's


def plan_join(query: ast.Query,
              sources: list[DataSource]) -> tuple[ast.Query, DataSource, JoinPlan]:
    """The query rewritten over the joined source, that source, and how to build it."""
    if len(query.joins) > 1:
        raise SqlAnalysisError(at(query.joins[1].pos, "multi-way joins are not supported yet: "
                                                      "join two sources per query"))
    join = query.joins[0]
    left_source, right_source = sources
    aliases = [query.source_alias or left_source.name, join.alias or right_source.name]
    if aliases[0] == aliases[1]:
        raise SqlAnalysisError(at(join.source_pos, f"Can not join '{left_source.name}' to "
                                                   f"'{right_source.name}': self joins are "
                                                   f"not yet supported."))
    kinds = (left_source.kind, right_source.kind)
    _check_kind(join, kinds, left_source, right_source)
    columns = [_prefixed(s, a) for s, a in zip(sources, aliases, strict=True)]
    left_on, right_on = _split_condition(join, aliases, columns)
    scopes = [Scope(s.scope_columns()) for s in sources]
    compiled = [compile_expr(_bare(e), scope) for e, scope in zip((left_on, right_on), scopes,
                                                                   strict=True)]
    if compiled[0].type != compiled[1].type:
        raise SqlAnalysisError(at(join.on.pos if hasattr(join.on, "pos") else None,
                                  f"Invalid join condition: types don't match. Got "
                                  f"{text(left_on)}{{{compiled[0].type}}} = "
                                  f"{text(right_on)}{{{compiled[1].type}}}."))
    sides = []
    for source, alias, on, c in zip(sources, aliases, (left_on, right_on), compiled,
                                    strict=True):
        is_key = [ast.ColumnRef(k.name) for k in source.schema.key] == [_bare(on)]
        if not is_key and source.kind == "TABLE":
            keys = ", ".join(f"{alias}.{k.name}" for k in source.schema.key)
            raise SqlAnalysisError(at(getattr(on, "pos", None),
                                      f"Cannot repartition a TABLE source. If this is a join, "
                                      f"make sure that the criteria uses the TABLE's key "
                                      f"column {keys} instead of {text(on)}"))
        sides.append(JoinSide(source, alias, None if is_key else c.fn))
    synthetic = join.kind == "FULL" or not any(isinstance(_bare(e), ast.ColumnRef)
                                               for e in (left_on, right_on))
    rewritten = _rewrite(query, aliases, columns, synthetic)
    key_name = SYNTHETIC_KEY if synthetic else _key_column(rewritten, left_on, right_on)
    key_type = compiled[0].type
    value_columns = tuple(Column(n, ty) for cols in columns for n, ty in cols.items())
    if synthetic:
        value_columns = tuple(c for c in value_columns if c.name != SYNTHETIC_KEY)
    else:
        value_columns = tuple(c for c in value_columns if c.name != key_name)
    joined = DataSource(f"{aliases[0]}_{aliases[1]}_JOIN",
                        "TABLE" if kinds == ("TABLE", "TABLE") else "STREAM",
                        Schema((Column(key_name, key_type),), value_columns),
                        left_source.topic, left_source.formats, left_source.partitions)
    plan = JoinPlan(join.kind, sides[0], sides[1], join.within,
                    _joiner(sides, columns, kinds, synthetic), synthetic)
    return rewritten, joined, plan


def _check_kind(join: ast.Join, kinds: tuple[str, str], left: DataSource,
                right: DataSource) -> None:
    if join.kind == "RIGHT":
        raise SqlAnalysisError(at(join.pos, "RIGHT joins are not supported yet: swap the "
                                            "sources and use LEFT JOIN"))
    if kinds == ("TABLE", "STREAM"):
        raise SqlAnalysisError(at(join.pos, f"Invalid join order: table-stream joins are not "
                                            f"supported; only stream-table joins. Got "
                                            f"{left.name} [TABLE] {join.kind} JOIN "
                                            f"{right.name} [STREAM]."))
    if kinds == ("STREAM", "TABLE") and join.kind == "FULL":
        raise SqlAnalysisError(at(join.pos, f"Invalid join type: full-outer join not "
                                            f"supported for stream-table join. Got "
                                            f"{left.name} [STREAM] FULL JOIN {right.name} "
                                            f"[TABLE]."))
    streams = kinds == ("STREAM", "STREAM")
    if streams and join.within is None:
        raise SqlAnalysisError(at(join.pos, "Stream-Stream joins must have a WITHIN clause "
                                            "specified. None was provided. To learn about how "
                                            "to specify a WITHIN clause with a stream-stream "
                                            "join, please visit: https://docs.confluent.io/"
                                            "current/ksql/docs/syntax-reference.html"
                                            "#create-stream-as-select"))
    if not streams and join.within is not None:
        raise SqlAnalysisError(at(join.within.pos, "A window definition was provided for a "
                                                   "Stream-Table or Table-Table join. These "
                                                   "joins are not windowed. Please drop the "
                                                   "window definition (i.e. the WITHIN "
                                                   "clause) and try to execute your join "
                                                   "again."))
    for source in (left, right):
        if source.window is not None:
            raise SqlAnalysisError(at(join.source_pos, f"windowed source {source.name} in a "
                                                       f"join is not supported yet"))


def _prefixed(source: DataSource, alias: str) -> dict[str, t.SqlType]:
    """The joined source's columns from one side: value, key, then ROWTIME, each
    ``ALIAS_COLUMN`` (``*`` lists them in this order, as ksqlDB does)."""
    columns = {f"{alias}_{c.name}": c.type for c in source.schema.value + source.schema.key}
    columns[f"{alias}_{ROWTIME}"] = t.BIGINT
    return columns


def _split_condition(join: ast.Join, aliases: list[str],
                     columns: list[dict[str, t.SqlType]]) -> tuple[ast.Expr, ast.Expr]:
    """ON's two sides as (left source's expression, right source's), each qualified."""
    on = join.on
    if not (isinstance(on, ast.Comparison) and on.op == "="):
        raise SqlAnalysisError(at(getattr(on, "pos", join.pos),
                                  f"Unsupported join expression: {text(on)}. Only equality "
                                  f"joins between the two sources (ON a.x = b.y) are "
                                  f"supported"))
    sides = []
    for e in (on.left, on.right):
        owners = {_owner(c, aliases, columns) for c in _columns(e)}
        if len(owners) != 1:
            raise SqlAnalysisError(at(getattr(e, "pos", join.pos),
                                      f"Invalid comparison expression '{text(e)}' in join "
                                      f"'{text(on)}'. Each side of the join comparision must "
                                      f"contain references from exactly one source."))
        sides.append((owners.pop(), _qualify(e, aliases, columns)))
    if sides[0][0] == sides[1][0]:
        raise SqlAnalysisError(at(getattr(on, "pos", join.pos),
                                  f"Each side of the join comparison must reference a "
                                  f"different source: {text(on)}"))
    by_owner = dict(sides)
    return by_owner[0], by_owner[1]


def _columns(e: ast.Expr) -> list[ast.ColumnRef]:
    return [x for x in walk(e) if isinstance(x, ast.ColumnRef)]


def _owner(c: ast.ColumnRef, aliases: list[str], columns: list[dict[str, t.SqlType]]) -> int:
    """Which side (0 or 1) a column belongs to."""
    if c.source is not None:
        if c.source not in aliases:
            raise SqlAnalysisError(at(c.pos, f"unknown source {c.source} in "
                                             f"{c.source}.{c.name}"))
        side = aliases.index(c.source)
        if f"{c.source}_{c.name}" not in columns[side]:
            raise SqlAnalysisError(at(c.pos, f"Column '{c.source}.{c.name}' cannot be "
                                             f"resolved."))
        return side
    found = [i for i, a in enumerate(aliases) if f"{a}_{c.name}" in columns[i]]
    if not found:
        raise SqlAnalysisError(at(c.pos, f"Column '{c.name}' cannot be resolved."))
    if len(found) > 1:
        raise SqlAnalysisError(at(c.pos, f"Column '{c.name}' is ambiguous. Could be any of: "
                                         f"{', '.join(f'{a}.{c.name}' for a in aliases)}"))
    return found[0]


def _qualify(e: ast.Expr, aliases: list[str], columns: list[dict[str, t.SqlType]]) -> ast.Expr:
    return map_columns(e, lambda c: dataclasses.replace(
        c, source=aliases[_owner(c, aliases, columns)]))


def _bare(e: ast.Expr) -> ast.Expr:
    return map_columns(e, lambda c: dataclasses.replace(c, source=None))


def _joined_name(e: ast.Expr, aliases: list[str], columns: list[dict[str, t.SqlType]]) -> ast.Expr:
    """Columns renamed to the joined source's ``ALIAS_COLUMN``; ROWTIME (unqualified) and
    ROWKEY stay, the joined row's own."""
    def rename(c: ast.ColumnRef) -> ast.Expr:
        if c.source is None and c.name in (ROWTIME, SYNTHETIC_KEY):
            return c
        side = _owner(c, aliases, columns)
        return ast.ColumnRef(f"{aliases[side]}_{c.name}", None, c.pos)
    return map_columns(e, rename)


def _rewrite(query: ast.Query, aliases: list[str], columns: list[dict[str, t.SqlType]],
             synthetic: bool) -> ast.Query:
    """The query over the joined source: columns renamed, ``*`` and ``a.*`` expanded (``*``
    with a synthetic key first), and an unqualified column keeping its own name in the
    result (``NAME``, not ``A_NAME``)."""
    def rename(e: ast.Expr) -> ast.Expr:
        return _joined_name(e, aliases, columns)
    items: list[ast.SelectItem] = []
    for item in query.items:
        if item.expr is None:
            if item.star_source is not None and item.star_source not in aliases:
                raise SqlAnalysisError(at(item.pos, f"unknown source {item.star_source} in "
                                                    f"{item.star_source}.*"))
            if synthetic and item.star_source is None:
                items.append(ast.SelectItem(ast.ColumnRef(SYNTHETIC_KEY), pos=item.pos))
            picked = [i for i, a in enumerate(aliases)
                      if item.star_source in (None, a)]
            for i in picked:
                items.extend(ast.SelectItem(ast.ColumnRef(n), pos=item.pos)
                             for n in columns[i] if not n.endswith(f"_{ROWTIME}"))
            continue
        alias = item.alias
        if alias is None and isinstance(item.expr, ast.ColumnRef) and item.expr.source is None:
            alias = item.expr.name
        items.append(dataclasses.replace(item, expr=rename(item.expr), alias=alias))
    return dataclasses.replace(
        query, items=tuple(items), source_alias=None, joins=(),
        where=rename(query.where) if query.where else None,
        group_by=tuple(map(rename, query.group_by)),
        partition_by=tuple(map(rename, query.partition_by)),
        having=rename(query.having) if query.having else None)


def _key_column(query: ast.Query, left_on: ast.Expr, right_on: ast.Expr) -> str:
    """The joined source's key column: the ON column the projection selects (the left's
    when it selects both or neither, as ksqlDB's error then names the left's)."""
    names = [f"{e.source}_{e.name}" for e in (left_on, right_on)
             if isinstance(e, ast.ColumnRef)]
    selected = {i.expr.name for i in query.items if isinstance(i.expr, ast.ColumnRef)}
    return next((n for n in names if n in selected), names[0])


def _joiner(sides: list[JoinSide], columns: list[dict[str, t.SqlType]],
            kinds: tuple[str, str],
            synthetic: bool) -> Callable[[Row | None, Row | None], Row]:
    """``(left row, right row) -> joined row``: each side's columns prefixed (NULLs for a
    missing side); ROWTIME, the result record's time as Kafka Streams stamps it: the
    stream's in a stream-table join, else the later of the two sides'; and a FULL join's
    ROWKEY, the first non-null side's join value."""
    join_values = [_join_value(s) for s in sides]
    left_prefix, right_prefix = (f"{s.alias}_" for s in sides)
    left_nulls = dict.fromkeys(columns[0])
    right_nulls = dict.fromkeys(columns[1])
    stream_table = kinds == ("STREAM", "TABLE")

    def join(left: Row | None, right: Row | None) -> Row:
        row: Row = {}
        if left is None:
            row.update(left_nulls)
        else:
            row.update((left_prefix + k, v) for k, v in left.items())
        if right is None:
            row.update(right_nulls)
        else:
            row.update((right_prefix + k, v) for k, v in right.items())
        if stream_table or right is None:
            row[ROWTIME] = left[ROWTIME] if left is not None else None
        elif left is None:
            row[ROWTIME] = right[ROWTIME]
        else:
            row[ROWTIME] = max(left[ROWTIME], right[ROWTIME])
        if synthetic:
            row[SYNTHETIC_KEY] = join_values[0](left) if left is not None else \
                join_values[1](right) if right is not None else None
        return row
    return join


def _join_value(side: JoinSide) -> Evaluator:
    if side.rekey is not None:
        return side.rekey
    key = side.source.schema.key[0].name
    return lambda row: row[key]
