"""SELECT analysis: resolve names and types, check ksqlDB's rules, and plan the query.

The plan says what to compute, with every expression already compiled to a closure; the
compiler (``compiler.py``) turns it into DSL calls. Rows are ``dict`` column -> value; a
source row carries its key columns, value columns and ROWTIME.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fluvial.sql import aggregates, ast, udfs
from fluvial.sql import types as t
from fluvial.sql.catalog import (
    PSEUDO_COLUMNS,
    ROWTIME,
    WINDOWEND,
    WINDOWSTART,
    Column,
    DataSource,
    Schema,
    WindowInfo,
)
from fluvial.sql.errors import SqlAnalysisError, at
from fluvial.sql.expressions import (
    Compiled,
    Evaluator,
    Row,
    Scope,
    argument_reader,
    children,
    compile_expr,
    failed,
    is_aggregate,
    is_table_function,
    text,
    unqualify,
    user_call,
    walk,
)
from fluvial.sql.joins import JoinPlan, plan_join

DEFAULT_GRACE_MS = 24 * 3_600_000  # ksqlDB's grace period when a window names none


@dataclass(frozen=True)
class Projection:
    """The output row: ``key`` evaluators (in key-column order) and ``value`` ones."""

    schema: Schema
    key: tuple[Evaluator, ...]
    value: tuple[tuple[str, Evaluator], ...]

    def key_of(self, row: Row) -> tuple[Any, ...]:
        return tuple(f(row) for f in self.key)

    def value_of(self, row: Row) -> dict[str, Any]:
        return {name: f(row) for name, f in self.value}


@dataclass(frozen=True)
class AggregateCall:
    function: aggregates.Aggregate
    argument: Evaluator | None  # None: COUNT(*)


@dataclass(frozen=True)
class Aggregation:
    group_by: tuple[Evaluator, ...]
    by_source_key: bool  # grouped by exactly the source's key: no repartition
    calls: tuple[AggregateCall, ...]
    window: ast.WindowSpec | None
    having: Evaluator | None  # over the aggregate row
    emit_final: bool
    event_time: Evaluator | None = None  # the window's time where not the record's
    #: the source columns GROUP BY and the aggregates' arguments read: all a row needs
    #: past the GROUP BY's repartition
    columns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class QueryPlan:
    source: DataSource
    result_kind: str  # STREAM | TABLE
    where: Evaluator | None
    partition_by: bool  # the key is recomputed from the source row
    aggregation: Aggregation | None
    projection: Projection  # over the source row, or the aggregate row
    window: WindowInfo | None  # of the result
    join: JoinPlan | None = None  # ``source`` is then the joined source this builds
    #: table functions of the SELECT: each gives a list; a row per element (zipped, the
    #: shorter lists padding with NULL) carries them in ``table_function_field(i)``
    table_functions: tuple[Evaluator, ...] = ()
    #: the columns WHERE and SELECT's value columns read (None: not worked out, for
    #: aggregates and joins)
    columns: frozenset[str] | None = None

    @property
    def reads(self) -> tuple[str, ...]:
        """The names of the sources the query reads."""
        if self.join is None:
            return (self.source.name,)
        return tuple(s.name for s in self.join.sources)


@functools.cache  # called per aggregate row: the names are built once
def group_field(i: int) -> str:
    return f"KSQL_GK_{i}"


@functools.cache
def aggregate_field(i: int) -> str:
    return f"KSQL_AGG_{i}"


def table_function_field(i: int) -> str:
    return f"KSQL_SYNTH_{i}"


def plan_select(query: ast.Query, sources: list[DataSource], sink_name: str) -> QueryPlan:
    """The plan of a query over ``sources``: its FROM source, then each joined one."""
    if not query.joins:
        return plan_query(query, sources[0], sink_name)
    rewritten, joined, join = plan_join(query, sources, sink_name)
    return dataclasses.replace(plan_query(rewritten, joined, sink_name), join=join)


def plan_query(query: ast.Query, source: DataSource, sink_name: str) -> QueryPlan:
    qualifiers = frozenset(n for n in (source.name, query.source_alias) if n)
    query = _unqualified(query, qualifiers)
    scope = Scope(source.scope_columns(), qualifiers)
    where = _predicate(query.where, scope, "WHERE") if query.where is not None else None
    items = _expand_stars(query, source)
    _check_clauses(query, source)
    if query.group_by:
        query, time_window = _time_window(query, scope, source)
        return _plan_aggregate(query, source, scope, where, items, sink_name, time_window)
    if query.having is not None:
        raise SqlAnalysisError(at(query.having.pos if hasattr(query.having, "pos") else None,
                                  "HAVING requires a GROUP BY clause."))
    _refuse_aggregates(items)
    _check_partition_by(query.partition_by, scope)
    if query.partition_by == (ast.Literal(None),):
        key_exprs: tuple[ast.Expr, ...] = ()  # PARTITION BY NULL: a stream without a key
    else:
        key_exprs = query.partition_by or tuple(ast.ColumnRef(c.name)
                                                for c in source.schema.key)
    if query.partition_by and any(i.expr is None for i in query.items):
        # SELECT * ... PARTITION BY: the partitioning expressions join the projection
        items += [(e, None, query.pos) for e in key_exprs
                  if all(e != x for x, _a, _p in items)]
    kind = "partitioning expression" if query.partition_by else "key column"
    exploded, select_scope = _table_functions(items, scope, source)
    projection = _project(items, key_exprs, select_scope, sink_name, kind,
                          source.name if query.partition_by else None)
    read = [query.where] if query.where is not None else []
    read += [e for e, _alias, _pos in items if e not in key_exprs]  # the value columns'
    return QueryPlan(source, source.kind, where, bool(query.partition_by), None, projection,
                     None, table_functions=exploded, columns=_columns(read))


def _table_functions(items: list[tuple[ast.Expr, str | None, ast.Pos]], scope: Scope,
                     source: DataSource) -> tuple[tuple[Evaluator, ...], Scope]:
    """The SELECT's table-function calls, compiled to their list evaluators, and the scope
    where each call reads its element's field."""
    calls = _table_function_calls(items)
    if not calls:
        return (), scope
    if source.kind == "TABLE":
        raise SqlAnalysisError(at(calls[0].pos, f"Table function {calls[0].name} needs a "
                                                f"stream source; {source.name} is a table"))
    replacements = dict(scope.replacements)
    evaluators = []
    for i, call in enumerate(calls):
        for e in (x for a in call.args for x in walk(a)):
            if is_table_function(e) or is_aggregate(e):
                raise SqlAnalysisError(at(e.pos, f"Table function {call.name} cannot take "
                                                 f"{e.name}(...) as an argument: "
                                                 f"{text(call)}"))
        if call.name == "EXPLODE":
            evaluator, returns = _explode_call(call, scope)
        else:
            entry = udfs.active().get(call.name, "TABLE")
            assert entry is not None
            overload, args = user_call(call, entry, scope)
            evaluator, returns = _table_call(call, overload, args), overload.signature.returns
        evaluators.append(evaluator)
        replacements[call] = (table_function_field(i), returns)
    return tuple(evaluators), dataclasses.replace(scope, replacements=replacements)


def _explode_call(call: ast.FunctionCall, scope: Scope) -> tuple[Evaluator, t.SqlType]:
    """ksqlDB's EXPLODE(array): a row per element (NULL ones too); a NULL or empty array
    gives none."""
    if call.star or len(call.args) != 1:
        raise SqlAnalysisError(at(call.pos, f"Function EXPLODE takes 1 argument, an ARRAY: "
                                            f"{text(call)}"))
    array = compile_expr(call.args[0], scope)
    if array.type.name != "ARRAY":
        raise SqlAnalysisError(at(call.pos, f"Function EXPLODE takes an ARRAY, not "
                                            f"{array.type}: {text(call)}"))
    read = array.fn

    def run(row: Row) -> list[Any]:
        return read(row) or []
    return run, array.type.items[0]


def _table_function_calls(items: list[tuple[ast.Expr, str | None, ast.Pos]]) -> list[
        ast.FunctionCall]:
    """The distinct table-function calls of the select items, in order."""
    calls: list[ast.FunctionCall] = []
    for expr, _alias, _pos in items:
        for e in walk(expr):
            if is_table_function(e) and e not in calls:
                calls.append(e)
    return calls


def _table_call(call: ast.FunctionCall, overload: udfs.Overload,
                args: list[Compiled]) -> Evaluator:
    read = argument_reader(args, overload.signature)
    fn, check = overload.call, udfs.result_checker(overload.signature.returns)
    name, pos = call.name, call.pos

    def run(row: Row) -> list[Any]:
        values = read(row)
        if values is None:
            return []
        try:
            result = fn(*values)
            if result is None:
                return []
            if not isinstance(result, list | tuple):
                raise TypeError(f"returned {result!r}, not a list")
            return [None if v is None else check(v) for v in result]
        except Exception as exc:  # the user's code: any error is the record's
            raise failed(name, pos, exc) from exc
    return run


def explode(functions: tuple[Evaluator, ...]) -> Callable[[Row], list[Row]]:
    """``fn(row)``: the rows a SELECT with table functions makes of one input row."""
    def rows(row: Row) -> list[Row]:
        lists = [f(row) for f in functions]
        out = []
        for values in itertools.zip_longest(*lists):
            copy = dict(row)
            for i, v in enumerate(values):
                copy[table_function_field(i)] = v
            out.append(copy)
        return out
    return rows


def plan_transient(query: ast.Query, source: DataSource) -> QueryPlan:
    """A push query's plan (``SELECT ... EMIT CHANGES`` over one source, no GROUP BY,
    PARTITION BY or join): its rows go to a client, not to a keyed topic, so every column
    is a value column, in SELECT order, ``*`` giving the key columns then the value ones."""
    if query.group_by or query.partition_by or query.joins:
        raise SqlAnalysisError(at(query.pos, "push queries with GROUP BY, joins or "
                                             "PARTITION BY are not supported yet"))
    qualifiers = frozenset(n for n in (source.name, query.source_alias) if n)
    query = dataclasses.replace(_unqualified(query, qualifiers), limit=None)
    scope = Scope(source.scope_columns(), qualifiers)
    where = _predicate(query.where, scope, "WHERE") if query.where is not None else None
    items = _expand_stars(query, source, keys_first=True)
    _check_clauses(query, source)
    if query.having is not None:
        raise SqlAnalysisError(at(query.pos, "HAVING requires a GROUP BY clause."))
    _refuse_aggregates(items)
    for e in _table_function_calls(items)[:1]:
        raise SqlAnalysisError(at(e.pos, f"Table function {e.name} in a push query is not "
                                         f"supported yet: create a stream AS SELECT"))
    projection = _project(items, (), scope, "TRANSIENT", "key column")
    return QueryPlan(source, "STREAM", where, False, None, projection, None)


def _check_partition_by(exprs: tuple[ast.Expr, ...], scope: Scope) -> None:
    """PARTITION BY reads the input: its columns must be the source's; NULL only alone."""
    if len(exprs) > 1 and ast.Literal(None) in exprs:
        raise SqlAnalysisError("Cannot PARTITION BY multiple columns including NULL")
    for e in exprs:
        for column in (x for x in walk(e) if isinstance(x, ast.ColumnRef)):
            if column.name not in scope.columns:
                raise SqlAnalysisError(at(column.pos, f"PARTITION BY column '{column.name}' "
                                                      f"cannot be resolved. '{column.name}' "
                                                      f"must be a column in the source schema "
                                                      f"since PARTITION BY is applied on the "
                                                      f"input."))
        compile_expr(e, scope)


def _unqualified(query: ast.Query, qualifiers: frozenset[str]) -> ast.Query:
    def bare(e: ast.Expr) -> ast.Expr:
        return unqualify(e, qualifiers)
    return dataclasses.replace(
        query,
        items=tuple(dataclasses.replace(i, expr=bare(i.expr)) if i.expr else i
                    for i in query.items),
        where=bare(query.where) if query.where else None,
        group_by=tuple(map(bare, query.group_by)),
        partition_by=tuple(map(bare, query.partition_by)),
        having=bare(query.having) if query.having else None)


def _check_clauses(query: ast.Query, source: DataSource) -> None:
    if query.limit is not None:
        raise SqlAnalysisError(at(query.pos, "LIMIT is only supported on transient queries, "
                                             "not on persistent ones"))
    if query.window is not None and not query.group_by:
        raise SqlAnalysisError(at(query.window.pos, "WINDOW clause requires a GROUP BY "
                                                    "clause."))
    if query.emit == "FINAL" and query.window is None:
        raise SqlAnalysisError(at(query.pos, "EMIT FINAL is only supported for windowed "
                                             "aggregations."))
    if source.kind == "TABLE" and query.window is not None:
        raise SqlAnalysisError(at(query.window.pos, "WINDOW clause is not supported on "
                                                    "tables: aggregate a stream"))
    if source.kind == "TABLE" and query.partition_by:
        raise SqlAnalysisError(at(query.pos, f"Unsupported: PARTITION BY on a TABLE "
                                             f"({source.name}); tables are keyed by their "
                                             f"PRIMARY KEY"))
    if query.partition_by and query.group_by:
        raise SqlAnalysisError(at(query.pos, "PARTITION BY and GROUP BY in one query are not "
                                             "supported"))
    if source.window is not None:
        raise SqlAnalysisError(at(query.source_pos, f"windowed source {source.name} as a "
                                                    f"query's input is not supported yet"))


def _predicate(expr: ast.Expr, scope: Scope, clause: str) -> Evaluator:
    try:
        compiled = compile_expr(expr, dataclasses.replace(scope, clause=f"{clause} column "))
    except SqlAnalysisError as exc:  # ksqlDB names the clause: "Error in WHERE expression"
        where, sep, why = str(exc).partition(": ")
        if not where.startswith("line ") or not sep:
            where, why = "", str(exc)
        raise SqlAnalysisError(f"{where}{sep}Error in {clause} expression: {why}") from None
    if compiled.type not in (t.BOOLEAN, t.NULL):
        raise SqlAnalysisError(at(getattr(expr, "pos", None),
                                  f"Type error in {clause} expression: Should evaluate to "
                                  f"boolean but is {text(expr)} ({compiled.type}) instead."))
    return compiled.fn


def _expand_stars(query: ast.Query, source: DataSource, keys_first: bool = False) -> list[
        tuple[ast.Expr, str | None, ast.Pos]]:
    """Select items as (expression, alias, position), ``*`` expanded to every column (the
    key columns last, or first with ``keys_first``)."""
    items: list[tuple[ast.Expr, str | None, ast.Pos]] = []
    for item in query.items:
        if item.expr is not None:
            items.append((item.expr, item.alias, item.pos))
            continue
        if item.star_source is not None and item.star_source not in (source.name,
                                                                      query.source_alias):
            raise SqlAnalysisError(at(item.pos, f"unknown source {item.star_source} in "
                                                f"{item.star_source}.*"))
        # as ksqlDB: value columns first, then key columns (which move to the result's
        # key wherever it has the same key)
        columns = source.schema.key + source.schema.value if keys_first else \
            source.schema.value + source.schema.key
        for column in columns:
            items.append((ast.ColumnRef(column.name), None, item.pos))
        if source.window is not None:
            items.extend((ast.ColumnRef(n), None, item.pos) for n in (WINDOWSTART, WINDOWEND))
    return items


def _refuse_aggregates(items: list[tuple[ast.Expr, str | None, ast.Pos]]) -> None:
    for expr, _alias, _pos in items:
        for e in walk(expr):
            if is_aggregate(e):
                raise SqlAnalysisError(at(e.pos, f"Use of aggregate function {e.name} "
                                                 f"requires a GROUP BY clause."))


def _column_names(items: list[tuple[ast.Expr, str | None, ast.Pos]]) -> list[str]:
    """Each item's alias, or its column's name; other expressions get ``KSQL_COL_n``, ``n``
    counting up from 0 over the names so generated, skipping names already taken."""
    taken = {alias or (e.name if isinstance(e, ast.ColumnRef) else None)
             for e, alias, _pos in items}
    names = []
    generated = 0
    for expr, alias, _pos in items:
        if alias is not None:
            names.append(alias)
        elif isinstance(expr, ast.ColumnRef):
            names.append(expr.name)
        else:
            while f"KSQL_COL_{generated}" in taken:
                generated += 1
            names.append(f"KSQL_COL_{generated}")
            generated += 1
    return names


def _project(items: list[tuple[ast.Expr, str | None, ast.Pos]], key_exprs: tuple[ast.Expr, ...],
             scope: Scope, sink_name: str, key_kind: str,
             qualifier: str | None = None) -> Projection:
    """Split the select items into the result's key columns (those equal to ``key_exprs``)
    and value columns, as ksqlDB requires every key expression in the projection
    (``key_kind`` names them in its error: key column, partitioning or grouping
    expression; ``qualifier`` prefixes their columns there, as ksqlDB writes partitioning
    expressions)."""
    names: set[str] = set()
    key_cols: list[Column | None] = [None] * len(key_exprs)
    key_fns: list[Evaluator | None] = [None] * len(key_exprs)
    value_cols: list[Column] = []
    value_fns: list[tuple[str, Evaluator]] = []
    for (expr, alias, pos), name in zip(items, _column_names(items), strict=True):
        if (name in PSEUDO_COLUMNS and name != WINDOWSTART and name != WINDOWEND) or (
                name in (WINDOWSTART, WINDOWEND) and alias is not None):
            raise SqlAnalysisError(at(pos, f"Reserved column name in select: `{name}`. "
                                           f"Please remove or alias the column."))
        compiled = compile_expr(expr, dataclasses.replace(scope, clause="SELECT column "))
        type_ = _known_type(compiled, expr, pos)
        if name in names:
            raise SqlAnalysisError(at(pos, f"Duplicate value columns found in schema: "
                                           f"`{name}` {type_}"))
        names.add(name)
        slots = [i for i, k in enumerate(key_exprs) if k == expr]
        if slots and all(key_cols[i] is not None for i in slots):
            first = key_cols[slots[0]]
            assert first is not None
            if key_kind == "grouping expression":  # ksqlDB words the two cases differently
                raise SqlAnalysisError(at(pos, f"The projection contains a key column more "
                                               f"than once: `{first.name}` and `{name}`."))
            raise SqlAnalysisError(at(pos, f"The projection contains a key column "
                                           f"(`{text(expr)}`) more than once, aliased as: "
                                           f"{first.name} and {name}."))
        if slots:
            slot = next(i for i in slots if key_cols[i] is None)
            key_cols[slot] = Column(name, type_)
            key_fns[slot] = compiled.fn
        else:
            value_cols.append(Column(name, type_))
            value_fns.append((name, compiled.fn))
    if any(c is None for c in key_cols):
        # ksqlDB names the missing grouping expressions, but every key column or
        # partitioning expression
        missing = [text(_qualified(k, qualifier)) for k, c in zip(key_exprs, key_cols, strict=True)
                   if c is None or key_kind != "grouping expression"]
        listed = missing[0] if len(missing) == 1 else \
            f"{', '.join(missing[:-1])} and {missing[-1]}"
        plural = "s" if len(missing) > 1 else ""
        raise SqlAnalysisError(
            f"Key missing from projection (ie, SELECT). The query used to build "
            f"`{sink_name}` must include the {key_kind}{plural} {listed} in its projection "
            f"(eg, SELECT {', '.join(missing)}...).")
    schema = Schema(tuple(c for c in key_cols if c is not None), tuple(value_cols))
    return Projection(schema, tuple(f for f in key_fns if f is not None), tuple(value_fns))


def _qualified(expr: ast.Expr, qualifier: str | None) -> ast.Expr:
    """``expr`` with its columns qualified by ``qualifier`` (for messages)."""
    if qualifier is None:
        return expr
    if isinstance(expr, ast.ColumnRef):
        return dataclasses.replace(expr, source=qualifier)
    changes: dict[str, Any] = {}
    for name, value in vars(expr).items():
        if isinstance(value, ast.Expr):
            changes[name] = _qualified(value, qualifier)
        elif isinstance(value, tuple) and value and all(isinstance(v, ast.Expr) for v in value):
            changes[name] = tuple(_qualified(v, qualifier) for v in value)
    return dataclasses.replace(expr, **changes) if changes else expr


def _known_type(compiled: Compiled, expr: ast.Expr, pos: ast.Pos) -> t.SqlType:
    if compiled.type == t.NULL:
        raise SqlAnalysisError(at(pos, f"Can't infer a type of null. Please explicitly cast "
                                       f"it to a required type, e.g. CAST({text(expr)} AS "
                                       f"VARCHAR)."))
    return compiled.type


# -- aggregation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeWindow:
    """``GROUP BY CEIL(ts TO unit)``: a tumbling window of that unit over ``ts``."""

    group: ast.TimeRound
    event_time: Evaluator | None  # None: ROWTIME, the record's own timestamp


def _time_window(query: ast.Query, scope: Scope,
                 source: DataSource) -> tuple[ast.Query, TimeWindow | None]:
    """The talk's extension: a GROUP BY item ``CEIL(ts TO HOUR)`` (or FLOOR) makes the
    aggregation a tumbling window of an hour over ``ts``, and the item reads the window's
    end (start for FLOOR); the query comes back with the WINDOW and without that item."""
    rounds = [g for g in query.group_by if isinstance(g, ast.TimeRound)]
    if not rounds:
        return query, None
    first = rounds[0]
    if len(rounds) > 1:
        raise SqlAnalysisError(at(rounds[1].pos, f"GROUP BY takes one time window; "
                                                 f"{text(first)} is one already"))
    if query.window is not None:
        raise SqlAnalysisError(at(first.pos, f"GROUP BY {text(first)} is a tumbling window "
                                             f"already: leave out the WINDOW clause"))
    if not isinstance(first.operand, ast.ColumnRef):
        raise SqlAnalysisError(at(first.pos, f"GROUP BY {text(first)}: the window needs a "
                                             f"time column, not an expression"))
    compile_expr(first, scope)  # the column exists and is a time
    column = first.operand.name
    event_time = None if column in (ROWTIME, source.timestamp_column) else \
        compile_expr(first.operand, scope).fn
    window = ast.WindowSpec("TUMBLING", first.unit_ms, pos=first.pos)
    rest = tuple(g for g in query.group_by if g is not first)
    return dataclasses.replace(query, window=window, group_by=rest), \
        TimeWindow(first, event_time)


def _plan_aggregate(query: ast.Query, source: DataSource, scope: Scope,
                    where: Evaluator | None, items: list[tuple[ast.Expr, str | None, ast.Pos]],
                    sink_name: str, time_window: TimeWindow | None = None) -> QueryPlan:
    for g in query.group_by:
        for e in walk(g):
            if is_aggregate(e):
                raise SqlAnalysisError(at(e.pos, f"GROUP BY does not support aggregate "
                                                 f"functions: {e.name} is an aggregate "
                                                 f"function."))
    for e in _table_function_calls(items)[:1]:
        raise SqlAnalysisError(at(e.pos, f"Table function {e.name} cannot be used in an "
                                         f"aggregation (GROUP BY)"))
    group_compiled = [compile_expr(g, scope) for g in query.group_by]
    for g, c in zip(query.group_by, group_compiled, strict=True):
        _known_type(c, g, getattr(g, "pos", (0, 0)))
    calls: list[AggregateCall] = []
    replacements: dict[ast.Expr, tuple[str, t.SqlType]] = {
        g: (group_field(i), c.type)
        for i, (g, c) in enumerate(zip(query.group_by, group_compiled, strict=True))}
    found = [e for expr, _a, _p in items for e in walk(expr)]
    if query.having is not None:
        found += walk(query.having)
    for e in found:
        if not is_aggregate(e) or \
                e in replacements:
            continue
        calls.append(_aggregate_call(e, scope, source))
        replacements[e] = (aggregate_field(len(calls) - 1), calls[-1].function.result_type)
    if not calls:
        raise SqlAnalysisError(at(query.pos, "GROUP BY requires aggregate functions in either "
                                             "the SELECT or HAVING clause."))
    if source.kind == "TABLE":
        _refuse_undoable(calls, query.pos)
    if source.formats.value == "KAFKA":
        raise SqlAnalysisError(at(query.pos, f"Source(s) {source.name} are using the 'KAFKA' "
                                             f"value format. This format does not yet support "
                                             f"GROUP BY."))
    if query.window is not None:
        replacements[ast.ColumnRef(WINDOWSTART)] = (WINDOWSTART, t.BIGINT)
        replacements[ast.ColumnRef(WINDOWEND)] = (WINDOWEND, t.BIGINT)
    if time_window is not None:
        bound = WINDOWEND if time_window.group.function == "CEIL" else WINDOWSTART
        replacements[time_window.group] = (bound, t.BIGINT)
    _refuse_bare_columns(items, query.having, replacements)
    agg_scope = Scope(scope.columns, scope.qualifiers, replacements)
    having = _predicate(query.having, agg_scope, "HAVING") if query.having else None
    projection = _project(items, query.group_by, agg_scope, sink_name, "grouping expression")
    key_names = [c.name for c in source.schema.key]
    by_key = [g for g in query.group_by] == [ast.ColumnRef(n) for n in key_names]
    window = None
    if query.window is not None:
        size = None if query.window.kind == "SESSION" else query.window.size_ms
        window = WindowInfo(query.window.kind, size)
    aggregation = Aggregation(tuple(c.fn for c in group_compiled), by_key, tuple(calls),
                              query.window, having, query.emit == "FINAL",
                              time_window.event_time if time_window else None,
                              _columns([*query.group_by, *(a for e in found if is_aggregate(e)
                                                           for a in e.args)]))
    return QueryPlan(source, "TABLE", where, False, aggregation, projection, window)


def _columns(exprs: list[ast.Expr]) -> frozenset[str]:
    """The names of the columns ``exprs`` read."""
    return frozenset(c.name for e in exprs for c in walk(e) if isinstance(c, ast.ColumnRef))


def _bare_columns(expr: ast.Expr, replaced: Mapping[ast.Expr, Any]) -> list[ast.ColumnRef]:
    """The columns ``expr`` reads outside its GROUP BY expressions and aggregates."""
    if expr in replaced:
        return []
    if isinstance(expr, ast.ColumnRef):
        return [expr]
    return [c for child in children(expr) for c in _bare_columns(child, replaced)]


def _refuse_bare_columns(items: list[tuple[ast.Expr, str | None, ast.Pos]],
                         having: ast.Expr | None, replaced: Mapping[ast.Expr, Any]) -> None:
    """ksqlDB's errors for selected (or HAVING) expressions that are neither grouped nor
    aggregated, naming the whole offending select expressions."""
    bad = [(e, pos) for e, _alias, pos in items if _bare_columns(e, replaced)]
    if bad:
        raise SqlAnalysisError(at(bad[0][1], "Non-aggregate SELECT expression(s) not part of "
                                             "GROUP BY: " + ", ".join(text(e) for e, _ in bad)))
    columns = _bare_columns(having, replaced) if having is not None else []
    if columns:
        raise SqlAnalysisError(at(columns[0].pos, f"Non-aggregate HAVING expression not part "
                                                  f"of GROUP BY: {text(columns[0])}"))


def _refuse_undoable(calls: list[AggregateCall], pos: ast.Pos) -> None:
    """A table's aggregation subtracts rows that leave a group: ksqlDB's error naming every
    function that cannot."""
    names = list(dict.fromkeys(c.function.name for c in calls if c.function.subtract is None))
    if names:
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        raise SqlAnalysisError(at(pos, f"The aggregation functions {listed} cannot be "
                                       f"applied to a table source, only to a stream source."))


def _aggregate_call(call: ast.FunctionCall, scope: Scope,
                    source: DataSource) -> AggregateCall:
    user = udfs.active().get(call.name, "AGGREGATE")
    if user is not None:
        for e in (x for a in call.args for x in walk(a)):
            if is_aggregate(e):
                raise SqlAnalysisError(at(e.pos, f"Aggregate functions can not be nested: "
                                                 f"{text(call)}"))
        overload, args = user_call(call, user, scope)
        return AggregateCall(user_aggregate(call, overload, args[0].type), args[0].fn)
    if call.name == "COUNT" and not call.args:
        call = dataclasses.replace(call, star=True)  # COUNT() is COUNT(*)
    if call.star and call.name != "COUNT":
        raise SqlAnalysisError(at(call.pos, f"{call.name}(*) is not valid: only COUNT(*)"))
    if not call.star and len(call.args) != 1:
        raise SqlAnalysisError(at(call.pos, f"Function {call.name} takes 1 argument, got "
                                            f"{len(call.args)}"))
    argument: Compiled | None = None
    if not call.star:
        for e in walk(call.args[0]):
            if is_aggregate(e):
                raise SqlAnalysisError(at(e.pos, f"Aggregate functions can not be nested: "
                                                 f"{text(call)}"))
        argument = compile_expr(call.args[0], scope)
    try:
        function = aggregates.make(call.name, argument.type if argument else None)
    except ValueError as exc:
        raise SqlAnalysisError(at(call.pos, f"Function {call.name}: {exc}")) from None
    return AggregateCall(function, argument.fn if argument else None)


def user_aggregate(call: ast.FunctionCall, overload: udfs.Overload,
                   arg_type: t.SqlType) -> aggregates.Aggregate:
    """A UDAF class as an aggregate: one instance per query; an exception in one of its
    methods is the record's error, naming the function and where it is called."""
    sig = overload.signature
    udaf = overload.call()
    convert = udfs.converter(arg_type, sig.params[0]) or (lambda v: v)
    check = udfs.result_checker(sig.returns)
    name, pos = call.name, call.pos

    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # the user's code: any error is the record's
                raise failed(name, pos, exc) from exc
        return run

    def result(state: Any) -> Any:
        value = udaf.map(state)
        return None if value is None else check(value)
    undo = getattr(udaf, "undo", None)
    return aggregates.Aggregate(
        name, sig.returns, guarded(udaf.initialize),
        guarded(lambda state, v: udaf.aggregate(convert(v), state)), guarded(result),
        guarded(lambda state, v: undo(convert(v), state)) if callable(undo) else None,
        guarded(udaf.merge))


def aggregate_row(key: tuple[Any, ...], state: list[Any], calls: tuple[AggregateCall, ...],
                  window: tuple[int, int] | None) -> Row:
    """The row HAVING and the projection of an aggregate see: group values, aggregate
    results and the window's bounds."""
    row: Row = {group_field(i): v for i, v in enumerate(key)}
    for i, (call, s) in enumerate(zip(calls, state, strict=True)):
        row[aggregate_field(i)] = call.function.result(s)
    if window is not None:
        row[WINDOWSTART], row[WINDOWEND] = window
    return row


Adder = Callable[[Any, Row, list[Any]], list[Any]]


def adder(calls: tuple[AggregateCall, ...], sign: int = 1) -> Adder:
    """``fn(key, row, state) -> new state``: each call adds (or, ``sign`` -1, subtracts)
    its argument's value; NULL arguments leave a state as it is."""
    steps = []
    for call in calls:
        f = call.function
        step = f.add if sign > 0 else f.subtract
        assert step is not None
        steps.append((call.argument, step, f.counts_nulls))

    def run(_key: Any, row: Row, state: list[Any]) -> list[Any]:
        new = list(state)
        for i, (argument, step, counts_nulls) in enumerate(steps):
            if argument is None:
                new[i] = step(new[i], None)
                continue
            value = argument(row)
            if value is not None or counts_nulls:
                new[i] = step(new[i], value)
        return new
    return run

