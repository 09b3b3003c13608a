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
class JoinStep:
    """One ``JOIN``: the joins so far (or the FROM source) with ``right``."""

    kind: str  # INNER | LEFT | RIGHT | FULL
    left_kind: str  # STREAM | TABLE, of the left input
    left_rekey: Evaluator | None  # over the left input's rows, where not its key
    right: JoinSide
    within: ast.JoinWithin | None  # stream-stream joins
    joiner: Callable[[Row | None, Row | None], Row]


@dataclass(frozen=True)
class JoinPlan:
    """``first`` joined with each step's source in turn (left-deep, as ksqlDB)."""

    first: JoinSide
    steps: tuple[JoinStep, ...]

    @property
    def sources(self) -> tuple[DataSource, ...]:
        return (self.first.source, *(s.right.source for s in self.steps))


def plan_join(query: ast.Query, sources: list[DataSource],
              sink_name: str) -> tuple[ast.Query, DataSource, JoinPlan]:
    """The query rewritten over the joined source, that source, and how to build it."""
    kafka = [s.name for s in sources if s.formats.value == "KAFKA"]
    if kafka:
        raise SqlAnalysisError(at(query.source_pos, f"Source(s) {', '.join(kafka)} are using "
                                                    f"the 'KAFKA' value format. This format "
                                                    f"does not yet support JOIN."))
    names = [s.name for s in sources]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated is not None and len(sources) > 2:
        raise SqlAnalysisError(at(query.source_pos, f"N-way joins do not support multiple "
                                                    f"occurrences of the same source. "
                                                    f"Source: '{repeated}'"))
    aliases = [query.source_alias or sources[0].name]
    for join, source in zip(query.joins, sources[1:], strict=True):
        alias = join.alias or source.name
        if alias in aliases or (len(sources) == 2 and source.name == sources[0].name):
            raise SqlAnalysisError(at(join.source_pos, f"Can not join '{sources[0].name}' to "
                                                       f"'{source.name}': self joins are "
                                                       f"not yet supported."))
        aliases.append(alias)
    columns = [_prefixed(s, a) for s, a in zip(sources, aliases, strict=True)]
    first = sources[0]
    if first.window is not None:
        raise SqlAnalysisError(at(query.source_pos, f"windowed source {first.name} in a join "
                                                    f"is not supported yet"))
    left_kind = first.kind
    keys: list[ast.Expr] = [ast.ColumnRef(k.name, aliases[0]) for k in first.schema.key]
    synthetic = False
    steps = []
    key_type = None
    for n, join in enumerate(query.joins):
        right = sources[n + 1]
        left_on, right_on = _split_condition(join, aliases[:n + 2], columns[:n + 2])
        _check_kind(join, (left_kind, right.kind), left_on.source if isinstance(
            left_on, ast.ColumnRef) and left_on.source else aliases[0], right)
        left_scope = Scope(first.scope_columns()) if n == 0 else Scope(
            {name: ty for cols in columns[:n + 1] for name, ty in cols.items()} |
            {ROWTIME: t.BIGINT})
        left_expr = _bare(left_on) if n == 0 else _joined_name(left_on, aliases, columns)
        compiled = [compile_expr(left_expr, left_scope),
                    compile_expr(_bare(right_on), Scope(right.scope_columns()))]
        if compiled[0].type != compiled[1].type:
            raise SqlAnalysisError(at(getattr(join.on, "pos", None),
                                      f"Invalid join condition: types don't match. Got "
                                      f"{text(left_on)}{{{compiled[0].type}}} = "
                                      f"{text(right_on)}{{{compiled[1].type}}}."))
        key_type = compiled[0].type
        # the joins so far are keyed by any of their ON columns; a source by its whole key
        left_is_key = (left_on in keys if n else keys == [left_on]) and not synthetic
        right_is_key = [ast.ColumnRef(k.name) for k in right.schema.key] == [_bare(right_on)]
        for is_key, kind, on, what in ((left_is_key, left_kind, left_on, keys),
                                       (right_is_key, right.kind, right_on,
                                        [ast.ColumnRef(k.name, aliases[n + 1])
                                         for k in right.schema.key])):
            if not is_key and kind == "TABLE":
                raise SqlAnalysisError(at(getattr(on, "pos", None),
                                          f"Cannot repartition a TABLE source. If this is a "
                                          f"join, make sure that the criteria uses the "
                                          f"TABLE's key column "
                                          f"{', '.join(dict.fromkeys(map(text, what)))} "
                                          f"instead of {text(on)}"))
        kinds = (left_kind, right.kind)
        synthetic = join.kind == "FULL" or not any(isinstance(e, ast.ColumnRef)
                                                   for e in (left_on, right_on))
        joiner = _joiner(aliases[0] if n == 0 else None, columns[:n + 1], aliases[n + 1],
                         columns[n + 1], kinds, [c.fn for c in compiled] if synthetic else None)
        steps.append(JoinStep(join.kind, left_kind, None if left_is_key else compiled[0].fn,
                              JoinSide(right, aliases[n + 1],
                                       None if right_is_key else compiled[1].fn),
                              join.within, joiner))
        keys = [left_on, right_on] + (keys if left_is_key else [])
        left_kind = "TABLE" if kinds == ("TABLE", "TABLE") else "STREAM"
    assert key_type is not None
    rewritten = _rewrite(query, aliases, columns, synthetic)
    if not query.group_by and not query.partition_by:
        _check_key_selected(rewritten, [] if synthetic else keys, aliases, sink_name,
                            query.joins[-1].kind == "FULL")
    key_name = SYNTHETIC_KEY if synthetic else _key_column(rewritten, keys)
    value_columns = tuple(Column(n, ty) for cols in columns for n, ty in cols.items()
                          if n != key_name)
    joined = DataSource("_".join(aliases) + "_JOIN", left_kind,
                        Schema((Column(key_name, key_type),), value_columns),
                        first.topic, first.formats, first.partitions)
    return rewritten, joined, JoinPlan(JoinSide(first, aliases[0], None), tuple(steps))


def _check_kind(join: ast.Join, kinds: tuple[str, str], left: str,
                right: DataSource) -> None:
    """ksqlDB's rules for the kinds of join each pair of sources allows."""
    if kinds == ("TABLE", "STREAM"):
        raise SqlAnalysisError(at(join.pos, f"Invalid join order: table-stream joins are not "
                                            f"supported; only stream-table joins. Got "
                                            f"{left} [{join.kind}] JOIN {right.name}."))
    if kinds == ("STREAM", "TABLE") and join.kind in ("FULL", "RIGHT"):
        word = "full-outer" if join.kind == "FULL" else "right"
        raise SqlAnalysisError(at(join.pos, f"Invalid join type: {word} join not "
                                            f"supported for stream-table join. Got "
                                            f"{left} [STREAM] {join.kind} JOIN {right.name} "
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
    if right.window is not None:
        raise SqlAnalysisError(at(join.source_pos, f"windowed source {right.name} in a join "
                                                   f"is not supported yet"))


def _prefixed(source: DataSource, alias: str) -> dict[str, t.SqlType]:
    """The joined source's columns from one side: key, value, then ROWTIME, each
    ``ALIAS_COLUMN`` (``*`` lists them in this order, as ksqlDB does)."""
    columns = {f"{alias}_{c.name}": c.type for c in source.schema.key + source.schema.value}
    columns[f"{alias}_{ROWTIME}"] = t.BIGINT
    return columns


def _split_condition(join: ast.Join, aliases: list[str],
                     columns: list[dict[str, t.SqlType]]) -> tuple[ast.Expr, ast.Expr]:
    """ON's two sides as (the joins so far's expression, the joined source's), each
    qualified; ``aliases`` ends with the joined source's."""
    on = join.on
    if isinstance(on, ast.Logical) and on.op == "AND":
        raise SqlAnalysisError(at(getattr(on, "pos", join.pos),
                                  f"Invalid join condition: joins on multiple conditions are "
                                  f"not yet supported. Got {text(on)}."))
    if not (isinstance(on, ast.Comparison) and on.op == "="):
        raise SqlAnalysisError(at(getattr(on, "pos", join.pos),
                                  f"Unsupported join expression: {text(on)}. Only equality "
                                  f"joins between the two sources (ON a.x = b.y) are "
                                  f"supported"))
    new = len(aliases) - 1
    sides: list[tuple[int, ast.Expr]] = []
    for e in (on.left, on.right):
        owners = {_owner(c, aliases, columns, "JOIN ON column ") for c in _columns(e)}
        if len(owners) != 1:
            raise SqlAnalysisError(at(getattr(e, "pos", join.pos),
                                      f"Invalid comparison expression '{text(e)}' in join "
                                      f"'{text(on)}'. Each side of the join comparision must "
                                      f"contain references from exactly one source."))
        sides.append((owners.pop(), _qualify(e, aliases, columns)))
    (left, left_on), (right, right_on) = sides
    if left == right:
        raise SqlAnalysisError(at(getattr(on, "pos", join.pos),
                                  f"Each side of the join must reference exactly one source "
                                  f"and not the same source. Left side references "
                                  f"`{aliases[left]}` and right references `{aliases[right]}`"))
    if new not in (left, right):
        raise SqlAnalysisError(at(getattr(on, "pos", join.pos),
                                  f"A join criteria is expected to reference the source "
                                  f"(`{aliases[new]}`) in the FROM clause, instead the right "
                                  f"source references `{aliases[right]}` and the left source "
                                  f"references `{aliases[left]}`"))
    return (left_on, right_on) if right == new else (right_on, left_on)


def _columns(e: ast.Expr) -> list[ast.ColumnRef]:
    return [x for x in walk(e) if isinstance(x, ast.ColumnRef)]


def _owner(c: ast.ColumnRef, aliases: list[str], columns: list[dict[str, t.SqlType]],
           what: str = "Column ") -> int:
    """Which source (its index in FROM order) a column belongs to; ``what`` starts the
    error for an unknown column, as ksqlDB words it per clause."""
    if c.source is not None:
        if c.source not in aliases:
            raise SqlAnalysisError(at(c.pos, f"'{c.source}' is not a valid stream/table name "
                                             f"or alias."))
        side = aliases.index(c.source)
        if f"{c.source}_{c.name}" not in columns[side]:
            raise SqlAnalysisError(at(c.pos, f"{what}'{c.source}.{c.name}' cannot be "
                                             f"resolved."))
        return side
    found = [i for i, a in enumerate(aliases) if f"{a}_{c.name}" in columns[i]]
    if not found:
        raise SqlAnalysisError(at(c.pos, f"{what}'{c.name}' cannot be resolved."))
    if len(found) > 1:
        names = [f"{aliases[i]}.{c.name}" for i in found]
        raise SqlAnalysisError(at(c.pos, f"Column '{c.name}' is ambiguous. Could be "
                                         f"{', '.join(names[:-1])} or {names[-1]}."))
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
        if alias is None and isinstance(item.expr, ast.ColumnRef) and sum(
                f"{a}_{item.expr.name}" in cols for a, cols in zip(aliases, columns,
                                                                   strict=True)) == 1:
            alias = item.expr.name  # a name only one source has keeps it, qualified or not
        items.append(dataclasses.replace(item, expr=rename(item.expr), alias=alias))
    return dataclasses.replace(
        query, items=tuple(items), source_alias=None, joins=(),
        where=rename(query.where) if query.where else None,
        group_by=tuple(map(rename, query.group_by)),
        partition_by=tuple(map(rename, query.partition_by)),
        having=rename(query.having) if query.having else None)


def _check_key_selected(query: ast.Query, keys: list[ast.Expr], aliases: list[str],
                        sink_name: str, full: bool) -> None:
    """ksqlDB's error where the projection selects none of the columns the result is
    keyed by (any ON column equal to the join value, named in FROM order, or, with no
    ``keys``, the synthetic ROWKEY)."""
    if not keys:
        if any(i.expr == ast.ColumnRef(SYNTHETIC_KEY) for i in query.items):
            return
        see = "" if full else "Key missing from projection (ie, SELECT). See " \
                              "https://cnfl.io/2LV7ouS. "
        raise SqlAnalysisError(f"{see}The query used to build `{sink_name}` must include the "
                               f"join expression {SYNTHETIC_KEY} in its projection (eg, "
                               f"SELECT {SYNTHETIC_KEY}...). {SYNTHETIC_KEY} was added as a "
                               f"synthetic key column because the join criteria did not "
                               f"match any source column.")
    columns = sorted(dict.fromkeys(e for e in keys if isinstance(e, ast.ColumnRef)),
                     key=lambda e: aliases.index(e.source or ""))
    selected = {i.expr.name for i in query.items if isinstance(i.expr, ast.ColumnRef)}
    if any(f"{e.source}_{e.name}" in selected for e in columns):
        return
    names = [text(e) for e in columns]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    plural = "s" if len(names) > 1 else ""
    raise SqlAnalysisError(f"Key missing from projection (ie, SELECT). The query used to "
                           f"build `{sink_name}` must include the join "
                           f"expression{plural} {listed} in its projection (eg, SELECT "
                           f"{names[0]}...).")


def _key_column(query: ast.Query, keys: list[ast.Expr]) -> str:
    """The joined source's key column: the ON column the projection selects (the first
    when it selects several or none, as ksqlDB's error then names that one)."""
    names = [f"{e.source}_{e.name}" for e in keys if isinstance(e, ast.ColumnRef)]
    selected = {i.expr.name for i in query.items if isinstance(i.expr, ast.ColumnRef)}
    return next((n for n in names if n in selected), names[0])


def _joiner(left_alias: str | None, left_columns: list[dict[str, t.SqlType]], right_alias: str,
            right_columns: dict[str, t.SqlType], kinds: tuple[str, str],
            join_values: list[Evaluator] | None) -> Callable[[Row | None, Row | None], Row]:
    """``(left row, right row) -> joined row``: each side's columns prefixed (the left's
    only where it is a source's, ``left_alias``; NULLs for a missing side); ROWTIME, the
    result record's time as Kafka Streams stamps it: the stream's in a stream-table join,
    else the later of the two sides'; and, given ``join_values``, the synthetic key
    ROWKEY, the first non-null side's join value."""
    left_prefix = f"{left_alias}_" if left_alias is not None else ""
    right_prefix = f"{right_alias}_"
    left_nulls = {name: None for cols in left_columns for name in cols}
    right_nulls = dict.fromkeys(right_columns)
    stream_table = kinds == ("STREAM", "TABLE")

    def join(left: Row | None, right: Row | None) -> Row:
        row: Row = {}
        if left is None:
            row.update(left_nulls)
        elif left_prefix:
            row.update((left_prefix + k, v) for k, v in left.items())
        else:
            row.update(left)
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
        if join_values is not None:
            row[SYNTHETIC_KEY] = join_values[0](left) if left is not None else \
                join_values[1](right) if right is not None else None
        return row
    return join
